//! The bundle: the board DTB and every partition's blobs (image, device tree, initrd), packed
//! after the hypervisor binary into one bootable file.
//!
//! Layout (all integers little-endian):
//! ```text
//! offset 0   header:  magic "BHDBNDL1" | version u32 | entry count u32 | total size u64
//! offset 24  entries: count x { kind u32 | partition u32 | load address u64 | offset u64 | size u64 }
//! ...        blobs, each starting at a 4 KiB-aligned offset from the bundle start
//! ```
//! The writer (host, feature `std`) and the reader (hypervisor) live here so they cannot drift.
//! The reader never trusts the bytes: every offset and size is bounds-checked.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub const MAGIC: [u8; 8] = *b"BHDBNDL1";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 24;
pub const ENTRY_SIZE: usize = 32;
/// Blobs start at multiples of this, so they can be copied page by page.
pub const BLOB_ALIGN: usize = 4096;

/// What a blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The compiled board config (platform + `/hypervisor`). Exactly one per bundle.
    BoardDtb,
    /// A partition's image, loaded at `load` (guest-physical).
    Image,
    /// A partition's generated device tree, loaded at `load`; its address is passed in x0.
    GuestDtb,
    /// A partition's initial ramdisk, loaded at `load`.
    Initrd,
}

impl Kind {
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    const fn code(self) -> u32 {
        match self {
            Kind::BoardDtb => 1,
            Kind::Image => 2,
            Kind::GuestDtb => 3,
            Kind::Initrd => 4,
        }
    }
    const fn from_code(code: u32) -> Option<Kind> {
        match code {
            1 => Some(Kind::BoardDtb),
            2 => Some(Kind::Image),
            3 => Some(Kind::GuestDtb),
            4 => Some(Kind::Initrd),
            _ => None,
        }
    }
}

/// One blob of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: Kind,
    /// Index of the partition in the board config (0 for the board DTB).
    pub partition: u32,
    /// Guest-physical load address (0 for the board DTB).
    pub load: u64,
    pub data: &'a [u8],
}

/// Why a bundle could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    BadMagic,
    BadVersion(u32),
    Truncated,
    BadKind(u32),
    EntryOutOfBounds(usize),
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BundleError::BadMagic => write!(f, "no bundle found (bad magic)"),
            BundleError::BadVersion(v) => write!(f, "bundle version {v}, expected {VERSION}"),
            BundleError::Truncated => write!(f, "bundle is truncated"),
            BundleError::BadKind(k) => write!(f, "bundle entry of unknown kind {k}"),
            BundleError::EntryOutOfBounds(i) => {
                write!(f, "bundle entry {i} lies outside the bundle")
            }
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Reads the total size from a bundle header, so a reader holding only a pointer can build the
/// slice. Returns `None` unless the magic matches.
pub fn total_size(header: &[u8; HEADER_SIZE]) -> Option<u64> {
    (header[..8] == MAGIC).then(|| u64_at(header, 16)).flatten()
}

