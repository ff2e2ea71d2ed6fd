//! `cargo xtask`: the developer entry point for Bulkhead.
//!
//! `build` packs a board config, the hypervisor and its partitions' images into one bootable
//! file, `run` boots that file in QEMU, `check` validates board configs, `test` runs the whole
//! test suite and `bench` measures. Every command makes sure the host tools it needs are
//! installed first (see [`deps`]).

mod bench;
mod board;
mod build;
mod deps;
mod qemu;
mod qemu_node;
mod test;

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
        /// Extra arguments passed to QEMU unchanged (after `--`).
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
            qemu_args,
        } => {
            deps::ensure_tools()?;
            let built = build::build(&board.board, board.unchecked)?;
            let options = qemu::RunOptions {
                timeout: timeout.map(std::time::Duration::from_secs),
                gdb,
                extra_args: qemu_args,
            };
            qemu::run(&built, &options)
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
