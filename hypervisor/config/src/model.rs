//! Plain data types describing a board: the platform hardware and the partitions carved out of it.
//! No parsing and no validation here: see `parse` and `validate`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::addr::{
    ChannelId, GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PartitionId, PcpuId,
};
use crate::guest_view::{
    ACCESS_READ_ONLY, ACCESS_READ_WRITE, CHANNEL_COMPATIBLE, DOORBELL_GPIO_SIZE, DOORBELL_PAGE_SIZE,
};
use crate::hypercall::Signal;

/// How the platform firmware's PSCI is reached (`/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Smc,
    Hvc,
}

/// Log level the hypervisor uses, from `/hypervisor` `log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Kind of a GIC interrupt as encoded in the first cell of a 3-cell `interrupts` specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IrqKind {
    /// Shared peripheral interrupt; INTID = number + 32.
    Spi,
    /// Private peripheral interrupt; INTID = number + 16.
    Ppi,
}

/// One interrupt of a device, as the platform device tree describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub kind: IrqKind,
    /// The number in the specifier (not the INTID).
    pub number: u32,
    /// The flags cell (trigger type).
    pub flags: u32,
}

impl Irq {
    /// The GIC interrupt ID.
    pub const fn intid(&self) -> u32 {
        match self.kind {
            IrqKind::Spi => self.number + 32,
            IrqKind::Ppi => self.number + 16,
        }
    }
}

/// How a CPU is started (its node's `enable-method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI `CPU_ON`, through the platform firmware (`enable-method = "psci"`).
    Psci,
    /// A spin table (`enable-method = "spin-table"`): the core waits, caches off, for an entry
    /// address to appear at `release_addr` (`cpu-release-addr`), then jumps to it.
    SpinTable { release_addr: HostPhysAddr },
}

/// A physical CPU from `/cpus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// Full node path, e.g. `/cpus/cpu@1`.
    pub path: String,
    pub phandle: Option<u32>,
    /// MPIDR affinity bits (the node's `reg`).
    pub mpidr: u64,
    /// How it is started; `None` when the node names no `enable-method` (as a boot CPU's may
    /// not): it cannot be started by the hypervisor.
    pub enable_method: Option<EnableMethod>,
}

/// A platform device (any node with `reg`), with the resources a partition would get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Full node path, e.g. `/virtio_mmio@a000000`.
    pub path: String,
    pub phandle: Option<u32>,
    pub compatible: Vec<String>,
    /// MMIO ranges, translated to CPU physical addresses.
    pub regs: Vec<HostRange>,
    pub irqs: Vec<Irq>,
    /// Whether the device can master the bus (do DMA), and why.
    pub dma: Dma,
}

/// Whether a device can master the bus: read and write memory on its own, at the host-physical
/// addresses it is given. Bulkhead drives no IOMMU, so nothing confines such a device: whoever
/// programs it reaches all memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dma {
    /// Nothing says it masters the bus.
    None,
    /// It can master the bus, for this reason.
    Master(DmaReason),
    /// `/hypervisor` `not-dma-masters` says it cannot, whatever its node says.
    RuledOutByBoard,
}

impl Dma {
    /// Whether the device can master the bus.
    pub fn is_master(&self) -> bool {
        matches!(self, Dma::Master(_))
    }

    /// Why the device can master the bus, if it can.
    pub fn reason(&self) -> Option<&DmaReason> {
        match self {
            Dma::Master(reason) => Some(reason),
            Dma::None | Dma::RuledOutByBoard => None,
        }
    }
}

/// Why a device is taken to master the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DmaReason {
    /// Its node says `dma-coherent`.
    Coherent,
    /// Its node has `iommus` (an IOMMU could translate for it, but Bulkhead drives none).
    Iommus,
    /// It is a kind of device known to master the bus: `kind` (e.g. "a virtio-mmio transport"),
    /// recognised by `evidence` (e.g. `compatible "virtio,mmio"`). See [`crate::dma`].
    KnownKind {
        kind: &'static str,
        evidence: String,
    },
    /// `/hypervisor` `dma-masters` lists it.
    Board,
}

