//! The portable half of the virtual GIC: register models and injection bookkeeping, tested on
//! the host. A partition sees the GIC version of its platform: a GICv3, or on a platform with a
//! GICv2 (a Raspberry Pi 4's GIC-400) a GICv2; both views share one SPI model and one bank of
//! SGIs and PPIs per vCPU.
//!
//! # What this module owns
//!
//! - [`distributor::VirtualDistributor`]: the guest-visible state of one partition's GICD page
//!   (64 KiB). Only the SPIs the partition owns (its passthrough devices' INTIDs and, if any, the
//!   virtual SPI of its virtual UART) have state; every other interrupt reads as zero and ignores
//!   writes.
//! - [`redistributor::VirtualRedistributor`] / [`redistributor::RedistributorRegion`]: the
//!   guest-visible state of each vCPU's GICR frames (RD_base + SGI_base, 2 x 64 KiB per vCPU):
//!   the banked SGIs and PPIs, the `GICR_WAKER` handshake and the `GICR_TYPER` topology.
//! - [`distributor_v2`]: the GICv2 distributor page (4 KiB) over the same SPI model and, banked
//!   in it, the accessing vCPU's SGIs and PPIs (held by its [`VirtualRedistributor`], there being
//!   no redistributors in a GICv2), plus what only a GICv2 has: `GICD_ITARGETSR`, `GICD_SGIR`,
//!   `GICD_[CS]PENDSGIR`. A GICv2 guest's CPU interface is the hardware's virtual one (GICV),
//!   which the runtime maps where the guest expects its GICC.
//! - [`sgi`]: decoding of a trapped `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`/`ICC_SGI0R_EL1`, which
//!   share the layout) into the set of target vCPUs of the same partition.
//! - [`list_regs`]: the per-vCPU queue of virtual interrupts waiting for a list register, and
//!   list registers decoded ([`ListReg`]); [`ich_lr`] is their GICv3 `ICH_LR<n>_EL2` encoding,
//!   [`gich_lr`] their GICv2 `GICH_LR<n>` one.
//!
//! # What it must not touch
//!
//! Nothing here reads or writes a system register, performs MMIO or contains assembly. The
//! runtime (`crate::runtime::vgic`) gets the guest's trapped access (stage-2 fault on the
//! GICD/GICR pages, `ICC_SGI1R_EL1` trap), calls in with plain values, and applies what comes
//! back: register values to return to the guest, and [`VgicAction`]s to apply to the physical
//! GIC. The model never names a physical CPU (routing is expressed as a vCPU of the partition;
//! the runtime maps it to that vCPU's physical CPU) and
//! never produces an action for an interrupt the partition does not own, so a guest cannot use the
//! vGIC to reach another partition's or the hypervisor's interrupts. Banked interrupts (SGIs and
//! PPIs) are purely virtual here: the redistributor reports the guest's changes to them, and the
//! runtime decides which ones (the guest timers' PPIs) are mirrored to the hardware.
//!
//! All guest-provided values (offsets, sizes, written values, `ICC_SGI1R_EL1` contents) are
//! untrusted: bad accesses come back as [`AccessError`], never as a panic.
//!
//! # The guest's view
//!
//! On a GICv2 platform, see [`distributor_v2`]: a GICv2 without Security Extensions, vCPU `n`
//! being CPU interface `n`. Otherwise the guest sees a GICv3 with affinity routing enabled
//! (`ARE_NS` = 1, not writable), from the Non-secure side of a GIC with two Security states
//! (`GICD_CTLR.DS` = 0), no LPIs/ITS, no extended SPI/PPI ranges, and the topology of the guest's
//! view ([`bulkhead_config::guest_view::vcpu_mpidr`]: vCPU `n` has affinity `0.0.0.n`). The layout
//! of the GICD and GICR windows is the guest view's too.

#![forbid(unsafe_code)]

pub mod distributor;
pub mod distributor_v2;
pub mod gich_lr;
pub mod ich_lr;
pub mod list_regs;
pub mod redistributor;
mod regs;
pub mod sgi;

use core::fmt;

use bulkhead_config::VcpuId;

pub use distributor::VirtualDistributor;
pub use list_regs::{ListReg, LrState, PendingQueue, PushOutcome, VirtualIrq};
pub use redistributor::{frame_for, RedistributorRegion, VirtualRedistributor};
pub use sgi::{sgi_targets, Sgi1r, VcpuSet};

pub use bulkhead_config::guest_view::{GICD_SIZE, GICR_FRAME_SIZE, GICR_STRIDE, MAX_VCPUS};
/// First SPI INTID.
pub const SPI_BASE: u32 = 32;
/// Highest INTID an SPI can have (1020..1023 are special).
pub const MAX_SPI_INTID: u32 = 1019;
/// Number of SGIs + PPIs (banked per vCPU).
pub const BANKED_IRQS: u32 = 32;

