//! Boots `test/qemu-virt-scrub`: a `hello scrub=3` partition finds its free memory all zero,
//! fills it with a pattern and restarts itself, three runs in all, while a `hello` partition
//! counts beside it. Each run must find nothing of the previous one: the hypervisor scrubs a
//! partition's memory before every load (`docs/security.md`).

use std::time::Duration;

use bulkhead_tests::run_board;

/// QEMU run time allowed. Measured: 1.3 s from `xtask run` to exit with the board built (the
/// counting neighbour takes 1 s of it); 15 s leaves room for a loaded 2-core host.
const TIMEOUT: Duration = Duration::from_secs(15);

const RUNS: u64 = 3;

#[test]
fn a_restarted_partition_finds_nothing_of_its_previous_run() {
    let out = run_board("test/qemu-virt-scrub", TIMEOUT);
    out.assert_exited_by_itself();
    let mut from = 0;
    for run in 1..=RUNS {
        let prefix = format!("[scrubber] scrub: run {run} of {RUNS}: ");
        from = out.assert_line_starting(from, &prefix);
        let line = out.lines()[from];
        let (kib, dirty) = parse(&line[prefix.len()..])
            .unwrap_or_else(|| out.fail(&format!("bad scrub line {line:?}")));
        if kib < 1024 {
            out.fail(&format!("run {run} checked only {kib} KiB: {line:?}"));
        }
        if dirty != 0 {
            out.fail(&format!(
                "run {run} found {dirty} words of an earlier run in its memory: {line:?}"
            ));
        }
        if run < RUNS {
            from = out.assert_line_starting(from, "[scrubber] scrub: filled it, restarting");
            from = out.assert_line_starting(
                from,
                "[bulkhead] INFO  partition scrubber requested a reset: restarting it",
            );
        }
    }
    out.assert_line_starting(from, "[scrubber] hello from scrubber: done, powering off");
    out.assert_line_starting(0, "[hello] hello from hello: done, powering off");
}

/// `<kib> KiB of free memory, <dirty> words not zero` → (kib, dirty).
fn parse(rest: &str) -> Option<(u64, u64)> {
    let (kib, rest) = rest.split_once(" KiB of free memory, ")?;
    let dirty = rest.strip_suffix(" words not zero")?;
    Some((kib.parse().ok()?, dirty.parse().ok()?))
}
