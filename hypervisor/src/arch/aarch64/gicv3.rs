//! The physical GICv3 (see [`super::gic`] for the GICv2), driven through the `arm-gic` crate: brought up once by the primary CPU,
//! each CPU's redistributor and CPU interface woken by that CPU, and used by EL2 for the console
//! UART's interrupt, for interrupts forwarded to guests and for the "kick" SGI that makes another
//! CPU look at its vCPU again.
//!
//! CPUs are named by their position in the platform's `/cpus` ([`PcpuId`]). Their redistributors
//! are found by MPIDR (each frame's `GICR_TYPER` says whose it is), not by position, and SGIs
//! target them by their full affinity, with the range selector for `Aff0` above 15. The pending
//! and active state of SPIs is changed through the distributor, which works from any CPU.
//!
//! A core of a `direct-interrupts` partition ([`enter_direct_mode`]) leaves Group 1 to its
//! guest, which reaches the physical CPU interface; the hypervisor's own interrupts there (the
//! kick, its timer) become Group 0 at the highest priority, taken at EL2 as FIQs.

use alloc::vec::Vec;
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, Group, SecureIntGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::{Mutex, Once};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use bulkhead_config::PcpuId;

use super::cpu::MAX_CPUS;
use super::gic::{KICK_SGI, MAINTENANCE_IRQ};
use super::sysregs::{
    ICC_AP1R0_EL1, ICC_AP1R1_EL1, ICC_AP1R2_EL1, ICC_AP1R3_EL1, ICC_CTLR_EL1, ICC_SGI1R_EL1,
};
use super::timer::HYP_TIMER_IRQ;
use crate::runtime::hw::SpiChange;

register_bitfields! {u64,
    GICR_TYPER [
        AFFINITY OFFSET(32) NUMBITS(32) [],
        LAST OFFSET(4) NUMBITS(1) [],
        VLPIS OFFSET(1) NUMBITS(1) [],
    ],
}

register_bitfields! {u32,
    GICD_CTLR [
        /// Disable Security: one security state, so Non-secure software may use Group 0.
        DS OFFSET(6) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The start of a redistributor's RD_base frame, as far as finding it needs.
    RdBase {
        (0x00 => _ctlr_iidr),
        (0x08 => typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x10 => @END),
    },
    /// The distributor's control register (read) and its SPI pending and active registers,
    /// which `arm-gic` does not drive.
    GicdPendingActive {
        (0x000 => ctlr: ReadOnly<u32, GICD_CTLR::Register>),
        (0x004 => _before),
        (0x200 => ispendr: [WriteOnly<u32>; 32]),
        (0x280 => icpendr: [WriteOnly<u32>; 32]),
        (0x300 => _isactiver),
        (0x380 => icactiver: [WriteOnly<u32>; 32]),
        (0x400 => @END),
    },
    /// The active registers of a redistributor's SGI_base frame (its SGIs and PPIs).
    GicrActive {
        (0x000 => _before),
        (0x380 => icactiver0: WriteOnly<u32>),
        (0x384 => @END),
    }
}

/// Size of one redistributor frame (RD_base or SGI_base, and the VLPI frames of GICv4).
const FRAME: usize = 0x1_0000;

struct Gic {
    driver: GicV3<'static>,
    /// The distributor's pending and active registers (the same registers `driver` uses, only
    /// ever touched under the same lock).
    pending_active: &'static GicdPendingActive,
}

// SAFETY: the driver and `pending_active` refer to the one GIC of the machine; every access goes
// through the mutex below, so moving them between CPUs is sound.
unsafe impl Send for Gic {}

static GIC: Once<Mutex<Gic>> = Once::new();
/// For each CPU by position: its MPIDR, the index of its redistributor, and the address of that
/// redistributor's SGI_base frame.
static CPUS: Once<Vec<(u64, usize, usize)>> = Once::new();
/// Whether each CPU runs a `direct-interrupts` partition ([`enter_direct_mode`]).
static DIRECT: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Why the GIC could not be brought up.
#[derive(Debug)]
pub enum GicError {
    /// No redistributor at the address the platform names.
    NoRedistributors,
    /// No redistributor has this CPU's MPIDR.
    NoRedistributorFor(u64),
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NoRedistributors => f.write_str("no GICv3 redistributor found"),
            GicError::NoRedistributorFor(mpidr) => {
                write!(
                    f,
                    "no GIC redistributor belongs to the CPU with MPIDR {mpidr:#x}"
                )
            }
        }
    }
}

