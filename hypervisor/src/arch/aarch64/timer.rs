//! Time: the physical counter, and the EL2 physical timer (CNTHP), the hypervisor's own
//! one-shot timer (the console uses it to show a partition's prompt a moment after it starts).

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0, CNTP_CTL_EL0, CNTV_CTL_EL0,
};

use super::sysregs::CNTHP_TVAL_EL2;

/// The EL2 physical timer's interrupt (PPI 10).
pub const HYP_TIMER_IRQ: u32 = 26;

/// The physical counter now.
pub fn physical_count() -> u64 {
    // The counter may be read early otherwise.
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// The physical counter, read without a barrier: for statistics, where reading it a few
/// instructions early does not matter.
pub fn timestamp() -> u64 {
    CNTPCT_EL0.get()
}

/// The counter's frequency in Hz.
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Fires [`HYP_TIMER_IRQ`] on this core once, `ms` milliseconds from now (re-arming moves it).
pub fn arm_ms(ms: u64) {
    let ticks = CNTFRQ_EL0.get().saturating_mul(ms) / 1000;
    CNTHP_TVAL_EL2.write(CNTHP_TVAL_EL2::TIMERVALUE.val(ticks.min(u64::from(i32::MAX as u32))));
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stops this core's EL2 timer (and lowers its interrupt).
pub fn cancel() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
}

/// Disables this CPU's guest timers (EL1 virtual and physical), so a restarted vCPU cannot
/// inherit a pending timer interrupt.
pub fn stop_guest_timers() {
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
}
