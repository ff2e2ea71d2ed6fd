//! The hypervisor proper on the target: boot sequence, partition runtime and trap handling. It
//! glues the portable logic (config, stage-2 builder, PSCI, virtual UART, console mux) to the
//! `arch::aarch64` mechanisms.

pub mod boot;
pub mod interrupts;
pub mod output;
pub mod partition;
pub mod traps;

pub use boot::{primary_main, secondary_main};
