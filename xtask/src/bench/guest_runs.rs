//! Running the benchmark guest (`partitions/bench`) natively and in a partition.
//!
//! A bench board (`board-configs/bench/*.dts`) has one partition running the `bench` image; its
//! `bootargs` say what the guest measures. **Partitioned**, the packed board boots as `cargo
//! xtask run` boots it. **Natively**, QEMU boots the same guest as an arm64 Image (its flat
//! binary, written next to the board's image) directly at EL1 — `-M virt,gic-version=3` without
//! `virtualization=on`, so QEMU provides the GICv3 and PSCI over HVC — on a machine the size of
//! the partition, with the same `bootargs` on `-append`. Either may run under `-icount
//! shift=4,sleep=off`, where every instruction advances the clock by exactly 16 ns.
//!
//! The interference board also has a Linux partition started with a load; the guest waits for
//! console input, which [`run`] types (Ctrl-T, the partition's number, a byte) once Linux says
//! its load runs and the guest says it waits. The console-flood board works the same way, the
//! flood's 100th line standing for the load ([`BenchBoard::ready_when`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bulkhead_config::Partition;
use bulkhead_linux_guest::LOAD_MARKER;

use super::guest_output::{parse_output, GuestReport};
use super::session::{self, Step};
use crate::board::{display_path, ImageSource, Role, SourceFile};
use crate::build::{build, Built};
use crate::qemu::{self, RunOptions};

/// The guest crate benchmarked.
pub const GUEST: &str = "bench";
/// QEMU's icount setting for the deterministic runs: 2^4 = 16 ns per instruction.
pub const ICOUNT: &str = "shift=4,sleep=off";
/// Nanoseconds per instruction under [`ICOUNT`].
pub const NS_PER_INSTRUCTION: f64 = 16.0;
/// Ctrl-T, the console's partition-switch key.
const CTRL_T: u8 = 0x14;

/// A built bench board and what running its guest natively needs.
pub struct BenchBoard {
    pub built: Built,
    /// The partition running the guest.
    partition: Partition,
    /// Its number on the console (1-based, config order), for Ctrl-T.
    number: usize,
    /// The guest as a flat arm64 Image, for QEMU `-kernel`.
    native_image: PathBuf,
    /// With `wait=input`: the console text that says the neighbours' load runs.
    ready: &'static str,
}

impl BenchBoard {
    /// Builds board `name` and writes the guest's flat image for native runs.
    pub fn prepare(name: &str) -> Result<BenchBoard> {
        let built = build(name, false)?;
        let (index, partition) = built
            .config
            .partitions
            .iter()
            .enumerate()
            .find(|(_, p)| {
                ImageSource::classify(&p.image, Role::Image, built.board.dir())
                    == ImageSource::Crate(GUEST.to_owned())
            })
            .with_context(|| format!("board {name} has no partition with image \"{GUEST}\""))?;
        let partition = partition.clone();
        let elf_path = ImageSource::Crate(GUEST.to_owned()).path()?;
        let elf = std::fs::read(&elf_path)
            .with_context(|| format!("cannot read {}", display_path(&elf_path)))?;
        let flat = bulkhead_tools::elf::flatten(&elf)
            .with_context(|| format!("cannot flatten {}", display_path(&elf_path)))?;
        check_native_placement(&flat.bytes, flat.load_address)?;
        let native_image = built.board.out_dir().join("bench-native.img");
        std::fs::write(&native_image, &flat.bytes)
            .with_context(|| format!("cannot write {}", display_path(&native_image)))?;
        Ok(BenchBoard {
            built,
            partition,
            number: index + 1,
            native_image,
            ready: LOAD_MARKER,
        })
    }

    /// With `wait=input`, the guest starts measuring once `text` appeared on the console
    /// (default: the Linux recipe's [`LOAD_MARKER`]).
    pub fn ready_when(mut self, text: &'static str) -> BenchBoard {
        self.ready = text;
        self
    }

    /// The partition's name: the prefix of the guest's console lines in a partition.
    pub fn partition_name(&self) -> &str {
        &self.partition.name
    }

    /// The result names the guest's `run=` boot argument asks for.
    pub fn expected_results(&self) -> Vec<String> {
        expected_results(self.partition.bootargs.as_deref().unwrap_or(""))
    }

    /// QEMU arguments for the guest without the hypervisor.
    pub fn native_args(&self, icount: bool) -> Vec<String> {
        let ram_mib = self
            .partition
            .memory
            .iter()
            .map(|r| r.size)
            .sum::<u64>()
            .div_ceil(1024 * 1024);
        // The machine `run` uses, without EL2: QEMU's own GICv3 and PSCI (over HVC) then serve
        // the guest, which QEMU starts at EL1.
        let mut args = qemu::machine_args(
            qemu::DEFAULT_CPU,
            self.partition.cpus.len(),
            ram_mib,
            &self.native_image,
        );
        for arg in args.iter_mut().filter(|a| a.contains("virtualization=on")) {
            *arg = arg.replace("virtualization=on,", "");
        }
        args.extend([
            "-append".to_owned(),
            self.partition.bootargs.clone().unwrap_or_default(),
        ]);
        if icount {
            args.extend(["-icount".to_owned(), ICOUNT.to_owned()]);
        }
        args
    }

    /// QEMU arguments for the packed board.
    pub fn partitioned_args(&self, icount: bool) -> Result<Vec<String>> {
        let extra_args = if icount {
            vec!["-icount".to_owned(), ICOUNT.to_owned()]
        } else {
            Vec::new()
        };
        qemu::qemu_args(
            &self.built,
            &RunOptions {
                extra_args,
                ..RunOptions::plain()
            },
        )
    }

