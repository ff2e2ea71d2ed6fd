//! Per-partition monitoring as everyone reads it: the counters Bulkhead keeps for each partition
//! (the [`Field`]s of a [`Row`]), where the `MONITOR_READ` hypercall and the monitor window
//! return them, and the [`Table`] they are shown as. The hypervisor prints the table on its
//! console (Ctrl-T s, and when the machine powers off); a bare-metal guest with the `monitor`
//! capability reads the rows with `MONITOR_READ`, Linux's `bulkhead-top` through the monitor
//! window; both print the same table with this code. The ABI is documented in
//! `docs/hypercalls.md`.
//!
//! Every field is a `u64`. Counters count from boot (a restart does not reset them); the
//! uptime counts from the partition's last (re)start and stands still while it is stopped;
//! times are in microseconds. The hypervisor updates the counters without synchronisation
//! (each vCPU's on its own core) and reads them racily: a row is a snapshot of values that
//! were each true at some moment of the read, not of one instant.

use core::fmt;

/// One counter of a partition: its index in a [`Row`], in `MONITOR_READ`'s field numbers and in
/// the monitor window (`8 * field` bytes into the partition's row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Field {
    /// [`STATE_RUNNING`] or [`STATE_STOPPED`] ([`STATE_NONE`]: no such partition, in the window).
    State = 0,
    /// Number of vCPUs.
    Vcpus = 1,
    /// Microseconds since the partition last (re)started; frozen while it is stopped.
    UptimeUs = 2,
    /// Restarts (its PSCI `SYSTEM_RESET`).
    Restarts = 3,
    /// Stops for a fault (an access or exception the hypervisor cannot serve).
    Faults = 4,
    /// Exits for HVC or SMC (PSCI and Bulkhead's hypercalls); the other exit counters follow, in
    /// [`ExitKind`] order.
    ExitsHypercall = 5,
    ExitsUart = 6,
    ExitsGic = 7,
    ExitsChannel = 8,
    ExitsDevice = 9,
    ExitsMonitor = 10,
    ExitsSysReg = 11,
    ExitsIrq = 12,
    ExitsOther = 13,
    /// Virtual interrupts queued for its vCPUs (passthrough, timer, UART, doorbell, SGI).
    Injected = 14,
    /// Microseconds its vCPUs spent in the guest (summed over vCPUs; idling in `WFI` included).
    GuestUs = 15,
    /// Microseconds the hypervisor spent on its vCPUs' exits (summed over vCPUs).
    HypervisorUs = 16,
    /// Its name, UTF-8, zero-padded: bytes `8k..8k+8` in field `Name + k`, little-endian.
    Name = 17,
}

/// Fields per row.
pub const FIELDS: usize = Field::Name as usize + NAME_BYTES / 8;
/// Longest name a row holds (a device-tree node name has at most 31 characters).
pub const NAME_BYTES: usize = 32;

/// [`Field::State`] of a partition that runs.
pub const STATE_RUNNING: u64 = 1;
/// [`Field::State`] of a partition that is stopped (powered off, or stopped for a fault).
pub const STATE_STOPPED: u64 = 2;
/// [`Field::State`] read from the monitor window for a partition that does not exist.
pub const STATE_NONE: u64 = 0;

/// Size of the monitor window: one page, read-only.
pub const WINDOW_SIZE: u64 = 0x1000;
/// Bytes per partition in the window: partition `p`'s field `f` is at `p * ROW_STRIDE + 8 * f`.
pub const ROW_STRIDE: u64 = 0x100;
/// Partitions the window shows (the first ones, in board-config order).
pub const WINDOW_PARTITIONS: usize = (WINDOW_SIZE / ROW_STRIDE) as usize;

/// `compatible` of the monitor window's node in a partition's device tree
/// (`monitor@<address>`, `reg` = the window).
pub const COMPATIBLE: &str = "bulkhead,monitor";

/// Which partition and field a 64-bit aligned `offset` in the monitor window reads, if it reads
/// one (offsets past a row's fields read as zero).
pub const fn window_field(offset: u64) -> Option<(usize, usize)> {
    if offset >= WINDOW_SIZE {
        return None;
    }
    let partition = (offset / ROW_STRIDE) as usize;
    let field = ((offset % ROW_STRIDE) / 8) as usize;
    if field < FIELDS {
        Some((partition, field))
    } else {
        None
    }
}