/// The MPIDR and address of each redistributor in the region at `gicr` of `size` bytes, in
/// order, up to the one marked last.
///
/// # Safety
/// `gicr..gicr + size` must be the mapped redistributor region.
unsafe fn redistributors(gicr: usize, size: usize) -> Vec<(u64, usize)> {
    let mut mpidrs = Vec::new();
    let mut at = gicr;
    while at + 2 * FRAME <= gicr + size {
        // SAFETY: `at` is the start of a redistributor's frames inside the region the caller
        // guarantees is mapped; GICR_TYPER is a plain read.
        let typer = unsafe { &*(at as *const RdBase) }.typer.extract();
        let affinity = typer.read(GICR_TYPER::AFFINITY);
        // Aff3.Aff2.Aff1.Aff0 in the register; MPIDR has Aff3 at [39:32], Aff2..Aff0 at [23:0].
        mpidrs.push((((affinity & 0xff00_0000) << 8) | (affinity & 0xff_ffff), at));
        if typer.is_set(GICR_TYPER::LAST) {
            break;
        }
        at += if typer.is_set(GICR_TYPER::VLPIS) {
            4
        } else {
            2
        } * FRAME;
    }
    mpidrs
}

/// Brings the distributor and all redistributors up, with every SPI disabled (each is enabled
/// when its owner enables it). Called once, by the primary CPU `cpu`, with the GIC's registers
/// mapped as device memory. `mpidrs` are the CPUs' MPIDRs by position.
///
/// # Safety
/// `gicd` must be the GIC distributor and `gicr..gicr + gicr_size` the redistributor region,
/// mapped, and used through no other pointer.
pub unsafe fn init(
    gicd: usize,
    gicr: usize,
    gicr_size: usize,
    mpidrs: Vec<u64>,
    cpu: PcpuId,
) -> Result<(), GicError> {
    GicCpuInterface::enable_system_register_el2(true);
    // SAFETY: the caller guarantees the region is mapped.
    let frames = unsafe { redistributors(gicr, gicr_size) };
    let cpus = mpidrs
        .iter()
        .map(|&mpidr| {
            frames
                .iter()
                .position(|&(f, _)| f == mpidr)
                .map(|frame| (mpidr, frame, frames[frame].1 + FRAME))
                .ok_or(GicError::NoRedistributorFor(mpidr))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(gicd_ptr), Some(gicr_ptr)) = (
        NonNull::new(gicd as *mut Gicd),
        NonNull::new(gicr as *mut GicrSgi),
    ) else {
        return Err(GicError::NoRedistributors);
    };
    // SAFETY: the caller guarantees these are the mapped, unaliased GIC registers; `frames`
    // redistributors exist there.
    let driver = unsafe { GicV3::new(UniqueMmioPointer::new(gicd_ptr), gicr_ptr, frames.len()) };
    let mut driver = driver.map_err(|_| GicError::NoRedistributors)?;
    let frame = cpus[cpu.index()].1;
    CPUS.call_once(|| cpus);
    driver.setup(frame);
    driver.distributor().enable_all_interrupts(false);
    GicCpuInterface::set_priority_mask(0xff);
    super::gicv3_hyp::split_eoi();
    let _ = driver.enable_interrupt(int_id(KICK_SGI), Some(frame), true);
    // SAFETY: the pending/active registers are part of the distributor the caller gave us,
    // accessed only under the lock that also guards the driver.
    let pending_active = unsafe { &*(gicd as *const GicdPendingActive) };
    GIC.call_once(|| {
        Mutex::new(Gic {
            driver,
            pending_active,
        })
    });
    Ok(())
}

/// Wakes this CPU's redistributor and CPU interface. Called by each secondary CPU.
pub fn init_cpu(cpu: PcpuId) {
    GicCpuInterface::enable_system_register_el2(true);
    if let (Some(gic), Some(frame)) = (GIC.get(), frame(cpu)) {
        let mut gic = gic.lock();
        gic.driver.init_cpu(frame);
        let _ = gic
            .driver
            .enable_interrupt(int_id(KICK_SGI), Some(frame), true);
    }
    GicCpuInterface::enable_group1(true);
    GicCpuInterface::set_priority_mask(0xff);
    super::gicv3_hyp::split_eoi();
}

fn int_id(intid: u32) -> IntId {
    if intid < 16 {
        IntId::sgi(intid)
    } else if intid < 32 {
        IntId::ppi(intid - 16)
    } else {
        IntId::spi(intid - 32)
    }
}

/// CPU `cpu`'s MPIDR.
fn mpidr(cpu: PcpuId) -> Option<u64> {
    CPUS.get()?.get(cpu.index()).map(|&(mpidr, _, _)| mpidr)
}

/// The index of CPU `cpu`'s redistributor.
fn frame(cpu: PcpuId) -> Option<usize> {
    CPUS.get()?.get(cpu.index()).map(|&(_, frame, _)| frame)
}

/// Enables or disables interrupt `intid`; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_enabled(intid: u32, cpu: PcpuId, enable: bool) {
    let (Some(gic), Some(frame)) = (GIC.get(), frame(cpu)) else {
        return;
    };
    let _ = gic
        .lock()
        .driver
        .enable_interrupt(int_id(intid), Some(frame), enable);
}

