//! The virtual GICv3 distributor (GICD page, 64 KiB) of one partition.
//!
//! Emulated registers (offsets within the page):
//!
//! | Offset | Register | Access | Emulation |
//! |---|---|---|---|
//! | 0x0000 | `GICD_CTLR` | 32 | Non-secure view, `DS` = 0: `EnableGrp1` (bit 0) and `EnableGrp1A` (bit 1) stored; `ARE_NS` (bit 4) reads 1, writes ignored; `RWP` (bit 31) reads 0 (writes take effect at once) |
//! | 0x0004 | `GICD_TYPER` | 32 | read-only, see [`VirtualDistributor::typer`] |
//! | 0x0008 | `GICD_IIDR` | 32 | read-only [`IIDR_VALUE`] |
//! | 0x000C, 0x0010 | `GICD_TYPER2`, `GICD_STATUSR` | 32 | RAZ/WI |
//! | 0x0080.. | `GICD_IGROUPR<n>` | 32 | stored per owned SPI, no action |
//! | 0x0100.., 0x0180.. | `GICD_IS/ICENABLER<n>` | 32 | [`VgicAction::Enable`] per written 1 |
//! | 0x0200.., 0x0280.. | `GICD_IS/ICPENDR<n>` | 32 | `SetPending`/`ClearPending`; reads return the latch |
//! | 0x0300.., 0x0380.. | `GICD_IS/ICACTIVER<n>` | 32 | `SetActive`/`ClearActive`; reads return the latch |
//! | 0x0400..0x07FF | `GICD_IPRIORITYR<n>` | 8/32 | byte per owned SPI, `SetPriority` |
//! | 0x0800..0x0BFF | `GICD_ITARGETSR<n>` | 8/32 | RAZ/WI (affinity routing is on) |
//! | 0x0C00..0x0CFF | `GICD_ICFGR<n>` | 32 | odd bits stored, `SetTrigger` per owned SPI |
//! | 0x0D00..0x0D7F | `GICD_IGRPMODR<n>` | 32 | RAZ/WI (Secure-only setting, invisible to the Non-secure view) |
//! | 0x0E00..0x0EFF | `GICD_NSACR<n>` | 32 | RAZ/WI |
//! | 0x0F00 | `GICD_SGIR` | 32 | RAZ/WI (legacy, `ARE` = 1) |
//! | 0x0F10.., 0x0F20.. | `GICD_C/SPENDSGIR<n>` | 8/32 | RAZ/WI (legacy, `ARE` = 1) |
//! | 0x0F80..0x0FFF | `GICD_INMIR<n>` | 32 | RAZ/WI (no NMIs) |
//! | 0x6100..0x7FDF | `GICD_IROUTER<n>` (n = 32..1019) | 64 or 32 per half | stored per owned SPI, [`VgicAction::Route`] |
//! | 0xFFD0..0xFFFF | ID registers | 32 | `GICD_PIDR2` (0xFFE8) = [`PIDR2_VALUE`], others 0; read-only |
//!
//! Register bits for INTIDs 0..31 (SGIs/PPIs) are RAZ/WI: with affinity routing they live in the
//! redistributors. So are the bits of every SPI the partition does not own. Any other offset is
//! [`AccessError::UnknownRegister`] (notably the `SETSPI`/`CLRSPI` registers, since `MBIS` = 0,
//! and the extended-SPI ranges at 0x1000..0x5FFF and 0x8000.., since `ESPI` = 0).
//!
//! Pending and active bits are latches of what the guest wrote; the live state of a passthrough
//! interrupt is in the physical GIC and the list registers.

use alloc::vec::Vec;

use bulkhead_config::guest_view::vcpu_of_mpidr;
use bulkhead_config::VcpuId;

use super::regs::{
    decode_access, read_bits, read_cfg, read_priority, write_bits, write_cfg, write_priority,
    BitReg, IrqBank, IrqCfg, Width,
};
use super::{
    AccessError, Actions, ConfigError, VgicAction, GICD_SIZE, IIDR_VALUE, MAX_SPI_INTID, MAX_VCPUS,
    PIDR2_VALUE, SPI_BASE,
};

const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_TYPER2: u64 = 0x000c;
const GICD_STATUSR: u64 = 0x0010;
const GICD_BITS_START: u64 = 0x0080;
const GICD_BITS_END: u64 = 0x0400;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ITARGETSR: u64 = 0x0800;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IGRPMODR: u64 = 0x0d00;
const GICD_IGRPMODR_END: u64 = 0x0d80;
const GICD_NSACR: u64 = 0x0e00;
const GICD_SGIR: u64 = 0x0f00;
const GICD_CPENDSGIR: u64 = 0x0f10;
const GICD_SPENDSGIR_END: u64 = 0x0f30;
const GICD_INMIR: u64 = 0x0f80;
const GICD_INMIR_END: u64 = 0x1000;
const GICD_IROUTER: u64 = 0x6000;
const GICD_ID_REGS: u64 = 0xffd0;
const GICD_PIDR2: u64 = 0xffe8;

