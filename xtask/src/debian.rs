//! The Debian packages an SD card is made from, fetched with the Linux recipe's apt helpers
//! (`bulkhead_linux_guest::apt`: `apt-get download`, `dpkg -x`) and cached below
//! `build/cache/sdcard/<package>_<version>/`, keeping only the files used:
//!
//! - the boot firmware (`raspi-firmware`, in the `non-free-firmware` component, architecture
//!   `all`): unpacked, never installed, so its kernel hooks stay off this machine;
//! - the device trees of Debian's arm64 kernel package (the one the Linux recipe uses), from
//!   `usr/lib/linux-image-<release>/`;
//! - for a native Linux on the card (`cargo xtask image --kernel linux`, see
//!   [`crate::native_linux`]): the modules that Linux needs on a Pi (the SD controller, FAT, the
//!   PM watchdog that powers off) from the same kernel package, and busybox.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bulkhead_linux_guest::apt;
use bulkhead_linux_guest::modules::{Module, ModuleTree};

use crate::board::{display_path, repo_root};
use crate::deps;
use crate::platform::SdCard;

/// Where the unpacked packages are cached, relative to the repository root.
pub const CACHE_DIR: &str = "build/cache/sdcard";
/// Marks a complete cache directory.
const COMPLETE: &str = ".complete";

/// Modules a native Linux needs on a Pi 4 (with their dependencies): the regulators the SD
/// card's supplies are described with (`fixed`, `gpio-regulator`; the SD controller waits for
/// them), the SD/eMMC controllers (`sdhci-iproc`; emmc2 holds the SD card), FAT with the code
/// pages a boot partition uses, and the PM watchdog, through which Linux powers the board off.
pub const NATIVE_LINUX_MODULES: &[&str] = &[
    "fixed",
    "gpio_regulator",
    "sdhci_iproc",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "bcm2835_wdt",
];

fn cache_root() -> PathBuf {
    repo_root().join(CACHE_DIR)
}

/// A package version as a directory name.
fn dir_name(package: &str, version: &str) -> String {
    format!("{package}_{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The cache directory of `package` `version`, filled by `fill(unpacked, dir)` the first time
/// (`unpacked` is the package unpacked with `dpkg -x`; it is deleted afterwards). `what`
/// describes what `fill` keeps: a directory filled for another `what` is filled again.
fn cached(
    package: &Package,
    version: &str,
    what: &str,
    fill: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let Package {
        name: package,
        arch,
    } = *package;
    let dir = cache_root().join(dir_name(package, version));
    let marker = format!("{package} {version}: {what}\n");
    if fs::read_to_string(dir.join(COMPLETE)).is_ok_and(|m| m == marker) {
        return Ok(dir);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let debs = cache_root().join("debs");
    let deb = download(package, arch, version, &debs)?;
    let unpacked = dir.join("unpacked");
    apt::extract(&deb, &unpacked)?;
    fill(&unpacked, &dir)?;
    fs::remove_dir_all(&unpacked)?;
    fs::remove_file(&deb)?;
    fs::write(dir.join(COMPLETE), marker)?;
    Ok(dir)
}

/// A Debian package and its architecture (`arm64`, or `all` for data such as firmware).
#[derive(Clone, Copy, Debug)]
struct Package<'a> {
    name: &'a str,
    arch: &'a str,
}

impl Package<'_> {
    /// How apt names it: `name:arm64`, or the bare name for `all`.
    fn spec(&self) -> String {
        if self.arch == "all" {
            self.name.to_owned()
        } else {
            format!("{}:{}", self.name, self.arch)
        }
    }

    /// The candidate version apt would download.
    fn version(&self) -> Result<String> {
        apt::candidate_version(&self.spec())?.with_context(|| {
            format!(
                "apt has no candidate for {}: is its component configured and `apt-get update` run?",
                self.spec()
            )
        })
    }
}

/// `apt-get download`s `package` (of `arch`) `version` into `dir` (like the Linux recipe's
/// `apt::download`, which is for `arm64` packages only) and returns the `.deb`.
fn download(package: &str, arch: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    if arch == apt::ARCH {
        return apt::download(package, version, dir);
    }
    fs::create_dir_all(dir)?;
    let spec = Package {
        name: package,
        arch,
    }
    .spec();
    eprintln!("xtask: apt-get download {spec}={version}");
    apt::run(
        std::process::Command::new("apt-get")
            .args(["download", "-q", &format!("{spec}={version}")])
            .current_dir(dir),
    )?;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{package}_")) && name.ends_with(&format!("_{arch}.deb")) {
            return Ok(dir.join(name));
        }
    }
    bail!(
        "apt-get download left no {package} .deb in {}",
        dir.display()
    )
}