/// Sets an interrupt's trigger; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_trigger(intid: u32, cpu: PcpuId, edge: bool) {
    let (Some(gic), Some(frame)) = (GIC.get(), frame(cpu)) else {
        return;
    };
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    let _ = gic
        .lock()
        .driver
        .set_trigger(int_id(intid), Some(frame), trigger);
}

/// Routes SPI `intid` to CPU `cpu`.
pub fn route_spi(intid: u32, cpu: PcpuId) {
    let (Some(gic), Some(mpidr)) = (GIC.get(), mpidr(cpu)) else {
        return;
    };
    let _ = gic
        .lock()
        .driver
        .distributor()
        .set_routing(int_id(intid), Some(mpidr));
}

/// Enables a level-triggered SPI and routes it to CPU `cpu`.
pub fn enable_spi(intid: u32, cpu: PcpuId) {
    set_trigger(intid, cpu, false);
    route_spi(intid, cpu);
    set_enabled(intid, cpu, true);
}

/// Sets or clears SPI `intid`'s pending state, or clears its active state, at the distributor.
pub fn change_spi(intid: u32, change: SpiChange) {
    let Some(gic) = GIC.get() else { return };
    if !(32..1020).contains(&intid) {
        return;
    }
    let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
    let gic = gic.lock();
    let regs = match change {
        SpiChange::SetPending => &gic.pending_active.ispendr,
        SpiChange::ClearPending => &gic.pending_active.icpendr,
        SpiChange::ClearActive => &gic.pending_active.icactiver,
    };
    if let Some(reg) = regs.get(word) {
        reg.set(bit);
    }
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(u32::from)
}

/// Drops the running priority of an acknowledged interrupt without deactivating it (EOImode 1).
pub fn priority_drop(intid: u32) {
    GicCpuInterface::end_interrupt(int_id(intid), InterruptGroup::Group1);
}

/// Sends the kick SGI to CPU `cpu`, by its full affinity.
pub fn kick(cpu: PcpuId) {
    send_sgi(cpu, KICK_SGI);
}

/// Sends SGI `intid` (Group 1, or whatever group the target gives it) to CPU `cpu`, by its
/// full affinity.
pub fn send_sgi(cpu: PcpuId, intid: u32) {
    let Some(mpidr) = mpidr(cpu) else { return };
    let aff0 = mpidr & 0xff;
    ICC_SGI1R_EL1.write(
        ICC_SGI1R_EL1::AFF3.val((mpidr >> 32) & 0xff)
            + ICC_SGI1R_EL1::AFF2.val((mpidr >> 16) & 0xff)
            + ICC_SGI1R_EL1::AFF1.val((mpidr >> 8) & 0xff)
            + ICC_SGI1R_EL1::RS.val(aff0 / 16)
            + ICC_SGI1R_EL1::INTID.val(u64::from(intid))
            + ICC_SGI1R_EL1::TARGET_LIST.val(1 << (aff0 % 16)),
    );
}

