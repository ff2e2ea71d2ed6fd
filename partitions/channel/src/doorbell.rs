//! The doorbell page and the guest device-tree binding of a channel (proposed in
//! `docs/channels.md`, which also has the board-config binding and the hypercalls).
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
//!     bulkhead,endpoint = <0>;              /* our index: 0 or 1 */
//!     bulkhead,channel-id = <0>;            /* the channel's index in the board config */
//!     bulkhead,access = "read-write";       /* or "read-only" */
//! };
//! ```

/// `compatible` of a channel node.
pub const COMPATIBLE: &str = "bulkhead,channel";
/// Second `compatible` string, which Linux's `uio_pdrv_genirq` binds to when loaded with
/// `of_id=generic-uio`.
pub const UIO_COMPATIBLE: &str = "generic-uio";
/// Property holding the endpoint's index.
pub const ENDPOINT_PROPERTY: &str = "bulkhead,endpoint";
/// Property holding the endpoint's access, [`ACCESS_READ_WRITE`] or [`ACCESS_READ_ONLY`].
pub const ACCESS_PROPERTY: &str = "bulkhead,access";
/// Access of an endpoint that may write the region.
pub const ACCESS_READ_WRITE: &str = "read-write";
/// Access of an endpoint that may only read it.
pub const ACCESS_READ_ONLY: &str = "read-only";

/// Size of a doorbell page.
pub const PAGE_SIZE: usize = 0x1000;
/// Offset of the `RING` register.
pub const RING: usize = 0x000;
/// Offset of the `ENDPOINT` register.
pub const ENDPOINT: usize = 0x004;
/// Offset of the `CHANNEL` register.
pub const CHANNEL: usize = 0x008;
