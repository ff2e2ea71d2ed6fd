//! Run-time state of one partition and its vCPUs: the stage-2 tables, the virtual devices,
//! which physical CPU runs which vCPU, each vCPU's power state, and the partition's lifecycle
//! state (running or stopped). Built once at boot from the validated board config; never
//! reallocated afterwards. What happens to this state on a guest exit is decided elsewhere in
//! the runtime; this module only holds it and answers questions about it.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

use bulkhead_bundle::{Bundle, Kind};
use bulkhead_config::guest_view::{GICV2_CPU_SIZE, PAGE_SIZE};
use bulkhead_config::{
    BoardConfig, GicVersion, GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PartitionId,
    PcpuId, VcpuId,
};

use super::channel::Channels;
use super::monitor::{Injections, PartitionCounters};
use super::uart_shadow::UartShadow;
use super::vgic::Vgic;
use crate::psci::{PartitionView, VcpuPower};
use crate::stage2::{MapError, Stage2Tables};
use crate::vgic::PendingQueue;
use crate::vuart::VirtualPl011;

/// Lifecycle of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Running = 0,
    Stopped = 1,
}

/// Where a vCPU starts: its entry point and x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuEntry {
    pub pc: GuestPhysAddr,
    pub x0: u64,
}

/// Power state and pending start of one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuPowerState {
    pub power: VcpuPower,
    /// Where it starts next (boot, or the guest's PSCI `CPU_ON`).
    pub start: Option<VcpuEntry>,
}

impl VcpuPowerState {
    /// Off, with nothing to start.
    pub const OFF: Self = Self {
        power: VcpuPower::Off,
        start: None,
    };

    /// About to start at `entry`.
    pub const fn starting(entry: VcpuEntry) -> Self {
        Self {
            power: VcpuPower::OnPending,
            start: Some(entry),
        }
    }
}

/// One vCPU, pinned to one physical CPU.
pub struct Vcpu {
    pub id: VcpuId,
    /// The physical CPU that runs it.
    pub pcpu: PcpuId,
    pub power: Mutex<VcpuPowerState>,
    /// Whether the physical CPU is running this vCPU (false while it idles at EL2).
    pub in_guest: AtomicBool,
    /// Virtual interrupts waiting for one of this vCPU's list registers.
    pub pending: Mutex<PendingQueue>,
    /// Something may be in `pending`: set whenever an interrupt is queued, cleared by the flush
    /// that empties the queue. Lets the way back to the guest skip the queue's lock when nothing
    /// waits (a stale `true` only costs that lock).
    pub queued: AtomicBool,
    /// Virtual interrupts queued for it (`runtime::monitor`; its exits are counted with its
    /// physical CPU).
    pub injected: Injections,
}

impl Vcpu {
    /// Its power state now.
    pub fn power(&self) -> VcpuPower {
        self.power.lock().power
    }
}

