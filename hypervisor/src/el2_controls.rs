//! The EL2 controls a vCPU runs under, decided from its core's ID registers: which features of
//! the core a guest gets and what traps to the hypervisor. Plain values, tested on the host; the
//! arch code reads the ID registers, calls [`El2Controls::for_cpu`] and writes the results.
//!
//! Every core belongs to one partition and runs nothing else, so a guest gets its core's
//! features directly, with nothing to save or switch:
//!
//! - **FP/SIMD, SVE, SME**: not trapped (`CPTR_EL2.TFP/TZ/TSM` = 0 where the feature exists), at
//!   the largest vector lengths the core has (`ZCR_EL2.LEN`, `SMCR_EL2.LEN` = 15, which the
//!   hardware clamps), with SME's `FA64` and `ZT0` when present. The arch code clears the
//!   registers before a vCPU starts, so a restarted partition sees none of its previous run.
//! - **Pointer authentication** (`HCR_EL2.API/APK`) and **MTE** tag access (`HCR_EL2.ATA`):
//!   allowed; the hypervisor uses neither.
//! - **PMU**: the core's counters belong to the guest (`MDCR_EL2.HPMN` = all, no `TPM`), but
//!   counting is prohibited at EL2 (`HPMD`, and `HCCD` for the cycle counter where PMUv3p5
//!   allows it), so a guest never measures the hypervisor's work on its core, such as console
//!   input it handles for other partitions. **Debug** and **trace** registers are the guest's
//!   too (`TDA`, `TDE`, `TTRF` = 0): debug exceptions never target EL2, and profiling and trace
//!   buffers, where present, are owned by EL1 (`E2PB`, `E2TB` = 0b11).
//! - **Trapped and emulated**: implementation-defined registers (`HCR_EL2.TIDCP`: reported,
//!   the partition is stopped), `ACTLR_EL1` (`TACR`), RAS error records (`TERR`, where RAS
//!   exists) and activity monitors (`CPTR_EL2.TAM`, where AMU exists): read as zero, writes
//!   ignored, so no guest learns about other partitions' errors or the hypervisor's activity.
//! - **`HCRX_EL2`** (where FEAT_HCX exists): only what a guest may use is enabled (`MSCEn` for
//!   FEAT_MOPS, `TCR2En`, `SCTLR2En`); everything else stays off.
//! - **Interrupts**: physical IRQs and FIQs go to EL2 (`HCR_EL2.IMO/FMO`), the guest gets virtual
//!   ones. A `direct-interrupts` partition ([`El2Controls::with_direct_interrupts`]) takes
//!   physical IRQs itself (`IMO` = 0, its accesses to the Group 1 registers reach the physical
//!   CPU interface); `FMO` stays 1, which keeps FIQs (the hypervisor's Group 0 interrupts) at
//!   EL2, keeps its writes of `ICC_SGI0R/SGI1R/ASGI1R_EL1` trapped (the GICv3 traps them when
//!   either `IMO` or `FMO` is set), so SGIs still reach only its own vCPUs, and sends its
//!   accesses to the registers common to both groups (`ICC_PMR_EL1`, `ICC_CTLR_EL1`,
//!   `ICC_DIR_EL1`, `ICC_RPR_EL1`) and to Group 0's to the virtual interface, so it can neither
//!   mask the hypervisor's FIQs nor deactivate interrupts it did not acknowledge.
//! - **Fine-grained traps** (where FEAT_FGT exists): no positive trap bits; of the negative ones
//!   (which trap when 0), those of SME's registers are set so SME works. Registers of features
//!   no guest here uses (permission indirection, guarded control stacks, ...) stay trapped and a
//!   guest touching them is stopped with a report.

#![forbid(unsafe_code)]

use aarch64_cpu::registers::{HCR_EL2, MDCR_EL2};
use tock_registers::fields::FieldValue;
use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

