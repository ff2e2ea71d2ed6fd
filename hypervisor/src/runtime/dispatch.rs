//! The one dispatcher of guest exits: each handler looks at one decoded [`Exit`] and returns an
//! explicit `Next` step; [`System::handle_exit`] carries that step out and tells the arch code
//! what this CPU does next ([`Continue`]).
//!
//! Nothing a guest does may stop the hypervisor: every exit is either served and the vCPU
//! resumes, or stops that partition alone with a report.

use bulkhead_config::monitor::ExitKind;
use bulkhead_config::{GuestPhysAddr, HostPhysAddr, HostRange, PcpuId, VcpuId};

use super::hw::Hw;
use super::hypercall::Call;
use super::lifecycle::{DeviceError, Fault, Stop};
use super::monitor::ExitCounters;
use super::partition::{Partition, VcpuEntry, VcpuPowerState};
use super::vgic::GicWindow;
use super::System;
use crate::exit::{Exit, GuestAccess, SysReg, SysRegTrap};
use crate::frame::TrapFrame;
use crate::psci::{self, PsciAction, VcpuPower};

/// What the arch code does after the runtime handled an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Continue {
    /// Return to the guest, with the registers as the runtime left them.
    Guest,
    /// This CPU's vCPU no longer runs: idle at EL2 until there is something to run.
    Idle,
    /// Every partition has stopped: power the machine off.
    PowerOff,
}

/// What a handler decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Back to the guest.
    Resume,
    /// This vCPU no longer runs (it called `CPU_OFF`).
    Idle,
    /// Stop the partition.
    Stop(Stop),
    /// Restart the partition alone.
    Restart,
}

impl<H: Hw> System<H> {
    /// Handles one exit of the vCPU that physical CPU `cpu` runs; `regs` are its registers.
    pub fn handle_exit(&self, cpu: PcpuId, regs: &mut TrapFrame, exit: Exit) -> Continue {
        let Some((p, vcpu, counters)) = self.current_counted(cpu) else {
            // A CPU without a vCPU cannot take exceptions from a guest.
            return Continue::Idle;
        };
        let entered = self.hw.timestamp();
        let next = match exit {
            Exit::Hvc => {
                counters.count(ExitKind::Hypercall);
                self.hypercall(p, vcpu, regs)
            }
            Exit::Smc { insn_len } => {
                counters.count(ExitKind::Hypercall);
                // A trapped SMC returns to the SMC itself: step over it.
                regs.elr = regs.elr.wrapping_add(insn_len);
                self.hypercall(p, vcpu, regs)
            }
            Exit::DataAbort(access) => self.data_abort(p, cpu, regs, access, counters),
            Exit::SysReg(trap) => {
                counters.count(ExitKind::SysReg);
                self.system_register(p, vcpu, regs, trap)
            }
            Exit::Irq => return self.irq_exit(cpu, p, vcpu, counters, entered),
            Exit::Unhandled(unhandled) => {
                counters.count(ExitKind::Other);
                Next::Stop(Stop::Fault(Fault::Unhandled {
                    report: unhandled.report(regs.elr),
                    cpu,
                }))
            }
        };
        if next == Next::Resume {
            self.flush(p, vcpu);
            counters.handled(entered, self.hw.timestamp());
            return Continue::Guest;
        }
        counters.handled_then_off(entered, self.hw.timestamp());
        match next {
            // (`Resume` went back to the guest above.)
            Next::Resume | Next::Idle => Continue::Idle,
            Next::Stop(why) => self.stop_partition(p, why),
            Next::Restart => self.restart_partition(p),
        }
    }

    /// A physical interrupt taken while physical CPU `cpu` ran its vCPU: the interrupts are dealt
    /// with, then the vCPU resumes if it still runs. Needs none of the guest's registers (the
    /// arch code saves only what its call changes).
    ///
    /// One interrupt per exit: another one pending brings the CPU straight back. When it was
    /// only handed to a guest, nothing changed what this CPU runs and the vCPU resumes without
    /// a look at its state (the path a forwarded interrupt takes).
    pub fn handle_irq_exit(&self, cpu: PcpuId) -> Continue {
        let Some((p, vcpu, counters)) = self.current_counted(cpu) else {
            self.handle_one_irq(cpu, None);
            return Continue::Idle;
        };
        let entered = self.hw.timestamp();
        self.irq_exit(cpu, p, vcpu, counters, entered)
    }

    /// [`handle_irq_exit`](Self::handle_irq_exit) once the vCPU and the exit's time are known.
    #[inline(always)]
    fn irq_exit(
        &self,
        cpu: PcpuId,
        p: &Partition,
        vcpu: VcpuId,
        counters: &ExitCounters,
        entered: u64,
    ) -> Continue {
        counters.count(ExitKind::Irq);
        let changed = self.handle_one_irq(cpu, Some((p, vcpu)));
        if !changed || p.runs(vcpu) {
            self.flush(p, vcpu);
            counters.handled(entered, self.hw.timestamp());
            Continue::Guest
        } else {
            counters.handled_then_off(entered, self.hw.timestamp());
            Continue::Idle
        }
    }

