//! Validation of channels and doorbell GPIOs: a channel shares exactly its own memory between
//! its two endpoints, and everything an endpoint partition sees of it (the shared memory, its
//! doorbell page, its doorbell interrupt) fits among what else that partition sees.
//!
//! - Channel (reported at the channel node): a unique name; memory of whole pages inside RAM,
//!   clear of reserved memory, the hypervisor's memory, every partition's memory and every
//!   earlier channel's; exactly two endpoints, two different partitions, at least one
//!   read-write.
//! - Endpoint (reported at the endpoint node): `guest-address` and `doorbell` page-aligned and
//!   below the IPA limit, clear of the partition's memory, virtual UART, virtual GIC,
//!   passthrough devices, monitor window, doorbell GPIO, its other channels' windows and each other; an
//!   `interrupt` that is an SPI number (unless the partition has a doorbell GPIO, which then
//!   carries it and `interrupt` must be absent), not one of the partition's passthrough or
//!   virtual UART interrupts nor another doorbell of it; at most as many channels per doorbell
//!   GPIO as it has lines.
//! - Doorbell GPIO (reported at the partition node, from the partition checks): page-aligned,
//!   below the IPA limit, clear of the partition's memory, virtual UART, virtual GIC, devices
//!   and monitor window; an SPI number that is not a passthrough or virtual UART interrupt of it.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{beyond_ipa_limit, in_ram, intid, pages, range_problem, reserved_overlap, Result};
use crate::addr::{GuestRange, PartitionId};
use crate::error::{ConfigError, ErrorKind};
use crate::guest_view::{DOORBELL_GPIO_LINES, PAGE_SIZE, VUART_SIZE};
use crate::model::{BoardConfig, Channel, ChannelEndpoint, IrqKind, Partition};
use crate::monitor::WINDOW_SIZE;

/// Largest SPI number (INTID 1019).
const MAX_SPI: u32 = 987;

/// What partition `p` sees at fixed guest-physical addresses before any channel: its memory,
/// virtual UART, virtual GIC, passthrough devices (whole pages, as mapped or trapped) and monitor
/// window, each with a description for messages.
fn fixed_windows(c: &BoardConfig, p: &Partition) -> Vec<(GuestRange, String)> {
    let mut windows = device_windows(c, p);
    if let Some(base) = p.monitor_window {
        let monitor = GuestRange::new(base, WINDOW_SIZE);
        windows.push((monitor, format!("the monitor window {monitor}")));
    }
    windows
}

/// The same without the monitor window: its memory, virtual UART, virtual GIC and passthrough
/// devices.
pub(super) fn device_windows(c: &BoardConfig, p: &Partition) -> Vec<(GuestRange, String)> {
    let mut windows: Vec<(GuestRange, String)> = p
        .memory
        .iter()
        .map(|m| (m.guest(), format!("memory {}", m.guest())))
        .collect();
    if let Some(base) = p.virtual_uart {
        let uart = GuestRange::new(base, VUART_SIZE);
        windows.push((uart, format!("the virtual UART {uart}")));
    }
    for (what, range) in c.platform.gic.guest_windows(p.cpus.len()) {
        windows.push((range, format!("{what} {range}")));
    }
    for dev in p.device_indices().filter_map(|d| c.platform.devices.get(d)) {
        for r in &dev.regs {
            let page = pages(r).identity();
            windows.push((page, format!("device {} at {page}", dev.path)));
        }
    }
    windows
}

/// The partition's interrupts a doorbell must not reuse: its passthrough devices' SPIs and its
/// virtual UART's interrupt, each described.
fn fixed_interrupts(c: &BoardConfig, p: &Partition) -> Vec<(u32, String)> {
    let mut irqs: Vec<(u32, String)> = p
        .device_indices()
        .filter_map(|d| c.platform.devices.get(d))
        .flat_map(|dev| {
            dev.irqs
                .iter()
                .filter(|i| i.kind == IrqKind::Spi)
                .filter_map(move |i| {
                    Some((intid(i)?, format!("an interrupt of device {}", dev.path)))
                })
        })
        .collect();
    if p.virtual_uart.is_some() {
        irqs.push((
            c.virtual_uart_intid(),
            "the virtual UART's interrupt".to_string(),
        ));
    }
    irqs
}

