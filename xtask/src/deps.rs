//! Host tool installation: QEMU and the device-tree compiler from apt, the Rust target from
//! rustup. Installs what is missing when it can (as root), otherwise says exactly what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::board::{repo_root, TARGETS};

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

/// Whether we run as root (`id -u` prints 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
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
}
