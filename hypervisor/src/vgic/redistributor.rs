//! The virtual GICv3 redistributors: one per vCPU, each two 64 KiB frames (RD_base, then
//! SGI_base at +0x10000), laid out contiguously in vCPU order in the partition's GICR region
//! (no VLPI frames: `GICR_TYPER.VLPIS` = 0, so the stride is 128 KiB). [`frame_for`] decodes a
//! region offset; [`RedistributorRegion`] does the dispatch.
//!
//! Emulated registers (offsets within one vCPU's 128 KiB):
//!
//! | Offset | Register | Access | Emulation |
//! |---|---|---|---|
//! | 0x0000 | `GICR_CTLR` | 32 | RAZ/WI: no LPIs (`EnableLPIs` WI), `RWP` = 0, no DPG bits (`DPGS` = 0) |
//! | 0x0004 | `GICR_IIDR` | 32 | read-only [`IIDR_VALUE`] |
//! | 0x0008 | `GICR_TYPER` | 64, or 32 per half | read-only, see [`VirtualRedistributor::typer`] |
//! | 0x0010 | `GICR_STATUSR` | 32 | RAZ/WI |
//! | 0x0014 | `GICR_WAKER` | 32 | `ProcessorSleep` (bit 1) stored, `ChildrenAsleep` (bit 2) reads the same value at once, so Linux's wake-up poll ends; bit 0 RAZ/WI. Resets asleep (0b110) |
//! | 0x0018, 0x001C | `GICR_MPAMIDR`, `GICR_PARTIDR` | 32 | RAZ/WI |
//! | 0x0040.. 0x00B0 | `GICR_SETLPIR`, `CLRLPIR`, `PROPBASER`, `PENDBASER`, `INVLPIR`, `INVALLR` | 64/32 | RAZ/WI (no LPIs) |
//! | 0x00C0 | `GICR_SYNCR` | 32 | RAZ (never busy) |
//! | 0xFFD0..0xFFFF | ID registers | 32 | `GICR_PIDR2` (0xFFE8) = [`PIDR2_VALUE`], others 0 |
//! | 0x10080 | `GICR_IGROUPR0` | 32 | stored, resets to all Group 1, no action |
//! | 0x10100, 0x10180 | `GICR_IS/ICENABLER0` | 32 | [`VgicAction::Enable`](super::VgicAction::Enable) per written 1 |
//! | 0x10200, 0x10280 | `GICR_IS/ICPENDR0` | 32 | `SetPending`/`ClearPending`, latch read back |
//! | 0x10300, 0x10380 | `GICR_IS/ICACTIVER0` | 32 | `SetActive`/`ClearActive`, latch read back |
//! | 0x10400..0x1041F | `GICR_IPRIORITYR0-7` | 8/32 | one byte per SGI/PPI, `SetPriority` |
//! | 0x10C00 | `GICR_ICFGR0` | 32 | read-only 0xAAAA_AAAA (SGIs are edge-triggered) |
//! | 0x10C04 | `GICR_ICFGR1` | 32 | PPI odd bits stored (reset level), `SetTrigger` |
//! | 0x10D00 | `GICR_IGRPMODR0` | 32 | RAZ/WI (Secure-only setting) |
//! | 0x10E00 | `GICR_NSACR` | 32 | RAZ/WI |
//! | 0x10F80 | `GICR_INMIR0` | 32 | RAZ/WI (no NMIs) |
//!
//! Anything else is [`AccessError::UnknownRegister`] (e.g. the extended-PPI registers, since
//! `GICR_TYPER.PPInum` = 0).
//!
//! All SGIs and PPIs are the vCPU's own, so every write to an SGI_base register reports its
//! effect as [`VgicAction`](super::VgicAction)s with `intid < 32`. They describe the *virtual* interrupt: which of
//! them the glue mirrors to the physical redistributor (only the PPIs it passes through, such as
//! the virtual timer, `guest_view::VTIMER_PPI`; never the hypervisor's own PPIs like the
//! maintenance interrupt) and how it treats a `SetPending` of a purely virtual one (queue it for
//! this vCPU) is the glue's decision.