/// The directory holding the card's firmware files, downloading the firmware package the
/// first time (after making sure apt has its component).
pub fn firmware(card: &SdCard) -> Result<PathBuf> {
    deps::ensure_apt_component(card.firmware_component)?;
    let package = Package {
        name: card.firmware_package,
        arch: "all",
    };
    let what = format!("{:?}", card.firmware_files);
    cached(&package, &package.version()?, &what, |unpacked, dir| {
        let from = unpacked.join(card.firmware_dir);
        for name in card.firmware_files {
            copy(&from.join(name), &dir.join(name), card.firmware_package)?;
        }
        Ok(())
    })
}

/// The cache directory of Debian's arm64 kernel package: its device trees (`dtbs/`, as below
/// `usr/lib/linux-image-<release>/`) and the modules of [`NATIVE_LINUX_MODULES`] with their
/// dependencies (`modules/<release>/`, load order in `modules/<release>/order`).
fn kernel_cache() -> Result<PathBuf> {
    apt::ensure_arm64()?;
    let (name, version) = apt::resolve_kernel()?;
    let package = Package {
        name: &name,
        arch: apt::ARCH,
    };
    let what = format!("device trees, modules {NATIVE_LINUX_MODULES:?}");
    cached(&package, &version, &what, |unpacked, dir| {
        let release_dir = only_subdir(&unpacked.join("usr/lib"), "linux-image-")?;
        copy_tree(&release_dir, &dir.join("dtbs"), "dtb")?;
        let modules = only_subdir(&unpacked.join("lib/modules"), "")
            .or_else(|_| only_subdir(&unpacked.join("usr/lib/modules"), ""))?;
        let release = modules.file_name().unwrap().to_string_lossy().into_owned();
        // Dependencies come first in what `resolve` returns.
        let wanted = ModuleTree::open(&modules)?.resolve(NATIVE_LINUX_MODULES)?;
        let out = dir.join("modules").join(&release);
        fs::create_dir_all(&out)?;
        let mut order = String::new();
        for module in wanted {
            fs::write(out.join(format!("{}.ko", module.name)), &module.data)?;
            order.push_str(&module.name);
            order.push('\n');
        }
        fs::write(out.join("order"), order)?;
        Ok(())
    })
}

/// The board's device tree from Debian's arm64 kernel package (`dtb` is relative to
/// `usr/lib/linux-image-<release>/`).
pub fn device_tree(dtb: &str) -> Result<PathBuf> {
    let dir = kernel_cache()?.join("dtbs");
    let path = dir.join(dtb);
    if !path.is_file() {
        bail!(
            "Debian's arm64 kernel package has no device tree {dtb} (looked in {})",
            display_path(&dir)
        );
    }
    Ok(path)
}

/// The modules of [`NATIVE_LINUX_MODULES`] (with their dependencies, in load order) from
/// Debian's arm64 kernel package, and the kernel release they are for.
pub fn native_linux_modules() -> Result<(String, Vec<Module>)> {
    let release_dir = only_subdir(&kernel_cache()?.join("modules"), "")?;
    let release = release_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let order = fs::read_to_string(release_dir.join("order"))?;
    let mut modules = Vec::new();
    for name in order.lines() {
        let data = fs::read(release_dir.join(format!("{name}.ko")))?;
        modules.push(Module {
            name: name.to_owned(),
            data,
        });
    }
    Ok((release, modules))
}

/// The statically linked busybox of Debian's `busybox-static:arm64`.
pub fn busybox() -> Result<Vec<u8>> {
    let package = Package {
        name: apt::BUSYBOX,
        arch: apt::ARCH,
    };
    let dir = cached(&package, &package.version()?, "busybox", |unpacked, dir| {
        copy(
            &unpacked.join("bin/busybox"),
            &dir.join("busybox"),
            apt::BUSYBOX,
        )
    })?;
    Ok(fs::read(dir.join("busybox"))?)
}

/// The one subdirectory of `dir` whose name starts with `prefix`.
fn only_subdir(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() && entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(entry.path());
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one directory {prefix}* in {}, found {found:?}",
            dir.display()
        ),
    }
}

/// Copies every `*.<ext>` file below `from` to the same place below `to`.
fn copy_tree(from: &Path, to: &Path, ext: &str) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()), ext)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            fs::create_dir_all(to)?;
            fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path, package: &str) -> Result<()> {
    if !from.is_file() {
        bail!("package {package} has no {}", from.display());
    }
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}
