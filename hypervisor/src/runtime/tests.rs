//! Host tests of the runtime's policy, on the fake arch interface: guest exits go in decoded,
//! and the tests check the partitions' state and the hardware calls that come out.
//!
//! The board: four CPUs; partition `linux` (vCPUs 0 and 1 on CPUs 0 and 1, 16 MiB at
//! 0x5000_0000, a passthrough device with SPI 48 that shares its page with a device nobody owns,
//! so it is trapped, and a virtual UART) and partition `ticker` (vCPU 0 on CPU 2, 16 MiB, a
//! virtual UART); CPU 3 runs nothing.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use bulkhead_bundle::{Bundle, Entry, Kind};
use bulkhead_config::*;

use super::dispatch::Continue;
use super::fake::{Call, FakeHw};
use super::hw::{Hw, SpiChange};
use super::lifecycle::LOAD_PIECE;
use super::partition::State;
use super::System;
use crate::exit::tests::abort_esr;
use crate::exit::{Exit, GuestAccess, SysRegTrap, Unhandled};
use crate::frame::TrapFrame;
use crate::psci::VcpuPower;
use crate::vgic::{ListReg, LrState, VirtualIrq};

pub(super) const MIB: u64 = 1 << 20;
pub(super) const LINUX: PartitionId = PartitionId(0);
pub(super) const TICKER: PartitionId = PartitionId(1);
const PASSTHROUGH_SPI: u32 = 48;
pub(super) const UART_SPI: u32 = 33;
pub(super) const VUART: u64 = 0x0900_0000;
pub(super) const GICD: u64 = 0x0800_0000;

fn device(path: &str, base: u64, size: u64, spi: u32) -> Device {
    Device {
        path: path.to_string(),
        phandle: None,
        compatible: vec!["test".to_string()],
        regs: vec![HostRange::new(HostPhysAddr(base), size)],
        irqs: vec![Irq {
            kind: IrqKind::Spi,
            number: spi - 32,
            flags: 4,
        }],
        dma: Dma::None,
    }
}

pub(super) fn partition(
    name: &str,
    cpus: &[usize],
    ipa: u64,
    pa: u64,
    devices: Vec<usize>,
) -> Partition {
    Partition {
        name: name.to_string(),
        path: alloc::format!("/hypervisor/{name}"),
        cpus: cpus.iter().map(|&c| PcpuId(c)).collect(),
        memory: vec![MemoryRegion {
            ipa: GuestPhysAddr(ipa),
            size: 16 * MIB,
            pa: HostPhysAddr(pa),
        }],
        devices: devices
            .into_iter()
            .map(PassthroughDevice::trapped)
            .collect(),
        dma_trusted: false,
        direct_interrupts: false,
        virtual_uart: Some(GuestPhysAddr(VUART)),
        image: "test".to_string(),
        load_address: GuestPhysAddr(ipa),
        entry: GuestPhysAddr(ipa),
        initrd: None,
        bootargs: None,
        doorbell_gpio: None,
        monitor: false,
        monitor_window: None,
    }
}

pub(super) fn config() -> BoardConfig {
    let config = BoardConfig {
        platform: Platform {
            ram: vec![HostRange::new(HostPhysAddr(0x4000_0000), 1 << 30)],
            cpus: (0..4)
                .map(|i| Cpu {
                    path: alloc::format!("/cpus/cpu@{i}"),
                    phandle: None,
                    mpidr: i,
                    enable_method: Some(EnableMethod::Psci),
                })
                .collect(),
            gic: Gic {
                version: GicVersion::V3,
                distributor: HostRange::new(HostPhysAddr(GICD), 0x1_0000),
                redistributors: vec![HostRange::new(HostPhysAddr(0x080a_0000), 0xf6_0000)],
            },
            psci: Some(PsciConduit::Smc),
            devices: vec![
                device("/pl011@9000000", VUART, 0x1000, UART_SPI),
                device("/virtio@a000000", 0x0a00_0000, 0x200, PASSTHROUGH_SPI),
                // Shares the passthrough device's page, and belongs to nobody.
                device("/virtio@a000200", 0x0a00_0200, 0x200, PASSTHROUGH_SPI + 1),
            ],
            reserved: vec![],
            timer_irqs: vec![],
        },
        hypervisor: HypervisorConfig {
            memory: HostRange::new(HostPhysAddr(0x4000_0000), 64 * MIB),
            console: Some(0),
            log_level: LogLevel::Info,
            stage2_blocks: true,
        },
        partitions: vec![
            partition("linux", &[0, 1], 0x5000_0000, 0x5000_0000, vec![1]),
            partition("ticker", &[2], 0x4000_0000, 0x4800_0000, vec![]),
        ],
        channels: vec![],
    };
    validate::validate(&config).expect("the test board is valid");
    config
}

