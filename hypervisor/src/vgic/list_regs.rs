//! List-register encoding and the per-vCPU queue of virtual interrupts waiting to be injected.
//!
//! `ICH_LR<n>_EL2` layout:
//!
//! | Bits | Field |
//! |---|---|
//! | 31:0 | `vINTID` |
//! | 44:32 | `pINTID` when `HW` = 1; otherwise bit 41 is `EOI` (maintenance interrupt on EOI) |
//! | 55:48 | `Priority` |
//! | 60 | `Group` (1 = Group 1) |
//! | 61 | `HW`: the guest's deactivation also deactivates physical `pINTID` |
//! | 63:62 | `State`: 0 invalid, 1 pending, 2 active, 3 pending and active |
//!
//! The glue owns the registers themselves: it reads the vCPU's LRs into a slice, calls
//! [`PendingQueue::refill`] while the vCPU is not running (in the EL2 exception handler, before
//! returning to the guest), writes the slice back, and sets `ICH_HCR_EL2.UIE` when `refill`
//! reports that interrupts are still queued, so the underflow maintenance interrupt tells it when
//! LRs free up.
//!
//! Every interrupt is injected as Group 1 (a Non-secure guest only uses Group 1; `IGROUPR` is
//! stored but not used for delivery) and without an EOI maintenance request.

use alloc::vec::Vec;

use super::MAX_SPI_INTID;

/// `ICH_LR<n>_EL2.State` shift.
pub const LR_STATE_SHIFT: u32 = 62;
/// `ICH_LR<n>_EL2.State` = pending.
pub const LR_STATE_PENDING: u64 = 1 << LR_STATE_SHIFT;
/// `ICH_LR<n>_EL2.State` = active.
pub const LR_STATE_ACTIVE: u64 = 2 << LR_STATE_SHIFT;
/// `ICH_LR<n>_EL2.HW`.
pub const LR_HW: u64 = 1 << 61;
/// `ICH_LR<n>_EL2.Group`.
pub const LR_GROUP1: u64 = 1 << 60;
/// `ICH_LR<n>_EL2.Priority` shift.
pub const LR_PRIORITY_SHIFT: u32 = 48;
/// `ICH_LR<n>_EL2.pINTID` shift.
pub const LR_PINTID_SHIFT: u32 = 32;
/// `ICH_LR<n>_EL2.pINTID` width mask (13 bits).
pub const LR_PINTID_MASK: u64 = 0x1fff;
/// `ICH_LR<n>_EL2.EOI` (only when `HW` = 0).
pub const LR_EOI: u64 = 1 << 41;

/// A virtual interrupt to inject into one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualIrq {
    /// The INTID the guest sees.
    pub intid: u32,
    /// The guest-programmed priority (lower is more urgent).
    pub priority: u8,
    /// For a passthrough interrupt, the physical INTID the hypervisor acknowledged and left
    /// active; the guest's deactivation of `intid` then deactivates it (`HW` = 1).
    pub hw: Option<u32>,
}

impl VirtualIrq {
    /// Whether the interrupt can be put in a list register: a non-special INTID below 1020
    /// (no LPIs), and a physical INTID in 16..1020 if `hw` (SGIs cannot be hardware-linked).
    pub fn is_valid(&self) -> bool {
        self.intid <= MAX_SPI_INTID && self.hw.is_none_or(|p| (16..=MAX_SPI_INTID).contains(&p))
    }
}

/// `ICH_LR<n>_EL2.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    /// Empty: free for a new interrupt.
    Invalid,
    /// Pending.
    Pending,
    /// Active (acknowledged by the guest, not yet deactivated).
    Active,
    /// Pending and active.
    PendingActive,
}

impl LrState {
    fn of(lr: u64) -> Self {
        match lr >> LR_STATE_SHIFT {
            0 => Self::Invalid,
            1 => Self::Pending,
            2 => Self::Active,
            _ => Self::PendingActive,
        }
    }
}

