//! The GICv2 list-register format: a [`ListReg`] as a `GICH_LR<n>` value and back. The arch code
//! reads and writes the registers (memory-mapped, in the GICH frame); this module only
//! translates.
//!
//! | Bits | Field |
//! |---|---|
//! | 9:0 | `VirtualID` |
//! | 19:10 | `PhysicalID` when `HW` = 1; otherwise bit 19 is `EOI` (maintenance interrupt on EOI) and bits 12:10 `CPUID`, the sender of an SGI |
//! | 27:23 | `Priority`: the top 5 bits of the 8-bit priority |
//! | 29:28 | `State`: 0 invalid, 1 pending, 2 active, 3 pending and active |
//! | 30 | `Grp1` |
//! | 31 | `HW`: the guest's deactivation also deactivates physical `PhysicalID` |
//!
//! Interrupts go in as Group 0: a GICv2 guest sees a GIC without Security Extensions, whose
//! interrupts reset to Group 0 and which it enables with `GICC_CTLR.EnableGrp0` (bit 0, what
//! Linux sets); Group 0 is signalled as a virtual IRQ unless the guest sets `FIQEn`. A priority
//! comes back with its low 3 bits clear (GICv2 list registers hold 5 bits); a sender only for an
//! SGI without `HW`.

use bulkhead_config::VcpuId;

use super::list_regs::{ListReg, LrState, VirtualIrq};

const HW: u32 = 1 << 31;
const STATE_SHIFT: u32 = 28;
const PRIORITY_SHIFT: u32 = 23;
const PRIORITY_MASK: u32 = 0x1f;
/// The 8-bit priority's bits the register keeps.
const PRIORITY_BITS_KEPT: u8 = 0xf8;
const PHYSICAL_SHIFT: u32 = 10;
const PHYSICAL_MASK: u32 = 0x3ff;
const CPUID_SHIFT: u32 = 10;
const CPUID_MASK: u32 = 0x7;
const VIRTUAL_MASK: u32 = 0x3ff;
/// INTIDs below this are SGIs.
const SGIS: u32 = 16;

/// The `GICH_LR<n>` value of `lr`: Group 0, no EOI maintenance, `HW` with `PhysicalID` for a
/// hardware-linked interrupt, `CPUID` = the sender for an SGI. A free register encodes as 0.
pub fn encode(lr: &ListReg) -> u32 {
    if lr.is_free() {
        return 0;
    }
    let irq = &lr.irq;
    let mut value = (u32::from(lr.state.bits()) << STATE_SHIFT)
        | ((u32::from(irq.priority) >> 3) << PRIORITY_SHIFT)
        | (irq.intid & VIRTUAL_MASK);
    if let Some(pintid) = irq.hw {
        value |= HW | ((pintid & PHYSICAL_MASK) << PHYSICAL_SHIFT);
    } else if let Some(sender) = irq.source.filter(|_| irq.intid < SGIS) {
        value |= ((sender.index() as u32) & CPUID_MASK) << CPUID_SHIFT;
    }
    value
}

/// The list register a `GICH_LR<n>` value holds.
pub fn decode(value: u32) -> ListReg {
    let state = LrState::from_bits(u64::from(value >> STATE_SHIFT));
    let intid = value & VIRTUAL_MASK;
    let hw = value & HW != 0;
    ListReg {
        irq: VirtualIrq {
            intid,
            priority: (((value >> PRIORITY_SHIFT) & PRIORITY_MASK) << 3) as u8,
            hw: hw.then_some((value >> PHYSICAL_SHIFT) & PHYSICAL_MASK),
            source: (!hw && intid < SGIS)
                .then_some(VcpuId(((value >> CPUID_SHIFT) & CPUID_MASK) as usize)),
        },
        state,
    }
}

/// `priority` as a GICv2 list register keeps it.
pub const fn kept_priority(priority: u8) -> u8 {
    priority & PRIORITY_BITS_KEPT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn irq(intid: u32, priority: u8, hw: Option<u32>, source: Option<usize>) -> VirtualIrq {
        VirtualIrq {
            intid,
            priority,
            hw,
            source: source.map(VcpuId),
        }
    }

    #[test]
    fn a_passthrough_interrupt_is_hardware_linked() {
        let lr = ListReg::pending(irq(158, 0xa0, Some(158), None));
        let value = encode(&lr);
        assert_eq!(
            value,
            (1 << 31) | (1 << 28) | (0x14 << 23) | (158 << 10) | 158
        );
        assert_eq!(decode(value), lr);
        // Virtual and physical INTIDs may differ; the physical one has 10 bits.
        let lr = ListReg::pending(irq(40, 0, Some(1019), None));
        assert_eq!(decode(encode(&lr)), lr);
    }

    #[test]
    fn an_sgi_carries_its_sender() {
        let lr = ListReg::pending(irq(1, 0x80, None, Some(3)));
        let value = encode(&lr);
        assert_eq!(value, (1 << 28) | (0x10 << 23) | (3 << 10) | 1);
        assert_eq!(decode(value), lr);
        // No sender given: CPU interface 0.
        assert_eq!(
            decode(encode(&ListReg::pending(irq(2, 0, None, None))))
                .irq
                .source,
            Some(VcpuId(0))
        );
        // Only SGIs have one: a PPI or SPI keeps bits 12:10 clear.
        let spi = ListReg::pending(irq(33, 0x10, None, Some(5)));
        assert_eq!(encode(&spi), (1 << 28) | (0x2 << 23) | 33);
        assert_eq!(decode(encode(&spi)).irq.source, None);
    }

    #[test]
    fn interrupts_go_in_as_group_0_without_eoi_maintenance() {
        for lr in [
            ListReg::pending(irq(27, 0xff, Some(27), None)),
            ListReg::pending(irq(5, 0xff, None, Some(7))),
            ListReg::pending(irq(1019, 0xff, None, None)),
        ] {
            let value = encode(&lr);
            assert_eq!(value & (1 << 30), 0, "Group 0");
            if lr.irq.hw.is_none() {
                assert_eq!(value & (1 << 19), 0, "no EOI maintenance");
            }
        }
    }

    #[test]
    fn states_and_priorities() {
        assert_eq!(encode(&ListReg::EMPTY), 0);
        assert!(decode(0).is_free());
        for (bits, state) in [
            (1, LrState::Pending),
            (2, LrState::Active),
            (3, LrState::PendingActive),
        ] {
            let lr = ListReg {
                irq: irq(33, 0xa0, None, None),
                state,
            };
            assert_eq!(encode(&lr) >> 28, bits);
            assert_eq!(decode(encode(&lr)), lr);
        }
        // Five priority bits survive; the low three come back clear.
        let lr = ListReg::pending(irq(33, 0xa7, None, None));
        assert_eq!(decode(encode(&lr)).irq.priority, 0xa0);
        assert_eq!(kept_priority(0xa7), 0xa0);
        assert_eq!(
            decode(encode(&ListReg::pending(irq(33, 0xff, None, None))))
                .irq
                .priority,
            0xf8
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for value in [u32::MAX, 0x5555_5555, 0xaaaa_aaaa, 1 << 31, 3 << 28] {
            let lr = decode(value);
            let _ = encode(&lr);
            assert!(lr.irq.intid <= 0x3ff);
        }
        // An invalid register is free whatever else it holds.
        assert!(decode(0x0fff_ffff & !(3 << 28)).is_free());
    }
}