pub(super) fn bundle() -> Bundle<'static> {
    let image = [0xaa; 64];
    let dtb = [0xd7; 32];
    let bytes = bulkhead_bundle::write(&[
        Entry {
            kind: Kind::Image,
            partition: 0,
            load: 0x5000_0000,
            data: &image,
        },
        Entry {
            kind: Kind::GuestDtb,
            partition: 0,
            load: 0x50e0_0000,
            data: &dtb,
        },
        Entry {
            kind: Kind::Image,
            partition: 1,
            load: 0x4000_0000,
            data: &image,
        },
    ]);
    Bundle::parse(Box::leak(bytes.into_boxed_slice())).unwrap()
}

/// A started system, with the boot's calls forgotten.
fn system() -> System<FakeHw> {
    let sys = System::new(FakeHw::default(), config(), bundle()).unwrap();
    sys.start();
    sys.hw.take_calls();
    sys
}

/// A started system in which linux runs on CPUs 0 and 1 (vCPU 0 started vCPU 1).
fn system_with_linux_on_two_cpus() -> System<FakeHw> {
    let sys = system();
    enter(&sys, 0);
    assert_eq!(
        hvc(&sys, 0, [CPU_ON, 1, 0x5000_0000, 0]),
        (Continue::Guest, 0)
    );
    enter(&sys, 1);
    sys
}

/// Runs vCPU `cpu`'s start as the idle loop would, and returns the CPU's frame for its traps.
pub(super) fn enter(sys: &System<FakeHw>, cpu: usize) -> TrapFrame {
    sys.hw.on_cpu(cpu);
    let start = sys.next_vcpu_start(PcpuId(cpu)).expect("the vCPU starts");
    TrapFrame::new(start.pc.raw(), 0x3c5, start.x0)
}

/// Marks every vCPU of partition `p` back at EL2, as its CPUs would be after a kick (the fake
/// has no other CPU for a restart to wait for).
pub(super) fn all_back_at_el2(sys: &System<FakeHw>, p: PartitionId) {
    for v in &sys.partitions[p.index()].vcpus {
        v.in_guest
            .store(false, core::sync::atomic::Ordering::Release);
    }
}

/// An HVC with `x0..x3` from the vCPU on `cpu`; returns what the CPU does next and x0.
pub(super) fn hvc(sys: &System<FakeHw>, cpu: usize, args: [u64; 4]) -> (Continue, u64) {
    sys.hw.on_cpu(cpu);
    let mut regs = TrapFrame::default();
    regs.x[..4].copy_from_slice(&args);
    let next = sys.handle_exit(PcpuId(cpu), &mut regs, Exit::Hvc);
    (next, regs.x[0])
}

/// The ESR of a data abort with a valid syndrome (translation fault, level 3).
pub(super) fn abort_esr_l3(
    size_log2: u64,
    reg: u64,
    write: bool,
    sign_extend: bool,
    sixty_four: bool,
) -> u64 {
    abort_esr(size_log2, reg, write, sign_extend, sixty_four, 0x07)
}

pub(super) fn data_abort(esr: u64, ipa: u64) -> Exit {
    Exit::DataAbort(GuestAccess::decode(esr, ipa & 0xfff, (ipa >> 12) << 4))
}

/// What x1 holds before a read: a read that is emulated must replace it.
const UNREAD: u64 = 0xdead;

/// An access of `1 << size_log2` bytes at `ipa` by the vCPU on `cpu` through x1 (a write of
/// `value` for `Some(value)`, a read otherwise): what the CPU does next, and x1 afterwards.
pub(super) fn access(
    sys: &System<FakeHw>,
    cpu: usize,
    ipa: u64,
    size_log2: u64,
    write: Option<u64>,
) -> (Continue, u64) {
    sys.hw.on_cpu(cpu);
    let mut regs = TrapFrame::default();
    regs.x[1] = write.unwrap_or(UNREAD);
    let esr = abort_esr_l3(size_log2, 1, write.is_some(), false, size_log2 == 3);
    let next = sys.handle_exit(PcpuId(cpu), &mut regs, data_abort(esr, ipa));
    (next, regs.x[1])
}

/// A 32-bit [`access`].
pub(super) fn access32(
    sys: &System<FakeHw>,
    cpu: usize,
    ipa: u64,
    write: Option<u64>,
) -> (Continue, u64) {
    access(sys, cpu, ipa, 2, write)
}

pub(super) fn pending(sys: &System<FakeHw>, p: PartitionId, vcpu: usize) -> Vec<VirtualIrq> {
    let v = &sys.partitions[p.index()].vcpus[vcpu];
    v.pending.lock().iter().copied().collect()
}

/// What `vcpu` of `p` has been given and not yet taken: its queue, then what is pending in the
/// list registers of its core (where a forwarded interrupt goes straight when it can).
pub(super) fn given(sys: &System<FakeHw>, p: PartitionId, vcpu: usize) -> Vec<VirtualIrq> {
    let v = &sys.partitions[p.index()].vcpus[vcpu];
    let me = sys.hw.this_cpu();
    sys.hw.on_cpu(v.pcpu.index());
    let in_lrs = sys.hw.lrs();
    sys.hw.on_cpu(me.index());
    let mut irqs = pending(sys, p, vcpu);
    irqs.extend(
        in_lrs
            .iter()
            .filter(|lr| lr.state == LrState::Pending)
            .map(|lr| lr.irq),
    );
    irqs
}

