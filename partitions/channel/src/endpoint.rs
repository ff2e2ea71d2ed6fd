//! One endpoint's handle on a read-write channel: attaching (and re-attaching after a restart),
//! sending and receiving messages, and noticing what the peer did.
//!
//! # Protocol
//!
//! Every word of the region has exactly one writer (see [`crate::layout`]): an endpoint writes
//! its own control block and the slots of its own ring, and only reads the peer's. Nothing ever
//! needs a read-modify-write, so the protocol works on Device memory and across partitions.
//!
//! **Send** (producer `P`, ring `P`, message `i = head`):
//! 1. load the peer's `tail` with *acquire*; `head - tail == slot_count` means [`Error::Full`]
//!    (after a `SeqCst` fence and a second look, see *doorbells*);
//! 2. write the slot (`seq`, `len | crc`, payload) with plain (relaxed) stores;
//! 3. store `head = i + 1` with *release*: pairs with the consumer's acquire load of `head`, so
//!    the consumer that sees `i + 1` sees the whole slot.
//!
//! **Receive** (consumer `C`, message `i = tail`):
//! 1. load the peer's `head` with *acquire* (pairs with step 3 above); `head == tail` means
//!    [`Error::Empty`];
//! 2. read the slot with relaxed loads into a private buffer, then check `seq == i`,
//!    `len <= max`, the CRC, and that the peer's epoch word did not change meanwhile (an
//!    *acquire* fence, then a load: if the peer restarted while the slot was read, the read is
//!    dropped and the restart reported instead);
//! 3. store `tail = i + 1` with *release*: pairs with the producer's acquire load of `tail` in
//!    step 1 of send, so the producer overwrites the slot only after the consumer has read it.
//!
//! **Doorbells**: a sender rings the peer only if the peer may be waiting for it: after
//! publishing message `i`, when the peer's `tail` (loaded after a `SeqCst` fence) is `i` (it had
//! consumed everything, so it may be blocked on `Empty`); a receiver rings after consuming
//! message `i` only when the producer's `head` (again after a `SeqCst` fence) is
//! `i + slot_count` (the ring was full, so the producer may be blocked on `Full`). The waiting
//! side re-checks after its own `SeqCst` fence before reporting `Empty`/`Full`. Each pair of
//! fences is a Dekker handshake: either the waiter sees the new index, or the other side sees
//! the waiter's index and rings, so no wake-up is lost. `try_send`/`try_recv` say whether to
//! ring ([`Sent::ring`], [`Received::ring`]); the blocking [`Endpoint::send`] and
//! [`Endpoint::recv`] do it through a [`Transport`].
//!
//! **Attach and rejoin** (epochs): an endpoint's control block survives its partition's restart
//! (the region is not the partition's memory). Attaching takes a new epoch (one more than both
//! its old epoch and the `peer_epoch` the peer recorded for it, never 0), publishes it with
//! state *attaching*, writes geometry and indices, then sets state *ready* with a release store,
//! then a `SeqCst` fence (so the new epoch is visible before any slot it writes later). If its block was valid and its indices consistent with the peer's,
//! it *resumes*: nothing in flight is lost, messages the peer sent while it was down are
//! received by the new incarnation. Otherwise it starts *afresh*: `head` := the peer's `tail`,
//! `tail` := the peer's `head` (both rings empty). The survivor notices the new epoch on its
//! next operation, which returns [`Error::PeerRestarted`] once, saying whether the peer resumed
//! and, if not, at most how many of the survivor's messages were discarded (those published
//! after the last `tail` it saw the peer publish). A producer that starts afresh withdraws its
//! predecessor's undelivered messages by setting its `head` to the consumer's `tail`; a
//! consumer that finds a producer's `head` out of range follows it. Indices found out of range
//! in a send or receive get a second look at the peer's block: if it changed meanwhile (the
//! peer is restarting, or clearing its block word by word), that is what is reported; only a
//! peer whose block stayed as it was gets [`Error::IndexOutOfRange`].

use core::sync::atomic::{fence, Ordering};

