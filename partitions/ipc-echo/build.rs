//! Build script of a Bulkhead guest binary: when building for the bare-metal target, links the
//! binary with the guest runtime's linker script (`partitions/guest-rt/guest.ld`, whose path
//! `bulkhead-guest-rt` publishes through its `links` metadata). Host builds are left alone, so the
//! binary compiles there as an empty stub.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let script = std::env::var("DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT")
        .expect("bulkhead-guest-rt publishes its linker script path");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rustc-link-arg-bins=-T{script}");
}
