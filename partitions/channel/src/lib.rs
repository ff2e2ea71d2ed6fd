//! `bulkhead_channel`: message queues over the shared-memory channels Bulkhead gives partitions,
//! for bare-metal guests and Linux userspace alike (`no_std`, no allocation).
//!
//! A channel is a region of memory mapped into two partitions (its *endpoints*, 0 and 1 in the
//! order of the board config), plus a doorbell each: a trapped register page whose write makes
//! the peer's interrupt pending (see `docs/channels.md`). This crate gives the region its
//! meaning:
//!
//! - [`layout`]: a control block per endpoint and one single-producer/single-consumer ring per
//!   direction, so one read-write channel carries requests and answers;
//! - [`Endpoint`]: attach (and re-attach after a restart, with epochs), `try_send`/`try_recv`
//!   with back-pressure ([`Error::Full`]) and validation of everything read from shared memory
//!   (sequence numbers, lengths, CRC-32C, indices, header), and blocking `send`/`recv` over a
//!   [`Transport`] (the doorbell and the wait for the peer's);
//! - [`snapshot`]: latest-value publication for a channel whose other endpoint is read-only
//!   (it cannot write a consumer index, so it cannot use a queue);
//! - `local` (feature `std`): an in-process doorbell pair for host tests;
//! - [`demo`]: the IPC demo's sender and echo loops, shared by Linux and bare metal;
//! - [`echo`]: the request/answer payloads of the IPC demo (checked end to end);
//! - [`doorbell`]: the doorbell page's registers and the guest device-tree binding's names.
//!
//! The memory-ordering protocol (who writes which word, with which barrier, paired with which)
//! is documented in [`endpoint`]. The only `unsafe` is turning a raw mapping into a
//! [`SharedRegion`].

#![cfg_attr(not(test), no_std)]

pub mod crc;
pub mod demo;
pub mod doorbell;
pub mod echo;
pub mod endpoint;
mod error;
pub mod histogram;
pub mod layout;
#[cfg(any(test, feature = "std"))]
pub mod local;
pub mod region;
pub mod snapshot;
mod transport;

pub use endpoint::{Attached, Endpoint, PeerStatus, Received, Sent, Stats};
pub use error::{Error, PeerRestart};
pub use layout::{Geometry, Layout, Side, DEFAULT_SLOT_SIZE};
pub use region::SharedRegion;
pub use transport::{Transport, Wake};
