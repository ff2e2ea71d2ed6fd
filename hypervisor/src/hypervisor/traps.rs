//! What each CPU does: run its vCPU, handle the vCPU's traps (PSCI calls, virtual UART accesses,
//! faults), take physical interrupts, and idle when its vCPU is off or its partition stopped.
//!
//! Nothing a guest does may stop the hypervisor: every guest-caused exception either is served
//! and the vCPU resumes, or stops that partition alone with a report.

use aarch64_cpu::registers::{Readable, ESR_EL2, FAR_EL2, HPFAR_EL2};
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use super::boot::system;
use super::interrupts;
use super::output;
use super::partition::{PartitionRt, State, VcpuPowerState};
use crate::arch::aarch64::exceptions::TrapFrame;
use crate::arch::aarch64::guest::{self, VcpuStart};
use crate::arch::aarch64::{cpu, gic, mmu, timer};
use crate::esr::{DataAbort, ExceptionClass, SysRegAccess};
use crate::psci::{self, PsciAction, VcpuPower};

/// The partition and vCPU this physical CPU runs, if any.
fn current() -> Option<(&'static PartitionRt, usize)> {
    let sys = system();
    let (p, v) = (*sys.assignment.get(cpu::id())?)?;
    Some((&sys.partitions[p], v))
}

/// Runs this CPU's vCPU when it has something to run, otherwise waits for interrupts. Never
/// returns; called at boot and whenever a vCPU stops running.
pub fn run_this_cpu() -> ! {
    if let Some((p, v)) = current() {
        p.vcpus[v].in_guest.store(false, Ordering::Release);
    }
    loop {
        if let Some((p, v)) = current() {
            if p.state() == State::Running {
                let start = {
                    let mut power = p.vcpus[v].power.lock();
                    match (power.power, power.start) {
                        (VcpuPower::OnPending, Some(start)) => {
                            power.power = VcpuPower::On;
                            Some(start)
                        }
                        _ => None,
                    }
                };
                if let Some((entry, x0)) = start {
                    enter_vcpu(p, v, entry, x0);
                }
            }
        }
        // Wait for a kick or console input with interrupts unmasked, then look again.
        // SAFETY: unmasking IRQs at EL2 only while idle: handlers run on this stack and return here.
        unsafe { core::arch::asm!("msr daifclr, #2", "wfi", "msr daifset, #2") };
    }
}

fn enter_vcpu(p: &PartitionRt, vcpu: usize, entry: u64, x0: u64) -> ! {
    p.vcpus[vcpu].in_guest.store(true, Ordering::Release);
    interrupts::reset_this_cpu();
    log::debug!(
        "partition {}: vCPU {vcpu} starts at {entry:#x} on CPU {}",
        p.name,
        cpu::id()
    );
    guest::start(&VcpuStart {
        vmid: p.vmid,
        stage2_root: p.stage2.root_address(),
        vtcr: crate::stage2::vtcr_value(mmu::pa_range()),
        vmpidr: vcpu as u64,
        entry,
        x0,
        cntvoff: p.cntvoff(),
    })
}

/// How a partition came to stop.
pub enum Stop<'a> {
    /// The guest asked for it (PSCI SYSTEM_OFF, or its last vCPU called CPU_OFF).
    PoweredOff,
    /// The guest did something the hypervisor cannot serve.
    Fault(&'a str),
}

static POWERING_OFF: AtomicBool = AtomicBool::new(false);

/// Stops partition `p`, unless it already stopped, and reports why; powers the machine off when
/// it was the last one running. Other CPUs of the partition are kicked out of it.
pub fn stop_partition(p: &PartitionRt, stop: Stop) {
    output::flush_partition(p.index);
    if !p.try_stop() {
        return;
    }
    interrupts::disable_passthrough(&system().config, p);
    match stop {
        Stop::PoweredOff => log::info!("partition {} powered off", p.name),
        Stop::Fault(reason) => log::error!("partition {} stopped: {reason}", p.name),
    }
    turn_vcpus_off(p);
    all_stopped_power_off();
}

