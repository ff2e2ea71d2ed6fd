//! `direct-interrupts` partitions: they take their cores' physical interrupts themselves, and
//! isolation holds.
//!
//! Boots `test/qemu-virt-direct`: `hello-a` (an ordinary partition on cpu0, owning virtio31's
//! SPI, INTID 79) beside the `trespasser` with `direct-interrupts` on cpu1. The trespasser's
//! interrupt probe must take all its timer interrupts and its own SGI, none of its SGIs towards
//! the other cores (nor may any reach them: the hypervisor would report an unexpected physical
//! interrupt there) and not hello-a's SPI, which it tries to enable, route to itself and pend.
//! Then it writes outside its memory and is stopped, and hello-a counts to its end.
//!
//! Boots `test/qemu-virt-direct-smp`: the benchmark guest as a two-vCPU direct partition beside
//! hello-a measures its timer interrupt (polled and taken) and the IPI between its cores (a
//! trapped SGI write sent on as a physical SGI to its other core), each sample of each
//! arriving.

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed for the probe board. Measured: 2.06-2.12 s from QEMU start to exit (3
/// runs on the 2-core dev machine, load average 0.8; hello-a's 10 steps 200 ms apart dominate).
/// 10 s is about 4.7x that.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// QEMU run time allowed for the two-vCPU board. Measured: 0.56-0.62 s (3 runs, same machine,
/// load average 2; hello-a's 5 steps 100 ms apart); the bench guest's two vCPUs spin while they
/// measure, so they suffer most from a busy host.
const BENCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the trespasser writes at the end: 0x1000 past the end of its 16 MiB at 0x40000000.
const TRESPASS_ADDRESS: &str = "0x41001000";

#[test]
fn a_direct_partition_takes_its_own_interrupts_and_nobody_elses() {
    let out = run_board("test/qemu-virt-direct", PROBE_TIMEOUT);
    out.assert_exited_by_itself();
    let probe = out.assert_line_starting(0, "[trespasser] trespasser: probing interrupts");
    let mut at = probe;
    for line in [
        "[trespasser] trespasser: timer interrupts taken 20 of 20",
        "[trespasser] trespasser: own SGI 2 taken 1",
        "[trespasser] trespasser: SGI 3 to the other cores taken 0",
        "[trespasser] trespasser: foreign SPI 79 taken 0",
        "[trespasser] trespasser: other interrupts taken 0",
    ] {
        at = out.assert_line_starting(at, line);
    }
    // A leaked SGI or SPI on another core would reach the hypervisor there as an interrupt
    // nobody owns.
    out.assert_not_contains("unexpected physical interrupt");
    // Its fault stops it alone; hello-a counts to its end.
    out.assert_trespasser_stopped(TRESPASS_ADDRESS);
}

#[test]
fn the_bench_guest_measures_with_direct_interrupts() {
    let out = run_board("test/qemu-virt-direct-smp", BENCH_TIMEOUT);
    out.assert_exited_by_itself();
    let guest = out.bench_lines("bench");
    for name in ["timer-poll", "timer-irq", "ipi"] {
        let prefix = format!("{name} unit=ns n=500 ");
        if !guest.iter().any(|l| l.starts_with(&prefix)) {
            out.fail(&format!("no result line for {name} with its 500 samples"));
        }
    }
    let done = out.assert_line_starting(0, "[bench] bench: done");
    out.assert_line_starting(done, "[bulkhead] INFO  partition bench powered off");
}