register_bitfields! {u64,
    /// The ID register fields the controls depend on.
    pub ID_AA64PFR0 [
        AMU OFFSET(44) NUMBITS(4) [],
        SVE OFFSET(32) NUMBITS(4) [],
        RAS OFFSET(28) NUMBITS(4) [],
    ],
    pub ID_AA64PFR1 [
        SME OFFSET(24) NUMBITS(4) [],
        MTE OFFSET(8) NUMBITS(4) [],
    ],
    pub ID_AA64ISAR1 [
        GPI OFFSET(28) NUMBITS(4) [],
        GPA OFFSET(24) NUMBITS(4) [],
        API OFFSET(8) NUMBITS(4) [],
        APA OFFSET(4) NUMBITS(4) [],
    ],
    pub ID_AA64ISAR2 [
        MOPS OFFSET(16) NUMBITS(4) [],
        APA3 OFFSET(12) NUMBITS(4) [],
        GPA3 OFFSET(8) NUMBITS(4) [],
    ],
    pub ID_AA64MMFR0 [
        FGT OFFSET(56) NUMBITS(4) [],
    ],
    pub ID_AA64MMFR1 [
        HCX OFFSET(40) NUMBITS(4) [],
    ],
    pub ID_AA64MMFR3 [
        SCTLRX OFFSET(4) NUMBITS(4) [],
        TCRX OFFSET(0) NUMBITS(4) [],
    ],
    pub ID_AA64DFR0 [
        TRACE_BUFFER OFFSET(44) NUMBITS(4) [],
        PMSVER OFFSET(32) NUMBITS(4) [],
        PMUVER OFFSET(8) NUMBITS(4) [],
    ],
    pub ID_AA64SMFR0 [
        FA64 OFFSET(63) NUMBITS(1) [],
    ],
    pub PMCR [
        /// Number of event counters.
        N OFFSET(11) NUMBITS(5) [],
    ],
    /// `CPTR_EL2` without `HCR_EL2.E2H`.
    pub CPTR [
        TCPAC OFFSET(31) NUMBITS(1) [],
        TAM OFFSET(30) NUMBITS(1) [],
        TTA OFFSET(20) NUMBITS(1) [],
        TSM OFFSET(12) NUMBITS(1) [],
        TFP OFFSET(10) NUMBITS(1) [],
        TZ OFFSET(8) NUMBITS(1) [],
    ],
    pub HCRX [
        SCTLR2EN OFFSET(15) NUMBITS(1) [],
        TCR2EN OFFSET(14) NUMBITS(1) [],
        MSCEN OFFSET(11) NUMBITS(1) [],
    ],
    /// `ZCR_EL2` and the `LEN` of `SMCR_EL2`.
    pub ZCR [
        LEN OFFSET(0) NUMBITS(4) [],
    ],
    pub SMCR [
        FA64 OFFSET(31) NUMBITS(1) [],
        EZT0 OFFSET(30) NUMBITS(1) [],
        LEN OFFSET(0) NUMBITS(4) [],
    ],
    /// The negative (trap when 0) bits of `HFGRTR_EL2` and `HFGWTR_EL2` for SME's registers.
    pub HFGXTR [
        NTPIDR2_EL0 OFFSET(55) NUMBITS(1) [],
        NSMPRI_EL1 OFFSET(54) NUMBITS(1) [],
    ],
}

/// `CPTR_EL2` (without `E2H`) RES1 bits other than `TZ` and `TSM`: 0-7, 9 and 13.
const CPTR_RES1: u64 = 0x22ff;
/// The largest `LEN` a vector-length control takes (the hardware clamps it).
const MAX_LEN: u64 = 0xf;

/// The ID registers (and `PMCR_EL0`) of a core, as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegisters {
    pub pfr0: u64,
    pub pfr1: u64,
    pub isar1: u64,
    pub isar2: u64,
    pub mmfr0: u64,
    pub mmfr1: u64,
    pub mmfr3: u64,
    pub dfr0: u64,
    pub smfr0: u64,
    pub pmcr: u64,
}