    /// A FIQ taken while physical CPU `cpu` ran its vCPU: on a `direct-interrupts` partition's
    /// core, one of the hypervisor's own interrupts (Group 0). They are dealt with, then the
    /// vCPU resumes if it still runs (a kick may have come with a stop or restart). No list
    /// register to fill: such a vCPU has no virtual CPU interface.
    pub fn handle_fiq_exit(&self, cpu: PcpuId) -> Continue {
        let Some((p, vcpu, counters)) = self.current_counted(cpu) else {
            self.handle_fiqs(cpu);
            return Continue::Idle;
        };
        let entered = self.hw.timestamp();
        counters.count(ExitKind::Irq);
        self.handle_fiqs(cpu);
        if p.runs(vcpu) {
            counters.handled(entered, self.hw.timestamp());
            Continue::Guest
        } else {
            counters.handled_then_off(entered, self.hw.timestamp());
            Continue::Idle
        }
    }

    /// A stage-2 data abort: an emulated device access (counted in `counters` by device), or a
    /// fault that stops the partition.
    fn data_abort(
        &self,
        p: &Partition,
        cpu: PcpuId,
        regs: &mut TrapFrame,
        access: GuestAccess,
        counters: &ExitCounters,
    ) -> Next {
        let pc = regs.elr;
        let Some((ipa, syndrome)) = access.emulable() else {
            counters.count(ExitKind::Other);
            return Next::Stop(Stop::Fault(Fault::Access { access, pc, cpu }));
        };
        let write = access.write.then(|| regs.reg(syndrome.reg));
        let result = if let Some(offset) = self.vuart_offset(p, ipa) {
            counters.count(ExitKind::Uart);
            self.vuart_access(p, offset, syndrome.size, write)
                .map_err(DeviceError::Uart)
        } else if let Some(window) = gic_window(p, ipa) {
            counters.count(ExitKind::Gic);
            self.gic_access(p, window, syndrome.size, write)
                .map_err(DeviceError::Gic)
        } else if let Some((endpoint, offset)) = p.channels.doorbell_at(ipa) {
            counters.count(ExitKind::Channel);
            self.doorbell_access(p, endpoint, offset, syndrome.size, write)
                .map_err(DeviceError::Doorbell)
        } else if let Some(offset) = p.channels.gpio_offset(ipa) {
            counters.count(ExitKind::Channel);
            self.gpio_access(p, offset, syndrome.size, write)
                .map_err(DeviceError::DoorbellGpio)
        } else if let Some(window) = p.trapped.iter().find(|w| w.identity().contains(ipa)) {
            counters.count(ExitKind::Device);
            self.trapped_access(window, ipa, syndrome.size, write)
        } else if let Some(offset) = monitor_offset(p, ipa) {
            counters.count(ExitKind::Monitor);
            self.monitor_access(offset, syndrome.size, write)
        } else {
            counters.count(ExitKind::Other);
            return Next::Stop(Stop::Fault(Fault::Access { access, pc, cpu }));
        };
        match result {
            Ok(read) => {
                if let Some(value) = read {
                    regs.set_reg(syndrome.reg, syndrome.load_value(value));
                }
                regs.elr = regs.elr.wrapping_add(access.insn_len);
                Next::Resume
            }
            Err(device) => Next::Stop(Stop::Fault(Fault::Device { device, access, pc })),
        }
    }

    /// A guest access to its monitor window: naturally aligned reads only.
    #[inline(never)]
    fn monitor_access(
        &self,
        offset: u64,
        size: u8,
        write: Option<u64>,
    ) -> Result<Option<u64>, DeviceError> {
        if write.is_some() || !offset.is_multiple_of(u64::from(size)) {
            return Err(DeviceError::Monitor);
        }
        Ok(Some(self.monitor_window_read(offset, size)))
    }

    /// Performs an access to a trapped passthrough device (at the same address, which it has
    /// 1:1) if it lies wholly inside the device's register `window` and is naturally aligned:
    /// the partition reaches only its own device's bytes of a page it shares with others.
    fn trapped_access(
        &self,
        window: &HostRange,
        ipa: GuestPhysAddr,
        size: u8,
        write: Option<u64>,
    ) -> Result<Option<u64>, DeviceError> {
        let pa = HostPhysAddr(ipa.raw());
        let inside = HostRange::new(pa, u64::from(size));
        if !pa.is_aligned(u64::from(size)) || !window.contains_range(&inside) {
            return Err(DeviceError::Trapped);
        }
        Ok(match write {
            Some(value) => {
                self.hw.mmio_write(pa, size, value);
                None
            }
            None => Some(self.hw.mmio_read(pa, size)),
        })
    }

