//! Host-side tools for Bulkhead, shared by the `bulkhead` CLI and `cargo xtask`:
//!
//! - [`dts`]: compile a board config (`.dts`) to a DTB with `dtc`;
//! - [`check`]: compile and validate a board config, and find the images it names;
//! - [`inspect`]: render a validated board config as a readable table;
//! - [`elf`]: flatten an ELF into a raw binary at its physical load address;
//! - [`guest_dt`]: generate the device tree each partition boots with, and place it in guest RAM;
//! - [`pack`]: append the bundle (board DTB, partition images, guest DTBs, initrds) to the
//!   hypervisor binary, producing the single bootable file.

#![forbid(unsafe_code)]

pub mod check;
pub mod dts;
pub mod elf;
pub mod guest_dt;
pub mod inspect;
pub mod pack;

#[cfg(test)]
pub(crate) mod testutil;
