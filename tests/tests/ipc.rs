//! Channels between partitions, end to end (see `docs/channels.md`). Four boards, each booted
//! once per test binary and shared by the tests that read its output:
//!
//! - `qemu-virt-ipc` (the demo): Linux userspace sends 1000 requests to the bare-metal `echo`,
//!   which answers each; both check every message (sequence numbers, checksums).
//! - `test/qemu-virt-ipc-bare`: the same between two bare-metal partitions, one request at a
//!   time (the echo ringing with the `CHANNEL_RING` hypercall), with a malformed and an
//!   oversized message first, hypercalls about a channel the sender is not an endpoint of,
//!   a read-only endpoint that writes and a partition that is no endpoint reaching for the
//!   channel.
//! - `test/qemu-virt-ipc-stop`: the echo stops after 300 of 1000 requests.
//! - `test/qemu-virt-ipc-restart`: the demo with the echo restarting after 300 answers, and a
//!   partition writing to the echo's doorbell page.
//! - `test/qemu-virt-ipc-linux-echo`: the demo turned round, one request at a time, so that
//!   each side waits for every message on its doorbell.
//!
//! Timeouts are about 4x (at least 10 s) the QEMU run time measured on the 2-core dev machine
//! (see each constant).

use std::sync::OnceLock;
use std::time::Duration;

use bulkhead_tests::{run_board, Outcome};

/// `qemu-virt-ipc`: Linux boots, 1000 round trips, both power off. Measured 4.2 and 4.6 s from
/// QEMU start to exit (machine load 4); 4x rounded up.
const DEMO_TIMEOUT: Duration = Duration::from_secs(20);
/// The bare-metal boards: measured 0.17-0.19 s (bare) and 1.1-1.2 s (stop: the sender waits
/// 1 s for the stopped echo); the 10 s floor of the other bare-metal tests.
const BARE_TIMEOUT: Duration = Duration::from_secs(10);
/// `test/qemu-virt-ipc-restart`: the demo, an echo restart, and the echo's 3 s of idling after
/// Linux is done. Measured 7.0 and 7.4 s (machine load 4); 4x rounded up.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// `test/qemu-virt-ipc-linux-echo`: Linux boots, 300 ping-pongs. Measured 3.4 and 4.4 s
/// (machine load 2); 4x rounded up. Without working doorbells it would take at least 30 s (300
/// of the sender's 100 ms waits), or 300 s (Linux's 1 s waits).
const LINUX_ECHO_TIMEOUT: Duration = Duration::from_secs(20);

/// Boots `board` the first time it is asked for; later calls get the same outcome.
fn boot_once(cell: &'static OnceLock<Outcome>, board: &str, timeout: Duration) -> &'static Outcome {
    cell.get_or_init(|| {
        let out = run_board(board, timeout);
        eprintln!(
            "{board}: {:.1} s (build check included)",
            out.elapsed.as_secs_f64()
        );
        out
    })
}

fn demo() -> &'static Outcome {
    static OUT: OnceLock<Outcome> = OnceLock::new();
    boot_once(&OUT, "qemu-virt-ipc", DEMO_TIMEOUT)
}

fn bare() -> &'static Outcome {
    static OUT: OnceLock<Outcome> = OnceLock::new();
    boot_once(&OUT, "test/qemu-virt-ipc-bare", BARE_TIMEOUT)
}

fn stop() -> &'static Outcome {
    static OUT: OnceLock<Outcome> = OnceLock::new();
    boot_once(&OUT, "test/qemu-virt-ipc-stop", BARE_TIMEOUT)
}

fn linux_echo() -> &'static Outcome {
    static OUT: OnceLock<Outcome> = OnceLock::new();
    boot_once(&OUT, "test/qemu-virt-ipc-linux-echo", LINUX_ECHO_TIMEOUT)
}

