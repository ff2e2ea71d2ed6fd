//! Translation tables: the per-partition stage 2 tables, and (in [`el2_map`]) the hypervisor's
//! own EL2 stage 1 identity map.
//!
//! This module owns the layout and attributes of every translation table the hypervisor builds.
//! Tables are built with the `aarch64-paging` crate; table pages come from [`HeapPages`], which
//! takes 4 KiB-aligned zeroed pages from the global allocator and uses their address as their
//! physical address (EL2 runs identity-mapped, so VA = PA; in host tests the heap address stands
//! in for the PA). The arch code programs the system registers from the values computed here
//! ([`vtcr_value`], [`Stage2Tables::vttbr_value`], [`el2_map::MAIR_EL2`],
//! [`el2_map::tcr_el2_value`]); nothing here touches a system register.
//!
//! Stage 2 configuration: 4 KiB granule, 39-bit IPA space (T0SZ = 25), translation starting at
//! level 1 (SL0 = 1), so a partition's IPA space is `0..512 GiB`. RAM is mapped Normal
//! write-back, inner shareable, read/write/execute; a channel's shared memory the same but
//! never executable, and read-only for a read-only endpoint (a write is a permission fault);
//! devices Device-nGnRE, read/write, execute never. The access flag is always set. Block mappings (1 GiB, 2 MiB) are used wherever IPA and
//! PA are suitably aligned.
//!
//! Mapping requests are strict: addresses and sizes must be 4 KiB aligned (nothing is silently
//! rounded, so nothing is mapped that was not asked for), and a request that overlaps an existing
//! mapping of the same tables is refused and changes nothing, unless the overlapping part is
//! already mapped to exactly the same output addresses with the same attributes (so mapping the
//! same device page twice is harmless, but RAM over RAM elsewhere or a device over RAM is not). Whether two partitions
//! map the same PA is the configuration checker's business, not this module's.

#[path = "el2_map.rs"]
pub mod el2_map;

pub use el2_map::{tcr_el2_value, HypervisorMap, MAIR_EL2};

/// Lets callers that propagate `aarch64_paging::MapError` use `?` on this module's results. The
/// conversion is approximate (`Overlap` becomes `BreakBeforeMakeViolation`, bad ranges become
/// `AddressRange`/`InvalidVirtualAddress`); prefer [`MapError`] where the detail matters.
impl From<MapError> for aarch64_paging::MapError {
    fn from(e: MapError) -> Self {
        use aarch64_paging::descriptor::VirtualAddress;
        match e {
            MapError::Misaligned { ipa, .. } => {
                Self::InvalidVirtualAddress(VirtualAddress(ipa as usize))
            }
            MapError::Empty => Self::AddressRange(VirtualAddress(0)),
            MapError::OutOfRange { ipa, .. } => Self::AddressRange(VirtualAddress(ipa as usize)),
            MapError::Overlap { at } => Self::BreakBeforeMakeViolation(MemoryRegion::new(
                at as usize,
                at as usize + PAGE_SIZE,
            )),
            MapError::Paging(e) => e,
        }
    }
}

use aarch64_paging::descriptor::{PagingAttributes, PhysicalAddress, Stage2Attributes};
use aarch64_paging::paging::{
    Constraints, MemoryRegion, PageTable, Stage2, Translation, LEAF_LEVEL, PAGE_SIZE,
};
use aarch64_paging::Mapping;
use alloc::alloc::{dealloc, Layout};
use bulkhead_config::{GuestPhysAddr, HostPhysAddr};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// Size of one translation granule / page.
pub const PAGE: u64 = PAGE_SIZE as u64;

/// Number of IPA bits a partition has.
pub const IPA_BITS: u32 = 39;

/// Size of a partition's IPA space (512 GiB).
pub const IPA_SPACE: u64 = 1 << IPA_BITS;

/// `VTCR_EL2.T0SZ` for [`IPA_BITS`].
pub const VTCR_T0SZ: u64 = 64 - IPA_BITS as u64;

/// `VTCR_EL2.SL0` for a level 1 start with a 4 KiB granule.
pub const VTCR_SL0: u64 = 1;

/// Level of the stage 2 root table.
pub const STAGE2_ROOT_LEVEL: usize = 1;

/// Highest physical address bit the descriptors can hold (48-bit output addresses).
pub const MAX_PA_BITS: u32 = 48;

#[cfg(test)]
/// The kind of memory a translation points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Normal cacheable memory (RAM).
    Normal,
    /// Device memory (MMIO).
    Device,
}

