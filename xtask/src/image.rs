//! `cargo xtask image`: what a user copies to a Raspberry Pi 4's SD card.
//!
//! For a board (`--board`), the payload is its packed `bulkhead.img`; with `--platform P
//! --kernel linux|FILE` it is a kernel booted natively (Debian's arm64 kernel with an
//! initramfs of the Linux recipe, or any arm64 Image), which checks a board's SD card, device
//! tree and serial console without the hypervisor. What else goes on the card comes from the
//! platform's [`SdCard`] entry: the boot firmware, the device tree and `config.txt`.
//!
//! Written to `build/<name>/`: `sdcard/` (the files, to copy onto an existing FAT partition)
//! and `sdcard.img` (a whole card: an MBR with one FAT32 partition holding the same files, to
//! `dd` onto a card). Its size is a power of two, which QEMU's SD card model requires.
//!
//! `--run` boots the card on the platform's QEMU machine the way its firmware would: QEMU
//! cannot run the Pi's VideoCore firmware, so xtask reads `config.txt` and `cmdline.txt` from
//! the FAT partition of `sdcard.img`, takes the kernel, device tree and initramfs they name
//! from there too, and gives them to QEMU with the card itself as the SD card. The device tree
//! QEMU gets has the platform's `qemu_dtb_fixes` applied (devices QEMU does not model).

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::board::{display_path, linux_guest, repo_root, Board};
use crate::debian;
use crate::platform::{self, Platform, SdCard};

/// The partition starts 1 MiB into the card (sector 2048), as partitioning tools align it.
pub const PARTITION_START: u64 = 1024 * 1024;
/// The smallest card image.
pub const MIN_IMAGE_SIZE: u64 = 64 * 1024 * 1024;
/// MBR partition type: FAT32 with LBA addressing, what the Pi's boot ROM and firmware read.
pub const PARTITION_TYPE_FAT32_LBA: u8 = 0x0c;
/// The MBR's disk signature (Linux shows it as the partition's PARTUUID prefix): "Bulk".
pub const DISK_SIGNATURE: u32 = 0x6b6c_7542;
/// The FAT volume label.
pub const VOLUME_LABEL: &[u8; 11] = b"BULKHEAD   ";
const SECTOR: u64 = 512;

/// The initramfs file name on a card with a native Linux.
pub const INITRAMFS_NAME: &str = "initramfs.cpio.gz";
/// The Linux command line on a card with a native Linux: the PL011 as console (QEMU's serial
/// port; on hardware the one `enable_uart=1` and `disable-bt` put on GPIO 14/15).
pub const NATIVE_LINUX_CMDLINE: &str = "console=ttyAMA0,115200 earlycon=pl011,mmio32,0xfe201000";

/// What the firmware boots.
pub enum Payload {
    /// A Bulkhead board: its `bulkhead.img`.
    Board(String),
    /// A kernel booted natively: `linux` (the Linux recipe's kernel with an initramfs for the
    /// platform) or a file.
    Kernel(String),
}

/// One file of the boot partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardFile {
    pub name: String,
    pub data: Vec<u8>,
}

impl CardFile {
    fn new(name: &str, data: Vec<u8>) -> CardFile {
        CardFile {
            name: name.to_owned(),
            data,
        }
    }
}

/// What `image` made.
#[derive(Clone, Debug)]
pub struct Made {
    pub name: String,
    pub platform: &'static Platform,
    pub dir: PathBuf,
    pub image: PathBuf,
}