/// Formats as a clause: `its node says `dma-coherent``.
impl fmt::Display for DmaReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmaReason::Coherent => f.write_str("its node says `dma-coherent`"),
            DmaReason::Iommus => f.write_str("its node has `iommus`"),
            DmaReason::KnownKind { kind, evidence } => write!(f, "it is {kind} ({evidence})"),
            DmaReason::Board => f.write_str("/hypervisor `dma-masters` lists it"),
        }
    }
}

/// A host-physical range the platform reserves: no partition or hypervisor memory may use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedMemory {
    pub range: HostRange,
    /// Where it is reserved: the `/reserved-memory` child node's path, or `/memreserve/` for an
    /// entry of the blob's memory reservation block.
    pub origin: String,
}

/// The architecture version of the platform's GIC, and what only that version has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv3 (`arm,gic-v3`): CPU interfaces through system registers, redistributors in
    /// [`Gic::redistributors`].
    V3,
    /// GICv2 with the virtualization extensions (`arm,gic-400`, `arm,cortex-a15-gic`): CPU
    /// interfaces through memory-mapped registers, the second to fourth `reg` ranges.
    V2 {
        /// The CPU interface (GICC), which EL2 uses; a partition sees its virtual CPU interface
        /// at this address.
        cpu: HostRange,
        /// The virtual interface control registers (GICH): list registers, maintenance.
        control: HostRange,
        /// The virtual CPU interface (GICV), mapped into each partition at `cpu`'s address.
        vcpu: HostRange,
    },
}

/// The GIC of the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gic {
    pub version: GicVersion,
    pub distributor: HostRange,
    /// GICv3 redistributor regions (one or more), each holding 128 KiB frames, one per CPU;
    /// empty for a GICv2.
    pub redistributors: Vec<HostRange>,
}

impl Gic {
    /// Whether it is a GICv2.
    pub const fn is_v2(&self) -> bool {
        matches!(self.version, GicVersion::V2 { .. })
    }

    /// The windows of the virtual GIC a partition with `vcpus` vCPUs sees, each named, at the
    /// platform GIC's addresses: the distributor and, for a GICv3, the redistributors (one
    /// frame pair per vCPU, [`crate::guest_view::gicr_size`]), for a GICv2 the CPU interface
    /// (the virtual one, [`crate::guest_view::GICV2_CPU_SIZE`]).
    pub fn guest_windows(&self, vcpus: usize) -> Vec<(&'static str, GuestRange)> {
        use crate::guest_view::{gicr_size, GICD_SIZE, GICV2_CPU_SIZE, GICV2_DIST_SIZE};
        match self.version {
            GicVersion::V3 => {
                let mut windows = alloc::vec![(
                    "the virtual GIC distributor",
                    GuestRange::new(self.distributor.base.identity(), GICD_SIZE),
                )];
                if let Some(r) = self.redistributors.first() {
                    windows.push((
                        "the virtual GIC redistributors",
                        GuestRange::new(r.base.identity(), gicr_size(vcpus)),
                    ));
                }
                windows
            }
            GicVersion::V2 { cpu, .. } => alloc::vec![
                (
                    "the virtual GIC distributor",
                    GuestRange::new(self.distributor.base.identity(), GICV2_DIST_SIZE),
                ),
                (
                    "the virtual GIC CPU interface",
                    GuestRange::new(cpu.base.identity(), GICV2_CPU_SIZE),
                ),
            ],
        }
    }
}

/// The hardware of the board, as its platform device tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `/memory` ranges.
    pub ram: Vec<HostRange>,
    pub cpus: Vec<Cpu>,
    pub gic: Gic,
    /// How the platform firmware's PSCI is reached (`/psci` `method`); `None` without a `/psci`
    /// node (no such firmware: a Raspberry Pi without TF-A).
    pub psci: Option<PsciConduit>,
    /// Every node with a `reg` property outside `/cpus`, `/memory`, `/reserved-memory` and
    /// `/hypervisor`.
    pub devices: Vec<Device>,
    /// Memory the platform reserves (`/memreserve/` entries and `/reserved-memory` children with
    /// `reg`), in blob order.
    pub reserved: Vec<ReservedMemory>,
    /// The architected timer's PPIs (`/timer` interrupts), if described.
    pub timer_irqs: Vec<Irq>,
}

