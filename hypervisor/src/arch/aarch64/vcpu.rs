//! Guest entry: programs the EL2 controls of this CPU for one vCPU (`HCR_EL2`, stage-2
//! translation, the IDs the guest reads, timers, traps) and drops to EL1 at its entry point with
//! a fresh register state, as the runtime's [`VcpuStart`] says.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, HCR_EL2, MIDR_EL1, SCTLR_EL1,
    SPSR_EL2, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::asm;

use super::exceptions::enter;
use super::mmu;
use super::sysregs::VPIDR_EL2;
use crate::frame::TrapFrame;
use crate::runtime::VcpuStart;

/// `SCTLR_EL1` as after reset: MMU and caches off, only its RES1 bits set.
const SCTLR_EL1_RES1: u64 = 0x30d0_0800;
/// `CPTR_EL2` (without `HCR_EL2.E2H`) with only its RES1 bits (0-7, 9, 12, 13) set: no trap of
/// FP/SIMD or trace, so the guest owns its core's FP state.
const CPTR_EL2_RES1: u64 = 0x33ff;
/// `VMPIDR_EL2` bit 31 is RES1.
const MPIDR_RES1: u64 = 1 << 31;

/// Programs this CPU for the vCPU `v` and enters it. `HCR_EL2.FB` (broadcast the guest's local
/// TLB maintenance) stays clear: a vCPU never moves to another core, so its local TLB operations
/// need not reach other cores, which would also cost every other partition. Never returns: the
/// next time this CPU runs hypervisor code is through the exception vectors.
pub fn enter_vcpu(v: &VcpuStart) -> ! {
    HCR_EL2.write(
        HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::VM::Enable
            + HCR_EL2::SWIO::SET
            + HCR_EL2::FMO::EnableVirtualFIQ
            + HCR_EL2::IMO::EnableVirtualIRQ
            + HCR_EL2::AMO::SET
            + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
            + HCR_EL2::BSU::InnerShareable,
    );
    VTCR_EL2.set(crate::stage2::vtcr_value(mmu::pa_range()));
    VTTBR_EL2.set(v.vttbr);
    VMPIDR_EL2.set(MPIDR_RES1 | v.mpidr);
    VPIDR_EL2.set(MIDR_EL1.get());
    SCTLR_EL1.set(SCTLR_EL1_RES1);
    CPTR_EL2.set(CPTR_EL2_RES1);
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