/// Whether the hypervisor, at Non-secure EL2, may use Group 0 (`GICD_CTLR.DS` = 1: the GIC has
/// one security state, as QEMU virt without EL3). Otherwise Group 0 belongs to the Secure world
/// and a `direct-interrupts` partition is refused at boot.
pub fn group0_available() -> bool {
    GIC.get()
        .is_some_and(|gic| gic.lock().pending_active.ctlr.is_set(GICD_CTLR::DS))
}

/// Whether CPU `cpu` was given to a `direct-interrupts` partition ([`enter_direct_mode`]).
#[inline]
pub fn is_direct(cpu: PcpuId) -> bool {
    DIRECT
        .get(cpu.index())
        .is_some_and(|d| d.load(Ordering::Relaxed))
}

/// Readies this CPU, `cpu`, for a vCPU of a `direct-interrupts` partition, which takes every
/// Group 1 interrupt of the core through the physical CPU interface (`HCR_EL2.IMO` = 0):
///
/// - the kick SGI and the hypervisor timer become Group 0 at the highest priority, so they
///   arrive as FIQs at EL2 (`HCR_EL2.FMO` stays 1) whatever the guest's running priority;
///   Group 0 is enabled at the distributor and this CPU interface;
/// - the maintenance interrupt is disabled (the virtual CPU interface is off);
/// - an EOI also deactivates (`EOImode` 0), so the guest's `ICC_EOIR1_EL1` ends its interrupts
///   (its `ICC_DIR_EL1` and `ICC_CTLR_EL1` reach only the virtual interface while `FMO` = 1);
/// - nothing a previous run left stays: no Group 1 active priority, no SGI or PPI active.
///
/// Called at every start of such a vCPU, with interrupts masked; idempotent.
pub fn enter_direct_mode(cpu: PcpuId) {
    let (Some(gic), Some(frame)) = (GIC.get(), frame(cpu)) else {
        return;
    };
    let sgi_base = CPUS
        .get()
        .and_then(|c| c.get(cpu.index()))
        .map(|&(_, _, base)| base);
    {
        let mut gic = gic.lock();
        let driver = &mut gic.driver;
        for intid in [KICK_SGI, HYP_TIMER_IRQ] {
            let id = int_id(intid);
            let _ = driver.set_group(id, Some(frame), Group::Secure(SecureIntGroup::Group0));
            let _ = driver.set_interrupt_priority(id, Some(frame), 0);
        }
        let _ = driver.enable_interrupt(int_id(MAINTENANCE_IRQ), Some(frame), false);
        driver.distributor().enable_group0(true);
        if let Some(base) = sgi_base {
            // SAFETY: `base` is this CPU's SGI_base frame inside the mapped redistributor
            // region, touched only under the GIC lock held here.
            let regs = unsafe { &*(base as *const GicrActive) };
            // Nothing of the hypervisor's is active here: this runs from the idle loop.
            regs.icactiver0.set(u32::MAX);
        }
    }
    ICC_CTLR_EL1.modify(ICC_CTLR_EL1::EOIMODE::CLEAR);
    ICC_AP1R0_EL1.set(0);
    let pribits = ICC_CTLR_EL1.read(ICC_CTLR_EL1::PRIBITS) + 1;
    if pribits >= 6 {
        ICC_AP1R1_EL1.set(0);
    }
    if pribits >= 7 {
        ICC_AP1R2_EL1.set(0);
        ICC_AP1R3_EL1.set(0);
    }
    GicCpuInterface::enable_group0(true);
    if let Some(direct) = DIRECT.get(cpu.index()) {
        direct.store(true, Ordering::Relaxed);
    }
}

/// Takes the highest-priority pending Group 0 interrupt (a FIQ), if any.
pub fn acknowledge_fiq() -> Option<u32> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group0).map(u32::from)
}

/// Ends Group 0 interrupt `intid`: with `EOImode` 0 (a direct CPU), priority drop and
/// deactivation.
pub fn end_fiq(intid: u32) {
    GicCpuInterface::end_interrupt(int_id(intid), InterruptGroup::Group0);
}
