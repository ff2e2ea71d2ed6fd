//! The GICv3 virtual CPU interface control registers (`ICH_*_EL2`) and the physical CPU
//! interface operations the virtual GIC needs beyond `arm-gic`: split priority drop and
//! deactivation, so an interrupt forwarded to a guest with the list register's HW bit is
//! deactivated by the guest's own EOI. List registers go in and out in their `ICH_LR<n>_EL2`
//! encoding; `crate::vgic::ich_lr` translates.

use aarch64_cpu::registers::{
    Readable, Writeable, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR10_EL2,
    ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_LR1_EL2, ICH_LR2_EL2,
    ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
    ICH_VMCR_EL2, ICH_VTR_EL2,
};
use core::sync::atomic::{AtomicBool, Ordering};
use tock_registers::interfaces::ReadWriteable;

use super::cpu::MAX_CPUS;
use super::sysregs::{ICC_CTLR_EL1, ICC_DIR_EL1, ICH_ELRSR_EL2};

/// Most list registers the architecture has.
pub const MAX_LRS: usize = 16;

/// Number of list registers this CPU implements.
pub fn lr_count() -> usize {
    ((ICH_VTR_EL2.get() & 0x1f) as usize + 1).min(MAX_LRS)
}

/// A list register that holds no interrupt, if any (`ICH_ELRSR_EL2`, whose bits for list
/// registers the CPU does not have read as zero).
pub fn free_lr() -> Option<usize> {
    let free = ICH_ELRSR_EL2.get() & 0xffff;
    (free != 0).then(|| free.trailing_zeros() as usize)
}

/// Reads list register `n` (0 for a register the CPU does not have).
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        15 => ICH_LR15_EL2.get(),
        _ => 0,
    }
}

/// Writes list register `n` (ignored for a register the CPU does not have).
pub fn write_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        15 => ICH_LR15_EL2.set(value),
        _ => {}
    }
}

/// Resets the virtual CPU interface for a vCPU that starts from scratch: no list register in
/// use, no active priorities, guest's virtual PMR and enables cleared, interface enabled.
pub fn reset() {
    for n in 0..lr_count() {
        write_lr(n, 0);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    if let Some(state) = UNDERFLOW_IRQ.get(super::cpu::id().index()) {
        state.store(false, Ordering::Relaxed);
    }
}

/// Turns the virtual CPU interface off for a `direct-interrupts` vCPU, which uses the physical
/// one: no list register in use, no active priorities, `ICH_HCR_EL2.En` = 0 (no maintenance
/// interrupt either). `ICH_VMCR_EL2` is cleared too: the guest's accesses to the registers
/// common to both groups (`ICC_PMR_EL1`, `ICC_CTLR_EL1`, ...) land there while `HCR_EL2.FMO` = 1.
pub fn turn_off() {
    for n in 0..lr_count() {
        write_lr(n, 0);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.set(0);
    if let Some(state) = UNDERFLOW_IRQ.get(super::cpu::id().index()) {
        state.store(false, Ordering::Relaxed);
    }
}

/// Whether each CPU has the underflow interrupt on, so the common case (off, staying off) costs
/// no access to `ICH_HCR_EL2` (under QEMU, every GIC system-register access takes a global lock).
static UNDERFLOW_IRQ: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Turns the underflow maintenance interrupt on or off.
pub fn set_underflow_irq(on: bool) {
    let Some(state) = UNDERFLOW_IRQ.get(super::cpu::id().index()) else {
        return;
    };
    if state.swap(on, Ordering::Relaxed) == on {
        return;
    }
    ICH_HCR_EL2.modify(if on {
        ICH_HCR_EL2::UIE::SET
    } else {
        ICH_HCR_EL2::UIE::CLEAR
    });
}

/// Makes EL2's end-of-interrupt a priority drop only (`ICC_CTLR_EL1.EOImode` = 1), so that
/// deactivation is separate: [`deactivate`] for interrupts EL2 handles itself, the guest's EOI
/// for interrupts forwarded with the HW bit.
pub fn split_eoi() {
    ICC_CTLR_EL1.modify(ICC_CTLR_EL1::EOIMODE::SET);
}

/// Deactivates physical interrupt `intid` (`ICC_DIR_EL1`).
pub fn deactivate(intid: u32) {
    ICC_DIR_EL1.set(u64::from(intid));
}
