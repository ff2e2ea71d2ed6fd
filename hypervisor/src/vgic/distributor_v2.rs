//! The virtual GICv2 distributor (GICD page, 4 KiB) of one partition, on a platform with a
//! GICv2: the same owner-filtered SPI model as the GICv3's ([`VirtualDistributor`]) and the same
//! per-vCPU banks of SGIs and PPIs ([`VirtualRedistributor`]), seen through the GICv2 register
//! map. A GICv2 has no redistributors: the SGI and PPI registers are banked in the distributor,
//! so every access is made by one vCPU ([`read`] and [`write`] take it) and its INTID 0..31 bits
//! are that vCPU's.
//!
//! Emulated registers (offsets within the page):
//!
//! | Offset | Register | Access | Emulation |
//! |---|---|---|---|
//! | 0x000 | `GICD_CTLR` | 32 | `EnableGrp0` (bit 0) and `EnableGrp1` (bit 1) stored |
//! | 0x004 | `GICD_TYPER` | 32 | read-only: `ITLinesNumber` covering the owned SPIs, `CPUNumber` = vCPUs - 1, no Security Extensions |
//! | 0x008 | `GICD_IIDR` | 32 | read-only [`IIDR_VALUE`] |
//! | 0x080.. | `GICD_IGROUPR<n>` | 32 | RAZ/WI: every interrupt is Group 0, the group the list registers deliver |
//! | 0x100..0x3FF | `GICD_IS/IC{ENABLE,PEND,ACTIVE}R<n>` | 32 | register 0: the accessing vCPU's SGIs and PPIs (SGIs' pending bits read-only, set through `GICD_SPENDSGIR`); others: owned SPIs, as for GICv3 |
//! | 0x400..0x7FB | `GICD_IPRIORITYR<n>` | 8/32 | bytes 0..31 the vCPU's, the rest owned SPIs' |
//! | 0x800..0x81F | `GICD_ITARGETSR0-7` | 8/32 | read-only: each byte names the accessing vCPU (bit `n` = vCPU `n`) |
//! | 0x820..0xBFB | `GICD_ITARGETSR<n>` | 8/32 | stored per owned SPI; routed to the lowest vCPU named ([`VgicAction::Route`]) |
//! | 0xC00 | `GICD_ICFGR0` | 32 | read-only: SGIs are edge-triggered |
//! | 0xC04 | `GICD_ICFGR1` | 32 | the vCPU's PPIs |
//! | 0xC08..0xCFF | `GICD_ICFGR<n>` | 32 | owned SPIs |
//! | 0xE00..0xEFF | `GICD_NSACR<n>` | 32 | RAZ/WI |
//! | 0xF00 | `GICD_SGIR` | 32 | write-only: [`VgicAction::SendSgi`] to each vCPU of the partition it targets (target list, all but self, or self) |
//! | 0xF10..0xF1F | `GICD_CPENDSGIR<n>` | 8/32 | clears the latched senders, [`VgicAction::ClearPending`] of the SGI |
//! | 0xF20..0xF2F | `GICD_SPENDSGIR<n>` | 8/32 | latches the senders, a [`VgicAction::SendSgi`] from each (to the accessing vCPU) |
//! | 0xFD0..0xFFF | ID registers | 32 | `GICD_PIDR2` (0xFE8) = [`PIDR2_V2`] (ArchRev 2), others 0 |
//!
//! Everything else is [`AccessError::UnknownRegister`] (the runtime makes it RAZ/WI), e.g. the
//! GIC-400's implementation-defined status registers at 0xD00. SGI targets and senders outside
//! the partition's vCPUs are dropped, as a GIC drops an SGI to a CPU interface that does not
//! exist.
//!
//! Actions about INTIDs 0..31 (but [`VgicAction::SendSgi`], which names its target) concern the
//! accessing vCPU; the others, owned SPIs.

use bulkhead_config::VcpuId;

use super::distributor::VirtualDistributor;
use super::redistributor::RedistributorRegion;
use super::regs::{decode_access, Width};
use super::{AccessError, Actions, VgicAction, BANKED_IRQS, GICR_FRAME_SIZE, IIDR_VALUE};
use bulkhead_config::guest_view::{GICV2_DIST_SIZE, GICV2_MAX_VCPUS};

