//! The guest's GIC: a GICv3 (the distributor and this vCPU's redistributor through their
//! registers, the CPU interface through its system registers, `ICC_*_EL1`), or on a platform
//! with a GICv2 a GICv2 (distributor and CPU interface through their registers; SGIs, PPIs and
//! their enables banked in the distributor). The device tree says which.
//!
//! The runtime sets it up on every vCPU it starts ([`init_this_vcpu`]): Group 1 enabled at the
//! distributor, the redistributor awake with every SGI and PPI in Group 1, the CPU interface on
//! with all priorities unmasked. Which interrupts are enabled is the guest's choice
//! ([`enable_private`] for SGIs and PPIs, [`enable_spi`] for an SPI such as the console UART's);
//! the runtime itself enables only the virtual timer's PPI, for
//! [`sleep_until`](crate::sleep_until). Interrupts are taken only if the guest unmasks them at the
//! CPU ([`irq::unmask`](crate::irq::unmask)); otherwise they just wake `wfi`.
//!
//! The same code drives QEMU's real GIC (when QEMU boots the guest directly) and Bulkhead's
//! virtual one.

/// The EL1 virtual timer's interrupt (a PPI), as the guest's view defines it.
pub use bulkhead_config::guest_view::VTIMER_PPI as VTIMER_INTID;