/// Why a guest left to the hypervisor, as counted: the exit counters of a row, in field order.
/// Data aborts are counted by the emulated device they reach; `WFI` and `WFE` do not trap
/// (every vCPU has its core to itself), so they are no exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitKind {
    /// `HVC` or trapped `SMC`: PSCI, SMCCC and Bulkhead's hypercalls.
    Hypercall = 0,
    /// Its virtual UART's registers.
    Uart,
    /// Its virtual GIC's distributor or redistributors.
    Gic,
    /// A channel's doorbell page or the doorbell GPIO.
    Channel,
    /// A trapped passthrough device (`trapped-devices`).
    Device,
    /// The monitor window.
    Monitor,
    /// A trapped system register (the guest's SGIs, registers hidden from it).
    SysReg,
    /// A physical interrupt (its own, or the hypervisor's: console, timer, kicks).
    Irq,
    /// Anything that stopped it: an access outside what it may reach, an unhandled exception.
    Other,
}

impl ExitKind {
    /// How many kinds there are.
    pub const COUNT: usize = 9;
    /// Every kind, in field order.
    pub const ALL: [ExitKind; Self::COUNT] = [
        ExitKind::Hypercall,
        ExitKind::Uart,
        ExitKind::Gic,
        ExitKind::Channel,
        ExitKind::Device,
        ExitKind::Monitor,
        ExitKind::SysReg,
        ExitKind::Irq,
        ExitKind::Other,
    ];

    /// Its field in a row.
    pub const fn field(self) -> usize {
        Field::ExitsHypercall as usize + self as usize
    }

    /// Its column header in the [`Table`].
    pub const fn header(self) -> &'static str {
        match self {
            ExitKind::Hypercall => "hvc",
            ExitKind::Uart => "uart",
            ExitKind::Gic => "gic",
            ExitKind::Channel => "chan",
            ExitKind::Device => "dev",
            ExitKind::Monitor => "mon",
            ExitKind::SysReg => "sysreg",
            ExitKind::Irq => "irq",
            ExitKind::Other => "other",
        }
    }
}

/// One partition's counters: [`FIELDS`] values, indexed by [`Field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub fields: [u64; FIELDS],
}

impl Row {
    /// A row of zeros named `name` (cut to [`NAME_BYTES`] bytes at a character boundary).
    pub fn named(name: &str) -> Self {
        let mut row = Row {
            fields: [0; FIELDS],
        };
        let mut len = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        for (i, &b) in name.as_bytes()[..len].iter().enumerate() {
            row.fields[Field::Name as usize + i / 8] |= u64::from(b) << (8 * (i % 8));
        }
        row
    }

    /// Field `field`.
    pub const fn get(&self, field: Field) -> u64 {
        self.fields[field as usize]
    }

    /// Sets field `field`.
    pub fn set(&mut self, field: Field, value: u64) {
        self.fields[field as usize] = value;
    }

    /// Exits of kind `kind`.
    pub const fn exits(&self, kind: ExitKind) -> u64 {
        self.fields[kind.field()]
    }

    /// Adds `n` exits of kind `kind`.
    pub fn add_exits(&mut self, kind: ExitKind, n: u64) {
        let f = &mut self.fields[kind.field()];
        *f = f.wrapping_add(n);
    }

    /// Exits of every kind.
    pub fn total_exits(&self) -> u64 {
        ExitKind::ALL
            .iter()
            .fold(0u64, |sum, &k| sum.wrapping_add(self.exits(k)))
    }

    /// The name's bytes, zero-padded.
    pub fn name_bytes(&self) -> [u8; NAME_BYTES] {
        let mut bytes = [0u8; NAME_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (self.fields[Field::Name as usize + i / 8] >> (8 * (i % 8))) as u8;
        }
        bytes
    }

    /// Whether the partition runs.
    pub const fn running(&self) -> bool {
        self.get(Field::State) == STATE_RUNNING
    }
}

/// The monitoring table: a header line, then one line per row, each line starting with a prefix
/// and ending with `\n`. Columns are as wide as their widest cell, separated by one space,
/// numbers right-aligned:
///
/// ```text
/// partition state   up    restarts faults exits hvc  uart  gic chan dev mon sysreg irq  other injected guest   hyp
/// linux     running 12.3s        0      0 40211 1250 30011   0    0   0   0      0 8950     0     9120 24.201s 0.412s
/// ticker    stopped  0.0s        1      1     1    0     0   0    0   0   0      0    0     1        0  0.000s 0.000s
/// ```
///
/// `up` is the uptime, the exit columns are the [`ExitKind`]s (`exits` their sum), `guest` and
/// `hyp` the CPU time in the guest and in the hypervisor, in seconds.
pub struct Table<'a> {
    pub rows: &'a [Row],
    /// What each line starts with (e.g. `"[bulkhead] "`).
    pub prefix: &'a str,
}

/// Number of columns: name, state, uptime, restarts, faults, exits, one per exit kind,
/// injected, guest, hyp.
const COLUMNS: usize = 9 + ExitKind::COUNT;

