//! Starting more vCPUs: PSCI `CPU_ON` with an entry point that gives the new vCPU its own stack,
//! the runtime's exception vectors and its GIC redistributor and CPU interface, then calls a
//! Rust function.
//!
//! ```ignore
//! static STACK: VcpuStack = VcpuStack::new();
//!
//! fn second() -> ! { /* runs on vCPU 1 */ loop { aarch64_cpu::asm::wfi() } }
//!
//! let mpidr = dt.cpu_mpidrs().nth(1).expect("two vCPUs");
//! start_vcpu(mpidr, &STACK, second)?;
//! ```
//!
//! The same call works under Bulkhead (its PSCI emulation starts the partition's vCPU) and on
//! QEMU without a hypervisor (QEMU's PSCI starts the CPU at EL1). The new vCPU starts like the
//! boot one, MMU off and interrupts masked.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use smccc::psci;
use smccc::Hvc;

/// Size of a [`VcpuStack`].
pub const VCPU_STACK_SIZE: usize = 16 * 1024;

/// The stack of one started vCPU, plus what its entry code needs to find (the stack top and the
/// function to call). Declare one `static` per vCPU to start.
#[repr(C, align(16))]
pub struct VcpuStack {
    /// Initial stack pointer: read by the entry code at offset 0.
    top: AtomicU64,
    /// The `fn() -> !` to call, as an address.
    main: AtomicU64,
    /// Set once the stack was handed to a vCPU: a stack is used once.
    used: AtomicBool,
    stack: UnsafeCell<StackBytes>,
}

/// The stack memory, 16-byte aligned as `SP` must be.
#[repr(C, align(16))]
struct StackBytes([u8; VCPU_STACK_SIZE]);

// SAFETY: the stack bytes are only ever touched by the one vCPU it was handed to (`used` keeps
// it from being handed out twice, and only through `start_vcpu`); the other fields are atomics.
unsafe impl Sync for VcpuStack {}

impl VcpuStack {
    /// A stack not yet handed to a vCPU.
    pub const fn new() -> Self {
        Self {
            top: AtomicU64::new(0),
            main: AtomicU64::new(0),
            used: AtomicBool::new(false),
            stack: UnsafeCell::new(StackBytes([0; VCPU_STACK_SIZE])),
        }
    }
}

impl Default for VcpuStack {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a vCPU could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The stack was already given to a vCPU.
    StackInUse,
    /// PSCI `CPU_ON` failed (e.g. `AlreadyOn`, or `InvalidParameters` for an unknown MPIDR).
    Psci(psci::Error),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::StackInUse => f.write_str("the stack is already in use"),
            StartError::Psci(e) => write!(f, "PSCI CPU_ON failed: {e}"),
        }
    }
}

// Entry point of started vCPUs: x0 = the VcpuStack (PSCI context id). Same first steps as
// `_start`: FP/SIMD on, then the stack, then Rust.
core::arch::global_asm!(
    r#"
    .section .text.secondary_entry, "ax"
    .global __bulkhead_secondary_entry
    .type __bulkhead_secondary_entry, %function
__bulkhead_secondary_entry:
    mov     x1, #(0x3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, [x0]
    mov     sp, x1
    bl      {rt_secondary}
0:
    wfi
    b       0b
    .size __bulkhead_secondary_entry, . - __bulkhead_secondary_entry
    "#,
    rt_secondary = sym rt_secondary,
);

unsafe extern "C" {
    /// The entry point defined above.
    fn __bulkhead_secondary_entry();
}

/// Starts the vCPU whose MPIDR affinity is `mpidr` (see
/// [`GuestDt::cpu_mpidrs`](crate::GuestDt::cpu_mpidrs)) on `stack`, running `main`.
pub fn start_vcpu(
    mpidr: u64,
    stack: &'static VcpuStack,
    main: fn() -> !,
) -> Result<(), StartError> {
    if stack.used.load(Ordering::Acquire) {
        return Err(StartError::StackInUse);
    }
    stack.used.store(true, Ordering::Release);
    let top = stack.stack.get() as u64 + VCPU_STACK_SIZE as u64;
    stack.top.store(top, Ordering::Relaxed);
    stack
        .main
        .store(main as *const () as u64, Ordering::Release);
    let entry = __bulkhead_secondary_entry as *const () as u64;
    let context = stack as *const VcpuStack as u64;
    psci::cpu_on::<Hvc>(mpidr, entry, context).map_err(|e| {
        stack.used.store(false, Ordering::Release);
        StartError::Psci(e)
    })
}

/// First Rust code of a started vCPU.
extern "C" fn rt_secondary(stack: &'static VcpuStack) -> ! {
    crate::exception::install_vectors();
    crate::gic::init_this_vcpu();
    let main = stack.main.load(Ordering::Acquire) as usize;
    // SAFETY: `start_vcpu` stored a `fn() -> !` there before starting this vCPU.
    let main = unsafe { core::mem::transmute::<usize, fn() -> !>(main) };
    main()
}
