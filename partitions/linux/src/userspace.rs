//! Userspace programs of this workspace that go into the initramfs: the IPC demo
//! (`partitions/linux/ipc-demo`, package `bulkhead-ipc-demo`) and the monitoring table
//! (`partitions/linux/top`, package `bulkhead-top`), cross-built with cargo as static
//! `aarch64-unknown-linux-musl` binaries (linked with rust-lld, see `.cargo/config.toml`) and
//! added as a second, small cpio archive appended to the cached base initramfs. The kernel
//! unpacks concatenated archives in order, so a change to a program re-makes only that small
//! part.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cpio::CpioWriter;

/// The demo's package (and binary) name.
pub const DEMO_PACKAGE: &str = "bulkhead-ipc-demo";
/// The Rust target of the guest's userspace programs.
pub const TARGET: &str = "aarch64-unknown-linux-musl";
/// Where the demo lands in the initramfs.
pub const DEMO_PATH: &str = "/bin/bulkhead-ipc-demo";
/// The monitoring tool's package (and binary) name.
pub const TOP_PACKAGE: &str = "bulkhead-top";
/// Where it lands in the initramfs.
pub const TOP_PATH: &str = "/bin/bulkhead-top";

/// Every program: its package (and binary) and where it goes in the initramfs.
pub const PROGRAMS: [(&str, &str); 2] = [(DEMO_PACKAGE, DEMO_PATH), (TOP_PACKAGE, TOP_PATH)];

/// The workspace root (this crate lives in `partitions/linux`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("partitions/linux is two levels below the workspace root")
        .to_path_buf()
}

/// Builds every program (incrementally: a no-op when nothing changed) and returns each one's
/// place in the initramfs and its binary, in [`PROGRAMS`] order.
pub fn build_programs() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["build", "--release", "--quiet", "--target", TARGET]);
    for (package, _) in PROGRAMS {
        command.args(["-p", package, "--bin", package]);
    }
    let names = PROGRAMS.map(|(package, _)| package).join(", ");
    let output = command
        .current_dir(&root)
        .output()
        .with_context(|| format!("cannot run {} to build {names}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("E0463") || stderr.contains("target may not be installed") {
            bail!(
                "building {names} for {TARGET} failed: the Rust target is not installed; \
                 run `rustup target add {TARGET}` (cargo xtask does it when run as usual)"
            );
        }
        bail!(
            "building {names} for {TARGET} failed ({}):\n{stderr}",
            output.status
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    PROGRAMS
        .iter()
        .map(|&(package, path)| {
            let binary = target_dir.join(TARGET).join("release").join(package);
            let bytes =
                std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
            Ok((path, bytes))
        })
        .collect()
}

/// The overlay archive: the programs at their paths (directories exist in the base archive
/// already).
pub fn overlay(programs: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut w = CpioWriter::new(Vec::new());
    for (path, binary) in programs {
        w.file(path.trim_start_matches('/'), 0o755, binary)?;
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::tests::parse;

    #[test]
    fn overlay_holds_the_programs() {
        let entries = parse(
            &overlay(&[
                (DEMO_PATH, b"\x7fELF demo".to_vec()),
                (TOP_PATH, b"\x7fELF top".to_vec()),
            ])
            .unwrap(),
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "bin/bulkhead-ipc-demo");
        assert_eq!(entries[0].1, 0o100755);
        assert_eq!(entries[0].5, b"\x7fELF demo");
        assert_eq!(entries[1].0, "bin/bulkhead-top");
        assert_eq!(entries[1].5, b"\x7fELF top");
        for dir in ["ipc-demo", "top"] {
            assert!(workspace_root()
                .join("partitions/linux")
                .join(dir)
                .join("Cargo.toml")
                .is_file());
        }
    }
}
