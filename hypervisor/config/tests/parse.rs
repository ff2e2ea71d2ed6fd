//! Parser tests: every field of a valid config, each parse error, and robustness against
//! malformed blobs (no panics).

mod common;

use bulkhead_config::{
    DeviceAccess, Dma, DmaReason, ErrorKind, GuestPhysAddr, HostPhysAddr, HostRange,
    HypervisorChild, Irq, IrqKind, LogLevel, MemoryRegion, PartitionId, PassthroughDevice,
    PsciConduit,
};

fn host(base: u64, size: u64) -> HostRange {
    HostRange::new(HostPhysAddr(base), size)
}
use common::*;

#[test]
fn valid_config_parses_every_field() {
    let mut b = Board {
        log_level: Some("debug"),
        psci_method: "hvc",
        ..Board::default()
    };
    let a = b.part("a");
    a.cpus = Some(vec![CPU2, CPU0]);
    a.memory = Some(
        [
            region(0x4000_0000, 16 * MIB, 0x4800_0000),
            region(0x6000_0000, MIB, 0x4a00_0000),
        ]
        .concat(),
    );
    a.devices = Some(vec![dev(0), NESTED]);
    a.virtual_uart = Some(c2(0x0900_0000).to_vec());
    a.load_address = Some(c2(0x4008_0000).to_vec());
    a.entry = Some(c2(0x4008_1000).to_vec());
    a.initrd = Some("rootfs.cpio".into());
    a.bootargs = Some("console=ttyAMA0".into());
    b.part("b").virtual_uart = None;

    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    let p = &c.platform;
    assert_eq!(p.ram, [host(0x4000_0000, 0x4000_0000)]);
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(p.cpus[2].path, "/cpus/cpu@2");
    assert_eq!(p.cpus[2].mpidr, 2);
    assert_eq!(p.cpus[2].phandle, Some(CPU2));
    assert_eq!(p.gic.distributor, host(0x0800_0000, 0x1_0000));
    assert_eq!(p.gic.redistributors, [host(0x080a_0000, 0xf6_0000)]);
    assert_eq!(p.psci, Some(PsciConduit::Hvc));
    assert_eq!(p.timer_irqs.len(), 4);
    assert_eq!(
        p.timer_irqs[0],
        Irq {
            kind: IrqKind::Ppi,
            number: 13,
            flags: 4
        }
    );
    assert_eq!(p.timer_irqs[0].intid(), 29);

    let console = &p.devices[c.hypervisor.console.expect("the board has a console")];
    assert_eq!(console.path, "/pl011@9000000");
    assert_eq!(console.compatible, ["arm,pl011", "arm,primecell"]);
    assert_eq!(console.irqs[0].intid(), 33);
    assert_eq!(c.hypervisor.memory, host(0x4000_0000, 64 * MIB));
    assert_eq!(c.hypervisor.log_level, LogLevel::Debug);
    // The GIC and its ITS are platform devices too (so they can be refused as passthrough).
    assert!(p
        .devices
        .iter()
        .any(|d| d.path == "/intc@8000000/its@8080000" && d.regs == [host(0x0808_0000, 0x2_0000)]));
    // Nodes without `reg` are not devices.
    assert!(!p
        .devices
        .iter()
        .any(|d| d.path == "/chosen" || d.path == "/timer"));

    assert_eq!(c.partitions.len(), 2);
    let a = &c.partitions[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.path, "/hypervisor/a");
    assert_eq!(
        a.cpus
            .iter()
            .map(|&i| p.cpus[i.index()].mpidr)
            .collect::<Vec<_>>(),
        [2, 0]
    );
    assert_eq!(
        a.memory,
        [
            MemoryRegion {
                ipa: GuestPhysAddr(0x4000_0000),
                size: 16 * MIB,
                pa: HostPhysAddr(0x4800_0000)
            },
            MemoryRegion {
                ipa: GuestPhysAddr(0x6000_0000),
                size: MIB,
                pa: HostPhysAddr(0x4a00_0000)
            },
        ]
    );
    assert!(a.devices.iter().all(|d| d.access == DeviceAccess::Mapped));
    assert!(!a.dma_trusted);
    let devs: Vec<_> = a.device_indices().map(|i| &p.devices[i]).collect();
    assert_eq!(devs[0].path, "/dev@a000000");
    assert_eq!(devs[0].phandle, Some(dev(0)));
    assert_eq!(devs[0].compatible, ["test,dev"]);
    assert_eq!(devs[0].regs, [host(0x0a00_0000, 0x1000)]);
    assert_eq!(
        devs[0].irqs,
        [Irq {
            kind: IrqKind::Spi,
            number: 16,
            flags: 1
        }]
    );
    // Nested under a simple-bus: `reg` translated through `ranges`.
    assert_eq!(devs[1].path, "/bus@c000000/nested@1000");
    assert_eq!(devs[1].regs, [host(0x0c00_1000, 0x1000)]);
    assert_eq!(devs[1].irqs[0].intid(), 72);
    assert_eq!(a.virtual_uart, Some(GuestPhysAddr(0x0900_0000)));
    assert_eq!(a.image, "hello");
    assert_eq!(a.load_address, GuestPhysAddr(0x4008_0000));
    assert_eq!(a.entry, GuestPhysAddr(0x4008_1000));
    assert_eq!(a.initrd.as_deref(), Some("rootfs.cpio"));
    assert_eq!(a.bootargs.as_deref(), Some("console=ttyAMA0"));

    let b = &c.partitions[1];
    assert_eq!(b.name, "b");
    assert_eq!(b.virtual_uart, None);
    assert!(b.devices.is_empty());
    assert_eq!((b.initrd.as_ref(), b.bootargs.as_ref()), (None, None));
}

