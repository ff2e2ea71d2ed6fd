//! The partition lifecycle: loading a partition, starting it, stopping it (the guest asked, or
//! it did something the hypervisor cannot serve), restarting it alone (its PSCI
//! `SYSTEM_RESET`), and powering the machine off once every partition has stopped.
//!
//! A stop or restart touches only the partition concerned: its vCPUs are turned off and the
//! cores running them kicked out of the guest; its passthrough interrupts are disabled; nothing
//! of another partition changes.

use core::fmt;
use core::sync::atomic::Ordering;

use bulkhead_config::{HostPhysAddr, PcpuId};

use super::channel::DoorbellError;
use super::dispatch::Continue;
use super::hw::Hw;
use super::partition::{Partition, State, VcpuPowerState};
use super::virtual_uart::PARTIAL_LINE_DELAY_MS;
use super::System;
use crate::esr::ExceptionReport;
use crate::exit::{GuestAccess, SysRegTrap};
use crate::mmio::MmioError;
use crate::vgic::AccessError;

/// Why a partition stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The guest asked for it (PSCI `SYSTEM_OFF`, or its last vCPU called `CPU_OFF`).
    PoweredOff,
    /// The guest did something the hypervisor cannot serve.
    Fault(Fault),
}

/// Something a guest did that stops its partition, with what the report needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A memory access outside what the partition may reach, or one that cannot be emulated.
    Access {
        access: GuestAccess,
        pc: u64,
        cpu: PcpuId,
    },
    /// An access to an emulated device that the device refuses.
    Device {
        device: DeviceError,
        access: GuestAccess,
        pc: u64,
    },
    /// A trapped system register the hypervisor does not serve.
    SysReg { trap: SysRegTrap, pc: u64 },
    /// An exception the hypervisor does not serve.
    Unhandled {
        report: ExceptionReport,
        cpu: PcpuId,
    },
}

/// Why an emulated device refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    Uart(MmioError),
    Gic(AccessError),
    /// An access to a trapped passthrough device that is not naturally aligned or crosses the
    /// end of its register window.
    Trapped,
    /// An access to a channel's doorbell page that is not an aligned 32-bit one.
    Doorbell(DoorbellError),
    /// An access to the doorbell GPIO that it refuses.
    DoorbellGpio(MmioError),
    /// A write, or a misaligned read, in the monitor window.
    Monitor,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Uart(e) => write!(f, "bad access to its virtual UART ({e})"),
            DeviceError::Gic(e) => write!(f, "bad access to its virtual GIC ({e})"),
            DeviceError::Trapped => f.write_str(
                "misaligned or partial access to a trapped passthrough device's registers",
            ),
            DeviceError::Doorbell(e) => write!(f, "bad access to a channel's doorbell page ({e})"),
            DeviceError::DoorbellGpio(e) => write!(f, "bad access to its doorbell GPIO ({e})"),
            DeviceError::Monitor => {
                f.write_str("write or misaligned read in its monitor window (read-only)")
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Access { access, pc, cpu } => {
                write!(f, "stage-2 data abort: {access} at PC {pc:#x}, CPU {cpu}")
            }
            Fault::Device { device, access, pc } => write!(f, "{device}: {access} at PC {pc:#x}"),
            Fault::SysReg { trap, pc } => write!(
                f,
                "trapped system register access `{}` at PC {pc:#x}",
                trap.access
            ),
            Fault::Unhandled { report, cpu } => {
                write!(
                    f,
                    "unhandled exception from the guest: {report} on CPU {cpu}"
                )
            }
        }
    }
}

/// The most a partition's load clears or copies between two looks at the console.
pub(super) const LOAD_PIECE: u64 = 2 << 20;