/// The features the controls depend on, decoded from [`IdRegisters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub sve: bool,
    /// 0: none, 1: SME, 2: SME2 (with `ZT0`).
    pub sme: u8,
    pub sme_fa64: bool,
    pub pauth: bool,
    /// MTE with allocation tags (FEAT_MTE2).
    pub mte_tags: bool,
    pub ras: bool,
    pub amu: bool,
    pub hcx: bool,
    pub fgt: bool,
    pub mops: bool,
    pub tcr2: bool,
    pub sctlr2: bool,
    /// `PMUVer`: 0 none, 1 PMUv3, 4 v3p1, ..., 0xf implementation defined.
    pub pmu_version: u8,
    /// Number of PMU event counters.
    pub pmu_counters: u8,
    pub spe: bool,
    pub trace_buffer: bool,
}

fn field<R: tock_registers::RegisterLongName>(
    value: u64,
    f: tock_registers::fields::Field<u64, R>,
) -> u8 {
    LocalRegisterCopy::<u64, R>::new(value).read(f) as u8
}

impl Features {
    /// Decodes the features of a core from its ID registers.
    pub fn of(id: &IdRegisters) -> Self {
        let pmu_version = field(id.dfr0, ID_AA64DFR0::PMUVER);
        let pmuv3 = (1..0xf).contains(&pmu_version);
        Self {
            sve: field(id.pfr0, ID_AA64PFR0::SVE) != 0,
            sme: field(id.pfr1, ID_AA64PFR1::SME),
            sme_fa64: field(id.smfr0, ID_AA64SMFR0::FA64) != 0,
            pauth: [
                field(id.isar1, ID_AA64ISAR1::APA),
                field(id.isar1, ID_AA64ISAR1::API),
                field(id.isar1, ID_AA64ISAR1::GPA),
                field(id.isar1, ID_AA64ISAR1::GPI),
                field(id.isar2, ID_AA64ISAR2::APA3),
                field(id.isar2, ID_AA64ISAR2::GPA3),
            ]
            .iter()
            .any(|&f| f != 0),
            mte_tags: field(id.pfr1, ID_AA64PFR1::MTE) >= 2,
            ras: field(id.pfr0, ID_AA64PFR0::RAS) != 0,
            amu: field(id.pfr0, ID_AA64PFR0::AMU) != 0,
            hcx: field(id.mmfr1, ID_AA64MMFR1::HCX) != 0,
            fgt: field(id.mmfr0, ID_AA64MMFR0::FGT) != 0,
            mops: field(id.isar2, ID_AA64ISAR2::MOPS) != 0,
            tcr2: field(id.mmfr3, ID_AA64MMFR3::TCRX) != 0,
            sctlr2: field(id.mmfr3, ID_AA64MMFR3::SCTLRX) != 0,
            pmu_version,
            pmu_counters: if pmuv3 { field(id.pmcr, PMCR::N) } else { 0 },
            spe: field(id.dfr0, ID_AA64DFR0::PMSVER) != 0,
            trace_buffer: field(id.dfr0, ID_AA64DFR0::TRACE_BUFFER) != 0,
        }
    }
}

/// The EL2 control register values for a vCPU. See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct El2Controls {
    pub hcr: u64,
    pub cptr: u64,
    pub mdcr: u64,
    /// `HCRX_EL2`, where FEAT_HCX exists.
    pub hcrx: Option<u64>,
    /// `ZCR_EL2`, where SVE exists.
    pub zcr: Option<u64>,
    /// `SMCR_EL2`, where SME exists.
    pub smcr: Option<u64>,
    /// `HFGRTR_EL2` and `HFGWTR_EL2`, where FEAT_FGT exists; the other fine-grained trap
    /// registers are all 0.
    pub hfgxtr: Option<u64>,
}

