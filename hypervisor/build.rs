//! Links the EL2 image with `link.ld`, only when building for the bare-metal target, so host
//! builds of the library (unit tests, clippy) are unaffected.

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // Position-independent, relocating itself (see link.ld); the relocated places hold
        // their link-time values too, which the entry code reads to know where it was linked.
        for arg in [
            "-pie",
            "-znotext",
            "--no-dynamic-linker",
            "--apply-dynamic-relocs",
        ] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
