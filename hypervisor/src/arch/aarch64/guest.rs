//! Guest entry: program the EL2 controls for a partition's vCPU (HCR_EL2, stage-2 translation,
//! virtual IDs, timers, traps) and drop to EL1 at the entry point with a fresh register state.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, HCR_EL2, MIDR_EL1, SCTLR_EL1,
    VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::asm;

use super::exceptions::{enter, TrapFrame};

/// Everything needed to start one vCPU.
pub struct VcpuStart {
    pub vmid: u16,
    pub stage2_root: u64,
    pub vtcr: u64,
    /// The vCPU's MPIDR as the guest sees it (affinity bits).
    pub vmpidr: u64,
    pub entry: u64,
    pub x0: u64,
    /// Physical count at which the partition's virtual counter reads zero.
    pub cntvoff: u64,
}

/// SCTLR_EL1 as after reset: MMU and caches off, RES1 bits set.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// Programs this CPU for the vCPU and enters it. `HCR_EL2.FB` (broadcast the guest's local TLB
/// maintenance) stays clear: a vCPU never moves to another core, so its local TLB operations
/// need not reach other cores, which would also cost every other partition. Never returns: the next time this CPU runs
/// hypervisor code is through the exception vectors.
pub fn start(v: &VcpuStart) -> ! {
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
    VTCR_EL2.set(v.vtcr);
    VTTBR_EL2.set(((v.vmid as u64) << 48) | v.stage2_root);
    VMPIDR_EL2.set((1 << 31) | v.vmpidr);
    let midr = MIDR_EL1.get();
    // SAFETY: VPIDR_EL2 only changes what the guest reads from MIDR_EL1. aarch64-cpu has no
    // definition for it.
    unsafe { asm!("msr vpidr_el2, {0}", in(reg) midr) };
    SCTLR_EL1.set(SCTLR_EL1_RESET);
    // No FP/SIMD or trace traps (RES1 bits 0-7, 9, 12, 13).
    CPTR_EL2.set(0x33ff);
    // EL1 may use the physical counter and timer; the virtual counter is offset per partition.
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(v.cntvoff);
    // SAFETY: invalidates stage-1 and stage-2 TLB entries of the VMID just installed, so a
    // restarted partition cannot see translations from its previous run.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb") };
    enter(&TrapFrame::for_entry(v.entry, v.x0))
}

/// The physical counter now.
pub fn physical_count() -> u64 {
    let value: u64;
    // SAFETY: reading CNTPCT_EL0 has no side effects.
    unsafe { asm!("isb", "mrs {0}, cntpct_el0", out(reg) value) };
    value
}
