//! Checking board configs: compile with `dtc`, parse and validate with `bulkhead-config`, find
//! every image and initrd a partition names (classified by [`ImageSource::classify`], the one
//! place that decides, which `cargo xtask build` uses too), and say plainly which partitions can
//! reach all memory ([`warnings`]).
//!
//! Errors name the file and the device-tree node at fault: `<file>: node <node>: <reason>`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use bulkhead_config::{BoardConfig, PartitionId};

use crate::dts;

/// Compiles and validates the board config at `path`, returning the config and its DTB.
pub fn check_file(path: &Path) -> Result<(BoardConfig, Vec<u8>)> {
    let dtb = dts::compile(path)?;
    let config = bulkhead_config::load(&dtb).map_err(|e| anyhow!("{}: {}", path.display(), e))?;
    Ok((config, dtb))
}

/// The `image`/`initrd` name that means the Linux guest recipe (`partitions/linux`, crate
/// `bulkhead-linux-guest`): its kernel `Image` as an `image`, its initramfs as an `initrd`.
pub const LINUX_RECIPE: &str = "linux";
/// Where guest crates and the Linux recipe live, relative to the repository root.
pub const PARTITIONS_DIR: &str = "partitions";

/// Which partition property a name comes from: it decides what a recipe name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The `image` property: what the partition boots.
    Image,
    /// The `initrd` property: the initial RAM disk loaded with it.
    Initrd,
}

impl Role {
    /// The property name, for messages.
    pub fn property(self) -> &'static str {
        match self {
            Role::Image => "image",
            Role::Initrd => "initrd",
        }
    }
}

/// What a partition's `image` or `initrd` string refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A bare-metal guest crate `partitions/<name>` (a binary crate, `src/main.rs`), built for
    /// the target by `cargo xtask build`; its binary has the same name. Only for `image`.
    Crate(String),
    /// The Linux guest recipe ([`LINUX_RECIPE`]): the kernel `Image` for [`Role::Image`], the
    /// initramfs for [`Role::Initrd`], which `cargo xtask build` downloads and caches.
    LinuxRecipe(Role),
    /// A file, resolved against the board config's directory (it may not exist).
    File(PathBuf),
}

impl ImageSource {
    /// Classifies an `image` or `initrd` string of a board config in `board_dir`, in this
    /// order: [`LINUX_RECIPE`] is the Linux recipe; for `image`, a plain name with
    /// `partitions/<name>/Cargo.toml` and `partitions/<name>/src/main.rs` in the repository the
    /// board config lies in is a guest crate; anything else is a file path relative to
    /// `board_dir`.
    pub fn classify(name: &str, role: Role, board_dir: &Path) -> ImageSource {
        Self::classify_in(
            name,
            role,
            board_dir,
            dts::find_repo_root(board_dir).as_deref(),
        )
    }

    /// [`classify`](Self::classify) with the repository given (`None`: no guest crates).
    pub fn classify_in(name: &str, role: Role, board_dir: &Path, repo: Option<&Path>) -> Self {
        if name == LINUX_RECIPE {
            return ImageSource::LinuxRecipe(role);
        }
        let is_crate = |repo: &Path| {
            let dir = repo.join(PARTITIONS_DIR).join(name);
            dir.join("Cargo.toml").is_file() && dir.join("src/main.rs").is_file()
        };
        if role == Role::Image && is_plain_name(name) && repo.is_some_and(is_crate) {
            ImageSource::Crate(name.to_owned())
        } else {
            ImageSource::File(board_dir.join(name))
        }
    }
}

/// Whether `name` could name a guest crate: letters, digits, `-` and `_` only.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where one partition's blobs come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSources {
    pub image: ImageSource,
    pub initrd: Option<ImageSource>,
}