/// Why a mapping request was refused. The tables are unchanged when any of these is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or the size is not a multiple of 4 KiB.
    Misaligned { ipa: u64, pa: u64, size: u64 },
    /// The size is zero.
    Empty,
    /// The input range does not fit in the input address space, or the output range does not fit
    /// in 48 bits.
    OutOfRange { ipa: u64, pa: u64, size: u64 },
    /// Part of the input range is already mapped (at `at`) in a way that conflicts.
    Overlap { at: u64 },
    /// The paging library refused the request.
    Paging(aarch64_paging::MapError),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned { ipa, pa, size } => write!(
                f,
                "mapping {ipa:#x} -> {pa:#x} ({size:#x} bytes) is not 4 KiB aligned"
            ),
            Self::Empty => f.write_str("empty mapping"),
            Self::OutOfRange { ipa, pa, size } => write!(
                f,
                "mapping {ipa:#x} -> {pa:#x} ({size:#x} bytes) is outside the address space"
            ),
            Self::Overlap { at } => write!(f, "address {at:#x} is already mapped"),
            Self::Paging(e) => write!(f, "page table error: {e}"),
        }
    }
}

impl From<aarch64_paging::MapError> for MapError {
    fn from(e: aarch64_paging::MapError) -> Self {
        Self::Paging(e)
    }
}

/// Validates a request to map `size` bytes at input address `ipa` (below `input_limit`) to `pa`.
fn check_request(ipa: u64, pa: u64, size: u64, input_limit: u64) -> Result<(), MapError> {
    if size == 0 {
        return Err(MapError::Empty);
    }
    if !(ipa | pa | size).is_multiple_of(PAGE) {
        return Err(MapError::Misaligned { ipa, pa, size });
    }
    let in_end = ipa.checked_add(size);
    let out_end = pa.checked_add(size);
    match (in_end, out_end) {
        (Some(i), Some(o)) if i <= input_limit && o <= 1 << MAX_PA_BITS => Ok(()),
        _ => Err(MapError::OutOfRange { ipa, pa, size }),
    }
}

/// Bytes covered by one descriptor at `level`.
const fn level_size(level: usize) -> u64 {
    PAGE << (9 * (LEAF_LEVEL - level))
}

/// A [`Translation`] whose table pages are zeroed, 4 KiB-aligned allocations from the global
/// allocator, with the allocation's address used as its physical address.
#[derive(Debug)]
pub struct HeapPages<A: PagingAttributes> {
    tables: usize,
    _attributes: PhantomData<A>,
}

impl<A: PagingAttributes> HeapPages<A> {
    /// A new allocator with no tables allocated.
    pub fn new() -> Self {
        Self {
            tables: 0,
            _attributes: PhantomData,
        }
    }

    /// Number of table pages currently allocated.
    pub fn tables(&self) -> usize {
        self.tables
    }
}

impl<A: PagingAttributes> Default for HeapPages<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: PagingAttributes> Translation<A> for HeapPages<A> {
    fn allocate_table(&mut self) -> (NonNull<PageTable<A>>, PhysicalAddress) {
        // `PageTable::new` allocates a zeroed, 4 KiB-aligned page and aborts via
        // `handle_alloc_error` if the heap is exhausted.
        let table = PageTable::<A>::new();
        self.tables += 1;
        (table, PhysicalAddress(table.as_ptr() as usize))
    }

    unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<A>>) {
        self.tables -= 1;
        // SAFETY: Our caller guarantees the table came from `allocate_table` above, i.e. from the
        // global allocator with `PageTable<A>`'s layout, and has not been freed yet.
        unsafe { dealloc(page_table.as_ptr().cast(), Layout::new::<PageTable<A>>()) }
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<A>> {
        // Only addresses handed out by `allocate_table` (never null) are ever passed back.
        NonNull::new(pa.0 as *mut PageTable<A>).expect("page table at physical address 0")
    }
}

#[cfg(test)]
/// One leaf of a translation, as found by a table walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The output address of the looked-up input address (not of the block).
    pub pa: HostPhysAddr,
    pub kind: MemKind,
    /// Translation level of the leaf: 1 (1 GiB block), 2 (2 MiB block) or 3 (4 KiB page).
    pub level: usize,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
}

const S2_RAM: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_NORMAL_INNER_WB)
    .union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::SH_INNER)
    .union(Stage2Attributes::ACCESS_FLAG);

/// A channel's shared memory for a read-write endpoint: RAM that is never executed.
const S2_SHARED_RW: Stage2Attributes = S2_RAM.union(Stage2Attributes::XN);

/// A read-only view of hypervisor memory (a device's shadow registers): RAM, never executed,
/// never written (a write is a stage-2 permission fault, which the hypervisor emulates).
const S2_SHADOW: Stage2Attributes = S2_SHARED_RW
    .difference(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::S2AP_ACCESS_RO);

/// A channel's shared memory for a read-only endpoint: no write permission.
const S2_SHARED_RO: Stage2Attributes = S2_SHARED_RW
    .difference(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::S2AP_ACCESS_RO);

