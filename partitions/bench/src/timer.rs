//! Virtual timer interrupt latency: the guest programs `CNTV_CVAL_EL0` a random 50-150 µs ahead
//! and measures (virtual count when the interrupt is seen − the compare value), either polling
//! `ISR_EL1` with IRQs masked (`timer-poll`, the figure the icount runs turn into instructions)
//! or taking the interrupt in an IRQ handler whose vector reads the counter (`timer-irq`).
//!
//! Natively the timer's PPI goes straight from QEMU's GIC to the CPU; in a partition the
//! physical PPI traps to the hypervisor, which injects it as a virtual interrupt through a list
//! register, so the difference is the hypervisor's interrupt injection path.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use bulkhead_guest_rt::gic::{self, VTIMER_INTID};
use bulkhead_guest_rt::{counter_frequency, counter_ticks, irq};
use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

use crate::samples::{Rng, Samples, WARMUP};
use crate::stats::ns_to_ticks;

register_bitfields! {u64,
    /// Interrupt Status Register: which interrupts are pending at the CPU (the virtual ones
    /// in a partition).
    ISR_EL1 [
        /// An IRQ is pending.
        I OFFSET(7) NUMBITS(1) [],
    ],
}

/// Shortest delay from programming the timer to its compare value.
const MIN_DELAY_NS: u64 = 50_000;
/// Random extra delay, so samples do not lock to any periodic activity of the host.
const DELAY_SPREAD_NS: u64 = 100_000;
/// Polls of `ISR_EL1` before giving up (about a second under TCG).
const MAX_POLLS: u64 = 1 << 28;

/// Set by the handler when the timer interrupt was taken.
static FIRED: AtomicBool = AtomicBool::new(false);
/// The virtual count at the vector, for the last timer interrupt taken.
static TAKEN_AT: AtomicU64 = AtomicU64::new(0);

fn isr() -> LocalRegisterCopy<u64, ISR_EL1::Register> {
    let value: u64;
    // SAFETY: reading ISR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {0}, isr_el1", out(reg) value, options(nomem, nostack)) };
    LocalRegisterCopy::new(value)
}

/// Programs the timer to fire a random delay from now and returns its compare value.
fn arm(rng: &mut Rng) -> u64 {
    let frequency = counter_frequency();
    let delay = rng.between(
        ns_to_ticks(MIN_DELAY_NS, frequency),
        ns_to_ticks(DELAY_SPREAD_NS, frequency),
    );
    let compare = counter_ticks() + delay;
    CNTV_CVAL_EL0.set(compare);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    compare
}

/// Stops the timer, which lowers its interrupt.
fn disarm() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}

/// `timer-poll`: IRQs masked, spin on `ISR_EL1.I`.
pub fn poll(samples: &mut Samples, n: usize) {
    irq::mask();
    let mut rng = Rng::new(0x7131);
    samples.measure("timer-poll", n, WARMUP, || {
        let compare = arm(&mut rng);
        let mut polls = MAX_POLLS;
        while !isr().is_set(ISR_EL1::I) {
            polls -= 1;
            if polls == 0 {
                disarm();
                return Err("no timer interrupt pending after 2^28 polls");
            }
        }
        let seen = counter_ticks();
        let intid = gic::acknowledge();
        disarm();
        if let Some(intid) = intid {
            gic::end(intid);
        }
        match intid {
            Some(VTIMER_INTID) => Ok(seen.saturating_sub(compare)),
            _ => Err("the pending interrupt was not the virtual timer's"),
        }
    });
}

/// `timer-irq`: IRQs unmasked, spin until the handler has run.
pub fn irq(samples: &mut Samples, n: usize) {
    irq::set_handler(on_irq);
    let mut rng = Rng::new(0x7132);
    let second = counter_frequency();
    samples.measure("timer-irq", n, WARMUP, || {
        FIRED.store(false, Ordering::Relaxed);
        let compare = arm(&mut rng);
        irq::unmask();
        let give_up = compare + second;
        while !FIRED.load(Ordering::Acquire) {
            if counter_ticks() > give_up {
                irq::mask();
                disarm();
                return Err("no timer interrupt taken within a second");
            }
        }
        irq::mask();
        Ok(TAKEN_AT.load(Ordering::Relaxed).saturating_sub(compare))
    });
}

/// The IRQ handler during `timer-irq`.
fn on_irq(count: u64) {
    if let Some(intid) = gic::acknowledge() {
        if intid == VTIMER_INTID {
            disarm();
            TAKEN_AT.store(count, Ordering::Relaxed);
            FIRED.store(true, Ordering::Release);
        }
        gic::end(intid);
    }
}
