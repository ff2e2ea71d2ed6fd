//! The physical GICv3, driven through the `arm-gic` crate: brought up once by the primary CPU,
//! each CPU's redistributor and CPU interface woken by that CPU, and used by EL2 for the console
//! UART's receive interrupt and for the "kick" SGI that makes another CPU look at its state.

use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::{Mutex, Once};

/// SGI one CPU sends another to make it re-examine its vCPU's state (stop, CPU_ON).
pub const KICK_SGI: IntId = IntId::sgi(0);

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
}

/// Enables a level-triggered SPI and routes it to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    let mut gic = gic.lock();
    let id = IntId::spi(intid - 32);
    let _ = gic.0.set_trigger(id, None, Trigger::Level);
    let _ = gic.0.distributor().set_routing(id, Some(mpidr));
    let _ = gic.0.enable_interrupt(id, None, true);
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map(u32::from)
}

/// Ends (and deactivates) an interrupt taken with `acknowledge`.
pub fn end(intid: u32) {
    let id = if intid < 16 {
        IntId::sgi(intid)
    } else if intid < 32 {
        IntId::ppi(intid - 16)
    } else {
        IntId::spi(intid - 32)
    };
    GicCpuInterface::end_interrupt(id, InterruptGroup::Group1);
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
