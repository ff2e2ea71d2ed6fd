//! Where samples go and how a measurement collects them: a sample buffer carved from the free
//! memory above the image (the rest is the compute kernel's scratch space), the warm-up and
//! sampling loop, random delays between samples, and the result line.

use bulkhead_guest_rt::{
    counter_frequency, counter_ticks, free_memory, println, GuestDt, MemoryRange,
};

use crate::stats::{ticks_to_ns, DistributionLine, Summary};

/// Samples taken and thrown away before each measurement: the first runs of new code include
/// QEMU translating it.
pub const WARMUP: usize = 50;

/// The sample buffer (counter ticks) and the free memory above it.
pub struct Samples {
    buf: &'static mut [u64],
    len: usize,
    scratch: MemoryRange,
}

impl Samples {
    /// Takes room for `capacity` samples from the start of the guest's free memory.
    pub fn from_free_memory(dt: &GuestDt, capacity: usize) -> Option<Samples> {
        let free = free_memory(dt)?;
        let bytes = (capacity as u64 * 8).next_multiple_of(4096);
        if bytes >= free.size {
            return None;
        }
        // SAFETY: `free_memory` is guest RAM that nothing else uses (above the image and its
        // stack, below the DTB), 4 KiB aligned, and it stays mapped; this is the only slice made
        // from its first `bytes` bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(free.base as *mut u64, capacity) };
        Some(Samples {
            buf,
            len: 0,
            scratch: MemoryRange {
                base: free.base + bytes,
                size: free.size - bytes,
            },
        })
    }

    /// Free memory above the sample buffer, for the compute kernel.
    pub fn scratch(&self) -> MemoryRange {
        self.scratch
    }

    /// Runs `one` `WARMUP + n` times (at most the buffer's capacity) and keeps the last `n`
    /// results (in counter ticks), then prints the result line in nanoseconds. If `one` fails,
    /// prints `bench: error <name>: <reason>` instead and stops.
    pub fn measure(
        &mut self,
        name: &str,
        n: usize,
        warmup: usize,
        mut one: impl FnMut() -> Result<u64, &'static str>,
    ) {
        self.len = 0;
        let n = n.min(self.buf.len());
        for i in 0..warmup + n {
            match one() {
                Ok(ticks) if i >= warmup => {
                    self.buf[self.len] = ticks;
                    self.len += 1;
                }
                Ok(_) => {}
                Err(reason) => {
                    println!("bench: error {name}: {reason}");
                    return;
                }
            }
        }
        self.report(name);
    }

    /// Prints the result line for the samples taken, converted to nanoseconds.
    fn report(&mut self, name: &str) {
        let Some(ticks) = Summary::of(&mut self.buf[..self.len]) else {
            println!("bench: error {name}: no samples");
            return;
        };
        let frequency = counter_frequency();
        let ns = |t| ticks_to_ns(t, frequency);
        let summary = Summary {
            n: ticks.n,
            min: ns(ticks.min),
            median: ns(ticks.median),
            p99: ns(ticks.p99),
            mean: ns(ticks.mean),
            max: ns(ticks.max),
        };
        println!(
            "{}",
            DistributionLine {
                name,
                unit: "ns",
                summary
            }
        );
    }
}

/// A deterministic xorshift64 generator, for delays between samples and the compute kernel's
/// data: the same sequence on every run, so icount runs repeat exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `low..low + spread` (`low` if `spread` is 0).
    pub fn between(&mut self, low: u64, spread: u64) -> u64 {
        low + self.next() % spread.max(1)
    }
}

/// Spins until the virtual counter reaches `until` (interrupts keep whatever mask they have).
pub fn spin_until(until: u64) {
    while counter_ticks() < until {
        core::hint::spin_loop();
    }
}
