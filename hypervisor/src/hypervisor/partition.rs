//! Runtime state of partitions and vCPUs: the stage-2 tables, the virtual UART, which physical
//! CPU runs which vCPU, vCPU power state, and the partition's lifecycle (running, stopped).
//! Built once at boot from the validated board config; never reallocated afterwards.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

use bulkhead_bundle::{Bundle, Kind};
use bulkhead_config::{BoardConfig, Partition};

use crate::psci::{PartitionView, VcpuPower};
use crate::stage2::Stage2Tables;
use crate::vgic::PendingQueue;
use crate::vuart::VirtualPl011;

use super::interrupts::Vgic;

/// Lifecycle of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Running = 0,
    Stopped = 1,
}

/// Power state and pending start request of one vCPU.
#[derive(Clone, Copy, Debug)]
pub struct VcpuPowerState {
    pub power: VcpuPower,
    /// Entry point and x0 for the next start (boot, or the guest's PSCI CPU_ON).
    pub start: Option<(u64, u64)>,
}

/// One vCPU, pinned to one physical CPU.
pub struct Vcpu {
    /// Logical index of the physical CPU (position in the platform's `/cpus`).
    pub pcpu: usize,
    /// Physical MPIDR of that CPU.
    pub pcpu_mpidr: u64,
    pub power: Mutex<VcpuPowerState>,
    /// Whether the physical CPU is currently running this vCPU (false while it idles at EL2).
    pub in_guest: AtomicBool,
    /// Virtual interrupts waiting for one of this vCPU's list registers.
    pub pending: Mutex<PendingQueue>,
}

/// A partition at run time.
pub struct PartitionRt {
    pub index: usize,
    pub name: String,
    pub vmid: u16,
    pub stage2: Stage2Tables,
    pub config: Partition,
    pub vcpus: Vec<Vcpu>,
    pub vuart: Mutex<VirtualPl011>,
    pub vgic: Vgic,
    /// Guest-physical address of the partition's device tree (x0 at entry), if it has one.
    pub dtb: Option<u64>,
    state: AtomicU8,
    /// CNTVOFF_EL2 of all the partition's vCPUs: the physical count when it was (re)loaded, so
    /// its virtual counter starts near zero and is the same on every vCPU.
    cntvoff: AtomicU64,
}

/// Why a partition could not be set up at boot.
#[derive(Debug)]
pub enum SetupError {
    Map(String),
    MissingImage,
    BlobOutside { kind: Kind, load: u64, len: usize },
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Map(e) => write!(f, "cannot set it up: {e}"),
            SetupError::MissingImage => write!(f, "its image is missing from the boot bundle"),
            SetupError::BlobOutside { kind, load, len } => write!(
                f,
                "{kind:?} of {len} bytes at IPA {load:#x} does not fit in the partition's memory"
            ),
        }
    }
}

impl PartitionRt {
    /// Builds the stage-2 tables and vCPUs of partition `index` of `config`.
    pub fn new(config: &BoardConfig, index: usize, bundle: &Bundle) -> Result<Self, SetupError> {
        let p = &config.partitions[index];
        let mut stage2 = if config.hypervisor.stage2_blocks {
            Stage2Tables::new()
        } else {
            Stage2Tables::pages_only()
        };
        for region in &p.memory {
            stage2
                .map_ram(region.ipa, region.pa, region.size)
                .map_err(|e| SetupError::Map(alloc::format!("stage-2 tables: {e:?}")))?;
        }
        for &d in &p.devices {
            for reg in &config.platform.devices[d].regs {
                let pages = reg.pages(bulkhead_config::guest_view::PAGE_SIZE);
                stage2
                    .map_device(pages.base.identity(), pages.base, pages.size)
                    .map_err(|e| SetupError::Map(alloc::format!("stage-2 tables: {e:?}")))?;
            }
        }
        let vcpus = p
            .cpus
            .iter()
            .enumerate()
            .map(|(n, &cpu)| Vcpu {
                pcpu: cpu.index(),
                pcpu_mpidr: config.platform.cpus[cpu.index()].mpidr,
                power: Mutex::new(VcpuPowerState {
                    power: if n == 0 {
                        VcpuPower::OnPending
                    } else {
                        VcpuPower::Off
                    },
                    start: None,
                }),
                in_guest: AtomicBool::new(false),
                pending: Mutex::new(PendingQueue::new()),
            })
            .collect();
        if bundle.find(Kind::Image, index as u32).is_none() {
            return Err(SetupError::MissingImage);
        }
        Ok(Self {
            index,
            name: p.name.clone(),
            vmid: index as u16 + 1,
            stage2,
            config: p.clone(),
            vcpus,
            vuart: Mutex::new(VirtualPl011::new()),
            vgic: Vgic::new(config, index).map_err(SetupError::Map)?,
            dtb: bundle.find(Kind::GuestDtb, index as u32).map(|e| e.load),
            state: AtomicU8::new(State::Stopped as u8),
            cntvoff: AtomicU64::new(0),
        })
    }