fn header(column: usize) -> &'static str {
    match column {
        0 => "partition",
        1 => "state",
        2 => "up",
        3 => "restarts",
        4 => "faults",
        5 => "exits",
        c if c < 6 + ExitKind::COUNT => ExitKind::ALL[c - 6].header(),
        c if c == 6 + ExitKind::COUNT => "injected",
        c if c == 7 + ExitKind::COUNT => "guest",
        _ => "hyp",
    }
}

/// One cell of the table.
enum Cell {
    Name([u8; NAME_BYTES]),
    Text(&'static str),
    Count(u64),
    /// Microseconds shown as seconds with this many decimals.
    Seconds(u64, u32),
}

fn cell(row: &Row, column: usize) -> Cell {
    match column {
        0 => Cell::Name(row.name_bytes()),
        1 => Cell::Text(match row.get(Field::State) {
            STATE_RUNNING => "running",
            STATE_STOPPED => "stopped",
            _ => "?",
        }),
        2 => Cell::Seconds(row.get(Field::UptimeUs), 1),
        3 => Cell::Count(row.get(Field::Restarts)),
        4 => Cell::Count(row.get(Field::Faults)),
        5 => Cell::Count(row.total_exits()),
        c if c < 6 + ExitKind::COUNT => Cell::Count(row.exits(ExitKind::ALL[c - 6])),
        c if c == 6 + ExitKind::COUNT => Cell::Count(row.get(Field::Injected)),
        c if c == 7 + ExitKind::COUNT => Cell::Seconds(row.get(Field::GuestUs), 3),
        _ => Cell::Seconds(row.get(Field::HypervisorUs), 3),
    }
}

impl Cell {
    fn numeric(&self) -> bool {
        matches!(self, Cell::Count(_) | Cell::Seconds(..))
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Name(bytes) => {
                let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
                // A name is cut at a character boundary; anything else shows as `?`.
                match core::str::from_utf8(&bytes[..len]) {
                    Ok(name) => f.write_str(name),
                    Err(_) => f.write_str("?"),
                }
            }
            Cell::Text(text) => f.write_str(text),
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Seconds(us, decimals) => {
                let scale = 10u64.pow(6 - decimals);
                let rounded = us.saturating_add(scale / 2) / scale;
                let unit = 10u64.pow(*decimals);
                write!(
                    f,
                    "{}.{:0w$}s",
                    rounded / unit,
                    rounded % unit,
                    w = *decimals as usize
                )
            }
        }
    }
}

/// Counts the bytes written to it: the width of a cell.
struct Width(usize);

impl fmt::Write for Width {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.chars().count();
        Ok(())
    }
}

fn width(value: &dyn fmt::Display) -> usize {
    let mut w = Width(0);
    let _ = fmt::write(&mut w, format_args!("{value}"));
    w.0
}

