//! Flattening ELF executables into raw binaries, as a boot loader would place them in memory.
//!
//! Every `PT_LOAD` segment's file contents go at its *physical* address (`p_paddr`); gaps between
//! segments are zero-filled. Only file contents are included: the zero-initialised tail of a
//! segment (`p_memsz` beyond `p_filesz`, i.e. `.bss`) is left for the program to clear.

use anyhow::{anyhow, bail, Context, Result};
use object::elf::{FileHeader64, EM_AARCH64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

/// Largest flat binary [`flatten`] produces, to catch segments placed far apart by mistake.
pub const MAX_FLAT_SIZE: u64 = 1 << 30;

/// A flattened ELF: `bytes` belong at physical address `load_address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flat {
    /// Physical address of `bytes[0]`: the lowest `p_paddr` of a loadable segment with data.
    pub load_address: u64,
    /// Entry point, translated to a physical address if it lies in a loadable segment.
    pub entry: u64,
    pub bytes: Vec<u8>,
}

/// Whether `bytes` start with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

struct Segment<'a> {
    index: usize,
    paddr: u64,
    data: &'a [u8],
}

/// Flattens a 64-bit AArch64 ELF executable.
pub fn flatten(elf: &[u8]) -> Result<Flat> {
    let header = FileHeader64::<Endianness>::parse(elf)
        .map_err(|e| anyhow!("not a valid 64-bit ELF file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow!("bad ELF header: {e}"))?;
    let machine = header.e_machine(endian);
    if machine != EM_AARCH64 {
        bail!("ELF file is for machine {machine}, not AArch64 ({EM_AARCH64})");
    }
    let phdrs = header
        .program_headers(endian, elf)
        .map_err(|e| anyhow!("bad ELF program headers: {e}"))?;

    let mut segments = Vec::new();
    for (index, ph) in phdrs.iter().enumerate() {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let data = ph
            .data(endian, elf)
            .map_err(|()| anyhow!("ELF segment {index} lies outside the file"))?;
        let paddr = ph.p_paddr(endian);
        paddr
            .checked_add(data.len() as u64)
            .with_context(|| format!("ELF segment {index} wraps around the address space"))?;
        segments.push(Segment { index, paddr, data });
    }
    if segments.is_empty() {
        bail!("ELF file has no loadable segment with data");
    }
    segments.sort_by_key(|s| s.paddr);
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.paddr + a.data.len() as u64 > b.paddr {
            bail!(
                "ELF segments {} and {} overlap at physical address {:#x}",
                a.index,
                b.index,
                b.paddr
            );
        }
    }
    let load_address = segments[0].paddr;
    let end = segments
        .iter()
        .map(|s| s.paddr + s.data.len() as u64)
        .max()
        .unwrap_or(load_address);
    let span = end - load_address;
    if span > MAX_FLAT_SIZE {
        bail!(
            "ELF segments span {span:#x} bytes from {load_address:#x}, more than {MAX_FLAT_SIZE:#x}"
        );
    }
    let mut bytes = vec![0u8; span as usize];
    for s in &segments {
        let off = (s.paddr - load_address) as usize;
        bytes[off..off + s.data.len()].copy_from_slice(s.data);
    }

    let e_entry = header.e_entry(endian);
    let entry = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == PT_LOAD)
        .find_map(|ph| {
            let vaddr = ph.p_vaddr(endian);
            let offset = e_entry.checked_sub(vaddr)?;
            (offset < ph.p_memsz(endian)).then(|| ph.p_paddr(endian).wrapping_add(offset))
        })
        .unwrap_or(e_entry);

    Ok(Flat {
        load_address,
        entry,
        bytes,
    })
}

