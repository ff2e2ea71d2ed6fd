//! The board parser: reads the platform (RAM, reserved memory, CPUs, GIC, PSCI, timer, devices
//! and whether each can master the bus) and the `/hypervisor` node with its partitions out of
//! the [`Tree`] index into a [`BoardConfig`].

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::addr::{GuestPhysAddr, HostPhysAddr, HostRange, PartitionId, PcpuId};
use crate::dma::{self, NodeFacts};
use crate::error::{ConfigError, ErrorKind};
use crate::guest_view::{GICV2_CPU_SIZE, GICV2_DIST_SIZE};
use crate::model::{
    BoardConfig, Channel, ChannelAccess, ChannelEndpoint, Cpu, Device, Dma, DmaReason,
    DoorbellGpio, EnableMethod, Gic, GicVersion, HypervisorChild, HypervisorConfig, LogLevel,
    MemoryRegion, Partition, PassthroughDevice, Platform, PsciConduit, ReservedMemory,
};

/// `compatible` strings of a GICv3.
const GICV3_COMPATIBLE: &[&str] = &["arm,gic-v3"];
/// `compatible` strings of a GICv2 with the virtualization extensions.
const GICV2_COMPATIBLE: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"];
/// The virtual CPU interface's maintenance interrupt, as the hypervisor takes it: PPI 9.
const MAINTENANCE_PPI: u32 = 9;
/// Size of the GICv2 virtual interface control registers (GICH) the hypervisor drives: the
/// control registers and 64 list registers.
const GICH_SIZE: u64 = 0x200;

use super::tree::{combine, Tree};
use super::Result;

/// Builds the model out of a [`Tree`].
pub(super) struct Parser<'t, 'a> {
    tree: &'t Tree<'a>,
    /// Node index -> index into `cpus`.
    cpu_of_node: Vec<Option<usize>>,
    /// Node index -> index into `devices`.
    device_of_node: Vec<Option<usize>>,
    /// Per device: some interrupt specifier could not be decoded.
    undecodable: Vec<bool>,
    cpus: Vec<Cpu>,
    devices: Vec<Device>,
}

impl<'t, 'a> Parser<'t, 'a> {
    pub(super) fn new(tree: &'t Tree<'a>) -> Result<Self> {
        Ok(Self {
            tree,
            cpu_of_node: vec![None; tree.len()],
            device_of_node: vec![None; tree.len()],
            undecodable: Vec::new(),
            cpus: Vec::new(),
            devices: Vec::new(),
        })
    }