/// Classifies every partition's `image` and `initrd` (in partition order) and makes sure each
/// can be had: a file must exist, and the Linux recipe needs the repository (`partitions/linux`)
/// that prepares it; a guest crate exists by its classification. `board` is the board config,
/// whose directory relative paths start from and which messages name; `repo` the repository.
pub fn resolve_sources(
    config: &BoardConfig,
    board: &Path,
    repo: Option<&Path>,
) -> Result<Vec<PartitionSources>> {
    let board_dir = board_dir(board);
    let mut out = Vec::with_capacity(config.partitions.len());
    for p in &config.partitions {
        let find = |role: Role, name: &str| -> Result<ImageSource> {
            let source = ImageSource::classify_in(name, role, board_dir, repo);
            let missing = match &source {
                ImageSource::Crate(_) => None,
                ImageSource::LinuxRecipe(_) => {
                    let recipe = repo.map(|r| r.join(PARTITIONS_DIR).join(LINUX_RECIPE));
                    match recipe {
                        Some(dir) if dir.join("Cargo.toml").is_file() => None,
                        Some(dir) => Some(format!("the Linux recipe {} is missing", dir.display())),
                        None => Some(format!(
                            "\"{LINUX_RECIPE}\" is the Linux recipe of the Bulkhead repository, and \
                             {} is not in one",
                            board.display()
                        )),
                    }
                }
                ImageSource::File(path) if path.is_file() => None,
                ImageSource::File(path) => Some(match role {
                    Role::Image if repo.is_some() && is_plain_name(name) => format!(
                        "no guest crate {PARTITIONS_DIR}/{name} and no file {}",
                        path.display()
                    ),
                    _ => format!("no file {}", path.display()),
                }),
            };
            match missing {
                None => Ok(source),
                Some(why) => bail!(
                    "{}: node {}: {} \"{name}\" not found: {why}",
                    board.display(),
                    p.path,
                    role.property(),
                ),
            }
        };
        let image = find(Role::Image, &p.image)?;
        let initrd = match &p.initrd {
            Some(name) => Some(find(Role::Initrd, name)?),
            None => None,
        };
        out.push(PartitionSources { image, initrd });
    }
    Ok(out)
}

/// What a valid config still warrants saying, one line each: every partition that can reach all
/// memory through a bus master (`dma-trusted`), in the words the hypervisor logs at boot.
pub fn warnings(config: &BoardConfig) -> Vec<String> {
    (0..config.partitions.len())
        .filter_map(|i| config.dma_exposure(PartitionId(i)))
        .map(|exposure| exposure.to_string())
        .collect()
}

/// Checks a board config file completely, as `cargo xtask build` would before building: the
/// config, then every image and initrd (the repository is the one the file lies in).
pub fn check_all(path: &Path) -> Result<BoardConfig> {
    let (config, _) = check_file(path)?;
    let repo = dts::find_repo_root(board_dir(path));
    resolve_sources(&config, path, repo.as_deref())?;
    Ok(config)
}

