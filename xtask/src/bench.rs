//! `cargo xtask bench`: every benchmark, native and in a Bulkhead partition, in one invocation.
//!
//! 1. **Footprint** of the hypervisor image built for `qemu-virt-hello` (text, rodata, data, bss),
//!    and its RAM in use (image, bss and heap high-water mark) with 1, 2 and 4 partitions
//!    (`qemu-virt-footprint-*.dts`).
//! 2. **The benchmark guest** (`partitions/bench`) on `board-configs/bench/qemu-virt-bench.dts`,
//!    natively and partitioned in alternating rounds, wall-clock: virtual timer interrupt latency
//!    (IRQ handler and polled), IPI, null hypercall and trapped-MMIO round trips, compute (a
//!    CPU-bound and a memory-bound kernel), boot.
//! 3. The same latency and boot figures under `-icount shift=4,sleep=off`
//!    (`qemu-virt-bench-icount.dts`), where they repeat exactly; from them the hypervisor's paths
//!    in instructions: `irq-injection-instructions` = (partitioned − native) polled timer latency
//!    / 16 ns, likewise for the hypercall and MMIO round trips, and the IPI in instructions.
//! 4. **Direct interrupts**: the timer latencies and the IPI of the same guest in a
//!    `direct-interrupts` partition (`qemu-virt-bench-direct.dts`), which takes its cores'
//!    physical interrupts without the hypervisor, wall clock and under icount
//!    (`*-direct-*`, `*-direct-icount-*`), against the native figures; and what remains of the
//!    hypervisor's path in instructions, `irq-path-instructions-direct`.
//! 5. **Interference**: the timer latencies in a partition while a Linux partition runs a memory-
//!    and interrupt-heavy load (`qemu-virt-bench-interference.dts`), against the quiet native
//!    figures.
//! 6. **Console flood**: the guest's console write latency on core 1 while the partition on core
//!    0 prints flat out (`qemu-virt-bench-console-flood.dts`) and, in the same round, while it
//!    prints nothing (`qemu-virt-bench-console-quiet.dts`): `console-flood-slowdown-p99` =
//!    flooded p99 / quiet p99.
//! 7. **Linux boot** to userspace ([`linux_boot`]), on QEMU virt and on QEMU raspi4b.
//! 8. **Channels** between partitions ([`ipc`]): doorbell round-trip latency and streaming
//!    throughput between two bare-metal partitions and between Linux userspace and bare metal
//!    (in a partition only: there is no native counterpart).
//!
//! Each round's figure is the guest's statistic over its samples (median, p99); the figure
//! reported is the median over rounds, with the run-to-run spread. It prints the table and writes
//! `target/bench/results.json` (see [`report`]), `results.svg` ([`chart`]) and `results.txt` (the
//! table). `--quick` runs fewer rounds of each.

mod chart;
mod figures;
mod footprint;
mod guest_output;
mod guest_runs;
mod ipc;
mod linux_boot;
mod report;
mod session;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::board::{display_path, release_dir, repo_root, HYPERVISOR_TARGET};
use crate::build::{build, HYPERVISOR};
use figures::{FigureSet, Side};
use footprint::Footprint;
use guest_output::{GuestReport, Measured};
use guest_runs::{BenchBoard, NS_PER_INSTRUCTION};

/// Rounds of a full run: wall-clock figures under TCG vary a lot from run to run on a shared
/// host, and a round takes a few seconds.
pub const DEFAULT_ROUNDS: usize = 10;
/// Rounds of `--quick`.
const QUICK_ROUNDS: usize = 3;
/// Rounds under icount: the figures repeat exactly, two show it.
const ICOUNT_ROUNDS: usize = 2;
/// Interference rounds (each boots Linux) in a full run.
const INTERFERENCE_ROUNDS: usize = 5;
/// Rounds of each channel benchmark in a full run (two of the four boot Linux).
const IPC_ROUNDS: usize = 5;

