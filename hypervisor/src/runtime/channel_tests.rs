//! Host tests of channels at run time (doorbell pages, rings, the doorbell GPIO, stage 2 of the
//! shared memory) and of Bulkhead's hypercalls, on the fake arch interface.
//!
//! The board is `tests::config()` (partition `linux` on CPUs 0 and 1, `ticker` on CPU 2) plus
//! partition `idle` on CPU 3 and two channels:
//!
//! - `ipc0` (id 0, 64 KiB at host 0x4a00_0000): endpoint 0 `linux` at 0x7000_0000 (doorbell
//!   page 0x7001_0000), endpoint 1 `ticker` at 0x4100_0000 (doorbell 0x4101_0000, SPI 100 =
//!   INTID 132);
//! - `ctl` (id 1, at host 0x4a01_0000): endpoint 0 `ticker` at 0x4200_0000 (doorbell
//!   0x4201_0000, INTID 134), endpoint 1 `linux` at 0x7100_0000, read-only.
//!
//! `linux` has a doorbell GPIO at 0x0904_0000 (SPI 101 = INTID 133): `ipc0` is its line 0,
//! `ctl` its line 1. `idle` is an endpoint of neither.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use bulkhead_bundle::{Bundle, Entry, Kind};
use bulkhead_config::hypercall::{self, ChannelInfo, Signal};
use bulkhead_config::*;

use super::dispatch::Continue;
use super::fake::{Call, FakeHw};
use super::hw::Hw;
use super::partition::State;
use super::tests::{
    access, access32, config, data_abort, enter, hvc, partition, pending, GICD, LINUX, MIB,
    SYSTEM_OFF, SYSTEM_RESET, TICKER,
};
use super::System;
use crate::exit::tests::abort_esr;
use crate::exit::Exit;
use crate::frame::TrapFrame;
use crate::stage2::MemKind;
use crate::vgic::VirtualIrq;

const IDLE: PartitionId = PartitionId(2);
const IPC0: u64 = 0;
const CTL: u64 = 1;
const IPC0_MEMORY: HostRange = HostRange {
    base: HostPhysAddr(0x4a00_0000),
    size: 0x1_0000,
};
const LINUX_DOORBELL: u64 = 0x7001_0000;
const TICKER_DOORBELL: u64 = 0x4101_0000;
const TICKER_SPI: u32 = 132;
const GPIO: u64 = 0x0904_0000;
const GPIO_SPI: u32 = 133;

fn endpoint(
    partition: usize,
    name: &str,
    ipa: u64,
    access: ChannelAccess,
    interrupt: Option<u32>,
) -> ChannelEndpoint {
    ChannelEndpoint {
        path: alloc::format!("/hypervisor/x/{name}"),
        partition: PartitionId(partition),
        guest_address: GuestPhysAddr(ipa),
        doorbell: GuestPhysAddr(ipa + 0x1_0000),
        access,
        interrupt,
    }
}

fn channel_config() -> BoardConfig {
    let mut c = config();
    c.partitions
        .push(partition("idle", &[3], 0x4000_0000, 0x4c00_0000, vec![]));
    c.partitions[0].doorbell_gpio = Some(DoorbellGpio {
        base: GuestPhysAddr(GPIO),
        interrupt: GPIO_SPI - 32,
    });
    let rw = ChannelAccess::ReadWrite;
    c.channels = vec![
        Channel {
            name: "ipc0".to_string(),
            path: "/hypervisor/ipc0".to_string(),
            memory: IPC0_MEMORY,
            endpoints: vec![
                endpoint(0, "endpoint-0", 0x7000_0000, rw, None),
                endpoint(1, "endpoint-1", 0x4100_0000, rw, Some(TICKER_SPI - 32)),
            ],
        },
        Channel {
            name: "ctl".to_string(),
            path: "/hypervisor/ctl".to_string(),
            memory: HostRange::new(HostPhysAddr(0x4a01_0000), 0x1_0000),
            endpoints: vec![
                endpoint(1, "endpoint-0", 0x4200_0000, rw, Some(102)),
                endpoint(0, "endpoint-1", 0x7100_0000, ChannelAccess::ReadOnly, None),
            ],
        },
    ];
    validate::validate(&c).expect("the channel test board is valid");
    c
}

