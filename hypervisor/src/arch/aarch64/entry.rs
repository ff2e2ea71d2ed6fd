//! Entry points: the arm64 Image header, the primary CPU's entry (apply the image's relocations,
//! zero bss, set the stack, call `boot::primary_main`) and the secondary CPUs' entries: the one
//! PSCI `CPU_ON` starts with the CPU's index in x0, and the one a spin table releases, which
//! finds the index from the CPU's MPIDR in [`CPU_MPIDRS`]; both turn the MMU on with the
//! primary's tables first, then set the stack and call `boot::secondary_main`.
//!
//! The image is position-independent: boot loaders put it at RAM base + 2 MiB, which is
//! 0x40200000 on QEMU virt (where it is linked) and 0x200000 on a Raspberry Pi. The linker
//! leaves a table of `R_AARCH64_RELATIVE` relocations (the absolute addresses stored in data:
//! vtables, string references), which the primary applies for the address it runs at before
//! any Rust code runs; code addresses everything PC-relative.

use core::arch::global_asm;

use super::cpu::{MAX_CPUS, STACK_SLOT};
use super::mmu::SECONDARY_MMU;

/// `R_AARCH64_RELATIVE`: the only dynamic relocation a position-independent executable without
/// symbols to import has.
const R_AARCH64_RELATIVE: u64 = 1027;

/// The MPIDR affinity of each CPU by position, read with the MMU and caches off by a core a spin
/// table releases, to find which CPU it is. Unused slots hold a value no MPIDR has.
#[repr(C, align(64))]
pub struct CpuMpidrs(pub [u64; MAX_CPUS]);

#[unsafe(no_mangle)]
pub static mut CPU_MPIDRS: CpuMpidrs = CpuMpidrs([u64::MAX; MAX_CPUS]);

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
    // Relocate: x1 = where we run - where we are linked (the linker wrote link-time values at
    // every relocated place, the literal below included). MMU off: 8-byte accesses only.
    adr     x1, _start
    ldr     x2, link_start
    sub     x1, x1, x2
    cbz     x1, 6f
    adrp    x2, __rela_start
    add     x2, x2, :lo12:__rela_start
    adrp    x3, __rela_end
    add     x3, x3, :lo12:__rela_end
5:  cmp     x2, x3
    b.hs    6f
    ldp     x4, x5, [x2], #16       // r_offset, r_info
    ldr     x6, [x2], #8            // r_addend
    cmp     x5, #{relative}
    b.ne    5b
    add     x4, x4, x1              // where, as we run
    add     x6, x6, x1              // what, as we run
    str     x6, [x4]
    dc      ivac, x4                // no stale clean line of it once the caches are on
    b       5b
6:  dsb     sy
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

    .balign 8
link_start:
    .quad   _start                  // relocated like any pointer: read before that, _start's link address

    .global spin_table_entry
spin_table_entry:
    // Released from a spin table: MMU and caches off, x0 meaningless. Find this CPU's index.
    msr     daifset, #0xf
    mrs     x1, mpidr_el1
    mov     x2, #0xffffff           // MPIDR affinity: Aff2..Aff0 ...
    movk    x2, #0xff, lsl #32      // ... and Aff3
    and     x1, x1, x2
    adrp    x3, {mpidrs}
    add     x3, x3, :lo12:{mpidrs}
    mov     x0, #0
7:  cmp     x0, #{max_cpus}
    b.hs    8f
    ldr     x4, [x3, x0, lsl #3]
    cmp     x4, x1
    b.eq    secondary_entry
    add     x0, x0, #1
    b       7b
8:  wfe                             // not a CPU of the board: stay here
    b       8b

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
    relative = const R_AARCH64_RELATIVE,
    mpidrs = sym CPU_MPIDRS,
    max_cpus = const MAX_CPUS,
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
    fn spin_table_entry();
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

/// Physical address of the entry point of a CPU a spin table releases.
pub fn spin_table_entry_address() -> u64 {
    spin_table_entry as *const () as u64
}
