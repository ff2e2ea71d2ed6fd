//! A partition's virtual GIC at run time: connects the register models (`crate::vgic`) to
//! trapped guest accesses, the vCPUs' queues and list registers, and the physical GIC.
//!
//! - A partition's GICD and GICR windows are not mapped in its stage 2; accesses trap and are
//!   emulated by the models. Their actions reach the physical GIC only for interrupts the
//!   partition owns: its passthrough SPIs, and the timer PPIs on its own vCPUs' cores. On a
//!   GICv2 platform the partition has a GICv2 distributor and no GICR window; its GICC window
//!   is the hardware's virtual CPU interface, mapped in its stage 2 (`Partition::new`).
//! - Each vCPU has a queue of interrupts waiting for a list register; any CPU may add to it
//!   (`System::inject`, which kicks the vCPU's core), and the vCPU's own core moves it into the
//!   list registers just before returning to the guest (`System::flush`). What does not fit
//!   stays queued (underflow maintenance interrupt), never dropped.

use core::sync::atomic::Ordering;

use bulkhead_config::guest_view::GUEST_TIMER_PPIS;
use bulkhead_config::{BoardConfig, GuestPhysAddr, GuestRange, IrqKind, PartitionId, VcpuId};

use super::hw::{Hw, SpiChange};
use super::partition::{Partition, Vcpu};
use super::System;
use crate::vgic::{
    distributor_v2, sgi_targets, AccessError, ConfigError, ListReg, LrState, PendingQueue,
    RedistributorRegion, VgicAction, VirtualDistributor, VirtualIrq, MAX_SPI_INTID,
};

/// Priority given to an interrupt whose priority the guest has not set.
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// The most list registers any GIC has.
const MAX_LRS: usize = 16;

/// A partition's virtual GIC.
pub struct Vgic {
    /// Guest-physical GICD and GICR windows: where the platform's GIC is (no GICR window, an
    /// empty range, on a GICv2).
    pub gicd: GuestRange,
    pub gicr: GuestRange,
    /// Whether the partition sees a GICv2 (its platform's): its GICD window is
    /// [`distributor_v2`]'s.
    pub v2: bool,
    pub dist: spin::Mutex<VirtualDistributor>,
    /// Each vCPU's SGIs and PPIs: its GICv3 redistributor, or its bank of a GICv2 distributor.
    pub redist: spin::Mutex<RedistributorRegion>,
    /// The virtual UART's INTID, if the partition has one (purely virtual, never physical).
    pub vuart_intid: Option<u32>,
    /// Every purely virtual SPI (the virtual UART's, the channels' doorbells): never physical.
    pub virtual_spis: alloc::vec::Vec<u32>,
}

impl Vgic {
    /// The virtual GIC of partition `id` of `config`, in its reset state.
    pub fn new(config: &BoardConfig, id: PartitionId) -> Result<Self, ConfigError> {
        let p = &config.partitions[id.index()];
        let vcpus = p.cpus.len();
        let dist = VirtualDistributor::new(&config.partition_spis(id), vcpus, MAX_SPI_INTID)?;
        let redist = RedistributorRegion::new(vcpus)?;
        let gic = &config.platform.gic;
        let windows = gic.guest_windows(vcpus);
        let window = |n: usize| windows.get(n).map(|&(_, w)| w);
        let nothing = GuestRange::new(GuestPhysAddr(0), 0);
        Ok(Self {
            gicd: window(0).unwrap_or(nothing),
            gicr: if gic.is_v2() {
                nothing
            } else {
                window(1).unwrap_or(nothing)
            },
            v2: gic.is_v2(),
            dist: spin::Mutex::new(dist),
            redist: spin::Mutex::new(redist),
            vuart_intid: p.virtual_uart.map(|_| config.virtual_uart_intid()),
            virtual_spis: config.virtual_spis(id),
        })
    }

    /// Whether the guest's SPI `intid` is a physical one (passed through), not purely virtual.
    pub fn is_physical(&self, intid: u32) -> bool {
        !self.virtual_spis.contains(&intid)
    }