/// `GICD_PIDR2` of the virtual GICv2: ArchRev (bits 7:4) = 2.
pub const PIDR2_V2: u32 = 0x20;

const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IIDR: u64 = 0x008;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ISPENDR: u64 = 0x200;
const GICD_ICPENDR: u64 = 0x280;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_IPRIORITYR_BANKED_END: u64 = 0x420;
const GICD_IPRIORITYR_END: u64 = 0x7fc;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ITARGETSR_BANKED_END: u64 = 0x820;
const GICD_ITARGETSR_END: u64 = 0xbfc;
const GICD_ICFGR0: u64 = 0xc00;
const GICD_ICFGR1: u64 = 0xc04;
const GICD_ICFGR_SPI: u64 = 0xc08;
const GICD_ICFGR_END: u64 = 0xd00;
const GICD_NSACR: u64 = 0xe00;
const GICD_NSACR_END: u64 = 0xf00;
const GICD_SGIR: u64 = 0xf00;
const GICD_CPENDSGIR: u64 = 0xf10;
const GICD_SPENDSGIR: u64 = 0xf20;
const GICD_SPENDSGIR_END: u64 = 0xf30;
const GICD_ID_REGS: u64 = 0xfd0;
const GICD_PIDR2: u64 = 0xfe8;

/// `GICD_CTLR` bits the guest can set: `EnableGrp0` and `EnableGrp1`.
const CTLR_ENABLES: u64 = 0b11;
/// `GICD_ICFGR0`: all SGIs edge-triggered.
const ICFGR0_VALUE: u64 = 0xaaaa_aaaa;
/// The SGIs' bits of register 0 of a one-bit-per-interrupt family.
const SGI_BITS: u64 = 0xffff;

/// A decoded register.
#[derive(Clone, Copy, Debug)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    RazWi,
    /// Register 0 of a one-bit-per-interrupt family: the vCPU's bank, at this GICR SGI_base
    /// offset.
    BankedWord(u64),
    /// A register of owned SPIs: the SPI model, at this (identical GICv3) offset.
    Spi(u64),
    /// `GICD_ITARGETSR0-7`.
    OwnTargets,
    /// `GICD_ITARGETSR<n>`, n >= 8, of SPIs from this INTID.
    Targets(u32),
    Icfgr0,
    Sgir,
    /// `GICD_CPENDSGIR` (false) or `GICD_SPENDSGIR` (true), of SGIs from this one.
    SgiPending(bool, u32),
    Id(u32),
}

fn decode(offset: u64) -> Option<(Reg, Width)> {
    let word = Width::Word;
    let byte_or_word = Width::ByteOrWord;
    // Offset of the same register of a vCPU's bank (a GICv3 redistributor's SGI_base frame).
    let banked = |offset: u64| Reg::BankedWord(GICR_FRAME_SIZE + offset);
    Some(match offset {
        GICD_CTLR => (Reg::Ctlr, word),
        GICD_TYPER => (Reg::Typer, word),
        GICD_IIDR => (Reg::Iidr, word),
        GICD_IGROUPR..GICD_ISENABLER => (Reg::RazWi, word),
        GICD_ISENABLER..GICD_IPRIORITYR if offset.is_multiple_of(0x80) => (banked(offset), word),
        GICD_ISENABLER..GICD_IPRIORITYR => (Reg::Spi(offset), word),
        GICD_IPRIORITYR..GICD_IPRIORITYR_BANKED_END => (banked(offset), byte_or_word),
        GICD_IPRIORITYR_BANKED_END..GICD_IPRIORITYR_END => (Reg::Spi(offset), byte_or_word),
        GICD_ITARGETSR..GICD_ITARGETSR_BANKED_END => (Reg::OwnTargets, byte_or_word),
        GICD_ITARGETSR_BANKED_END..GICD_ITARGETSR_END => {
            (Reg::Targets((offset - GICD_ITARGETSR) as u32), byte_or_word)
        }
        GICD_ICFGR0 => (Reg::Icfgr0, word),
        GICD_ICFGR1 => (banked(offset), word),
        GICD_ICFGR_SPI..GICD_ICFGR_END => (Reg::Spi(offset), word),
        GICD_NSACR..GICD_NSACR_END => (Reg::RazWi, word),
        GICD_SGIR => (Reg::Sgir, word),
        GICD_CPENDSGIR..GICD_SPENDSGIR_END => (
            Reg::SgiPending(
                offset >= GICD_SPENDSGIR,
                ((offset - GICD_CPENDSGIR) % 0x10) as u32,
            ),
            byte_or_word,
        ),
        GICD_PIDR2 => (Reg::Id(PIDR2_V2), word),
        GICD_ID_REGS..GICV2_DIST_SIZE => (Reg::Id(0), word),
        _ => return None,
    })
}

