//! The shared region as this crate touches it: a slice of 64-bit words, each read and written
//! only with single-copy-atomic 64-bit accesses at 8-byte aligned addresses.
//!
//! Why words and atomics: the peer runs concurrently (another partition, another core), so every
//! access to shared memory is an atomic access (no data race in Rust's model, whatever the peer
//! does); and the region may be mapped as Device memory (a bare-metal guest with its MMU off, a
//! Linux UIO or `/dev/mem` mapping is non-cacheable Device-nGnRnE), where unaligned accesses,
//! `DC ZVA` (used by `memset`) and exclusives are not allowed. Relaxed atomic loads and stores
//! of `u64` compile to single aligned `LDR`/`STR` (acquire/release ones to `LDAR`/`STLR`), which
//! work on every memory type. No read-modify-write is ever used: every word has one writer.
//!
//! Constructing a region from a raw pointer ([`SharedRegion::from_raw`]) is the crate's one
//! `unsafe` operation; host tests use [`SharedRegion::new`] on an ordinary word slice.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// The shared memory of one channel, as seen by one endpoint.
#[derive(Clone, Copy)]
pub struct SharedRegion<'a> {
    words: &'a [AtomicU64],
}

impl core::fmt::Debug for SharedRegion<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SharedRegion({:p}, {} bytes)",
            self.words.as_ptr(),
            self.len_bytes()
        )
    }
}

impl<'a> SharedRegion<'a> {
    /// A region over `words` (host tests, or memory a caller already owns as atomics).
    pub fn new(words: &'a [AtomicU64]) -> Self {
        Self { words }
    }

    /// A region over `len` bytes of shared memory at `base`.
    ///
    /// Fails with [`Error::RegionMisaligned`] unless `base` is 8-byte aligned and non-null and
    /// `len` a multiple of 8.
    ///
    /// # Safety
    ///
    /// `base..base + len` must be mapped, readable (and writable if the channel is used for
    /// anything but [`crate::snapshot::SnapshotReader`]) for `'a`, and used by this program only
    /// through this crate (other partitions may write it at any time; that is what the atomics
    /// are for).
    pub unsafe fn from_raw(base: *mut u8, len: usize) -> Result<Self, Error> {
        if base.is_null() || !(base as usize).is_multiple_of(8) || !len.is_multiple_of(8) {
            return Err(Error::RegionMisaligned);
        }
        // SAFETY: non-null and 8-byte aligned (checked above), `len / 8` words long, valid for
        // `'a` by the caller's contract; `AtomicU64` has the size and alignment of `u64` and all
        // bit patterns are valid, and it allows concurrent modification by the peer.
        let words = unsafe { core::slice::from_raw_parts(base as *const AtomicU64, len / 8) };
        Ok(Self { words })
    }

    /// Size in bytes.
    pub fn len_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Size in words.
    pub fn len_words(&self) -> usize {
        self.words.len()
    }

    /// The word at word index `index`. Indices come from [`crate::layout::Layout`], which is
    /// validated against the region's size, never from shared memory; out of range reads yield 0
    /// rather than panicking.
    pub(crate) fn load(&self, index: usize, order: Ordering) -> u64 {
        self.words.get(index).map_or(0, |w| w.load(order))
    }

    /// Stores `value` at word index `index` (ignored out of range, see [`Self::load`]).
    pub(crate) fn store(&self, index: usize, value: u64, order: Ordering) {
        if let Some(w) = self.words.get(index) {
            w.store(value, order);
        }
    }

    /// Copies `bytes` into the words starting at `index`, zero-padding the last word.
    pub(crate) fn write_bytes(&self, index: usize, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.store(index + i, u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }

    /// Copies words starting at `index` into `out` (all of it, the last word truncated).
    pub(crate) fn read_bytes(&self, index: usize, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let word = self.load(index + i, Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Allocation-free helper for tests and host programs: a zeroed word array of `N` words.
pub fn zeroed_words<const N: usize>() -> [AtomicU64; N] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_copies_round_trip_and_pad() {
        let words = zeroed_words::<4>();
        let region = SharedRegion::new(&words);
        region.store(2, u64::MAX, Ordering::Relaxed);
        region.write_bytes(1, b"0123456789");
        assert_eq!(
            region.load(1, Ordering::Relaxed),
            u64::from_le_bytes(*b"01234567")
        );
        // The tail word is zero-padded, overwriting what was there.
        assert_eq!(
            region.load(2, Ordering::Relaxed),
            u64::from(b'8') | u64::from(b'9') << 8
        );
        let mut back = [0u8; 10];
        region.read_bytes(1, &mut back);
        assert_eq!(&back, b"0123456789");
        assert_eq!(region.len_bytes(), 32);
    }

    #[test]
    fn out_of_range_is_harmless() {
        let words = zeroed_words::<1>();
        let region = SharedRegion::new(&words);
        region.store(5, 1, Ordering::Relaxed);
        assert_eq!(region.load(5, Ordering::Relaxed), 0);
    }

    #[test]
    fn raw_regions_must_be_aligned() {
        let words = zeroed_words::<2>();
        let base = words.as_ptr() as *mut u8;
        // SAFETY: 16 bytes of live memory; misaligned requests are refused before any use.
        unsafe {
            assert!(matches!(
                SharedRegion::from_raw(base.add(4), 8),
                Err(Error::RegionMisaligned)
            ));
            assert!(matches!(
                SharedRegion::from_raw(base, 12),
                Err(Error::RegionMisaligned)
            ));
            assert_eq!(SharedRegion::from_raw(base, 16).unwrap().len_words(), 2);
        }
    }
}
