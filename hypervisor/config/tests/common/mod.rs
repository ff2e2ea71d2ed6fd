//! Test helpers: a programmable QEMU-virt-like board written to a DTB with `vm-fdt`.
//!
//! [`Board::default()`] is a valid two-partition config; tests change one field and check the
//! error. Properties are given as raw cells so tests can also write malformed ones.

#![allow(dead_code)]

use bulkhead_config::{BoardConfig, ConfigError};
use vm_fdt::{FdtReserveEntry, FdtWriter};

pub const GIC: u32 = 0x1;
pub const UART: u32 = 0x2;
pub const CHOSEN: u32 = 0x3;
pub const ODD: u32 = 0x4;
pub const NESTED: u32 = 0x5;
pub const ITS: u32 = 0x6;
pub const CPU0: u32 = 0x10;
pub const CPU1: u32 = 0x11;
pub const CPU2: u32 = 0x12;
/// Phandle of test device `n` (`/dev@...`).
pub const fn dev(n: u32) -> u32 {
    0x30 + n
}

pub const MIB: u64 = 1 << 20;

/// A 64-bit value as two cells.
pub fn c2(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, v as u32]
}

/// One `memory` triple of a partition: guest base, size, host base.
pub fn region(ipa: u64, size: u64, pa: u64) -> Vec<u32> {
    [c2(ipa), c2(size), c2(pa)].concat()
}

/// A simple MMIO test device at the root.
#[derive(Clone)]
pub struct Dev {
    pub base: u64,
    pub size: u64,
    pub interrupts: Vec<u32>,
    /// Emit `dma-coherent` (a DMA-capable device).
    pub dma: bool,
    /// Its `compatible` (default `test,dev`, which is no bus master).
    pub compatible: &'static str,
}

#[derive(Clone)]
pub struct Part {
    pub name: String,
    pub compatible: Option<&'static str>,
    pub cpus: Option<Vec<u32>>,
    pub memory: Option<Vec<u32>>,
    pub devices: Option<Vec<u32>>,
    pub trapped_devices: Option<Vec<u32>>,
    /// `dma-trusted` with these cells (`Some(vec![])`: the usual empty property).
    pub dma_trusted: Option<Vec<u32>>,
    /// `direct-interrupts` with these cells (`Some(vec![])`: the usual empty property).
    pub direct_interrupts: Option<Vec<u32>>,
    pub virtual_uart: Option<Vec<u32>>,
    pub image: Option<String>,
    pub load_address: Option<Vec<u32>>,
    pub entry: Option<Vec<u32>>,
    pub initrd: Option<String>,
    pub bootargs: Option<String>,
    pub doorbell_gpio: Option<Vec<u32>>,
    pub doorbell_gpio_interrupt: Option<Vec<u32>>,
    /// `monitor` with these cells (`Some(vec![])`: the usual empty property).
    pub monitor: Option<Vec<u32>>,
    pub monitor_window: Option<Vec<u32>>,
}

/// Phandle of test partition `n` (config order).
pub const fn part_phandle(n: u32) -> u32 {
    0x50 + n
}

/// One endpoint of a test channel (a child node of it).
#[derive(Clone)]
pub struct Ep {
    pub name: String,
    pub partition: Option<Vec<u32>>,
    pub guest_address: Option<Vec<u32>>,
    pub doorbell: Option<Vec<u32>>,
    pub access: Option<&'static str>,
    pub interrupt: Option<Vec<u32>>,
}

impl Ep {
    /// Endpoint `name` of partition number `partition` with its shared memory at guest
    /// `ipa`, its doorbell page 64 KiB above it, read-write, SPI `spi`.
    pub fn new(name: &str, partition: u32, ipa: u64, spi: u32) -> Self {
        Ep {
            name: name.into(),
            partition: Some(vec![part_phandle(partition)]),
            guest_address: Some(c2(ipa).to_vec()),
            doorbell: Some(c2(ipa + 0x1_0000).to_vec()),
            access: None,
            interrupt: Some(vec![spi]),
        }
    }
}

