//! Shared helpers of the host tests: leaked regions, the in-process doorbell pair, and
//! self-checking payloads.

#![allow(dead_code)]

use std::sync::atomic::AtomicU64;

#[allow(unused_imports)]
pub use bulkhead_channel::local::{pair as transports, LocalTransport as CondvarTransport};

/// A zeroed, leaked word array of `bytes` bytes.
pub fn words(bytes: usize) -> &'static [AtomicU64] {
    Box::leak(
        (0..bytes / 8)
            .map(|_| AtomicU64::new(0))
            .collect::<Box<[_]>>(),
    )
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
