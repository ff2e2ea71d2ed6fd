//! The demo's two roles over an attached endpoint and any transport: the sender (pipelined
//! requests, every answer checked) and the echo. Host tests run both over a heap region.

use std::time::{Duration, Instant};

use bulkhead_channel::{echo, Endpoint, Error, Transport, Wake};

use crate::options::Options;

/// What a sender saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests published.
    pub sent: u64,
    /// Answers that matched their request.
    pub verified: u64,
    /// Requests without a verified answer: `sent - verified`.
    pub lost: u64,
    /// Answers or messages refused (bad checksum, malformed, wrong data).
    pub corrupt: u64,
    /// Answers to a request already answered.
    pub duplicates: u64,
    /// Peer restarts noticed.
    pub restarts: u64,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl Summary {
    /// The line the acceptance tests look for.
    pub fn line(&self) -> String {
        format!(
            "ipc: {} sent, {} verified, {} lost",
            self.sent, self.verified, self.lost
        )
    }

    /// Whether everything sent was answered correctly, once.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.lost == 0 && self.corrupt == 0 && self.duplicates == 0
    }
}

/// Deadline bookkeeping: the peer is gone when nothing happened for `idle` (or, before it ever
/// attached, for `attach`).
struct Progress {
    last: Instant,
    idle: Duration,
    attach: Duration,
    attached: bool,
}

impl Progress {
    fn new(o: &Options) -> Self {
        Self {
            last: Instant::now(),
            idle: Duration::from_millis(o.timeout_ms),
            attach: Duration::from_millis(o.attach_timeout_ms),
            attached: false,
        }
    }

    fn made(&mut self) {
        self.last = Instant::now();
        self.attached = true;
    }

    fn expired(&self) -> bool {
        let limit = if self.attached {
            self.idle
        } else {
            self.attach
        };
        self.last.elapsed() > limit
    }

    fn limit_ms(&self) -> u128 {
        if self.attached {
            self.idle
        } else {
            self.attach
        }
        .as_millis()
    }
}

/// Waits on the transport; a transport error is fatal.
fn wait<T: Transport>(t: &mut T) -> Result<(), String> {
    match t.wait() {
        Ok(Wake::Signalled | Wake::TimedOut) => Ok(()),
        Err(code) => Err(format!(
            "waiting for the doorbell failed: {}",
            std::io::Error::from_raw_os_error(code)
        )),
    }
}

fn ring<T: Transport>(t: &mut T) -> Result<(), String> {
    t.ring().map_err(|code| {
        format!(
            "ringing the doorbell failed: {}",
            std::io::Error::from_raw_os_error(code)
        )
    })
}