/// `GICD_CTLR` bits.
pub const CTLR_ENABLE_GRP1: u32 = 1 << 0;
/// `GICD_CTLR.EnableGrp1A`: the Non-secure Group 1 enable.
pub const CTLR_ENABLE_GRP1A: u32 = 1 << 1;
/// `GICD_CTLR.ARE_NS`: always 1.
pub const CTLR_ARE_NS: u32 = 1 << 4;
/// `GICD_CTLR.RWP`: always 0.
pub const CTLR_RWP: u32 = 1 << 31;

/// `GICD_IROUTER.IRM`: 1-of-N routing.
pub const IROUTER_IRM: u64 = 1 << 31;
/// Implemented `GICD_IROUTER` bits: Aff0..Aff2 (23:0), IRM (31), Aff3 (39:32).
pub const IROUTER_MASK: u64 = 0xff_0000_0000 | IROUTER_IRM | 0xff_ffff;

/// Translates a `GICD_IROUTER` value to a vCPU index of a partition with `vcpu_count` vCPUs.
///
/// The guest's affinity is `0.0.0.n` for vCPU `n`. `IRM` = 1 (1-of-N, which the vGIC does not
/// implement: `GICD_TYPER.No1N` = 1) and affinities naming no vCPU of the partition (non-zero
/// Aff1..Aff3, or Aff0 >= `vcpu_count`) route to vCPU 0, so the interrupt stays deliverable.
pub fn irouter_to_vcpu(irouter: u64, vcpu_count: usize) -> VcpuId {
    if irouter & IROUTER_IRM != 0 {
        return VcpuId(0);
    }
    vcpu_of_mpidr(irouter, vcpu_count).unwrap_or(VcpuId(0))
}

#[derive(Clone, Copy, Debug)]
struct SpiState {
    cfg: IrqCfg,
    irouter: u64,
    /// `GICD_ITARGETSR` byte, for a GICv2 guest ([`super::distributor_v2`]): bit `n` is vCPU
    /// `n`'s CPU interface.
    targets: u8,
}

/// The guest-visible distributor of one partition. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct VirtualDistributor {
    ctlr: u32,
    vcpu_count: usize,
    /// `GICD_TYPER.ITLinesNumber`.
    it_lines: u32,
    /// Index `intid - 32`; `None` for SPIs the partition does not own.
    spis: Vec<Option<SpiState>>,
}

fn spi_index(intid: u32) -> Option<usize> {
    intid.checked_sub(SPI_BASE).map(|i| i as usize)
}

impl IrqBank for Vec<Option<SpiState>> {
    fn cfg(&self, intid: u32) -> Option<&IrqCfg> {
        self.get(spi_index(intid)?)?.as_ref().map(|s| &s.cfg)
    }

    fn cfg_mut(&mut self, intid: u32) -> Option<&mut IrqCfg> {
        self.get_mut(spi_index(intid)?)?
            .as_mut()
            .map(|s| &mut s.cfg)
    }
}

/// A decoded distributor register.
#[derive(Clone, Copy, Debug)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    /// Reads as zero, writes ignored.
    RazWi,
    Bits(BitReg, u32),
    /// First INTID of the addressed byte(s).
    Priority(u32),
    Cfg(u32),
    /// INTID, and whether the access addresses the upper half.
    Router(u32, bool),
    /// Read-only ID register value.
    Id(u32),
}

impl VirtualDistributor {
    /// A distributor for a partition owning `owned_spis` (INTIDs) with `vcpu_count` vCPUs, on a
    /// physical GIC whose highest SPI is `max_spi_intid`. Duplicates in `owned_spis` are fine.
    ///
    /// Owned SPIs start disabled, pending/active clear, Group 1, level-sensitive, priority 0 and
    /// routed to vCPU 0 (`GICD_IROUTER` = 0).
    pub fn new(
        owned_spis: &[u32],
        vcpu_count: usize,
        max_spi_intid: u32,
    ) -> Result<Self, ConfigError> {
        if vcpu_count == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if vcpu_count > MAX_VCPUS {
            return Err(ConfigError::TooManyVcpus(vcpu_count));
        }
        let limit = max_spi_intid.min(MAX_SPI_INTID);
        let mut highest = None;
        for &intid in owned_spis {
            if !(SPI_BASE..=limit).contains(&intid) {
                return Err(ConfigError::InvalidSpi(intid));
            }
            highest = highest.max(Some(intid));
        }
        let mut spis = Vec::new();
        if let Some(highest) = highest {
            spis.resize((highest - SPI_BASE + 1) as usize, None);
            for &intid in owned_spis {
                if let Some(slot) = spis.get_mut((intid - SPI_BASE) as usize) {
                    *slot = Some(SpiState {
                        cfg: IrqCfg::reset(false),
                        irouter: 0,
                        targets: 1,
                    });
                }
            }
        }
        // INTIDs up to 32 * (ITLinesNumber + 1) - 1 exist; cover the highest owned SPI.
        let it_lines = highest.map_or(0, |h| (h + 1).div_ceil(32) - 1);
        Ok(Self {
            ctlr: 0,
            vcpu_count,
            it_lines,
            spis,
        })
    }

