//! The per-vCPU queue of virtual interrupts waiting for a list register, and list registers as
//! the runtime sees them: decoded ([`ListReg`]), whatever the interrupt controller's register
//! format (`ich_lr` encodes them for GICv3, `gich_lr` for GICv2).
//!
//! The runtime owns the registers themselves: it reads the vCPU's LRs into a slice (through the
//! arch interface), calls [`PendingQueue::refill`] while the vCPU is not running (in the EL2
//! exception handler, before returning to the guest), writes back what changed, and turns the
//! underflow maintenance interrupt on when `refill` reports that interrupts are still queued, so
//! it learns when LRs free up.
//!
//! Every interrupt is injected without an EOI maintenance request, in the group the guest's GIC
//! version delivers it in (the encodings decide: Group 1 for a GICv3 guest, Group 0 for a GICv2
//! one; `IGROUPR` is not used for delivery).
//!
//! An SGI is identified by its INTID and, on a GICv2, the vCPU that sent it ([`VirtualIrq::source`]):
//! the same SGI from two senders is two interrupts there, each queued and delivered on its own.

use alloc::vec::Vec;

use bulkhead_config::VcpuId;

use super::MAX_SPI_INTID;

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
    /// For an SGI a GICv2 guest sent, the sending vCPU (the guest reads it with the INTID);
    /// `None` otherwise (GICv3 SGIs carry no sender).
    pub source: Option<VcpuId>,
}

impl VirtualIrq {
    /// Whether the interrupt can be put in a list register: a non-special INTID below 1020
    /// (no LPIs), and a physical INTID in 16..1020 if `hw` (SGIs cannot be hardware-linked).
    pub fn is_valid(&self) -> bool {
        self.intid <= MAX_SPI_INTID && self.hw.is_none_or(|p| (16..=MAX_SPI_INTID).contains(&p))
    }

    /// Whether it is the same interrupt as `other`: the same INTID and sender.
    pub fn same_as(&self, other: &VirtualIrq) -> bool {
        self.intid == other.intid && self.source == other.source
    }
}

/// The state of a list register.
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
    /// The two-bit `State` field both GIC versions' list registers hold it as: 0 invalid,
    /// 1 pending, 2 active, 3 pending and active.
    pub const fn bits(self) -> u8 {
        match self {
            LrState::Invalid => 0,
            LrState::Pending => 1,
            LrState::Active => 2,
            LrState::PendingActive => 3,
        }
    }

    /// The state a two-bit `State` field holds (higher bits ignored).
    pub const fn from_bits(bits: u64) -> Self {
        match bits & 0b11 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }
}

/// One list register: an interrupt and its state ([`LrState::Invalid`]: the register is free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListReg {
    pub irq: VirtualIrq,
    pub state: LrState,
}

impl ListReg {
    /// A free list register.
    pub const EMPTY: Self = Self {
        irq: VirtualIrq {
            intid: 0,
            priority: 0,
            hw: None,
            source: None,
        },
        state: LrState::Invalid,
    };

    /// `irq`, pending.
    pub const fn pending(irq: VirtualIrq) -> Self {
        Self {
            irq,
            state: LrState::Pending,
        }
    }

    /// Whether the register is free.
    pub fn is_free(&self) -> bool {
        self.state == LrState::Invalid
    }

    /// Whether it holds `intid` (pending, active or both), from any sender.
    pub fn holds(&self, intid: u32) -> bool {
        !self.is_free() && self.irq.intid == intid
    }

    /// Whether it holds the interrupt `irq` is (pending, active or both).
    pub fn holds_irq(&self, irq: &VirtualIrq) -> bool {
        !self.is_free() && self.irq.same_as(irq)
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
/// priority value) first, FIFO among equal priorities. Each interrupt (INTID, and sender for an
/// SGI) is queued at most once, so the queue never holds more than 1020 + 16 x 7 entries.
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

    /// Whether `intid` is queued (from any sender).
    pub fn contains(&self, intid: u32) -> bool {
        self.entries.iter().any(|e| e.irq.intid == intid)
    }

    /// The queued interrupts, in injection order.
    pub fn iter(&self) -> impl Iterator<Item = &VirtualIrq> + '_ {
        self.entries.iter().map(|e| &e.irq)
    }