fn channel_bundle() -> Bundle<'static> {
    let image = [0xaa; 64];
    let entries: Vec<Entry> = [0x5000_0000u64, 0x4000_0000, 0x4000_0000]
        .iter()
        .enumerate()
        .map(|(p, &load)| Entry {
            kind: Kind::Image,
            partition: p as u32,
            load,
            data: &image,
        })
        .collect();
    let bytes = bulkhead_bundle::write(&entries);
    Bundle::parse(Box::leak(bytes.into_boxed_slice())).unwrap()
}

/// A started system with every partition's vCPU 0 entered, the boot's calls forgotten.
fn system() -> System<FakeHw> {
    let sys = System::new(FakeHw::default(), channel_config(), channel_bundle()).unwrap();
    sys.start();
    for cpu in [0, 2, 3] {
        enter(&sys, cpu);
    }
    sys.hw.take_calls();
    sys
}

/// A call of the vendor-specific hypervisor service from the vCPU on `cpu`: x0..x4 after it.
fn call(sys: &System<FakeHw>, cpu: usize, function: u32, x1: u64) -> [u64; 5] {
    sys.hw.on_cpu(cpu);
    let mut regs = TrapFrame::default();
    regs.x[0] = function.into();
    regs.x[1] = x1;
    regs.x[2] = 0xdead;
    assert_eq!(
        sys.handle_exit(PcpuId(cpu), &mut regs, Exit::Hvc),
        Continue::Guest
    );
    [regs.x[0], regs.x[1], regs.x[2], regs.x[3], regs.x[4]]
}

fn error(x: [u64; 5]) -> Option<hypercall::Error> {
    hypercall::Error::from_code(x[0])
}

/// Enables Group 1 and SPI `intid` in the distributor of the partition on `cpu`.
fn enable_spi(sys: &System<FakeHw>, cpu: usize, intid: u32) {
    let word = u64::from(intid / 32) * 4;
    assert_eq!(access32(sys, cpu, GICD, Some(2)).0, Continue::Guest);
    assert_eq!(
        access32(sys, cpu, GICD + 0x100 + word, Some(1 << (intid % 32))).0,
        Continue::Guest
    );
}

/// The virtual interrupts on their way to vCPU 0 of `p`: queued, or in its CPU's list
/// registers (where they go when that CPU returns to the guest).
fn queued(sys: &System<FakeHw>, p: PartitionId) -> Vec<u32> {
    let mut irqs: Vec<u32> = pending(sys, p, 0).iter().map(|i| i.intid).collect();
    let cpu = sys.partitions[p.index()].vcpus[0].pcpu;
    let this = sys.hw.this_cpu();
    sys.hw.on_cpu(cpu.index());
    irqs.extend(
        sys.hw
            .lrs()
            .iter()
            .filter(|lr| !lr.is_free())
            .map(|lr| lr.irq.intid),
    );
    sys.hw.on_cpu(this.index());
    irqs
}

/// Takes `intid` away from `p`'s vCPU 0, as if its guest had handled it.
fn handled(sys: &System<FakeHw>, p: PartitionId, intid: u32) {
    sys.partitions[p.index()].vcpus[0]
        .pending
        .lock()
        .remove(intid);
    let cpu = sys.partitions[p.index()].vcpus[0].pcpu;
    let this = sys.hw.this_cpu();
    sys.hw.on_cpu(cpu.index());
    for (n, lr) in sys.hw.lrs().iter().enumerate() {
        if lr.holds(intid) {
            sys.hw.set_lr(n, crate::vgic::ListReg::EMPTY);
        }
    }
    sys.hw.on_cpu(this.index());
}

