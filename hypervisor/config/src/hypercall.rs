//! The hypercall ABI between Bulkhead and its guests, defined once for the hypervisor (which
//! serves the calls), the guest runtime (which makes them) and the documentation
//! (`docs/hypercalls.md`, which has the same table).
//!
//! Calls follow the SMC Calling Convention: `HVC #0` (or a trapped `SMC #0`), function ID in
//! `w0`, arguments in `x1..`, results in `x0..x4` (SMCCC 1.2 allows up to `x17`), `x0` negative
//! on error. Bulkhead's own calls are SMC64 fast calls in the **vendor-specific hypervisor
//! service** range (owning entity 6): `0xC600_0000 + n`. The standard queries of that range
//! (call UID, revision) are SMC32 fast calls `0x8600_FFxx`.
//!
//! | function ID | name | arguments | results (x0 = 0) |
//! |---|---|---|---|
//! | `0x8600_FF01` | [`VENDOR_HYP_UID`] | none | x0..x3: [`BULKHEAD_UID`] (no status word) |
//! | `0x8600_FF03` | [`VENDOR_HYP_REVISION`] | none | x0 = major, x1 = minor ([`REVISION`]) |
//! | `0xC600_0001` | [`PARTITION_INFO`] | none | x1 = partition index, x2 = channels it is an endpoint of, x3 = calling vCPU |
//! | `0xC600_0002` | [`CHANNEL_INFO`] | x1 = channel id | [`ChannelInfo`]: x1 = shared memory, x2 = size, x3 = doorbell page \| flags, x4 = doorbell signal |
//! | `0xC600_0003` | [`CHANNEL_RING`] | x1 = channel id | x1 = 1 if the peer runs (rung), 0 if it is stopped (dropped) |
//! | `0xC600_0004` | [`CHANNEL_ID`] | x1 = n | x1 = id of the caller's `n`-th channel (config order) |
//! | `0xC600_0005` | [`MONITOR_READ`] | x1 = partition index, x2 = first field | x1..x4 = fields x2..x2+3 of the partition's counters ([`crate::monitor`]); callers with the `monitor` capability only |
//!
//! Errors ([`Error`]): `-1` not supported (unknown function), `-2` invalid parameters (no such
//! channel, `n` too large, no such partition or field), `-3` not an endpoint (the channel exists,
//! the caller is not one of its endpoints), `-4` denied (the board config does not grant the
//! caller what the call needs).

/// Function ID of the standard "call UID" query of the vendor-specific hypervisor service.
pub const VENDOR_HYP_UID: u32 = 0x8600_FF01;
/// Function ID of the standard "revision" query of the vendor-specific hypervisor service.
pub const VENDOR_HYP_REVISION: u32 = 0x8600_FF03;
/// The calling partition's identity and how many channels it has.
pub const PARTITION_INFO: u32 = 0xC600_0001;
/// Where a channel of the caller is and how it is signalled ([`ChannelInfo`]).
pub const CHANNEL_INFO: u32 = 0xC600_0002;
/// Rings the peer of a channel of the caller, as a write to its doorbell page's `RING` does.
pub const CHANNEL_RING: u32 = 0xC600_0003;
/// The id of the caller's `n`-th channel.
pub const CHANNEL_ID: u32 = 0xC600_0004;
/// Four consecutive counters of a partition (`crate::monitor`), for a caller with the `monitor`
/// capability.
pub const MONITOR_READ: u32 = 0xC600_0005;

/// Every Bulkhead-specific function ID, in table order.
pub const FUNCTIONS: [u32; 5] = [
    PARTITION_INFO,
    CHANNEL_INFO,
    CHANNEL_RING,
    CHANNEL_ID,
    MONITOR_READ,
];

/// Owning entity number of the vendor-specific hypervisor service (bits \[29:24\] of a function
/// ID).
pub const VENDOR_HYP_OWNER: u32 = 6;

/// Whether `function` (w0) belongs to the vendor-specific hypervisor service: these calls are
/// Bulkhead's, never PSCI's nor the firmware's.
pub const fn is_vendor_hyp(function: u32) -> bool {
    // Fast calls only (bit 31); owner in bits [29:24].
    function & (1 << 31) != 0 && (function >> 24) & 0x3f == VENDOR_HYP_OWNER
}

/// Bulkhead's UUID, `97912a6c-bdba-4abb-81fe-86471931c656`, as [`VENDOR_HYP_UID`] returns it:
/// register `n` holds bytes `4n..4n+4` of the UUID, little-endian (as SMCCC and Linux's
/// `UUID_INIT` registers do).
pub const BULKHEAD_UID: [u32; 4] = [0x6c2a_9197, 0xbb4a_babd, 0x4786_fe81, 0x56c6_3119];

/// The ABI's revision ([`VENDOR_HYP_REVISION`]): 1.1 (1.0 had no [`MONITOR_READ`]).
pub const REVISION: (u32, u32) = (1, 1);

/// An error a Bulkhead hypercall returns in x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Unknown function ID (`-1`, SMCCC's `NOT_SUPPORTED`).
    NotSupported,
    /// No such channel, or an index out of range (`-2`).
    InvalidParameters,
    /// The channel exists but the caller is not one of its endpoints (`-3`).
    NotEndpoint,
    /// The board config does not grant the caller what the call needs (`-4`): `MONITOR_READ`
    /// without the `monitor` capability.
    Denied,
}

impl Error {
    /// The value in x0.
    pub const fn code(self) -> i64 {
        match self {
            Error::NotSupported => -1,
            Error::InvalidParameters => -2,
            Error::NotEndpoint => -3,
            Error::Denied => -4,
        }
    }