    /// Runs the guest once and returns what it reported, checked complete.
    pub fn run(
        &self,
        qemu: &str,
        partitioned: bool,
        icount: bool,
        limit: Duration,
    ) -> Result<GuestReport> {
        let (args, prefix) = if partitioned {
            (self.partitioned_args(icount)?, Some(self.partition_name()))
        } else {
            (self.native_args(icount), None)
        };
        // Input to the guest (Ctrl-T, its number, a byte), then the console's focus back to
        // another partition: the focused partition's unfinished line is shown as it is written,
        // and a neighbour's lines would then break the guest's result lines in two.
        let other = if self.number == 1 { b'2' } else { b'1' };
        let go = [CTRL_T, b'0' + self.number.min(9) as u8, b'g', CTRL_T, other].to_vec();
        let done = line_of(prefix, "done");
        let waiting = line_of(prefix, "waiting for input");
        let (mut guest_waits, mut load_runs, mut typed) = (false, false, false);
        let transcript = session::run(qemu, &args, limit, |line| {
            if line == done {
                return Step::Stop;
            }
            guest_waits |= line == waiting;
            load_runs |= line.contains(self.ready);
            if guest_waits && load_runs && !typed {
                typed = true;
                return Step::Send(go.clone());
            }
            Step::Continue
        })?;
        let report = parse_output(transcript.lines.iter().map(String::as_str), prefix)?;
        let expected = self.expected_results();
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        report.check_complete(&expected).with_context(|| {
            format!(
                "{} run of {}{}; last output:\n{}",
                if partitioned { "partitioned" } else { "native" },
                self.built.board.name,
                if icount { " under icount" } else { "" },
                session::tail(&transcript.lines.join("\n"), 3000)
            )
        })?;
        Ok(report)
    }
}

/// A guest line as it appears on the console: `bench: <text>`, behind `[<partition>] ` in a
/// partition.
fn line_of(prefix: Option<&str>, text: &str) -> String {
    match prefix {
        Some(name) => format!("[{name}] bench: {text}"),
        None => format!("bench: {text}"),
    }
}

/// The result names a `run=a,b,..` boot argument asks for (`boot` and `compute` give two).
fn expected_results(bootargs: &str) -> Vec<String> {
    let run = bootargs
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("run="))
        .unwrap_or("boot,timer-poll,timer-irq,hypercall,mmio,compute,console-write,ipi");
    run.split(',')
        .filter(|name| !name.is_empty())
        .flat_map(|name| match name {
            "boot" => vec![
                "boot-first-instruction".to_owned(),
                "boot-first-line".to_owned(),
            ],
            "compute" => vec!["compute-cpu".to_owned(), "compute-memory".to_owned()],
            other => vec![other.to_owned()],
        })
        .collect()
}

/// Checks that QEMU will load the flat image where it is linked: an arm64 Image header whose
/// `text_offset` is the load address's offset in its 2 MiB window, past QEMU's boot stub.
fn check_native_placement(image: &[u8], load_address: u64) -> Result<()> {
    let (text_offset, _) = bulkhead_tools::pack::image_header(image)
        .context("the bench guest has no arm64 Image header, so QEMU cannot boot it natively")?;
    const QEMU_VIRT_RAM: u64 = 0x4000_0000;
    const BOOT_STUB: u64 = 0x1000;
    if text_offset != load_address % 0x20_0000
        || text_offset < BOOT_STUB
        || load_address - text_offset != QEMU_VIRT_RAM
    {
        bail!(
            "the bench guest is linked at {load_address:#x} with text_offset {text_offset:#x}: \
             QEMU virt would load it at {:#x}",
            QEMU_VIRT_RAM + text_offset
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lists_become_result_names() {
        assert_eq!(
            expected_results("run=boot,timer-poll samples=10"),
            ["boot-first-instruction", "boot-first-line", "timer-poll"]
        );
        assert_eq!(expected_results("wait=input run=ipi"), ["ipi"]);
        assert_eq!(
            expected_results("run=compute"),
            ["compute-cpu", "compute-memory"]
        );
        assert_eq!(expected_results("").len(), 10);
    }

    #[test]
    fn native_machines_have_no_el2() {
        let machine = qemu::machine_args(qemu::DEFAULT_CPU, 2, 16, std::path::Path::new("x.img"));
        let index = machine.iter().position(|a| a == "-M").unwrap();
        // What native_args takes out must be there to take.
        assert!(
            machine[index + 1].contains("virtualization=on,"),
            "{machine:?}"
        );
    }

    #[test]
    fn console_lines() {
        assert_eq!(line_of(Some("bench"), "done"), "[bench] bench: done");
        assert_eq!(line_of(None, "done"), "bench: done");
    }

    fn image(text_offset: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        bytes[56..60].copy_from_slice(b"ARM\x64");
        bytes
    }

    #[test]
    fn native_placement() {
        check_native_placement(&image(0x8_0000), 0x4008_0000).unwrap();
        // Linked where QEMU's boot stub is.
        assert!(check_native_placement(&image(0), 0x4000_0000).is_err());
        // Header and link address disagree.
        assert!(check_native_placement(&image(0x8_0000), 0x4010_0000).is_err());
        assert!(check_native_placement(&[0u8; 64], 0x4008_0000).is_err());
    }
}
