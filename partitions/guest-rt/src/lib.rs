//! `bulkhead_guest_rt`: the minimal EL1 runtime of Bulkhead's bare-metal Rust guests.
//!
//! A guest binary is entered by the hypervisor at the first byte of its flat image, at EL1h with
//! the MMU and caches off, DAIF masked and `x0` holding the guest-physical address of its device
//! tree. This crate provides everything between that moment and the guest's `main`:
//!
//! - [`entry!`]: names the guest's `fn main(dt: GuestDt) -> !`. The runtime's `_start` (linked
//!   first, see `guest.ld`) sets the stack, zeroes `.bss`, enables FP/SIMD, installs exception
//!   vectors that report and power off, validates and parses the device tree, selects the console
//!   and then calls the guest's main.
//! - [`GuestDt`]: the device-tree queries a guest needs (partition name, memory regions, vCPU
//!   count, `key=value` boot arguments, console UART).
//! - [`Console`] with [`print!`]/[`println!`]: a polled PL011 driver using only `UARTDR` and
//!   `UARTFR` (and `UARTIMSC` for a guest waiting for input with interrupts).
//! - [`power_off`], [`delay_ms`], [`vcpu_id`]/[`mpidr`] and a panic handler that prints the panic
//!   and powers off.
//! - [`gic`]: the GICv3 set up on every vCPU (SGIs/PPIs, acknowledge, end, send SGIs); [`irq`]:
//!   an IRQ handler hook that gets the virtual count at which the interrupt was taken;
//!   [`start_vcpu`]: more vCPUs through PSCI `CPU_ON`, each on its own [`VcpuStack`].
//! - [`first_instruction_count`], [`physical_counter_ticks`] and [`free_memory`] for guests that
//!   measure their boot or need a large buffer.
//! - [`enable_spi`] and [`wait_for_interrupt`]: waiting for an interrupt such as a channel's
//!   doorbell; the channels the partition is an endpoint of ([`GuestDt::channels`],
//!   [`ChannelNode`]); Bulkhead's hypercalls ([`hypercall`]: the partition's identity, its
//!   channels, ringing one).
//!
//! Images start with an arm64 Image header, so QEMU can also boot a guest directly at EL1
//! without a hypervisor (see `entry.rs` and `guest.ld`).
//!
//! On a host target the crate builds as an ordinary `std` library containing only the portable
//! parts (device-tree helpers, console register layout), so `cargo build --workspace` and
//! `cargo clippy --workspace` work; the guest binaries then compile to empty stubs.
//!
//! Guest binaries link with `guest.ld`, whose path this crate's build script publishes as
//! `DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT`; see `partitions/hello/build.rs`.

#![cfg_attr(target_os = "none", no_std)]

pub mod console;
pub mod dt;
pub mod gic;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod irq;
pub mod memory;

#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod exception;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod sleep;
#[cfg(target_os = "none")]
mod smp;

pub use console::Console;
#[cfg(target_os = "none")]
pub use cpu::{
    counter_frequency, counter_ticks, delay_ms, mpidr, physical_counter_ticks, power_off, reset,
    vcpu_id,
};
pub use dt::{find_bootarg, parse_u64, ChannelNode, GuestDt, MemoryRange};
#[cfg(target_os = "none")]
pub use entry::first_instruction_count;
pub use fdt;
#[cfg(target_os = "none")]
pub use memory::free_memory;
#[cfg(target_os = "none")]
pub use sleep::{enable_spi, sleep_until, wait_for_interrupt, Wake};
#[cfg(target_os = "none")]
pub use smp::{start_vcpu, StartError, VcpuStack, VCPU_STACK_SIZE};

/// Names the guest's entry function, which the runtime calls once the device tree is parsed and
/// the console is set up.
///
/// The function must have the signature `fn(GuestDt) -> !`. Use it once per guest binary:
///
/// ```ignore
/// bulkhead_guest_rt::entry!(main);
///
/// fn main(dt: bulkhead_guest_rt::GuestDt) -> ! {
///     bulkhead_guest_rt::println!("hello from {}", dt.partition_name());
///     bulkhead_guest_rt::power_off()
/// }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The symbol the runtime calls after initialisation; forwards to the named function.
        #[doc(hidden)]
        #[unsafe(export_name = "__bulkhead_guest_main")]
        pub fn __bulkhead_guest_main(dt: $crate::GuestDt) -> ! {
            let main: fn($crate::GuestDt) -> ! = $main;
            main(dt)
        }
    };
}