/// The board whose hypervisor image is measured.
const FOOTPRINT_BOARD: &str = "qemu-virt-hello";
const WALL_BOARD: &str = "bench/qemu-virt-bench";
const ICOUNT_BOARD: &str = "bench/qemu-virt-bench-icount";
const DIRECT_BOARD: &str = "bench/qemu-virt-bench-direct";
const INTERFERENCE_BOARD: &str = "bench/qemu-virt-bench-interference";
const FLOOD_BOARD: &str = "bench/qemu-virt-bench-console-flood";
const QUIET_BOARD: &str = "bench/qemu-virt-bench-console-quiet";
/// The quiet board's neighbour has said hello: it sleeps from now on.
const QUIET_NEIGHBOUR: &str = "[idle] hello from idle";
/// The flood's 100th line: it has been printing for a while when the guest starts measuring.
const FLOOD_RUNNING: &str = "[flood] flood 00000000000000000100 ";

/// The most one run of the benchmark guest may take (a few seconds normally; much more on a
/// loaded host, and the interference board boots Linux first).
const GUEST_LIMIT: Duration = Duration::from_secs(240);
const INTERFERENCE_LIMIT: Duration = Duration::from_secs(400);

/// `cargo xtask bench`'s options.
pub struct Options {
    /// Fewer rounds of everything.
    pub quick: bool,
    /// Rounds of the wall-clock guest runs (default: [`DEFAULT_ROUNDS`], 3 with `quick`); the
    /// other benchmarks run at most as many.
    pub rounds: Option<usize>,
    /// The QEMU binary.
    pub qemu: String,
}

/// How many times each benchmark runs.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    guest: usize,
    icount: usize,
    interference: usize,
    linux: usize,
    ipc: usize,
}

impl Plan {
    fn new(options: &Options) -> Result<Plan> {
        let rounds = match options.rounds {
            Some(0) => bail!("--rounds must be at least 1"),
            Some(n) => n,
            None if options.quick => QUICK_ROUNDS,
            None => DEFAULT_ROUNDS,
        };
        let quick = options.quick;
        Ok(Plan {
            guest: rounds,
            icount: rounds.min(if quick { 1 } else { ICOUNT_ROUNDS }),
            interference: rounds.min(if quick { 1 } else { INTERFERENCE_ROUNDS }),
            linux: rounds.min(if quick { 2 } else { DEFAULT_ROUNDS }),
            ipc: rounds.min(if quick { 1 } else { IPC_ROUNDS }),
        })
    }
}

/// The guest's distribution measurements and the figures they become.
const LATENCIES: [(&str, &str); 6] = [
    ("timer-irq", "irq-latency"),
    ("timer-poll", "irq-poll-latency"),
    ("ipi", "ipi-latency"),
    ("hypercall", "hypercall-latency"),
    ("mmio", "mmio-latency"),
    ("console-write", "console-write-latency"),
];

/// Under which conditions a guest run measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    WallClock,
    Icount,
    /// In a `direct-interrupts` partition, wall clock.
    Direct,
    /// In a `direct-interrupts` partition, under icount.
    DirectIcount,
    Interference,
    /// Beside a partition that prints a line a minute (the flood's quiet counterpart).
    QuietConsole,
    /// Beside a partition printing flat out.
    Flood,
}