    /// Number of vCPUs of the partition.
    pub fn vcpu_count(&self) -> usize {
        self.vcpu_count
    }

    /// The `GICD_TYPER` value:
    ///
    /// - `ITLinesNumber` (4:0) covers the highest owned SPI (0 if none);
    /// - `CPUNumber` (7:5) = min(vCPUs, 8) - 1 (only meaningful for legacy routing);
    /// - `SecurityExtn` (10) = 1: the guest sees the Non-secure side of a GIC with two Security
    ///   states, consistent with `GICD_CTLR.DS` = 0;
    /// - `IDbits` (23:19) = 0b1001: 10 INTID bits (no LPIs, so INTIDs < 1024);
    /// - `No1N` (25) = 1: 1-of-N routing is not offered (see [`irouter_to_vcpu`]);
    /// - `RSS` (26) = 1 if the partition has more than 16 vCPUs (SGI targets with Aff0 > 15);
    /// - `ESPI`, `NMI`, `num_LPIs`, `MBIS`, `LPIS`, `DVIS`, `A3V` = 0.
    pub fn typer(&self) -> u32 {
        let cpu_number = (self.vcpu_count.clamp(1, 8) - 1) as u32;
        let rss = u32::from(self.vcpu_count > 16);
        self.it_lines | (cpu_number << 5) | (1 << 10) | (0b1001 << 19) | (1 << 25) | (rss << 26)
    }

    /// Whether the partition owns SPI `intid`.
    #[cfg(test)]
    pub fn owns(&self, intid: u32) -> bool {
        self.spis.cfg(intid).is_some()
    }

