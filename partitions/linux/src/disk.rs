//! Small raw disk images for the guest: an unpartitioned ext2 file system made with
//! `mke2fs -d` (e2fsprogs), holding one file.
//!
//! Why ext2: Debian's arm64 kernel builds every disk file system as a module, and of those
//! ext4 (which also mounts ext2, `CONFIG_EXT4_USE_FOR_EXT2=y`) has a short, always-present
//! dependency chain (`crc16`, `mbcache`, `jbd2`) and is the one most likely to be built into
//! a kernel someone brings instead. `mke2fs -d` fills the file system from a directory
//! without root or loop devices, and e2fsprogs is installed on every Debian system.
//! ext2 rather than ext4 keeps it free of journal and `metadata_csum`, so mounting needs no
//! crc32c driver and a read-only mount has nothing to replay.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds a program in `PATH` or the sbin directories (not in a non-root user's `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn mke2fs() -> Result<PathBuf> {
    if let Some(p) = find_program("mke2fs") {
        return Ok(p);
    }
    if !crate::apt::is_root() {
        bail!("mke2fs not found: install e2fsprogs (sudo apt-get install e2fsprogs)");
    }
    eprintln!("bulkhead-linux-guest: apt-get install -y e2fsprogs");
    crate::apt::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "e2fsprogs"]),
    )?;
    find_program("mke2fs").context("mke2fs still missing after installing e2fsprogs")
}

/// Writes a raw ext2 image to `path` whose root directory holds `file_name` with
/// `contents`. The guest's `/init` mounts it read-only on `/mnt`, so Linux reads it back as
/// `/mnt/<file_name>`. The image is at least 1 MiB.
pub fn make_disk_image(path: &Path, file_name: &str, contents: &str) -> Result<()> {
    ensure!(
        !file_name.is_empty()
            && file_name != "."
            && file_name != ".."
            && !file_name.contains(['/', '\0']),
        "bad file name {file_name:?}: must be a plain name"
    );
    let mke2fs = mke2fs()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let staging = parent.join(format!(
        ".{}.bulkhead-disk-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("disk"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let result = (|| -> Result<()> {
        std::fs::write(staging.join(file_name), contents)?;
        // 1 KiB blocks: room for the data twice over plus metadata, at least 1 MiB.
        let blocks = (contents.len() as u64 / 1024 * 2 + 512).max(1024);
        let _ = std::fs::remove_file(path);
        std::fs::File::create(path)?.set_len(blocks * 1024)?;
        crate::apt::run(
            Command::new(&mke2fs)
                .args([
                    "-q", "-F", "-t", "ext2", "-b", "1024", "-m", "0", "-L", "bulkhead",
                ])
                .args(["-E", "root_owner=0:0", "-d"])
                .arg(&staging)
                .arg(path)
                .arg(blocks.to_string()),
        )
        .context("making the ext2 disk image")?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_as_names() {
        let p = std::env::temp_dir().join("never-written.img");
        assert!(make_disk_image(&p, "a/b", "x").is_err());
        assert!(make_disk_image(&p, "", "x").is_err());
        assert!(make_disk_image(&p, "..", "x").is_err());
    }

    /// Builds an image and reads the file back with e2fsprogs' debugfs.
    #[test]
    fn file_reads_back() {
        let (Some(_), Some(debugfs)) = (find_program("mke2fs"), find_program("debugfs")) else {
            eprintln!("e2fsprogs not installed: skipping");
            return;
        };
        let dir = std::env::temp_dir().join(format!("bulkhead-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("disk.img");
        let text = "hello from the host\nline two\n";
        make_disk_image(&img, "greeting.txt", text).unwrap();
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 1024 * 1024);
        let out = Command::new(debugfs)
            .args(["-R", "cat /greeting.txt"])
            .arg(&img)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        // Staging directory is gone.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
