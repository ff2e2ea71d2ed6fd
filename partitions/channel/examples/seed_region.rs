//! Writes a channel region image in which both endpoints have attached and endpoint 0 has
//! queued requests of the IPC demo, for smoke-testing a bare-metal echo (endpoint 1) on plain
//! QEMU without a live peer: the echo finds its control block valid, resumes it, and answers
//! what is queued (the image is loaded at the channel's address; see
//! `partitions/scripts/qemu-smoke.sh`).
//!
//! `cargo run -p bulkhead-channel --example seed_region -- OUT BYTES REQUESTS [SLOT]`

use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_channel::{echo, Endpoint, SharedRegion, Side};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, bytes, requests, rest @ ..] = &args[..] else {
        eprintln!("usage: seed_region OUT BYTES REQUESTS [SLOT]");
        std::process::exit(2);
    };
    let bytes: usize = bytes.parse().expect("BYTES");
    let requests: u64 = requests.parse().expect("REQUESTS");
    let slot: usize = rest.first().map_or(256, |s| s.parse().expect("SLOT"));
    let words: Vec<AtomicU64> = (0..bytes / 8).map(|_| AtomicU64::new(0)).collect();
    let region = SharedRegion::new(&words);
    let mut ep = Endpoint::attach(region, Side::Zero, slot).unwrap();
    // The echo's "previous incarnation", which the guest resumes.
    Endpoint::attach(region, Side::One, slot).unwrap();
    let mut buf = vec![0u8; ep.max_payload()];
    for seq in 0..requests {
        let len = echo::request(seq, ep.max_payload(), echo::Sizes::Varying, 0, &mut buf).unwrap();
        ep.try_send(&buf[..len])
            .unwrap_or_else(|e| panic!("request {seq}: {e} (more requests than slots?)"));
    }
    let image: Vec<u8> = words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    std::fs::write(out, image).unwrap();
}
