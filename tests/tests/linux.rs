//! Boots the default board, `qemu-virt-linux`: an unmodified Linux (the recipe of
//! `partitions/linux`) on cpu0 and cpu1, beside the bare-metal `ticker` (`hello` counting
//! `count=240 period=500`) on cpu2, with cpu3 parked and the virtio disk passed through to Linux.
//!
//! Each test runs `cargo xtask run` without `--board`, so it also checks that the default board
//! is this one. Input goes to Linux (the first partition); the tests type only once the shell is
//! up ([`SHELL_READY`]), except the scripted example, which pipes everything in at start as
//! `printf ... | cargo xtask run` would. When its checks are done a test quits QEMU with
//! Ctrl-A x ([`QUIT_QEMU`]); the ticker would otherwise keep the machine running for minutes.
//!
//! Timeouts are about 4x the measured duration of each `cargo xtask run` (build check
//! included), measured on the 2-core dev machine under TCG, one run each, with the ticker
//! busy-waiting on cpu2 beside Linux (Linux reached userspace 4.5-4.9 s after QEMU started; the
//! same kernel natively 2.3-2.5 s).

use std::time::Duration;

use bulkhead_tests::linux_beside_ticker::{
    assert_powered_off_alone, assert_rebooted_alone, assert_ticks_after, assert_two_cpus,
    assert_userspace, check_ticks, linux_line, poweroff_steps, ALL_STOPPED, LINUX, POWERED_OFF,
    REBOOT_STEPS, SHELL_READY, TICK, USERSPACE,
};
use bulkhead_tests::{
    boot_with_input, repo_root, run_interactive, run_with_stdin, Input, Outcome, QUIT_QEMU,
};

/// `None`: no `--board`, the default board (`qemu-virt-linux`).
const DEFAULT_BOARD: Option<&str> = None;
/// The board's source, for the demo disk's file name and contents.
const BOARD_DTS: &str = "board-configs/qemu-virt-linux.dts";