/// A page-aligned window of a partition: aligned, below the IPA limit.
fn window_problem(what: &'static str, range: GuestRange) -> Option<ErrorKind> {
    if !range.base.is_aligned(PAGE_SIZE) {
        return Some(ErrorKind::Misaligned {
            what,
            value: range.base.raw(),
        });
    }
    beyond_ipa_limit(|| what.to_string(), range)
}

/// Why `window` (named `what`) cannot go where partition `p` puts it: misaligned, beyond the IPA
/// limit, or over one of `others` (its other windows, described).
pub(super) fn window_placement(
    what: &'static str,
    window: GuestRange,
    p: &Partition,
    others: &[(GuestRange, String)],
) -> Option<ErrorKind> {
    window_problem(what, window).or_else(|| overlap(what, window, p, others))
}

/// The overlap of `range` (named `what`) with the first of `others` it overlaps, as partition
/// `p` sees them.
fn overlap(
    what: &'static str,
    range: GuestRange,
    p: &Partition,
    others: &[(GuestRange, String)],
) -> Option<ErrorKind> {
    let (_, other) = others.iter().find(|(w, _)| w.overlaps(&range))?;
    Some(ErrorKind::GuestWindowOverlap {
        what,
        range,
        partition: p.name.clone(),
        other: other.clone(),
    })
}

/// The partition's doorbell GPIO, if it has one. Called from the partition checks.
pub(super) fn doorbell_gpio(c: &BoardConfig, p: &Partition) -> Result {
    let Some(gpio) = p.doorbell_gpio else {
        return Ok(());
    };
    let fail = |kind| Err(ConfigError::boxed(p.path.as_str(), kind));
    if let Some(kind) = window_placement("doorbell-gpio", gpio.window(), p, &fixed_windows(c, p)) {
        return fail(kind);
    }
    if gpio.interrupt > MAX_SPI {
        return fail(ErrorKind::DoorbellInterruptNotSpi {
            number: gpio.interrupt,
        });
    }
    if let Some((intid, other)) = fixed_interrupts(c, p)
        .into_iter()
        .find(|&(i, _)| i == gpio.intid())
    {
        return fail(ErrorKind::DoorbellInterruptClash {
            intid,
            partition: p.name.clone(),
            other,
        });
    }
    Ok(())
}

/// Every channel, in config order, against the platform, the partitions and the channels
/// before it.
pub(super) fn validate_channels(c: &BoardConfig) -> Result {
    for (k, ch) in c.channels.iter().enumerate() {
        let earlier = c.channels.get(..k).unwrap_or_default();
        channel(c, ch, earlier)?;
        for e in &ch.endpoints {
            endpoint(c, ch, e, earlier)?;
        }
    }
    Ok(())
}

fn channel(c: &BoardConfig, ch: &Channel, earlier: &[Channel]) -> Result {
    let fail = |kind| Err(ConfigError::boxed(ch.path.as_str(), kind));
    if earlier.iter().any(|o| o.name == ch.name) {
        return fail(ErrorKind::DuplicateChannelName(ch.name.clone()));
    }
    let m = ch.memory;
    if let Some(kind) = range_problem(
        m.base.raw(),
        m.size,
        "channel memory",
        "channel memory base",
        "channel memory size",
    ) {
        return fail(kind);
    }
    if !in_ram(c, &m) {
        return fail(ErrorKind::ChannelMemoryOutsideRam { range: m });
    }
    if let Some(kind) = reserved_overlap(c, "channel memory", &m) {
        return fail(kind);
    }
    let hv = c.hypervisor.memory;
    let other = if m.overlaps(&hv) {
        Some(format!("the hypervisor's memory {hv}"))
    } else if let Some((q, r)) = c
        .partitions
        .iter()
        .find_map(|q| Some((q, q.memory.iter().find(|r| r.host().overlaps(&m))?)))
    {
        Some(format!("memory {} of partition {}", r.host(), q.name))
    } else {
        earlier
            .iter()
            .find(|o| o.memory.overlaps(&m))
            .map(|o| format!("the memory {} of channel {}", o.memory, o.name))
    };
    if let Some(other) = other {
        return fail(ErrorKind::ChannelMemoryOverlaps { range: m, other });
    }
    if ch.endpoints.len() != 2 {
        return fail(ErrorKind::ChannelEndpointCount(ch.endpoints.len()));
    }
    if let [a, b] = ch.endpoints.as_slice() {
        if a.partition == b.partition {
            let partition = partition_name(c, a.partition);
            return fail(ErrorKind::ChannelEndpointsSamePartition { partition });
        }
        if !a.access.is_writable() && !b.access.is_writable() {
            return fail(ErrorKind::ChannelWithoutWriter);
        }
    }
    Ok(())
}