/// Builds the card of `payload` for `platform_name` (given with `--kernel`; a board's comes
/// from its config) and writes it below `build/`; prints the paths of `kernel8.img` and
/// `sdcard.img`.
pub fn make(payload: &Payload, platform_name: Option<&str>) -> Result<Made> {
    let made = match payload {
        Payload::Board(board) => {
            if platform_name.is_some() {
                bail!("--platform is for --kernel; a board's platform comes from its config");
            }
            let resolved = Board::resolve(board)?;
            // Refuse a board that has no SD card before building it.
            let dtb = bulkhead_tools::dts::compile(&resolved.dts)?;
            let platform = platform::of_dtb(&dtb).with_context(|| display_path(&resolved.dts))?;
            platform::sd_card(platform).with_context(|| format!("board {}", resolved.name))?;
            // Building a board of an SD-card platform writes its card.
            let built = crate::build::build(board, false)?;
            built
                .card
                .ok_or_else(|| anyhow!("building board {} made no SD card", resolved.name))?
        }
        Payload::Kernel(kernel) => {
            let platform_name = platform_name
                .ok_or_else(|| anyhow!("--kernel needs --platform (e.g. --platform rpi4)"))?;
            let platform = platform::by_name(platform_name)?;
            platform::sd_card(platform)?;
            let (label, data, native_linux) = if kernel == bulkhead_tools::check::LINUX_RECIPE {
                ("linux".to_owned(), read(&linux_guest()?.kernel)?, true)
            } else {
                let path = std::env::current_dir()?.join(kernel);
                let label = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "kernel".into());
                (label, read(&path)?, false)
            };
            let name = format!("native-{}-{label}", platform.name);
            let out = repo_root().join("build").join(&name);
            write_card(&name, platform, &out, data, native_linux)?
        }
    };
    let card = platform::sd_card(made.platform)?;
    println!(
        "kernel8.img: {}",
        display_path(&made.dir.join(card.kernel_name))
    );
    println!("sdcard.img:  {}", display_path(&made.image));
    Ok(made)
}

/// Writes the card that boots `kernel` on `platform` (with a native Linux's initramfs and
/// command line if `native_linux`) into `out_dir`: `sdcard/` and `sdcard.img`.
pub fn write_card(
    name: &str,
    platform: &'static Platform,
    out_dir: &Path,
    kernel: Vec<u8>,
    native_linux: bool,
) -> Result<Made> {
    let card = platform::sd_card(platform)?;
    let mut files = card_files(card, kernel)?;
    if native_linux {
        add_native_linux(&mut files, crate::native_linux::initramfs()?);
    }

    let dir = out_dir.join("sdcard");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for file in &files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.data)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let image = out_dir.join("sdcard.img");
    let bytes = disk_image(&files)?;
    std::fs::write(&image, &bytes).with_context(|| format!("cannot write {}", image.display()))?;
    println!(
        "xtask: SD card for {name} ({}): {} files in {}, whole card {} ({} MiB)",
        platform.description,
        files.len(),
        display_path(&dir),
        display_path(&image),
        bytes.len() >> 20
    );
    Ok(Made {
        name: name.to_owned(),
        platform,
        dir,
        image,
    })
}

/// The boot partition's files for `kernel` on a card of type `card`: the kernel under the
/// firmware's name, `config.txt`, the firmware and the device tree (both from Debian).
pub fn card_files(card: &SdCard, kernel: Vec<u8>) -> Result<Vec<CardFile>> {
    let mut files = vec![
        CardFile::new(card.kernel_name, kernel),
        CardFile::new("config.txt", card.config_txt.as_bytes().to_vec()),
    ];
    let firmware = debian::firmware(card)?;
    for name in card.firmware_files {
        files.push(CardFile::new(name, read(&firmware.join(name))?));
    }
    files.push(CardFile::new(
        card.dtb_name(),
        read(&debian::device_tree(card.dtb)?)?,
    ));
    Ok(files)
}

/// Adds a native Linux's initramfs and command line, and the `config.txt` line that loads the
/// initramfs.
fn add_native_linux(files: &mut Vec<CardFile>, initramfs: Vec<u8>) {
    files.push(CardFile::new(INITRAMFS_NAME, initramfs));
    files.push(CardFile::new(
        "cmdline.txt",
        format!("{NATIVE_LINUX_CMDLINE}\n").into_bytes(),
    ));
    if let Some(config) = files.iter_mut().find(|f| f.name == "config.txt") {
        config.data.extend_from_slice(
            format!(
                "\n# A native Linux (cargo xtask image --kernel linux): its initramfs, loaded \
                 after the kernel;\n# its command line is in cmdline.txt.\n\
                 initramfs {INITRAMFS_NAME} followkernel\n"
            )
            .as_bytes(),
        );
    }
}

/// The card's size for files of `content` bytes: room for them, the FAT and slack, rounded up
/// to a power of two (QEMU's SD card model requires one), at least [`MIN_IMAGE_SIZE`].
pub fn image_size(content: u64) -> u64 {
    let needed = PARTITION_START + content + content / 8 + 8 * 1024 * 1024;
    needed.next_power_of_two().max(MIN_IMAGE_SIZE)
}