/// The fields of a list-register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedLr {
    /// `vINTID`.
    pub vintid: u32,
    /// `pINTID` if `HW` = 1.
    pub pintid: Option<u32>,
    /// `Priority`.
    pub priority: u8,
    /// `Group`.
    pub group1: bool,
    /// `EOI` (only meaningful when `HW` = 0).
    pub eoi_maintenance: bool,
    /// `State`.
    pub state: LrState,
}

impl DecodedLr {
    /// The interrupt held by the list register.
    pub fn irq(&self) -> VirtualIrq {
        VirtualIrq {
            intid: self.vintid,
            priority: self.priority,
            hw: self.pintid,
        }
    }
}

/// Encodes `irq` as a pending, Group 1 list-register value, with `HW` and `pINTID` for a
/// passthrough interrupt.
pub fn encode_lr(irq: &VirtualIrq) -> u64 {
    let mut lr = LR_STATE_PENDING
        | LR_GROUP1
        | (u64::from(irq.priority) << LR_PRIORITY_SHIFT)
        | u64::from(irq.intid);
    if let Some(pintid) = irq.hw {
        lr |= LR_HW | ((u64::from(pintid) & LR_PINTID_MASK) << LR_PINTID_SHIFT);
    }
    lr
}

/// Decodes a list-register value.
pub fn decode_lr(lr: u64) -> DecodedLr {
    let hw = lr & LR_HW != 0;
    DecodedLr {
        vintid: lr as u32,
        pintid: hw.then_some(((lr >> LR_PINTID_SHIFT) & LR_PINTID_MASK) as u32),
        priority: (lr >> LR_PRIORITY_SHIFT) as u8,
        group1: lr & LR_GROUP1 != 0,
        eoi_maintenance: !hw && lr & LR_EOI != 0,
        state: LrState::of(lr),
    }
}

/// What [`PendingQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Newly queued.
    Queued,
    /// Already queued: merged into the existing entry (keeping the more urgent priority).
    Merged,
    /// Not injectable (see [`VirtualIrq::is_valid`]); dropped.
    Invalid,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    irq: VirtualIrq,
    /// Arrival order, to keep FIFO order among equal priorities.
    seq: u64,
}

/// The virtual interrupts of one vCPU waiting for a free list register, most urgent (lowest
/// priority value) first, FIFO among equal priorities. Each INTID is queued at most once, so the
/// queue never holds more than 1020 entries.
#[derive(Clone, Debug, Default)]
pub struct PendingQueue {
    entries: Vec<Entry>,
    next_seq: u64,
}