fn partition_name(c: &BoardConfig, id: PartitionId) -> String {
    c.partitions
        .get(id.index())
        .map_or_else(|| format!("#{id}"), |p| p.name.clone())
}

/// Endpoint `e` of channel `ch`; `earlier` are the channels before `ch`.
fn endpoint(c: &BoardConfig, ch: &Channel, e: &ChannelEndpoint, earlier: &[Channel]) -> Result {
    let fail = |kind| Err(ConfigError::boxed(e.path.as_str(), kind));
    let Some(p) = c.partitions.get(e.partition.index()) else {
        return fail(ErrorKind::IndexOutOfRange {
            what: "partition",
            index: e.partition.index(),
        });
    };
    let shm = ch.shm(e);
    let doorbell = e.doorbell_page();
    for (what, range) in [("channel guest-address", shm), ("doorbell", doorbell)] {
        if let Some(kind) = window_problem(what, range) {
            return fail(kind);
        }
    }
    // What the partition sees besides this channel: fixed windows, its doorbell GPIO, the
    // windows of its channels before this one.
    let mut windows = fixed_windows(c, p);
    if let Some(gpio) = p.doorbell_gpio {
        let w = gpio.window();
        windows.push((w, format!("the doorbell GPIO {w}")));
    }
    for o in earlier {
        if let Some((_, oe)) = o.endpoint_of(e.partition) {
            let (s, d) = (o.shm(oe), oe.doorbell_page());
            windows.push((s, format!("the shared memory {s} of channel {}", o.name)));
            windows.push((d, format!("the doorbell page {d} of channel {}", o.name)));
        }
    }
    // The doorbell page must also stay clear of the channel's own shared memory.
    let checks = [
        ("shared memory", shm, &windows[..]),
        ("doorbell page", doorbell, &windows[..]),
        (
            "doorbell page",
            doorbell,
            &[(shm, format!("its own shared memory {shm}"))][..],
        ),
    ];
    if let Some(kind) = checks
        .into_iter()
        .find_map(|(what, range, against)| overlap(what, range, p, against))
    {
        return fail(kind);
    }
    interrupt(c, p, e, earlier)
}

/// The doorbell interrupt of endpoint `e` (of partition `p`); `earlier` are the channels before
/// its own.
fn interrupt(c: &BoardConfig, p: &Partition, e: &ChannelEndpoint, earlier: &[Channel]) -> Result {
    let fail = |kind| Err(ConfigError::boxed(e.path.as_str(), kind));
    let partition = || p.name.clone();
    let previous: Vec<(&Channel, &ChannelEndpoint)> = earlier
        .iter()
        .filter_map(|o| Some((o, o.endpoint_of(e.partition)?.1)))
        .collect();
    let Some(number) = e.interrupt else {
        if p.doorbell_gpio.is_none() {
            return fail(ErrorKind::EndpointWithoutInterrupt {
                partition: partition(),
            });
        }
        // Line n is the partition's n-th channel.
        if previous.len() >= DOORBELL_GPIO_LINES {
            return fail(ErrorKind::TooManyGpioChannels {
                partition: partition(),
                lines: DOORBELL_GPIO_LINES,
            });
        }
        return Ok(());
    };
    if p.doorbell_gpio.is_some() {
        return fail(ErrorKind::EndpointInterruptWithGpio {
            partition: partition(),
        });
    }
    if number > MAX_SPI {
        return fail(ErrorKind::DoorbellInterruptNotSpi { number });
    }
    let id = number + 32;
    let taken = fixed_interrupts(c, p)
        .into_iter()
        .chain(previous.iter().filter_map(|(o, oe)| {
            Some((
                oe.interrupt? + 32,
                format!("the doorbell of channel {}", o.name),
            ))
        }));
    for (other_id, other) in taken {
        if other_id == id {
            return fail(ErrorKind::DoorbellInterruptClash {
                intid: id,
                partition: partition(),
                other,
            });
        }
    }
    Ok(())
}
