//! Channels between partitions: doorbell round-trip latency and streaming throughput, between
//! two bare-metal partitions and between Linux userspace and bare metal
//! (`board-configs/bench/qemu-virt-ipc-*.dts`). There is no native counterpart: a channel
//! exists only between partitions.
//!
//! Each board runs the IPC demo's sender (`ipc-echo mode=send`, or the Linux userspace demo)
//! against `ipc-echo`, every message checked end to end; the sender prints
//!
//! ```text
//! ipc-bench: window <w>, <n> round trips in <t> ms, median <x> us, p99 <y> us, max <z> us, <m> MiB/s
//! ipc: <sent> sent, <verified> verified, <lost> lost
//! ```
//!
//! and the machine powers off. With `window 1` (one request in flight) the median and p99 are
//! the round-trip latency through both doorbells; with a ring's worth in flight the MiB/s is
//! the throughput (request payload per second; the answers carry as much back). A run that lost
//! or corrupted anything is an error, not a figure.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::figures::{FigureSet, Side};
use super::session::{self, Step};
use crate::build::{build, Built};
use crate::qemu::{self, RunOptions};

/// What a board measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// One request in flight: the round-trip latency (median, p99).
    Latency,
    /// A ring's worth in flight: MiB/s.
    Throughput,
}

/// The boards: name below `board-configs/`, the sending partition, the figures' prefix, and
/// what it measures.
pub const BOARDS: [(&str, &str, &str, Measure); 4] = [
    (
        "bench/qemu-virt-ipc-bare-latency",
        "sender",
        "ipc-bare",
        Measure::Latency,
    ),
    (
        "bench/qemu-virt-ipc-bare-stream",
        "sender",
        "ipc-bare",
        Measure::Throughput,
    ),
    (
        "bench/qemu-virt-ipc-linux-latency",
        "linux",
        "ipc-linux",
        Measure::Latency,
    ),
    (
        "bench/qemu-virt-ipc-linux-stream",
        "linux",
        "ipc-linux",
        Measure::Throughput,
    ),
];

/// The most one run may take (a bare-metal run takes under a second, a Linux one about 4 s
/// under TCG on the 2-core dev machine).
const LIMIT: Duration = Duration::from_secs(180);

/// What the sender reported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IpcRun {
    pub window: u64,
    pub round_trips: u64,
    pub median_us: f64,
    pub p99_us: f64,
    pub mib_per_s: f64,
}

/// A built IPC bench board.
pub struct IpcBoard {
    pub built: Built,
    sender: &'static str,
    prefix: &'static str,
    measure: Measure,
}

impl IpcBoard {
    /// Builds the board of [`BOARDS`] entry `entry`.
    pub fn prepare(entry: (&str, &'static str, &'static str, Measure)) -> Result<IpcBoard> {
        let (name, sender, prefix, measure) = entry;
        Ok(IpcBoard {
            built: build(name, false)?,
            sender,
            prefix,
            measure,
        })
    }

    /// What the run is called in progress lines: `ipc-bare latency`.
    pub fn label(&self) -> String {
        let what = match self.measure {
            Measure::Latency => "latency",
            Measure::Throughput => "throughput",
        };
        format!("{} {what}", self.prefix)
    }

    /// Boots the board once and returns what the sender reported, checked.
    pub fn run(&self, qemu: &str) -> Result<IpcRun> {
        let args = qemu::qemu_args(&self.built, &RunOptions::plain())?;
        let transcript = session::run(qemu, &args, LIMIT, |_| Step::Continue)?;
        parse(
            transcript.lines.iter().map(String::as_str),
            self.sender,
            self.measure,
        )
        .with_context(|| {
            format!(
                "{}; last output:\n{}",
                self.built.board.name,
                session::tail(&transcript.lines.join("\n"), 3000)
            )
        })
    }

    /// Records one run's figures.
    pub fn record(&self, figures: &mut FigureSet, run: &IpcRun) {
        record(figures, self.prefix, self.measure, run);
    }
}

/// Records `run`'s figures, named after `prefix` (Bulkhead only: there is no native channel):
/// `<prefix>-latency-median` and `-p99` in ns, or `<prefix>-throughput` in MiB/s.
fn record(figures: &mut FigureSet, prefix: &str, measure: Measure, run: &IpcRun) {
    match measure {
        Measure::Latency => {
            for (stat, us) in [("median", run.median_us), ("p99", run.p99_us)] {
                figures.record(
                    &format!("{prefix}-latency-{stat}"),
                    "ns",
                    Side::Bulkhead,
                    us * 1e3,
                    run.round_trips,
                );
            }
        }
        Measure::Throughput => figures.record(
            &format!("{prefix}-throughput"),
            "MiB/s",
            Side::Bulkhead,
            run.mib_per_s,
            run.round_trips,
        ),
    }
}

