//! Address and index types that carry their meaning, so the compiler catches a mix-up.
//!
//! A partition's memory has two addresses: where the partition sees it (guest-physical, an IPA,
//! what its stage-2 tables translate) and where it really is (host-physical). Both are `u64`
//! underneath; [`GuestPhysAddr`] and [`HostPhysAddr`] keep them apart, and [`Range`] is a range in
//! one of the two spaces ([`GuestRange`], [`HostRange`]). Sizes stay plain `u64` byte counts.
//!
//! Likewise a partition, one of its vCPUs, a physical CPU and a channel are each numbered from 0:
//! [`PartitionId`], [`VcpuId`], [`PcpuId`] and [`ChannelId`] keep those numbers apart.
//!
//! Nothing here allocates or panics: arithmetic that could overflow is checked or saturating.

use core::fmt;

/// An address in one physical address space.
pub trait Address: Copy + Ord + fmt::Debug {
    /// Name of the space, for messages: `guest-physical` or `host-physical`.
    const SPACE: &'static str;
    /// The address as a number.
    fn raw(self) -> u64;
    /// The address `raw` of this space.
    fn from_raw(raw: u64) -> Self;
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $space:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The address `raw`.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The address as a number.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// `self + offset`, or `None` if that leaves the 64-bit space.
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }

            /// How far `self` lies above `base`, or `None` if it lies below.
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// The address rounded down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
        }

        impl Address for $name {
            const SPACE: &'static str = $space;
            fn raw(self) -> u64 {
                self.0
            }
            fn from_raw(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        /// Formats as `0x…`, the way addresses are written in board configs.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest-physical address (an IPA): what a partition's stage-2 tables translate.
    GuestPhysAddr,
    "guest-physical"
);
address_type!(
    /// A host-physical address: where memory and devices really are.
    HostPhysAddr,
    "host-physical"
);

impl HostPhysAddr {
    /// The guest-physical address that is this same address in a 1:1 (identity) mapping, as
    /// passthrough devices are mapped.
    pub const fn identity(self) -> GuestPhysAddr {
        GuestPhysAddr(self.0)
    }
}

/// `size` bytes from `base`, in the address space of `A`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Range<A> {
    pub base: A,
    pub size: u64,
}

/// A range of guest-physical addresses.
pub type GuestRange = Range<GuestPhysAddr>;
/// A range of host-physical addresses.
pub type HostRange = Range<HostPhysAddr>;

