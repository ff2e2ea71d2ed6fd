//! Boot: from the first instruction in Rust to every assigned CPU running its vCPU.
//!
//! Primary CPU: MMU and caches on, heap, vectors, find the bundle, parse and validate the board
//! config (a bad one is refused here too, with the node and reason, and the machine powered
//! off), console and logging, precise EL2 map, GIC, partitions (stage-2 tables, images loaded),
//! secondary CPUs started with PSCI `CPU_ON`; CPUs not assigned to any partition stay off.

use alloc::string::String;
use alloc::vec::Vec;
use buddy_system_allocator::LockedHeap;
use spin::Once;

use bulkhead_bundle::{Bundle, Kind, HEADER_SIZE};
use bulkhead_config::{BoardConfig, PsciConduit};

use super::output;
use super::partition::{PartitionRt, State};
use super::traps;
use crate::arch::aarch64::{boot, cpu, exceptions, firmware, gic, mmu};
use crate::stage2::HypervisorMap;

/// The heap the boot starts with, enough to parse the board config. Once the config is known,
/// the rest of the hypervisor's memory after the bundle is added to the heap.
const HEAP_SIZE: usize = 1024 * 1024;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Everything fixed at boot.
pub struct System {
    pub config: BoardConfig,
    pub partitions: Vec<PartitionRt>,
    /// For each physical CPU: (partition, vCPU) it runs, if any.
    pub assignment: Vec<Option<(usize, usize)>>,
    pub bundle: Bundle<'static>,
    /// The console UART's receive interrupt.
    pub console_irq: Option<u32>,
    /// For each SPI INTID: the partition it is passed through to, if any.
    pub spi_owner: Vec<Option<usize>>,
}

static SYSTEM: Once<System> = Once::new();

/// The booted system. Only called after boot finished (from traps and secondary CPUs).
pub fn system() -> &'static System {
    SYSTEM.get().expect("system used before boot completed")
}

impl System {
    /// Powers the machine off through the platform firmware.
    pub fn power_off(&self) -> ! {
        halt_with(self.config.platform.psci)
    }
}

fn halt_with(conduit: PsciConduit) -> ! {
    let err = firmware::system_off(conduit);
    output::print(format_args!(
        "[bulkhead] firmware refused SYSTEM_OFF ({err:?}); halting\n"
    ));
    loop {
        aarch64_cpu::asm::wfe();
    }
}

fn bundle() -> Result<Bundle<'static>, &'static str> {
    let start = boot::bundle_address();
    // SAFETY: the packer appends the bundle at __bundle_start, inside the loaded image; the
    // header is read first to learn the length, and Bundle::parse bounds-checks the rest.
    let header = unsafe { &*(start as *const [u8; HEADER_SIZE]) };
    let len = bulkhead_bundle::total_size(header)
        .ok_or("no bundle after the hypervisor image (was it packed?)")?;
    // SAFETY: as above; the bundle lives in memory nothing writes to after boot.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) };
    Bundle::parse(bytes).map_err(|_| "the bundle after the hypervisor image is corrupt")
}

/// Finds the console UART from `/chosen/stdout-path`, for errors before the config is known.
fn fallback_uart(dtb: &[u8]) -> Option<usize> {
    let fdt = fdt::Fdt::new(dtb).ok()?;
    let node = fdt.chosen().stdout()?;
    Some(node.reg()?.next()?.starting_address as usize)
}

