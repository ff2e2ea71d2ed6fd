//! CRC-32C (Castagnoli), the checksum every queued message carries, computed with the `crc`
//! crate's slice-by-16 tables (built at compile time, 16 KiB). A checksum, not a MAC: it
//! catches torn or scribbled slots, not a malicious peer (which can only spoil its own messages
//! anyway).

use crc::{Crc, Digest, Table, CRC_32_ISCSI};

/// The CRC-32C algorithm (also called CRC-32/ISCSI).
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// A running CRC-32C.
pub struct Crc32c(Digest<'static, u32, Table<16>>);

impl Crc32c {
    /// A fresh checksum.
    pub fn new() -> Self {
        Self(CRC32C.digest())
    }

    /// Feeds `bytes`.
    pub fn update(mut self, bytes: &[u8]) -> Self {
        self.0.update(bytes);
        self
    }

    /// The checksum of everything fed.
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b""), 0);
        let split = Crc32c::new().update(b"1234").update(b"56789").finish();
        assert_eq!(split, 0xe306_9283);
    }
}