/// Decodes and validates an access; byte-addressed registers get the INTID of the first byte.
fn lookup(offset: u64, size: u8) -> Result<Reg, AccessError> {
    let reg = decode_access(offset, size, GICV2_DIST_SIZE, decode)?;
    let byte = offset & 3;
    Ok(match reg {
        Reg::BankedWord(o) if (GICD_IPRIORITYR..GICD_IPRIORITYR_BANKED_END).contains(&offset) => {
            Reg::BankedWord(o + byte)
        }
        Reg::Spi(_) => Reg::Spi(offset),
        Reg::Targets(first) => Reg::Targets(first + byte as u32),
        Reg::SgiPending(set, first) => Reg::SgiPending(set, first + byte as u32),
        reg => reg,
    })
}

/// The `GICD_TYPER` a partition with `dist`'s SPIs and vCPUs reads.
pub fn typer(dist: &VirtualDistributor) -> u32 {
    let it_lines = dist.typer() & 0x1f;
    let cpu_number = (dist.vcpu_count().clamp(1, GICV2_MAX_VCPUS) - 1) as u32;
    it_lines | (cpu_number << 5)
}

/// The bit of vCPU `vcpu`'s CPU interface in a GICv2 target or sender byte (0 past the eighth).
fn interface_bit(vcpu: VcpuId) -> u8 {
    if vcpu.index() < GICV2_MAX_VCPUS {
        1 << vcpu.index()
    } else {
        0
    }
}

/// The vCPUs of a partition of `vcpu_count` named by a target or sender byte.
fn vcpus_in(byte: u8, vcpu_count: usize) -> impl Iterator<Item = VcpuId> {
    (0..vcpu_count.min(GICV2_MAX_VCPUS))
        .filter(move |&n| byte & (1 << n) != 0)
        .map(VcpuId)
}

/// Emulates a read of `size` bytes at `offset` in the GICD page by vCPU `vcpu`.
pub fn read(
    dist: &VirtualDistributor,
    banks: &RedistributorRegion,
    vcpu: VcpuId,
    offset: u64,
    size: u8,
) -> Result<u64, AccessError> {
    let bank = banks.get(vcpu).ok_or(AccessError::OutOfRange { offset })?;
    let count = u32::from(size);
    Ok(match lookup(offset, size)? {
        Reg::Ctlr => dist.read(0, 4)? & CTLR_ENABLES,
        Reg::Typer => u64::from(typer(dist)),
        Reg::Iidr => u64::from(IIDR_VALUE),
        Reg::RazWi | Reg::Sgir => 0,
        Reg::BankedWord(o) => bank.read(o, size)?,
        Reg::Spi(o) => dist.read(o, size)?,
        Reg::OwnTargets => {
            let byte = u64::from(interface_bit(vcpu));
            (0..count).fold(0, |v, i| v | (byte << (8 * i)))
        }
        Reg::Targets(first) => (0..count).fold(0, |v, i| {
            let byte = first
                .checked_add(i)
                .and_then(|intid| dist.targets(intid))
                .unwrap_or(0);
            v | (u64::from(byte) << (8 * i))
        }),
        Reg::Icfgr0 => ICFGR0_VALUE,
        Reg::SgiPending(_, first) => (0..count).fold(0, |v, i| {
            v | (u64::from(bank.sgi_pending_from(first + i)) << (8 * i))
        }),
        Reg::Id(value) => u64::from(value),
    })
}

