//! Boots `test/qemu-virt-trespass`: `hello-a` runs `hello`, `trespasser` writes outside its
//! memory. The hypervisor must stop the trespasser (reporting the faulting address) before the
//! write lands, and `hello-a` must carry on undisturbed to its own power-off.
//!
//! Boots `test/qemu-virt-passthrough-probe`: `hello-a` owns the virtio-mmio device virtio31,
//! `trespasser` writes to that device's registers. A device passed through to one partition
//! must be out of reach of the others: the trespasser is stopped the same way.

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed. Measured: 2.13 s from QEMU start to exit (3 runs, 2.125-2.127 s, on
/// the 2-core dev machine; dominated by hello-a's 10 steps 200 ms apart, the trespasser is
/// stopped within milliseconds). 10 s is about 4.7x that.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the trespasser writes: 0x1000 past the end of its 16 MiB at guest-physical 0x40000000.
const TRESPASS_ADDRESS: &str = "0x41001000";

/// Where the trespasser of the passthrough probe writes: virtio31's registers, passed through
/// to hello-a.
const PASSTHROUGH_ADDRESS: &str = "0xa003e00";

#[test]
fn trespasser_is_stopped_and_hello_carries_on() {
    check_trespasser_stopped("test/qemu-virt-trespass", TRESPASS_ADDRESS);
}

/// The same run time as the trespass board: hello-a counts its 10 steps, the trespasser is
/// stopped at once (measured 2.1 s from QEMU start to exit, like the trespass board).
#[test]
fn device_of_another_partition_is_out_of_reach() {
    check_trespasser_stopped("test/qemu-virt-passthrough-probe", PASSTHROUGH_ADDRESS);
}

/// Boots `board` and checks its trespasser was stopped before its write to `address` went
/// through, and hello-a finished.
fn check_trespasser_stopped(board: &str, address: &str) {
    let out = run_board(board, TIMEOUT);
    out.assert_exited_by_itself();
    out.assert_trespasser_stopped(address);
}