/// A partition at run time.
pub struct Partition {
    pub id: PartitionId,
    pub name: String,
    /// Its VMID: tags its TLB entries (partition index + 1; 0 is never used). Every partition
    /// has a CPU of its own, so there are fewer partitions than CPUs and 8 bits are plenty.
    pub vmid: u8,
    pub stage2: Stage2Tables,
    pub config: bulkhead_config::Partition,
    pub vcpus: Vec<Vcpu>,
    pub vuart: Mutex<VirtualPl011>,
    /// Its virtual UART's shadow page, if it has a virtual UART.
    pub uart_shadow: Option<UartShadow>,
    pub vgic: Vgic,
    /// Where its device tree is (x0 at entry), if it has one.
    pub dtb: Option<GuestPhysAddr>,
    /// The register windows of its trapped devices (`trapped-devices`): accesses inside one are
    /// performed for it, at the same (host-physical) address.
    pub trapped: Vec<HostRange>,
    /// What its memory holds after a load: each blob of the bundle (image, device tree,
    /// initrd) and the host-physical address it goes to, checked inside the partition's memory.
    pub blobs: Vec<(HostPhysAddr, &'static [u8])>,
    /// What a load clears: its memory except where the blobs go (they overwrite it anyway).
    pub scrub: Vec<HostRange>,
    /// Its memory must be cleared and its blobs loaded before vCPU 0 starts: at boot and after
    /// a restart. vCPU 0's CPU does it, so partitions load in parallel, each on its own core.
    pub needs_load: AtomicBool,
    /// The channels it is an endpoint of, and its doorbell GPIO.
    pub channels: Channels,
    /// Its restarts and faults (`runtime::monitor`).
    pub counters: PartitionCounters,
    state: AtomicU8,
    /// `CNTVOFF_EL2` of all its vCPUs: the physical count when it was (re)loaded, so its virtual
    /// counter starts near zero and is the same on every vCPU.
    cntvoff: AtomicU64,
}

/// Why a partition could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// Its stage-2 tables could not be built.
    Map(MapError),
    /// Its virtual GIC could not be built.
    Vgic(crate::vgic::ConfigError),
    MissingImage,
    /// More partitions than 8-bit VMIDs.
    TooManyPartitions,
    /// A blob of the bundle does not lie inside the partition's memory.
    BlobOutside {
        kind: Kind,
        load: GuestPhysAddr,
        len: usize,
    },
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Map(e) => write!(f, "cannot build its stage-2 tables: {e}"),
            SetupError::Vgic(e) => write!(f, "cannot build its virtual GIC: {e}"),
            SetupError::MissingImage => write!(f, "its image is missing from the boot bundle"),
            SetupError::TooManyPartitions => write!(f, "there are more partitions than VMIDs"),
            SetupError::BlobOutside { kind, load, len } => write!(
                f,
                "{kind:?} of {len} bytes at IPA {load} does not fit in the partition's memory"
            ),
        }
    }
}

impl Partition {
    /// Builds the stage-2 tables, virtual devices and vCPUs of partition `id` of `config`, and
    /// places the bundle's blobs in its memory. It starts stopped, with nothing loaded.
    pub fn new(
        config: &BoardConfig,
        id: PartitionId,
        bundle: &Bundle<'static>,
    ) -> Result<Self, SetupError> {
        let p = &config.partitions[id.index()];
        let mut stage2 = if config.hypervisor.stage2_blocks {
            Stage2Tables::new()
        } else {
            Stage2Tables::pages_only()
        };
        for region in &p.memory {
            stage2
                .map_ram(region.ipa, region.pa, region.size)
                .map_err(SetupError::Map)?;
        }
        let vuart = VirtualPl011::new();
        let uart_shadow = p
            .virtual_uart
            .map(|ipa| UartShadow::new(&mut stage2, ipa, &vuart))
            .transpose()
            .map_err(SetupError::Map)?;
        // Channels' shared memory, with this endpoint's access.
        for e in config.endpoints_of(id) {
            stage2
                .map_shared(
                    e.endpoint.guest_address,
                    e.channel.memory.base,
                    e.channel.memory.size,
                    e.endpoint.access.is_writable(),
                )
                .map_err(SetupError::Map)?;
        }
        // Passthrough devices appear where they are, by whole pages. Trapped devices share
        // their page with devices the partition does not own: they are not mapped.
        for d in p.devices.iter().filter(|d| d.is_mapped()) {
            for reg in &config.platform.devices[d.device].regs {
                let pages = reg.pages(PAGE_SIZE);
                stage2
                    .map_device(pages.base.identity(), pages.base, pages.size)
                    .map_err(SetupError::Map)?;
            }
        }
        // On a GICv2 the guest's CPU interface is the hardware's virtual one, where its GICC is.
        if let GicVersion::V2 { cpu, vcpu, .. } = config.platform.gic.version {
            stage2
                .map_device(cpu.base.identity(), vcpu.base, GICV2_CPU_SIZE)
                .map_err(SetupError::Map)?;
        }
        let vcpus = p
            .cpus
            .iter()
            .enumerate()
            .map(|(n, &pcpu)| Vcpu {
                id: VcpuId(n),
                pcpu,
                power: Mutex::new(VcpuPowerState::OFF),
                in_guest: AtomicBool::new(false),
                pending: Mutex::new(PendingQueue::new()),
                queued: AtomicBool::new(false),
                injected: Injections::default(),
            })
            .collect();
        if bundle.find(Kind::Image, id.index() as u32).is_none() {
            return Err(SetupError::MissingImage);
        }
        let mut blobs = Vec::new();
        for entry in bundle.entries() {
            if entry.partition as usize != id.index() || entry.kind == Kind::BoardDtb {
                continue;
            }
            let blob = GuestRange::new(GuestPhysAddr(entry.load), entry.data.len() as u64);
            let pa = p
                .memory
                .iter()
                .find(|r| r.guest().contains_range(&blob))
                .and_then(|r| r.host_address(blob.base))
                .ok_or(SetupError::BlobOutside {
                    kind: entry.kind,
                    load: blob.base,
                    len: entry.data.len(),
                })?;
            blobs.push((pa, entry.data));
        }
        let mut covered: Vec<HostRange> = blobs
            .iter()
            .map(|&(pa, data)| HostRange::new(pa, data.len() as u64))
            .collect();
        let scrub = p
            .memory
            .iter()
            .flat_map(|r| r.host().without(&mut covered))
            .collect();
        Ok(Self {
            id,
            name: p.name.clone(),
            vmid: u8::try_from(id.index() + 1).map_err(|_| SetupError::TooManyPartitions)?,
            stage2,
            config: p.clone(),
            vcpus,
            vuart: Mutex::new(vuart),
            uart_shadow,
            vgic: Vgic::new(config, id).map_err(SetupError::Vgic)?,
            trapped: p
                .devices
                .iter()
                .filter(|d| !d.is_mapped())
                .filter_map(|d| config.platform.devices.get(d.device))
                .flat_map(|d| d.regs.iter().copied())
                .collect(),
            channels: Channels::new(config, id),
            dtb: bundle
                .find(Kind::GuestDtb, id.index() as u32)
                .map(|e| GuestPhysAddr(e.load)),
            blobs,
            scrub,
            needs_load: AtomicBool::new(true),
            counters: PartitionCounters::default(),
            state: AtomicU8::new(State::Stopped as u8),
            cntvoff: AtomicU64::new(0),
        })
    }

