//! Per-CPU identity: the logical CPU index (kept in TPIDR_EL2) and the sizes of per-CPU state.

use aarch64_cpu::registers::{Readable, Writeable, MPIDR_EL1, TPIDR_EL2};

/// Most physical CPUs Bulkhead supports on one board.
pub const MAX_CPUS: usize = 8;
/// Size of each CPU's EL2 stack.
pub const STACK_SIZE: usize = 64 * 1024;

/// Records this CPU's logical index (its position in the platform's `/cpus`).
pub fn set_id(id: usize) {
    TPIDR_EL2.set(id as u64);
}

/// This CPU's logical index.
pub fn id() -> usize {
    TPIDR_EL2.get() as usize
}

/// This CPU's MPIDR affinity bits (Aff3..Aff0).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// One past the highest address of CPU `id`'s EL2 stack.
pub fn stack_top(id: usize) -> usize {
    // Only the address of the stack array is computed.
    let base = core::ptr::addr_of!(super::boot::STACKS) as usize;
    base + (id + 1) * STACK_SIZE
}
