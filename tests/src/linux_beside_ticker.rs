//! The scenario of the Linux boards (`qemu-virt-linux`, `qemu-virt-gicv2-linux`,
//! `rpi4-linux`): an unmodified Linux on two vCPUs in partition `linux`, beside the bare-metal
//! `ticker` (`hello` counting `count=240 period=500`). The markers these boards print and the
//! checks the test files that boot them share: Linux reached userspace, the ticker counted on
//! without a gap or a restart.

use crate::{Count, Outcome, QUIT_QEMU};

/// The Linux partition's name (its console prefix).
pub const LINUX: &str = "linux";
/// The bare-metal partition's name.
pub const TICKER: &str = "ticker";

/// What the initramfs' `/init` prints once userspace runs (`bulkhead_linux_guest::USERSPACE_MARKER`).
pub const USERSPACE: &str = "bulkhead-linux: userspace up";
/// busybox ash's banner, printed once the interactive shell has the console: input typed after
/// it reaches the shell.
pub const SHELL_READY: &str = "Enter 'help' for a list of built-in commands.";
/// The hypervisor's report when Linux powers its partition off (PSCI `SYSTEM_OFF`).
pub const POWERED_OFF: &str = "partition linux powered off";
/// The hypervisor's report when Linux reboots (PSCI `SYSTEM_RESET`).
pub const RESET: &str = "partition linux requested a reset: restarting it";
/// What the hypervisor prints when the machine powers off because every partition stopped.
pub const ALL_STOPPED: &str = "all partitions have stopped";
/// The start of a ticker count line, as a step marker.
pub const TICK: &str = "[ticker] count ";

/// The ticker's `period=` in the board config, in milliseconds.
pub const TICK_PERIOD_MS: u64 = 500;
/// The largest gap allowed between two consecutive ticks, in guest milliseconds. Ticks are due
/// every 500 ms at fixed times, so the gaps show how long cpu2 went without running the ticker.
/// Three periods allow a 1 s stall: under TCG the dev machine's 2 host cores run 3 busy vCPU
/// threads (Linux's two and the ticker's), and the host can leave one thread waiting a few
/// hundred milliseconds. A hypervisor that stops the ticker's core while Linux boots (a lock
/// held across a Linux trap, a console flood, a partition restart) shows up as a longer gap.
pub const MAX_TICK_GAP_MS: u64 = 1500;

/// Asserts the Linux userspace marker appeared as a whole `[linux]` line, returns its index.
#[track_caller]
pub fn assert_userspace(out: &Outcome, from: usize) -> usize {
    out.assert_line_starting(from, &format!("[{LINUX}] {USERSPACE}"))
}

/// The index of the first `[linux]` line at or after `from` that reads exactly `text` once
/// escape sequences are removed.
pub fn linux_line(out: &Outcome, from: usize, text: &str) -> Option<usize> {
    out.partition_text_lines(LINUX)
        .into_iter()
        .find(|(i, line)| *i >= from && line == text)
        .map(|(i, _)| i)
}

/// Checks the ticker's count lines: steps 1, 2, 3, ... without a gap or a restart (so one
/// `hello` banner), due times respected, no two consecutive ticks more than
/// [`MAX_TICK_GAP_MS`] apart (the first counted from the guest's start). Returns them.
#[track_caller]
pub fn check_ticks(out: &Outcome) -> Vec<(usize, Count)> {
    let counts = out.counts(TICKER);
    if counts.is_empty() {
        out.fail("the ticker printed no count line");
    }
    let banners = out
        .partition_lines(TICKER)
        .iter()
        .filter(|(_, line)| line.starts_with("hello from ticker"))
        .count();
    if banners != 1 {
        out.fail(&format!(
            "expected exactly one `hello from ticker` banner (no restart), found {banners}"
        ));
    }
    let mut previous_ms = 0;
    for (n, (_, count)) in counts.iter().enumerate() {
        let step = n as u64 + 1;
        if count.step != step || count.total != Some(240) {
            out.fail(&format!(
                "ticker count line {step} is {count:?}: expected step {step} of 240 (no skipped or \
                 repeated step)"
            ));
        }
        if count.ms < step * TICK_PERIOD_MS {
            out.fail(&format!("ticker step {step} came early: {count:?}"));
        }
        if count.ms.saturating_sub(previous_ms) > MAX_TICK_GAP_MS {
            out.fail(&format!(
                "the ticker stalled: step {step} at {} ms, {} ms after the previous one (at most \
                 {MAX_TICK_GAP_MS} ms allowed)",
                count.ms,
                count.ms - previous_ms
            ));
        }
        previous_ms = count.ms;
    }
    counts
}