    /// Builds the model; `reservations` are the blob's `/memreserve/` entries.
    pub(super) fn run(mut self, reservations: &[(u64, u64)]) -> Result<BoardConfig> {
        let t = self.tree;
        let (root_ac, root_sc) = (t.address_cells(0)?, t.size_cells(0)?);
        if root_ac == 0 || root_ac > 2 {
            return Err(t.err(0, unsupported("#address-cells", root_ac)));
        }
        if root_sc > 2 {
            return Err(t.err(0, unsupported("#size-cells", root_sc)));
        }

        // RAM: root children with device_type = "memory".
        let mut ram = Vec::new();
        let mut ram_nodes = Vec::new();
        for c in t.children(0) {
            if t.string(c, "device_type")?.as_deref() == Some("memory") {
                ram_nodes.push(c);
                let regs = t
                    .raw_reg(c)?
                    .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("reg")))?;
                ram.extend(
                    regs.into_iter()
                        .map(|(b, s)| HostRange::new(HostPhysAddr(b), s)),
                );
            }
        }
        if ram.is_empty() {
            return Err(ConfigError::boxed(
                "/memory",
                ErrorKind::MissingNode("/memory"),
            ));
        }

        let reserved_memory = self.parse_reserved(reservations)?;
        let cpus_node = self.parse_cpus()?;

        // The GIC, and PSCI if the platform has the firmware.
        let gic_node = self.find_gic()?;
        let gic = self.parse_gic(gic_node)?;
        let psci = match t.children(0).find(|&c| t.base_name(c) == "psci") {
            None => None,
            Some(psci_node) => {
                let method = t
                    .string(psci_node, "method")?
                    .ok_or_else(|| t.err(psci_node, ErrorKind::MissingProperty("method")))?;
                Some(match method.as_str() {
                    "smc" => PsciConduit::Smc,
                    "hvc" => PsciConduit::Hvc,
                    _ => return Err(t.err(psci_node, ErrorKind::UnknownPsciMethod(method))),
                })
            }
        };

        // Architected timer.
        let timer_irqs = match t.children(0).find(|&c| t.base_name(c) == "timer") {
            Some(timer) => t.interrupts(timer, gic_node).0,
            None => Vec::new(),
        };

        // Devices: every other node with a memory-mapped `reg`.
        let hv_node = t.child(0, "hypervisor");
        let reserved = t.child(0, "reserved-memory");
        for i in 1..t.len() {
            let excluded = t.is_within(i, cpus_node)
                || hv_node.is_some_and(|h| t.is_within(i, h))
                || reserved.is_some_and(|r| t.is_within(i, r))
                || ram_nodes.contains(&i);
            if excluded {
                continue;
            }
            let Some(regs) = t.mmio_regs(i)? else {
                continue;
            };
            let (irqs, undecodable) = t.interrupts(i, gic_node);
            if let Some(slot) = self.device_of_node.get_mut(i) {
                *slot = Some(self.devices.len());
            }
            self.undecodable.push(undecodable);
            let compatible = t.compatible(i)?;
            let device_type = t.string(i, "device_type")?;
            let dma = dma::classify(&NodeFacts {
                compatible: &compatible,
                name: t.base_name(i),
                dma_coherent: t.prop(i, "dma-coherent").is_some(),
                iommus: t.prop(i, "iommus").is_some(),
                dma_cells: t.prop(i, "#dma-cells").is_some(),
                device_type: device_type.as_deref(),
            });
            self.devices.push(Device {
                path: t.path(i).to_string(),
                phandle: self.phandle_of(i),
                compatible,
                regs,
                irqs,
                dma,
            });
        }

        let hv_node = hv_node.ok_or_else(|| {
            ConfigError::boxed("/hypervisor", ErrorKind::MissingNode("/hypervisor"))
        })?;
        let hypervisor = self.parse_hypervisor(hv_node)?;
        self.apply_dma_overrides(hv_node)?;

        // Partitions first: channels name them by phandle, wherever they are.
        let mut partitions = Vec::new();
        let mut partition_nodes = Vec::new();
        let mut channel_nodes = Vec::new();
        for c in t.children(hv_node) {
            match HypervisorChild::of(&t.compatible(c)?) {
                Some(HypervisorChild::Partition) => {
                    partitions.push(self.parse_partition(c)?);
                    partition_nodes.push(c);
                }
                Some(HypervisorChild::Channel) => channel_nodes.push(c),
                None => {
                    return Err(t.err(
                        c,
                        ErrorKind::UnknownHypervisorChild {
                            compatible: t.compatible(c)?,
                        },
                    ))
                }
            }
        }
        let mut channels = Vec::with_capacity(channel_nodes.len());
        for c in channel_nodes {
            channels.push(self.parse_channel(c, &partition_nodes)?);
        }

        Ok(BoardConfig {
            platform: Platform {
                ram,
                cpus: self.cpus,
                gic,
                psci,
                devices: self.devices,
                reserved: reserved_memory,
                timer_irqs,
            },
            hypervisor,
            partitions,
            channels,
        })
    }

    fn phandle_of(&self, i: usize) -> Option<u32> {
        self.tree
            .phandles
            .iter()
            .find(|&&(_, n)| n == i)
            .map(|&(p, _)| p)
    }

    /// The platform's reserved memory: the `/memreserve/` entries, then every child of
    /// `/reserved-memory` that has a `reg` (with or without `no-map`: either way the memory is
    /// not free for partitions). Children without `reg` (`size` with `alloc-ranges`) are
    /// allocated by the operating system that boots on the platform, so none exists here.
    fn parse_reserved(&self, reservations: &[(u64, u64)]) -> Result<Vec<ReservedMemory>> {
        let t = self.tree;
        let mut reserved: Vec<ReservedMemory> = reservations
            .iter()
            .map(|&(base, size)| ReservedMemory {
                range: HostRange::new(HostPhysAddr(base), size),
                origin: "/memreserve/".to_string(),
            })
            .collect();
        let Some(node) = t.child(0, "reserved-memory") else {
            return Ok(reserved);
        };
        for c in t.children(node) {
            if t.prop(c, "reg").is_none() {
                continue;
            }
            // `reg` is there: `None` means cell counts this parser cannot decode, and a
            // reservation must not be skipped for that.
            let Some(regs) = t.raw_reg(c)? else {
                let ac = t.address_cells(node)?;
                return Err(t.err(
                    node,
                    if ac == 0 || ac > 2 {
                        unsupported("#address-cells", ac)
                    } else {
                        unsupported("#size-cells", t.size_cells(node)?)
                    },
                ));
            };
            reserved.extend(regs.into_iter().map(|(base, size)| ReservedMemory {
                range: HostRange::new(HostPhysAddr(base), size),
                origin: t.path(c).to_string(),
            }));
        }
        Ok(reserved)
    }

    /// Applies `/hypervisor` `dma-masters` and `not-dma-masters` to the devices they list.
    fn apply_dma_overrides(&mut self, h: usize) -> Result<()> {
        let t = self.tree;
        let masters = self.device_list(h, "dma-masters")?;
        let not_masters = self.device_list(h, "not-dma-masters")?;
        for &d in &masters {
            if not_masters.contains(&d) {
                let device = self.device_path(d);
                return Err(t.err(h, ErrorKind::DmaOverrideConflict { device }));
            }
        }
        for (list, dma) in [
            (masters, Dma::Master(DmaReason::Board)),
            (not_masters, Dma::RuledOutByBoard),
        ] {
            for d in list {
                if let Some(device) = self.devices.get_mut(d) {
                    device.dma = dma.clone();
                }
            }
        }
        Ok(())
    }

    /// The devices a phandle-list property of node `at` names (none if it is absent).
    fn device_list(&self, at: usize, property: &'static str) -> Result<Vec<usize>> {
        self.tree
            .cells(at, property)?
            .unwrap_or_default()
            .into_iter()
            .map(|ph| self.device(at, property, ph))
            .collect()
    }

    fn device_path(&self, d: usize) -> String {
        self.devices
            .get(d)
            .map_or_else(String::new, |d| d.path.clone())
    }

    /// A boolean property: present (empty) or absent. A value is refused, so that
    /// `dma-trusted = "no"` cannot be read as yes.
    fn flag(&self, at: usize, property: &'static str) -> Result<bool> {
        match self.tree.prop(at, property) {
            None => Ok(false),
            Some([]) => Ok(true),
            Some(value) => Err(self.tree.err(
                at,
                ErrorKind::BadPropertyLength {
                    property,
                    len: value.len(),
                    expected: "0 bytes (a boolean property: present or absent)",
                },
            )),
        }
    }

    /// Parses `/cpus/cpu@*`; returns the `/cpus` node index.
    fn parse_cpus(&mut self) -> Result<usize> {
        let t = self.tree;
        let cpus_node = t
            .child(0, "cpus")
            .ok_or_else(|| ConfigError::boxed("/cpus", ErrorKind::MissingNode("/cpus")))?;
        let ac = t.address_cells(cpus_node)?;
        if ac == 0 || ac > 2 {
            return Err(t.err(cpus_node, unsupported("#address-cells", ac)));
        }
        for c in t.children(cpus_node) {
            if t.base_name(c) != "cpu" {
                continue;
            }
            let reg = t
                .cells(c, "reg")?
                .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("reg")))?;
            let mpidr = reg.get(..ac).and_then(combine).ok_or_else(|| {
                t.err(
                    c,
                    ErrorKind::BadPropertyLength {
                        property: "reg",
                        len: reg.len() * 4,
                        expected: "at least #address-cells cells",
                    },
                )
            })?;
            let enable_method = self.enable_method(c)?;
            if let Some(slot) = self.cpu_of_node.get_mut(c) {
                *slot = Some(self.cpus.len());
            }
            self.cpus.push(Cpu {
                path: t.path(c).to_string(),
                phandle: self.phandle_of(c),
                mpidr,
                enable_method,
            });
        }
        if self.cpus.is_empty() {
            return Err(t.err(cpus_node, ErrorKind::MissingNode("/cpus/cpu@*")));
        }
        Ok(cpus_node)
    }

    /// A CPU's `enable-method` (and `cpu-release-addr` for a spin table).
    fn enable_method(&self, c: usize) -> Result<Option<EnableMethod>> {
        let t = self.tree;
        let Some(method) = t.string(c, "enable-method")? else {
            return Ok(None);
        };
        match method.as_str() {
            "psci" => Ok(Some(EnableMethod::Psci)),
            "spin-table" => {
                let addr = t
                    .u64_prop(c, "cpu-release-addr")?
                    .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("cpu-release-addr")))?;
                Ok(Some(EnableMethod::SpinTable {
                    release_addr: HostPhysAddr(addr),
                }))
            }
            _ => Err(t.err(c, ErrorKind::UnknownEnableMethod(method))),
        }
    }

    /// The GIC node: the root's interrupt parent if it is a GIC, otherwise the first GIC.
    fn find_gic(&self) -> Result<usize> {
        let t = self.tree;
        let is_gic = |i: usize| -> Result<bool> {
            for compatible in GICV3_COMPATIBLE.iter().chain(GICV2_COMPATIBLE) {
                if t.is_compatible(i, compatible)? {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        if let Some(parent) = t.interrupt_parent(0) {
            if is_gic(parent)? {
                return Ok(parent);
            }
        }
        for i in 0..t.len() {
            if is_gic(i)? {
                return Ok(i);
            }
        }
        Err(ConfigError::boxed(
            "/",
            ErrorKind::MissingNode(
                "GIC (compatible \"arm,gic-v3\", \"arm,gic-400\" or \"arm,cortex-a15-gic\")",
            ),
        ))
    }

    fn parse_gic(&self, g: usize) -> Result<Gic> {
        let t = self.tree;
        let regs = match t.mmio_regs(g)? {
            Some(regs) => regs,
            None if t.prop(g, "reg").is_none() => {
                return Err(t.err(g, ErrorKind::MissingProperty("reg")))
            }
            None => {
                return Err(t.err(
                    g,
                    ErrorKind::BadPropertyLength {
                        property: "reg",
                        len: t.prop(g, "reg").map_or(0, <[u8]>::len),
                        expected: "memory-mapped ranges",
                    },
                ))
            }
        };
        match t.u32_prop(g, "#interrupt-cells")? {
            Some(3) => {}
            Some(v) => {
                return Err(t.err(
                    g,
                    ErrorKind::BadPropertyValue {
                        property: "#interrupt-cells",
                        value: v.into(),
                    },
                ))
            }
            None => return Err(t.err(g, ErrorKind::MissingProperty("#interrupt-cells"))),
        }
        let v2 = GICV2_COMPATIBLE.iter().try_fold(false, |found, c| {
            t.is_compatible(g, c).map(|yes| found || yes)
        })?;
        // The virtual CPU interface's maintenance interrupt: the hypervisor takes it as PPI 9.
        match (t.interrupts(g, g), t.prop(g, "interrupts")) {
            (_, None) if v2 => return Err(t.err(g, ErrorKind::MissingProperty("interrupts"))),
            (_, None) => {}
            ((irqs, false), Some(_))
                if irqs.first().is_some_and(|i| {
                    i.kind == crate::model::IrqKind::Ppi && i.number == MAINTENANCE_PPI
                }) => {}
            (_, Some(value)) => {
                return Err(t.err(
                    g,
                    ErrorKind::UnsupportedMaintenanceInterrupt {
                        specifier: value
                            .chunks_exact(4)
                            .take(3)
                            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                            .collect(),
                    },
                ))
            }
        }
        if v2 {
            let [distributor, cpu, control, vcpu, ..] = regs[..] else {
                return Err(t.err(
                    g,
                    ErrorKind::GicV2WithoutVirtualization { ranges: regs.len() },
                ));
            };
            for (what, range, needed) in [
                ("GICD (distributor)", distributor, GICV2_DIST_SIZE),
                ("GICC (CPU interface)", cpu, GICV2_CPU_SIZE),
                ("GICH (virtual interface control)", control, GICH_SIZE),
                ("GICV (virtual CPU interface)", vcpu, GICV2_CPU_SIZE),
            ] {
                if range.size < needed {
                    return Err(t.err(
                        g,
                        ErrorKind::GicRangeTooSmall {
                            what,
                            range,
                            needed,
                        },
                    ));
                }
            }
            return Ok(Gic {
                version: GicVersion::V2 { cpu, control, vcpu },
                distributor,
                redistributors: Vec::new(),
            });
        }
        let redists = t.u32_prop(g, "#redistributor-regions")?.unwrap_or(1) as usize;
        if redists == 0 {
            return Err(t.err(
                g,
                ErrorKind::BadPropertyValue {
                    property: "#redistributor-regions",
                    value: 0,
                },
            ));
        }
        let (Some(distributor), Some(redistributors)) =
            (regs.first().copied(), regs.get(1..1 + redists))
        else {
            return Err(t.err(
                g,
                ErrorKind::BadPropertyLength {
                    property: "reg",
                    len: regs.len() * 16,
                    expected: "a distributor range and #redistributor-regions redistributor ranges",
                },
            ));
        };
        Ok(Gic {
            version: GicVersion::V3,
            distributor,
            redistributors: redistributors.to_vec(),
        })
    }

    /// Resolves a phandle property value to a node index.
    fn resolve(&self, at: usize, property: &'static str, phandle: u32) -> Result<usize> {
        self.tree.by_phandle(phandle).ok_or_else(|| {
            self.tree
                .err(at, ErrorKind::DanglingPhandle { property, phandle })
        })
    }

    /// Resolves a phandle to a platform device index.
    fn device(&self, at: usize, property: &'static str, phandle: u32) -> Result<usize> {
        let t = self.tree;
        let target = self.resolve(at, property, phandle)?;
        if let Some(d) = self.device_of_node.get(target).copied().flatten() {
            return Ok(d);
        }
        let target_path = t.path(target).to_string();
        if self.cpu_of_node.get(target).copied().flatten().is_some() {
            return Err(t.err(
                at,
                ErrorKind::DeviceIsCpu {
                    device: target_path,
                },
            ));
        }
        Err(t.err(
            at,
            ErrorKind::NotADevice {
                property,
                target: target_path,
            },
        ))
    }

    fn parse_hypervisor(&self, h: usize) -> Result<HypervisorConfig> {
        let t = self.tree;
        if !t.is_compatible(h, "bulkhead,hypervisor")? {
            return Err(t.err(
                h,
                ErrorKind::NotCompatible {
                    expected: "bulkhead,hypervisor",
                },
            ));
        }
        let memory = t
            .fixed_cells(h, "memory", 4, "4 cells (2 address, 2 size)")?
            .ok_or_else(|| t.err(h, ErrorKind::MissingProperty("memory")))?;
        let memory = HostRange::new(
            HostPhysAddr(memory.get(..2).and_then(combine).unwrap_or(0)),
            memory.get(2..).and_then(combine).unwrap_or(0),
        );
        let console = match t.u32_prop(h, "console")? {
            Some(phandle) => Some(self.device(h, "console", phandle)?),
            None => None,
        };
        let log_level = match t.string(h, "log-level")?.as_deref() {
            None | Some("info") => LogLevel::Info,
            Some("error") => LogLevel::Error,
            Some("warn") => LogLevel::Warn,
            Some("debug") => LogLevel::Debug,
            Some("trace") => LogLevel::Trace,
            Some(other) => return Err(t.err(h, ErrorKind::UnknownLogLevel(other.to_string()))),
        };
        Ok(HypervisorConfig {
            memory,
            console,
            log_level,
            stage2_blocks: t.prop(h, "no-stage2-blocks").is_none(),
        })
    }

    fn parse_partition(&self, p: usize) -> Result<Partition> {
        let t = self.tree;

        let mut cpus = Vec::new();
        let phandles = t
            .cells(p, "cpus")?
            .ok_or_else(|| t.err(p, ErrorKind::MissingProperty("cpus")))?;
        for ph in phandles {
            let target = self.resolve(p, "cpus", ph)?;
            match self.cpu_of_node.get(target).copied().flatten() {
                Some(cpu) => cpus.push(PcpuId(cpu)),
                None => {
                    return Err(t.err(
                        p,
                        ErrorKind::NotACpu {
                            property: "cpus",
                            target: t.path(target).to_string(),
                        },
                    ))
                }
            }
        }

        let cells = t
            .cells(p, "memory")?
            .ok_or_else(|| t.err(p, ErrorKind::MissingProperty("memory")))?;
        if cells.len() % 6 != 0 {
            return Err(t.err(
                p,
                ErrorKind::BadPropertyLength {
                    property: "memory",
                    len: cells.len() * 4,
                    expected: "a multiple of 6 cells (guest base, size, host base; 2 cells each)",
                },
            ));
        }
        let memory: Vec<MemoryRegion> = cells
            .chunks_exact(6)
            .filter_map(|e| {
                Some(MemoryRegion {
                    ipa: GuestPhysAddr(combine(e.get(0..2)?)?),
                    size: combine(e.get(2..4)?)?,
                    pa: HostPhysAddr(combine(e.get(4..6)?)?),
                })
            })
            .collect();

        let mut devices = Vec::new();
        for (property, access) in [
            (
                "devices",
                PassthroughDevice::mapped as fn(usize) -> PassthroughDevice,
            ),
            ("trapped-devices", PassthroughDevice::trapped),
        ] {
            for d in self.device_list(p, property)? {
                if self.undecodable.get(d).copied().unwrap_or(false) {
                    let device = self.device_path(d);
                    return Err(t.err(p, ErrorKind::UndecodableInterrupts { device }));
                }
                devices.push(access(d));
            }
        }

        let virtual_uart = t.u64_prop(p, "virtual-uart")?.map(GuestPhysAddr);
        let image = t.string(p, "image")?.unwrap_or_default();
        let load_address = match t.u64_prop(p, "load-address")? {
            Some(a) => GuestPhysAddr(a),
            None => memory.first().map_or(GuestPhysAddr(0), |m| m.ipa),
        };
        let entry = t.u64_prop(p, "entry")?.map_or(load_address, GuestPhysAddr);

        let doorbell_gpio = match (
            t.u64_prop(p, "doorbell-gpio")?,
            t.u32_prop(p, "doorbell-gpio-interrupt")?,
        ) {
            (None, None) => None,
            (Some(base), Some(interrupt)) => Some(DoorbellGpio {
                base: GuestPhysAddr(base),
                interrupt,
            }),
            (Some(_), None) => {
                return Err(t.err(p, ErrorKind::MissingProperty("doorbell-gpio-interrupt")))
            }
            (None, Some(_)) => return Err(t.err(p, ErrorKind::MissingProperty("doorbell-gpio"))),
        };

        Ok(Partition {
            name: t.name(p).to_string(),
            path: t.path(p).to_string(),
            cpus,
            memory,
            devices,
            dma_trusted: self.flag(p, "dma-trusted")?,
            direct_interrupts: self.flag(p, "direct-interrupts")?,
            virtual_uart,
            image,
            load_address,
            entry,
            initrd: t.string(p, "initrd")?,
            bootargs: t.string(p, "bootargs")?,
            doorbell_gpio,
            monitor: self.flag(p, "monitor")?,
            monitor_window: t.u64_prop(p, "monitor-window")?.map(GuestPhysAddr),
        })
    }

    /// A channel node: `memory` (host-physical base and size) and one child per endpoint, in
    /// order. `partition_nodes` are the partitions' node indices, in config order.
    fn parse_channel(&self, c: usize, partition_nodes: &[usize]) -> Result<Channel> {
        let t = self.tree;
        let memory = t
            .fixed_cells(c, "memory", 4, "4 cells (2 address, 2 size)")?
            .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("memory")))?;
        let memory = HostRange::new(
            HostPhysAddr(memory.get(..2).and_then(combine).unwrap_or(0)),
            memory.get(2..).and_then(combine).unwrap_or(0),
        );
        let mut endpoints = Vec::new();
        for e in t.children(c) {
            endpoints.push(self.parse_endpoint(e, partition_nodes)?);
        }
        Ok(Channel {
            name: t.base_name(c).to_string(),
            path: t.path(c).to_string(),
            memory,
            endpoints,
        })
    }

    fn parse_endpoint(&self, e: usize, partition_nodes: &[usize]) -> Result<ChannelEndpoint> {
        let t = self.tree;
        let phandle = t
            .u32_prop(e, "partition")?
            .ok_or_else(|| t.err(e, ErrorKind::MissingProperty("partition")))?;
        let target = self.resolve(e, "partition", phandle)?;
        let partition = partition_nodes
            .iter()
            .position(|&n| n == target)
            .map(PartitionId)
            .ok_or_else(|| {
                t.err(
                    e,
                    ErrorKind::NotAPartition {
                        property: "partition",
                        target: t.path(target).to_string(),
                    },
                )
            })?;
        let address = |property: &'static str| -> Result<GuestPhysAddr> {
            t.u64_prop(e, property)?
                .map(GuestPhysAddr)
                .ok_or_else(|| t.err(e, ErrorKind::MissingProperty(property)))
        };
        let access = match t.string(e, "access")? {
            None => ChannelAccess::ReadWrite,
            Some(name) => ChannelAccess::from_name(&name)
                .ok_or_else(|| t.err(e, ErrorKind::UnknownChannelAccess(name)))?,
        };
        Ok(ChannelEndpoint {
            path: t.path(e).to_string(),
            partition,
            guest_address: address("guest-address")?,
            doorbell: address("doorbell")?,
            access,
            interrupt: t.u32_prop(e, "interrupt")?,
        })
    }
}

fn unsupported(property: &'static str, value: usize) -> ErrorKind {
    ErrorKind::UnsupportedCells {
        property,
        value: u32::try_from(value).unwrap_or(u32::MAX),
    }
}
