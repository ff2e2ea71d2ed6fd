//! Rendering a board config as a readable table: what the hypervisor keeps and, per partition,
//! which physical CPUs, memory and devices it gets, how it reaches each device (mapped or
//! trapped), which devices master the bus, whether it can reach all memory, and the channels it
//! shares with other partitions.

use std::fmt::Write as _;

use bulkhead_config::guest_view::PAGE_SIZE;
use bulkhead_config::hypercall::Signal;
use bulkhead_config::{
    BoardConfig, Device, DeviceAccess, Dma, IrqKind, LogLevel, PartitionId, PsciConduit,
};

const MIB: u64 = 1 << 20;

/// Renders `config` for people.
pub fn render(config: &BoardConfig) -> String {
    let mut s = String::new();
    platform(&mut s, config);
    hypervisor(&mut s, config);
    for p in 0..config.partitions.len() {
        partition(&mut s, config, p);
    }
    s
}

/// `16 MiB`, or with decimals for sizes that are not whole MiB.
fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        let v = format!("{:.4}", bytes as f64 / MIB as f64);
        format!("{} MiB", v.trim_end_matches('0').trim_end_matches('.'))
    }
}

fn platform(s: &mut String, config: &BoardConfig) {
    let pl = &config.platform;
    let ram: u64 = pl.ram.iter().map(|r| r.size).sum();
    let psci = match pl.psci {
        Some(PsciConduit::Smc) => "PSCI via smc",
        Some(PsciConduit::Hvc) => "PSCI via hvc",
        None => "no PSCI",
    };
    let gic = if pl.gic.is_v2() { "GICv2" } else { "GICv3" };
    let _ = writeln!(
        s,
        "platform: {} CPUs, {} RAM, {} devices, {gic}, {psci}",
        pl.cpus.len(),
        mib(ram),
        pl.devices.len()
    );
    for r in &pl.reserved {
        let _ = writeln!(
            s,
            "  reserved  {:#x}+{:#x} ({})",
            r.range.base, r.range.size, r.origin
        );
    }
    let _ = writeln!(s);
}

fn hypervisor(s: &mut String, config: &BoardConfig) {
    let hv = &config.hypervisor;
    let level = match hv.log_level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let _ = writeln!(s, "hypervisor");
    let _ = writeln!(
        s,
        "  memory    {:#x}..{:#x} ({})",
        hv.memory.base,
        hv.memory.end(),
        mib(hv.memory.size)
    );
    let console = match hv.console {
        None => "none (only boot errors, on /chosen stdout-path)".to_string(),
        Some(i) => match config.platform.devices.get(i) {
            Some(d) => format!("{}{}", d.path, regs(d)),
            None => format!("<device #{i}>"),
        },
    };
    let _ = writeln!(s, "  console   {console}");
    let _ = writeln!(s, "  log-level {level}");
}

fn regs(d: &Device) -> String {
    d.regs
        .iter()
        .map(|r| format!(" {:#x}+{:#x}", r.base, r.size))
        .collect()
}