pub(super) fn power(sys: &System<FakeHw>, p: PartitionId, vcpu: usize) -> VcpuPower {
    sys.partitions[p.index()].vcpus[vcpu].power()
}

const CPU_ON: u64 = 0xc400_0003;
const CPU_OFF: u64 = 0x8400_0002;
pub(super) const SYSTEM_OFF: u64 = 0x8400_0008;
pub(super) const SYSTEM_RESET: u64 = 0x8400_0009;

#[test]
fn each_partition_is_loaded_by_its_boot_cpu_just_before_it_starts() {
    let sys = System::new(FakeHw::default(), config(), bundle()).unwrap();
    let calls = sys.hw.take_calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Load(..) | Call::Zero(..))),
        "nothing is loaded before the partitions' own CPUs start them"
    );
    assert!(sys.partitions.iter().all(|p| p.state() == State::Stopped));
    sys.start();
    // linux's boot CPU clears and loads linux, and only linux.
    for (cpu, base, loads) in [
        (
            0,
            0x5000_0000,
            vec![
                Call::Load(HostPhysAddr(0x5000_0000), 64),
                Call::Load(HostPhysAddr(0x50e0_0000), 32),
            ],
        ),
        (
            2,
            0x4800_0000,
            vec![Call::Load(HostPhysAddr(0x4800_0000), 64)],
        ),
    ] {
        sys.hw.take_calls();
        sys.hw.on_cpu(cpu);
        assert!(sys.next_vcpu_start(PcpuId(cpu)).is_some());
        let calls = sys.hw.take_calls();
        // Everything but what the blobs overwrite is cleared, before they are loaded.
        let zeroed: Vec<HostRange> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Zero(r) => Some(*r),
                _ => None,
            })
            .collect();
        let blobs: u64 = loads
            .iter()
            .map(|c| match c {
                Call::Load(_, len) => *len as u64,
                _ => 0,
            })
            .sum();
        assert_eq!(zeroed.iter().map(|r| r.size).sum::<u64>(), 16 * MIB - blobs);
        let region = HostRange::new(HostPhysAddr(base), 16 * MIB);
        assert!(zeroed.iter().all(|r| region.contains_range(r)));
        let cleared = calls
            .iter()
            .position(|c| matches!(c, Call::Zero(..)))
            .expect("cleared");
        let got: Vec<_> = calls
            .iter()
            .filter(|c| matches!(c, Call::Load(..)))
            .cloned()
            .collect();
        assert_eq!(
            got, loads,
            "guest-physical load addresses translated to the partition's host memory"
        );
        let loaded = calls.iter().position(|c| *c == loads[0]).unwrap();
        assert!(
            cleared < loaded,
            "memory at {base:#x} is cleared before loading"
        );
        // In pieces, each followed by a look at the console; the instruction caches are
        // invalidated once, after all of it.
        let work: Vec<_> = calls
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Call::Zero(..)
                        | Call::Load(..)
                        | Call::ConsolePump
                        | Call::InvalidateInstructionCaches
                )
            })
            .collect();
        assert!(zeroed.len() >= (16 * MIB / LOAD_PIECE) as usize);
        assert!(zeroed.iter().all(|r| r.size <= LOAD_PIECE));
        let (last, pairs) = work.split_last().unwrap();
        assert_eq!(**last, Call::InvalidateInstructionCaches);
        for pair in pairs.chunks(2) {
            assert!(
                matches!(pair, [Call::Zero(..) | Call::Load(..), Call::ConsolePump]),
                "{pair:?}"
            );
        }
    }
    // Once loaded, a later start of vCPU 0 (after CPU_OFF) does not reload.
    sys.hw.take_calls();
    let p = &sys.partitions[LINUX.index()];
    *p.vcpus[0].power.lock() = crate::runtime::partition::VcpuPowerState::starting(p.boot_entry());
    sys.hw.on_cpu(0);
    assert!(sys.next_vcpu_start(PcpuId(0)).is_some());
    assert!(!sys
        .hw
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Load(..))));
}

#[test]
fn each_cpu_starts_only_its_own_vcpu() {
    let sys = system();
    sys.hw.on_cpu(0);
    let start = sys.next_vcpu_start(PcpuId(0)).unwrap();
    assert_eq!(start.pc, GuestPhysAddr(0x5000_0000));
    assert_eq!(start.x0, 0x50e0_0000, "x0 holds the device tree");
    assert_eq!(start.mpidr, 0);
    assert_eq!(start.vmid, 1);
    assert!(sys.next_vcpu_start(PcpuId(0)).is_none(), "only once");
    // vCPU 1 of linux is off until CPU_ON; CPU 3 runs nothing.
    assert!(sys.next_vcpu_start(PcpuId(1)).is_none());
    assert!(sys.next_vcpu_start(PcpuId(3)).is_none());
    let ticker = sys.next_vcpu_start(PcpuId(2)).unwrap();
    assert_eq!((ticker.vmid, ticker.mpidr), (2, 0));
    assert!(sys.hw.take_calls().contains(&Call::ResetVcpuInterface));
}