#[test]
fn defaults() {
    let c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.hypervisor.log_level, LogLevel::Info);
    assert_eq!(c.platform.psci, Some(PsciConduit::Smc));
    let a = &c.partitions[0];
    assert_eq!(
        a.load_address,
        GuestPhysAddr(0x4000_0000),
        "load-address defaults to the first region's base"
    );
    assert_eq!(a.entry, a.load_address, "entry defaults to load-address");
}

/// A child of `/hypervisor` of no known kind is refused by name: a typo in a partition's
/// `compatible` used to drop the partition silently.
#[test]
fn unknown_hypervisor_children_are_refused() {
    let mut b = Board::default();
    b.part("b").compatible = Some("bulkhead,partiton");
    let e = assert_err!(
        b.parse(),
        "/hypervisor/b",
        ErrorKind::UnknownHypervisorChild { .. }
    );
    assert_eq!(
        e.to_string(),
        "node /hypervisor/b: unknown kind of /hypervisor child: its compatible \
         \"bulkhead,partiton\" is none of \"bulkhead,partition\", \"bulkhead,channel\""
    );
    b.part("b").compatible = None;
    let e = assert_err!(
        b.parse(),
        "/hypervisor/b",
        ErrorKind::UnknownHypervisorChild { .. }
    );
    assert!(e.to_string().contains("it has no `compatible`"), "{e}");
    assert_eq!(
        HypervisorChild::of(&["x".into(), "bulkhead,partition".into()]),
        Some(HypervisorChild::Partition)
    );
}

#[test]
fn trapped_devices_and_dma_trust() {
    let mut b = Board::default();
    b.devs[1].compatible = "virtio,mmio";
    let a = b.part("a");
    a.devices = Some(vec![dev(0)]);
    a.trapped_devices = Some(vec![dev(2), dev(1)]);
    a.dma_trusted = Some(vec![]);
    a.memory = Some(region(0x4800_0000, 16 * MIB, 0x4800_0000));
    a.load_address = Some(c2(0x4800_0000).to_vec());
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    let a = &c.partitions[0];
    let path = |d: &PassthroughDevice| c.platform.devices[d.device].path.as_str();
    let listed: Vec<_> = a.devices.iter().map(|d| (path(d), d.access)).collect();
    assert_eq!(
        listed,
        [
            ("/dev@a000000", DeviceAccess::Mapped),
            ("/dev@a002000", DeviceAccess::Trapped),
            ("/dev@a001000", DeviceAccess::Trapped),
        ]
    );
    assert!(a.dma_trusted && !c.partitions[1].dma_trusted);
    // Trapped devices' interrupts are the partition's too.
    assert_eq!(c.partition_spis(PartitionId(0)), [33, 48, 49, 50]);

    b.part("a").dma_trusted = Some(vec![1]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::BadPropertyLength {
            property: "dma-trusted",
            len: 4,
            ..
        }
    );
    b.part("a").dma_trusted = None;
    b.part("a").trapped_devices = Some(vec![CHOSEN]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::NotADevice {
            property: "trapped-devices",
            ..
        }
    );
    b.part("a").trapped_devices = Some(vec![ODD]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::UndecodableInterrupts { .. }
    );
}

