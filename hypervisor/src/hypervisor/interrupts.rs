//! The virtual GICv3 on the target: connects the portable register models (`crate::vgic`) to
//! trapped guest accesses, the list registers and the physical GIC.
//!
//! - A partition's GICD and GICR pages are not mapped in its stage 2; accesses trap and are
//!   emulated by the models. Their actions reach the physical GIC only for interrupts the
//!   partition owns: its passthrough SPIs, and the timer PPIs of its own vCPUs' cores.
//! - Physical interrupts are taken at EL2. A passthrough SPI or a guest timer PPI gets a priority
//!   drop and is injected with the list register's HW bit, so the guest's EOI deactivates it.
//!   The virtual UART's interrupt and SGIs between vCPUs are purely virtual.
//! - Each vCPU has a queue of interrupts waiting for a list register; any CPU may add to it
//!   (then kicks the vCPU's core), and the vCPU's own core moves it into the list registers
//!   just before returning to the guest. What does not fit stays queued (underflow
//!   maintenance interrupt), never dropped.

use alloc::string::String;

use bulkhead_config::{BoardConfig, GuestPhysAddr, GuestRange, IrqKind, PartitionId};

use super::partition::{PartitionRt, State};
use crate::arch::aarch64::{cpu, gic, gich};
use crate::vgic::{
    sgi_targets, AccessError, PendingQueue, RedistributorRegion, VgicAction, VirtualDistributor,
    VirtualIrq, GICD_SIZE,
};

/// The EL1 virtual timer and EL1 physical timer PPIs: owned by whichever vCPU runs on the core.
pub const FORWARDED_PPIS: [u32; 2] = [27, 30];
/// The GIC maintenance interrupt (list register underflow).
pub const MAINTENANCE_PPI: u32 = 25;
/// Priority given to an interrupt whose priority the guest has not set.
const DEFAULT_PRIORITY: u8 = 0xa0;

/// A partition's virtual GIC.
pub struct Vgic {
    /// Guest-physical GICD page and GICR region.
    pub gicd: GuestRange,
    pub gicr: GuestRange,
    pub dist: spin::Mutex<VirtualDistributor>,
    pub redist: spin::Mutex<RedistributorRegion>,
    /// The virtual UART's INTID, if the partition has one.
    pub vuart_intid: Option<u32>,
}

impl Vgic {
    /// The virtual GIC of partition `index`, at the guest-physical addresses of the platform's GIC.
    pub fn new(config: &BoardConfig, index: usize) -> Result<Self, String> {
        let p = &config.partitions[index];
        let vcpus = p.cpus.len();
        let spis = config.partition_spis(PartitionId(index));
        let dist = VirtualDistributor::new(&spis, vcpus, crate::vgic::MAX_SPI_INTID)
            .map_err(|e| alloc::format!("virtual GIC: {e:?}"))?;
        let redist =
            RedistributorRegion::new(vcpus).map_err(|e| alloc::format!("virtual GIC: {e:?}"))?;
        let gicr_base = config
            .platform
            .gic
            .redistributors
            .first()
            .map_or(GuestPhysAddr(0), |r| r.base.identity());
        Ok(Self {
            gicd: GuestRange::new(config.platform.gic.distributor.base.identity(), GICD_SIZE),
            gicr: GuestRange::new(gicr_base, redist.size()),
            dist: spin::Mutex::new(dist),
            redist: spin::Mutex::new(redist),
            vuart_intid: p.virtual_uart.map(|_| config.virtual_uart_intid()),
        })
    }
}

/// Puts the physical side of partition `p`'s passthrough SPIs in their boot state: disabled,
/// trigger as the platform describes it, routed to the core of vCPU 0.
pub fn reset_passthrough(config: &BoardConfig, p: &PartitionRt) {
    let Some(boot) = p.vcpus.first() else { return };
    for &d in &p.config.devices {
        let Some(device) = config.platform.devices.get(d) else {
            continue;
        };
        for irq in device.irqs.iter().filter(|i| i.kind == IrqKind::Spi) {
            let intid = irq.intid();
            gic::set_enabled(intid, boot.pcpu, false);
            gic::set_trigger(intid, boot.pcpu, irq.flags & 0x3 != 0);
            gic::route_spi(intid, boot.pcpu_mpidr);
        }
    }
}