/// Runs everything and prints and writes the results.
pub fn run(options: Options) -> Result<ExitCode> {
    let start = Instant::now();
    let plan = Plan::new(&options)?;
    let qemu = options.qemu.as_str();
    let qemu_version = qemu_version(qemu)?;
    println!("bench: {qemu_version}");
    println!(
        "bench: {} rounds native/partitioned wall-clock, {} under icount, {} interference, {} \
         Linux boots each, {} of each channel benchmark",
        plan.guest, plan.icount, plan.interference, plan.linux, plan.ipc
    );

    let mut figures = FigureSet::default();
    record_footprint(&mut figures, qemu)?;

    let wall = BenchBoard::prepare(WALL_BOARD)?;
    let icount = BenchBoard::prepare(ICOUNT_BOARD)?;
    let direct = BenchBoard::prepare(DIRECT_BOARD)?;
    let flood = BenchBoard::prepare(FLOOD_BOARD)?.ready_when(FLOOD_RUNNING);
    let quiet_console = BenchBoard::prepare(QUIET_BOARD)?.ready_when(QUIET_NEIGHBOUR);
    let interference = match plan.interference {
        0 => None,
        _ => Some(BenchBoard::prepare(INTERFERENCE_BOARD)?),
    };
    let linux = match plan.linux {
        0 => Vec::new(),
        _ => linux_boot::LinuxBoot::prepare_all(qemu)?,
    };
    let ipc_boards = ipc::BOARDS
        .into_iter()
        .map(ipc::IpcBoard::prepare)
        .collect::<Result<Vec<_>>>()?;
    println!(
        "bench: native:      {qemu} {}",
        wall.native_args(false).join(" ")
    );
    println!(
        "bench: partitioned: {qemu} {}",
        wall.partitioned_args(false)?.join(" ")
    );

    let mut checksums = BTreeMap::new();
    for round in 1..=plan.guest {
        for (side, partitioned) in [(Side::Native, false), (Side::Bulkhead, true)] {
            let report = timed(round, plan.guest, side, "wall-clock", || {
                wall.run(qemu, partitioned, false, GUEST_LIMIT)
            })?;
            check_checksums(&mut checksums, &report)?;
            record_run(&mut figures, side, Mode::WallClock, &report);
        }
        let report = timed(round, plan.guest, Side::Bulkhead, "direct", || {
            direct.run(qemu, true, false, GUEST_LIMIT)
        })?;
        record_run(&mut figures, Side::Bulkhead, Mode::Direct, &report);
        let quiet = timed(round, plan.guest, Side::Bulkhead, "console", || {
            quiet_console.run(qemu, true, false, GUEST_LIMIT)
        })?;
        record_run(&mut figures, Side::Bulkhead, Mode::QuietConsole, &quiet);
        let flooded = timed(round, plan.guest, Side::Bulkhead, "flood", || {
            flood.run(qemu, true, false, GUEST_LIMIT)
        })?;
        record_run(&mut figures, Side::Bulkhead, Mode::Flood, &flooded);
        record_flood_slowdown(&mut figures, &quiet, &flooded);
        if round <= plan.icount {
            let mut pair = Vec::new();
            for (side, partitioned) in [(Side::Native, false), (Side::Bulkhead, true)] {
                let report = timed(round, plan.icount, side, "icount", || {
                    icount.run(qemu, partitioned, true, GUEST_LIMIT)
                })?;
                record_run(&mut figures, side, Mode::Icount, &report);
                pair.push(report);
            }
            record_instructions(&mut figures, &pair[0], &pair[1]);
            let report = timed(round, plan.icount, Side::Bulkhead, "direct icount", || {
                direct.run(qemu, true, true, GUEST_LIMIT)
            })?;
            record_run(&mut figures, Side::Bulkhead, Mode::DirectIcount, &report);
            record_direct_instructions(&mut figures, &pair[0], &report);
        }
    }
    set_direct_natives(&mut figures);
    if let Some(board) = &interference {
        for round in 1..=plan.interference {
            let report = timed(
                round,
                plan.interference,
                Side::Bulkhead,
                "interference",
                || board.run(qemu, true, false, INTERFERENCE_LIMIT),
            )?;
            record_run(&mut figures, Side::Bulkhead, Mode::Interference, &report);
        }
        // The native counterpart is the quiet native figure.
        for prefix in ["irq-latency", "irq-poll-latency"] {
            for stat in ["median", "p99"] {
                let quiet = format!("{prefix}-{stat}");
                if let Some(native) = figures.get(&quiet).and_then(|f| f.native.clone()) {
                    figures.set_native(&format!("{prefix}-interference-{stat}"), native);
                }
            }
        }
    }
    // The quiet and flooded consoles' native counterpart is the native figure.
    for stat in ["median", "p99"] {
        let plain = format!("console-write-latency-{stat}");
        if let Some(native) = figures.get(&plain).and_then(|f| f.native.clone()) {
            for case in ["quiet", "flooded"] {
                figures.set_native(
                    &format!("console-write-latency-{case}-{stat}"),
                    native.clone(),
                );
            }
        }
    }
    for round in 1..=plan.linux {
        for linux in &linux {
            for (side, partitioned) in [(Side::Native, false), (Side::Bulkhead, true)] {
                let time = linux.boot(qemu, partitioned).with_context(|| {
                    format!(
                        "{}, {}",
                        linux.figure,
                        if partitioned { "partitioned" } else { "native" }
                    )
                })?;
                println!(
                    "bench: round {round}/{}: {:<8} {} to userspace {:.2} s",
                    plan.linux,
                    side_name(side),
                    linux.figure,
                    time.as_secs_f64()
                );
                figures.record(linux.figure, "s", side, time.as_secs_f64(), 1);
            }
        }
    }

    for round in 1..=plan.ipc {
        for board in &ipc_boards {
            let started = Instant::now();
            let run = board
                .run(qemu)
                .with_context(|| format!("channel benchmark {}", board.label()))?;
            println!(
                "bench: round {round}/{}: Bulkhead {:<21} median {} us, p99 {} us, {:.2} MiB/s \
                 ({} round trips, window {}) in {:.1} s",
                plan.ipc,
                board.label(),
                run.median_us,
                run.p99_us,
                run.mib_per_s,
                run.round_trips,
                run.window,
                started.elapsed().as_secs_f64()
            );
            board.record(&mut figures, &run);
        }
    }

    let elapsed = start.elapsed();
    let subtitle = format!(
        "{qemu_version}; {} rounds ({} icount, {} interference, {} Linux, {} channel); {}",
        plan.guest,
        plan.icount,
        plan.interference,
        plan.linux,
        plan.ipc,
        if options.quick { "--quick" } else { "full run" }
    );
    write_results(&figures, &subtitle, elapsed)?;
    Ok(ExitCode::SUCCESS)
}

