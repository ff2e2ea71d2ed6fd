//! The physical GICv2 (a GIC-400, or QEMU's with `gic-version=2`): distributor (GICD) and CPU
//! interface (GICC), memory-mapped, as typed `tock-registers` blocks. Brought up once by the
//! primary CPU, each CPU's banked registers and CPU interface by that CPU; used by EL2 like the
//! GICv3 ([`super::gicv3`]): for the console UART's interrupt, for interrupts forwarded to
//! guests and for the kick SGI.
//!
//! (`arm-gic` 0.10 drives a GICv2 too, but neither its `GICD_ITARGETSR` nor `GICC_DIR`, nor a
//! split priority drop and deactivation, which forwarding with the list registers' HW bit needs.)
//!
//! - **Groups.** From the Non-secure side of a GIC with Security Extensions (a Pi, whose
//!   firmware puts every interrupt in Group 1), bit 0 of `GICD_CTLR`/`GICC_CTLR` enables
//!   Group 1 and `GICD_IGROUPR` is not writable; on a GIC without them (QEMU virt) bit 0 enables
//!   Group 0, where this driver puts every interrupt. Either way EL2 takes its interrupts with
//!   `GICC_IAR` and bit 9 of `GICC_CTLR` makes `GICC_EOIR` a priority drop only
//!   (`EOImodeNS`/`EOImodeS`), deactivation being `GICC_DIR`.
//! - **Banked registers.** A CPU reaches only its own SGIs' and PPIs' registers (register 0 of
//!   each family, `GICD_IPRIORITYR0-7`, `GICD_ICFGR1`): an SGI or PPI of another CPU is not
//!   reachable, and is left alone (the runtime only changes them on their own CPU).
//! - **CPU interfaces.** SPIs target CPUs by CPU interface number (`GICD_ITARGETSR`). Each CPU
//!   learns its own from the banked `GICD_ITARGETSR0`; until then, the interface number is
//!   taken to be the CPU's `Aff0`, as on every GIC-400 system and in QEMU.
//! - **SGI senders.** `GICC_IAR` gives an SGI with its sender's interface number, which its
//!   `GICC_EOIR` and `GICC_DIR` must repeat: kept per CPU between the two.

use core::sync::atomic::{AtomicU8, Ordering};
use spin::{Mutex, Once};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use bulkhead_config::PcpuId;

use super::cpu::MAX_CPUS;
use super::gic::KICK_SGI;
use crate::runtime::hw::SpiChange;

/// Priority of every interrupt: the middle of the range, as Linux uses.
const DEFAULT_PRIORITY: u8 = 0xa0;
/// `GICC_IAR` value with no interrupt pending (1020..1023 are special).
const SPECIAL_INTID: u32 = 1020;
/// Interrupts per `GICD_ICFGR` register.
const CFG_PER_REG: u32 = 16;

register_bitfields! {u32,
    GICD_CTLR [
        /// Enable: Group 0 without Security Extensions, Group 1 from their Non-secure side.
        ENABLE OFFSET(0) NUMBITS(1) [],
    ],
    GICD_TYPER [
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) [],
        CPU_NUMBER OFFSET(5) NUMBITS(3) [],
        SECURITY_EXTN OFFSET(10) NUMBITS(1) [],
    ],
    GICD_SGIR [
        TARGET_LIST_FILTER OFFSET(24) NUMBITS(2) [List = 0],
        CPU_TARGET_LIST OFFSET(16) NUMBITS(8) [],
        SGI_INTID OFFSET(0) NUMBITS(4) [],
    ],
    GICC_CTLR [
        /// Enable: Group 0 without Security Extensions, Group 1 from their Non-secure side.
        ENABLE OFFSET(0) NUMBITS(1) [],
        /// `EOImodeS` without Security Extensions, `EOImodeNS` from their Non-secure side:
        /// `GICC_EOIR` only drops the priority.
        EOI_MODE OFFSET(9) NUMBITS(1) [],
    ],
    GICC_IAR [
        INTERRUPT_ID OFFSET(0) NUMBITS(10) [],
        CPU_ID OFFSET(10) NUMBITS(3) [],
    ],
}

