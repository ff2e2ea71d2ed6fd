//! The IPC demo's two roles, for any endpoint, transport and clock, so the Linux userspace demo
//! and the bare-metal guest run the same code: the **sender** (pipelined requests, at most a
//! ring's worth outstanding, every answer checked with [`crate::echo`]) and the **echo**.
//!
//! Neither blocks on the peer for longer than the transport's wait: both poll the queue with
//! `try_send`/`try_recv`, sleep on the doorbell when neither made progress, and give up when
//! the peer made no progress for the idle timeout (or never attached within the attach
//! timeout). Malformed or corrupt messages are counted and dropped, never fatal.

use core::fmt;

use crate::echo::Sizes;
use crate::histogram::Histogram;
use crate::{echo, Endpoint, Error, Transport, Wake};

/// A microsecond clock.
pub trait Clock {
    fn now_us(&mut self) -> u64;
}

/// What the demo loops are told.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests to send; for the echo, answers to give (0: until idle).
    pub count: u64,
    /// Largest request payload.
    pub payload: usize,
    /// Request sizes: varying (tests) or all `payload` bytes (benchmarks).
    pub sizes: Sizes,
    /// Requests outstanding at most (1: ping-pong, for latency); 0 or more than the ring:
    /// as many as the ring holds (streaming).
    pub window: u64,
    /// The peer is gone after this long without progress.
    pub idle_ms: u64,
    /// The peer never attached if it has not within this long.
    pub attach_ms: u64,
}

/// Why a demo loop stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The peer made no progress for this many milliseconds.
    PeerGone { ms: u64 },
    /// The peer did not attach within this many milliseconds.
    NeverAttached { ms: u64 },
    /// A channel error that cannot be skipped.
    Channel(Error),
    /// The doorbell transport failed.
    Transport(i32),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::PeerGone { ms } => write!(f, "peer gone: no progress for {ms} ms"),
            Stop::NeverAttached { ms } => write!(f, "peer never attached within {ms} ms"),
            Stop::Channel(e) => write!(f, "{e}"),
            Stop::Transport(code) => write!(f, "doorbell transport failed (code {code})"),
        }
    }
}

/// What a sender saw.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Requests published.
    pub sent: u64,
    /// Answers that matched their request.
    pub verified: u64,
    /// Requests without a verified answer: `sent - verified`.
    pub lost: u64,
    /// Answers refused (bad checksum, malformed, wrong data, never requested).
    pub corrupt: u64,
    /// Answers to a request already answered.
    pub duplicates: u64,
    /// Peer restarts noticed.
    pub restarts: u64,
    /// Doorbells rung.
    pub rings: u64,
    /// Why the run stopped early, if it did.
    pub stop: Option<Stop>,
    /// From the first request to the last answer.
    pub elapsed_us: u64,
    /// Bytes of the requests whose answers were verified (the answers are as long).
    pub bytes: u64,
    /// Round-trip time of each verified answer, microseconds (from the request's tag).
    pub latency: Histogram,
    /// The window used.
    pub window: u64,
}

impl Summary {
    /// Whether everything sent was answered correctly, once.
    pub fn ok(&self) -> bool {
        self.stop.is_none() && self.lost == 0 && self.corrupt == 0 && self.duplicates == 0
    }

    /// Request payload per second, MiB/s (the answers carry as much back).
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1u64 << 20) as f64 / (self.elapsed_us.max(1) as f64 / 1e6)
    }

    /// `<c> corrupt, <d> duplicate, <r> peer restarts, <n> doorbells rung`.
    pub fn counts(&self) -> Counts<'_> {
        Counts(self)
    }

    /// The benchmark line: `ipc-bench: window <w>, <n> round trips in <t> ms, median <x> us,
    /// p99 <y> us, max <z> us, <m> MiB/s`.
    pub fn bench_line(&self) -> BenchLine<'_> {
        BenchLine(self)
    }
}

/// See [`Summary::counts`].
pub struct Counts<'a>(&'a Summary);

impl fmt::Display for Counts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "{} corrupt, {} duplicate, {} peer restarts, {} doorbells rung",
            s.corrupt, s.duplicates, s.restarts, s.rings
        )
    }
}

/// See [`Summary::bench_line`].
pub struct BenchLine<'a>(&'a Summary);

impl fmt::Display for BenchLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let q = |q| s.latency.quantile(q).unwrap_or(0);
        let mib = s.mib_per_s();
        write!(
            f,
            "ipc-bench: window {}, {} round trips in {} ms, median {} us, p99 {} us, max {} us, \
             {}.{:02} MiB/s",
            s.window,
            s.verified,
            s.elapsed_us / 1000,
            q(0.5),
            q(0.99),
            s.latency.max(),
            mib as u64,
            ((mib - (mib as u64) as f64) * 100.0) as u64
        )
    }
}

