//! The arm64 kernel `Image`: turning what a distribution ships as `vmlinuz` into the raw
//! `Image` the hypervisor copies into guest memory as-is, and reading its boot header
//! (`Documentation/arch/arm64/booting.rst`).
//!
//! Accepted inputs: a raw `Image` (magic `ARM\x64` at offset 56 — Debian bookworm's arm64
//! `vmlinuz` is exactly that, an uncompressed EFI-stub Image), a gzip-compressed `Image`
//! (`Image.gz`), and a gzip-compressed EFI zboot image (`MZ` + `zimg`, used by newer
//! kernels with `CONFIG_EFI_ZBOOT`).

use anyhow::{bail, ensure, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;

/// Offset and value of the arm64 Image magic (`"ARM\x64"` little-endian).
const ARM64_MAGIC_OFFSET: usize = 56;
const ARM64_MAGIC: u32 = 0x644d_5241;
/// Length of the arm64 Image header.
pub const HEADER_LEN: usize = 64;

/// The fields of the arm64 Image header a loader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset from a 2 MiB aligned base the Image must be loaded at.
    pub text_offset: u64,
    /// Bytes of memory the kernel needs from its load address (file size plus BSS etc.).
    pub image_size: u64,
    /// Header flags: bit 0 big-endian, bits 1-2 page size (1 = 4K, 2 = 16K, 3 = 64K),
    /// bit 3 "may be placed anywhere in physical memory".
    pub flags: u64,
    /// Whether the Image starts with an `MZ` PE/COFF header (EFI stub).
    pub efi_stub: bool,
}

impl ImageHeader {
    /// Parses the header at the start of a raw arm64 `Image`.
    pub fn parse(image: &[u8]) -> Result<Self> {
        ensure!(
            image.len() >= HEADER_LEN,
            "file too short for an arm64 Image header"
        );
        let u64_at = |o: usize| u64::from_le_bytes(image[o..o + 8].try_into().unwrap());
        let magic = u32::from_le_bytes(
            image[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4]
                .try_into()
                .unwrap(),
        );
        ensure!(
            magic == ARM64_MAGIC,
            "no arm64 Image magic (ARM\\x64) at offset 56"
        );
        Ok(Self {
            text_offset: u64_at(8),
            image_size: u64_at(16),
            flags: u64_at(24),
            efi_stub: image.starts_with(b"MZ"),
        })
    }

    /// Whether the kernel is little-endian.
    pub fn little_endian(&self) -> bool {
        self.flags & 1 == 0
    }

    /// Page size in KiB encoded in the flags (0 when unspecified).
    pub fn page_size_kib(&self) -> u32 {
        match (self.flags >> 1) & 3 {
            1 => 4,
            2 => 16,
            3 => 64,
            _ => 0,
        }
    }
}

fn gunzip(data: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 3);
    GzDecoder::new(data)
        .read_to_end(&mut out)
        .with_context(|| format!("decompressing {what}"))?;
    Ok(out)
}

/// Turns a shipped kernel file into a raw arm64 `Image` and returns it with its header.
pub fn to_raw_image(shipped: Vec<u8>) -> Result<(Vec<u8>, ImageHeader)> {
    let raw = if shipped.starts_with(&[0x1f, 0x8b]) {
        gunzip(&shipped, "gzip-compressed kernel")?
    } else if shipped.len() >= 32 && shipped.starts_with(b"MZ") && &shipped[4..8] == b"zimg" {
        let u32_at = |o: usize| u32::from_le_bytes(shipped[o..o + 4].try_into().unwrap());
        let (off, len) = (u32_at(8) as usize, u32_at(12) as usize);
        let comp = shipped[24..32]
            .split(|&b| b == 0)
            .next()
            .unwrap_or_default();
        let comp = String::from_utf8_lossy(comp).into_owned();
        ensure!(
            off.checked_add(len).is_some_and(|e| e <= shipped.len()),
            "bad zboot payload"
        );
        if comp != "gzip" {
            bail!("EFI zboot kernel compressed with {comp:?}: only gzip is supported");
        }
        gunzip(&shipped[off..off + len], "EFI zboot payload")?
    } else {
        shipped
    };
    let header = ImageHeader::parse(&raw)?;
    ensure!(
        header.little_endian(),
        "big-endian arm64 kernels are not supported"
    );
    Ok((raw, header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn fake_image() -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[0..2].copy_from_slice(b"MZ");
        img[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        img[16..24].copy_from_slice(&0x201_0000u64.to_le_bytes());
        img[24..32].copy_from_slice(&0xau64.to_le_bytes());
        img[56..60].copy_from_slice(b"ARMd");
        img[100] = 0x5a;
        img
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_image_passes_through() {
        let (raw, h) = to_raw_image(fake_image()).unwrap();
        assert_eq!(raw, fake_image());
        assert_eq!(h.text_offset, 0x8_0000);
        assert_eq!(h.image_size, 0x201_0000);
        assert_eq!(h.page_size_kib(), 4);
        assert!(h.efi_stub && h.little_endian());
    }

    #[test]
    fn gzip_image_is_decompressed() {
        let (raw, _) = to_raw_image(gz(&fake_image())).unwrap();
        assert_eq!(raw, fake_image());
    }

    #[test]
    fn zboot_image_is_decompressed() {
        let payload = gz(&fake_image());
        let mut z = vec![0u8; 512];
        z[0..2].copy_from_slice(b"MZ");
        z[4..8].copy_from_slice(b"zimg");
        z[8..12].copy_from_slice(&512u32.to_le_bytes());
        z[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        z[24..28].copy_from_slice(b"gzip");
        z.extend_from_slice(&payload);
        let (raw, _) = to_raw_image(z).unwrap();
        assert_eq!(raw, fake_image());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(to_raw_image(vec![0u8; 4096]).is_err());
        assert!(to_raw_image(vec![0u8; 10]).is_err());
    }
}
