//! Boots the `qemu-virt-hello` board through U-Boot (`cargo xtask run --uboot`: Debian's
//! `qemu_arm64` U-Boot as QEMU's firmware, `qfw load` and `booti` from the environment xtask
//! writes) and checks that U-Boot really ran and moved the image to where Bulkhead is linked,
//! that Bulkhead started at EL2 after it, that both partitions counted and powered off, and that
//! QEMU then exited by itself (PSCI through SMC to QEMU's firmware emulation).

use std::time::Duration;

use bulkhead_tests::{xtask, Outcome};

/// QEMU run time allowed. Measured: 2.25-2.28 s from QEMU start to exit through U-Boot (3 runs
/// on the 2-core dev machine, QEMU 10.0; 2.06-2.13 s without U-Boot); 10 s is about 4.4x that.
const TIMEOUT: Duration = Duration::from_secs(10);
/// On top of the QEMU timeout: building the board (incremental: seconds; from scratch, minutes)
/// and, on a fresh machine, installing u-boot-qemu.
const BUILD_ALLOWANCE: Duration = Duration::from_secs(1200);

const PARTITIONS: [&str; 2] = ["hello-a", "hello-b"];

#[test]
fn hello_board_boots_through_uboot() {
    let secs = TIMEOUT.as_secs().to_string();
    let out = xtask(
        &[
            "run",
            "--uboot",
            "--board",
            "qemu-virt-hello",
            "--timeout",
            &secs,
        ],
        TIMEOUT + BUILD_ALLOWANCE,
    );
    out.assert_exited_by_itself();

    // U-Boot's banner, our environment loaded from flash (not U-Boot's default one), our boot
    // command, `qfw load`, and `booti` moving the image to RAM base + text_offset.
    let banner = out.assert_line_starting(0, "U-Boot 20");
    let env = out.assert_line_starting(banner, "Loading Environment from Flash... OK");
    let bootcmd = out.assert_line_starting(env, "bulkhead: U-Boot loads bulkhead.img");
    let loaded = out.assert_line_starting(bootcmd, "loading kernel to address 0000000040400000");
    let moved = out.assert_line_starting(loaded, "Moving Image from 0x40400000 to 0x40200000");
    let started = out.assert_line_starting(moved, "Starting kernel ...");
    // Then Bulkhead, at EL2.
    let bulkhead = out.assert_line(started, "where Bulkhead starts at EL2", |line| {
        line.starts_with("[bulkhead] ") && line.contains("starting at EL2")
    });
    for name in PARTITIONS {
        check_partition(&out, name, bulkhead);
    }
    out.assert_line_starting(bulkhead, "[bulkhead] INFO  all partitions have stopped");
}

/// `name` said hello after Bulkhead started, counted to 10 and powered its partition off.
fn check_partition(out: &Outcome, name: &str, from: usize) {
    let hello = out.assert_line_starting(from, &format!("[{name}] hello from {name}: vCPU 0 of 1"));
    let last = out.assert_line_starting(hello, &format!("[{name}] count 10/10 at "));
    out.assert_line_starting(
        last,
        &format!("[{name}] hello from {name}: done, powering off"),
    );
}
