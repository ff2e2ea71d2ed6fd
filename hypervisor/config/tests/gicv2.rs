//! Platforms with a GICv2 and CPUs started by spin table, without PSCI firmware (a Raspberry Pi
//! 4): what the parser reads from them, and the inconsistent ones it and validation refuse.

mod common;

use bulkhead_config::guest_view::{GICD_SIZE, GICV2_CPU_SIZE, GICV2_DIST_SIZE};
use bulkhead_config::{
    Cpu, EnableMethod, ErrorKind, GicVersion, GuestPhysAddr, GuestRange, HostPhysAddr, HostRange,
};
use common::*;

fn host(base: u64, size: u64) -> HostRange {
    HostRange::new(HostPhysAddr(base), size)
}

/// Where CPU `n`'s spin table is in [`pi_like`]: in RAM, outside every partition's and the
/// hypervisor's memory.
fn release_addr(n: u32) -> u64 {
    0x4f00_00d8 + 8 * u64::from(n)
}

/// A board shaped like a Raspberry Pi 4: a GIC-400, no PSCI, every CPU on a spin table.
fn pi_like() -> Board {
    let spin = |n: u32| Some(("spin-table", Some(c2(release_addr(n)).to_vec())));
    Board {
        gic: TestGic::v2(),
        psci: false,
        enable_methods: [spin(0), spin(1), spin(2), spin(3)],
        ..Board::default()
    }
}

#[test]
fn a_gicv2_platform_with_spin_tables_parses() {
    let c = pi_like().load().unwrap_or_else(|e| panic!("{e}"));
    let gic = &c.platform.gic;
    assert!(gic.is_v2());
    assert_eq!(gic.distributor, host(0x0800_0000, 0x1_0000));
    assert!(gic.redistributors.is_empty());
    assert_eq!(
        gic.version,
        GicVersion::V2 {
            cpu: host(0x0801_0000, 0x1_0000),
            control: host(0x0803_0000, 0x1_0000),
            vcpu: host(0x0804_0000, 0x1_0000),
        }
    );
    assert_eq!(c.platform.psci, None);
    for (n, cpu) in c.platform.cpus.iter().enumerate() {
        assert_eq!(
            cpu.enable_method,
            Some(EnableMethod::SpinTable {
                release_addr: HostPhysAddr(release_addr(n as u32))
            })
        );
    }
}

#[test]
fn cpus_name_how_they_start() {
    let mut b = Board::default();
    b.enable_methods[1] = Some(("psci", None));
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.platform.cpus[0].enable_method, None, "none given");
    assert_eq!(c.platform.cpus[1].enable_method, Some(EnableMethod::Psci));
    assert_eq!(c.platform.gic.version, GicVersion::V3);
}

#[test]
fn the_guest_sees_the_gic_of_its_platform() {
    let v2 = pi_like().load().unwrap();
    assert_eq!(
        v2.platform.gic.guest_windows(2),
        [
            (
                "the virtual GIC distributor",
                GuestRange::new(GuestPhysAddr(0x0800_0000), GICV2_DIST_SIZE)
            ),
            (
                "the virtual GIC CPU interface",
                GuestRange::new(GuestPhysAddr(0x0801_0000), GICV2_CPU_SIZE)
            ),
        ]
    );
    let v3 = Board::default().load().unwrap();
    assert_eq!(
        v3.platform.gic.guest_windows(2),
        [
            (
                "the virtual GIC distributor",
                GuestRange::new(GuestPhysAddr(0x0800_0000), GICD_SIZE)
            ),
            (
                "the virtual GIC redistributors",
                GuestRange::new(GuestPhysAddr(0x080a_0000), 0x4_0000)
            ),
        ]
    );
}

#[test]
fn a_gicv2_without_virtualization_is_refused() {
    let mut b = pi_like();
    b.gic = TestGic::V2 {
        reg: GICV2_RANGES[..2].to_vec(),
        maintenance: Some(vec![1, 9, 4]),
    };
    let e = assert_err!(
        b.parse(),
        "/intc@8000000",
        ErrorKind::GicV2WithoutVirtualization { ranges: 2 }
    );
    assert!(e.to_string().contains("GICH and GICV"), "{e}");
}

#[test]
fn gicv2_ranges_must_hold_their_registers() {
    let mut b = pi_like();
    let mut reg = GICV2_RANGES.to_vec();
    reg[3].1 = 0x1000;
    b.gic = TestGic::V2 {
        reg,
        maintenance: Some(vec![1, 9, 4]),
    };
    let e = assert_err!(
        b.parse(),
        "/intc@8000000",
        ErrorKind::GicRangeTooSmall { needed: 0x2000, .. }
    );
    assert!(e.to_string().contains("GICV"), "{e}");
}

