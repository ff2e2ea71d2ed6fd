//! The physical GICv3, driven through the `arm-gic` crate: brought up once by the primary CPU,
//! each CPU's redistributor and CPU interface woken by that CPU, and used by EL2 for the console
//! UART's interrupt, for interrupts forwarded to guests and for the "kick" SGI that makes another
//! CPU look at its vCPU again. CPUs are named by their position in the platform's `/cpus`; this
//! module keeps their MPIDRs to route and target them.

use alloc::vec::Vec;
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::{Mutex, Once};

use bulkhead_config::PcpuId;

/// INTID of the SGI one CPU sends another to make it re-examine its vCPU's state.
pub const KICK_SGI: u32 = 0;
/// INTID of the virtual CPU interface's maintenance interrupt (PPI 9).
pub const MAINTENANCE_IRQ: u32 = 25;

struct Gic(GicV3<'static>);

// SAFETY: the driver holds MMIO pointers to the one GIC of the machine; every access goes through
// the mutex below, so moving it between CPUs is sound.
unsafe impl Send for Gic {}

static GIC: Once<Mutex<Gic>> = Once::new();
/// The MPIDR of each CPU, by position.
static MPIDRS: Once<Vec<u64>> = Once::new();

/// Brings the distributor and all redistributors up. Called once, by the primary CPU `cpu`,
/// with the GIC's registers mapped as device memory. `mpidrs` are the CPUs' MPIDRs by position.
///
/// # Safety
/// `gicd` and `gicr` must be the GIC distributor and first redistributor frame, mapped, and not
/// used through any other pointer.
pub unsafe fn init(gicd: usize, gicr: usize, mpidrs: Vec<u64>, cpu: PcpuId) {
    GicCpuInterface::enable_system_register_el2(true);
    let (Some(gicd), Some(gicr)) = (
        NonNull::new(gicd as *mut Gicd),
        NonNull::new(gicr as *mut GicrSgi),
    ) else {
        panic!("the GIC's registers are at address 0");
    };
    // SAFETY: the caller guarantees these are the mapped, unaliased GIC registers.
    let gic = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, mpidrs.len()) };
    let Ok(mut gic) = gic else {
        panic!("GICv3 redistributors not found at {gicr:?}");
    };
    MPIDRS.call_once(|| mpidrs);
    gic.setup(cpu.index());
    GicCpuInterface::set_priority_mask(0xff);
    super::gich::split_eoi();
    let _ = gic.enable_interrupt(int_id(KICK_SGI), Some(cpu.index()), true);
    GIC.call_once(|| Mutex::new(Gic(gic)));
}

/// Wakes this CPU's redistributor and CPU interface. Called by each secondary CPU.
pub fn init_cpu(cpu: PcpuId) {
    GicCpuInterface::enable_system_register_el2(true);
    if let Some(gic) = GIC.get() {
        let mut gic = gic.lock();
        gic.0.init_cpu(cpu.index());
        let _ = gic
            .0
            .enable_interrupt(int_id(KICK_SGI), Some(cpu.index()), true);
    }
    GicCpuInterface::enable_group1(true);
    GicCpuInterface::set_priority_mask(0xff);
    super::gich::split_eoi();
}

fn int_id(intid: u32) -> IntId {
    if intid < 16 {
        IntId::sgi(intid)
    } else if intid < 32 {
        IntId::ppi(intid - 16)
    } else {
        IntId::spi(intid - 32)
    }
}

/// The MPIDR of CPU `cpu`.
fn mpidr(cpu: PcpuId) -> Option<u64> {
    MPIDRS.get()?.get(cpu.index()).copied()
}

/// Enables or disables interrupt `intid`; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_enabled(intid: u32, cpu: PcpuId, enable: bool) {
    let Some(gic) = GIC.get() else { return };
    let _ = gic
        .lock()
        .0
        .enable_interrupt(int_id(intid), Some(cpu.index()), enable);
}

/// Sets an interrupt's trigger; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_trigger(intid: u32, cpu: PcpuId, edge: bool) {
    let Some(gic) = GIC.get() else { return };
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    let _ = gic
        .lock()
        .0
        .set_trigger(int_id(intid), Some(cpu.index()), trigger);
}

/// Routes SPI `intid` to CPU `cpu`.
pub fn route_spi(intid: u32, cpu: PcpuId) {
    let (Some(gic), Some(mpidr)) = (GIC.get(), mpidr(cpu)) else {
        return;
    };
    let _ = gic
        .lock()
        .0
        .distributor()
        .set_routing(int_id(intid), Some(mpidr));
}

/// Enables a level-triggered SPI and routes it to CPU `cpu`.
pub fn enable_spi(intid: u32, cpu: PcpuId) {
    set_trigger(intid, cpu, false);
    route_spi(intid, cpu);
    set_enabled(intid, cpu, true);
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(u32::from)
}

/// Drops the running priority of an acknowledged interrupt without deactivating it (EOImode 1).
pub fn priority_drop(intid: u32) {
    GicCpuInterface::end_interrupt(int_id(intid), InterruptGroup::Group1);
}

/// Sends the kick SGI to CPU `cpu`.
pub fn kick(cpu: PcpuId) {
    let Some(mpidr) = mpidr(cpu) else { return };
    let target = SgiTarget::List {
        affinity3: ((mpidr >> 32) & 0xff) as u8,
        affinity2: ((mpidr >> 16) & 0xff) as u8,
        affinity1: ((mpidr >> 8) & 0xff) as u8,
        target_list: 1 << (mpidr & 0xf),
    };
    let _ = GicCpuInterface::send_sgi(int_id(KICK_SGI), target, SgiTargetGroup::CurrentGroup1);
}
