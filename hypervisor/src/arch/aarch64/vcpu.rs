//! Guest entry: programs the EL2 controls of this CPU for one vCPU (`HCR_EL2` and the other trap
//! controls decided by `crate::el2_controls`, stage-2 translation, the IDs the guest reads,
//! timers), clears what a previous run of the core could have left in its registers, and drops
//! to EL1 at the entry point, as the runtime's [`VcpuStart`] says.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, HCR_EL2, HDFGRTR_EL2, HDFGWTR_EL2,
    HFGITR_EL2, HFGRTR_EL2, HFGWTR_EL2, ID_AA64DFR0_EL1, ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1,
    ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, MDCR_EL2, MIDR_EL1, SCTLR_EL1, SPSR_EL2,
    VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::asm;

use super::exceptions::enter;
use super::mmu;
use super::sysregs::{
    HCRX_EL2, ID_AA64ISAR2_EL1, ID_AA64MMFR3_EL1, ID_AA64SMFR0_EL1, PMCNTENCLR_EL0, PMCR_EL0,
    PMINTENCLR_EL1, PMOVSCLR_EL0, SMCR_EL2, VPIDR_EL2, ZCR_EL2,
};
use crate::el2_controls::{El2Controls, Features, IdRegisters};
use crate::frame::TrapFrame;
use crate::runtime::VcpuStart;

/// `SCTLR_EL1` as after reset: MMU and caches off, only its RES1 bits set.
const SCTLR_EL1_RES1: u64 = 0x30d0_0800;
/// `VMPIDR_EL2` bit 31 is RES1.
const MPIDR_RES1: u64 = 1 << 31;
/// `PMCR_EL0.P` and `.C`: reset the event counters and the cycle counter.
const PMCR_RESET_COUNTERS: u64 = 0b110;

/// This core's ID registers.
fn id_registers() -> IdRegisters {
    IdRegisters {
        pfr0: ID_AA64PFR0_EL1.get(),
        pfr1: ID_AA64PFR1_EL1.get(),
        isar1: ID_AA64ISAR1_EL1.get(),
        isar2: ID_AA64ISAR2_EL1.get(),
        mmfr0: ID_AA64MMFR0_EL1.get(),
        mmfr1: ID_AA64MMFR1_EL1.get(),
        mmfr3: ID_AA64MMFR3_EL1.get(),
        dfr0: ID_AA64DFR0_EL1.get(),
        smfr0: ID_AA64SMFR0_EL1.get(),
        pmcr: PMCR_EL0.get(),
    }
}

/// Programs this CPU for the vCPU `v` and enters it. `HCR_EL2.FB` (broadcast the guest's local
/// TLB maintenance) stays clear: a vCPU never moves to another core, so its local TLB operations
/// need not reach other cores, which would also cost every other partition. Never returns: the
/// next time this CPU runs hypervisor code is through the exception vectors.
pub fn enter_vcpu(v: &VcpuStart) -> ! {
    let id = id_registers();
    let features = Features::of(&id);
    let mut controls = El2Controls::for_cpu(&id);
    if v.direct_interrupts {
        controls = controls.with_direct_interrupts();
    }
    HCR_EL2.set(controls.hcr);
    CPTR_EL2.set(controls.cptr);
    MDCR_EL2.set(controls.mdcr);
    if let Some(hcrx) = controls.hcrx {
        HCRX_EL2.set(hcrx);
    }
    if let Some(zcr) = controls.zcr {
        ZCR_EL2.set(zcr);
    }
    if let Some(smcr) = controls.smcr {
        SMCR_EL2.set(smcr);
    }
    if let Some(hfgxtr) = controls.hfgxtr {
        HFGRTR_EL2.set(hfgxtr);
        HFGWTR_EL2.set(hfgxtr);
        HFGITR_EL2.set(0);
        HDFGRTR_EL2.set(0);
        HDFGWTR_EL2.set(0);
    }
    clear_guest_state(&features);
    VTCR_EL2.set(crate::stage2::vtcr_value(mmu::pa_range()));
    VTTBR_EL2.set(v.vttbr);
    VMPIDR_EL2.set(MPIDR_RES1 | v.mpidr);
    VPIDR_EL2.set(MIDR_EL1.get());
    SCTLR_EL1.set(SCTLR_EL1_RES1);
    // EL1 may use the physical counter and timer; the virtual counter is offset per partition.
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(v.cntvoff);
    // SAFETY: invalidates stage-1 and stage-2 TLB entries of the VMID just installed, so a
    // restarted partition cannot see translations from its previous run.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb") };
    // EL1h with D, A, I and F masked, as PSCI and the Linux boot protocol require.
    let spsr = (SPSR_EL2::M::EL1h
        + SPSR_EL2::D::Masked
        + SPSR_EL2::A::Masked
        + SPSR_EL2::I::Masked
        + SPSR_EL2::F::Masked)
        .value;
    enter(&TrapFrame::new(v.pc.raw(), spsr, v.x0))
}