/// A whole card: an MBR with one FAT32 partition from [`PARTITION_START`] to the end, holding
/// `files` in its root directory.
pub fn disk_image(files: &[CardFile]) -> Result<Vec<u8>> {
    let content: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let size = image_size(content);
    let partition_size = size - PARTITION_START;
    let mut partition = Cursor::new(vec![0u8; partition_size as usize]);
    fatfs::format_volume(
        &mut partition,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .volume_label(*VOLUME_LABEL),
    )
    .context("cannot format the FAT partition")?;
    {
        let fs = fatfs::FileSystem::new(&mut partition, fatfs::FsOptions::new())
            .context("cannot open the new FAT partition")?;
        for file in files {
            let mut f = fs
                .root_dir()
                .create_file(&file.name)
                .with_context(|| format!("cannot create {} in the FAT partition", file.name))?;
            f.truncate()?;
            f.write_all(&file.data)
                .with_context(|| format!("cannot write {} to the FAT partition", file.name))?;
        }
        fs.unmount().context("cannot finish the FAT partition")?;
    }
    let mut image = Vec::with_capacity(size as usize);
    image.extend_from_slice(&mbr(PARTITION_START / SECTOR, partition_size / SECTOR)?);
    image.resize(PARTITION_START as usize, 0);
    image.extend_from_slice(&partition.into_inner());
    Ok(image)
}

/// A master boot record with one partition of [`PARTITION_TYPE_FAT32_LBA`] at `start` for
/// `sectors` (in 512-byte sectors). CHS fields hold the "use LBA" values.
pub fn mbr(start: u64, sectors: u64) -> Result<[u8; 512]> {
    let (Ok(start), Ok(sectors)) = (u32::try_from(start), u32::try_from(sectors)) else {
        bail!("partition beyond what an MBR can address");
    };
    let mut mbr = [0u8; 512];
    mbr[440..444].copy_from_slice(&DISK_SIGNATURE.to_le_bytes());
    let entry = &mut mbr[446..462];
    entry[0] = 0x00; // not marked active: the Pi's firmware does not look
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // first CHS: beyond CHS, use LBA
    entry[4] = PARTITION_TYPE_FAT32_LBA;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]); // last CHS
    entry[8..12].copy_from_slice(&start.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    Ok(mbr)
}

/// The first partition of a card image (from its MBR): its byte offset and length.
pub fn first_partition(image: &[u8]) -> Result<(u64, u64)> {
    if image.len() < 512 || image[510..512] != [0x55, 0xaa] {
        bail!("no MBR (boot signature 0x55 0xaa missing)");
    }
    let entry = &image[446..462];
    if entry[4] == 0 {
        bail!("the MBR's first partition entry is empty");
    }
    let start = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as u64 * SECTOR;
    let len = u32::from_le_bytes(entry[12..16].try_into().unwrap()) as u64 * SECTOR;
    if start + len > image.len() as u64 {
        bail!("the first partition ends beyond the image");
    }
    Ok((start, len))
}

