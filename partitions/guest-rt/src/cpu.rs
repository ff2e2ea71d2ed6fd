//! Processor services for the guest: vCPU identity (`MPIDR_EL1`), the virtual and physical
//! counters, and power-off and reset through PSCI over HVC (the conduit Bulkhead's DT advertises in `/psci`,
//! and the one QEMU provides to a guest it boots at EL1 without EL2).

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0, CNTVCT_EL0, MPIDR_EL1};
use smccc::psci;
use smccc::Hvc;

/// The raw `MPIDR_EL1` value of the calling vCPU.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get()
}

/// The calling vCPU's number: `MPIDR_EL1.Aff0`, which equals the `reg` of its `/cpus/cpu@N` node.
pub fn vcpu_id() -> usize {
    (mpidr() & 0xff) as usize
}

/// The virtual counter's frequency in Hz (`CNTFRQ_EL0`).
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The current virtual counter value (`CNTVCT_EL0`), read after an ISB so that it is not
/// sampled ahead of preceding instructions.
pub fn counter_ticks() -> u64 {
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// The current physical counter value (`CNTPCT_EL0`), read after an ISB. Bulkhead lets EL1 read
/// it (`CNTHCTL_EL2.EL1PCTEN`); unlike the virtual counter it is not offset per partition, so on
/// QEMU it counts from the machine's reset.
pub fn physical_counter_ticks() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Busy-waits for at least `ms` milliseconds using the virtual counter (no interrupts needed).
pub fn delay_ms(ms: u64) {
    let frequency = counter_frequency();
    let ticks = u128::from(frequency) * u128::from(ms) / 1000;
    let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
    let start = counter_ticks();
    while counter_ticks().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// Turns the partition off with PSCI `SYSTEM_OFF`. Should the call return (it must not), waits
/// for interrupts forever.
pub fn power_off() -> ! {
    // The result is irrelevant: on success the call does not return.
    let _ = psci::system_off::<Hvc>();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// Restarts the partition with PSCI `SYSTEM_RESET` (Bulkhead reloads and restarts this
/// partition alone). Should the call return (it must not), waits for interrupts forever.
pub fn reset() -> ! {
    // The result is irrelevant: on success the call does not return.
    let _ = psci::system_reset::<Hvc>();
    loop {
        aarch64_cpu::asm::wfi();
    }
}