/// A parsed, bounds-checked bundle.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Bundle<'a> {
    /// Checks the header and every entry's bounds.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BundleError::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u32_at(bytes, 8).ok_or(BundleError::Truncated)?;
        if version != VERSION {
            return Err(BundleError::BadVersion(version));
        }
        let count = u32_at(bytes, 12).ok_or(BundleError::Truncated)? as usize;
        let total = u64_at(bytes, 16).ok_or(BundleError::Truncated)?;
        let total = usize::try_from(total).map_err(|_| BundleError::Truncated)?;
        if total > bytes.len() || HEADER_SIZE + count.saturating_mul(ENTRY_SIZE) > total {
            return Err(BundleError::Truncated);
        }
        let bundle = Bundle {
            bytes: &bytes[..total],
            count,
        };
        for i in 0..count {
            bundle.entry(i)?;
        }
        Ok(bundle)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entry at `index`.
    pub fn entry(&self, index: usize) -> Result<Entry<'a>, BundleError> {
        let base = HEADER_SIZE + index * ENTRY_SIZE;
        let b = self.bytes;
        let field = |off| u64_at(b, base + off).ok_or(BundleError::Truncated);
        let code = u32_at(b, base).ok_or(BundleError::Truncated)?;
        let kind = Kind::from_code(code).ok_or(BundleError::BadKind(code))?;
        let partition = u32_at(b, base + 4).ok_or(BundleError::Truncated)?;
        let load = field(8)?;
        let offset =
            usize::try_from(field(16)?).map_err(|_| BundleError::EntryOutOfBounds(index))?;
        let size = usize::try_from(field(24)?).map_err(|_| BundleError::EntryOutOfBounds(index))?;
        let data = offset
            .checked_add(size)
            .and_then(|end| b.get(offset..end))
            .ok_or(BundleError::EntryOutOfBounds(index))?;
        Ok(Entry {
            kind,
            partition,
            load,
            data,
        })
    }

    /// All entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        (0..self.count).filter_map(|i| self.entry(i).ok())
    }

    /// The first entry of `kind` for `partition`.
    pub fn find(&self, kind: Kind, partition: u32) -> Option<Entry<'a>> {
        self.entries()
            .find(|e| e.kind == kind && e.partition == partition)
    }
}

/// Builds a bundle from blobs (host side).
#[cfg(feature = "std")]
pub fn write(entries: &[Entry<'_>]) -> Vec<u8> {
    let align = |n: usize| n.div_ceil(BLOB_ALIGN) * BLOB_ALIGN;
    let mut offset = align(HEADER_SIZE + entries.len() * ENTRY_SIZE);
    let mut table = Vec::new();
    let mut placed = Vec::new();
    for e in entries {
        table.extend_from_slice(&e.kind.code().to_le_bytes());
        table.extend_from_slice(&e.partition.to_le_bytes());
        table.extend_from_slice(&e.load.to_le_bytes());
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
        placed.push(offset);
        offset = align(offset + e.data.len());
    }
    let total = offset;
    let mut out = vec![0u8; total];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(total as u64).to_le_bytes());
    out[HEADER_SIZE..HEADER_SIZE + table.len()].copy_from_slice(&table);
    for (e, off) in entries.iter().zip(placed) {
        out[off..off + e.data.len()].copy_from_slice(e.data);
    }
    out
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let img = [1u8, 2, 3];
        let dtb = [9u8; 5000];
        let bytes = write(&[
            Entry {
                kind: Kind::BoardDtb,
                partition: 0,
                load: 0,
                data: &dtb,
            },
            Entry {
                kind: Kind::Image,
                partition: 1,
                load: 0x4000_0000,
                data: &img,
            },
        ]);
        assert_eq!(bytes.len() % BLOB_ALIGN, 0);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.find(Kind::BoardDtb, 0).unwrap().data, &dtb[..]);
        let e = b.find(Kind::Image, 1).unwrap();
        assert_eq!((e.load, e.data), (0x4000_0000, &img[..]));
        assert!(b.find(Kind::Image, 0).is_none());
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(&bytes[..HEADER_SIZE]);
        assert_eq!(total_size(&header), Some(bytes.len() as u64));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Bundle::parse(b"short").unwrap_err(), BundleError::Truncated);
        assert_eq!(
            Bundle::parse(&[0u8; 64]).unwrap_err(),
            BundleError::BadMagic
        );
        let mut bytes = write(&[Entry {
            kind: Kind::Image,
            partition: 0,
            load: 0,
            data: &[1; 10],
        }]);
        // Point the blob past the end.
        bytes[HEADER_SIZE + 16..HEADER_SIZE + 24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Bundle::parse(&bytes).unwrap_err(),
            BundleError::EntryOutOfBounds(0)
        );
        let mut bytes = write(&[Entry {
            kind: Kind::Image,
            partition: 0,
            load: 0,
            data: &[1; 10],
        }]);
        bytes[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&77u32.to_le_bytes());
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::BadKind(77));
    }
}
