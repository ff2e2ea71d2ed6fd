//! Boots `test/qemu-virt-uart-passthrough`: the hypervisor has no console and the only partition
//! owns the physical UART as a passthrough device. Its lines must reach the console straight
//! from the guest (no `[name] ` prefix, nothing from the hypervisor) and it powers off by itself.

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed. Measured: 0.8 s from QEMU start to exit (3 steps 200 ms apart);
/// 10 s leaves room for a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn a_partition_can_own_the_physical_uart() {
    let out = run_board("test/qemu-virt-uart-passthrough", TIMEOUT);
    out.assert_exited_by_itself();
    out.assert_line_starting(0, "hello from uart-owner: vCPU 0 of 1");
    out.assert_line_starting(0, "count 3/3 at ");
    out.assert_line_starting(0, "hello from uart-owner: done, powering off");
    out.assert_not_contains("[uart-owner]");
    out.assert_not_contains("[bulkhead]");
}
