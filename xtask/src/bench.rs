//! `cargo xtask bench`: how long Linux takes to reach userspace natively and in a partition.
//!
//! Builds the `qemu-virt-linux` board, then alternates rounds of
//!
//! - **native**: the recipe's kernel and initramfs booted directly by QEMU on a machine the size
//!   of the Linux partition (its CPU count and RAM), with the partition's `bootargs` and the
//!   board's QEMU extras (the same disk);
//! - **partitioned**: the packed board booted exactly as `cargo xtask run` boots it (the Linux
//!   partition beside the bare-metal one),
//!
//! each timed from spawning QEMU to the first appearance of the recipe's userspace marker
//! (`bulkhead-linux: userspace up`) on its output; QEMU is then killed. Alternating keeps slow
//! phases of a busy host from landing on one side only. It prints every run, the medians and the
//! ratio partitioned/native; nothing is asserted (the target is at most 1.3x).

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bulkhead_config::Partition;
use bulkhead_linux_guest::USERSPACE_MARKER;

use crate::board::{linux_guest, ImageSource, Role};
use crate::build::{build, Built};
use crate::qemu::{self, RunOptions, QEMU};

/// The board benchmarked: a Linux partition beside a bare-metal one.
pub const BOARD: &str = "qemu-virt-linux";
/// Rounds without `--rounds`.
pub const DEFAULT_ROUNDS: usize = 3;
/// The most a boot may take before the run is declared failed (about 20x a partitioned boot
/// under TCG on the 2-core dev machine).
const BOOT_LIMIT: Duration = Duration::from_secs(120);
/// The ratio partitioned/native the hypervisor aims at.
const TARGET_RATIO: f64 = 1.3;
/// How much of a failed run's output to show.
const TAIL: usize = 3000;

/// Builds the board and runs `rounds` rounds of native and partitioned boots.
pub fn run(rounds: usize) -> Result<ExitCode> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let built = build(BOARD, false)?;
    let native = native_args(&built)?;
    let partitioned = qemu::qemu_args(
        &built,
        &RunOptions {
            cpu: qemu::DEFAULT_CPU.into(),
            timeout: None,
            gdb: false,
            extra_args: Vec::new(),
            uboot: None,
        },
    );
    println!("bench: native:      {QEMU} {}", native.join(" "));
    println!("bench: partitioned: {QEMU} {}", partitioned.join(" "));

    let mut native_times = Vec::with_capacity(rounds);
    let mut partitioned_times = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let n = time_to_marker(&native).context("native boot")?;
        println!(
            "bench: round {round}/{rounds}: native      {:.2} s",
            n.as_secs_f64()
        );
        let p = time_to_marker(&partitioned).context("partitioned boot")?;
        println!(
            "bench: round {round}/{rounds}: partitioned {:.2} s",
            p.as_secs_f64()
        );
        native_times.push(n);
        partitioned_times.push(p);
    }

    let native = median(&mut native_times);
    let partitioned = median(&mut partitioned_times);
    let ratio = partitioned.as_secs_f64() / native.as_secs_f64();
    println!(
        "linux boot to userspace: native {:.2} s, partitioned {:.2} s, ratio {ratio:.2}x \
         (median of {rounds} each; target <= {TARGET_RATIO}x: {})",
        native.as_secs_f64(),
        partitioned.as_secs_f64(),
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The board's Linux partition: the one whose image is the Linux recipe.
fn linux_partition(built: &Built) -> Result<&Partition> {
    built
        .config
        .partitions
        .iter()
        .find(|p| {
            ImageSource::classify(&p.image, Role::Image, built.board.dir())
                == ImageSource::LinuxRecipe(Role::Image)
        })
        .with_context(|| format!("board {} has no partition with image \"linux\"", BOARD))
}

/// QEMU arguments that boot the Linux guest without the hypervisor, on a machine like its
/// partition: as many CPUs, as much RAM, the same command line, the board's extras.
fn native_args(built: &Built) -> Result<Vec<String>> {
    let partition = linux_partition(built)?;
    let guest = linux_guest()?;
    let ram_mib = partition
        .memory
        .iter()
        .map(|r| r.size)
        .sum::<u64>()
        .div_ceil(1024 * 1024);
    let mut args = crate::qemu::machine_args(
        crate::qemu::DEFAULT_CPU,
        partition.cpus.len(),
        ram_mib,
        &guest.kernel,
    );
    args.extend(
        [
            "-initrd",
            &guest.initramfs.to_string_lossy(),
            "-append",
            partition.bootargs.as_deref().unwrap_or(""),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(built.qemu_args.iter().cloned());
    Ok(args)
}

/// Starts QEMU with `args` and returns the time until [`USERSPACE_MARKER`] appears on its
/// output; QEMU is killed either way.
fn time_to_marker(args: &[String]) -> Result<Duration> {
    time_until(QEMU, args, USERSPACE_MARKER, BOOT_LIMIT)
}

/// Starts `program` with `args` and returns the time until `marker` appears on its stdout or
/// stderr, at most `limit`; the process is killed either way.
fn time_until(program: &str, args: &[String], marker: &str, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || forward(stream, tx));
    }
    drop(tx);

    let needle = marker.as_bytes();
    let mut output = Vec::new();
    let result = loop {
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(chunk) => {
                let from = output.len().saturating_sub(needle.len());
                output.extend_from_slice(&chunk);
                if output[from..].windows(needle.len()).any(|w| w == needle) {
                    break Ok(start.elapsed());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!("no {marker:?} within {limit:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                break Err(format!("{program} ended ({status}) before {marker:?}"));
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result.or_else(|reason| {
        let text = String::from_utf8_lossy(&output);
        let tail_start = text.len().saturating_sub(TAIL);
        let tail_start = (tail_start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        bail!(
            "{reason}; last output:\n{}\n(command: {program} {})",
            &text[tail_start..],
            args.join(" ")
        )
    })
}

/// Sends what `from` yields, chunk by chunk, until end of file or the receiver is gone.
fn forward(mut from: Box<dyn Read + Send>, to: mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// The median of `times` (the mean of the middle two for an even count).
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let s = Duration::from_secs;
        assert_eq!(median(&mut [s(3), s(1), s(2)]), s(2));
        assert_eq!(
            median(&mut [s(4), s(1), s(2), s(3)]),
            Duration::from_millis(2500)
        );
        assert_eq!(median(&mut [s(7)]), s(7));
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn the_marker_is_timed_and_the_process_killed() {
        let start = Instant::now();
        let script = sh("echo booting; sleep 0.3; printf 'x\\nMARK'; echo ER >&2; sleep 30");
        let t = time_until("sh", &script, "MARK", Duration::from_secs(20)).unwrap();
        assert!(t >= Duration::from_millis(300), "{t:?}");
        // Killed, not waited for: far less than the 30 s sleep.
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_marker_is_an_error_with_the_output() {
        let err = time_until(
            "sh",
            &sh("echo nothing here"),
            "MARK",
            Duration::from_secs(20),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ended") && err.contains("nothing here"),
            "{err}"
        );
        let err = time_until("sh", &sh("sleep 30"), "MARK", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("within"), "{err}");
    }
}
