//! The physical GICv3, driven through the `arm-gic` crate: brought up once by the primary CPU,
//! each CPU's redistributor and CPU interface woken by that CPU, and used by EL2 for the console
//! UART's receive interrupt and for the "kick" SGI that makes another CPU look at its state.

use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::{Mutex, Once};

/// SGI one CPU sends another to make it re-examine its vCPU's state (stop, CPU_ON).
pub const KICK_SGI: IntId = IntId::sgi(KICK_SGI_ID);
/// INTID of `KICK_SGI`.
pub const KICK_SGI_ID: u32 = 0;

struct Gic(GicV3<'static>);

// SAFETY: the driver holds MMIO pointers to the one GIC of the machine; every access goes through
// the mutex below, so moving it between CPUs is sound.
unsafe impl Send for Gic {}

static GIC: Once<Mutex<Gic>> = Once::new();

/// Brings the distributor and all redistributors up. Called once, by the primary CPU, with the
/// GIC's registers mapped as device memory.
///
/// # Safety
/// `gicd` and `gicr` must be the GIC distributor and first redistributor frame, mapped, and not
/// used through any other pointer.
pub unsafe fn init(gicd: usize, gicr: usize, cpu_count: usize, cpu: usize) {
    GicCpuInterface::enable_system_register_el2(true);
    // SAFETY: the caller guarantees these are the mapped, unaliased GIC registers.
    let gic = unsafe {
        let gicd = UniqueMmioPointer::new(
            NonNull::new(gicd as *mut Gicd).expect("GICD address is not null"),
        );
        GicV3::new(
            gicd,
            NonNull::new(gicr as *mut GicrSgi).expect("GICR address is not null"),
            cpu_count,
        )
    };
    let Ok(mut gic) = gic else {
        panic!("GICv3 redistributors not found at {gicr:#x}");
    };
    gic.setup(cpu);
    GicCpuInterface::set_priority_mask(0xff);
    super::gich::split_eoi();
    let _ = gic.enable_interrupt(KICK_SGI, Some(cpu), true);
    GIC.call_once(|| Mutex::new(Gic(gic)));
}

/// Wakes this CPU's redistributor and CPU interface. Called by each secondary CPU.
pub fn init_cpu(cpu: usize) {
    GicCpuInterface::enable_system_register_el2(true);
    if let Some(gic) = GIC.get() {
        let mut gic = gic.lock();
        gic.0.init_cpu(cpu);
        let _ = gic.0.enable_interrupt(KICK_SGI, Some(cpu), true);
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

/// Enables or disables interrupt `intid`; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_enabled(intid: u32, cpu: usize, enable: bool) {
    let Some(gic) = GIC.get() else { return };
    let _ = gic
        .lock()
        .0
        .enable_interrupt(int_id(intid), Some(cpu), enable);
}

/// Sets an interrupt's trigger; SGIs and PPIs on the redistributor of CPU `cpu`.
pub fn set_trigger(intid: u32, cpu: usize, edge: bool) {
    let Some(gic) = GIC.get() else { return };
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    let _ = gic.lock().0.set_trigger(int_id(intid), Some(cpu), trigger);
}

/// Routes SPI `intid` to the CPU with affinity `mpidr`.
pub fn route_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    let _ = gic
        .lock()
        .0
        .distributor()
        .set_routing(int_id(intid), Some(mpidr));
}

/// Enables a level-triggered SPI and routes it to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    let mut gic = gic.lock();
    let id = int_id(intid);
    let _ = gic.0.set_trigger(id, None, Trigger::Level);
    let _ = gic.0.distributor().set_routing(id, Some(mpidr));
    let _ = gic.0.enable_interrupt(id, None, true);
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(u32::from)
}

/// Drops the running priority of an acknowledged interrupt without deactivating it (EOImode 1):
/// for an interrupt forwarded to a guest, whose EOI deactivates it.
pub fn priority_drop(intid: u32) {
    GicCpuInterface::end_interrupt(int_id(intid), InterruptGroup::Group1);
}

/// Finishes an interrupt EL2 handled itself: priority drop and deactivation.
pub fn complete(intid: u32) {
    priority_drop(intid);
    super::gich::deactivate(intid);
}

/// Sends the kick SGI to the CPU with affinity `mpidr`.
pub fn kick(mpidr: u64) {
    let target = SgiTarget::List {
        affinity3: ((mpidr >> 32) & 0xff) as u8,
        affinity2: ((mpidr >> 16) & 0xff) as u8,
        affinity1: ((mpidr >> 8) & 0xff) as u8,
        target_list: 1 << (mpidr & 0xf),
    };
    let _ = GicCpuInterface::send_sgi(KICK_SGI, target, SgiTargetGroup::CurrentGroup1);
}
