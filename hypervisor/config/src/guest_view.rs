//! The machine a partition sees: every fact about the guest's view that more than one party
//! needs, defined once. The hypervisor emulates it, the host tools describe it in the guest's
//! device tree, and the guest runtime drives it; all three take these definitions from here.
//!
//! - Memory is mapped by 4 KiB pages ([`PAGE_SIZE`]); stage 2 translates [`IPA_BITS`] bits.
//! - vCPU `n` has the affinity `0.0.0.n` ([`vcpu_mpidr`]), whatever physical CPU runs it.
//! - The virtual PL011 is one [`VUART_SIZE`] register window.
//! - The virtual GICv3 has a [`GICD_SIZE`] distributor and, per vCPU, [`GICR_STRIDE`] of
//!   redistributor frames (RD_base and SGI_base, no VLPI frames); the virtual GICv2 (on a
//!   platform with a GICv2) a [`GICV2_DIST_SIZE`] distributor and a [`GICV2_CPU_SIZE`] CPU
//!   interface, and vCPU `n` is its CPU interface `n`.
//! - The EL1 virtual and physical timers interrupt on [`VTIMER_PPI`] and [`PTIMER_PPI`].
//! - Each endpoint of a channel has a trapped doorbell page of [`DOORBELL_PAGE_SIZE`] bytes
//!   whose registers are [`DOORBELL_RING`], [`DOORBELL_ENDPOINT`] and [`DOORBELL_CHANNEL`]; a
//!   partition with a doorbell GPIO (an emulated PL061 of [`DOORBELL_GPIO_SIZE`] bytes) is
//!   signalled on its lines instead, at most [`DOORBELL_GPIO_LINES`] of them (see
//!   `docs/channels.md`).

use crate::addr::VcpuId;

/// The stage-2 translation granule: memory is mapped, and must be described, in whole pages.
pub const PAGE_SIZE: u64 = 4096;

/// Guest-physical address bits stage 2 translates: a partition's addresses lie below
/// [`IPA_LIMIT`].
pub const IPA_BITS: u32 = 39;
/// One past the highest guest-physical address (512 GiB).
pub const IPA_LIMIT: u64 = 1 << IPA_BITS;

/// `addr` rounded down to a page boundary.
pub const fn page_align_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// `addr` rounded up to a page boundary, or `None` if that overflows.
pub const fn page_align_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(a) => Some(page_align_down(a)),
        None => None,
    }
}

/// Size of the virtual PL011's register window (its `virtual-uart` page).
pub const VUART_SIZE: u64 = 0x1000;

/// Size of the distributor (GICD) window of the virtual GICv3.
pub const GICD_SIZE: u64 = 0x1_0000;
/// Size of one redistributor frame (RD_base or SGI_base).
pub const GICR_FRAME_SIZE: u64 = 0x1_0000;
/// Distance between two vCPUs' redistributors: RD_base + SGI_base, no VLPI frames.
pub const GICR_STRIDE: u64 = 2 * GICR_FRAME_SIZE;

/// Size of the distributor (GICD) window of the virtual GICv2 (the 4 KiB of registers GICv2
/// defines).
pub const GICV2_DIST_SIZE: u64 = 0x1000;
/// Size of the CPU interface (GICC) window of the virtual GICv2, the virtual CPU interface
/// (GICV) mapped there: 8 KiB, `GICC_DIR` included.
pub const GICV2_CPU_SIZE: u64 = 0x2000;
/// Most vCPUs a partition on a GICv2 can have: the GICv2 has 8 CPU interfaces, and a vCPU's
/// interface number (its bit in `GICD_ITARGETSR`, its SGIs' source) is its index.
pub const GICV2_MAX_VCPUS: usize = 8;

/// Size of the redistributor region of a partition with `vcpus` vCPUs.
pub const fn gicr_size(vcpus: usize) -> u64 {
    vcpus as u64 * GICR_STRIDE
}

/// Most vCPUs a partition can have: vCPU `n` is `Aff0` = `n`, and `Aff0` is 8 bits wide.
pub const MAX_VCPUS: usize = 256;

/// The MPIDR affinity (`Aff3.Aff2.Aff1.Aff0` = `0.0.0.n`) vCPU `n` has, in `VMPIDR_EL2`, in its
/// `/cpus/cpu@n` node's `reg`, in its redistributor's `GICR_TYPER` and as an SGI or PSCI target.
pub const fn vcpu_mpidr(vcpu: VcpuId) -> u64 {
    vcpu.0 as u64 & 0xff
}

