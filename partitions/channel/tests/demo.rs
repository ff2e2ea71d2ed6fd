//! The IPC demo's loops (shared by the Linux demo and the bare-metal guest) over a heap region
//! and the in-process doorbell pair: a full run, a peer that stops mid-stream, a peer that never
//! attaches, and corrupt, dropped and duplicated answers.

mod common;

use std::time::{Duration, Instant};

use bulkhead_channel::demo::{self, Clock, Limits, Stop, Summary};
use bulkhead_channel::echo::Sizes;
use bulkhead_channel::local::{pair, LocalTransport};
use bulkhead_channel::{echo, Endpoint, Error, Layout, SharedRegion, Side};

struct StdClock(Instant);

impl Clock for StdClock {
    fn now_us(&mut self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

fn limits(count: u64, idle_ms: u64, attach_ms: u64) -> Limits {
    Limits {
        count,
        payload: 240,
        sizes: Sizes::Varying,
        window: 0,
        idle_ms,
        attach_ms,
    }
}

fn log(args: std::fmt::Arguments<'_>) {
    eprintln!("{args}");
}

/// Runs the sender on endpoint 0 against `peer` on endpoint 1 (another thread).
fn with_peer(
    l: Limits,
    peer: impl FnOnce(SharedRegion<'static>, LocalTransport) + Send + 'static,
) -> Summary {
    let r = SharedRegion::new(common::words(Layout::region_bytes(256, 16)));
    let (mut t0, t1) = pair(Duration::from_millis(50));
    let peer = std::thread::spawn(move || peer(r, t1));
    let mut ep = Endpoint::attach(r, Side::Zero, 256).unwrap();
    let (mut out, mut buf) = ([0u8; 240], [0u8; 240]);
    let mut clock = StdClock(Instant::now());
    let s = demo::sender(
        &mut ep, &mut t0, &mut clock, l, &mut out, &mut buf, &mut log,
    );
    peer.join().unwrap();
    s
}

fn echo_peer(l: Limits) -> impl FnOnce(SharedRegion<'static>, LocalTransport) + Send + 'static {
    move |r, mut t| {
        let mut ep = Endpoint::attach(r, Side::One, 256).unwrap();
        bulkhead_channel::Transport::ring(&mut t).unwrap();
        let (mut buf, mut out) = ([0u8; 240], [0u8; 240]);
        let mut clock = StdClock(Instant::now());
        demo::echo(&mut ep, &mut t, &mut clock, l, &mut buf, &mut out, &mut log);
    }
}

#[test]
fn every_request_is_answered_and_checked() {
    let s = with_peer(
        limits(3000, 2000, 2000),
        echo_peer(limits(3000, 2000, 2000)),
    );
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.to_string(), "ipc: 3000 sent, 3000 verified, 0 lost");
    assert_eq!(s.latency.count(), 3000, "every round trip timed");
    assert_eq!(s.window, 16, "as many outstanding as the ring holds");
    assert!(s.bytes > 3000 * echo::HEADER as u64);
    assert!(s
        .bench_line()
        .to_string()
        .starts_with("ipc-bench: window 16, 3000 round trips in "));
}

#[test]
fn ping_pong_with_full_size_requests_for_benchmarks() {
    let mut l = limits(200, 2000, 2000);
    l.window = 1;
    l.sizes = Sizes::Full;
    let mut e = limits(200, 2000, 2000);
    e.sizes = Sizes::Full;
    let s = with_peer(l, echo_peer(e));
    assert!(s.ok(), "{s:?}");
    assert_eq!((s.window, s.bytes), (1, 200 * 240));
    let median = s.latency.quantile(0.5).unwrap();
    let p99 = s.latency.quantile(0.99).unwrap();
    assert!(median <= p99 && p99 <= s.latency.max().max(p99));
    eprintln!("{}", s.bench_line());
}

#[test]
fn a_peer_that_stops_mid_stream_is_reported_gone_with_the_loss_counted() {
    let s = with_peer(limits(500, 300, 2000), echo_peer(limits(40, 2000, 2000)));
    assert!(!s.ok());
    assert_eq!(s.verified, 40);
    assert_eq!(s.lost, s.sent - 40);
    assert!(s.sent > 40, "kept sending until the ring was full");
    assert_eq!(s.stop, Some(Stop::PeerGone { ms: 300 }));
    assert_eq!(
        s.stop.unwrap().to_string(),
        "peer gone: no progress for 300 ms"
    );
}

#[test]
fn a_peer_that_never_attaches_is_an_error() {
    let s = with_peer(limits(5, 300, 200), |_, _| {});
    assert_eq!(s.to_string(), "ipc: 0 sent, 0 verified, 0 lost");
    assert!(!s.ok());
    assert_eq!(s.stop, Some(Stop::NeverAttached { ms: 200 }));
}

#[test]
fn an_idle_echo_without_a_count_stops_quietly() {
    let r = SharedRegion::new(common::words(Layout::region_bytes(256, 16)));
    let (mut t0, mut t1) = pair(Duration::from_millis(20));
    let mut a = Endpoint::attach(r, Side::Zero, 256).unwrap();
    let mut b = Endpoint::attach(r, Side::One, 256).unwrap();
    let mut req = [0u8; 240];
    let n = echo::request(0, 240, Sizes::Varying, 0, &mut req).unwrap();
    a.send(&mut t0, &req[..n]).unwrap();
    let (mut buf, mut out) = ([0u8; 240], [0u8; 240]);
    let mut clock = StdClock(Instant::now());
    let (answered, stop) = demo::echo(
        &mut b,
        &mut t1,
        &mut clock,
        limits(0, 100, 100),
        &mut buf,
        &mut out,
        &mut log,
    );
    assert_eq!((answered, stop), (1, None));
}

#[test]
fn corrupt_and_missing_answers_are_counted_not_crashed_on() {
    let s = with_peer(limits(100, 300, 2000), |r, mut t| {
        let mut ep = Endpoint::attach(r, Side::One, 256).unwrap();
        bulkhead_channel::Transport::ring(&mut t).unwrap();
        let mut buf = [0u8; 240];
        let mut out = [0u8; 240];
        for n in 1..=100 {
            let got = ep.recv(&mut t, &mut buf).unwrap();
            let (_, len) = echo::answer(&buf[..got.len], &mut out).unwrap();
            match n {
                // A malformed answer (its own checksum fails), a dropped one, one answered
                // twice, and one too long for the queue (refused at our end).
                10 => out[echo::HEADER] ^= 0xff,
                20 => continue,
                30 => {
                    ep.send(&mut t, &out[..len]).unwrap();
                }
                40 => assert!(matches!(
                    ep.try_send(&[0; 241]),
                    Err(Error::PayloadTooLarge { .. })
                )),
                _ => {}
            }
            ep.send(&mut t, &out[..len]).unwrap();
        }
    });
    assert_eq!(
        (s.sent, s.verified, s.corrupt, s.duplicates),
        (100, 98, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.lost, 2);
    assert!(!s.ok());
    assert_eq!(s.stop, None);
}
