//! Sleeping until a point in time: the EL1 virtual timer and the GICv3, so a waiting guest
//! idles in `wfi` instead of spinning (on QEMU, an idle vCPU leaves its host core to others).
//!
//! The guest routes only the virtual timer interrupt (PPI 27) and never unmasks interrupts at
//! the CPU: `wfi` wakes when the interrupt is pending, and the guest acknowledges it by hand.
//! Without a GIC in the device tree, sleeping falls back to spinning on the counter.

use aarch64_cpu::registers::{Readable, Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use tock_registers::interfaces::ReadWriteable;
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

use crate::cpu::counter_ticks;
use crate::dt::GuestDt;

use bulkhead_config::guest_view::{GICR_STRIDE, VTIMER_PPI as VTIMER_INTID};

/// INTIDs from here up are special (no interrupt pending).
const SPECIAL_INTID: u32 = 1020;

register_bitfields! {u32,
    GICD_CTLR [
        ENABLE_GRP1A OFFSET(1) NUMBITS(1) [],
        ARE_NS OFFSET(4) NUMBITS(1) [],
    ],
    GICR_WAKER [
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) [],
    ],
}

register_structs! {
    Gicd {
        (0x000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => @END),
    }
}

register_structs! {
    Gicr {
        (0x00000 => _rd0),
        (0x00014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x00018 => _rd1),
        (0x10100 => isenabler0: ReadWrite<u32>),
        (0x10104 => @END),
    }
}

static GIC_READY: AtomicBool = AtomicBool::new(false);

/// Sets up the virtual timer's interrupt on this vCPU, if the device tree has a GICv3.
pub fn init(dt: &GuestDt) {
    let Some((gicd, gicr)) = dt.gic_v3() else {
        return;
    };
    let gicr = gicr + crate::cpu::vcpu_id() * GICR_STRIDE as usize;
    // SAFETY: the device tree names these as the GIC distributor and this vCPU's redistributor;
    // the MMU is off, so their guest-physical addresses are used directly, and nothing else in
    // this guest touches them.
    let (gicd, gicr) = unsafe { (&*(gicd as *const Gicd), &*(gicr as *const Gicr)) };
    gicd.ctlr
        .modify(GICD_CTLR::ARE_NS::SET + GICD_CTLR::ENABLE_GRP1A::SET);
    gicr.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
    while gicr.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
        core::hint::spin_loop();
    }
    gicr.isenabler0.set(1 << VTIMER_INTID);
    // SAFETY: enables this CPU's GIC system-register interface, unmasks all priorities and
    // enables Group 1 interrupts at the CPU interface; PSTATE.I stays masked, so no interrupt is
    // ever taken, they only wake `wfi`.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
        );
    }
    GIC_READY.store(true, Ordering::Release);
}

/// Waits until the virtual counter reaches `due`.
pub fn sleep_until(due: u64) {
    if !GIC_READY.load(Ordering::Acquire) {
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
    acknowledge_all();
}

/// Acknowledges and ends every interrupt pending at the CPU interface (only the timer's can be).
fn acknowledge_all() {
    loop {
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the highest-priority pending interrupt.
        unsafe { asm!("mrs {0}, icc_iar1_el1", out(reg) intid) };
        if intid as u32 >= SPECIAL_INTID {
            return;
        }
        // SAFETY: ends (and deactivates) the interrupt just acknowledged.
        unsafe { asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) intid) };
    }
}
