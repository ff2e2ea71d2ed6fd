//! Shared helpers of the host tests: leaked regions, a doorbell pair built on a condition
//! variable (the same contract as an interrupt: a ring after the last wait is never lost), and
//! self-checking payloads.

#![allow(dead_code)]

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bulkhead_channel::{Transport, Wake};

/// A zeroed, leaked word array of `bytes` bytes.
pub fn words(bytes: usize) -> &'static [AtomicU64] {
    Box::leak(
        (0..bytes / 8)
            .map(|_| AtomicU64::new(0))
            .collect::<Box<[_]>>(),
    )
}

/// Ring counters of both endpoints.
#[derive(Default)]
struct Bells {
    rung: Mutex<[u64; 2]>,
    changed: Condvar,
}

/// One endpoint's doorbell transport.
pub struct CondvarTransport {
    bells: Arc<Bells>,
    me: usize,
    seen: u64,
    timeout: Duration,
    pub rings: u64,
    pub waits: u64,
}

/// A connected pair of transports for endpoints 0 and 1.
pub fn transports(timeout: Duration) -> (CondvarTransport, CondvarTransport) {
    let bells = Arc::new(Bells::default());
    let t = |me| CondvarTransport {
        bells: bells.clone(),
        me,
        seen: 0,
        timeout,
        rings: 0,
        waits: 0,
    };
    (t(0), t(1))
}

impl Transport for CondvarTransport {
    fn ring(&mut self) -> Result<(), i32> {
        self.rings += 1;
        let mut rung = self.bells.rung.lock().unwrap();
        rung[1 - self.me] += 1;
        self.bells.changed.notify_all();
        Ok(())
    }

    fn wait(&mut self) -> Result<Wake, i32> {
        self.waits += 1;
        let rung = self.bells.rung.lock().unwrap();
        let (rung, result) = self
            .bells
            .changed
            .wait_timeout_while(rung, self.timeout, |r| r[self.me] == self.seen)
            .unwrap();
        if result.timed_out() {
            return Ok(Wake::TimedOut);
        }
        self.seen = rung[self.me];
        Ok(Wake::Signalled)
    }
}

/// A self-checking payload for message `seq`: the sequence number, then a length-varying
/// pattern derived from it (`max` bytes at most).
pub fn payload(seq: u64, max: usize, out: &mut [u8]) -> usize {
    let len = 8 + (seq as usize * 7) % (max - 7);
    out[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in out[8..len].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    len
}

/// The sequence number of a payload made by [`payload`], if it is intact.
pub fn check(bytes: &[u8], max: usize) -> Option<u64> {
    let seq = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut expected = [0u8; 4096];
    let len = payload(seq, max, &mut expected);
    (bytes == &expected[..len]).then_some(seq)
}