impl El2Controls {
    /// The controls for a vCPU on a core with `id`.
    pub fn for_cpu(id: &IdRegisters) -> Self {
        let f = Features::of(id);
        let flag = |on: bool, v: FieldValue<u64, HCR_EL2::Register>| {
            if on {
                v.value
            } else {
                0
            }
        };
        let hcr = (HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::VM::Enable
            + HCR_EL2::SWIO::SET
            + HCR_EL2::FMO::EnableVirtualFIQ
            + HCR_EL2::IMO::EnableVirtualIRQ
            + HCR_EL2::AMO::SET
            + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
            + HCR_EL2::BSU::InnerShareable
            + HCR_EL2::TIDCP::SET
            + HCR_EL2::TACR::SET)
            .value
            | flag(f.ras, HCR_EL2::TERR::SET)
            | flag(f.pauth, HCR_EL2::API::SET + HCR_EL2::APK::SET)
            | flag(f.mte_tags, HCR_EL2::ATA::SET);

        let mut cptr = CPTR_RES1;
        if !f.sve {
            cptr |= CPTR::TZ::SET.value;
        }
        if f.sme == 0 {
            cptr |= CPTR::TSM::SET.value;
        }
        if f.amu {
            cptr |= CPTR::TAM::SET.value;
        }

        let mut mdcr = 0;
        if f.pmu_counters > 0 {
            mdcr |= MDCR_EL2::HPMN.val(u64::from(f.pmu_counters)).value;
        }
        if f.pmu_version >= 4 && f.pmu_version < 0xf {
            mdcr |= MDCR_EL2::HPMD::SET.value;
        }
        if f.pmu_version >= 6 && f.pmu_version < 0xf {
            mdcr |= MDCR_EL2::HCCD::SET.value;
        }
        if f.spe {
            mdcr |= MDCR_EL2::E2PB.val(0b11).value;
        }
        if f.trace_buffer {
            mdcr |= MDCR_EL2::E2TB.val(0b11).value;
        }

        let hcrx = f.hcx.then(|| {
            let mut v = 0;
            if f.mops {
                v |= HCRX::MSCEN::SET.value;
            }
            if f.tcr2 {
                v |= HCRX::TCR2EN::SET.value;
            }
            if f.sctlr2 {
                v |= HCRX::SCTLR2EN::SET.value;
            }
            v
        });
        let smcr = (f.sme != 0).then(|| {
            let mut v = SMCR::LEN.val(MAX_LEN).value;
            if f.sme_fa64 {
                v |= SMCR::FA64::SET.value;
            }
            if f.sme >= 2 {
                v |= SMCR::EZT0::SET.value;
            }
            v
        });
        let hfgxtr = f.fgt.then(|| {
            if f.sme != 0 {
                (HFGXTR::NTPIDR2_EL0::SET + HFGXTR::NSMPRI_EL1::SET).value
            } else {
                0
            }
        });
        Self {
            hcr,
            cptr,
            mdcr,
            hcrx,
            zcr: f.sve.then_some(ZCR::LEN.val(MAX_LEN).value),
            smcr,
            hfgxtr,
        }
    }
}