#[test]
fn channel_memory_is_zeroed_once_and_mapped_with_each_endpoints_access() {
    let sys = System::new(FakeHw::default(), channel_config(), channel_bundle()).unwrap();
    let zeroes = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| **c == Call::Zero(IPC0_MEMORY))
            .count()
    };
    assert_eq!(zeroes(&sys.hw.take_calls()), 1, "zeroed at boot");
    let s2 = |p: PartitionId| &sys.partitions[p.index()].stage2;
    let rw = s2(LINUX).lookup(GuestPhysAddr(0x7000_0010)).unwrap();
    assert_eq!(rw.pa, HostPhysAddr(0x4a00_0010));
    assert_eq!(rw.kind, MemKind::Normal);
    assert!(rw.writable && !rw.executable);
    let ro = s2(LINUX).lookup(GuestPhysAddr(0x7100_0000)).unwrap();
    assert_eq!(ro.pa, HostPhysAddr(0x4a01_0000));
    assert!(ro.readable && !ro.writable);
    let ticker = s2(TICKER).lookup(GuestPhysAddr(0x4100_f000)).unwrap();
    assert_eq!(ticker.pa, HostPhysAddr(0x4a00_f000));
    // Doorbell pages are never mapped, nor is anything for a partition that is no endpoint.
    assert_eq!(s2(LINUX).lookup(GuestPhysAddr(LINUX_DOORBELL)), None);
    assert_eq!(s2(TICKER).lookup(GuestPhysAddr(TICKER_DOORBELL)), None);
    assert_eq!(s2(LINUX).lookup(GuestPhysAddr(GPIO)), None);
    for ipa in [0x7000_0000, 0x4100_0000, 0x4200_0000, 0x7100_0000] {
        assert_eq!(s2(IDLE).lookup(GuestPhysAddr(ipa)), None, "{ipa:#x}");
    }

    // A restart reloads the partition's own memory only: the queues survive.
    sys.start();
    enter(&sys, 2);
    sys.hw.take_calls();
    assert_eq!(hvc(&sys, 2, [SYSTEM_RESET, 0, 0, 0]).0, Continue::Idle);
    let mut calls = sys.hw.take_calls();
    // The partition's CPU reloads it as it starts it again.
    sys.hw.on_cpu(2);
    assert!(sys.next_vcpu_start(PcpuId(2)).is_some());
    calls.extend(sys.hw.take_calls());
    let ticker_memory = HostRange::new(HostPhysAddr(0x4800_0000), 16 * MIB);
    assert!(calls
        .iter()
        .any(|c| matches!(c, Call::Zero(r) if ticker_memory.contains_range(r))));
    assert_eq!(zeroes(&calls), 0, "not on a restart");
}

#[test]
fn the_doorbell_page_says_who_the_caller_is() {
    let sys = system();
    assert_eq!(
        access32(&sys, 2, TICKER_DOORBELL + 4, None),
        (Continue::Guest, 1),
        "ENDPOINT"
    );
    assert_eq!(
        access32(&sys, 2, TICKER_DOORBELL + 8, None).1,
        IPC0,
        "CHANNEL"
    );
    assert_eq!(access32(&sys, 2, 0x4201_0004, None).1, 0, "ENDPOINT of ctl");
    assert_eq!(
        access32(&sys, 2, 0x4201_0008, None).1,
        CTL,
        "CHANNEL of ctl"
    );
    assert_eq!(access32(&sys, 0, LINUX_DOORBELL + 4, None).1, 0);
    // Reserved offsets read 0 and ignore writes; RING reads 0.
    assert_eq!(
        access32(&sys, 2, TICKER_DOORBELL + 0xffc, None),
        (Continue::Guest, 0)
    );
    assert_eq!(
        access32(&sys, 2, TICKER_DOORBELL + 0x10, Some(5)).0,
        Continue::Guest
    );
    assert_eq!(access32(&sys, 2, TICKER_DOORBELL, None).1, 0);
    assert!(queued(&sys, LINUX).is_empty() && queued(&sys, TICKER).is_empty());
}