use alloc::vec::Vec;

use bulkhead_config::guest_view::vcpu_mpidr;
use bulkhead_config::VcpuId;

use super::list_regs::VirtualIrq;
use super::regs::{
    decode_access, read_bits, read_cfg, read_priority, write_bits, write_cfg, write_priority,
    BitReg, IrqBank, IrqCfg, Width,
};
use super::{
    AccessError, Actions, ConfigError, BANKED_IRQS, GICR_FRAME_SIZE, GICR_STRIDE, IIDR_VALUE,
    MAX_VCPUS, PIDR2_VALUE,
};

// RD_base.
const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_TYPER_HI: u64 = 0x000c;
const GICR_STATUSR: u64 = 0x0010;
const GICR_WAKER: u64 = 0x0014;
const GICR_MPAMIDR: u64 = 0x0018;
const GICR_PARTIDR: u64 = 0x001c;
const GICR_SETLPIR: u64 = 0x0040;
const GICR_CLRLPIR: u64 = 0x0048;
const GICR_PROPBASER: u64 = 0x0070;
const GICR_PENDBASER: u64 = 0x0078;
const GICR_INVLPIR: u64 = 0x00a0;
const GICR_INVALLR: u64 = 0x00b0;
const GICR_SYNCR: u64 = 0x00c0;
const GICR_ID_REGS: u64 = 0xffd0;
const GICR_PIDR2: u64 = 0xffe8;

// SGI_base (relative to the start of the vCPU's RD_base).
const SGI_BASE: u64 = GICR_FRAME_SIZE;
const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const GICR_ICACTIVER0: u64 = SGI_BASE + 0x0380;
const GICR_IPRIORITYR: u64 = SGI_BASE + 0x0400;
const GICR_IPRIORITYR_END: u64 = SGI_BASE + 0x0420;
const GICR_ICFGR0: u64 = SGI_BASE + 0x0c00;
const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;
const GICR_IGRPMODR0: u64 = SGI_BASE + 0x0d00;
const GICR_NSACR: u64 = SGI_BASE + 0x0e00;
const GICR_INMIR0: u64 = SGI_BASE + 0x0f80;

/// `GICR_WAKER.ProcessorSleep`.
pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// `GICR_WAKER.ChildrenAsleep`.
pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// `GICR_TYPER.Last`.
pub const TYPER_LAST: u64 = 1 << 4;

/// `GICR_ICFGR0`: all SGIs edge-triggered.
const ICFGR0_VALUE: u32 = 0xaaaa_aaaa;

/// Decodes an offset in a partition's GICR region into (vCPU index, offset within that vCPU's
/// 128 KiB RD_base + SGI_base pair). `None` past the last vCPU's frames.
pub fn frame_for(offset: u64, vcpu_count: usize) -> Option<(VcpuId, u64)> {
    let vcpu = usize::try_from(offset / GICR_STRIDE).ok()?;
    (vcpu < vcpu_count).then_some((VcpuId(vcpu), offset % GICR_STRIDE))
}

#[derive(Clone, Copy, Debug)]
enum Reg {
    RazWi,
    Iidr,
    /// Whether the upper half of a 32-bit access (a 64-bit access reads both).
    Typer(bool),
    Waker,
    Id(u32),
    Bits(BitReg),
    /// First INTID of the addressed byte(s).
    Priority(u32),
    Icfgr0,
    Icfgr1,
}

#[derive(Clone, Copy, Debug)]
struct Banked([IrqCfg; BANKED_IRQS as usize]);

impl IrqBank for Banked {
    fn cfg(&self, intid: u32) -> Option<&IrqCfg> {
        self.0.get(usize::try_from(intid).ok()?)
    }

    fn cfg_mut(&mut self, intid: u32) -> Option<&mut IrqCfg> {
        self.0.get_mut(usize::try_from(intid).ok()?)
    }
}

