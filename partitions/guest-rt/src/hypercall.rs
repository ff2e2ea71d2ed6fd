//! Bulkhead's hypercalls from a bare-metal guest: `HVC #0` with the function IDs, results and
//! errors of `bulkhead_config::hypercall` (the ABI, documented in `docs/hypercalls.md`).

pub use bulkhead_config::hypercall::{ChannelInfo, Error, Signal};
use bulkhead_config::hypercall::{
    BULKHEAD_UID, CHANNEL_ID, CHANNEL_INFO, CHANNEL_RING, MONITOR_READ, PARTITION_INFO,
    VENDOR_HYP_UID,
};
use bulkhead_config::monitor::{Row, FIELDS};
use smccc::Call;

/// x0..x4 after calling `function` with `x1` and `x2`.
fn call(function: u32, x1: u64, x2: u64) -> [u64; 5] {
    let mut args = [0u64; 17];
    args[0] = x1;
    args[1] = x2;
    let r = smccc::Hvc::call64(function, args);
    [r[0], r[1], r[2], r[3], r[4]]
}

/// x1..x4 of a successful call, or its error.
fn checked(function: u32, x1: u64) -> Result<[u64; 4], Error> {
    checked2(function, x1, 0)
}

/// The same with a second argument.
fn checked2(function: u32, x1: u64, x2: u64) -> Result<[u64; 4], Error> {
    let [x0, a, b, c, d] = call(function, x1, x2);
    match Error::from_code(x0) {
        Some(e) => Err(e),
        None if x0 == 0 => Ok([a, b, c, d]),
        // Not a Bulkhead answer (another hypervisor, or none).
        None => Err(Error::NotSupported),
    }
}

/// Whether the hypervisor says it is Bulkhead (the vendor-specific hypervisor service's UID).
pub fn is_bulkhead() -> bool {
    let [a, b, c, d, _] = call(VENDOR_HYP_UID, 0, 0);
    [a, b, c, d] == BULKHEAD_UID.map(u64::from)
}

/// The calling partition's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its index in the board config.
    pub partition: u64,
    /// How many channels it is an endpoint of.
    pub channels: u64,
    /// The calling vCPU.
    pub vcpu: u64,
}

/// `PARTITION_INFO`.
pub fn partition_info() -> Result<PartitionInfo, Error> {
    let [partition, channels, vcpu, _] = checked(PARTITION_INFO, 0)?;
    Ok(PartitionInfo {
        partition,
        channels,
        vcpu,
    })
}

/// `CHANNEL_ID`: the id of the partition's `n`-th channel.
pub fn channel_id(n: u64) -> Result<u64, Error> {
    Ok(checked(CHANNEL_ID, n)?[0])
}

/// `CHANNEL_INFO` of channel `id`.
pub fn channel_info(id: u64) -> Result<ChannelInfo, Error> {
    checked(CHANNEL_INFO, id).map(ChannelInfo::decode)
}

/// `CHANNEL_RING` of channel `id`: whether the peer runs (and was rung).
pub fn channel_ring(id: u64) -> Result<bool, Error> {
    Ok(checked(CHANNEL_RING, id)?[0] == 1)
}

/// `MONITOR_READ`: fields `first..first + 4` of partition `partition`'s counters (0 past the
/// last field). `DENIED` without the `monitor` capability, `INVALID_PARAMETERS` if there is no
/// such partition or field.
pub fn monitor_read(partition: u64, first: u64) -> Result<[u64; 4], Error> {
    checked2(MONITOR_READ, partition, first)
}

/// Every field of partition `partition`'s counters, four at a time (so each value is as recent
/// as its call).
pub fn monitor_row(partition: u64) -> Result<Row, Error> {
    let mut row = Row {
        fields: [0; FIELDS],
    };
    for first in (0..FIELDS).step_by(4) {
        let values = monitor_read(partition, first as u64)?;
        for (field, value) in row.fields[first..].iter_mut().zip(values) {
            *field = value;
        }
    }
    Ok(row)
}