#[test]
fn a_ring_makes_the_peers_doorbell_spi_pending_once_enabled() {
    let sys = system();
    // The ticker has not enabled its doorbell yet: the edge is kept, not delivered.
    assert_eq!(
        access32(&sys, 0, LINUX_DOORBELL, Some(1)).0,
        Continue::Guest
    );
    assert!(queued(&sys, TICKER).is_empty());
    enable_spi(&sys, 2, TICKER_SPI);
    assert_eq!(queued(&sys, TICKER), [TICKER_SPI], "delivered when enabled");
    handled(&sys, TICKER, TICKER_SPI);
    enable_spi(&sys, 2, TICKER_SPI);
    assert!(queued(&sys, TICKER).is_empty(), "once");

    // Enabled: a ring from another CPU queues it and kicks the ticker's CPU.
    sys.hw.take_calls();
    assert_eq!(
        access32(&sys, 0, LINUX_DOORBELL, Some(0)).0,
        Continue::Guest
    );
    // Purely virtual (no hardware interrupt behind it), at the guest's priority for it.
    assert_eq!(
        pending(&sys, TICKER, 0),
        [VirtualIrq {
            intid: TICKER_SPI,
            priority: sys.partitions[TICKER.index()].vgic.spi_target(TICKER_SPI).1,
            hw: None,
            source: None,
        }]
    );
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(2))));
    // Rings before the ticker takes it coalesce.
    let _ = access32(&sys, 0, LINUX_DOORBELL, Some(0));
    assert_eq!(queued(&sys, TICKER), [TICKER_SPI]);
    // Nothing for the ringer or a bystander; nothing physical.
    assert!(queued(&sys, LINUX).is_empty() && queued(&sys, IDLE).is_empty());
    assert!(!sys.hw.take_calls().iter().any(|c| matches!(
        c,
        Call::ChangeSpi(..) | Call::SetEnabled(..) | Call::RouteSpi(..)
    )));
}

#[test]
fn a_ring_of_a_linux_partition_is_an_edge_on_its_doorbell_gpio_line() {
    let sys = system();
    let gpio = |offset: u64, write: Option<u64>| access(&sys, 0, GPIO + offset, 0, write);
    // The ticker rings ipc0 (line 0) before Linux set anything up: latched in RIS only.
    assert_eq!(
        access32(&sys, 2, TICKER_DOORBELL, Some(1)).0,
        Continue::Guest
    );
    assert_eq!(gpio(0x414, None).1, 1, "GPIORIS");
    assert_eq!(gpio(0x418, None).1, 0, "GPIOMIS: masked");
    assert!(queued(&sys, LINUX).is_empty());
    // gpio-pl061 probes: the AMBA bus reads the IDs with 32-bit reads.
    assert_eq!(access32(&sys, 0, GPIO + 0xfe0, None).1, 0x61);
    assert_eq!(access32(&sys, 0, GPIO + 0xff0, None).1, 0x0d);
    // Unmasking line 0 with the SPI still disabled: the line is high, nothing delivered yet.
    let _ = gpio(0x410, Some(1));
    assert!(queued(&sys, LINUX).is_empty());
    // Enabling the SPI delivers it.
    enable_spi(&sys, 0, GPIO_SPI);
    assert_eq!(queued(&sys, LINUX), [GPIO_SPI]);
    // The handler reads MIS and acks the edge with IC.
    assert_eq!(gpio(0x418, None).1, 1);
    let _ = gpio(0x41c, Some(1));
    assert_eq!(gpio(0x418, None).1, 0);
    handled(&sys, LINUX, GPIO_SPI);
    // ctl's ring is line 1, masked: no interrupt; line 0 again: a new edge, delivered.
    let _ = access32(&sys, 2, 0x4201_0000, Some(1));
    assert_eq!(gpio(0x414, None).1, 0b10);
    assert!(queued(&sys, LINUX).is_empty());
    let _ = access32(&sys, 2, TICKER_DOORBELL, Some(1));
    assert_eq!(gpio(0x418, None).1, 0b01);
    assert_eq!(queued(&sys, LINUX), [GPIO_SPI]);
}