const S2_DEVICE: Stage2Attributes = Stage2Attributes::VALID
    .union(Stage2Attributes::MEMATTR_DEVICE_nGnRE)
    .union(Stage2Attributes::S2AP_ACCESS_RW)
    .union(Stage2Attributes::ACCESS_FLAG)
    .union(Stage2Attributes::XN);

#[cfg(test)]
/// Stage 2 MemAttr\[3:0\] lives in descriptor bits \[5:2\]; MemAttr\[3:2\] = 0 means Device.
const S2_MEMATTR_OUTER: usize = 0b11 << 4;

/// One level-3 entry of a partition's stage-2 tables that the hypervisor switches while the
/// partition runs: where it is (the table page is hypervisor memory, identity-mapped at EL2),
/// the page it maps and its value when valid. The entry is valid after
/// [`Stage2Tables::map_switchable`]; writing it is the arch code's job (with the TLB
/// maintenance that turning it off needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Entry {
    /// Address of the 64-bit descriptor.
    pub address: usize,
    /// The guest-physical page it maps.
    pub ipa: GuestPhysAddr,
    /// The descriptor's value when valid; clearing bit 0 makes it invalid.
    pub valid: u64,
}

impl Stage2Entry {
    /// The descriptor's value when invalid (a translation fault).
    pub const fn invalid(&self) -> u64 {
        self.valid & !1
    }
}

/// The stage 2 translation tables of one partition.
#[derive(Debug)]
pub struct Stage2Tables {
    mapping: Mapping<HeapPages<Stage2Attributes>, Stage2>,
    constraints: Constraints,
}

impl Default for Stage2Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage2Tables {
    /// Empty tables (nothing mapped): a level 1 root covering a 39-bit IPA space.
    pub fn new() -> Self {
        Self {
            mapping: Mapping::new(HeapPages::new(), STAGE2_ROOT_LEVEL, Stage2),
            constraints: Constraints::empty(),
        }
    }

    /// Empty tables that map with 4 KiB pages only, never blocks. Slower on hardware (more TLB
    /// entries), but QEMU's TCG flushes its whole TLB whenever a page flush falls inside any
    /// large page it holds, so there guests that flush single pages often (Linux patching its
    /// text at boot) run much faster without stage-2 blocks.
    pub fn pages_only() -> Self {
        Self {
            constraints: Constraints::NO_BLOCK_MAPPINGS,
            ..Self::new()
        }
    }

    /// Maps `size` bytes of RAM at `ipa` to `pa`: Normal write-back, inner shareable, RWX.
    pub fn map_ram(
        &mut self,
        ipa: GuestPhysAddr,
        pa: HostPhysAddr,
        size: u64,
    ) -> Result<(), MapError> {
        self.map(ipa, pa, size, S2_RAM)
    }

    /// Maps `size` bytes of a channel's shared memory at `ipa` to `pa`: Normal write-back,
    /// inner shareable, execute-never, and read/write only if `writable` (else a write is a
    /// stage-2 permission fault).
    pub fn map_shared(
        &mut self,
        ipa: GuestPhysAddr,
        pa: HostPhysAddr,
        size: u64,
        writable: bool,
    ) -> Result<(), MapError> {
        let flags = if writable { S2_SHARED_RW } else { S2_SHARED_RO };
        self.map(ipa, pa, size, flags)
    }

    /// Maps `size` bytes of a device at `ipa` to `pa`: Device-nGnRE, RW, execute-never.
    pub fn map_device(
        &mut self,
        ipa: GuestPhysAddr,
        pa: HostPhysAddr,
        size: u64,
    ) -> Result<(), MapError> {
        self.map(ipa, pa, size, S2_DEVICE)
    }

    fn map(
        &mut self,
        ipa: GuestPhysAddr,
        pa: HostPhysAddr,
        size: u64,
        flags: Stage2Attributes,
    ) -> Result<(), MapError> {
        map_checked(
            &mut self.mapping,
            ipa.raw(),
            pa.raw(),
            size,
            IPA_SPACE,
            flags,
            self.constraints,
        )
    }

    /// Maps the 4 KiB page `pa` (hypervisor memory) read-only at `ipa`, and returns its table
    /// entry, whose valid bit the hypervisor turns off and on while the partition runs
    /// ([`Stage2Entry`]): a device's registers shown in a shadow page while reading them has no
    /// effect, trapped again when it has.
    pub fn map_switchable(
        &mut self,
        ipa: GuestPhysAddr,
        pa: HostPhysAddr,
    ) -> Result<Stage2Entry, MapError> {
        map_checked(
            &mut self.mapping,
            ipa.raw(),
            pa.raw(),
            PAGE,
            IPA_SPACE,
            S2_SHADOW,
            Constraints::NO_BLOCK_MAPPINGS,
        )?;
        let region = MemoryRegion::new(ipa.raw() as usize, ipa.raw() as usize + 1);
        let mut entry = None;
        self.mapping
            .walk_range(&region, &mut |_, descriptor, level| {
                if level == LEAF_LEVEL && descriptor.is_valid() {
                    entry = Some(Stage2Entry {
                        address: core::ptr::from_ref(descriptor) as usize,
                        ipa,
                        valid: descriptor.output_address().0 as u64
                            | descriptor.flags().bits() as u64,
                    });
                }
                Ok(())
            })
            .map_err(MapError::Paging)?;
        entry.ok_or(MapError::Overlap { at: ipa.raw() })
    }

