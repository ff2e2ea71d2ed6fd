//! Entry points: the arm64 Image header, the primary CPU's entry (zero bss, set the stack, call
//! `boot::primary_main`) and the secondary CPUs' entry used with PSCI `CPU_ON` (turn the MMU on
//! with the primary's tables first, then the stack, then `boot::secondary_main`).

use core::arch::global_asm;

use super::cpu::{MAX_CPUS, STACK_SLOT};
use super::mmu::SECONDARY_MMU;

/// Per-CPU EL2 stacks. CPU n uses `STACKS[n]`, growing down from its end; its first page is a
/// guard page the EL2 map leaves unmapped.
#[repr(C, align(4096))]
pub struct Stacks(pub [[u8; STACK_SLOT]; MAX_CPUS]);

#[unsafe(no_mangle)]
pub static mut STACKS: Stacks = Stacks([[0; STACK_SLOT]; MAX_CPUS]);

// The Image header (Documentation/arch/arm64/booting.rst) lets QEMU `-kernel` and U-Boot `booti`
// load us: they place the image text_offset bytes above a 2 MiB-aligned RAM base.
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset
    .quad   __image_size            // image_size (the packer rewrites it to cover the bundle)
    .quad   0x2                     // flags: little-endian, 4 KiB pages, 2 MiB-aligned base
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    // x0 = the boot loader's device tree (arm64 boot protocol).
    msr     daifset, #0xf
    mov     x20, x0
    mrs     x19, CurrentEL
    lsr     x19, x19, #2
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    mov     x2, #{stack_size}
    add     sp, x1, x2
    mov     x0, x19
    mov     x1, x20
    bl      {primary_main}
3:  wfe
    b       3b

    .global secondary_entry
secondary_entry:
    // x0 = logical CPU index (PSCI context id). MMU off, caches off.
    msr     daifset, #0xf
    mov     x19, x0
    adrp    x1, {mmu}
    add     x1, x1, :lo12:{mmu}
    ldp     x2, x3, [x1]            // mair, tcr
    ldp     x4, x5, [x1, #16]       // ttbr, sctlr
    msr     mair_el2, x2
    msr     tcr_el2, x3
    msr     ttbr0_el2, x4
    isb
    tlbi    alle2
    dsb     nsh
    isb
    msr     sctlr_el2, x5
    isb
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    add     x2, x19, #1
    mov     x3, #{stack_size}
    madd    x1, x2, x3, x1
    mov     sp, x1
    mov     x0, x19
    bl      {secondary_main}
4:  wfe
    b       4b
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SLOT,
    mmu = sym SECONDARY_MMU,
    primary_main = sym super::boot::primary_main,
    secondary_main = sym super::boot::secondary_main,
);

unsafe extern "C" {
    /// Start of the appended bundle (end of the image in memory), from the linker script.
    static __bundle_start: u8;
    /// End of the code and of the read-only data (page-aligned), from the linker script.
    static __text_end: u8;
    static __rodata_end: u8;
    /// First byte of the image, from the linker script.
    static __image_start: u8;
    fn secondary_entry();
}

/// Address of the bundle the packer appended to this image.
pub fn bundle_address() -> usize {
    // Only the address of the linker symbol is taken; it is never dereferenced here.
    core::ptr::addr_of!(__bundle_start) as usize
}

/// The image's layout: where it starts, where its code ends and where its read-only data ends.
pub fn layout() -> (usize, usize, usize) {
    // Only the addresses of the linker symbols are taken.
    (
        image_start(),
        core::ptr::addr_of!(__text_end) as usize,
        core::ptr::addr_of!(__rodata_end) as usize,
    )
}

/// How many bytes the boot loader loaded: the Image header's `image_size`, which the packer set
/// to cover the bundle too.
pub fn loaded_size() -> u64 {
    // SAFETY: reads the `image_size` field at offset 16 of our own Image header, part of the
    // loaded, mapped image; nothing writes it.
    unsafe { core::ptr::read_volatile((image_start() + 16) as *const u64) }
}

/// Address the image starts at.
pub fn image_start() -> usize {
    // Only the address of the linker symbol is taken.
    core::ptr::addr_of!(__image_start) as usize
}

/// Physical address of the secondary CPU entry point, for PSCI `CPU_ON`.
pub fn secondary_entry_address() -> u64 {
    secondary_entry as *const () as u64
}
