//! The Linux guest recipe: a real Debian arm64 kernel `Image` and a busybox initramfs for
//! a Bulkhead partition, made on the host from Debian packages (nothing is compiled).
//!
//! [`prepare`] downloads the concrete kernel package behind `linux-image-arm64:arm64` and
//! `busybox-static:arm64` with `apt-get download`, unpacks them with `dpkg -x`, writes the
//! raw `Image` and a gzip-compressed newc initramfs (busybox, a generated `/init`, and the
//! modules needed for virtio-mmio block devices and ext2, plus `uio_pdrv_genirq` when the
//! kernel ships it), and caches the result under the cache directory keyed by package
//! versions. Later calls find the stamp file and do not touch apt or dpkg (and work offline).
//! Every call then builds the userspace programs (the IPC demo `bulkhead-ipc-demo` and the
//! monitoring table `bulkhead-top`, incrementally) and appends them to the base initramfs as a
//! second archive ([`userspace`]).
//!
//! [`make_disk_image`] makes a small ext2 disk holding one file, which the guest's `/init`
//! mounts read-only on `/mnt`.

#![forbid(unsafe_code)]

pub mod apt;
pub mod cpio;
pub mod disk;
pub mod init;
pub mod kernel;
pub mod modules;
pub mod userspace;

use anyhow::{bail, Context, Result};
use flate2::{write::GzEncoder, Compression};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use disk::make_disk_image;
pub use init::{
    DEMO_CMDLINE_KEY, DISK_MOUNTPOINT, LOAD_MARKER, LOAD_PARAMETER, PROMPT, USERSPACE_MARKER,
};
pub use kernel::ImageHeader;

/// Modules `/init` loads (their dependencies are added automatically): the virtio-mmio
/// transport, the virtio block driver, and ext4, which also mounts ext2 disks.
pub const WANTED_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "ext4"];

/// Modules loaded when the kernel package ships them, with their parameters: the generic
/// platform UIO driver, bound to the `generic-uio` channel nodes of Bulkhead's guest device
/// trees (`/dev/uioN` with the channel's memory, doorbell page and interrupt). Debian's arm64
/// kernels (6.1, 6.12) do not build it (`CONFIG_UIO_PDRV_GENIRQ` unset); the IPC demo then
/// maps the channel through `/dev/mem` and takes doorbells from a GPIO line, or polls.
pub const OPTIONAL_MODULES: &[(&str, &str)] = &[("uio_pdrv_genirq", "of_id=generic-uio")];

/// Set this environment variable to ignore the stamp and re-resolve the packages with apt
/// (e.g. to pick up a newer kernel).
pub const REFRESH_ENV: &str = "BULKHEAD_LINUX_REFRESH";

/// Name of the stamp file in the cache directory.
const STAMP: &str = "linux-guest.stamp";

/// A ready-to-boot Linux guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxGuest {
    /// Raw (uncompressed) arm64 `Image`, to be copied into guest memory as-is.
    pub kernel: PathBuf,
    /// gzip-compressed newc cpio initramfs.
    pub initramfs: PathBuf,
    /// Kernel release, as `uname -r` prints it (e.g. `6.1.0-56-arm64`).
    pub kernel_version: String,
    /// Debian package and version the kernel came from (e.g.
    /// `linux-image-6.1.0-56-arm64 6.1.192-2`).
    pub kernel_package: String,
}

/// FNV-1a, usable in constants.
const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Fingerprint of this recipe's code: a change to how the outputs are made invalidates
/// cached outputs (the downloaded packages are kept).
const RECIPE_FINGERPRINT: u64 = {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, include_str!("lib.rs").as_bytes());
    h = fnv1a(h, include_str!("init.rs").as_bytes());
    h = fnv1a(h, include_str!("cpio.rs").as_bytes());
    h = fnv1a(h, include_str!("kernel.rs").as_bytes());
    h = fnv1a(h, include_str!("modules.rs").as_bytes());
    h = fnv1a(h, include_str!("userspace.rs").as_bytes());
    h
};

fn fingerprint() -> String {
    format!("{RECIPE_FINGERPRINT:016x}")
}

/// Contents of the stamp file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    fingerprint: String,
    dir: String,
    initramfs: String,
    kernel_version: String,
    kernel_package: String,
}

