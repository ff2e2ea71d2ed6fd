//! Linux boot to userspace, natively and in a partition, on each of the [`BOARDS`]: QEMU virt
//! (`qemu-virt-linux`, figure `linux-boot`) and QEMU raspi4b (`rpi4-linux`, figure
//! `linux-boot-rpi4`, when the QEMU measured has that machine).
//!
//! - **native**: the same kernel and initramfs booted directly by QEMU on a machine like the
//!   board's Linux partition, with the partition's `bootargs`: on virt, a machine of its CPU
//!   count and RAM with the board's QEMU extras (the same disk); on raspi4b, whose size is
//!   fixed, the partition's own device tree (its CPUs, memory size, UART, SD controller and a
//!   GICv2, which are the Pi's real ones natively) with the CPUs started from the Pi's spin
//!   tables instead of PSCI and the memory where QEMU loads the kernel, and the same SD card;
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
use crate::platform::LinuxInitrd;
use crate::qemu::{self, Machine, RunOptions};

/// The boards benchmarked, each a Linux partition beside a bare-metal one, with the name of
/// their figure.
pub const BOARDS: [(&str, &str); 2] = [
    ("qemu-virt-linux", "linux-boot"),
    ("rpi4-linux", "linux-boot-rpi4"),
];
/// The most a boot may take before the run is declared failed (about 20x a partitioned boot
/// under TCG on the 2-core dev machine).
const BOOT_LIMIT: Duration = Duration::from_secs(120);

/// The two QEMU command lines (without the program) of one board.
pub struct LinuxBoot {
    /// The figure the boot times go to.
    pub figure: &'static str,
    pub native: Vec<String>,
    pub partitioned: Vec<String>,
}

impl LinuxBoot {
    /// Builds each of the [`BOARDS`] whose QEMU machine `qemu` has, and prepares its command
    /// lines.
    pub fn prepare_all(qemu: &str) -> Result<Vec<LinuxBoot>> {
        let machines = machines(qemu);
        let mut boots = Vec::new();
        for (board, figure) in BOARDS {
            let built = build(board, false)?;
            let machine = Machine::of(&built.config, built.platform)?;
            if !machines.iter().any(|m| m == machine.name()) {
                println!(
                    "bench: {qemu} has no {} machine: no {figure} figure",
                    machine.name()
                );
                continue;
            }
            boots.push(Self::prepare(built, figure)?);
        }
        Ok(boots)
    }

    /// Prepares both command lines of a built board.
    fn prepare(built: Built, figure: &'static str) -> Result<LinuxBoot> {
        let native = native_args(&built)?;
        let partitioned = qemu::qemu_args(&built, &RunOptions::plain())?;
        Ok(LinuxBoot {
            figure,
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
        .with_context(|| {
            format!(
                "board {} has no partition with image \"linux\"",
                built.board.name
            )
        })
}

/// The machine types `qemu` has (none if it cannot say).
fn machines(qemu: &str) -> Vec<String> {
    std::process::Command::new(qemu)
        .args(["-M", "help"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .skip_while(|l| !l.starts_with("Supported machines"))
                .skip(1)
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
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
    if Machine::of(&built.config, built.platform)? == Machine::Raspi4b {
        return native_raspi4b_args(built, partition, ram_mib);
    }
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

/// The native Linux on QEMU raspi4b, whose four cores and 2 GiB are fixed: the recipe's kernel
/// with the initramfs the partition gets, on the partition's own device tree made native (see
/// [`native_device_tree`]), with the board's SD card.
fn native_raspi4b_args(built: &Built, partition: &Partition, ram_mib: u64) -> Result<Vec<String>> {
    let platform = built
        .platform
        .context("a raspi4b board has a known platform")?;
    let index = built
        .config
        .partitions
        .iter()
        .position(|p| p.name == partition.name)
        .context("the Linux partition is one of the board's")?;
    let dir = built.board.out_dir().join("bench-native");
    std::fs::create_dir_all(&dir)?;
    let dtb = dir.join("linux-native.dtb");
    std::fs::write(&dtb, &built.guest_dtbs[index])?;
    native_device_tree(&dtb, partition, ram_mib)?;
    let initramfs = match platform.linux_initrd {
        LinuxInitrd::Native => {
            let path = dir.join("initramfs.cpio.gz");
            std::fs::write(&path, crate::native_linux::initramfs()?)?;
            path
        }
        LinuxInitrd::Recipe => linux_guest()?.initramfs.clone(),
    };
    let mut args = Machine::Raspi4b.args(qemu::DEFAULT_CPU, 0, 0)?;
    for (flag, value) in [
        (
            "-kernel",
            linux_guest()?.kernel.to_string_lossy().into_owned(),
        ),
        ("-dtb", dtb.to_string_lossy().into_owned()),
        ("-initrd", initramfs.to_string_lossy().into_owned()),
        ("-append", partition.bootargs.clone().unwrap_or_default()),
    ] {
        args.extend([flag.to_owned(), value]);
    }
    if let Some(made) = &built.card {
        args.extend([
            "-drive".to_owned(),
            format!(
                "file={},if=sd,format=raw,snapshot=on",
                made.image.to_string_lossy()
            ),
        ]);
    }
    Ok(args)
}

/// Where QEMU raspi4b's boot code parks each core (its spin table), as `rpi4.dtsi` says.
const RASPI_RELEASE_ADDRS: [u64; 4] = [0xd8, 0xe0, 0xe8, 0xf0];

/// Makes the partition's device tree at `dtb` boot natively on the Pi (with `fdtput`): no PSCI
/// there, so its CPUs start from the Pi's spin tables; its memory (`ram_mib`) from 0, where QEMU
/// loads the kernel, rather than at the partition's guest-physical address.
fn native_device_tree(dtb: &std::path::Path, partition: &Partition, ram_mib: u64) -> Result<()> {
    let fdtput = |args: &[String]| -> Result<()> {
        let mut cmd = std::process::Command::new("fdtput");
        cmd.arg(dtb).args(args);
        bulkhead_linux_guest::apt::run(&mut cmd)
            .with_context(|| format!("cannot make the native device tree (fdtput {args:?})"))?;
        Ok(())
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    fdtput(&s(&["-r", "/psci"]))?;
    for (n, addr) in RASPI_RELEASE_ADDRS
        .iter()
        .enumerate()
        .take(partition.cpus.len())
    {
        let cpu = format!("/cpus/cpu@{n:x}");
        fdtput(&s(&["-t", "s", &cpu, "enable-method", "spin-table"]))?;
        fdtput(&s(&[
            "-t",
            "x",
            &cpu,
            "cpu-release-addr",
            "0",
            &format!("{addr:x}"),
        ]))?;
    }
    let memory = partition
        .memory
        .first()
        .context("the Linux partition has memory")?;
    let size = ram_mib * 1024 * 1024;
    fdtput(&s(&[
        "-t",
        "x",
        &format!("/memory@{:x}", memory.ipa.raw()),
        "reg",
        "0",
        "0",
        &format!("{:x}", size >> 32),
        &format!("{:x}", size & 0xffff_ffff),
    ]))
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