    /// Queues `irq`, or merges it with an already queued entry for the same interrupt.
    pub fn push(&mut self, irq: VirtualIrq) -> PushOutcome {
        if !irq.is_valid() {
            return PushOutcome::Invalid;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.insert(Entry { irq, seq })
    }

    /// Removes `intid` from the queue, from every sender (e.g. the guest cleared its pending
    /// state); returns one of the removed entries.
    pub fn remove(&mut self, intid: u32) -> Option<VirtualIrq> {
        let removed = self.entries.iter().find(|e| e.irq.intid == intid)?.irq;
        self.entries.retain(|e| e.irq.intid != intid);
        Some(removed)
    }

    /// Sorted insertion, merging with an entry of the same interrupt.
    fn insert(&mut self, mut entry: Entry) -> PushOutcome {
        let mut outcome = PushOutcome::Queued;
        if let Some(index) = self.entries.iter().position(|e| e.irq.same_as(&entry.irq)) {
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

    /// Moves queued interrupts into the list registers `lrs` (the vCPU's), most urgent first.
    /// Returns whether interrupts are still queued, in which case the runtime should enable the
    /// underflow maintenance interrupt.
    ///
    /// - An interrupt already pending in an LR is not put in a second one: the queued copy is
    ///   merged into it. One that is active in an LR (software interrupt) becomes pending and
    ///   active there; a hardware one stays queued until the guest deactivates it.
    /// - Otherwise it goes into a free LR.
    /// - With no free LR, it replaces the least urgent LR that is only pending, if that one is
    ///   strictly less urgent; the replaced interrupt goes back into the queue.
    /// - Nothing is ever dropped: what does not fit stays queued.
    pub fn refill(&mut self, lrs: &mut [ListReg]) -> bool {
        let mut i = 0;
        while let Some(entry) = self.entries.get(i).copied() {
            let irq = entry.irq;
            if let Some(lr) = lrs.iter_mut().find(|lr| lr.holds_irq(&irq)) {
                match lr.state {
                    LrState::Pending | LrState::PendingActive => {
                        self.entries.remove(i);
                    }
                    LrState::Active if lr.irq.hw.is_none() && irq.hw.is_none() => {
                        lr.state = LrState::PendingActive;
                        self.entries.remove(i);
                    }
                    _ => i += 1,
                }
                continue;
            }
            if let Some(lr) = lrs.iter_mut().find(|lr| lr.is_free()) {
                *lr = ListReg::pending(irq);
                self.entries.remove(i);
                continue;
            }
            let victim = lrs
                .iter_mut()
                .filter(|lr| lr.state == LrState::Pending)
                .max_by_key(|lr| lr.irq.priority);
            if let Some(lr) = victim {
                let evicted = lr.irq;
                if evicted.priority > irq.priority {
                    *lr = ListReg::pending(irq);
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
            source: None,
        }
    }

    fn hw(intid: u32, priority: u8) -> VirtualIrq {
        VirtualIrq {
            intid,
            priority,
            hw: Some(intid),
            source: None,
        }
    }

    fn active(irq: VirtualIrq) -> ListReg {
        ListReg {
            irq,
            state: LrState::Active,
        }
    }

    fn lr_intids(lrs: &[ListReg]) -> Vec<u32> {
        lrs.iter().map(|lr| lr.irq.intid).collect()
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
                hw: Some(3),
                source: None,
            }),
            PushOutcome::Invalid,
            "SGIs are never hardware-linked"
        );
        assert_eq!(
            q.push(VirtualIrq {
                intid: 40,
                priority: 0,
                hw: Some(2000),
                source: None,
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
        let mut lrs = [ListReg::EMPTY; 2];
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
        lrs = [ListReg::EMPTY; 2];
        assert!(q.refill(&mut lrs));
        assert_eq!(lr_intids(&lrs), vec![43, 40]);
        assert_eq!(lrs[0].irq.hw, Some(43));
        lrs = [ListReg::EMPTY; 2];
        assert!(!q.refill(&mut lrs), "all injected");
        assert_eq!(lrs[0], ListReg::pending(sw(42, 0xa0)));
        assert!(lrs[1].is_free());
        assert!(q.is_empty());
        // No list registers at all: everything stays queued.
        q.push(sw(50, 0));
        assert!(q.refill(&mut []));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn not_queued_twice() {
        let mut q = PendingQueue::new();
        let mut lrs = [ListReg::EMPTY; 4];
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        // The same interrupt fires again while still pending in an LR: merged.
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert_eq!(lrs.iter().filter(|lr| !lr.is_free()).count(), 1);

        // The guest acknowledged it (active); a new edge makes it pending + active in place.
        lrs[0].state = LrState::Active;
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert_eq!(lrs[0].state, LrState::PendingActive);
        assert!(lrs[1].is_free());

        // Pending + active already: merged again.
        q.push(sw(33, 0xa0));
        assert!(!q.refill(&mut lrs));
        assert!(lrs[1].is_free());

        // A hardware interrupt active in an LR waits for its deactivation.
        lrs[1] = active(hw(79, 0x80));
        q.push(hw(79, 0x80));
        assert!(q.refill(&mut lrs));
        assert!(lrs[2].is_free());
        assert_eq!(lrs[1].state, LrState::Active);
        // Deactivated by the guest: now it goes in, into the first free LR.
        lrs[1].state = LrState::Invalid;
        assert!(!q.refill(&mut lrs));
        assert_eq!(lrs[1], ListReg::pending(hw(79, 0x80)));
    }

    #[test]
    fn eviction_of_less_urgent_pending() {
        let mut q = PendingQueue::new();
        let mut lrs = [
            ListReg::pending(sw(40, 0xa0)),
            active(sw(41, 0xf0)),
            ListReg::pending(sw(42, 0xc0)),
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
        let mut lrs = [ListReg::pending(sw(60, 0x80))];
        let mut q = PendingQueue::new();
        q.push(sw(61, 0x80));
        assert!(q.refill(&mut lrs));
        assert_eq!(lr_intids(&lrs), vec![60]);
    }

    #[test]
    fn sgis_from_different_senders_are_different_interrupts() {
        let from = |sender: usize| VirtualIrq {
            intid: 1,
            priority: 0xa0,
            hw: None,
            source: Some(bulkhead_config::VcpuId(sender)),
        };
        let mut q = PendingQueue::new();
        assert_eq!(q.push(from(0)), PushOutcome::Queued);
        assert_eq!(q.push(from(2)), PushOutcome::Queued);
        assert_eq!(q.push(from(2)), PushOutcome::Merged);
        assert_eq!(q.len(), 2);
        let mut lrs = [ListReg::EMPTY; 4];
        assert!(!q.refill(&mut lrs));
        assert_eq!(lrs[0], ListReg::pending(from(0)));
        assert_eq!(lrs[1], ListReg::pending(from(2)));
        // Sent again by vCPU 2 while its first one is pending: merged into that LR.
        q.push(from(2));
        assert!(!q.refill(&mut lrs));
        assert!(lrs[2].is_free());
        // Clearing the SGI's pending state clears it from every sender.
        q.push(from(3));
        q.push(from(1));
        assert_eq!(q.remove(1), Some(from(3)));
        assert!(q.is_empty());
    }

    #[test]
    fn eviction_keeps_hw_link() {
        let mut q = PendingQueue::new();
        let mut lrs = [ListReg::pending(hw(79, 0xa0))];
        q.push(sw(1, 0x00));
        assert!(q.refill(&mut lrs));
        assert_eq!(lrs[0].irq.intid, 1);
        assert_eq!(q.iter().next(), Some(&hw(79, 0xa0)));
    }
}
