//! Cache maintenance for memory the hypervisor writes for a guest: a guest starts with its MMU
//! and caches off, so what EL2 wrote through its caches must reach the point of coherency, and
//! no stale instructions may stay in the instruction cache. Also zeroing by whole cache blocks
//! (`DC ZVA`) where the CPU allows it.

use aarch64_cpu::asm::barrier;
use core::arch::asm;
use tock_registers::interfaces::Readable;

use super::sysregs::{CTR_EL0, DCZID_EL0};

use bulkhead_config::HostRange;

/// Smallest data cache line of this CPU, in bytes (`CTR_EL0.DminLine`).
fn dcache_line() -> u64 {
    4 << CTR_EL0.read(CTR_EL0::DMINLINE)
}

/// Cleans `range` from the data caches to the point of coherency.
pub fn clean_to_poc(range: HostRange) {
    let line = dcache_line();
    let mut at = range.base.raw() & !(line - 1);
    let end = range.end().raw();
    // Eight lines per iteration while they last: this runs over whole partitions.
    while at + 8 * line <= end {
        // SAFETY: cleaning cache lines has no effect on memory contents; the eight lines lie in
        // `range`, which is mapped.
        unsafe {
            asm!(
                "dc cvac, {a}", "add {a}, {a}, {l}", "dc cvac, {a}", "add {a}, {a}, {l}",
                "dc cvac, {a}", "add {a}, {a}, {l}", "dc cvac, {a}", "add {a}, {a}, {l}",
                "dc cvac, {a}", "add {a}, {a}, {l}", "dc cvac, {a}", "add {a}, {a}, {l}",
                "dc cvac, {a}", "add {a}, {a}, {l}", "dc cvac, {a}", "add {a}, {a}, {l}",
                a = inout(reg) at,
                l = in(reg) line,
                options(nostack),
            )
        };
    }
    while at < end {
        // SAFETY: cleaning a cache line has no effect on memory contents; `at` is mapped.
        unsafe { asm!("dc cvac, {0}", in(reg) at, options(nostack)) };
        at += line;
    }
    barrier::dsb(barrier::SY);
}

/// Invalidates all instruction caches of the inner shareable domain.
pub fn invalidate_icache() {
    // SAFETY: instruction cache invalidation only discards cached instructions.
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Zeroes `range` (page-aligned).
///
/// # Safety
/// `range` must be mapped writable and unused by anything else.
pub unsafe fn zero(range: HostRange) {
    let prohibited = DCZID_EL0.is_set(DCZID_EL0::DZP);
    let block = 4u64 << DCZID_EL0.read(DCZID_EL0::BS);
    let (start, end) = (range.base.raw(), range.end().raw());
    if prohibited || start % block != 0 || end % block != 0 {
        // SAFETY: guaranteed by the caller.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, (end - start) as usize) };
        return;
    }
    let mut at = start;
    // Eight blocks per iteration while they last: this runs over whole partitions.
    while at + 8 * block <= end {
        // SAFETY: zeroes eight aligned blocks inside the range the caller owns.
        unsafe {
            asm!(
                "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                a = inout(reg) at,
                b = in(reg) block,
                options(nostack),
            )
        };
    }
    while at < end {
        // SAFETY: zeroes one aligned block inside the range the caller owns.
        unsafe { asm!("dc zva, {0}", in(reg) at, options(nostack)) };
        at += block;
    }
    barrier::dsb(barrier::ISH);
}
