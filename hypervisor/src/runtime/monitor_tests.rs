//! Host tests of monitoring (`runtime::monitor`): what each exit, injection, restart and fault
//! adds to a partition's counters, the CPU times, and the three readers (the console's table,
//! `MONITOR_READ`, the monitor window), on the fake arch interface.
//!
//! The board is `tests::config()` (`linux` on CPUs 0 and 1 with a trapped device at
//! 0x0a00_0000, `ticker` on CPU 2) with the `monitor` capability and a monitor window at
//! [`WINDOW`] given to `linux`. The fake counter runs at 1 kHz, so a tick is a millisecond.

use bulkhead_config::hypercall::{Error, MONITOR_READ};
use bulkhead_config::monitor::{
    ExitKind, Field, Row, FIELDS, ROW_STRIDE, STATE_NONE, STATE_RUNNING, STATE_STOPPED,
};
use bulkhead_config::*;
use core::sync::atomic::Ordering;

use super::dispatch::Continue;
use super::fake::FakeHw;
use super::monitor::micros;
use super::partition::State;
use super::tests::{
    abort_esr_l3, access, bundle, config, data_abort, enter, hvc, GICD, LINUX, SYSTEM_OFF,
    SYSTEM_RESET, TICKER, UART_SPI, VUART,
};
use super::System;
use crate::console::Typed;
use crate::exit::{Exit, SysRegTrap};
use crate::frame::TrapFrame;

/// `linux`'s monitor window.
const WINDOW: u64 = 0x0b00_0000;
/// Its trapped device (virtio at 0x0a00_0000).
const DEVICE: u64 = 0x0a00_0000;
const PSCI_VERSION: u64 = 0x8400_0000;

fn monitor_config() -> BoardConfig {
    let mut c = config();
    c.partitions[LINUX.index()].monitor = true;
    c.partitions[LINUX.index()].monitor_window = Some(GuestPhysAddr(WINDOW));
    validate::validate(&c).expect("the monitor test board is valid");
    c
}

/// A started system, the counter at 1000.
fn system() -> System<FakeHw> {
    let sys = System::new(FakeHw::default(), monitor_config(), bundle()).unwrap();
    sys.hw.counter.store(1000, Ordering::Relaxed);
    sys.start();
    sys
}

fn set_counter(sys: &System<FakeHw>, now: u64) {
    sys.hw.counter.store(now, Ordering::Relaxed);
}

fn row(sys: &System<FakeHw>, p: PartitionId) -> Row {
    sys.monitor_row(&sys.partitions[p.index()])
}

/// A load of `1 << size_log2` bytes from `ipa` by the vCPU on `cpu`: what comes next, and x1.
fn load(sys: &System<FakeHw>, cpu: usize, ipa: u64, size_log2: u64) -> (Continue, u64) {
    access(sys, cpu, ipa, size_log2, None)
}

/// `MONITOR_READ` from the vCPU on `cpu`: x0..x4.
fn monitor_read(sys: &System<FakeHw>, cpu: usize, partition: u64, first: u64) -> [u64; 5] {
    sys.hw.on_cpu(cpu);
    let mut regs = TrapFrame::default();
    regs.x[..3].copy_from_slice(&[MONITOR_READ.into(), partition, first]);
    regs.x[3] = 0xdead;
    regs.x[4] = 0xdead;
    assert_eq!(
        sys.handle_exit(PcpuId(cpu), &mut regs, Exit::Hvc),
        Continue::Guest
    );
    [regs.x[0], regs.x[1], regs.x[2], regs.x[3], regs.x[4]]
}

