//! Validation of a parsed [`BoardConfig`]: checks that the partitions really are isolated from
//! each other and from the hypervisor (memory, CPUs, devices, interrupts, DMA), that each one
//! is complete enough to boot, and that the channels between them share only what they should
//! ([`channels`]).
//!
//! Checks run in a fixed order (the CPUs first, then the hypervisor node, then each partition in
//! config order, then each channel) and the first failure is returned, so the same config always
//! yields the same error. A claim two partitions make (a CPU, memory, a device, an interrupt) is
//! reported at the second one; a partition's devices are also checked against every device it
//! does not own and all RAM. Nothing here panics, even on a model that was not built by `parse`
//! (indices are checked).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};

use crate::addr::{GuestRange, HostRange};
use crate::error::{ConfigError, ErrorKind};
use crate::guest_view::{GICV2_MAX_VCPUS, IPA_LIMIT, PAGE_SIZE, VUART_SIZE};
use crate::model::{BoardConfig, Device, EnableMethod, GicVersion, Partition, PassthroughDevice};

mod channels;
mod monitor;

/// The validator's results, with the error boxed as the parser's (see `parse`).
type Result<T = ()> = core::result::Result<T, Box<ConfigError>>;

/// Validates a board config; returns the first problem found.
pub fn validate(c: &BoardConfig) -> core::result::Result<(), ConfigError> {
    validate_boxed(c).map_err(|e| *e)
}

fn validate_boxed(c: &BoardConfig) -> Result {
    validate_cpus(c)?;
    validate_hypervisor(c)?;
    if c.partitions.is_empty() {
        return Err(ConfigError::boxed("/hypervisor", ErrorKind::NoPartitions));
    }
    for (i, p) in c.partitions.iter().enumerate() {
        let earlier = c.partitions.get(..i).unwrap_or_default();
        Check { c, p, earlier }.run()?;
    }
    channels::validate_channels(c)
}

