//! Per-partition monitoring, end to end: the console's Ctrl-T s, `bulkhead-top` in Linux (the
//! monitor window), the `MONITOR_READ` hypercall from bare metal and its refusal, and the table
//! printed at power-off.
//!
//! - The default board (`qemu-virt-linux`, whose `linux` partition has `monitor;` and a monitor
//!   window): Ctrl-T s once the shell is up, `bulkhead-top` in the shell, Ctrl-T s again. The
//!   counters must grow from one table to the next, and every counter `bulkhead-top` shows must
//!   lie between the hypervisor's two tables.
//! - `test/qemu-virt-monitor`: bare-metal `watcher` (with `monitor`) prints the table it reads
//!   with `MONITOR_READ`; `plain` (without) is refused with `DENIED`; the hypervisor's table at
//!   power-off must agree with what `watcher` read.
//!
//! Tables are read by their header, so a change of column order or width does not break the
//! checks; every value must parse.

use std::collections::BTreeMap;
use std::time::Duration;

use bulkhead_tests::{run_board, run_interactive, Outcome, QUIT_QEMU};

/// busybox ash's banner: input typed after it reaches the shell.
const SHELL_READY: &str = "Enter 'help' for a list of built-in commands.";
/// Ctrl-T s: the console's monitoring key.
const CTRL_T_S: &str = "\x14s";
/// The end of a table's row: its last column is `hyp` in seconds (`0.004s`).
const ROW_END: &str = "s\r\n";
/// The title the hypervisor prints above the table for Ctrl-T s, and at power-off.
const KEY_TITLE: &str = "[bulkhead] monitor (Ctrl-T s):";
const POWER_OFF_TITLE: &str = "[bulkhead] monitor at power-off:";

/// Boot to the shell, two tables, `bulkhead-top`, quit: measured 3.4-4.4 s from QEMU start
/// (six runs, machine load 0.7-1.1); 4x rounded up.
const LINUX_TIMEOUT: Duration = Duration::from_secs(20);
/// `test/qemu-virt-monitor`: `watcher` counts 1.5 s then both power off; measured 1.7-1.8 s;
/// the 10 s floor of the bare-metal tests.
const BARE_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of a monitoring table: each column's text, by header.
#[derive(Clone, Debug)]
struct Row(BTreeMap<String, String>);

impl Row {
    fn text(&self, column: &str) -> &str {
        self.0
            .get(column)
            .unwrap_or_else(|| panic!("no column {column} in {self:?}"))
    }

    /// A count, or seconds (`12.3s`) as microseconds rounded as printed.
    fn number(&self, column: &str) -> f64 {
        let text = self.text(column);
        text.trim_end_matches('s')
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("column {column} is not a number: {text:?} in {self:?}"))
    }
}

/// A monitoring table: its rows by partition name, in order.
#[derive(Debug)]
struct Table(Vec<(String, Row)>);

impl Table {
    fn row(&self, name: &str) -> &Row {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no row for {name} in {self:?}"))
    }

    fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// The columns whose values only grow while a partition runs (and stay when it stops).
const COUNTERS: &[&str] = &[
    "restarts", "faults", "exits", "hvc", "uart", "gic", "chan", "dev", "mon", "sysreg", "irq",
    "other", "injected", "guest", "hyp",
];

/// The exit columns, whose sum is `exits`.
const EXIT_KINDS: &[&str] = &[
    "hvc", "uart", "gic", "chan", "dev", "mon", "sysreg", "irq", "other",
];

/// The table in `lines` (already stripped of their source prefix) starting at the header line
/// `header`, with `rows` rows; lines of other sources in between are skipped by the caller.
fn parse_table(out: &Outcome, lines: &[&str], rows: usize) -> Table {
    let Some((header, body)) = lines.split_first() else {
        out.fail("a monitoring table without a header");
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    if columns.first() != Some(&"partition") || !COUNTERS.iter().all(|c| columns.contains(c)) {
        out.fail(&format!("not a monitoring table header: {header:?}"));
    }
    if body.len() < rows {
        out.fail(&format!("a monitoring table with fewer than {rows} rows"));
    }
    let table = Table(
        body[..rows]
            .iter()
            .map(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                if cells.len() != columns.len() {
                    out.fail(&format!("row {line:?} does not match header {header:?}"));
                }
                let row: BTreeMap<String, String> = columns
                    .iter()
                    .zip(&cells)
                    .map(|(c, v)| (c.to_string(), v.to_string()))
                    .collect();
                (cells[0].to_string(), Row(row))
            })
            .collect(),
    );
    for (name, row) in &table.0 {
        let sum: f64 = EXIT_KINDS.iter().map(|k| row.number(k)).sum();
        if sum != row.number("exits") {
            out.fail(&format!(
                "{name}: exits {} is not the sum of its kinds",
                row.text("exits")
            ));
        }
        for c in COUNTERS.iter().chain(&["up"]) {
            row.number(c);
        }
    }
    table
}

/// The hypervisor tables following each line `title`: the `[bulkhead]` lines after it (other
/// sources' lines that come in between are skipped).
fn hypervisor_tables(out: &Outcome, title: &str, rows: usize) -> Vec<(usize, Table)> {
    let lines = out.lines();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == title)
        .map(|(at, _)| {
            let own: Vec<&str> = lines[at + 1..]
                .iter()
                .filter_map(|l| l.strip_prefix("[bulkhead] "))
                .take(rows + 1)
                .collect();
            (at, parse_table(out, &own, rows))
        })
        .collect()
}

/// Asserts `earlier` <= `later` for every counter of every partition (`what` names them).
#[track_caller]
fn assert_no_counter_falls(out: &Outcome, earlier: &Table, later: &Table, what: &str) {
    if earlier.names() != later.names() {
        out.fail(&format!(
            "{what}: partitions {:?} then {:?}",
            earlier.names(),
            later.names()
        ));
    }
    for (name, before) in &earlier.0 {
        let after = later.row(name);
        for c in COUNTERS {
            if before.number(c) > after.number(c) {
                out.fail(&format!(
                    "{what}: {name}'s {c} fell from {} to {}",
                    before.text(c),
                    after.text(c)
                ));
            }
        }
    }
}

#[test]
fn ctrl_t_s_shows_the_table_and_bulkhead_top_in_linux_agrees_with_it() {
    let out = run_interactive(
        None,
        LINUX_TIMEOUT,
        &[
            (SHELL_READY, CTRL_T_S),
            // The ticker's row is the table's last; its last column, `hyp`, ends in `s`.
            ("[bulkhead] ticker ", ""),
            (ROW_END, "bulkhead-top\n"),
            ("[linux] ticker ", ""),
            (ROW_END, CTRL_T_S),
            ("[bulkhead] ticker ", ""),
            (ROW_END, QUIT_QEMU),
        ],
    );
    out.assert_steps_done();
    let tables = hypervisor_tables(&out, KEY_TITLE, 2);
    let [(first_at, first), (second_at, second)] = &tables[..] else {
        out.fail(&format!(
            "expected two Ctrl-T s tables, found {}",
            tables.len()
        ));
    };
    assert_eq!(first.names(), ["linux", "ticker"], "config order");
    for table in [first, second] {
        for name in ["linux", "ticker"] {
            let row = table.row(name);
            assert_eq!(row.text("state"), "running", "{name}");
            assert_eq!(row.number("restarts"), 0.0, "{name} never restarted");
            assert_eq!(row.number("faults"), 0.0, "{name}");
            for c in ["exits", "uart", "irq", "injected", "guest", "up"] {
                assert!(row.number(c) > 0.0, "{name}'s {c} is 0: {row:?}");
            }
        }
        // Linux has two vCPUs: its CPU time can exceed its uptime, never twice it (with a
        // rounding margin).
        let linux = table.row("linux");
        assert!(linux.number("guest") + linux.number("hyp") <= 2.0 * linux.number("up") + 0.2);
        // Linux boots with its disk and GIC: those exits are its own; the ticker has no device.
        assert!(linux.number("dev") > 0.0 && linux.number("gic") > 0.0);
        assert_eq!(table.row("ticker").number("dev"), 0.0);
    }
    assert_no_counter_falls(&out, first, second, "from the first Ctrl-T s to the second");
    // Linux ran its shell and bulkhead-top in between. The ticker may not have left its
    // guest at all (it wakes every 500 ms), but its time in the guest went on.
    let (a, b) = (first.row("linux"), second.row("linux"));
    assert!(b.number("exits") > a.number("exits"), "linux's exits grew");
    for name in ["linux", "ticker"] {
        let (a, b) = (first.row(name), second.row(name));
        assert!(
            b.number("guest") > a.number("guest"),
            "{name}'s guest time grew"
        );
    }

    // bulkhead-top ran between the two tables: its view lies between them, and its own reads
    // of the monitor window are the `mon` exits Linux gained (2 rows of 21 fields, and the
    // state of the absent third partition).
    let linux_lines: Vec<(usize, String)> = out.partition_text_lines("linux");
    let header = linux_lines
        .iter()
        .position(|(i, l)| *i > *first_at && *i < *second_at && l.starts_with("partition "))
        .unwrap_or_else(|| out.fail("bulkhead-top printed no table between the two Ctrl-T s"));
    let top_lines: Vec<&str> = linux_lines[header..]
        .iter()
        .map(|(_, l)| l.as_str())
        .take(3)
        .collect();
    let top = parse_table(&out, &top_lines, 2);
    assert_no_counter_falls(&out, first, &top, "from the first Ctrl-T s to bulkhead-top");
    assert_no_counter_falls(
        &out,
        &top,
        second,
        "from bulkhead-top to the second Ctrl-T s",
    );
    for name in ["linux", "ticker"] {
        assert_eq!(top.row(name).text("state"), "running");
    }
    let reads = second.row("linux").number("mon") - first.row("linux").number("mon");
    assert!(
        reads >= 43.0,
        "bulkhead-top's 43 loads from the window are monitor exits of linux: {reads}"
    );
    assert_eq!(first.row("ticker").number("mon"), 0.0);
}