fn partition(s: &mut String, config: &BoardConfig, index: usize) {
    let p = &config.partitions[index];
    let _ = writeln!(s);
    let _ = writeln!(s, "partition {} ({})", p.name, p.path);
    if let Some(exposure) = config.dma_exposure(PartitionId(index)) {
        let _ = writeln!(s, "  WARNING   {exposure}");
    } else if p.dma_trusted {
        let _ = writeln!(s, "  dma       trusted, but owns no bus master");
    }
    if p.direct_interrupts {
        let _ = writeln!(
            s,
            "  irqs      direct: its cores' interrupts reach it without the hypervisor \
             (console input polled, no virtual interrupts)"
        );
    }
    for (vcpu, &cpu) in p.cpus.iter().enumerate() {
        match config.platform.cpus.get(cpu.index()) {
            Some(c) => {
                let _ = writeln!(s, "  vcpu {vcpu:<4} -> {} (mpidr {:#x})", c.path, c.mpidr);
            }
            None => {
                let _ = writeln!(s, "  vcpu {vcpu:<4} -> <cpu #{cpu}>");
            }
        }
    }
    for r in &p.memory {
        let _ = writeln!(
            s,
            "  memory    ipa {:#x} -> pa {:#x}  {}",
            r.ipa,
            r.pa,
            mib(r.size)
        );
    }
    for pd in &p.devices {
        let d = pd.device;
        let Some(dev) = config.platform.devices.get(d) else {
            let _ = writeln!(s, "  device    <device #{d}>");
            continue;
        };
        let intids: Vec<String> = dev
            .irqs
            .iter()
            .map(|i| {
                let kind = match i.kind {
                    IrqKind::Spi => "spi",
                    IrqKind::Ppi => "ppi",
                };
                format!("{} ({kind} {})", i.intid(), i.number)
            })
            .collect();
        let irqs = if intids.is_empty() {
            String::new()
        } else {
            format!("  intid {}", intids.join(", "))
        };
        let _ = writeln!(s, "  device    {}{}{irqs}", dev.path, regs(dev));
        let access = match pd.access {
            DeviceAccess::Mapped => {
                let pages: Vec<String> = dev
                    .regs
                    .iter()
                    .map(|r| {
                        let p = r.pages(PAGE_SIZE);
                        format!("{:#x}+{:#x}", p.base, p.size)
                    })
                    .collect();
                format!("mapped, whole pages {}", pages.join(" "))
            }
            DeviceAccess::Trapped => {
                "trapped, not mapped: the hypervisor performs only accesses to its registers"
                    .to_string()
            }
        };
        let _ = writeln!(s, "            {access}");
        match &dev.dma {
            Dma::Master(reason) => {
                let _ = writeln!(s, "            bus master: {reason}");
            }
            Dma::RuledOutByBoard => {
                let _ = writeln!(
                    s,
                    "            no bus master (/hypervisor `not-dma-masters` says so)"
                );
            }
            Dma::None => {}
        }
    }

    match p.virtual_uart {
        Some(base) => {
            let _ = writeln!(s, "  vuart     pl011 at ipa {base:#x}");
        }
        None => {
            let _ = writeln!(s, "  vuart     none");
        }
    }
    if let Some(g) = p.doorbell_gpio {
        let _ = writeln!(
            s,
            "  doorbells pl061 at ipa {:#x}, intid {} (spi {}): line n signals channel n",
            g.base,
            g.intid(),
            g.interrupt
        );
    }
    channels(s, config, index);
    match (p.monitor, p.monitor_window) {
        (true, Some(base)) => {
            let _ = writeln!(
                s,
                "  monitor   reads every partition's counters: MONITOR_READ, and the window at \
                 ipa {base:#x}"
            );
        }
        (true, None) => {
            let _ = writeln!(
                s,
                "  monitor   reads every partition's counters: MONITOR_READ"
            );
        }
        (false, _) => {}
    }
    let _ = writeln!(s, "  image     {} (load {:#x})", p.image, p.load_address);
    let _ = writeln!(s, "  entry     {:#x}", p.entry);
    if let Some(initrd) = &p.initrd {
        let _ = writeln!(s, "  initrd    {initrd}");
    }
    if let Some(args) = &p.bootargs {
        let _ = writeln!(s, "  bootargs  {args}");
    }
}

