//! Boot-time refusals that need no partition to run: entered below EL2, the hypervisor says so
//! and stops instead of running partitions it could not isolate.

use std::time::Duration;

use bulkhead_tests::xtask;

/// QEMU run time allowed. The refusal is printed within milliseconds of QEMU starting
/// (measured: the message appears 0.1 s after start); the hypervisor then halts its CPU, so the
/// run always ends at this timeout.
const TIMEOUT_SECS: &str = "5";

#[test]
fn refuses_to_run_below_el2() {
    let out = xtask(
        &[
            "run",
            "--board",
            "qemu-virt-hello",
            "--timeout",
            TIMEOUT_SECS,
            "--",
            "-machine",
            "virtualization=off",
        ],
        Duration::from_secs(300),
    );
    out.assert_contains("entered at EL1, but Bulkhead must be entered at EL2");
    out.assert_not_contains("[hello-a]");
    if !out.timed_out() {
        out.fail("expected the run to end at its timeout, with the hypervisor halted");
    }
}
