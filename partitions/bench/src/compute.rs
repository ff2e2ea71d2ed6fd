//! Compute overhead: fixed CPU- and memory-bound work, timed with the virtual counter. Each
//! sample fills a buffer (`compute-kib`, in the free memory above the image) with pseudo-random
//! words and then takes `compute-steps` steps of a random walk over it, each step some integer
//! arithmetic, a read and a write at a data-dependent index. Under QEMU the random accesses
//! miss its software TLB often, and in a partition each refill also walks the stage-2 tables,
//! which is where a partition's compute overhead shows.
//!
//! The walk's checksum is printed (`bench: info compute-checksum=..`): it must be the same
//! natively and in a partition, or the two did not do the same work.

use bulkhead_guest_rt::{counter_ticks, println};

use crate::config::Config;
use crate::samples::{Rng, Samples};

/// `compute`.
pub fn run(config: &Config, samples: &mut Samples) {
    let scratch = samples.scratch();
    let bytes = config.compute_kib * 1024;
    if bytes > scratch.size {
        println!(
            "bench: error compute: compute-kib={} does not fit in the {} KiB of free memory",
            config.compute_kib,
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
    samples.measure("compute", config.compute_samples, 1, || {
        let start = counter_ticks();
        checksum = kernel(buf, steps);
        Ok(counter_ticks() - start)
    });
    println!("bench: info compute-checksum={checksum:#018x}");
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
