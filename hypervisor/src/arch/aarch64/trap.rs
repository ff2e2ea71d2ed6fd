//! The exception handlers the vectors call, and what each CPU does between guest runs.
//!
//! Each handler reads the syndrome registers once, decodes them into an [`Exit`], hands it to the
//! runtime ([`System::handle_exit`](crate::runtime::System::handle_exit)) and carries out the
//! answer: return to the guest (the vector restores the frame and `eret`s), idle, or power off.
//! Policy lives in the runtime; nothing here decides anything about a guest.

use aarch64_cpu::registers::{Readable, ESR_EL2, FAR_EL2, HPFAR_EL2};

use super::boot::{power_off, system};
use super::{cpu, vcpu};
use crate::esr::ExceptionClass;
use crate::exit::{Exit, Unhandled};
use crate::frame::TrapFrame;
use crate::runtime::Continue;

/// Runs this CPU's vCPU whenever it has something to run, and otherwise waits for interrupts.
/// Never returns; called at boot and whenever the vCPU stops running.
pub fn run_this_cpu() -> ! {
    let sys = system();
    let me = cpu::id();
    sys.left_guest(me);
    loop {
        if let Some(start) = sys.next_vcpu_start(me) {
            vcpu::enter_vcpu(&start);
        }
        // Wait for a kick or console input with interrupts unmasked, then look again. A
        // direct-interrupt partition's core waits for FIQs only (its kick and timer): its
        // IRQs are the guest's, left pending for it.
        if sys.hw.gic.is_direct(me) {
            // SAFETY: unmasking FIQs at EL2 only while idle: handlers run on this stack and
            // return here.
            unsafe { core::arch::asm!("msr daifclr, #1", "wfi", "msr daifset, #1") };
        } else {
            // SAFETY: unmasking IRQs at EL2 only while idle: handlers run on this stack and
            // return here.
            unsafe { core::arch::asm!("msr daifclr, #2", "wfi", "msr daifset, #2") };
        }
    }
}

/// Does what the runtime said.
#[inline(always)]
fn carry_out(next: Continue) {
    match next {
        Continue::Guest => {}
        Continue::Idle => run_this_cpu(),
        Continue::PowerOff => power_off(),
    }
}

/// Synchronous exception from a guest.
pub extern "C" fn lower_sync(frame: &mut TrapFrame) {
    let exit = Exit::decode(ESR_EL2.get(), FAR_EL2.get(), HPFAR_EL2.get());
    carry_out(system().handle_exit(cpu::id(), frame, exit));
}

/// Physical interrupt while a guest ran (the vector saved only what a call may change: this
/// takes no frame).
pub extern "C" fn lower_irq() {
    carry_out(system().handle_irq_exit(cpu::id()));
}

/// FIQ while a guest ran: on a direct-interrupt partition's core, one of the hypervisor's own
/// interrupts (saved like [`lower_irq`]).
pub extern "C" fn lower_fiq() {
    carry_out(system().handle_fiq_exit(cpu::id()));
}

/// SError or an AArch32 exception from a guest: its partition cannot be served.
pub extern "C" fn lower_fault(frame: &mut TrapFrame) {
    let exit = Exit::Unhandled(Unhandled {
        esr: ESR_EL2.get(),
        far: FAR_EL2.get(),
    });
    carry_out(system().handle_exit(cpu::id(), frame, exit));
}

/// Physical interrupt while this CPU idled at EL2.
pub extern "C" fn el2_irq(_frame: &mut TrapFrame) {
    system().handle_irqs(cpu::id());
}

/// FIQ while this CPU idled at EL2 (a direct-interrupt partition's core).
pub extern "C" fn el2_fiq(_frame: &mut TrapFrame) {
    system().handle_fiqs(cpu::id());
}

/// An exception taken from EL2 itself: a hypervisor bug. Report everything and stop.
pub extern "C" fn el2_fault(frame: &mut TrapFrame) {
    let esr = ESR_EL2.get();
    panic!(
        "exception in the hypervisor: {} (ESR {esr:#x}, FAR {:#x}, ELR {:#x}) on CPU {}",
        ExceptionClass::from_esr(esr).name(),
        FAR_EL2.get(),
        frame.elr,
        cpu::id()
    );
}