/// Disables partition `p`'s passthrough SPIs (when it stops).
pub fn disable_passthrough(config: &BoardConfig, p: &PartitionRt) {
    for spi in config.partition_spis(PartitionId(p.index)) {
        if Some(spi) != p.vgic.vuart_intid {
            gic::set_enabled(spi, 0, false);
        }
    }
}

/// Prepares this core's virtual CPU interface and timer interrupts for a vCPU starting afresh.
pub fn reset_this_cpu() {
    gich::reset();
    gich::stop_guest_timers();
    let me = cpu::id();
    for ppi in FORWARDED_PPIS {
        gic::set_enabled(ppi, me, false);
        gich::deactivate(ppi);
    }
    gic::set_enabled(MAINTENANCE_PPI, me, true);
    gic::set_enabled(crate::arch::aarch64::timer::HYP_TIMER_PPI, me, true);
}

/// Outcome of an emulated GIC access: `Ok(Some(value))` for a read.
pub type Access = Result<Option<u64>, String>;

/// Emulates a guest access to its GICD or GICR, if `ipa` is in one of them.
pub fn mmio(p: &PartitionRt, ipa: u64, size: u8, write: Option<u64>) -> Option<Access> {
    let vgic = &p.vgic;
    let ipa = GuestPhysAddr(ipa);
    if let Some(offset) = vgic.gicd.offset_of(ipa) {
        let result = match write {
            None => vgic.dist.lock().read(offset, size).map(Some),
            Some(value) => {
                let actions = vgic.dist.lock().write(offset, size, value);
                actions.map(|actions| {
                    for action in &actions {
                        apply_spi_action(p, *action);
                    }
                    vuart_level_changed(p, false);
                    None
                })
            }
        };
        return Some(access_result(result, "GICD", offset));
    }
    if let Some(offset) = vgic.gicr.offset_of(ipa) {
        let result = match write {
            None => vgic.redist.lock().read(offset, size).map(Some),
            Some(value) => {
                let written = vgic.redist.lock().write(offset, size, value);
                written.map(|(vcpu, actions)| {
                    for action in &actions {
                        apply_banked_action(p, vcpu, *action);
                    }
                    None
                })
            }
        };
        return Some(access_result(result, "GICR", offset));
    }
    None
}

fn access_result(result: Result<Option<u64>, AccessError>, what: &str, offset: u64) -> Access {
    match result {
        Ok(v) => Ok(v),
        // Reserved registers read as zero and ignore writes, as the architecture says.
        Err(AccessError::UnknownRegister { .. }) => {
            log::debug!("{what} register at offset {offset:#x} is not emulated: RAZ/WI");
            Ok(Some(0))
        }
        Err(e) => Err(alloc::format!(
            "bad access to the virtual {what} at offset {offset:#x}: {e:?}"
        )),
    }
}

/// Applies a distributor action (about an SPI the partition owns) to the physical GIC.
fn apply_spi_action(p: &PartitionRt, action: VgicAction) {
    log::trace!("partition {}: GICD action {action:?}", p.name);
    let is_vuart = |intid| Some(intid) == p.vgic.vuart_intid;
    match action {
        VgicAction::Enable { intid, enable } if !is_vuart(intid) => {
            gic::set_enabled(intid, 0, enable)
        }
        VgicAction::SetTrigger { intid, edge } if !is_vuart(intid) => {
            gic::set_trigger(intid, 0, edge)
        }
        VgicAction::Route { intid, vcpu } if !is_vuart(intid) => {
            if let Some(v) = p.vcpus.get(vcpu) {
                gic::route_spi(intid, v.pcpu_mpidr);
            }
        }
        VgicAction::SetPending { intid } => {
            let (target, priority) = spi_target(p, intid);
            inject_virtual(p, target, intid, priority);
        }
        VgicAction::ClearPending { intid } => {
            for v in &p.vcpus {
                v.pending.lock().remove(intid);
            }
        }
        _ => {}
    }
}

