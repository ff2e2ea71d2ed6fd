//! The runtime on a GICv2 platform (QEMU virt's `gic-version=2` layout): the same board as the
//! other tests, whose partitions then see a GICv2 distributor with banked SGIs and PPIs, send
//! SGIs through `GICD_SGIR`, route SPIs with `GICD_ITARGETSR`, and find the hardware's virtual
//! CPU interface where their GICC is.

use super::*;
use crate::stage2::MemKind;

const GICC: u64 = 0x0801_0000;
const GICV: u64 = 0x0804_0000;
/// The old GICv3 redistributor window, which a GICv2 partition does not have.
const GICR: u64 = 0x080a_0000;

fn config_v2() -> BoardConfig {
    let mut config = config();
    let range = |base| HostRange::new(HostPhysAddr(base), 0x1_0000);
    config.platform.gic = Gic {
        version: GicVersion::V2 {
            cpu: range(GICC),
            control: range(0x0803_0000),
            vcpu: range(GICV),
        },
        distributor: range(GICD),
        redistributors: vec![],
    };
    validate::validate(&config).expect("the GICv2 test board is valid");
    config
}

/// A started GICv2 system in which linux runs on CPUs 0 and 1.
fn system_v2() -> System<FakeHw> {
    let sys = System::new(FakeHw::default(), config_v2(), bundle()).unwrap();
    sys.start();
    enter(&sys, 0);
    assert_eq!(
        hvc(&sys, 0, [CPU_ON, 1, 0x5000_0000, 0]),
        (Continue::Guest, 0)
    );
    enter(&sys, 1);
    sys.hw.take_calls();
    sys
}

#[test]
fn the_guests_gicc_is_the_virtual_cpu_interface() {
    let sys = system_v2();
    let linux = &sys.partitions[LINUX.index()];
    for offset in [0, 0x1000, 0x1fff] {
        assert_eq!(
            linux.stage2.translate(GuestPhysAddr(GICC + offset)),
            Some((HostPhysAddr(GICV + offset), MemKind::Device)),
            "GICC + {offset:#x}"
        );
    }
    assert_eq!(linux.stage2.translate(GuestPhysAddr(GICC + 0x2000)), None);
    // The distributor is emulated, not mapped.
    assert_eq!(linux.stage2.translate(GuestPhysAddr(GICD)), None);
}

#[test]
fn the_distributor_shows_each_vcpu_its_own_interface() {
    let sys = system_v2();
    // GICD_ITARGETSR0 names the reader.
    assert_eq!(
        access32(&sys, 0, GICD + 0x800, None),
        (Continue::Guest, 0x0101_0101)
    );
    assert_eq!(
        access32(&sys, 1, GICD + 0x800, None),
        (Continue::Guest, 0x0202_0202)
    );
    // GICD_TYPER: two CPU interfaces.
    let (_, typer) = access32(&sys, 0, GICD + 4, None);
    assert_eq!((typer >> 5) & 7, 1);
}

#[test]
fn gicd_sgir_reaches_only_the_senders_partition_with_its_id() {
    let sys = system_v2();
    // SGI 7 from vCPU 0 to interfaces 1..7: only vCPU 1 exists.
    let (next, _) = access32(&sys, 0, GICD + 0xf00, Some((0xfe << 16) | 7));
    assert_eq!(next, Continue::Guest);
    assert_eq!(
        pending(&sys, LINUX, 1),
        [VirtualIrq {
            intid: 7,
            priority: 0,
            hw: None,
            source: Some(VcpuId(0)),
        }]
    );
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(1))));
    assert!(pending(&sys, TICKER, 0).is_empty());
    // "All but self" from vCPU 1 reaches vCPU 0, and goes into its list registers with the
    // sender on the way back into the guest on CPU 0.
    assert_eq!(
        access32(&sys, 1, GICD + 0xf00, Some((1 << 24) | 2)).0,
        Continue::Guest
    );
    sys.hw.on_cpu(0);
    let mut regs = TrapFrame::default();
    assert_eq!(
        sys.handle_exit(PcpuId(0), &mut regs, Exit::Irq),
        Continue::Guest
    );
    assert!(sys
        .hw
        .lrs()
        .iter()
        .any(|lr| lr.holds(2) && lr.irq.source == Some(VcpuId(1))));
}

#[test]
fn itargetsr_routes_a_passthrough_spi_to_its_vcpus_core() {
    let sys = system_v2();
    let offset = 0x800 + u64::from(PASSTHROUGH_SPI);
    // One byte per SPI: a word write at the word holding SPI 48.
    let (next, _) = access32(
        &sys,
        0,
        GICD + (offset & !3),
        Some(0b10 << (8 * (offset & 3))),
    );
    assert_eq!(next, Continue::Guest);
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::RouteSpi(PASSTHROUGH_SPI, PcpuId(1))));
    let linux = &sys.partitions[LINUX.index()];
    assert_eq!(linux.vgic.spi_target(PASSTHROUGH_SPI).0, VcpuId(1));
}

#[test]
fn a_vcpu_enables_its_own_timer_interrupt() {
    let sys = system_v2();
    // vCPU 1 sets GICD_ISENABLER0 bit 27 (the virtual timer) and the SGIs.
    assert_eq!(
        access32(&sys, 1, GICD + 0x100, Some((1 << 27) | 0xffff)).0,
        Continue::Guest
    );
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::SetEnabled(27, PcpuId(1), true)));
    assert!(!calls
        .iter()
        .any(|c| matches!(c, Call::SetEnabled(_, PcpuId(0), _))));
    let linux = &sys.partitions[LINUX.index()];
    let banks = linux.vgic.redist.lock();
    assert!(banks.get(VcpuId(1)).unwrap().is_enabled(27));
    assert!(!banks.get(VcpuId(0)).unwrap().is_enabled(27));
}

#[test]
fn there_is_no_redistributor_window() {
    let sys = system_v2();
    let (next, _) = access32(&sys, 0, GICR, None);
    assert_eq!(
        next,
        Continue::Idle,
        "an access to nothing stops the partition"
    );
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Running);
}
