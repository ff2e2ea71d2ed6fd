//! Everything that can go wrong on a channel. Whatever the peer puts in shared memory ends up
//! here as a value, never as a panic.

use core::fmt;

use crate::layout::Geometry;

/// What happened to the peer, reported once by the first operation that notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRestart {
    /// The peer's new epoch (incarnation number).
    pub epoch: u32,
    /// Whether the new incarnation kept its predecessor's queue state. When it did (the normal
    /// case: the region outlives a partition restart), nothing in flight was discarded: messages
    /// it had not consumed yet are still delivered to it, and its unconsumed messages to us are
    /// still there. When it did not (its control block was not valid), it started both rings
    /// afresh.
    pub resumed: bool,
    /// Upper bound of our messages the restart discarded: 0 when the peer resumed, otherwise
    /// the messages we had published that we had not seen it consume.
    pub discarded_at_most: u64,
}

/// A channel error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    // --- local mistakes ---
    /// The region's base or length is not 8-byte aligned.
    RegionMisaligned,
    /// The region cannot hold the control blocks and one slot per ring.
    RegionTooSmall { size: usize, needed: usize },
    /// Slot sizes are multiples of 8 from 24 bytes to 64 KiB.
    BadSlotSize { slot_size: usize },
    /// A channel has endpoints 0 and 1 only.
    BadEndpoint { index: u32 },
    /// The payload does not fit in a slot.
    PayloadTooLarge { len: usize, max: usize },
    /// The receive buffer is shorter than the message (which stays queued).
    BufferTooSmall { len: usize, needed: usize },

    // --- back-pressure and peer state ---
    /// The outgoing ring is full: the peer has not consumed; try again later.
    Full,
    /// Nothing to receive.
    Empty,
    /// The peer has never attached (its control block is all zeroes).
    PeerNotAttached,
    /// The peer restarted since we last looked (reported once).
    PeerRestarted(PeerRestart),

    // --- corrupt shared memory (from the peer, or scribbled) ---
    /// The peer's control block has a wrong magic number or version.
    BadHeader { magic: u32, version: u32 },
    /// The peer uses another geometry than we do.
    GeometryMismatch { ours: Geometry, theirs: Geometry },
    /// The peer's published index is inconsistent with ours (ahead by more than a ring, or
    /// behind).
    IndexOutOfRange { head: u64, tail: u64 },
    /// A slot does not hold the message its index says.
    BadSequence { expected: u64, found: u64 },
    /// A slot's length exceeds the slot.
    BadLength { len: usize, max: usize },
    /// A slot's checksum does not match its contents.
    BadChecksum { expected: u32, found: u32 },

    // --- blocking helpers ---
    /// No doorbell from the peer within the transport's timeout while waiting.
    TimedOut,
    /// The transport (doorbell or wait) failed; the code is the transport's own.
    Transport(i32),
}

impl Error {
    /// Whether the operation may succeed later without anything being repaired (`Full`,
    /// `Empty`, `PeerNotAttached`).
    pub fn would_block(&self) -> bool {
        matches!(self, Error::Full | Error::Empty | Error::PeerNotAttached)
    }

    /// Whether the error says shared memory holds something this crate never writes.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::BadHeader { .. }
                | Error::GeometryMismatch { .. }
                | Error::IndexOutOfRange { .. }
                | Error::BadSequence { .. }
                | Error::BadLength { .. }
                | Error::BadChecksum { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::RegionMisaligned => write!(f, "shared region is not 8-byte aligned"),
            Error::RegionTooSmall { size, needed } => {
                write!(
                    f,
                    "shared region of {size} bytes is too small (needs {needed})"
                )
            }
            Error::BadSlotSize { slot_size } => write!(
                f,
                "slot size {slot_size} is not a multiple of 8 between 24 and 65536"
            ),
            Error::BadEndpoint { index } => write!(f, "endpoint {index} is not 0 or 1"),
            Error::PayloadTooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the {max}-byte slot payload"
                )
            }
            Error::BufferTooSmall { len, needed } => {
                write!(
                    f,
                    "receive buffer of {len} bytes is too small for a {needed}-byte message"
                )
            }
            Error::Full => write!(f, "ring full: the peer is not consuming"),
            Error::Empty => write!(f, "no message"),
            Error::PeerNotAttached => write!(f, "the peer has not attached to the channel"),
            Error::PeerRestarted(r) => write!(
                f,
                "the peer restarted (epoch {}, {}, at most {} of our messages discarded)",
                r.epoch,
                if r.resumed {
                    "queue state kept"
                } else {
                    "queue state reset"
                },
                r.discarded_at_most
            ),
            Error::BadHeader { magic, version } => write!(
                f,
                "corrupt peer control block: magic {magic:#010x}, version {version}"
            ),
            Error::GeometryMismatch { ours, theirs } => write!(
                f,
                "geometry mismatch: we use {} slots of {} bytes, the peer {} of {}",
                ours.slot_count, ours.slot_size, theirs.slot_count, theirs.slot_size
            ),
            Error::IndexOutOfRange { head, tail } => {
                write!(f, "ring indices out of range: head {head}, tail {tail}")
            }
            Error::BadSequence { expected, found } => {
                write!(f, "slot holds message {found}, expected {expected}")
            }
            Error::BadLength { len, max } => {
                write!(f, "message length {len} exceeds the slot payload {max}")
            }
            Error::BadChecksum { expected, found } => write!(
                f,
                "message checksum {found:#010x} does not match its contents ({expected:#010x})"
            ),
            Error::TimedOut => write!(f, "timed out waiting for the peer"),
            Error::Transport(code) => write!(f, "doorbell transport failed (code {code})"),
        }
    }
}
