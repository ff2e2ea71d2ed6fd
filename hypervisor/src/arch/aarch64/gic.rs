//! The physical GIC, whichever version the platform's device tree describes: a GICv3
//! ([`gicv3`] for the distributor, redistributors and CPU interface, [`gicv3_hyp`] for the
//! virtual interface's system registers) or a GICv2 with the virtualization extensions
//! ([`gicv2`] for the distributor and CPU interface, [`gicv2_hyp`] for the GICH frame). One
//! hypervisor binary drives both: [`Gic`] is chosen at boot from the board config and every
//! operation goes to that version's driver. List registers leave here decoded
//! ([`ListReg`]), so nothing above knows which GIC it is.
//!
//! [`gicv3`]: super::gicv3
//! [`gicv3_hyp`]: super::gicv3_hyp
//! [`gicv2`]: super::gicv2
//! [`gicv2_hyp`]: super::gicv2_hyp

use alloc::vec::Vec;

use bulkhead_config::{BoardConfig, GicVersion, PcpuId};

use super::{gicv2, gicv2_hyp, gicv3, gicv3_hyp};
use crate::runtime::hw::SpiChange;
use crate::vgic::{gich_lr, ich_lr, ListReg};

/// INTID of the SGI one CPU sends another to make it re-examine its vCPU's state. The last SGI:
/// on a `direct-interrupts` partition's cores it is the hypervisor's (Group 0), not the guest's,
/// and guests (Linux among them) use the low SGIs.
pub const KICK_SGI: u32 = 15;
/// INTID of the virtual CPU interface's maintenance interrupt (PPI 9, which the board config
/// checks the platform's GIC uses).
pub const MAINTENANCE_IRQ: u32 = 25;

/// Which GIC the machine has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    V3,
    V2,
}

impl Gic {
    /// The GIC `config`'s platform describes.
    pub fn of(config: &BoardConfig) -> Self {
        if config.platform.gic.is_v2() {
            Gic::V2
        } else {
            Gic::V3
        }
    }

    /// Brings the GIC up (distributor, and this CPU's redistributor or banked registers and CPU
    /// interface), every SPI disabled. Called once, by the primary CPU `cpu`, with the GIC's
    /// registers mapped as device memory.
    ///
    /// # Safety
    /// The registers `config`'s platform names must be mapped and used by no other code.
    pub unsafe fn init(self, config: &BoardConfig, cpu: PcpuId) -> Result<(), gicv3::GicError> {
        let gic = &config.platform.gic;
        let mpidrs: Vec<u64> = config.platform.cpus.iter().map(|c| c.mpidr).collect();
        let gicd = gic.distributor.base.raw() as usize;
        match gic.version {
            GicVersion::V3 => {
                let gicr = gic
                    .redistributors
                    .first()
                    .ok_or(gicv3::GicError::NoRedistributors)?;
                // SAFETY: guaranteed by the caller.
                unsafe {
                    gicv3::init(
                        gicd,
                        gicr.base.raw() as usize,
                        gicr.size as usize,
                        mpidrs,
                        cpu,
                    )
                }
            }
            GicVersion::V2 {
                cpu: gicc, control, ..
            } => {
                // SAFETY: guaranteed by the caller.
                unsafe {
                    gicv2_hyp::init(control.base.raw() as usize);
                    gicv2::init(gicd, gicc.base.raw() as usize, &mpidrs, cpu);
                }
                log::info!(
                    "GICv2 with {} CPU interfaces{}",
                    gicv2::cpu_interfaces(),
                    if gicv2::has_security_extensions() {
                        " (its Non-secure side)"
                    } else {
                        ""
                    }
                );
                Ok(())
            }
        }
    }

    /// Wakes this CPU's part of the GIC. Called by each secondary CPU.
    pub fn init_cpu(self, cpu: PcpuId) {
        match self {
            Gic::V3 => gicv3::init_cpu(cpu),
            Gic::V2 => gicv2::init_cpu(cpu),
        }
    }

    #[inline]
    pub fn acknowledge(self) -> Option<u32> {
        match self {
            Gic::V3 => gicv3::acknowledge(),
            Gic::V2 => gicv2::acknowledge(),
        }
    }

    #[inline]
    pub fn priority_drop(self, intid: u32) {
        match self {
            Gic::V3 => gicv3::priority_drop(intid),
            Gic::V2 => gicv2::priority_drop(intid),
        }
    }

    pub fn deactivate(self, intid: u32) {
        match self {
            Gic::V3 => gicv3_hyp::deactivate(intid),
            Gic::V2 => gicv2::deactivate(intid),
        }
    }

    pub fn set_enabled(self, intid: u32, cpu: PcpuId, enable: bool) {
        match self {
            Gic::V3 => gicv3::set_enabled(intid, cpu, enable),
            Gic::V2 => gicv2::set_enabled(intid, cpu, enable),
        }
    }

