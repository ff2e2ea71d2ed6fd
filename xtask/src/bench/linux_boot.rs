//! Linux boot to userspace, natively and in a partition.
//!
//! - **native**: the Linux recipe's kernel and initramfs booted directly by QEMU on a machine
//!   the size of the `qemu-virt-linux` board's Linux partition (its CPU count and RAM), with the
//!   partition's `bootargs` and the board's QEMU extras (the same disk);
//! - **partitioned**: the packed board booted exactly as `cargo xtask run` boots it (the Linux
//!   partition beside the bare-metal one),
//!
//! each timed from spawning QEMU to the recipe's userspace marker (`bulkhead-linux: userspace
//! up`) on its output; QEMU is then killed. Rounds alternate native and partitioned, so slow
//! phases of a busy host do not land on one side only.

use std::time::Duration;

use anyhow::{Context, Result};
use bulkhead_config::Partition;
use bulkhead_linux_guest::USERSPACE_MARKER;

use super::session::{self, Step};
use crate::board::{linux_guest, ImageSource, Role};
use crate::build::{build, Built};
use crate::qemu::{self, RunOptions};

/// The board benchmarked: a Linux partition beside a bare-metal one.
pub const BOARD: &str = "qemu-virt-linux";
/// The most a boot may take before the run is declared failed (about 20x a partitioned boot
/// under TCG on the 2-core dev machine).
const BOOT_LIMIT: Duration = Duration::from_secs(120);

/// The two QEMU command lines (without the program).
pub struct LinuxBoot {
    pub native: Vec<String>,
    pub partitioned: Vec<String>,
}

impl LinuxBoot {
    /// Builds the board and prepares both command lines.
    pub fn prepare() -> Result<LinuxBoot> {
        let built = build(BOARD, false)?;
        let native = native_args(&built)?;
        let partitioned = qemu::qemu_args(
            &built,
            &RunOptions {
                cpu: qemu::DEFAULT_CPU.into(),
                uboot: None,
                timeout: None,
                gdb: false,
                extra_args: Vec::new(),
            },
        )?;
        Ok(LinuxBoot {
            native,
            partitioned,
        })
    }

    /// Boots once natively (`partitioned` false) or in the partition and returns the time to
    /// userspace.
    pub fn boot(&self, qemu: &str, partitioned: bool) -> Result<Duration> {
        let args = if partitioned {
            &self.partitioned
        } else {
            &self.native
        };
        time_to_marker(qemu, args, USERSPACE_MARKER, BOOT_LIMIT)
    }
}

/// Starts `program` with `args` and returns the time until a line containing `marker` appears
/// on its output, at most `limit`; the process is killed either way.
fn time_to_marker(
    program: &str,
    args: &[String],
    marker: &str,
    limit: Duration,
) -> Result<Duration> {
    let transcript = session::run(program, args, limit, |line| {
        if line.contains(marker) {
            Step::Stop
        } else {
            Step::Continue
        }
    })?;
    if !transcript.stopped {
        let text = transcript.lines.join("\n");
        anyhow::bail!(
            "{program} ended before {marker:?}; last output:\n{}\n(command: {program} {})",
            session::tail(&text, 3000),
            args.join(" ")
        );
    }
    Ok(transcript.elapsed)
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
        .with_context(|| format!("board {BOARD} has no partition with image \"linux\""))
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
    let mut args = qemu::machine_args(
        qemu::DEFAULT_CPU,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn the_marker_is_timed_and_the_process_killed() {
        let start = Instant::now();
        let script = sh("echo booting; sleep 0.3; printf 'x\\nMARK\\n'; sleep 30");
        let t = time_to_marker("sh", &script, "MARK", Duration::from_secs(20)).unwrap();
        assert!(t >= Duration::from_millis(300), "{t:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_marker_is_an_error_with_the_output() {
        let err = time_to_marker(
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
        let err = time_to_marker("sh", &sh("sleep 30"), "MARK", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("still running"), "{err}");
    }
}
