//! Latest-value publication for channels with a **read-only** endpoint.
//!
//! A read-only endpoint cannot write a consumer index, so it cannot take part in a queue (its
//! producer could never know what was consumed). Instead the read-write endpoint publishes the
//! latest value of a record, seqlock-style, and the read-only one takes consistent snapshots:
//!
//! ```text
//! 0x00  magic | version << 32     "BHSN", 1
//! 0x08  max_len                    payload capacity in bytes
//! 0x10  seq                        even: stable; odd: being written
//! 0x18  len | crc << 32            CRC-32C of seq, len and the payload
//! 0x20  payload                    zero-padded to 8 bytes
//! ```
//!
//! Writer: `seq += 1` (odd, relaxed), *release* fence, write `len | crc` and payload, then
//! `seq += 1` (even) with a *release* store. Reader: load `seq` with *acquire* (odd: being
//! written), read the record, *acquire* fence, load `seq` again: equal means the record is the
//! one published as `seq`. The CRC also rejects records a misbehaving writer left half-written.
//! Updates in between are skipped, by design: a reader sees the latest value, not every value.

use core::sync::atomic::{fence, Ordering};

use crate::crc::Crc32c;
use crate::region::SharedRegion;
use crate::Error;

/// `"BHSN"`: first word of a snapshot region.
pub const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"BHSN");
/// Snapshot layout version.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Bytes before the payload.
pub const SNAPSHOT_HEADER_BYTES: usize = 0x20;

const W_MAGIC: usize = 0;
const W_MAX: usize = 1;
const W_SEQ: usize = 2;
const W_LEN_CRC: usize = 3;
const W_PAYLOAD: usize = 4;

/// What a reader got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Publication number: 1 for the first value, +1 per update.
    pub generation: u64,
    /// Payload bytes written to the start of the buffer.
    pub len: usize,
}

/// Errors of a snapshot read besides the shared ones.
fn header_error(magic_version: u64) -> Error {
    Error::BadHeader {
        magic: magic_version as u32,
        version: (magic_version >> 32) as u32,
    }
}

fn crc(seq: u64, len: u32, payload: &[u8]) -> u32 {
    Crc32c::new()
        .update(&seq.to_le_bytes())
        .update(&len.to_le_bytes())
        .update(payload)
        .finish()
}

/// The read-write side: publishes values.
#[derive(Debug)]
pub struct Publisher<'a> {
    region: SharedRegion<'a>,
    seq: u64,
    max_len: usize,
}

impl<'a> Publisher<'a> {
    /// Takes over `region` (continuing its publication count if it already holds a valid
    /// snapshot region, e.g. after our restart).
    pub fn attach(region: SharedRegion<'a>) -> Result<Self, Error> {
        let needed = SNAPSHOT_HEADER_BYTES + 8;
        if region.len_bytes() < needed {
            return Err(Error::RegionTooSmall {
                size: region.len_bytes(),
                needed,
            });
        }
        let max_len = region.len_bytes() - SNAPSHOT_HEADER_BYTES;
        let mv = u64::from(SNAPSHOT_MAGIC) | u64::from(SNAPSHOT_VERSION) << 32;
        let mut seq = 0;
        if region.load(W_MAGIC, Ordering::Relaxed) == mv {
            // Round up to even: a write we died in the middle of counts as published-and-torn.
            seq = region.load(W_SEQ, Ordering::Relaxed).wrapping_add(1) & !1;
        }
        region.store(W_MAX, max_len as u64, Ordering::Relaxed);
        region.store(W_SEQ, seq, Ordering::Relaxed);
        region.store(W_MAGIC, mv, Ordering::Release);
        Ok(Self {
            region,
            seq,
            max_len,
        })
    }

    /// Largest value accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Publishes `value` as the latest; returns its generation.
    pub fn publish(&mut self, value: &[u8]) -> Result<u64, Error> {
        if value.len() > self.max_len {
            return Err(Error::PayloadTooLarge {
                len: value.len(),
                max: self.max_len,
            });
        }
        let odd = self.seq.wrapping_add(1);
        let even = odd.wrapping_add(1);
        self.region.store(W_SEQ, odd, Ordering::Relaxed);
        fence(Ordering::Release);
        let len = value.len() as u32;
        self.region.store(
            W_LEN_CRC,
            u64::from(len) | u64::from(crc(even, len, value)) << 32,
            Ordering::Relaxed,
        );
        self.region.write_bytes(W_PAYLOAD, value);
        self.region.store(W_SEQ, even, Ordering::Release);
        self.seq = even;
        Ok(even / 2)
    }
}

/// The read-only side: takes snapshots. Never writes shared memory.
#[derive(Debug)]
pub struct SnapshotReader<'a> {
    region: SharedRegion<'a>,
}

impl<'a> SnapshotReader<'a> {
    /// A reader of `region` (which may be mapped read-only).
    pub fn new(region: SharedRegion<'a>) -> Self {
        Self { region }
    }

    /// Copies the latest value into `buf`, retrying up to `tries` times while the writer is
    /// in the middle of an update. [`Error::Empty`]: nothing published yet; [`Error::Full`]:
    /// still being written after `tries` attempts (try later).
    pub fn read(&self, buf: &mut [u8], tries: usize) -> Result<Snapshot, Error> {
        let mv = self.region.load(W_MAGIC, Ordering::Acquire);
        if mv == 0 {
            return Err(Error::Empty);
        }
        if mv != u64::from(SNAPSHOT_MAGIC) | u64::from(SNAPSHOT_VERSION) << 32 {
            return Err(header_error(mv));
        }
        let max = self
            .region
            .len_bytes()
            .saturating_sub(SNAPSHOT_HEADER_BYTES);
        for _ in 0..tries.max(1) {
            let seq = self.region.load(W_SEQ, Ordering::Acquire);
            if seq % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            if seq == 0 {
                return Err(Error::Empty);
            }
            let len_crc = self.region.load(W_LEN_CRC, Ordering::Relaxed);
            let len = len_crc as u32 as usize;
            let stored = (len_crc >> 32) as u32;
            let copied = len.min(max).min(buf.len());
            self.region.read_bytes(W_PAYLOAD, &mut buf[..copied]);
            fence(Ordering::Acquire);
            if self.region.load(W_SEQ, Ordering::Relaxed) != seq {
                continue;
            }
            if len > max {
                return Err(Error::BadLength { len, max });
            }
            if len > buf.len() {
                return Err(Error::BufferTooSmall {
                    len: buf.len(),
                    needed: len,
                });
            }
            let expected = crc(seq, len as u32, &buf[..len]);
            if expected != stored {
                return Err(Error::BadChecksum {
                    expected,
                    found: stored,
                });
            }
            return Ok(Snapshot {
                generation: seq / 2,
                len,
            });
        }
        Err(Error::Full)
    }
}
