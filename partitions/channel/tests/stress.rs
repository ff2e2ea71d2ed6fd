//! Two threads, one channel: streaming request/answer traffic through both rings with real
//! doorbell waits (a lost wake-up would time out), and an endpoint restarting mid-stream with
//! and without its state. Every payload is checked; nothing may be lost silently or duplicated.

mod common;

use std::time::{Duration, Instant};

use bulkhead_channel::{Endpoint, Error, Layout, SharedRegion, Side, Transport, Wake};
use common::{check, payload, transports, words, CondvarTransport};

/// Generous: a wait only times out if a wake-up was lost (or the machine stalls that long).
const TIMEOUT: Duration = Duration::from_secs(10);
const SLOT: usize = 128;
const SLOTS: usize = 32;

/// How the echo side misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Restarts {
    Never,
    /// Re-attach every `n` answers, keeping the control block.
    Resuming(u64),
    /// Wipe the control block and re-attach every `n` answers.
    Afresh(u64),
}

/// Endpoint 1: answers each request with the same payload.
fn echo(
    words: &'static [std::sync::atomic::AtomicU64],
    mut t: CondvarTransport,
    restarts: Restarts,
) -> u64 {
    let region = SharedRegion::new(words);
    let mut ep = Endpoint::attach(region, Side::One, SLOT).unwrap();
    t.ring().unwrap();
    let mut buf = [0u8; SLOT];
    let mut answered = 0u64;
    loop {
        let got = match ep.recv(&mut t, &mut buf) {
            Ok(got) => got,
            Err(Error::TimedOut) => return answered, // the sender is done
            Err(Error::PeerRestarted(_)) => continue,
            Err(e) => panic!("echo: {e}"),
        };
        loop {
            match ep.send(&mut t, &buf[..got.len]) {
                Ok(_) => break,
                Err(Error::PeerRestarted(_)) => continue,
                Err(e) => panic!("echo send: {e}"),
            }
        }
        answered += 1;
        let n = match restarts {
            Restarts::Never => continue,
            Restarts::Resuming(n) | Restarts::Afresh(n) => n,
        };
        if answered.is_multiple_of(n) {
            let _ = ep; // the old incarnation is gone
            if let Restarts::Afresh(_) = restarts {
                for w in &words[0x100 / 8..0x200 / 8] {
                    w.store(0, std::sync::atomic::Ordering::Relaxed);
                }
            }
            ep = Endpoint::attach(region, Side::One, SLOT).unwrap();
            t.ring().unwrap();
        }
    }
}

struct Outcome {
    answered: u64,
    restarts: u64,
    discarded_at_most: u64,
    elapsed: Duration,
}

/// Endpoint 0: sends `count` requests, pipelined, and checks that answers come back in order,
/// intact, each at most once. Returns what it saw.
fn run(count: u64, restarts: Restarts) -> Outcome {
    let words = words(Layout::region_bytes(SLOT, SLOTS));
    let (mut t0, t1) = transports(TIMEOUT);
    let echo = std::thread::spawn(move || echo(words, t1, restarts));

    let mut ep = Endpoint::attach(SharedRegion::new(words), Side::Zero, SLOT).unwrap();
    let max = ep.max_payload();
    let start = Instant::now();
    let (mut sent, mut answered, mut last_answer) = (0u64, 0u64, None::<u64>);
    let mut out = [0u8; SLOT];
    let mut buf = [0u8; SLOT];
    let mut restart_count = 0;
    let mut discarded = 0;
    // Waiting for a ring that never comes means the echo side stopped: with restarts afresh,
    // requests (or answers) may have been discarded, so stop once everything was sent.
    while answered < count {
        let mut progressed = false;
        if sent < count {
            let len = payload(sent, max, &mut out);
            match ep.try_send(&out[..len]) {
                Ok(s) => {
                    assert_eq!(s.seq, sent, "queue sequence numbers follow the sends");
                    if s.ring {
                        t0.ring().unwrap();
                    }
                    sent += 1;
                    progressed = true;
                }
                Err(Error::Full | Error::PeerNotAttached) => {}
                Err(Error::PeerRestarted(r)) => {
                    restart_count += 1;
                    discarded += r.discarded_at_most;
                    progressed = true;
                }
                Err(e) => panic!("send {sent}: {e}"),
            }
        }
        match ep.try_recv(&mut buf) {
            Ok(r) => {
                let seq = check(&buf[..r.len], max).expect("answer payload intact");
                assert!(seq < sent, "answer {seq} to a request never sent");
                if let Some(last) = last_answer {
                    assert!(
                        seq > last,
                        "answer {seq} after {last}: duplicate or reordered"
                    );
                }
                last_answer = Some(seq);
                answered += 1;
                if r.ring {
                    t0.ring().unwrap();
                }
                progressed = true;
            }
            Err(Error::Empty | Error::PeerNotAttached) => {}
            Err(Error::PeerRestarted(r)) => {
                restart_count += 1;
                discarded += r.discarded_at_most;
                progressed = true;
            }
            Err(e) => panic!("recv: {e}"),
        }
        if !progressed {
            match t0.wait().unwrap() {
                Wake::Signalled => {}
                Wake::TimedOut if sent == count && matches!(restarts, Restarts::Afresh(_)) => break,
                Wake::TimedOut => panic!(
                    "no doorbell for {TIMEOUT:?}: sent {sent}, answered {answered} (lost wake-up?)"
                ),
            }
        }
    }
    let elapsed = start.elapsed();
    let echoed = echo.join().unwrap();
    assert!(echoed >= answered);
    Outcome {
        answered,
        restarts: restart_count,
        discarded_at_most: discarded,
        elapsed,
    }
}

#[test]
fn a_million_requests_and_answers_none_lost_none_duplicated() {
    let count = 1_000_000;
    let o = run(count, Restarts::Never);
    assert_eq!(o.answered, count);
    assert_eq!(o.restarts, 0);
    eprintln!(
        "stress: {} round trips ({} messages) in {:.2?}: {:.0} messages/s (debug build)",
        count,
        2 * count,
        o.elapsed,
        2.0 * count as f64 / o.elapsed.as_secs_f64()
    );
}

#[test]
fn a_peer_restarting_with_its_state_loses_nothing() {
    let count = 200_000;
    let o = run(count, Restarts::Resuming(997));
    assert_eq!(o.answered, count, "every request answered exactly once");
    assert_eq!(o.discarded_at_most, 0);
    assert!(o.restarts > 0, "the restarts were noticed");
}

#[test]
fn a_peer_restarting_afresh_loses_only_what_it_reports() {
    let count = 100_000;
    let o = run(count, Restarts::Afresh(1009));
    let lost = count - o.answered;
    assert!(o.restarts > 0, "the restarts were noticed");
    // Requests discarded are bounded by the reports; answers the echo's earlier lives had
    // published but the sender had not read are withdrawn too, at most a ring per restart.
    let bound = o.discarded_at_most + o.restarts * SLOTS as u64;
    assert!(
        lost <= bound,
        "{lost} lost, more than reported ({} requests) plus a ring of answers per restart ({})",
        o.discarded_at_most,
        o.restarts
    );
    eprintln!(
        "afresh restarts: {} noticed, {} of {count} requests unanswered, reported discarded at most {}",
        o.restarts, lost, o.discarded_at_most
    );
}