/// Sends `o.count` requests (at most a ring's worth outstanding) and checks every answer.
pub fn sender<T: Transport>(
    ep: &mut Endpoint<'_>,
    t: &mut T,
    o: &Options,
    log: &mut dyn FnMut(&str),
) -> Summary {
    let start = Instant::now();
    let mut s = Summary::default();
    let window = u64::from(ep.geometry().slot_count);
    let mut next_answer = 0u64;
    let mut out = vec![0u8; o.payload];
    let mut buf = vec![0u8; ep.max_payload()];
    let mut progress = Progress::new(o);

    'run: while next_answer < o.count {
        let mut moved = false;
        if s.sent < o.count && s.sent - next_answer < window {
            let len = echo::request(s.sent, o.payload, &mut out).expect("buffer sized for payload");
            match ep.try_send(&out[..len]) {
                Ok(sent) => {
                    if sent.ring {
                        if let Err(e) = ring(t) {
                            s.error = Some(e);
                            break 'run;
                        }
                    }
                    s.sent += 1;
                    moved = true;
                }
                Err(Error::Full | Error::PeerNotAttached) => {}
                Err(Error::PeerRestarted(r)) => {
                    s.restarts += 1;
                    log(&format!("peer restarted: {}", Error::PeerRestarted(r)));
                    moved = true;
                }
                Err(e) => {
                    s.error = Some(format!("sending request {}: {e}", s.sent));
                    break 'run;
                }
            }
        }
        match ep.try_recv(&mut buf) {
            Ok(got) => {
                moved = true;
                match echo::parse(&buf[..got.len]) {
                    Ok(msg) if msg.seq < next_answer => {
                        s.duplicates += 1;
                        log(&format!(
                            "duplicate answer {} (expected {next_answer})",
                            msg.seq
                        ));
                    }
                    Ok(msg) if msg.seq >= s.sent => {
                        s.corrupt += 1;
                        log(&format!("answer {} to a request never sent", msg.seq));
                    }
                    Ok(msg) => {
                        if msg.seq > next_answer {
                            log(&format!(
                                "answers {next_answer}..{} missing (peer restart?)",
                                msg.seq
                            ));
                        }
                        match echo::check_answer(msg.seq, o.payload, &buf[..got.len]) {
                            Ok(()) => s.verified += 1,
                            Err(e) => {
                                s.corrupt += 1;
                                log(&format!("bad answer: {e}"));
                            }
                        }
                        next_answer = msg.seq + 1;
                    }
                    Err(e) => {
                        s.corrupt += 1;
                        log(&format!("malformed answer (queue seq {}): {e}", got.seq));
                    }
                }
                if got.ring {
                    if let Err(e) = ring(t) {
                        s.error = Some(e);
                        break 'run;
                    }
                }
            }
            Err(Error::Empty | Error::PeerNotAttached) => {}
            Err(Error::PeerRestarted(r)) => {
                s.restarts += 1;
                log(&format!("peer restarted: {}", Error::PeerRestarted(r)));
                moved = true;
            }
            Err(e) if e.is_corruption() => {
                s.corrupt += 1;
                log(&format!("dropping a corrupt message: {e}"));
                match ep.skip() {
                    Ok(true) => {
                        if let Err(e) = ring(t) {
                            s.error = Some(e);
                            break 'run;
                        }
                    }
                    Ok(false) | Err(Error::Empty) => {}
                    Err(e) => {
                        s.error = Some(format!("skipping a corrupt message: {e}"));
                        break 'run;
                    }
                }
                moved = true;
            }
            Err(e) => {
                s.error = Some(format!("receiving: {e}"));
                break 'run;
            }
        }
        if moved {
            progress.made();
            continue;
        }
        if progress.expired() {
            let what = if progress.attached {
                format!("peer gone: no progress for {} ms", progress.limit_ms())
            } else {
                format!("peer never attached within {} ms", progress.limit_ms())
            };
            s.error = Some(what);
            break;
        }
        if let Err(e) = wait(t) {
            s.error = Some(e);
            break;
        }
    }
    s.lost = s.sent - s.verified.min(s.sent);
    s.elapsed = start.elapsed();
    s
}