/// Emulates a write of `size` bytes of `value` at `offset` in the GICD page by vCPU `vcpu`,
/// returning what the runtime must apply: actions about INTIDs 0..31 concern `vcpu` (but
/// [`VgicAction::SendSgi`], which names its target), the others owned SPIs.
pub fn write(
    dist: &mut VirtualDistributor,
    banks: &mut RedistributorRegion,
    vcpu: VcpuId,
    offset: u64,
    size: u8,
    value: u64,
) -> Result<Actions, AccessError> {
    let vcpu_count = banks.vcpu_count();
    if banks.get(vcpu).is_none() {
        return Err(AccessError::OutOfRange { offset });
    }
    let count = u32::from(size);
    let mut actions = Actions::new();
    match lookup(offset, size)? {
        Reg::Ctlr => {
            dist.write(0, 4, value & CTLR_ENABLES)?;
        }
        Reg::Typer | Reg::Iidr | Reg::RazWi | Reg::OwnTargets | Reg::Icfgr0 | Reg::Id(_) => {}
        Reg::BankedWord(o) => {
            let bank_offset = GICR_FRAME_SIZE + GICD_ISPENDR;
            let clear_offset = GICR_FRAME_SIZE + GICD_ICPENDR;
            // The SGIs' pending state is set and cleared through GICD_[CS]PENDSGIR only.
            let value = if o == bank_offset || o == clear_offset {
                value & !SGI_BITS
            } else {
                value
            };
            if let Some(bank) = banks.get_mut(vcpu) {
                actions = bank.write(o, size, value)?;
            }
        }
        Reg::Spi(o) => actions = dist.write(o, size, value)?,
        Reg::Targets(first) => {
            for i in 0..count {
                let byte = (value >> (8 * i)) as u8;
                if let Some(route) = first
                    .checked_add(i)
                    .and_then(|intid| dist.set_targets(intid, byte))
                {
                    actions.push(route);
                }
            }
        }
        Reg::Sgir => {
            let sgir = value as u32;
            let intid = sgir & 0xf;
            let targets = match (sgir >> 24) & 0b11 {
                0 => ((sgir >> 16) & 0xff) as u8,
                1 => !interface_bit(vcpu),
                2 => interface_bit(vcpu),
                _ => 0,
            };
            for target in vcpus_in(targets, vcpu_count) {
                actions.push(VgicAction::SendSgi {
                    intid,
                    target,
                    source: vcpu,
                });
            }
        }
        Reg::SgiPending(set, first) => {
            for i in 0..count {
                let sgi = first + i;
                let senders = (value >> (8 * i)) as u8 & mask_of(vcpu_count);
                if senders == 0 {
                    continue;
                }
                if let Some(bank) = banks.get_mut(vcpu) {
                    bank.mark_sgi_pending(sgi, senders, set);
                }
                if set {
                    for source in vcpus_in(senders, vcpu_count) {
                        actions.push(VgicAction::SendSgi {
                            intid: sgi,
                            target: vcpu,
                            source,
                        });
                    }
                } else {
                    actions.push(VgicAction::ClearPending { intid: sgi });
                }
            }
        }
    }
    Ok(actions)
}

/// The interface bits of a partition's `vcpu_count` vCPUs.
fn mask_of(vcpu_count: usize) -> u8 {
    match vcpu_count {
        0 => 0,
        n if n >= GICV2_MAX_VCPUS => 0xff,
        n => (1u8 << n) - 1,
    }
}