/// `ipc: <sent> sent, <verified> verified, <lost> lost`, the line the acceptance tests read.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ipc: {} sent, {} verified, {} lost",
            self.sent, self.verified, self.lost
        )
    }
}

/// A log line sink.
pub type Log<'a> = &'a mut dyn FnMut(fmt::Arguments<'_>);

/// Progress bookkeeping: when did the peer last do something.
struct Progress {
    last: u64,
    attached: bool,
    limits: Limits,
}

impl Progress {
    fn new<C: Clock>(clock: &mut C, limits: Limits) -> Self {
        Self {
            last: clock.now_us(),
            attached: false,
            limits,
        }
    }

    fn made<C: Clock>(&mut self, clock: &mut C) {
        self.last = clock.now_us();
        self.attached = true;
    }

    fn expired<C: Clock>(&self, clock: &mut C) -> Option<Stop> {
        let waited = clock.now_us().saturating_sub(self.last) / 1000;
        if self.attached && waited > self.limits.idle_ms {
            Some(Stop::PeerGone {
                ms: self.limits.idle_ms,
            })
        } else if !self.attached && waited > self.limits.attach_ms {
            Some(Stop::NeverAttached {
                ms: self.limits.attach_ms,
            })
        } else {
            None
        }
    }
}

fn ring<T: Transport>(t: &mut T, rings: &mut u64) -> Result<(), Stop> {
    *rings += 1;
    t.ring().map_err(Stop::Transport)
}

/// Rings the peer if `needed` (the queue said it may be waiting).
fn ring_if<T: Transport>(needed: bool, t: &mut T, rings: &mut u64) -> Result<(), Stop> {
    if needed {
        ring(t, rings)
    } else {
        Ok(())
    }
}

/// Sends `limits.count` requests and checks every answer. `out` and `buf` must hold a request
/// (`limits.payload` bytes) and the largest message (`ep.max_payload()` bytes).
pub fn sender<T: Transport, C: Clock>(
    ep: &mut Endpoint<'_>,
    t: &mut T,
    clock: &mut C,
    limits: Limits,
    out: &mut [u8],
    buf: &mut [u8],
    log: Log<'_>,
) -> Summary {
    let mut s = Summary::default();
    let result = sender_loop(ep, t, clock, limits, out, buf, log, &mut s);
    s.stop = result.err();
    s.lost = s.sent - s.verified.min(s.sent);
    s
}

#[allow(clippy::too_many_arguments)]
fn sender_loop<T: Transport, C: Clock>(
    ep: &mut Endpoint<'_>,
    t: &mut T,
    clock: &mut C,
    limits: Limits,
    out: &mut [u8],
    buf: &mut [u8],
    log: Log<'_>,
    s: &mut Summary,
) -> Result<(), Stop> {
    let ring_slots = u64::from(ep.geometry().slot_count);
    let window = match limits.window {
        0 => ring_slots,
        w => w.min(ring_slots),
    };
    s.window = window;
    let mut next_answer = 0u64;
    let mut progress = Progress::new(clock, limits);
    let mut first_send = None;
    while next_answer < limits.count {
        let mut moved = false;
        if s.sent < limits.count && s.sent - next_answer < window {
            let now = clock.now_us();
            first_send.get_or_insert(now);
            let len = echo::request(s.sent, limits.payload, limits.sizes, now as u32, out)
                .map_err(|_| {
                    Stop::Channel(Error::BufferTooSmall {
                        len: out.len(),
                        needed: limits.payload,
                    })
                })?;
            match ep.try_send(&out[..len]) {
                Ok(sent) => {
                    ring_if(sent.ring, t, &mut s.rings)?;
                    s.sent += 1;
                    moved = true;
                }
                Err(Error::Full | Error::PeerNotAttached) => {}
                Err(Error::PeerRestarted(r)) => {
                    s.restarts += 1;
                    log(format_args!("{}", Error::PeerRestarted(r)));
                    moved = true;
                }
                Err(e) => return Err(Stop::Channel(e)),
            }
        }
        match ep.try_recv(buf) {
            Ok(got) => {
                moved = true;
                let answer = &buf[..got.len];
                match echo::parse(answer) {
                    Ok(msg) if msg.seq < next_answer => {
                        s.duplicates += 1;
                        log(format_args!(
                            "duplicate answer {} (expected {next_answer})",
                            msg.seq
                        ));
                    }
                    Ok(msg) if msg.seq >= s.sent => {
                        s.corrupt += 1;
                        log(format_args!("answer {} to a request never sent", msg.seq));
                    }
                    Ok(msg) => {
                        if msg.seq > next_answer {
                            log(format_args!("answers {next_answer}..{} missing", msg.seq));
                        }
                        match echo::check_answer(msg.seq, limits.payload, limits.sizes, answer) {
                            Ok(tag) => {
                                let now = clock.now_us();
                                s.latency.record(u64::from((now as u32).wrapping_sub(tag)));
                                s.elapsed_us = now - first_send.unwrap_or(now);
                                s.verified += 1;
                                s.bytes += got.len as u64;
                            }
                            Err(e) => {
                                s.corrupt += 1;
                                log(format_args!("bad answer: {e}"));
                            }
                        }
                        next_answer = msg.seq + 1;
                    }
                    Err(e) => {
                        s.corrupt += 1;
                        log(format_args!(
                            "malformed answer (queue seq {}): {e}",
                            got.seq
                        ));
                    }
                }
                ring_if(got.ring, t, &mut s.rings)?;
            }
            Err(Error::Empty | Error::PeerNotAttached) => {}
            Err(Error::PeerRestarted(r)) => {
                s.restarts += 1;
                log(format_args!("{}", Error::PeerRestarted(r)));
                moved = true;
            }
            Err(e) if e.is_corruption() => {
                s.corrupt += 1;
                log(format_args!("dropping a corrupt message: {e}"));
                match ep.skip() {
                    Ok(true) => ring(t, &mut s.rings)?,
                    Ok(false) | Err(Error::Empty) => {}
                    Err(e) => return Err(Stop::Channel(e)),
                }
                moved = true;
            }
            Err(e) => return Err(Stop::Channel(e)),
        }
        if moved {
            progress.made(clock);
            continue;
        }
        if let Some(stop) = progress.expired(clock) {
            return Err(stop);
        }
        match t.wait() {
            Ok(Wake::Signalled | Wake::TimedOut) => {}
            Err(code) => return Err(Stop::Transport(code)),
        }
    }
    Ok(())
}

/// Answers requests: `limits.count` of them (0: until the sender has been idle for
/// `limits.idle_ms`). `buf` and `out` must hold the largest message. Returns how many were
/// answered, and why it stopped early if it did.
pub fn echo<T: Transport, C: Clock>(
    ep: &mut Endpoint<'_>,
    t: &mut T,
    clock: &mut C,
    limits: Limits,
    buf: &mut [u8],
    out: &mut [u8],
    log: Log<'_>,
) -> (u64, Option<Stop>) {
    let mut answered = 0u64;
    let mut rings = 0u64;
    let mut progress = Progress::new(clock, limits);
    // An answer that did not fit yet (ring full): sent before anything else is read.
    let mut pending: Option<usize> = None;
    while limits.count == 0 || answered < limits.count {
        let mut moved = false;
        let step = if let Some(len) = pending {
            match ep.try_send(&out[..len]) {
                Ok(sent) => {
                    answered += 1;
                    pending = None;
                    moved = true;
                    ring_if(sent.ring, t, &mut rings)
                }
                Err(Error::Full | Error::PeerNotAttached) => Ok(()),
                Err(Error::PeerRestarted(r)) => {
                    log(format_args!("{}", Error::PeerRestarted(r)));
                    moved = true;
                    Ok(())
                }
                Err(e) => Err(Stop::Channel(e)),
            }
        } else {
            match ep.try_recv(buf) {
                Ok(got) => {
                    moved = true;
                    match echo::answer(&buf[..got.len], out) {
                        Ok((_, len)) => pending = Some(len),
                        Err(e) => log(format_args!(
                            "refusing request (queue seq {}): {e}",
                            got.seq
                        )),
                    }
                    ring_if(got.ring, t, &mut rings)
                }
                Err(Error::Empty | Error::PeerNotAttached) => Ok(()),
                Err(Error::PeerRestarted(r)) => {
                    log(format_args!("{}", Error::PeerRestarted(r)));
                    moved = true;
                    Ok(())
                }
                Err(e) if e.is_corruption() => {
                    log(format_args!("dropping a corrupt message: {e}"));
                    moved = true;
                    match ep.skip() {
                        Ok(true) => ring(t, &mut rings),
                        _ => Ok(()),
                    }
                }
                Err(e) => Err(Stop::Channel(e)),
            }
        };
        if let Err(stop) = step {
            return (answered, Some(stop));
        }
        if moved {
            progress.made(clock);
            continue;
        }
        match progress.expired(clock) {
            Some(Stop::PeerGone { .. }) if limits.count == 0 => break,
            Some(stop) => return (answered, Some(stop)),
            None => {}
        }
        if let Err(code) = t.wait() {
            return (answered, Some(Stop::Transport(code)));
        }
    }
    (answered, None)
}