/// The redistributor of one vCPU. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct VirtualRedistributor {
    vcpu: VcpuId,
    last: bool,
    processor_sleep: bool,
    irqs: Banked,
    /// For a GICv2 guest, whose distributor banks the SGIs ([`super::distributor_v2`]): per
    /// SGI, the senders whose SGI the guest made pending with `GICD_SPENDSGIR` (a latch, as the
    /// other pending bits are).
    sgi_pending_from: [u8; 16],
}

impl VirtualRedistributor {
    /// The redistributor of vCPU `vcpu` of a partition with `vcpu_count` vCPUs. SGIs reset
    /// edge-triggered, PPIs level-sensitive; all disabled, inactive, not pending, Group 1,
    /// priority 0. The redistributor resets asleep (`GICR_WAKER` = 0b110).
    pub fn new(vcpu: VcpuId, vcpu_count: usize) -> Result<Self, ConfigError> {
        if vcpu_count == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if vcpu_count > MAX_VCPUS || vcpu.index() >= vcpu_count {
            return Err(ConfigError::TooManyVcpus(
                vcpu_count.max(vcpu.index().saturating_add(1)),
            ));
        }
        let mut irqs = [IrqCfg::reset(false); BANKED_IRQS as usize];
        for sgi in irqs.iter_mut().take(16) {
            sgi.edge = true;
        }
        Ok(Self {
            vcpu,
            last: vcpu.index() + 1 == vcpu_count,
            processor_sleep: true,
            irqs: Banked(irqs),
            sgi_pending_from: [0; 16],
        })
    }

    /// The vCPU index this redistributor belongs to.
    pub fn vcpu(&self) -> VcpuId {
        self.vcpu
    }

    /// The `GICR_TYPER` value: `Affinity_Value` (63:32) = the vCPU's affinity `0.0.0.index`,
    /// `Processor_Number` (23:8) = index, `Last` (4) on the partition's last vCPU, and
    /// `PLPIS`, `VLPIS`, `DirectLPI`, `DPGS`, `CommonLPIAff`, `PPInum` all 0.
    pub fn typer(&self) -> u64 {
        let affinity = vcpu_mpidr(self.vcpu);
        let processor_number = (self.vcpu.index() & 0xffff) as u64;
        (affinity << 32) | (processor_number << 8) | if self.last { TYPER_LAST } else { 0 }
    }

    /// Whether the guest has woken the redistributor up (`GICR_WAKER.ProcessorSleep` = 0).
    #[cfg(test)]
    pub fn is_awake(&self) -> bool {
        !self.processor_sleep
    }

    /// Whether the guest enabled SGI/PPI `intid` (false for INTIDs >= 32).
    pub fn is_enabled(&self, intid: u32) -> bool {
        self.irqs.cfg(intid).is_some_and(|c| c.enabled)
    }

    /// The guest's priority for SGI/PPI `intid`.
    pub fn priority(&self, intid: u32) -> Option<u8> {
        self.irqs.cfg(intid).map(|c| c.priority)
    }

    /// Whether SGI/PPI `intid` is edge-triggered.
    #[cfg(test)]
    pub fn is_edge(&self, intid: u32) -> Option<bool> {
        self.irqs.cfg(intid).map(|c| c.edge)
    }

    /// The queue entry for SGI/PPI `intid` (with `hw` as the physical INTID for a passthrough
    /// PPI such as the virtual timer), or `None` if the guest has not enabled it.
    pub fn virq(&self, intid: u32, hw: Option<u32>) -> Option<VirtualIrq> {
        let cfg = self.irqs.cfg(intid)?;
        cfg.enabled.then_some(VirtualIrq {
            intid,
            priority: cfg.priority,
            hw,
            source: None,
        })
    }

