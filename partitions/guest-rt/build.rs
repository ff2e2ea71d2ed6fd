//! Build script of the guest runtime: publishes the absolute path of the guest linker script
//! (`guest.ld`) as `links` metadata, so that each guest binary's own build script can read it from
//! `DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT` and pass `-T<path>` to the linker.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = dir.join("guest.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:linker-script={}", script.display());
}