/// A test channel (a child of `/hypervisor`).
#[derive(Clone)]
pub struct Chan {
    pub name: String,
    pub compatible: Option<&'static str>,
    pub memory: Option<Vec<u32>>,
    pub endpoints: Vec<Ep>,
}

impl Chan {
    /// A valid channel `name` of 64 KiB at host `pa` between partitions 0 and 1 (`a` and `b`),
    /// both at guest 0x5000_0000, doorbell SPI 100.
    pub fn new(name: &str, pa: u64) -> Self {
        Chan {
            name: name.into(),
            compatible: Some("bulkhead,channel"),
            memory: Some([c2(pa), c2(0x1_0000)].concat()),
            endpoints: vec![
                Ep::new("endpoint-0", 0, 0x5000_0000, 100),
                Ep::new("endpoint-1", 1, 0x5000_0000, 100),
            ],
        }
    }
}

impl Part {
    /// A valid partition on `cpu` with 16 MiB at guest 0x4000_0000 backed by host `pa`.
    pub fn new(name: &str, cpu: u32, pa: u64) -> Self {
        Part {
            name: name.into(),
            compatible: Some("bulkhead,partition"),
            cpus: Some(vec![cpu]),
            memory: Some(region(0x4000_0000, 16 * MIB, pa)),
            devices: None,
            trapped_devices: None,
            dma_trusted: None,
            direct_interrupts: None,
            virtual_uart: Some(c2(0x0900_0000).to_vec()),
            image: Some("hello".into()),
            load_address: None,
            entry: None,
            initrd: None,
            bootargs: None,
            doorbell_gpio: None,
            doorbell_gpio_interrupt: None,
            monitor: None,
            monitor_window: None,
        }
    }
}

/// The test board's GIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestGic {
    /// QEMU virt's GICv3.
    V3,
    /// A GIC-400 with these `reg` ranges and `interrupts` = `maintenance` (if any).
    V2 {
        reg: Vec<(u64, u64)>,
        maintenance: Option<Vec<u32>>,
    },
}

impl TestGic {
    /// A complete GICv2 laid out as QEMU virt's `gic-version=2` ([`GICV2_RANGES`]), maintenance
    /// interrupt PPI 9.
    pub fn v2() -> Self {
        TestGic::V2 {
            reg: GICV2_RANGES.to_vec(),
            maintenance: Some(vec![1, 9, 4]),
        }
    }
}

/// A CPU's `enable-method` string and `cpu-release-addr` cells, if any.
pub type EnableMethodCells = (&'static str, Option<Vec<u32>>);

/// The `reg` ranges of [`TestGic::V2`]: GICD, GICC, GICH, GICV.
pub const GICV2_RANGES: [(u64, u64); 4] = [
    (0x0800_0000, 0x1_0000),
    (0x0801_0000, 0x1_0000),
    (0x0803_0000, 0x1_0000),
    (0x0804_0000, 0x1_0000),
];

#[derive(Clone)]
pub struct Board {
    pub gic: TestGic,
    /// Whether the platform has a `/psci` node.
    pub psci: bool,
    /// Each CPU's `enable-method` and `cpu-release-addr` cells (none by default).
    pub enable_methods: [Option<EnableMethodCells>; 4],
    pub psci_method: &'static str,
    pub devs: Vec<Dev>,
    pub hypervisor: bool,
    pub hv_compatible: &'static str,
    pub hv_memory: Option<Vec<u32>>,
    pub console: Option<Vec<u32>>,
    pub log_level: Option<&'static str>,
    pub dma_masters: Option<Vec<u32>>,
    pub not_dma_masters: Option<Vec<u32>>,
    /// `/memreserve/` entries: (address, size).
    pub memreserve: Vec<(u64, u64)>,
    /// Children of `/reserved-memory` with `reg`: (address, size).
    pub reserved_memory: Vec<(u64, u64)>,
    /// `/reserved-memory` `#address-cells` (its children's `reg` is written with 2).
    pub reserved_memory_address_cells: u32,
    pub parts: Vec<Part>,
    /// Channels, written after the partitions (before them with `channels_first`).
    pub channels: Vec<Chan>,
    pub channels_first: bool,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            gic: TestGic::V3,
            psci: true,
            enable_methods: [None, None, None, None],
            psci_method: "smc",
            devs: (0..4)
                .map(|n| Dev {
                    base: 0x0a00_0000 + u64::from(n) * 0x1000,
                    size: 0x1000,
                    interrupts: vec![0, 16 + n, 1],
                    dma: false,
                    compatible: "test,dev",
                })
                .collect(),
            hypervisor: true,
            hv_compatible: "bulkhead,hypervisor",
            hv_memory: Some([c2(0x4000_0000), c2(64 * MIB)].concat()),
            console: Some(vec![UART]),
            log_level: None,
            dma_masters: None,
            not_dma_masters: None,
            memreserve: vec![],
            reserved_memory: vec![],
            reserved_memory_address_cells: 2,
            parts: vec![
                Part::new("a", CPU0, 0x4800_0000),
                Part::new("b", CPU1, 0x4900_0000),
            ],
            channels: vec![],
            channels_first: false,
        }
    }
}

