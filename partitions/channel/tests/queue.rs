//! Single-thread tests of the queue protocol: every error path, back-pressure, doorbell
//! decisions, and rejoining after a restart (with and without the restarted endpoint's state).

use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_channel::{Endpoint, Error, Layout, PeerRestart, PeerStatus, SharedRegion, Side};

const SLOT: usize = 64;
const SLOTS: usize = 4;

/// A zeroed region for `SLOTS` slots of `SLOT` bytes per ring, leaked (tests only).
fn words() -> &'static [AtomicU64] {
    let words = Layout::region_bytes(SLOT, SLOTS) / 8;
    Box::leak((0..words).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>())
}

/// The word at `byte_offset`, for scribbling like a misbehaving peer.
fn word(words: &'static [AtomicU64], byte_offset: usize) -> &'static AtomicU64 {
    &words[byte_offset / 8]
}

fn pair() -> (&'static [AtomicU64], Endpoint<'static>, Endpoint<'static>) {
    let r = words();
    let a = Endpoint::attach(SharedRegion::new(r), Side::Zero, SLOT).unwrap();
    let b = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT).unwrap();
    (r, a, b)
}

/// Byte offsets of control-block words and slots (see the layout module).
const fn block(side: usize) -> usize {
    side * 0x100
}
const HEAD: usize = 0x40;
const TAIL: usize = 0x80;
const fn slot(side: usize, index: usize) -> usize {
    0x200 + (side * SLOTS + index % SLOTS) * SLOT
}

#[test]
fn messages_flow_both_ways_in_order() {
    let (_, mut a, mut b) = pair();
    assert_eq!(a.max_payload(), SLOT - 16);
    for i in 0..10u64 {
        let msg = format!("request {i}");
        let sent = a.try_send(msg.as_bytes()).unwrap();
        assert_eq!(sent.seq, i);
        let mut buf = [0u8; 64];
        let got = b.try_recv(&mut buf).unwrap();
        assert_eq!((got.seq, &buf[..got.len]), (i, msg.as_bytes()));
        b.try_send(&buf[..got.len]).unwrap();
        let got = a.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..got.len], msg.as_bytes());
    }
    assert_eq!(a.stats().sent, 10);
    assert_eq!(b.stats().received, 10);
    // Empty payloads are messages too.
    a.try_send(b"").unwrap();
    assert_eq!(b.try_recv(&mut []).unwrap().len, 0);
}

#[test]
fn full_ring_is_back_pressure_and_the_consumer_rings_when_it_frees_space() {
    let (_, mut a, mut b) = pair();
    for i in 0..SLOTS {
        let sent = a.try_send(&[i as u8; 8]).unwrap();
        // Only the first message finds the consumer possibly waiting (it had consumed all).
        assert_eq!(sent.ring, i == 0, "message {i}");
    }
    assert_eq!(a.try_send(b"x"), Err(Error::Full));
    assert_eq!(a.in_flight(), SLOTS as u64);
    let mut buf = [0u8; 48];
    let first = b.try_recv(&mut buf).unwrap();
    assert!(first.ring, "the ring was full: the producer may be waiting");
    let second = b.try_recv(&mut buf).unwrap();
    assert!(!second.ring);
    a.try_send(b"again").unwrap();
}

#[test]
fn empty_ring_and_absent_peer() {
    let r = words();
    let mut a = Endpoint::attach(SharedRegion::new(r), Side::Zero, SLOT).unwrap();
    assert_eq!(a.peer_status(), Ok(PeerStatus::NotAttached));
    assert_eq!(a.try_send(b"hi"), Err(Error::PeerNotAttached));
    assert_eq!(a.try_recv(&mut [0; 8]), Err(Error::PeerNotAttached));
    let mut b = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT).unwrap();
    assert_eq!(a.peer_status(), Ok(PeerStatus::Ready { epoch: 1 }));
    assert_eq!(b.try_recv(&mut [0; 8]), Err(Error::Empty));
    // The peer coming up for the first time is not a restart.
    assert!(a.try_send(b"hi").is_ok());
    assert_eq!(b.try_recv(&mut [0; 8]).unwrap().len, 2);
}