/// `qemu --version`'s first line.
fn qemu_version(qemu: &str) -> Result<String> {
    let output = Command::new(qemu)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {qemu} --version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .next()
        .unwrap_or("QEMU (unknown version)")
        .trim()
        .to_owned())
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Native => "native",
        Side::Bulkhead => "Bulkhead",
    }
}

/// Runs one benchmark-guest run and says how long it took.
fn timed(
    round: usize,
    rounds: usize,
    side: Side,
    what: &str,
    run: impl FnOnce() -> Result<GuestReport>,
) -> Result<GuestReport> {
    let start = Instant::now();
    let report = run().with_context(|| format!("{} {what} run", side_name(side)))?;
    println!(
        "bench: round {round}/{rounds}: {:<8} {what:<12} ok in {:.1} s",
        side_name(side),
        start.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// The compute kernels' checksums (`*-checksum` infos) must be the same in every run, or the
/// runs did different work.
fn check_checksums(expected: &mut BTreeMap<String, String>, report: &GuestReport) -> Result<()> {
    for (key, checksum) in &report.info {
        if !key.ends_with("-checksum") {
            continue;
        }
        match expected.get(key) {
            None => {
                expected.insert(key.clone(), checksum.clone());
            }
            Some(first) if first != checksum => {
                bail!("the guest's {key} changed between runs ({first} then {checksum})")
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `console-flood-slowdown-p99`: the console write p99 beside a flooding partition over the
/// same figure beside a quiet one, from one round's two runs.
fn record_flood_slowdown(figures: &mut FigureSet, quiet: &GuestReport, flooded: &GuestReport) {
    let p99 = |report: &GuestReport| match report.results.get("console-write") {
        Some(&Measured::Distribution { p99, n, .. }) => Some((p99, n)),
        _ => None,
    };
    if let (Some((quiet, _)), Some((flooded, n))) = (p99(quiet), p99(flooded)) {
        if quiet > 0.0 {
            figures.record(
                "console-flood-slowdown-p99",
                "x",
                Side::Bulkhead,
                flooded / quiet,
                n,
            );
        }
    }
}

/// Records one run's results on `side`.
fn record_run(figures: &mut FigureSet, side: Side, mode: Mode, report: &GuestReport) {
    let suffix = match mode {
        Mode::WallClock => "",
        Mode::Icount => "-icount",
        Mode::Direct => "-direct",
        Mode::DirectIcount => "-direct-icount",
        Mode::Interference => "-interference",
        Mode::QuietConsole => "-quiet",
        Mode::Flood => "-flooded",
    };
    for (guest, prefix) in LATENCIES {
        if let Some(&Measured::Distribution {
            n,
            min,
            median,
            p99,
            ..
        }) = report.results.get(guest)
        {
            // The best case, where the wall clock leaves room for one.
            if matches!(mode, Mode::WallClock | Mode::Direct) {
                figures.record(&format!("{prefix}{suffix}-min"), "ns", side, min, n);
            }
            figures.record(&format!("{prefix}{suffix}-median"), "ns", side, median, n);
            // Under icount only the timer's tail is interesting (the rest repeat exactly).
            let icount = matches!(mode, Mode::Icount | Mode::DirectIcount);
            if !icount || guest.starts_with("timer") {
                figures.record(&format!("{prefix}{suffix}-p99"), "ns", side, p99, n);
            }
        }
    }
    if mode == Mode::WallClock {
        for (guest, figure) in [
            ("compute-cpu", "compute-cpu-time"),
            ("compute-memory", "compute-memory-time"),
        ] {
            if let Some(&Measured::Distribution { n, median, .. }) = report.results.get(guest) {
                figures.record(figure, "ms", side, median / 1e6, n);
            }
        }
    }
    for name in ["boot-first-instruction", "boot-first-line"] {
        if let Some(&Measured::Value { value, .. }) = report.results.get(name) {
            figures.record(&format!("{name}{suffix}"), "ms", side, value / 1e6, 1);
        }
    }
}

/// The hypervisor's paths in instructions, from one round's icount runs: the extra time a
/// partition takes over native, divided by the 16 ns each instruction takes.
fn record_instructions(figures: &mut FigureSet, native: &GuestReport, partitioned: &GuestReport) {
    let median = |report: &GuestReport, name: &str| match report.results.get(name) {
        Some(&Measured::Distribution { n, median, .. }) => Some((median, n)),
        _ => None,
    };
    for (guest, figure) in [
        ("timer-poll", "irq-injection-instructions"),
        ("hypercall", "hypercall-path-instructions"),
        ("mmio", "mmio-path-instructions"),
    ] {
        if let (Some((n_ns, _)), Some((p_ns, samples))) =
            (median(native, guest), median(partitioned, guest))
        {
            let instructions = (p_ns - n_ns) / NS_PER_INSTRUCTION;
            figures.record(
                figure,
                "instructions",
                Side::Bulkhead,
                instructions,
                samples,
            );
        }
    }
    if let (Some((n_ns, n)), Some((p_ns, p))) = (median(native, "ipi"), median(partitioned, "ipi"))
    {
        let name = "ipi-latency-instructions";
        figures.record(
            name,
            "instructions",
            Side::Native,
            n_ns / NS_PER_INSTRUCTION,
            n,
        );
        figures.record(
            name,
            "instructions",
            Side::Bulkhead,
            p_ns / NS_PER_INSTRUCTION,
            p,
        );
    }
}

/// What is left of the hypervisor on a `direct-interrupts` partition's interrupt path, from one
/// round's icount runs: (direct − native) polled timer latency / 16 ns; about 0 when the guest
/// takes its interrupts as natively.
fn record_direct_instructions(figures: &mut FigureSet, native: &GuestReport, direct: &GuestReport) {
    let median = |report: &GuestReport| match report.results.get("timer-poll") {
        Some(&Measured::Distribution { n, median, .. }) => Some((median, n)),
        _ => None,
    };
    if let (Some((n_ns, _)), Some((d_ns, samples))) = (median(native), median(direct)) {
        figures.record(
            "irq-path-instructions-direct",
            "instructions",
            Side::Bulkhead,
            (d_ns - n_ns) / NS_PER_INSTRUCTION,
            samples,
        );
    }
}

/// The direct-interrupt figures' native counterparts: the same guest's native figures (wall
/// clock and under icount), which the same measurement gives without a hypervisor.
fn set_direct_natives(figures: &mut FigureSet) {
    for prefix in ["irq-latency", "irq-poll-latency", "ipi-latency"] {
        for (mode, stats) in [
            ("", &["min", "median", "p99"][..]),
            ("-icount", &["median", "p99"][..]),
        ] {
            for stat in stats {
                let native = figures
                    .get(&format!("{prefix}{mode}-{stat}"))
                    .and_then(|f| f.native.clone());
                if let Some(native) = native {
                    figures.set_native(&format!("{prefix}-direct{mode}-{stat}"), native);
                }
            }
        }
    }
}

/// Builds the footprint board and records the hypervisor ELF's section sizes.
fn record_footprint(figures: &mut FigureSet, qemu: &str) -> Result<()> {
    build(FOOTPRINT_BOARD, false)?;
    let elf = release_dir(HYPERVISOR_TARGET).join(HYPERVISOR);
    let bytes =
        std::fs::read(&elf).with_context(|| format!("cannot read {}", display_path(&elf)))?;
    let f = Footprint::of_elf(&bytes)
        .with_context(|| format!("cannot read the sections of {}", display_path(&elf)))?;
    for (name, value) in [
        ("footprint-text", f.text),
        ("footprint-rodata", f.rodata),
        ("footprint-data", f.data),
        ("footprint-bss", f.bss),
        ("footprint-text-rodata-data", f.loaded()),
    ] {
        figures.record(name, "bytes", Side::Bulkhead, value as f64, 1);
    }
    // RAM in use: the image, its bss (stacks, the initial heap array) and the heap's high-water
    // mark, which grows with the partitions.
    for partitions in [1, 2, 4] {
        let board = format!("bench/qemu-virt-footprint-{partitions}");
        let built = build(&board, false)?;
        let args = crate::qemu::qemu_args(&built, &crate::qemu::RunOptions::plain())?;
        let mut heap = None;
        session::run(qemu, &args, GUEST_LIMIT, |line| {
            heap = heap.or(footprint::heap_high_water(line));
            stop_when(heap.is_some())
        })
        .with_context(|| format!("footprint run of {board}"))?;
        let heap =
            heap.with_context(|| format!("{board}: no heap high-water mark at power-off"))?;
        println!("bench: footprint: {partitions} partition(s): heap high-water {heap} bytes");
        figures.record(
            &format!("footprint-heap-{partitions}-partitions"),
            "bytes",
            Side::Bulkhead,
            heap as f64,
            1,
        );
        figures.record(
            &format!("footprint-ram-{partitions}-partitions"),
            "bytes",
            Side::Bulkhead,
            (f.loaded() + f.bss + heap) as f64,
            1,
        );
    }
    Ok(())
}

/// Stops a session once what it waits for has come.
fn stop_when(done: bool) -> session::Step {
    if done {
        session::Step::Stop
    } else {
        session::Step::Continue
    }
}

/// Prints the table and writes `target/bench/results.{json,svg,txt}`.
fn write_results(figures: &FigureSet, subtitle: &str, elapsed: Duration) -> Result<()> {
    let dir: PathBuf = repo_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let table = report::table(figures);
    let text = format!("{subtitle}\n\n{table}");
    for (file, contents) in [
        ("results.json", report::json(figures)),
        ("results.svg", chart::svg(figures, subtitle)),
        ("results.txt", text.clone()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", display_path(&path)))?;
    }
    println!("\n{text}");
    println!(
        "bench: done in {:.0} s; results in {} (results.json, results.svg, results.txt)",
        elapsed.as_secs_f64(),
        display_path(&dir)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(quick: bool, rounds: Option<usize>) -> Options {
        Options {
            quick,
            rounds,
            qemu: "qemu-system-aarch64".into(),
        }
    }

    #[test]
    fn plans() {
        assert_eq!(
            Plan::new(&options(false, None)).unwrap(),
            Plan {
                guest: 10,
                icount: 2,
                interference: 5,
                linux: 10,
                ipc: 5
            }
        );
        assert_eq!(
            Plan::new(&options(true, None)).unwrap(),
            Plan {
                guest: 3,
                icount: 1,
                interference: 1,
                linux: 2,
                ipc: 1
            }
        );
        assert_eq!(
            Plan::new(&options(false, Some(1))).unwrap(),
            Plan {
                guest: 1,
                icount: 1,
                interference: 1,
                linux: 1,
                ipc: 1
            }
        );
        assert!(Plan::new(&options(false, Some(0))).is_err());
    }

    fn report(text: &str) -> GuestReport {
        guest_output::parse_output(text.lines(), None).unwrap()
    }

    #[test]
    fn runs_become_figures() {
        let native = report(
            "bench: timer-poll unit=ns n=200 min=224 median=240 p99=272 mean=240 max=272
bench: hypercall unit=ns n=200 min=128 median=128 p99=128 mean=128 max=128
bench: ipi unit=ns n=200 min=560 median=560 p99=560 mean=560 max=560
bench: boot-first-instruction unit=ns value=112",
        );
        let partitioned = report(
            "bench: timer-poll unit=ns n=200 min=15536 median=15824 p99=15856 mean=15824 max=15856
bench: hypercall unit=ns n=200 min=4288 median=4288 p99=4288 mean=4288 max=4288
bench: ipi unit=ns n=200 min=38048 median=64160 p99=64160 mean=63904 max=64160
bench: boot-first-instruction unit=ns value=32687280",
        );
        let mut figures = FigureSet::default();
        record_run(&mut figures, Side::Native, Mode::Icount, &native);
        record_run(&mut figures, Side::Bulkhead, Mode::Icount, &partitioned);
        record_instructions(&mut figures, &native, &partitioned);

        let value = |name: &str| figures.get(name).unwrap().bulkhead.value().unwrap();
        // (15824 - 240) / 16 = 974.
        assert_eq!(value("irq-injection-instructions"), 974.0);
        assert_eq!(
            figures.get("irq-injection-instructions").unwrap().native,
            None
        );
        assert_eq!(value("hypercall-path-instructions"), 260.0);
        let ipi = figures.get("ipi-latency-instructions").unwrap();
        assert_eq!(ipi.native.as_ref().unwrap().value(), Some(35.0));
        assert_eq!(ipi.bulkhead.value(), Some(4010.0));
        assert_eq!(value("irq-poll-latency-icount-median"), 15824.0);
        assert_eq!(value("irq-poll-latency-icount-p99"), 15856.0);
        // No p99 for round trips under icount, no minimum under icount at all.
        assert!(figures.get("hypercall-latency-icount-p99").is_none());
        assert!(figures.get("irq-poll-latency-icount-min").is_none());
        assert_eq!(value("boot-first-instruction-icount"), 32.68728);
        assert_eq!(
            figures
                .get("irq-poll-latency-icount-median")
                .unwrap()
                .bulkhead
                .samples,
            200
        );
    }

    #[test]
    fn direct_interrupt_runs_are_compared_with_native() {
        let native = report(
            "bench: timer-poll unit=ns n=200 min=224 median=240 p99=272 mean=240 max=272
bench: ipi unit=ns n=200 min=560 median=560 p99=560 mean=560 max=560",
        );
        let direct = report(
            "bench: timer-poll unit=ns n=500 min=224 median=256 p99=288 mean=256 max=288
bench: ipi unit=ns n=500 min=1200 median=1232 p99=1232 mean=1232 max=1232",
        );
        let mut figures = FigureSet::default();
        record_run(&mut figures, Side::Native, Mode::Icount, &native);
        record_run(&mut figures, Side::Bulkhead, Mode::DirectIcount, &direct);
        record_direct_instructions(&mut figures, &native, &direct);
        set_direct_natives(&mut figures);

        let figure = |name: &str| figures.get(name).unwrap();
        // (256 - 240) / 16 = 1 instruction of difference.
        assert_eq!(
            figure("irq-path-instructions-direct").bulkhead.value(),
            Some(1.0)
        );
        let poll = figure("irq-poll-latency-direct-icount-median");
        assert_eq!(poll.bulkhead.value(), Some(256.0));
        assert_eq!(poll.native.as_ref().unwrap().value(), Some(240.0));
        let ipi = figure("ipi-latency-direct-icount-median");
        assert_eq!(ipi.native.as_ref().unwrap().value(), Some(560.0));
        assert!(figures.get("ipi-latency-direct-icount-p99").is_none());
    }

    #[test]
    fn wall_clock_runs_have_minimums_and_compute() {
        let run = report(
            "bench: timer-irq unit=ns n=2000 min=18864 median=21376 p99=236784 mean=43344 max=9
bench: compute-memory unit=ns n=5 min=1 median=146720000 p99=3 mean=2 max=3",
        );
        let mut figures = FigureSet::default();
        record_run(&mut figures, Side::Native, Mode::WallClock, &run);
        let native = |name: &str| figures.get(name).unwrap().native.as_ref().unwrap().value();
        assert_eq!(native("irq-latency-min"), Some(18864.0));
        assert_eq!(native("irq-latency-median"), Some(21376.0));
        assert_eq!(native("irq-latency-p99"), Some(236784.0));
        assert_eq!(native("compute-memory-time"), Some(146.72));
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "irq-latency-min",
                "irq-latency-median",
                "irq-latency-p99",
                "compute-memory-time"
            ]
        );
    }

    #[test]
    fn checksums_must_agree() {
        let mut expected = BTreeMap::new();
        let a = report("bench: info compute-cpu-checksum=0x1 compute-memory-checksum=0x3");
        let b = report("bench: info compute-cpu-checksum=0x2 compute-memory-checksum=0x3");
        check_checksums(&mut expected, &report("bench: info vcpus=2")).unwrap();
        check_checksums(&mut expected, &a).unwrap();
        check_checksums(&mut expected, &a).unwrap();
        let err = check_checksums(&mut expected, &b).unwrap_err().to_string();
        assert!(err.contains("compute-cpu-checksum changed"), "{err}");
    }
}
