//! The EL2 physical timer (CNTHP), the hypervisor's own one-shot timer. Only the console uses it
//! today: to show a partition's unfinished line (a prompt) if it is still unfinished a moment
//! after it started.

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTHP_CTL_EL2};
use core::arch::asm;

/// The EL2 physical timer's PPI.
pub const HYP_TIMER_PPI: u32 = 26;

/// Fires `HYP_TIMER_PPI` on this core once, `ms` milliseconds from now (re-arming moves it).
pub fn arm_ms(ms: u64) {
    let ticks = CNTFRQ_EL0.get() * ms / 1000;
    // SAFETY: CNTHP_TVAL_EL2 only sets when this core's EL2 timer fires.
    unsafe { asm!("msr cnthp_tval_el2, {0}", in(reg) ticks.min(u64::from(u32::MAX))) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stops this core's EL2 timer (and lowers its interrupt).
pub fn cancel() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
}