impl Stamp {
    fn render(&self) -> String {
        format!(
            "fingerprint={}\ndir={}\ninitramfs={}\nkernel_version={}\nkernel_package={}\n",
            self.fingerprint, self.dir, self.initramfs, self.kernel_version, self.kernel_package
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Self {
            fingerprint: get("fingerprint")?,
            dir: get("dir")?,
            initramfs: get("initramfs")?,
            kernel_version: get("kernel_version")?,
            kernel_package: get("kernel_package")?,
        })
    }

    fn guest(&self, cache_dir: &Path) -> LinuxGuest {
        let dir = cache_dir.join(&self.dir);
        LinuxGuest {
            kernel: dir.join("Image"),
            initramfs: dir.join(&self.initramfs),
            kernel_version: self.kernel_version.clone(),
            kernel_package: self.kernel_package.clone(),
        }
    }
}

/// Writes `data` to `path` atomically (temporary file + rename).
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Makes the directory name for a set of package versions (no `:` or `/`).
fn cache_key(kernel_pkg: &str, kernel_ver: &str, busybox_ver: &str) -> String {
    format!("{kernel_pkg}_{kernel_ver}+busybox-static_{busybox_ver}")
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

/// Builds the uncompressed newc initramfs: busybox at `/bin/busybox` (`/bin/sh` links to
/// it, `/init` installs the other applet links at boot), `/dev/console` and `/dev/null`,
/// the modules under `/lib/modules/<release>/`, busybox init's `/etc/inittab` and the
/// generated `/init`.
pub fn build_initramfs(
    busybox: &[u8],
    kernel_release: &str,
    modules: &[modules::Module],
    module_args: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let mut w = cpio::CpioWriter::new(Vec::new());
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "mnt",
    ] {
        w.dir(d, 0o755)?;
    }
    w.dir("root", 0o700)?;
    w.dir("tmp", 0o1777)?;
    w.char_dev("dev/console", 0o600, 5, 1)?;
    w.char_dev("dev/null", 0o666, 1, 3)?;
    w.file("bin/busybox", 0o755, busybox)?;
    w.symlink("bin/sh", "busybox")?;
    w.file("etc/inittab", 0o644, init::INITTAB.as_bytes())?;
    let moddir = init::module_dir(kernel_release);
    w.dir("lib", 0o755)?;
    w.dir("lib/modules", 0o755)?;
    w.dir(&moddir, 0o755)?;
    for m in modules {
        w.file(&format!("{moddir}/{}.ko", m.name), 0o644, &m.data)?;
    }
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let script = init::init_script(&init::InitConfig {
        kernel_release,
        modules: &names,
        module_args,
    });
    w.file("init", 0o755, script.as_bytes())?;
    Ok(w.finish()?)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 2), Compression::best());
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// The single subdirectory of `dir`.
fn only_subdir(dir: &Path) -> Result<PathBuf> {
    let mut dirs = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            dirs.push(e.path());
        }
    }
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one kernel release under {}, found {dirs:?}",
            dir.display()
        ),
    }
}

