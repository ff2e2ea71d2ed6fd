//! Cache maintenance for memory the hypervisor writes for a guest: a guest starts with its MMU
//! and caches off, so what EL2 wrote through its caches must reach the point of coherency, and
//! no stale instructions may stay in the instruction cache. Also zeroing by whole cache blocks
//! (`DC ZVA`) where the CPU allows it.

use aarch64_cpu::asm::barrier;
use core::arch::asm;
use tock_registers::interfaces::Readable;

use super::sysregs::{CTR_EL0, DCZID_EL0};

use bulkhead_config::HostRange;

/// Runs the data cache instruction `$op` on every `$step`-byte block from `$start` to `$end`,
/// eight per loop iteration while they last (these loops run over whole partitions).
macro_rules! by_blocks {
    ($op:literal, $start:expr, $end:expr, $step:expr) => {{
        let (mut at, end, step): (u64, u64, u64) = ($start, $end, $step);
        while at + 8 * step <= end {
            asm!(
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                concat!($op, ", {a}"), "add {a}, {a}, {s}",
                a = inout(reg) at,
                s = in(reg) step,
                options(nostack),
            );
        }
        while at < end {
            asm!(concat!($op, ", {0}"), in(reg) at, options(nostack));
            at += step;
        }
    }};
}

/// Smallest data cache line of this CPU, in bytes (`CTR_EL0.DminLine`).
fn dcache_line() -> u64 {
    4 << CTR_EL0.read(CTR_EL0::DMINLINE)
}

/// Cleans `range` from the data caches to the point of coherency.
pub fn clean_to_poc(range: HostRange) {
    let line = dcache_line();
    let start = range.base.raw() & !(line - 1);
    // SAFETY: cleaning cache lines has no effect on memory contents; the lines lie in `range`,
    // which is mapped.
    unsafe { by_blocks!("dc cvac", start, range.end().raw(), line) };
    barrier::dsb(barrier::SY);
}

/// Invalidates all instruction caches of the inner shareable domain.
pub fn invalidate_icache() {
    // SAFETY: instruction cache invalidation only discards cached instructions.
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Zeroes `range`: whole `DC ZVA` blocks where the CPU allows them, bytes at the unaligned
/// ends.
///
/// # Safety
/// `range` must be mapped writable and unused by anything else.
pub unsafe fn zero(range: HostRange) {
    let (start, end) = (range.base.raw(), range.end().raw());
    let block = 4u64 << DCZID_EL0.read(DCZID_EL0::BS);
    let (first, last) = (start.next_multiple_of(block), end & !(block - 1));
    if DCZID_EL0.is_set(DCZID_EL0::DZP) || first >= last {
        // SAFETY: guaranteed by the caller.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, (end - start) as usize) };
        return;
    }
    // SAFETY: guaranteed by the caller: the unaligned head and tail, then whole aligned blocks,
    // all inside `range`.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
        by_blocks!("dc zva", first, last, block);
    }
    barrier::dsb(barrier::ISH);
}
