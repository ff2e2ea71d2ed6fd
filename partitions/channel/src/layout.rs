//! Where everything lives in a channel region (version 1). All fields are little-endian 64-bit
//! words; offsets are in bytes from the start of the region.
//!
//! ```text
//! 0x000  control block of endpoint 0   (0x100 bytes, written only by endpoint 0)
//! 0x100  control block of endpoint 1   (0x100 bytes, written only by endpoint 1)
//! 0x200  ring 0: slot_count slots of slot_size bytes, messages 0 -> 1 (written only by 0)
//! ....   ring 1: slot_count slots of slot_size bytes, messages 1 -> 0 (written only by 1)
//! ```
//!
//! Control block of endpoint `e`:
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | 0x00 | `magic \| version << 32` | `"BHCH"` (0x4843_4842), 1 |
//! | 0x08 | `slot_size \| slot_count << 32` | the geometry `e` uses; both endpoints must agree |
//! | 0x10 | `epoch \| state << 32 \| resumed << 40` | `e`'s incarnation (1, 2, ... per attach), [`STATE_ATTACHING`], [`STATE_READY`] or [`STATE_OFFLINE`], whether this incarnation kept the previous one's queue state |
//! | 0x18 | `peer_epoch` | the peer's epoch `e` last synchronised with (a restarting peer whose own block was wiped takes a higher one, so the restart is noticed) |
//! | 0x40 | `head` | producer index of ring `e`: messages `e` has published (free-running `u64`) |
//! | 0x80 | `tail` | consumer index of ring `1 - e`: messages `e` has consumed |
//!
//! `head` and `tail` sit in cache lines of their own, so the peer polling one does not disturb
//! the other. Message `i` of a ring lives in slot `i % slot_count`:
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | 0x00 | `seq` | the message's index `i` (a stale slot has an older one) |
//! | 0x08 | `len \| crc << 32` | payload length, CRC-32C of `seq`, `len` (little-endian) and the payload |
//! | 0x10 | payload | `len` bytes, zero-padded to a multiple of 8 |

use crate::Error;

/// `"BHCH"`: the first word of a valid control block (low half).
pub const MAGIC: u32 = u32::from_le_bytes(*b"BHCH");
/// Layout version of this crate.
pub const VERSION: u32 = 1;
/// Bytes per control block.
pub const BLOCK_BYTES: usize = 0x100;
/// Byte offset of ring 0.
pub const RINGS_OFFSET: usize = 2 * BLOCK_BYTES;
/// Bytes of a slot's header (`seq`, `len | crc`).
pub const SLOT_HEADER_BYTES: usize = 16;
/// Smallest slot: a header and one payload word.
pub const MIN_SLOT_SIZE: usize = SLOT_HEADER_BYTES + 8;
/// Largest slot accepted.
pub const MAX_SLOT_SIZE: usize = 64 * 1024;
/// Slot size used when the application does not choose one: 240-byte payloads.
pub const DEFAULT_SLOT_SIZE: usize = 256;

/// `state` of a control block: the owner is attached and serving the channel.
pub const STATE_READY: u8 = 1;
/// `state` of a control block: the owner detached; what it sent may still be drained.
pub const STATE_OFFLINE: u8 = 0;
/// `state` of a control block: the owner is rewriting its block (attach in progress).
pub const STATE_ATTACHING: u8 = 2;

/// Word indices inside a control block.
pub(crate) mod word {
    pub const MAGIC_VERSION: usize = 0;
    pub const GEOMETRY: usize = 1;
    pub const EPOCH_STATE: usize = 2;
    pub const PEER_EPOCH: usize = 3;
    pub const HEAD: usize = 0x40 / 8;
    pub const TAIL: usize = 0x80 / 8;
}

/// The two endpoints of a channel, by their index in the board config (first endpoint = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Endpoint 0: writes ring 0, reads ring 1.
    Zero,
    /// Endpoint 1: writes ring 1, reads ring 0.
    One,
}

impl Side {
    /// The side with index `index` (0 or 1).
    pub fn from_index(index: u32) -> Result<Self, Error> {
        match index {
            0 => Ok(Side::Zero),
            1 => Ok(Side::One),
            _ => Err(Error::BadEndpoint { index }),
        }
    }

    /// 0 or 1.
    pub fn index(self) -> usize {
        match self {
            Side::Zero => 0,
            Side::One => 1,
        }
    }

    /// The other endpoint.
    pub fn peer(self) -> Side {
        match self {
            Side::Zero => Side::One,
            Side::One => Side::Zero,
        }
    }
}