/// Turns every vCPU of `p` off and kicks the other cores running them out of the guest (the
/// kick is a physical interrupt, which always leaves the guest: HCR_EL2.IMO).
fn turn_vcpus_off(p: &PartitionRt) {
    for v in &p.vcpus {
        *v.power.lock() = VcpuPowerState {
            power: VcpuPower::Off,
            start: None,
        };
        if v.pcpu != cpu::id() {
            gic::kick(v.pcpu_mpidr);
        }
    }
}

/// Restarts partition `p` (its PSCI SYSTEM_RESET): every vCPU leaves the guest, the partition's
/// memory image and virtual devices are reloaded, and vCPU 0 starts again at the entry point.
/// Other partitions are not touched. Called on one of `p`'s CPUs, which then goes idle.
fn restart_partition(p: &PartitionRt) {
    output::flush_partition(p.index);
    if !p.try_stop() {
        return;
    }
    log::info!("partition {} requested a reset: restarting it", p.name);
    let me = cpu::id();
    turn_vcpus_off(p);
    // Wait for every other vCPU to be back at EL2 before touching the partition's memory.
    for v in p.vcpus.iter().filter(|v| v.pcpu != me) {
        while v.in_guest.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }
    match p.reset(&system().config, &system().bundle) {
        Ok(()) => {
            p.set_running();
            let boot = &p.vcpus[0];
            if boot.pcpu != me {
                gic::kick(boot.pcpu_mpidr);
            }
        }
        Err(e) => {
            log::error!("partition {} cannot restart: {e}", p.name);
            all_stopped_power_off();
        }
    }
}

/// Powers the machine off if every partition has stopped (once, whichever CPU sees it first).
fn all_stopped_power_off() {
    let sys = system();
    if sys.partitions.iter().all(|p| p.state() == State::Stopped)
        && !POWERING_OFF.swap(true, Ordering::AcqRel)
    {
        log::info!("all partitions have stopped: powering off");
        sys.power_off();
    }
}

/// Leaves the guest for good on this CPU (its vCPU is off or its partition stopped).
fn leave_guest() -> ! {
    run_this_cpu()
}

/// Synchronous exception from a guest.
pub extern "C" fn lower_sync(frame: &mut TrapFrame) {
    let Some((p, vcpu)) = current() else {
        // A CPU without a vCPU cannot take exceptions from EL1.
        leave_guest();
    };
    let esr = ESR_EL2.get();
    let outcome = match ExceptionClass::from_esr(esr) {
        ExceptionClass::Hvc64 => psci_call(p, vcpu, frame),
        ExceptionClass::Smc64 => {
            // A trapped SMC returns to the SMC itself; skip it.
            frame.elr += 4;
            psci_call(p, vcpu, frame)
        }
        ExceptionClass::DataAbortLower => data_abort(p, esr, frame),
        ExceptionClass::SysReg64 => system_register(p, vcpu, esr, frame),
        class => Err(unexpected(class, esr, frame)),
    };
    match outcome {
        Ok(Resume::Guest) => interrupts::flush(p, vcpu),
        Ok(Resume::Idle) => leave_guest(),
        Err(reason) => {
            stop_partition(p, Stop::Fault(&reason));
            leave_guest();
        }
    }
}

/// A trapped system register access. With HCR_EL2.IMO set, the guest's SGI generation
/// registers trap here; nothing else is configured to trap.
fn system_register(
    p: &PartitionRt,
    vcpu: usize,
    esr: u64,
    frame: &mut TrapFrame,
) -> Result<Resume, String> {
    let access = SysRegAccess::decode(esr);
    let (op0, op1, crn, crm, op2) = (access.op0, access.op1, access.crn, access.crm, access.op2);
    match (op0, op1, crn, crm, op2, access.read) {
        // ICC_SGI1R_EL1 and ICC_ASGI1R_EL1 (Group 1 SGIs).
        (3, 0, 12, 11, 5, false) | (3, 1, 12, 11, 6, false) => {
            interrupts::send_sgi(p, vcpu, frame.reg(access.reg));
        }
        // ICC_SGI0R_EL1: Group 0 SGIs do not exist for a Non-secure guest; ignored.
        (3, 2, 12, 11, 7, false) => {}
        _ => {
            return Err(format!(
                "trapped system register access `{access}` at PC {:#x}",
                frame.elr
            ))
        }
    }
    frame.elr += 4;
    Ok(Resume::Guest)
}