    /// The offset of `ipa` in `p`'s virtual UART window, if it lies there.
    fn vuart_offset(&self, p: &Partition, ipa: GuestPhysAddr) -> Option<u64> {
        let base = p.config.virtual_uart?;
        bulkhead_config::GuestRange::new(base, bulkhead_config::guest_view::VUART_SIZE)
            .offset_of(ipa)
    }

    /// A trapped system register. With `HCR_EL2.IMO` or `FMO` set (`FMO` stays set for a
    /// `direct-interrupts` vCPU), the guest's SGI generation registers trap here.
    fn system_register(
        &self,
        p: &Partition,
        vcpu: VcpuId,
        regs: &mut TrapFrame,
        trap: SysRegTrap,
    ) -> Next {
        match (trap.reg, trap.read) {
            (SysReg::IccSgi1r | SysReg::IccAsgi1r, false) => {
                self.send_sgi(p, vcpu, regs.reg(trap.rt));
            }
            // Group 0 SGIs do not exist for a Non-secure guest: ignored.
            (SysReg::IccSgi0r, false) => {}
            // Trapped to hide them (see `crate::el2_controls`): read as zero, writes ignored.
            (SysReg::AuxControl | SysReg::ErrorRecord | SysReg::ActivityMonitor, read) => {
                if read {
                    regs.set_reg(trap.rt, 0);
                }
            }
            _ => return Next::Stop(Stop::Fault(Fault::SysReg { trap, pc: regs.elr })),
        }
        regs.elr = regs.elr.wrapping_add(trap.insn_len);
        Next::Resume
    }

    /// An HVC or SMC: Bulkhead's own calls (`runtime::hypercall`), PSCI and the SMCCC
    /// discovery calls, for the calling partition only.
    fn hypercall(&self, p: &Partition, vcpu: VcpuId, regs: &mut TrapFrame) -> Next {
        if let Some(call) = Call::decode(regs.x[0], regs.x[1], regs.x[2]) {
            self.bulkhead_call(p, vcpu, regs, call);
            return Next::Resume;
        }
        let args = [regs.x[0], regs.x[1], regs.x[2], regs.x[3]];
        match psci::dispatch(vcpu, args, p, &self.workarounds) {
            PsciAction::Return(value) => {
                regs.x[0] = value;
                Next::Resume
            }
            PsciAction::CpuOn {
                vcpu: target,
                entry,
                context,
            } => {
                regs.x[0] = self.cpu_on(p, target, entry, context) as u64;
                Next::Resume
            }
            PsciAction::CpuOff => {
                if let Some(v) = p.vcpu(vcpu) {
                    *v.power.lock() = VcpuPowerState::OFF;
                }
                if p.vcpus.iter().all(|v| v.power() == VcpuPower::Off) {
                    Next::Stop(Stop::PoweredOff)
                } else {
                    Next::Idle
                }
            }
            PsciAction::SystemOff => Next::Stop(Stop::PoweredOff),
            PsciAction::Firmware { function, arg } => {
                regs.x[0] = self.hw.firmware_call(function, arg);
                Next::Resume
            }
            PsciAction::SystemReset => Next::Restart,
        }
    }

    /// PSCI `CPU_ON` of `target` at `entry`: refused with `INVALID_ADDRESS` unless the entry
    /// point lies in the partition's memory; otherwise the target's core is told to start it.
    /// Returns the PSCI status.
    fn cpu_on(&self, p: &Partition, target: VcpuId, entry: GuestPhysAddr, context: u64) -> i64 {
        let Some(t) = p.vcpu(target) else {
            return smccc::psci::error::INVALID_PARAMETERS.into();
        };
        if !p.owns_memory(entry) {
            return smccc::psci::error::INVALID_ADDRESS.into();
        }
        // Checked again under the lock: another vCPU may have started it meanwhile.
        let mut power = t.power.lock();
        match power.power {
            VcpuPower::On => smccc::psci::error::ALREADY_ON.into(),
            VcpuPower::OnPending => smccc::psci::error::ON_PENDING.into(),
            VcpuPower::Off => {
                *power = VcpuPowerState::starting(VcpuEntry {
                    pc: entry,
                    x0: context,
                });
                drop(power);
                self.hw.kick(t.pcpu);
                0
            }
        }
    }
}

/// The offset of `ipa` in `p`'s monitor window, if it has one and `ipa` lies there.
fn monitor_offset(p: &Partition, ipa: GuestPhysAddr) -> Option<u64> {
    let base = p.config.monitor_window?;
    bulkhead_config::GuestRange::new(base, bulkhead_config::monitor::WINDOW_SIZE).offset_of(ipa)
}

/// Which of `p`'s emulated GIC windows `ipa` falls in, if any.
fn gic_window(p: &Partition, ipa: GuestPhysAddr) -> Option<GicWindow> {
    if let Some(offset) = p.vgic.gicd.offset_of(ipa) {
        Some(GicWindow::Distributor(offset))
    } else {
        p.vgic.gicr.offset_of(ipa).map(GicWindow::Redistributors)
    }
}