/// The geometry both endpoints must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per slot (a multiple of 8).
    pub slot_size: u32,
    /// Slots per ring.
    pub slot_count: u32,
}

impl Geometry {
    /// The geometry word of a control block.
    pub(crate) fn encode(self) -> u64 {
        u64::from(self.slot_size) | u64::from(self.slot_count) << 32
    }

    /// Decodes a geometry word.
    pub(crate) fn decode(word: u64) -> Self {
        Self {
            slot_size: word as u32,
            slot_count: (word >> 32) as u32,
        }
    }

    /// Largest payload a slot holds.
    pub fn max_payload(self) -> usize {
        (self.slot_size as usize).saturating_sub(SLOT_HEADER_BYTES)
    }
}

/// A region's layout: where each block and ring starts, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The ring geometry.
    pub geometry: Geometry,
}

impl Layout {
    /// The layout of a region of `region_bytes` bytes with slots of `slot_size` bytes: as many
    /// slots per ring as fit.
    pub fn new(region_bytes: usize, slot_size: usize) -> Result<Self, Error> {
        if !slot_size.is_multiple_of(8) || !(MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&slot_size) {
            return Err(Error::BadSlotSize { slot_size });
        }
        let needed = RINGS_OFFSET + 2 * slot_size;
        if region_bytes < needed {
            return Err(Error::RegionTooSmall {
                size: region_bytes,
                needed,
            });
        }
        let slot_count = ((region_bytes - RINGS_OFFSET) / (2 * slot_size)).min(u32::MAX as usize);
        Ok(Self {
            geometry: Geometry {
                slot_size: slot_size as u32,
                slot_count: slot_count as u32,
            },
        })
    }

    /// Bytes a region needs for `slot_count` slots of `slot_size` bytes per ring.
    pub const fn region_bytes(slot_size: usize, slot_count: usize) -> usize {
        RINGS_OFFSET + 2 * slot_size * slot_count
    }

    /// Word index of word `w` of `side`'s control block.
    pub(crate) fn block_word(side: Side, w: usize) -> usize {
        side.index() * BLOCK_BYTES / 8 + w
    }

    /// Word index of the first word of the slot holding message `seq` of ring `side`.
    pub(crate) fn slot_word(&self, side: Side, seq: u64) -> usize {
        let count = u64::from(self.geometry.slot_count);
        let slot = (seq % count) as usize;
        let size = self.geometry.slot_size as usize;
        (RINGS_OFFSET + (side.index() * count as usize + slot) * size) / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_fills_the_region() {
        let l = Layout::new(64 * 1024, 256).unwrap();
        assert_eq!(l.geometry.slot_count, (64 * 1024 - 0x200) / 512);
        assert_eq!(l.geometry.max_payload(), 240);
        assert_eq!(Layout::region_bytes(256, 127), 0x200 + 2 * 256 * 127);
        let exact = Layout::new(Layout::region_bytes(64, 4), 64).unwrap();
        assert_eq!(exact.geometry.slot_count, 4);
        assert_eq!(Geometry::decode(exact.geometry.encode()), exact.geometry);
    }

    #[test]
    fn slots_are_where_the_doc_says() {
        let l = Layout::new(Layout::region_bytes(64, 4), 64).unwrap();
        assert_eq!(l.slot_word(Side::Zero, 0), 0x200 / 8);
        assert_eq!(l.slot_word(Side::Zero, 5), (0x200 + 64) / 8);
        assert_eq!(l.slot_word(Side::One, 3), (0x200 + 4 * 64 + 3 * 64) / 8);
        assert_eq!(
            Layout::block_word(Side::One, word::TAIL),
            (0x100 + 0x80) / 8
        );
    }

    #[test]
    fn bad_geometry_is_refused() {
        assert!(matches!(
            Layout::new(4096, 20),
            Err(Error::BadSlotSize { .. })
        ));
        assert!(matches!(
            Layout::new(4096, 100),
            Err(Error::BadSlotSize { .. })
        ));
        assert!(matches!(
            Layout::new(4096, 128 * 1024),
            Err(Error::BadSlotSize { .. })
        ));
        assert!(matches!(
            Layout::new(0x200 + 100, 64),
            Err(Error::RegionTooSmall { needed: 0x280, .. })
        ));
        assert!(matches!(
            Side::from_index(2),
            Err(Error::BadEndpoint { index: 2 })
        ));
        assert_eq!(Side::One.peer(), Side::Zero);
    }
}
