//! Bulkhead: a static-partitioning hypervisor for 64-bit Arm.
//!
//! The crate is split by what can be tested where. Everything outside `arch` is plain Rust that
//! builds and runs its unit tests on the host: the stage-2 table builder, exception-syndrome
//! decode, the virtual PL011, the console multiplexer and PSCI dispatch. `arch::aarch64` holds the
//! boot code, exception vectors, system registers and real MMIO, and is only built for the target.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console;
pub mod esr;
pub mod psci;
pub mod stage2;
pub mod vgic;
pub mod vuart;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod arch;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod hypervisor;
