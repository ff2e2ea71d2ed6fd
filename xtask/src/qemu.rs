//! `cargo xtask run`: the QEMU command line for a built board and running QEMU with its output
//! streamed through, its stdin piped in when ours is not a terminal, and an optional timeout.
//!
//! The machine of a built board comes from its platform ([`Machine`]): QEMU `virt` with
//! virtualization (EL2) and the GIC version of the board's platform (`gic-version=3`, or 2 for
//! `platforms/qemu-virt-gicv2.dtsi`), its number of CPUs and RAM size from the board config's
//! `/cpus` and `/memory` nodes; or `raspi4b` for a Raspberry Pi 4 board, a fixed machine. QEMU
//! loads the image itself (`-kernel`), or on `virt` with `--uboot` U-Boot does
//! ([`crate::uboot`]). The board's `qemu` node may add arguments (e.g. a disk, see
//! [`crate::qemu_node`]); arguments after `--` come last. [`run_qemu`] runs any QEMU command
//! line this way (the SD-card boot of [`crate::image`] uses it too).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bulkhead_config::{BoardConfig, HostRange};

use crate::board::display_path;
use crate::build::Built;
use crate::platform::{self, Platform};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-aarch64";
/// The exit status `run` ends with when `--timeout` stopped QEMU (as coreutils' `timeout`).
pub const TIMEOUT_EXIT: u8 = 124;

/// How long to wait, once QEMU has exited, for the rest of its output.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The CPU model QEMU emulates unless `--cpu` says otherwise.
pub const DEFAULT_CPU: &str = "cortex-a72";

/// How to run QEMU.
pub struct RunOptions {
    /// QEMU's `-cpu` model.
    pub cpu: String,
    pub timeout: Option<Duration>,
    pub gdb: bool,
    pub extra_args: Vec<String>,
    /// Boot through U-Boot instead of QEMU's `-kernel` loader.
    pub uboot: Option<UBootFiles>,
}

impl RunOptions {
    /// A plain boot: the default CPU, QEMU's `-kernel` loader, no timeout, no gdb, nothing
    /// extra (how the benchmarks boot a board).
    pub fn plain() -> Self {
        Self {
            cpu: DEFAULT_CPU.into(),
            timeout: None,
            gdb: false,
            extra_args: Vec::new(),
            uboot: None,
        }
    }
}

/// What booting through U-Boot needs ([`crate::uboot`]).
pub struct UBootFiles {
    /// U-Boot's `qemu_arm64` build, given to QEMU as `-bios`.
    pub bios: PathBuf,
    /// The flash bank holding U-Boot's environment (its boot command).
    pub env_flash: PathBuf,
}

/// QEMU's `-smp` and `-m` (MiB) for a board: its CPU count and total RAM.
pub fn machine_size(config: &BoardConfig) -> (usize, u64) {
    (config.platform.cpus.len(), ram_mib(&config.platform.ram))
}

/// Total size of `ram` in MiB, rounded up.
fn ram_mib(ram: &[HostRange]) -> u64 {
    ram.iter()
        .map(|r| r.size)
        .sum::<u64>()
        .div_ceil(1024 * 1024)
}

/// The QEMU machine a board runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `virt` with EL2 and a GIC of this version (2 or 3), the board's CPU count and RAM.
    Virt { gic_version: u8 },
    /// `raspi4b`: four Cortex-A72 and 2 GiB, whatever the board says; QEMU ends on the PM
    /// watchdog's reset (`-no-reboot`), which is how Bulkhead powers a Pi off.
    Raspi4b,
}

impl Machine {
    /// The machine of `config`'s board, on `platform` (`None`: not one xtask knows).
    pub fn of(config: &BoardConfig, platform: Option<&Platform>) -> Result<Machine> {
        let Some(platform) = platform else {
            // Say which platforms there are.
            return Err(platform::of_compatible(&[]).unwrap_err());
        };
        Ok(match platform.qemu_machine {
            "virt" => Machine::Virt {
                gic_version: if config.platform.gic.is_v2() { 2 } else { 3 },
            },
            "raspi4b" => Machine::Raspi4b,
            other => bail!("xtask cannot run QEMU machine {other} ({})", platform.name),
        })
    }