#[test]
fn cpu_on_checks_the_entry_point_and_the_target() {
    let sys = system();
    enter(&sys, 0);
    // Outside the partition's memory: refused, nothing started.
    let (next, x0) = hvc(&sys, 0, [CPU_ON, 1, 0x4000_0000, 0]);
    assert_eq!((next, x0 as i64), (Continue::Guest, -9), "INVALID_ADDRESS");
    assert_eq!(power(&sys, LINUX, 1), VcpuPower::Off);
    // Not a vCPU of this partition (the ticker's CPU is no target either).
    let (_, x0) = hvc(&sys, 0, [CPU_ON, 2, 0x5000_0000, 0]);
    assert_eq!(x0 as i64, -2, "INVALID_PARAMETERS");
    sys.hw.take_calls();
    // A good one: vCPU 1 pending, its CPU kicked.
    let (_, x0) = hvc(&sys, 0, [CPU_ON, 0x8000_0001, 0x5000_1000, 42]);
    assert_eq!(x0, 0);
    assert_eq!(power(&sys, LINUX, 1), VcpuPower::OnPending);
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(1))));
    let (_, x0) = hvc(&sys, 0, [CPU_ON, 1, 0x5000_1000, 42]);
    assert_eq!(x0 as i64, -5, "ON_PENDING");
    let start = sys.next_vcpu_start(PcpuId(1)).unwrap();
    assert_eq!(
        (start.pc, start.x0, start.mpidr),
        (GuestPhysAddr(0x5000_1000), 42, 1)
    );
    let (_, x0) = hvc(&sys, 0, [CPU_ON, 1, 0x5000_1000, 42]);
    assert_eq!(x0 as i64, -4, "ALREADY_ON");
}

#[test]
fn an_smc_is_stepped_over_and_answered() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    regs.x[0] = 0x8400_0000; // PSCI_VERSION
    let pc = regs.elr;
    let next = sys.handle_exit(PcpuId(2), &mut regs, Exit::Smc { insn_len: 4 });
    assert_eq!(next, Continue::Guest);
    assert_eq!((regs.elr, regs.x[0]), (pc + 4, 0x1_0001));
}

#[test]
fn a_passthrough_spi_goes_to_the_vcpu_its_owner_routes_it_to() {
    let sys = system();
    enter(&sys, 0);
    // The guest routes SPI 48 to its vCPU 1 (GICD_IROUTER48 = affinity 0.0.0.1).
    let mut regs = TrapFrame::default();
    regs.x[1] = 1;
    let irouter = GICD + 0x6100 + 8 * (u64::from(PASSTHROUGH_SPI) - 32);
    let next = sys.handle_exit(
        PcpuId(0),
        &mut regs,
        data_abort(abort_esr_l3(3, 1, true, false, true), irouter),
    );
    assert_eq!(next, Continue::Guest);
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::RouteSpi(PASSTHROUGH_SPI, PcpuId(1))));
    // The interrupt fires (taken on CPU 1, where it is routed).
    sys.hw.on_cpu(1);
    sys.hw.irqs.lock().push_back(PASSTHROUGH_SPI);
    sys.handle_irqs(PcpuId(1));
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::PriorityDrop(PASSTHROUGH_SPI)));
    assert!(
        !calls.contains(&Call::Deactivate(PASSTHROUGH_SPI)),
        "the guest's EOI deactivates it"
    );
    assert_eq!(
        given(&sys, LINUX, 1),
        [VirtualIrq {
            intid: PASSTHROUGH_SPI,
            priority: 0,
            hw: Some(PASSTHROUGH_SPI),
            source: None,
        }]
    );
    assert!(given(&sys, LINUX, 0).is_empty());
    assert!(given(&sys, TICKER, 0).is_empty());
}

#[test]
fn a_forwarded_interrupt_goes_straight_into_a_free_list_register_unless_others_wait() {
    let sys = system();
    enter(&sys, 0);
    let spi = |intid| VirtualIrq {
        intid,
        priority: 0x80,
        hw: Some(intid),
        source: None,
    };
    let linux = &sys.partitions[LINUX.index()];
    // Nothing queued: no queue, no look at the other list registers.
    sys.hw.take_calls();
    sys.inject(linux, VcpuId(0), spi(PASSTHROUGH_SPI));
    assert!(pending(&sys, LINUX, 0).is_empty());
    assert_eq!(sys.hw.lrs()[0], ListReg::pending(spi(PASSTHROUGH_SPI)));
    assert!(!sys
        .hw
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Kick(..))));
    // Something queued ahead: it waits its turn, in priority order, for flush.
    let virtual_irq = VirtualIrq {
        intid: 40,
        priority: 0x10,
        hw: None,
        source: None,
    };
    sys.inject(linux, VcpuId(0), virtual_irq);
    sys.inject(linux, VcpuId(0), spi(49));
    assert_eq!(pending(&sys, LINUX, 0), [virtual_irq, spi(49)]);
    // A hardware interrupt for another core's vCPU is queued there, and that core kicked.
    sys.inject(linux, VcpuId(1), spi(50));
    assert_eq!(pending(&sys, LINUX, 1), [spi(50)]);
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(1))));
}

