//! Board-config model for Bulkhead: what a board offers (platform) and how it is split into
//! partitions, parsed from one flattened device tree and validated once.
//!
//! This crate is `no_std` + `alloc` and free of hardware access, so the same code checks a board
//! config on the host (`bulkhead check`, `cargo xtask build`) and again inside the hypervisor at
//! boot. It must not know about image files or QEMU: those belong to the host tools.

#![no_std]

extern crate alloc;

pub mod error;
pub mod model;
pub mod parse;
pub mod validate;

pub use error::{ConfigError, ErrorKind};
pub use model::*;

/// Parses and validates a board config from a flattened device tree blob.
pub fn load(dtb: &[u8]) -> Result<BoardConfig, ConfigError> {
    let config = parse::parse(dtb)?;
    validate::validate(&config)?;
    Ok(config)
}