/// Clears the register state a guest could read that a previous run on this core left: FP/SIMD
/// (and so the SVE vectors, whose upper bits a SIMD write zeroes), SVE predicates, SME's
/// streaming mode and ZA, and the PMU's counters. `CPTR_EL2` must already let EL2 use them.
fn clear_guest_state(features: &Features) {
    // SAFETY: writes only FP/SIMD registers, which EL2 code never uses (the hypervisor is built
    // soft-float), after CPTR_EL2 stopped trapping them; FPCR/FPSR reset to 0.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "isb",
            "movi v0.16b, #0",
            "movi v1.16b, #0",
            "movi v2.16b, #0",
            "movi v3.16b, #0",
            "movi v4.16b, #0",
            "movi v5.16b, #0",
            "movi v6.16b, #0",
            "movi v7.16b, #0",
            "movi v8.16b, #0",
            "movi v9.16b, #0",
            "movi v10.16b, #0",
            "movi v11.16b, #0",
            "movi v12.16b, #0",
            "movi v13.16b, #0",
            "movi v14.16b, #0",
            "movi v15.16b, #0",
            "movi v16.16b, #0",
            "movi v17.16b, #0",
            "movi v18.16b, #0",
            "movi v19.16b, #0",
            "movi v20.16b, #0",
            "movi v21.16b, #0",
            "movi v22.16b, #0",
            "movi v23.16b, #0",
            "movi v24.16b, #0",
            "movi v25.16b, #0",
            "movi v26.16b, #0",
            "movi v27.16b, #0",
            "movi v28.16b, #0",
            "movi v29.16b, #0",
            "movi v30.16b, #0",
            "movi v31.16b, #0",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            options(nostack)
        )
    };
    if features.sme != 0 {
        // SAFETY: SMSTOP (`msr svcr, xzr`) leaves streaming mode and turns ZA off, discarding
        // the previous run's matrix state; SME is not trapped for EL2 (CPTR_EL2.TSM = 0).
        unsafe { asm!("msr s3_3_c4_c2_2, xzr", "isb", options(nostack)) };
    }
    if features.sve {
        // SAFETY: clears the 16 SVE predicate registers and FFR (`pfalse`, `wrffr`), SVE being
        // untrapped for EL2 (CPTR_EL2.TZ = 0); nothing at EL2 uses them.
        unsafe {
            asm!(
                ".arch_extension sve",
                "pfalse p0.b",
                "pfalse p1.b",
                "pfalse p2.b",
                "pfalse p3.b",
                "pfalse p4.b",
                "pfalse p5.b",
                "pfalse p6.b",
                "pfalse p7.b",
                "pfalse p8.b",
                "pfalse p9.b",
                "pfalse p10.b",
                "pfalse p11.b",
                "pfalse p12.b",
                "pfalse p13.b",
                "pfalse p14.b",
                "pfalse p15.b",
                "wrffr p0.b",
                options(nostack)
            )
        };
    }
    if features.pmu_counters > 0 {
        PMCNTENCLR_EL0.set(u64::from(u32::MAX));
        PMINTENCLR_EL1.set(u64::from(u32::MAX));
        PMOVSCLR_EL0.set(u64::from(u32::MAX));
        PMCR_EL0.set(PMCR_RESET_COUNTERS);
    }
}
