//! The EL2 exception vector table.
//!
//! Every exception saves x0–x30, ELR_EL2 and SPSR_EL2 in a [`TrapFrame`] on the CPU's EL2 stack
//! and calls a handler of `trap` with it; returning from the handler restores the frame and
//! `eret`s. An interrupt from a guest saves only the registers a call may change (its handler
//! reads none of the guest's): the callee-saved ones stay in the CPU across the handler. The frame's layout is defined once, in `crate::frame`; the assembly takes its size
//! and offsets as `const` operands so the two cannot drift. Guest entry ([`enter`]) loads a
//! frame the same way after resetting the CPU's stack.

use core::arch::global_asm;
use core::mem::{offset_of, size_of};

use crate::frame::TrapFrame;

const FRAME_SIZE: usize = size_of::<TrapFrame>();

global_asm!(
    r#"
.macro SAVE_FRAME
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    str     x30, [sp, #{x30}]
    stp     x0, x1, [sp, #{elr}]
.endm

.macro VECTOR handler
    .balign 0x80
    SAVE_FRAME
    mov     x0, sp
    bl      \handler
    b       restore_frame
.endm

// An interrupt from a guest: the handler (which takes no frame) needs none of the guest's
// registers, so only those a call may change are saved (x0-x18, x29, x30, ELR, SPSR); x19-x28
// survive the call (AAPCS64). The frame's other slots are left as they are.
.macro IRQ_VECTOR handler
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x18, x29, [sp, #{x18}]
    str     x30, [sp, #{x30}]
    stp     x0, x1, [sp, #{elr}]
    bl      \handler
    b       restore_caller_saved
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global el2_vectors
el2_vectors:
    // Current EL with SP_EL0: never used.
    VECTOR {el2_fault}
    VECTOR {el2_fault}
    VECTOR {el2_fault}
    VECTOR {el2_fault}
    // Current EL with SP_ELx: a fault in the hypervisor, or an interrupt while idle (a FIQ:
    // the hypervisor's own interrupts on a direct-interrupt partition's core).
    VECTOR {el2_fault}
    VECTOR {el2_irq}
    VECTOR {el2_fiq}
    VECTOR {el2_fault}
    // Lower EL, AArch64: the guests.
    VECTOR {lower_sync}
    IRQ_VECTOR {lower_irq}
    IRQ_VECTOR {lower_fiq}
    VECTOR {lower_fault}
    // Lower EL, AArch32: guests are AArch64-only (HCR_EL2.RW), so these cannot happen.
    VECTOR {lower_fault}
    VECTOR {lower_fault}
    VECTOR {lower_fault}
    VECTOR {lower_fault}

    .section .text, "ax"
    .global restore_frame
restore_frame:
    ldp     x0, x1, [sp, #{elr}]
    msr     elr_el2, x0
    msr     spsr_el2, x1
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldr     x30, [sp, #{x30}]
    add     sp, sp, #{frame_size}
    eret

restore_caller_saved:
    ldp     x0, x1, [sp, #{elr}]
    msr     elr_el2, x0
    msr     spsr_el2, x1
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x29, [sp, #{x18}]
    ldr     x30, [sp, #{x30}]
    add     sp, sp, #{frame_size}
    eret

    // vcpu_enter(frame: *const TrapFrame, stack_top: usize) -> !: resets this CPU's stack and
    // enters the guest with the registers in `frame`.
    .global vcpu_enter
vcpu_enter:
    mov     sp, x1
    ldp     x2, x3, [x0, #{elr}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #16 * 1]
    ldp     x4, x5, [x0, #16 * 2]
    ldp     x6, x7, [x0, #16 * 3]
    ldp     x8, x9, [x0, #16 * 4]
    ldp     x10, x11, [x0, #16 * 5]
    ldp     x12, x13, [x0, #16 * 6]
    ldp     x14, x15, [x0, #16 * 7]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x18, x19, [x0, #16 * 9]
    ldp     x20, x21, [x0, #16 * 10]
    ldp     x22, x23, [x0, #16 * 11]
    ldp     x24, x25, [x0, #16 * 12]
    ldp     x26, x27, [x0, #16 * 13]
    ldp     x28, x29, [x0, #16 * 14]
    ldr     x30, [x0, #{x30}]
    ldp     x0, x1, [x0, #16 * 0]
    eret
"#,
    frame_size = const FRAME_SIZE,
    x30 = const offset_of!(TrapFrame, x) + 30 * 8,
    x18 = const offset_of!(TrapFrame, x) + 18 * 8,
    elr = const offset_of!(TrapFrame, elr),
    el2_fault = sym super::trap::el2_fault,
    el2_irq = sym super::trap::el2_irq,
    el2_fiq = sym super::trap::el2_fiq,
    lower_sync = sym super::trap::lower_sync,
    lower_irq = sym super::trap::lower_irq,
    lower_fiq = sym super::trap::lower_fiq,
    lower_fault = sym super::trap::lower_fault,
);

unsafe extern "C" {
    static el2_vectors: u8;
    fn vcpu_enter(frame: *const TrapFrame, stack_top: usize) -> !;
}

/// Installs the vector table on this CPU.
pub fn install() {
    use aarch64_cpu::registers::{Writeable, VBAR_EL2};
    // Only the symbol's address is taken.
    VBAR_EL2.set(core::ptr::addr_of!(el2_vectors) as u64);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Drops everything on this CPU's stack and enters the guest with `frame`.
pub fn enter(frame: &TrapFrame) -> ! {
    let top = super::cpu::stack_top(super::cpu::id());
    // SAFETY: `vcpu_enter` reads the whole frame into registers before anything can overwrite
    // it, resets SP to the top of this CPU's own stack (nothing on it is used again: this
    // function does not return) and erets into the guest.
    unsafe { vcpu_enter(frame, top) }
}
