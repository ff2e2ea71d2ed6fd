//! The system: everything fixed at boot (the board config, the partitions with the bundle's
//! blobs each loads, which physical CPU runs which vCPU, which partition owns which SPI), built
//! once from the validated config and never reallocated afterwards, plus the hardware it runs
//! on.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;

use bulkhead_bundle::Bundle;
use bulkhead_config::{BoardConfig, PartitionId, PcpuId, VcpuId};

use super::hw::Hw;
use super::monitor::ExitCounters;
use super::partition::{Partition, SetupError, VcpuPowerState};
use super::physical_irq::RateLimit;
use crate::psci::{query_workarounds, Workarounds};

/// Highest INTID an SPI can have, plus one: the size of the SPI ownership table.
const SPI_TABLE: usize = 1020;

/// The booted system. See the [module documentation](self).
pub struct System<H: Hw> {
    pub hw: H,
    pub config: BoardConfig,
    pub partitions: Vec<Partition>,
    /// For each physical CPU: the vCPU it runs, if any, and that vCPU's exit counters.
    assignment: Vec<CpuSlot>,
    /// The console UART's receive interrupt.
    pub(super) console_irq: Option<u32>,
    /// For each SPI INTID: the partition it is passed through to, if any.
    pub(super) spi_owner: Vec<Option<PartitionId>>,
    /// Set once, by the CPU that powers the machine off.
    pub(super) powering_off: AtomicBool,
    /// The CPU-vulnerability workarounds the firmware implements, as guests are told.
    pub(super) workarounds: Workarounds,
    /// Reports of unexpected physical interrupts.
    pub(super) unexpected: RateLimit,
}

/// What one physical CPU runs, and the counters of that vCPU's exits (`runtime::monitor`), kept
/// together so that the exit path finds both with one lookup. Cache-line aligned: each CPU
/// writes its own counters, never a line another CPU writes.
#[derive(Debug, Default)]
#[repr(align(64))]
struct CpuSlot {
    runs: Option<(PartitionId, VcpuId)>,
    counters: ExitCounters,
}

/// Why the system could not be built: the partition at fault (its node path) and why.
#[derive(Debug)]
pub struct BootError {
    pub node: alloc::string::String,
    pub error: SetupError,
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "node {}: {}", self.node, self.error)
    }
}

impl<H: Hw> System<H> {
    /// Builds every partition of `config` (stage-2 tables, virtual devices) and places its blobs
    /// from `bundle` in its memory (each partition's boot CPU loads them, see
    /// `next_vcpu_start`); puts the passthrough interrupts in their boot state. Nothing runs
    /// yet: see [`start`](Self::start).
    pub fn new(hw: H, config: BoardConfig, bundle: Bundle<'static>) -> Result<Self, BootError> {
        let mut partitions = Vec::with_capacity(config.partitions.len());
        for (i, pc) in config.partitions.iter().enumerate() {
            let p =
                Partition::new(&config, PartitionId(i), &bundle).map_err(|error| BootError {
                    node: pc.path.clone(),
                    error,
                })?;
            partitions.push(p);
        }
        let mut assignment: Vec<CpuSlot> = (0..config.platform.cpus.len())
            .map(|_| CpuSlot::default())
            .collect();
        let mut spi_owner = vec![None; SPI_TABLE];
        for p in &partitions {
            for v in &p.vcpus {
                if let Some(slot) = assignment.get_mut(v.pcpu.index()) {
                    slot.runs = Some((p.id, v.id));
                }
            }
            for spi in config.partition_spis(p.id) {
                if p.vgic.is_physical(spi) {
                    if let Some(slot) = spi_owner.get_mut(spi as usize) {
                        *slot = Some(p.id);
                    }
                }
            }
        }
        let console_irq = config
            .hypervisor
            .console
            .and_then(|c| config.platform.devices.get(c))
            .and_then(|c| c.irqs.first())
            .map(|i| i.intid());
        let workarounds = query_workarounds(&mut |function, arg| hw.firmware_call(function, arg));
        let system = Self {
            hw,
            config,
            partitions,
            assignment,
            console_irq,
            spi_owner,
            powering_off: AtomicBool::new(false),
            workarounds,
            unexpected: RateLimit::default(),
        };
        system.zero_channels();
        for p in &system.partitions {
            system.reset_passthrough(p);
            // Until vCPU 0's CPU loads the partition (`next_vcpu_start`).
            if let Some(boot) = p.vcpus.first() {
                *boot.power.lock() = VcpuPowerState::starting(p.boot_entry());
            }
        }
        Ok(system)
    }

    /// Lets every partition run: vCPU 0 of each starts as soon as its CPU looks.
    pub fn start(&self) {
        for p in &self.partitions {
            p.set_running();
            if let Some(exposure) = self.config.dma_exposure(p.id) {
                log::warn!("{exposure}");
            }
            log::info!(
                "partition {}: {} vCPU(s) on CPU(s) {:?}, {} MiB, VMID {}{}",
                p.name,
                p.vcpus.len(),
                p.vcpus.iter().map(|v| v.pcpu.index()).collect::<Vec<_>>(),
                p.config.memory.iter().map(|m| m.size).sum::<u64>() >> 20,
                p.vmid,
                if p.config.direct_interrupts {
                    ", direct interrupts"
                } else {
                    ""
                }
            );
        }
        self.log_channels();
    }

    /// The partition and vCPU physical CPU `cpu` runs, if any.
    pub fn current(&self, cpu: PcpuId) -> Option<(&Partition, VcpuId)> {
        self.current_counted(cpu).map(|(p, v, _)| (p, v))
    }

    /// The same with the exit counters of that vCPU.
    pub(super) fn current_counted(
        &self,
        cpu: PcpuId,
    ) -> Option<(&Partition, VcpuId, &ExitCounters)> {
        let slot = self.assignment.get(cpu.index())?;
        let (p, v) = slot.runs?;
        Some((self.partitions.get(p.index())?, v, &slot.counters))
    }

    /// The exit counters of physical CPU `cpu`'s vCPU (they stay zero if it runs none).
    pub(super) fn exit_counters(&self, cpu: PcpuId) -> Option<&ExitCounters> {
        self.assignment.get(cpu.index()).map(|slot| &slot.counters)
    }

    /// Whether physical CPU `cpu` runs a vCPU.
    pub fn is_assigned(&self, cpu: PcpuId) -> bool {
        self.current(cpu).is_some()
    }

    /// The console UART's interrupt, if the hypervisor has a console with one.
    pub fn console_irq(&self) -> Option<u32> {
        self.console_irq
    }
}
