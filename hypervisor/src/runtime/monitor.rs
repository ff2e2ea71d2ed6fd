//! Per-partition monitoring: the counters kept on every exit, injection, restart and fault, and
//! what reads them (the console's Ctrl-T s, the table printed at power-off, the `MONITOR_READ`
//! hypercall and the monitor window). The fields and the table are the ABI of
//! `bulkhead_config::monitor`.
//!
//! Counting costs next to nothing on the paths it sits on: each counter has one writer, so an
//! update is a plain load, add and store (relaxed atomics, no read-modify-write instruction, no
//! lock, no cache line shared between writers):
//!
//! - a vCPU's exit counters and CPU times ([`ExitCounters`]) sit with the physical CPU that runs
//!   it (one lookup finds both) and are written only by that CPU, on each exit: its kind is
//!   counted where the dispatcher learns it ([`ExitCounters::count`]), and the hypervisor's time
//!   from two counter timestamps, one as the runtime takes the exit and one as it returns to the
//!   guest ([`ExitCounters::handled`]);
//! - its injected-interrupt count ([`Injections`]) by whoever queues an interrupt for it, while
//!   holding the vCPU's queue lock, which it takes anyway;
//! - a partition's restart and fault counts ([`PartitionCounters`]) by the one CPU that stops
//!   it.
//!
//! Readers on other cores read racily: each value was true at some moment of the read. Time spent
//! in the exception vectors before the runtime takes the exit counts as the guest's.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bulkhead_config::monitor::{
    window_field, ExitKind, Field, Row, STATE_RUNNING, STATE_STOPPED, WINDOW_PARTITIONS,
};
use bulkhead_config::monitor::{Table, FIELDS};
use bulkhead_config::HYPERVISOR_CONSOLE_NAME;

use super::hw::Hw;
use super::partition::{Partition, State};
use super::System;

/// Adds `n` to a counter that only the caller writes.
#[inline(always)]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The counters of the exits of the vCPU one physical CPU runs, written only by that CPU and
/// kept with what it runs (`System::current_counted`).
///
/// Its CPU time is kept as the time it has been on (from its start until it idles or its
/// partition stops) and the hypervisor's share of it (from taking each exit until leaving it);
/// the guest's share is the rest. So an exit costs one subtraction and one addition of time.
#[derive(Debug, Default)]
pub struct ExitCounters {
    exits: [AtomicU64; ExitKind::COUNT],
    /// Counter ticks spent handling its exits.
    hypervisor: AtomicU64,
    /// Counter ticks it was on, up to its last start.
    on: AtomicU64,
    /// The counter when it last started; 0 while it is off.
    started: AtomicU64,
}

impl ExitCounters {
    /// The vCPU enters the guest afresh (boot, `CPU_ON`, restart) at counter value `now`.
    pub fn started(&self, now: u64) {
        self.started.store(now.max(1), Relaxed);
    }

    /// One exit of kind `kind`.
    #[inline(always)]
    pub fn count(&self, kind: ExitKind) {
        add(&self.exits[kind as usize], 1);
    }

    /// The exit taken at counter value `entered` is done at `now`, and the vCPU goes back to the
    /// guest.
    #[inline(always)]
    pub fn handled(&self, entered: u64, now: u64) {
        add(&self.hypervisor, now.wrapping_sub(entered));
    }

    /// The exit taken at counter value `entered` is done at `now`, and the vCPU does not go back
    /// to the guest (it idles, or its partition stops or restarts).
    #[inline(never)]
    pub fn handled_then_off(&self, entered: u64, now: u64) {
        self.handled(entered, now);
        let started = self.started.load(Relaxed);
        if started != 0 {
            add(&self.on, now.wrapping_sub(started));
            self.started.store(0, Relaxed);
        }
    }

    /// Adds these counters to `row` at counter value `now`, the times in counter ticks: the
    /// vCPU's current run counts up to now.
    fn add_to(&self, row: &mut Row, now: u64) {
        for kind in ExitKind::ALL {
            row.add_exits(kind, self.exits[kind as usize].load(Relaxed));
        }
        let started = self.started.load(Relaxed);
        let current = if started == 0 {
            0
        } else {
            now.saturating_sub(started)
        };
        let hypervisor = self.hypervisor.load(Relaxed);
        let on = self.on.load(Relaxed).wrapping_add(current);
        let mut sum = |field, value: u64| {
            row.set(field, row.get(field).wrapping_add(value));
        };
        // Racy reads can see an exit's hypervisor time before the time it was on: never below 0.
        sum(Field::GuestUs, on.saturating_sub(hypervisor));
        sum(Field::HypervisorUs, hypervisor);
    }
}

/// Virtual interrupts given to one vCPU: those queued, counted by whoever queues one under the
/// vCPU's queue lock, and those its own CPU put straight into a list register, counted by that
/// CPU alone.
#[derive(Debug, Default)]
pub struct Injections {
    queued: AtomicU64,
    here: AtomicU64,
}