#[test]
fn a_ring_of_a_stopped_peer_is_dropped() {
    let sys = system();
    enable_spi(&sys, 2, TICKER_SPI);
    assert_eq!(hvc(&sys, 2, [SYSTEM_OFF, 0, 0, 0]).0, Continue::Idle);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
    assert_eq!(
        access32(&sys, 0, LINUX_DOORBELL, Some(1)).0,
        Continue::Guest
    );
    assert!(queued(&sys, TICKER).is_empty());
    let x = call(&sys, 0, hypercall::CHANNEL_RING, IPC0);
    assert_eq!((x[0], x[1]), (0, 0), "accepted, not delivered");
}

#[test]
fn a_restart_forgets_the_doorbell_state_of_the_restarted_partition() {
    let sys = system();
    let _ = access32(&sys, 2, TICKER_DOORBELL, Some(1));
    let _ = access(&sys, 0, GPIO + 0x410, 0, Some(1));
    assert_eq!(access(&sys, 0, GPIO + 0x414, 0, None).1, 1);
    assert_eq!(hvc(&sys, 0, [SYSTEM_RESET, 0, 0, 0]).0, Continue::Idle);
    enter(&sys, 0);
    assert_eq!(access(&sys, 0, GPIO + 0x414, 0, None).1, 0, "RIS reset");
    assert_eq!(access(&sys, 0, GPIO + 0x410, 0, None).1, 0, "IE reset");
    // And its latched doorbell SPI: the ticker rang before restarting.
    let sys = system();
    let _ = access32(&sys, 0, LINUX_DOORBELL, Some(1));
    assert_eq!(hvc(&sys, 2, [SYSTEM_RESET, 0, 0, 0]).0, Continue::Idle);
    enter(&sys, 2);
    enable_spi(&sys, 2, TICKER_SPI);
    assert!(
        queued(&sys, TICKER).is_empty(),
        "an edge of its previous run"
    );
}

#[test]
fn bad_doorbell_accesses_stop_the_partition_alone() {
    // A byte, a 64-bit and a misaligned 32-bit access.
    for (size_log2, offset) in [(0, 0), (3, 0), (2, 2)] {
        let sys = system();
        let (next, _) = access(&sys, 2, TICKER_DOORBELL + offset, size_log2, Some(1));
        assert_eq!(next, Continue::Idle, "{size_log2} {offset}");
        assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
        assert_eq!(sys.partitions[LINUX.index()].state(), State::Running);
        enable_spi(&sys, 0, GPIO_SPI);
        assert!(queued(&sys, LINUX).is_empty(), "no ring went out");
    }
    // A 64-bit access to the doorbell GPIO.
    let sys = system();
    assert_eq!(access(&sys, 0, GPIO + 0x410, 3, None).0, Continue::Idle);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
}

#[test]
fn a_read_only_endpoint_cannot_write_and_others_cannot_reach_the_channel() {
    // A write to ctl by linux, its read-only endpoint: a stage-2 permission fault.
    let sys = system();
    let permission = abort_esr(2, 1, true, false, false, 0x0f);
    let mut regs = TrapFrame::default();
    let next = sys.handle_exit(PcpuId(0), &mut regs, data_abort(permission, 0x7100_0040));
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Running);
    // idle reaching for ipc0 where linux has it, or the ticker's doorbell page.
    for ipa in [0x7000_0000, TICKER_DOORBELL] {
        let sys = system();
        let (next, _) = access32(&sys, 3, ipa, Some(1));
        assert_eq!(next, Continue::Idle, "{ipa:#x}");
        assert_eq!(sys.partitions[IDLE.index()].state(), State::Stopped);
        enable_spi(&sys, 2, TICKER_SPI);
        assert!(queued(&sys, TICKER).is_empty(), "no ring went out");
    }
}