/// The `/hypervisor` node: what the hypervisor keeps for itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HypervisorConfig {
    /// RAM the hypervisor image, heap and stacks live in (`memory`).
    pub memory: HostRange,
    /// Index into `Platform::devices` of the console UART (`console` phandle). Without one the
    /// hypervisor prints only boot errors (on `/chosen` `stdout-path`), and partitions can have
    /// no virtual UART; a partition may then own the UART as a passthrough device.
    pub console: Option<usize>,
    pub log_level: LogLevel,
    /// Whether partitions' stage-2 tables may use block mappings (false with
    /// `no-stage2-blocks`: 4 KiB pages only).
    pub stage2_blocks: bool,
}

/// One guest memory region: guest-physical base, size and the host-physical memory behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub ipa: GuestPhysAddr,
    pub size: u64,
    pub pa: HostPhysAddr,
}

impl MemoryRegion {
    /// Where the partition sees the region.
    pub fn guest(&self) -> GuestRange {
        GuestRange::new(self.ipa, self.size)
    }
    /// Where the region really is.
    pub fn host(&self) -> HostRange {
        HostRange::new(self.pa, self.size)
    }
    /// The host-physical address behind guest-physical `ipa`, if the region holds it.
    pub fn host_address(&self, ipa: GuestPhysAddr) -> Option<HostPhysAddr> {
        let offset = self.guest().offset_of(ipa)?;
        self.pa.checked_add(offset)
    }
}

/// What a child of `/hypervisor` can be, recognised by its `compatible`. Every kind the parser
/// knows is listed in [`HypervisorChild::ALL`]; a child of no known kind is refused. New kinds
/// are added here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypervisorChild {
    /// A partition: `compatible = "bulkhead,partition"`.
    Partition,
    /// A channel between two partitions: `compatible = "bulkhead,channel"`.
    Channel,
}

impl HypervisorChild {
    /// Every kind, in the order messages list them.
    pub const ALL: &'static [HypervisorChild] =
        &[HypervisorChild::Partition, HypervisorChild::Channel];

    /// The `compatible` string that marks a child of this kind.
    pub const fn compatible(self) -> &'static str {
        match self {
            HypervisorChild::Partition => "bulkhead,partition",
            HypervisorChild::Channel => CHANNEL_COMPATIBLE,
        }
    }

    /// The kind a node with these `compatible` strings is, if any.
    pub fn of(compatible: &[String]) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| compatible.iter().any(|c| c == kind.compatible()))
    }
}

/// How a partition reaches one of its devices' registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceAccess {
    /// Mapped into its stage-2 tables at the device's own addresses, by whole 4 KiB pages
    /// (`devices`).
    Mapped,
    /// Not mapped: every access traps to the hypervisor, which performs it only if it falls in
    /// the device's register windows (`trapped-devices`). For a device that shares its page with
    /// devices the partition does not own.
    Trapped,
}

/// A platform device a partition owns: its interrupts are routed to the partition and its
/// registers appear at their host-physical addresses, mapped or trapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassthroughDevice {
    /// Index into `Platform::devices`.
    pub device: usize,
    pub access: DeviceAccess,
}

impl PassthroughDevice {
    /// Device `device`, mapped.
    pub const fn mapped(device: usize) -> Self {
        Self {
            device,
            access: DeviceAccess::Mapped,
        }
    }

    /// Device `device`, trapped.
    pub const fn trapped(device: usize) -> Self {
        Self {
            device,
            access: DeviceAccess::Trapped,
        }
    }

    /// Whether its pages are mapped into the partition's stage-2 tables.
    pub const fn is_mapped(&self) -> bool {
        matches!(self.access, DeviceAccess::Mapped)
    }
}