/// The channels partition `index` is an endpoint of.
fn channels(s: &mut String, config: &BoardConfig, index: usize) {
    for e in config.endpoints_of(PartitionId(index)) {
        let peer = e
            .peer
            .and_then(|p| config.partitions.get(p.partition.index()))
            .map_or("<none>", |p| p.name.as_str());
        let _ = writeln!(
            s,
            "  channel   {} (id {}): endpoint {}, {}, peer {peer}",
            e.channel.name,
            e.id,
            e.index,
            e.endpoint.access.as_str()
        );
        let shm = e.shm();
        let _ = writeln!(
            s,
            "            memory ipa {:#x} -> pa {:#x}  {}, doorbell page ipa {:#x}",
            shm.base,
            e.channel.memory.base,
            mib(shm.size),
            e.endpoint.doorbell
        );
        let signal = match e.signal {
            Some(Signal::Spi { intid }) => format!("intid {intid} (spi {})", intid - 32),
            Some(Signal::GpioLine { line, .. }) => format!("doorbell GPIO line {line}"),
            None => "none".to_string(),
        };
        let _ = writeln!(s, "            signalled by {signal}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sample_config;
    use bulkhead_config::{HostPhysAddr, HostRange, PassthroughDevice, ReservedMemory};

    #[test]
    fn renders_every_row() {
        let text = render(&sample_config());
        let expected = [
            "platform: 4 CPUs, 1024 MiB RAM, 2 devices, GICv3, PSCI via smc",
            "hypervisor",
            "  memory    0x40000000..0x44000000 (64 MiB)",
            "  console   /pl011@9000000 0x9000000+0x1000",
            "  log-level info",
            "partition hello (/hypervisor/hello)",
            "  vcpu 0    -> /cpus/cpu@1 (mpidr 0x1)",
            "  memory    ipa 0x40000000 -> pa 0x48000000  16 MiB",
            "  vuart     pl011 at ipa 0x9000000",
            "  image     hello (load 0x40000000)",
            "  entry     0x40000000",
            "partition linux (/hypervisor/linux)",
            "  vcpu 0    -> /cpus/cpu@2 (mpidr 0x2)",
            "  vcpu 1    -> /cpus/cpu@3 (mpidr 0x3)",
            "  memory    ipa 0x80000000 -> pa 0x58000000  64 MiB",
            "  WARNING   partition linux can reach all memory, the hypervisor's and other \
             partitions' included: it is `dma-trusted` and owns bus master /virtio_mmio@a000000 \
             (its node says `dma-coherent`), which no IOMMU confines",
            "  device    /virtio_mmio@a000000 0xa000000+0x200  intid 48 (spi 16)",
            "            mapped, whole pages 0xa000000+0x1000",
            "            bus master: its node says `dma-coherent`",
            "  vuart     none",
            "  image     Image (load 0x40200000)",
            "  initrd    rootfs.cpio",
            "  bootargs  console=hvc0 earlycon",
        ];
        let lines: Vec<&str> = text.lines().collect();
        for row in expected {
            assert!(lines.contains(&row), "missing row {row:?} in\n{text}");
        }
        // Partitions in order, hello's rows before linux's.
        let hello = text.find("partition hello").unwrap();
        let linux = text.find("partition linux").unwrap();
        assert!(hello < linux);
        assert!(!text[hello..linux].contains("initrd"));
        assert!(!text[hello..linux].contains("WARNING"));
        assert!(!text.contains("irqs      direct"));
    }

    #[test]
    fn a_direct_interrupt_partition_says_what_it_gives_up() {
        let mut config = sample_config();
        config.partitions[0].direct_interrupts = true;
        let text = render(&config);
        let hello = text.find("partition hello").unwrap();
        let linux = text.find("partition linux").unwrap();
        assert!(text[hello..linux].contains(
            "  irqs      direct: its cores' interrupts reach it without the hypervisor \
             (console input polled, no virtual interrupts)"
        ));
        assert!(!text[linux..].contains("irqs"));
    }

    #[test]
    fn the_monitor_capability_is_shown() {
        let mut config = sample_config();
        config.partitions[0].monitor = true;
        config.partitions[1].monitor = true;
        config.partitions[1].monitor_window = Some(bulkhead_config::GuestPhysAddr(0x0b00_0000));
        let text = render(&config);
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("monitor ")).collect();
        assert_eq!(
            rows,
            [
                "  monitor   reads every partition's counters: MONITOR_READ",
                "  monitor   reads every partition's counters: MONITOR_READ, and the window at \
                 ipa 0xb000000"
            ]
        );
        assert!(!render(&sample_config()).contains("monitor"));
    }

    #[test]
    fn trapped_devices_reserved_memory_and_dma_overrides() {
        let mut config = sample_config();
        config.partitions[1].devices = vec![PassthroughDevice::trapped(1)];
        config.platform.devices[1].dma = Dma::RuledOutByBoard;
        config.platform.reserved = vec![ReservedMemory {
            range: HostRange::new(HostPhysAddr(0x7e00_0000), 0x10_0000),
            origin: "/reserved-memory/secure@7e000000".into(),
        }];
        let text = render(&config);
        let expected = [
            "  reserved  0x7e000000+0x100000 (/reserved-memory/secure@7e000000)",
            "            trapped, not mapped: the hypervisor performs only accesses to its registers",
            "            no bus master (/hypervisor `not-dma-masters` says so)",
            "  dma       trusted, but owns no bus master",
        ];
        let lines: Vec<&str> = text.lines().collect();
        for row in expected {
            assert!(lines.contains(&row), "missing row {row:?} in\n{text}");
        }
        assert!(!text.contains("WARNING"), "{text}");
    }

    #[test]
    fn channels_and_doorbell_gpios() {
        use bulkhead_config::{
            Channel, ChannelAccess, ChannelEndpoint, DoorbellGpio, GuestPhysAddr,
        };
        let mut config = sample_config();
        config.partitions[1].doorbell_gpio = Some(DoorbellGpio {
            base: GuestPhysAddr(0x0904_0000),
            interrupt: 101,
        });
        let endpoint = |partition, ipa: u64, interrupt| ChannelEndpoint {
            path: String::new(),
            partition: PartitionId(partition),
            guest_address: GuestPhysAddr(ipa),
            doorbell: GuestPhysAddr(ipa + 0x1_0000),
            access: ChannelAccess::ReadWrite,
            interrupt,
        };
        config.channels = vec![Channel {
            name: "ipc0".into(),
            path: "/hypervisor/ipc0".into(),
            memory: HostRange::new(HostPhysAddr(0x4a00_0000), 0x1_0000),
            endpoints: vec![
                endpoint(1, 0x7000_0000, None),
                endpoint(0, 0x4100_0000, Some(100)),
            ],
        }];
        let text = render(&config);
        let expected = [
            "  doorbells pl061 at ipa 0x9040000, intid 133 (spi 101): line n signals channel n",
            "  channel   ipc0 (id 0): endpoint 0, read-write, peer hello",
            "            memory ipa 0x70000000 -> pa 0x4a000000  0.0625 MiB, doorbell page ipa 0x70010000",
            "            signalled by doorbell GPIO line 0",
            "  channel   ipc0 (id 0): endpoint 1, read-write, peer linux",
            "            signalled by intid 132 (spi 100)",
        ];
        let lines: Vec<&str> = text.lines().collect();
        for row in expected {
            assert!(lines.contains(&row), "missing row {row:?} in\n{text}");
        }
    }

    #[test]
    fn sizes_in_mib() {
        assert_eq!(mib(16 << 20), "16 MiB");
        assert_eq!(mib(64 << 10), "0.0625 MiB");
        assert_eq!(mib(3 << 19), "1.5 MiB");
    }
}