/// The directory of the board config at `board`, which relative paths in it start from.
pub fn board_dir(board: &Path) -> &Path {
    match board.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sample_config;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .canonicalize()
            .unwrap()
    }

    #[test]
    fn images_are_crates_recipes_or_files() {
        let dir = repo().join("board-configs");
        let image = |name| ImageSource::classify(name, Role::Image, &dir);
        let initrd = |name| ImageSource::classify(name, Role::Initrd, &dir);
        assert_eq!(image("hello"), ImageSource::Crate("hello".into()));
        assert_eq!(
            image("images/Image"),
            ImageSource::File(dir.join("images/Image"))
        );
        // A path that happens to reach a crate is still a file path.
        assert_eq!(
            image("../partitions/hello"),
            ImageSource::File(dir.join("../partitions/hello"))
        );
        assert_eq!(
            image("no-such-guest"),
            ImageSource::File(dir.join("no-such-guest"))
        );
        // Library crates under partitions/ are not guests.
        assert_eq!(image("guest-rt"), ImageSource::File(dir.join("guest-rt")));
        // The Linux recipe, which is a crate under partitions/ too, but never cross-built.
        assert_eq!(image("linux"), ImageSource::LinuxRecipe(Role::Image));
        assert_eq!(initrd("linux"), ImageSource::LinuxRecipe(Role::Initrd));
        // A crate name as an initrd is a file.
        assert_eq!(initrd("hello"), ImageSource::File(dir.join("hello")));
        // Outside a repository there are no guest crates.
        assert_eq!(
            ImageSource::classify_in("hello", Role::Image, &dir, None),
            ImageSource::File(dir.join("hello"))
        );
    }

    #[test]
    fn every_image_and_initrd_is_found_or_named() {
        let mut config = sample_config();
        let repo = repo();
        let board = repo.join("board-configs/x.dts");
        // The sample's linux partition boots files that do not exist.
        let err = resolve_sources(&config, &board, Some(&repo)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: node /hypervisor/linux: image \"Image\" not found: no guest crate \
                 partitions/Image and no file {}",
                board.display(),
                repo.join("board-configs/Image").display()
            )
        );
        config.partitions[1].image = "linux".into();
        let err = resolve_sources(&config, &board, Some(&repo)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: node /hypervisor/linux: initrd \"rootfs.cpio\" not found: no file {}",
                board.display(),
                repo.join("board-configs/rootfs.cpio").display()
            )
        );
        config.partitions[1].initrd = Some("platforms/qemu-virt.dtsi".into());
        let sources = resolve_sources(&config, &board, Some(&repo)).unwrap();
        assert_eq!(
            sources,
            [
                PartitionSources {
                    image: ImageSource::Crate("hello".into()),
                    initrd: None
                },
                PartitionSources {
                    image: ImageSource::LinuxRecipe(Role::Image),
                    initrd: Some(ImageSource::File(
                        repo.join("board-configs/platforms/qemu-virt.dtsi")
                    )),
                },
            ]
        );
        // Without the repository, neither guest crates nor the recipe can be had.
        let err = resolve_sources(&config, &board, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("node /hypervisor/hello: image \"hello\" not found: no file"),
            "{err}"
        );
    }

    #[test]
    fn warnings_say_who_can_reach_all_memory() {
        let mut config = sample_config();
        assert_eq!(
            warnings(&config),
            [
                "partition linux can reach all memory, the hypervisor's and other partitions' \
              included: it is `dma-trusted` and owns bus master /virtio_mmio@a000000 (its node \
              says `dma-coherent`), which no IOMMU confines"
            ]
        );
        config.partitions[1].devices.clear();
        assert!(warnings(&config).is_empty());
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
        assert_eq!(check_all(&board).unwrap(), config);
        assert!(warnings(&config).is_empty());
    }

    /// Writes `name` into a fresh temporary directory with the QEMU virt platform included by
    /// absolute path; returns the file.
    fn temp_board(name: &str, hypervisor_node: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bulkhead-check-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let platform = repo().join("board-configs/platforms/qemu-virt.dtsi");
        let board = dir.join(format!("{name}.dts"));
        let text = format!(
            "/dts-v1/;\n/include/ \"{}\"\n/ {{ hypervisor {{\n\
             compatible = \"bulkhead,hypervisor\"; memory = <0 0x40000000 0 0x4000000>;\n\
             console = <&uart0>; log-level = \"info\";\n{hypervisor_node}\n}}; }};\n",
            platform.display()
        );
        std::fs::write(&board, text).unwrap();
        board
    }

    #[test]
    fn config_errors_name_file_and_node() {
        if !have_dtc() {
            return;
        }
        let board = temp_board(
            "clash",
            "a { compatible = \"bulkhead,partition\"; cpus = <&cpu0>; image = \"a.bin\";\n\
                 memory = <0 0x40000000 0 0x1000000 0 0x48000000>; };\n\
             b { compatible = \"bulkhead,partition\"; cpus = <&cpu0>; image = \"b.bin\";\n\
                 memory = <0 0x40000000 0 0x1000000 0 0x49000000>; };",
        );
        let err = check_file(&board).unwrap_err().to_string();
        let prefix = format!("{}: node /hypervisor/", board.display());
        assert!(err.starts_with(&prefix), "{err}");
        assert!(err.contains("cpu"), "{err}");
        std::fs::remove_dir_all(board.parent().unwrap()).ok();
    }

    /// `check` finds the images as the build would: a missing file is not `ok`.
    #[test]
    fn a_missing_image_file_is_refused() {
        if !have_dtc() {
            return;
        }
        let board = temp_board(
            "missing",
            "a { compatible = \"bulkhead,partition\"; cpus = <&cpu0>; image = \"guest.bin\";\n\
                 memory = <0 0x40000000 0 0x1000000 0 0x48000000>; };",
        );
        let err = check_all(&board).unwrap_err().to_string();
        let expected = board.parent().unwrap().join("guest.bin");
        assert_eq!(
            err,
            format!(
                "{}: node /hypervisor/a: image \"guest.bin\" not found: no file {}",
                board.display(),
                expected.display()
            )
        );
        std::fs::write(&expected, b"\0\0\0\0").unwrap();
        check_all(&board).unwrap();
        std::fs::remove_dir_all(board.parent().unwrap()).ok();
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