/// One partition (a child of `/hypervisor` with `compatible = "bulkhead,partition"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The node name, which is also the console prefix.
    pub name: String,
    /// Full node path, e.g. `/hypervisor/hello-a`.
    pub path: String,
    /// Physical CPUs; vCPU n runs on `cpus[n]`.
    pub cpus: Vec<PcpuId>,
    pub memory: Vec<MemoryRegion>,
    /// The platform devices the partition owns: `devices` (mapped) then `trapped-devices`
    /// (trapped), each in board-config order.
    pub devices: Vec<PassthroughDevice>,
    /// `dma-trusted`: the partition may own devices that master the bus, which makes it part of
    /// the trusted base (it can reach all memory). See [`BoardConfig::dma_exposure`].
    pub dma_trusted: bool,
    /// `direct-interrupts`: the partition's cores take its physical interrupts at EL1 without
    /// a trap to the hypervisor (a GICv3's CPU interface, `HCR_EL2.IMO` = 0); the hypervisor's
    /// own events on those cores arrive as FIQs. Validation refuses it where it cannot keep
    /// isolation (see `board-configs/README.md`).
    pub direct_interrupts: bool,
    /// Guest-physical base of the virtual PL011, if the partition has one.
    pub virtual_uart: Option<GuestPhysAddr>,
    /// The `image` string: a guest crate name under `partitions/` or a file path.
    pub image: String,
    /// Guest-physical address the image is loaded at (default: first memory region's base).
    pub load_address: GuestPhysAddr,
    /// Guest-physical entry point (default: the load address).
    pub entry: GuestPhysAddr,
    /// Optional initrd (`initrd` string), kernel command line (`bootargs`).
    pub initrd: Option<String>,
    pub bootargs: Option<String>,
    /// An emulated PL061 whose lines signal the partition's channels (`doorbell-gpio`), for
    /// guests that take doorbells as GPIO edges (Linux userspace through the GPIO character
    /// device).
    pub doorbell_gpio: Option<DoorbellGpio>,
    /// `monitor`: the partition may read every partition's counters (the `MONITOR_READ`
    /// hypercall, and its monitor window if it has one).
    pub monitor: bool,
    /// `monitor-window`: guest-physical base of a read-only page through which it reads the same
    /// counters with plain loads (for guests that cannot make hypercalls, such as Linux
    /// userspace); needs `monitor`.
    pub monitor_window: Option<GuestPhysAddr>,
}

impl Partition {
    /// Indices into `Platform::devices` of every device the partition owns, mapped or trapped.
    pub fn device_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.devices.iter().map(|d| d.device)
    }

    /// Whether the partition owns platform device `device` (mapped or trapped).
    pub fn owns_device(&self, device: usize) -> bool {
        self.device_indices().any(|d| d == device)
    }
}

/// A partition's doorbell GPIO: an emulated PL061 at `base` (guest-physical) whose line `n` gets
/// a rising edge when the peer of the partition's `n`-th channel rings; its one interrupt is
/// the level-sensitive SPI `interrupt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellGpio {
    pub base: GuestPhysAddr,
    /// The SPI number (INTID = 32 + number), from `doorbell-gpio-interrupt`.
    pub interrupt: u32,
}

impl DoorbellGpio {
    /// Its register window.
    pub fn window(&self) -> GuestRange {
        GuestRange::new(self.base, DOORBELL_GPIO_SIZE)
    }

    /// Its interrupt's INTID.
    pub const fn intid(&self) -> u32 {
        self.interrupt.saturating_add(32)
    }
}

/// Whether a channel endpoint may write the channel's memory (`access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelAccess {
    ReadWrite,
    ReadOnly,
}

impl ChannelAccess {
    /// The `access` string: `read-write` or `read-only`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelAccess::ReadWrite => ACCESS_READ_WRITE,
            ChannelAccess::ReadOnly => ACCESS_READ_ONLY,
        }
    }

    /// The access an `access` string names.
    pub fn from_name(name: &str) -> Option<Self> {
        [ChannelAccess::ReadWrite, ChannelAccess::ReadOnly]
            .into_iter()
            .find(|a| a.as_str() == name)
    }

    pub const fn is_writable(self) -> bool {
        matches!(self, ChannelAccess::ReadWrite)
    }
}

/// One endpoint of a channel: a partition, where the channel appears in it, and how it is
/// signalled (a child node of the channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEndpoint {
    /// Full node path, e.g. `/hypervisor/ipc0/endpoint-0`.
    pub path: String,
    pub partition: PartitionId,
    /// Where the shared memory appears (`guest-address`).
    pub guest_address: GuestPhysAddr,
    /// Where its doorbell page appears (`doorbell`).
    pub doorbell: GuestPhysAddr,
    pub access: ChannelAccess,
    /// The SPI number (INTID = 32 + number) the peer's ring raises (`interrupt`); absent when
    /// the partition's doorbell GPIO signals it.
    pub interrupt: Option<u32>,
}