    /// GICv2: the senders whose SGI `sgi` (0..15) was made pending with `GICD_SPENDSGIR`, a bit
    /// each (0 for anything else).
    pub fn sgi_pending_from(&self, sgi: u32) -> u8 {
        usize::try_from(sgi)
            .ok()
            .and_then(|i| self.sgi_pending_from.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// GICv2: records the senders of SGI `sgi` made pending (`set`) or cleared.
    pub fn mark_sgi_pending(&mut self, sgi: u32, senders: u8, set: bool) {
        if let Some(latch) = usize::try_from(sgi)
            .ok()
            .and_then(|i| self.sgi_pending_from.get_mut(i))
        {
            if set {
                *latch |= senders;
            } else {
                *latch &= !senders;
            }
        }
    }

    fn decode(offset: u64) -> Option<(Reg, Width)> {
        let word = Width::Word;
        let dword = Width::Dword;
        Some(match offset {
            GICR_CTLR | GICR_STATUSR | GICR_MPAMIDR | GICR_PARTIDR | GICR_SYNCR => {
                (Reg::RazWi, word)
            }
            GICR_IIDR => (Reg::Iidr, word),
            GICR_TYPER => (Reg::Typer(false), dword),
            GICR_TYPER_HI => (Reg::Typer(true), word),
            GICR_WAKER => (Reg::Waker, word),
            GICR_SETLPIR | GICR_CLRLPIR | GICR_PROPBASER | GICR_PENDBASER | GICR_INVLPIR
            | GICR_INVALLR => (Reg::RazWi, dword),
            GICR_PIDR2 => (Reg::Id(PIDR2_VALUE), word),
            GICR_ID_REGS..SGI_BASE => (Reg::Id(0), word),
            GICR_IGROUPR0..=GICR_ICACTIVER0 if offset.is_multiple_of(0x80) => (
                Reg::Bits(BitReg::from_block((offset - SGI_BASE) / 0x80)?),
                word,
            ),
            GICR_IPRIORITYR..GICR_IPRIORITYR_END => (
                Reg::Priority((offset - GICR_IPRIORITYR) as u32),
                Width::ByteOrWord,
            ),
            GICR_ICFGR0 => (Reg::Icfgr0, word),
            GICR_ICFGR1 => (Reg::Icfgr1, word),
            GICR_IGRPMODR0 | GICR_NSACR | GICR_INMIR0 => (Reg::RazWi, word),
            _ => return None,
        })
    }

    fn lookup(offset: u64, size: u8) -> Result<Reg, AccessError> {
        let reg = decode_access(offset, size, GICR_STRIDE, Self::decode)?;
        Ok(match reg {
            Reg::Priority(first) => Reg::Priority(first + (offset & 3) as u32),
            reg => reg,
        })
    }

    /// Emulates a guest read of `size` bytes at `offset` within this vCPU's RD_base + SGI_base
    /// frames (0..0x20000).
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, AccessError> {
        let reg = Self::lookup(offset, size)?;
        Ok(match reg {
            Reg::RazWi => 0,
            Reg::Iidr => u64::from(IIDR_VALUE),
            Reg::Typer(high) => match (size, high) {
                (8, _) => self.typer(),
                (_, false) => self.typer() & 0xffff_ffff,
                (_, true) => self.typer() >> 32,
            },
            Reg::Waker => {
                if self.processor_sleep {
                    u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP)
                } else {
                    0
                }
            }
            Reg::Id(value) => u64::from(value),
            Reg::Bits(reg) => u64::from(read_bits(&self.irqs, reg, 0)),
            Reg::Priority(first) => read_priority(&self.irqs, first, u32::from(size)),
            Reg::Icfgr0 => u64::from(ICFGR0_VALUE),
            Reg::Icfgr1 => u64::from(read_cfg(&self.irqs, 16)),
        })
    }

    /// Emulates a guest write of `size` bytes of `value` at `offset` within this vCPU's RD_base +
    /// SGI_base frames, returning the changes made to the vCPU's SGIs/PPIs.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<Actions, AccessError> {
        let reg = Self::lookup(offset, size)?;
        let mut actions = Actions::new();
        let word = value as u32;
        match reg {
            Reg::RazWi | Reg::Iidr | Reg::Typer(_) | Reg::Id(_) | Reg::Icfgr0 => {}
            Reg::Waker => self.processor_sleep = word & WAKER_PROCESSOR_SLEEP != 0,
            Reg::Bits(reg) => write_bits(&mut self.irqs, reg, 0, word, &mut actions),
            Reg::Priority(first) => {
                write_priority(&mut self.irqs, first, u32::from(size), value, &mut actions)
            }
            Reg::Icfgr1 => write_cfg(&mut self.irqs, 16, word, &mut actions),
        }
        Ok(actions)
    }
}

