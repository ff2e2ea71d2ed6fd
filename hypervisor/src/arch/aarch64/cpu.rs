//! Per-CPU identity: this CPU's position in the platform's `/cpus` (kept in `TPIDR_EL2`), its
//! MPIDR, and the sizes of per-CPU state.

use aarch64_cpu::registers::{Readable, Writeable, MPIDR_EL1, TPIDR_EL2};

use bulkhead_config::PcpuId;

/// Most physical CPUs Bulkhead supports on one board.
pub const MAX_CPUS: usize = 8;
/// Room for each CPU's EL2 stack: an unmapped guard page, then the stack itself (60 KiB).
pub const STACK_SLOT: usize = 64 * 1024;
/// The guard page at the bottom of each stack slot: a stack overflow faults there instead of
/// running into the next CPU's stack.
pub const GUARD_SIZE: usize = 4096;

/// The affinity fields of MPIDR (Aff3, Aff2..Aff0).
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;

/// Records which CPU this is.
pub fn set_id(id: PcpuId) {
    TPIDR_EL2.set(id.index() as u64);
}

/// Which CPU this is.
pub fn id() -> PcpuId {
    PcpuId(TPIDR_EL2.get() as usize)
}

/// This CPU's MPIDR affinity bits.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY
}

/// Where the per-CPU stack slots start.
fn stacks_base() -> usize {
    // Only the address of the stack array is computed.
    core::ptr::addr_of!(super::entry::STACKS) as usize
}

/// One past the highest address of CPU `id`'s EL2 stack.
pub fn stack_top(id: PcpuId) -> usize {
    stacks_base() + (id.index() + 1) * STACK_SLOT
}

/// CPU `id`'s guard page.
pub fn stack_guard(id: PcpuId) -> usize {
    stacks_base() + id.index() * STACK_SLOT
}