type W = vm_fdt::FdtWriterResult<()>;

fn leaf(fdt: &mut FdtWriter, name: &str, f: impl FnOnce(&mut FdtWriter) -> W) -> W {
    let node = fdt.begin_node(name)?;
    f(fdt)?;
    fdt.end_node(node)
}

impl Board {
    pub fn part(&mut self, name: &str) -> &mut Part {
        self.parts
            .iter_mut()
            .find(|p| p.name == name)
            .expect("test partition")
    }

    pub fn chan(&mut self, name: &str) -> &mut Chan {
        self.channels
            .iter_mut()
            .find(|c| c.name == name)
            .expect("test channel")
    }

    /// The default board with channel `ipc0` between `a` and `b` ([`Chan::new`] at host
    /// 0x4a00_0000).
    pub fn with_channel() -> Self {
        Board {
            channels: vec![Chan::new("ipc0", 0x4a00_0000)],
            ..Board::default()
        }
    }

    pub fn dtb(&self) -> Vec<u8> {
        self.write().expect("vm-fdt writes the test board")
    }

    pub fn load(&self) -> Result<BoardConfig, ConfigError> {
        bulkhead_config::load(&self.dtb())
    }

    pub fn parse(&self) -> Result<BoardConfig, ConfigError> {
        bulkhead_config::parse::parse(&self.dtb())
    }

    fn write_channels(&self, fdt: &mut FdtWriter) -> W {
        for ch in &self.channels {
            let node = fdt.begin_node(&ch.name)?;
            if let Some(c) = ch.compatible {
                fdt.property_string("compatible", c)?;
            }
            if let Some(m) = &ch.memory {
                fdt.property_array_u32("memory", m)?;
            }
            for e in &ch.endpoints {
                let ep = fdt.begin_node(&e.name)?;
                let cells = [
                    ("partition", &e.partition),
                    ("guest-address", &e.guest_address),
                    ("doorbell", &e.doorbell),
                    ("interrupt", &e.interrupt),
                ];
                for (name, value) in cells {
                    if let Some(v) = value {
                        fdt.property_array_u32(name, v)?;
                    }
                }
                if let Some(a) = e.access {
                    fdt.property_string("access", a)?;
                }
                fdt.end_node(ep)?;
            }
            fdt.end_node(node)?;
        }
        Ok(())
    }