    /// Physical address of the root table, for `VTTBR_EL2.BADDR`.
    pub fn root_address(&self) -> HostPhysAddr {
        HostPhysAddr(self.mapping.root_address().0 as u64)
    }

    /// The `VTTBR_EL2` value for these tables and the partition's VMID (8-bit VMIDs, so the
    /// VMID goes to bits \[55:48\]).
    pub fn vttbr_value(&self, vmid: u8) -> u64 {
        self.root_address().raw() | (u64::from(vmid) << 48)
    }

    /// Number of table pages in use (root included).
    #[cfg(test)]
    pub fn table_pages(&self) -> usize {
        self.mapping.translation().tables()
    }

    /// Translates `ipa` by walking the tables: the PA and the memory kind, or `None` if `ipa` is
    /// not mapped.
    #[cfg(test)]
    pub fn translate(&self, ipa: GuestPhysAddr) -> Option<(HostPhysAddr, MemKind)> {
        self.lookup(ipa).map(|leaf| (leaf.pa, leaf.kind))
    }

    /// Walks the tables for `ipa` and describes the leaf that maps it.
    #[cfg(test)]
    pub fn lookup(&self, ipa: GuestPhysAddr) -> Option<Leaf> {
        if ipa.raw() >= IPA_SPACE {
            return None;
        }
        let (pa, flags, level) = walk_one(&self.mapping, ipa.raw())?;
        let kind = if flags.bits() & S2_MEMATTR_OUTER == 0 {
            MemKind::Device
        } else {
            MemKind::Normal
        };
        Some(Leaf {
            pa: HostPhysAddr(pa),
            kind,
            level,
            readable: flags.contains(Stage2Attributes::S2AP_ACCESS_RO),
            writable: flags.contains(Stage2Attributes::S2AP_ACCESS_WO),
            executable: !flags.contains(Stage2Attributes::XN),
        })
    }
}

/// Maps `size` bytes at input address `addr` to `pa` with `flags` after checking the request
/// (aligned, non-empty, below `input_limit`) and that it changes no existing mapping: the one
/// mapping routine of both the stage-2 tables and the EL2 map.
fn map_checked<A, R>(
    mapping: &mut Mapping<HeapPages<A>, R>,
    addr: u64,
    pa: u64,
    size: u64,
    input_limit: u64,
    flags: A,
    constraints: Constraints,
) -> Result<(), MapError>
where
    A: PagingAttributes,
    R: aarch64_paging::paging::TranslationRegime<Attributes = A>,
{
    check_request(addr, pa, size, input_limit)?;
    let region = MemoryRegion::new(addr as usize, (addr + size) as usize);
    if let Some(at) = first_conflict(mapping, &region, pa, flags)? {
        return Err(MapError::Overlap { at });
    }
    mapping.map_range(&region, PhysicalAddress(pa as usize), flags, constraints)?;
    Ok(())
}

#[cfg(test)]
/// Looks up the valid leaf covering `addr`: (output address of `addr`, flags, level).
fn walk_one<A, R>(mapping: &Mapping<HeapPages<A>, R>, addr: u64) -> Option<(u64, A, usize)>
where
    A: PagingAttributes,
    R: aarch64_paging::paging::TranslationRegime<Attributes = A>,
{
    let region = MemoryRegion::new(addr as usize, addr as usize + 1);
    let mut found = None;
    mapping
        .walk_range(&region, &mut |_, descriptor, level| {
            if descriptor.is_valid() {
                let offset = addr & (level_size(level) - 1);
                found = Some((
                    descriptor.output_address().0 as u64 + offset,
                    descriptor.flags(),
                    level,
                ));
            }
            Ok(())
        })
        .ok()?;
    found
}

