//! The hypervisor's memory footprint: the sizes of its image's text, read-only data, data and
//! bss, summed over the ELF's allocated sections by kind (as `object` classifies them from the
//! section flags: executable, read-only, writable with contents, writable without), and the
//! heap high-water mark the hypervisor reports when it powers off ([`heap_high_water`]).

use anyhow::{Context, Result};
use object::{Object, ObjectSection, SectionKind};

/// Section sizes in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub text: u64,
    pub rodata: u64,
    pub data: u64,
    pub bss: u64,
}

impl Footprint {
    /// Reads the section sizes of an ELF image.
    pub fn of_elf(bytes: &[u8]) -> Result<Footprint> {
        let file = object::File::parse(bytes).context("not an ELF file object can read")?;
        let mut footprint = Footprint::default();
        for section in file.sections() {
            footprint.add(section.kind(), section.size());
        }
        Ok(footprint)
    }

    /// Counts a section of `kind` and `size` bytes; sections that are not loaded (debug
    /// information, symbols, notes) do not count.
    fn add(&mut self, kind: SectionKind, size: u64) {
        let part = match kind {
            SectionKind::Text => &mut self.text,
            SectionKind::ReadOnlyData
            | SectionKind::ReadOnlyDataWithRel
            | SectionKind::ReadOnlyString => &mut self.rodata,
            SectionKind::Data => &mut self.data,
            SectionKind::UninitializedData | SectionKind::Common => &mut self.bss,
            _ => return,
        };
        *part += size;
    }

    /// What the image occupies in its file: text + rodata + data.
    pub fn loaded(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// The heap high-water mark in a line of the hypervisor's power-off message (`heap high-water
/// N bytes (...)`), if the line is that message.
pub fn heap_high_water(line: &str) -> Option<u64> {
    let rest = line.split("heap high-water ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_power_off_message_gives_the_heap_high_water_mark() {
        assert_eq!(
            heap_high_water(
                "[bulkhead] INFO  heap high-water 307728 bytes (307528 in use at power-off)\r"
            ),
            Some(307_728)
        );
        assert_eq!(heap_high_water("[hello-0] count 1/1 at 0 ms"), None);
    }

    #[test]
    fn sections_are_summed_by_kind() {
        let mut f = Footprint::default();
        f.add(SectionKind::Text, 100);
        f.add(SectionKind::Text, 20);
        f.add(SectionKind::ReadOnlyData, 7);
        f.add(SectionKind::ReadOnlyString, 3);
        f.add(SectionKind::Data, 5);
        f.add(SectionKind::UninitializedData, 4096);
        f.add(SectionKind::Debug, 1 << 20);
        f.add(SectionKind::Metadata, 99);
        assert_eq!(
            f,
            Footprint {
                text: 120,
                rodata: 10,
                data: 5,
                bss: 4096
            }
        );
        assert_eq!(f.loaded(), 135);
    }

    #[test]
    fn a_real_elf() {
        // This test binary is an ELF with code and constants, on the Linux hosts xtask runs on.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let f = Footprint::of_elf(&bytes).unwrap();
        assert!(f.text > 10_000, "{f:?}");
        assert!(f.rodata > 0, "{f:?}");
        assert!(f.loaded() < bytes.len() as u64, "{f:?}");
        assert!(Footprint::of_elf(b"not an elf").is_err());
    }
}