#[test]
fn hypercalls_tell_a_partition_who_it_is_and_what_its_channels_are() {
    let sys = system();
    assert_eq!(
        call(&sys, 0, hypercall::PARTITION_INFO, 0)[..4],
        [0, 0, 2, 0],
        "linux: partition 0, 2 channels, vCPU 0"
    );
    assert_eq!(
        call(&sys, 2, hypercall::PARTITION_INFO, 0)[..4],
        [0, 1, 2, 0]
    );
    assert_eq!(
        call(&sys, 3, hypercall::PARTITION_INFO, 0)[..4],
        [0, 2, 0, 0]
    );
    // Channel ids by position.
    assert_eq!(call(&sys, 0, hypercall::CHANNEL_ID, 1)[..2], [0, CTL]);
    assert_eq!(call(&sys, 2, hypercall::CHANNEL_ID, 0)[..2], [0, IPC0]);
    assert_eq!(
        error(call(&sys, 0, hypercall::CHANNEL_ID, 2)),
        Some(hypercall::Error::InvalidParameters)
    );
    // Channel info, decoded as a guest would.
    let info = |cpu, id| {
        let x = call(&sys, cpu, hypercall::CHANNEL_INFO, id);
        assert_eq!(x[0], 0);
        ChannelInfo::decode([x[1], x[2], x[3], x[4]])
    };
    assert_eq!(
        info(0, CTL),
        ChannelInfo {
            shm: 0x7100_0000,
            size: 0x1_0000,
            doorbell: 0x7101_0000,
            endpoint: 1,
            read_only: true,
            signal: Signal::GpioLine {
                intid: GPIO_SPI,
                line: 1
            },
        }
    );
    assert_eq!(
        info(2, IPC0),
        ChannelInfo {
            shm: 0x4100_0000,
            size: 0x1_0000,
            doorbell: TICKER_DOORBELL,
            endpoint: 1,
            read_only: false,
            signal: Signal::Spi { intid: TICKER_SPI },
        }
    );
    // The vendor UID and revision.
    let uid = call(&sys, 3, hypercall::VENDOR_HYP_UID, 0);
    assert_eq!(uid[..4], hypercall::BULKHEAD_UID.map(u64::from));
    assert_eq!(
        call(&sys, 3, hypercall::VENDOR_HYP_REVISION, 0)[..2],
        [1, 1]
    );
}

#[test]
fn hypercalls_about_someone_elses_channel_fail_with_the_defined_errors() {
    let sys = system();
    enable_spi(&sys, 2, TICKER_SPI);
    for function in [hypercall::CHANNEL_INFO, hypercall::CHANNEL_RING] {
        assert_eq!(
            error(call(&sys, 3, function, IPC0)),
            Some(hypercall::Error::NotEndpoint),
            "{function:#x}"
        );
        assert_eq!(
            error(call(&sys, 3, function, 2)),
            Some(hypercall::Error::InvalidParameters)
        );
        assert_eq!(
            error(call(&sys, 0, function, u64::MAX)),
            Some(hypercall::Error::InvalidParameters)
        );
    }
    assert!(queued(&sys, TICKER).is_empty(), "idle's ring went nowhere");
    assert_eq!(
        error(call(&sys, 0, 0xc600_00ff, 0)),
        Some(hypercall::Error::NotSupported)
    );
    // An endpoint rings through the hypercall like through its doorbell page.
    let x = call(&sys, 0, hypercall::CHANNEL_RING, IPC0);
    assert_eq!((x[0], x[1]), (0, 1));
    assert_eq!(queued(&sys, TICKER), [TICKER_SPI]);
    // Every partition survived its refused calls.
    assert!(sys.partitions.iter().all(|p| p.state() == State::Running));
}