use crate::crc::Crc32c;
use crate::layout::{
    word, Geometry, Layout, Side, MAGIC, STATE_ATTACHING, STATE_OFFLINE, STATE_READY, VERSION,
};
use crate::region::SharedRegion;
use crate::{Error, PeerRestart, Transport, Wake};

/// The epoch word: `epoch | state << 32 | resumed << 40`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EpochWord {
    epoch: u32,
    state: u8,
    resumed: bool,
}

impl EpochWord {
    fn encode(self) -> u64 {
        u64::from(self.epoch) | u64::from(self.state) << 32 | u64::from(self.resumed) << 40
    }

    fn decode(w: u64) -> Self {
        Self {
            epoch: w as u32,
            state: (w >> 32) as u8,
            resumed: (w >> 40) & 1 == 1,
        }
    }
}

/// The peer as this endpoint last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStatus {
    /// Its control block is all zeroes: it never attached.
    NotAttached,
    /// Attached and serving the channel.
    Ready { epoch: u32 },
    /// In the middle of attaching.
    Attaching { epoch: u32 },
    /// Detached; what it sent may still be drained.
    Offline { epoch: u32 },
}

/// What [`Endpoint::attach`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    /// This incarnation's epoch.
    pub epoch: u32,
    /// Whether the previous incarnation's queue state was kept.
    pub resumed: bool,
}

/// A message sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its index in our ring.
    pub seq: u64,
    /// Whether the peer may be waiting for it: ring its doorbell.
    pub ring: bool,
}

/// A message received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Its index in the peer's ring.
    pub seq: u64,
    /// Payload bytes written to the start of the buffer.
    pub len: usize,
    /// Whether the peer may be waiting for the space this freed: ring its doorbell.
    pub ring: bool,
}

/// Counters of one endpoint since it attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    /// Messages dropped with [`Endpoint::skip`].
    pub skipped: u64,
    /// Peer restarts noticed.
    pub peer_restarts: u64,
    /// Sum of [`PeerRestart::discarded_at_most`].
    pub discarded_at_most: u64,
}

/// The peer's incarnation this endpoint is synchronised with.
#[derive(Clone, Copy, Debug)]
struct PeerView {
    /// Its epoch word when we last synchronised (`None`: never seen ready).
    epoch: Option<u32>,
    /// The last `tail` of our ring we saw it publish.
    tail_seen: u64,
}

/// One endpoint of a read-write channel.
#[derive(Debug)]
pub struct Endpoint<'a> {
    region: SharedRegion<'a>,
    layout: Layout,
    side: Side,
    me: Attached,
    /// Our producer index (authoritative; mirrored in our control block).
    head: u64,
    /// Our consumer index (authoritative; mirrored in our control block).
    tail: u64,
    peer: PeerView,
    stats: Stats,
}

/// The peer's control block, read once.
#[derive(Clone, Copy, Debug)]
struct PeerBlock {
    epoch: EpochWord,
    epoch_raw: u64,
    /// Our epoch as the peer last synchronised with it.
    peer_epoch: u32,
    head: u64,
    tail: u64,
}

