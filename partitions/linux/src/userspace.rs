//! Userspace programs of this workspace that go into the initramfs: the IPC demo
//! (`partitions/linux/ipc-demo`, package `bulkhead-ipc-demo`), cross-built with cargo as a static
//! `aarch64-unknown-linux-musl` binary (linked with rust-lld, see `.cargo/config.toml`) and added
//! as a second, small cpio archive appended to the cached base initramfs. The kernel unpacks
//! concatenated archives in order, so a change to the demo re-makes only that small part.

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

/// The workspace root (this crate lives in `partitions/linux`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("partitions/linux is two levels below the workspace root")
        .to_path_buf()
}

/// Builds the demo (incrementally: a no-op when nothing changed) and returns the binary.
pub fn build_demo() -> Result<Vec<u8>> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--target", TARGET])
        .args(["-p", DEMO_PACKAGE, "--bin", DEMO_PACKAGE])
        .current_dir(&root)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} to build {DEMO_PACKAGE}",
                cargo.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("E0463") || stderr.contains("target may not be installed") {
            bail!(
                "building {DEMO_PACKAGE} for {TARGET} failed: the Rust target is not installed; \
                 run `rustup target add {TARGET}` (cargo xtask does it when run as usual)"
            );
        }
        bail!(
            "building {DEMO_PACKAGE} for {TARGET} failed ({}):\n{stderr}",
            output.status
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target_dir.join(TARGET).join("release").join(DEMO_PACKAGE);
    std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))
}

/// The overlay archive: the demo binary (directories exist in the base archive already).
pub fn overlay(demo: &[u8]) -> Result<Vec<u8>> {
    let mut w = CpioWriter::new(Vec::new());
    w.file(DEMO_PATH.trim_start_matches('/'), 0o755, demo)?;
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::tests::parse;

    #[test]
    fn overlay_holds_the_demo() {
        let entries = parse(&overlay(b"\x7fELF demo").unwrap());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "bin/bulkhead-ipc-demo");
        assert_eq!(entries[0].1, 0o100755);
        assert_eq!(entries[0].5, b"\x7fELF demo");
        assert!(workspace_root()
            .join("partitions/linux/ipc-demo/Cargo.toml")
            .is_file());
    }
}
