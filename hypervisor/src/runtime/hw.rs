//! The arch interface: everything the runtime needs from the hardware, and nothing more.
//!
//! The runtime (`crate::runtime`) decides; an implementation of [`Hw`] carries the decisions out
//! on real hardware. `arch::aarch64` implements it for a GICv3 or a GICv2 (whichever the platform
//! has) and the PL011 console; the host tests implement it with a fake that records what was
//! asked (`runtime::fake`). List registers are exchanged decoded ([`ListReg`]), never as a
//! backend's register encoding. On a GICv2, SGIs and PPIs of another CPU cannot be reached:
//! calls about them are only made on their own CPU.
//!
//! All calls are about the physical CPU that makes them, except where a [`PcpuId`] says
//! otherwise. None may fail in a way the runtime could act on: they report nothing back.

use bulkhead_config::{HostPhysAddr, HostRange, PartitionId, PcpuId};

use crate::console::Typed;
use crate::stage2::Stage2Entry;
use crate::vgic::ListReg;

/// A change of a physical SPI's state ([`Hw::change_spi`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpiChange {
    SetPending,
    ClearPending,
    ClearActive,
}

/// The hardware operations of the runtime. See the [module documentation](self).
pub trait Hw: Sync {
    /// INTID of the interrupt one CPU sends another to make it re-examine its vCPU ([`kick`]).
    ///
    /// [`kick`]: Hw::kick
    const KICK_SGI: u32;
    /// INTID of the virtual CPU interface's maintenance interrupt (list-register underflow).
    const MAINTENANCE_IRQ: u32;
    /// INTID of the hypervisor's own timer ([`arm_timer_ms`](Hw::arm_timer_ms)).
    const HYP_TIMER_IRQ: u32;

    /// The physical CPU making the call.
    fn this_cpu(&self) -> PcpuId;

    // ---- The physical interrupt controller ----

    /// Takes the highest-priority pending physical interrupt of this CPU, if any.
    fn acknowledge(&self) -> Option<u32>;
    /// Drops the running priority of acknowledged interrupt `intid` without deactivating it: for
    /// an interrupt handed to a guest, whose deactivation then deactivates it.
    fn priority_drop(&self, intid: u32);
    /// Deactivates physical interrupt `intid`.
    fn deactivate(&self, intid: u32);
    /// Enables or disables `intid`; an SGI or PPI on CPU `cpu`'s redistributor.
    fn set_enabled(&self, intid: u32, cpu: PcpuId, enable: bool);
    /// Makes `intid` edge-triggered or level-sensitive; an SGI or PPI on CPU `cpu`.
    fn set_edge_triggered(&self, intid: u32, cpu: PcpuId, edge: bool);
    /// Routes SPI `intid` to CPU `cpu`.
    fn route_spi(&self, intid: u32, cpu: PcpuId);
    /// Changes SPI `intid`'s state at the distributor (from any CPU): makes it pending, or
    /// clears its pending or active state.
    fn change_spi(&self, intid: u32, change: SpiChange);
    /// Makes CPU `cpu` take an interrupt ([`KICK_SGI`](Hw::KICK_SGI)) soon, which leaves any
    /// guest it runs.
    fn kick(&self, cpu: PcpuId);

    // ---- Direct interrupts (the cores of a `direct-interrupts` partition) ----

    /// Readies this CPU for a vCPU of a `direct-interrupts` partition, which takes the core's
    /// Group 1 interrupts itself through the physical CPU interface: the kick and the hypervisor
    /// timer become Group 0 (FIQs, still taken by EL2 while the guest runs), the virtual CPU
    /// interface and its maintenance interrupt are off, the guest's EOI also deactivates, and no
    /// active priority or active SGI/PPI is left from a previous run. From then on the CPU
    /// waits only for FIQs while it idles. Idempotent.
    fn enter_direct_mode(&self);
    /// Takes the highest-priority pending Group 0 interrupt (FIQ) of this CPU, if any.
    fn acknowledge_fiq(&self) -> Option<u32>;
    /// Ends Group 0 interrupt `intid`: priority drop and deactivation.
    fn end_fiq(&self, intid: u32);
    /// Sends physical SGI `intid` to CPU `cpu`, which runs a vCPU of the same
    /// `direct-interrupts` partition as the sender.
    fn send_sgi(&self, cpu: PcpuId, intid: u32);

    // ---- This CPU's virtual CPU interface ----

