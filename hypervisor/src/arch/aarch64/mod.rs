//! AArch64 at EL2: the only place with assembly, system registers and real MMIO. It boots the
//! machine, installs the exception vectors, runs the MMU, drives the physical GIC, console UART
//! and timer, calls the firmware, and enters guests; it implements the runtime's arch interface
//! ([`hw::Aarch64`]). What to do about a guest exit or an interrupt is the runtime's decision
//! (`crate::runtime`); this module only moves state between the hardware and it.
//!
//! | module | holds |
//! |---|---|
//! | [`entry`] | the Image header, entry assembly, per-CPU stacks |
//! | [`boot`] | the boot sequence on the primary and secondary CPUs |
//! | [`exceptions`] | the vector table |
//! | [`trap`] | the vector handlers and the idle loop |
//! | [`vcpu`] | programming EL2 for a vCPU and entering it |
//! | [`hw`] | the runtime's arch interface |
//! | [`mmu`], [`cpu`], [`timer`], [`firmware`] | EL2 MMU, CPU identity, time, PSCI calls |
//! | [`cache`] | zeroing memory and cache maintenance for memory handed to guests |
//! | [`gic`], [`gich`] | the physical GICv3 and its virtual CPU interface |
//! | [`uart`], [`console`] | the PL011 driver, the console and `log` backend |
//! | [`sysregs`] | typed system registers `aarch64-cpu` lacks |
//! | [`panic`] | the panic handler |

pub mod boot;
pub mod cache;
pub mod console;
pub mod cpu;
pub mod entry;
pub mod exceptions;
pub mod firmware;
pub mod gic;
pub mod gich;
pub mod hw;
pub mod mmu;
pub mod panic;
pub mod sysregs;
pub mod timer;
pub mod trap;
pub mod uart;
pub mod vcpu;
