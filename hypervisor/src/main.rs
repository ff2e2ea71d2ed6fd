//! The Bulkhead EL2 binary. All of it lives in the library; this file only exists so the target
//! build links an image. On the host it is an empty program so `cargo build --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use bulkhead as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("bulkhead-hypervisor only runs on aarch64-unknown-none; use `cargo xtask run`");
}