register_structs! {
    /// The distributor.
    Gicd {
        (0x000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => _iidr),
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => ispendr: [ReadWrite<u32>; 32]),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => isactiver: [ReadWrite<u32>; 32]),
        (0x380 => icactiver: [ReadWrite<u32>; 32]),
        (0x400 => ipriorityr: [ReadWrite<u8>; 1020]),
        (0x7fc => _reserved0),
        (0x800 => itargetsr: [ReadWrite<u8>; 1020]),
        (0xbfc => _reserved1),
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved2),
        (0xf00 => sgir: WriteOnly<u32, GICD_SGIR::Register>),
        (0xf04 => _reserved3),
        (0x1000 => @END),
    },
    /// The CPU interface (each CPU sees its own at the same address).
    Gicc {
        (0x0000 => ctlr: ReadWrite<u32, GICC_CTLR::Register>),
        (0x0004 => pmr: ReadWrite<u32>),
        (0x0008 => bpr: ReadWrite<u32>),
        (0x000c => iar: ReadOnly<u32, GICC_IAR::Register>),
        (0x0010 => eoir: WriteOnly<u32, GICC_IAR::Register>),
        (0x0014 => _reserved0),
        (0x1000 => dir: WriteOnly<u32, GICC_IAR::Register>),
        (0x1004 => @END),
    }
}

struct Gic {
    gicd: &'static Gicd,
    gicc: &'static Gicc,
    /// Interrupts the distributor implements (`GICD_TYPER.ITLinesNumber`).
    lines: u32,
}

// SAFETY: the registers are the machine's one GIC; the distributor's read-modify-write updates
// happen under `DIST_LOCK`, everything else is a single register access (the CPU interface and
// banked registers being per CPU), so sharing the handle between CPUs is sound.
unsafe impl Sync for Gic {}
// SAFETY: as for `Sync`.
unsafe impl Send for Gic {}

static GIC: Once<Gic> = Once::new();
/// Serialises read-modify-write updates of distributor registers shared between CPUs.
static DIST_LOCK: Mutex<()> = Mutex::new(());
/// Each CPU's CPU interface bit (`GICD_ITARGETSR` byte), by position.
static INTERFACE: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
/// For each CPU and SGI, the sender of the SGI it last acknowledged.
static SGI_SENDER: [[AtomicU8; 16]; MAX_CPUS] =
    [const { [const { AtomicU8::new(0) }; 16] }; MAX_CPUS];

fn gic() -> Option<&'static Gic> {
    GIC.get()
}

/// Brings the distributor up, every SPI disabled, inactive, not pending, in the group EL2
/// takes, at the default priority (each is enabled when its owner enables it), then this CPU's
/// interface, as [`init_cpu`] does for the others. Called once, by the primary CPU `cpu`, with
/// the registers mapped as device memory. `mpidrs` are the CPUs' MPIDRs by position.
///
/// # Safety
/// `gicd` and `gicc` must be the GICv2's distributor and CPU interface, mapped, and used through
/// no other pointer.
pub unsafe fn init(gicd: usize, gicc: usize, mpidrs: &[u64], cpu: PcpuId) {
    for (slot, &mpidr) in INTERFACE.iter().zip(mpidrs) {
        slot.store(1 << (mpidr & 0x7), Ordering::Relaxed);
    }
    // SAFETY: the caller guarantees both are the mapped GICv2 registers.
    let (gicd, gicc) = unsafe { (&*(gicd as *const Gicd), &*(gicc as *const Gicc)) };
    let lines = (gicd.typer.read(GICD_TYPER::IT_LINES_NUMBER) + 1) * 32;
    let gic = GIC.call_once(|| Gic { gicd, gicc, lines });
    gicd.ctlr.write(GICD_CTLR::ENABLE::CLEAR);
    for word in 1..(gic.lines / 32) as usize {
        gicd.icenabler[word].set(u32::MAX);
        gicd.icpendr[word].set(u32::MAX);
        gicd.icactiver[word].set(u32::MAX);
        // Group 0; ignored from the Non-secure side, where the firmware chose Group 1.
        gicd.igroupr[word].set(0);
    }
    for intid in 32..gic.lines.min(SPECIAL_INTID) {
        gicd.ipriorityr[intid as usize].set(DEFAULT_PRIORITY);
    }
    gicd.ctlr.write(GICD_CTLR::ENABLE::SET);
    init_cpu(cpu);
}