/// Returns the first input address in `region` that is already mapped differently from
/// "`region` to `pa` with `flags`", if any. Parts already mapped exactly like that are fine.
fn first_conflict<A, R>(
    mapping: &Mapping<HeapPages<A>, R>,
    region: &MemoryRegion,
    pa: u64,
    flags: A,
) -> Result<Option<u64>, MapError>
where
    A: PagingAttributes,
    R: aarch64_paging::paging::TranslationRegime<Attributes = A>,
{
    let base = region.start().0 as u64;
    let mut found = None;
    let walked = mapping.walk_range(region, &mut |chunk, descriptor, level| {
        if !descriptor.is_valid() {
            return Ok(());
        }
        let at = chunk.start().0 as u64;
        let existing_pa = descriptor.output_address().0 as u64 + (at & (level_size(level) - 1));
        // Pages and blocks differ only in the TABLE_OR_PAGE bit.
        let existing_flags = descriptor.flags() - A::TABLE_OR_PAGE;
        if existing_flags == flags && existing_pa == pa + (at - base) {
            Ok(())
        } else {
            found = Some(at);
            Err(())
        }
    });
    match walked {
        Ok(()) => Ok(None),
        // The walk was stopped by us on purpose.
        Err(aarch64_paging::MapError::PteUpdateFault(_)) if found.is_some() => Ok(found),
        Err(e) => Err(e.into()),
    }
}

/// Physical address size in bits encoded by `ID_AA64MMFR0_EL1.PARange` (bits \[3:0\]).
pub const fn parange_bits(parange: u8) -> Option<u32> {
    match parange & 0xf {
        0 => Some(32),
        1 => Some(36),
        2 => Some(40),
        3 => Some(42),
        4 => Some(44),
        5 => Some(48),
        6 => Some(52),
        _ => None,
    }
}

/// The `PS`/`IPS` field value to program for a CPU reporting `parange`: the CPU's PA size capped
/// at 48 bits (what 4 KiB-granule descriptors without LPA2 can express).
pub const fn ps_field(parange: u8) -> Option<u64> {
    match parange & 0xf {
        p @ 0..=5 => Some(p as u64),
        6 => Some(5),
        _ => None,
    }
}

// VTCR_EL2 fields.
const VTCR_IRGN0_WBWA: u64 = 0b01 << 8;
const VTCR_ORGN0_WBWA: u64 = 0b01 << 10;
const VTCR_SH0_INNER: u64 = 0b11 << 12;
const VTCR_TG0_4K: u64 = 0b00 << 14;
const VTCR_PS_SHIFT: u32 = 16;
const VTCR_RES1: u64 = 1 << 31;

