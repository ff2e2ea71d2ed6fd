//! `hello`: Bulkhead's demonstration guest.
//!
//! Introduces itself with everything it learnt from its device tree and `MPIDR_EL1`, counts
//! `count=N` (boot argument, default 10) steps about 200 ms apart on its console, then powers
//! its partition off with PSCI `SYSTEM_OFF`.
//!
//! On a host target this compiles to an empty stub, so the workspace builds everywhere.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use bulkhead_guest_rt::{delay_ms, mpidr, parse_u64, power_off, println, vcpu_id, GuestDt};

    /// Number of steps counted without a `count=` boot argument.
    const DEFAULT_COUNT: u64 = 10;
    /// Pause between two steps.
    const STEP_MS: u64 = 200;

    bulkhead_guest_rt::entry!(main);

    fn main(dt: GuestDt) -> ! {
        let name = dt.partition_name();
        bulkhead_guest_rt::print!(
            "hello from {name}: vCPU {} of {} (MPIDR {:#x}), memory",
            vcpu_id(),
            dt.cpu_count(),
            mpidr()
        );
        for (i, range) in dt.memory_regions().enumerate() {
            let separator = if i == 0 { " " } else { ", " };
            bulkhead_guest_rt::print!("{separator}{range}");
        }
        println!();

        let count = match dt.bootarg("count") {
            None => DEFAULT_COUNT,
            Some(text) => parse_u64(text).unwrap_or_else(|| {
                println!(
                    "hello from {name}: ignoring bad count={text}, counting to {DEFAULT_COUNT}"
                );
                DEFAULT_COUNT
            }),
        };
        for i in 1..=count {
            delay_ms(STEP_MS);
            println!("count {i}/{count}");
        }

        println!("hello from {name}: done, powering off");
        power_off()
    }
}

/// Host stub: the guest only runs on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
