//! Checking board configs: compile with `dtc`, parse and validate with `bulkhead-config`, and
//! make sure every image and initrd a partition names can be found.
//!
//! Errors name the file and the device-tree node at fault: `<file>: node <node>: <reason>`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use bulkhead_config::BoardConfig;

use crate::dts;

/// Compiles and validates the board config at `path`, returning the config and its DTB.
pub fn check_file(path: &Path) -> Result<(BoardConfig, Vec<u8>)> {
    let dtb = dts::compile(path)?;
    let config = bulkhead_config::load(&dtb).map_err(|e| anyhow!("{}: {}", path.display(), e))?;
    Ok((config, dtb))
}

/// The files behind one partition's `image` and `initrd` strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionFiles {
    pub image: PathBuf,
    pub initrd: Option<PathBuf>,
}

/// Resolves every partition's `image` and `initrd` with `resolve` (which returns `None` for a
/// name it cannot find), in partition order. `file` is the board config, for error messages.
pub fn check_images(
    config: &BoardConfig,
    resolve: impl Fn(&str) -> Option<PathBuf>,
    file: &Path,
) -> Result<Vec<PartitionFiles>> {
    let mut out = Vec::with_capacity(config.partitions.len());
    for p in &config.partitions {
        let find = |what: &str, name: &str| {
            resolve(name).ok_or_else(|| {
                anyhow!(
                    "{}: node {}: {what} \"{name}\" not found \
                     (no guest crate partitions/{name} and no such file)",
                    file.display(),
                    p.path
                )
            })
        };
        let image = find("image", &p.image)?;
        let initrd = match &p.initrd {
            Some(name) => Some(find("initrd", name)?),
            None => None,
        };
        out.push(PartitionFiles { image, initrd });
    }
    Ok(out)
}

/// The usual resolver for a board config at `board`: a name is a guest crate if
/// `<repo>/partitions/<name>/Cargo.toml` exists (the crate directory is returned), otherwise a
/// file path, absolute or relative to the board config's directory.
pub fn default_resolver(board: &Path) -> impl Fn(&str) -> Option<PathBuf> {
    let board_dir = match board.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let repo = dts::find_repo_root(&board_dir);
    move |name: &str| {
        if name.is_empty() {
            return None;
        }
        if let Some(repo) = &repo {
            let is_crate_name = !name.contains(['/', '\\']) && name != "." && name != "..";
            let krate = repo.join("partitions").join(name);
            if is_crate_name && krate.join("Cargo.toml").is_file() {
                return Some(krate);
            }
        }
        let file = board_dir.join(name);
        file.is_file().then_some(file)
    }
}

/// Whether a path returned by [`default_resolver`] is a guest crate (rather than a file).
pub fn is_guest_crate(path: &Path) -> bool {
    path.is_dir() && path.join("Cargo.toml").is_file()
}

/// Checks a board config file completely: config, then images. Returns the config.
pub fn check_all(path: &Path) -> Result<BoardConfig> {
    let (config, _) = check_file(path)?;
    check_images(&config, default_resolver(path), path)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sample_config;

    #[test]
    fn images_resolved_or_refused() {
        let mut config = sample_config();
        let file = Path::new("boards/x.dts");
        let files =
            check_images(&config, |n| Some(PathBuf::from(format!("/r/{n}"))), file).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].image, PathBuf::from("/r/hello"));
        assert_eq!(files[1].initrd, Some(PathBuf::from("/r/rootfs.cpio")));

        let err = check_images(&config, |n| (n == "hello").then(|| n.into()), file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "boards/x.dts: node /hypervisor/linux: image \"Image\" not found \
             (no guest crate partitions/Image and no such file)"
        );
        config.partitions[1].image = "hello".into();
        let err = check_images(&config, |n| (n == "hello").then(|| n.into()), file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "boards/x.dts: node /hypervisor/linux: initrd \"rootfs.cpio\" not found \
             (no guest crate partitions/rootfs.cpio and no such file)"
        );
    }

    #[test]
    fn default_resolver_finds_guest_crates_and_files() {
        let board =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs/qemu-virt-hello.dts");
        let resolve = default_resolver(&board);
        let hello = resolve("hello").expect("partitions/hello");
        assert!(is_guest_crate(&hello));
        let dtsi = resolve("platforms/qemu-virt.dtsi").expect("a file next to the board");
        assert!(dtsi.is_file() && !is_guest_crate(&dtsi));
        assert_eq!(resolve("no-such-thing"), None);
        assert_eq!(resolve(""), None);
    }

    fn have_dtc() -> bool {
        let ok = std::process::Command::new("dtc")
            .arg("--version")
            .output()
            .is_ok();
        if !ok {
            eprintln!("dtc not installed; skipping");
        }
        ok
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn qemu_virt_hello_is_accepted() {
        if !have_dtc() {
            return;
        }
        let board = repo().join("board-configs/qemu-virt-hello.dts");
        let (config, dtb) = check_file(&board).unwrap();
        assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        let names: Vec<_> = config.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hello-a", "hello-b"]);
        let files = check_images(&config, default_resolver(&board), &board).unwrap();
        assert!(files.iter().all(|f| is_guest_crate(&f.image)));
        assert_eq!(check_all(&board).unwrap(), config);
    }

    #[test]
    fn config_errors_name_file_and_node() {
        if !have_dtc() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("bulkhead-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let platform = repo().join("board-configs/platforms/qemu-virt.dtsi");
        let board = dir.join("clash.dts");
        let text = format!(
            "/dts-v1/;\n/include/ \"{}\"\n/ {{ hypervisor {{\n\
             compatible = \"bulkhead,hypervisor\"; memory = <0 0x40000000 0 0x4000000>;\n\
             console = <&uart0>; log-level = \"info\";\n\
             a {{ compatible = \"bulkhead,partition\"; cpus = <&cpu0>; image = \"hello\";\n\
                 memory = <0 0x40000000 0 0x1000000 0 0x48000000>; }};\n\
             b {{ compatible = \"bulkhead,partition\"; cpus = <&cpu0>; image = \"hello\";\n\
                 memory = <0 0x40000000 0 0x1000000 0 0x49000000>; }};\n}}; }};\n",
            platform.display()
        );
        std::fs::write(&board, text).unwrap();
        let err = check_file(&board).unwrap_err().to_string();
        let prefix = format!("{}: node /hypervisor/", board.display());
        assert!(err.starts_with(&prefix), "{err}");
        assert!(err.contains("cpu"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn check_file_names_the_file() {
        let err = check_file(Path::new("/nonexistent/board.dts")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/board.dts"),
            "{err}"
        );
    }
}
