//! The latest-value publication for read-only endpoints: values round-trip, a reader never
//! writes, torn and corrupt records are refused, and a concurrent reader only ever sees whole
//! values.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_channel::snapshot::{Publisher, SnapshotReader};
use bulkhead_channel::{Error, SharedRegion};
use common::words;

fn dump(words: &[AtomicU64]) -> Vec<u64> {
    words.iter().map(|w| w.load(Ordering::Relaxed)).collect()
}

#[test]
fn latest_value_round_trip_without_reader_writes() {
    let w = words(256);
    let reader = SnapshotReader::new(SharedRegion::new(w));
    let mut buf = [0u8; 224];
    assert_eq!(reader.read(&mut buf, 4), Err(Error::Empty));
    let mut publisher = Publisher::attach(SharedRegion::new(w)).unwrap();
    assert_eq!(publisher.max_len(), 224);
    assert_eq!(reader.read(&mut buf, 4), Err(Error::Empty));
    assert_eq!(publisher.publish(b"first").unwrap(), 1);
    assert_eq!(publisher.publish(b"second value").unwrap(), 2);
    let before = dump(w);
    let snap = reader.read(&mut buf, 4).unwrap();
    assert_eq!(
        (snap.generation, &buf[..snap.len]),
        (2, &b"second value"[..])
    );
    assert_eq!(dump(w), before, "a read-only endpoint never writes");
    assert_eq!(
        publisher.publish(&[0; 225]),
        Err(Error::PayloadTooLarge { len: 225, max: 224 })
    );
    // A restarted publisher continues the generation count.
    let mut publisher = Publisher::attach(SharedRegion::new(w)).unwrap();
    assert_eq!(publisher.publish(b"third").unwrap(), 3);
}

#[test]
fn torn_and_corrupt_records_are_refused() {
    let w = words(128);
    let mut publisher = Publisher::attach(SharedRegion::new(w)).unwrap();
    publisher.publish(b"value").unwrap();
    let reader = SnapshotReader::new(SharedRegion::new(w));
    let mut buf = [0u8; 96];
    // A writer stuck in the middle of an update (odd sequence): try again later.
    let seq = w[2].load(Ordering::Relaxed);
    w[2].store(seq + 1, Ordering::Relaxed);
    assert_eq!(reader.read(&mut buf, 3), Err(Error::Full));
    w[2].store(seq, Ordering::Relaxed);
    // Scribbled payload.
    w[4].fetch_xor(1, Ordering::Relaxed);
    assert!(matches!(
        reader.read(&mut buf, 3),
        Err(Error::BadChecksum { .. })
    ));
    // Impossible length, short buffer, foreign header.
    w[3].store(1000, Ordering::Relaxed);
    assert!(matches!(
        reader.read(&mut buf, 3),
        Err(Error::BadLength { len: 1000, .. })
    ));
    w[3].store(50, Ordering::Relaxed);
    assert_eq!(
        reader.read(&mut [0; 10], 3),
        Err(Error::BufferTooSmall {
            len: 10,
            needed: 50
        })
    );
    w[0].store(7, Ordering::Relaxed);
    assert!(matches!(
        reader.read(&mut buf, 3),
        Err(Error::BadHeader { .. })
    ));
}

#[test]
fn a_concurrent_reader_sees_only_whole_values() {
    let w = words(512);
    let writer = std::thread::spawn(move || {
        let mut publisher = Publisher::attach(SharedRegion::new(w)).unwrap();
        for i in 0..200_000u64 {
            let value = [i as u8; 200];
            let mut record = i.to_le_bytes().to_vec();
            record.extend_from_slice(&value[..(i % 190) as usize]);
            publisher.publish(&record).unwrap();
        }
    });
    let reader = SnapshotReader::new(SharedRegion::new(w));
    let mut buf = [0u8; 480];
    let (mut seen, mut last) = (0u64, 0u64);
    while !writer.is_finished() || seen == 0 {
        match reader.read(&mut buf, 1000) {
            Ok(s) => {
                let i = u64::from_le_bytes(buf[..8].try_into().unwrap());
                assert_eq!(s.len, 8 + (i % 190) as usize);
                assert!(
                    buf[8..s.len].iter().all(|&b| b == i as u8),
                    "torn value {i}"
                );
                assert!(s.generation >= last, "generations never go back");
                last = s.generation;
                seen += 1;
            }
            Err(Error::Empty | Error::Full) => {}
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
    assert!(seen > 0);
}