/// All redistributors of a partition, as laid out in its GICR region.
#[derive(Clone, Debug)]
pub struct RedistributorRegion {
    redists: Vec<VirtualRedistributor>,
}

impl RedistributorRegion {
    /// The region of a partition with `vcpu_count` vCPUs.
    pub fn new(vcpu_count: usize) -> Result<Self, ConfigError> {
        if vcpu_count == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if vcpu_count > MAX_VCPUS {
            return Err(ConfigError::TooManyVcpus(vcpu_count));
        }
        let redists = (0..vcpu_count)
            .map(|vcpu| VirtualRedistributor::new(VcpuId(vcpu), vcpu_count))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { redists })
    }

    /// Number of vCPUs (redistributors).
    pub fn vcpu_count(&self) -> usize {
        self.redists.len()
    }

    /// Size of the region the guest's device tree must describe: 128 KiB per vCPU.
    pub fn size(&self) -> u64 {
        self.redists.len() as u64 * GICR_STRIDE
    }

    /// The redistributor of vCPU `vcpu`.
    pub fn get(&self, vcpu: VcpuId) -> Option<&VirtualRedistributor> {
        self.redists.get(vcpu.index())
    }

    /// The redistributor of vCPU `vcpu`, mutably.
    pub fn get_mut(&mut self, vcpu: VcpuId) -> Option<&mut VirtualRedistributor> {
        self.redists.get_mut(vcpu.index())
    }

    /// Emulates a guest read at `offset` in the partition's GICR region.
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, AccessError> {
        let (vcpu, in_frame) =
            frame_for(offset, self.redists.len()).ok_or(AccessError::OutOfRange { offset })?;
        let redist = self
            .redists
            .get(vcpu.index())
            .ok_or(AccessError::OutOfRange { offset })?;
        redist.read(in_frame, size).map_err(|e| rebase(e, offset))
    }

    /// Emulates a guest write at `offset` in the partition's GICR region; returns the vCPU whose
    /// redistributor was written and the actions (all about that vCPU's SGIs/PPIs).
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
    ) -> Result<(VcpuId, Actions), AccessError> {
        let (vcpu, in_frame) =
            frame_for(offset, self.redists.len()).ok_or(AccessError::OutOfRange { offset })?;
        let redist = self
            .redists
            .get_mut(vcpu.index())
            .ok_or(AccessError::OutOfRange { offset })?;
        let actions = redist
            .write(in_frame, size, value)
            .map_err(|e| rebase(e, offset))?;
        Ok((vcpu, actions))
    }
}

/// Reports an error with the region offset rather than the frame-relative one.
fn rebase(error: AccessError, offset: u64) -> AccessError {
    match error {
        AccessError::BadSize { size, .. } => AccessError::BadSize { offset, size },
        AccessError::Misaligned { size, .. } => AccessError::Misaligned { offset, size },
        AccessError::OutOfRange { .. } => AccessError::OutOfRange { offset },
        AccessError::UnknownRegister { .. } => AccessError::UnknownRegister { offset },
    }
}

#[cfg(test)]
mod tests {
    use super::super::VgicAction;
    use super::*;
    use alloc::vec;

    fn acts(a: &Actions) -> Vec<VgicAction> {
        a.as_slice().to_vec()
    }

    #[test]
    fn frame_decode() {
        assert_eq!(frame_for(0, 2), Some((VcpuId(0), 0)));
        assert_eq!(frame_for(0x1_0080, 2), Some((VcpuId(0), 0x1_0080)));
        assert_eq!(frame_for(0x2_0014, 2), Some((VcpuId(1), 0x14)));
        assert_eq!(frame_for(0x3_ffff, 2), Some((VcpuId(1), 0x1_ffff)));
        assert_eq!(frame_for(0x4_0000, 2), None);
        assert_eq!(frame_for(u64::MAX, 256), None);
        assert_eq!(frame_for(0, 0), None);
    }