#[test]
fn local_size_errors_leave_the_message_queued() {
    let (_, mut a, mut b) = pair();
    assert_eq!(
        a.try_send(&[0; SLOT - 15]),
        Err(Error::PayloadTooLarge {
            len: SLOT - 15,
            max: SLOT - 16
        })
    );
    a.try_send(&[7; 20]).unwrap();
    assert_eq!(
        b.try_recv(&mut [0; 10]),
        Err(Error::BufferTooSmall {
            len: 10,
            needed: 20
        })
    );
    let mut buf = [0; 20];
    assert_eq!(b.try_recv(&mut buf).unwrap().len, 20);
    assert_eq!(buf, [7; 20]);
}

#[test]
fn corrupt_slots_are_reported_until_skipped() {
    let (r, mut a, mut b) = pair();
    let mut buf = [0u8; 64];

    // Bad checksum: flip a payload bit.
    a.try_send(b"payload!").unwrap();
    a.try_send(b"next").unwrap();
    word(r, slot(0, 0) + 16).fetch_xor(1, Ordering::Relaxed);
    assert!(matches!(
        b.try_recv(&mut buf),
        Err(Error::BadChecksum { .. })
    ));
    // Still there: reported again, then dropped on request.
    assert!(matches!(
        b.try_recv(&mut buf),
        Err(Error::BadChecksum { .. })
    ));
    assert!(b.try_recv(&mut buf).unwrap_err().is_corruption());
    b.skip().unwrap();
    let got = b.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"next");
    assert_eq!(b.stats().skipped, 1);

    // Oversized length.
    a.try_send(b"x").unwrap();
    word(r, slot(0, 2) + 8).store(u64::from(u32::MAX), Ordering::Relaxed);
    assert_eq!(
        b.try_recv(&mut buf),
        Err(Error::BadLength {
            len: u32::MAX as usize,
            max: SLOT - 16
        })
    );
    b.skip().unwrap();

    // Stale or forged sequence number.
    a.try_send(b"y").unwrap();
    word(r, slot(0, 3)).store(99, Ordering::Relaxed);
    assert_eq!(
        b.try_recv(&mut buf),
        Err(Error::BadSequence {
            expected: 3,
            found: 99
        })
    );
    b.skip().unwrap();
    assert_eq!(b.skip(), Err(Error::Empty));
}

#[test]
fn bogus_indices_are_errors_and_skip_resynchronises() {
    let (r, mut a, mut b) = pair();
    // The producer claims more messages than the ring holds.
    word(r, block(0) + HEAD).store(SLOTS as u64 + 3, Ordering::Relaxed);
    assert_eq!(
        b.try_recv(&mut [0; 64]),
        Err(Error::IndexOutOfRange {
            head: SLOTS as u64 + 3,
            tail: 0
        })
    );
    // The consumer claims to have consumed what was never sent.
    word(r, block(1) + TAIL).store(1000, Ordering::Relaxed);
    assert_eq!(
        a.try_send(b"x"),
        Err(Error::IndexOutOfRange {
            head: 0,
            tail: 1000
        })
    );
    word(r, block(1) + TAIL).store(0, Ordering::Relaxed);
    b.skip().unwrap();
    assert_eq!(b.stats().skipped, SLOTS as u64 + 3);
}

#[test]
fn corrupt_or_foreign_control_blocks_are_refused() {
    let (r, mut a, _b) = pair();
    word(r, block(1)).store(0x1234_5678, Ordering::Relaxed);
    assert_eq!(
        a.try_send(b"x"),
        Err(Error::BadHeader {
            magic: 0x1234_5678,
            version: 0
        })
    );
    assert!(a.try_recv(&mut [0; 8]).unwrap_err().is_corruption());

    // A peer using another slot size cannot attach against us, nor we against it.
    let r = words();
    let _a = Endpoint::attach(SharedRegion::new(r), Side::Zero, SLOT).unwrap();
    let err = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT * 2).unwrap_err();
    assert!(matches!(err, Error::GeometryMismatch { .. }), "{err}");
    assert!(err.to_string().contains("geometry mismatch"));
}

