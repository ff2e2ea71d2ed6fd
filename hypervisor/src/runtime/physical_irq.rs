//! Physical interrupts, taken at EL2: who each one belongs to and what happens to it.
//!
//! - A passthrough SPI, or a guest timer PPI on a core whose vCPU enabled it, is handed to the
//!   guest: priority drop, then injected with the list register's hardware link, so the guest's
//!   own deactivation deactivates the physical interrupt. If its partition is not running (or
//!   the guest has not enabled the timer), it is masked and completed instead.
//! - The console UART's interrupt brings typed bytes to the focused partition's virtual UART;
//!   the hypervisor timer shows a prompt; the maintenance interrupt means list registers freed
//!   up (they are refilled on the way back to the guest); the kick only makes the CPU look at
//!   its vCPU again.
//! - Anything else is unexpected: reported, and completed so it cannot block the CPU.

use bulkhead_config::guest_view::GUEST_TIMER_PPIS;
use bulkhead_config::{PartitionId, PcpuId};

use super::hw::Hw;
use super::partition::State;
use super::System;
use crate::vgic::VirtualIrq;

/// Who a physical interrupt belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A guest timer PPI: the vCPU this core runs.
    GuestTimer,
    /// A passthrough SPI of this partition.
    Passthrough(PartitionId),
    /// The console UART.
    Console,
    /// The hypervisor's own timer.
    HypTimer,
    /// The virtual CPU interface's maintenance interrupt.
    Maintenance,
    /// Another CPU asking this one to look at its vCPU.
    Kick,
    /// Nobody: it should not have fired.
    Unexpected,
}

impl<H: Hw> System<H> {
    /// Takes every pending physical interrupt of physical CPU `cpu` and deals with it.
    pub fn handle_irqs(&self, cpu: PcpuId) {
        while let Some(intid) = self.hw.acknowledge() {
            self.physical_irq(cpu, intid);
        }
    }

    /// Who physical interrupt `intid` belongs to.
    pub fn owner(&self, intid: u32) -> Owner {
        if GUEST_TIMER_PPIS.contains(&intid) {
            Owner::GuestTimer
        } else if let Some(Some(owner)) = self.spi_owner.get(intid as usize) {
            Owner::Passthrough(*owner)
        } else if Some(intid) == self.console_irq {
            Owner::Console
        } else if intid == H::HYP_TIMER_IRQ {
            Owner::HypTimer
        } else if intid == H::MAINTENANCE_IRQ {
            Owner::Maintenance
        } else if intid == H::KICK_SGI {
            Owner::Kick
        } else {
            Owner::Unexpected
        }
    }

    /// Deals with acknowledged interrupt `intid` on CPU `cpu`.
    fn physical_irq(&self, cpu: PcpuId, intid: u32) {
        let owner = self.owner(intid);
        if owner != Owner::GuestTimer {
            // (The guest timers' ticks would drown everything else.)
            log::trace!("CPU {cpu}: physical interrupt {intid} ({owner:?})");
        }
        match owner {
            Owner::GuestTimer => return self.forward_timer(cpu, intid),
            Owner::Passthrough(owner) => return self.forward_spi(owner, intid),
            Owner::Console => self.hw.console_input(&mut |partition, byte| {
                self.console_input(partition, byte);
            }),
            Owner::HypTimer => {
                self.hw.cancel_timer();
                self.hw.console_show_partial();
            }
            // List-register underflow: the refill happens on the way back to the guest.
            Owner::Maintenance => self.hw.set_underflow_irq(false),
            Owner::Kick => {}
            Owner::Unexpected => log::warn!("unexpected physical interrupt {intid} on CPU {cpu}"),
        }
        self.complete(intid);
    }

    /// A guest timer PPI on `cpu`: to the vCPU running there if it enabled it; otherwise masked.
    fn forward_timer(&self, cpu: PcpuId, intid: u32) {
        if let Some((p, vcpu)) = self
            .current(cpu)
            .filter(|(p, _)| p.state() == State::Running)
        {
            let irq = p
                .vgic
                .redist
                .lock()
                .get(vcpu)
                .and_then(|r| r.virq(intid, Some(intid)));
            if let Some(irq) = irq {
                self.hw.priority_drop(intid);
                self.inject(p, vcpu, irq);
                return;
            }
        }
        self.hw.set_enabled(intid, cpu, false);
        self.complete(intid);
    }

    /// A passthrough SPI of partition `owner`: to the vCPU the guest routes it to.
    fn forward_spi(&self, owner: PartitionId, intid: u32) {
        let Some(p) = self.partitions.get(owner.index()) else {
            return self.complete(intid);
        };
        if p.state() != State::Running {
            if let Some(boot) = p.vcpus.first() {
                self.hw.set_enabled(intid, boot.pcpu, false);
            }
            return self.complete(intid);
        }
        let (target, priority) = p.vgic.spi_target(intid);
        self.hw.priority_drop(intid);
        self.inject(
            p,
            target,
            VirtualIrq {
                intid,
                priority,
                hw: Some(intid),
            },
        );
    }

    /// Finishes an interrupt EL2 handled itself: priority drop and deactivation.
    fn complete(&self, intid: u32) {
        self.hw.priority_drop(intid);
        self.hw.deactivate(intid);
    }
}
