//! The portable vCPU runtime: what happens on every guest exit, physical interrupt and
//! partition lifecycle event, as plain Rust that builds and is tested on the host.
//!
//! The runtime decides; the hardware is reached only through the arch interface [`Hw`]
//! (implemented by `arch::aarch64`, and by a recording fake in the host tests). The arch code
//! decodes each exit once ([`crate::exit::Exit`]) and calls [`System::handle_exit`], whose
//! handlers each return an explicit next step that one dispatcher carries out; the arch code
//! then does what [`Continue`] says (return to the guest, idle, power off).
//!
//! | module | holds |
//! |---|---|
//! | [`hw`] | the arch interface |
//! | [`system`] | everything fixed at boot: partitions, CPU assignment, SPI ownership |
//! | [`partition`] | a partition's and its vCPUs' state |
//! | [`dispatch`] | the exit dispatcher: hypercalls (PSCI), MMIO, system registers |
//! | [`hypercall`] | Bulkhead's own hypercalls: the caller's identity and channels |
//! | [`channel`] | channels: doorbell pages, rings, the doorbell GPIO |
//! | [`lifecycle`] | loading, stopping, restarting partitions; power-off |
//! | [`monitor`] | per-partition counters (exits, injections, restarts, faults, CPU time) and their readers |
//! | [`physical_irq`] | physical interrupts: forwarding to guests, the hypervisor's own |
//! | [`vgic`] | a partition's virtual GIC wired to list registers and the physical GIC |
//! | [`virtual_uart`] | a partition's virtual UART wired to the console and its vGIC |
//! | [`uart_shadow`] | the read-only page of the virtual UART's registers a quiet UART is read from |
//! | [`vcpu_run`] | what each physical CPU runs, and how a vCPU starts |

#![forbid(unsafe_code)]

pub mod channel;
pub mod dispatch;
pub mod hw;
pub mod hypercall;
pub mod lifecycle;
pub mod monitor;
pub mod partition;
pub mod physical_irq;
pub mod system;
pub mod uart_shadow;
pub mod vcpu_run;
pub mod vgic;
pub mod virtual_uart;

#[cfg(test)]
mod channel_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod monitor_tests;
#[cfg(test)]
mod tests;

pub use dispatch::Continue;
pub use hw::Hw;
pub use lifecycle::{Fault, Stop};
pub use partition::{Partition, State};
pub use system::{BootError, System};
pub use vcpu_run::VcpuStart;