/// Applies a redistributor action (about an SGI or PPI of `vcpu`).
fn apply_banked_action(p: &PartitionRt, vcpu: usize, action: VgicAction) {
    let Some(v) = p.vcpus.get(vcpu) else { return };
    match action {
        VgicAction::Enable { intid, enable } if FORWARDED_PPIS.contains(&intid) => {
            gic::set_enabled(intid, v.pcpu, enable)
        }
        VgicAction::SetPending { intid } => {
            let priority = p
                .vgic
                .redist
                .lock()
                .get(vcpu)
                .and_then(|r| r.priority(intid));
            inject_virtual(p, vcpu, intid, priority.unwrap_or(DEFAULT_PRIORITY));
        }
        VgicAction::ClearPending { intid } => {
            v.pending.lock().remove(intid);
        }
        _ => {}
    }
}

/// Where the guest routes SPI `intid` (its vCPU) and at which priority.
fn spi_target(p: &PartitionRt, intid: u32) -> (usize, u8) {
    let dist = p.vgic.dist.lock();
    (
        dist.route(intid).unwrap_or(0),
        dist.priority(intid).unwrap_or(DEFAULT_PRIORITY),
    )
}

/// Injects the purely virtual interrupt `intid` (no physical interrupt behind it) into `vcpu`.
fn inject_virtual(p: &PartitionRt, vcpu: usize, intid: u32, priority: u8) {
    inject(
        p,
        vcpu,
        VirtualIrq {
            intid,
            priority,
            hw: None,
        },
    );
}

/// Queues `irq` for `vcpu` of `p` and makes sure that vCPU's core will see it.
pub fn inject(p: &PartitionRt, vcpu: usize, irq: VirtualIrq) {
    let Some(v) = p.vcpus.get(vcpu) else { return };
    v.pending.lock().push(irq);
    if v.pcpu != cpu::id() {
        gic::kick(v.pcpu_mpidr);
    }
}

/// Moves this vCPU's queued interrupts into the list registers. Called just before returning
/// to the guest.
pub fn flush(p: &PartitionRt, vcpu: usize) {
    let Some(v) = p.vcpus.get(vcpu) else { return };
    let mut queue = v.pending.lock();
    if queue.is_empty() {
        gich::set_underflow_irq(false);
        return;
    }
    let n = gich::lr_count();
    let mut lrs = [0u64; gich::MAX_LRS];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = gich::read_lr(i);
    }
    let before = lrs;
    let more = queue.refill(&mut lrs[..n]);
    drop(queue);
    for i in 0..n {
        if lrs[i] != before[i] {
            gich::write_lr(i, lrs[i]);
        }
    }
    gich::set_underflow_irq(more);
}

/// Whether `intid` is queued for `vcpu` or (if it is this core's vCPU) sits in a list register.
fn in_flight(p: &PartitionRt, vcpu: usize, intid: u32) -> bool {
    let Some(v) = p.vcpus.get(vcpu) else {
        return false;
    };
    if v.pending.lock().contains(intid) {
        return true;
    }
    v.pcpu == cpu::id()
        && (0..gich::lr_count()).any(|i| {
            let lr = crate::vgic::decode_lr(gich::read_lr(i));
            lr.state != crate::vgic::LrState::Invalid && lr.vintid == intid
        })
}

/// Prepares the virtual UART for a guest access: tells it whether the guest polls (its
/// distributor is off) and opens its receiver if the guest is handling the UART's interrupt on
/// this core right now (see `VirtualPl011::open_rx`).
pub fn prepare_vuart_access(p: &PartitionRt, vuart: &mut crate::vuart::VirtualPl011) {
    // Nothing to decide while nothing is held back (the common case: console output).
    if vuart.rx_is_open() || !vuart.has_held_input() {
        return;
    }
    let Some(intid) = p.vgic.vuart_intid else {
        vuart.open_rx();
        return;
    };
    vuart.set_polled(!p.vgic.dist.lock().group1_enabled());
    let handling = (0..gich::lr_count()).any(|i| {
        let lr = crate::vgic::decode_lr(gich::read_lr(i));
        lr.vintid == intid
            && matches!(
                lr.state,
                crate::vgic::LrState::Active | crate::vgic::LrState::PendingActive
            )
    });
    if handling {
        log::trace!("partition {}: virtual UART receiver opened", p.name);
        vuart.open_rx();
    }
}