impl<H: Hw> System<H> {
    /// Clears `p`'s memory (but for what its blobs then overwrite), copies its blobs (image,
    /// device tree, initrd) into it, resets its
    /// virtual counter and marks vCPU 0 to start at the entry point. Runs on vCPU 0's CPU just
    /// before it starts (see `next_vcpu_start`), while no other vCPU of `p` runs.
    ///
    /// The work goes in pieces of [`LOAD_PIECE`] bytes, and the console is pumped after each:
    /// this CPU has its interrupts masked meanwhile, and it may be the one the console's
    /// interrupt goes to, so another partition's output would otherwise wait for this one's
    /// load (at boot, the ticker's first line waited some 150 ms for Linux's 256 MiB).
    pub(super) fn load_partition(&self, p: &Partition) {
        for &range in &p.scrub {
            for piece in range.pieces(LOAD_PIECE) {
                self.hw.zero(piece);
                self.pump_console();
            }
        }
        for &(pa, data) in &p.blobs {
            for (n, piece) in data.chunks(LOAD_PIECE as usize).enumerate() {
                self.hw
                    .load(HostPhysAddr(pa.raw() + n as u64 * LOAD_PIECE), piece);
                self.pump_console();
            }
        }
        self.hw.invalidate_instruction_caches();
        p.set_cntvoff(self.hw.counter());
        for v in &p.vcpus {
            *v.power.lock() = if v.id.index() == 0 {
                VcpuPowerState::starting(p.boot_entry())
            } else {
                VcpuPowerState::OFF
            };
        }
    }

    /// Lets the console print what waits (see [`Hw::console_pump`]).
    fn pump_console(&self) {
        if self.hw.console_pump() {
            self.hw.arm_timer_ms(PARTIAL_LINE_DELAY_MS);
        }
    }

    /// Stops `p` (unless it already stopped) and reports why. Returns what this CPU does next:
    /// power the machine off if `p` was the last partition running, else idle.
    pub(super) fn stop_partition(&self, p: &Partition, why: Stop) -> Continue {
        self.hw.console_flush(p.id);
        if p.try_stop() {
            p.counters
                .stopped(self.hw.counter(), matches!(why, Stop::Fault(_)));
            self.disable_passthrough(p);
            match why {
                Stop::PoweredOff => log::info!("partition {} powered off", p.name),
                Stop::Fault(fault) => log::error!("partition {} stopped: {fault}", p.name),
            }
            self.turn_vcpus_off(p);
        }
        self.power_off_if_all_stopped()
    }

    /// Restarts `p` alone (its PSCI `SYSTEM_RESET`): every vCPU leaves the guest, its memory
    /// image and virtual devices are reloaded, and vCPU 0 starts again at the entry point.
    /// Called on one of `p`'s CPUs, which then idles.
    pub(super) fn restart_partition(&self, p: &Partition) -> Continue {
        self.hw.console_flush(p.id);
        if !p.try_stop() {
            return Continue::Idle;
        }
        p.counters.stopped(self.hw.counter(), false);
        p.counters.restarted();
        log::info!("partition {} requested a reset: restarting it", p.name);
        let me = self.hw.this_cpu();
        self.turn_vcpus_off(p);
        // Wait for every other vCPU to be back at EL2 before touching the partition's memory.
        for v in p.vcpus.iter().filter(|v| v.pcpu != me) {
            while v.in_guest.load(Ordering::Acquire) {
                core::hint::spin_loop();
            }
        }
        {
            let mut vuart = p.vuart.lock();
            *vuart = crate::vuart::VirtualPl011::new();
            self.show_uart(p, &vuart);
        }
        self.reset_vgic(p);
        p.channels.reset();
        // vCPU 0's CPU reloads the partition and starts it.
        p.needs_load.store(true, Ordering::Release);
        if let Some(boot) = p.vcpus.first() {
            *boot.power.lock() = VcpuPowerState::starting(p.boot_entry());
        }
        p.set_running();
        if let Some(boot) = p.vcpus.first().filter(|v| v.pcpu != me) {
            self.hw.kick(boot.pcpu);
        }
        Continue::Idle
    }

    /// Turns every vCPU of `p` off and kicks the other cores running them out of the guest (the
    /// kick is a physical interrupt, which always leaves the guest).
    fn turn_vcpus_off(&self, p: &Partition) {
        let me = self.hw.this_cpu();
        for v in &p.vcpus {
            *v.power.lock() = VcpuPowerState::OFF;
            if v.pcpu != me {
                self.hw.kick(v.pcpu);
            }
        }
    }

    /// [`Continue::PowerOff`] once every partition has stopped, for the first CPU that sees it;
    /// [`Continue::Idle`] otherwise.
    pub(super) fn power_off_if_all_stopped(&self) -> Continue {
        if self.partitions.iter().all(|p| p.state() == State::Stopped)
            && !self.powering_off.swap(true, Ordering::AcqRel)
        {
            log::info!("all partitions have stopped: powering off");
            self.print_monitor("monitor at power-off:");
            Continue::PowerOff
        } else {
            Continue::Idle
        }
    }
}
