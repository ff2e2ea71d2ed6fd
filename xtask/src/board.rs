//! Finding things in the repository: the board config a `--board` argument names, where its
//! image goes, and which file each partition's `image` and `initrd` strings refer to when
//! building ([`SourceFile`] of an [`ImageSource`]: a guest crate's binary, the Linux guest
//! recipe's output, or a file next to the board config).

use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use bulkhead_linux_guest::LinuxGuest;

/// Where board configs live, relative to the repository root.
pub const BOARD_DIR: &str = "board-configs";
/// The Rust target the bare-metal guests are built for.
pub const TARGET: &str = "aarch64-unknown-none";
/// The Rust target the hypervisor is built for: without FP/SIMD registers, so EL2 code never
/// touches the guests' FP/SIMD state, which it does not save.
pub const HYPERVISOR_TARGET: &str = "aarch64-unknown-none-softfloat";
/// The Rust target of the Linux guest's userspace programs (the IPC demo in the initramfs,
/// built by the Linux recipe): static musl binaries, linked with rust-lld.
pub const LINUX_USER_TARGET: &str = "aarch64-unknown-linux-musl";
/// Every Rust target the build needs.
pub const TARGETS: [&str; 3] = [TARGET, HYPERVISOR_TARGET, LINUX_USER_TARGET];

/// The repository root (the parent of the xtask crate).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// `target/aarch64-unknown-none/release`, where guest binaries end up.
pub fn target_release_dir() -> PathBuf {
    release_dir(TARGET)
}

/// `target/<target>/release`.
pub fn release_dir(target: &str) -> PathBuf {
    repo_root().join("target").join(target).join("release")
}

/// A board config chosen with `--board`.
#[derive(Clone, Debug)]
pub struct Board {
    /// The board's name: its path below `board-configs/` without `.dts` (e.g.
    /// `test/qemu-virt-trespass`), or the file stem for a file elsewhere.
    pub name: String,
    /// The device-tree source file.
    pub dts: PathBuf,
}

impl Board {
    /// Resolves a `--board` argument: a name below `board-configs/` (may contain `/`) or a path
    /// to a `.dts` file (absolute or relative to the current directory).
    pub fn resolve(arg: &str) -> Result<Board> {
        let root = repo_root();
        let boards = root.join(BOARD_DIR);
        let as_path = Path::new(arg);
        let looks_like_path = arg.ends_with(".dts");
        if looks_like_path {
            let dts = if as_path.is_absolute() {
                as_path.to_path_buf()
            } else {
                std::env::current_dir()
                    .context("cannot read the current directory")?
                    .join(as_path)
            };
            if !dts.is_file() {
                bail!("board config {} does not exist", dts.display());
            }
            let dts = dts
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", dts.display()))?;
            let name = match dts.strip_prefix(boards.canonicalize().unwrap_or(boards.clone())) {
                Ok(rel) => strip_dts(rel),
                Err(_) => dts
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "board".to_owned()),
            };
            return Ok(Board { name, dts });
        }
        if arg.is_empty() || as_path.is_absolute() || arg.split('/').any(|c| c == "..") {
            bail!("bad board name {arg:?}: expected a name below {BOARD_DIR}/ or a path to a .dts file");
        }
        let dts = boards.join(format!("{arg}.dts"));
        if !dts.is_file() {
            bail!(
                "no board {arg:?}: {} does not exist (available: {})",
                dts.display(),
                available_boards(&boards).join(", ")
            );
        }
        Ok(Board {
            name: arg.to_owned(),
            dts,
        })
    }

    /// The directory the board's image is written to: `build/<name with / replaced by ->`.
    pub fn out_dir(&self) -> PathBuf {
        repo_root().join("build").join(self.name.replace('/', "-"))
    }

    /// The directory relative file paths in the board config are resolved against.
    pub fn dir(&self) -> &Path {
        self.dts.parent().unwrap_or(Path::new("."))
    }
}

fn strip_dts(rel: &Path) -> String {
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_suffix(".dts").unwrap_or(&s).to_owned()
}

/// Every board below `board-configs/`, by name, sorted.
fn available_boards(boards: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "dts") {
                if let Ok(rel) = path.strip_prefix(base) {
                    out.push(strip_dts(rel));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(boards, boards, &mut out);
    out.sort();
    out
}

/// Where the Linux recipe caches its downloads and outputs, relative to the repository root.
pub const LINUX_CACHE_DIR: &str = "build/cache/linux";

/// What a partition's `image` and `initrd` strings refer to: decided in one place,
/// [`ImageSource::classify`] of the host tools, which `bulkhead check` uses too.
pub use bulkhead_tools::check::{ImageSource, Role};

/// The file an [`ImageSource`] is read from when building.
pub trait SourceFile {
    /// The built binary of a guest crate (which need not exist yet), the recipe's output
    /// (prepared on first use, which may download packages), or the file itself.
    fn path(&self) -> Result<PathBuf>;
}

impl SourceFile for ImageSource {
    fn path(&self) -> Result<PathBuf> {
        Ok(match self {
            ImageSource::Crate(name) => target_release_dir().join(name),
            ImageSource::LinuxRecipe(Role::Image) => linux_guest()?.kernel.clone(),
            ImageSource::LinuxRecipe(Role::Initrd) => linux_guest()?.initramfs.clone(),
            ImageSource::File(path) => path.clone(),
        })
    }
}

/// The Linux guest of the recipe crate, prepared once per process into
/// `build/cache/linux` (the first time ever this downloads Debian packages; afterwards it is a
/// cache lookup).
pub fn linux_guest() -> Result<&'static LinuxGuest> {
    static GUEST: OnceLock<LinuxGuest> = OnceLock::new();
    if let Some(guest) = GUEST.get() {
        return Ok(guest);
    }
    let cache = repo_root().join(LINUX_CACHE_DIR);
    let guest = bulkhead_linux_guest::prepare(&cache).with_context(|| {
        format!(
            "cannot prepare the Linux guest (recipe partitions/linux) in {}",
            display_path(&cache)
        )
    })?;
    Ok(GUEST.get_or_init(|| guest))
}

/// A path relative to the repository root when it is inside it, for shorter messages.
pub fn display_path(path: &Path) -> String {
    let root = repo_root();
    match path.strip_prefix(&root) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_board_resolves() {
        let board = Board::resolve(crate::DEFAULT_BOARD).unwrap();
        assert_eq!(board.name, crate::DEFAULT_BOARD);
        assert!(board.dts.ends_with("board-configs/qemu-virt-linux.dts"));
        assert!(board.out_dir().ends_with("build/qemu-virt-linux"));
    }

    #[test]
    fn board_path_gets_a_name_below_board_configs() {
        let path = repo_root().join("board-configs/qemu-virt-hello.dts");
        let board = Board::resolve(path.to_str().unwrap()).unwrap();
        assert_eq!(board.name, "qemu-virt-hello");
    }

    #[test]
    fn nested_names_use_dashes_for_the_output_dir() {
        let board = Board {
            name: "test/invalid/x".into(),
            dts: repo_root().join("board-configs/test/invalid/x.dts"),
        };
        assert!(board.out_dir().ends_with("build/test-invalid-x"));
    }

    #[test]
    fn bad_board_names_are_refused() {
        assert!(Board::resolve("../Cargo").is_err());
        assert!(Board::resolve("no-such-board").is_err());
        assert!(Board::resolve("").is_err());
    }
}