    /// Back to the reset state (the partition restarts).
    pub fn reset(&self, config: &BoardConfig, id: PartitionId) {
        if let Ok(fresh) = Self::new(config, id) {
            *self.dist.lock() = fresh.dist.into_inner();
            *self.redist.lock() = fresh.redist.into_inner();
        }
    }

    /// The priority the guest gave SGI/PPI `intid` on `vcpu`.
    fn banked_priority(&self, vcpu: VcpuId, intid: u32) -> u8 {
        self.redist
            .lock()
            .get(vcpu)
            .and_then(|r| r.priority(intid))
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// Where the guest routes SPI `intid` (its vCPU) and at which priority.
    pub fn spi_target(&self, intid: u32) -> (VcpuId, u8) {
        let dist = self.dist.lock();
        (
            dist.route(intid).unwrap_or(VcpuId(0)),
            dist.priority(intid).unwrap_or(DEFAULT_PRIORITY),
        )
    }
}

/// Whether `intid` is an SGI that partition `p`, with `direct-interrupts`, takes physically on
/// its cores: any but the kick, which is the hypervisor's there.
pub(super) fn is_direct_sgi<H: Hw>(p: &Partition, intid: u32) -> bool {
    p.config.direct_interrupts && intid < 16 && intid != H::KICK_SGI
}

/// Which emulated GIC window an address falls in, and the offset in it.
pub enum GicWindow {
    Distributor(u64),
    Redistributors(u64),
}

/// Outcome of an emulated GIC access: the value for a read.
pub type GicAccess = Result<Option<u64>, AccessError>;

/// Reserved registers read as zero and ignore writes, as the architecture says (logged).
fn raz_wi_unknown(p: &Partition, result: GicAccess) -> GicAccess {
    match result {
        Err(AccessError::UnknownRegister { offset }) => {
            log::debug!(
                "{}: GIC register at offset {offset:#x} is not emulated: RAZ/WI",
                p.name
            );
            Ok(Some(0))
        }
        other => other,
    }
}

impl<H: Hw> System<H> {
    /// Emulates a guest access to its GICD or GICR window. Reserved registers read as zero and
    /// ignore writes, as the architecture says.
    pub(super) fn gic_access(
        &self,
        p: &Partition,
        window: GicWindow,
        size: u8,
        write: Option<u64>,
    ) -> GicAccess {
        let vgic = &p.vgic;
        if let (true, GicWindow::Distributor(offset)) = (vgic.v2, &window) {
            return self.gicv2_distributor_access(p, *offset, size, write);
        }
        let result = match (window, write) {
            (GicWindow::Distributor(offset), None) => vgic.dist.lock().read(offset, size).map(Some),
            (GicWindow::Distributor(offset), Some(value)) => {
                let actions = vgic.dist.lock().write(offset, size, value);
                actions.map(|actions| {
                    for action in &actions {
                        self.apply_spi_action(p, *action);
                    }
                    self.vuart_level_changed(p, false);
                    self.doorbells_changed(p);
                    None
                })
            }
            (GicWindow::Redistributors(offset), None) => {
                vgic.redist.lock().read(offset, size).map(Some)
            }
            (GicWindow::Redistributors(offset), Some(value)) => {
                let written = vgic.redist.lock().write(offset, size, value);
                written.map(|(vcpu, actions)| {
                    for action in &actions {
                        self.apply_banked_action(p, vcpu, *action);
                    }
                    None
                })
            }
        };
        raz_wi_unknown(p, result)
    }

