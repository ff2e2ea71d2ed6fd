//! Compute overhead: fixed work, timed with the virtual counter. Each sample fills a buffer (in
//! the free memory above the image) with pseudo-random words and then takes `compute-steps`
//! steps of a random walk over it, each step some integer arithmetic, a read and a write at a
//! data-dependent index. It runs twice:
//!
//! - `compute-cpu`: a `compute-cpu-kib` buffer (default 256 KiB, 64 pages), small enough for
//!   QEMU's software TLB (256 entries) to hold: CPU-bound;
//! - `compute-memory`: a `compute-memory-kib` buffer (default 4 MiB, 1024 pages): nearly every
//!   step misses QEMU's TLB. The guest runs with its MMU off, so natively a refill costs QEMU
//!   almost nothing, while in a partition every refill also walks the stage-2 tables: this is
//!   where a partition's memory-bound overhead shows under TCG.
//!
//! Each walk's checksum is printed (`bench: info compute-cpu-checksum=..`): it must be the same
//! natively and in a partition, or the two did not do the same work.

use bulkhead_guest_rt::{counter_ticks, println};

use crate::config::Config;
use crate::samples::{Rng, Samples};

/// `compute`: `compute-cpu`, then `compute-memory`.
pub fn run(config: &Config, samples: &mut Samples) {
    walk(samples, "compute-cpu", config.compute_cpu_kib, config);
    walk(samples, "compute-memory", config.compute_memory_kib, config);
}

/// One kernel, over a buffer of `kib` KiB.
fn walk(samples: &mut Samples, name: &str, kib: u64, config: &Config) {
    let scratch = samples.scratch();
    let bytes = kib * 1024;
    if bytes > scratch.size {
        println!(
            "bench: error {name}: {kib} KiB do not fit in the {} KiB of free memory",
            scratch.size / 1024
        );
        return;
    }
    let words = (bytes / 8) as usize;
    // SAFETY: the scratch memory is free guest RAM above the sample buffer that nothing else
    // uses; `words` 8-byte words fit in it (checked above) and the base is 4 KiB aligned.
    let buf = unsafe { core::slice::from_raw_parts_mut(scratch.base as *mut u64, words) };
    let steps = config.compute_steps;
    let mut checksum = 0;
    samples.measure(name, config.compute_samples, 1, || {
        let start = counter_ticks();
        checksum = kernel(buf, steps);
        Ok(counter_ticks() - start)
    });
    println!("bench: info {name}-checksum={checksum:#018x}");
}

/// Fills `buf` and walks it; returns the checksum.
fn kernel(buf: &mut [u64], steps: u64) -> u64 {
    let mut rng = Rng::new(0xc0ffee);
    for word in buf.iter_mut() {
        *word = rng.next();
    }
    let len = buf.len() as u64;
    let mut acc: u64 = 0;
    for step in 0..steps {
        let x = rng.next();
        let i = ((x ^ acc) % len) as usize;
        let old = buf[i];
        let new = old
            .rotate_left(5)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(step);
        buf[i] = new;
        acc = acc.wrapping_add(new ^ (old >> 3));
    }
    acc
}
