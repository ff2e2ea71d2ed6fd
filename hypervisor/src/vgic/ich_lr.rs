//! The GICv3 list-register format: a [`ListReg`] as an `ICH_LR<n>_EL2` value and back. The
//! arch code reads and writes the registers; this module only translates.
//!
//! | Bits | Field |
//! |---|---|
//! | 31:0 | `vINTID` |
//! | 44:32 | `pINTID` when `HW` = 1; otherwise bit 41 is `EOI` (maintenance interrupt on EOI) |
//! | 55:48 | `Priority` |
//! | 60 | `Group` (1 = Group 1) |
//! | 61 | `HW`: the guest's deactivation also deactivates physical `pINTID` |
//! | 63:62 | `State`: 0 invalid, 1 pending, 2 active, 3 pending and active |

use super::list_regs::{ListReg, LrState, VirtualIrq};

const STATE_SHIFT: u32 = 62;
const HW: u64 = 1 << 61;
const GROUP1: u64 = 1 << 60;
const PRIORITY_SHIFT: u32 = 48;
const PINTID_SHIFT: u32 = 32;
const PINTID_MASK: u64 = 0x1fff;

/// The `ICH_LR<n>_EL2` value of `lr`: Group 1, no EOI maintenance, and `HW` with `pINTID` for a
/// hardware-linked interrupt. A free register encodes as 0.
pub fn encode(lr: &ListReg) -> u64 {
    if lr.is_free() {
        return 0;
    }
    let irq = &lr.irq;
    let mut value = (u64::from(lr.state.bits()) << STATE_SHIFT)
        | GROUP1
        | (u64::from(irq.priority) << PRIORITY_SHIFT)
        | u64::from(irq.intid);
    if let Some(pintid) = irq.hw {
        value |= HW | ((u64::from(pintid) & PINTID_MASK) << PINTID_SHIFT);
    }
    value
}

/// The list register an `ICH_LR<n>_EL2` value holds.
pub fn decode(value: u64) -> ListReg {
    let state = LrState::from_bits(value >> STATE_SHIFT);
    ListReg {
        irq: VirtualIrq {
            intid: value as u32,
            priority: (value >> PRIORITY_SHIFT) as u8,
            hw: (value & HW != 0).then_some(((value >> PINTID_SHIFT) & PINTID_MASK) as u32),
            source: None,
        },
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode() {
        let hw = ListReg::pending(VirtualIrq {
            intid: 79,
            priority: 0xa0,
            hw: Some(79),
            source: None,
        });
        let value = encode(&hw);
        assert_eq!(
            value,
            (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (79 << 32) | 79
        );
        assert_eq!(decode(value), hw);

        let sw = ListReg::pending(VirtualIrq {
            intid: 1,
            priority: 0x10,
            hw: None,
            source: None,
        });
        assert_eq!(encode(&sw), (1 << 62) | (1 << 60) | (0x10 << 48) | 1);
        assert_eq!(decode(encode(&sw)), sw);

        // Virtual and physical INTIDs may differ.
        let lr = ListReg::pending(VirtualIrq {
            intid: 40,
            priority: 0,
            hw: Some(1019),
            source: None,
        });
        assert_eq!(decode(encode(&lr)), lr);

        assert!(decode(0).is_free());
        assert_eq!(encode(&ListReg::EMPTY), 0);
        assert_eq!(decode(2 << 62).state, LrState::Active);
        assert_eq!(decode(3 << 62).state, LrState::PendingActive);
        let active = ListReg {
            state: LrState::Active,
            ..sw
        };
        assert_eq!(decode(encode(&active)), active);
        // An EOI-maintenance request (bit 41 without HW) is no physical link.
        assert_eq!(decode((1 << 62) | (1 << 41) | 5).irq.hw, None);
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut lrs = [u64::MAX, 0x5555_5555_5555_5555, 0xaaaa_aaaa_aaaa_aaaa, 0].map(decode);
        for lr in &lrs {
            let _ = encode(lr);
        }
        let mut q = super::super::PendingQueue::new();
        for i in 0..64u32 {
            q.push(VirtualIrq {
                intid: 32 + i,
                priority: (i * 7) as u8,
                hw: None,
                source: None,
            });
        }
        q.refill(&mut lrs);
        assert_eq!(q.len(), 63, "one went into the free register, none lost");
    }
}
