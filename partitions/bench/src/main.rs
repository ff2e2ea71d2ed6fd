//! `bench`: Bulkhead's benchmark guest. The same image runs **natively** (QEMU boots it directly
//! at EL1 as an arm64 Image, with QEMU's own device tree, GICv3 and PSCI) and **in a partition**
//! (`board-configs/bench/*.dts`), and measures, from inside the guest:
//!
//! | name | what | unit |
//! |---|---|---|
//! | `boot-first-instruction` | physical counter (counts from QEMU's reset) at the image's first instruction | ns |
//! | `boot-first-line` | the same just before the guest prints its first line | ns |
//! | `timer-poll` | virtual timer interrupt seen pending in `ISR_EL1` (IRQs masked, polling) − its compare value | ns |
//! | `timer-irq` | the same, taken in a real IRQ handler (counter read at the vector) | ns |
//! | `hypercall` | round trip of PSCI `PSCI_VERSION` over HVC (the partition's PSCI conduit) | ns |
//! | `mmio` | round trip of a read of the GIC distributor's `GICD_TYPER` (trapped and emulated in a partition, QEMU's GIC natively) | ns |
//! | `console-write` | one byte written to the console UART's data register (the virtual UART's transmit path in a partition, QEMU's PL011 natively); the bytes make 64-byte lines `console-write sample line ...` | ns |
//! | `compute-cpu`, `compute-memory` | fixed work: a random read-modify-write walk over a buffer that QEMU's TLB holds, and over one it does not (see [`compute`]) | ns |
//! | `ipi` | SGI from vCPU 0 (counter before the `ICC_SGI1R_EL1` write) to vCPU 1's handler (counter at its vector), vCPU 1 idling in `wfi` | ns |
//!
//! Boot arguments (`key=value`, from `/chosen/bootargs`, or QEMU's `-append` natively):
//!
//! - `run=a,b,..`: the measurements to run, in this order, from `boot`, `timer-poll`,
//!   `timer-irq`, `hypercall`, `mmio`, `compute`, `console-write`, `ipi` (default: all). `boot` prints both boot
//!   figures, `compute` both compute figures.
//! - `samples=N`: samples per latency measurement (default 2000), after 50 discarded warm-up
//!   ones (the first runs of new code include QEMU's translation of it).
//! - `compute-cpu-kib=N` (default 256), `compute-memory-kib=N` (default 4096), `compute-steps=N`
//!   (walk steps per sample, default 2000000), `compute-samples=N` (default 5).
//! - `wait=input`: before measuring, print `bench: waiting for input` and wait until a byte
//!   arrives on the console (xtask uses it to start measuring once a neighbour partition's load
//!   is running).
//!
//! Results are printed in the line format documented in [`stats`], one line per measurement,
//! then `bench: done`, and the guest powers off (PSCI `SYSTEM_OFF`). A measurement that cannot
//! complete (no interrupt within a second, no second vCPU, ...) prints `bench: error <name>:
//! <reason>` instead and the others still run.
//!
//! On a host target only [`stats`] is compiled (and unit-tested); the binary is an empty stub.

#![cfg_attr(target_os = "none", no_std, no_main)]

// On the host only the unit tests use it.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod stats;

#[cfg(target_os = "none")]
mod compute;
#[cfg(target_os = "none")]
mod config;
#[cfg(target_os = "none")]
mod ipi;
#[cfg(target_os = "none")]
mod roundtrip;
#[cfg(target_os = "none")]
mod samples;
#[cfg(target_os = "none")]
mod timer;

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use bulkhead_guest_rt::{
        counter_frequency, first_instruction_count, physical_counter_ticks, power_off, println,
        GuestDt,
    };

    use crate::config::{Config, Measurement};
    use crate::samples::Samples;
    use crate::stats::{ticks_to_ns, ValueLine};

    bulkhead_guest_rt::entry!(main);

    fn main(dt: GuestDt) -> ! {
        // Read before anything is printed: the time to the first console line.
        let first_line = physical_counter_ticks();
        let frequency = counter_frequency();
        println!(
            "bench: info partition={} vcpus={} counter-hz={frequency}",
            dt.partition_name(),
            dt.cpu_count(),
        );
        let config = Config::from_dt(&dt);
        let Some(mut samples) = Samples::from_free_memory(&dt, config.capacity()) else {
            println!("bench: error all: no free memory for the samples");
            println!("bench: done");
            power_off()
        };

        if config.wait_for_input {
            crate::config::wait_for_input(&dt);
        }

        let n = config.samples;
        for &measurement in config.run() {
            match measurement {
                Measurement::Boot => {
                    for (name, ticks) in [
                        ("boot-first-instruction", first_instruction_count()),
                        ("boot-first-line", first_line),
                    ] {
                        let line = ValueLine {
                            name,
                            unit: "ns",
                            value: ticks_to_ns(ticks, frequency),
                        };
                        println!("{line}");
                    }
                }
                Measurement::TimerPoll => crate::timer::poll(&mut samples, n),
                Measurement::TimerIrq => crate::timer::irq(&mut samples, n),
                Measurement::Hypercall => crate::roundtrip::hypercall(&mut samples, n),
                Measurement::Mmio => crate::roundtrip::mmio(&dt, &mut samples, n),
                Measurement::Compute => crate::compute::run(&config, &mut samples),
                Measurement::ConsoleWrite => crate::roundtrip::console_write(&dt, &mut samples, n),
                Measurement::Ipi => crate::ipi::run(&dt, &mut samples, n),
            }
        }
        println!("bench: done");
        power_off()
    }
}

/// Host stub: the guest only runs on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