    pub fn set_trigger(self, intid: u32, cpu: PcpuId, edge: bool) {
        match self {
            Gic::V3 => gicv3::set_trigger(intid, cpu, edge),
            Gic::V2 => gicv2::set_trigger(intid, cpu, edge),
        }
    }

    pub fn route_spi(self, intid: u32, cpu: PcpuId) {
        match self {
            Gic::V3 => gicv3::route_spi(intid, cpu),
            Gic::V2 => gicv2::route_spi(intid, cpu),
        }
    }

    /// Enables a level-triggered SPI (the console UART's) and routes it to CPU `cpu`.
    pub fn enable_spi(self, intid: u32, cpu: PcpuId) {
        match self {
            Gic::V3 => gicv3::enable_spi(intid, cpu),
            Gic::V2 => gicv2::enable_spi(intid, cpu),
        }
    }

    pub fn change_spi(self, intid: u32, change: SpiChange) {
        match self {
            Gic::V3 => gicv3::change_spi(intid, change),
            Gic::V2 => gicv2::change_spi(intid, change),
        }
    }

    /// Sends the kick SGI to CPU `cpu`. What this CPU wrote before (a virtual interrupt queued
    /// for the target, a guest's message in a channel) is visible to the target before it takes
    /// the SGI: an SGI write is not ordered after earlier stores otherwise.
    pub fn kick(self, cpu: PcpuId) {
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        match self {
            Gic::V3 => gicv3::kick(cpu),
            Gic::V2 => gicv2::kick(cpu),
        }
    }

    /// Sends SGI `intid` to CPU `cpu`, for the guest there: a `direct-interrupts` partition's
    /// SGIs between its own vCPUs (GICv3 only: the configuration refuses such partitions on a
    /// GICv2).
    pub fn send_sgi(self, cpu: PcpuId, intid: u32) {
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        if self == Gic::V3 {
            gicv3::send_sgi(cpu, intid);
        }
    }

    /// Readies this CPU, `cpu`, for a vCPU of a `direct-interrupts` partition
    /// ([`gicv3::enter_direct_mode`]) and turns its virtual CPU interface off.
    pub fn enter_direct_mode(self, cpu: PcpuId) {
        if self == Gic::V3 {
            gicv3::enter_direct_mode(cpu);
            gicv3_hyp::turn_off();
        }
    }

    /// Whether CPU `cpu` runs a `direct-interrupts` partition: it then idles waiting for FIQs
    /// only, leaving its Group 1 interrupts pending for the guest.
    #[inline]
    pub fn is_direct(self, cpu: PcpuId) -> bool {
        self == Gic::V3 && gicv3::is_direct(cpu)
    }

    /// Whether the hypervisor may use Group 0 interrupts (FIQs), which `direct-interrupts`
    /// partitions need.
    pub fn group0_available(self) -> bool {
        self == Gic::V3 && gicv3::group0_available()
    }

    /// Takes the highest-priority pending Group 0 interrupt, if any.
    pub fn acknowledge_fiq(self) -> Option<u32> {
        match self {
            Gic::V3 => gicv3::acknowledge_fiq(),
            Gic::V2 => None,
        }
    }

    /// Ends Group 0 interrupt `intid` (priority drop and deactivation).
    pub fn end_fiq(self, intid: u32) {
        if self == Gic::V3 {
            gicv3::end_fiq(intid);
        }
    }

    /// Number of list registers of this CPU's virtual interface.
    pub fn lr_count(self) -> usize {
        match self {
            Gic::V3 => gicv3_hyp::lr_count(),
            Gic::V2 => gicv2_hyp::lr_count(),
        }
    }

    /// A list register of this CPU that holds no interrupt, if any.
    #[inline]
    pub fn free_lr(self) -> Option<usize> {
        match self {
            Gic::V3 => gicv3_hyp::free_lr(),
            Gic::V2 => gicv2_hyp::free_lr(),
        }
    }

    pub fn read_lr(self, n: usize) -> ListReg {
        match self {
            Gic::V3 => ich_lr::decode(gicv3_hyp::read_lr(n)),
            Gic::V2 => gich_lr::decode(gicv2_hyp::read_lr(n)),
        }
    }

    #[inline]
    pub fn write_lr(self, n: usize, lr: ListReg) {
        match self {
            Gic::V3 => gicv3_hyp::write_lr(n, ich_lr::encode(&lr)),
            Gic::V2 => gicv2_hyp::write_lr(n, gich_lr::encode(&lr)),
        }
    }

    pub fn set_underflow_irq(self, on: bool) {
        match self {
            Gic::V3 => gicv3_hyp::set_underflow_irq(on),
            Gic::V2 => gicv2_hyp::set_underflow_irq(on),
        }
    }

    /// Resets this CPU's virtual interface for a vCPU that starts afresh.
    pub fn reset_vcpu_interface(self) {
        match self {
            Gic::V3 => gicv3_hyp::reset(),
            Gic::V2 => gicv2_hyp::reset(),
        }
    }
}