    /// The QEMU machine's name, for `-M` and `deps::ensure_qemu_machine`.
    pub fn name(self) -> &'static str {
        match self {
            Machine::Virt { .. } => "virt",
            Machine::Raspi4b => "raspi4b",
        }
    }

    /// Its arguments, without what to boot: `cpu` (a QEMU `-cpu` model, fixed on `raspi4b`),
    /// `cpus` cores and `ram_mib` MiB on `virt`; console on stdio, no network.
    pub fn args(self, cpu: &str, cpus: usize, ram_mib: u64) -> Result<Vec<String>> {
        match self {
            Machine::Virt { gic_version } => Ok(virt_args(gic_version, cpu, cpus, ram_mib)),
            Machine::Raspi4b => {
                if cpu != DEFAULT_CPU {
                    bail!("QEMU raspi4b has Cortex-A72 cores only: --cpu {cpu} is for virt boards");
                }
                Ok(["-M", "raspi4b", "-nographic", "-no-reboot"]
                    .map(str::to_owned)
                    .to_vec())
            }
        }
    }
}

/// The QEMU machine of the benchmarks' native runs and most boards (virt with EL2 and a GICv3,
/// `cpu` cores (a QEMU `-cpu` model), console on stdio, no network), with `cpus` cores and
/// `ram_mib` MiB of RAM, booting `kernel`.
pub fn machine_args(cpu: &str, cpus: usize, ram_mib: u64, kernel: &Path) -> Vec<String> {
    let mut args = virt_args(3, cpu, cpus, ram_mib);
    args.extend(["-kernel".to_owned(), kernel.to_string_lossy().into_owned()]);
    args
}

