//! The doorbell page and the guest device-tree binding of a channel (see `docs/channels.md`,
//! which also has the board-config binding; the hypercalls are in `docs/hypercalls.md`). The
//! page's layout is `bulkhead_config::guest_view`'s, which the hypervisor emulates.
//!
//! Each endpoint has its own 4 KiB doorbell page, trapped by the hypervisor (never backed by
//! memory). All registers are 32 bits wide and must be accessed with aligned 32-bit accesses:
//!
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x000 | `RING` | write | any value: make the peer endpoint's doorbell interrupt pending |
//! | 0x004 | `ENDPOINT` | read | this endpoint's index in the channel (0 or 1) |
//! | 0x008 | `CHANNEL` | read | the channel's id (its index in the board config) |
//!
//! Other offsets read as 0 and ignore writes. A ring is edge-like: rings before the peer takes
//! its interrupt coalesce into one.
//!
//! Guest device tree, one node per channel the partition is an endpoint of, directly under `/`
//! (the node name is the channel's name; on Linux it is also the UIO device's name):
//!
//! ```dts
//! ipc0@50000000 {
//!     compatible = "bulkhead,channel", "generic-uio";
//!     reg = <0x0 0x50000000 0x0 0x10000>,   /* shared memory */
//!           <0x0 0x50010000 0x0 0x1000>;    /* this endpoint's doorbell page */
//!     reg-names = "shm", "doorbell";
//!     interrupts = <0 40 1>;                /* SPI 40, edge rising: the peer rang */
//!     /* or, with the partition's doorbell GPIO: interrupts-extended = <&gpio line 1>; */
//!     bulkhead,endpoint = <0>;              /* our index: 0 or 1 */
//!     bulkhead,channel-id = <0>;            /* the channel's index in the board config */
//!     bulkhead,access = "read-write";       /* or "read-only" */
//! };
//! ```

use bulkhead_config::guest_view;

/// `compatible` of a channel node.
pub const COMPATIBLE: &str = guest_view::CHANNEL_COMPATIBLE;
/// Second `compatible` string, which Linux's `uio_pdrv_genirq` binds to when loaded with
/// `of_id=generic-uio`.
pub const UIO_COMPATIBLE: &str = guest_view::CHANNEL_UIO_COMPATIBLE;
/// Property holding the endpoint's index.
pub const ENDPOINT_PROPERTY: &str = guest_view::CHANNEL_ENDPOINT_PROPERTY;
/// Property holding the channel's id.
pub const CHANNEL_ID_PROPERTY: &str = guest_view::CHANNEL_ID_PROPERTY;
/// Property holding the endpoint's access, [`ACCESS_READ_WRITE`] or [`ACCESS_READ_ONLY`].
pub const ACCESS_PROPERTY: &str = guest_view::CHANNEL_ACCESS_PROPERTY;
/// Access of an endpoint that may write the region.
pub const ACCESS_READ_WRITE: &str = guest_view::ACCESS_READ_WRITE;
/// Access of an endpoint that may only read it.
pub const ACCESS_READ_ONLY: &str = guest_view::ACCESS_READ_ONLY;

/// Size of a doorbell page.
pub const PAGE_SIZE: usize = guest_view::DOORBELL_PAGE_SIZE as usize;
/// Offset of the `RING` register.
pub const RING: usize = guest_view::DOORBELL_RING as usize;
/// Offset of the `ENDPOINT` register.
pub const ENDPOINT: usize = guest_view::DOORBELL_ENDPOINT as usize;
/// Offset of the `CHANNEL` register.
pub const CHANNEL: usize = guest_view::DOORBELL_CHANNEL as usize;
