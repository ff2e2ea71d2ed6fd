//! The hypervisor's own EL2 stage 1 translation tables: an identity map (VA = PA).
//!
//! This submodule of `stage2` owns the EL2 memory attributes: which `MAIR_EL2` index means what
//! ([`MAIR_EL2`]), the descriptor attributes for hypervisor RAM and devices, and the matching
//! `TCR_EL2` value ([`tcr_el2_value`]). The arch code builds a [`HypervisorMap`] once the board
//! config is known, programs `MAIR_EL2` = [`MAIR_EL2`], `TCR_EL2` = [`tcr_el2_value`] and
//! `TTBR0_EL2` = [`HypervisorMap::root_address`], and enables the MMU.
//!
//! Layout: 4 KiB granule, 39-bit VA (T0SZ = 25, 512 GiB), root table at level 1, so physical
//! addresses up to 512 GiB can be identity-mapped. [`HypervisorMap::build`] maps exactly what
//! EL2 uses, from an [`El2Layout`]: the hypervisor's code read-only and executable, its read-only
//! data read-only, the rest of its memory (data, heap, bundle, stacks) read/write and never
//! executable, with an unmapped guard page below each CPU's stack; partitions' memory read/write
//! and never executable (EL2 loads and clears it but never runs it); the devices EL2 drives as
//! Device-nGnRE, read/write, execute-never. No page is both writable and executable, so
//! `SCTLR_EL2.WXN` can be on. Normal memory is inner/outer write-back read/write-allocate, inner
//! shareable.
//!
//! Requests are `(base, size)` and must be 4 KiB aligned. Mapping a range again with the same
//! kind is allowed (a no-op for the already-mapped part); mapping over an existing mapping of the
//! other kind is refused with [`MapError::Overlap`] and changes nothing.

#![forbid(unsafe_code)]

use super::{map_checked, HeapPages, MapError};
#[cfg(test)]
use super::{walk_one, MemKind};
use aarch64_paging::descriptor::El23Attributes;
use aarch64_paging::mair::{Mair, MairAttribute, NormalMemory};
use aarch64_paging::paging::{Constraints, El2};
use aarch64_paging::Mapping;
use alloc::vec::Vec;
use bulkhead_config::{HostPhysAddr, HostRange};

use aarch64_paging::paging::PAGE_SIZE;

const PAGE: u64 = PAGE_SIZE as u64;

/// `MAIR_EL2` attribute index for Device-nGnRE memory.
pub const MAIR_INDEX_DEVICE: u8 = 0;
/// `MAIR_EL2` attribute index for Normal write-back memory.
pub const MAIR_INDEX_NORMAL: u8 = 1;

/// The `MAIR_EL2` value matching the attribute indices used by [`HypervisorMap`]:
/// index 0 = Device-nGnRE (0x04), index 1 = Normal inner/outer write-back non-transient
/// read/write-allocate (0xff). That is `0xff04`.
pub const MAIR_EL2: u64 = Mair::EMPTY
    .with_attribute(MAIR_INDEX_DEVICE, MairAttribute::DEVICE_NGNRE)
    .with_attribute(
        MAIR_INDEX_NORMAL,
        MairAttribute::normal(
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
        ),
    )
    .0;

/// Number of VA bits of the EL2 identity map.
pub const EL2_VA_BITS: u32 = 39;

/// Level of the EL2 root table (level 1 covers 39 bits with a 4 KiB granule).
pub const EL2_ROOT_LEVEL: usize = 1;

// TCR_EL2 (without E2H) fields.
const TCR_T0SZ: u64 = 64 - EL2_VA_BITS as u64;
const TCR_IRGN0_WBWA: u64 = 0b01 << 8;
const TCR_ORGN0_WBWA: u64 = 0b01 << 10;
const TCR_SH0_INNER: u64 = 0b11 << 12;
const TCR_TG0_4K: u64 = 0b00 << 14;
const TCR_PS_SHIFT: u32 = 16;
const TCR_RES1: u64 = (1 << 31) | (1 << 23);

