//! Decoding of a trapped `ICC_SGI1R_EL1` write (the guest sending an SGI) into target vCPUs.
//!
//! `ICC_SGI1R_EL1` layout (shared by `ICC_ASGI1R_EL1` and `ICC_SGI0R_EL1`):
//!
//! | Bits | Field |
//! |---|---|
//! | 15:0 | `TargetList`: bit `n` targets the PE with Aff0 = `RS` * 16 + `n` |
//! | 23:16 | `Aff1` |
//! | 27:24 | `INTID` (SGI 0..15) |
//! | 39:32 | `Aff2` |
//! | 40 | `IRM`: 1 = every PE except the sender (affinity fields ignored) |
//! | 47:44 | `RS`: range selector |
//! | 55:48 | `Aff3` |
//!
//! The guest's affinity for vCPU `n` is `0.0.0.n`, so a target exists only if Aff1..Aff3 are 0
//! and `RS` * 16 + `n` is below the partition's vCPU count; anything else names a PE outside the
//! partition and is dropped (on real hardware an SGI to a non-existent PE is also discarded).

use core::fmt;

use bulkhead_config::VcpuId;

use super::MAX_VCPUS;

/// A decoded `ICC_SGI1R_EL1` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgi1r {
    /// SGI number, 0..15.
    pub intid: u32,
    /// `TargetList`.
    pub target_list: u16,
    /// `Aff1`.
    pub aff1: u8,
    /// `Aff2`.
    pub aff2: u8,
    /// `Aff3`.
    pub aff3: u8,
    /// `IRM`: broadcast to all other PEs.
    pub irm: bool,
    /// `RS`: range selector (0..15).
    pub rs: u8,
}

impl Sgi1r {
    /// Decodes a register value; reserved bits are ignored.
    pub fn decode(value: u64) -> Self {
        Self {
            intid: ((value >> 24) & 0xf) as u32,
            target_list: (value & 0xffff) as u16,
            aff1: ((value >> 16) & 0xff) as u8,
            aff2: ((value >> 32) & 0xff) as u8,
            aff3: ((value >> 48) & 0xff) as u8,
            irm: (value >> 40) & 1 != 0,
            rs: ((value >> 44) & 0xf) as u8,
        }
    }

    /// Encodes the fields back into a register value (`intid` and `rs` are masked to 4 bits).
    pub fn encode(&self) -> u64 {
        u64::from(self.target_list)
            | (u64::from(self.aff1) << 16)
            | (u64::from(self.intid & 0xf) << 24)
            | (u64::from(self.aff2) << 32)
            | (u64::from(self.irm) << 40)
            | (u64::from(self.rs & 0xf) << 44)
            | (u64::from(self.aff3) << 48)
    }

    /// The vCPUs of a partition with `vcpu_count` vCPUs that this SGI, sent by vCPU `sender`,
    /// targets. With `IRM` = 1 that is every vCPU but the sender. A target list may include the
    /// sender itself (Linux's `smp_send_reschedule` to self, `IPI` to self).
    pub fn targets(&self, sender: VcpuId, vcpu_count: usize) -> VcpuSet {
        let mut set = VcpuSet::new();
        let vcpu_count = vcpu_count.min(MAX_VCPUS);
        if self.irm {
            for vcpu in (0..vcpu_count).map(VcpuId).filter(|&v| v != sender) {
                set.insert(vcpu);
            }
            return set;
        }
        if self.aff1 != 0 || self.aff2 != 0 || self.aff3 != 0 {
            return set;
        }
        let base = usize::from(self.rs) * 16;
        for bit in 0..16usize {
            let vcpu = base + bit;
            if self.target_list & (1 << bit) != 0 && vcpu < vcpu_count {
                set.insert(VcpuId(vcpu));
            }
        }
        set
    }
}

/// Decodes a trapped `ICC_SGI1R_EL1` write by vCPU `sender`: the SGI number and its targets.
pub fn sgi_targets(value: u64, sender: VcpuId, vcpu_count: usize) -> (u32, VcpuSet) {
    let sgi = Sgi1r::decode(value);
    (sgi.intid, sgi.targets(sender, vcpu_count))
}

/// A set of vCPU indices (0..[`MAX_VCPUS`]), as a bitmap.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct VcpuSet {
    bits: [u64; MAX_VCPUS / 64],
}