impl<'a> Endpoint<'a> {
    /// Attaches endpoint `side` to the channel in `region`, with slots of `slot_size` bytes
    /// (both endpoints must use the same), resuming the previous incarnation's queues when its
    /// control block is valid and consistent with the peer's.
    pub fn attach(region: SharedRegion<'a>, side: Side, slot_size: usize) -> Result<Self, Error> {
        let layout = Layout::new(region.len_bytes(), slot_size)?;
        let n = u64::from(layout.geometry.slot_count);
        let own = |w| region.load(Layout::block_word(side, w), Ordering::Acquire);
        let old_epoch = EpochWord::decode(own(word::EPOCH_STATE)).epoch;
        let own_valid = own(word::MAGIC_VERSION) == magic_version()
            && Geometry::decode(own(word::GEOMETRY)) == layout.geometry;
        let (mut head, mut tail) = (own(word::HEAD), own(word::TAIL));

        let peer = read_block(region, side.peer(), layout.geometry)?;
        let consistent = match peer {
            Some(p) => in_range(head, p.tail, n) && in_range(p.head, tail, n),
            None => true,
        };
        let resumed = own_valid && consistent;
        if !resumed {
            (head, tail) = peer.map_or((0, 0), |p| (p.tail, p.head));
        }
        // Higher than our previous epoch and than the one the peer knows us by (our block may
        // have been wiped), so that the peer notices the restart.
        let known = peer.map_or(0, |p| p.peer_epoch);
        let epoch = match old_epoch.max(known).wrapping_add(1) {
            0 => 1,
            e => e,
        };

        let store = |w, v, o| region.store(Layout::block_word(side, w), v, o);
        let attaching = EpochWord {
            epoch,
            state: STATE_ATTACHING,
            resumed,
        };
        store(word::EPOCH_STATE, attaching.encode(), Ordering::Relaxed);
        fence(Ordering::Release);
        store(word::MAGIC_VERSION, magic_version(), Ordering::Relaxed);
        store(word::GEOMETRY, layout.geometry.encode(), Ordering::Relaxed);
        store(word::HEAD, head, Ordering::Relaxed);
        store(word::TAIL, tail, Ordering::Relaxed);
        let peer_epoch = match peer {
            Some(p) if p.epoch.state != STATE_ATTACHING => p.epoch.epoch,
            _ => 0,
        };
        store(word::PEER_EPOCH, u64::from(peer_epoch), Ordering::Relaxed);
        let ready = EpochWord {
            state: STATE_READY,
            ..attaching
        };
        store(word::EPOCH_STATE, ready.encode(), Ordering::Release);
        fence(Ordering::SeqCst);

        let peer_view = match peer {
            Some(p) if p.epoch.state != STATE_ATTACHING => PeerView {
                epoch: Some(p.epoch.epoch),
                tail_seen: p.tail,
            },
            _ => PeerView {
                epoch: None,
                tail_seen: head,
            },
        };
        Ok(Self {
            region,
            layout,
            side,
            me: Attached { epoch, resumed },
            head,
            tail,
            peer: peer_view,
            stats: Stats::default(),
        })
    }

    /// Our side, epoch and whether we resumed.
    pub fn attached(&self) -> Attached {
        self.me
    }

    /// Which endpoint we are.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The ring geometry.
    pub fn geometry(&self) -> Geometry {
        self.layout.geometry
    }

    /// Largest payload [`Self::try_send`] accepts.
    pub fn max_payload(&self) -> usize {
        self.layout.geometry.max_payload()
    }

    /// Counters since attaching.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Messages we published that the peer has not consumed, as of its last published `tail`.
    pub fn in_flight(&self) -> u64 {
        let tail = self.peer_word(word::TAIL, Ordering::Acquire);
        self.head.wrapping_sub(tail)
    }

    /// The peer's state as its control block says now.
    pub fn peer_status(&self) -> Result<PeerStatus, Error> {
        Ok(
            match read_block(self.region, self.side.peer(), self.layout.geometry)? {
                None => PeerStatus::NotAttached,
                Some(p) if p.epoch.state == STATE_READY => PeerStatus::Ready {
                    epoch: p.epoch.epoch,
                },
                Some(p) if p.epoch.state == STATE_ATTACHING => PeerStatus::Attaching {
                    epoch: p.epoch.epoch,
                },
                Some(p) => PeerStatus::Offline {
                    epoch: p.epoch.epoch,
                },
            },
        )
    }

    /// Marks this endpoint detached (state *offline*, same epoch): the peer may still drain
    /// what we sent; attaching again starts a new epoch. Ring the peer afterwards so it notices.
    pub fn detach(self) {
        let offline = EpochWord {
            epoch: self.me.epoch,
            state: STATE_OFFLINE,
            resumed: self.me.resumed,
        };
        self.region.store(
            Layout::block_word(self.side, word::EPOCH_STATE),
            offline.encode(),
            Ordering::Release,
        );
        fence(Ordering::SeqCst);
    }