/// Entry from `boot.S` on the primary CPU, MMU off. `el` is the exception level we were entered at.
#[unsafe(no_mangle)]
pub extern "C" fn primary_main(el: u64) -> ! {
    if el != 2 {
        // No MMU, no heap: print with what the DTB alone tells, then stop this CPU.
        if let Ok(bundle) = bundle() {
            if let Some(uart) = bundle
                .find(Kind::BoardDtb, 0)
                .and_then(|e| fallback_uart(e.data))
            {
                output::emergency_print(
                    uart,
                    format_args!("bulkhead: entered at EL{el}, but Bulkhead must be entered at EL2 (enable virtualization in the firmware or QEMU `virtualization=on`); stopping\n"),
                );
            }
        }
        loop {
            aarch64_cpu::asm::wfe();
        }
    }
    // SAFETY: first thing on the primary CPU, MMU off, single-threaded.
    unsafe { mmu::enable_early(boot::image_start()) };
    // SAFETY: the heap array is used by nothing else; this runs once.
    unsafe {
        HEAP.lock()
            .init(core::ptr::addr_of_mut!(HEAP_SPACE) as usize, HEAP_SIZE)
    };
    exceptions::install();

    let bundle = match bundle() {
        Ok(b) => b,
        Err(_) => loop {
            // Nothing to print with: without a bundle there is no board description.
            aarch64_cpu::asm::wfe();
        },
    };
    let dtb = bundle
        .find(Kind::BoardDtb, 0)
        .map(|e| e.data)
        .unwrap_or(&[]);
    let fallback = fallback_uart(dtb);
    let config = match bulkhead_config::load(dtb) {
        Ok(c) => c,
        Err(e) => {
            if let Some(uart) = fallback {
                output::emergency_print(
                    uart,
                    format_args!("bulkhead: invalid board config: {e}\n"),
                );
            }
            // The conduit is unknown if the config did not parse; QEMU virt with EL2 uses SMC.
            let conduit = bulkhead_config::parse::parse(dtb)
                .map(|c| c.platform.psci)
                .unwrap_or(PsciConduit::Smc);
            halt_with(conduit);
        }
    };
    let conduit = config.platform.psci;

    let console = config
        .hypervisor
        .console
        .and_then(|i| config.platform.devices.get(i));
    if let Some(uart_base) = console
        .and_then(|c| c.regs.first())
        .map(|r| r.base.raw() as usize)
    {
        let names: Vec<String> = config.partitions.iter().map(|p| p.name.clone()).collect();
        // SAFETY: the console UART is reserved for the hypervisor by the board config (no
        // partition may own it); the early map maps it as device memory.
        unsafe { output::init(uart_base, names) };
    }
    let _ = log::set_logger(&output::LOGGER);
    log::set_max_level(level_filter(config.hypervisor.log_level));
    log::info!(
        "Bulkhead {} starting at EL2 on CPU {:#x}, {} partition(s)",
        env!("CARGO_PKG_VERSION"),
        cpu::mpidr(),
        config.partitions.len()
    );

    let refuse = |what: core::fmt::Arguments| -> ! {
        output::print(format_args!("bulkhead: invalid board config: {what}\n"));
        halt_with(conduit)
    };

    // The hypervisor's own footprint must lie inside its configured memory.
    let image = bulkhead_config::HostRange::new(
        bulkhead_config::HostPhysAddr(boot::image_start() as u64),
        (boot::bundle_address() - boot::image_start()) as u64 + bundle_len(&bundle),
    );
    if !config.hypervisor.memory.contains_range(&image) {
        refuse(format_args!(
            "node /hypervisor: the hypervisor image and bundle ({}) do not fit in its memory ({})",
            image, config.hypervisor.memory
        ));
    }

    grow_heap(image.end().raw(), config.hypervisor.memory.end().raw());

    let Some(primary) = config
        .platform
        .cpus
        .iter()
        .position(|c| c.mpidr == cpu::mpidr())
    else {
        refuse(format_args!(
            "node /cpus: no CPU node has this CPU's MPIDR {:#x}",
            cpu::mpidr()
        ));
    };
    if primary >= cpu::MAX_CPUS || config.platform.cpus.len() > cpu::MAX_CPUS {
        refuse(format_args!(
            "node /cpus: Bulkhead supports at most {} CPUs",
            cpu::MAX_CPUS
        ));
    }
    cpu::set_id(primary);

    install_hypervisor_map(&config);
    // SAFETY: the GIC registers were just mapped as device memory and only this driver uses them.
    unsafe {
        gic::init(
            config.platform.gic.distributor.base.raw() as usize,
            config.platform.gic.redistributors[0].base.raw() as usize,
            config.platform.cpus.len(),
            primary,
        )
    };

    let mut partitions = Vec::new();
    for i in 0..config.partitions.len() {
        let path = config.partitions[i].path.clone();
        let p = PartitionRt::new(&config, i, &bundle).and_then(|p| p.load(&bundle).map(|()| p));
        match p {
            Ok(p) => partitions.push(p),
            Err(e) => refuse(format_args!("node {path}: {e}")),
        }
    }
    let mut assignment = alloc::vec![None; config.platform.cpus.len()];
    for p in &partitions {
        for (n, v) in p.vcpus.iter().enumerate() {
            assignment[v.pcpu] = Some((p.index, n));
        }
        log::info!(
            "partition {}: {} vCPU(s) on CPU(s) {:?}, {} MiB, VMID {}",
            p.name,
            p.vcpus.len(),
            p.vcpus.iter().map(|v| v.pcpu).collect::<Vec<_>>(),
            p.config.memory.iter().map(|m| m.size).sum::<u64>() >> 20,
            p.vmid
        );
    }
    let console_irq = console.and_then(|c| c.irqs.first()).map(|i| i.intid());
    let mut spi_owner = alloc::vec![None; 1020];
    for p in &partitions {
        for spi in config.partition_spis(bulkhead_config::PartitionId(p.index)) {
            if Some(spi) != p.vgic.vuart_intid {
                if let Some(slot) = spi_owner.get_mut(spi as usize) {
                    *slot = Some(p.index);
                }
            }
        }
        super::interrupts::reset_passthrough(&config, p);
    }
    SYSTEM.call_once(|| System {
        config,
        partitions,
        assignment,
        bundle,
        console_irq,
        spi_owner,
    });
    let sys = system();
    for p in &sys.partitions {
        p.set_running();
    }
    if let Some(irq) = sys.console_irq {
        gic::enable_spi(irq, cpu::mpidr());
    }

    for (n, slot) in sys.assignment.iter().enumerate() {
        if n == primary {
            continue;
        }
        match slot {
            Some(_) => {
                let mpidr = sys.config.platform.cpus[n].mpidr;
                if let Err(e) =
                    firmware::cpu_on(conduit, mpidr, boot::secondary_entry_address(), n as u64)
                {
                    log::error!("CPU {n} (MPIDR {mpidr:#x}) failed to start: {e:?}; its partition cannot run");
                }
            }
            None => log::info!("CPU {n} is not assigned to any partition: parked"),
        }
    }
    if sys.partitions.is_empty() || sys.partitions.iter().all(|p| p.state() == State::Stopped) {
        sys.power_off();
    }
    traps::run_this_cpu()
}

