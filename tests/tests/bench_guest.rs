//! Boots the benchmark guest (`partitions/bench`) in its partition of two vCPUs and checks that
//! every measurement completes: the boot figures, the virtual timer interrupt polled and taken
//! in an IRQ handler, the hypercall and MMIO round trips and the IPI between the two vCPUs (which
//! needs PSCI `CPU_ON` and SGIs), each with a well-formed result line, no error line, then
//! `bench: done` and a powered-off machine. Only that the figures exist is checked; what they are
//! is `cargo xtask bench`'s business. The board is the icount one (200 samples each, no compute
//! kernel), run here in ordinary wall-clock mode.

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed. Measured: 0.19-0.26 s from QEMU start to exit (3 runs on the 2-core
/// dev machine, QEMU 10.0, load average 3). 10 s leaves room for a machine busy with other QEMU
/// runs: the guest's two vCPUs spin while they measure, so they suffer most from a full host.
const TIMEOUT: Duration = Duration::from_secs(10);

const PARTITION: &str = "bench";

/// The results the board's `run=boot,timer-poll,timer-irq,hypercall,mmio,ipi` asks for.
const RESULTS: [&str; 7] = [
    "boot-first-instruction",
    "boot-first-line",
    "timer-poll",
    "timer-irq",
    "hypercall",
    "mmio",
    "ipi",
];

#[test]
fn every_measurement_completes_in_a_partition() {
    let out = run_board("bench/qemu-virt-bench-icount", TIMEOUT);
    out.assert_exited_by_itself();
    let guest = out.bench_lines(PARTITION);
    if !guest.contains(&"info partition=bench vcpus=2 counter-hz=62500000") {
        out.fail("no info line naming the partition, its two vCPUs and the counter frequency");
    }
    for name in RESULTS {
        let Some(line) = guest.iter().find(|l| l.split(' ').next() == Some(name)) else {
            out.fail(&format!("no result line for {name}"));
        };
        let fields: Vec<&str> = line.split(' ').skip(1).collect();
        let keys: Vec<&str> = fields
            .iter()
            .map(|f| f.split_once('=').map_or(*f, |(k, _)| k))
            .collect();
        let expected: &[&str] = if name.starts_with("boot") {
            &["unit", "value"]
        } else {
            &["unit", "n", "min", "median", "p99", "mean", "max"]
        };
        if keys != expected || !fields.iter().skip(1).all(|f| is_number_field(f)) {
            out.fail(&format!("malformed result line {line:?}"));
        }
        if !name.starts_with("boot") && !line.contains(" n=200 ") {
            out.fail(&format!(
                "{name} did not take the 200 samples asked for: {line:?}"
            ));
        }
    }
    let done = out.assert_line_starting(0, "[bench] bench: done");
    out.assert_line_starting(done, "[bulkhead] INFO  partition bench powered off");
}

/// `key=<unsigned integer>`.
fn is_number_field(field: &str) -> bool {
    field
        .split_once('=')
        .is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}