    fn write(&self) -> vm_fdt::FdtWriterResult<Vec<u8>> {
        let reservations: Vec<FdtReserveEntry> = self
            .memreserve
            .iter()
            .map(|&(a, s)| FdtReserveEntry::new(a, s))
            .collect::<Result<_, _>>()?;
        let mut fdt = FdtWriter::new_with_mem_reserv(&reservations)?;
        let root = fdt.begin_node("")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_u32("interrupt-parent", GIC)?;
        fdt.property_string("compatible", "linux,dummy-virt")?;

        if self.psci {
            leaf(&mut fdt, "psci", |f| {
                f.property_string("compatible", "arm,psci-1.0")?;
                f.property_string("method", self.psci_method)
            })?;
        }
        leaf(&mut fdt, "memory@40000000", |f| {
            f.property_string("device_type", "memory")?;
            f.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
        })?;
        if !self.reserved_memory.is_empty() {
            let node = fdt.begin_node("reserved-memory")?;
            fdt.property_u32("#address-cells", self.reserved_memory_address_cells)?;
            fdt.property_u32("#size-cells", 2)?;
            fdt.property_null("ranges")?;
            for &(base, size) in &self.reserved_memory {
                leaf(&mut fdt, &format!("carveout@{base:x}"), |f| {
                    f.property_array_u64("reg", &[base, size])?;
                    f.property_null("no-map")
                })?;
            }
            fdt.end_node(node)?;
        }

        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 0)?;
        for n in 0..4u32 {
            leaf(&mut fdt, &format!("cpu@{n}"), |f| {
                f.property_string("device_type", "cpu")?;
                f.property_string("compatible", "arm,cortex-a72")?;
                f.property_u32("reg", n)?;
                if let Some((method, release)) = &self.enable_methods[n as usize] {
                    f.property_string("enable-method", method)?;
                    if let Some(cells) = release {
                        f.property_array_u32("cpu-release-addr", cells)?;
                    }
                }
                f.property_phandle(CPU0 + n)
            })?;
        }
        fdt.end_node(cpus)?;

        let gic = fdt.begin_node("intc@8000000")?;
        match &self.gic {
            TestGic::V3 => {
                fdt.property_string("compatible", "arm,gic-v3")?;
                fdt.property_null("interrupt-controller")?;
                fdt.property_u32("#interrupt-cells", 3)?;
                fdt.property_u32("#address-cells", 2)?;
                fdt.property_u32("#size-cells", 2)?;
                fdt.property_null("ranges")?;
                fdt.property_array_u64("reg", &[0x0800_0000, 0x1_0000, 0x080a_0000, 0xf6_0000])?;
                fdt.property_phandle(GIC)?;
                leaf(&mut fdt, "its@8080000", |f| {
                    f.property_string("compatible", "arm,gic-v3-its")?;
                    f.property_array_u64("reg", &[0x0808_0000, 0x2_0000])?;
                    f.property_phandle(ITS)
                })?;
            }
            TestGic::V2 { reg, maintenance } => {
                fdt.property_string_list(
                    "compatible",
                    vec!["arm,cortex-a15-gic".into(), "arm,gic-400".into()],
                )?;
                fdt.property_null("interrupt-controller")?;
                fdt.property_u32("#interrupt-cells", 3)?;
                let reg: Vec<u64> = reg.iter().flat_map(|&(base, size)| [base, size]).collect();
                fdt.property_array_u64("reg", &reg)?;
                if let Some(m) = maintenance {
                    fdt.property_array_u32("interrupts", m)?;
                }
                fdt.property_phandle(GIC)?;
            }
        }
        fdt.end_node(gic)?;