#[test]
fn the_spi_of_a_stopped_partition_is_masked_and_completed() {
    let sys = system();
    enter(&sys, 0);
    let (next, _) = hvc(&sys, 0, [SYSTEM_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle, "the ticker still runs");
    sys.hw.take_calls();
    sys.hw.irqs.lock().push_back(PASSTHROUGH_SPI);
    sys.handle_irqs(PcpuId(0));
    assert_eq!(
        sys.hw.take_calls(),
        [
            Call::SetEnabled(PASSTHROUGH_SPI, PcpuId(0), false),
            Call::PriorityDrop(PASSTHROUGH_SPI),
            Call::Deactivate(PASSTHROUGH_SPI),
        ]
    );
    assert!(pending(&sys, LINUX, 0).is_empty());
}

#[test]
fn an_unexpected_physical_interrupt_is_completed_and_goes_nowhere() {
    let sys = system();
    enter(&sys, 2);
    sys.hw.irqs.lock().push_back(77);
    let mut regs = TrapFrame::default();
    assert_eq!(
        sys.handle_exit(PcpuId(2), &mut regs, Exit::Irq),
        Continue::Guest
    );
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::PriorityDrop(77)) && calls.contains(&Call::Deactivate(77)));
    assert!(
        calls.contains(&Call::SetEnabled(77, PcpuId(2), false)),
        "it is disabled so it cannot storm"
    );
    for (p, vcpus) in [(LINUX, 2), (TICKER, 1)] {
        for v in 0..vcpus {
            assert!(pending(&sys, p, v).is_empty());
        }
    }
}

#[test]
fn a_guest_timer_is_forwarded_only_once_the_guest_enabled_it() {
    let sys = system();
    enter(&sys, 2);
    sys.hw.irqs.lock().push_back(27);
    sys.handle_irqs(PcpuId(2));
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::SetEnabled(27, PcpuId(2), false)));
    assert!(pending(&sys, TICKER, 0).is_empty());
    // GICR_ISENABLER0 of vCPU 0 (SGI_base + 0x100): enable PPI 27.
    let mut regs = TrapFrame::default();
    regs.x[2] = 1 << 27;
    let isenabler0 = 0x080a_0000 + 0x1_0100;
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(2, 2, true, false, false), isenabler0),
    );
    assert_eq!(next, Continue::Guest);
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::SetEnabled(27, PcpuId(2), true)));
    sys.hw.irqs.lock().push_back(27);
    sys.handle_irqs(PcpuId(2));
    assert_eq!(given(&sys, TICKER, 0).len(), 1);
    assert_eq!(given(&sys, TICKER, 0)[0].hw, Some(27));
}

#[test]
fn stopping_a_partition_stops_all_its_vcpus_and_nothing_else() {
    let sys = system_with_linux_on_two_cpus();
    enter(&sys, 2);
    sys.hw.take_calls();
    // vCPU 1 powers the partition off.
    let (next, _) = hvc(&sys, 1, [SYSTEM_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    let linux = &sys.partitions[LINUX.index()];
    assert_eq!(linux.state(), State::Stopped);
    assert_eq!(power(&sys, LINUX, 0), VcpuPower::Off);
    assert_eq!(power(&sys, LINUX, 1), VcpuPower::Off);
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::ConsoleFlush(LINUX)));
    assert!(
        calls.contains(&Call::Kick(PcpuId(0))),
        "vCPU 0 leaves the guest"
    );
    assert!(
        !calls.contains(&Call::Kick(PcpuId(1))),
        "the caller idles by itself"
    );
    assert!(
        !calls.contains(&Call::Kick(PcpuId(2))),
        "the ticker is left alone"
    );
    assert!(calls.contains(&Call::SetEnabled(PASSTHROUGH_SPI, PcpuId(0), false)));
    // CPU 0, kicked, finds its vCPU off.
    sys.hw.on_cpu(0);
    let mut regs = TrapFrame::default();
    assert_eq!(
        sys.handle_exit(PcpuId(0), &mut regs, Exit::Irq),
        Continue::Idle
    );
    assert!(sys.next_vcpu_start(PcpuId(0)).is_none());
    // The ticker runs on; when it powers off too, the machine goes off, once.
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Running);
    let (next, _) = hvc(&sys, 2, [SYSTEM_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::PowerOff);
    assert_eq!(sys.power_off_if_all_stopped(), Continue::Idle, "only once");
}

