//! One source's console output waiting for the UART: a fixed-size ring that keeps the newest
//! bytes. A writer never waits and never fails: when the reader falls a whole ring behind, the
//! oldest unread bytes are overwritten, and the reader learns how many it missed. So a partition
//! that out-prints the UART loses only its own oldest output.
//!
//! Alongside the bytes, the ring records *events*: where each line ended, and where the stream
//! was cut (a partition stopped), each with a ticket from a counter shared by all sources, so
//! the reader can print lines of different sources in the order they were completed.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// A point in a source's stream the reader must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A line ended (a newline byte was written) just before this position.
    LineEnd,
    /// The stream was cut here: the source stopped, or its output restarts.
    Cut,
}

/// An event: its kind, the stream position it is at (bytes written before it) and its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub at: u64,
    pub ticket: u64,
}

/// What [`OutputRing::read`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Bytes overwritten before the reader got to them.
    pub lost: u64,
    /// Bytes copied out.
    pub len: usize,
}

/// The newest bytes of one source, and its events.
#[derive(Debug)]
pub struct OutputRing {
    buf: Vec<u8>,
    /// Bytes written since the start.
    written: u64,
    events: VecDeque<Event>,
    max_events: usize,
}

impl OutputRing {
    /// A ring keeping the newest `capacity` bytes (at least 1) and `max_events` events.
    pub fn new(capacity: usize, max_events: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(1)],
            written: 0,
            events: VecDeque::with_capacity(max_events),
            max_events,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Bytes written since the start (the stream position of the next byte).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `byte`, overwriting the oldest byte when full; a newline is a
    /// [`EventKind::LineEnd`] event with a ticket from `tickets`.
    pub fn push(&mut self, byte: u8, tickets: &AtomicU64) {
        let cap = self.capacity();
        self.buf[(self.written % cap) as usize] = byte;
        self.written += 1;
        if byte == b'\n' {
            self.event(EventKind::LineEnd, tickets);
        }
    }

    /// Records a [`EventKind::Cut`] at the current position.
    pub fn cut(&mut self, tickets: &AtomicU64) {
        self.event(EventKind::Cut, tickets);
    }

    fn event(&mut self, kind: EventKind, tickets: &AtomicU64) {
        if self.events.len() >= self.max_events {
            // The reader is far behind: the oldest event loses its place in the order (its
            // bytes are then read as if they had no event; a cut is lost).
            self.events.pop_front();
        }
        self.events.push_back(Event {
            kind,
            at: self.written,
            ticket: tickets.fetch_add(1, Ordering::Relaxed),
        });
    }

    /// The oldest event at or after `pos`, dropping older ones (the reader is past them).
    pub fn next_event(&mut self, pos: u64) -> Option<Event> {
        while let Some(e) = self.events.front() {
            if e.at > pos || (e.at == pos && e.kind == EventKind::Cut) {
                return Some(*e);
            }
            self.events.pop_front();
        }
        None
    }

    /// Drops the event the reader just acted on (`event`, from [`next_event`](Self::next_event)).
    pub fn consume_event(&mut self, event: Event) {
        if self.events.front() == Some(&event) {
            self.events.pop_front();
        }
    }

    /// Copies unread bytes from `*pos` (the reader's position) into `out`, up to `limit` (a
    /// stream position), and advances `*pos`. Bytes overwritten since are skipped and counted.
    pub fn read(&self, pos: &mut u64, limit: u64, out: &mut [u8]) -> Read {
        let cap = self.capacity();
        let oldest = self.written.saturating_sub(cap);
        let lost = oldest.saturating_sub(*pos);
        *pos = (*pos).max(oldest);
        let end = limit.min(self.written);
        let len = usize::try_from(end.saturating_sub(*pos))
            .unwrap_or(usize::MAX)
            .min(out.len());
        for (i, slot) in out[..len].iter_mut().enumerate() {
            *slot = self.buf[((*pos + i as u64) % cap) as usize];
        }
        *pos += len as u64;
        Read { lost, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_all(ring: &mut OutputRing, bytes: &[u8], tickets: &AtomicU64) {
        for b in bytes {
            ring.push(*b, tickets);
        }
    }

    #[test]
    fn keeps_the_newest_bytes_and_counts_the_rest() {
        let tickets = AtomicU64::new(0);
        let mut ring = OutputRing::new(8, 4);
        push_all(&mut ring, b"0123456789AB", &tickets);
        let mut pos = 0;
        let mut out = [0u8; 16];
        let r = ring.read(&mut pos, u64::MAX, &mut out);
        assert_eq!(r, Read { lost: 4, len: 8 });
        assert_eq!(&out[..8], b"456789AB");
        assert_eq!(pos, 12);
        assert_eq!(
            ring.read(&mut pos, u64::MAX, &mut out),
            Read { lost: 0, len: 0 }
        );
    }

    #[test]
    fn reads_stop_at_the_limit_and_the_buffer() {
        let tickets = AtomicU64::new(0);
        let mut ring = OutputRing::new(16, 4);
        push_all(&mut ring, b"abcdefgh", &tickets);
        let mut pos = 0;
        let mut out = [0u8; 3];
        assert_eq!(ring.read(&mut pos, 5, &mut out).len, 3);
        assert_eq!(ring.read(&mut pos, 5, &mut out).len, 2);
        assert_eq!(&out[..2], b"de");
        assert_eq!(ring.read(&mut pos, 5, &mut out).len, 0);
    }

    #[test]
    fn line_ends_and_cuts_are_ticketed_in_order() {
        let tickets = AtomicU64::new(0);
        let mut a = OutputRing::new(64, 4);
        let mut b = OutputRing::new(64, 4);
        push_all(&mut a, b"one\n", &tickets);
        push_all(&mut b, b"two\n", &tickets);
        a.cut(&tickets);
        let ea = a.next_event(0).unwrap();
        let eb = b.next_event(0).unwrap();
        assert_eq!((ea.kind, ea.at), (EventKind::LineEnd, 4));
        assert!(ea.ticket < eb.ticket);
        a.consume_event(ea);
        let cut = a.next_event(4).unwrap();
        assert_eq!((cut.kind, cut.at), (EventKind::Cut, 4));
        assert!(cut.ticket > eb.ticket);
        a.consume_event(cut);
        assert_eq!(a.next_event(4), None);
    }

    #[test]
    fn events_past_the_reader_are_dropped_and_their_number_is_bounded() {
        let tickets = AtomicU64::new(0);
        let mut ring = OutputRing::new(64, 2);
        push_all(&mut ring, b"a\nb\nc\n", &tickets);
        // Only the two newest events are kept.
        assert_eq!(ring.next_event(0).unwrap().at, 4);
        // A reader already past the first of them skips it.
        assert_eq!(ring.next_event(4).unwrap().at, 6);
    }
}