/// [`machine_args`] without what to boot, with a GIC of version `gic_version`.
fn virt_args(gic_version: u8, cpu: &str, cpus: usize, ram_mib: u64) -> Vec<String> {
    let machine = format!("virt,virtualization=on,gic-version={gic_version}");
    [
        "-M",
        &machine,
        "-cpu",
        cpu,
        "-smp",
        &cpus.to_string(),
        "-m",
        &ram_mib.to_string(),
        "-nographic",
        "-nic",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The hypervisor's boot option for our stdout: `bulkhead.console=plain` when it is not a
/// terminal (a pipe, a file, CI), so nothing but plain text reaches it; `None` on a terminal.
pub fn console_boot_option() -> Option<&'static str> {
    (!std::io::stdout().is_terminal()).then_some("bulkhead.console=plain")
}

/// The full QEMU argument list (without the program name).
pub fn qemu_args(built: &Built, options: &RunOptions) -> Result<Vec<String>> {
    let (cpus, ram_mib) = machine_size(&built.config);
    let machine = Machine::of(&built.config, built.platform)?;
    let mut args = machine.args(&options.cpu, cpus, ram_mib)?;
    match &options.uboot {
        None => args.extend([
            "-kernel".to_owned(),
            built.image.to_string_lossy().into_owned(),
        ]),
        Some(_) if !matches!(machine, Machine::Virt { .. }) => {
            bail!("--uboot boots through Debian's u-boot-qemu, which is for QEMU virt boards")
        }
        Some(uboot) => args.extend(crate::uboot::qemu_args(
            &uboot.bios,
            &uboot.env_flash,
            &built.image,
        )),
    }
    if let (None, Some(option)) = (&options.uboot, console_boot_option()) {
        // Through U-Boot, the option is in its environment's `bootargs` instead.
        args.extend(["-append".to_owned(), option.to_owned()]);
    }
    // A board that boots from an SD card has its card in the machine, as on hardware
    // (snapshot=on: what the guests write stays out of the file).
    if let Some(card) = &built.card {
        args.extend([
            "-drive".to_owned(),
            format!(
                "file={},if=sd,format=raw,snapshot=on",
                card.image.to_string_lossy()
            ),
        ]);
    }
    if options.gdb {
        args.push("-s".into());
        args.push("-S".into());
    }
    // The board's own extras (its `qemu` node), then the command line's.
    args.extend(built.qemu_args.iter().cloned());
    args.extend(options.extra_args.iter().cloned());
    Ok(args)
}

/// Where the hypervisor ELF is linked (its first loadable segment), if it can be read.
fn link_address(elf: &Path) -> Option<u64> {
    let bytes = std::fs::read(elf).ok()?;
    bulkhead_tools::elf::flatten(&bytes)
        .ok()
        .map(|f| f.load_address)
}

/// How to attach gdb to a QEMU started with `--gdb`.
fn gdb_instructions(built: &Built) -> String {
    let elf = display_path(&built.hypervisor_elf);
    // The image runs where the boot loader put it; symbols are moved there from its link
    // address.
    let symbols = match link_address(&built.hypervisor_elf) {
        Some(link) if link != built.load_address => {
            let offset = built.load_address.wrapping_sub(link) as i64;
            format!("-ex 'symbol-file -o {offset:#x} {elf}'")
        }
        _ => elf,
    };
    let mut command = format!("gdb-multiarch -q {symbols} -ex 'target remote :1234'");
    for guest in &built.guest_elfs {
        command.push_str(&format!(" -ex 'add-symbol-file {}'", display_path(guest)));
    }
    format!(
        "xtask: QEMU is halted and waits for gdb on localhost:1234. Attach from the repository \
         root with:\n\n    {command}\n\n\
         (gdb-multiarch is in Debian's package of that name: apt-get install gdb-multiarch.)\n\
         Partitions start with their MMU off, so a guest's link addresses are its guest-physical \
         addresses and its symbols line up once it runs.\n"
    )
}

/// Builds the command line, runs QEMU and turns how it ended into our exit code.
pub fn run(built: &Built, options: &RunOptions) -> Result<ExitCode> {
    let machine = Machine::of(&built.config, built.platform)?;
    crate::deps::ensure_qemu_machine(machine.name())?;
    let args = qemu_args(built, options)?;
    if options.gdb {
        eprint!("{}", gdb_instructions(built));
    }
    let how = if options.uboot.is_some() {
        " through U-Boot"
    } else {
        ""
    };
    // Through U-Boot, piped input waits for the hypervisor: U-Boot would take it as a key
    // that stops autoboot, and then as commands.
    let input_after = options
        .uboot
        .as_ref()
        .map(|_| crate::uboot::HANDOVER_MESSAGE);
    run_qemu(
        &format!("board {}{how}", built.board.name),
        &args,
        options.timeout,
        input_after,
    )
}

/// Runs QEMU with `args` (announced as "booting `what`"), its output streamed through and our
/// stdin passed on once it first prints (with `input_after`: once it prints after having
/// printed that), stopping it after `timeout`; QEMU's exit status becomes ours
/// ([`TIMEOUT_EXIT`] for the timeout).
pub fn run_qemu(
    what: &str,
    args: &[String],
    timeout: Option<Duration>,
    input_after: Option<&'static str>,
) -> Result<ExitCode> {
    eprintln!("xtask: booting {what}: {QEMU} {}", args.join(" "));

    let stdin_is_terminal = std::io::stdin().is_terminal();
    let mut cmd = Command::new(QEMU);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(if stdin_is_terminal {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;

    // Piped input is held back until the machine first prints: the console UART is up then. A
    // UART that is not enabled yet drops what it receives, so input written at QEMU's start
    // would be lost.
    let (console_up_tx, console_up_rx) = mpsc::channel::<()>();
    if let Some(mut qemu_stdin) = child.stdin.take() {
        // Nobody joins this thread: it may sit in a read of our stdin after QEMU is gone, and
        // ends with the process.
        std::thread::spawn(move || {
            if console_up_rx.recv().is_err() {
                return;
            }
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if qemu_stdin.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        let _ = qemu_stdin.flush();
                    }
                }
            }
            // Dropping `qemu_stdin` closes QEMU's stdin: it sees end of file, as we did.
        });
    }
    let (copied_tx, copied_rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            copy_out(out, console_up_tx, input_after.map(str::as_bytes));
            let _ = copied_tx.send(());
        });
    }

    let outcome = wait(&mut child, timeout);
    // QEMU has exited (or was killed): drain whatever it wrote last before reporting. Only a
    // process QEMU started could keep the pipe open longer; do not wait for that forever.
    let _ = copied_rx.recv_timeout(DRAIN_TIMEOUT);
    let _ = std::io::stdout().flush();
    match outcome? {
        Outcome::Exited(status) => Ok(exit_code(status)),
        Outcome::TimedOut(timeout) => {
            eprintln!("xtask: timeout after {} s, QEMU stopped", timeout.as_secs());
            Ok(ExitCode::from(TIMEOUT_EXIT))
        }
    }
}

/// Copies QEMU's stdout to ours chunk by chunk, flushing each, until QEMU closes it. Signals
/// `first_output` when the first bytes arrive, or with `after`, the first bytes after `after`.
fn copy_out(mut from: impl Read, first_output: mpsc::Sender<()>, after: Option<&[u8]>) {
    let stdout = std::io::stdout();
    let mut buf = [0u8; 4096];
    let mut waiting = after.map(Waiting::new);
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if waiting.as_mut().is_none_or(|w| w.output(&buf[..n])) {
                    waiting = None;
                    let _ = first_output.send(());
                }
                let mut out = stdout.lock();
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// Watches output for a marker; then says when more output arrives.
struct Waiting<'a> {
    marker: &'a [u8],
    /// The end of the output so far, as long as the marker (to find it across chunks).
    tail: Vec<u8>,
    seen: bool,
}

impl<'a> Waiting<'a> {
    fn new(marker: &'a [u8]) -> Self {
        Waiting {
            marker,
            tail: Vec::new(),
            seen: false,
        }
    }

