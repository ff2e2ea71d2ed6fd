//! A fake of the arch interface for host tests: it records every call, keeps per-CPU list
//! registers and a queue of physical interrupts to acknowledge, and lets a test choose which
//! physical CPU is "this" one.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use bulkhead_config::{GuestPhysAddr, HostPhysAddr, HostRange, PartitionId, PcpuId};

use super::hw::{Hw, SpiChange};
use crate::console::Typed;
use crate::stage2::Stage2Entry;
use crate::vgic::ListReg;

/// A call the runtime made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    PriorityDrop(u32),
    Deactivate(u32),
    SetEnabled(u32, PcpuId, bool),
    SetEdgeTriggered(u32, PcpuId, bool),
    RouteSpi(u32, PcpuId),
    Kick(PcpuId),
    /// `enter_direct_mode` on this CPU.
    DirectMode(PcpuId),
    EndFiq(u32),
    SendSgi(PcpuId, u32),
    Underflow(bool),
    ResetVcpuInterface,
    ArmTimer(u64),
    CancelTimer,
    Load(HostPhysAddr, usize),
    Zero(HostRange),
    InvalidateInstructionCaches,
    ConsolePump,
    ConsoleShowPartial,
    ConsoleFlush(PartitionId),
    Firmware(u32, u64),
    MmioRead(HostPhysAddr, u8),
    ChangeSpi(u32, SpiChange),
    MmioWrite(HostPhysAddr, u8, u64),
    SetStage2Entry {
        vttbr: u64,
        ipa: GuestPhysAddr,
        valid: bool,
    },
}

/// Number of list registers each fake CPU has.
pub const LRS: usize = 4;

#[derive(Default)]
pub struct FakeHw {
    cpu: AtomicUsize,
    pub calls: Mutex<Vec<Call>>,
    /// Physical interrupts `acknowledge` hands out, in order.
    pub irqs: Mutex<VecDeque<u32>>,
    /// Group 0 interrupts `acknowledge_fiq` hands out, in order.
    pub fiqs: Mutex<VecDeque<u32>>,
    lrs: Mutex<BTreeMap<PcpuId, [ListReg; LRS]>>,
    pub counter: AtomicU64,
    /// How far the counter advances each time it is read (0: it stands still).
    pub counter_step: AtomicU64,
    /// Bytes partitions wrote to the console.
    pub output: Mutex<Vec<(PartitionId, u8)>>,
    /// What was "typed" on the console, as the mux would hand it on.
    pub typed: Mutex<VecDeque<Typed>>,
    /// What the hypervisor printed on the console itself (`console_print`).
    pub printed: Mutex<String>,
}

impl FakeHw {
    /// Makes `cpu` the CPU the following calls come from.
    pub fn on_cpu(&self, cpu: usize) {
        self.cpu.store(cpu, Ordering::Relaxed);
    }

    /// The calls made so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        core::mem::take(&mut *self.calls.lock())
    }

    /// This CPU's list registers.
    pub fn lrs(&self) -> [ListReg; LRS] {
        *self
            .lrs
            .lock()
            .entry(self.this_cpu())
            .or_insert([ListReg::EMPTY; LRS])
    }

    /// Sets this CPU's list register `n` (as the guest's EOI would change it).
    pub fn set_lr(&self, n: usize, lr: ListReg) {
        self.lrs
            .lock()
            .entry(self.this_cpu())
            .or_insert([ListReg::EMPTY; LRS])[n] = lr;
    }

    fn record(&self, call: Call) {
        self.calls.lock().push(call);
    }
}

impl Hw for FakeHw {
    const KICK_SGI: u32 = 15;
    const MAINTENANCE_IRQ: u32 = 25;
    const HYP_TIMER_IRQ: u32 = 26;