/// Whether each device masters the bus, and why: its properties, a known kind, or the board's
/// word (`dma-masters`, `not-dma-masters` on `/hypervisor`).
#[test]
fn dma_capability_has_a_reason() {
    let mut b = Board::default();
    b.devs[0].dma = true;
    b.devs[1].compatible = "virtio,mmio";
    b.dma_masters = Some(vec![dev(2)]);
    b.not_dma_masters = Some(vec![dev(3)]);
    b.devs[3].dma = true;
    let c = b.parse().unwrap_or_else(|e| panic!("{e}"));
    let dma = |path: &str| {
        c.platform
            .devices
            .iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .dma
            .clone()
    };
    assert_eq!(dma("/dev@a000000"), Dma::Master(DmaReason::Coherent));
    assert_eq!(
        dma("/dev@a001000"),
        Dma::Master(DmaReason::KnownKind {
            kind: "a virtio-mmio transport",
            evidence: "compatible \"virtio,mmio\"".into()
        })
    );
    assert_eq!(dma("/dev@a002000"), Dma::Master(DmaReason::Board));
    assert_eq!(dma("/dev@a003000"), Dma::RuledOutByBoard);
    assert_eq!(dma("/pl011@9000000"), Dma::None);
    assert_eq!(
        DmaReason::KnownKind {
            kind: "a virtio-mmio transport",
            evidence: "compatible \"virtio,mmio\"".into()
        }
        .to_string(),
        "it is a virtio-mmio transport (compatible \"virtio,mmio\")"
    );

    b.not_dma_masters = Some(vec![dev(3), dev(2)]);
    let e = assert_err!(
        b.parse(),
        "/hypervisor",
        ErrorKind::DmaOverrideConflict { .. }
    );
    assert!(
        e.to_string()
            .contains("device /dev@a002000 is listed in both"),
        "{e}"
    );
    b.not_dma_masters = Some(vec![CHOSEN]);
    assert_err!(
        b.parse(),
        "/hypervisor",
        ErrorKind::NotADevice {
            property: "not-dma-masters",
            ..
        }
    );
}

/// `/memreserve/` entries and `/reserved-memory` children with `reg` are reserved memory.
#[test]
fn reserved_memory() {
    let b = Board {
        memreserve: vec![(0x7000_0000, 0x1000)],
        reserved_memory: vec![(0x7e00_0000, 2 * MIB)],
        ..Board::default()
    };
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    let reserved: Vec<_> = c
        .platform
        .reserved
        .iter()
        .map(|r| (r.range, r.origin.as_str()))
        .collect();
    assert_eq!(
        reserved,
        [
            (host(0x7000_0000, 0x1000), "/memreserve/"),
            (
                host(0x7e00_0000, 2 * MIB),
                "/reserved-memory/carveout@7e000000"
            ),
        ]
    );
    // Not devices, for all their `reg`.
    assert!(!c
        .platform
        .devices
        .iter()
        .any(|d| d.path.starts_with("/reserved-memory")));
}

/// A reservation the parser cannot decode is refused, not skipped.
#[test]
fn undecodable_reserved_memory_is_refused() {
    let b = Board {
        reserved_memory: vec![(0x7e00_0000, 2 * MIB)],
        reserved_memory_address_cells: 3,
        ..Board::default()
    };
    assert_err!(
        b.parse(),
        "/reserved-memory",
        ErrorKind::UnsupportedCells {
            property: "#address-cells",
            value: 3
        }
    );
}

/// A memory reservation block that runs off the blob is refused, not read past.
#[test]
fn memory_reservation_block_must_end_inside_the_blob() {
    let mut dtb = Board::default().dtb();
    let total = u32::from_be_bytes(dtb[4..8].try_into().unwrap());
    // off_mem_rsvmap: 8 bytes before the end, so no whole 16-byte entry fits.
    dtb[16..20].copy_from_slice(&(total - 8).to_be_bytes());
    assert_err!(
        bulkhead_config::parse::parse(&dtb),
        "/",
        ErrorKind::InvalidBlob(_)
    );
}

#[test]
fn missing_hypervisor_node() {
    let b = Board {
        hypervisor: false,
        ..Board::default()
    };
    assert_err!(b.parse(), "/hypervisor", ErrorKind::MissingNode(_));
}

#[test]
fn hypervisor_node_needs_compatible() {
    let b = Board {
        hv_compatible: "bulkhead,hyperviser",
        ..Board::default()
    };
    assert_err!(b.parse(), "/hypervisor", ErrorKind::NotCompatible { .. });
}

#[test]
fn missing_property() {
    let mut b = Board::default();
    b.part("b").memory = None;
    assert_err!(
        b.parse(),
        "/hypervisor/b",
        ErrorKind::MissingProperty("memory")
    );
    // Without a console, partitions cannot have virtual UARTs (the default board's have).
    let b = Board {
        console: None,
        ..Board::default()
    };
    assert_eq!(
        b.parse()
            .unwrap_or_else(|e| panic!("{e}"))
            .hypervisor
            .console,
        None
    );
    assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::VirtualUartWithoutConsole
    );
    let mut b = Board::default();
    b.part("a").cpus = None;
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::MissingProperty("cpus")
    );
}