#[test]
fn bare_metal_reads_the_table_with_monitor_read_and_a_partition_without_monitor_is_denied() {
    let out = run_board("test/qemu-virt-monitor", BARE_TIMEOUT);
    out.assert_exited_by_itself();
    let plain: Vec<&str> = out
        .partition_lines("plain")
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.starts_with("monitor: "))
        .collect();
    assert_eq!(
        plain,
        ["monitor: MONITOR_READ refused: DENIED (-4)"],
        "plain has no `monitor` capability"
    );

    let watcher: Vec<&str> = out
        .partition_lines("watcher")
        .into_iter()
        .filter_map(|(_, l)| l.strip_prefix("monitor: "))
        .collect();
    if watcher.len() != 3 {
        out.fail("watcher printed no table of two partitions");
    }
    let seen = parse_table(&out, &watcher, 2);
    assert_eq!(seen.names(), ["watcher", "plain"], "config order");
    let own = seen.row("watcher");
    assert_eq!(own.text("state"), "running", "it is running as it reads");
    // It counted six steps 250 ms apart on its console before reading.
    assert!(own.number("up") >= 1.5, "{own:?}");
    assert!(
        own.number("hvc") >= 1.0,
        "its MONITOR_READ calls are its exits"
    );
    for c in ["uart", "irq", "injected"] {
        assert!(own.number(c) > 0.0, "watcher's {c}: {own:?}");
    }

    let finals = hypervisor_tables(&out, POWER_OFF_TITLE, 2);
    let [(_, last)] = &finals[..] else {
        out.fail("the hypervisor printed no table at power-off");
    };
    assert_no_counter_falls(
        &out,
        &seen,
        last,
        "from watcher's MONITOR_READ to power-off",
    );
    for name in ["watcher", "plain"] {
        assert_eq!(last.row(name).text("state"), "stopped");
        assert_eq!(
            last.row(name).number("faults"),
            0.0,
            "powering off is no fault"
        );
    }
    // The six calls per row watcher made are hypercall exits the hypervisor counted.
    let calls = last.row("watcher").number("hvc") - own.number("hvc");
    assert!(
        calls >= 11.0,
        "watcher made {calls} more hypercalls after its own row"
    );
    // A partition that had stopped when watcher read it does not change any more.
    let other = seen.row("plain");
    if other.text("state") == "stopped" {
        for c in COUNTERS.iter().chain(&["up"]) {
            assert_eq!(other.text(c), last.row("plain").text(c), "plain's {c}");
        }
    }
}