/// The physical address range `(start, end)` a loaded ELF occupies, including each segment's
/// zero-initialised tail (`p_memsz`), i.e. what must not be overwritten while it runs.
pub fn memory_span(elf: &[u8]) -> Result<(u64, u64)> {
    let header = FileHeader64::<Endianness>::parse(elf)
        .map_err(|e| anyhow!("not a valid 64-bit ELF file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow!("bad ELF header: {e}"))?;
    let phdrs = header
        .program_headers(endian, elf)
        .map_err(|e| anyhow!("bad ELF program headers: {e}"))?;
    let mut span: Option<(u64, u64)> = None;
    for (index, ph) in phdrs.iter().enumerate() {
        let memsz = ph.p_memsz(endian).max(ph.p_filesz(endian));
        if ph.p_type(endian) != PT_LOAD || memsz == 0 {
            continue;
        }
        let start = ph.p_paddr(endian);
        let end = start
            .checked_add(memsz)
            .with_context(|| format!("ELF segment {index} wraps around the address space"))?;
        span = Some(match span {
            None => (start, end),
            Some((s, e)) => (s.min(start), e.max(end)),
        });
    }
    span.context("ELF file has no loadable segment")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{build_elf, Seg};

    #[test]
    fn flattens_segments_at_physical_addresses() {
        let elf = build_elf(
            0xffff_0000_4008_0010,
            &[
                // Out of order on purpose; the second has a .bss tail (memsz > filesz).
                Seg {
                    vaddr: 0xffff_0000_4008_2000,
                    paddr: 0x4008_2000,
                    data: vec![7; 16],
                    memsz: 0x1000,
                },
                Seg {
                    vaddr: 0xffff_0000_4008_0000,
                    paddr: 0x4008_0000,
                    data: vec![1, 2, 3, 4],
                    memsz: 0x100,
                },
                // Pure bss: ignored.
                Seg {
                    vaddr: 0xffff_0000_4009_0000,
                    paddr: 0x4009_0000,
                    data: vec![],
                    memsz: 0x10000,
                },
            ],
        );
        assert!(is_elf(&elf));
        let flat = flatten(&elf).unwrap();
        assert_eq!(flat.load_address, 0x4008_0000);
        assert_eq!(flat.entry, 0x4008_0010);
        assert_eq!(flat.bytes.len(), 0x2000 + 16);
        assert_eq!(&flat.bytes[..4], &[1, 2, 3, 4]);
        assert!(flat.bytes[4..0x2000].iter().all(|&b| b == 0));
        assert_eq!(&flat.bytes[0x2000..], &[7; 16]);
        assert_eq!(memory_span(&elf).unwrap(), (0x4008_0000, 0x400a_0000));
    }

    #[test]
    fn entry_outside_segments_is_kept() {
        let elf = build_elf(
            0x1234,
            &[Seg {
                vaddr: 0x8000,
                paddr: 0x8000,
                data: vec![1],
                memsz: 1,
            }],
        );
        assert_eq!(flatten(&elf).unwrap().entry, 0x1234);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(!is_elf(b"\x7fEL"));
        let err = flatten(b"hello world, not an elf at all......................................")
            .unwrap_err();
        assert!(err.to_string().contains("not a valid 64-bit ELF"), "{err}");

        let err = flatten(&build_elf(0, &[])).unwrap_err();
        assert!(err.to_string().contains("no loadable segment"), "{err}");

        let overlapping = build_elf(
            0,
            &[
                Seg {
                    vaddr: 0x1000,
                    paddr: 0x1000,
                    data: vec![1; 0x20],
                    memsz: 0x20,
                },
                Seg {
                    vaddr: 0x1010,
                    paddr: 0x1010,
                    data: vec![2; 0x20],
                    memsz: 0x20,
                },
            ],
        );
        assert!(flatten(&overlapping)
            .unwrap_err()
            .to_string()
            .contains("overlap"));

        let far = build_elf(
            0,
            &[
                Seg {
                    vaddr: 0,
                    paddr: 0,
                    data: vec![1],
                    memsz: 1,
                },
                Seg {
                    vaddr: 1 << 40,
                    paddr: 1 << 40,
                    data: vec![2],
                    memsz: 1,
                },
            ],
        );
        assert!(flatten(&far).unwrap_err().to_string().contains("span"));

        let mut x86 = build_elf(
            0,
            &[Seg {
                vaddr: 0,
                paddr: 0,
                data: vec![1],
                memsz: 1,
            }],
        );
        x86[18..20].copy_from_slice(&62u16.to_le_bytes());
        assert!(flatten(&x86)
            .unwrap_err()
            .to_string()
            .contains("not AArch64"));

        let mut truncated = build_elf(
            0,
            &[Seg {
                vaddr: 0,
                paddr: 0,
                data: vec![1; 64],
                memsz: 64,
            }],
        );
        truncated.truncate(truncated.len() - 8);
        assert!(flatten(&truncated)
            .unwrap_err()
            .to_string()
            .contains("outside the file"));
    }
}
