//! Sleeping until a point in time: the EL1 virtual timer and the GICv3, so a waiting guest
//! idles in `wfi` instead of spinning (on QEMU, an idle vCPU leaves its host core to others).
//!
//! The runtime enables only the virtual timer interrupt (PPI 27, see [`crate::gic`]); sleeping
//! keeps interrupts masked at the CPU: `wfi` wakes when the interrupt is pending, and the guest
//! acknowledges it by hand (with every other pending interrupt, so do not mix sleeping with
//! interrupts the guest handles itself on the same vCPU). Without a GIC in the device tree,
//! sleeping falls back to spinning on the counter.
//!
//! A guest that waits for an SPI (a channel's doorbell) enables it with [`enable_spi`] and waits
//! with [`wait_for_interrupt`], which wakes on it or at a deadline.

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

/// Enables shared peripheral interrupt `intid` (32..1019), edge-triggered or level-sensitive,
/// routed to this vCPU. Returns `false` if there is no GIC or `intid` is not an SPI.
pub fn enable_spi(intid: u32, edge: bool) -> bool {
    if !gic::is_present() || !(32..1020).contains(&intid) {
        return false;
    }
    gic::set_edge_triggered(intid, edge);
    gic::enable_spi(intid, crate::cpu::mpidr());
    true
}

/// Why [`wait_for_interrupt`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// An interrupt other than the timer's was taken (and acknowledged).
    Interrupt,
    /// `due` passed.
    Timeout,
    /// Neither (a spurious wake-up): look again.
    Spurious,
}

/// Waits (in `wfi`) until an enabled interrupt is pending or the virtual counter reaches `due`,
/// then acknowledges every pending interrupt. An interrupt that became pending after the last
/// call is never missed: it keeps `wfi` from sleeping. Without a GIC this spins until `due`.
pub fn wait_for_interrupt(due: u64) -> Wake {
    if !gic::is_present() {
        while counter_ticks() < due {
            core::hint::spin_loop();
        }
        return Wake::Timeout;
    }
    CNTV_CVAL_EL0.set(due);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::wfi();
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    let mut other = false;
    while let Some(intid) = gic::acknowledge() {
        other |= intid != gic::VTIMER_INTID;
        gic::end(intid);
    }
    if other {
        Wake::Interrupt
    } else if counter_ticks() >= due {
        Wake::Timeout
    } else {
        Wake::Spurious
    }
}
