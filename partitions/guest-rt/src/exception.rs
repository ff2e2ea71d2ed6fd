//! The EL1 exception vectors.
//!
//! Guests expect no exceptions but the IRQs they ask for (see [`crate::irq`]). Should another
//! one happen anyway (a bug, or an abort the hypervisor injects, e.g. after a stage-2 fault),
//! report it with the syndrome registers instead of jumping through an uninitialised
//! `VBAR_EL1`, then power off.

use aarch64_cpu::registers::{Readable, Writeable, ELR_EL1, ESR_EL1, FAR_EL1, SPSR_EL1, VBAR_EL1};

/// Index of the vector table entry for IRQs taken from EL1 with `SP_EL1`.
pub(crate) const IRQ_CURRENT_SPX: u64 = 5;

// The table: 16 entries of 0x80 bytes, 2 KiB aligned. Entry 5 (IRQ, current EL with SP_ELx)
// pushes x0/x1, reads the virtual counter into x0 and continues in the IRQ entry of
// `crate::irq`; every other entry passes its index to the Rust handler of unexpected exceptions.
// SP stays SP_EL1 (all exceptions are taken to EL1h).
core::arch::global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 0x800
    .global __bulkhead_vectors
__bulkhead_vectors:
    .irp index, 0, 1, 2, 3, 4
    .balign 0x80
    mov     x0, #\index
    b       {handler}
    .endr

    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, cntvct_el0
    b       __bulkhead_irq_entry

    .irp index, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    mov     x0, #\index
    b       {handler}
    .endr
    "#,
    handler = sym unexpected_exception,
);

unsafe extern "C" {
    /// Start of the vector table defined above.
    static __bulkhead_vectors: u8;
}

/// Points `VBAR_EL1` at the catch-all vector table.
pub(crate) fn install_vectors() {
    let table = &raw const __bulkhead_vectors;
    VBAR_EL1.set(table as u64);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Vector table group names, by entry index / 4.
const GROUPS: [&str; 4] = [
    "current EL with SP_EL0",
    "current EL with SP_ELx",
    "lower EL, AArch64",
    "lower EL, AArch32",
];
/// Exception types, by entry index % 4.
const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// Reports an exception that guests never expect and powers off.
pub(crate) extern "C" fn unexpected_exception(index: u64) -> ! {
    let index = (index & 0xf) as usize;
    crate::println!(
        "\nguest: unexpected {} exception from {}: ESR_EL1 {:#x} FAR_EL1 {:#x} ELR_EL1 {:#x} \
         SPSR_EL1 {:#x}",
        KINDS[index % 4],
        GROUPS[index / 4],
        ESR_EL1.get(),
        FAR_EL1.get(),
        ELR_EL1.get(),
        SPSR_EL1.get(),
    );
    crate::power_off()
}