    #[test]
    fn constructor_validates() {
        assert_eq!(
            VirtualRedistributor::new(VcpuId(0), 0).unwrap_err(),
            ConfigError::NoVcpus
        );
        assert!(VirtualRedistributor::new(VcpuId(2), 2).is_err());
        assert!(VirtualRedistributor::new(VcpuId(usize::MAX), 2).is_err());
        assert!(RedistributorRegion::new(0).is_err());
        assert!(RedistributorRegion::new(257).is_err());
        assert_eq!(RedistributorRegion::new(3).unwrap().size(), 0x6_0000);
    }

    #[test]
    fn typer_and_last_bit() {
        let region = RedistributorRegion::new(3).unwrap();
        for vcpu in 0..3u64 {
            let base = vcpu * GICR_STRIDE;
            let typer = region.read(base + 8, 8).unwrap();
            assert_eq!(typer >> 32, vcpu, "Affinity_Value: Aff0 = index");
            assert_eq!((typer >> 8) & 0xffff, vcpu, "Processor_Number");
            assert_eq!(typer & TYPER_LAST != 0, vcpu == 2, "Last only on the last");
            assert_eq!(typer & 0b1110_1111, 0, "no LPIs, no DPGS");
            assert_eq!((typer >> 27) & 0x1f, 0, "PPInum");
            // 32-bit halves.
            assert_eq!(region.read(base + 8, 4).unwrap(), typer & 0xffff_ffff);
            assert_eq!(region.read(base + 0xc, 4).unwrap(), typer >> 32);
        }
        let single = RedistributorRegion::new(1).unwrap();
        assert_ne!(single.read(8, 8).unwrap() & TYPER_LAST, 0);
        // Read-only.
        let mut region = region;
        assert!(region.write(8, 8, 0).unwrap().1.is_empty());
        assert_eq!(
            region.read(8, 8).unwrap(),
            region.get(VcpuId(0)).unwrap().typer()
        );
        assert!(matches!(
            region.read(0xc, 8),
            Err(AccessError::Misaligned { .. })
        ));
        assert!(matches!(
            region.read(0xc, 1),
            Err(AccessError::BadSize { .. })
        ));
    }

    #[test]
    fn id_ctlr_iidr() {
        let mut r = VirtualRedistributor::new(VcpuId(0), 1).unwrap();
        assert_eq!((r.read(0xffe8, 4).unwrap() >> 4) & 0xf, 3);
        assert_eq!(r.read(0xffd0, 4).unwrap(), 0);
        assert_eq!(r.read(4, 4).unwrap(), u64::from(IIDR_VALUE));
        assert!(r.write(0, 4, 0xffff_ffff).unwrap().is_empty());
        assert_eq!(r.read(0, 4).unwrap(), 0, "CTLR: no LPIs, RWP clear");
        for (off, size) in [(0x10, 4), (0x70, 8), (0x78, 4), (0xc0, 4), (0x1_0d00, 4)] {
            r.write(off, size, u64::MAX).unwrap();
            assert_eq!(r.read(off, size).unwrap(), 0, "{off:#x}");
        }
    }

    #[test]
    fn waker_handshake() {
        let mut region = RedistributorRegion::new(2).unwrap();
        let waker = GICR_STRIDE + 0x14;
        assert_eq!(region.read(waker, 4).unwrap(), 0b110, "resets asleep");
        assert!(!region.get(VcpuId(1)).unwrap().is_awake());
        // Linux: clear ProcessorSleep, then poll until ChildrenAsleep reads 0.
        let v = region.read(waker, 4).unwrap() & !u64::from(WAKER_PROCESSOR_SLEEP);
        let (vcpu, actions) = region.write(waker, 4, v).unwrap();
        assert_eq!(vcpu, VcpuId(1));
        assert!(actions.is_empty());
        assert_eq!(
            region.read(waker, 4).unwrap() & u64::from(WAKER_CHILDREN_ASLEEP),
            0
        );
        assert!(region.get(VcpuId(1)).unwrap().is_awake());
        assert!(!region.get(VcpuId(0)).unwrap().is_awake(), "per vCPU");
        // And back to sleep.
        region
            .write(waker, 4, u64::from(WAKER_PROCESSOR_SLEEP))
            .unwrap();
        assert_eq!(region.read(waker, 4).unwrap(), 0b110);
        // Bit 0 and others are not stored.
        region.write(waker, 4, 0xffff_fffd).unwrap();
        assert_eq!(region.read(waker, 4).unwrap(), 0);
    }