#[test]
fn every_exit_is_counted_by_kind_with_the_time_in_guest_and_hypervisor() {
    let sys = system();
    set_counter(&sys, 2000);
    enter(&sys, 0);
    // From now on every counter read moves the counter 5 ticks on: the runtime reads it as it
    // takes an exit and as it goes back, so each exit costs 5 ticks of hypervisor time (10 for
    // the monitor window's, which reads it once more). Before each exit the guest runs 100 more.
    sys.hw.counter_step.store(5, Ordering::Relaxed);
    let mut exits = 0;
    let mut next_exit = |sys: &System<FakeHw>| {
        exits += 1;
        sys.hw.counter.fetch_add(100, Ordering::Relaxed);
    };
    next_exit(&sys);
    assert_eq!(hvc(&sys, 0, [PSCI_VERSION, 0, 0, 0]).0, Continue::Guest);
    next_exit(&sys);
    assert_eq!(load(&sys, 0, VUART + 0x18, 2).0, Continue::Guest);
    next_exit(&sys);
    assert_eq!(load(&sys, 0, GICD, 2).0, Continue::Guest);
    next_exit(&sys);
    assert_eq!(load(&sys, 0, DEVICE, 2).0, Continue::Guest);
    next_exit(&sys);
    assert_eq!(load(&sys, 0, WINDOW, 3).0, Continue::Guest);
    next_exit(&sys);
    // msr ICC_SGI1R_EL1, x3: an SGI to itself (vCPU 0).
    let esr = (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
    let mut regs = TrapFrame::default();
    regs.x[3] = (5 << 24) | 0b1;
    let trap = Exit::SysReg(SysRegTrap::decode(esr));
    assert_eq!(sys.handle_exit(PcpuId(0), &mut regs, trap), Continue::Guest);
    next_exit(&sys);
    assert_eq!(
        sys.handle_exit(PcpuId(0), &mut TrapFrame::default(), Exit::Irq),
        Continue::Guest
    );
    sys.hw.counter_step.store(0, Ordering::Relaxed);

    let linux = row(&sys, LINUX);
    for kind in ExitKind::ALL {
        let expected = match kind {
            ExitKind::Channel | ExitKind::Other => 0,
            _ => 1,
        };
        assert_eq!(linux.exits(kind), expected, "{kind:?}");
    }
    assert_eq!(linux.total_exits(), exits);
    // In the guest: 100 ticks before the first exit; 105 before each later one (the 5 of the
    // read as it went back, then 100); 5 since the last one (the read that left it), at 1 kHz.
    assert_eq!(linux.get(Field::GuestUs), (100 + 6 * 105 + 5) * 1000);
    assert_eq!(linux.get(Field::HypervisorUs), (exits * 5 + 5) * 1000);
    // The SGI to itself was injected; nothing was injected into the ticker.
    assert_eq!(linux.get(Field::Injected), 1);
    assert_eq!(row(&sys, TICKER).get(Field::Injected), 0);
    assert_eq!(
        row(&sys, TICKER).total_exits(),
        0,
        "linux's exits are its own"
    );
}

#[test]
fn guest_time_counts_the_current_stay_in_the_guest_and_stops_when_the_vcpu_does() {
    let sys = system();
    set_counter(&sys, 5000);
    enter(&sys, 2);
    set_counter(&sys, 7000);
    // Two seconds in the guest so far, no exit yet.
    assert_eq!(row(&sys, TICKER).get(Field::GuestUs), 2_000_000);
    assert_eq!(hvc(&sys, 2, [PSCI_VERSION, 0, 0, 0]).0, Continue::Guest);
    set_counter(&sys, 8000);
    assert_eq!(row(&sys, TICKER).get(Field::GuestUs), 3_000_000);
    // It powers off at 8000: its guest time stops there, and so does its uptime (loaded at
    // 5000).
    let (next, _) = hvc(&sys, 2, [SYSTEM_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    set_counter(&sys, 20_000);
    let ticker = row(&sys, TICKER);
    assert_eq!(ticker.get(Field::State), STATE_STOPPED);
    assert_eq!(ticker.get(Field::GuestUs), 3_000_000);
    assert_eq!(ticker.get(Field::UptimeUs), 3_000_000);
    assert_eq!(ticker.exits(ExitKind::Hypercall), 2);
    assert_eq!(ticker.get(Field::Faults), 0, "powering off is no fault");
    // linux has not been loaded yet (its CPU never looked): no uptime.
    assert_eq!(row(&sys, LINUX).get(Field::UptimeUs), 0);
    assert_eq!(row(&sys, LINUX).get(Field::State), STATE_RUNNING);
}

#[test]
fn restarts_and_faults_are_counted_and_survive_a_restart() {
    let sys = system();
    set_counter(&sys, 1000);
    enter(&sys, 2);
    set_counter(&sys, 4000);
    assert_eq!(
        hvc(&sys, 2, [SYSTEM_RESET, 0, 0, 0]).0,
        Continue::Idle,
        "the ticker restarts"
    );
    let ticker = row(&sys, TICKER);
    assert_eq!(ticker.get(Field::Restarts), 1);
    assert_eq!(ticker.exits(ExitKind::Hypercall), 1);
    // Reloaded at 6000; up for a second at 7000, its exits from before the restart kept.
    set_counter(&sys, 6000);
    let mut regs = enter(&sys, 2);
    set_counter(&sys, 7000);
    let ticker = row(&sys, TICKER);
    assert_eq!(ticker.get(Field::UptimeUs), 1_000_000);
    assert_eq!(ticker.exits(ExitKind::Hypercall), 1);
    assert_eq!(
        ticker.get(Field::GuestUs),
        4_000_000,
        "3 s before, 1 s since"
    );
    // A write outside its memory stops it for a fault.
    let esr = abort_esr_l3(2, 1, true, false, false);
    let next = sys.handle_exit(PcpuId(2), &mut regs, data_abort(esr, 0x7000_0000));
    assert_eq!(next, Continue::Idle);
    let ticker = row(&sys, TICKER);
    assert_eq!(ticker.get(Field::State), STATE_STOPPED);
    assert_eq!(ticker.get(Field::Faults), 1);
    assert_eq!(ticker.get(Field::Restarts), 1);
    assert_eq!(ticker.exits(ExitKind::Other), 1);
}

#[test]
fn monitor_read_gives_every_partitions_counters_to_a_monitor_partition_only() {
    let sys = system();
    enter(&sys, 0);
    enter(&sys, 2);
    assert_eq!(hvc(&sys, 2, [PSCI_VERSION, 0, 0, 0]).0, Continue::Guest);
    // The ticker has no `monitor` capability: DENIED, nothing else changes.
    let denied = monitor_read(&sys, 2, 0, 0);
    assert_eq!(denied[0], Error::Denied.code() as u64);
    assert_eq!(denied[3..], [0xdead, 0xdead]);
    // linux reads the ticker's row four fields at a time.
    let mut fields = [0u64; FIELDS];
    for first in (0..FIELDS).step_by(4) {
        let r = monitor_read(&sys, 0, TICKER.index() as u64, first as u64);
        assert_eq!(r[0], 0);
        for (i, &x) in r[1..].iter().enumerate() {
            if let Some(f) = fields.get_mut(first + i) {
                *f = x;
            } else {
                assert_eq!(x, 0, "past the last field: 0");
            }
        }
    }
    let read = Row { fields };
    let ticker = row(&sys, TICKER);
    assert_eq!(read.name_bytes(), ticker.name_bytes());
    assert_eq!(&read.name_bytes()[..7], b"ticker\0");
    assert_eq!(read.get(Field::State), STATE_RUNNING);
    assert_eq!(read.get(Field::Vcpus), 1);
    // The denied call was an exit of the ticker too.
    assert_eq!(read.exits(ExitKind::Hypercall), 2);
    // Its own row, which counts the calls it is making.
    let own = monitor_read(&sys, 0, LINUX.index() as u64, Field::ExitsHypercall as u64);
    assert_eq!(own[0], 0);
    assert!(own[1] >= FIELDS.div_ceil(4) as u64);
    // No such partition, no such field.
    let bad = Error::InvalidParameters.code() as u64;
    assert_eq!(monitor_read(&sys, 0, 2, 0)[0], bad);
    assert_eq!(monitor_read(&sys, 0, u64::MAX, 0)[0], bad);
    assert_eq!(monitor_read(&sys, 0, 0, FIELDS as u64)[0], bad);
    assert_eq!(monitor_read(&sys, 0, 0, u64::MAX)[0], bad);
}

#[test]
fn the_monitor_window_reads_fields_and_stops_a_writer() {
    let sys = system();
    enter(&sys, 0);
    enter(&sys, 2);
    let field = |p: u64, f: Field| WINDOW + p * ROW_STRIDE + 8 * f as u64;
    assert_eq!(
        load(&sys, 0, field(1, Field::State), 3),
        (Continue::Guest, STATE_RUNNING)
    );
    assert_eq!(load(&sys, 0, field(0, Field::Vcpus), 3).1, 2);
    let (_, name) = load(&sys, 0, field(1, Field::Name), 3);
    assert_eq!(name.to_le_bytes(), *b"ticker\0\0");
    // 32-bit halves; an absent partition and the bytes past a row's fields read as zero.
    assert_eq!(
        load(&sys, 0, field(1, Field::Name) + 4, 2).1,
        u64::from(u32::from_le_bytes(*b"er\0\0"))
    );
    assert_eq!(
        load(&sys, 0, field(2, Field::State), 3).1,
        STATE_NONE,
        "no third partition"
    );
    assert_eq!(load(&sys, 0, WINDOW + 8 * FIELDS as u64, 3).1, 0);
    // Its own monitor exits are counted as they happen.
    let (_, monitor_exits) = load(
        &sys,
        0,
        field(0, Field::ExitsHypercall) + 8 * ExitKind::Monitor as u64,
        3,
    );
    assert_eq!(
        monitor_exits, 7,
        "the six reads before this one, and this one (counted as the device is found)"
    );
    // A misaligned read, or any write, stops the partition.
    let (next, _) = load(&sys, 0, WINDOW + 4, 3);
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
    assert_eq!(row(&sys, LINUX).get(Field::Faults), 1);
    let sys = system();
    enter(&sys, 0);
    sys.hw.on_cpu(0);
    let esr = abort_esr_l3(3, 1, true, false, true);
    let next = sys.handle_exit(
        PcpuId(0),
        &mut TrapFrame::default(),
        data_abort(esr, WINDOW),
    );
    assert_eq!(next, Continue::Idle);
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Stopped);
    // The ticker has no window: the same address is outside everything it may reach (and it
    // is the last partition to stop).
    let mut regs = enter(&sys, 2);
    let esr = abort_esr_l3(3, 1, false, false, true);
    let next = sys.handle_exit(PcpuId(2), &mut regs, data_abort(esr, WINDOW));
    assert_eq!(next, Continue::PowerOff);
    assert_eq!(row(&sys, TICKER).exits(ExitKind::Other), 1);
    assert_eq!(sys.partitions[TICKER.index()].state(), State::Stopped);
}

#[test]
fn ctrl_t_s_prints_the_table_and_so_does_the_power_off() {
    let sys = system();
    enter(&sys, 0);
    enter(&sys, 2);
    assert_eq!(hvc(&sys, 2, [PSCI_VERSION, 0, 0, 0]).0, Continue::Guest);
    sys.hw.typed.lock().push_back(Typed::Monitor);
    sys.hw.irqs.lock().push_back(UART_SPI);
    sys.hw.on_cpu(2);
    assert_eq!(
        sys.handle_exit(PcpuId(2), &mut TrapFrame::default(), Exit::Irq),
        Continue::Guest
    );
    let printed = core::mem::take(&mut *sys.hw.printed.lock());
    let lines: alloc::vec::Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "title, header, two rows:\n{printed}");
    assert_eq!(lines[0], "[bulkhead] monitor (Ctrl-T s):");
    assert!(lines[1].starts_with("[bulkhead] partition state"));
    let cells = |line: &str| -> alloc::vec::Vec<alloc::string::String> {
        line.split_whitespace()
            .map(alloc::string::String::from)
            .collect()
    };
    let ticker = cells(lines[3]);
    assert_eq!(ticker[1..3], ["ticker", "running"]);
    // exits: the HVC, and the IRQ exit that brought the key (counted as it is taken).
    assert_eq!(ticker[6], "2");
    assert_eq!(cells(lines[2])[1], "linux");
    // Both stop: the table again, at power-off, with both stopped.
    assert_eq!(hvc(&sys, 0, [SYSTEM_OFF, 0, 0, 0]).0, Continue::Idle);
    assert!(
        sys.hw.printed.lock().is_empty(),
        "not before the last stops"
    );
    assert_eq!(hvc(&sys, 2, [SYSTEM_OFF, 0, 0, 0]).0, Continue::PowerOff);
    let printed = sys.hw.printed.lock().clone();
    let lines: alloc::vec::Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{printed}");
    assert_eq!(lines[0], "[bulkhead] monitor at power-off:");
    assert!(lines[2..].iter().all(|l| cells(l)[2] == "stopped"));
    assert_eq!(cells(lines[3])[6], "3", "HVC, IRQ, SYSTEM_OFF");
}

#[test]
fn counter_ticks_become_microseconds_exactly() {
    for (ticks, frequency) in [
        (0, 62_500_000),
        (62_500_000, 62_500_000),
        (123_456_789_012, 62_500_000),
        (54_000_000 * 3 + 53_999_999, 54_000_000),
        (u64::MAX, 1_000_000_000),
        (u64::MAX, 19_200_000),
        (12_345, 1),
    ] {
        let exact = (u128::from(ticks) * 1_000_000 / u128::from(frequency)) as u64;
        assert_eq!(micros(ticks, frequency), exact, "{ticks} at {frequency} Hz");
    }
    assert_eq!(micros(5, 0), 5_000_000, "an unset frequency counts as 1 Hz");
}
