//! Board-config model for Bulkhead: what a board offers (platform) and how it is split into
//! partitions, parsed from one flattened device tree and validated once; plus the facts every
//! party shares about the machine a partition sees.
//!
//! This crate is `no_std` and free of hardware access, so the same code checks a board config on
//! the host (`bulkhead check`, `cargo xtask build`) and again inside the hypervisor at boot. It
//! must not know about image files or QEMU: those belong to the host tools.
//!
//! - [`addr`]: guest- and host-physical address types and partition/vCPU/pCPU index types;
//! - [`guest_view`]: the guest's view of the machine (page size, virtual UART window, GIC
//!   layout, vCPU affinity, timer interrupts, channel doorbells), shared with the guest runtime;
//! - [`hypercall`]: the hypercall ABI (function IDs, errors, result encodings), shared with the
//!   guest runtime;
//! - [`monitor`]: the per-partition counters as guests read them (`MONITOR_READ`, the monitor
//!   window) and the table they are printed as;
//! - with the `board` feature (needs `alloc`): [`model`], [`parse`], [`validate`], [`error`],
//!   and [`dma`] (which devices can master the bus).

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "board")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod addr;
pub mod guest_view;
pub mod hypercall;
pub mod monitor;

#[cfg(feature = "board")]
pub mod dma;
#[cfg(feature = "board")]
pub mod error;
#[cfg(feature = "board")]
pub mod model;
#[cfg(feature = "board")]
pub mod parse;
pub mod small_sort;
#[cfg(feature = "board")]
pub mod validate;

pub use addr::{
    Address, ChannelId, GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PartitionId, PcpuId,
    Range, VcpuId,
};
#[cfg(feature = "board")]
pub use error::{ConfigError, ErrorKind};

/// What the hypervisor's own console lines start with, in brackets (`[bulkhead] ...`), as
/// partitions' lines start with their names: so no partition may be called this.
pub const HYPERVISOR_CONSOLE_NAME: &str = "bulkhead";
#[cfg(feature = "board")]
pub use model::*;

/// Parses and validates a board config from a flattened device tree blob.
#[cfg(feature = "board")]
pub fn load(dtb: &[u8]) -> Result<BoardConfig, ConfigError> {
    let config = parse::parse(dtb)?;
    validate::validate(&config)?;
    Ok(config)
}