/// The vCPU whose affinity is `mpidr` (only the affinity fields count), if the partition has
/// `count` vCPUs and one of them has it.
pub const fn vcpu_of_mpidr(mpidr: u64, count: usize) -> Option<VcpuId> {
    /// Aff3 (\[39:32\]) and Aff2..Aff0 (\[23:0\]).
    const AFFINITY: u64 = 0xff_00ff_ffff;
    let aff = mpidr & AFFINITY;
    if aff < count as u64 && aff < MAX_VCPUS as u64 {
        Some(VcpuId(aff as usize))
    } else {
        None
    }
}

/// The EL1 virtual timer's interrupt (PPI 11).
pub const VTIMER_PPI: u32 = 27;
/// The EL1 (non-secure) physical timer's interrupt (PPI 14).
pub const PTIMER_PPI: u32 = 30;
/// The timer interrupts a guest owns on each of its vCPUs' cores, forwarded to it.
pub const GUEST_TIMER_PPIS: [u32; 2] = [VTIMER_PPI, PTIMER_PPI];
/// The architected timer's interrupts as the guest's `/timer` node lists them when the platform
/// names none (QEMU virt's): secure physical, non-secure physical, virtual, hypervisor.
pub const DEFAULT_TIMER_PPIS: [u32; 4] = [29, PTIMER_PPI, VTIMER_PPI, 26];

/// Size of a channel endpoint's doorbell page (trapped, never backed by memory).
pub const DOORBELL_PAGE_SIZE: u64 = PAGE_SIZE;
/// Offset of the doorbell page's `RING` register: a 32-bit write of any value rings the peer.
pub const DOORBELL_RING: u64 = 0x000;
/// Offset of the doorbell page's `ENDPOINT` register: reads this endpoint's index (0 or 1).
pub const DOORBELL_ENDPOINT: u64 = 0x004;
/// Offset of the doorbell page's `CHANNEL` register: reads the channel's id.
pub const DOORBELL_CHANNEL: u64 = 0x008;

/// `compatible` of a channel's node in the guest device tree, and of a channel node under
/// `/hypervisor` in the board config.
pub const CHANNEL_COMPATIBLE: &str = "bulkhead,channel";
/// Second `compatible` of a channel's guest node: Linux's `uio_pdrv_genirq` binds to it when
/// loaded with `of_id=generic-uio`.
pub const CHANNEL_UIO_COMPATIBLE: &str = "generic-uio";
/// Property of a channel's guest node: the partition's endpoint index (0 or 1).
pub const CHANNEL_ENDPOINT_PROPERTY: &str = "bulkhead,endpoint";
/// Property of a channel's guest node: the channel's id (what the hypercalls take).
pub const CHANNEL_ID_PROPERTY: &str = "bulkhead,channel-id";
/// Property of a channel's guest node (and of an endpoint in the board config): the access,
/// [`ACCESS_READ_WRITE`] or [`ACCESS_READ_ONLY`].
pub const CHANNEL_ACCESS_PROPERTY: &str = "bulkhead,access";
/// Access of an endpoint that may write the channel's memory.
pub const ACCESS_READ_WRITE: &str = "read-write";
/// Access of an endpoint that may only read it.
pub const ACCESS_READ_ONLY: &str = "read-only";

/// Size of the register window of a partition's doorbell GPIO (an emulated PL061).
pub const DOORBELL_GPIO_SIZE: u64 = 0x1000;
/// Lines of a doorbell GPIO: line `n` is the partition's `n`-th channel (config order).
pub const DOORBELL_GPIO_LINES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(page_align_down(0x1fff), 0x1000);
        assert_eq!(page_align_up(0x1001), Some(0x2000));
        assert_eq!(page_align_up(0x1000), Some(0x1000));
        assert_eq!(page_align_up(u64::MAX), None);
    }

    #[test]
    fn affinity() {
        assert_eq!(vcpu_mpidr(VcpuId(3)), 3);
        assert_eq!(vcpu_of_mpidr(3, 4), Some(VcpuId(3)));
        assert_eq!(vcpu_of_mpidr(4, 4), None);
        assert_eq!(vcpu_of_mpidr(0x100, 4), None, "Aff1 = 1 is no vCPU");
        assert_eq!(
            vcpu_of_mpidr(0x8000_0001, 4),
            Some(VcpuId(1)),
            "bit 31 is RES1"
        );
        assert_eq!(gicr_size(2), 0x4_0000);
    }
}