/// Whether an action of a GICv2 distributor write concerns the accessing vCPU's banked
/// interrupts (rather than an owned SPI); [`VgicAction::SendSgi`] counts as banked too.
pub fn is_banked(action: &VgicAction) -> bool {
    match *action {
        VgicAction::SendSgi { .. } => true,
        VgicAction::Enable { intid, .. }
        | VgicAction::SetPriority { intid, .. }
        | VgicAction::SetTrigger { intid, .. }
        | VgicAction::Route { intid, .. }
        | VgicAction::SetPending { intid }
        | VgicAction::ClearPending { intid }
        | VgicAction::SetActive { intid }
        | VgicAction::ClearActive { intid } => intid < BANKED_IRQS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const UART_SPI: u32 = 153;
    const SD_SPI: u32 = 158;

    /// A partition with 2 vCPUs owning two SPIs, as the Pi's Linux partition.
    struct Gic {
        dist: VirtualDistributor,
        banks: RedistributorRegion,
    }

    impl Gic {
        fn new(vcpus: usize) -> Self {
            Gic {
                dist: VirtualDistributor::new(&[UART_SPI, SD_SPI], vcpus, 255).unwrap(),
                banks: RedistributorRegion::new(vcpus).unwrap(),
            }
        }

        fn read(&self, vcpu: usize, offset: u64, size: u8) -> u64 {
            read(&self.dist, &self.banks, VcpuId(vcpu), offset, size).unwrap()
        }

        fn write(&mut self, vcpu: usize, offset: u64, size: u8, value: u64) -> Vec<VgicAction> {
            write(
                &mut self.dist,
                &mut self.banks,
                VcpuId(vcpu),
                offset,
                size,
                value,
            )
            .unwrap()
            .as_slice()
            .to_vec()
        }
    }

    fn sgi(intid: u32, target: usize, source: usize) -> VgicAction {
        VgicAction::SendSgi {
            intid,
            target: VcpuId(target),
            source: VcpuId(source),
        }
    }

    #[test]
    fn ctlr_typer_iidr_pidr2() {
        let mut g = Gic::new(2);
        assert_eq!(g.read(0, GICD_CTLR, 4), 0);
        assert!(g.write(0, GICD_CTLR, 4, 0xffff_ffff).is_empty());
        assert_eq!(
            g.read(1, GICD_CTLR, 4),
            0b11,
            "one distributor, both enables"
        );
        assert!(g.dist.group1_enabled());
        g.write(0, GICD_CTLR, 4, 0);
        assert!(!g.dist.group1_enabled());

        let typer = g.read(0, GICD_TYPER, 4);
        // SPI 158 -> INTIDs up to 159 -> ITLinesNumber 4; CPUNumber 1; no Security Extensions.
        assert_eq!(typer & 0x1f, 4);
        assert_eq!((typer >> 5) & 7, 1);
        assert_eq!(typer & (1 << 10), 0);
        assert_eq!(typer >> 11, 0);
        assert_eq!((Gic::new(8).read(0, GICD_TYPER, 4) >> 5) & 7, 7);
        assert_eq!(g.read(0, GICD_IIDR, 4), u64::from(IIDR_VALUE));
        assert_eq!((g.read(0, 0xfe8, 4) >> 4) & 0xf, 2, "ArchRev = GICv2");
        assert_eq!(g.read(0, 0xfd0, 4), 0);
        // Read-only: writes change nothing.
        g.write(0, GICD_TYPER, 4, 0);
        assert_eq!(g.read(0, GICD_TYPER, 4), typer);
    }

    #[test]
    fn sgis_and_ppis_are_the_accessing_vcpus() {
        let mut g = Gic::new(2);
        // vCPU 1 enables the virtual timer (PPI 27) and SGIs 0..15.
        let a = g.write(1, GICD_ISENABLER, 4, (1 << 27) | 0xffff);
        assert_eq!(a.len(), 17);
        assert!(a.contains(&VgicAction::Enable {
            intid: 27,
            enable: true
        }));
        assert!(a.iter().all(is_banked));
        assert_eq!(g.read(1, GICD_ISENABLER, 4), (1 << 27) | 0xffff);
        assert_eq!(
            g.read(0, GICD_ISENABLER, 4),
            0,
            "vCPU 0's bank is untouched"
        );
        assert!(g.banks.get(VcpuId(1)).unwrap().is_enabled(27));

        // Priorities 0..31 are banked, bytes and words.
        g.write(0, GICD_IPRIORITYR + 27, 1, 0x80);
        assert_eq!(g.read(0, GICD_IPRIORITYR + 24, 4), 0x8000_0000);
        assert_eq!(g.read(1, GICD_IPRIORITYR + 24, 4), 0);
        assert_eq!(g.banks.get(VcpuId(0)).unwrap().priority(27), Some(0x80));
        // ICFGR0 is fixed, ICFGR1 the vCPU's PPIs.
        assert_eq!(g.read(0, GICD_ICFGR0, 4), 0xaaaa_aaaa);
        g.write(0, GICD_ICFGR0, 4, 0);
        assert_eq!(g.read(0, GICD_ICFGR0, 4), 0xaaaa_aaaa);
        let a = g.write(1, GICD_ICFGR1, 4, 2 << 22);
        assert!(a.contains(&VgicAction::SetTrigger {
            intid: 27,
            edge: true
        }));
        assert_eq!(g.read(1, GICD_ICFGR1, 4), 2 << 22);
        assert_eq!(g.read(0, GICD_ICFGR1, 4), 0);
    }

    #[test]
    fn sgi_pending_bits_need_spendsgir() {
        let mut g = Gic::new(2);
        // ISPENDR0: the SGI bits are read-only, the PPI bits work.
        let a = g.write(0, GICD_ISPENDR, 4, 0xffff | (1 << 27));
        assert_eq!(a, vec![VgicAction::SetPending { intid: 27 }]);
        let a = g.write(0, GICD_ICPENDR, 4, 0x0001 | (1 << 27));
        assert_eq!(a, vec![VgicAction::ClearPending { intid: 27 }]);
    }

    #[test]
    fn spis_are_owner_filtered() {
        let mut g = Gic::new(2);
        // ISENABLER4 covers 128..159: 153 and 158 owned, 140 not.
        let a = g.write(0, GICD_ISENABLER + 16, 4, u64::MAX);
        assert_eq!(
            a,
            vec![
                VgicAction::Enable {
                    intid: UART_SPI,
                    enable: true
                },
                VgicAction::Enable {
                    intid: SD_SPI,
                    enable: true
                }
            ]
        );
        assert!(!a.iter().any(is_banked));
        assert_eq!(g.read(1, GICD_ISENABLER + 16, 4), (1 << 25) | (1 << 30));
        // Another SPI's priority and configuration: RAZ/WI.
        assert!(g.write(0, GICD_IPRIORITYR + 140, 1, 0xff).is_empty());
        assert_eq!(g.read(0, GICD_IPRIORITYR + 140, 1), 0);
        let a = g.write(0, GICD_IPRIORITYR + u64::from(SD_SPI), 1, 0x40);
        assert_eq!(
            a,
            vec![VgicAction::SetPriority {
                intid: SD_SPI,
                prio: 0x40
            }]
        );
        // ICFGR9 covers 144..159: 153 is field 9, 158 field 14.
        let a = g.write(0, 0xc24, 4, u64::MAX);
        assert_eq!(a.len(), 2);
        assert_eq!(g.read(0, 0xc24, 4), (2 << 18) | (2 << 28));
        // IGROUPR: RAZ/WI.
        assert!(g.write(0, 0x90, 4, u64::MAX).is_empty());
        assert_eq!(g.read(0, 0x90, 4), 0);
    }

    #[test]
    fn itargetsr() {
        let mut g = Gic::new(2);
        // ITARGETSR0..7 name the reader's own interface, in every byte; writes are ignored.
        assert_eq!(g.read(0, GICD_ITARGETSR, 4), 0x0101_0101);
        assert_eq!(g.read(1, GICD_ITARGETSR + 0x1c, 4), 0x0202_0202);
        assert_eq!(g.read(1, GICD_ITARGETSR + 3, 1), 0x02);
        assert!(g.write(0, GICD_ITARGETSR, 4, 0).is_empty());
        // Owned SPIs start on vCPU 0; the byte is stored and routes to the lowest vCPU named.
        let off = GICD_ITARGETSR + u64::from(SD_SPI);
        assert_eq!(g.read(0, off, 1), 1);
        let a = g.write(0, off, 1, 0b10);
        assert_eq!(
            a,
            vec![VgicAction::Route {
                intid: SD_SPI,
                vcpu: VcpuId(1)
            }]
        );
        assert_eq!(g.dist.route(SD_SPI), Some(VcpuId(1)));
        assert_eq!(g.read(1, off, 1), 0b10);
        g.write(0, off, 1, 0b11);
        assert_eq!(g.dist.route(SD_SPI), Some(VcpuId(0)), "the lowest of two");
        // Interfaces the partition does not have: vCPU 0, read back as written.
        g.write(0, off, 1, 0xf0);
        assert_eq!(g.dist.route(SD_SPI), Some(VcpuId(0)));
        assert_eq!(g.read(0, off, 1), 0xf0);
        // A word write touches the owned bytes only: 156..159 holds 158 as byte 2.
        let a = g.write(0, GICD_ITARGETSR + 156, 4, 0x0202_0202);
        assert_eq!(
            a,
            vec![VgicAction::Route {
                intid: SD_SPI,
                vcpu: VcpuId(1)
            }]
        );
        assert_eq!(g.read(0, GICD_ITARGETSR + 156, 4), 0x0002_0000);
    }

    #[test]
    fn sgir_reaches_only_the_partitions_vcpus() {
        let mut g = Gic::new(2);
        // Target list: vCPU 1, and interfaces 2..7 the partition does not have.
        let a = g.write(0, GICD_SGIR, 4, (0xfe << 16) | 3);
        assert_eq!(a, vec![sgi(3, 1, 0)]);
        // All but self, from vCPU 1.
        assert_eq!(g.write(1, GICD_SGIR, 4, (1 << 24) | 5), vec![sgi(5, 0, 1)]);
        // Self only.
        assert_eq!(
            g.write(1, GICD_SGIR, 4, (2 << 24) | 15),
            vec![sgi(15, 1, 1)]
        );
        // Reserved filter, and an empty list: nothing.
        assert!(g.write(0, GICD_SGIR, 4, (3 << 24) | (3 << 16)).is_empty());
        assert!(g.write(0, GICD_SGIR, 4, 1).is_empty());
        // SGI numbers are 4 bits; NSATT (bit 15) changes nothing.
        assert_eq!(
            g.write(0, GICD_SGIR, 4, (1 << 15) | (2 << 16) | 0x13),
            vec![sgi(3, 1, 0)]
        );
        // Write-only.
        assert_eq!(g.read(0, GICD_SGIR, 4), 0);
        // All but self on 8 vCPUs: seven targets.
        let mut g8 = Gic::new(8);
        assert_eq!(g8.write(4, GICD_SGIR, 4, 1 << 24).len(), 7);
    }

    #[test]
    fn spendsgir_and_cpendsgir() {
        let mut g = Gic::new(2);
        // SGI 5 = byte 1 of SPENDSGIR1: pending from vCPUs 0 and 1 (and a non-existent 2).
        let a = g.write(1, GICD_SPENDSGIR + 5, 1, 0b111);
        assert_eq!(a, vec![sgi(5, 1, 0), sgi(5, 1, 1)]);
        assert_eq!(g.read(1, GICD_SPENDSGIR + 4, 4), 0b11 << 8);
        assert_eq!(g.read(1, GICD_CPENDSGIR + 4, 4), 0b11 << 8);
        assert_eq!(g.read(0, GICD_SPENDSGIR + 4, 4), 0, "vCPU 0's are its own");
        let a = g.write(1, GICD_CPENDSGIR + 4, 4, 0b01 << 8);
        assert_eq!(a, vec![VgicAction::ClearPending { intid: 5 }]);
        assert_eq!(g.read(1, GICD_SPENDSGIR + 5, 1), 0b10);
        assert!(g.write(1, GICD_CPENDSGIR, 4, 0).is_empty());
    }

    #[test]
    fn bad_accesses_are_errors_and_change_nothing() {
        let mut g = Gic::new(2);
        let mut bad = |offset, size| {
            write(&mut g.dist, &mut g.banks, VcpuId(0), offset, size, u64::MAX).unwrap_err()
        };
        assert_eq!(bad(0x1000, 4), AccessError::OutOfRange { offset: 0x1000 });
        assert_eq!(
            bad(0x102, 2),
            AccessError::BadSize {
                offset: 0x102,
                size: 2
            }
        );
        assert_eq!(
            bad(0x101, 4),
            AccessError::Misaligned {
                offset: 0x101,
                size: 4
            }
        );
        assert_eq!(
            bad(0x100, 1),
            AccessError::BadSize {
                offset: 0x100,
                size: 1
            }
        );
        assert_eq!(
            bad(0xd00, 4),
            AccessError::UnknownRegister { offset: 0xd00 }
        );
        assert_eq!(
            bad(0xf04, 4),
            AccessError::UnknownRegister { offset: 0xf04 }
        );
        assert_eq!(
            read(&g.dist, &g.banks, VcpuId(2), 0, 4),
            Err(AccessError::OutOfRange { offset: 0 }),
            "no such vCPU"
        );
        assert_eq!(g.read(0, GICD_ISENABLER, 4), 0);
        assert_eq!(g.read(0, GICD_CTLR, 4), 0);
    }

    #[test]
    fn no_panic_on_any_offset() {
        let mut g = Gic::new(3);
        for off in (0..0x1010u64).step_by(1) {
            for size in [1u8, 2, 4, 8] {
                for vcpu in 0..4 {
                    let _ = read(&g.dist, &g.banks, VcpuId(vcpu), off, size);
                    let _ = write(&mut g.dist, &mut g.banks, VcpuId(vcpu), off, size, u64::MAX);
                }
            }
        }
    }
}
