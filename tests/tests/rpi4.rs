//! Boots the Raspberry Pi 4 boards on QEMU `raspi4b` (QEMU 10): the hypervisor relocated to
//! where the Pi's loaders put it (0x200000), its GICv2 (GIC-400) backend, the cores started from
//! their spin tables, the board powered off through the PM watchdog.
//!
//! - `rpi4-linux`: Linux on cores 0 and 1 reaches userspace with 2 CPUs and reads the SD card
//!   through the SD controller passed through to it, while the ticker counts on core 2;
//!   `poweroff` and `reboot` in Linux stop or restart its partition alone.
//! - `test/rpi4-trespass`: the trespasser is stopped, hello-a carries on, and once it is done
//!   the hypervisor powers the board off (QEMU exits on the watchdog's reset).
//!
//! Timeouts are about 4x the measured duration of each whole `cargo xtask run` (build check
//! included), one run each on the 2-core dev machine with QEMU 10.0 under TCG.

use std::time::Duration;

use bulkhead_tests::linux_beside_ticker::{
    assert_powered_off_alone, assert_rebooted_alone, assert_two_cpus, assert_userspace,
    poweroff_steps, ALL_STOPPED, LINUX, REBOOT_STEPS,
};
use bulkhead_tests::{run_board, run_interactive, Outcome};

const BOARD: &str = "rpi4-linux";

/// Boot, a command, `poweroff`, three ticks: measured 18.9 s (host load about 2.5); 4x = 76 s,
/// rounded to 80 s.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(80);
/// Boot, `reboot`, boot again, two ticks: measured 19.1 s; 4x = 76 s, rounded to 80 s.
const REBOOT_TIMEOUT: Duration = Duration::from_secs(80);
/// hello-a's 10 steps 200 ms apart, then the power-off: measured 5.7 s; 4x = 23 s, 25 s.
const TRESPASS_TIMEOUT: Duration = Duration::from_secs(25);

/// What the Linux partition's initramfs prints once it has mounted the card's boot partition
/// (the Pi's native initramfs, `cargo xtask image --kernel linux`'s, with its card check).
const CARD_MOUNTED: &str = "bulkhead-card: /dev/mmcblk0p1 mounted read-only on /boot";
const CARD_FILES: &str = "bulkhead-card: files:";

/// The hypervisor ran on the Pi: QEMU raspi4b, the image where the Pi's loaders put it, the
/// GIC-400, the Pi's counter frequency read rather than assumed.
fn check_hypervisor_on_the_pi(out: &Outcome) {
    if !out.output.contains("-M raspi4b ") {
        out.fail("expected QEMU raspi4b");
    }
    out.assert_line(
        0,
        "where the hypervisor starts relocated to 0x200000",
        |line| {
            line.starts_with("[bulkhead] ")
                && line.contains("starting at EL2 on CPU 0x0 at 0x200000")
                && line.contains("counter at 62500000 Hz")
        },
    );
    out.assert_line(0, "where the hypervisor brings up the GIC-400", |line| {
        line.starts_with("[bulkhead] ") && line.contains("GICv2 with 4 CPU interfaces")
    });
}

#[test]
fn linux_reads_its_sd_card_with_two_cpus_and_powers_off_alone() {
    let out = run_interactive(
        Some(BOARD),
        POWEROFF_TIMEOUT,
        &poweroff_steps("grep -c ^processor /proc/cpuinfo\npoweroff\n"),
    );
    out.assert_steps_done();
    check_hypervisor_on_the_pi(&out);
    let up = assert_userspace(&out, 0);
    // The SD controller is Linux's: it found the card and mounted its boot partition.
    let mounted = out.assert_line(0, "where Linux mounts the SD card", |line| {
        line == format!("[{LINUX}] {CARD_MOUNTED}")
    });
    let files = out.assert_line(mounted, "listing the card's files", |line| {
        line.starts_with(&format!("[{LINUX}] {CARD_FILES}"))
    });
    if !out.lines()[files]
        .split_whitespace()
        .any(|f| f == "kernel8.img")
    {
        out.fail("the card's boot partition has no kernel8.img");
    }
    assert_two_cpus(&out, up);
    assert_powered_off_alone(&out, up);
}

#[test]
fn linux_reboots_its_partition_alone() {
    let out = run_interactive(Some(BOARD), REBOOT_TIMEOUT, &REBOOT_STEPS);
    out.assert_steps_done();
    check_hypervisor_on_the_pi(&out);
    let (reset, _) = assert_rebooted_alone(&out);
    // The restarted Linux found its SD card again.
    out.assert_line(
        reset,
        "where the restarted Linux mounts the SD card",
        |line| line == format!("[{LINUX}] {CARD_MOUNTED}"),
    );
}

#[test]
fn trespasser_is_stopped_and_the_board_powers_off() {
    let out = run_board("test/rpi4-trespass", TRESPASS_TIMEOUT);
    // QEMU exits on the PM watchdog's reset (-no-reboot), not on the timeout.
    out.assert_exited_by_itself();
    check_hypervisor_on_the_pi(&out);
    let done = out.assert_trespasser_stopped("0x41001000");
    out.assert_line(done, "where the hypervisor powers the board off", |line| {
        line.starts_with("[bulkhead] ") && line.contains(ALL_STOPPED)
    });
}