/// Gives the hypervisor memory after the image and bundle to the heap.
fn grow_heap(free_start: u64, memory_end: u64) {
    let start = free_start.div_ceil(4096) * 4096;
    if start < memory_end {
        // SAFETY: validated above: this range lies in the hypervisor's own memory, after the
        // image and bundle, and no partition memory overlaps it; nothing else uses it.
        unsafe { HEAP.lock().add_to_heap(start as usize, memory_end as usize) };
        log::debug!("heap grows by {start:#x}..{memory_end:#x}");
    }
}

fn bundle_len(bundle: &Bundle) -> u64 {
    bundle
        .entries()
        .map(|e| e.data.as_ptr() as u64 + e.data.len() as u64)
        .max()
        .unwrap_or(0)
        .saturating_sub(boot::bundle_address() as u64)
}

/// Entry from `boot.S` on a secondary CPU, MMU already on.
#[unsafe(no_mangle)]
pub extern "C" fn secondary_main(id: usize) -> ! {
    cpu::set_id(id);
    exceptions::install();
    gic::init_cpu(id);
    traps::run_this_cpu()
}

fn level_filter(level: bulkhead_config::LogLevel) -> log::LevelFilter {
    use bulkhead_config::LogLevel::*;
    match level {
        Error => log::LevelFilter::Error,
        Warn => log::LevelFilter::Warn,
        Info => log::LevelFilter::Info,
        Debug => log::LevelFilter::Debug,
        Trace => log::LevelFilter::Trace,
    }
}

/// Replaces the coarse boot map with one that maps exactly RAM, the console and the GIC.
fn install_hypervisor_map(config: &BoardConfig) {
    let mut map = HypervisorMap::new();
    let result = (|| {
        for ram in &config.platform.ram {
            map.map_normal(ram.base, ram.size)?;
        }
        let console = config
            .hypervisor
            .console
            .and_then(|i| config.platform.devices.get(i));
        for r in console
            .into_iter()
            .flat_map(|c| c.regs.iter())
            .chain(core::iter::once(&config.platform.gic.distributor))
            .chain(config.platform.gic.redistributors.iter())
        {
            let pages = r.pages(bulkhead_config::guest_view::PAGE_SIZE);
            map.map_device(pages.base, pages.size)?;
        }
        Ok::<(), aarch64_paging::MapError>(())
    })();
    if let Err(e) = result {
        panic!("cannot build the hypervisor's own page tables: {e:?}");
    }
    let root = map.root_address();
    // The tables must outlive everything: they stay installed until power-off.
    core::mem::forget(map);
    // SAFETY: the new map identity-maps all RAM (image, stacks, heap) as normal memory and the
    // devices EL2 uses as device memory, like the early map did.
    unsafe { mmu::switch_to(crate::stage2::MAIR_EL2, root) };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    aarch64_cpu::registers::DAIF.write(
        aarch64_cpu::registers::DAIF::D::Masked
            + aarch64_cpu::registers::DAIF::A::Masked
            + aarch64_cpu::registers::DAIF::I::Masked
            + aarch64_cpu::registers::DAIF::F::Masked,
    );
    output::print(format_args!(
        "[bulkhead] PANIC on CPU {}: {info}\n",
        cpu::id()
    ));
    loop {
        aarch64_cpu::asm::wfe();
    }
}

use aarch64_cpu::registers::Writeable as _;