/// Answers requests: `o.count` of them (0: until the sender has been idle for the timeout).
/// Returns how many it answered, or why it stopped.
pub fn echo<T: Transport>(
    ep: &mut Endpoint<'_>,
    t: &mut T,
    o: &Options,
    log: &mut dyn FnMut(&str),
) -> Result<u64, String> {
    let mut answered = 0u64;
    let mut buf = vec![0u8; ep.max_payload()];
    let mut out = vec![0u8; ep.max_payload()];
    let mut progress = Progress::new(o);
    // An answer that did not fit yet (ring full): sent before anything else is read.
    let mut pending: Option<usize> = None;
    while o.count == 0 || answered < o.count {
        let mut moved = false;
        if let Some(len) = pending {
            match ep.try_send(&out[..len]) {
                Ok(sent) => {
                    if sent.ring {
                        ring(t)?;
                    }
                    answered += 1;
                    pending = None;
                    moved = true;
                }
                Err(Error::Full | Error::PeerNotAttached) => {}
                Err(Error::PeerRestarted(r)) => {
                    log(&format!("peer restarted: {}", Error::PeerRestarted(r)));
                    moved = true;
                }
                Err(e) => return Err(format!("sending answer: {e}")),
            }
        } else {
            match ep.try_recv(&mut buf) {
                Ok(got) => {
                    moved = true;
                    match echo::answer(&buf[..got.len], &mut out) {
                        Ok((_, len)) => pending = Some(len),
                        Err(e) => log(&format!("refusing request (queue seq {}): {e}", got.seq)),
                    }
                    if got.ring {
                        ring(t)?;
                    }
                }
                Err(Error::Empty | Error::PeerNotAttached) => {}
                Err(Error::PeerRestarted(r)) => {
                    log(&format!("peer restarted: {}", Error::PeerRestarted(r)));
                    moved = true;
                }
                Err(e) if e.is_corruption() => {
                    log(&format!("dropping a corrupt message: {e}"));
                    if let Ok(true) = ep.skip() {
                        ring(t)?;
                    }
                    moved = true;
                }
                Err(e) => return Err(format!("receiving: {e}")),
            }
        }
        if moved {
            progress.made();
            continue;
        }
        if progress.expired() {
            if o.count == 0 && progress.attached {
                break;
            }
            return Err(format!(
                "no request for {} ms ({answered} answered)",
                progress.limit_ms()
            ));
        }
        wait(t)?;
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use bulkhead_channel::local::pair;
    use bulkhead_channel::{Layout, SharedRegion, Side};

    use super::*;

    fn region() -> SharedRegion<'static> {
        let bytes = Layout::region_bytes(256, 16);
        SharedRegion::new(Box::leak(
            (0..bytes / 8)
                .map(|_| AtomicU64::new(0))
                .collect::<Box<[_]>>(),
        ))
    }

    fn options(extra: &[&str]) -> Options {
        Options::parse(extra.iter().copied()).unwrap()
    }

    /// Runs the sender on endpoint 0 against `peer` on endpoint 1 (another thread).
    fn with_peer(
        o: Options,
        peer: impl FnOnce(SharedRegion<'static>, bulkhead_channel::local::LocalTransport)
            + Send
            + 'static,
    ) -> Summary {
        let r = region();
        let (mut t0, t1) = pair(Duration::from_millis(50));
        let peer = std::thread::spawn(move || peer(r, t1));
        let mut ep = Endpoint::attach(r, Side::Zero, o.slot_size).unwrap();
        let s = sender(&mut ep, &mut t0, &o, &mut |line| {
            eprintln!("sender: {line}")
        });
        peer.join().unwrap();
        s
    }

    fn echo_peer(
        o: Options,
    ) -> impl FnOnce(SharedRegion<'static>, bulkhead_channel::local::LocalTransport) + Send + 'static
    {
        move |r, mut t| {
            let mut ep = Endpoint::attach(r, Side::One, o.slot_size).unwrap();
            t.ring().unwrap();
            let _ = echo(&mut ep, &mut t, &o, &mut |line| eprintln!("echo: {line}"));
        }
    }

    #[test]
    fn every_request_is_answered_and_checked() {
        let o = options(&["count=3000", "timeout-ms=2000"]);
        let s = with_peer(o.clone(), echo_peer(options(&["role=echo", "count=3000"])));
        assert!(s.ok(), "{s:?}");
        assert_eq!(s.line(), "ipc: 3000 sent, 3000 verified, 0 lost");
    }

    #[test]
    fn a_peer_that_stops_mid_stream_is_reported_gone_with_the_loss_counted() {
        let o = options(&["count=500", "timeout-ms=300"]);
        let s = with_peer(o, echo_peer(options(&["role=echo", "count=40"])));
        assert!(!s.ok());
        assert_eq!(s.verified, 40);
        assert_eq!(s.lost, s.sent - 40);
        assert!(s.sent > 40, "kept sending until the ring was full");
        let e = s.error.unwrap();
        assert!(e.contains("peer gone: no progress for 300 ms"), "{e}");
    }

    #[test]
    fn a_peer_that_never_attaches_is_an_error() {
        let o = options(&["count=5", "attach-timeout-ms=200"]);
        let s = with_peer(o, |_, _| {});
        assert_eq!(s.line(), "ipc: 0 sent, 0 verified, 0 lost");
        assert!(!s.ok());
        assert!(s.error.unwrap().contains("never attached within 200 ms"));
    }

    #[test]
    fn corrupt_and_missing_answers_are_counted_not_crashed_on() {
        let o = options(&["count=100", "timeout-ms=300"]);
        let s = with_peer(o, |r, mut t| {
            let mut ep = Endpoint::attach(r, Side::One, 256).unwrap();
            t.ring().unwrap();
            let mut buf = [0u8; 240];
            let mut out = [0u8; 240];
            let mut n = 0;
            while n < 100 {
                let got = match ep.recv(&mut t, &mut buf) {
                    Ok(got) => got,
                    Err(e) => panic!("{e}"),
                };
                n += 1;
                let (_, len) = echo::answer(&buf[..got.len], &mut out).unwrap();
                match n {
                    // A malformed answer (its own checksum fails), a dropped one, one answered
                    // twice, and one too long for the queue (refused at our end).
                    10 => out[echo::HEADER] ^= 0xff,
                    20 => continue,
                    30 => {
                        ep.send(&mut t, &out[..len]).unwrap();
                    }
                    40 => {
                        assert!(matches!(
                            ep.try_send(&[0; 241]),
                            Err(Error::PayloadTooLarge { .. })
                        ));
                    }
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
        assert_eq!(s.error, None);
    }
}
