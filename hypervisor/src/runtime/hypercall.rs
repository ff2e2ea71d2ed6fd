//! Bulkhead's own hypercalls (SMCCC, vendor-specific hypervisor service range): the calling
//! partition's identity, its channels and, for a partition with the `monitor` capability, every
//! partition's counters (`runtime::monitor`). The ABI (function IDs, errors, encodings) is
//! `bulkhead_config::hypercall`, documented in `docs/hypercalls.md`; this module decodes a call
//! ([`Call::decode`]) and serves it for the calling partition only: a channel it is not an
//! endpoint of is refused with `NOT_ENDPOINT`, one that does not exist with
//! `INVALID_PARAMETERS`; `MONITOR_READ` without the capability with `DENIED`.

use bulkhead_config::hypercall::{
    self, ChannelInfo, Error, BULKHEAD_UID, CHANNEL_ID, CHANNEL_INFO, CHANNEL_RING, MONITOR_READ,
    PARTITION_INFO, REVISION, VENDOR_HYP_REVISION, VENDOR_HYP_UID,
};
use bulkhead_config::{ChannelId, VcpuId};

use super::channel::{Endpoint, Ring};
use super::hw::Hw;
use super::partition::Partition;
use super::System;
use crate::frame::TrapFrame;

/// A decoded call of the vendor-specific hypervisor service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Uid,
    Revision,
    PartitionInfo,
    ChannelInfo(u64),
    ChannelRing(u64),
    ChannelId(u64),
    /// Fields `first..first + 4` of partition `partition`'s counters.
    MonitorRead {
        partition: u64,
        first: u64,
    },
    /// Any other function ID of the range.
    Unknown(u32),
}

impl Call {
    /// The call in `x0` (function ID in `w0`) with its arguments in `x1` and `x2`, if it belongs
    /// to the vendor-specific hypervisor service; `None` for every other call (PSCI, SMCCC, ...).
    pub fn decode(x0: u64, x1: u64, x2: u64) -> Option<Self> {
        let function = x0 as u32;
        if !hypercall::is_vendor_hyp(function) {
            return None;
        }
        Some(match function {
            VENDOR_HYP_UID => Call::Uid,
            VENDOR_HYP_REVISION => Call::Revision,
            PARTITION_INFO => Call::PartitionInfo,
            CHANNEL_INFO => Call::ChannelInfo(x1),
            CHANNEL_RING => Call::ChannelRing(x1),
            CHANNEL_ID => Call::ChannelId(x1),
            MONITOR_READ => Call::MonitorRead {
                partition: x1,
                first: x2,
            },
            other => Call::Unknown(other),
        })
    }
}

/// What a served call returns: x0..x4 (x0 = 0 on success).
type Results = Result<[u64; 5], Error>;

impl<H: Hw> System<H> {
    /// Serves `call` for `vcpu` of `p`: writes the results to its registers. The vCPU resumes
    /// after it whatever the outcome.
    pub(super) fn bulkhead_call(
        &self,
        p: &Partition,
        vcpu: VcpuId,
        regs: &mut TrapFrame,
        call: Call,
    ) {
        match self.serve(p, vcpu, call) {
            Ok(results) => regs.x[..5].copy_from_slice(&results),
            Err(e) => {
                log::debug!("{}: hypercall {call:?} refused: {e}", p.name);
                regs.x[0] = e.code() as u64;
            }
        }
    }

    fn serve(&self, p: &Partition, vcpu: VcpuId, call: Call) -> Results {
        match call {
            Call::Uid => {
                let [a, b, c, d] = BULKHEAD_UID.map(u64::from);
                Ok([a, b, c, d, 0])
            }
            Call::Revision => Ok([REVISION.0.into(), REVISION.1.into(), 0, 0, 0]),
            Call::PartitionInfo => Ok([
                0,
                p.id.index() as u64,
                p.channels.endpoints.len() as u64,
                vcpu.index() as u64,
                0,
            ]),
            Call::ChannelId(n) => {
                let e = usize::try_from(n)
                    .ok()
                    .and_then(|n| p.channels.endpoints.get(n))
                    .ok_or(Error::InvalidParameters)?;
                Ok([0, e.channel.index() as u64, 0, 0, 0])
            }
            Call::ChannelInfo(id) => {
                let e = self.endpoint_of(p, id)?;
                let [x1, x2, x3, x4] = ChannelInfo {
                    shm: e.shm.base.raw(),
                    size: e.shm.size,
                    doorbell: e.doorbell.base.raw(),
                    endpoint: e.index,
                    read_only: e.read_only,
                    signal: e.signal,
                }
                .encode();
                Ok([0, x1, x2, x3, x4])
            }
            Call::ChannelRing(id) => {
                let e = self.endpoint_of(p, id)?;
                let delivered = match self.ring(p, e) {
                    Ring::Delivered => 1,
                    Ring::PeerStopped => 0,
                };
                Ok([0, delivered, 0, 0, 0])
            }
            Call::MonitorRead { partition, first } => {
                if !p.config.monitor {
                    return Err(Error::Denied);
                }
                let row = usize::try_from(partition)
                    .ok()
                    .and_then(|i| self.partitions.get(i))
                    .map(|q| self.monitor_row(q))
                    .ok_or(Error::InvalidParameters)?;
                let first = usize::try_from(first)
                    .ok()
                    .filter(|&f| f < row.fields.len())
                    .ok_or(Error::InvalidParameters)?;
                let mut results = [0; 5];
                for (x, value) in results[1..].iter_mut().zip(&row.fields[first..]) {
                    *x = *value;
                }
                Ok(results)
            }
            Call::Unknown(_) => Err(Error::NotSupported),
        }
    }

    /// `p`'s endpoint of channel `id`: `INVALID_PARAMETERS` if there is no such channel,
    /// `NOT_ENDPOINT` if `p` is not one of its endpoints.
    fn endpoint_of<'p>(&self, p: &'p Partition, id: u64) -> Result<&'p Endpoint, Error> {
        let id = usize::try_from(id)
            .ok()
            .filter(|&i| i < self.config.channels.len())
            .map(ChannelId)
            .ok_or(Error::InvalidParameters)?;
        p.channels.endpoint(id).ok_or(Error::NotEndpoint)
    }
}