/// `GICD_IIDR`/`GICR_IIDR`: ProductID 0x42 ('B' for Bulkhead), variant 0, revision 0, and no
/// JEP106 implementer code (0), so a guest applies no vendor erratum workaround to the vGIC.
pub const IIDR_VALUE: u32 = 0x4200_0000;
/// `GICD_PIDR2`/`GICR_PIDR2`: ArchRev (bits 7:4) = 3, i.e. GICv3. Other ID registers read 0.
pub const PIDR2_VALUE: u32 = 0x30;

/// Why a trapped access could not be performed. The model's state is unchanged. The runtime
/// decides what the guest sees: a size/alignment/range error stops the partition with a report;
/// for [`AccessError::UnknownRegister`] the architecture makes reserved locations RES0, so the
/// access completes as read-as-zero/write-ignored (and is logged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The access size (bytes) is not one this register supports (e.g. 2, or 8 on a 32-bit
    /// register, or 1 on a register that is not byte-accessible).
    BadSize { offset: u64, size: u8 },
    /// The offset is not aligned to the access size.
    Misaligned { offset: u64, size: u8 },
    /// The access lies (partly) outside the emulated window.
    OutOfRange { offset: u64 },
    /// No register is emulated at this offset (reserved, or a feature the vGIC does not offer,
    /// like LPIs, extended SPIs or message-based SPIs).
    UnknownRegister { offset: u64 },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSize { offset, size } => {
                write!(f, "unsupported {size}-byte access at offset {offset:#x}")
            }
            Self::Misaligned { offset, size } => {
                write!(f, "misaligned {size}-byte access at offset {offset:#x}")
            }
            Self::OutOfRange { offset } => write!(f, "offset {offset:#x} outside the window"),
            Self::UnknownRegister { offset } => write!(f, "no register at offset {offset:#x}"),
        }
    }
}

/// Invalid partition configuration given to a constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A partition needs at least one vCPU.
    NoVcpus,
    /// More vCPUs than [`MAX_VCPUS`].
    TooManyVcpus(usize),
    /// An owned interrupt is not an SPI (below 32), is above the physical GIC's highest SPI or
    /// above 1019.
    InvalidSpi(u32),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => write!(f, "a partition needs at least one vCPU"),
            Self::TooManyVcpus(n) => write!(f, "{n} vCPUs (at most {MAX_VCPUS})"),
            Self::InvalidSpi(intid) => write!(f, "INTID {intid} is not a valid SPI"),
        }
    }
}

/// A change the guest made that the glue has to apply to the physical GIC (for owned SPIs) or may
/// mirror (for banked SGIs/PPIs, see [`redistributor`]). Actions for one write come in register
/// bit order; each is idempotent, so the glue can simply apply them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicAction {
    /// Enable (`GICD_ISENABLER`) or disable (`GICD_ICENABLER`) the interrupt.
    Enable { intid: u32, enable: bool },
    /// The guest's priority byte for the interrupt (the glue may remap it for the hardware).
    SetPriority { intid: u32, prio: u8 },
    /// Edge-triggered (`true`) or level-sensitive (`false`).
    SetTrigger { intid: u32, edge: bool },
    /// Route the SPI to this vCPU of the partition (the glue maps it to its physical CPU).
    Route { intid: u32, vcpu: VcpuId },
    /// Make the interrupt pending (`ISPENDR`).
    SetPending { intid: u32 },
    /// Clear the pending state (`ICPENDR`).
    ClearPending { intid: u32 },
    /// Make the interrupt active (`ISACTIVER`).
    SetActive { intid: u32 },
    /// Clear the active state (`ICACTIVER`), e.g. Linux deactivating everything at probe.
    ClearActive { intid: u32 },
    /// Make SGI `intid` pending on vCPU `target`, sent by vCPU `source` (a GICv2 guest's
    /// `GICD_SGIR` or `GICD_SPENDSGIR`). Both vCPUs are the partition's.
    SendSgi {
        intid: u32,
        target: VcpuId,
        source: VcpuId,
    },
}

/// Actions produced by a distributor write.
pub type DistAction = VgicAction;
/// Actions produced by a redistributor write.
pub type RedistAction = VgicAction;

/// Most actions one register write can produce (one per bit of a 32-bit register).
pub const MAX_ACTIONS: usize = 32;

/// A fixed-capacity list of [`VgicAction`]s (no allocation on the trap path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actions {
    buf: [VgicAction; MAX_ACTIONS],
    len: usize,
}

impl Actions {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            buf: [VgicAction::ClearPending { intid: 0 }; MAX_ACTIONS],
            len: 0,
        }
    }

    /// The actions, in order.
    pub fn as_slice(&self) -> &[VgicAction] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no action.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates over the actions.
    pub fn iter(&self) -> core::slice::Iter<'_, VgicAction> {
        self.as_slice().iter()
    }

    /// Appends an action. A register write touches at most 32 interrupts, so the list never
    /// overflows; should it ever, further actions are dropped rather than panicking.
    pub(crate) fn push(&mut self, action: VgicAction) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = action;
            self.len += 1;
        }
    }
}

impl Default for Actions {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> IntoIterator for &'a Actions {
    type Item = &'a VgicAction;
    type IntoIter = core::slice::Iter<'a, VgicAction>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