        leaf(&mut fdt, "timer", |f| {
            f.property_string("compatible", "arm,armv8-timer")?;
            f.property_array_u32("interrupts", &[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
        })?;
        leaf(&mut fdt, "pl011@9000000", |f| {
            f.property_string_list(
                "compatible",
                vec!["arm,pl011".into(), "arm,primecell".into()],
            )?;
            f.property_array_u64("reg", &[0x0900_0000, 0x1000])?;
            f.property_array_u32("interrupts", &[0, 1, 4])?;
            f.property_phandle(UART)
        })?;
        for (n, d) in self.devs.iter().enumerate() {
            leaf(&mut fdt, &format!("dev@{:x}", d.base), |f| {
                f.property_string("compatible", d.compatible)?;
                f.property_array_u64("reg", &[d.base, d.size])?;
                f.property_array_u32("interrupts", &d.interrupts)?;
                if d.dma {
                    f.property_null("dma-coherent")?;
                }
                f.property_phandle(dev(n as u32))
            })?;
        }
        leaf(&mut fdt, "odd@b000000", |f| {
            f.property_string("compatible", "test,odd-irq")?;
            f.property_array_u64("reg", &[0x0b00_0000, 0x1000])?;
            // Extended SPI range: not decodable as a 3-cell GIC SPI/PPI.
            f.property_array_u32("interrupts", &[2, 5, 4])?;
            f.property_phandle(ODD)
        })?;
        let bus = fdt.begin_node("bus@c000000")?;
        fdt.property_string("compatible", "simple-bus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 1)?;
        fdt.property_array_u32("ranges", &[0x0, 0x0, 0x0c00_0000, 0x10_0000])?;
        leaf(&mut fdt, "nested@1000", |f| {
            f.property_string("compatible", "test,nested")?;
            f.property_array_u32("reg", &[0x1000, 0x1000])?;
            f.property_array_u32("interrupts", &[0, 40, 4])?;
            f.property_phandle(NESTED)
        })?;
        fdt.end_node(bus)?;
        leaf(&mut fdt, "chosen", |f| f.property_phandle(CHOSEN))?;

        if self.hypervisor {
            let hv = fdt.begin_node("hypervisor")?;
            fdt.property_string("compatible", self.hv_compatible)?;
            if let Some(m) = &self.hv_memory {
                fdt.property_array_u32("memory", m)?;
            }
            if let Some(c) = &self.console {
                fdt.property_array_u32("console", c)?;
            }
            if let Some(l) = self.log_level {
                fdt.property_string("log-level", l)?;
            }
            if let Some(list) = &self.dma_masters {
                fdt.property_array_u32("dma-masters", list)?;
            }
            if let Some(list) = &self.not_dma_masters {
                fdt.property_array_u32("not-dma-masters", list)?;
            }
            if self.channels_first {
                self.write_channels(&mut fdt)?;
            }
            for (n, p) in self.parts.iter().enumerate() {
                let node = fdt.begin_node(&p.name)?;
                fdt.property_phandle(part_phandle(n as u32))?;
                if let Some(c) = p.compatible {
                    fdt.property_string("compatible", c)?;
                }
                let cells = [
                    ("cpus", &p.cpus),
                    ("memory", &p.memory),
                    ("devices", &p.devices),
                    ("trapped-devices", &p.trapped_devices),
                    ("dma-trusted", &p.dma_trusted),
                    ("direct-interrupts", &p.direct_interrupts),
                    ("virtual-uart", &p.virtual_uart),
                    ("load-address", &p.load_address),
                    ("entry", &p.entry),
                    ("doorbell-gpio", &p.doorbell_gpio),
                    ("doorbell-gpio-interrupt", &p.doorbell_gpio_interrupt),
                    ("monitor", &p.monitor),
                    ("monitor-window", &p.monitor_window),
                ];
                for (name, value) in cells {
                    if let Some(v) = value {
                        fdt.property_array_u32(name, v)?;
                    }
                }
                let strings = [
                    ("image", &p.image),
                    ("initrd", &p.initrd),
                    ("bootargs", &p.bootargs),
                ];
                for (name, value) in strings {
                    if let Some(v) = value {
                        fdt.property_string(name, v)?;
                    }
                }
                fdt.end_node(node)?;
            }
            if !self.channels_first {
                self.write_channels(&mut fdt)?;
            }
            fdt.end_node(hv)?;
        }
        fdt.end_node(root)?;
        fdt.finish()
    }
}

/// Asserts that `result` is an error at `node` whose kind matches the pattern.
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $node:expr, $pattern:pat) => {{
        match $result {
            Ok(_) => panic!("expected an error at {}, got Ok", $node),
            Err(e) => {
                assert_eq!(e.node, $node, "wrong node in {e}");
                assert!(
                    matches!(e.kind, $pattern),
                    "unexpected error: {e} ({:?})",
                    e.kind
                );
                e
            }
        }
    }};
}