/// Re-evaluates the virtual UART's interrupt line. `new_data` is set when input just arrived:
/// then the interrupt is raised even if the guest is still handling the previous one.
pub fn vuart_level_changed(p: &PartitionRt, new_data: bool) {
    if p.vuart.lock().interrupt_pending() {
        vuart_line_high(p, new_data);
    }
}

/// The virtual UART's interrupt line is high: injects its interrupt where the guest routes it,
/// if the guest enabled it and it is not already on its way (unless `new_data`).
pub fn vuart_line_high(p: &PartitionRt, new_data: bool) {
    let Some(intid) = p.vgic.vuart_intid else {
        return;
    };
    if p.state() != State::Running {
        return;
    }
    let dist = p.vgic.dist.lock();
    let enabled = dist.group1_enabled() && dist.is_enabled(intid);
    drop(dist);
    if !enabled {
        return;
    }
    let (target, priority) = spi_target(p, intid);
    log::trace!(
        "partition {}: virtual UART interrupt line high (new data: {new_data})",
        p.name
    );
    if new_data || !in_flight(p, target, intid) {
        inject_virtual(p, target, intid, priority);
    }
}

/// A trapped write of `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`) by `vcpu`: SGIs to vCPUs of the
/// same partition only.
pub fn send_sgi(p: &PartitionRt, vcpu: usize, value: u64) {
    let (intid, targets) = sgi_targets(value, vcpu, p.vcpus.len());
    for target in targets.iter() {
        let priority = p
            .vgic
            .redist
            .lock()
            .get(target)
            .and_then(|r| r.priority(intid));
        inject_virtual(p, target, intid, priority.unwrap_or(DEFAULT_PRIORITY));
    }
}

/// Handles a physical interrupt that belongs to a guest: a passthrough SPI or a forwarded timer
/// PPI. Returns false if `intid` is not one of those.
pub fn forward_physical(intid: u32) -> bool {
    let sys = super::boot::system();
    if FORWARDED_PPIS.contains(&intid) {
        let me = cpu::id();
        let running = sys
            .assignment
            .get(me)
            .copied()
            .flatten()
            .map(|(p, v)| (&sys.partitions[p], v));
        match running {
            Some((p, v)) if p.state() == State::Running => {
                let redist = p.vgic.redist.lock();
                let enabled = redist.get(v).is_some_and(|r| r.is_enabled(intid));
                let priority = redist
                    .get(v)
                    .and_then(|r| r.priority(intid))
                    .unwrap_or(DEFAULT_PRIORITY);
                drop(redist);
                if enabled {
                    gic::priority_drop(intid);
                    inject(
                        p,
                        v,
                        VirtualIrq {
                            intid,
                            priority,
                            hw: Some(intid),
                        },
                    );
                    return true;
                }
            }
            _ => {}
        }
        gic::set_enabled(intid, me, false);
        gic::complete(intid);
        return true;
    }
    let Some(Some(owner)) = sys.spi_owner.get(intid as usize) else {
        return false;
    };
    let p = &sys.partitions[*owner];
    if p.state() != State::Running {
        gic::set_enabled(intid, 0, false);
        gic::complete(intid);
        return true;
    }
    let (target, priority) = spi_target(p, intid);
    gic::priority_drop(intid);
    inject(
        p,
        target,
        VirtualIrq {
            intid,
            priority,
            hw: Some(intid),
        },
    );
    true
}

/// Fresh virtual GIC state for a restarting partition.
pub fn reset_partition(config: &BoardConfig, p: &PartitionRt) {
    if let Ok(fresh) = Vgic::new(config, p.index) {
        *p.vgic.dist.lock() = fresh.dist.into_inner();
        *p.vgic.redist.lock() = fresh.redist.into_inner();
    }
    for v in &p.vcpus {
        *v.pending.lock() = PendingQueue::new();
    }
    reset_passthrough(config, p);
}