impl VcpuSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self {
            bits: [0; MAX_VCPUS / 64],
        }
    }

    /// Adds `vcpu`; indices >= [`MAX_VCPUS`] are ignored.
    pub fn insert(&mut self, vcpu: VcpuId) {
        let vcpu = vcpu.index();
        if let Some(word) = self.bits.get_mut(vcpu / 64) {
            *word |= 1 << (vcpu % 64);
        }
    }

    /// Whether `vcpu` is in the set.
    pub fn contains(&self, vcpu: VcpuId) -> bool {
        let vcpu = vcpu.index();
        self.bits
            .get(vcpu / 64)
            .is_some_and(|word| word & (1 << (vcpu % 64)) != 0)
    }

    /// Number of vCPUs in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The vCPUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = VcpuId> + '_ {
        (0..MAX_VCPUS).map(VcpuId).filter(|&v| self.contains(v))
    }
}

impl fmt::Debug for VcpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(VcpuId::index))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn targets(value: u64, sender: usize, count: usize) -> (u32, Vec<usize>) {
        let (intid, set) = sgi_targets(value, VcpuId(sender), count);
        (intid, set.iter().map(VcpuId::index).collect())
    }

    #[test]
    fn decode_fields() {
        let v =
            0x00ab_5000_0000_0000 | (1 << 40) | (0xcd << 32) | (0x7 << 24) | (0xef << 16) | 0x1234;
        let s = Sgi1r::decode(v);
        assert_eq!(
            s,
            Sgi1r {
                intid: 7,
                target_list: 0x1234,
                aff1: 0xef,
                aff2: 0xcd,
                aff3: 0xab,
                irm: true,
                rs: 5,
            }
        );
        assert_eq!(s.encode(), v);
        // Reserved bits (31:28, 43:41, 63:56) are ignored.
        let noisy = v | (0xf << 28) | (0x7 << 41) | (0xff << 56);
        assert_eq!(Sgi1r::decode(noisy), s);
    }

    #[test]
    fn target_list() {
        // SGI 1 to vCPUs 0 and 2 of 4.
        assert_eq!(targets((1 << 24) | 0b101, 1, 4), (1, vec![0, 2]));
        // Self-targeting is allowed.
        assert_eq!(targets(0b10, 1, 4), (0, vec![1]));
        // Bits beyond the partition are dropped.
        assert_eq!(targets(0xffff, 0, 3), (0, vec![0, 1, 2]));
        assert_eq!(targets(1 << 5, 0, 3), (0, vec![]));
        // Empty target list.
        assert!(sgi_targets(15 << 24, VcpuId(0), 4).1.is_empty());
    }

    #[test]
    fn out_of_partition_affinity() {
        // Aff1/Aff2/Aff3 != 0 name PEs outside the partition.
        assert!(sgi_targets((1 << 16) | 1, VcpuId(0), 4).1.is_empty());
        assert!(sgi_targets((1 << 32) | 1, VcpuId(0), 4).1.is_empty());
        assert!(sgi_targets((1 << 48) | 1, VcpuId(0), 4).1.is_empty());
    }

    #[test]
    fn range_selector() {
        // RS = 1, bit 2 -> Aff0 = 18.
        let v = (1 << 44) | (1 << 2);
        assert_eq!(targets(v, 0, 32).1, vec![18]);
        assert!(sgi_targets(v, VcpuId(0), 18).1.is_empty());
        // RS = 15, bit 15 -> Aff0 = 255.
        let v = (0xf << 44) | (1 << 15);
        assert_eq!(targets(v, 0, 256).1, vec![255]);
    }

    #[test]
    fn irm_broadcast() {
        let v = (1 << 40) | (3 << 24) | 0x1 | (0x55 << 16);
        assert_eq!(targets(v, 2, 4), (3, vec![0, 1, 3]));
        assert!(
            sgi_targets(v, VcpuId(0), 1).1.is_empty(),
            "alone in the partition"
        );
        assert_eq!(sgi_targets(v, VcpuId(0), 256).1.len(), 255);
        // Out-of-range counts are clamped, not a panic.
        assert_eq!(sgi_targets(v, VcpuId(0), usize::MAX).1.len(), 255);
        assert_eq!(sgi_targets(v, VcpuId(usize::MAX), 2).1.len(), 2);
    }

    #[test]
    fn vcpu_set() {
        let mut s = VcpuSet::new();
        assert!(s.is_empty());
        s.insert(VcpuId(0));
        s.insert(VcpuId(63));
        s.insert(VcpuId(64));
        s.insert(VcpuId(255));
        s.insert(VcpuId(256));
        s.insert(VcpuId(usize::MAX));
        assert_eq!(s.len(), 4);
        assert!(
            s.contains(VcpuId(64)) && !s.contains(VcpuId(1)) && !s.contains(VcpuId(usize::MAX))
        );
        assert_eq!(
            s.iter().map(VcpuId::index).collect::<Vec<_>>(),
            vec![0, 63, 64, 255]
        );
        assert_eq!(alloc::format!("{s:?}"), "{0, 63, 64, 255}");
    }
}