    /// An access to a GICv2 distributor, by the vCPU this core runs: its SGIs and PPIs are
    /// banked there.
    fn gicv2_distributor_access(
        &self,
        p: &Partition,
        offset: u64,
        size: u8,
        write: Option<u64>,
    ) -> GicAccess {
        let vgic = &p.vgic;
        let Some(vcpu) = p.vcpu_on(self.hw.this_cpu()) else {
            return Err(AccessError::OutOfRange { offset });
        };
        let result = match write {
            None => {
                let (dist, redist) = (vgic.dist.lock(), vgic.redist.lock());
                distributor_v2::read(&dist, &redist, vcpu, offset, size).map(Some)
            }
            Some(value) => {
                let actions = {
                    let (mut dist, mut redist) = (vgic.dist.lock(), vgic.redist.lock());
                    distributor_v2::write(&mut dist, &mut redist, vcpu, offset, size, value)
                };
                actions.map(|actions| {
                    for action in &actions {
                        if distributor_v2::is_banked(action) {
                            self.apply_banked_action(p, vcpu, *action);
                        } else {
                            self.apply_spi_action(p, *action);
                        }
                    }
                    self.vuart_level_changed(p, false);
                    None
                })
            }
        };
        raz_wi_unknown(p, result)
    }

    /// Applies a distributor action (about an SPI the partition owns) to the physical GIC.
    fn apply_spi_action(&self, p: &Partition, action: VgicAction) {
        log::trace!("partition {}: GICD action {action:?}", p.name);
        let physical = |intid| p.vgic.is_physical(intid);
        let boot_cpu = p.vcpus.first().map(|v| v.pcpu);
        match action {
            VgicAction::Enable { intid, enable } if physical(intid) => {
                if let Some(cpu) = boot_cpu {
                    self.hw.set_enabled(intid, cpu, enable);
                }
            }
            VgicAction::SetTrigger { intid, edge } if physical(intid) => {
                if let Some(cpu) = boot_cpu {
                    self.hw.set_edge_triggered(intid, cpu, edge);
                }
            }
            VgicAction::Route { intid, vcpu } if physical(intid) => {
                if let Some(v) = p.vcpu(vcpu) {
                    self.hw.route_spi(intid, v.pcpu);
                }
            }
            // A passthrough SPI made pending by the guest is made pending in the hardware: it
            // arrives like any of its interrupts, once the previous one is deactivated (a
            // virtual copy could sit behind a hardware-active one in a list register forever).
            VgicAction::SetPending { intid } if physical(intid) => {
                self.hw.change_spi(intid, SpiChange::SetPending)
            }
            VgicAction::SetPending { intid } => {
                let (target, priority) = p.vgic.spi_target(intid);
                self.inject_virtual(p, target, intid, priority);
            }
            VgicAction::ClearPending { intid } => {
                for v in &p.vcpus {
                    v.pending.lock().remove(intid);
                }
                if physical(intid) {
                    self.hw.change_spi(intid, SpiChange::ClearPending);
                }
            }
            // The guest deactivating one of its SPIs by hand (Linux does at probe): the physical
            // interrupt must not stay active, or the device's interrupt is dead.
            VgicAction::ClearActive { intid } if physical(intid) => {
                self.hw.change_spi(intid, SpiChange::ClearActive)
            }
            _ => {}
        }
    }

    /// Applies a redistributor action (about an SGI or PPI of `vcpu`), or a GICv2 SGI.
    fn apply_banked_action(&self, p: &Partition, vcpu: VcpuId, action: VgicAction) {
        let Some(v) = p.vcpu(vcpu) else { return };
        match action {
            VgicAction::SendSgi {
                intid,
                target,
                source,
            } => {
                let priority = p.vgic.banked_priority(target, intid);
                self.inject(
                    p,
                    target,
                    VirtualIrq {
                        intid,
                        priority,
                        hw: None,
                        source: Some(source),
                    },
                );
            }
            VgicAction::Enable { intid, enable } if GUEST_TIMER_PPIS.contains(&intid) => {
                self.hw.set_enabled(intid, v.pcpu, enable)
            }
            // A `direct-interrupts` partition's SGIs are physical on its own cores.
            VgicAction::Enable { intid, enable } if is_direct_sgi::<H>(p, intid) => {
                self.hw.set_enabled(intid, v.pcpu, enable)
            }
            VgicAction::SetPending { intid } => {
                let priority = p.vgic.banked_priority(vcpu, intid);
                self.inject_virtual(p, vcpu, intid, priority);
            }
            VgicAction::ClearPending { intid } => {
                v.pending.lock().remove(intid);
            }
            _ => {}
        }
    }

