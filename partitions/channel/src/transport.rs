//! What a channel needs from its environment: a doorbell to ring the peer and a way to sleep
//! until the peer rings. Bare-metal guests implement it with a write to the trapped doorbell
//! page and `wfi` on the doorbell interrupt; Linux userspace with a store to the mapped
//! doorbell page and a blocking `read()` on the UIO device.

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The peer rang (at least once) since the previous wait returned.
    Signalled,
    /// The transport's timeout passed without a ring.
    TimedOut,
}

/// A doorbell pair: ours to ring the peer, the peer's to wake us.
///
/// Contract: a ring of the peer that happens after `wait` last returned is never lost: the
/// next `wait` returns [`Wake::Signalled`] at once (interrupt controllers and UIO's event
/// counter both behave like that). Spurious wake-ups are allowed. Errors are the transport's
/// own codes (e.g. an `errno`).
pub trait Transport {
    /// Rings the peer's doorbell.
    fn ring(&mut self) -> Result<(), i32>;

    /// Sleeps until the peer rings or the transport's timeout passes.
    fn wait(&mut self) -> Result<Wake, i32>;
}
