//! Taking interrupts: the IRQ exception entry and the guest's handler hook.
//!
//! Guests start with interrupts masked, and most never unmask them (sleeping only needs `wfi` to
//! wake). A guest that wants to *take* interrupts registers a handler with [`set_handler`],
//! enables the interrupts it wants at the GIC ([`gic::enable_private`](crate::gic::enable_private))
//! and unmasks IRQs at the CPU with [`unmask`].
//!
//! The vector for IRQs taken from EL1 with `SP_EL1` (the only way a guest runs) saves the
//! caller-saved state the Rust handler may clobber (x0-x18, x29, x30, q0-q7, q16-q31, FPSR,
//! FPCR), calls the handler and returns with `eret`; the handler runs with IRQs masked and must
//! not unmask them. The vector's **second instruction** reads the virtual counter
//! (`CNTVCT_EL0`) and passes it to the handler: the time the interrupt was taken, before any
//! register saving, for guests measuring interrupt latency. The handler acknowledges and ends
//! the interrupt itself ([`gic::acknowledge`](crate::gic::acknowledge),
//! [`gic::end`](crate::gic::end)). Without a handler, an IRQ is reported as unexpected and the
//! partition powers off, as before.
//!
//! The vector table itself is in [`crate::exception`].

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes the IRQ entry saves on the stack (see the layout in the assembly below).
const FRAME_SIZE: usize = 576;

// Called from vector table entry 5 (IRQ, current EL with SP_ELx), which has already pushed
// x0/x1 (the top 16 bytes of the frame) and put CNTVCT_EL0 into x0. Frame layout (bytes from the
// final SP): 0..127 x2..x17 | 128 x18,x29 | 144 x30,FPSR | 160 FPCR,pad | 176 q0..q7 |
// 304 q16..q31 | 560 x0,x1 | 576 end.
global_asm!(
    r#"
    .section .text.irq_entry, "ax"
    .global __bulkhead_irq_entry
    .type __bulkhead_irq_entry, %function
__bulkhead_irq_entry:
    sub     sp, sp, #{below}
    stp     x2, x3, [sp, #0]
    stp     x4, x5, [sp, #16]
    stp     x6, x7, [sp, #32]
    stp     x8, x9, [sp, #48]
    stp     x10, x11, [sp, #64]
    stp     x12, x13, [sp, #80]
    stp     x14, x15, [sp, #96]
    stp     x16, x17, [sp, #112]
    stp     x18, x29, [sp, #128]
    mrs     x1, fpsr
    stp     x30, x1, [sp, #144]
    mrs     x1, fpcr
    str     x1, [sp, #160]
    stp     q0, q1, [sp, #176]
    stp     q2, q3, [sp, #208]
    stp     q4, q5, [sp, #240]
    stp     q6, q7, [sp, #272]
    stp     q16, q17, [sp, #304]
    stp     q18, q19, [sp, #336]
    stp     q20, q21, [sp, #368]
    stp     q22, q23, [sp, #400]
    stp     q24, q25, [sp, #432]
    stp     q26, q27, [sp, #464]
    stp     q28, q29, [sp, #496]
    stp     q30, q31, [sp, #528]

    bl      {dispatch}

    ldp     q30, q31, [sp, #528]
    ldp     q28, q29, [sp, #496]
    ldp     q26, q27, [sp, #464]
    ldp     q24, q25, [sp, #432]
    ldp     q22, q23, [sp, #400]
    ldp     q20, q21, [sp, #368]
    ldp     q18, q19, [sp, #336]
    ldp     q16, q17, [sp, #304]
    ldp     q6, q7, [sp, #272]
    ldp     q4, q5, [sp, #240]
    ldp     q2, q3, [sp, #208]
    ldp     q0, q1, [sp, #176]
    ldr     x1, [sp, #160]
    msr     fpcr, x1
    ldp     x30, x1, [sp, #144]
    msr     fpsr, x1
    ldp     x18, x29, [sp, #128]
    ldp     x16, x17, [sp, #112]
    ldp     x14, x15, [sp, #96]
    ldp     x12, x13, [sp, #80]
    ldp     x10, x11, [sp, #64]
    ldp     x8, x9, [sp, #48]
    ldp     x6, x7, [sp, #32]
    ldp     x4, x5, [sp, #16]
    ldp     x2, x3, [sp, #0]
    add     sp, sp, #{below}
    ldp     x0, x1, [sp], #16
    eret
    .size __bulkhead_irq_entry, . - __bulkhead_irq_entry
    "#,
    dispatch = sym dispatch,
    below = const FRAME_SIZE - 16,
);

/// The registered handler as a `fn(u64)` address, 0 for none.
static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Makes `handler` the function every IRQ calls, with the virtual count at which the IRQ was
/// taken. It runs with IRQs masked, on the interrupted vCPU's stack, and must acknowledge and
/// end the interrupt it handles. One handler serves all vCPUs (it can ask
/// [`vcpu_id`](crate::vcpu_id)).
pub fn set_handler(handler: fn(u64)) {
    HANDLER.store(handler as *const () as usize, Ordering::Release);
}

/// Unmasks IRQs at the CPU (`PSTATE.I` = 0): pending enabled interrupts are taken.
pub fn unmask() {
    // SAFETY: clearing DAIF.I only lets IRQs be taken; the vector table handles them.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Masks IRQs at the CPU (`PSTATE.I` = 1).
pub fn mask() {
    // SAFETY: setting DAIF.I only stops IRQs from being taken.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Called by the IRQ entry with the virtual count read at the vector.
extern "C" fn dispatch(count: u64) {
    match HANDLER.load(Ordering::Acquire) {
        0 => crate::exception::unexpected_exception(crate::exception::IRQ_CURRENT_SPX),
        address => {
            // SAFETY: only `set_handler` stores a non-zero value, and it takes it from a
            // `fn(u64)`.
            let handler = unsafe { core::mem::transmute::<usize, fn(u64)>(address) };
            handler(count)
        }
    }
}