    /// Takes the next chunk of output; true once output other than white space has come after
    /// the marker.
    fn output(&mut self, chunk: &[u8]) -> bool {
        if self.seen {
            return chunk.iter().any(|b| !b.is_ascii_whitespace());
        }
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(chunk);
        if let Some(at) = joined
            .windows(self.marker.len())
            .position(|w| w == self.marker)
        {
            self.seen = true;
            return self.output(&joined[at + self.marker.len()..]);
        }
        let keep = joined.len().saturating_sub(self.marker.len());
        self.tail = joined[keep..].to_vec();
        false
    }
}

enum Outcome {
    Exited(ExitStatus),
    TimedOut(Duration),
}

/// Waits for QEMU, killing it when `timeout` passes first.
fn wait(child: &mut Child, timeout: Option<Duration>) -> Result<Outcome> {
    let Some(timeout) = timeout else {
        return Ok(Outcome::Exited(child.wait().context("waiting for QEMU")?));
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            return Ok(Outcome::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // It may have exited just now; either way, make sure it is gone.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Outcome::TimedOut(timeout));
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// QEMU's exit status as ours; death by signal N becomes 128 + N, as in a shell.
fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            eprintln!("xtask: QEMU was killed by signal {signal}");
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(0)), ExitCode::from(0u8));
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), ExitCode::from(3u8));
        // SIGKILL
        assert_eq!(exit_code(ExitStatus::from_raw(9)), ExitCode::from(137u8));
    }

    #[test]
    fn wait_times_out_and_kills() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let start = Instant::now();
        let outcome = wait(&mut child, Some(Duration::from_millis(200))).unwrap();
        assert!(matches!(outcome, Outcome::TimedOut(_)));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn wait_returns_the_status() {
        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        match wait(&mut child, Some(Duration::from_secs(10))).unwrap() {
            Outcome::Exited(status) => assert_eq!(status.code(), Some(7)),
            Outcome::TimedOut(_) => panic!("timed out"),
        }
    }

    #[test]
    fn input_waits_for_output_after_the_marker() {
        let mut w = Waiting::new(b"Starting kernel ...");
        assert!(!w.output(b"U-Boot 2023.01\r\nHit any key"));
        assert!(!w.output(b"\r\nStarting ker"));
        assert!(!w.output(b"nel ...\r\n\r\n"));
        assert!(w.output(b"[bulkhead] INFO  Bulkhead starting"));
        let mut w = Waiting::new(b"go");
        assert!(w.output(b"ready, go!"));
    }

    #[test]
    fn each_board_runs_on_its_platforms_machine() {
        for (board, machine, dash_m) in [
            (
                "qemu-virt-linux",
                Machine::Virt { gic_version: 3 },
                "virt,virtualization=on,gic-version=3",
            ),
            (
                "qemu-virt-gicv2-linux",
                Machine::Virt { gic_version: 2 },
                "virt,virtualization=on,gic-version=2",
            ),
            ("rpi4-linux", Machine::Raspi4b, "raspi4b"),
        ] {
            let dts = crate::board::repo_root().join(format!("board-configs/{board}.dts"));
            let dtb = bulkhead_tools::dts::compile(&dts).unwrap();
            let config = bulkhead_config::load(&dtb).unwrap();
            let platform = crate::platform::of_dtb(&dtb).ok();
            assert_eq!(Machine::of(&config, platform).unwrap(), machine, "{board}");
            let args = machine.args(DEFAULT_CPU, 4, 1024).unwrap();
            assert_eq!(args[..2], ["-M".to_owned(), dash_m.to_owned()], "{board}");
        }
        // The Pi's machine is fixed: its size comes from QEMU, it ends on the watchdog's reset.
        let pi = Machine::Raspi4b.args(DEFAULT_CPU, 4, 1024).unwrap();
        assert!(pi.contains(&"-no-reboot".to_owned()));
        assert!(!pi.contains(&"-smp".to_owned()) && !pi.contains(&"-m".to_owned()));
        let err = Machine::Raspi4b
            .args("max", 4, 1024)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Cortex-A72"), "{err}");
    }

    #[test]
    fn ram_is_summed_in_mib() {
        let ram = [
            HostRange::new(bulkhead_config::HostPhysAddr(0x4000_0000), 0x4000_0000),
            HostRange::new(bulkhead_config::HostPhysAddr(0x1_0000_0000), 0x1000_0000),
        ];
        assert_eq!(ram_mib(&ram), 1024 + 256);
        assert_eq!(
            ram_mib(&[HostRange::new(bulkhead_config::HostPhysAddr(0), 1)]),
            1
        );
    }
}