    /// Publishes `payload` as the next message, or says why not ([`Error::Full`] is
    /// back-pressure: nothing was written).
    pub fn try_send(&mut self, payload: &[u8]) -> Result<Sent, Error> {
        let max = self.max_payload();
        if payload.len() > max {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        self.sync_peer()?;
        let n = u64::from(self.layout.geometry.slot_count);
        let mut tail = self.peer_word(word::TAIL, Ordering::Acquire);
        if self.head.wrapping_sub(tail) == n {
            // Full: look again after a full fence (the Dekker half of the consumer's doorbell
            // decision), so a consumer that freed a slot meanwhile is not missed.
            fence(Ordering::SeqCst);
            tail = self.peer_word(word::TAIL, Ordering::Acquire);
        }
        self.peer.tail_seen = tail;
        let used = self.head.wrapping_sub(tail);
        if used > n {
            return Err(self.out_of_range(self.head, tail));
        }
        if used == n {
            return Err(Error::Full);
        }

        let seq = self.head;
        let slot = self.layout.slot_word(self.side, seq);
        let len = payload.len() as u32;
        let crc = message_crc(seq, len, payload);
        self.region.store(slot, seq, Ordering::Relaxed);
        self.region.store(
            slot + 1,
            u64::from(len) | u64::from(crc) << 32,
            Ordering::Relaxed,
        );
        self.region.write_bytes(slot + 2, payload);
        self.head = seq.wrapping_add(1);
        let tail_now = self.publish(word::HEAD, self.head, word::TAIL);
        self.stats.sent += 1;
        Ok(Sent {
            seq,
            ring: tail_now == seq,
        })
    }

    /// Receives the next message into `buf`, or says why not ([`Error::Empty`]: nothing yet).
    /// A message that fails validation stays queued, so every later call reports it again
    /// until [`Self::skip`] drops it.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Received, Error> {
        let epoch_raw = self.sync_peer()?;
        let n = u64::from(self.layout.geometry.slot_count);
        let peer = self.side.peer();
        let mut head = self.peer_word(word::HEAD, Ordering::Acquire);
        if head == self.tail {
            // Empty: look again after a full fence (the Dekker half of the producer's doorbell
            // decision), so a message published meanwhile is not missed.
            fence(Ordering::SeqCst);
            head = self.peer_word(word::HEAD, Ordering::Acquire);
            if head == self.tail {
                return Err(Error::Empty);
            }
        }
        if head.wrapping_sub(self.tail) > n {
            return Err(self.out_of_range(head, self.tail));
        }

        let seq = self.tail;
        let slot = self.layout.slot_word(peer, seq);
        let found_seq = self.region.load(slot, Ordering::Relaxed);
        let len_crc = self.region.load(slot + 1, Ordering::Relaxed);
        let len = len_crc as u32 as usize;
        let crc = (len_crc >> 32) as u32;
        let max = self.max_payload();
        let checked = if found_seq != seq {
            Err(Error::BadSequence {
                expected: seq,
                found: found_seq,
            })
        } else if len > max {
            Err(Error::BadLength { len, max })
        } else if len > buf.len() {
            Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: len,
            })
        } else {
            self.region.read_bytes(slot + 2, &mut buf[..len]);
            let expected = message_crc(seq, len as u32, &buf[..len]);
            if expected == crc {
                Ok(())
            } else {
                Err(Error::BadChecksum {
                    expected,
                    found: crc,
                })
            }
        };
        // Seqlock-style validation: if the peer restarted while we read the slot, what we read
        // may be half old, half new; report the restart instead.
        fence(Ordering::Acquire);
        let epoch_now = EpochWord::decode(self.peer_word(word::EPOCH_STATE, Ordering::Relaxed));
        if epoch_now.epoch != EpochWord::decode(epoch_raw).epoch {
            self.sync_peer()?;
            return Err(Error::Empty);
        }
        checked?;

        self.tail = seq.wrapping_add(1);
        let head_now = self.publish(word::TAIL, self.tail, word::HEAD);
        self.stats.received += 1;
        Ok(Received {
            seq,
            len,
            ring: head_now.wrapping_sub(seq) == n,
        })
    }

    /// Drops the next message without reading it (e.g. after a validation error). Returns
    /// whether the peer may be waiting for the space (ring its doorbell), or [`Error::Empty`].
    pub fn skip(&mut self) -> Result<bool, Error> {
        self.sync_peer()?;
        let n = u64::from(self.layout.geometry.slot_count);
        let head = self.peer_word(word::HEAD, Ordering::Acquire);
        let avail = head.wrapping_sub(self.tail);
        if avail == 0 {
            return Err(Error::Empty);
        }
        if avail > n {
            // A bogus head: resynchronise with it, dropping everything in between.
            self.stats.skipped += avail;
            self.tail = head;
        } else {
            self.stats.skipped += 1;
            self.tail = self.tail.wrapping_add(1);
        }
        let seq = self.tail.wrapping_sub(1);
        let head_now = self.publish(word::TAIL, self.tail, word::HEAD);
        Ok(head_now.wrapping_sub(seq) == n)
    }

    /// Sends `payload`, waiting on `transport` while the ring is full or the peer is not
    /// attached, and rings the peer's doorbell if it may be waiting. Fails with
    /// [`Error::TimedOut`] if the peer does not ring within the transport's timeout.
    pub fn send<T: Transport>(&mut self, transport: &mut T, payload: &[u8]) -> Result<u64, Error> {
        loop {
            match self.try_send(payload) {
                Ok(sent) => {
                    if sent.ring {
                        transport.ring().map_err(Error::Transport)?;
                    }
                    return Ok(sent.seq);
                }
                Err(Error::Full | Error::PeerNotAttached) => wait(transport)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives a message into `buf`, waiting on `transport` while there is none, and rings the
    /// peer if it may be waiting for the space. Fails with [`Error::TimedOut`] if the peer does
    /// not ring within the transport's timeout.
    pub fn recv<T: Transport>(
        &mut self,
        transport: &mut T,
        buf: &mut [u8],
    ) -> Result<Received, Error> {
        loop {
            match self.try_recv(buf) {
                Ok(received) => {
                    if received.ring {
                        transport.ring().map_err(Error::Transport)?;
                    }
                    return Ok(received);
                }
                Err(Error::Empty | Error::PeerNotAttached) => wait(transport)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Publishes one of our indices (`own`: [`word::HEAD`] or [`word::TAIL`]) with a release
    /// store, then, after a `SeqCst` fence, reads the peer's word `peer`: the store-then-load
    /// half of a doorbell decision (see the module doc).
    fn publish(&self, own: usize, value: u64, peer: usize) -> u64 {
        self.region
            .store(Layout::block_word(self.side, own), value, Ordering::Release);
        fence(Ordering::SeqCst);
        self.peer_word(peer, Ordering::Relaxed)
    }

    fn peer_word(&self, w: usize, order: Ordering) -> u64 {
        self.region
            .load(Layout::block_word(self.side.peer(), w), order)
    }

    /// Checks the peer's control block and, when it has a new incarnation, synchronises with it
    /// and reports the restart once. Returns the peer's epoch word as checked.
    /// What indices out of range mean: the peer restarting or clearing its block while we
    /// looked (reported as such by a second look at its block), or else a corrupt peer.
    fn out_of_range(&mut self, head: u64, tail: u64) -> Error {
        fence(Ordering::SeqCst);
        match self.sync_peer() {
            Ok(_) => Error::IndexOutOfRange { head, tail },
            Err(e) => e,
        }
    }

    fn sync_peer(&mut self) -> Result<u64, Error> {
        let n = u64::from(self.layout.geometry.slot_count);
        let Some(p) = read_block(self.region, self.side.peer(), self.layout.geometry)? else {
            return Err(Error::PeerNotAttached);
        };
        if Some(p.epoch.epoch) == self.peer.epoch {
            return Ok(p.epoch_raw);
        }
        if p.epoch.state == STATE_ATTACHING {
            return Err(Error::PeerNotAttached);
        }
        let first = self.peer.epoch.is_none();
        // Our consumer side: a producer that started afresh set its head to our tail, which
        // withdraws what its predecessor had not delivered; only if that raced with our last
        // receive (or its head is bogus) is the head out of range, and we follow it.
        if !in_range(p.head, self.tail, n) {
            self.tail = p.head;
            self.publish(word::TAIL, self.tail, word::HEAD);
        }
        let discarded_at_most = if p.epoch.resumed || first {
            0
        } else {
            p.tail.wrapping_sub(self.peer.tail_seen).min(n)
        };
        self.peer = PeerView {
            epoch: Some(p.epoch.epoch),
            tail_seen: p.tail,
        };
        self.region.store(
            Layout::block_word(self.side, word::PEER_EPOCH),
            u64::from(p.epoch.epoch),
            Ordering::Relaxed,
        );
        if first {
            return Ok(p.epoch_raw);
        }
        self.stats.peer_restarts += 1;
        self.stats.discarded_at_most += discarded_at_most;
        Err(Error::PeerRestarted(PeerRestart {
            epoch: p.epoch.epoch,
            resumed: p.epoch.resumed,
            discarded_at_most,
        }))
    }
}

/// Sleeps on the transport until the peer rings; a timeout is an error.
fn wait<T: Transport>(transport: &mut T) -> Result<(), Error> {
    match transport.wait().map_err(Error::Transport)? {
        Wake::Signalled => Ok(()),
        Wake::TimedOut => Err(Error::TimedOut),
    }
}

/// Whether `head - tail` (wrapping) is a valid fill level of a ring of `n` slots.
fn in_range(head: u64, tail: u64, n: u64) -> bool {
    head.wrapping_sub(tail) <= n
}

fn magic_version() -> u64 {
    u64::from(MAGIC) | u64::from(VERSION) << 32
}

/// CRC-32C of a message: its sequence number and length (little-endian), then the payload.
fn message_crc(seq: u64, len: u32, payload: &[u8]) -> u32 {
    Crc32c::new()
        .update(&seq.to_le_bytes())
        .update(&len.to_le_bytes())
        .update(payload)
        .finish()
}

/// Reads `side`'s control block: `None` if it is all zeroes (never attached), an error if it
/// is not a version-1 block of our geometry. The epoch word is read first with acquire, then
/// the rest, then the epoch word again: a block being rewritten reads as attaching.
fn read_block(
    region: SharedRegion<'_>,
    side: Side,
    ours: Geometry,
) -> Result<Option<PeerBlock>, Error> {
    let w = |i| Layout::block_word(side, i);
    let epoch_raw = region.load(w(word::EPOCH_STATE), Ordering::Acquire);
    let mv = region.load(w(word::MAGIC_VERSION), Ordering::Relaxed);
    let geometry = region.load(w(word::GEOMETRY), Ordering::Relaxed);
    let head = region.load(w(word::HEAD), Ordering::Relaxed);
    let tail = region.load(w(word::TAIL), Ordering::Relaxed);
    let peer_epoch = region.load(w(word::PEER_EPOCH), Ordering::Relaxed) as u32;
    fence(Ordering::Acquire);
    let again = region.load(w(word::EPOCH_STATE), Ordering::Relaxed);
    // All zero: never attached. Partly zero: being written by an attach or cleared by a peer
    // that starts afresh (its memory zeroed word by word): not attached yet, as far as we can
    // tell (non-zero garbage is another matter, below).
    if mv == 0 || epoch_raw == 0 || geometry == 0 {
        return Ok(None);
    }
    let (magic, version) = (mv as u32, (mv >> 32) as u32);
    if magic != MAGIC || version != VERSION {
        return Err(Error::BadHeader { magic, version });
    }
    let theirs = Geometry::decode(geometry);
    if theirs != ours {
        return Err(Error::GeometryMismatch { ours, theirs });
    }
    let mut epoch = EpochWord::decode(epoch_raw);
    if again != epoch_raw {
        epoch.state = STATE_ATTACHING;
    }
    Ok(Some(PeerBlock {
        epoch,
        epoch_raw,
        peer_epoch,
        head,
        tail,
    }))
}