fn restart() -> &'static Outcome {
    static OUT: OnceLock<Outcome> = OnceLock::new();
    boot_once(&OUT, "test/qemu-virt-ipc-restart", RESTART_TIMEOUT)
}

/// The `ipc: <sent> sent, <verified> verified, <lost> lost` line of `partition`: its index and
/// the three numbers.
#[track_caller]
fn summary(out: &Outcome, partition: &str) -> (usize, [u64; 3]) {
    let parsed = out
        .partition_lines(partition)
        .into_iter()
        .find_map(|(i, line)| {
            let rest = line.strip_prefix("ipc: ")?;
            let mut numbers = rest
                .split(", ")
                .zip([" sent", " verified", " lost"])
                .map(|(field, unit)| field.strip_suffix(unit)?.parse().ok());
            let sent = numbers.next()??;
            let verified = numbers.next()??;
            let lost = numbers.next()??;
            Some((i, [sent, verified, lost]))
        });
    parsed.unwrap_or_else(|| out.fail(&format!("no `ipc:` summary line from {partition}")))
}

/// The median round trip `partition`'s `ipc-bench:` line reports for `count` round trips with
/// one request in flight, in microseconds.
#[track_caller]
fn median_round_trip_us(out: &Outcome, partition: &str, count: u64) -> u64 {
    let prefix = format!("ipc-bench: window 1, {count} round trips in ");
    out.partition_lines(partition)
        .into_iter()
        .find_map(|(_, l)| {
            let rest = l.strip_prefix(prefix.as_str())?;
            rest.split(", median ")
                .nth(1)?
                .split(" us")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| out.fail(&format!("no `{prefix}...` line from {partition}")))
}

/// Asserts `partition` was stopped by a stage-2 fault of `kind` (e.g. `permission fault`) at
/// `address`, after announcing its write, and that the write never went through.
#[track_caller]
fn assert_stopped_by_fault(out: &Outcome, partition: &str, address: &str, kind: &str) {
    let attempt = out.assert_line(0, "announcing the trespasser's write", |line| {
        line == format!("[{partition}] trespasser: writing to {address} outside my memory")
    });
    out.assert_line(attempt, &format!("stopping {partition} for it"), |line| {
        line.contains(&format!("partition {partition} stopped: stage-2 data abort: 4-byte write at IPA {address} ({kind}"))
    });
    out.assert_not_contains(&format!("[{partition}] trespasser: write went through"));
}

#[test]
fn linux_userspace_and_bare_metal_exchange_1000_checked_messages() {
    let out = demo();
    out.assert_exited_by_itself();
    // Linux found the channel in its device tree and waits for the doorbell as GPIO edges.
    out.assert_line(0, "saying how Linux reaches the channel", |line| {
        line.starts_with("[linux] ipc-demo: channel ipc0 via /dev/mem at the addresses of ")
            && line.contains("(doorbell interrupts: GPIO line 0 of /dev/gpiochip")
            && line.contains("endpoint 0, epoch 1")
    });
    let (at, [sent, verified, lost]) = summary(out, "linux");
    assert_eq!(
        (sent, verified, lost),
        (1000, 1000, 0),
        "{}",
        out.lines()[at]
    );
    out.assert_contains("[linux] ipc-demo: 0 corrupt, 0 duplicate, 0 peer restarts");
    out.assert_contains("[echo] ipc-echo: answered 1000 requests\r\n");
    out.assert_contains("[bulkhead] INFO  partition linux powered off");
    out.assert_contains("[bulkhead] INFO  all partitions have stopped: powering off");
    out.assert_not_contains("stopped: stage-2");
}

/// One request at a time, so both sides wait for every message: the echo on the sender's
/// doorbell page write, the sender on the echo's `CHANNEL_RING` hypercall.
#[test]
fn two_bare_metal_partitions_exchange_1000_checked_messages() {
    let out = bare();
    out.assert_exited_by_itself();
    let (at, numbers) = summary(out, "sender");
    assert_eq!(numbers, [1000, 1000, 0], "{}", out.lines()[at]);
    out.assert_contains("[sender] ipc-echo: 0 corrupt, 0 duplicate, 0 peer restarts");
    out.assert_contains("[echo] ipc-echo: answered 1000 requests\r\n");
    for (partition, ring) in [("sender", ""), ("echo", ", rings with CHANNEL_RING")] {
        out.assert_line(
            0,
            &format!("with {partition}'s doorbell interrupt"),
            |line| {
                line.starts_with(&format!("[{partition}] ipc-echo: channel ipc0 ("))
                    && line.contains(&format!(", interrupt{ring}), endpoint "))
            },
        );
    }
    // Measured 37-43 us; without doorbells each wait would end at its 100 ms timeout.
    let median = median_round_trip_us(out, "sender", 1000);
    assert!(
        median < 50_000,
        "median round trip {median} us: the doorbells do not wake the waiting side"
    );
}

#[test]
fn the_hypercalls_agree_with_the_device_tree() {
    let out = bare();
    out.assert_contains(
        "[sender] ipc-echo: hypercalls: partition 0, 1 channel(s); channel ipc0 is id 0, as the \
         device tree says",
    );
    out.assert_contains(
        "[echo] ipc-echo: hypercalls: partition 1, 2 channel(s); channel ipc0 is id 0, as the \
         device tree says",
    );
    out.assert_not_contains("hypercalls disagree");
}

/// The sender asks about and rings channel `ro` (id 1), whose endpoints are the echo and the
/// reader: both calls fail with the defined error, and the sender carries on.
#[test]
fn hypercalls_about_a_channel_of_others_fail_with_not_endpoint() {
    let out = bare();
    let line = out.assert_line(0, "with the foreign channel's hypercalls", |line| {
        line == "[sender] ipc-echo: channel id 1: CHANNEL_INFO NOT_ENDPOINT, CHANNEL_RING NOT_ENDPOINT"
    });
    out.assert_line(line, "with the sender's channel afterwards", |l| {
        l.starts_with("[sender] ipc: 1000 sent, 1000 verified, 0 lost")
    });
}

#[test]
fn a_partition_that_is_no_endpoint_cannot_reach_the_channel_nor_its_doorbells() {
    let out = bare();
    out.assert_exited_by_itself();
    // Nothing is mapped there for it: a translation fault stops it.
    assert_stopped_by_fault(out, "stranger", "0x41000000", "translation fault");
    // The others' doorbell page neither: the echo's, written by another partition.
    let out = restart();
    out.assert_exited_by_itself();
    assert_stopped_by_fault(out, "stranger", "0x41010000", "translation fault");
}

#[test]
fn a_read_only_endpoint_cannot_write() {
    let out = bare();
    out.assert_exited_by_itself();
    // Mapped for reading: the write is a permission fault, not a translation fault.
    assert_stopped_by_fault(out, "reader", "0x42000000", "permission fault");
}

/// The malformed message travels intact through the queue and is refused by the echo (its
/// checks, not the queue's); the oversized one never leaves the sender. Nothing else is lost.
#[test]
fn malformed_and_oversized_messages_are_refused_and_nothing_is_lost() {
    let out = bare();
    out.assert_contains("[sender] ipc-echo: sent a malformed message of 40 bytes");
    out.assert_contains("[echo] ipc-echo: refusing request (queue seq 0): bad magic 0x5a5a5a5a");
    out.assert_contains(
        "[sender] ipc-echo: an oversized message is refused: message of 241 bytes exceeds the \
         240-byte slot payload",
    );
    let (_, numbers) = summary(out, "sender");
    assert_eq!(numbers, [1000, 1000, 0]);
}

/// The echo stops after 300 answers: the sender's ring fills (back-pressure: it publishes at
/// most a ring ahead of the answers), it reports that the peer is gone, and the summary
/// accounts for every request.
#[test]
fn a_peer_that_stops_mid_stream_is_reported_and_its_ring_applies_back_pressure() {
    let out = stop();
    out.assert_exited_by_itself();
    out.assert_contains("[echo] ipc-echo: answered 300 requests\r\n");
    out.assert_contains("[bulkhead] INFO  partition echo powered off");
    let (at, [sent, verified, lost]) = summary(out, "sender");
    let line = out.lines()[at];
    assert_eq!(verified, 300, "{line}");
    assert_eq!(sent, verified + lost, "{line}: every request accounted for");
    assert!(
        sent > 300 && sent <= 300 + 127,
        "{line}: at most one ring (127 slots) ahead of the answers"
    );
    out.assert_line(0, "saying the peer is gone", |l| {
        l == "[sender] ipc-echo: channel ipc0: peer gone: no progress for 1000 ms"
    });
    out.assert_contains("[bulkhead] INFO  partition sender powered off");
}

/// The echo restarts after 300 answers (PSCI `SYSTEM_RESET`): the hypervisor reloads its
/// memory but keeps the channel's, so it rejoins with its queue state and Linux gets every
/// answer; Linux sees the restart once.
#[test]
fn a_restarted_endpoint_rejoins_the_channel_without_loss() {
    let out = restart();
    out.assert_exited_by_itself();
    let reset = out.assert_line(0, "with the echo restarting", |l| {
        l == "[echo] ipc-echo: answered 300 requests, restarting (PSCI SYSTEM_RESET)"
    });
    let reloaded = out.assert_line(reset, "with the hypervisor restarting it", |l| {
        l == "[bulkhead] INFO  partition echo requested a reset: restarting it"
    });
    out.assert_line(reloaded, "with the echo rejoining its channel", |l| {
        l.starts_with("[echo] ipc-echo: channel ipc0 (")
            && l.contains("endpoint 1, epoch 2 (resumed)")
    });
    out.assert_line(reloaded, "with Linux noticing the restart", |l| {
        l == "[linux] ipc-demo: the peer restarted (epoch 2, queue state kept, at most 0 of our \
              messages discarded)"
    });
    out.assert_contains("[linux] ipc-demo: 0 corrupt, 0 duplicate, 1 peer restarts");
    let (at, numbers) = summary(out, "linux");
    assert_eq!(numbers, [1000, 1000, 0], "{}", out.lines()[at]);
    out.assert_contains("[echo] ipc-echo: answered 700 requests\r\n");
}

/// Linux answers a bare-metal sender one request at a time: both sides wait for every message,
/// Linux on its doorbell GPIO line (from userspace, through the GPIO character device), the
/// sender on its doorbell SPI. Linux takes the doorbell for most requests, and a round trip
/// takes far less than either side's wait timeout (1 s for Linux, 100 ms for the sender), which
/// is what every round trip would take if a doorbell did not wake the waiting side.
#[test]
fn both_doorbells_wake_the_side_that_waits() {
    let out = linux_echo();
    out.assert_exited_by_itself();
    let (at, numbers) = summary(out, "sender");
    assert_eq!(numbers, [300, 300, 0], "{}", out.lines()[at]);
    out.assert_contains("[linux] ipc-demo: echo answered 300 requests");
    let interrupts = out
        .partition_lines("linux")
        .into_iter()
        .find_map(|(_, l)| {
            l.strip_prefix("ipc-demo: ")?
                .strip_suffix(" doorbell interrupts taken")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| out.fail("no count of doorbell interrupts from Linux"));
    assert!(
        interrupts >= 150,
        "Linux took {interrupts} doorbell interrupts for 300 requests (measured: 299)"
    );
    let median_us = median_round_trip_us(out, "sender", 300);
    // Measured 3.6 ms; the sender's own wait timeout is 100 ms.
    assert!(
        median_us < 50_000,
        "median round trip {median_us} us: the doorbells do not wake the waiting side"
    );
}