#[test]
fn cpu_off_of_the_last_vcpu_stops_the_partition() {
    let sys = system_with_linux_on_two_cpus();
    let (next, _) = hvc(&sys, 1, [CPU_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Running);
    let (next, _) = hvc(&sys, 0, [CPU_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle, "the ticker still runs");
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
}

#[test]
fn a_restart_reloads_the_partition_and_starts_vcpu_0_alone() {
    let sys = system_with_linux_on_two_cpus();
    enter(&sys, 2);
    all_back_at_el2(&sys, LINUX);
    sys.hw
        .counter
        .store(1234, core::sync::atomic::Ordering::Relaxed);
    sys.hw.take_calls();
    let (next, _) = hvc(&sys, 1, [SYSTEM_RESET, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    let linux = &sys.partitions[LINUX.index()];
    assert_eq!(linux.state(), State::Running);
    assert_eq!(power(&sys, LINUX, 0), VcpuPower::OnPending);
    assert_eq!(power(&sys, LINUX, 1), VcpuPower::Off);
    let calls = sys.hw.take_calls();
    assert!(
        calls.contains(&Call::Kick(PcpuId(0))),
        "vCPU 0's CPU is told to reload and start it"
    );
    assert!(!calls.iter().any(|c| matches!(c, Call::Load(..))));
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Running);
    sys.hw.on_cpu(0);
    let start = sys.next_vcpu_start(PcpuId(0)).unwrap();
    assert_eq!(start.pc, GuestPhysAddr(0x5000_0000));
    assert_eq!(
        linux.cntvoff(),
        1234,
        "its virtual counter starts again from zero"
    );
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::Load(HostPhysAddr(0x5000_0000), 64)));
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Load(HostPhysAddr(0x4800_0000), _))),
        "the ticker's memory is not touched"
    );
}

#[test]
fn emulated_loads_are_sign_extended_and_the_pc_advances() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    let pc = regs.elr;
    // ldrsb x1, [UARTFR]: FR reads 0x90 (TXFE | RXFE).
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(0, 1, false, true, true), VUART + 0x18),
    );
    assert_eq!(next, Continue::Guest);
    assert_eq!(regs.x[1], 0xffff_ffff_ffff_ff90);
    assert_eq!(regs.elr, pc + 4);
    // ldrb w1: zero-extended.
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(0, 1, false, false, false), VUART + 0x18),
    );
    assert_eq!(next, Continue::Guest);
    assert_eq!(regs.x[1], 0x90);
    // A write goes to the console as the ticker's.
    regs.x[3] = u64::from(b'!');
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(2, 3, true, false, false), VUART),
    );
    assert_eq!(next, Continue::Guest);
    assert_eq!(*sys.hw.output.lock(), [(TICKER, b'!')]);
}

#[test]
fn an_access_outside_the_partition_stops_it_alone() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(2, 1, true, false, false), 0x5000_1000),
    );
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Running);
}

#[test]
fn accesses_that_cannot_be_emulated_stop_the_partition() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    // A load pair from the virtual UART: no valid syndrome.
    let no_syndrome = (0x24 << 26) | (1 << 25) | 0x07;
    let exit = data_abort(no_syndrome, VUART);
    let Exit::DataAbort(access) = exit else {
        unreachable!()
    };
    let fault = super::Fault::Access {
        access,
        pc: regs.elr,
        cpu: PcpuId(2),
    };
    assert!(fault
        .to_string()
        .contains("read without a valid instruction syndrome at IPA 0x9000000"));
    assert_eq!(sys.handle_exit(PcpuId(2), &mut regs, exit), Continue::Idle);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
    // A bad size for the device: 8 bytes to the UART.
    let sys = system();
    let mut regs = enter(&sys, 2);
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        data_abort(abort_esr_l3(3, 1, false, false, true), VUART),
    );
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
}

#[test]
fn sgis_reach_only_the_senders_own_partition() {
    let sys = system_with_linux_on_two_cpus();
    sys.hw.take_calls();
    // msr ICC_SGI1R_EL1, x3 with SGI 5 to target list 0b1111 (Aff0 0..3).
    let esr = (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
    let mut regs = TrapFrame::default();
    regs.x[3] = (5 << 24) | 0b1111;
    sys.hw.on_cpu(0);
    let next = sys.handle_exit(PcpuId(0), &mut regs, Exit::SysReg(SysRegTrap::decode(esr)));
    assert_eq!(next, Continue::Guest);
    assert_eq!(pending(&sys, LINUX, 1).len(), 1);
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(1))));
    // Its own SGI went straight into CPU 0's list registers on the way back.
    assert!(sys.hw.lrs().iter().any(|lr| lr.holds(5)));
    assert!(pending(&sys, TICKER, 0).is_empty());
}

#[test]
fn list_registers_overflow_into_the_queue_and_nothing_is_lost() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    let ticker = &sys.partitions[TICKER.index()];
    for sgi in 0..6 {
        sys.inject_virtual(ticker, VcpuId(0), sgi, 0x80);
    }
    let next = sys.handle_exit(PcpuId(2), &mut regs, Exit::Irq);
    assert_eq!(next, Continue::Guest);
    assert_eq!(sys.hw.lrs().iter().filter(|lr| !lr.is_free()).count(), 4);
    assert_eq!(pending(&sys, TICKER, 0).len(), 2);
    assert!(sys.hw.take_calls().contains(&Call::Underflow(true)));
    // The guest handled two; the maintenance interrupt brings the rest in.
    sys.hw.set_lr(0, ListReg::EMPTY);
    sys.hw.set_lr(1, ListReg::EMPTY);
    sys.hw.irqs.lock().push_back(25);
    let next = sys.handle_exit(PcpuId(2), &mut regs, Exit::Irq);
    assert_eq!(next, Continue::Guest);
    assert!(pending(&sys, TICKER, 0).is_empty());
    assert!(sys.hw.lrs().iter().all(|lr| lr.state == LrState::Pending));
}

