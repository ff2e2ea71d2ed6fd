//! What each physical CPU runs: its one vCPU (1 vCPU = 1 pCPU, no scheduler) when that vCPU has
//! something to run, nothing otherwise. The arch code asks [`System::next_vcpu_start`] whenever
//! the CPU idles; when it returns a [`VcpuStart`], the arch code programs the CPU with it and
//! enters the guest.

use core::sync::atomic::Ordering;

use bulkhead_config::guest_view::{vcpu_mpidr, GUEST_TIMER_PPIS};
use bulkhead_config::{GuestPhysAddr, PcpuId};

use super::hw::Hw;
use super::partition::State;
use super::vgic::is_direct_sgi;
use super::System;
use crate::psci::VcpuPower;

/// Everything the arch code needs to start one vCPU from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuStart {
    pub vmid: u8,
    /// `VTTBR_EL2`: the partition's stage-2 tables and VMID.
    pub vttbr: u64,
    /// The MPIDR affinity the guest reads on this vCPU.
    pub mpidr: u64,
    pub pc: GuestPhysAddr,
    pub x0: u64,
    /// Physical count at which the partition's virtual counter reads zero.
    pub cntvoff: u64,
    /// The partition has `direct-interrupts`: the guest takes its core's physical interrupts
    /// itself (`HCR_EL2.IMO` = 0; see `crate::el2_controls`).
    pub direct_interrupts: bool,
}

impl<H: Hw> System<H> {
    /// Whether physical CPU `cpu`'s vCPU should start now; if so, marks it on and in the guest,
    /// resets this CPU's virtual interface and timer interrupts, and says how to enter it.
    pub fn next_vcpu_start(&self, cpu: PcpuId) -> Option<VcpuStart> {
        let (p, vcpu) = self.current(cpu)?;
        if p.state() != State::Running {
            return None;
        }
        // vCPU 0's CPU (re)loads the partition first, at boot and after a restart: partitions
        // load in parallel, each on its own cores.
        if vcpu.index() == 0 && p.needs_load.swap(false, Ordering::AcqRel) {
            self.load_partition(p);
        }
        let v = p.vcpu(vcpu)?;
        let entry = {
            let mut power = v.power.lock();
            match (power.power, power.start) {
                (VcpuPower::OnPending, Some(entry)) => {
                    power.power = VcpuPower::On;
                    entry
                }
                _ => return None,
            }
        };
        v.in_guest.store(true, Ordering::Release);
        let direct = p.config.direct_interrupts;
        if direct {
            // The guest takes this core's interrupts itself; the hypervisor's own become FIQs.
            // Whatever a previous run left active is cleared there, list registers are unused.
            self.hw.enter_direct_mode();
            // Its timers and SGIs stay off until the guest enables them (in its redistributor).
            for intid in GUEST_TIMER_PPIS
                .into_iter()
                .chain((0..16).filter(|&sgi| is_direct_sgi::<H>(p, sgi)))
            {
                self.hw.set_enabled(intid, cpu, false);
            }
        } else {
            // Hardware interrupts a previous run left in the list registers would stay active
            // in the GIC once the registers are cleared: deactivate them first.
            for n in 0..self.hw.lr_count() {
                let lr = self.hw.read_lr(n);
                if let (false, Some(pintid)) = (lr.is_free(), lr.irq.hw) {
                    self.hw.deactivate(pintid);
                }
            }
            self.hw.reset_vcpu_interface();
            // The guest timers' interrupts stay off until the guest enables them.
            for ppi in GUEST_TIMER_PPIS {
                self.hw.set_enabled(ppi, cpu, false);
                self.hw.deactivate(ppi);
            }
            self.hw.set_enabled(H::MAINTENANCE_IRQ, cpu, true);
        }
        self.hw.set_enabled(H::HYP_TIMER_IRQ, cpu, true);
        if let Some(c) = self.exit_counters(cpu) {
            c.started(self.hw.counter());
        }
        log::debug!(
            "partition {}: vCPU {vcpu} starts at {} on CPU {cpu}",
            p.name,
            entry.pc
        );
        Some(VcpuStart {
            vmid: p.vmid,
            vttbr: p.stage2.vttbr_value(p.vmid),
            mpidr: vcpu_mpidr(vcpu),
            pc: entry.pc,
            x0: entry.x0,
            cntvoff: p.cntvoff(),
            direct_interrupts: direct,
        })
    }

    /// Physical CPU `cpu` no longer runs its vCPU (it idles at EL2). On a `direct-interrupts`
    /// partition's core the guest's timers are disabled: the idle core leaves the guest's
    /// interrupts pending rather than taking them, and a pending one would keep waking it.
    pub fn left_guest(&self, cpu: PcpuId) {
        if let Some((p, vcpu)) = self.current(cpu) {
            if let Some(v) = p.vcpu(vcpu) {
                v.in_guest.store(false, Ordering::Release);
            }
            if p.config.direct_interrupts {
                for ppi in GUEST_TIMER_PPIS {
                    self.hw.set_enabled(ppi, cpu, false);
                }
            }
        }
    }
}