/// The `TCR_EL2` value (for `HCR_EL2.E2H` = 0) matching [`HypervisorMap`]: T0SZ = 25, table
/// walks inner/outer write-back write-allocate and inner shareable, 4 KiB granule, and PS from
/// `parange` (the `ID_AA64MMFR0_EL1.PARange` field; only bits \[3:0\] are used, sizes above 48
/// bits and undefined encodings are capped at 48).
pub const fn tcr_el2_value(parange: u64) -> u64 {
    let ps = match super::ps_field((parange & 0xf) as u8) {
        Some(ps) => ps,
        None => 5,
    };
    TCR_RES1
        | (ps << TCR_PS_SHIFT)
        | TCR_TG0_4K
        | TCR_SH0_INNER
        | TCR_ORGN0_WBWA
        | TCR_IRGN0_WBWA
        | TCR_T0SZ
}

const EL2_NORMAL: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_1)
    .union(El23Attributes::INNER_SHAREABLE)
    .union(El23Attributes::ACCESSED)
    // AP[1] is RES1 in the single-privilege EL2 regime.
    .union(El23Attributes::USER_RES1);

/// Code: read-only, executable.
const EL2_TEXT: El23Attributes = EL2_NORMAL.union(El23Attributes::READ_ONLY);
/// Read-only data.
const EL2_RODATA: El23Attributes = EL2_TEXT.union(El23Attributes::XN);
/// Everything else in RAM: read/write, never executable.
const EL2_DATA: El23Attributes = EL2_NORMAL.union(El23Attributes::XN);

const EL2_DEVICE: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_0)
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::USER_RES1)
    .union(El23Attributes::XN);

/// What the EL2 map covers. All ranges are page-aligned, except devices (rounded out to pages).
#[derive(Clone, Debug, Default)]
pub struct El2Layout {
    /// The hypervisor's own memory (image, heap, bundle).
    pub hypervisor: HostRange,
    /// Its code, inside `hypervisor`.
    pub text: HostRange,
    /// Its read-only data, inside `hypervisor`.
    pub rodata: HostRange,
    /// Pages of `hypervisor` left unmapped: one below each CPU's stack.
    pub guards: Vec<HostRange>,
    /// Partitions' memory and channels' shared memory.
    pub partitions: Vec<HostRange>,
    /// The devices EL2 drives (console, GIC).
    pub devices: Vec<HostRange>,
}

/// The hypervisor's EL2 identity map. It is built completely before it goes live (in
/// `TTBR0_EL2`) and never changed afterwards, so it needs no break-before-make handling; once
/// live it must never be dropped.
#[derive(Debug)]
pub struct HypervisorMap {
    mapping: Mapping<HeapPages<El23Attributes>, El2>,
}

impl Default for HypervisorMap {
    fn default() -> Self {
        Self::new()
    }
}

