//! Validation of a parsed [`BoardConfig`]: checks that the partitions really are isolated from
//! each other and from the hypervisor (memory, CPUs, devices, interrupts) and that each one is
//! complete enough to boot.
//!
//! Checks run in a fixed order (the hypervisor node first, then each partition in config order,
//! comparing it only with the partitions before it) and the first failure is returned, so the
//! same config always yields the same error. Nothing here panics, even on a model that was not
//! built by `parse` (indices are checked).

use alloc::format;
use alloc::string::String;

use crate::addr::{GuestRange, HostRange};
use crate::error::{ConfigError, ErrorKind};
use crate::guest_view::{gicr_size, GICD_SIZE, PAGE_SIZE, VUART_SIZE};
use crate::model::{BoardConfig, Device, Partition};

type Result<T = ()> = core::result::Result<T, ConfigError>;

/// Validates a board config; returns the first problem found.
pub fn validate(c: &BoardConfig) -> Result {
    validate_hypervisor(c)?;
    if c.partitions.is_empty() {
        return Err(ConfigError::new("/hypervisor", ErrorKind::NoPartitions));
    }
    for (i, p) in c.partitions.iter().enumerate() {
        let earlier = c.partitions.get(..i).unwrap_or_default();
        Check { c, p, earlier }.run()?;
    }
    Ok(())
}

fn validate_hypervisor(c: &BoardConfig) -> Result {
    let err = |kind| Err(ConfigError::new("/hypervisor", kind));
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
        Err(ConfigError::new(self.p.path.as_str(), kind))
    }

    fn device(&self, index: usize) -> Option<&Device> {
        self.c.platform.devices.get(index)
    }

    fn run(&self) -> Result {
        let p = self.p;
        if self.earlier.iter().any(|q| q.name == p.name) {
            return self.fail(ErrorKind::DuplicatePartitionName(p.name.clone()));
        }
        if p.image.is_empty() {
            return self.fail(ErrorKind::MissingImage);
        }
        self.cpus()?;
        self.memory()?;
        self.devices()?;
        self.guest_layout()?;
        self.virtual_uart()?;
        self.addresses()
    }

    /// Guest-physical memory must leave room for what else the partition sees at fixed
    /// addresses (the virtual GIC, passthrough devices, mapped 1:1), and DMA-capable
    /// passthrough devices, which DMA to host-physical addresses, need memory mapped 1:1.
    fn guest_layout(&self) -> Result {
        let p = self.p;
        let gic = &self.c.platform.gic;
        // The virtual GIC appears where the platform's is.
        let gic_windows =
            core::iter::once(GuestRange::new(gic.distributor.base.identity(), GICD_SIZE)).chain(
                gic.redistributors
                    .first()
                    .map(|r| GuestRange::new(r.base.identity(), gicr_size(p.cpus.len()))),
            );
        for window in gic_windows {
            if let Some(m) = p.memory.iter().find(|m| m.guest().overlaps(&window)) {
                return self.fail(ErrorKind::MemoryOverlapsGic {
                    region: m.guest(),
                    gic: window,
                });
            }
        }
        for dev in p.devices.iter().filter_map(|&d| self.device(d)) {
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
            if let Some(m) = p
                .memory
                .iter()
                .find(|m| dev.dma && m.pa.identity() != m.ipa)
            {
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
            if let Some(kind) = problem {
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
        compatible
            || dev.regs.iter().any(|r| {
                let r = pages(r);
                r.overlaps(&gic.distributor) || gic.redistributors.iter().any(|g| r.overlaps(g))
            })
    }

    fn devices(&self) -> Result {
        let p = self.p;
        let console_index = self.c.hypervisor.console;
        let console = console_index.and_then(|i| self.device(i));
        for (k, &d) in p.devices.iter().enumerate() {
            let Some(dev) = self.device(d) else {
                return self.fail(ErrorKind::IndexOutOfRange {
                    what: "device",
                    index: d,
                });
            };
            let device = || dev.path.clone();
            if p.devices.get(..k).unwrap_or_default().contains(&d) {
                return self.fail(ErrorKind::DuplicateDevice { device: device() });
            }
            if dev.path.starts_with("/cpus/") {
                return self.fail(ErrorKind::DeviceIsCpu { device: device() });
            }
            if self.is_interrupt_controller(dev) {
                return self.fail(ErrorKind::DeviceIsInterruptController { device: device() });
            }
            if Some(d) == console_index {
                return self.fail(ErrorKind::DeviceIsConsole { device: device() });
            }
            if let Some(q) = self.earlier.iter().find(|q| q.devices.contains(&d)) {
                return self.fail(ErrorKind::DeviceInTwoPartitions {
                    device: device(),
                    partition: q.name.clone(),
                });
            }
            for irq in &dev.irqs {
                let Some(id) = intid(irq) else { continue };
                for q in self.earlier {
                    let shared = q
                        .devices
                        .iter()
                        .filter_map(|&i| self.device(i))
                        .any(|o| o.irqs.iter().any(|oi| intid(oi) == Some(id)));
                    if shared {
                        return self.fail(ErrorKind::InterruptInTwoPartitions {
                            intid: id,
                            device: device(),
                            partition: q.name.clone(),
                        });
                    }
                }
            }
            // A passthrough device is mapped by whole pages: it must not expose a page of
            // the console or of another partition's device.
            let shares = |o: &Device| {
                dev.regs
                    .iter()
                    .any(|r| o.regs.iter().any(|or| pages(r).overlaps(&pages(or))))
            };
            if let Some(con) = console.filter(|con| shares(con)) {
                return self.fail(ErrorKind::DevicePageShared {
                    device: device(),
                    other: format!("the hypervisor console {}", con.path),
                });
            }
            for q in self.earlier {
                for o in q.devices.iter().filter_map(|&i| self.device(i)) {
                    if shares(o) {
                        return self.fail(ErrorKind::DevicePageShared {
                            device: device(),
                            other: format!("device {} of partition {}", o.path, q.name),
                        });
                    }
                }
            }
        }
        Ok(())
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
        if let Some(region) = p.memory.iter().find(|m| m.guest().overlaps(&uart)) {
            return self.fail(ErrorKind::VirtualUartOverlapsMemory {
                uart,
                region: region.guest(),
            });
        }
        for dev in p.devices.iter().filter_map(|&d| self.device(d)) {
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