/// What happens after a trap was served.
enum Resume {
    /// Back to the guest.
    Guest,
    /// This vCPU no longer runs (CPU_OFF, partition powered off).
    Idle,
}

fn unexpected(class: ExceptionClass, esr: u64, frame: &TrapFrame) -> String {
    format!(
        "unhandled exception from the guest: {} (ESR {esr:#x}, FAR {:#x}, ELR {:#x}) on CPU {}",
        class.name(),
        FAR_EL2.get(),
        frame.elr,
        cpu::id()
    )
}

fn psci_call(p: &PartitionRt, vcpu: usize, frame: &mut TrapFrame) -> Result<Resume, String> {
    let regs = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    match psci::dispatch(vcpu, regs, p) {
        PsciAction::Return(value) => {
            frame.x[0] = value;
            Ok(Resume::Guest)
        }
        PsciAction::CpuOn {
            vcpu: target,
            entry,
            context,
        } => {
            let Some(t) = p.vcpus.get(target) else {
                frame.x[0] = smccc::psci::error::INVALID_PARAMETERS as u64;
                return Ok(Resume::Guest);
            };
            if !p
                .config
                .memory
                .iter()
                .any(|m| m.guest().contains(bulkhead_config::GuestPhysAddr(entry)))
            {
                frame.x[0] = smccc::psci::error::INVALID_ADDRESS as u64;
                return Ok(Resume::Guest);
            }
            *t.power.lock() = VcpuPowerState {
                power: VcpuPower::OnPending,
                start: Some((entry, context)),
            };
            gic::kick(t.pcpu_mpidr);
            frame.x[0] = 0;
            Ok(Resume::Guest)
        }
        PsciAction::CpuOff => {
            *p.vcpus[vcpu].power.lock() = VcpuPowerState {
                power: VcpuPower::Off,
                start: None,
            };
            if p.vcpus
                .iter()
                .all(|v| v.power.lock().power == VcpuPower::Off)
            {
                stop_partition(p, Stop::PoweredOff);
            }
            Ok(Resume::Idle)
        }
        PsciAction::SystemOff => {
            stop_partition(p, Stop::PoweredOff);
            Ok(Resume::Idle)
        }
        PsciAction::SystemReset => {
            restart_partition(p);
            Ok(Resume::Idle)
        }
    }
}

/// The faulting guest-physical address of a stage-2 abort.
fn fault_ipa() -> u64 {
    (HPFAR_EL2.read(HPFAR_EL2::FIPA) << 12) | (FAR_EL2.get() & 0xfff)
}

fn data_abort(p: &PartitionRt, esr: u64, frame: &mut TrapFrame) -> Result<Resume, String> {
    let abort = DataAbort::decode(esr);
    let ipa = fault_ipa();
    let access = || {
        format!(
            "{}-byte {} at IPA {ipa:#x}",
            abort.size,
            if abort.write { "write" } else { "read" }
        )
    };
    let write = abort.write.then(|| frame.reg(abort.reg));
    let emulated = if !abort.valid {
        None
    } else if let Some(offset) = p
        .vuart_base()
        .and_then(|base| ipa.checked_sub(base))
        .filter(|&o| o < 0x1000)
    {
        Some(vuart_access(p, offset, abort.size, write))
    } else {
        interrupts::mmio(p, ipa, abort.size, write)
    };
    match emulated {
        Some(Ok(value)) => {
            if let Some(value) = value {
                frame.set_reg(abort.reg, sign_extend(value, &abort));
            }
            frame.elr += 4;
            Ok(Resume::Guest)
        }
        Some(Err(e)) => Err(format!("{e}: {} at PC {:#x}", access(), frame.elr)),
        None => Err(format!(
            "stage-2 data abort: {} ({}) at PC {:#x}, CPU {}",
            access(),
            crate::esr::describe_fault_status(abort.fault_status),
            frame.elr,
            cpu::id()
        )),
    }
}