    /// The error x0 holds, if it holds one of these.
    pub const fn from_code(x0: u64) -> Option<Self> {
        match x0 as i64 {
            -1 => Some(Error::NotSupported),
            -2 => Some(Error::InvalidParameters),
            -3 => Some(Error::NotEndpoint),
            -4 => Some(Error::Denied),
            _ => None,
        }
    }

    /// The name in `docs/hypercalls.md`.
    pub const fn name(self) -> &'static str {
        match self {
            Error::NotSupported => "NOT_SUPPORTED",
            Error::InvalidParameters => "INVALID_PARAMETERS",
            Error::NotEndpoint => "NOT_ENDPOINT",
            Error::Denied => "DENIED",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// How the peer's ring reaches a channel endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A purely virtual, edge-triggered SPI.
    Spi { intid: u32 },
    /// A rising edge on `line` of the partition's doorbell GPIO, whose (level) SPI is `intid`.
    GpioLine { intid: u32, line: u8 },
}

/// x3 bit 0 of [`CHANNEL_INFO`]: the caller is endpoint 1 (else 0).
pub const INFO_ENDPOINT_1: u64 = 1 << 0;
/// x3 bit 1 of [`CHANNEL_INFO`]: the caller may only read the shared memory.
pub const INFO_READ_ONLY: u64 = 1 << 1;
/// x4 bit 63 of [`CHANNEL_INFO`]: the signal is a doorbell GPIO line (bits \[39:32\]), else an
/// SPI; bits \[31:0\] are the INTID either way.
pub const INFO_GPIO: u64 = 1 << 63;

/// What [`CHANNEL_INFO`] returns about one channel of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The shared memory, guest-physical base and size.
    pub shm: u64,
    pub size: u64,
    /// The caller's doorbell page, guest-physical (page-aligned).
    pub doorbell: u64,
    /// The caller's endpoint index, 0 or 1.
    pub endpoint: u8,
    pub read_only: bool,
    /// How the caller is signalled when the peer rings.
    pub signal: Signal,
}

impl ChannelInfo {
    /// x1..x4.
    pub const fn encode(&self) -> [u64; 4] {
        let mut x3 = self.doorbell;
        if self.endpoint == 1 {
            x3 |= INFO_ENDPOINT_1;
        }
        if self.read_only {
            x3 |= INFO_READ_ONLY;
        }
        let x4 = match self.signal {
            Signal::Spi { intid } => intid as u64,
            Signal::GpioLine { intid, line } => INFO_GPIO | (line as u64) << 32 | intid as u64,
        };
        [self.shm, self.size, x3, x4]
    }

    /// Decodes x1..x4.
    pub const fn decode(x: [u64; 4]) -> Self {
        let intid = x[3] as u32;
        Self {
            shm: x[0],
            size: x[1],
            doorbell: x[2] & !0xfff,
            endpoint: (x[2] & INFO_ENDPOINT_1) as u8,
            read_only: x[2] & INFO_READ_ONLY != 0,
            signal: if x[3] & INFO_GPIO != 0 {
                Signal::GpioLine {
                    intid,
                    line: (x[3] >> 32) as u8,
                }
            } else {
                Signal::Spi { intid }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn function_ids_are_fast_smc64_calls_of_the_vendor_hypervisor_service() {
        for f in FUNCTIONS {
            assert!(is_vendor_hyp(f), "{f:#x}");
            assert_eq!(f & (1 << 30), 1 << 30, "SMC64: {f:#x}");
        }
        assert!(is_vendor_hyp(VENDOR_HYP_UID) && is_vendor_hyp(VENDOR_HYP_REVISION));
        // PSCI (owner 4), the Arm architecture calls (0) and standard hypervisor calls (5) are
        // not ours; neither is a yielding call of owner 6.
        for other in [
            0x8400_0000,
            0xC400_0003,
            0x8000_0000,
            0xC500_0001,
            0x4600_0001,
        ] {
            assert!(!is_vendor_hyp(other), "{other:#x}");
        }
    }

    #[test]
    fn the_uid_is_the_uuid_in_little_endian_words() {
        let uuid: [u8; 16] = [
            0x97, 0x91, 0x2a, 0x6c, 0xbd, 0xba, 0x4a, 0xbb, 0x81, 0xfe, 0x86, 0x47, 0x19, 0x31,
            0xc6, 0x56,
        ];
        for (n, word) in BULKHEAD_UID.iter().enumerate() {
            let bytes = [
                uuid[4 * n],
                uuid[4 * n + 1],
                uuid[4 * n + 2],
                uuid[4 * n + 3],
            ];
            assert_eq!(*word, u32::from_le_bytes(bytes));
        }
    }

    #[test]
    fn errors_round_trip() {
        for e in [
            Error::NotSupported,
            Error::InvalidParameters,
            Error::NotEndpoint,
            Error::Denied,
        ] {
            assert_eq!(Error::from_code(e.code() as u64), Some(e));
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::NotEndpoint.to_string(), "NOT_ENDPOINT (-3)");
    }

    #[test]
    fn channel_info_round_trips() {
        let spi = ChannelInfo {
            shm: 0x7000_0000,
            size: 0x1_0000,
            doorbell: 0x7001_0000,
            endpoint: 1,
            read_only: true,
            signal: Signal::Spi { intid: 132 },
        };
        assert_eq!(spi.encode(), [0x7000_0000, 0x1_0000, 0x7001_0003, 132]);
        assert_eq!(ChannelInfo::decode(spi.encode()), spi);
        let gpio = ChannelInfo {
            endpoint: 0,
            read_only: false,
            signal: Signal::GpioLine {
                intid: 133,
                line: 7,
            },
            ..spi
        };
        assert_eq!(gpio.encode()[3], (1 << 63) | (7 << 32) | 133);
        assert_eq!(ChannelInfo::decode(gpio.encode()), gpio);
    }
}