    /// Injects the purely virtual interrupt `intid` (no physical interrupt behind it) into `vcpu`.
    /// A `direct-interrupts` partition has no virtual CPU interface: nothing is injected (its
    /// virtual UART's interrupt never fires; its guest polls).
    pub(super) fn inject_virtual(&self, p: &Partition, vcpu: VcpuId, intid: u32, priority: u8) {
        if p.config.direct_interrupts {
            return;
        }
        self.inject(
            p,
            vcpu,
            VirtualIrq {
                intid,
                priority,
                hw: None,
                source: None,
            },
        );
    }

    /// Gives `irq` to `vcpu` of `p` and makes sure that vCPU's core will see it. A hardware
    /// interrupt for the vCPU this core runs, with nothing queued ahead of it, goes straight into
    /// a free list register: the fast path of a forwarded interrupt, which then needs neither
    /// the queue nor a look at the other list registers (the same interrupt cannot sit in one:
    /// its physical side stays active until the guest's deactivation frees the register).
    /// Anything else is queued, for the vCPU's core to move into list registers on its way back
    /// to the guest ([`flush`](Self::flush)).
    pub(super) fn inject(&self, p: &Partition, vcpu: VcpuId, irq: VirtualIrq) {
        let Some(v) = p.vcpu(vcpu) else { return };
        if v.pcpu == self.hw.this_cpu() {
            return self.inject_here(v, irq);
        }
        self.queue(v, irq);
        self.hw.kick(v.pcpu);
    }

    /// [`inject`](Self::inject) for `v`, the vCPU this core runs.
    pub(super) fn inject_here(&self, v: &Vcpu, irq: VirtualIrq) {
        // (Another core may queue something for this vCPU meanwhile: it then kicks this core,
        // and the queue goes into list registers in priority order beside this one.)
        if irq.hw.is_some() && !v.queued.load(Ordering::Acquire) {
            if let Some(n) = self.hw.free_lr() {
                self.hw.write_lr(n, ListReg::pending(irq));
                v.injected.count_here();
                return;
            }
        }
        self.queue(v, irq);
    }

    /// Queues `irq` for `v`, for its core's next [`flush`](Self::flush).
    fn queue(&self, v: &Vcpu, irq: VirtualIrq) {
        let mut queue = v.pending.lock();
        queue.push(irq);
        v.injected.count();
        v.queued.store(true, Ordering::Release);
    }

    /// Moves `vcpu`'s queued interrupts into this CPU's list registers. Called just before
    /// returning to the guest.
    #[inline]
    pub(super) fn flush(&self, p: &Partition, vcpu: VcpuId) {
        // Nothing queued (the common case): nothing to do. An interrupt another core queues
        // meanwhile comes with a kick, which brings this core back here. (The underflow
        // interrupt may stay on if the queue was emptied otherwise; it then fires once and is
        // turned off.)
        if let Some(v) = p.vcpu(vcpu).filter(|v| v.queued.load(Ordering::Acquire)) {
            self.flush_queue(v);
        }
    }

    /// [`flush`](Self::flush) when something may be queued.
    #[inline(never)]
    fn flush_queue(&self, v: &Vcpu) {
        let mut queue = v.pending.lock();
        if queue.is_empty() {
            v.queued.store(false, Ordering::Release);
            self.hw.set_underflow_irq(false);
            return;
        }
        let n = self.hw.lr_count().min(MAX_LRS);
        let mut lrs = [ListReg::EMPTY; MAX_LRS];
        for (i, lr) in lrs.iter_mut().enumerate().take(n) {
            *lr = self.hw.read_lr(i);
        }
        let before = lrs;
        let more = queue.refill(&mut lrs[..n]);
        v.queued.store(more, Ordering::Release);
        drop(queue);
        for i in 0..n {
            if lrs[i] != before[i] {
                self.hw.write_lr(i, lrs[i]);
            }
        }
        self.hw.set_underflow_irq(more);
    }