    /// The vCPU `vcpu`, if the partition has it.
    pub fn vcpu(&self, vcpu: VcpuId) -> Option<&Vcpu> {
        self.vcpus.get(vcpu.index())
    }

    /// Its vCPU that physical CPU `pcpu` runs, if any.
    pub fn vcpu_on(&self, pcpu: PcpuId) -> Option<VcpuId> {
        self.vcpus.iter().find(|v| v.pcpu == pcpu).map(|v| v.id)
    }

    /// Where vCPU 0 starts at boot: the entry point with the device tree in x0.
    pub fn boot_entry(&self) -> VcpuEntry {
        VcpuEntry {
            pc: self.config.entry,
            x0: self.dtb.map_or(0, GuestPhysAddr::raw),
        }
    }

    /// Whether `ipa` lies in the partition's memory.
    pub fn owns_memory(&self, ipa: GuestPhysAddr) -> bool {
        self.config.memory.iter().any(|m| m.guest().contains(ipa))
    }

    /// `CNTVOFF_EL2` for its vCPUs.
    pub fn cntvoff(&self) -> u64 {
        self.cntvoff.load(Ordering::Acquire)
    }

    /// Makes the virtual counter of every vCPU read zero at physical count `count`.
    pub fn set_cntvoff(&self, count: u64) {
        self.cntvoff.store(count, Ordering::Release);
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

    /// Marks the partition stopped. Returns false if it already was (so only one CPU acts).
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

    /// Whether `vcpu` should be in the guest: the partition runs and the vCPU is on. Always
    /// inlined: it is on the interrupt exit path.
    #[inline(always)]
    pub fn runs(&self, vcpu: VcpuId) -> bool {
        self.state() == State::Running
            && self.vcpu(vcpu).is_some_and(|v| v.power() == VcpuPower::On)
    }
}

impl PartitionView for Partition {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    fn vcpu_state(&self, vcpu: VcpuId) -> VcpuPower {
        self.vcpu(vcpu).map_or(VcpuPower::Off, Vcpu::power)
    }
}