#[test]
fn a_restarted_endpoint_that_kept_its_state_resumes_without_loss() {
    let (r, mut a, mut b) = pair();
    let mut buf = [0u8; 64];
    for i in 0..3u8 {
        a.try_send(&[i]).unwrap();
    }
    b.try_recv(&mut buf).unwrap();
    b.try_send(b"from b's first life").unwrap();
    // b's partition restarts: its handle is gone, shared memory is not.
    let _ = b; // b's partition restarts: the old handle is gone
    let mut b = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT).unwrap();
    assert_eq!(b.attached().epoch, 2);
    assert!(b.attached().resumed);
    // The two messages it had not consumed are delivered to the new incarnation.
    for i in 1..3u8 {
        let got = b.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..got.len], &[i]);
    }
    // The survivor hears about the restart once, then carries on.
    assert_eq!(
        a.try_recv(&mut buf),
        Err(Error::PeerRestarted(PeerRestart {
            epoch: 2,
            resumed: true,
            discarded_at_most: 0
        }))
    );
    let got = a.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"from b's first life");
    a.try_send(b"still talking").unwrap();
    assert_eq!(b.try_recv(&mut buf).unwrap().len, 13);
    assert_eq!(a.stats().peer_restarts, 1);
}

#[test]
fn a_restarted_endpoint_without_state_starts_afresh_and_the_survivor_is_told() {
    let (r, mut a, mut b) = pair();
    let mut buf = [0u8; 64];
    for i in 0..3u8 {
        a.try_send(&[i]).unwrap();
    }
    b.try_recv(&mut buf).unwrap();
    // a sees b consume one, so it knows at most two can be lost.
    a.try_send(&[3]).unwrap();
    b.try_send(b"lost with b's state").unwrap();
    let _ = b; // b's partition restarts: the old handle is gone
               // b's control block is wiped (e.g. scribbled, or the region re-zeroed for b).
    for w in 0..0x100 / 8 {
        word(r, block(1) + w * 8).store(0, Ordering::Relaxed);
    }
    let mut b = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT).unwrap();
    assert!(!b.attached().resumed);
    assert_eq!(b.try_recv(&mut buf), Err(Error::Empty));
    match a.try_send(b"after") {
        Err(Error::PeerRestarted(restart)) => {
            assert!(!restart.resumed);
            assert_eq!(restart.discarded_at_most, 3);
        }
        other => panic!("expected a restart report, got {other:?}"),
    }
    a.try_send(b"after").unwrap();
    let got = b.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"after");
    // What b's previous life had published is not delivered to a: a's consumer followed b.
    assert_eq!(a.try_recv(&mut buf), Err(Error::Empty));
}

#[test]
fn a_detached_peer_can_still_be_drained_and_rejoins_with_a_new_epoch() {
    let (r, mut a, mut b) = pair();
    b.try_send(b"last words").unwrap();
    b.detach();
    assert_eq!(a.peer_status(), Ok(PeerStatus::Offline { epoch: 1 }));
    let mut buf = [0u8; 64];
    assert_eq!(a.try_recv(&mut buf).unwrap().len, 10);
    // Sending to a detached peer queues (it may come back).
    a.try_send(b"queued").unwrap();
    let mut b = Endpoint::attach(SharedRegion::new(r), Side::One, SLOT).unwrap();
    assert_eq!(b.attached().epoch, 2);
    let got = b.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"queued");
    assert!(matches!(a.try_send(b"x"), Err(Error::PeerRestarted(_))));
}

#[test]
fn a_region_smaller_than_one_slot_per_ring_is_refused() {
    let words: &'static [AtomicU64] = Box::leak(
        (0..(0x200 + SLOT) / 8)
            .map(|_| AtomicU64::new(0))
            .collect::<Box<[_]>>(),
    );
    assert!(matches!(
        Endpoint::attach(SharedRegion::new(words), Side::Zero, SLOT),
        Err(Error::RegionTooSmall { .. })
    ));
}