    /// Whether `intid` is queued for `vcpu` or (if it is this core's vCPU) sits in a list
    /// register.
    pub(super) fn in_flight(&self, p: &Partition, vcpu: VcpuId, intid: u32) -> bool {
        let Some(v) = p.vcpu(vcpu) else {
            return false;
        };
        if v.pending.lock().contains(intid) {
            return true;
        }
        v.pcpu == self.hw.this_cpu()
            && (0..self.hw.lr_count()).any(|i| self.hw.read_lr(i).holds(intid))
    }

    /// Whether the guest on this core is handling `intid` right now (active in a list register).
    pub(super) fn handling(&self, intid: u32) -> bool {
        (0..self.hw.lr_count()).any(|i| {
            let lr = self.hw.read_lr(i);
            lr.holds(intid) && matches!(lr.state, LrState::Active | LrState::PendingActive)
        })
    }

    /// A trapped write of `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`) by `vcpu`: SGIs to vCPUs of the
    /// same partition only.
    ///
    /// A `direct-interrupts` partition's SGIs are physical ones, sent to its target vCPUs' cores,
    /// where the guest takes them itself; except the kick's INTID, the hypervisor's on those
    /// cores, which is dropped.
    pub(super) fn send_sgi(&self, p: &Partition, vcpu: VcpuId, value: u64) {
        let (intid, targets) = sgi_targets(value, vcpu, p.vcpus.len());
        if p.config.direct_interrupts {
            if intid == H::KICK_SGI {
                log::debug!("{}: SGI {intid} is the hypervisor's here: dropped", p.name);
                return;
            }
            for target in targets.iter() {
                if let Some(t) = p.vcpu(target) {
                    self.hw.send_sgi(t.pcpu, intid);
                }
            }
            return;
        }
        for target in targets.iter() {
            let priority = p.vgic.banked_priority(target, intid);
            self.inject_virtual(p, target, intid, priority);
        }
    }

    /// Puts the physical side of `p`'s passthrough SPIs in their boot state: disabled, neither
    /// active nor pending, trigger as the platform describes it, routed to the core of vCPU 0.
    pub(super) fn reset_passthrough(&self, p: &Partition) {
        let Some(boot) = p.vcpus.first() else { return };
        for d in p.config.device_indices() {
            let Some(device) = self.config.platform.devices.get(d) else {
                continue;
            };
            for irq in device.irqs.iter().filter(|i| i.kind == IrqKind::Spi) {
                let intid = irq.intid();
                self.hw.set_enabled(intid, boot.pcpu, false);
                // Whatever a previous run left acknowledged or pending goes.
                self.hw.change_spi(intid, SpiChange::ClearActive);
                self.hw.change_spi(intid, SpiChange::ClearPending);
                self.hw
                    .set_edge_triggered(intid, boot.pcpu, irq.flags & 0x3 != 0);
                self.hw.route_spi(intid, boot.pcpu);
            }
        }
    }

    /// Disables `p`'s passthrough SPIs (when it stops).
    pub(super) fn disable_passthrough(&self, p: &Partition) {
        let Some(boot) = p.vcpus.first() else { return };
        for spi in self.config.partition_spis(p.id) {
            if p.vgic.is_physical(spi) {
                self.hw.set_enabled(spi, boot.pcpu, false);
            }
        }
    }

    /// Fresh virtual GIC state and empty queues for a restarting partition.
    pub(super) fn reset_vgic(&self, p: &Partition) {
        p.vgic.reset(&self.config, p.id);
        for v in &p.vcpus {
            *v.pending.lock() = PendingQueue::new();
        }
        self.reset_passthrough(p);
    }
}