    fn this_cpu(&self) -> PcpuId {
        PcpuId(self.cpu.load(Ordering::Relaxed))
    }
    fn acknowledge(&self) -> Option<u32> {
        self.irqs.lock().pop_front()
    }
    fn priority_drop(&self, intid: u32) {
        self.record(Call::PriorityDrop(intid));
    }
    fn deactivate(&self, intid: u32) {
        self.record(Call::Deactivate(intid));
    }
    fn set_enabled(&self, intid: u32, cpu: PcpuId, enable: bool) {
        self.record(Call::SetEnabled(intid, cpu, enable));
    }
    fn set_edge_triggered(&self, intid: u32, cpu: PcpuId, edge: bool) {
        self.record(Call::SetEdgeTriggered(intid, cpu, edge));
    }
    fn route_spi(&self, intid: u32, cpu: PcpuId) {
        self.record(Call::RouteSpi(intid, cpu));
    }
    fn change_spi(&self, intid: u32, change: SpiChange) {
        self.record(Call::ChangeSpi(intid, change));
    }
    fn kick(&self, cpu: PcpuId) {
        self.record(Call::Kick(cpu));
    }
    fn enter_direct_mode(&self) {
        self.record(Call::DirectMode(self.this_cpu()));
    }
    fn acknowledge_fiq(&self) -> Option<u32> {
        self.fiqs.lock().pop_front()
    }
    fn end_fiq(&self, intid: u32) {
        self.record(Call::EndFiq(intid));
    }
    fn send_sgi(&self, cpu: PcpuId, intid: u32) {
        self.record(Call::SendSgi(cpu, intid));
    }
    fn lr_count(&self) -> usize {
        LRS
    }
    fn free_lr(&self) -> Option<usize> {
        self.lrs().iter().position(ListReg::is_free)
    }
    fn read_lr(&self, n: usize) -> ListReg {
        self.lrs().get(n).copied().unwrap_or(ListReg::EMPTY)
    }
    fn write_lr(&self, n: usize, lr: ListReg) {
        if n < LRS {
            self.set_lr(n, lr);
        }
    }
    fn set_underflow_irq(&self, on: bool) {
        self.record(Call::Underflow(on));
    }
    fn reset_vcpu_interface(&self) {
        self.lrs
            .lock()
            .insert(self.this_cpu(), [ListReg::EMPTY; LRS]);
        self.record(Call::ResetVcpuInterface);
    }
    fn firmware_call(&self, function: u32, arg: u64) -> u64 {
        self.record(Call::Firmware(function, arg));
        // Like QEMU's PSCI: nothing beyond PSCI is supported.
        smccc::psci::error::NOT_SUPPORTED as i64 as u64
    }
    fn mmio_read(&self, pa: HostPhysAddr, size: u8) -> u64 {
        self.record(Call::MmioRead(pa, size));
        0x7472_6976 // "virt"
    }
    fn mmio_write(&self, pa: HostPhysAddr, size: u8, value: u64) {
        self.record(Call::MmioWrite(pa, size, value));
    }
    fn counter(&self) -> u64 {
        let step = self.counter_step.load(Ordering::Relaxed);
        self.counter.fetch_add(step, Ordering::Relaxed)
    }
    fn counter_frequency(&self) -> u64 {
        1000
    }
    fn arm_timer_ms(&self, ms: u64) {
        self.record(Call::ArmTimer(ms));
    }
    fn cancel_timer(&self) {
        self.record(Call::CancelTimer);
    }
    fn set_stage2_entry(&self, vttbr: u64, entry: &Stage2Entry, value: u64) {
        self.record(Call::SetStage2Entry {
            vttbr,
            ipa: entry.ipa,
            valid: value & 1 == 1,
        });
    }
    fn load(&self, pa: HostPhysAddr, data: &[u8]) {
        self.record(Call::Load(pa, data.len()));
    }
    fn zero(&self, range: HostRange) {
        self.record(Call::Zero(range));
    }
    fn invalidate_instruction_caches(&self) {
        self.record(Call::InvalidateInstructionCaches);
    }
    fn console_output(&self, partition: PartitionId, byte: u8) -> bool {
        self.output.lock().push((partition, byte));
        false
    }
    fn console_pump(&self) -> bool {
        self.record(Call::ConsolePump);
        false
    }
    fn console_show_partial(&self) -> bool {
        self.record(Call::ConsoleShowPartial);
        false
    }
    fn console_flush(&self, partition: PartitionId) {
        self.record(Call::ConsoleFlush(partition));
    }
    fn console_interrupt(&self, deliver: &mut dyn FnMut(Typed)) -> bool {
        loop {
            let next = self.typed.lock().pop_front();
            let Some(typed) = next else {
                return false;
            };
            deliver(typed);
        }
    }
    fn console_print(&self, text: &str) {
        self.printed.lock().push_str(text);
    }
}