    /// The owned SPIs, ascending.
    pub fn owned_spis(&self) -> impl Iterator<Item = u32> + '_ {
        self.spis
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u32 + SPI_BASE)
    }

    /// Whether the guest enabled Group 1 interrupts in `GICD_CTLR` (`EnableGrp1A`, or bit 0 which
    /// Linux sets alongside it). Injection of SPIs should wait while this is clear.
    pub fn group1_enabled(&self) -> bool {
        self.ctlr & (CTLR_ENABLE_GRP1 | CTLR_ENABLE_GRP1A) != 0
    }

    /// Whether the guest enabled owned SPI `intid` (false if not owned).
    pub fn is_enabled(&self, intid: u32) -> bool {
        self.spis.cfg(intid).is_some_and(|c| c.enabled)
    }

    /// The guest's priority for owned SPI `intid`.
    pub fn priority(&self, intid: u32) -> Option<u8> {
        self.spis.cfg(intid).map(|c| c.priority)
    }

    /// Whether owned SPI `intid` is configured edge-triggered.
    #[cfg(test)]
    pub fn is_edge(&self, intid: u32) -> Option<bool> {
        self.spis.cfg(intid).map(|c| c.edge)
    }

    /// The vCPU owned SPI `intid` is routed to.
    pub fn route(&self, intid: u32) -> Option<VcpuId> {
        let state = self.spis.get(spi_index(intid)?)?.as_ref()?;
        Some(irouter_to_vcpu(state.irouter, self.vcpu_count))
    }

    /// GICv2: the `GICD_ITARGETSR` byte of owned SPI `intid` (`None` if not owned). Resets to
    /// vCPU 0's interface, where the SPI is routed.
    pub fn targets(&self, intid: u32) -> Option<u8> {
        Some(self.spis.get(spi_index(intid)?)?.as_ref()?.targets)
    }

    /// GICv2: sets the `GICD_ITARGETSR` byte of owned SPI `intid` (nothing if not owned), and
    /// routes it to the lowest-numbered vCPU it names, vCPU 0 if it names none of the
    /// partition's (1-of-N delivery to several is not offered: one target takes it). Returns
    /// the routing.
    pub fn set_targets(&mut self, intid: u32, targets: u8) -> Option<VgicAction> {
        let vcpu_count = self.vcpu_count;
        let state = self.spis.get_mut(spi_index(intid)?)?.as_mut()?;
        state.targets = targets;
        let vcpu = (0..vcpu_count.min(8))
            .find(|&n| targets & (1 << n) != 0)
            .unwrap_or(0);
        state.irouter = vcpu as u64;
        Some(VgicAction::Route {
            intid,
            vcpu: VcpuId(vcpu),
        })
    }

    fn decode(offset: u64) -> Option<(Reg, Width)> {
        let word = Width::Word;
        let reg = match offset {
            GICD_CTLR => (Reg::Ctlr, word),
            GICD_TYPER => (Reg::Typer, word),
            GICD_IIDR => (Reg::Iidr, word),
            GICD_TYPER2 | GICD_STATUSR => (Reg::RazWi, word),
            GICD_BITS_START..GICD_BITS_END => {
                let reg = BitReg::from_block(offset / 0x80)?;
                let first = ((offset % 0x80) / 4 * 32) as u32;
                (Reg::Bits(reg, first), word)
            }
            GICD_IPRIORITYR..GICD_ITARGETSR => (
                Reg::Priority((offset - GICD_IPRIORITYR) as u32),
                Width::ByteOrWord,
            ),
            GICD_ITARGETSR..GICD_ICFGR => (Reg::RazWi, Width::ByteOrWord),
            GICD_ICFGR..GICD_IGRPMODR => (Reg::Cfg(((offset - GICD_ICFGR) / 4 * 16) as u32), word),
            GICD_IGRPMODR..GICD_IGRPMODR_END | GICD_NSACR..GICD_SGIR | GICD_SGIR => {
                (Reg::RazWi, word)
            }
            GICD_CPENDSGIR..GICD_SPENDSGIR_END => (Reg::RazWi, Width::ByteOrWord),
            GICD_INMIR..GICD_INMIR_END => (Reg::RazWi, word),
            GICD_IROUTER..GICD_ID_REGS => {
                let intid = ((offset - GICD_IROUTER) / 8) as u32;
                if !(SPI_BASE..=MAX_SPI_INTID).contains(&intid) {
                    return None;
                }
                (Reg::Router(intid, !offset.is_multiple_of(8)), Width::Dword)
            }
            GICD_PIDR2 => (Reg::Id(PIDR2_VALUE), word),
            GICD_ID_REGS..GICD_SIZE => (Reg::Id(0), word),
            _ => return None,
        };
        Some(reg)
    }

    /// Decodes and validates an access.
    fn lookup(offset: u64, size: u8) -> Result<Reg, AccessError> {
        let reg = decode_access(offset, size, GICD_SIZE, Self::decode)?;
        Ok(match reg {
            Reg::Priority(first) => Reg::Priority(first + (offset & 3) as u32),
            reg => reg,
        })
    }

    /// Emulates a guest read of `size` bytes at `offset` in the GICD page.
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, AccessError> {
        let reg = Self::lookup(offset, size)?;
        Ok(match reg {
            Reg::Ctlr => {
                u64::from((self.ctlr & (CTLR_ENABLE_GRP1 | CTLR_ENABLE_GRP1A)) | CTLR_ARE_NS)
            }
            Reg::Typer => u64::from(self.typer()),
            Reg::Iidr => u64::from(IIDR_VALUE),
            Reg::RazWi => 0,
            Reg::Bits(reg, first) => u64::from(read_bits(&self.spis, reg, first)),
            Reg::Priority(first) => read_priority(&self.spis, first, u32::from(size)),
            Reg::Cfg(first) => u64::from(read_cfg(&self.spis, first)),
            Reg::Router(intid, high) => {
                let value = spi_index(intid)
                    .and_then(|i| self.spis.get(i))
                    .and_then(|s| s.as_ref())
                    .map_or(0, |s| s.irouter);
                match (size, high) {
                    (8, _) => value,
                    (_, false) => value & 0xffff_ffff,
                    (_, true) => value >> 32,
                }
            }
            Reg::Id(value) => u64::from(value),
        })
    }

    /// Emulates a guest write of `size` bytes of `value` at `offset` in the GICD page, returning
    /// what the glue must apply to the physical GIC.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<Actions, AccessError> {
        let reg = Self::lookup(offset, size)?;
        let mut actions = Actions::new();
        let word = value as u32;
        match reg {
            Reg::Ctlr => self.ctlr = word & (CTLR_ENABLE_GRP1 | CTLR_ENABLE_GRP1A),
            Reg::Typer | Reg::Iidr | Reg::RazWi | Reg::Id(_) => {}
            Reg::Bits(reg, first) => write_bits(&mut self.spis, reg, first, word, &mut actions),
            Reg::Priority(first) => {
                write_priority(&mut self.spis, first, u32::from(size), value, &mut actions)
            }
            Reg::Cfg(first) => write_cfg(&mut self.spis, first, word, &mut actions),
            Reg::Router(intid, high) => {
                let vcpu_count = self.vcpu_count;
                let state = spi_index(intid)
                    .and_then(|i| self.spis.get_mut(i))
                    .and_then(|s| s.as_mut());
                if let Some(state) = state {
                    let new = match (size, high) {
                        (8, _) => value,
                        (_, false) => (state.irouter & !0xffff_ffff) | (value & 0xffff_ffff),
                        (_, true) => (state.irouter & 0xffff_ffff) | ((value & 0xffff_ffff) << 32),
                    };
                    state.irouter = new & IROUTER_MASK;
                    let vcpu = irouter_to_vcpu(state.irouter, vcpu_count);
                    actions.push(VgicAction::Route { intid, vcpu });
                }
            }
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const UART_SPI: u32 = 33;
    const NET_SPI: u32 = 79;

    fn dist() -> VirtualDistributor {
        VirtualDistributor::new(&[UART_SPI, NET_SPI], 4, 987).unwrap()
    }

    fn acts(a: &Actions) -> Vec<VgicAction> {
        a.as_slice().to_vec()
    }

    #[test]
    fn constructor_validates() {
        assert_eq!(
            VirtualDistributor::new(&[40], 0, 987).unwrap_err(),
            ConfigError::NoVcpus
        );
        assert_eq!(
            VirtualDistributor::new(&[40], 257, 987).unwrap_err(),
            ConfigError::TooManyVcpus(257)
        );
        assert_eq!(
            VirtualDistributor::new(&[31], 1, 987).unwrap_err(),
            ConfigError::InvalidSpi(31)
        );
        assert_eq!(
            VirtualDistributor::new(&[100], 1, 95).unwrap_err(),
            ConfigError::InvalidSpi(100)
        );
        assert_eq!(
            VirtualDistributor::new(&[1020], 1, 2000).unwrap_err(),
            ConfigError::InvalidSpi(1020)
        );
        let d = VirtualDistributor::new(&[40, 40, 35], 1, 987).unwrap();
        assert_eq!(d.owned_spis().collect::<Vec<_>>(), vec![35, 40]);
        assert!(d.owns(40) && !d.owns(36) && !d.owns(2000) && !d.owns(0));
    }

    #[test]
    fn ctlr() {
        let mut d = dist();
        assert_eq!(d.read(0, 4).unwrap(), u64::from(CTLR_ARE_NS));
        assert!(!d.group1_enabled());
        // Linux: ARE_NS | EnableGrp1A | EnableGrp1; RWP and other bits never stick.
        let a = d.write(0, 4, 0xffff_ffff).unwrap();
        assert!(a.is_empty());
        assert_eq!(d.read(0, 4).unwrap(), 0x13);
        assert!(d.group1_enabled());
        d.write(0, 4, 0).unwrap();
        assert_eq!(d.read(0, 4).unwrap(), 0x10, "ARE_NS stays 1, RWP 0");
        assert!(!d.group1_enabled());
    }

    #[test]
    fn typer_iidr_pidr2() {
        let d = dist();
        let typer = d.read(4, 4).unwrap() as u32;
        // Highest owned SPI 79 -> INTIDs up to 95 -> ITLinesNumber 2.
        assert_eq!(typer & 0x1f, 2);
        assert_eq!((typer >> 5) & 7, 3, "CPUNumber = 4 - 1");
        assert_eq!((typer >> 19) & 0x1f, 0b1001, "IDbits");
        assert_eq!((typer >> 10) & 1, 1, "SecurityExtn");
        assert_eq!((typer >> 25) & 1, 1, "No1N");
        assert_eq!((typer >> 26) & 1, 0, "RSS");
        assert_eq!(
            typer & ((1 << 8) | (1 << 9) | (0x1f << 11) | (7 << 16) | (1 << 24)),
            0
        );
        assert_eq!(d.read(8, 4).unwrap(), u64::from(IIDR_VALUE));
        assert_eq!(
            (d.read(0xffe8, 4).unwrap() >> 4) & 0xf,
            3,
            "ArchRev = GICv3"
        );
        assert_eq!(d.read(0xffe0, 4).unwrap(), 0);
        assert_eq!(d.read(0xfffc, 4).unwrap(), 0);
        assert_eq!(d.read(0xc, 4).unwrap(), 0, "TYPER2");

        // Boundaries of ITLinesNumber, CPUNumber saturation and RSS.
        let d = VirtualDistributor::new(&[63], 1, 987).unwrap();
        assert_eq!(d.typer() & 0x1f, 1);
        let d = VirtualDistributor::new(&[64], 20, 987).unwrap();
        assert_eq!(d.typer() & 0x1f, 2);
        assert_eq!((d.typer() >> 5) & 7, 7);
        assert_eq!((d.typer() >> 26) & 1, 1);
        let d = VirtualDistributor::new(&[1019], 1, 1019).unwrap();
        assert_eq!(d.typer() & 0x1f, 31);
        let d = VirtualDistributor::new(&[], 1, 1019).unwrap();
        assert_eq!(d.typer() & 0x1f, 0);
        assert_eq!(d.read(0x6100, 8).unwrap(), 0);
        // Writes to read-only registers are ignored.
        let mut d = dist();
        assert!(d.write(4, 4, 0).unwrap().is_empty());
        assert_eq!(d.read(4, 4).unwrap() as u32, d.typer());
        d.write(0xffe8, 4, 0).unwrap();
        assert_eq!(d.read(0xffe8, 4).unwrap(), u64::from(PIDR2_VALUE));
    }

    #[test]
    fn enable_ownership_filtering() {
        let mut d = dist();
        // ISENABLER1 covers INTIDs 32..63: 33 owned, 34 not.
        let a = d.write(0x104, 4, (1 << 1) | (1 << 2)).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Enable {
                intid: UART_SPI,
                enable: true
            }]
        );
        assert_eq!(d.read(0x104, 4).unwrap(), 1 << 1);
        assert_eq!(
            d.read(0x184, 4).unwrap(),
            1 << 1,
            "ICENABLER reads the same"
        );
        assert!(d.is_enabled(UART_SPI) && !d.is_enabled(34));

        // A write naming only a non-owned SPI: no action, reads 0.
        let a = d.write(0x104, 4, 1 << 2).unwrap();
        assert!(a.is_empty());
        assert_eq!(d.read(0x104, 4).unwrap() & (1 << 2), 0);

        // 79 = register 2, bit 15.
        let a = d.write(0x108, 4, 0xffff_ffff).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Enable {
                intid: NET_SPI,
                enable: true
            }]
        );
        assert_eq!(d.read(0x108, 4).unwrap(), 1 << 15);

        // Linux disables everything at probe: one action per owned SPI.
        let mut all = Vec::new();
        for reg in 1..32u64 {
            all.extend(acts(&d.write(0x180 + 4 * reg, 4, 0xffff_ffff).unwrap()));
        }
        assert_eq!(
            all,
            vec![
                VgicAction::Enable {
                    intid: UART_SPI,
                    enable: false
                },
                VgicAction::Enable {
                    intid: NET_SPI,
                    enable: false
                }
            ]
        );
        assert_eq!(d.read(0x104, 4).unwrap(), 0);
        assert_eq!(d.read(0x108, 4).unwrap(), 0);
        // Writing 0 bits does nothing.
        assert!(d.write(0x104, 4, 0).unwrap().is_empty());
    }

    #[test]
    fn sgi_ppi_bits_raz_wi() {
        let mut d = dist();
        for base in (0x80..0x400).step_by(0x80) {
            assert!(d.write(base, 4, 0xffff_ffff).unwrap().is_empty());
            assert_eq!(d.read(base, 4).unwrap(), 0, "offset {base:#x}");
        }
        assert!(d.write(0x400, 4, 0xffff_ffff).unwrap().is_empty());
        assert_eq!(d.read(0x400, 4).unwrap(), 0);
        assert!(d.write(0xc04, 4, 0xffff_ffff).unwrap().is_empty());
        assert_eq!(d.read(0xc04, 4).unwrap(), 0);
    }

    #[test]
    fn group_pending_active() {
        let mut d = dist();
        // IGROUPR resets to Group 1 for owned SPIs; stored, no action.
        assert_eq!(d.read(0x84, 4).unwrap(), 1 << 1);
        assert!(d.write(0x84, 4, 0).unwrap().is_empty());
        assert_eq!(d.read(0x84, 4).unwrap(), 0);
        assert!(d.write(0x84, 4, 0xffff_ffff).unwrap().is_empty());
        assert_eq!(d.read(0x84, 4).unwrap(), 1 << 1);

        let a = d.write(0x204, 4, 0xffff_ffff).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::SetPending { intid: UART_SPI }]);
        assert_eq!(d.read(0x204, 4).unwrap(), 1 << 1);
        assert_eq!(d.read(0x284, 4).unwrap(), 1 << 1);
        let a = d.write(0x284, 4, 1 << 1).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::ClearPending { intid: UART_SPI }]);
        assert_eq!(d.read(0x204, 4).unwrap(), 0);

        let a = d.write(0x308, 4, 1 << 15).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::SetActive { intid: NET_SPI }]);
        assert_eq!(d.read(0x388, 4).unwrap(), 1 << 15);
        let a = d.write(0x388, 4, 0xffff_ffff).unwrap();
        assert_eq!(acts(&a), vec![VgicAction::ClearActive { intid: NET_SPI }]);
        assert_eq!(d.read(0x308, 4).unwrap(), 0);
    }

    #[test]
    fn priority_byte_and_word() {
        let mut d = dist();
        // INTID 33 is byte 1 of IPRIORITYR8 (0x420).
        let a = d.write(0x421, 1, 0xa0).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::SetPriority {
                intid: UART_SPI,
                prio: 0xa0
            }]
        );
        assert_eq!(d.read(0x421, 1).unwrap(), 0xa0);
        assert_eq!(d.read(0x420, 4).unwrap(), 0xa000);
        assert_eq!(d.priority(UART_SPI), Some(0xa0));
        // A word write touches only the owned byte.
        let a = d.write(0x420, 4, 0x1122_3344).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::SetPriority {
                intid: UART_SPI,
                prio: 0x33
            }]
        );
        assert_eq!(d.read(0x420, 4).unwrap(), 0x3300);
        assert_eq!(d.read(0x422, 1).unwrap(), 0);
        assert!(d.write(0x422, 1, 0xff).unwrap().is_empty());
        // 79 = 0x400 + 79 = 0x44f, the top byte of the word at 0x44c.
        d.write(0x44f, 1, 0x80).unwrap();
        assert_eq!(d.read(0x44c, 4).unwrap(), 0x8000_0000);
        assert_eq!(d.priority(34), None);
    }

    #[test]
    fn icfgr() {
        let mut d = dist();
        // ICFGR2 covers 32..47; INTID 33 is field 1 (bits 3:2).
        assert_eq!(d.read(0xc08, 4).unwrap(), 0, "level by default");
        let a = d.write(0xc08, 4, 0xffff_ffff).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::SetTrigger {
                intid: UART_SPI,
                edge: true
            }]
        );
        assert_eq!(d.read(0xc08, 4).unwrap(), 0b1000);
        assert_eq!(d.is_edge(UART_SPI), Some(true));
        let a = d.write(0xc08, 4, 0).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::SetTrigger {
                intid: UART_SPI,
                edge: false
            }]
        );
        // ICFGR4 covers 64..79; 79 is field 15 (bits 31:30).
        d.write(0xc10, 4, 0x8000_0000).unwrap();
        assert_eq!(d.read(0xc10, 4).unwrap(), 0x8000_0000);
        assert_eq!(d.is_edge(NET_SPI), Some(true));
    }

    #[test]
    fn irouter_translation() {
        let mut d = dist();
        let off = 0x6000 + 8 * u64::from(NET_SPI);
        assert_eq!(d.route(NET_SPI), Some(VcpuId(0)));
        let a = d.write(off, 8, 2).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Route {
                intid: NET_SPI,
                vcpu: VcpuId(2)
            }]
        );
        assert_eq!(d.read(off, 8).unwrap(), 2);
        assert_eq!(d.route(NET_SPI), Some(VcpuId(2)));
        // Non-existent vCPU (Aff0 = 4 of 4 vCPUs) -> vCPU 0; read back as written.
        let a = d.write(off, 8, 4).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Route {
                intid: NET_SPI,
                vcpu: VcpuId(0)
            }]
        );
        assert_eq!(d.read(off, 8).unwrap(), 4);
        // Aff1 != 0 -> vCPU 0.
        d.write(off, 8, 0x101).unwrap();
        assert_eq!(d.route(NET_SPI), Some(VcpuId(0)));
        // Aff3 != 0 -> vCPU 0.
        d.write(off, 8, (1 << 32) | 3).unwrap();
        assert_eq!(d.route(NET_SPI), Some(VcpuId(0)));
        // IRM = 1 -> vCPU 0.
        d.write(off, 8, IROUTER_IRM | 3).unwrap();
        assert_eq!(d.route(NET_SPI), Some(VcpuId(0)));
        // Reserved bits are dropped.
        d.write(off, 8, u64::MAX).unwrap();
        assert_eq!(d.read(off, 8).unwrap(), IROUTER_MASK);
        // 32-bit halves.
        d.write(off, 8, 0).unwrap();
        let a = d.write(off, 4, 3).unwrap();
        assert_eq!(
            acts(&a),
            vec![VgicAction::Route {
                intid: NET_SPI,
                vcpu: VcpuId(3)
            }]
        );
        d.write(off + 4, 4, 0x12).unwrap();
        assert_eq!(d.read(off, 8).unwrap(), 0x12_0000_0003);
        assert_eq!(d.read(off, 4).unwrap(), 3);
        assert_eq!(d.read(off + 4, 4).unwrap(), 0x12);
        assert_eq!(d.route(NET_SPI), Some(VcpuId(0)));
        d.write(off + 4, 4, 0).unwrap();
        assert_eq!(d.route(NET_SPI), Some(VcpuId(3)));
        // Non-owned SPI: RAZ/WI, no action.
        let other = 0x6000 + 8 * 80;
        assert!(d.write(other, 8, 1).unwrap().is_empty());
        assert_eq!(d.read(other, 8).unwrap(), 0);
        assert_eq!(d.route(80), None);
        // IROUTER0..31 and 1020..1023 do not exist.
        assert!(matches!(
            d.read(0x6000, 8),
            Err(AccessError::UnknownRegister { .. })
        ));
        assert!(matches!(
            d.read(0x60f8, 8),
            Err(AccessError::UnknownRegister { .. })
        ));
        assert!(d.read(0x6000 + 8 * 1019, 8).is_ok());
        assert!(matches!(
            d.read(0x6000 + 8 * 1020, 8),
            Err(AccessError::UnknownRegister { .. })
        ));
        assert_eq!(irouter_to_vcpu(255, 256), VcpuId(255));
    }

    #[test]
    fn raz_wi_registers() {
        let mut d = dist();
        for (off, size) in [
            (0x10, 4),
            (0x800, 4),
            (0x821, 1),
            (0xd04, 4),
            (0xe08, 4),
            (0xf00, 4),
            (0xf10, 1),
            (0xf2c, 4),
            (0xf80, 4),
        ] {
            assert!(d.write(off, size, u64::MAX).unwrap().is_empty());
            assert_eq!(d.read(off, size).unwrap(), 0, "offset {off:#x}");
        }
    }

    #[test]
    fn bad_accesses() {
        let mut d = dist();
        // Bad sizes.
        assert_eq!(
            d.read(0, 2),
            Err(AccessError::BadSize { offset: 0, size: 2 })
        );
        assert_eq!(
            d.read(0, 3),
            Err(AccessError::BadSize { offset: 0, size: 3 })
        );
        assert_eq!(
            d.read(0, 0),
            Err(AccessError::BadSize { offset: 0, size: 0 })
        );
        assert_eq!(
            d.read(0x108, 8),
            Err(AccessError::BadSize {
                offset: 0x108,
                size: 8
            })
        );
        assert_eq!(
            d.write(0x104, 1, 0xff),
            Err(AccessError::BadSize {
                offset: 0x104,
                size: 1
            })
        );
        assert_eq!(
            d.read(0x6000 + 8 * 79, 1),
            Err(AccessError::BadSize {
                offset: 0x6000 + 8 * 79,
                size: 1
            })
        );
        assert_eq!(
            d.write(0x420, 2, 0),
            Err(AccessError::BadSize {
                offset: 0x420,
                size: 2
            })
        );
        // Misaligned.
        assert_eq!(
            d.read(0x101, 4),
            Err(AccessError::Misaligned {
                offset: 0x101,
                size: 4
            })
        );
        assert_eq!(
            d.write(0x6000 + 8 * 79 + 4, 8, 0),
            Err(AccessError::Misaligned {
                offset: 0x6000 + 8 * 79 + 4,
                size: 8
            })
        );
        // Out of the page, including overflow.
        assert_eq!(
            d.read(0x10000, 4),
            Err(AccessError::OutOfRange { offset: 0x10000 })
        );
        assert_eq!(
            d.read(u64::MAX - 1, 4),
            Err(AccessError::OutOfRange {
                offset: u64::MAX - 1
            })
        );
        assert_eq!(
            d.write(u64::MAX, 1, 0),
            Err(AccessError::OutOfRange { offset: u64::MAX })
        );
        // Reserved / unimplemented.
        for off in [
            0x14, 0x40, 0x48, 0x1000, 0x3000, 0x5ffc, 0x8000, 0xc000, 0xffcc,
        ] {
            assert_eq!(
                d.read(off, 4),
                Err(AccessError::UnknownRegister { offset: off })
            );
            assert_eq!(
                d.write(off, 4, 1),
                Err(AccessError::UnknownRegister { offset: off })
            );
        }
        // State unchanged by any of the above.
        assert_eq!(d.read(0x104, 4).unwrap(), 0);
    }

    #[test]
    fn no_panic_on_any_offset() {
        let mut d = dist();
        for off in (0..0x10010u64).step_by(4) {
            for size in [1u8, 2, 4, 8] {
                let _ = d.read(off, size);
                let _ = d.write(off, size, u64::MAX);
            }
        }
    }
}