    /// Copies the partition's blobs from the bundle into its memory and marks vCPU 0 to start at
    /// the entry point. The partition must not be running.
    pub fn load(&self, bundle: &Bundle) -> Result<(), SetupError> {
        for entry in bundle
            .entries()
            .filter(|e| e.partition as usize == self.index)
        {
            if entry.kind == Kind::BoardDtb {
                continue;
            }
            let len = entry.data.len();
            let outside = SetupError::BlobOutside {
                kind: entry.kind,
                load: entry.load,
                len,
            };
            let blob = bulkhead_config::GuestRange::new(
                bulkhead_config::GuestPhysAddr(entry.load),
                len as u64,
            );
            let pa = self
                .config
                .memory
                .iter()
                .find(|r| r.guest().contains_range(&blob))
                .and_then(|r| r.host_address(blob.base))
                .ok_or(outside)?
                .raw();
            // SAFETY: `pa..pa + len` lies inside one of this partition's memory regions, which
            // validation placed in RAM outside the hypervisor's own memory, and which the
            // hypervisor identity-maps. The partition is not running, so nothing else uses it.
            let dst = unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) };
            dst.copy_from_slice(entry.data);
        }
        self.cntvoff.store(
            crate::arch::aarch64::guest::physical_count(),
            Ordering::Release,
        );
        for (n, vcpu) in self.vcpus.iter().enumerate() {
            let mut power = vcpu.power.lock();
            *power = if n == 0 {
                VcpuPowerState {
                    power: VcpuPower::OnPending,
                    start: Some((self.config.entry.raw(), self.dtb.unwrap_or(0))),
                }
            } else {
                VcpuPowerState {
                    power: VcpuPower::Off,
                    start: None,
                }
            };
        }
        Ok(())
    }

    /// CNTVOFF_EL2 for the partition's vCPUs.
    pub fn cntvoff(&self) -> u64 {
        self.cntvoff.load(Ordering::Acquire)
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Running,
            _ => State::Stopped,
        }
    }

    pub fn set_running(&self) {
        self.state.store(State::Running as u8, Ordering::Release);
    }

    /// Puts the partition back to its boot state: fresh virtual devices, images and device tree
    /// reloaded, vCPU 0 ready to start. Every vCPU must be out of the guest.
    pub fn reset(&self, config: &BoardConfig, bundle: &Bundle) -> Result<(), SetupError> {
        *self.vuart.lock() = VirtualPl011::new();
        super::interrupts::reset_partition(config, self);
        self.load(bundle)
    }

    /// Marks the partition stopped. Returns false if it already was (so only one CPU reports).
    pub fn try_stop(&self) -> bool {
        self.state
            .compare_exchange(
                State::Running as u8,
                State::Stopped as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The vCPU this physical CPU runs for the partition, if any.
    pub fn vcpu_on(&self, pcpu: usize) -> Option<usize> {
        self.vcpus.iter().position(|v| v.pcpu == pcpu)
    }

    /// The partition's virtual UART base, if it has one.
    pub fn vuart_base(&self) -> Option<u64> {
        self.config.virtual_uart.map(|a| a.raw())
    }
}

impl PartitionView for PartitionRt {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    fn vcpu_state(&self, vcpu: usize) -> VcpuPower {
        self.vcpus
            .get(vcpu)
            .map_or(VcpuPower::Off, |v| v.power.lock().power)
    }

    fn vcpu_mpidr(&self, vcpu: usize) -> u64 {
        vcpu as u64
    }
}
