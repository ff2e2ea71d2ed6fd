//! Boots the `qemu-virt-hello` board (two `hello` partitions, one core each) and checks that
//! both partitions introduce themselves, count in order (with their elapsed time) and power off,
//! each on its own prefixed console lines, and that QEMU then exits by itself.

use std::time::Duration;

use bulkhead_tests::{run_board, Count, Outcome};

/// QEMU run time allowed. Measured: 2.13 s from QEMU start to exit (3 runs, 2.126-2.131 s, on
/// the 2-core dev machine; both partitions count 10 steps 200 ms apart, in parallel, so ~2 s is
/// wall-clock waiting, not CPU). 10 s is about 4.7x that.
const TIMEOUT: Duration = Duration::from_secs(10);

const PARTITIONS: [&str; 2] = ["hello-a", "hello-b"];

#[test]
fn two_hello_partitions_count_and_power_off() {
    let out = run_board("qemu-virt-hello", TIMEOUT);
    out.assert_exited_by_itself();
    for name in PARTITIONS {
        check_partition(&out, name);
    }
    check_lines_are_whole(&out);
}

/// `name` said hello on vCPU 0 of 1, counted 1..=N in order, then said it was done.
fn check_partition(out: &Outcome, name: &str) {
    let hello = out.assert_line_starting(0, &format!("[{name}] hello from {name}: vCPU 0 of 1"));
    let done = out.assert_line_starting(
        hello + 1,
        &format!("[{name}] hello from {name}: done, powering off"),
    );

    let counts: Vec<Count> = out
        .partition_lines(name)
        .into_iter()
        .filter(|(i, _)| (hello..done).contains(i))
        .filter(|(_, line)| line.starts_with("count "))
        .map(|(_, line)| {
            Count::parse(line)
                .unwrap_or_else(|| out.fail(&format!("[{name}] bad count line {line:?}")))
        })
        .collect();
    let Some(&Count {
        total: Some(total), ..
    }) = counts.first()
    else {
        out.fail(&format!(
            "[{name}] counted nothing (or forever) between hello and done"
        ));
    };
    let steps: Vec<(u64, Option<u64>)> = counts.iter().map(|c| (c.step, c.total)).collect();
    let expected: Vec<(u64, Option<u64>)> = (1..=total).map(|i| (i, Some(total))).collect();
    if steps != expected {
        out.fail(&format!(
            "[{name}] counted {steps:?}, expected 1/{total} to {total}/{total} in order"
        ));
    }
    // Steps are due 200 ms apart (the default period) from the guest's start: step i is printed
    // at i * 200 ms or later, and the guest's clock never goes backwards.
    for (i, count) in counts.iter().enumerate() {
        if count.ms < count.step * 200 || (i > 0 && count.ms < counts[i - 1].ms) {
            out.fail(&format!("[{name}] count times are off: {counts:?}"));
        }
    }
}

/// Every line with `hello from` is a whole line of one partition: `[X] hello from X...`.
fn check_lines_are_whole(out: &Outcome) {
    for line in out.lines() {
        if !line.contains("hello from") {
            continue;
        }
        let whole = PARTITIONS
            .iter()
            .any(|name| line.starts_with(&format!("[{name}] hello from {name}")));
        if !whole {
            out.fail(&format!(
                "line {line:?} is not a whole `[name] hello from name` line"
            ));
        }
    }
}
