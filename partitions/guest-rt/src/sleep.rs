//! Sleeping until a point in time or an interrupt: the EL1 virtual timer and the GICv3, so a
//! waiting guest idles in `wfi` instead of spinning (on QEMU, an idle vCPU leaves its host core
//! to others).
//!
//! The guest enables the virtual timer interrupt (PPI 27) and, on request ([`enable_spi`]),
//! SPIs such as a channel's doorbell, but never unmasks interrupts at the CPU: `wfi` wakes when
//! one is pending, and the guest acknowledges it by hand ([`wait_for_interrupt`]). Without a GIC
//! in the device tree, sleeping falls back to spinning on the counter.

use aarch64_cpu::registers::{Readable, Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tock_registers::interfaces::ReadWriteable;
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

use crate::cpu::counter_ticks;
use crate::dt::GuestDt;

/// The EL1 virtual timer's interrupt.
const VTIMER_INTID: u32 = 27;
/// INTIDs from here up are special (no interrupt pending).
const SPECIAL_INTID: u32 = 1020;
/// Distance between two vCPUs' redistributors (RD_base + SGI_base frames).
const GICR_STRIDE: usize = 0x2_0000;

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
        (0x004 => _reserved0),
        /// `GICD_IGROUPR<n>`: a 1 puts INTID 32n + bit in Group 1.
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        /// `GICD_ISENABLER<n>`: a 1 enables INTID 32n + bit.
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => _reserved1),
        /// `GICD_ICFGR<n>`: two bits per INTID (16n + i), bit 1 set = edge-triggered.
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => @END),
    }
}

register_structs! {
    Gicr {
        (0x00000 => _rd0),
        (0x00014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x00018 => _rd1),
        (0x10080 => igroupr0: ReadWrite<u32>),
        (0x10084 => _sgi0),
        (0x10100 => isenabler0: ReadWrite<u32>),
        (0x10104 => @END),
    }
}

static GIC_READY: AtomicBool = AtomicBool::new(false);
/// The distributor's base address once [`init`] found one (0: none).
static GICD_BASE: AtomicUsize = AtomicUsize::new(0);

/// Sets up the virtual timer's interrupt on this vCPU, if the device tree has a GICv3.
pub fn init(dt: &GuestDt) {
    let Some((gicd, gicr)) = dt.gic_v3() else {
        return;
    };
    let gicr = gicr + crate::cpu::vcpu_id() * GICR_STRIDE;
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
    // Group 1, the group this guest takes (the hypervisor's virtual GIC resets interrupts to
    // Group 1 already; a GIC without security extensions, as on bare QEMU, to Group 0).
    gicr.igroupr0.set(gicr.igroupr0.get() | 1 << VTIMER_INTID);
    gicr.isenabler0.set(1 << VTIMER_INTID);
    GICD_BASE.store(gicd as *const Gicd as usize, Ordering::Release);
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

/// Enables shared peripheral interrupt `intid` (32..1019) at the distributor, edge- or
/// level-triggered. It is routed to vCPU 0 (the distributor's reset routing). Returns `false`
/// if there is no GIC or `intid` is not an SPI.
pub fn enable_spi(intid: u32, edge: bool) -> bool {
    let base = GICD_BASE.load(Ordering::Acquire);
    if base == 0 || !(32..1020).contains(&intid) {
        return false;
    }
    // SAFETY: `init` stored the base of the distributor the device tree names; the MMU is off,
    // so its guest-physical address is used directly.
    let gicd = unsafe { &*(base as *const Gicd) };
    let (n, shift) = ((intid / 16) as usize, (intid % 16) * 2 + 1);
    let cfg = gicd.icfgr[n].get();
    gicd.icfgr[n].set(if edge {
        cfg | 1 << shift
    } else {
        cfg & !(1 << shift)
    });
    let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
    gicd.igroupr[word].set(gicd.igroupr[word].get() | bit);
    gicd.isenabler[word].set(bit);
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
    if !GIC_READY.load(Ordering::Acquire) {
        while counter_ticks() < due {
            core::hint::spin_loop();
        }
        return Wake::Timeout;
    }
    CNTV_CVAL_EL0.set(due);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::wfi();
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    let other = acknowledge_all();
    if other {
        Wake::Interrupt
    } else if counter_ticks() >= due {
        Wake::Timeout
    } else {
        Wake::Spurious
    }
}

/// Acknowledges and ends every interrupt pending at the CPU interface; returns whether one of
/// them was not the timer's.
fn acknowledge_all() -> bool {
    let mut other = false;
    loop {
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the highest-priority pending interrupt.
        unsafe { asm!("mrs {0}, icc_iar1_el1", out(reg) intid) };
        if intid as u32 >= SPECIAL_INTID {
            return other;
        }
        other |= intid as u32 != VTIMER_INTID;
        // SAFETY: ends (and deactivates) the interrupt just acknowledged.
        unsafe { asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) intid) };
    }
}
