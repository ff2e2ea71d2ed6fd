//! Channels at run time: each endpoint's trapped doorbell page, the ring that makes the peer's
//! doorbell interrupt pending, and the doorbell GPIO (a virtual PL061, [`crate::vgpio`]) that
//! signals a partition's channels as edges on its lines.
//!
//! - A channel's shared memory is mapped in its endpoints' stage 2 at boot (`Partition::new`)
//!   and zeroed once at boot (`System::new`), never on a partition restart: the queue state in
//!   it is what lets a restarted endpoint rejoin.
//! - The doorbell page is never mapped: every access traps here. Aligned 32-bit accesses only;
//!   `RING` (write) rings the peer, `ENDPOINT` and `CHANNEL` (read) say who the caller is,
//!   other offsets read 0 and ignore writes.
//! - A ring of a stopped peer is dropped (the peer looks at the queues when it comes back).
//!   Otherwise the peer's signal fires: a purely virtual, edge-triggered SPI (kept until the
//!   guest enables it, like a GIC latches an edge), or an edge on its doorbell GPIO line, whose
//!   level interrupt is raised when a line newly interrupts and re-raised after the guest
//!   enables it while lines are pending.
//! - The same ring is reachable as the `CHANNEL_RING` hypercall (`runtime::hypercall`).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use bulkhead_config::guest_view::{DOORBELL_CHANNEL, DOORBELL_ENDPOINT, DOORBELL_RING};
use bulkhead_config::hypercall::Signal;
use bulkhead_config::{BoardConfig, ChannelId, GuestPhysAddr, GuestRange, PartitionId};
use spin::Mutex;

use super::hw::Hw;
use super::partition::{Partition, State};
use super::System;
use crate::mmio::MmioError;
use crate::vgpio::DoorbellGpio;

/// One channel as one of its endpoint partitions has it.
pub struct Endpoint {
    pub channel: ChannelId,
    /// Which endpoint of the channel the partition is (0 or 1).
    pub index: u8,
    /// Where the partition sees the shared memory.
    pub shm: GuestRange,
    /// Its doorbell page.
    pub doorbell: GuestRange,
    pub read_only: bool,
    /// How the peer's ring reaches the partition.
    pub signal: Signal,
    /// The other endpoint's partition.
    pub peer: PartitionId,
    /// A ring arrived while the doorbell SPI was disabled: it fires once the guest enables it.
    latched: AtomicBool,
}

/// A partition's doorbell GPIO.
pub struct GpioDevice {
    pub window: GuestRange,
    pub intid: u32,
    pub regs: Mutex<DoorbellGpio>,
}

/// The channels of one partition (a field of its [`Partition`]).
#[derive(Default)]
pub struct Channels {
    /// Its endpoints in config order: endpoint `n` is line `n` of its doorbell GPIO.
    pub endpoints: Vec<Endpoint>,
    pub gpio: Option<GpioDevice>,
}

impl Channels {
    /// The channels of partition `id` of `config`, in their reset state. Endpoints without a
    /// signal or a peer (only in a config that was not validated) are left out.
    pub fn new(config: &BoardConfig, id: PartitionId) -> Self {
        let gpio = config
            .partitions
            .get(id.index())
            .and_then(|p| p.doorbell_gpio)
            .map(|g| GpioDevice {
                window: g.window(),
                intid: g.intid(),
                regs: Mutex::new(DoorbellGpio::new()),
            });
        let endpoints = config
            .endpoints_of(id)
            .filter_map(|e| {
                Some(Endpoint {
                    channel: e.id,
                    index: u8::try_from(e.index).ok()?,
                    shm: e.shm(),
                    doorbell: e.endpoint.doorbell_page(),
                    read_only: !e.endpoint.access.is_writable(),
                    signal: e.signal?,
                    peer: e.peer?.partition,
                    latched: AtomicBool::new(false),
                })
            })
            .collect();
        Self { endpoints, gpio }
    }

    /// The endpoint of channel `channel`, if the partition is one.
    pub fn endpoint(&self, channel: ChannelId) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.channel == channel)
    }

    /// The endpoint whose doorbell page holds `ipa`, and the offset in it.
    pub fn doorbell_at(&self, ipa: GuestPhysAddr) -> Option<(&Endpoint, u64)> {
        self.endpoints
            .iter()
            .find_map(|e| Some((e, e.doorbell.offset_of(ipa)?)))
    }

    /// The offset of `ipa` in the doorbell GPIO's window, if it lies there.
    pub fn gpio_offset(&self, ipa: GuestPhysAddr) -> Option<u64> {
        self.gpio.as_ref()?.window.offset_of(ipa)
    }

    /// Back to the reset state (the partition restarts): nothing latched, GPIO registers reset.
    pub fn reset(&self) {
        for e in &self.endpoints {
            e.latched.store(false, Ordering::Release);
        }
        if let Some(g) = &self.gpio {
            *g.regs.lock() = DoorbellGpio::new();
        }
    }
}

/// A refused access to a doorbell page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellError {
    pub offset: u64,
    pub size: u8,
}

impl core::fmt::Display for DoorbellError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}-byte access at offset {:#x}: doorbell registers take aligned 32-bit accesses",
            self.size, self.offset
        )
    }
}

/// What became of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    /// The peer runs: its signal fired (or is latched until it enables it).
    Delivered,
    /// The peer is stopped: the ring was dropped.
    PeerStopped,
}