#[test]
fn bad_property_length() {
    let mut b = Board::default();
    b.part("a").memory = Some(vec![0, 0x4000_0000, 0, 0x100_0000, 0]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::BadPropertyLength {
            property: "memory",
            len: 20,
            ..
        }
    );
    let mut b = Board::default();
    b.part("a").virtual_uart = Some(vec![0x0900_0000]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::BadPropertyLength {
            property: "virtual-uart",
            ..
        }
    );
    let b = Board {
        hv_memory: Some(vec![0, 0x4000_0000, 0x400_0000]),
        ..Board::default()
    };
    assert_err!(
        b.parse(),
        "/hypervisor",
        ErrorKind::BadPropertyLength {
            property: "memory",
            ..
        }
    );
}

#[test]
fn dangling_phandle() {
    let mut b = Board::default();
    b.part("a").cpus = Some(vec![0x999]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::DanglingPhandle {
            property: "cpus",
            phandle: 0x999
        }
    );
    let b = Board {
        console: Some(vec![0x777]),
        ..Board::default()
    };
    assert_err!(
        b.parse(),
        "/hypervisor",
        ErrorKind::DanglingPhandle {
            property: "console",
            ..
        }
    );
}

#[test]
fn cpus_must_be_cpus() {
    let mut b = Board::default();
    b.part("a").cpus = Some(vec![dev(0)]);
    let e = assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::NotACpu {
            property: "cpus",
            ..
        }
    );
    assert!(e.to_string().contains("/dev@a000000"), "{e}");
}

#[test]
fn devices_must_be_devices() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![CHOSEN]);
    let e = assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::NotADevice {
            property: "devices",
            ..
        }
    );
    assert_eq!(
        e.to_string(),
        "node /hypervisor/a: `devices` refers to /chosen, which is not a platform device (a node with `reg`)"
    );
}

#[test]
fn device_that_is_a_cpu() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![CPU0]);
    assert_err!(b.load(), "/hypervisor/a", ErrorKind::DeviceIsCpu { .. });
}

#[test]
fn undecodable_interrupts_only_matter_when_passed_through() {
    // The odd device is on the platform but nobody takes it: fine.
    let c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    let odd = c
        .platform
        .devices
        .iter()
        .find(|d| d.path == "/odd@b000000")
        .expect("odd device");
    assert!(odd.irqs.is_empty());
    let mut b = Board::default();
    b.part("a").devices = Some(vec![ODD]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::UndecodableInterrupts { .. }
    );
}

#[test]
fn unknown_log_level() {
    let b = Board {
        log_level: Some("verbose"),
        ..Board::default()
    };
    let e = assert_err!(b.parse(), "/hypervisor", ErrorKind::UnknownLogLevel(_));
    assert!(e.to_string().contains("\"verbose\""));
}

#[test]
fn unknown_psci_method() {
    let b = Board {
        psci_method: "svc",
        ..Board::default()
    };
    assert_err!(b.parse(), "/psci", ErrorKind::UnknownPsciMethod(_));
}

#[test]
fn not_a_device_tree() {
    assert_err!(
        bulkhead_config::load(b"hello"),
        "/",
        ErrorKind::InvalidBlob(_)
    );
    assert_err!(bulkhead_config::load(&[]), "/", ErrorKind::InvalidBlob(_));
}

/// The hypervisor parses untrusted-ish bytes at boot: no input may panic.
#[test]
fn malformed_blobs_never_panic() {
    let mut board = Board {
        memreserve: vec![(0x7000_0000, 0x1000)],
        reserved_memory: vec![(0x7e00_0000, 0x1000)],
        ..Board::default()
    };
    board.part("a").devices = Some(vec![dev(0), NESTED]);
    let dtb = board.dtb();
    for len in 0..dtb.len() {
        let _ = bulkhead_config::load(&dtb[..len]);
    }
    for i in 0..dtb.len() {
        for pattern in [0xff, 0x01, 0x80] {
            let mut bad = dtb.clone();
            bad[i] ^= pattern;
            let _ = bulkhead_config::load(&bad);
        }
    }
    // Every 32-bit word replaced by extreme values.
    for i in (0..dtb.len().saturating_sub(4)).step_by(4) {
        for word in [0u32, 1, 2, 3, 4, 9, 0x7fff_ffff, 0xffff_ffff] {
            let mut bad = dtb.clone();
            bad[i..i + 4].copy_from_slice(&word.to_be_bytes());
            let _ = bulkhead_config::load(&bad);
        }
    }
}
