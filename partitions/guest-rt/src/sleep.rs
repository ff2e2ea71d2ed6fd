//! Sleeping until a point in time: the EL1 virtual timer and the GICv3, so a waiting guest
//! idles in `wfi` instead of spinning (on QEMU, an idle vCPU leaves its host core to others).
//!
//! The runtime enables only the virtual timer interrupt (PPI 27, see [`crate::gic`]); sleeping
//! keeps interrupts masked at the CPU: `wfi` wakes when the interrupt is pending, and the guest
//! acknowledges it by hand (with every other pending interrupt, so do not mix sleeping with
//! interrupts the guest handles itself on the same vCPU). Without a GIC in the device tree,
//! sleeping falls back to spinning on the counter.

use aarch64_cpu::registers::{Readable, Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};

use crate::cpu::counter_ticks;
use crate::gic;

/// Waits until the virtual counter reaches `due`.
pub fn sleep_until(due: u64) {
    if !gic::is_present() {
        while counter_ticks() < due {
            core::hint::spin_loop();
        }
        return;
    }
    CNTV_CVAL_EL0.set(due);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    while !CNTV_CTL_EL0.is_set(CNTV_CTL_EL0::ISTATUS) {
        aarch64_cpu::asm::wfi();
    }
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    // Acknowledge and end every pending interrupt (normally only the timer's).
    while let Some(intid) = gic::acknowledge() {
        gic::end(intid);
    }
}