/// Turns the downloaded packages into `Image` + initramfs inside `dir`; returns the stamp.
fn build(
    dir: &Path,
    kernel_deb: &Path,
    busybox_deb: &Path,
    kernel_package: String,
) -> Result<Stamp> {
    let scratch = dir.join("unpacked");
    let _ = fs::remove_dir_all(&scratch);
    let (kroot, broot) = (scratch.join("kernel"), scratch.join("busybox"));
    apt::extract(kernel_deb, &kroot)?;
    apt::extract(busybox_deb, &broot)?;

    let modroot = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|p| kroot.join(p))
        .find(|p| p.is_dir())
        .context("kernel package has no lib/modules")?;
    let release_dir = only_subdir(&modroot)?;
    let release = release_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let shipped = ["vmlinuz", "Image", "Image.gz"]
        .iter()
        .map(|n| kroot.join("boot").join(format!("{n}-{release}")))
        .find(|p| p.is_file())
        .with_context(|| format!("no boot/vmlinuz-{release} in the kernel package"))?;
    let (image, header) = kernel::to_raw_image(fs::read(&shipped)?)
        .with_context(|| format!("reading {}", shipped.display()))?;
    eprintln!(
        "bulkhead-linux-guest: kernel {release}: Image {} bytes, text_offset {:#x}, \
         image_size {:#x}, flags {:#x}",
        image.len(),
        header.text_offset,
        header.image_size,
        header.flags
    );
    write_atomic(&dir.join("Image"), &image)?;
    if let Ok(config) = fs::read(kroot.join("boot").join(format!("config-{release}"))) {
        write_atomic(&dir.join(format!("config-{release}")), &config)?;
    }

    let tree = modules::ModuleTree::open(&release_dir)?;
    let mut wanted: Vec<&str> = WANTED_MODULES.to_vec();
    for (name, _) in OPTIONAL_MODULES {
        if tree.is_available(name) {
            wanted.push(name);
        } else {
            eprintln!(
                "bulkhead-linux-guest: {name} is not in {kernel_package} (neither built in nor \
                 shipped): the IPC demo maps channels through /dev/mem and takes doorbells \
                 from a GPIO line named after the channel, or polls"
            );
        }
    }
    let mods = tree.resolve(&wanted)?;
    let busybox = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| broot.join(p))
        .find(|p| p.is_file())
        .context("busybox-static package has no bin/busybox")?;
    let cpio = build_initramfs(&fs::read(&busybox)?, &release, &mods, OPTIONAL_MODULES)?;
    let initramfs = format!("initramfs-{}.cpio.gz", fingerprint());
    write_atomic(&dir.join(&initramfs), &gzip(&cpio)?)?;
    // Drop initramfs files of earlier recipe versions.
    for e in fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("initramfs-") && name != initramfs && !name.contains("-user-") {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
    eprintln!(
        "bulkhead-linux-guest: initramfs modules: {}",
        names.join(" ")
    );

    fs::remove_dir_all(&scratch)?;
    Ok(Stamp {
        fingerprint: fingerprint(),
        dir: dir.file_name().unwrap().to_string_lossy().into_owned(),
        initramfs,
        kernel_version: release,
        kernel_package,
    })
}

