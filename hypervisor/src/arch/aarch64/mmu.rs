//! The EL2 stage-1 MMU. Boot runs in two steps: `enable_early` turns the MMU and caches on at once
//! with a coarse identity map (1 GiB blocks: the one holding the image is normal memory, the rest
//! device memory) so nothing runs long with caches off; once the board config is parsed,
//! `switch_to` installs the precise identity map built by `crate::stage2::HypervisorMap` (RAM
//! normal, the console and GIC device, nothing else). Secondary CPUs enable the MMU straight
//! from `SECONDARY_MMU` in their entry code. The register values (`MAIR_EL2`, `TCR_EL2`) and
//! memory attribute indices are `crate::stage2`'s, tested on the host; this module only writes
//! them.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    Readable, Writeable, ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2, VTTBR_EL2,
};
use core::arch::asm;

use crate::stage2::el2_map::{MAIR_INDEX_DEVICE, MAIR_INDEX_NORMAL};
use crate::stage2::{tcr_el2_value, Stage2Entry, MAIR_EL2 as MAIR_VALUE};

/// Register values a secondary CPU loads before turning its MMU on. Layout is read by the asm in
/// `boot`: mair, tcr, ttbr, sctlr.
#[repr(C, align(64))]
pub struct SecondaryMmu {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr: u64,
    pub sctlr: u64,
}

#[unsafe(no_mangle)]
pub static mut SECONDARY_MMU: SecondaryMmu = SecondaryMmu {
    mair: 0,
    tcr: 0,
    ttbr: 0,
    sctlr: 0,
};

#[repr(C, align(4096))]
struct Level1([u64; 512]);

static mut EARLY_TABLE: Level1 = Level1([0; 512]);

/// This CPU's physical address range (`ID_AA64MMFR0_EL1.PARange`).
pub fn pa_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

/// `TCR_EL2` for the EL2 map on this CPU.
fn tcr_value() -> u64 {
    tcr_el2_value(pa_range())
}

/// RES1 bits of `SCTLR_EL2` without `HCR_EL2.E2H`: 4, 5, 11, 16, 18, 22, 23, 28, 29.
const SCTLR_EL2_RES1: u64 = (3 << 28) | (3 << 22) | (1 << 18) | (1 << 16) | (1 << 11) | (3 << 4);

/// `SCTLR_EL2` with the MMU on; `wxn` makes every writable page execute-never (the precise map
/// has no writable code; the early one has).
fn sctlr_value(wxn: bool) -> u64 {
    let wxn = if wxn { SCTLR_EL2::WXN::Enable.value } else { 0 };
    // MMU, data cache, instruction cache, SP alignment check.
    wxn | SCTLR_EL2_RES1
        | (SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::SA::Enable)
            .value
}

/// Builds the coarse identity map and turns the MMU and caches on.
///
/// # Safety
/// Must run once, on the primary CPU, with the MMU off, before anything else uses memory that
/// needs normal attributes (atomics, unaligned accesses). `image` is the address of the image.
pub unsafe fn enable_early(image: usize) {
    let image_block = image >> 30;
    // SAFETY: single-threaded early boot; nothing else references the table yet.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(EARLY_TABLE) };
    for (i, entry) in table.0.iter_mut().enumerate() {
        let block = (i as u64) << 30;
        // Block descriptor, access flag, inner shareable; AttrIndx in bits [4:2].
        let common = 0b01 | (1 << 10) | (3 << 8);
        *entry = if i == image_block {
            block | common | (u64::from(MAIR_INDEX_NORMAL) << 2)
        } else {
            // Device memory, execute-never.
            block | common | (u64::from(MAIR_INDEX_DEVICE) << 2) | (1 << 54)
        };
    }
    let ttbr = core::ptr::addr_of!(EARLY_TABLE) as u64;
    // SAFETY: the table identity-maps the running image as normal memory, so turning the MMU on
    // does not move the code or stack. Stale lines of the table are invalidated first.
    unsafe {
        install(
            MAIR_VALUE,
            tcr_value(),
            ttbr,
            sctlr_value(false),
            Some(ttbr..ttbr + 4096),
        )
    };
}

/// Switches this CPU to the identity map at `ttbr` with `mair`, and publishes the values for
/// secondary CPUs.
///
/// # Safety
/// `ttbr` must be an identity map covering the image, stacks, heap and every device EL2 touches,
/// with the same memory types for them as the map in use now.
pub unsafe fn switch_to(mair: u64, ttbr: u64) {
    let tcr = tcr_value();
    let sctlr = sctlr_value(true);
    // SAFETY: boot is single-threaded here; secondaries read this only after it is written and
    // cleaned to the point of coherency below.
    unsafe {
        let s = &mut *core::ptr::addr_of_mut!(SECONDARY_MMU);
        s.mair = mair;
        s.tcr = tcr;
        s.ttbr = ttbr;
        s.sctlr = sctlr;
        let addr = core::ptr::addr_of!(SECONDARY_MMU) as u64;
        // Secondaries read this with their MMU off: clean it to the point of coherency.
        asm!("dc cvac, {0}", "dsb sy", in(reg) addr);
        install(mair, tcr, ttbr, sctlr, None);
    }
}

/// Writes the translation registers and enables the MMU.
///
/// # Safety
/// See the callers: the new tables must identity-map everything in use.
unsafe fn install(
    mair: u64,
    tcr: u64,
    ttbr: u64,
    sctlr: u64,
    invalidate: Option<core::ops::Range<u64>>,
) {
    if let Some(range) = invalidate {
        for line in range.step_by(64) {
            // SAFETY: invalidating the cache lines of our own table; they hold no dirty data
            // we need (it was written with caches off).
            unsafe { asm!("dc ivac, {0}", in(reg) line) };
        }
        barrier::dsb(barrier::SY);
    }
    MAIR_EL2.set(mair);
    TCR_EL2.set(tcr);
    TTBR0_EL2.set(ttbr);
    barrier::isb(barrier::SY);
    // SAFETY: TLB maintenance for the EL2 regime only.
    unsafe { asm!("tlbi alle2", "dsb nsh", "isb") };
    SCTLR_EL2.set(sctlr);
    barrier::isb(barrier::SY);
}

/// Writes `value` to `entry` of the stage-2 tables whose `VTTBR_EL2` value is `vttbr` (see
/// `Hw::set_stage2_entry`): an entry being made invalid is also flushed from every core's TLBs,
/// under the partition's VMID (loaded for the flush if this core runs another).
pub fn set_stage2_entry(vttbr: u64, entry: &Stage2Entry, value: u64) {
    // SAFETY: `entry` is a level-3 descriptor of a partition's stage-2 tables (hypervisor heap
    // memory, identity-mapped at EL2, alive as long as the partition); a single aligned 64-bit
    // store replaces it, which is how the architecture expects live tables to be changed.
    unsafe { core::ptr::write_volatile(entry.address as *mut u64, value) };
    barrier::dsb(barrier::ISHST);
    if value & 1 == 1 {
        return;
    }
    let saved = VTTBR_EL2.get();
    if saved != vttbr {
        VTTBR_EL2.set(vttbr);
        barrier::isb(barrier::SY);
    }
    let page = entry.ipa.raw() >> 12;
    // SAFETY: TLB maintenance for the current VMID only removes cached translations.
    unsafe {
        asm!(
            "tlbi ipas2e1is, {page}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            page = in(reg) page,
            options(nostack),
        )
    };
    if saved != vttbr {
        VTTBR_EL2.set(saved);
        barrier::isb(barrier::SY);
    }
}
