//! The runtime's arch interface ([`Hw`]) on AArch64 with a GICv3 or a GICv2 and a PL011
//! console: each operation delegates to the driver module that owns the hardware ([`Gic`]
//! dispatches to the GIC version the platform has).

use bulkhead_config::{HostPhysAddr, HostRange, PartitionId, PcpuId, PsciConduit};

use super::gic::{self, Gic};
use super::{cache, console, cpu, firmware, mmu, timer};
use crate::console::Typed;
use crate::runtime::hw::{Hw, SpiChange};
use crate::stage2::Stage2Entry;
use crate::vgic::ListReg;

/// This machine: its GIC, and its firmware's PSCI conduit if it has one.
pub struct Aarch64 {
    pub gic: Gic,
    pub conduit: Option<PsciConduit>,
}

impl Hw for Aarch64 {
    const KICK_SGI: u32 = gic::KICK_SGI;
    const MAINTENANCE_IRQ: u32 = gic::MAINTENANCE_IRQ;
    const HYP_TIMER_IRQ: u32 = timer::HYP_TIMER_IRQ;

    fn this_cpu(&self) -> PcpuId {
        cpu::id()
    }

    fn acknowledge(&self) -> Option<u32> {
        self.gic.acknowledge()
    }

    fn priority_drop(&self, intid: u32) {
        self.gic.priority_drop(intid);
    }

    fn deactivate(&self, intid: u32) {
        self.gic.deactivate(intid);
    }

    fn set_enabled(&self, intid: u32, cpu: PcpuId, enable: bool) {
        self.gic.set_enabled(intid, cpu, enable);
    }

    fn set_edge_triggered(&self, intid: u32, cpu: PcpuId, edge: bool) {
        self.gic.set_trigger(intid, cpu, edge);
    }

    fn route_spi(&self, intid: u32, cpu: PcpuId) {
        self.gic.route_spi(intid, cpu);
    }

    fn change_spi(&self, intid: u32, change: SpiChange) {
        self.gic.change_spi(intid, change);
    }

    fn kick(&self, cpu: PcpuId) {
        self.gic.kick(cpu);
    }

    fn enter_direct_mode(&self) {
        self.gic.enter_direct_mode(cpu::id());
    }

    fn acknowledge_fiq(&self) -> Option<u32> {
        self.gic.acknowledge_fiq()
    }

    fn end_fiq(&self, intid: u32) {
        self.gic.end_fiq(intid);
    }

    fn send_sgi(&self, cpu: PcpuId, intid: u32) {
        self.gic.send_sgi(cpu, intid);
    }

    fn lr_count(&self) -> usize {
        self.gic.lr_count()
    }

    fn free_lr(&self) -> Option<usize> {
        self.gic.free_lr()
    }

    fn read_lr(&self, n: usize) -> ListReg {
        self.gic.read_lr(n)
    }

    fn write_lr(&self, n: usize, lr: ListReg) {
        self.gic.write_lr(n, lr);
    }

    fn set_underflow_irq(&self, on: bool) {
        self.gic.set_underflow_irq(on);
    }

    fn reset_vcpu_interface(&self) {
        self.gic.reset_vcpu_interface();
        timer::stop_guest_timers();
    }

    fn firmware_call(&self, function: u32, arg: u64) -> u64 {
        match self.conduit {
            Some(conduit) => firmware::call32(conduit, function, arg),
            // No firmware: nothing it would answer is supported.
            None => smccc::psci::error::NOT_SUPPORTED as i64 as u64,
        }
    }

    fn counter(&self) -> u64 {
        timer::physical_count()
    }

    fn timestamp(&self) -> u64 {
        timer::timestamp()
    }

    fn counter_frequency(&self) -> u64 {
        timer::frequency()
    }

    fn arm_timer_ms(&self, ms: u64) {
        timer::arm_ms(ms);
    }

    fn cancel_timer(&self) {
        timer::cancel();
    }

    fn mmio_read(&self, pa: HostPhysAddr, size: u8) -> u64 {
        let addr = pa.raw() as usize;
        // SAFETY: the runtime checked that `addr..addr + size` lies inside a trapped passthrough
        // device's register window, naturally aligned; the EL2 map maps that device's pages as
        // device memory. Device reads are volatile and of exactly the guest's width.
        unsafe {
            match size {
                1 => u64::from(core::ptr::read_volatile(addr as *const u8)),
                2 => u64::from(core::ptr::read_volatile(addr as *const u16)),
                4 => u64::from(core::ptr::read_volatile(addr as *const u32)),
                _ => core::ptr::read_volatile(addr as *const u64),
            }
        }
    }

    fn mmio_write(&self, pa: HostPhysAddr, size: u8, value: u64) {
        let addr = pa.raw() as usize;
        // SAFETY: as for `mmio_read`: a checked, aligned access inside a trapped device's
        // registers, mapped as device memory at EL2.
        unsafe {
            match size {
                1 => core::ptr::write_volatile(addr as *mut u8, value as u8),
                2 => core::ptr::write_volatile(addr as *mut u16, value as u16),
                4 => core::ptr::write_volatile(addr as *mut u32, value as u32),
                _ => core::ptr::write_volatile(addr as *mut u64, value),
            }
        }
    }

    fn set_stage2_entry(&self, vttbr: u64, entry: &Stage2Entry, value: u64) {
        mmu::set_stage2_entry(vttbr, entry, value);
    }

    fn load(&self, pa: HostPhysAddr, data: &[u8]) {
        // SAFETY: the runtime only loads into a partition's own memory (checked against its
        // regions), which validation placed in RAM outside the hypervisor's memory, which the
        // hypervisor identity-maps, and which nothing uses while the partition does not run.
        let dst = unsafe { core::slice::from_raw_parts_mut(pa.raw() as *mut u8, data.len()) };
        dst.copy_from_slice(data);
        cache::clean_to_poc(HostRange::new(pa, data.len() as u64));
    }

    fn zero(&self, range: HostRange) {
        // SAFETY: as for `load`: a partition's own memory (or a channel's, zeroed at boot before
        // any partition runs), identity-mapped, not in use.
        unsafe { cache::zero(range) };
    }

    fn invalidate_instruction_caches(&self) {
        cache::invalidate_icache();
    }

    fn console_output(&self, partition: PartitionId, byte: u8) -> bool {
        console::console().is_some_and(|c| c.partition_output(partition, byte))
    }

    fn console_pump(&self) -> bool {
        console::console().is_some_and(|c| c.pump())
    }

    fn console_show_partial(&self) -> bool {
        console::console().is_some_and(|c| c.show_partial())
    }

    fn console_flush(&self, partition: PartitionId) {
        if let Some(c) = console::console() {
            c.flush_partition(partition);
        }
    }

    fn console_interrupt(&self, deliver: &mut dyn FnMut(Typed)) -> bool {
        console::console().is_some_and(|c| c.interrupt(deliver))
    }

    fn console_print(&self, text: &str) {
        console::print(format_args!("{text}"));
    }
}
