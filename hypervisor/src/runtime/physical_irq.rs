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
//! - Anything else is unexpected: disabled, completed so it cannot block the CPU, and reported,
//!   at most once a second however often it fires ([`RateLimit`]).
//!
//! On the cores of a `direct-interrupts` partition the guest takes the physical interrupts
//! itself; the hypervisor's own there (kick, timer) are Group 0 and arrive as FIQs
//! ([`System::handle_fiqs`]), served the same way.

use core::sync::atomic::{AtomicU64, Ordering};

use bulkhead_config::guest_view::GUEST_TIMER_PPIS;
use bulkhead_config::{PartitionId, PcpuId, VcpuId};

use super::hw::Hw;
use super::partition::{Partition, State};
use super::virtual_uart::PARTIAL_LINE_DELAY_MS;
use super::System;
use crate::console::Typed;
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
        let current = self.current(cpu);
        while let Some(intid) = self.hw.acknowledge() {
            self.physical_irq(cpu, current, intid);
        }
    }

    /// Takes one pending physical interrupt of physical CPU `cpu`, if any, and deals with it.
    /// Returns whether it may have changed what the CPU runs: anything but an interrupt handed
    /// to a guest (a stop or restart from another CPU comes with a kick).
    /// `current` is what the CPU runs ([`current`](Self::current)).
    pub fn handle_one_irq(&self, cpu: PcpuId, current: Option<(&Partition, VcpuId)>) -> bool {
        match self.hw.acknowledge() {
            Some(intid) => self.physical_irq(cpu, current, intid),
            None => true,
        }
    }

    /// Takes every pending Group 0 interrupt (FIQ) of physical CPU `cpu`: on a
    /// `direct-interrupts` partition's core, the hypervisor's own (the kick, its timer).
    pub fn handle_fiqs(&self, cpu: PcpuId) {
        while let Some(intid) = self.hw.acknowledge_fiq() {
            // Only these two are ever Group 0 (and `owner` stays with one caller, inlined into
            // the forwarding path).
            let owner = match intid {
                _ if intid == H::KICK_SGI => Owner::Kick,
                _ if intid == H::HYP_TIMER_IRQ => Owner::HypTimer,
                _ => Owner::Unexpected,
            };
            self.serve_hypervisor_irq(cpu, owner, intid);
            self.hw.end_fiq(intid);
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

    /// Deals with acknowledged interrupt `intid` on CPU `cpu`. Returns whether it may have
    /// changed what the CPU runs (see [`handle_one_irq`](Self::handle_one_irq)).
    fn physical_irq(&self, cpu: PcpuId, current: Option<(&Partition, VcpuId)>, intid: u32) -> bool {
        match self.owner(intid) {
            Owner::GuestTimer => self.forward_timer(cpu, current, intid),
            Owner::Passthrough(owner) => self.forward_spi(owner, intid),
            owner => {
                self.hypervisor_irq(cpu, owner, intid);
                return true;
            }
        }
        false
    }

    /// An interrupt of the hypervisor's own (or an unexpected one): handled and completed here.
    /// Kept out of line, so the forwarding path stays short.
    #[inline(never)]
    fn hypervisor_irq(&self, cpu: PcpuId, owner: Owner, intid: u32) {
        self.serve_hypervisor_irq(cpu, owner, intid);
        self.complete(intid);
    }

    /// What [`hypervisor_irq`](Self::hypervisor_irq) does before completing the interrupt
    /// (shared with [`handle_fiqs`](Self::handle_fiqs), which ends it as Group 0).
    fn serve_hypervisor_irq(&self, cpu: PcpuId, owner: Owner, intid: u32) {
        log::trace!("CPU {cpu}: physical interrupt {intid} ({owner:?})");
        match owner {
            Owner::Console => {
                let show_later = self.hw.console_interrupt(&mut |typed| match typed {
                    Typed::Byte(partition, byte) => self.console_input(partition, byte),
                    Typed::Monitor => self.print_monitor("monitor (Ctrl-T s):"),
                });
                if show_later {
                    self.hw.arm_timer_ms(PARTIAL_LINE_DELAY_MS);
                }
            }
            Owner::HypTimer => {
                self.hw.cancel_timer();
                if self.hw.console_show_partial() {
                    self.hw.arm_timer_ms(PARTIAL_LINE_DELAY_MS);
                }
            }
            // List-register underflow: the refill happens on the way back to the guest.
            Owner::Maintenance => self.hw.set_underflow_irq(false),
            Owner::Kick | Owner::GuestTimer | Owner::Passthrough(_) => {}
            Owner::Unexpected => {
                self.hw.set_enabled(intid, cpu, false);
                let now = self.hw.counter();
                if let Some(missed) = self.unexpected.allow(now, self.hw.counter_frequency()) {
                    log::warn!(
                        "unexpected physical interrupt {intid} on CPU {cpu}: disabled \
                         ({missed} more unexpected interrupts went unreported before it)"
                    );
                }
            }
        }
    }

    /// A guest timer PPI on `cpu`: to the vCPU running there (`current`) if it enabled it;
    /// otherwise masked.
    fn forward_timer(&self, cpu: PcpuId, current: Option<(&Partition, VcpuId)>, intid: u32) {
        if let Some((p, vcpu)) = current.filter(|(p, _)| p.state() == State::Running) {
            let irq = p
                .vgic
                .redist
                .lock()
                .get(vcpu)
                .and_then(|r| r.virq(intid, Some(intid)));
            if let (Some(irq), Some(v)) = (irq, p.vcpu(vcpu)) {
                self.hw.priority_drop(intid);
                self.inject_here(v, irq);
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
                source: None,
            },
        );
    }

    /// Finishes an interrupt EL2 handled itself: priority drop and deactivation.
    fn complete(&self, intid: u32) {
        self.hw.priority_drop(intid);
        self.hw.deactivate(intid);
    }
}

/// Lets a report through at most once a second, counting the ones held back, so an interrupt
/// storm cannot flood the console (each report costs the reporting CPU a console write).
#[derive(Debug, Default)]
pub struct RateLimit {
    /// Counter value of the last report (0: none yet).
    last: AtomicU64,
    /// Reports held back since.
    held: AtomicU64,
}

impl RateLimit {
    /// Whether to report now, at counter value `now` of a counter ticking `frequency` times a
    /// second: `Some(held back since the last report)`, or `None` to stay quiet.
    pub fn allow(&self, now: u64, frequency: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.wrapping_sub(last) >= frequency;
        if due
            && self
                .last
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.held.swap(0, Ordering::Relaxed))
        } else {
            self.held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn a_storm_is_reported_once_a_second() {
        let limit = RateLimit::default();
        assert_eq!(limit.allow(5, 100), Some(0));
        let burst = (6..100).filter(|&t| limit.allow(t, 100).is_some()).count();
        assert_eq!(burst, 0, "nothing more within the second");
        assert_eq!(
            limit.allow(105, 100),
            Some(94),
            "then one report counting the rest"
        );
        assert_eq!(limit.allow(106, 100), None);
    }
}
