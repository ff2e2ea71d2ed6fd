//! Errors for board configs: each names the device-tree node at fault and the reason.
//!
//! [`ConfigError`] displays as `node <path>: <reason>`, where the reason is a complete human
//! sentence fragment produced by [`ErrorKind`]'s `Display`, e.g.
//! `node /hypervisor/hello-b: memory 0x48000000..0x49000000 overlaps partition hello-a (host-physical)`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::addr::{GuestPhysAddr, GuestRange, HostPhysAddr, HostRange};
use crate::guest_view::{IPA_BITS, IPA_LIMIT};
use crate::model::{DmaReason, HypervisorChild};

/// A refused board config: the node at fault and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Full path of the node at fault, e.g. `/hypervisor/hello-b`.
    pub node: String,
    pub kind: ErrorKind,
}

impl ConfigError {
    /// An error about the node at `node`.
    pub fn new(node: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            node: node.into(),
            kind,
        }
    }

    /// The same, boxed, as the parser and the validator pass errors on: a large error costs
    /// code at every `?`.
    pub fn boxed(node: impl Into<String>, kind: ErrorKind) -> Box<Self> {
        Box::new(Self::new(node, kind))
    }
}

/// Why a board config was refused.
///
/// Variants up to `GicRangeTooSmall` come from parsing (`parse`), the rest from
/// validation (`validate`). Property names are the device-tree property names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    // ---- parsing ----
    /// The blob is not a well-formed flattened device tree (header or structure block).
    InvalidBlob(&'static str),
    /// A node the config needs does not exist (the error's `node` is the expected path).
    MissingNode(&'static str),
    /// A required property is absent.
    MissingProperty(&'static str),
    /// A property's length does not fit its format.
    BadPropertyLength {
        property: &'static str,
        len: usize,
        expected: &'static str,
    },
    /// A string property is not a NUL-terminated UTF-8 string (or string list).
    BadString { property: &'static str },
    /// A property holds a value outside what it may hold.
    BadPropertyValue { property: &'static str, value: u64 },
    /// `#address-cells`/`#size-cells` (named in `property`) is too large to decode here.
    UnsupportedCells { property: &'static str, value: u32 },
    /// Two nodes carry the same phandle.
    DuplicatePhandle(u32),
    /// The node lacks the compatible string it must have.
    NotCompatible { expected: &'static str },
    /// A phandle refers to no node.
    DanglingPhandle {
        property: &'static str,
        phandle: u32,
    },
    /// A phandle in `property` refers to `target`, which is not a `/cpus` CPU node.
    NotACpu {
        property: &'static str,
        target: String,
    },
    /// A phandle in `property` refers to `target`, which is not a platform device.
    NotADevice {
        property: &'static str,
        target: String,
    },
    /// `log-level` is not one of error, warn, info, debug, trace.
    UnknownLogLevel(String),
    /// `/psci` `method` is neither `smc` nor `hvc`.
    UnknownPsciMethod(String),
    /// A passthrough device has interrupts that are not 3-cell GIC SPI/PPI specifiers.
    UndecodableInterrupts { device: String },
    /// A child of `/hypervisor` is of no known kind (its `compatible` strings, maybe none).
    UnknownHypervisorChild { compatible: Vec<String> },
    /// A device is listed in both `dma-masters` and `not-dma-masters`.
    DmaOverrideConflict { device: String },
    /// A phandle in `property` refers to `target`, which is not a partition node.
    NotAPartition {
        property: &'static str,
        target: String,
    },
    /// A channel endpoint's `access` is neither `read-write` nor `read-only`.
    UnknownChannelAccess(String),
    /// A CPU's `enable-method` is neither `psci` nor `spin-table`.
    UnknownEnableMethod(String),
    /// The GIC's maintenance interrupt (its `interrupts`) is not PPI 9.
    UnsupportedMaintenanceInterrupt { specifier: Vec<u32> },
    /// A GICv2 without the `reg` ranges of its virtualization extensions (GICH, GICV).
    GicV2WithoutVirtualization { ranges: usize },
    /// A GIC register range (`what`) is smaller than its registers.
    GicRangeTooSmall {
        what: &'static str,
        range: HostRange,
        needed: u64,
    },

    // ---- validation ----
    /// The config defines no partition.
    NoPartitions,
    /// Two CPUs of the platform have the same MPIDR (`reg`).
    DuplicateMpidr { mpidr: u64, other: String },
    /// A CPU is started with PSCI, but the platform has no `/psci` node.
    PsciCpuWithoutPsci,
    /// A CPU's spin-table release address lies in memory the hypervisor or a partition owns
    /// (`memory` says whose).
    SpinTableInMemory { addr: HostPhysAddr, memory: String },
    /// More CPUs than a GICv2 has CPU interfaces.
    TooManyCpusForGicV2 { cpus: usize },
    /// Two partitions have the same name.
    DuplicatePartitionName(String),
    /// The partition's name is the one the hypervisor's own console lines carry.
    ReservedPartitionName(String),
    /// The partition's `cpus` is empty.
    NoCpus,
    /// The partition's `memory` is empty.
    NoMemory,
    /// The partition's `image` is missing or empty.
    MissingImage,
    /// An index in the model refers past the end of a platform table (only for models not
    /// built by `parse`).
    IndexOutOfRange { what: &'static str, index: usize },
    /// A size is zero.
    ZeroSize { what: &'static str },
    /// An address or size is not a multiple of 4 KiB.
    Misaligned { what: &'static str, value: u64 },
    /// base + size does not fit in 64 bits.
    AddressOverflow {
        what: &'static str,
        base: u64,
        size: u64,
    },
    /// The hypervisor's own memory is not inside the platform's RAM.
    HypervisorMemoryOutsideRam { range: HostRange },
    /// Hypervisor or partition memory (`what`) overlaps memory the platform reserves.
    MemoryOverlapsReserved {
        what: &'static str,
        range: HostRange,
        reserved: HostRange,
        origin: String,
    },
    /// A partition memory region (host-physical) is not inside the platform's RAM.
    MemoryOutsideRam { range: HostRange },
    /// A partition memory region overlaps the hypervisor's `memory`.
    MemoryOverlapsHypervisor {
        range: HostRange,
        hypervisor: HostRange,
    },
    /// A partition memory region overlaps another region of the same partition, host-physical.
    MemoryOverlapsSelf { range: HostRange, other: HostRange },
    /// A partition memory region overlaps another region of the same partition, guest-physical.
    GuestMemoryOverlapsSelf {
        range: GuestRange,
        other: GuestRange,
    },
    /// A partition memory region overlaps memory of another partition (host-physical).
    MemoryOverlapsPartition { range: HostRange, partition: String },
    /// A CPU is listed twice in one partition.
    DuplicateCpu { cpu: String },
    /// A CPU is already given to another partition.
    CpuInTwoPartitions { cpu: String, partition: String },
    /// A device is listed twice in one partition.
    DuplicateDevice { device: String },
    /// A device is already given to another partition.
    DeviceInTwoPartitions { device: String, partition: String },
    /// A passthrough device is the interrupt controller, which the hypervisor owns.
    DeviceIsInterruptController { device: String },
    /// A passthrough device is a CPU node.
    DeviceIsCpu { device: String },
    /// A passthrough device is the hypervisor's console.
    DeviceIsConsole { device: String },
    /// A mapped passthrough device shares a 4 KiB page with a device that is not the
    /// partition's (`other` says whose it is).
    DevicePageShared { device: String, other: String },
    /// A passthrough device's registers overlap those of a device that is not the partition's.
    DeviceOverlapsDevice { device: String, other: String },
    /// A passthrough device has no register window (`reg` with no entries).
    DeviceWithoutRegisters { device: String },
    /// A passthrough device has a register window of size zero.
    DeviceRegionZeroSize { device: String, base: HostPhysAddr },
    /// A passthrough device's register window wraps around the address space.
    DeviceRegionOverflow {
        device: String,
        base: HostPhysAddr,
        size: u64,
    },
    /// A trapped device's register window is not made of whole 32-bit words.
    TrappedDeviceMisaligned { device: String, range: HostRange },
    /// A passthrough device's registers (as the partition reaches them) overlap RAM
    /// (`memory` says whose).
    DeviceOverlapsMemory {
        device: String,
        range: HostRange,
        memory: String,
    },
    /// An interrupt of a passthrough device is an interrupt of the hypervisor's console.
    InterruptOfConsole { intid: u32, device: String },
    /// Something the partition sees (`what`) lies beyond the guest-physical addresses stage 2
    /// translates.
    BeyondIpaLimit { what: String, range: GuestRange },
    /// A `direct-interrupts` partition on a platform with a GICv2.
    DirectInterruptsNeedGicv3,
    /// A `direct-interrupts` partition owns the platform's first CPU (`cpu`, its path).
    DirectInterruptsOnBootCpu { cpu: String },
    /// A `direct-interrupts` partition has a doorbell interrupt (a channel's `interrupt` or a
    /// doorbell GPIO).
    DirectInterruptsWithDoorbell,
    /// A bus master is passed through to a partition that is not `dma-trusted`.
    DmaMasterNotTrusted { device: String, reason: DmaReason },
    /// An interrupt of a passthrough device is also an interrupt of another partition's device.
    InterruptInTwoPartitions {
        intid: u32,
        device: String,
        partition: String,
    },
    /// A partition with a DMA-capable passthrough device has memory that is not mapped 1:1.
    PassthroughNeedsIdentityMemory {
        region: GuestRange,
        pa: HostPhysAddr,
        device: String,
    },
    /// A memory region (guest-physical) overlaps the virtual GIC the partition sees.
    MemoryOverlapsGic { region: GuestRange, gic: GuestRange },
    /// A memory region (guest-physical) overlaps a passthrough device's pages.
    MemoryOverlapsDevice { region: GuestRange, device: String },
    /// A partition has a virtual UART but the hypervisor has no console to multiplex it onto.
    VirtualUartWithoutConsole,
    /// The virtual UART's page overlaps a memory region of the partition (guest-physical).
    VirtualUartOverlapsMemory {
        uart: GuestRange,
        region: GuestRange,
    },
    /// The virtual UART's page overlaps a passthrough device of the partition.
    VirtualUartOverlapsDevice { uart: GuestRange, device: String },
    /// `load-address` or `entry` is not inside the partition's memory (guest-physical).
    AddressNotInMemory {
        what: &'static str,
        addr: GuestPhysAddr,
    },
    /// Two channels have the same name.
    DuplicateChannelName(String),
    /// A channel's memory is not inside the platform's RAM.
    ChannelMemoryOutsideRam { range: HostRange },
    /// A channel's memory overlaps memory that is someone else's (`other` says whose).
    ChannelMemoryOverlaps { range: HostRange, other: String },
    /// A channel does not have exactly two endpoints.
    ChannelEndpointCount(usize),
    /// Both endpoints of a channel are the same partition.
    ChannelEndpointsSamePartition { partition: String },
    /// Neither endpoint of a channel may write its memory.
    ChannelWithoutWriter,
    /// Something a partition sees of a channel (`what`: its shared memory or doorbell page) or
    /// its doorbell GPIO overlaps something else it sees (`other`), guest-physical.
    GuestWindowOverlap {
        what: &'static str,
        range: GuestRange,
        partition: String,
        other: String,
    },
    /// A doorbell interrupt number is not an SPI number (0..=987).
    DoorbellInterruptNotSpi { number: u32 },
    /// A doorbell interrupt is also another interrupt of the same partition (`other`).
    DoorbellInterruptClash {
        intid: u32,
        partition: String,
        other: String,
    },
    /// An endpoint of a partition without a doorbell GPIO has no `interrupt`.
    EndpointWithoutInterrupt { partition: String },
    /// An endpoint of a partition with a doorbell GPIO has an `interrupt`, which would not be
    /// used.
    EndpointInterruptWithGpio { partition: String },
    /// A partition with a doorbell GPIO is an endpoint of more channels than it has lines.
    TooManyGpioChannels { partition: String, lines: usize },
    /// A partition has a `monitor-window` but not the `monitor` capability.
    MonitorWindowWithoutMonitor,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}: {}", self.node, self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            InvalidBlob(why) => write!(f, "not a valid flattened device tree: {why}"),
            MissingNode(what) => write!(f, "required node {what} is missing"),
            MissingProperty(p) => write!(f, "required property `{p}` is missing"),
            BadPropertyLength { property, len, expected } => {
                write!(f, "property `{property}` has length {len} bytes, expected {expected}")
            }
            BadString { property } => {
                write!(f, "property `{property}` is not a NUL-terminated UTF-8 string")
            }
            BadPropertyValue { property, value } => {
                write!(f, "property `{property}` has unsupported value {value:#x}")
            }
            UnsupportedCells { property, value } => {
                write!(f, "`{property}` = {value} is not supported (at most 2 cells)")
            }
            DuplicatePhandle(p) => write!(f, "phandle {p:#x} is used by more than one node"),
            NotCompatible { expected } => write!(f, "`compatible` must contain \"{expected}\""),
            DanglingPhandle { property, phandle } => {
                write!(f, "`{property}` refers to phandle {phandle:#x}, which no node has")
            }
            NotACpu { property, target } => {
                write!(f, "`{property}` refers to {target}, which is not a CPU under /cpus")
            }
            NotADevice { property, target } => write!(
                f,
                "`{property}` refers to {target}, which is not a platform device (a node with `reg`)"
            ),
            UnknownLogLevel(l) => write!(
                f,
                "unknown log-level \"{l}\" (expected error, warn, info, debug or trace)"
            ),
            UnknownPsciMethod(m) => {
                write!(f, "unknown PSCI method \"{m}\" (expected smc or hvc)")
            }
            UndecodableInterrupts { device } => write!(
                f,
                "device {device} has interrupts that are not 3-cell GIC SPI/PPI specifiers, \
                 so it cannot be passed through"
            ),
            UnknownHypervisorChild { compatible } => {
                f.write_str("unknown kind of /hypervisor child: ")?;
                match compatible.as_slice() {
                    [] => f.write_str("it has no `compatible`")?,
                    list => {
                        f.write_str("its compatible")?;
                        for (n, c) in list.iter().enumerate() {
                            write!(f, "{} \"{c}\"", if n == 0 { "" } else { "," })?;
                        }
                        f.write_str(" is none")?;
                    }
                }
                f.write_str(" of")?;
                for (n, kind) in HypervisorChild::ALL.iter().enumerate() {
                    write!(f, "{} \"{}\"", if n == 0 { "" } else { "," }, kind.compatible())?;
                }
                Ok(())
            }
            DmaOverrideConflict { device } => write!(
                f,
                "device {device} is listed in both `dma-masters` and `not-dma-masters`"
            ),
            NotAPartition { property, target } => write!(
                f,
                "`{property}` refers to {target}, which is not a partition (a child of \
                 /hypervisor with compatible \"bulkhead,partition\")"
            ),
            UnknownChannelAccess(a) => write!(
                f,
                "unknown access \"{a}\" (expected \"read-write\" or \"read-only\")"
            ),
            UnknownEnableMethod(method) => write!(
                f,
                "enable-method \"{method}\" is not supported: Bulkhead starts CPUs with \"psci\" \
                 or \"spin-table\" (with `cpu-release-addr`)"
            ),
            UnsupportedMaintenanceInterrupt { specifier } => write!(
                f,
                "the GIC's maintenance interrupt (`interrupts` = {specifier:x?}) is not PPI 9 \
                 (<1 9 flags>), the one Bulkhead takes for the virtual CPU interface"
            ),
            GicV2WithoutVirtualization { ranges } => write!(
                f,
                "the GICv2 has {ranges} `reg` range(s), but Bulkhead needs 4: GICD, GICC, and \
                 the GICH and GICV of the virtualization extensions, through which partitions \
                 get their virtual GIC"
            ),
            GicRangeTooSmall { what, range, needed } => write!(
                f,
                "the GIC's {what} range {range} is smaller than its {needed:#x} bytes of registers"
            ),
            PsciCpuWithoutPsci => f.write_str(
                "enable-method is \"psci\", but the platform has no /psci node (no firmware to \
                 start the CPU)",
            ),
            SpinTableInMemory { addr, memory } => write!(
                f,
                "cpu-release-addr {addr} lies in {memory}, which must not be used for the spin \
                 table the CPU waits on"
            ),
            TooManyCpusForGicV2 { cpus } => write!(
                f,
                "{cpus} CPUs, but a GICv2 has at most 8 CPU interfaces"
            ),
            DuplicateMpidr { mpidr, other } => {
                write!(f, "MPIDR {mpidr:#x} (`reg`) is also the MPIDR of {other}")
            }
            NoPartitions => f.write_str("no partition defined (no child with compatible \"bulkhead,partition\")"),
            DuplicatePartitionName(n) => write!(f, "partition name {n} is used twice"),
            ReservedPartitionName(n) => write!(
                f,
                "partition name {n} is reserved: the hypervisor's console lines start with \
                 `[{n}]`, and no partition may print lines that look like them"
            ),
            NoCpus => f.write_str("partition has no CPU (`cpus` is empty)"),
            NoMemory => f.write_str("partition has no memory (`memory` is empty)"),
            MissingImage => f.write_str("partition has no image (`image` is missing or empty)"),
            IndexOutOfRange { what, index } => write!(f, "{what} index {index} is out of range"),
            ZeroSize { what } => write!(f, "{what} has size zero"),
            Misaligned { what, value } => {
                write!(f, "{what} {value:#x} is not a multiple of 4 KiB")
            }
            AddressOverflow { what, base, size } => {
                write!(f, "{what} at {base:#x} with size {size:#x} wraps around the address space")
            }
            HypervisorMemoryOutsideRam { range } => {
                write!(f, "hypervisor memory {} is not inside the platform's RAM", range)
            }
            MemoryOverlapsReserved { what, range, reserved, origin } => write!(
                f,
                "{what} {range} overlaps memory the platform reserves: {reserved} ({origin})"
            ),
            MemoryOutsideRam { range } => {
                write!(f, "memory {} is outside the platform's RAM (host-physical)", range)
            }
            MemoryOverlapsHypervisor { range, hypervisor } => write!(
                f,
                "memory {} overlaps the hypervisor's memory {} (host-physical)",
                range,
                hypervisor
            ),
            MemoryOverlapsSelf { range, other } => write!(
                f,
                "memory {range} overlaps {other} of the same partition (host-physical)"
            ),
            GuestMemoryOverlapsSelf { range, other } => write!(
                f,
                "memory {range} overlaps {other} of the same partition (guest-physical)"
            ),
            MemoryOverlapsPartition { range, partition } => write!(
                f,
                "memory {} overlaps partition {partition} (host-physical)",
                range
            ),
            DuplicateCpu { cpu } => write!(f, "cpu {cpu} is listed twice"),
            CpuInTwoPartitions { cpu, partition } => {
                write!(f, "cpu {cpu} is already given to partition {partition}")
            }
            DuplicateDevice { device } => write!(
                f,
                "device {device} is listed twice (in `devices` and `trapped-devices` together)"
            ),
            DeviceInTwoPartitions { device, partition } => {
                write!(f, "device {device} is already given to partition {partition}")
            }
            DeviceIsInterruptController { device } => write!(
                f,
                "device {device} is the interrupt controller, which the hypervisor keeps"
            ),
            DeviceIsCpu { device } => write!(f, "device {device} is a CPU, not a device"),
            DeviceIsConsole { device } => {
                write!(f, "device {device} is the hypervisor's console")
            }
            DevicePageShared { device, other } => write!(
                f,
                "device {device} shares a 4 KiB page with {other}, which the partition does not \
                 own, and `devices` maps whole pages: list {device} in `trapped-devices` instead \
                 (the hypervisor then traps its accesses and lets the partition reach only its \
                 registers), or give the partition every device on that page"
            ),
            DeviceOverlapsDevice { device, other } => write!(
                f,
                "the registers of device {device} overlap those of {other}, which the partition \
                 does not own"
            ),
            DeviceWithoutRegisters { device } => {
                write!(f, "device {device} has no register window (`reg` is empty)")
            }
            DeviceRegionZeroSize { device, base } => {
                write!(f, "device {device} has a zero-size register window at {base}")
            }
            DeviceRegionOverflow { device, base, size } => write!(
                f,
                "device {device} has a register window at {base} with size {size:#x}, which \
                 wraps around the address space"
            ),
            TrappedDeviceMisaligned { device, range } => write!(
                f,
                "trapped device {device} has register window {range}, which is not made of whole \
                 32-bit words: base and size must be multiples of 4 for the hypervisor to \
                 range-check accesses"
            ),
            DeviceOverlapsMemory { device, range, memory } => write!(
                f,
                "device {device} registers {range} overlap {memory} (host-physical)"
            ),
            InterruptOfConsole { intid, device } => write!(
                f,
                "interrupt {intid} of device {device} is the hypervisor console's interrupt"
            ),
            BeyondIpaLimit { what, range } => write!(
                f,
                "{what} {range} lies beyond the guest-physical addresses stage 2 translates \
                 (below {IPA_LIMIT:#x}, {IPA_BITS} bits)"
            ),
            DirectInterruptsNeedGicv3 => f.write_str(
                "`direct-interrupts` needs a GICv3: on this platform's GICv2 the partition would \
                 own the physical CPU interface, Group 0 enable included, and the hypervisor \
                 could no longer reach its cores; remove `direct-interrupts`",
            ),
            DirectInterruptsOnBootCpu { cpu } => write!(
                f,
                "`direct-interrupts` partition owns {cpu}, the platform's first CPU, where the \
                 hypervisor boots and takes the console's interrupt; give the partition other \
                 CPUs"
            ),
            DirectInterruptsWithDoorbell => f.write_str(
                "`direct-interrupts` partition has a doorbell interrupt (a channel's `interrupt` \
                 or a `doorbell-gpio`), a purely virtual interrupt it cannot take without the \
                 virtual CPU interface; poll the doorbell page instead (no `interrupt`)",
            ),
            DmaMasterNotTrusted { device, reason } => write!(
                f,
                "device {device} can master the bus ({reason}) and no IOMMU confines its DMA, so \
                 the partition could read and write all memory, the hypervisor's and other \
                 partitions' included: add `dma-trusted;` to the partition to accept that it is \
                 part of the trusted base, or do not give it the device (if the device cannot \
                 master the bus, list it in /hypervisor `not-dma-masters`)"
            ),
            InterruptInTwoPartitions { intid, device, partition } => write!(
                f,
                "interrupt {intid} of device {device} is already given to partition {partition}"
            ),
            PassthroughNeedsIdentityMemory { region, pa, device } => write!(
                f,
                "memory {} is mapped from host-physical {pa:#x}, but DMA-capable device {device} \
                 is passed through: it DMAs to host-physical addresses and there is no IOMMU, so \
                 the partition needs memory with guest-physical = host-physical addresses",
                region
            ),
            MemoryOverlapsGic { region, gic } => write!(
                f,
                "memory {} (guest-physical) overlaps the partition's virtual GIC at {}",
                region,
                gic
            ),
            MemoryOverlapsDevice { region, device } => write!(
                f,
                "memory {} (guest-physical) overlaps passthrough device {device}",
                region
            ),
            VirtualUartWithoutConsole => f.write_str(
                "virtual-uart needs a console: the /hypervisor node has no `console` to carry it",
            ),
            VirtualUartOverlapsMemory { uart, region } => write!(
                f,
                "virtual-uart {} overlaps memory {} (guest-physical)",
                uart,
                region
            ),
            VirtualUartOverlapsDevice { uart, device } => {
                write!(f, "virtual-uart {} overlaps device {device}", uart)
            }
            AddressNotInMemory { what, addr } => {
                write!(f, "{what} {addr:#x} is not inside the partition's memory (guest-physical)")
            }
            DuplicateChannelName(n) => write!(f, "channel name {n} is used twice"),
            ChannelMemoryOutsideRam { range } => write!(
                f,
                "channel memory {range} is outside the platform's RAM (host-physical)"
            ),
            ChannelMemoryOverlaps { range, other } => {
                write!(f, "channel memory {range} overlaps {other} (host-physical)")
            }
            ChannelEndpointCount(n) => write!(
                f,
                "a channel has exactly two endpoints (child nodes), this one has {n}"
            ),
            ChannelEndpointsSamePartition { partition } => {
                write!(f, "both endpoints are partition {partition}")
            }
            ChannelWithoutWriter => f.write_str(
                "both endpoints are `read-only`: at least one must be `read-write` for the \
                 channel to carry anything",
            ),
            GuestWindowOverlap { what, range, partition, other } => write!(
                f,
                "{what} {range} overlaps {other} in partition {partition} (guest-physical)"
            ),
            DoorbellInterruptNotSpi { number } => write!(
                f,
                "doorbell interrupt {number} is not an SPI number (0 to 987; INTID = 32 + number)"
            ),
            DoorbellInterruptClash { intid, partition, other } => write!(
                f,
                "doorbell interrupt SPI {} (INTID {intid}) is also {other} in partition {partition}",
                intid.saturating_sub(32)
            ),
            EndpointWithoutInterrupt { partition } => write!(
                f,
                "required property `interrupt` is missing: partition {partition} has no \
                 `doorbell-gpio`, so its doorbell is an SPI of its own"
            ),
            EndpointInterruptWithGpio { partition } => write!(
                f,
                "partition {partition} has a `doorbell-gpio`, which signals its channels on \
                 its lines: remove `interrupt` here"
            ),
            TooManyGpioChannels { partition, lines } => write!(
                f,
                "partition {partition} is an endpoint of more channels than its `doorbell-gpio` \
                 has lines ({lines})"
            ),
            MonitorWindowWithoutMonitor => f.write_str(
                "`monitor-window` shows every partition's counters, which needs the `monitor` \
                 capability: add `monitor;` to the partition, or remove `monitor-window`",
            ),
        }
    }
}
