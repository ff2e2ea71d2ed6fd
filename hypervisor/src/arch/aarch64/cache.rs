//! Cache maintenance for memory the hypervisor writes for a guest: a guest starts with its MMU
//! and caches off, so what EL2 wrote through its caches must reach the point of coherency, and
//! no stale instructions may stay in the instruction cache. Also zeroing by whole cache blocks
//! (`DC ZVA`) where the CPU allows it.

use aarch64_cpu::asm::barrier;
use core::arch::asm;
use tock_registers::interfaces::Readable;

use super::sysregs::{CTR_EL0, DCZID_EL0};

use bulkhead_config::{HostPhysAddr, HostRange};

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
    start_clean(range);
    barrier::dsb(barrier::SY);
}

/// Starts cleaning `range` to the point of coherency: done at the next `DSB`.
fn start_clean(range: HostRange) {
    let line = dcache_line();
    let start = range.base.raw() & !(line - 1);
    // SAFETY: cleaning cache lines has no effect on memory contents; the lines lie in `range`,
    // which is mapped.
    unsafe { by_blocks!("dc cvac", start, range.end().raw(), line) };
}

/// Cleans and invalidates `range` in the data caches to the point of coherency: afterwards a
/// read through the cache sees what memory holds, also where someone wrote it without the
/// cache (a guest with its MMU off).
pub fn clean_invalidate_to_poc(range: HostRange) {
    let line = dcache_line();
    let start = range.base.raw() & !(line - 1);
    // SAFETY: cleaning and invalidating writes dirty lines back first, so memory contents are
    // unchanged; the lines lie in `range`, which is mapped.
    unsafe { by_blocks!("dc civac", start, range.end().raw(), line) };
    barrier::dsb(barrier::SY);
}

/// Invalidates all instruction caches of the inner shareable domain.
pub fn invalidate_icache() {
    // SAFETY: instruction cache invalidation only discards cached instructions.
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Zeroes `range` to the point of coherency: a guest with its MMU and caches off then reads
/// zeroes. Pages that already read zero are left alone: the result is the same, and where RAM
/// is itself virtual (a VM, or QEMU) memory the hypervisor never writes is never allocated.
/// Under QEMU TCG on a virtual host, writing a fresh 256 MiB partition took 0.45 s at boot;
/// reading it takes a fifth of that. On hardware the read costs about as much as the write it
/// saves. The range is cleaned and invalidated first, so that the check reads memory itself,
/// not zeroes an earlier pass left in the cache over what a guest without caches wrote since.
///
/// # Safety
/// `range` must be mapped writable and unused by anything else.
pub unsafe fn zero(range: HostRange) {
    clean_invalidate_to_poc(range);
    let zva_block =
        (!DCZID_EL0.is_set(DCZID_EL0::DZP)).then(|| 4u64 << DCZID_EL0.read(DCZID_EL0::BS));
    let (mut at, end) = (range.base.raw(), range.end().raw());
    while at < end {
        let next = (at + 1).next_multiple_of(PAGE).min(end);
        // SAFETY: `at..next` lies in `range`, mapped (guaranteed by the caller).
        let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, (next - at) as usize) };
        if !reads_zero(bytes) {
            // SAFETY: `at..next` lies in `range`, writable and unused (guaranteed by the caller).
            unsafe { zero_span(at, next, zva_block) };
            start_clean(HostRange::new(HostPhysAddr(at), next - at));
        }
        at = next;
    }
    // One barrier for all pages cleaned above.
    barrier::dsb(barrier::SY);
}

/// Whether `bytes` are all zero, 64 at a time as four load pairs where aligned (a fifth of the
/// instructions of a word-by-word loop, which counts under TCG).
fn reads_zero(bytes: &[u8]) -> bool {
    // SAFETY: every bit pattern is a valid `[u64; 8]`.
    let (head, lines, tail) = unsafe { bytes.align_to::<[u64; 8]>() };
    head.iter().all(|&b| b == 0)
        && tail.iter().all(|&b| b == 0)
        && lines
            .iter()
            .all(|l| (l[0] | l[1]) | (l[2] | l[3]) | (l[4] | l[5]) | (l[6] | l[7]) == 0)
}

/// Zeroes `start..end`: whole `DC ZVA` blocks of `zva_block` bytes where given, bytes at the
/// unaligned ends (or all of them).
///
/// # Safety
/// `start..end` must be mapped writable and unused by anything else.
unsafe fn zero_span(start: u64, end: u64, zva_block: Option<u64>) {
    let (first, last) = match zva_block {
        Some(block) => {
            let first = start.next_multiple_of(block).min(end);
            (first, (end & !(block - 1)).max(first))
        }
        None => (end, end),
    };
    // SAFETY: guaranteed by the caller: the unaligned head and tail, then whole aligned blocks,
    // all inside `start..end`.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
        if let Some(block) = zva_block {
            by_blocks!("dc zva", first, last, block);
        }
    }
}

/// The span [`zero`] checks at a time.
const PAGE: u64 = 4096;
