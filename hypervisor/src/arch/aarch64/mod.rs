//! AArch64 at EL2: the only place with assembly, system registers and real MMIO. It boots the
//! machine, installs the exception vectors, runs the MMU, drives the physical GIC, console UART
//! and timer, calls the firmware, and enters guests; it implements the runtime's arch interface
//! ([`hw::Aarch64`]). What to do about a guest exit or an interrupt is the runtime's decision
//! (`crate::runtime`); this module only moves state between the hardware and it.
//!
//! | module | holds |
//! |---|---|
//! | [`entry`] | the Image header, entry assembly (self-relocation, spin-table entry), per-CPU stacks |
//! | [`boot`] | the boot sequence on the primary and secondary CPUs |
//! | [`smp`] | starting the other CPUs: PSCI `CPU_ON` or spin table |
//! | [`exceptions`] | the vector table |
//! | [`trap`] | the vector handlers and the idle loop |
//! | [`vcpu`] | programming EL2 for a vCPU and entering it |
//! | [`hw`] | the runtime's arch interface |
//! | [`heap`] | the hypervisor's heap and its high-water mark |
//! | [`mmu`], [`cpu`], [`timer`], [`firmware`] | EL2 MMU, CPU identity, time, PSCI calls |
//! | [`power`] | powering off: PSCI, or the board's power controller |
//! | [`bcm2711`] | the Raspberry Pi 4's PM watchdog and console pins |
//! | [`cache`] | zeroing memory and cache maintenance for memory handed to guests |
//! | [`gic`] | the physical GIC of the version the platform has, dispatching to: |
//! | [`gicv3`], [`gicv3_hyp`] | the GICv3, and its virtual interface's system registers |
//! | [`gicv2`], [`gicv2_hyp`] | the GICv2 (GIC-400), and its virtual interface's GICH frame |
//! | [`uart`], [`console`] | the PL011 driver, the console and `log` backend |
//! | [`sysregs`] | typed system registers `aarch64-cpu` lacks |
//! | [`panic`] | the panic handler |

pub mod bcm2711;
pub mod boot;
pub mod cache;
pub mod console;
pub mod cpu;
pub mod entry;
pub mod exceptions;
pub mod firmware;
pub mod gic;
pub mod gicv2;
pub mod gicv2_hyp;
pub mod gicv3;
pub mod gicv3_hyp;
pub mod heap;
pub mod hw;
pub mod mmu;
pub mod panic;
pub mod power;
pub mod smp;
pub mod sysregs;
pub mod timer;
pub mod trap;
pub mod uart;
pub mod vcpu;