/// Finds `sender`'s `ipc-bench:` and `ipc:` lines in a run's output and checks them: every
/// request answered and verified, none lost, and one in flight for a latency run.
pub fn parse<'a>(
    lines: impl Iterator<Item = &'a str>,
    sender: &str,
    measure: Measure,
) -> Result<IpcRun> {
    let prefix = format!("[{sender}] ");
    let (mut bench, mut summary) = (None, None);
    for line in lines {
        let Some(text) = line.trim_end_matches('\r').strip_prefix(&prefix) else {
            continue;
        };
        if let Some(rest) = text.strip_prefix("ipc-bench: ") {
            bench = Some(parse_bench(rest).with_context(|| format!("cannot read {text:?}"))?);
        } else if let Some(rest) = text.strip_prefix("ipc: ") {
            summary = Some(parse_summary(rest).with_context(|| format!("cannot read {text:?}"))?);
        }
    }
    let Some([sent, verified, lost]) = summary else {
        bail!("{sender} printed no `ipc:` summary");
    };
    let Some(run) = bench else {
        bail!("{sender} printed no `ipc-bench:` line");
    };
    if verified != sent || lost != 0 || run.round_trips != verified {
        bail!("the exchange failed ({sent} sent, {verified} verified, {lost} lost): not a figure");
    }
    if measure == Measure::Latency && run.window != 1 {
        bail!(
            "a latency run needs one request in flight, this one had {}",
            run.window
        );
    }
    Ok(run)
}

/// `window <w>, <n> round trips in <t> ms, median <x> us, p99 <y> us, max <z> us, <m> MiB/s`.
fn parse_bench(text: &str) -> Option<IpcRun> {
    let fields: Vec<&str> = text.split(", ").collect();
    let [window, trips, median, p99, _max, mib] = fields.as_slice() else {
        return None;
    };
    let number = |field: &str, prefix: &str, suffix: &str| -> Option<f64> {
        field
            .strip_prefix(prefix)?
            .strip_suffix(suffix)?
            .parse()
            .ok()
    };
    let round_trips = trips.split(" round trips in ").next()?.parse().ok()?;
    Some(IpcRun {
        window: window.strip_prefix("window ")?.parse().ok()?,
        round_trips,
        median_us: number(median, "median ", " us")?,
        p99_us: number(p99, "p99 ", " us")?,
        mib_per_s: number(mib, "", " MiB/s")?,
    })
}

/// `<sent> sent, <verified> verified, <lost> lost`.
fn parse_summary(text: &str) -> Option<[u64; 3]> {
    let mut numbers = text
        .split(", ")
        .zip([" sent", " verified", " lost"])
        .map(|(field, unit)| field.strip_suffix(unit)?.parse().ok());
    Some([numbers.next()??, numbers.next()??, numbers.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCY: &str = "\
[echo] ipc-echo: answered 2000 requests
[sender] ipc-echo: 0 corrupt, 0 duplicate, 0 peer restarts, 4000 doorbells rung
[sender] ipc-bench: window 1, 2000 round trips in 77 ms, median 37 us, p99 57 us, max 2095 us, 5.93 MiB/s\r
[sender] ipc: 2000 sent, 2000 verified, 0 lost\r
[bulkhead] INFO  all partitions have stopped: powering off";

    #[test]
    fn a_latency_run_is_read() {
        let run = parse(LATENCY.lines(), "sender", Measure::Latency).unwrap();
        assert_eq!(
            run,
            IpcRun {
                window: 1,
                round_trips: 2000,
                median_us: 37.0,
                p99_us: 57.0,
                mib_per_s: 5.93
            }
        );
        let mut figures = FigureSet::default();
        record(&mut figures, "ipc-bare", Measure::Latency, &run);
        let median = figures.get("ipc-bare-latency-median").unwrap();
        assert_eq!(median.bulkhead.value(), Some(37_000.0));
        assert_eq!(median.bulkhead.samples, 2000);
        assert!(median.native.is_none(), "no native counterpart");
        let p99 = figures.get("ipc-bare-latency-p99").unwrap();
        assert_eq!(p99.bulkhead.value(), Some(57_000.0));
        assert!(figures.get("ipc-bare-throughput").is_none());
    }

    #[test]
    fn a_streaming_run_is_read() {
        let text = "[linux] ipc-bench: window 127, 20000 round trips in 851 ms, median 4224 us, \
                    p99 16116 us, max 16116 us, 5.37 MiB/s\n[linux] ipc: 20000 sent, 20000 \
                    verified, 0 lost";
        let run = parse(text.lines(), "linux", Measure::Throughput).unwrap();
        assert_eq!((run.window, run.round_trips), (127, 20000));
        assert_eq!(run.mib_per_s, 5.37);
        let mut figures = FigureSet::default();
        record(&mut figures, "ipc-linux", Measure::Throughput, &run);
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["ipc-linux-throughput"]);
        assert_eq!(figures.get("ipc-linux-throughput").unwrap().unit, "MiB/s");
        // Not a latency figure: more than one request was in flight.
        let err = parse(text.lines(), "linux", Measure::Latency).unwrap_err();
        assert!(err.to_string().contains("one request in flight"), "{err}");
    }

    #[test]
    fn a_run_that_lost_anything_is_no_figure() {
        let lossy = LATENCY.replace(
            "ipc: 2000 sent, 2000 verified, 0 lost",
            "ipc: 2000 sent, 1999 verified, 1 lost",
        );
        let err = parse(lossy.lines(), "sender", Measure::Latency).unwrap_err();
        assert!(err.to_string().contains("1 lost"), "{err}");
        let none = LATENCY.replace("[sender] ipc:", "[sender] ipc-summary:");
        let err = parse(none.lines(), "sender", Measure::Latency).unwrap_err();
        assert!(err.to_string().contains("no `ipc:` summary"), "{err}");
        // The other partition's lines do not count.
        let err = parse(LATENCY.lines(), "echo", Measure::Latency).unwrap_err();
        assert!(err.to_string().contains("echo printed no"), "{err}");
        let garbled = LATENCY.replace("median 37 us", "median x us");
        assert!(parse(garbled.lines(), "sender", Measure::Latency).is_err());
    }
}