#[test]
fn an_unhandled_exception_stops_the_partition_with_a_report() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    let brk = (0x3c << 26) | (1 << 25);
    let next = sys.handle_exit(
        PcpuId(2),
        &mut regs,
        Exit::Unhandled(Unhandled { esr: brk, far: 0 }),
    );
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
}

#[test]
fn console_input_reaches_the_partitions_virtual_uart() {
    let sys = system();
    enter(&sys, 2);
    sys.hw
        .typed
        .lock()
        .extend([crate::console::Typed::Byte(TICKER, b'x')]);
    sys.hw.irqs.lock().push_back(UART_SPI);
    sys.handle_irqs(PcpuId(2));
    // The ticker polls (its distributor is off): the held byte is visible and reads back.
    assert_eq!(
        access32(&sys, 2, VUART, None),
        (Continue::Guest, u64::from(b'x'))
    );
    assert!(sys.hw.take_calls().contains(&Call::Deactivate(UART_SPI)));
}

#[test]
fn a_quiet_virtual_uart_is_read_from_its_shadow_page_and_input_switches_it_off() {
    let sys = system();
    let mut regs = enter(&sys, 2);
    let ticker = &sys.partitions[TICKER.index()];
    let shadow = ticker
        .uart_shadow
        .as_ref()
        .expect("the ticker has a virtual UART");
    let fr = 0x18 / 4;
    assert!(
        shadow.shown(),
        "a new UART is quiet: its registers are read from the page"
    );
    assert_eq!(
        shadow.word(fr),
        (1 << 7) | (1 << 4),
        "FR: TX empty, RX empty"
    );
    // A write still traps (a stage-2 permission fault), is emulated, and updates the page:
    // str w1, [UARTIMSC].
    regs.x[1] = 0x10;
    let write = abort_esr(2, 1, true, false, false, 0x0f);
    assert_eq!(
        sys.handle_exit(PcpuId(2), &mut regs, data_abort(write, VUART + 0x38)),
        Continue::Guest
    );
    assert_eq!(shadow.word(0x38 / 4), 0x10, "IMSC as written");
    sys.hw.take_calls();
    // Input arrives: the page is switched off first (with the TLBs), so the guest's reads trap
    // and see the byte.
    sys.hw
        .typed
        .lock()
        .push_back(crate::console::Typed::Byte(TICKER, b'x'));
    sys.hw.irqs.lock().push_back(UART_SPI);
    sys.hw.on_cpu(0);
    sys.handle_irqs(PcpuId(0));
    let vttbr = ticker.stage2.vttbr_value(ticker.vmid);
    let off = Call::SetStage2Entry {
        vttbr,
        ipa: GuestPhysAddr(VUART),
        valid: false,
    };
    assert!(sys.hw.take_calls().contains(&off));
    assert!(!shadow.shown());
    // The guest reads DR (trapped again), gets the byte, and the UART is quiet again: the page
    // is shown once more.
    sys.hw.on_cpu(2);
    let read = abort_esr_l3(2, 1, false, false, false);
    assert_eq!(
        sys.handle_exit(PcpuId(2), &mut regs, data_abort(read, VUART)),
        Continue::Guest
    );
    assert_eq!(regs.x[1], u64::from(b'x'));
    assert!(sys.hw.take_calls().contains(&Call::SetStage2Entry {
        vttbr,
        ipa: GuestPhysAddr(VUART),
        valid: true,
    }));
    assert!(shadow.shown());
}

#[test]
fn a_cpu_without_a_vcpu_never_enters_a_guest() {
    let sys = system();
    sys.hw.on_cpu(3);
    assert!(sys.next_vcpu_start(PcpuId(3)).is_none());
    let mut regs = TrapFrame::default();
    assert_eq!(
        sys.handle_exit(PcpuId(3), &mut regs, Exit::Hvc),
        Continue::Idle
    );
}