/// An access to partition `p`'s virtual UART at `offset`.
fn vuart_access(p: &PartitionRt, offset: u64, size: u8, write: Option<u64>) -> interrupts::Access {
    let mut vuart = p.vuart.lock();
    interrupts::prepare_vuart_access(p, &mut vuart);
    let result = match write {
        Some(value) => vuart
            .write(offset, size, value, &mut |b| {
                output::partition_output(p.index, b)
            })
            .map(|()| None),
        None => vuart.read(offset, size).map(Some),
    };
    let line_high = vuart.interrupt_pending();
    drop(vuart);
    if line_high {
        interrupts::vuart_line_high(p, false);
    }
    result.map_err(|e| format!("bad access to its virtual UART ({e:?})"))
}

fn sign_extend(value: u64, abort: &DataAbort) -> u64 {
    let bits = abort.size as u32 * 8;
    let v = if abort.sign_extend && bits < 64 {
        let shift = 64 - bits;
        (((value << shift) as i64) >> shift) as u64
    } else {
        value
    };
    if abort.sixty_four {
        v
    } else {
        v & 0xffff_ffff
    }
}

/// Physical interrupt while a guest ran.
pub extern "C" fn lower_irq(_frame: &mut TrapFrame) {
    handle_irqs();
    if let Some((p, v)) = current() {
        if p.state() != State::Running || p.vcpus[v].power.lock().power != VcpuPower::On {
            leave_guest();
        }
        interrupts::flush(p, v);
    }
}

/// Physical interrupt while this CPU idled at EL2.
pub extern "C" fn el2_irq(_frame: &mut TrapFrame) {
    handle_irqs();
}

fn handle_irqs() {
    let sys = system();
    while let Some(intid) = gic::acknowledge() {
        if !interrupts::FORWARDED_PPIS.contains(&intid) {
            // (The guest timers' ticks would drown everything else.)
            log::trace!("CPU {}: physical interrupt {intid}", cpu::id());
        }
        if interrupts::forward_physical(intid) {
            continue;
        }
        if Some(intid) == sys.console_irq {
            output::drain_input(&mut |partition, byte| {
                if let Some(p) = sys.partitions.get(partition) {
                    if p.vuart.lock().push_input(byte) {
                        interrupts::vuart_level_changed(p, true);
                    } else {
                        log::warn!(
                            "partition {}: console input buffer full, byte dropped",
                            p.name
                        );
                    }
                }
            });
        } else if intid == timer::HYP_TIMER_PPI {
            output::show_partial_line();
        } else if intid == interrupts::MAINTENANCE_PPI {
            // List-register underflow: the refill happens on the way back to the guest.
            crate::arch::aarch64::gich::set_underflow_irq(false);
        } else if intid != gic::KICK_SGI_ID {
            log::warn!("unexpected physical interrupt {intid} on CPU {}", cpu::id());
        }
        gic::complete(intid);
    }
}

/// SError, FIQ or an AArch32 exception from a guest: stop its partition.
pub extern "C" fn lower_fault(frame: &mut TrapFrame) {
    let esr = ESR_EL2.get();
    if let Some((p, _)) = current() {
        let reason = unexpected(ExceptionClass::from_esr(esr), esr, frame);
        stop_partition(p, Stop::Fault(&reason));
    }
    leave_guest();
}

/// An exception taken from EL2 itself: a hypervisor bug. Report everything and stop this CPU.
pub extern "C" fn el2_fault(frame: &mut TrapFrame) {
    let esr = ESR_EL2.get();
    let partition = current().map(|(p, _)| p.name.as_str()).unwrap_or("none");
    panic!(
        "exception in the hypervisor: {} (ESR {esr:#x}, FAR {:#x}, ELR {:#x}) on CPU {}, partition {partition}",
        ExceptionClass::from_esr(esr).name(),
        FAR_EL2.get(),
        frame.elr,
        cpu::id()
    );
}
