//! Per-CPU identity: this CPU's position in the platform's `/cpus` (kept in `TPIDR_EL2`), its
//! MPIDR, and the sizes of per-CPU state.

use aarch64_cpu::registers::{Readable, Writeable, MPIDR_EL1, TPIDR_EL2};

use bulkhead_config::PcpuId;

/// Most physical CPUs Bulkhead supports on one board.
pub const MAX_CPUS: usize = 8;
/// Size of each CPU's EL2 stack.
pub const STACK_SIZE: usize = 64 * 1024;

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

/// One past the highest address of CPU `id`'s EL2 stack.
pub fn stack_top(id: PcpuId) -> usize {
    // Only the address of the stack array is computed.
    let base = core::ptr::addr_of!(super::entry::STACKS) as usize;
    base + (id.index() + 1) * STACK_SIZE
}