/// Reads `name` from the root directory of the FAT partition of a card image; `None` if it
/// is not there.
pub fn read_card_file(image: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    let (start, len) = first_partition(image)?;
    let mut part = Cursor::new(&image[start as usize..(start + len) as usize]);
    part.seek(SeekFrom::Start(0))?;
    let fs = fatfs::FileSystem::new(ReadOnly(part), fatfs::FsOptions::new())
        .context("the first partition is not a FAT file system")?;
    for entry in fs.root_dir().iter() {
        let entry = entry?;
        if entry.is_file() && entry.file_name().eq_ignore_ascii_case(name) {
            let mut data = Vec::new();
            entry.to_file().read_to_end(&mut data)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// A read-only stream for fatfs, which wants `Write` too (it writes nothing when only
/// reading, unless asked to: a write is refused).
struct ReadOnly<T>(T);

impl<T: Read> Read for ReadOnly<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: Seek> Seek for ReadOnly<T> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<T> Write for ReadOnly<T> {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the card image is read-only here",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the Pi firmware takes from the card, by `config.txt` and `cmdline.txt`.
#[derive(Debug, PartialEq, Eq)]
pub struct FirmwareBoot {
    pub kernel: String,
    pub device_tree: Option<String>,
    pub initramfs: Option<String>,
    pub cmdline: Option<String>,
}

/// Reads the lines of `config.txt` the firmware boots by (`kernel=`, `device_tree=`,
/// `initramfs FILE followkernel`); comments and other settings are ignored. `default_kernel`
/// is the firmware's name for the kernel without `kernel=`.
pub fn parse_config_txt(text: &str, default_kernel: &str) -> FirmwareBoot {
    let mut boot = FirmwareBoot {
        kernel: default_kernel.to_owned(),
        device_tree: None,
        initramfs: None,
        cmdline: None,
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(v) = line.strip_prefix("kernel=") {
            boot.kernel = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("device_tree=") {
            boot.device_tree = Some(v.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("initramfs ") {
            boot.initramfs = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    boot
}

/// Makes the device tree file `dtb` one QEMU's model of `platform` boots Linux with (its
/// `qemu_dtb_fixes`, applied with `fdtput`).
pub fn apply_qemu_dtb_fixes(platform: &Platform, dtb: &Path) -> Result<()> {
    for fix in platform.qemu_dtb_fixes {
        let mut fdtput = std::process::Command::new("fdtput");
        fdtput.arg(dtb).args(fix.fdtput_args());
        bulkhead_linux_guest::apt::run(&mut fdtput)
            .with_context(|| format!("cannot adapt the device tree for QEMU ({fix:?})"))?;
    }
    Ok(())
}

/// Boots the card at `made.image` on the platform's QEMU machine as its firmware would (see
/// the module documentation), stopping after `timeout`.
pub fn run(made: &Made, timeout: Option<Duration>, extra_args: &[String]) -> Result<ExitCode> {
    let card = platform::sd_card(made.platform)?;
    crate::deps::ensure_qemu_machine(made.platform.qemu_machine)?;
    let image = read(&made.image)?;
    let file = |name: &str| -> Result<Vec<u8>> {
        read_card_file(&image, name)?
            .ok_or_else(|| anyhow!("{} has no {name}", display_path(&made.image)))
    };
    let config = String::from_utf8_lossy(&file("config.txt")?).into_owned();
    let mut boot = parse_config_txt(&config, card.kernel_name);
    boot.cmdline = read_card_file(&image, "cmdline.txt")?
        .map(|c| String::from_utf8_lossy(&c).trim().to_owned());

    // What QEMU loads, taken out of the card image.
    let from_card = made.dir.parent().unwrap_or(&made.dir).join("from-sdcard");
    let _ = std::fs::remove_dir_all(&from_card);
    std::fs::create_dir_all(&from_card)?;
    let extract = |name: &str| -> Result<PathBuf> {
        let path = from_card.join(name);
        std::fs::write(&path, file(name)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let mut args: Vec<String> = vec![
        "-M".into(),
        made.platform.qemu_machine.into(),
        "-nographic".into(),
        // The PM watchdog's reset (how Linux and Bulkhead power a Pi off) ends QEMU.
        "-no-reboot".into(),
        "-kernel".into(),
        path_arg(&extract(&boot.kernel)?),
    ];
    let dtb = extract(boot.device_tree.as_deref().unwrap_or(card.dtb_name()))?;
    apply_qemu_dtb_fixes(made.platform, &dtb)?;
    args.extend(["-dtb".into(), path_arg(&dtb)]);
    if let Some(initramfs) = &boot.initramfs {
        args.extend(["-initrd".into(), path_arg(&extract(initramfs)?)]);
    }
    if let Some(cmdline) = &boot.cmdline {
        args.extend(["-append".into(), cmdline.clone()]);
    }
    // The card itself; snapshot=on keeps what the guest writes out of the file.
    args.extend([
        "-drive".into(),
        format!(
            "file={},if=sd,format=raw,snapshot=on",
            path_arg(&made.image)
        ),
    ]);
    args.extend(extra_args.iter().cloned());
    crate::qemu::run_qemu(
        &format!(
            "board {} from its SD card on QEMU {}",
            made.name, made.platform.qemu_machine
        ),
        &args,
        timeout,
        None,
    )
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", display_path(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<CardFile> {
        vec![
            CardFile::new("kernel8.img", (0..3_000_000u32).map(|i| i as u8).collect()),
            CardFile::new("config.txt", b"arm_64bit=1\n".to_vec()),
            CardFile::new("bcm2711-rpi-4-b.dtb", vec![0xd0, 0x0d, 0xfe, 0xed]),
            CardFile::new("empty", Vec::new()),
        ]
    }

    #[test]
    fn the_card_reads_back() {
        let files = files();
        let image = disk_image(&files).unwrap();
        assert_eq!(image.len() as u64, MIN_IMAGE_SIZE);
        for file in &files {
            let back = read_card_file(&image, &file.name).unwrap();
            assert_eq!(back.as_deref(), Some(file.data.as_slice()), "{}", file.name);
        }
        assert_eq!(read_card_file(&image, "start4.elf").unwrap(), None);
        // FAT names are case-insensitive.
        assert!(read_card_file(&image, "CONFIG.TXT").unwrap().is_some());
    }

    #[test]
    fn the_mbr_describes_one_fat32_partition() {
        let image = disk_image(&files()).unwrap();
        assert_eq!(&image[510..512], &[0x55, 0xaa]);
        assert_eq!(image[446 + 4], PARTITION_TYPE_FAT32_LBA);
        let (start, len) = first_partition(&image).unwrap();
        assert_eq!((start, start + len), (PARTITION_START, image.len() as u64));
        let part = &image[start as usize..];
        // FAT32 boot sector: jump, "FAT32   " type string, label, 0x55aa.
        assert_eq!(&part[82..90], b"FAT32   ");
        assert_eq!(&part[71..82], VOLUME_LABEL);
        assert_eq!(&part[510..512], &[0x55, 0xaa]);
        assert_eq!(
            u32::from_le_bytes(image[440..444].try_into().unwrap()),
            DISK_SIGNATURE
        );
    }

    #[test]
    fn broken_images_are_refused() {
        assert!(first_partition(&[0u8; 512]).is_err());
        let mut empty = [0u8; 512];
        empty[510] = 0x55;
        empty[511] = 0xaa;
        assert!(first_partition(&empty).is_err());
        let mut short = mbr(2048, 1 << 20).unwrap().to_vec();
        short.resize(4096, 0);
        assert!(first_partition(&short).is_err());
    }

    #[test]
    fn sizes_are_powers_of_two_with_room() {
        assert_eq!(image_size(0), MIN_IMAGE_SIZE);
        assert_eq!(image_size(40 << 20), 64 << 20);
        assert_eq!(image_size(60 << 20), 128 << 20);
        for content in [0u64, 1 << 20, 50 << 20, 300 << 20] {
            let size = image_size(content);
            assert!(size.is_power_of_two() && size >= PARTITION_START + content + content / 8);
        }
    }

    #[test]
    fn config_txt_is_read_like_the_firmware() {
        let text = "# c\narm_64bit=1\nkernel=bulkhead.img # ours\n\
                    initramfs initrd.gz followkernel\ndevice_tree=x.dtb\n";
        assert_eq!(
            parse_config_txt(text, "kernel8.img"),
            FirmwareBoot {
                kernel: "bulkhead.img".into(),
                device_tree: Some("x.dtb".into()),
                initramfs: Some("initrd.gz".into()),
                cmdline: None,
            }
        );
        let plain = parse_config_txt("enable_uart=1\n", "kernel8.img");
        assert_eq!(
            (plain.kernel.as_str(), plain.device_tree, plain.initramfs),
            ("kernel8.img", None, None)
        );
    }

    #[test]
    fn native_linux_gets_its_initramfs_and_command_line() {
        let mut files = vec![CardFile::new("config.txt", b"arm_64bit=1\n".to_vec())];
        add_native_linux(&mut files, b"cpio".to_vec());
        let config = String::from_utf8(files[0].data.clone()).unwrap();
        let boot = parse_config_txt(&config, "kernel8.img");
        assert_eq!(boot.initramfs.as_deref(), Some(INITRAMFS_NAME));
        assert!(files.iter().any(|f| f.name == "cmdline.txt"));
        assert!(files
            .iter()
            .any(|f| f.name == INITRAMFS_NAME && f.data == b"cpio"));
    }
}