impl PendingQueue {
    /// An empty queue (allocates on first push).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
            next_seq: 0,
        }
    }

    /// An empty queue with room for `capacity` interrupts, so that pushing on the interrupt path
    /// does not allocate.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity.min(MAX_SPI_INTID as usize + 1)),
            next_seq: 0,
        }
    }

    /// Number of queued interrupts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `intid` is queued.
    pub fn contains(&self, intid: u32) -> bool {
        self.entries.iter().any(|e| e.irq.intid == intid)
    }

    /// The queued interrupts, in injection order.
    pub fn iter(&self) -> impl Iterator<Item = &VirtualIrq> + '_ {
        self.entries.iter().map(|e| &e.irq)
    }

    /// Queues `irq`, or merges it with an already queued entry for the same INTID.
    pub fn push(&mut self, irq: VirtualIrq) -> PushOutcome {
        if !irq.is_valid() {
            return PushOutcome::Invalid;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.insert(Entry { irq, seq })
    }

    /// Removes `intid` from the queue (e.g. the guest cleared its pending state).
    pub fn remove(&mut self, intid: u32) -> Option<VirtualIrq> {
        let index = self.entries.iter().position(|e| e.irq.intid == intid)?;
        Some(self.entries.remove(index).irq)
    }

    /// Sorted insertion, merging with an entry of the same INTID.
    fn insert(&mut self, mut entry: Entry) -> PushOutcome {
        let mut outcome = PushOutcome::Queued;
        if let Some(index) = self
            .entries
            .iter()
            .position(|e| e.irq.intid == entry.irq.intid)
        {
            let old = self.entries.remove(index);
            entry.irq.priority = entry.irq.priority.min(old.irq.priority);
            entry.irq.hw = old.irq.hw.or(entry.irq.hw);
            entry.seq = old.seq;
            outcome = PushOutcome::Merged;
        }
        let key = (entry.irq.priority, entry.seq);
        let at = self
            .entries
            .partition_point(|e| (e.irq.priority, e.seq) <= key);
        self.entries.insert(at, entry);
        outcome
    }

    /// Moves queued interrupts into the list registers `lrs` (the vCPU's `ICH_LR<n>_EL2` values),
    /// most urgent first. Returns whether interrupts are still queued, in which case the glue
    /// should enable the underflow maintenance interrupt (`ICH_HCR_EL2.UIE`).
    ///
    /// - An interrupt already pending in an LR is not put in a second one: the queued copy is
    ///   merged into it. One that is active in an LR (software interrupt) becomes pending and
    ///   active there; a hardware one stays queued until the guest deactivates it.
    /// - Otherwise it goes into an empty LR (`State` = 0).
    /// - With no empty LR, it replaces the least urgent LR that is only pending, if that one is
    ///   strictly less urgent; the replaced interrupt goes back into the queue.
    /// - Nothing is ever dropped: what does not fit stays queued.
    pub fn refill(&mut self, lrs: &mut [u64]) -> bool {
        let mut i = 0;
        while let Some(entry) = self.entries.get(i).copied() {
            let irq = entry.irq;
            let in_lr = lrs.iter_mut().find(|lr| {
                LrState::of(**lr) != LrState::Invalid && decode_lr(**lr).vintid == irq.intid
            });
            if let Some(lr) = in_lr {
                match LrState::of(*lr) {
                    LrState::Pending | LrState::PendingActive => {
                        self.entries.remove(i);
                    }
                    LrState::Active if *lr & LR_HW == 0 && irq.hw.is_none() => {
                        *lr |= LR_STATE_PENDING;
                        self.entries.remove(i);
                    }
                    _ => i += 1,
                }
                continue;
            }
            if let Some(lr) = lrs
                .iter_mut()
                .find(|lr| LrState::of(**lr) == LrState::Invalid)
            {
                *lr = encode_lr(&irq);
                self.entries.remove(i);
                continue;
            }
            let victim = lrs
                .iter_mut()
                .filter(|lr| LrState::of(**lr) == LrState::Pending)
                .max_by_key(|lr| decode_lr(**lr).priority);
            if let Some(lr) = victim {
                let evicted = decode_lr(*lr).irq();
                if evicted.priority > irq.priority {
                    *lr = encode_lr(&irq);
                    self.entries.remove(i);
                    let seq = self.next_seq;
                    self.next_seq = self.next_seq.wrapping_add(1);
                    // Its priority is above irq's, so it lands at or after position i.
                    self.insert(Entry { irq: evicted, seq });
                    continue;
                }
            }
            i += 1;
        }
        !self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sw(intid: u32, priority: u8) -> VirtualIrq {
        VirtualIrq {
            intid,
            priority,
            hw: None,
        }
    }

    fn hw(intid: u32, priority: u8) -> VirtualIrq {
        VirtualIrq {
            intid,
            priority,
            hw: Some(intid),
        }
    }

    fn lr_intids(lrs: &[u64]) -> Vec<u32> {
        lrs.iter().map(|&lr| decode_lr(lr).vintid).collect()
    }

    #[test]
    fn encode_decode() {
        let lr = encode_lr(&hw(79, 0xa0));
        assert_eq!(
            lr,
            (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (79 << 32) | 79
        );
        let d = decode_lr(lr);
        assert_eq!(
            d,
            DecodedLr {
                vintid: 79,
                pintid: Some(79),
                priority: 0xa0,
                group1: true,
                eoi_maintenance: false,
                state: LrState::Pending,
            }
        );
        assert_eq!(d.irq(), hw(79, 0xa0));

        let lr = encode_lr(&sw(1, 0x10));
        assert_eq!(lr, (1 << 62) | (1 << 60) | (0x10 << 48) | 1);
        assert_eq!(decode_lr(lr).pintid, None);
        assert_eq!(decode_lr(lr).irq(), sw(1, 0x10));

        // Virtual and physical INTIDs may differ.
        let lr = encode_lr(&VirtualIrq {
            intid: 40,
            priority: 0,
            hw: Some(1019),
        });
        assert_eq!(decode_lr(lr).pintid, Some(1019));
        assert_eq!(decode_lr(lr).vintid, 40);

        assert_eq!(decode_lr(0).state, LrState::Invalid);
        assert_eq!(decode_lr(2 << 62).state, LrState::Active);
        assert_eq!(decode_lr(3 << 62).state, LrState::PendingActive);
        assert!(decode_lr(LR_EOI | 5).eoi_maintenance);
        assert!(!decode_lr(LR_EOI | LR_HW).eoi_maintenance);
        assert!(!decode_lr(0).group1);
    }

    #[test]
    fn push_validation_and_merge() {
        let mut q = PendingQueue::with_capacity(8);
        assert_eq!(q.push(sw(1020, 0)), PushOutcome::Invalid);
        assert_eq!(q.push(sw(u32::MAX, 0)), PushOutcome::Invalid);
        assert_eq!(
            q.push(VirtualIrq {
                intid: 3,
                priority: 0,
                hw: Some(3)
            }),
            PushOutcome::Invalid,
            "SGIs are never hardware-linked"
        );
        assert_eq!(
            q.push(VirtualIrq {
                intid: 40,
                priority: 0,
                hw: Some(2000)
            }),
            PushOutcome::Invalid
        );
        assert!(q.is_empty());
        assert_eq!(q.push(sw(33, 0xa0)), PushOutcome::Queued);
        assert_eq!(q.push(sw(33, 0x80)), PushOutcome::Merged);
        assert_eq!(q.push(sw(33, 0xf0)), PushOutcome::Merged);
        assert_eq!(q.len(), 1);
        assert_eq!(q.iter().next().unwrap().priority, 0x80);
        assert!(q.contains(33));
        assert_eq!(q.remove(33), Some(sw(33, 0x80)));
        assert_eq!(q.remove(33), None);
    }

    #[test]
    fn refill_priority_order_and_overflow() {
        let mut q = PendingQueue::new();
        q.push(sw(40, 0xa0));
        q.push(sw(41, 0x20));
        q.push(sw(42, 0xa0));
        q.push(hw(43, 0x80));
        q.push(sw(44, 0x20));
        let mut lrs = [0u64; 2];
        assert!(q.refill(&mut lrs), "overflow remains");
        assert_eq!(
            lr_intids(&lrs),
            vec![41, 44],
            "most urgent, FIFO among equals"
        );
        assert_eq!(
            q.iter().map(|i| i.intid).collect::<Vec<_>>(),
            vec![43, 40, 42]
        );
        // Nothing is lost: the guest handles both, the LRs empty.
        lrs = [0; 2];
        assert!(q.refill(&mut lrs));
        assert_eq!(lr_intids(&lrs), vec![43, 40]);
        assert_eq!(decode_lr(lrs[0]).pintid, Some(43));
        lrs = [0; 2];
        assert!(!q.refill(&mut lrs), "all injected");
        assert_eq!(decode_lr(lrs[0]).vintid, 42);
        assert_eq!(decode_lr(lrs[1]).state, LrState::Invalid);
        assert!(q.is_empty());
        // No list registers at all: everything stays queued.
        q.push(sw(50, 0));
        assert!(q.refill(&mut []));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn not_queued_twice() {
        let mut q = PendingQueue::new();
        let mut lrs = [0u64; 4];
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        // The same interrupt fires again while still pending in an LR: merged.
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert_eq!(
            lrs.iter()
                .filter(|&&lr| decode_lr(lr).state != LrState::Invalid)
                .count(),
            1
        );

        // The guest acknowledged it (active); a new edge makes it pending + active in place.
        lrs[0] = (lrs[0] & !(3 << 62)) | LR_STATE_ACTIVE;
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert_eq!(decode_lr(lrs[0]).state, LrState::PendingActive);
        assert_eq!(decode_lr(lrs[1]).state, LrState::Invalid);

        // Pending + active already: merged again.
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert_eq!(decode_lr(lrs[1]).state, LrState::Invalid);

        // A hardware interrupt active in an LR waits for its deactivation.
        lrs[1] = (encode_lr(&hw(79, 0x80)) & !(3 << 62)) | LR_STATE_ACTIVE;
        q.push(hw(79, 0x80));
        assert!(q.refill(&mut lrs));
        assert_eq!(decode_lr(lrs[2]).state, LrState::Invalid);
        assert_eq!(decode_lr(lrs[1]).state, LrState::Active);
        // Deactivated by the guest (state 0): now it goes in, into the first free LR.
        lrs[1] &= !(3 << 62);
        assert!(!q.refill(&mut lrs));
        assert_eq!(decode_lr(lrs[1]), decode_lr(encode_lr(&hw(79, 0x80))));
    }

    #[test]
    fn eviction_of_less_urgent_pending() {
        let mut q = PendingQueue::new();
        let mut lrs = [
            encode_lr(&sw(40, 0xa0)),
            (encode_lr(&sw(41, 0xf0)) & !(3 << 62)) | LR_STATE_ACTIVE,
            encode_lr(&sw(42, 0xc0)),
        ];
        q.push(sw(50, 0x10));
        q.push(sw(51, 0xc0));
        assert!(q.refill(&mut lrs));
        // 50 replaced the least urgent pending LR (42 at 0xc0); the active 41 is kept; 51 at
        // 0xc0 does not beat 40 at 0xa0.
        assert_eq!(lr_intids(&lrs), vec![40, 41, 50]);
        assert_eq!(
            q.iter().map(|i| (i.intid, i.priority)).collect::<Vec<_>>(),
            vec![(51, 0xc0), (42, 0xc0)]
        );
        // Equal priority never evicts.
        let mut lrs = [encode_lr(&sw(60, 0x80))];
        let mut q = PendingQueue::new();
        q.push(sw(61, 0x80));
        assert!(q.refill(&mut lrs));
        assert_eq!(lr_intids(&lrs), vec![60]);
    }

    #[test]
    fn eviction_keeps_hw_link() {
        let mut q = PendingQueue::new();
        let mut lrs = [encode_lr(&hw(79, 0xa0))];
        q.push(sw(1, 0x00));
        assert!(q.refill(&mut lrs));
        assert_eq!(decode_lr(lrs[0]).vintid, 1);
        assert_eq!(q.iter().next(), Some(&hw(79, 0xa0)));
    }

    #[test]
    fn garbage_lrs_do_not_panic() {
        let mut q = PendingQueue::new();
        for i in 0..64u32 {
            q.push(sw(32 + i, (i * 7) as u8));
        }
        let mut lrs = [u64::MAX, 0x5555_5555_5555_5555, 0xaaaa_aaaa_aaaa_aaaa, 0];
        q.refill(&mut lrs);
        assert_eq!(q.len(), 63);
    }
}
