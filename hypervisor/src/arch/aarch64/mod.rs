//! AArch64 EL2: boot, exception vectors, MMU, per-CPU state, the physical GIC and UART, firmware
//! calls and guest entry. Policy (what to do about a trap) lives in `crate::hypervisor`; this
//! module only moves state between the hardware and that logic.

pub mod boot;
pub mod cpu;
pub mod exceptions;
pub mod firmware;
pub mod gic;
pub mod gich;
pub mod guest;
pub mod mmu;
pub mod timer;
pub mod uart;
