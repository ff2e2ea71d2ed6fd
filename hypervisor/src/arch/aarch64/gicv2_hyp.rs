//! The GICv2 virtual interface control registers (GICH), memory-mapped: the list registers,
//! through which EL2 gives interrupts to the guest on this CPU, and the underflow maintenance
//! interrupt. Each CPU sees its own interface at the same address. List registers go in and out
//! in their `GICH_LR<n>` encoding; `crate::vgic::gich_lr` translates. The guest's side, its
//! virtual CPU interface (GICV), is mapped into its stage 2 where it expects its GICC.

use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

use super::cpu::MAX_CPUS;

/// Most list registers a GICv2 has.
pub const MAX_LRS: usize = 64;

register_bitfields! {u32,
    GICH_HCR [
        /// The virtual CPU interface works.
        EN OFFSET(0) NUMBITS(1) [],
        /// Maintenance interrupt while at most one list register holds an interrupt.
        UIE OFFSET(1) NUMBITS(1) [],
    ],
    GICH_VTR [
        /// List registers implemented, minus one.
        LIST_REGS OFFSET(0) NUMBITS(6) [],
    ],
}

register_structs! {
    Gich {
        (0x000 => hcr: ReadWrite<u32, GICH_HCR::Register>),
        (0x004 => vtr: ReadOnly<u32, GICH_VTR::Register>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        /// Bit n set when list register n holds no interrupt (list registers 0-31, then 32-63).
        (0x030 => elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved2),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved1),
        (0x100 => lr: [ReadWrite<u32>; MAX_LRS]),
        (0x200 => @END),
    }
}

struct Regs(&'static Gich);

// SAFETY: the GICH frame is per CPU (each CPU reaches its own through the same address) and
// only this module touches it, so sharing the pointer between CPUs is sound.
unsafe impl Sync for Regs {}
// SAFETY: as for `Sync`.
unsafe impl Send for Regs {}

static GICH: Once<Regs> = Once::new();

/// Whether each CPU has the underflow interrupt on, so the common case (off, staying off) costs
/// no MMIO access.
static UNDERFLOW_IRQ: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Records where the GICH frame is. Called once, by the primary CPU.
///
/// # Safety
/// `base` must be the GICv2's virtual interface control frame, mapped as device memory and used
/// through no other pointer.
pub unsafe fn init(base: usize) {
    // SAFETY: guaranteed by the caller.
    GICH.call_once(|| Regs(unsafe { &*(base as *const Gich) }));
}

fn gich() -> Option<&'static Gich> {
    GICH.get().map(|r| r.0)
}

/// A list register that holds no interrupt, if any (`GICH_ELRSR0/1`, whose bits for list
/// registers the interface does not have read as zero).
pub fn free_lr() -> Option<usize> {
    let g = gich()?;
    let free = u64::from(g.elrsr[1].get()) << 32 | u64::from(g.elrsr[0].get());
    (free != 0).then(|| free.trailing_zeros() as usize)
}

/// Number of list registers this CPU's interface implements.
pub fn lr_count() -> usize {
    gich().map_or(0, |g| {
        (g.vtr.read(GICH_VTR::LIST_REGS) as usize + 1).min(MAX_LRS)
    })
}

/// Reads list register `n` (0 for a register the interface does not have).
pub fn read_lr(n: usize) -> u32 {
    match gich() {
        Some(g) if n < lr_count() => g.lr[n].get(),
        _ => 0,
    }
}

/// Writes list register `n` (ignored for a register the interface does not have).
pub fn write_lr(n: usize, value: u32) {
    if let Some(g) = gich().filter(|_| n < lr_count()) {
        g.lr[n].set(value);
    }
}

/// Resets the virtual CPU interface for a vCPU that starts from scratch: no list register in
/// use, no active priority, the guest's CPU interface state (`GICV_CTLR`, `GICV_PMR`) cleared,
/// the interface enabled.
pub fn reset() {
    let Some(g) = gich() else { return };
    for n in 0..lr_count() {
        g.lr[n].set(0);
    }
    g.apr.set(0);
    g.vmcr.set(0);
    g.hcr.write(GICH_HCR::EN::SET);
    if let Some(state) = UNDERFLOW_IRQ.get(super::cpu::id().index()) {
        state.store(false, Ordering::Relaxed);
    }
}

/// Turns the underflow maintenance interrupt on or off.
pub fn set_underflow_irq(on: bool) {
    let (Some(g), Some(state)) = (gich(), UNDERFLOW_IRQ.get(super::cpu::id().index())) else {
        return;
    };
    if state.swap(on, Ordering::Relaxed) == on {
        return;
    }
    g.hcr.modify(if on {
        GICH_HCR::UIE::SET
    } else {
        GICH_HCR::UIE::CLEAR
    });
}