/// Returns the Linux guest, building it into `cache_dir` first if needed.
///
/// The first call needs apt (and root if the `arm64` architecture isn't enabled yet);
/// later calls read `cache_dir/linux-guest.stamp` and return without running any
/// command. Set [`REFRESH_ENV`] to re-resolve package versions. Concurrent callers are
/// serialised with a lock file in `cache_dir`.
pub fn prepare(cache_dir: &Path) -> Result<LinuxGuest> {
    fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating cache directory {}", cache_dir.display()))?;
    let lock = fs::File::create(cache_dir.join(".lock"))?;
    lock.lock().context("locking the Linux guest cache")?;

    let stamp_path = cache_dir.join(STAMP);
    let refresh = std::env::var_os(REFRESH_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    if !refresh {
        if let Some(stamp) = fs::read_to_string(&stamp_path)
            .ok()
            .and_then(|t| Stamp::parse(&t))
        {
            let guest = stamp.guest(cache_dir);
            if stamp.fingerprint == fingerprint()
                && guest.kernel.is_file()
                && guest.initramfs.is_file()
            {
                return with_userspace(guest);
            }
        }
    }

    apt::ensure_arm64()?;
    let (kpkg, kver) = apt::resolve_kernel()?;
    let bpkg = format!("{}:{}", apt::BUSYBOX, apt::ARCH);
    let bver =
        apt::candidate_version(&bpkg)?.with_context(|| format!("no candidate for {bpkg}"))?;
    let dir = cache_dir.join(cache_key(&kpkg, &kver, &bver));
    let debs = dir.join("debs");
    let kernel_deb = apt::download(&kpkg, &kver, &debs)?;
    let busybox_deb = apt::download(apt::BUSYBOX, &bver, &debs)?;
    let stamp = build(&dir, &kernel_deb, &busybox_deb, format!("{kpkg} {kver}"))?;
    write_atomic(&stamp_path, stamp.render().as_bytes())?;
    with_userspace(stamp.guest(cache_dir))
}

/// Builds the workspace's userspace programs and returns `guest` with an initramfs that has
/// them: the base initramfs followed by a gzip-compressed overlay archive, cached as
/// `<base>-user-<hash of the overlay>.cpio.gz` next to it (older ones are removed).
fn with_userspace(mut guest: LinuxGuest) -> Result<LinuxGuest> {
    let programs = userspace::build_programs()?;
    let overlay = gzip(&userspace::overlay(&programs)?)?;
    let base_name = guest
        .initramfs
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".cpio.gz"))
        .context("base initramfs is not a .cpio.gz")?
        .to_string();
    let dir = guest
        .initramfs
        .parent()
        .context("initramfs has no directory")?
        .to_path_buf();
    let name = format!(
        "{base_name}-user-{:016x}.cpio.gz",
        fnv1a(0xcbf2_9ce4_8422_2325, &overlay)
    );
    let combined = dir.join(&name);
    if !combined.is_file() {
        let mut bytes = fs::read(&guest.initramfs)
            .with_context(|| format!("reading {}", guest.initramfs.display()))?;
        bytes.extend_from_slice(&overlay);
        write_atomic(&combined, &bytes)?;
        for e in fs::read_dir(&dir)? {
            let other = e?.file_name().to_string_lossy().into_owned();
            if other.contains("-user-") && other != name {
                let _ = fs::remove_file(dir.join(other));
            }
        }
    }
    guest.initramfs = combined;
    Ok(guest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpio::tests::parse;

    #[test]
    fn stamp_round_trip() {
        let s = Stamp {
            fingerprint: fingerprint(),
            dir: "k_1+busybox-static_2".into(),
            initramfs: "initramfs-x.cpio.gz".into(),
            kernel_version: "6.1.0-56-arm64".into(),
            kernel_package: "linux-image-6.1.0-56-arm64 6.1.192-2".into(),
        };
        assert_eq!(Stamp::parse(&s.render()), Some(s.clone()));
        assert_eq!(Stamp::parse("fingerprint=1\n"), None);
        let g = s.guest(Path::new("/c"));
        assert_eq!(g.kernel, Path::new("/c/k_1+busybox-static_2/Image"));
        assert_eq!(
            g.initramfs,
            Path::new("/c/k_1+busybox-static_2/initramfs-x.cpio.gz")
        );
    }

    #[test]
    fn cache_keys_are_plain_names() {
        assert_eq!(
            cache_key(
                "linux-image-6.1.0-56-arm64",
                "6.1.192-2",
                "1:1.35.0-4+deb12u1+b1"
            ),
            "linux-image-6.1.0-56-arm64_6.1.192-2+busybox-static_1_1.35.0-4+deb12u1+b1"
        );
    }

    #[test]
    fn initramfs_layout() {
        let mods = vec![
            modules::Module {
                name: "crc16".into(),
                data: b"m1".to_vec(),
            },
            modules::Module {
                name: "virtio_blk".into(),
                data: b"m2".to_vec(),
            },
        ];
        let buf = build_initramfs(b"BUSYBOX", "6.1.0-test", &mods, OPTIONAL_MODULES).unwrap();
        let entries = parse(&buf);
        let find = |name: &str| {
            entries
                .iter()
                .find(|e| e.0 == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(
            (find("bin/busybox").1, find("bin/busybox").5.as_slice()),
            (0o100755, &b"BUSYBOX"[..])
        );
        assert_eq!(
            (find("bin/sh").1, find("bin/sh").5.as_slice()),
            (0o120777, &b"busybox"[..])
        );
        let console = find("dev/console");
        assert_eq!((console.1, console.3, console.4), (0o020600, 5, 1));
        assert_eq!(find("lib/modules/6.1.0-test/virtio_blk.ko").5, b"m2");
        let init = find("init");
        assert_eq!(init.1, 0o100755);
        let script = std::str::from_utf8(&init.5).unwrap();
        assert!(script.contains("MODULES=\"crc16 virtio_blk\""));
        assert!(script.contains(USERSPACE_MARKER));
        assert_eq!(find("etc/inittab").5, init::INITTAB.as_bytes());
        // Every entry's parent directory comes before it.
        for (i, e) in entries.iter().enumerate() {
            if let Some((parent, _)) = e.0.rsplit_once('/') {
                let p = entries
                    .iter()
                    .position(|x| x.0 == parent)
                    .expect("parent listed");
                assert!(p < i && entries[p].1 & 0o170000 == cpio::S_IFDIR, "{}", e.0);
            }
        }
        // Gzip output decompresses to the same archive.
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip(&buf).unwrap()[..]),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, buf);
    }
}