/// Sets up this CPU's banked distributor registers and CPU interface: its SGIs and PPIs
/// disabled but the kick, all in the group EL2 takes at the default priority, every priority
/// unmasked, split priority drop and deactivation. Learns the CPU's interface number.
pub fn init_cpu(cpu: PcpuId) {
    let Some(gic) = gic() else { return };
    let (gicd, gicc) = (gic.gicd, gic.gicc);
    // The banked GICD_ITARGETSR0..7 name this CPU's interface.
    let own = gicd.itargetsr[0].get();
    if let Some(slot) = INTERFACE.get(cpu.index()) {
        let assumed = slot.swap(own, Ordering::Relaxed);
        if own != 0 && own != assumed {
            retarget(gic, assumed, own);
        }
    }
    gicd.icenabler[0].set(u32::MAX);
    gicd.icpendr[0].set(u32::MAX);
    gicd.icactiver[0].set(u32::MAX);
    gicd.igroupr[0].set(0);
    for intid in 0..32 {
        gicd.ipriorityr[intid].set(DEFAULT_PRIORITY);
    }
    gicd.isenabler[0].set(1 << KICK_SGI);
    gicc.pmr.set(0xff);
    gicc.bpr.set(0);
    gicc.ctlr
        .write(GICC_CTLR::ENABLE::SET + GICC_CTLR::EOI_MODE::SET);
}

/// SPIs routed to interface bit `from` (routed before its CPU learnt its real interface) go to
/// `to`.
fn retarget(gic: &Gic, from: u8, to: u8) {
    let _lock = DIST_LOCK.lock();
    for intid in 32..gic.lines.min(SPECIAL_INTID) as usize {
        if gic.gicd.itargetsr[intid].get() == from {
            gic.gicd.itargetsr[intid].set(to);
        }
    }
}

/// The `GICD_ITARGETSR` byte of CPU `cpu`.
fn interface(cpu: PcpuId) -> u8 {
    INTERFACE
        .get(cpu.index())
        .map_or(0, |slot| slot.load(Ordering::Relaxed))
}

/// Whether banked interrupt `intid` of CPU `cpu` is reachable from this CPU.
fn reachable(intid: u32, cpu: PcpuId) -> bool {
    intid >= 32 || cpu == super::cpu::id()
}

/// The register index and bit of `intid` in a one-bit-per-interrupt family, if the GIC has it.
fn bit(gic: &Gic, intid: u32) -> Option<(usize, u32)> {
    (intid < gic.lines).then_some(((intid / 32) as usize, 1 << (intid % 32)))
}

/// Enables or disables `intid`; an SGI or PPI only on its own CPU (`cpu` must be this one).
pub fn set_enabled(intid: u32, cpu: PcpuId, enable: bool) {
    let Some(gic) = gic().filter(|_| reachable(intid, cpu)) else {
        return;
    };
    if let Some((word, bit)) = bit(gic, intid) {
        let regs = if enable {
            &gic.gicd.isenabler
        } else {
            &gic.gicd.icenabler
        };
        regs[word].set(bit);
    }
}

/// Makes `intid` edge-triggered or level-sensitive; a PPI only on its own CPU.
pub fn set_trigger(intid: u32, cpu: PcpuId, edge: bool) {
    let Some(gic) = gic() else { return };
    if intid < 16 || intid >= gic.lines || !reachable(intid, cpu) {
        return;
    }
    let (n, field) = (
        (intid / CFG_PER_REG) as usize,
        2 << ((intid % CFG_PER_REG) * 2),
    );
    let _lock = DIST_LOCK.lock();
    let reg = &gic.gicd.icfgr[n];
    let value = reg.get();
    reg.set(if edge { value | field } else { value & !field });
}

