//! Free guest memory: the part of the memory region holding the image that lies above the
//! image's end (its `.bss` and boot stack included) and below anything else placed there, such as
//! the device tree. A guest that needs a large buffer (a benchmark's working set) takes it from
//! here instead of from `.bss`, which `_start` would have to zero.

use crate::dt::MemoryRange;

/// Granule free memory is aligned to.
const PAGE: u64 = 4096;

/// The free part of `region` from `from` (rounded up to 4 KiB) to the end of the region or the
/// start of the first `occupied` range above `from`, whichever comes first. Occupied ranges
/// that overlap `from` itself push the start past their end. `None` when nothing is left.
pub fn free_range(region: MemoryRange, from: u64, occupied: &[MemoryRange]) -> Option<MemoryRange> {
    let mut start = from.max(region.base).checked_next_multiple_of(PAGE)?;
    // An occupied range containing the start moves it (repeat: they may chain).
    while let Some(range) = occupied.iter().find(|r| r.contains(start)) {
        start = range.end().checked_next_multiple_of(PAGE)?;
    }
    let end = occupied
        .iter()
        .map(|r| r.base)
        .filter(|&base| base > start)
        .fold(region.end(), u64::min)
        / PAGE
        * PAGE;
    (end > start).then(|| MemoryRange {
        base: start,
        size: end - start,
    })
}

/// The free memory of the region the image was loaded into: from the end of the image (boot
/// stack included) up to the device tree or the end of the region. `None` if the device tree
/// does not describe the region holding the image.
#[cfg(target_os = "none")]
pub fn free_memory(dt: &crate::GuestDt) -> Option<MemoryRange> {
    unsafe extern "C" {
        /// First byte of the image (`guest.ld`).
        static __image_start: u8;
        /// First byte past the image, `.bss` and boot stack included (`guest.ld`).
        static __image_end: u8;
    }
    let image_start = &raw const __image_start as u64;
    let image_end = &raw const __image_end as u64;
    let region = dt.memory_regions().find(|r| r.contains(image_start))?;
    let dtb = dt.location();
    free_range(region, image_end, dtb.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(base: u64, end: u64) -> MemoryRange {
        MemoryRange {
            base,
            size: end - base,
        }
    }

    #[test]
    fn up_to_the_device_tree() {
        // A 16 MiB partition with its DT in the last 64 KiB, image ending mid-page.
        let region = range(0x4000_0000, 0x4100_0000);
        let dtb = range(0x40ff_0000, 0x40ff_1234);
        assert_eq!(
            free_range(region, 0x4009_1010, &[dtb]),
            Some(range(0x4009_2000, 0x40ff_0000))
        );
    }

    #[test]
    fn up_to_the_region_end_when_the_dtb_is_below_or_elsewhere() {
        let region = range(0x4000_0000, 0x4400_0000);
        // QEMU put it below the image.
        let below = range(0x4000_1000, 0x4001_0000);
        assert_eq!(
            free_range(region, 0x4010_0000, &[below]),
            Some(range(0x4010_0000, 0x4400_0000))
        );
        let other_region = range(0x8000_0000, 0x8010_0000);
        assert_eq!(
            free_range(region, 0x4010_0000, &[other_region]),
            Some(range(0x4010_0000, 0x4400_0000))
        );
    }

    #[test]
    fn an_occupied_start_is_skipped() {
        let region = range(0x4000_0000, 0x4400_0000);
        let dtb = range(0x4008_0000, 0x4018_0000);
        assert_eq!(
            free_range(region, 0x4010_0000, &[dtb]),
            Some(range(0x4018_0000, 0x4400_0000))
        );
    }

    #[test]
    fn nothing_left() {
        let region = range(0x4000_0000, 0x4010_0000);
        assert_eq!(free_range(region, 0x4010_0000, &[]), None);
        let dtb = range(0x400f_f000, 0x4010_0000);
        assert_eq!(free_range(region, 0x400f_f800, &[dtb]), None);
        assert_eq!(free_range(region, u64::MAX - 10, &[]), None);
    }
}