/// Asserts the ticker printed a count line after line `after`, and returns how many.
#[track_caller]
pub fn assert_ticks_after(
    out: &Outcome,
    counts: &[(usize, Count)],
    after: usize,
    what: &str,
) -> usize {
    let n = counts.iter().filter(|(i, _)| *i > after).count();
    if n == 0 {
        out.fail(&format!("the ticker printed nothing after {what}"));
    }
    n
}

/// Steps for `run_interactive` that type `commands` once the shell is up, then wait for Linux
/// to power its partition off and quit QEMU on the third tick after that (the second is then a
/// whole line; a marker can match the start of a line whose end QEMU never prints once it
/// quits). `commands` must end with `poweroff`.
pub fn poweroff_steps(commands: &str) -> [(&str, &str); 5] {
    [
        (SHELL_READY, commands),
        (POWERED_OFF, ""),
        (TICK, ""),
        (TICK, ""),
        (TICK, QUIT_QEMU),
    ]
}

/// Steps that type `reboot` once the shell is up, wait for the restarted Linux's userspace and
/// quit QEMU on the second tick after it (so the one before is a whole line).
pub const REBOOT_STEPS: [(&str, &str); 5] = [
    (SHELL_READY, "reboot\n"),
    (RESET, ""),
    (USERSPACE, ""),
    (TICK, ""),
    (TICK, QUIT_QEMU),
];

/// `grep -c ^processor /proc/cpuinfo` answered 2 after line `up`: Linux has its 2 vCPUs.
#[track_caller]
pub fn assert_two_cpus(out: &Outcome, up: usize) {
    if linux_line(out, up, "2").is_none() {
        out.fail("`grep -c ^processor /proc/cpuinfo` did not print 2 (Linux has 2 vCPUs)");
    }
}

/// Linux powered its partition off after line `up` (the hypervisor's report), the ticker
/// counted on at least twice after that, and the machine did not power off. Returns the
/// report's line.
#[track_caller]
pub fn assert_powered_off_alone(out: &Outcome, up: usize) -> usize {
    let off = out.assert_line(up, &format!("`[bulkhead] ... {POWERED_OFF}`"), |line| {
        line.starts_with("[bulkhead] ") && line.contains(POWERED_OFF)
    });
    let counts = check_ticks(out);
    if assert_ticks_after(out, &counts, off, "Linux powered off") < 2 {
        out.fail("the ticker stopped counting after Linux powered off");
    }
    out.assert_not_contains(ALL_STOPPED);
    off
}

/// Linux reset its partition, which came up again, while the ticker counted on through both
/// boots without a restart, and nothing powered off. Returns the lines of the hypervisor's
/// report of the reset and of the second userspace marker.
#[track_caller]
pub fn assert_rebooted_alone(out: &Outcome) -> (usize, usize) {
    let first = assert_userspace(out, 0);
    let reset = out.assert_line(first, &format!("`[bulkhead] ... {RESET}`"), |line| {
        line.starts_with("[bulkhead] ") && line.contains(RESET)
    });
    let second = assert_userspace(out, reset);
    // Counting on through both boots with one banner: the ticker was never restarted.
    let counts = check_ticks(out);
    assert_ticks_after(out, &counts, reset, "Linux requested the reset");
    assert_ticks_after(out, &counts, second, "Linux came up again");
    out.assert_not_contains(POWERED_OFF);
    out.assert_not_contains(ALL_STOPPED);
    (reset, second)
}