/// Routes SPI `intid` to CPU `cpu`.
pub fn route_spi(intid: u32, cpu: PcpuId) {
    let Some(gic) = gic().filter(|g| (32..g.lines.min(SPECIAL_INTID)).contains(&intid)) else {
        return;
    };
    gic.gicd.itargetsr[intid as usize].set(interface(cpu));
}

/// Enables a level-triggered SPI and routes it to CPU `cpu`.
pub fn enable_spi(intid: u32, cpu: PcpuId) {
    set_trigger(intid, cpu, false);
    route_spi(intid, cpu);
    set_enabled(intid, cpu, true);
}

/// Sets or clears SPI `intid`'s pending state, or clears its active state, at the distributor.
pub fn change_spi(intid: u32, change: SpiChange) {
    let Some(gic) = gic().filter(|_| intid >= 32) else {
        return;
    };
    if let Some((word, bit)) = bit(gic, intid) {
        let regs = match change {
            SpiChange::SetPending => &gic.gicd.ispendr,
            SpiChange::ClearPending => &gic.gicd.icpendr,
            SpiChange::ClearActive => &gic.gicd.icactiver,
        };
        regs[word].set(bit);
    }
}

/// Takes the highest-priority pending interrupt, if any (remembering an SGI's sender).
pub fn acknowledge() -> Option<u32> {
    let gic = gic()?;
    let iar = gic.gicc.iar.extract();
    let intid = iar.read(GICC_IAR::INTERRUPT_ID);
    if intid >= SPECIAL_INTID {
        return None;
    }
    if intid < 16 {
        if let Some(slot) = SGI_SENDER
            .get(super::cpu::id().index())
            .and_then(|s| s.get(intid as usize))
        {
            slot.store(iar.read(GICC_IAR::CPU_ID) as u8, Ordering::Relaxed);
        }
    }
    Some(intid)
}

/// `intid` as `GICC_EOIR` and `GICC_DIR` take it: with its sender for an SGI.
fn with_sender(intid: u32) -> u32 {
    let sender = SGI_SENDER
        .get(super::cpu::id().index())
        .and_then(|s| s.get(intid as usize))
        .map_or(0, |slot| u32::from(slot.load(Ordering::Relaxed)));
    intid | (sender << 10)
}

/// Drops the running priority of acknowledged interrupt `intid` without deactivating it.
pub fn priority_drop(intid: u32) {
    if let Some(gic) = gic() {
        gic.gicc.eoir.set(with_sender(intid));
    }
}

/// Deactivates physical interrupt `intid`. A PPI only if it is active (the runtime deactivates
/// the guest timers' defensively; `GICC_DIR` of an inactive interrupt is not defined).
pub fn deactivate(intid: u32) {
    let Some(gic) = gic() else { return };
    if (16..32).contains(&intid) && gic.gicd.isactiver[0].get() & (1 << intid) == 0 {
        return;
    }
    gic.gicc.dir.set(with_sender(intid));
}

/// Sends the kick SGI to CPU `cpu`, by its CPU interface.
pub fn kick(cpu: PcpuId) {
    if let Some(gic) = gic() {
        gic.gicd.sgir.write(
            GICD_SGIR::TARGET_LIST_FILTER::List
                + GICD_SGIR::CPU_TARGET_LIST.val(u32::from(interface(cpu)))
                + GICD_SGIR::SGI_INTID.val(KICK_SGI),
        );
    }
}

/// Whether the GIC has Security Extensions (we then see its Non-secure side), for the boot log.
pub fn has_security_extensions() -> bool {
    gic().is_some_and(|g| g.gicd.typer.is_set(GICD_TYPER::SECURITY_EXTN))
}

/// The number of CPU interfaces the GIC has.
pub fn cpu_interfaces() -> u32 {
    gic().map_or(0, |g| g.gicd.typer.read(GICD_TYPER::CPU_NUMBER) + 1)
}