impl Injections {
    /// One more, queued. Call with the vCPU's queue locked.
    #[inline(always)]
    pub fn count(&self) {
        add(&self.queued, 1);
    }

    /// One more, put into a list register by the vCPU's own CPU.
    #[inline(always)]
    pub fn count_here(&self) {
        add(&self.here, 1);
    }

    fn get(&self) -> u64 {
        self.queued.load(Relaxed) + self.here.load(Relaxed)
    }
}

/// A partition's own counters, written by the CPU that stops or restarts it.
#[derive(Debug, Default)]
pub struct PartitionCounters {
    restarts: AtomicU64,
    faults: AtomicU64,
    /// The counter when it last stopped (0: it has not).
    stopped_at: AtomicU64,
}

impl PartitionCounters {
    /// It stopped (for a fault if `fault`) or is restarting, at counter value `now`.
    pub fn stopped(&self, now: u64, fault: bool) {
        self.stopped_at.store(now.max(1), Relaxed);
        if fault {
            add(&self.faults, 1);
        }
    }

    /// It restarts.
    pub fn restarted(&self) {
        add(&self.restarts, 1);
    }
}

/// Microseconds in `ticks` of a counter running at `frequency` Hz, rounded down. Whole seconds
/// and the rest apart, so nothing overflows 64 bits for any counter frequency up to 18 THz (and
/// no 128-bit division comes into the image).
pub(super) fn micros(ticks: u64, frequency: u64) -> u64 {
    let frequency = frequency.max(1);
    (ticks / frequency)
        .saturating_mul(1_000_000)
        .saturating_add(ticks % frequency * 1_000_000 / frequency)
}

impl<H: Hw> System<H> {
    /// The monitoring row of partition `p` now.
    #[inline(never)]
    pub fn monitor_row(&self, p: &Partition) -> Row {
        let now = self.hw.counter();
        let frequency = self.hw.counter_frequency();
        let mut row = Row::named(&p.name);
        let running = p.state() == State::Running;
        row.set(
            Field::State,
            if running {
                STATE_RUNNING
            } else {
                STATE_STOPPED
            },
        );
        row.set(Field::Vcpus, p.vcpus.len() as u64);
        let c = &p.counters;
        // Loaded at `cntvoff`; up to now, or to when it stopped (if that came after).
        let until = if running {
            now
        } else {
            c.stopped_at.load(Relaxed)
        };
        let up = if p.needs_load.load(Relaxed) {
            0
        } else {
            until.saturating_sub(p.cntvoff())
        };
        row.set(Field::UptimeUs, micros(up, frequency));
        row.set(Field::Restarts, c.restarts.load(Relaxed));
        row.set(Field::Faults, c.faults.load(Relaxed));
        for v in &p.vcpus {
            if let Some(c) = self.exit_counters(v.pcpu) {
                c.add_to(&mut row, now);
            }
            row.set(
                Field::Injected,
                row.get(Field::Injected).wrapping_add(v.injected.get()),
            );
        }
        for field in [Field::GuestUs, Field::HypervisorUs] {
            row.set(field, micros(row.get(field), frequency));
        }
        row
    }

    /// Every partition's row, in config order.
    fn monitor_rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.partitions.iter().map(|p| self.monitor_row(p))
    }

    /// Prints the monitoring table on the console, headed by `title` (Ctrl-T s, power-off).
    #[cold]
    #[inline(never)]
    pub fn print_monitor(&self, title: &str) {
        let rows: alloc::vec::Vec<Row> = self.monitor_rows().collect();
        let prefix = alloc::format!("[{HYPERVISOR_CONSOLE_NAME}] ");
        let text = alloc::format!(
            "{prefix}{title}\n{}",
            Table {
                rows: &rows,
                prefix: &prefix
            }
        );
        self.hw.console_print(&text);
    }

    /// Field `field` of partition `partition`'s row, if both exist: `MONITOR_READ`.
    pub(super) fn monitor_field(&self, partition: usize, field: usize) -> Option<u64> {
        if field >= FIELDS {
            return None;
        }
        let p = self.partitions.get(partition)?;
        Some(self.monitor_row(p).fields[field])
    }

    /// A read of `size` bytes at `offset` in the monitor window: the bytes of the field there
    /// (little-endian), 0 where there is none.
    #[inline(never)]
    pub(super) fn monitor_window_read(&self, offset: u64, size: u8) -> u64 {
        let Some((partition, field)) = window_field(offset & !7) else {
            return 0;
        };
        if partition >= WINDOW_PARTITIONS {
            return 0;
        }
        let value = self.monitor_field(partition, field).unwrap_or(0);
        let shifted = value >> (8 * (offset & 7));
        match size {
            8 => shifted,
            _ => shifted & ((1u64 << (8 * u32::from(size))) - 1),
        }
    }
}