    /// Number of list registers.
    fn lr_count(&self) -> usize;
    /// A list register that holds no interrupt, if any.
    fn free_lr(&self) -> Option<usize>;
    /// List register `n` (empty for one the CPU does not have).
    fn read_lr(&self, n: usize) -> ListReg;
    /// Writes list register `n` (ignored for one the CPU does not have).
    fn write_lr(&self, n: usize, lr: ListReg);
    /// Turns the underflow maintenance interrupt on or off.
    fn set_underflow_irq(&self, on: bool);
    /// Resets the virtual CPU interface and the guest timers for a vCPU that starts afresh: no
    /// list register in use, no active priority, the guest's timers stopped.
    fn reset_vcpu_interface(&self);

    // ---- Firmware ----

    /// Makes SMC32 call `function` with one argument to the platform firmware; returns its x0.
    fn firmware_call(&self, function: u32, arg: u64) -> u64;

    // ---- Time ----

    /// The physical counter (`CNTPCT`).
    fn counter(&self) -> u64;
    /// The physical counter, for statistics: it may be read a few instructions early (no
    /// barrier before it).
    fn timestamp(&self) -> u64 {
        self.counter()
    }
    /// The counter's frequency in Hz (`CNTFRQ`).
    fn counter_frequency(&self) -> u64;
    /// Fires [`HYP_TIMER_IRQ`](Hw::HYP_TIMER_IRQ) on this CPU once, `ms` milliseconds from now.
    fn arm_timer_ms(&self, ms: u64);
    /// Stops this CPU's hypervisor timer and lowers its interrupt.
    fn cancel_timer(&self);

    // ---- Stage 2 ----

    /// Writes `value` to `entry` of the stage-2 tables whose `VTTBR_EL2` value is `vttbr`, while
    /// the partition may run. Making the entry invalid also removes the old translation from
    /// every core's TLB before returning; making it valid needs nothing more (an invalid entry
    /// is never cached).
    fn set_stage2_entry(&self, vttbr: u64, entry: &Stage2Entry, value: u64);

    // ---- Devices ----

    /// Reads `size` bytes (1, 2, 4 or 8, naturally aligned) of a passthrough device's registers
    /// at `pa`, for a partition whose access the runtime checked lies in that device.
    fn mmio_read(&self, pa: HostPhysAddr, size: u8) -> u64;
    /// Writes the low `size` bytes of `value` to a passthrough device's registers at `pa`.
    fn mmio_write(&self, pa: HostPhysAddr, size: u8, value: u64);

    // ---- Memory ----

    /// Copies `data` to host-physical `pa`, inside a partition's memory (which the runtime
    /// checked), while that partition does not run, and makes it visible to a guest that starts
    /// with its caches off (cleaned to the point of coherency). The runtime calls
    /// [`invalidate_instruction_caches`](Hw::invalidate_instruction_caches) before the
    /// partition runs.
    fn load(&self, pa: HostPhysAddr, data: &[u8]);
    /// Zeroes a partition's memory `range` (any alignment) the same way, so nothing of another image or of its
    /// previous run stays readable; also a channel's shared memory, once at boot.
    fn zero(&self, range: HostRange);
    /// Invalidates the instruction caches, after [`load`](Hw::load) and [`zero`](Hw::zero)
    /// changed memory a guest may execute.
    fn invalidate_instruction_caches(&self);

    // ---- The console ----

    /// A byte partition `partition` wrote to its console: queued, never waiting for the UART.
    /// Returns whether a line of the focused partition just started unfinished: the caller then
    /// arms the timer to show it a moment later
    /// ([`console_show_partial`](Hw::console_show_partial)).
    fn console_output(&self, partition: PartitionId, byte: u8) -> bool;
    /// Shows the focused partition's unfinished line, if it still is. Returns what
    /// [`console_output`](Hw::console_output) does.
    fn console_show_partial(&self) -> bool;
    /// Ends `partition`'s console output as it is (when it stops).
    fn console_flush(&self, partition: PartitionId);
    /// The console UART's interrupt: hands each byte typed for a partition, and each request
    /// of the console's keys, to `deliver`, and sends more of the queued output. Returns what
    /// [`console_output`](Hw::console_output) does.
    fn console_interrupt(&self, deliver: &mut dyn FnMut(Typed)) -> bool;
    /// Sends what the UART takes now of the queued output, unless another CPU is at it: called
    /// between the pieces of long work done with interrupts masked (loading a partition), so
    /// that the console, whose interrupt may be routed to this CPU, keeps printing the others'
    /// output meanwhile. Returns what [`console_output`](Hw::console_output) does.
    fn console_pump(&self) -> bool;
    /// Prints hypervisor lines (each prefixed already, `\n`-terminated) on the console, whatever
    /// the log level.
    fn console_print(&self, text: &str);
}
