//! Build script of the benchmark guest: when building for the bare-metal target, links it with
//! the guest runtime's linker script (`partitions/guest-rt/guest.ld`) at [`LINK_ADDRESS`]
//! instead of the runtime's default 0x4000_0000, so that the same image also runs natively:
//! QEMU `-kernel` loads an arm64 Image at RAM base + `text_offset` and keeps the first 4 KiB of
//! RAM for its own boot stub. The bench board configs load it there (`load-address`).

/// Link (and load) address of the benchmark guest: 512 KiB into QEMU virt's RAM, the classic
/// arm64 `text_offset`.
const LINK_ADDRESS: u64 = 0x4008_0000;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let script = std::env::var("DEP_BULKHEAD_GUEST_RT_LINKER_SCRIPT")
        .expect("bulkhead-guest-rt publishes its linker script path");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rustc-link-arg-bins=--defsym=__bulkhead_guest_base={LINK_ADDRESS:#x}");
    println!("cargo:rustc-link-arg-bins=-T{script}");
}