impl HypervisorMap {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            mapping: Mapping::new(HeapPages::new(), EL2_ROOT_LEVEL, El2),
        }
    }

    /// The map of `layout`. See the [module documentation](self).
    pub fn build(layout: &El2Layout) -> Result<Self, MapError> {
        let mut map = Self::new();
        map.map(layout.text.base, layout.text.size, EL2_TEXT)?;
        map.map(layout.rodata.base, layout.rodata.size, EL2_RODATA)?;
        let mut holes: Vec<HostRange> = layout.guards.to_vec();
        holes.extend([layout.text, layout.rodata]);
        for piece in layout.hypervisor.without(&mut holes) {
            map.map(piece.base, piece.size, EL2_DATA)?;
        }
        for r in &layout.partitions {
            map.map(r.base, r.size, EL2_DATA)?;
        }
        for r in &layout.devices {
            let pages = r.pages(PAGE);
            map.map_device(pages.base, pages.size)?;
        }
        Ok(map)
    }

    /// Identity-maps `size` bytes at `base` as read/write, never-executable Normal memory.
    pub fn map_data(&mut self, base: HostPhysAddr, size: u64) -> Result<(), MapError> {
        self.map(base, size, EL2_DATA)
    }

    /// Identity-maps `size` bytes at `base` as Device-nGnRE, read/write, execute-never.
    pub fn map_device(&mut self, base: HostPhysAddr, size: u64) -> Result<(), MapError> {
        self.map(base, size, EL2_DEVICE)
    }

    fn map(
        &mut self,
        base: HostPhysAddr,
        size: u64,
        flags: El23Attributes,
    ) -> Result<(), MapError> {
        map_checked(
            &mut self.mapping,
            base.raw(),
            base.raw(),
            size,
            1 << EL2_VA_BITS,
            flags,
            Constraints::empty(),
        )
    }

    /// Physical address of the root table, for `TTBR0_EL2`.
    pub fn root_address(&self) -> HostPhysAddr {
        HostPhysAddr(self.mapping.root_address().0 as u64)
    }

    /// Translates `va` by walking the tables, or `None` if it is not mapped.
    #[cfg(test)]
    pub fn translate(&self, va: u64) -> Option<(HostPhysAddr, MemKind)> {
        if va >= 1 << EL2_VA_BITS {
            return None;
        }
        let (pa, flags, _) = walk_one(&self.mapping, va)?;
        let kind =
            if flags & El23Attributes::ATTRIBUTE_INDEX_MASK == El23Attributes::ATTRIBUTE_INDEX_0 {
                MemKind::Device
            } else {
                MemKind::Normal
            };
        Some((HostPhysAddr(pa), kind))
    }

    /// Whether `va` is mapped executable.
    #[cfg(test)]
    pub fn is_executable(&self, va: u64) -> bool {
        if va >= 1 << EL2_VA_BITS {
            return false;
        }
        walk_one(&self.mapping, va).is_some_and(|(_, flags, _)| !flags.contains(El23Attributes::XN))
    }

    /// Whether `va` is mapped writable.
    #[cfg(test)]
    pub fn is_writable(&self, va: u64) -> bool {
        va < 1 << EL2_VA_BITS
            && walk_one(&self.mapping, va)
                .is_some_and(|(_, flags, _)| !flags.contains(El23Attributes::READ_ONLY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pa: u64) -> HostPhysAddr {
        HostPhysAddr(pa)
    }

    #[test]
    fn mair_and_tcr() {
        assert_eq!(MAIR_EL2, 0xff04);
        // RES1 (bits 31, 23) | PS=5 | TG0=4K | SH0 inner | ORGN0/IRGN0 WBWA | T0SZ=25.
        assert_eq!(tcr_el2_value(5), 0x8085_3519);
        assert_eq!(tcr_el2_value(2), 0x8082_3519);
        assert_eq!(tcr_el2_value(6), 0x8085_3519);
        assert_eq!(tcr_el2_value(9), 0x8085_3519);
    }

    #[test]
    fn identity_map_with_kinds() {
        let mut map = HypervisorMap::new();
        map.map_data(h(0x4000_0000), 0x200_0000).unwrap();
        map.map_device(h(0x0900_0000), 0x1000).unwrap();
        map.map_device(h(0x0800_0000), 0x2_0000).unwrap();
        assert_eq!(
            map.translate(0x4000_0000),
            Some((h(0x4000_0000), MemKind::Normal))
        );
        assert_eq!(
            map.translate(0x41ff_ffff),
            Some((h(0x41ff_ffff), MemKind::Normal))
        );
        assert_eq!(
            map.translate(0x0900_0018),
            Some((h(0x0900_0018), MemKind::Device))
        );
        assert_eq!(
            map.translate(0x0801_0000),
            Some((h(0x0801_0000), MemKind::Device))
        );
        assert!(!map.is_executable(0x4000_0000), "data is never executable");
        assert!(map.is_writable(0x4000_0000));
        assert!(!map.is_executable(0x0900_0000));
        // Neighbours stay unmapped.
        assert_eq!(map.translate(0x3fff_ffff), None);
        assert_eq!(map.translate(0x4200_0000), None);
        assert_eq!(map.translate(0x0900_1000), None);
        assert_eq!(map.translate(0x08ff_ffff), None);
        assert_eq!(map.translate(0x0802_0000), None);
        assert_eq!(map.translate(1 << 39), None);
        assert!(map.root_address().is_aligned(4096));
    }

    /// QEMU virt-like: the hypervisor at 0x4000_0000 (64 MiB), its image at 0x4020_0000, two
    /// CPUs' stacks, a partition, the console and the GIC.
    fn layout() -> El2Layout {
        let r = |base, size| HostRange::new(h(base), size);
        El2Layout {
            hypervisor: r(0x4000_0000, 0x400_0000),
            text: r(0x4020_0000, 0x2_0000),
            rodata: r(0x4022_0000, 0x6000),
            guards: vec![r(0x4030_0000, 0x1000), r(0x4031_0000, 0x1000)],
            partitions: vec![r(0x4800_0000, 0x100_0000)],
            devices: vec![r(0x0900_0000, 0x1000), r(0x0800_0000, 0x1_0000)],
        }
    }

    #[test]
    fn the_built_map_has_no_writable_code_and_guards_its_stacks() {
        let map = HypervisorMap::build(&layout()).unwrap();
        // Code: executable, read-only.
        for va in [0x4020_0000, 0x4021_fff0] {
            assert!(map.is_executable(va) && !map.is_writable(va), "{va:#x}");
        }
        // Read-only data.
        assert!(!map.is_executable(0x4022_0000) && !map.is_writable(0x4022_5fff));
        // Data, heap, stacks, the rest of the hypervisor's memory: writable, never executable.
        for va in [
            0x4000_0000,
            0x401f_ffff,
            0x4022_6000,
            0x4030_1000,
            0x43ff_ffff,
        ] {
            assert!(map.is_writable(va) && !map.is_executable(va), "{va:#x}");
        }
        // The guard pages are holes.
        assert_eq!(map.translate(0x4030_0000), None);
        assert_eq!(map.translate(0x4031_0fff), None);
        assert!(map.translate(0x4031_1000).is_some());
        // Partition memory: EL2 may load it but never run it.
        assert!(map.is_writable(0x4800_0000) && !map.is_executable(0x48ff_ffff));
        assert_eq!(map.translate(0x4900_0000), None);
        // Devices.
        assert_eq!(
            map.translate(0x0900_0018),
            Some((h(0x0900_0018), MemKind::Device))
        );
        // Nothing else.
        assert_eq!(map.translate(0x4400_0000), None);
        assert_eq!(map.translate(0x3fff_ffff), None);
        // W^X everywhere it maps.
        for page in (0x4000_0000u64..0x4400_0000).step_by(0x1000) {
            assert!(
                !(map.is_writable(page) && map.is_executable(page)),
                "{page:#x}"
            );
        }
    }

    #[test]
    fn subtracting_holes() {
        let r = |base, size| HostRange::new(h(base), size);
        let mut holes = [r(0x5000, 0x1000), r(0x1000, 0x1000), r(0x9000, 0x2000)];
        assert_eq!(
            r(0x1000, 0x9000).without(&mut holes),
            [r(0x2000, 0x3000), r(0x6000, 0x3000)]
        );
        assert_eq!(r(0x1000, 0x1000).without(&mut holes), []);
        assert_eq!(r(0x20000, 0x1000).without(&mut holes), [r(0x20000, 0x1000)]);
    }

    #[test]
    fn high_addresses() {
        let mut map = HypervisorMap::new();
        // QEMU virt's high RAM starts at 256 GiB.
        map.map_data(h(0x40_0000_0000), 0x20_0000).unwrap();
        assert_eq!(
            map.translate(0x40_0010_0000),
            Some((h(0x40_0010_0000), MemKind::Normal))
        );
        assert!(matches!(
            map.map_data(h((1 << 39) - 0x1000), 0x2000),
            Err(MapError::OutOfRange { .. })
        ));
    }

    #[test]
    fn overlaps() {
        let mut map = HypervisorMap::new();
        map.map_data(h(0x4000_0000), 0x40_0000).unwrap();
        // Same kind again, partially overlapping: fine.
        map.map_data(h(0x4030_0000), 0x20_0000).unwrap();
        assert_eq!(
            map.translate(0x404f_f000),
            Some((h(0x404f_f000), MemKind::Normal))
        );
        // Device over normal: refused, nothing changes.
        assert_eq!(
            map.map_device(h(0x403f_f000), 0x20_1000),
            Err(MapError::Overlap { at: 0x403f_f000 })
        );
        assert_eq!(map.translate(0x4055_0000), None);
        assert_eq!(
            map.translate(0x403f_f000),
            Some((h(0x403f_f000), MemKind::Normal))
        );
    }

    #[test]
    fn bad_ranges() {
        let mut map = HypervisorMap::new();
        assert_eq!(map.map_data(h(0x1000), 0), Err(MapError::Empty));
        for (base, size) in [(0x1800, 0x800), (0x1000, 0x800)] {
            assert!(matches!(
                map.map_device(h(base), size),
                Err(MapError::Misaligned { .. })
            ));
        }
        assert!(matches!(
            map.map_data(h(!0xfff), 0x1000),
            Err(MapError::OutOfRange { .. })
        ));
    }
}
