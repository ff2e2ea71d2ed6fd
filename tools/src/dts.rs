//! Compiling board configs from device-tree source with `dtc`.
//!
//! Board configs `/include/` platform descriptions such as `platforms/qemu-virt.dtsi`, so `dtc`
//! is given two include directories: the directory of the file being compiled and the
//! repository's `board-configs/` directory (found by walking up from the file).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Environment variable naming the `dtc` binary to run instead of `dtc` from `PATH`.
pub const DTC_ENV: &str = "BULKHEAD_DTC";

/// Compiles the device-tree source at `path` to a flattened device tree blob.
///
/// Fails with `dtc`'s diagnostics if the source does not compile, and with a hint to install
/// `dtc` if it cannot be run.
pub fn compile(path: &Path) -> Result<Vec<u8>> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let dtc = std::env::var_os(DTC_ENV).unwrap_or_else(|| "dtc".into());
    let mut cmd = Command::new(&dtc);
    cmd.args(["-q", "-I", "dts", "-O", "dtb"]);
    for dir in include_dirs(path) {
        cmd.arg("-i").arg(dir);
    }
    cmd.args(["-o", "-"]).arg(path);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "cannot compile {}: the device-tree compiler `{}` is not installed \
             (install the `device-tree-compiler` package, or set {DTC_ENV})",
            path.display(),
            Path::new(&dtc).display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot run `{}`", Path::new(&dtc).display()))
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "{}: dtc failed ({}):\n{}",
            path.display(),
            output.status,
            stderr.trim_end()
        );
    }
    if output.stdout.is_empty() {
        bail!("{}: dtc produced no output", path.display());
    }
    Ok(output.stdout)
}

/// The `-i` directories for compiling `path`: its own directory, then `board-configs/` of the
/// repository it lies in (if any, and if different).
pub fn include_dirs(path: &Path) -> Vec<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![parent.clone()];
    if let Some(root) = find_repo_root(&parent) {
        let configs = root.join("board-configs");
        let same = match (configs.canonicalize(), parent.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            dirs.push(configs);
        }
    }
    dirs
}

/// The Bulkhead repository containing `start` (a file or directory): the nearest ancestor with
/// a `Cargo.toml` and a `board-configs/` directory.
pub fn find_repo_root(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("board-configs").is_dir())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_dirs_find_board_configs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dirs = include_dirs(&root.join("board-configs/platforms/qemu-virt.dtsi"));
        assert_eq!(dirs.len(), 2);
        assert!(dirs[1].ends_with("board-configs"));
        // A file directly in board-configs/ needs only its own directory.
        let dirs = include_dirs(&root.join("board-configs/qemu-virt-hello.dts"));
        assert_eq!(dirs.len(), 1);
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = compile(Path::new("/nonexistent/board.dts")).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }

    #[test]
    fn dtc_errors_are_reported() {
        if Command::new("dtc").arg("--version").output().is_err() {
            eprintln!("dtc not installed; skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bulkhead-dts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.dts");
        std::fs::write(&bad, "/dts-v1/;\n/ { oops = <1 ; };\n").unwrap();
        let err = compile(&bad).unwrap_err().to_string();
        assert!(err.contains("dtc failed"), "{err}");
        assert!(err.contains("bad.dts"), "{err}");
        let good = dir.join("good.dts");
        std::fs::write(&good, "/dts-v1/;\n/ { x = <1>; };\n").unwrap();
        let dtb = compile(&good).unwrap();
        assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