impl ChannelEndpoint {
    /// Its doorbell page, guest-physical.
    pub fn doorbell_page(&self) -> GuestRange {
        GuestRange::new(self.doorbell, DOORBELL_PAGE_SIZE)
    }
}

/// A channel between two partitions (a child of `/hypervisor` with
/// `compatible = "bulkhead,channel"`): host memory mapped into both, and a doorbell each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The node name without unit address: the guest device-tree node's name.
    pub name: String,
    /// Full node path, e.g. `/hypervisor/ipc0`.
    pub path: String,
    /// The shared memory, host-physical (`memory`).
    pub memory: HostRange,
    /// Its endpoints in node order (endpoint 0, 1); validation requires exactly two.
    pub endpoints: Vec<ChannelEndpoint>,
}

impl Channel {
    /// Where endpoint `e` sees the shared memory.
    pub fn shm(&self, e: &ChannelEndpoint) -> GuestRange {
        GuestRange::new(e.guest_address, self.memory.size)
    }

    /// The endpoint `partition` is, with its index, if it is one.
    pub fn endpoint_of(&self, partition: PartitionId) -> Option<(usize, &ChannelEndpoint)> {
        self.endpoints
            .iter()
            .enumerate()
            .find(|(_, e)| e.partition == partition)
    }
}

/// One channel as seen from one of its endpoint partitions ([`BoardConfig::endpoints_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalEndpoint<'c> {
    pub id: ChannelId,
    pub channel: &'c Channel,
    /// Which endpoint the partition is (0 or 1).
    pub index: usize,
    pub endpoint: &'c ChannelEndpoint,
    /// The other endpoint, if the channel has one.
    pub peer: Option<&'c ChannelEndpoint>,
    /// The partition's position among its own channels (config order): its doorbell GPIO line.
    pub local: usize,
    /// How the partition is signalled when the peer rings.
    pub signal: Option<Signal>,
}

impl LocalEndpoint<'_> {
    /// Where the partition sees the shared memory.
    pub fn shm(&self) -> GuestRange {
        self.channel.shm(self.endpoint)
    }
}

/// A whole board config: platform, partitions and the channels between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardConfig {
    pub platform: Platform,
    pub hypervisor: HypervisorConfig,
    pub partitions: Vec<Partition>,
    pub channels: Vec<Channel>,
}

/// INTID a partition's virtual UART interrupts on when the console UART has no interrupt in the
/// platform description (SPI 1, as on QEMU virt).
pub const DEFAULT_VIRTUAL_UART_INTID: u32 = 33;

impl BoardConfig {
    /// The INTID of every partition's virtual UART interrupt: the console UART's first SPI, so a
    /// guest sees its UART wired as the real one is.
    pub fn virtual_uart_intid(&self) -> u32 {
        self.platform
            .devices
            .get(self.hypervisor.console.unwrap_or(usize::MAX))
            .and_then(|d| d.irqs.iter().find(|i| i.kind == IrqKind::Spi))
            .map_or(DEFAULT_VIRTUAL_UART_INTID, Irq::intid)
    }

    /// INTIDs of the SPIs `partition` owns: its passthrough devices' SPIs and its purely virtual
    /// ones ([`virtual_spis`](Self::virtual_spis)). Sorted, without duplicates.
    pub fn partition_spis(&self, partition: PartitionId) -> Vec<u32> {
        let Some(p) = self.partitions.get(partition.index()) else {
            return Vec::new();
        };
        let mut spis: Vec<u32> = p
            .device_indices()
            .filter_map(|d| self.platform.devices.get(d))
            .flat_map(|d| d.irqs.iter())
            .filter(|i| i.kind == IrqKind::Spi)
            .map(Irq::intid)
            .collect();
        spis.extend(self.virtual_spis(partition));
        crate::small_sort::sort(&mut spis);
        spis.dedup();
        spis
    }

