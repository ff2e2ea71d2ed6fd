//! The guest entry point `_start` and the transition to the guest's Rust `main`.
//!
//! The hypervisor enters the image's first byte at EL1h, MMU and caches off, DAIF masked, with
//! `x0` = guest-physical address of the DTB. `_start` is placed in `.text.boot`, which `guest.ld`
//! puts first at the link (and load) address.
//!
//! The image begins with an arm64 Linux **Image header** (64 bytes, see the kernel's
//! `Documentation/arch/arm64/booting.rst`): QEMU `-kernel` recognises it and boots the flat image
//! like a Linux kernel, directly at EL1 without a hypervisor, with the DTB address in `x0` — the
//! same contract as Bulkhead's. Its two code words are real instructions: the first reads the
//! physical counter (`CNTPCT_EL0`, kept for [`first_instruction_count`]), the second jumps over
//! the rest of the header. `_start` then
//!
//! 1. keeps `x0` and that count in callee-saved registers,
//! 2. enables FP/SIMD at EL1 (`CPACR_EL1.FPEN = 0b11`): the target lets the compiler use NEON
//!    registers, e.g. for copies and formatting,
//! 3. points `SP` (`SP_EL1`) at the top of the 64 KiB boot stack reserved by `guest.ld`,
//! 4. zeroes `.bss` (16-byte aligned at both ends by the linker script),
//! 5. calls [`rt_start`] with the DTB address and the count.
//!
//! [`rt_start`] installs the exception vectors, parses the DT, selects the console, sets up the
//! GIC for this vCPU (with the virtual timer's interrupt enabled, for sleeping) and calls the
//! function the binary named with [`entry!`](crate::entry).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::console::{self, Console};
use crate::dt::GuestDt;

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    mrs     x20, cntpct_el0         // code0: the physical count at the first instruction
    b       0f                      // code1
    .quad   __bulkhead_text_offset  // text_offset (guest.ld: link address modulo 2 MiB)
    .quad   __bulkhead_image_size   // image_size, .bss and boot stack included
    .quad   0x2                     // flags: little-endian, 4 KiB pages, 2 MiB-aligned base
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5
0:
    mov     x19, x0

    mov     x1, #(0x3 << 20)
    msr     cpacr_el1, x1
    isb

    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1

    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:
    cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    mov     x0, x19
    mov     x1, x20
    bl      {rt_start}
3:
    wfi
    b       3b
    .size _start, . - _start
    "#,
    rt_start = sym rt_start,
);

unsafe extern "Rust" {
    /// Defined by the guest binary through [`entry!`](crate::entry).
    fn __bulkhead_guest_main(dt: GuestDt) -> !;
}

/// `CNTPCT_EL0` as read by the image's first instruction (0 until `rt_start` stores it).
static FIRST_INSTRUCTION_COUNT: AtomicU64 = AtomicU64::new(0);

/// The physical counter (`CNTPCT_EL0`) as read by the very first instruction of the image. On
/// QEMU the physical counter starts at 0 when the machine starts, so this is the time from reset
/// to the guest's first instruction, in counter ticks
/// ([`counter_frequency`](crate::counter_frequency) per second).
pub fn first_instruction_count() -> u64 {
    FIRST_INSTRUCTION_COUNT.load(Ordering::Relaxed)
}

/// First Rust code to run: called by `_start` once the stack and `.bss` are ready.
///
/// Without a usable device tree the guest cannot even find its console, so it powers off.
extern "C" fn rt_start(dtb_addr: usize, first_count: u64) -> ! {
    FIRST_INSTRUCTION_COUNT.store(first_count, Ordering::Relaxed);
    crate::exception::install_vectors();

    // SAFETY: the boot contract puts the DTB address in x0, inside the partition's memory, and
    // the hypervisor never changes the DTB afterwards; 0 or garbage is rejected by the header
    // check before anything beyond 8 bytes is read.
    let Some(dt) = (unsafe { GuestDt::from_addr(dtb_addr) }) else {
        crate::power_off()
    };
    if let Some(base) = dt.console_base() {
        // SAFETY: the DT names this PL011 as the partition's console; with the MMU off its
        // guest-physical address is directly accessible, and nothing else uses it as memory.
        console::set_global(unsafe { Console::new(base) });
    }
    if crate::gic::init(&dt) {
        crate::gic::init_this_vcpu();
        crate::gic::enable_private(crate::gic::VTIMER_INTID);
    }

    // SAFETY: `entry!` defines this symbol with exactly this signature; a binary without it
    // fails to link rather than calling something else.
    unsafe { __bulkhead_guest_main(dt) }
}
