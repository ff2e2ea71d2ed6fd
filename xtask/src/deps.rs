//! Host tool installation: QEMU and the device-tree compiler from apt, the Rust target from
//! rustup; a QEMU new enough for the machine a board needs (QEMU 10 from the release's
//! backports for `raspi4b`), Debian's `u-boot-qemu` for `run --uboot`, and the apt components
//! the SD-card image's firmware comes from. Installs what is missing when it can (as root),
//! otherwise says exactly what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt::{self, is_root, Plan};
use crate::board::{repo_root, TARGETS};
use crate::qemu::QEMU;

/// Host programs we need, with the Debian package that provides each.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("dtc", "device-tree-compiler"),
];

/// Makes sure QEMU, dtc and the bare-metal Rust targets are installed.
pub fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(program, _)| find_in_path(program).is_none())
        .map(|(program, _)| *program)
        .collect();
    if !missing.is_empty() {
        let packages: Vec<&str> = HOST_TOOLS.iter().map(|(_, package)| *package).collect();
        if is_root() {
            eprintln!(
                "xtask: {} missing; installing {} with apt-get",
                missing.join(" and "),
                packages.join(" ")
            );
            apt_get(&["update"])?;
            let mut install = vec!["install", "-y"];
            install.extend(&packages);
            apt_get(&install)?;
            if let Some((program, _)) = HOST_TOOLS
                .iter()
                .find(|(program, _)| find_in_path(program).is_none())
            {
                bail!(
                    "{program} is still missing after installing {}",
                    packages.join(" ")
                );
            }
        } else {
            bail!(
                "{} missing; install with:\n    sudo apt-get install -y {}",
                missing.join(" and "),
                packages.join(" ")
            );
        }
    }
    ensure_rust_target()
}

/// Adds the bare-metal targets to the pinned toolchain if it lacks them.
fn ensure_rust_target() -> Result<()> {
    if find_in_path("rustup").is_none() {
        // Without rustup the toolchain is managed some other way; cargo will say if the target
        // is missing.
        return Ok(());
    }
    // Run in the repository root so rustup picks the toolchain of rust-toolchain.toml.
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(repo_root())
        .output()
        .context("cannot run rustup")?;
    if !output.status.success() {
        bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let installed = String::from_utf8_lossy(&output.stdout);
    for target in TARGETS {
        if installed.lines().any(|line| line.trim() == target) {
            continue;
        }
        eprintln!("xtask: adding the Rust target {target}");
        let status = Command::new("rustup")
            .args(["target", "add", target])
            .current_dir(repo_root())
            .status()
            .context("cannot run rustup")?;
        if !status.success() {
            bail!("`rustup target add {target}` failed ({status})");
        }
    }
    Ok(())
}

/// The machine types the installed QEMU has (`qemu-system-aarch64 -M help`).
pub fn qemu_machines() -> Result<Vec<String>> {
    let out = Command::new(QEMU)
        .args(["-M", "help"])
        .output()
        .with_context(|| format!("cannot run {QEMU}"))?;
    if !out.status.success() {
        bail!("`{QEMU} -M help` failed ({})", out.status);
    }
    Ok(parse_machines(&String::from_utf8_lossy(&out.stdout)))
}

/// Machine names from `-M help` output: the first word of each line after the header.
fn parse_machines(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Supported machines"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The installed QEMU's version line (`QEMU emulator version 10.0.2 (Debian ...)`).
pub fn qemu_version() -> String {
    Command::new(QEMU)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{QEMU} (version unknown)"))
}

/// Makes sure the installed QEMU has the machine type `machine` (e.g. `raspi4b`, which QEMU 9.0
/// added). If not, installs QEMU from this release's backports (bookworm's QEMU is 7.2,
/// bookworm-backports' 10.0), adding that apt source if it is missing; QEMU `virt` keeps working.
pub fn ensure_qemu_machine(machine: &str) -> Result<()> {
    if qemu_machines()?.iter().any(|m| m == machine) {
        return Ok(());
    }
    let backports = format!("{}-backports", apt::codename()?);
    let mut plan = Plan::default();
    plan.add_source_if_missing(&apt::configured_targets()?, &backports, "main");
    plan.run(&["apt-get", "update"]);
    plan.run(&[
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-t",
        &backports,
        "qemu-system-arm",
    ]);
    plan.execute_or_explain(&format!(
        "{} has no machine {machine:?}; {backports}'s QEMU has it",
        qemu_version()
    ))?;
    if !qemu_machines()?.iter().any(|m| m == machine) {
        bail!(
            "{} still has no machine {machine:?} after installing qemu-system-arm from {backports}",
            qemu_version()
        );
    }
    eprintln!("xtask: now {}", qemu_version());
    Ok(())
}

/// Debian's `u-boot-qemu` build of U-Boot for QEMU `virt` (arm64), as `-bios` takes it.
pub const UBOOT_QEMU_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The Debian package it is in.
pub const UBOOT_QEMU_PACKAGE: &str = "u-boot-qemu";

/// The `qemu_arm64` U-Boot, installing `u-boot-qemu` (an architecture-independent package of
/// U-Boot builds for QEMU machines) if it is missing.
pub fn ensure_uboot_qemu() -> Result<PathBuf> {
    let path = PathBuf::from(UBOOT_QEMU_ARM64);
    if path.is_file() {
        return Ok(path);
    }
    let mut plan = Plan::default();
    plan.run(&["apt-get", "update"]);
    plan.run(&[
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        UBOOT_QEMU_PACKAGE,
    ]);
    plan.execute_or_explain(&format!("{UBOOT_QEMU_ARM64} is missing"))?;
    if !path.is_file() {
        bail!("{UBOOT_QEMU_ARM64} is still missing after installing {UBOOT_QEMU_PACKAGE}");
    }
    Ok(path)
}

/// Makes sure apt knows `component` (e.g. `non-free-firmware`) of this release, adding a
/// source for it if none is configured.
pub fn ensure_apt_component(component: &str) -> Result<()> {
    let codename = apt::codename()?;
    let mut plan = Plan::default();
    if plan.add_source_if_missing(&apt::configured_targets()?, &codename, component) {
        plan.run(&["apt-get", "update"]);
    }
    plan.execute_or_explain(&format!(
        "apt has no source for {codename}'s {component} component"
    ))
}

fn apt_get(args: &[&str]) -> Result<()> {
    eprintln!("xtask: apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The first executable file called `program` in `$PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_but_not_nonsense() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-bulkhead").is_none());
    }

    #[test]
    fn machines_are_read_from_qemu_help() {
        let help = "Supported machines are:\n\
                    raspi3b              Raspberry Pi 3B (revision 1.2)\n\
                    raspi4b              Raspberry Pi 4B (revision 1.5)\n\
                    virt                 QEMU 10.0 ARM Virtual Machine (alias of virt-10.0)\n";
        assert_eq!(parse_machines(help), ["raspi3b", "raspi4b", "virt"]);
        assert!(parse_machines("").is_empty());
    }
}
