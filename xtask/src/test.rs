//! `cargo xtask test`: the whole test suite in order (formatting and lints for the host and the
//! targets, host unit tests, the target builds, then the QEMU integration tests one at a time),
//! stopping at the first step that fails.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::board::{HYPERVISOR_TARGET, TARGET};
use crate::build::cargo;

/// One step of the suite: a name and the cargo arguments that run it.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        name: "formatting",
        args: &["fmt", "--all", "--", "--check"],
    },
    Step {
        name: "lints for the host crates",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "lints for the hypervisor target",
        args: &[
            "clippy",
            "--release",
            "--target",
            HYPERVISOR_TARGET,
            "-p",
            "bulkhead-hypervisor",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "lints for the guest target",
        args: &[
            "clippy",
            "--release",
            "--target",
            TARGET,
            "-p",
            "bulkhead-guest-rt",
            "-p",
            "hello",
            "-p",
            "trespasser",
            "-p",
            "ipc-echo",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "host unit tests",
        args: &["test", "--workspace", "--exclude", "bulkhead-tests"],
    },
    Step {
        name: "hypervisor build for the target",
        args: &[
            "build",
            "--release",
            "--target",
            HYPERVISOR_TARGET,
            "-p",
            "bulkhead-hypervisor",
        ],
    },
    Step {
        name: "guest builds for the target",
        args: &[
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            "hello",
            "-p",
            "trespasser",
            "-p",
            "bench",
            "-p",
            "ipc-echo",
        ],
    },
    Step {
        name: "integration tests",
        // QEMU boots are CPU-heavy: one at a time.
        args: &["test", "-p", "bulkhead-tests", "--", "--test-threads=1"],
    },
];

/// Runs every step; the exit code is non-zero when one failed.
pub fn run_all() -> Result<ExitCode> {
    let start = Instant::now();
    for (i, step) in STEPS.iter().enumerate() {
        let label = format!("[{}/{}] {}", i + 1, STEPS.len(), step.name);
        eprintln!("xtask test: {label}: cargo {}", step.args.join(" "));
        let step_start = Instant::now();
        let status = cargo()
            .args(step.args)
            .status()
            .with_context(|| format!("cannot run cargo for {}", step.name))?;
        if !status.success() {
            println!(
                "xtask test: FAILED at {label} ({status}) after {:.0} s",
                start.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::FAILURE);
        }
        eprintln!(
            "xtask test: {label}: ok in {:.0} s",
            step_start.elapsed().as_secs_f64()
        );
    }
    println!(
        "xtask test: all {} steps passed ({}) in {:.0} s",
        STEPS.len(),
        STEPS.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
