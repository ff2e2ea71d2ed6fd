//! `cargo xtask image`: makes a Raspberry Pi 4 SD card and boots it on QEMU `raspi4b` the way
//! the Pi's firmware would (kernel, device tree, initramfs and command line read back from the
//! card image's FAT partition by `--run`, the card itself as QEMU's SD card), and checks that
//! the payload booted, that Linux read the card's partition table and mounted its FAT boot
//! partition, and found the files `image` put there. Two payloads:
//!
//! - the `rpi4-linux` board: `kernel8.img` is the hypervisor with its bundle, and the card is
//!   read by the Linux partition, through the SD controller passed through to it;
//! - Debian's arm64 kernel booted natively (`--kernel linux`), the card that checks a Pi, its
//!   card and its serial console without the hypervisor.

use std::path::Path;
use std::time::Duration;

use bulkhead_tests::{repo_root, xtask_with_input, Input, Outcome, BOOT_MESSAGE, QUIT_QEMU};

/// QEMU run time allowed. Measured: the card check's last line 8.6-11.0 s after QEMU starts
/// natively (3 runs on the 2-core dev machine, QEMU 10.0 TCG), 14 s in the `rpi4-linux` board's
/// Linux partition; 60 s is more than 4x either.
const TIMEOUT: Duration = Duration::from_secs(60);
/// On top of the QEMU timeout: building, downloading Debian's packages the first time
/// (kernel, firmware, busybox) and installing QEMU 10 on a fresh machine.
const BUILD_ALLOWANCE: Duration = Duration::from_secs(1200);

/// The card check's lines (the native Linux's initramfs prints them once it has mounted the
/// card's boot partition on /boot).
const MOUNTED: &str = "bulkhead-card: /dev/mmcblk";
const FILES: &str = "bulkhead-card: files:";
const KERNEL_LINE: &str = "bulkhead-card: config.txt: kernel=kernel8.img";

/// What every Pi 4 card holds.
const CARD_FILES: [&str; 5] = [
    "kernel8.img",
    "config.txt",
    "start4.elf",
    "fixup4.dat",
    "bcm2711-rpi-4-b.dtb",
];

#[test]
fn the_boards_sd_card_boots_the_hypervisor_on_qemu_raspi4b() {
    let out = boot_card(&["--board", "rpi4-linux"]);
    // The hypervisor ran, where the Pi's loaders put the image, and started Linux in its
    // partition, on the partition's device tree.
    out.assert_line(0, "where the hypervisor starts", |l| {
        l.starts_with("[bulkhead] ") && l.contains("starting at EL2 on CPU 0x0 at 0x200000")
    });
    out.assert_line(0, "with the Linux partition's machine model", |l| {
        l.starts_with("[linux] ") && l.contains("Machine model: Bulkhead partition linux")
    });
    check_card_read(&out);
}

#[test]
fn a_native_linux_card_boots_on_qemu_raspi4b() {
    let out = boot_card(&["--platform", "rpi4", "--kernel", "linux"]);
    // The kernel ran on the card's device tree.
    out.assert_line(0, "with the Pi 4's machine model", |l| {
        l.contains("Machine model: Raspberry Pi 4 Model B")
    });
    check_card_read(&out);
}

/// `cargo xtask image <payload> --run`, quit once the card check is done; checks the paths
/// `image` printed and that QEMU raspi4b ran until then.
fn boot_card(payload: &[&str]) -> Outcome {
    let secs = TIMEOUT.as_secs().to_string();
    let mut args = vec!["image"];
    args.extend(payload);
    args.extend(["--run", "--timeout", &secs]);
    // Quit QEMU once the last check line is out (QEMU's own escape: the guest has no say).
    let steps = [(KERNEL_LINE, QUIT_QEMU)];
    let out = xtask_with_input(&args, TIMEOUT + BUILD_ALLOWANCE, Input::Steps(&steps));

    check_printed_paths(&out);
    if !out.output.contains(BOOT_MESSAGE) || !out.output.contains("on QEMU raspi4b") {
        out.fail("QEMU raspi4b was never started");
    }
    if out.timed_out() {
        out.fail("the card check never finished: the timeout stopped QEMU");
    }
    out.assert_steps_done();
    out.assert_success();
    out
}

/// Linux read the card's partition table, mounted its FAT partition and found every file
/// `image` put there (the checks look for the card check's text anywhere in a line: in a
/// partition, lines carry a `[linux] ` prefix).
fn check_card_read(out: &Outcome) {
    // Linux found the card and its one partition in the MBR.
    let card = out.assert_line(0, "where Linux reads the card's partition table", |l| {
        l.contains("mmcblk") && l.trim_end().ends_with(": p1")
    });
    // ... mounted the FAT partition and found every file image put there.
    let mounted = out.assert_line(card, "saying the card is mounted", |l| {
        l.contains(MOUNTED) && l.contains("p1 mounted read-only on /boot")
    });
    let files = out.assert_line(mounted, "listing the card's files", |l| l.contains(FILES));
    let listed: Vec<&str> = out.lines()[files]
        .split_once(FILES)
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    for name in CARD_FILES {
        if !listed.contains(&name) {
            out.fail(&format!(
                "{name} is not on the card's boot partition: {listed:?}"
            ));
        }
    }
    out.assert_line(files, "with config.txt's kernel line", |l| {
        l.contains(KERNEL_LINE)
    });
}

/// `image` ends with the paths of kernel8.img and sdcard.img; both exist and the card image's
/// size is a power of two (QEMU's SD card needs it) with an MBR.
fn check_printed_paths(out: &Outcome) {
    for (label, file) in [
        ("kernel8.img: ", "kernel8.img"),
        ("sdcard.img:  ", "sdcard.img"),
    ] {
        let i = out.assert_line_starting(0, label);
        let path = out.lines()[i][label.len()..].trim().to_owned();
        if !path.ends_with(file) {
            out.fail(&format!("{label}{path} is not a {file}"));
        }
        let path = repo_root().join(path);
        let Ok(meta) = std::fs::metadata(&path) else {
            out.fail(&format!("{} does not exist", path.display()));
        };
        if file == "sdcard.img" {
            check_card_image(out, &path, meta.len());
        }
    }
}

fn check_card_image(out: &Outcome, path: &Path, len: u64) {
    if !len.is_power_of_two() {
        out.fail(&format!(
            "{}: {len} bytes, not a power of two",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| out.fail(&format!("{e}")));
    if bytes[510..512] != [0x55, 0xaa] || bytes[446 + 4] != 0x0c {
        out.fail(&format!(
            "{}: no MBR with a FAT32 (LBA) partition",
            path.display()
        ));
    }
}
