//! `cargo xtask`: the developer entry point for Bulkhead.
//!
//! `build` packs a board config, the hypervisor and its partitions' images into one bootable
//! file, `run` boots that file in QEMU, `check` validates board configs, `test` runs the whole
//! test suite and `bench` measures. Every command makes sure the host tools it needs are
//! installed first (see [`deps`]).

#![forbid(unsafe_code)]

mod apt;
mod bench;
mod board;
mod build;
mod debian;
mod deps;
mod image;
mod native_linux;
mod platform;
mod qemu;
mod qemu_node;
mod test;
mod uboot;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The board `build` and `run` use when `--board` is not given.
pub const DEFAULT_BOARD: &str = "qemu-virt-linux";

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run, check and test Bulkhead")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the hypervisor and the board's partitions and pack them into one bootable image.
    Build {
        #[command(flatten)]
        board: BoardArgs,
    },
    /// Build, then boot the image in QEMU with the board's CPUs and RAM.
    Run {
        #[command(flatten)]
        board: BoardArgs,
        /// Stop QEMU after this many seconds and exit with status 124.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Start QEMU halted with a gdb server on :1234 and print how to attach.
        #[arg(long)]
        gdb: bool,
        /// The CPU QEMU emulates (a `-cpu` model: cortex-a53, cortex-a76, max, ...).
        #[arg(long, value_name = "MODEL", default_value = qemu::DEFAULT_CPU)]
        cpu: String,
        /// Boot through U-Boot (Debian's u-boot-qemu as QEMU's firmware, `booti`), as on a
        /// development board, instead of QEMU's own loader.
        #[arg(long)]
        uboot: bool,
        /// Extra arguments passed to QEMU unchanged (after `--`).
        #[arg(last = true, value_name = "QEMU ARGS")]
        qemu_args: Vec<String>,
    },
    /// Make a Raspberry Pi SD card: build/<name>/sdcard/ (its files) and build/<name>/sdcard.img
    /// (a whole card with an MBR and a FAT boot partition, for dd).
    Image {
        /// The board whose bulkhead.img the card boots (its platform must boot from an SD card).
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present = "kernel",
            conflicts_with = "kernel"
        )]
        board: Option<String>,
        /// Instead of a board, boot a kernel natively: `linux` (Debian's arm64 kernel with an
        /// initramfs for the platform) or an arm64 Image file. Needs --platform.
        #[arg(long, value_name = "linux|FILE", requires = "platform")]
        kernel: Option<String>,
        /// The platform of --kernel, e.g. `rpi4`.
        #[arg(long, value_name = "NAME")]
        platform: Option<String>,
        /// Then boot the card on the platform's QEMU machine, the way its firmware would.
        #[arg(long)]
        run: bool,
        /// With --run: stop QEMU after this many seconds and exit with status 124.
        #[arg(long, value_name = "SECS", requires = "run")]
        timeout: Option<u64>,
        /// With --run: extra arguments passed to QEMU unchanged (after `--`).
        #[arg(last = true, value_name = "QEMU ARGS")]
        qemu_args: Vec<String>,
    },
    /// Check board configs (device-tree sources) and report the first problem in each.
    Check {
        /// Board config files (.dts).
        #[arg(required = true, value_name = "BOARD.dts")]
        files: Vec<PathBuf>,
    },
    /// Run the whole test suite: host unit tests, target build, QEMU integration tests.
    Test,
    /// Run every benchmark natively and in a partition; print the table and write
    /// target/bench/results.json and results.svg.
    Bench {
        /// Fewer rounds of everything: well under 3 minutes.
        #[arg(long)]
        quick: bool,
        /// Rounds of the wall-clock runs (native and partitioned alternate), default 10, 3 with
        /// --quick; the icount, interference and Linux runs do at most as many.
        #[arg(long, value_name = "N")]
        rounds: Option<usize>,
        /// The QEMU binary to measure with (e.g. another version's).
        #[arg(long, value_name = "PATH", default_value = qemu::QEMU)]
        qemu: String,
    },
}

#[derive(clap::Args)]
struct BoardArgs {
    /// Board name under board-configs/ (e.g. `test/qemu-virt-trespass`) or a path to a .dts file.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BOARD)]
    board: String,
    /// Skip board-config validation and pack the config as it is (to test the boot-time check).
    #[arg(long)]
    unchecked: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build { board } => {
            deps::ensure_tools()?;
            build::build(&board.board, board.unchecked)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            board,
            timeout,
            gdb,
            cpu,
            uboot,
            qemu_args,
        } => {
            deps::ensure_tools()?;
            let uboot_bios = if uboot {
                Some(deps::ensure_uboot_qemu()?)
            } else {
                None
            };
            let built = build::build(&board.board, board.unchecked)?;
            let uboot = match uboot_bios {
                Some(bios) => {
                    let env_flash = built.board.out_dir().join("uboot-env.img");
                    uboot::write_env_flash(&env_flash, qemu::console_boot_option())?;
                    Some(qemu::UBootFiles { bios, env_flash })
                }
                None => None,
            };
            let options = qemu::RunOptions {
                cpu,
                timeout: timeout.map(std::time::Duration::from_secs),
                gdb,
                extra_args: qemu_args,
                uboot,
            };
            qemu::run(&built, &options)
        }
        Command::Image {
            board,
            kernel,
            platform,
            run,
            timeout,
            qemu_args,
        } => {
            deps::ensure_tools()?;
            let payload = match (board, kernel) {
                (Some(board), _) => image::Payload::Board(board),
                (None, Some(kernel)) => image::Payload::Kernel(kernel),
                (None, None) => anyhow::bail!("give --board or --kernel"),
            };
            let made = image::make(&payload, platform.as_deref())?;
            if run {
                image::run(
                    &made,
                    timeout.map(std::time::Duration::from_secs),
                    &qemu_args,
                )
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Check { files } => {
            deps::ensure_tools()?;
            Ok(build::check(&files))
        }
        Command::Test => {
            deps::ensure_tools()?;
            test::run_all()
        }
        Command::Bench {
            quick,
            rounds,
            qemu,
        } => {
            deps::ensure_tools()?;
            bench::run(bench::Options {
                quick,
                rounds,
                qemu,
            })
        }
    }
}