#[test]
fn a_trapped_device_is_reached_only_through_its_own_register_window() {
    let sys = system();
    let mut regs = enter(&sys, 0);
    let pc = regs.elr;
    // ldr w1, [0x0a00_0004]: inside the device: performed for the guest.
    let next = sys.handle_exit(
        PcpuId(0),
        &mut regs,
        data_abort(abort_esr_l3(2, 1, false, false, false), 0x0a00_0004),
    );
    assert_eq!(next, Continue::Guest);
    assert_eq!(regs.x[1], 0x7472_6976, "the fake device's value");
    assert_eq!(regs.elr, pc + 4);
    // str w2, [0x0a00_0050].
    regs.x[2] = 1;
    let next = sys.handle_exit(
        PcpuId(0),
        &mut regs,
        data_abort(abort_esr_l3(2, 2, true, false, false), 0x0a00_0050),
    );
    assert_eq!(next, Continue::Guest);
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::MmioRead(HostPhysAddr(0x0a00_0004), 4)));
    assert!(calls.contains(&Call::MmioWrite(HostPhysAddr(0x0a00_0050), 4, 1)));

    // The neighbour on the same page is out of reach: the partition stops, nothing is touched.
    for (esr, ipa) in [
        (abort_esr_l3(2, 1, false, false, false), 0x0a00_0200),
        // Misaligned, and crossing the end of the window.
        (abort_esr_l3(2, 1, false, false, false), 0x0a00_0002),
        (abort_esr_l3(3, 1, false, false, true), 0x0a00_01fc),
    ] {
        let sys = system();
        let mut regs = enter(&sys, 0);
        sys.hw.take_calls();
        let next = sys.handle_exit(PcpuId(0), &mut regs, data_abort(esr, ipa));
        assert_eq!(next, Continue::Idle, "{ipa:#x}");
        assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
        assert!(!sys
            .hw
            .take_calls()
            .iter()
            .any(|c| matches!(c, Call::MmioRead(..) | Call::MmioWrite(..))));
    }
}

/// A GICD write of one 32-bit register by linux's vCPU 0.
fn gicd_write(sys: &System<FakeHw>, offset: u64, value: u64) -> Continue {
    access32(sys, 0, GICD + offset, Some(value)).0
}

#[test]
fn guest_pending_and_active_changes_of_a_passthrough_spi_reach_the_hardware() {
    let sys = system();
    enter(&sys, 0);
    let bit = 1 << (PASSTHROUGH_SPI % 32);
    let word = u64::from(PASSTHROUGH_SPI / 32) * 4;
    // ISPENDR: pended in the hardware, not queued virtually behind an active copy.
    assert_eq!(gicd_write(&sys, 0x200 + word, bit), Continue::Guest);
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::ChangeSpi(PASSTHROUGH_SPI, SpiChange::SetPending)));
    assert!(pending(&sys, LINUX, 0).is_empty() && pending(&sys, LINUX, 1).is_empty());
    // ICPENDR and ICACTIVER: cleared in the hardware.
    assert_eq!(gicd_write(&sys, 0x280 + word, bit), Continue::Guest);
    assert_eq!(gicd_write(&sys, 0x380 + word, bit), Continue::Guest);
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::ChangeSpi(PASSTHROUGH_SPI, SpiChange::ClearPending)));
    assert!(calls.contains(&Call::ChangeSpi(PASSTHROUGH_SPI, SpiChange::ClearActive)));
}

#[test]
fn a_restart_leaves_no_passthrough_interrupt_active_or_enabled() {
    let sys = system_with_linux_on_two_cpus();
    all_back_at_el2(&sys, LINUX);
    sys.hw.take_calls();
    assert_eq!(hvc(&sys, 0, [SYSTEM_RESET, 0, 0, 0]).0, Continue::Idle);
    let calls = sys.hw.take_calls();
    let at = |c: &Call| calls.iter().position(|x| x == c);
    at(&Call::SetEnabled(PASSTHROUGH_SPI, PcpuId(0), false)).expect("masked");
    at(&Call::ChangeSpi(PASSTHROUGH_SPI, SpiChange::ClearActive)).expect("deactivated");
    assert!(
        at(&Call::Load(HostPhysAddr(0x5000_0000), 64)).is_none(),
        "masked before its memory is reloaded (by vCPU 0's CPU, as it starts it again)"
    );
    sys.hw.on_cpu(0);
    assert!(sys.next_vcpu_start(PcpuId(0)).is_some());
    assert!(sys
        .hw
        .take_calls()
        .contains(&Call::Load(HostPhysAddr(0x5000_0000), 64)));
}

#[test]
fn a_vcpu_starting_again_deactivates_what_its_previous_run_left_active() {
    let sys = system();
    enter(&sys, 0);
    // The guest acknowledged the passthrough SPI (active in a list register), then powers its
    // vCPU off and is started again.
    let active = ListReg {
        irq: VirtualIrq {
            intid: PASSTHROUGH_SPI,
            priority: 0,
            hw: Some(PASSTHROUGH_SPI),
            source: None,
        },
        state: LrState::Active,
    };
    sys.hw.set_lr(2, active);
    assert_eq!(hvc(&sys, 0, [CPU_ON, 1, 0x5000_0000, 0]).1, 0);
    enter(&sys, 1);
    assert_eq!(hvc(&sys, 0, [CPU_OFF, 0, 0, 0]).0, Continue::Idle);
    assert_eq!(hvc(&sys, 1, [CPU_ON, 0, 0x5000_0000, 0]).1, 0);
    sys.hw.take_calls();
    enter(&sys, 0);
    let calls = sys.hw.take_calls();
    let deactivated = calls
        .iter()
        .position(|c| *c == Call::Deactivate(PASSTHROUGH_SPI))
        .expect("deactivated");
    let reset = calls
        .iter()
        .position(|c| *c == Call::ResetVcpuInterface)
        .expect("interface reset");
    assert!(deactivated < reset);
    assert!(sys.hw.lrs().iter().all(ListReg::is_free));
}

mod direct;
mod gicv2;