    /// INTIDs of the SPIs of `partition` that exist only in its virtual GIC: its virtual UART's
    /// interrupt, its channels' doorbell SPIs and its doorbell GPIO's interrupt. Sorted,
    /// without duplicates.
    pub fn virtual_spis(&self, partition: PartitionId) -> Vec<u32> {
        let Some(p) = self.partitions.get(partition.index()) else {
            return Vec::new();
        };
        let mut spis: Vec<u32> = self
            .endpoints_of(partition)
            .filter_map(|e| e.endpoint.interrupt)
            .map(|n| n.saturating_add(32))
            .collect();
        if p.virtual_uart.is_some() {
            spis.push(self.virtual_uart_intid());
        }
        spis.extend(p.doorbell_gpio.map(|g| g.intid()));
        crate::small_sort::sort(&mut spis);
        spis.dedup();
        spis
    }

    /// The channels `partition` is an endpoint of, in config order.
    pub fn endpoints_of(
        &self,
        partition: PartitionId,
    ) -> impl Iterator<Item = LocalEndpoint<'_>> + '_ {
        let gpio = self
            .partitions
            .get(partition.index())
            .and_then(|p| p.doorbell_gpio);
        self.channels
            .iter()
            .enumerate()
            .filter_map(move |(id, channel)| {
                let (index, endpoint) = channel.endpoint_of(partition)?;
                Some((ChannelId(id), channel, index, endpoint))
            })
            .enumerate()
            .map(move |(local, (id, channel, index, endpoint))| {
                let signal = match (gpio, endpoint.interrupt) {
                    (Some(g), _) => u8::try_from(local).ok().map(|line| Signal::GpioLine {
                        intid: g.intid(),
                        line,
                    }),
                    (None, Some(n)) => Some(Signal::Spi {
                        intid: n.saturating_add(32),
                    }),
                    (None, None) => None,
                };
                LocalEndpoint {
                    id,
                    channel,
                    index,
                    endpoint,
                    peer: channel
                        .endpoints
                        .iter()
                        .enumerate()
                        .find(|&(i, _)| i != index)
                        .map(|(_, e)| e),
                    local,
                    signal,
                }
            })
    }

    /// The devices of `partition` that master the bus, with why: through them the partition can
    /// read and write any memory. Validation refuses them unless the partition is `dma-trusted`.
    pub fn dma_masters(&self, partition: PartitionId) -> Vec<(&Device, &DmaReason)> {
        let Some(p) = self.partitions.get(partition.index()) else {
            return Vec::new();
        };
        p.device_indices()
            .filter_map(|d| self.platform.devices.get(d))
            .filter_map(|d| Some((d, d.dma.reason()?)))
            .collect()
    }

    /// If `partition` can reach all memory through DMA (it is `dma-trusted` and owns a bus
    /// master), what to tell the user: the host tools print it and the hypervisor logs it at
    /// boot.
    pub fn dma_exposure(&self, partition: PartitionId) -> Option<DmaExposure<'_>> {
        let p = self.partitions.get(partition.index())?;
        let masters = self.dma_masters(partition);
        (p.dma_trusted && !masters.is_empty()).then_some(DmaExposure {
            partition: p,
            masters,
        })
    }
}

/// A `dma-trusted` partition that owns bus masters no IOMMU confines: it can read and write all
/// memory, the hypervisor's and the other partitions' included. Displays as one line, e.g.
/// `partition linux can reach all memory: it is dma-trusted and owns bus master
/// /virtio_mmio@a003e00 (its node says `dma-coherent`), which no IOMMU confines`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaExposure<'c> {
    pub partition: &'c Partition,
    pub masters: Vec<(&'c Device, &'c DmaReason)>,
}

impl fmt::Display for DmaExposure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} can reach all memory, the hypervisor's and other partitions' included: \
             it is `dma-trusted` and owns bus master",
            self.partition.name
        )?;
        if self.masters.len() > 1 {
            f.write_str("s")?;
        }
        for (n, (device, reason)) in self.masters.iter().enumerate() {
            let sep = if n == 0 { " " } else { ", " };
            write!(f, "{sep}{} ({reason})", device.path)?;
        }
        f.write_str(", which no IOMMU confines")
    }
}