    #[test]
    fn sgi_ppi_enable_pending_active_group() {
        let mut region = RedistributorRegion::new(2).unwrap();
        let sgi = GICR_STRIDE + 0x1_0000; // vCPU 1's SGI_base
                                          // Linux: disable PPIs, enable SGIs.
        let (_, a) = region.write(sgi + 0x180, 4, 0xffff_0000).unwrap();
        assert_eq!(a.len(), 16);
        let (_, a) = region.write(sgi + 0x100, 4, 0x0000_ffff).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(
            a.as_slice()[0],
            VgicAction::Enable {
                intid: 0,
                enable: true
            }
        );
        // Enable the virtual timer.
        let (_, a) = region.write(sgi + 0x100, 4, 1 << 27).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Enable {
                intid: 27,
                enable: true
            }]
        );
        assert_eq!(region.read(sgi + 0x100, 4).unwrap(), 0x0800_ffff);
        assert_eq!(region.read(sgi + 0x180, 4).unwrap(), 0x0800_ffff);
        let r1 = region.get(VcpuId(1)).unwrap();
        assert!(r1.is_enabled(27) && r1.is_enabled(3) && !r1.is_enabled(26));
        assert!(!r1.is_enabled(32) && !r1.is_enabled(u32::MAX));
        assert_eq!(region.read(0x1_0100, 4).unwrap(), 0, "vCPU 0 unaffected");
        let (_, a) = region.write(sgi + 0x180, 4, 1 << 27).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Enable {
                intid: 27,
                enable: false
            }]
        );

        // Group: resets all Group 1.
        assert_eq!(region.read(sgi + 0x80, 4).unwrap(), 0xffff_ffff);
        region.write(sgi + 0x80, 4, 0x1).unwrap();
        assert_eq!(region.read(sgi + 0x80, 4).unwrap(), 0x1);

        let (_, a) = region.write(sgi + 0x200, 4, 1 << 5).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::SetPending { intid: 5 }]);
        assert_eq!(region.read(sgi + 0x280, 4).unwrap(), 1 << 5);
        let (_, a) = region.write(sgi + 0x280, 4, 1 << 5).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::ClearPending { intid: 5 }]);
        assert_eq!(region.read(sgi + 0x200, 4).unwrap(), 0);

        let (_, a) = region.write(sgi + 0x300, 4, 1 << 27).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::SetActive { intid: 27 }]);
        assert_eq!(region.read(sgi + 0x380, 4).unwrap(), 1 << 27);
        let (_, a) = region.write(sgi + 0x380, 4, u64::MAX).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(region.read(sgi + 0x300, 4).unwrap(), 0);
    }

    #[test]
    fn priorities() {
        let mut r = VirtualRedistributor::new(VcpuId(0), 1).unwrap();
        // PPI 27 is byte 3 of IPRIORITYR6 (0x10418).
        let a = r.write(0x1_041b, 1, 0xa0).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::SetPriority {
                intid: 27,
                prio: 0xa0
            }]
        );
        assert_eq!(r.read(0x1_0418, 4).unwrap(), 0xa000_0000);
        assert_eq!(r.read(0x1_041b, 1).unwrap(), 0xa0);
        assert_eq!(r.priority(27), Some(0xa0));
        let a = r.write(0x1_0400, 4, 0x0403_0201).unwrap();
        assert_eq!(a.len(), 4);
        for intid in 0..4u32 {
            assert_eq!(r.priority(intid), Some(intid as u8 + 1));
        }
        assert_eq!(r.read(0x1_0400, 4).unwrap(), 0x0403_0201);
        assert_eq!(r.priority(32), None);
        // Past IPRIORITYR7.
        assert!(matches!(
            r.read(0x1_0420, 4),
            Err(AccessError::UnknownRegister { .. })
        ));
        assert!(r.virq(27, Some(27)).is_none(), "disabled");
        r.write(0x1_0100, 4, 1 << 27).unwrap();
        assert_eq!(
            r.virq(27, Some(27)),
            Some(VirtualIrq {
                intid: 27,
                priority: 0xa0,
                hw: Some(27),
                source: None,
            })
        );
        assert!(r.virq(33, None).is_none());
    }

    #[test]
    fn icfgr() {
        let mut r = VirtualRedistributor::new(VcpuId(0), 1).unwrap();
        assert_eq!(r.read(0x1_0c00, 4).unwrap(), 0xaaaa_aaaa);
        assert!(r.write(0x1_0c00, 4, 0).unwrap().is_empty());
        assert_eq!(
            r.read(0x1_0c00, 4).unwrap(),
            0xaaaa_aaaa,
            "SGIs always edge"
        );
        assert_eq!(r.read(0x1_0c04, 4).unwrap(), 0, "PPIs reset level");
        // PPI 27 = field 11 of ICFGR1.
        let a = r.write(0x1_0c04, 4, 2 << 22).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.as_slice().contains(&VgicAction::SetTrigger {
            intid: 27,
            edge: true
        }));
        assert!(a.as_slice().contains(&VgicAction::SetTrigger {
            intid: 26,
            edge: false
        }));
        assert_eq!(r.read(0x1_0c04, 4).unwrap(), 2 << 22);
        assert_eq!(r.is_edge(27), Some(true));
        r.write(0x1_0c04, 4, 0xffff_ffff).unwrap();
        assert_eq!(r.read(0x1_0c04, 4).unwrap(), 0xaaaa_aaaa, "even bits RES0");
    }

    #[test]
    fn bad_accesses() {
        let mut region = RedistributorRegion::new(2).unwrap();
        assert_eq!(
            region.read(0x4_0000, 4),
            Err(AccessError::OutOfRange { offset: 0x4_0000 })
        );
        assert_eq!(
            region.write(u64::MAX - 3, 4, 0),
            Err(AccessError::OutOfRange {
                offset: u64::MAX - 3
            })
        );
        assert_eq!(
            region.read(0x2_0014, 2),
            Err(AccessError::BadSize {
                offset: 0x2_0014,
                size: 2
            })
        );
        assert_eq!(
            region.read(0x2_0010, 8),
            Err(AccessError::BadSize {
                offset: 0x2_0010,
                size: 8
            })
        );
        assert_eq!(
            region.read(0x2_0015, 1),
            Err(AccessError::BadSize {
                offset: 0x2_0015,
                size: 1
            })
        );
        assert_eq!(
            region.read(0x2_0016, 4),
            Err(AccessError::Misaligned {
                offset: 0x2_0016,
                size: 4
            })
        );
        for off in [
            0x20, 0x100, 0xffcc, 0x1_0000, 0x1_0084, 0x1_0104, 0x1_0c08, 0x1_ffe8,
        ] {
            assert_eq!(
                region.read(off, 4),
                Err(AccessError::UnknownRegister { offset: off })
            );
            assert_eq!(
                region.write(GICR_STRIDE + off, 4, 1),
                Err(AccessError::UnknownRegister {
                    offset: GICR_STRIDE + off
                })
            );
        }
    }

    #[test]
    fn no_panic_on_any_offset() {
        let mut region = RedistributorRegion::new(2).unwrap();
        for off in (0..0x4_0010u64).step_by(4) {
            for size in [0u8, 1, 2, 4, 8, 16] {
                let _ = region.read(off, size);
                let _ = region.write(off, size, u64::MAX);
            }
        }
    }
}