/// The `VTCR_EL2` value for [`Stage2Tables`]: T0SZ = 25 (39-bit IPA), SL0 = 1 (start at level
/// 1), table walks inner/outer write-back write-allocate and inner shareable, 4 KiB granule, 8-bit
/// VMID, and PS from `parange` (the `ID_AA64MMFR0_EL1.PARange` field; only bits \[3:0\] are
/// used, and sizes above 48 bits are capped at 48).
///
/// On a CPU whose physical address space is smaller than 39 bits (PARange 32 or 36 bits) the IPA
/// space shrinks to the PA size (T0SZ = 32 or 28, still starting at level 1 with the same
/// tables), as the architecture requires; IPAs above it then fault.
pub const fn vtcr_value(parange: u64) -> u64 {
    let parange = (parange & 0xf) as u8;
    let (pa_bits, ps) = match (parange_bits(parange), ps_field(parange)) {
        (Some(bits), Some(ps)) => (bits, ps),
        _ => (48, 5),
    };
    let ipa_bits = if pa_bits < IPA_BITS {
        pa_bits
    } else {
        IPA_BITS
    };
    VTCR_RES1
        | (ps << VTCR_PS_SHIFT)
        | VTCR_TG0_4K
        | VTCR_SH0_INNER
        | VTCR_ORGN0_WBWA
        | VTCR_IRGN0_WBWA
        | (VTCR_SL0 << 6)
        | (64 - ipa_bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn g(ipa: u64) -> GuestPhysAddr {
        GuestPhysAddr(ipa)
    }

    fn h(pa: u64) -> HostPhysAddr {
        HostPhysAddr(pa)
    }

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// Levels of all valid leaves in `ipa..ipa+size`, in order.
    fn leaf_levels(tables: &Stage2Tables, ipa: u64, size: u64) -> Vec<usize> {
        let mut levels = Vec::new();
        tables
            .mapping
            .walk_range(
                &MemoryRegion::new(ipa as usize, (ipa + size) as usize),
                &mut |_, d, level| {
                    if d.is_valid() {
                        levels.push(level);
                    }
                    Ok(())
                },
            )
            .unwrap();
        levels
    }

    #[test]
    fn ram_translation_and_attributes() {
        let mut t = Stage2Tables::new();
        t.map_ram(g(0x4000_0000), h(0x8000_0000), 16 * MIB).unwrap();
        assert_eq!(
            t.translate(g(0x4000_0000)),
            Some((h(0x8000_0000), MemKind::Normal))
        );
        assert_eq!(
            t.translate(g(0x40ab_cdef)),
            Some((h(0x80ab_cdef), MemKind::Normal))
        );
        assert_eq!(
            t.translate(g(0x40ff_ffff)),
            Some((h(0x80ff_ffff), MemKind::Normal))
        );
        let leaf = t.lookup(g(0x4010_0000)).unwrap();
        assert!(leaf.writable && leaf.executable);
        // Raw descriptor bits: MemAttr 0b1111, S2AP RW, SH inner, AF.
        let mut bits = 0;
        t.mapping
            .walk_range(
                &MemoryRegion::new(0x4000_0000, 0x4000_1000),
                &mut |_, d, _| {
                    bits = d.flags().bits();
                    Ok(())
                },
            )
            .unwrap();
        // VALID | MemAttr 0b1111 (0x3c) | S2AP RW (0xc0) | SH inner (0x300) | AF (0x400); a block.
        assert_eq!(bits & 0xfff, 0x7fd);
        assert_eq!(bits & (1 << 54), 0);
    }

    #[test]
    fn device_attributes() {
        let mut t = Stage2Tables::new();
        t.map_device(g(0x0900_0000), h(0x0900_0000), PAGE).unwrap();
        assert_eq!(
            t.translate(g(0x0900_0018)),
            Some((h(0x0900_0018), MemKind::Device))
        );
        let leaf = t.lookup(g(0x0900_0000)).unwrap();
        assert_eq!(leaf.level, 3);
        assert!(leaf.writable && !leaf.executable);
    }

    #[test]
    fn nothing_else_is_mapped() {
        let mut t = Stage2Tables::new();
        t.map_ram(g(0x4000_0000), h(0x8000_0000), 2 * MIB + 3 * PAGE)
            .unwrap();
        t.map_device(g(0x0900_0000), h(0x0900_0000), PAGE).unwrap();
        assert_eq!(t.translate(g(0x3fff_ffff)), None);
        assert_eq!(t.translate(g(0x4000_0000 + 2 * MIB + 3 * PAGE)), None);
        assert!(t
            .translate(g(0x4000_0000 + 2 * MIB + 3 * PAGE - 1))
            .is_some());
        assert_eq!(t.translate(g(0x08ff_ffff)), None);
        assert_eq!(t.translate(g(0x0900_1000)), None);
        assert_eq!(t.translate(g(0)), None);
        assert_eq!(t.translate(g(IPA_SPACE - 1)), None);
        assert_eq!(t.translate(g(IPA_SPACE)), None);
        assert_eq!(t.translate(g(u64::MAX)), None);
    }

    #[test]
    fn aligned_region_uses_2mib_blocks() {
        let mut t = Stage2Tables::new();
        t.map_ram(g(0x4000_0000), h(0x8000_0000), 16 * MIB).unwrap();
        assert_eq!(leaf_levels(&t, 0x4000_0000, 16 * MIB), [2; 8]);
        // Root plus one level 2 table.
        assert_eq!(t.table_pages(), 2);
    }

    #[test]
    fn pages_only_tables_never_use_blocks() {
        let mut t = Stage2Tables::pages_only();
        t.map_ram(g(0x4000_0000), h(0x5000_0000), 16 * MIB).unwrap();
        assert!(leaf_levels(&t, 0x4000_0000, 16 * MIB)
            .iter()
            .all(|&l| l == 3));
        assert_eq!(
            t.translate(g(0x40ff_f123)),
            Some((h(0x50ff_f123), MemKind::Normal))
        );
        assert_eq!(t.translate(g(0x4100_0000)), None);
    }

    #[test]
    fn gib_aligned_region_uses_1gib_block() {
        let mut t = Stage2Tables::new();
        t.map_ram(g(GIB), h(2 * GIB), GIB).unwrap();
        assert_eq!(t.lookup(g(GIB + 5)).unwrap().level, 1);
        assert_eq!(t.table_pages(), 1);
    }

    #[test]
    fn misaligned_pa_uses_pages() {
        let mut t = Stage2Tables::new();
        // IPA is 2 MiB aligned but the PA is not congruent: only pages are possible.
        t.map_ram(g(0x4000_0000), h(0x8000_1000), 16 * MIB).unwrap();
        let levels = leaf_levels(&t, 0x4000_0000, 16 * MIB);
        assert_eq!(levels.len(), 16 * MIB as usize / PAGE as usize);
        assert!(levels.iter().all(|&l| l == 3));
        assert_eq!(
            t.translate(g(0x4012_3456)),
            Some((h(0x8012_4456), MemKind::Normal))
        );
    }

    #[test]
    fn unaligned_start_uses_pages_then_blocks() {
        let mut t = Stage2Tables::new();
        // Both sides 4 KiB past a 2 MiB boundary: pages up to the next boundary, blocks after.
        t.map_ram(g(0x4000_1000), h(0x8000_1000), 4 * MIB).unwrap();
        let levels = leaf_levels(&t, 0x4000_0000, 6 * MIB);
        let pages = levels.iter().filter(|&&l| l == 3).count();
        let blocks = levels.iter().filter(|&&l| l == 2).count();
        // 511 head pages, 1 block, 1 tail page.
        assert_eq!((pages, blocks), (512, 1));
        assert_eq!(t.lookup(g(0x4020_0000)).unwrap().level, 2);
        assert_eq!(
            t.translate(g(0x4040_0fff)),
            Some((h(0x8040_0fff), MemKind::Normal))
        );
        assert_eq!(t.translate(g(0x4040_1000)), None);
        assert_eq!(t.translate(g(0x4000_0fff)), None);
    }

    #[test]
    fn overlapping_requests_are_refused() {
        let mut t = Stage2Tables::new();
        t.map_ram(g(0x4000_0000), h(0x8000_0000), 4 * MIB).unwrap();
        let pages = t.table_pages();
        // Overlapping the tail, the head, a full duplicate and a device inside RAM.
        assert_eq!(
            t.map_ram(g(0x403f_f000), h(0x9000_0000), 2 * PAGE),
            Err(MapError::Overlap { at: 0x403f_f000 })
        );
        assert_eq!(
            t.map_ram(g(0x3fff_f000), h(0x9000_0000), 2 * PAGE),
            Err(MapError::Overlap { at: 0x4000_0000 })
        );
        assert_eq!(
            t.map_ram(g(0x4000_0000), h(0x8800_0000), 4 * MIB),
            Err(MapError::Overlap { at: 0x4000_0000 })
        );
        assert!(matches!(
            t.map_device(g(0x4010_0000), h(0x0900_0000), PAGE),
            Err(MapError::Overlap { .. })
        ));
        // Nothing changed.
        assert_eq!(t.table_pages(), pages);
        // Re-mapping (part of) an existing mapping identically is accepted and a no-op.
        t.map_ram(g(0x4010_0000), h(0x8010_0000), MIB).unwrap();
        assert_eq!(t.table_pages(), pages);
        assert_eq!(t.lookup(g(0x4010_0000)).unwrap().level, 2);
        assert_eq!(
            t.translate(g(0x4010_0000)),
            Some((h(0x8010_0000), MemKind::Normal))
        );
        assert_eq!(t.translate(g(0x3fff_f000)), None);
        // Adjacent is fine.
        t.map_ram(g(0x4040_0000), h(0x9000_0000), PAGE).unwrap();
        t.map_device(g(0x3fff_f000), h(0x0900_0000), PAGE).unwrap();
        assert_eq!(
            t.translate(g(0x4040_0000)),
            Some((h(0x9000_0000), MemKind::Normal))
        );
        assert_eq!(
            t.translate(g(0x3fff_f000)),
            Some((h(0x0900_0000), MemKind::Device))
        );
    }

    #[test]
    fn bad_requests() {
        let mut t = Stage2Tables::new();
        assert_eq!(
            t.map_ram(g(0x4000_0000), h(0x8000_0000), 0),
            Err(MapError::Empty)
        );
        assert!(matches!(
            t.map_ram(g(0x4000_0800), h(0x8000_0000), PAGE),
            Err(MapError::Misaligned { .. })
        ));
        assert!(matches!(
            t.map_ram(g(0x4000_0000), h(0x8000_0800), PAGE),
            Err(MapError::Misaligned { .. })
        ));
        assert!(matches!(
            t.map_ram(g(0x4000_0000), h(0x8000_0000), 100),
            Err(MapError::Misaligned { .. })
        ));
        assert!(matches!(
            t.map_ram(g(IPA_SPACE - PAGE), h(0), 2 * PAGE),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            t.map_ram(g(IPA_SPACE), h(0), PAGE),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            t.map_ram(g(u64::MAX - 0xfff), h(0), PAGE),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            t.map_ram(g(0), h(1 << 48), PAGE),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            t.map_ram(g(0), h(u64::MAX - 0xfff), 2 * PAGE),
            Err(MapError::OutOfRange { .. })
        ));
        // The last page of the IPA space is usable.
        t.map_ram(g(IPA_SPACE - PAGE), h(0x8000_0000), PAGE)
            .unwrap();
        assert_eq!(
            t.translate(g(IPA_SPACE - 1)),
            Some((h(0x8000_0fff), MemKind::Normal))
        );
    }

    #[test]
    fn a_switchable_page_is_read_only_and_its_entry_is_where_the_tables_hold_it() {
        let mut t = Stage2Tables::new();
        t.map_ram(
            GuestPhysAddr(0x4000_0000),
            HostPhysAddr(0x8000_0000),
            0x20_0000,
        )
        .unwrap();
        let entry = t
            .map_switchable(GuestPhysAddr(0x0900_0000), HostPhysAddr(0x7000_1000))
            .unwrap();
        let leaf = t.lookup(GuestPhysAddr(0x0900_0004)).unwrap();
        assert_eq!(leaf.pa, HostPhysAddr(0x7000_1004));
        assert_eq!(leaf.level, 3, "a page of its own");
        assert!(leaf.readable && !leaf.writable && !leaf.executable);
        assert_eq!(entry.ipa, GuestPhysAddr(0x0900_0000));
        // SAFETY: `entry.address` is the descriptor inside `t`'s tables, alive here.
        let descriptor = unsafe { core::ptr::read_volatile(entry.address as *const u64) };
        assert_eq!(descriptor, entry.valid);
        assert_eq!(entry.valid & 1, 1);
        assert_eq!(entry.invalid() & 1, 0);
        // It overlaps nothing else: mapping over it is refused.
        assert!(t
            .map_ram(
                GuestPhysAddr(0x0900_0000),
                HostPhysAddr(0x8100_0000),
                0x1000
            )
            .is_err());
    }

    #[test]
    fn two_partitions_with_different_offsets() {
        let mut a = Stage2Tables::new();
        let mut b = Stage2Tables::new();
        a.map_ram(g(0x4000_0000), h(0x8000_0000), 64 * MIB).unwrap();
        b.map_ram(g(0x4000_0000), h(0x8400_0000), 64 * MIB).unwrap();
        b.map_device(g(0x0900_0000), h(0x0904_0000), PAGE).unwrap();
        assert_ne!(a.root_address(), b.root_address());
        assert_eq!(
            a.translate(g(0x4000_1234)),
            Some((h(0x8000_1234), MemKind::Normal))
        );
        assert_eq!(
            b.translate(g(0x4000_1234)),
            Some((h(0x8400_1234), MemKind::Normal))
        );
        assert_eq!(a.translate(g(0x0900_0000)), None);
        assert_eq!(
            b.translate(g(0x0900_0004)),
            Some((h(0x0904_0004), MemKind::Device))
        );
        assert_eq!(a.translate(g(0x4400_0000)), None);
    }

    #[test]
    fn root_is_aligned_and_vttbr() {
        let t = Stage2Tables::new();
        assert!(t.root_address().is_aligned(PAGE));
        assert_eq!(t.vttbr_value(3), t.root_address().raw() | 3 << 48);
    }

    #[test]
    fn vtcr() {
        // PARange 0b0101 (48 bits): RES1 | PS=5 | TG0=4K | SH0=inner | ORGN0/IRGN0=WBWA | SL0=1
        // | T0SZ=25.
        assert_eq!(vtcr_value(5), 0x8005_3559);
        assert_eq!(vtcr_value(2), 0x8002_3559);
        // 52-bit PA is capped at 48, undefined encodings are treated as 48 bits.
        assert_eq!(vtcr_value(6), 0x8005_3559);
        assert_eq!(vtcr_value(7), 0x8005_3559);
        // Smaller PA spaces shrink the IPA space: 36 bits -> T0SZ 28, 32 bits -> T0SZ 32.
        assert_eq!(vtcr_value(1), 0x8001_355c);
        assert_eq!(vtcr_value(0), 0x8000_3560);
        // Bits of ID_AA64MMFR0_EL1 beyond PARange are ignored.
        assert_eq!(vtcr_value(0x15), 0x8005_3559);
    }

    #[test]
    fn shared_memory_has_exactly_its_endpoints_access() {
        let mut t = Stage2Tables::pages_only();
        t.map_ram(g(0x4000_0000), h(0x4800_0000), 16 * MIB).unwrap();
        t.map_shared(g(0x4100_0000), h(0x4a00_0000), 0x1_0000, true)
            .unwrap();
        t.map_shared(g(0x4200_0000), h(0x4b00_0000), 0x1_0000, false)
            .unwrap();
        let rw = t.lookup(g(0x4100_f000)).unwrap();
        assert_eq!(rw.pa, h(0x4a00_f000));
        assert_eq!(rw.kind, MemKind::Normal);
        assert!(rw.readable && rw.writable && !rw.executable);
        let ro = t.lookup(g(0x4200_0010)).unwrap();
        assert_eq!(ro.pa, h(0x4b00_0010));
        assert_eq!(ro.kind, MemKind::Normal);
        assert!(ro.readable && !ro.writable && !ro.executable);
        // Nothing beyond the channel: the page after it stays unmapped.
        assert_eq!(t.lookup(g(0x4101_0000)), None);
        // The same memory again with the other access is a conflicting mapping.
        assert_eq!(
            t.map_shared(g(0x4200_0000), h(0x4b00_0000), 0x1_0000, true),
            Err(MapError::Overlap { at: 0x4200_0000 })
        );
        // Not over RAM either.
        assert!(t
            .map_shared(g(0x40ff_0000), h(0x4c00_0000), 0x2_0000, true)
            .is_err());
    }
}
