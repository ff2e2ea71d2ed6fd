//! Host throughput of the queue, for comparison with the partitioned figures of
//! `cargo xtask bench`: one thread streams messages through a ring to another, which checks
//! each (sequence number, CRC, contents); both spin instead of sleeping on a doorbell, so this
//! measures the queue itself (cache-line transfers between cores, copies, CRC-32C).
//!
//! `cargo run --release -p bulkhead-channel --example host_throughput -- [MESSAGES] [PAYLOAD]`

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use bulkhead_channel::{Endpoint, Error, Layout, SharedRegion, Side};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .map_or(2_000_000, |a| a.parse().expect("MESSAGES"));
    let payload: usize = args.next().map_or(240, |a| a.parse().expect("PAYLOAD"));
    let slot = (payload + 16).next_multiple_of(8).max(24);
    let bytes = Layout::region_bytes(slot, 64 * 1024 / slot);
    let words: &'static [AtomicU64] = Box::leak(
        (0..bytes / 8)
            .map(|_| AtomicU64::new(0))
            .collect::<Box<[_]>>(),
    );
    let region = SharedRegion::new(words);
    let mut tx = Endpoint::attach(region, Side::Zero, slot).unwrap();
    let mut rx = Endpoint::attach(region, Side::One, slot).unwrap();

    let start = Instant::now();
    let consumer = std::thread::spawn(move || {
        let mut buf = vec![0u8; payload];
        let mut next = 0u64;
        while next < count {
            match rx.try_recv(&mut buf) {
                Ok(r) => {
                    assert_eq!(r.seq, next);
                    assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), next);
                    next += 1;
                }
                Err(Error::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
    });
    let mut msg = vec![0xa5u8; payload];
    let mut sent = 0u64;
    while sent < count {
        msg[..8].copy_from_slice(&sent.to_le_bytes());
        match tx.try_send(&msg) {
            Ok(_) => sent += 1,
            Err(Error::Full) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
    consumer.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "host: {count} messages of {payload} bytes ({} slots of {slot} bytes): {:.2} s, \
         {:.2} M messages/s, {:.0} MiB/s",
        tx.geometry().slot_count,
        secs,
        count as f64 / secs / 1e6,
        count as f64 * payload as f64 / secs / (1 << 20) as f64
    );
}