/// Writes `value` in a column `width` wide, after `sep`: right-aligned if `right`, else
/// left-aligned (without trailing spaces in the last column).
fn write_cell(
    f: &mut fmt::Formatter<'_>,
    sep: &str,
    value: &dyn fmt::Display,
    width: usize,
    right: bool,
    last: bool,
) -> fmt::Result {
    let pad = width.saturating_sub(self::width(value));
    f.write_str(sep)?;
    if right {
        write!(f, "{:pad$}{value}", "")
    } else if last {
        write!(f, "{value}")
    } else {
        write!(f, "{value}{:pad$}", "")
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths = [0usize; COLUMNS];
        for (c, w) in widths.iter_mut().enumerate() {
            *w = self
                .rows
                .iter()
                .map(|r| width(&cell(r, c)))
                .fold(header(c).len(), usize::max);
        }
        f.write_str(self.prefix)?;
        for (c, &w) in widths.iter().enumerate() {
            let sep = if c == 0 { "" } else { " " };
            write_cell(f, sep, &header(c), w, false, c + 1 == COLUMNS)?;
        }
        f.write_str("\n")?;
        for row in self.rows {
            f.write_str(self.prefix)?;
            for (c, &w) in widths.iter().enumerate() {
                let cell = cell(row, c);
                let sep = if c == 0 { "" } else { " " };
                write_cell(f, sep, &cell, w, cell.numeric(), c + 1 == COLUMNS)?;
            }
            f.write_str("\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn fields_fit_a_window_row_and_follow_the_documented_numbers() {
        assert_eq!(FIELDS, 21);
        assert!(FIELDS as u64 * 8 <= ROW_STRIDE);
        assert_eq!(WINDOW_PARTITIONS, 16);
        assert_eq!(ExitKind::Hypercall.field(), Field::ExitsHypercall as usize);
        assert_eq!(ExitKind::Other.field(), Field::ExitsOther as usize);
        assert_eq!(ExitKind::Other.field() + 1, Field::Injected as usize);
        for (i, k) in ExitKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn window_offsets_name_a_partition_and_field() {
        assert_eq!(window_field(0), Some((0, 0)));
        assert_eq!(window_field(8 * 14), Some((0, Field::Injected as usize)));
        assert_eq!(window_field(ROW_STRIDE + 16), Some((1, 2)));
        assert_eq!(window_field(8 * FIELDS as u64), None, "past the fields");
        assert_eq!(window_field(15 * ROW_STRIDE + 8 * 20), Some((15, 20)));
        assert_eq!(window_field(WINDOW_SIZE), None);
    }

    #[test]
    fn names_are_packed_little_endian_and_cut_at_a_character_boundary() {
        let row = Row::named("linux");
        assert_eq!(
            row.fields[Field::Name as usize],
            u64::from_le_bytes(*b"linux\0\0\0")
        );
        assert_eq!(&row.name_bytes()[..6], b"linux\0");
        let long = "a-partition-name-of-thirty-one-c";
        assert_eq!(long.len(), 32);
        assert_eq!(&Row::named(long).name_bytes(), long.as_bytes());
        let cut = Row::named("ééééééééééééééééé"); // 34 bytes
        let bytes = cut.name_bytes();
        assert_eq!(&bytes[..32], "éééééééééééééééé".as_bytes());
    }

    fn sample() -> [Row; 2] {
        let mut linux = Row::named("linux");
        linux.set(Field::State, STATE_RUNNING);
        linux.set(Field::Vcpus, 2);
        linux.set(Field::UptimeUs, 12_345_678);
        linux.add_exits(ExitKind::Uart, 30_011);
        linux.add_exits(ExitKind::Irq, 8_950);
        linux.add_exits(ExitKind::Hypercall, 1_250);
        linux.set(Field::Injected, 9_120);
        linux.set(Field::GuestUs, 24_201_400);
        linux.set(Field::HypervisorUs, 411_600);
        let mut ticker = Row::named("ticker");
        ticker.set(Field::State, STATE_STOPPED);
        ticker.set(Field::Restarts, 1);
        ticker.set(Field::Faults, 1);
        ticker.add_exits(ExitKind::Other, 1);
        [linux, ticker]
    }

    #[test]
    fn the_table_has_a_header_and_a_row_per_partition_in_aligned_columns() {
        let rows = sample();
        let text = format!(
            "{}",
            Table {
                rows: &rows,
                prefix: "[bulkhead] "
            }
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(text.ends_with('\n'));
        let cells = |line: &str| -> Vec<String> {
            line.strip_prefix("[bulkhead] ")
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert_eq!(
            cells(lines[0]),
            [
                "partition",
                "state",
                "up",
                "restarts",
                "faults",
                "exits",
                "hvc",
                "uart",
                "gic",
                "chan",
                "dev",
                "mon",
                "sysreg",
                "irq",
                "other",
                "injected",
                "guest",
                "hyp"
            ]
        );
        assert_eq!(
            cells(lines[1]),
            [
                "linux", "running", "12.3s", "0", "0", "40211", "1250", "30011", "0", "0", "0",
                "0", "0", "8950", "0", "9120", "24.201s", "0.412s"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "ticker", "stopped", "0.0s", "1", "1", "1", "0", "0", "0", "0", "0", "0", "0", "0",
                "1", "0", "0.000s", "0.000s"
            ]
        );
        // Every line is as long as the others: the columns line up (the last column's cells
        // are right-aligned to its width, so a row is as wide as the header at least).
        let header_hyp = lines[0].find(" hyp").unwrap() + 4;
        assert!(lines[1].len() >= header_hyp && lines[2].len() == lines[1].len());
        // Right-aligned numbers end where their header does.
        let exits_end = lines[0].find("exits").unwrap() + "exits".len();
        assert_eq!(&lines[1][exits_end - 5..exits_end], "40211");
        assert_eq!(&lines[2][exits_end - 1..exits_end], "1");
    }

    #[test]
    fn seconds_are_rounded_and_an_empty_table_is_a_header() {
        assert_eq!(format!("{}", Cell::Seconds(1_999_999, 3)), "2.000s");
        assert_eq!(format!("{}", Cell::Seconds(49_999, 1)), "0.0s");
        assert_eq!(format!("{}", Cell::Seconds(50_000, 1)), "0.1s");
        assert_eq!(format!("{}", Cell::Seconds(7_261_449_000, 1)), "7261.4s");
        let text = format!(
            "{}",
            Table {
                rows: &[],
                prefix: ""
            }
        );
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("partition state up restarts"));
    }
}
