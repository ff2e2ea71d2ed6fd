//! The default board's scenario on QEMU virt with a GICv2 (`qemu-virt-gicv2-linux`: the same
//! partitions on `platforms/qemu-virt-gicv2.dtsi`, run with `gic-version=2`): the hypervisor
//! drives the GICv2 and gives each partition a virtual GICv2, Linux reaches userspace with its
//! two vCPUs and the passed-through virtio disk, powers its partition off alone, and the ticker
//! counts on throughout. The GICv3 runs of the same scenario are `linux.rs`'s.

use std::time::Duration;

use bulkhead_tests::linux_beside_ticker::{
    assert_powered_off_alone, assert_two_cpus, assert_userspace, linux_line, poweroff_steps,
};
use bulkhead_tests::run_interactive;

const BOARD: &str = "qemu-virt-gicv2-linux";

/// Boot, three commands, `poweroff` (busybox init's ~2 s grace periods), three ticks: measured
/// 6.5 s for the whole `cargo xtask run` with QEMU 10.0 on the 2-core dev machine; 30 s is
/// about 4.5x that.
const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn linux_and_the_ticker_run_on_a_gicv2() {
    let commands = "grep -c ^processor /proc/cpuinfo\ncat /mnt/hello.txt\npoweroff\n";
    let out = run_interactive(Some(BOARD), TIMEOUT, &poweroff_steps(commands));
    out.assert_steps_done();
    if !out
        .output
        .contains("-M virt,virtualization=on,gic-version=2 ")
    {
        out.fail("expected QEMU virt with gic-version=2");
    }
    out.assert_line(0, "where the hypervisor brings up a GICv2", |line| {
        line.starts_with("[bulkhead] ") && line.contains("GICv2 with 4 CPU interfaces")
    });
    // Linux's GICv3 driver would say `GICv3: ...`; its GICv2 driver says nothing of its own.
    if out
        .lines()
        .iter()
        .any(|line| line.starts_with("[linux] ") && line.contains("GICv3"))
    {
        out.fail("Linux found a GICv3, not the GICv2 of its platform");
    }
    let up = assert_userspace(&out, 0);
    assert_two_cpus(&out, up);
    // The virtio disk's interrupt reached Linux through the virtual GICv2: the file was read.
    if linux_line(
        &out,
        up,
        "hello from the disk passed through to the linux partition",
    )
    .is_none()
    {
        out.fail("`cat /mnt/hello.txt` did not print the disk file's contents");
    }
    assert_powered_off_alone(&out, up);
}