impl<A: Address> Range<A> {
    /// `size` bytes from `base`.
    pub fn new(base: A, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last address (saturating, so a range at the top of the space is safe).
    pub fn end(&self) -> A {
        A::from_raw(self.base.raw().saturating_add(self.size))
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// Whether all of `other` lies inside this range.
    pub fn contains_range(&self, other: &Self) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }

    /// Whether `addr` lies inside this range.
    pub fn contains(&self, addr: A) -> bool {
        addr >= self.base && addr < self.end()
    }

    /// How far `addr` lies into this range, if it lies inside.
    pub fn offset_of(&self, addr: A) -> Option<u64> {
        let offset = addr.raw().checked_sub(self.base.raw())?;
        (offset < self.size).then_some(offset)
    }

    /// The parts of this range outside every range of `holes` (sorted in place), in order.
    #[cfg(feature = "board")]
    pub fn without(&self, holes: &mut [Self]) -> alloc::vec::Vec<Self> {
        crate::small_sort::sort_by_key(holes, |h| h.base);
        let mut pieces = alloc::vec::Vec::new();
        let mut at = self.base;
        for hole in holes.iter().filter(|h| h.overlaps(self)) {
            if hole.base > at {
                pieces.push(Self::new(at, hole.base.raw() - at.raw()));
            }
            at = at.max(hole.end());
        }
        if at < self.end() {
            pieces.push(Self::new(at, self.end().raw() - at.raw()));
        }
        pieces
    }

    /// The range in consecutive pieces of at most `most` bytes (not zero), in order.
    pub fn pieces(&self, most: u64) -> impl Iterator<Item = Self> {
        let (base, end) = (self.base.raw(), self.end().raw());
        (base..end)
            .step_by(most as usize)
            .map(move |at| Self::new(A::from_raw(at), most.min(end - at)))
    }

    /// The range grown to whole pages of `page` bytes (a power of two): what a mapping by pages
    /// exposes. Saturates at the top of the space.
    pub fn pages(&self, page: u64) -> Self {
        let base = self.base.raw() & !(page - 1);
        let end = self
            .end()
            .raw()
            .checked_add(page - 1)
            .map_or(!(page - 1), |e| e & !(page - 1));
        Self::new(A::from_raw(base), end.saturating_sub(base))
    }
}

impl HostRange {
    /// The same addresses as a guest-physical range, for a 1:1 (identity) mapping.
    pub fn identity(&self) -> GuestRange {
        GuestRange::new(self.base.identity(), self.size)
    }
}

/// Formats as `0xBASE..0xEND`.
impl<A: Address> fmt::Display for Range<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base.raw(), self.end().raw())
    }
}

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(pub usize);

        impl $name {
            /// The index as a number, for indexing the table it belongs to.
            pub const fn index(self) -> usize {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

index_type!(
    /// A partition, numbered in board-config order from 0.
    PartitionId
);
index_type!(
    /// One of a partition's vCPUs, numbered from 0 (vCPU n runs on the partition's n-th CPU).
    VcpuId
);
index_type!(
    /// A physical CPU: its position in the platform's `/cpus` (not its MPIDR).
    PcpuId
);
index_type!(
    /// A channel between two partitions, numbered in board-config order from 0 (the channel id
    /// of the hypercalls and of the doorbell page's `CHANNEL` register).
    ChannelId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn ranges() {
        let r = HostRange::new(HostPhysAddr(0x1000), 0x2000);
        assert_eq!(r.end(), HostPhysAddr(0x3000));
        assert!(r.contains(HostPhysAddr(0x2fff)) && !r.contains(HostPhysAddr(0x3000)));
        assert!(r.overlaps(&HostRange::new(HostPhysAddr(0x2fff), 1)));
        assert!(!r.overlaps(&HostRange::new(HostPhysAddr(0x3000), 1)));
        assert_eq!(r.offset_of(HostPhysAddr(0x1800)), Some(0x800));
        assert_eq!(r.offset_of(HostPhysAddr(0x800)), None);
        assert_eq!(r.to_string(), "0x1000..0x3000");
        let top = GuestRange::new(GuestPhysAddr(u64::MAX - 1), 10);
        assert_eq!(top.end(), GuestPhysAddr(u64::MAX));
        assert_eq!(
            GuestRange::new(GuestPhysAddr(0xa003e00), 0x200).pages(0x1000),
            GuestRange::new(GuestPhysAddr(0xa003000), 0x1000)
        );
        assert_eq!(r.identity(), GuestRange::new(GuestPhysAddr(0x1000), 0x2000));
        let pieces: Vec<_> = HostRange::new(HostPhysAddr(0x1000), 0x2800)
            .pieces(0x1000)
            .collect();
        assert_eq!(
            pieces,
            [
                HostRange::new(HostPhysAddr(0x1000), 0x1000),
                HostRange::new(HostPhysAddr(0x2000), 0x1000),
                HostRange::new(HostPhysAddr(0x3000), 0x800),
            ]
        );
        assert_eq!(
            HostRange::new(HostPhysAddr(0x1000), 0)
                .pieces(0x1000)
                .count(),
            0
        );
    }

    #[test]
    fn addresses() {
        let a = GuestPhysAddr::new(0x4000_1234);
        assert_eq!(a.align_down(0x1000), GuestPhysAddr(0x4000_1000));
        assert_eq!(a.offset_from(GuestPhysAddr(0x4000_0000)), Some(0x1234));
        assert_eq!(GuestPhysAddr(1).offset_from(GuestPhysAddr(2)), None);
        assert_eq!(GuestPhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(format!("{a}"), "0x40001234");
        assert_eq!(format!("{a:?}"), "GuestPhysAddr(0x40001234)");
        assert!(!a.is_aligned(0x1000) && a.align_down(0x1000).is_aligned(0x1000));
    }
}