/// Every CPU has an MPIDR of its own: the hypervisor finds each CPU's GIC redistributor and
/// sends it interrupts by MPIDR. A CPU can be started the way its node says: PSCI needs the
/// firmware, a spin table a release address nobody's memory covers. A GICv2 serves at most 8.
fn validate_cpus(c: &BoardConfig) -> Result {
    let cpus = &c.platform.cpus;
    if c.platform.gic.is_v2() && cpus.len() > GICV2_MAX_VCPUS {
        return Err(ConfigError::boxed(
            "/cpus",
            ErrorKind::TooManyCpusForGicV2 { cpus: cpus.len() },
        ));
    }
    for cpu in cpus {
        match cpu.enable_method {
            Some(EnableMethod::Psci) if c.platform.psci.is_none() => {
                return Err(ConfigError::boxed(
                    cpu.path.as_str(),
                    ErrorKind::PsciCpuWithoutPsci,
                ));
            }
            Some(EnableMethod::SpinTable { release_addr }) => {
                let word = HostRange::new(release_addr, 8);
                let memory = if word.overlaps(&c.hypervisor.memory) {
                    Some("the hypervisor's memory".to_string())
                } else {
                    c.partitions
                        .iter()
                        .find(|p| p.memory.iter().any(|m| m.host().overlaps(&word)))
                        .map(|p| format!("partition {}'s memory", p.name))
                };
                if let Some(memory) = memory {
                    return Err(ConfigError::boxed(
                        cpu.path.as_str(),
                        ErrorKind::SpinTableInMemory {
                            addr: release_addr,
                            memory,
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    for (k, cpu) in cpus.iter().enumerate() {
        if let Some(other) = cpus
            .get(..k)
            .unwrap_or_default()
            .iter()
            .find(|o| o.mpidr == cpu.mpidr)
        {
            return Err(ConfigError::boxed(
                cpu.path.as_str(),
                ErrorKind::DuplicateMpidr {
                    mpidr: cpu.mpidr,
                    other: other.path.clone(),
                },
            ));
        }
    }
    Ok(())
}

fn validate_hypervisor(c: &BoardConfig) -> Result {
    let err = |kind| Err(ConfigError::boxed("/hypervisor", kind));
    let m = c.hypervisor.memory;
    if let Some(kind) = range_problem(
        m.base.raw(),
        m.size,
        "hypervisor memory",
        "hypervisor memory base",
        "hypervisor memory size",
    ) {
        return err(kind);
    }
    if !in_ram(c, &m) {
        return err(ErrorKind::HypervisorMemoryOutsideRam { range: m });
    }
    if let Some(kind) = reserved_overlap(c, "hypervisor memory", &m) {
        return err(kind);
    }
    if let Some(console) = c
        .hypervisor
        .console
        .filter(|&i| i >= c.platform.devices.len())
    {
        return err(ErrorKind::IndexOutOfRange {
            what: "console device",
            index: console,
        });
    }
    Ok(())
}

/// Zero size, misalignment or wrap-around of a range, if any.
fn range_problem(
    base: u64,
    size: u64,
    what: &'static str,
    what_base: &'static str,
    what_size: &'static str,
) -> Option<ErrorKind> {
    if size == 0 {
        Some(ErrorKind::ZeroSize { what })
    } else if !base.is_multiple_of(PAGE_SIZE) {
        Some(ErrorKind::Misaligned {
            what: what_base,
            value: base,
        })
    } else if !size.is_multiple_of(PAGE_SIZE) {
        Some(ErrorKind::Misaligned {
            what: what_size,
            value: size,
        })
    } else if base.checked_add(size).is_none() {
        Some(ErrorKind::AddressOverflow { what, base, size })
    } else {
        None
    }
}

fn in_ram(c: &BoardConfig, r: &HostRange) -> bool {
    c.platform.ram.iter().any(|ram| ram.contains_range(r))
}

/// The first range the platform reserves that `range` (`what`) overlaps, as an error.
fn reserved_overlap(c: &BoardConfig, what: &'static str, range: &HostRange) -> Option<ErrorKind> {
    c.platform
        .reserved
        .iter()
        .find(|r| r.range.size > 0 && r.range.overlaps(range))
        .map(|r| ErrorKind::MemoryOverlapsReserved {
            what,
            range: *range,
            reserved: r.range,
            origin: r.origin.clone(),
        })
}

/// Whether `range` lies beyond what stage 2 translates, as an error about `what`.
fn beyond_ipa_limit(what: impl FnOnce() -> String, range: GuestRange) -> Option<ErrorKind> {
    (range.end().raw() > IPA_LIMIT).then(|| ErrorKind::BeyondIpaLimit {
        what: what(),
        range,
    })
}

/// The range rounded out to whole pages: what mapping it exposes.
fn pages(r: &HostRange) -> HostRange {
    r.pages(PAGE_SIZE)
}

/// The INTID of an interrupt, without overflow.
fn intid(irq: &crate::model::Irq) -> Option<u32> {
    match irq.kind {
        crate::model::IrqKind::Spi => irq.number.checked_add(32),
        crate::model::IrqKind::Ppi => irq.number.checked_add(16),
    }
}

/// Checks of one partition against the platform, the hypervisor and the partitions before it.
struct Check<'c> {
    c: &'c BoardConfig,
    p: &'c Partition,
    earlier: &'c [Partition],
}

impl Check<'_> {
    fn fail(&self, kind: ErrorKind) -> Result {
        Err(ConfigError::boxed(self.p.path.as_str(), kind))
    }

    fn device(&self, index: usize) -> Option<&Device> {
        self.c.platform.devices.get(index)
    }

    /// The partition's devices that exist (mapped or trapped).
    fn owned(&self) -> impl Iterator<Item = &Device> + '_ {
        self.p.device_indices().filter_map(|d| self.device(d))
    }

    fn run(&self) -> Result {
        let p = self.p;
        if self.earlier.iter().any(|q| q.name == p.name) {
            return self.fail(ErrorKind::DuplicatePartitionName(p.name.clone()));
        }
        if p.name == crate::HYPERVISOR_CONSOLE_NAME {
            return self.fail(ErrorKind::ReservedPartitionName(p.name.clone()));
        }
        if p.image.is_empty() {
            return self.fail(ErrorKind::MissingImage);
        }
        self.cpus()?;
        self.memory()?;
        self.devices()?;
        self.guest_layout()?;
        self.virtual_uart()?;
        monitor::window(self.c, self.p)?;
        channels::doorbell_gpio(self.c, self.p)?;
        self.direct_interrupts()?;
        self.addresses()
    }

    /// A `direct-interrupts` partition takes its cores' physical interrupts itself, so the
    /// hypervisor must be able to keep every other interrupt away from those cores and still
    /// reach them: a GICv3 (on a GICv2 the guest would own the physical CPU interface's
    /// Group 0 enable, and so the hypervisor's own interrupts on its cores), not the platform's
    /// first CPU (the one the hypervisor boots on, which takes the console's interrupt), and no
    /// doorbell interrupts (purely virtual interrupts, which need the virtual CPU interface the
    /// partition does without).
    fn direct_interrupts(&self) -> Result {
        let p = self.p;
        if !p.direct_interrupts {
            return Ok(());
        }
        if self.c.platform.gic.is_v2() {
            return self.fail(ErrorKind::DirectInterruptsNeedGicv3);
        }
        if let Some(first) = p.cpus.iter().find(|cpu| cpu.index() == 0) {
            let cpu = self
                .c
                .platform
                .cpus
                .get(first.index())
                .map_or_else(String::new, |c| c.path.clone());
            return self.fail(ErrorKind::DirectInterruptsOnBootCpu { cpu });
        }
        let id = crate::addr::PartitionId(self.earlier.len());
        let doorbell =
            p.doorbell_gpio.is_some() || self.c.endpoints_of(id).any(|e| e.signal.is_some());
        if doorbell {
            return self.fail(ErrorKind::DirectInterruptsWithDoorbell);
        }
        Ok(())
    }

    /// Guest-physical memory must leave room for what else the partition sees at fixed
    /// addresses (the virtual GIC, its devices, at their host addresses), and bus masters need
    /// a `dma-trusted` partition with memory mapped 1:1 ([`Self::dma`]).
    fn guest_layout(&self) -> Result {
        let p = self.p;
        // The virtual GIC appears where the platform's is.
        for (what, window) in self.c.platform.gic.guest_windows(p.cpus.len()) {
            if let Some(kind) = beyond_ipa_limit(|| what.to_string(), window) {
                return self.fail(kind);
            }
            if let Some(m) = p.memory.iter().find(|m| m.guest().overlaps(&window)) {
                return self.fail(ErrorKind::MemoryOverlapsGic {
                    region: m.guest(),
                    gic: window,
                });
            }
        }
        // Trapped devices too: an access to a page that is mapped as memory never traps.
        for dev in self.owned() {
            for m in &p.memory {
                if dev
                    .regs
                    .iter()
                    .any(|r| pages(r).identity().overlaps(&m.guest()))
                {
                    return self.fail(ErrorKind::MemoryOverlapsDevice {
                        region: m.guest(),
                        device: dev.path.clone(),
                    });
                }
            }
        }
        self.dma()
    }

    /// A bus master reaches all memory: the partition must say it accepts that (`dma-trusted`),
    /// and since it programs the device with guest-physical addresses, which the device takes
    /// for host-physical ones, its memory must be mapped 1:1 for DMA to land where it means.
    fn dma(&self) -> Result {
        let p = self.p;
        for dev in self.owned() {
            let Some(reason) = dev.dma.reason() else {
                continue;
            };
            if !p.dma_trusted {
                return self.fail(ErrorKind::DmaMasterNotTrusted {
                    device: dev.path.clone(),
                    reason: reason.clone(),
                });
            }
            if let Some(m) = p.memory.iter().find(|m| m.pa.identity() != m.ipa) {
                return self.fail(ErrorKind::PassthroughNeedsIdentityMemory {
                    region: m.guest(),
                    pa: m.pa,
                    device: dev.path.clone(),
                });
            }
        }
        Ok(())
    }

    fn cpus(&self) -> Result {
        let p = self.p;
        if p.cpus.is_empty() {
            return self.fail(ErrorKind::NoCpus);
        }
        for (k, &cpu) in p.cpus.iter().enumerate() {
            let Some(info) = self.c.platform.cpus.get(cpu.index()) else {
                return self.fail(ErrorKind::IndexOutOfRange {
                    what: "cpu",
                    index: cpu.index(),
                });
            };
            if p.cpus.get(..k).unwrap_or_default().contains(&cpu) {
                return self.fail(ErrorKind::DuplicateCpu {
                    cpu: info.path.clone(),
                });
            }
            if let Some(q) = self.earlier.iter().find(|q| q.cpus.contains(&cpu)) {
                return self.fail(ErrorKind::CpuInTwoPartitions {
                    cpu: info.path.clone(),
                    partition: q.name.clone(),
                });
            }
        }
        Ok(())
    }

    fn memory(&self) -> Result {
        let p = self.p;
        if p.memory.is_empty() {
            return self.fail(ErrorKind::NoMemory);
        }
        let hv = self.c.hypervisor.memory;
        for (k, region) in p.memory.iter().enumerate() {
            let problem = range_problem(
                region.ipa.raw(),
                region.size,
                "memory region",
                "memory guest-physical base",
                "memory size",
            )
            .or_else(|| {
                range_problem(
                    region.pa.raw(),
                    region.size,
                    "memory region",
                    "memory host-physical base",
                    "memory size",
                )
            });
            if let Some(kind) =
                problem.or_else(|| beyond_ipa_limit(|| "memory".to_string(), region.guest()))
            {
                return self.fail(kind);
            }
            let host = region.host();
            if !in_ram(self.c, &host) {
                return self.fail(ErrorKind::MemoryOutsideRam { range: host });
            }
            if host.overlaps(&hv) {
                return self.fail(ErrorKind::MemoryOverlapsHypervisor {
                    range: host,
                    hypervisor: hv,
                });
            }
            if let Some(kind) = reserved_overlap(self.c, "memory", &host) {
                return self.fail(kind);
            }
            for other in p.memory.get(..k).unwrap_or_default() {
                if host.overlaps(&other.host()) {
                    return self.fail(ErrorKind::MemoryOverlapsSelf {
                        range: host,
                        other: other.host(),
                    });
                }
                if region.guest().overlaps(&other.guest()) {
                    return self.fail(ErrorKind::GuestMemoryOverlapsSelf {
                        range: region.guest(),
                        other: other.guest(),
                    });
                }
            }
            for q in self.earlier {
                if q.memory.iter().any(|o| o.host().overlaps(&host)) {
                    return self.fail(ErrorKind::MemoryOverlapsPartition {
                        range: host,
                        partition: q.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn is_interrupt_controller(&self, dev: &Device) -> bool {
        let gic = &self.c.platform.gic;
        let compatible = dev.compatible.iter().any(|c| {
            c.starts_with("arm,gic-v3") || c == "arm,gic-400" || c == "arm,cortex-a15-gic"
        });
        let interfaces = match gic.version {
            GicVersion::V3 => alloc::vec![],
            GicVersion::V2 { cpu, control, vcpu } => alloc::vec![cpu, control, vcpu],
        };
        compatible
            || dev.regs.iter().any(|r| {
                let r = pages(r);
                r.overlaps(&gic.distributor)
                    || gic.redistributors.iter().any(|g| r.overlaps(g))
                    || interfaces.iter().any(|g| r.overlaps(g))
            })
    }

    /// Each device the partition owns, mapped or trapped: a real device, nobody else's, with
    /// sound register windows clear of RAM, interrupts of its own, and registers the partition
    /// can reach without reaching another device's.
    fn devices(&self) -> Result {
        let p = self.p;
        for (k, pd) in p.devices.iter().enumerate() {
            let d = pd.device;
            let Some(dev) = self.device(d) else {
                return self.fail(ErrorKind::IndexOutOfRange {
                    what: "device",
                    index: d,
                });
            };
            let device = || dev.path.clone();
            if p.devices
                .get(..k)
                .unwrap_or_default()
                .iter()
                .any(|o| o.device == d)
            {
                return self.fail(ErrorKind::DuplicateDevice { device: device() });
            }
            if dev.path.starts_with("/cpus/") {
                return self.fail(ErrorKind::DeviceIsCpu { device: device() });
            }
            if self.is_interrupt_controller(dev) {
                return self.fail(ErrorKind::DeviceIsInterruptController { device: device() });
            }
            if Some(d) == self.c.hypervisor.console {
                return self.fail(ErrorKind::DeviceIsConsole { device: device() });
            }
            if let Some(q) = self.earlier.iter().find(|q| q.owns_device(d)) {
                return self.fail(ErrorKind::DeviceInTwoPartitions {
                    device: device(),
                    partition: q.name.clone(),
                });
            }
            self.registers(pd, dev)?;
            self.interrupts(dev)?;
            self.neighbours(pd, dev)?;
        }
        Ok(())
    }

    /// A device's register windows: not empty, not wrapping, made of 32-bit words if trapped,
    /// inside what stage 2 translates (they appear at their host addresses) and clear of RAM,
    /// as the partition reaches them (whole pages if mapped, the windows if trapped).
    fn registers(&self, pd: &PassthroughDevice, dev: &Device) -> Result {
        let device = || dev.path.clone();
        if dev.regs.is_empty() {
            return self.fail(ErrorKind::DeviceWithoutRegisters { device: device() });
        }
        for r in &dev.regs {
            if r.size == 0 {
                return self.fail(ErrorKind::DeviceRegionZeroSize {
                    device: device(),
                    base: r.base,
                });
            }
            if r.base.checked_add(r.size).is_none() {
                return self.fail(ErrorKind::DeviceRegionOverflow {
                    device: device(),
                    base: r.base,
                    size: r.size,
                });
            }
            let whole_words = r.base.is_aligned(4) && r.size.is_multiple_of(4);
            if !pd.is_mapped() && !whole_words {
                return self.fail(ErrorKind::TrappedDeviceMisaligned {
                    device: device(),
                    range: *r,
                });
            }
            let reach = if pd.is_mapped() { pages(r) } else { *r };
            let what = || format!("device {} registers", dev.path);
            if let Some(kind) = beyond_ipa_limit(what, reach.identity()) {
                return self.fail(kind);
            }
            if let Some(memory) = self.ram_under(&reach) {
                return self.fail(ErrorKind::DeviceOverlapsMemory {
                    device: device(),
                    range: reach,
                    memory,
                });
            }
        }
        Ok(())
    }

    /// What RAM `range` overlaps, described: the hypervisor's memory, a partition's memory or
    /// other RAM.
    fn ram_under(&self, range: &HostRange) -> Option<String> {
        let hv = self.c.hypervisor.memory;
        if range.overlaps(&hv) {
            return Some(format!("the hypervisor's memory {hv}"));
        }
        for q in &self.c.partitions {
            if let Some(m) = q.memory.iter().find(|m| range.overlaps(&m.host())) {
                return Some(format!("memory {} of partition {}", m.host(), q.name));
            }
        }
        let ram = self.c.platform.ram.iter().find(|ram| range.overlaps(ram))?;
        Some(format!("RAM {ram}"))
    }

    /// A device's interrupts: not the console's, not another partition's device's.
    fn interrupts(&self, dev: &Device) -> Result {
        let console = self.c.hypervisor.console.and_then(|i| self.device(i));
        for irq in &dev.irqs {
            let Some(id) = intid(irq) else { continue };
            if console.is_some_and(|con| con.irqs.iter().any(|ci| intid(ci) == Some(id))) {
                return self.fail(ErrorKind::InterruptOfConsole {
                    intid: id,
                    device: dev.path.clone(),
                });
            }
            for q in self.earlier {
                let shared = q
                    .device_indices()
                    .filter_map(|i| self.device(i))
                    .any(|o| o.irqs.iter().any(|oi| intid(oi) == Some(id)));
                if shared {
                    return self.fail(ErrorKind::InterruptInTwoPartitions {
                        intid: id,
                        device: dev.path.clone(),
                        partition: q.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// What the partition reaches of other devices through this one: no register of a device it
    /// does not own, and, if the device is mapped, no page of one either (a trapped device is
    /// range-checked, so it may share pages).
    fn neighbours(&self, pd: &PassthroughDevice, dev: &Device) -> Result {
        let others = || {
            self.c
                .platform
                .devices
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != pd.device && !self.p.owns_device(i))
        };
        // Empty windows hold no register: they touch nothing.
        let touches = |o: &Device, grow: fn(&HostRange) -> HostRange| {
            dev.regs.iter().filter(|r| r.size > 0).any(|r| {
                o.regs
                    .iter()
                    .filter(|or| or.size > 0)
                    .any(|or| grow(r).overlaps(&grow(or)))
            })
        };
        if let Some((i, o)) = others().find(|(_, o)| touches(o, |r| *r)) {
            return self.fail(ErrorKind::DeviceOverlapsDevice {
                device: dev.path.clone(),
                other: self.whose(i, o),
            });
        }
        if pd.is_mapped() {
            if let Some((i, o)) = others().find(|(_, o)| touches(o, pages)) {
                return self.fail(ErrorKind::DevicePageShared {
                    device: dev.path.clone(),
                    other: self.whose(i, o),
                });
            }
        }
        Ok(())
    }

    /// Platform device `index` (`o`), described with its owner, for messages.
    fn whose(&self, index: usize, o: &Device) -> String {
        if Some(index) == self.c.hypervisor.console {
            return format!("the hypervisor console {}", o.path);
        }
        match self.c.partitions.iter().find(|q| q.owns_device(index)) {
            Some(q) => format!("device {} of partition {}", o.path, q.name),
            None => format!("device {} (given to no partition)", o.path),
        }
    }

    fn virtual_uart(&self) -> Result {
        let p = self.p;
        let Some(base) = p.virtual_uart else {
            return Ok(());
        };
        if self.c.hypervisor.console.is_none() {
            return self.fail(ErrorKind::VirtualUartWithoutConsole);
        }
        if let Some(kind) = range_problem(
            base.raw(),
            VUART_SIZE,
            "virtual-uart",
            "virtual-uart base",
            "virtual-uart size",
        ) {
            return self.fail(kind);
        }
        let uart = GuestRange::new(base, VUART_SIZE);
        if let Some(kind) = beyond_ipa_limit(|| "virtual-uart".to_string(), uart) {
            return self.fail(kind);
        }
        if let Some(region) = p.memory.iter().find(|m| m.guest().overlaps(&uart)) {
            return self.fail(ErrorKind::VirtualUartOverlapsMemory {
                uart,
                region: region.guest(),
            });
        }
        for dev in self.owned() {
            if dev.regs.iter().any(|r| pages(r).identity().overlaps(&uart)) {
                let device: String = dev.path.clone();
                return self.fail(ErrorKind::VirtualUartOverlapsDevice { uart, device });
            }
        }
        Ok(())
    }

    fn addresses(&self) -> Result {
        let p = self.p;
        for (what, addr) in [("load-address", p.load_address), ("entry", p.entry)] {
            if !p.memory.iter().any(|m| m.guest().contains(addr)) {
                return self.fail(ErrorKind::AddressNotInMemory { what, addr });
            }
        }
        Ok(())
    }
}
