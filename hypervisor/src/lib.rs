//! Bulkhead: a static-partitioning hypervisor for 64-bit Arm.
//!
//! The crate is split by what can be tested where (see `docs/architecture.md`):
//!
//! - models of what a partition sees, plain Rust tested on the host: the stage-2 and EL2 table
//!   builder ([`stage2`]), the exit decode ([`esr`], [`exit`]), PSCI ([`psci`]), the virtual
//!   PL011 ([`vuart`]), the virtual GIC's registers and list registers ([`vgic`]), the doorbell
//!   GPIO (a virtual PL061, [`vgpio`]), the console service with its multiplexer ([`console`]),
//!   Bulkhead's boot options ([`boot_options`]);
//! - the portable runtime ([`runtime`]), also tested on the host: what happens on every guest
//!   exit, physical interrupt and partition lifecycle event, reaching the hardware only through
//!   its arch interface ([`runtime::Hw`]);
//! - `arch::aarch64`, built for the target only: boot, exception vectors, MMU, the physical GIC
//!   and UART, firmware calls, guest entry. The only place with assembly, system registers and
//!   MMIO.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod boot_options;
pub mod console;
pub mod el2_controls;
pub mod esr;
pub mod exit;
pub mod frame;
pub mod mmio;
pub mod psci;
pub mod runtime;
pub mod stage2;
pub mod vgic;
pub mod vgpio;
pub mod vuart;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod arch;