/// Boot, one line of commands, quit: measured 6.0 s; 4x = 24 s.
const INFO_TIMEOUT: Duration = Duration::from_secs(24);
/// Boot to userspace and three more ticks: measured 7.6 s; 4x = 30 s.
const TICKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Boot, `poweroff` (busybox init's ~2 s grace periods), two ticks: measured 8.7 s; 4x = 35 s.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(35);
/// Boot, `reboot`, boot again, a tick: measured 14.1 s; 4x = 56 s, rounded to 60 s.
const REBOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The scripted example runs until this timeout (the ticker keeps the machine up), so it must
/// cover boot and `poweroff`: about the poweroff test's 8.7 s; 4x = 35 s.
const SCRIPTED_TIMEOUT: Duration = Duration::from_secs(35);
/// Boot on another CPU model, the scripted commands, `poweroff`, two ticks, quit: measured
/// 5 s each for cortex-a53, cortex-a76 and max (15 s for the three); 4x = 20 s.
const CPU_MODEL_TIMEOUT: Duration = Duration::from_secs(20);

/// The demo disk's file name and contents, from the board's `qemu` node.
fn disk_file() -> (String, String) {
    let path = repo_root().join(BOARD_DTS);
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let string = |property: &str| {
        let start = source
            .find(&format!("{property} = \""))
            .unwrap_or_else(|| panic!("{BOARD_DTS} has no {property}"))
            + property.len()
            + 4;
        let len = source[start..].find('"').expect("the string ends");
        source[start..start + len].replace("\\n", "\n")
    };
    (string("disk-file"), string("disk-contents"))
}

#[test]
fn linux_reaches_a_shell_with_two_cpus_its_memory_and_the_disk() {
    let (file, contents) = disk_file();
    let commands = format!(
        "grep -c ^processor /proc/cpuinfo\ngrep MemTotal /proc/meminfo\ncat /mnt/{file}\n\
         echo end-of-$((6*7))\n"
    );
    let out = run_interactive(
        DEFAULT_BOARD,
        INFO_TIMEOUT,
        &[(SHELL_READY, &commands), ("end-of-42", QUIT_QEMU)],
    );
    out.assert_steps_done();
    out.assert_contains("booting board qemu-virt-linux");
    let up = assert_userspace(&out, 0);
    assert_two_cpus(&out, up);

    // 256 MiB of partition memory, less what the kernel keeps for itself (native: 229380 kB).
    let mem_kib = out
        .partition_text_lines(LINUX)
        .into_iter()
        .filter(|(i, _)| *i > up)
        .find_map(|(_, line)| {
            line.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| out.fail("no `MemTotal: N kB` line from /proc/meminfo"));
    if !(200 * 1024..=256 * 1024).contains(&mem_kib) {
        out.fail(&format!(
            "MemTotal {mem_kib} kB is not within 200..256 MiB (the partition has 256 MiB)"
        ));
    }

    let expected = contents.trim();
    if linux_line(&out, up, expected).is_none() {
        out.fail(&format!(
            "`cat /mnt/{file}` did not print the disk file's contents {expected:?}"
        ));
    }
    out.assert_not_contains(ALL_STOPPED);
}

#[test]
fn ticker_keeps_ticking_while_linux_boots() {
    let out = run_interactive(
        DEFAULT_BOARD,
        TICKER_TIMEOUT,
        &[(USERSPACE, ""), (TICK, ""), (TICK, ""), (TICK, QUIT_QEMU)],
    );
    out.assert_steps_done();
    let up = assert_userspace(&out, 0);
    let counts = check_ticks(&out);
    assert_ticks_after(&out, &counts, up, "Linux reached userspace");
    // Ticks all the way through Linux's boot, not only before and after it.
    let boot = out.assert_line_starting(0, "[linux] ");
    let during = counts
        .iter()
        .filter(|(i, _)| (boot..up).contains(i))
        .count();
    if during == 0 {
        out.fail("the ticker printed nothing while Linux booted");
    }
}

#[test]
fn linux_powers_off_its_partition_alone() {
    let out = run_interactive(
        DEFAULT_BOARD,
        POWEROFF_TIMEOUT,
        &poweroff_steps("poweroff\n"),
    );
    out.assert_steps_done();
    let up = assert_userspace(&out, 0);
    assert_powered_off_alone(&out, up);
}

#[test]
fn linux_reboots_its_partition_alone() {
    let out = run_interactive(DEFAULT_BOARD, REBOOT_TIMEOUT, &REBOOT_STEPS);
    out.assert_steps_done();
    assert_rebooted_alone(&out);
}

/// The README's example: `printf 'grep -c ^processor /proc/cpuinfo\npoweroff\n' |
/// cargo xtask run --timeout N` prints 2 and Linux powers off alone; the ticker keeps the
/// machine running until the timeout.
#[test]
fn scripted_input_piped_at_start() {
    let out = run_with_stdin(DEFAULT_BOARD, SCRIPTED_TIMEOUT, SCRIPT);
    check_scripted_run(&out);
}

/// The scripted example's input: how many CPUs Linux has, then power off.
const SCRIPT: &[u8] = b"grep -c ^processor /proc/cpuinfo\npoweroff\n";

/// Linux boots unmodified on older and newer cores: an ARMv8.0 Cortex-A53, an ARMv8.2
/// Cortex-A76 (RAS), and QEMU's `max`, an Armv9 core with SVE, SME, pointer authentication and
/// more, whose features the guest gets (see `el2_controls`). Each answers the scripted example's
/// question, powers off alone, and the run is quit once the ticker has ticked after that.
#[test]
fn linux_boots_on_other_cpu_models() {
    let script = std::str::from_utf8(SCRIPT).expect("the script is text");
    for cpu in ["cortex-a53", "cortex-a76", "max"] {
        let steps = [
            (SHELL_READY, script),
            (POWERED_OFF, ""),
            (TICK, ""),
            (TICK, QUIT_QEMU),
        ];
        let out = boot_with_input(
            &["run", "--cpu", cpu],
            CPU_MODEL_TIMEOUT,
            Input::Steps(&steps),
        );
        out.assert_steps_done();
        if !out.output.contains(&format!("-cpu {cpu} ")) {
            out.fail(&format!("expected QEMU to run with -cpu {cpu}"));
        }
        check_scripted_answer(&out);
    }
}

/// What the scripted example must show: 2 CPUs, Linux powered off alone, the ticker counting
/// on until the timeout.
fn check_scripted_run(out: &Outcome) {
    let off = check_scripted_answer(out);
    let counts = check_ticks(out);
    assert_ticks_after(out, &counts, off, "Linux powered off");
    if !out.timed_out() {
        out.fail("expected the run to end at its timeout, with the ticker still counting");
    }
}

/// Linux answered 2 CPUs and powered off; returns the line where it did.
fn check_scripted_answer(out: &Outcome) -> usize {
    let up = assert_userspace(out, 0);
    // The shell echoes the command (after its prompt and a cursor query); the answer is a line
    // of its own.
    assert_two_cpus(out, up);
    out.assert_line(up, &format!("`[bulkhead] ... {POWERED_OFF}`"), |line| {
        line.starts_with("[bulkhead] ") && line.contains(POWERED_OFF)
    })
}