impl El2Controls {
    /// The controls for a vCPU of a `direct-interrupts` partition: the same with `HCR_EL2.IMO`
    /// clear and `FMO` kept (see the [module documentation](self)).
    pub fn with_direct_interrupts(self) -> Self {
        Self {
            hcr: (self.hcr & !HCR_EL2::IMO::SET.value) | HCR_EL2::FMO::SET.value,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_interrupt_vcpu_takes_irqs_but_its_sgis_and_fiqs_still_trap() {
        let normal = El2Controls::for_cpu(&cortex_a72());
        let direct = normal.with_direct_interrupts();
        let hcr = LocalRegisterCopy::<u64, HCR_EL2::Register>::new(direct.hcr);
        assert!(!hcr.is_set(HCR_EL2::IMO), "physical IRQs go to the guest");
        // FMO = 1 keeps ICC_SGI1R_EL1 trapped (GICv3: trapped when IMO or FMO is set) and the
        // hypervisor's FIQs at EL2.
        assert!(hcr.is_set(HCR_EL2::FMO));
        assert!(hcr.is_set(HCR_EL2::VM) && hcr.is_set(HCR_EL2::TSC) && hcr.is_set(HCR_EL2::AMO));
        assert_eq!(
            direct.hcr | HCR_EL2::IMO::SET.value,
            normal.hcr,
            "nothing else changes"
        );
        assert_eq!((direct.cptr, direct.mdcr), (normal.cptr, normal.mdcr));
    }

    /// A Cortex-A72 as QEMU models it: ARMv8.0, PMUv3 with 6 counters, nothing newer.
    fn cortex_a72() -> IdRegisters {
        IdRegisters {
            pfr0: 0x0000_0000_0000_0022,
            dfr0: 0x0000_0000_1030_5106,
            pmcr: 6 << 11,
            ..IdRegisters::default()
        }
    }

    /// A `-cpu max`-like core: SVE, SME2 with FA64, PAuth, MTE2, RAS, HCX, FGT, MOPS, PMUv3p8.
    fn armv9() -> IdRegisters {
        IdRegisters {
            pfr0: (1 << 32) | (1 << 28) | 0x22,
            pfr1: (2 << 24) | (2 << 8),
            isar1: 1 << 4,
            isar2: 1 << 16,
            mmfr0: 1 << 56,
            mmfr1: 1 << 40,
            mmfr3: 1,
            dfr0: 8 << 8,
            smfr0: 1 << 63,
            pmcr: 8 << 11,
        }
    }

    #[test]
    fn an_armv8_0_core_traps_what_it_has_not() {
        let c = El2Controls::for_cpu(&cortex_a72());
        assert_eq!(c.cptr, 0x33ff, "SVE and SME bits stay RES1");
        let hcr = LocalRegisterCopy::<u64, HCR_EL2::Register>::new(c.hcr);
        assert!(hcr.is_set(HCR_EL2::VM) && hcr.is_set(HCR_EL2::IMO) && hcr.is_set(HCR_EL2::TSC));
        assert!(hcr.is_set(HCR_EL2::TIDCP) && hcr.is_set(HCR_EL2::TACR));
        assert!(!hcr.is_set(HCR_EL2::API) && !hcr.is_set(HCR_EL2::TERR));
        // PMUv3 (not v3p1): counters to the guest, no HPMD to set.
        assert_eq!(c.mdcr, 6);
        assert_eq!((c.hcrx, c.zcr, c.smcr, c.hfgxtr), (None, None, None, None));
    }

    #[test]
    fn an_armv9_core_gives_its_features_to_the_guest() {
        let c = El2Controls::for_cpu(&armv9());
        let cptr = LocalRegisterCopy::<u64, CPTR::Register>::new(c.cptr);
        assert!(!cptr.is_set(CPTR::TZ) && !cptr.is_set(CPTR::TSM) && !cptr.is_set(CPTR::TFP));
        let hcr = LocalRegisterCopy::<u64, HCR_EL2::Register>::new(c.hcr);
        assert!(hcr.is_set(HCR_EL2::API) && hcr.is_set(HCR_EL2::APK));
        assert!(hcr.is_set(HCR_EL2::ATA) && hcr.is_set(HCR_EL2::TERR));
        let mdcr = LocalRegisterCopy::<u64, MDCR_EL2::Register>::new(c.mdcr);
        assert_eq!(mdcr.read(MDCR_EL2::HPMN), 8);
        assert!(mdcr.is_set(MDCR_EL2::HPMD) && mdcr.is_set(MDCR_EL2::HCCD));
        assert!(!mdcr.is_set(MDCR_EL2::TPM) && !mdcr.is_set(MDCR_EL2::TDE));
        assert_eq!(c.zcr, Some(0xf));
        assert_eq!(c.smcr, Some((1 << 31) | (1 << 30) | 0xf));
        assert_eq!(c.hcrx, Some((1 << 11) | (1 << 14)));
        assert_eq!(c.hfgxtr, Some((1 << 55) | (1 << 54)));
    }

    #[test]
    fn features_decode() {
        let f = Features::of(&armv9());
        assert!(f.sve && f.pauth && f.mte_tags && f.fgt && f.mops && f.tcr2 && !f.sctlr2);
        assert_eq!((f.sme, f.pmu_version, f.pmu_counters), (2, 8, 8));
        // An implementation-defined PMU is no PMUv3: nothing handed over.
        let imp = IdRegisters {
            dfr0: 0xf << 8,
            pmcr: 8 << 11,
            ..IdRegisters::default()
        };
        assert_eq!(El2Controls::for_cpu(&imp).mdcr, 0);
        // MTE without tags (FEAT_MTE only) needs no tag access.
        let mte1 = IdRegisters {
            pfr1: 1 << 8,
            ..IdRegisters::default()
        };
        assert!(!Features::of(&mte1).mte_tags);
    }
}
