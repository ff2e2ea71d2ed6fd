//! Plain data types describing a board: the platform hardware and the partitions carved out of it.
//! No parsing and no validation here: see `parse` and `validate`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::addr::{GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PartitionId, PcpuId};

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

/// A physical CPU from `/cpus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// Full node path, e.g. `/cpus/cpu@1`.
    pub path: String,
    pub phandle: Option<u32>,
    /// MPIDR affinity bits (the node's `reg`).
    pub mpidr: u64,
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
    /// Whether the device masters DMA (its node says `dma-coherent` or has `iommus`).
    pub dma: bool,
}

/// The GICv3 of the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gic {
    pub distributor: HostRange,
    /// Redistributor regions (one or more), each holding 128 KiB frames, one per CPU.
    pub redistributors: Vec<HostRange>,
}

/// The hardware of the board, as its platform device tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `/memory` ranges.
    pub ram: Vec<HostRange>,
    pub cpus: Vec<Cpu>,
    pub gic: Gic,
    pub psci: PsciConduit,
    /// Every node with a `reg` property outside `/cpus`, `/memory` and `/hypervisor`.
    pub devices: Vec<Device>,
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
    /// Indices into `Platform::devices` of passthrough devices.
    pub devices: Vec<usize>,
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
}

/// A whole board config: platform plus partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardConfig {
    pub platform: Platform,
    pub hypervisor: HypervisorConfig,
    pub partitions: Vec<Partition>,
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

    /// INTIDs of the SPIs `partition` owns: its passthrough devices' SPIs and, if it has a
    /// virtual UART, that UART's interrupt. Sorted, without duplicates.
    pub fn partition_spis(&self, partition: PartitionId) -> Vec<u32> {
        let Some(p) = self.partitions.get(partition.index()) else {
            return Vec::new();
        };
        let mut spis: Vec<u32> = p
            .devices
            .iter()
            .filter_map(|&d| self.platform.devices.get(d))
            .flat_map(|d| d.irqs.iter())
            .filter(|i| i.kind == IrqKind::Spi)
            .map(Irq::intid)
            .collect();
        if p.virtual_uart.is_some() {
            spis.push(self.virtual_uart_intid());
        }
        spis.sort_unstable();
        spis.dedup();
        spis
    }
}