/// Encodes an `ICC_SGI1R_EL1` value sending SGI `intid` (0..15) to the one PE whose affinity is
/// `mpidr` (its `Aff3.Aff2.Aff1.Aff0`; other bits are ignored): `TargetList` holds bit
/// `Aff0 % 16`, `RS` is `Aff0 / 16`.
pub fn sgi1r(intid: u32, mpidr: u64) -> u64 {
    let aff0 = mpidr & 0xff;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    (1 << (aff0 % 16))
        | (aff1 << 16)
        | (u64::from(intid & 0xf) << 24)
        | (aff2 << 32)
        | ((aff0 / 16) << 44)
        | (aff3 << 48)
}

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(target_os = "none")]
mod target {
    use core::arch::asm;
    use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};

    use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
    use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
    use tock_registers::{register_bitfields, register_structs};

    use crate::dt::GuestDt;

    /// INTIDs from here up are special (1023: no interrupt pending).
    const SPECIAL_INTID: u32 = 1020;
    /// Distance between two vCPUs' redistributors (RD_base + SGI_base frames).
    const GICR_STRIDE: usize = bulkhead_config::guest_view::GICR_STRIDE as usize;

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
            (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
            (0x0004 => _reserved0),
            (0x0080 => igroupr: [ReadWrite<u32>; 32]),
            (0x0100 => isenabler: [ReadWrite<u32>; 32]),
            (0x0180 => icenabler: [ReadWrite<u32>; 32]),
            (0x0200 => ispendr: [ReadWrite<u32>; 32]),
            (0x0280 => _reserved1),
            (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
            (0x0d00 => _reserved2),
            (0x6000 => irouter: [ReadWrite<u64>; 1020]),
            (0x7fe0 => @END),
        }
    }

    register_structs! {
        /// A GICv2's distributor (4 KiB).
        GicdV2 {
            (0x000 => ctlr: ReadWrite<u32>),
            (0x004 => _reserved0),
            (0x100 => isenabler: [ReadWrite<u32>; 32]),
            (0x180 => icenabler: [ReadWrite<u32>; 32]),
            (0x200 => _reserved1),
            (0x800 => itargetsr: [ReadWrite<u8>; 1024]),
            (0xc00 => icfgr: [ReadWrite<u32>; 64]),
            (0xd00 => _reserved2),
            (0xf00 => sgir: WriteOnly<u32>),
            (0xf04 => _reserved3),
            (0x1000 => @END),
        },
        /// A GICv2's CPU interface.
        GiccV2 {
            (0x00 => ctlr: ReadWrite<u32>),
            (0x04 => pmr: ReadWrite<u32>),
            (0x08 => _bpr),
            (0x0c => iar: ReadOnly<u32>),
            (0x10 => eoir: WriteOnly<u32>),
            (0x14 => @END),
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
            (0x10104 => _sgi1),
            (0x10180 => icenabler0: ReadWrite<u32>),
            (0x10184 => @END),
        }
    }

    /// Guest-physical base of the distributor, 0 while there is no GIC.
    static GICD_BASE: AtomicUsize = AtomicUsize::new(0);
    /// Guest-physical base of vCPU 0's redistributor (GICv3).
    static GICR_BASE: AtomicUsize = AtomicUsize::new(0);
    /// Guest-physical base of the CPU interface (GICv2).
    static GICC_BASE: AtomicUsize = AtomicUsize::new(0);
    /// The GIC's version (2 or 3), 0 while there is none.
    static VERSION: AtomicU8 = AtomicU8::new(0);
    /// GICv2: each vCPU's last acknowledged `GICC_IAR` value, whose sender bits an SGI's
    /// `GICC_EOIR` repeats.
    static LAST_IAR: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];

    /// Records where the GIC is (from the DT) and enables it at the distributor (Group 1 on a
    /// GICv3, both groups on a GICv2). Called once, by the boot vCPU, before
    /// [`init_this_vcpu`]. Returns whether there is a GIC.
    pub(crate) fn init(dt: &GuestDt) -> bool {
        if let Some((gicd, gicr)) = dt.gic_v3() {
            GICR_BASE.store(gicr, Ordering::Relaxed);
            GICD_BASE.store(gicd, Ordering::Release);
            VERSION.store(3, Ordering::Release);
            if let Some(gicd) = distributor() {
                gicd.ctlr
                    .modify(GICD_CTLR::ARE_NS::SET + GICD_CTLR::ENABLE_GRP1A::SET);
            }
            return true;
        }
        if let Some((gicd, gicc)) = dt.gic_v2() {
            GICC_BASE.store(gicc, Ordering::Relaxed);
            GICD_BASE.store(gicd, Ordering::Release);
            VERSION.store(2, Ordering::Release);
            if let Some(gicd) = distributor_v2() {
                gicd.ctlr.set(0b11);
            }
            return true;
        }
        false
    }

    /// Whether [`init`] found a GIC.
    pub fn is_present() -> bool {
        GICD_BASE.load(Ordering::Acquire) != 0
    }

    fn is_v2() -> bool {
        VERSION.load(Ordering::Acquire) == 2
    }

    /// The GICv2 distributor, if that is the GIC.
    fn distributor_v2() -> Option<&'static GicdV2> {
        match GICD_BASE.load(Ordering::Acquire) {
            base if base != 0 && is_v2() => {
                // SAFETY: `init` stored the GICv2 distributor's address from the DT; the MMU is
                // off, and only this module touches it.
                Some(unsafe { &*(base as *const GicdV2) })
            }
            _ => None,
        }
    }

    /// The GICv2 CPU interface, if that is the GIC.
    fn cpu_interface_v2() -> Option<&'static GiccV2> {
        match GICC_BASE.load(Ordering::Relaxed) {
            base if base != 0 && is_v2() => {
                // SAFETY: `init` stored the GICv2 CPU interface's address from the DT; the MMU
                // is off, and only this module touches it (each vCPU sees its own).
                Some(unsafe { &*(base as *const GiccV2) })
            }
            _ => None,
        }
    }

    /// This vCPU's redistributor, if there is a GICv3.
    fn this_redistributor() -> Option<&'static Gicr> {
        if !is_present() || is_v2() {
            return None;
        }
        let base = GICR_BASE.load(Ordering::Relaxed) + crate::cpu::vcpu_id() * GICR_STRIDE;
        // SAFETY: the redistributors are laid out in vCPU order from the DT's first GICR
        // region, one stride each; the MMU is off, and only this module touches them.
        Some(unsafe { &*(base as *const Gicr) })
    }

    /// Wakes this vCPU's redistributor, puts its SGIs and PPIs in Group 1 and enables the CPU
    /// interface (all priorities, Group 1). Interrupts stay masked at the CPU (`PSTATE.I`).
    /// Does nothing without a GIC. Called by the runtime on every vCPU it starts.
    pub fn init_this_vcpu() {
        if let Some(gicc) = cpu_interface_v2() {
            // All priorities, both groups (a GICv2 guest's interrupts are Group 0).
            gicc.pmr.set(0xff);
            gicc.ctlr.set(0b11);
            return;
        }
        let Some(gicr) = this_redistributor() else {
            return;
        };
        gicr.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
        while gicr.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
            core::hint::spin_loop();
        }
        gicr.igroupr0.set(u32::MAX);
        // SAFETY: enables this CPU's GIC system-register interface, unmasks all priorities and
        // enables Group 1 interrupts at the CPU interface; PSTATE.I is unchanged.
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
    }

    /// Enables SGI or PPI `intid` (0..31) on this vCPU. Does nothing without a GIC.
    pub fn enable_private(intid: u32) {
        if let Some(gicd) = distributor_v2() {
            // Register 0 is banked: this vCPU's.
            gicd.isenabler[0].set(1 << (intid % 32));
        } else if let Some(gicr) = this_redistributor() {
            gicr.isenabler0.set(1 << (intid % 32));
        }
    }

    /// Disables SGI or PPI `intid` (0..31) on this vCPU. Does nothing without a GIC.
    pub fn disable_private(intid: u32) {
        if let Some(gicd) = distributor_v2() {
            gicd.icenabler[0].set(1 << (intid % 32));
        } else if let Some(gicr) = this_redistributor() {
            gicr.icenabler0.set(1 << (intid % 32));
        }
    }

    /// The GICv3 distributor, if that is the GIC.
    fn distributor() -> Option<&'static Gicd> {
        match GICD_BASE.load(Ordering::Acquire) {
            0 => None,
            _ if is_v2() => None,
            // SAFETY: `init` stored the distributor's address from the DT; the MMU is off, and
            // only this module touches it.
            base => Some(unsafe { &*(base as *const Gicd) }),
        }
    }

    /// Makes SPI `intid` (32..1019) edge-triggered (`edge`) or level-sensitive. Does nothing
    /// without a GIC or for an INTID that is not an SPI.
    pub fn set_edge_triggered(intid: u32, edge: bool) {
        if !(32..1020).contains(&intid) {
            return;
        }
        let (n, bit) = ((intid / 16) as usize, 1 << ((intid % 16) * 2 + 1));
        // The same register in both versions.
        let icfgr = match (distributor(), distributor_v2()) {
            (Some(gicd), _) => &gicd.icfgr[n],
            (None, Some(gicd)) => &gicd.icfgr[n],
            (None, None) => return,
        };
        let cfg = icfgr.get();
        icfgr.set(if edge { cfg | bit } else { cfg & !bit });
    }

    /// Enables SPI `intid` (32..1019) in Group 1, routed to the vCPU whose MPIDR affinity is
    /// `mpidr`. Does nothing without a GIC or for an INTID that is not an SPI.
    pub fn enable_spi(intid: u32, mpidr: u64) {
        if !(32..1020).contains(&intid) {
            return;
        }
        if let Some(gicd) = distributor_v2() {
            // vCPU n is CPU interface n.
            gicd.itargetsr[intid as usize].set(1 << (mpidr & 0x7));
            gicd.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
            return;
        }
        let Some(gicd) = distributor() else {
            return;
        };
        let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
        gicd.igroupr[word].set(gicd.igroupr[word].get() | bit);
        gicd.irouter[intid as usize].set(mpidr & 0xff_00ff_ffff);
        gicd.isenabler[word].set(bit);
    }

    /// Makes SPI `intid` pending (`GICD_ISPENDR`, GICv3 only). Does nothing without a GICv3 or
    /// for an INTID that is not an SPI.
    pub fn set_pending_spi(intid: u32) {
        if !(32..1020).contains(&intid) {
            return;
        }
        if let Some(gicd) = distributor() {
            gicd.ispendr[(intid / 32) as usize].set(1 << (intid % 32));
        }
    }

    /// Disables SPI `intid`. Does nothing without a GIC or for an INTID that is not an SPI.
    pub fn disable_spi(intid: u32) {
        if !(32..1020).contains(&intid) {
            return;
        }
        let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
        if let Some(gicd) = distributor_v2() {
            gicd.icenabler[word].set(bit);
        } else if let Some(gicd) = distributor() {
            gicd.icenabler[word].set(bit);
        }
    }

    /// Acknowledges the highest-priority pending interrupt (`ICC_IAR1_EL1`, or `GICC_IAR`) and returns
    /// its INTID, or `None` if none is pending. Each acknowledged interrupt must be [`end`]ed.
    pub fn acknowledge() -> Option<u32> {
        if let Some(gicc) = cpu_interface_v2() {
            let iar = gicc.iar.get();
            if let Some(slot) = LAST_IAR.get(crate::cpu::vcpu_id()) {
                slot.store(iar, Ordering::Relaxed);
            }
            let intid = iar & 0x3ff;
            return (intid < SPECIAL_INTID).then_some(intid);
        }
        if !is_present() {
            return None;
        }
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the highest-priority pending interrupt,
        // which the caller promises to end.
        unsafe { asm!("mrs {0}, icc_iar1_el1", out(reg) intid) };
        let intid = intid as u32 & 0xff_ffff;
        (intid < SPECIAL_INTID).then_some(intid)
    }

    /// Ends (drops the priority of and deactivates) interrupt `intid`, as acknowledged by
    /// [`acknowledge`].
    pub fn end(intid: u32) {
        if let Some(gicc) = cpu_interface_v2() {
            // An SGI's end names its sender, as its acknowledgement did.
            let sender = LAST_IAR
                .get(crate::cpu::vcpu_id())
                .map(|slot| slot.load(Ordering::Relaxed))
                .filter(|iar| iar & 0x3ff == intid && intid < 16)
                .map_or(0, |iar| iar & (0x7 << 10));
            gicc.eoir.set(intid | sender);
            return;
        }
        // SAFETY: writing ICC_EOIR1_EL1 ends an acknowledged interrupt (EOImode 0: also
        // deactivates it).
        unsafe { asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) u64::from(intid)) };
    }

    /// Sends SGI `intid` (0..15) to the vCPU whose MPIDR affinity is `mpidr`.
    pub fn send_sgi(intid: u32, mpidr: u64) {
        if let Some(gicd) = distributor_v2() {
            // Target list filter 0: the CPU interfaces listed; vCPU n is interface n.
            gicd.sgir.set((1 << (16 + (mpidr & 0x7))) | (intid & 0xf));
            return;
        }
        let value = super::sgi1r(intid, mpidr);
        // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI; the ISB makes it leave now.
        unsafe { asm!("msr icc_sgi1r_el1, {0}", "isb", in(reg) value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi_targets_one_pe() {
        // SGI 1 to Aff0 = 1: TargetList bit 1, INTID in bits 27:24.
        assert_eq!(sgi1r(1, 1), 0x0100_0002);
        // MPIDR's RES1 bit 31 and MT/U bits are ignored.
        assert_eq!(sgi1r(1, 0x8000_0001), 0x0100_0002);
        // Aff0 = 17: RS = 1, bit 1; Aff1 = 2, Aff2 = 3, Aff3 = 4.
        assert_eq!(
            sgi1r(15, 0x04_0003_0211),
            (1 << 1) | (2 << 16) | (15 << 24) | (3 << 32) | (1 << 44) | (4 << 48)
        );
        // SGI numbers are 4 bits.
        assert_eq!(sgi1r(16, 0), 1);
    }
}
