//! Boots `test/qemu-virt-trespass`: `hello-a` runs `hello`, `trespasser` writes outside its
//! memory. The hypervisor must stop the trespasser (reporting the faulting address) before the
//! write lands, and `hello-a` must carry on undisturbed to its own power-off.

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed. Measured: 2.13 s from QEMU start to exit (3 runs, 2.125-2.127 s, on
/// the 2-core dev machine; dominated by hello-a's 10 steps 200 ms apart, the trespasser is
/// stopped within milliseconds). 10 s is about 4.7x that.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the trespasser writes: 0x1000 past the end of its 16 MiB at guest-physical 0x40000000.
const TRESPASS_ADDRESS: &str = "0x41001000";

#[test]
fn trespasser_is_stopped_and_hello_carries_on() {
    let out = run_board("test/qemu-virt-trespass", TIMEOUT);
    out.assert_exited_by_itself();

    let attempt = out.assert_line(0, "where the trespasser announces its write", |line| {
        line.contains(&format!("writing to {TRESPASS_ADDRESS}"))
    });
    let report = out.assert_line(
        attempt,
        &format!("reporting that the trespasser was stopped at {TRESPASS_ADDRESS}"),
        |line| {
            let line = line.to_ascii_lowercase();
            line.contains("trespasser")
                && line.contains("stopped")
                && line.contains(TRESPASS_ADDRESS)
        },
    );
    out.assert_not_contains("isolation is broken");
    out.assert_line_starting(
        report + 1,
        "[hello-a] hello from hello-a: done, powering off",
    );
}