impl<H: Hw> System<H> {
    /// Emulates an access to `p`'s doorbell page of endpoint `e`, at `offset`: the value for a
    /// read.
    pub(super) fn doorbell_access(
        &self,
        p: &Partition,
        e: &Endpoint,
        offset: u64,
        size: u8,
        write: Option<u64>,
    ) -> Result<Option<u64>, DoorbellError> {
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(DoorbellError { offset, size });
        }
        Ok(match (offset, write) {
            (DOORBELL_RING, Some(_)) => {
                let outcome = self.ring(p, e);
                log::trace!("{}: channel {} rang: {outcome:?}", p.name, e.channel);
                None
            }
            (DOORBELL_ENDPOINT, None) => Some(u64::from(e.index)),
            (DOORBELL_CHANNEL, None) => Some(e.channel.index() as u64),
            (_, None) => Some(0),
            (_, Some(_)) => None,
        })
    }

    /// `p`'s endpoint `e` rings its peer.
    pub(super) fn ring(&self, p: &Partition, e: &Endpoint) -> Ring {
        let Some(q) = self.partitions.get(e.peer.index()) else {
            return Ring::PeerStopped;
        };
        if q.state() != State::Running {
            log::debug!(
                "{}: ring of channel {} dropped: partition {} is stopped",
                p.name,
                e.channel,
                q.name
            );
            return Ring::PeerStopped;
        }
        if let Some(target) = q.channels.endpoint(e.channel) {
            self.signal(q, target);
        }
        Ring::Delivered
    }

    /// Fires endpoint `e`'s signal in partition `q` (its peer rang).
    fn signal(&self, q: &Partition, e: &Endpoint) {
        match e.signal {
            Signal::Spi { intid } => {
                if self.spi_enabled(q, intid) {
                    let (target, priority) = q.vgic.spi_target(intid);
                    self.inject_virtual(q, target, intid, priority);
                } else {
                    e.latched.store(true, Ordering::Release);
                    // Enabled meanwhile? Then nobody else will look at the latch.
                    if self.spi_enabled(q, intid) && e.latched.swap(false, Ordering::AcqRel) {
                        let (target, priority) = q.vgic.spi_target(intid);
                        self.inject_virtual(q, target, intid, priority);
                    }
                }
            }
            Signal::GpioLine { line, .. } => {
                let Some(gpio) = &q.channels.gpio else { return };
                let raised = gpio.regs.lock().ring(usize::from(line));
                if raised {
                    self.gpio_raise(q, gpio, true);
                }
            }
        }
    }

    /// Whether the guest has SPI `intid` and Group 1 interrupts enabled in its distributor.
    fn spi_enabled(&self, q: &Partition, intid: u32) -> bool {
        let dist = q.vgic.dist.lock();
        dist.group1_enabled() && dist.is_enabled(intid)
    }

    /// The doorbell GPIO's interrupt line of `q` is high: injects its SPI where the guest
    /// routes it if enabled, and if `edge` (a line newly interrupts) or it is not already on
    /// its way.
    fn gpio_raise(&self, q: &Partition, gpio: &GpioDevice, edge: bool) {
        if !self.spi_enabled(q, gpio.intid) {
            // It stays high: raised again when the guest enables it.
            return;
        }
        let (target, priority) = q.vgic.spi_target(gpio.intid);
        if edge || !self.in_flight(q, target, gpio.intid) {
            self.inject_virtual(q, target, gpio.intid, priority);
        }
    }

    /// Emulates an access to `p`'s doorbell GPIO at `offset`: the value for a read.
    pub(super) fn gpio_access(
        &self,
        p: &Partition,
        offset: u64,
        size: u8,
        write: Option<u64>,
    ) -> Result<Option<u64>, MmioError> {
        let Some(gpio) = &p.channels.gpio else {
            return Err(MmioError::OutOfRange(offset));
        };
        match write {
            None => gpio.regs.lock().read(offset, size).map(Some),
            Some(value) => {
                let raised = gpio.regs.lock().write(offset, size, value)?;
                if raised {
                    self.gpio_raise(p, gpio, true);
                }
                Ok(None)
            }
        }
    }

    /// Delivers what waited for the guest to enable an interrupt: latched doorbell SPIs and a
    /// doorbell GPIO whose line is high. Called after every write to `p`'s distributor.
    pub(super) fn doorbells_changed(&self, p: &Partition) {
        for e in &p.channels.endpoints {
            if let Signal::Spi { intid } = e.signal {
                if e.latched.load(Ordering::Acquire)
                    && self.spi_enabled(p, intid)
                    && e.latched.swap(false, Ordering::AcqRel)
                {
                    let (target, priority) = p.vgic.spi_target(intid);
                    self.inject_virtual(p, target, intid, priority);
                }
            }
        }
        if let Some(gpio) = &p.channels.gpio {
            if gpio.regs.lock().asserted() {
                self.gpio_raise(p, gpio, false);
            }
        }
    }

    /// Says at boot which partitions each channel joins.
    pub(super) fn log_channels(&self) {
        for ch in &self.config.channels {
            let side = |e: &bulkhead_config::ChannelEndpoint| {
                let name = self
                    .partitions
                    .get(e.partition.index())
                    .map_or("?", |p| p.name.as_str());
                (name, e.access.as_str())
            };
            if let [a, b] = ch.endpoints.as_slice() {
                let ((a, a_access), (b, b_access)) = (side(a), side(b));
                log::info!(
                    "channel {}: {} KiB at {} between {a} ({a_access}) and {b} ({b_access})",
                    ch.name,
                    ch.memory.size >> 10,
                    ch.memory.base
                );
            }
        }
    }

    /// Zeroes every channel's shared memory: once, at boot.
    pub(super) fn zero_channels(&self) {
        for ch in &self.config.channels {
            self.hw.zero(ch.memory);
        }
    }
}