#[test]
fn the_maintenance_interrupt_must_be_ppi_9() {
    let mut b = pi_like();
    b.gic = TestGic::V2 {
        reg: GICV2_RANGES.to_vec(),
        maintenance: None,
    };
    assert_err!(
        b.parse(),
        "/intc@8000000",
        ErrorKind::MissingProperty("interrupts")
    );
    for wrong in [vec![1, 8, 4], vec![0, 9, 4], vec![1, 9]] {
        b.gic = TestGic::V2 {
            reg: GICV2_RANGES.to_vec(),
            maintenance: Some(wrong.clone()),
        };
        let e = assert_err!(
            b.parse(),
            "/intc@8000000",
            ErrorKind::UnsupportedMaintenanceInterrupt { .. }
        );
        assert!(e.to_string().contains("PPI 9"), "{wrong:?}: {e}");
    }
    // Accepted with the CPU mask in the flags, as the Pi's device tree writes it.
    b.gic = TestGic::V2 {
        reg: GICV2_RANGES.to_vec(),
        maintenance: Some(vec![1, 9, 0xf04]),
    };
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unknown_enable_methods_are_refused() {
    let mut b = pi_like();
    b.enable_methods[2] = Some(("brcm,bcm2836-smp", None));
    let e = assert_err!(b.parse(), "/cpus/cpu@2", ErrorKind::UnknownEnableMethod(_));
    assert!(e.to_string().contains("\"brcm,bcm2836-smp\""), "{e}");
}

#[test]
fn a_spin_table_needs_its_release_address() {
    let mut b = pi_like();
    b.enable_methods[1] = Some(("spin-table", None));
    assert_err!(
        b.parse(),
        "/cpus/cpu@1",
        ErrorKind::MissingProperty("cpu-release-addr")
    );
    b.enable_methods[1] = Some(("spin-table", Some(vec![0xd8])));
    assert_err!(
        b.parse(),
        "/cpus/cpu@1",
        ErrorKind::BadPropertyLength {
            property: "cpu-release-addr",
            ..
        }
    );
}

#[test]
fn psci_cpus_need_the_firmware() {
    let mut b = pi_like();
    b.enable_methods[3] = Some(("psci", None));
    let e = assert_err!(b.load(), "/cpus/cpu@3", ErrorKind::PsciCpuWithoutPsci);
    assert!(e.to_string().contains("no /psci node"), "{e}");
    b.psci = true;
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn spin_tables_stay_out_of_owned_memory() {
    let mut b = pi_like();
    // Partition b's memory is 0x4900_0000..0x4a00_0000.
    b.enable_methods[2] = Some(("spin-table", Some(c2(0x4900_00d8).to_vec())));
    let e = assert_err!(b.load(), "/cpus/cpu@2", ErrorKind::SpinTableInMemory { .. });
    assert!(e.to_string().contains("partition b's memory"), "{e}");
    b.enable_methods[2] = Some(("spin-table", Some(c2(0x4000_00d8).to_vec())));
    let e = assert_err!(b.load(), "/cpus/cpu@2", ErrorKind::SpinTableInMemory { .. });
    assert!(e.to_string().contains("the hypervisor's memory"), "{e}");
}

#[test]
fn a_gicv2_serves_at_most_eight_cpus() {
    let mut c = pi_like().load().unwrap();
    for n in 4..9 {
        c.platform.cpus.push(Cpu {
            path: format!("/cpus/cpu@{n}"),
            phandle: None,
            mpidr: n,
            enable_method: None,
        });
    }
    let e = bulkhead_config::validate::validate(&c).unwrap_err();
    assert_eq!(e.node, "/cpus");
    assert_eq!(e.kind, ErrorKind::TooManyCpusForGicV2 { cpus: 9 });
}

#[test]
fn partitions_keep_clear_of_the_virtual_gicv2() {
    // The guest's GICC window (0x0801_0000..0x0801_2000) over its memory.
    let mut b = pi_like();
    b.part("a").memory = Some(region(0x0801_0000, 0x10_0000, 0x4800_0000));
    b.part("a").virtual_uart = None;
    let e = assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::MemoryOverlapsGic { .. }
    );
    assert!(
        e.to_string()
            .contains("virtual GIC at 0x8010000..0x8012000"),
        "{e}"
    );

    // A device on the GICH page is the interrupt controller's.
    let mut b = pi_like();
    b.devs[0].base = 0x0803_0000;
    b.part("a").devices = Some(vec![dev(0)]);
    assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::DeviceIsInterruptController { .. }
    );
}
