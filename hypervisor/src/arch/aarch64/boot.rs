//! Boot: from the first instruction in Rust to every assigned CPU running its vCPU.
//!
//! Primary CPU ([`primary_main`]): MMU and caches on with a coarse map, heap, vectors; the boot
//! options on the boot loader's command line ([`crate::boot_options`]); the bundle and the board
//! config in it (a bad config is refused here too, with the node and
//! reason, and the machine powered off); how to power off; console and logging; the precise EL2
//! map; the GIC of the version the platform has; the runtime's [`System`] (partitions built and
//! loaded); then the other assigned CPUs are started, each by PSCI `CPU_ON` or its spin table as
//! its node says ([`smp`]). CPUs no partition owns stay off. Secondary CPUs ([`secondary_main`])
//! only set up their own interfaces and join the run loop.

use alloc::string::String;
use alloc::vec::Vec;
use spin::Once;

use bulkhead_bundle::{Bundle, Kind, HEADER_SIZE};
use bulkhead_config::guest_view::PAGE_SIZE;
use bulkhead_config::{BoardConfig, GicVersion, HostPhysAddr, HostRange, PcpuId};

use super::gic::Gic;
use super::hw::Aarch64;
use super::trap::run_this_cpu;
use super::uart::Pl011;
use super::{bcm2711, console, cpu, entry, exceptions, heap, mmu, power, smp, timer};
use crate::boot_options::BootOptions;
use crate::console::Mode;
use crate::runtime::System;
use crate::stage2::el2_map::El2Layout;
use crate::stage2::{HypervisorMap, MAIR_EL2};

static SYSTEM: Once<System<Aarch64>> = Once::new();

/// The booted system. Only called after boot published it (from traps and secondary CPUs, which
/// start later).
pub fn system() -> &'static System<Aarch64> {
    match SYSTEM.get() {
        Some(s) => s,
        None => panic!("the system is used before boot completed"),
    }
}

/// Powers the machine off, the way its platform does ([`power`]).
pub fn power_off() -> ! {
    let (now, high_water) = heap::usage();
    log::info!("heap high-water {high_water} bytes ({now} in use at power-off)");
    console::flush();
    if let Err(why) = power::attempt() {
        console::print_error(format_args!(
            "[bulkhead] cannot power off: {why}; halting\n"
        ));
        console::flush();
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}

fn bundle() -> Result<Bundle<'static>, &'static str> {
    let start = entry::bundle_address();
    // What the boot loader loaded after the image proper: the bundle must fit in it.
    let room = entry::loaded_size().saturating_sub((start - entry::image_start()) as u64);
    if room < HEADER_SIZE as u64 {
        return Err("no bundle after the hypervisor image (was it packed?)");
    }
    // SAFETY: the header lies inside the loaded image (checked just above); nothing writes it.
    let header = unsafe { &*(start as *const [u8; HEADER_SIZE]) };
    let len = bulkhead_bundle::total_size(header)
        .ok_or("no bundle after the hypervisor image (was it packed?)")?;
    if len > room {
        return Err("the bundle's header claims more than was loaded");
    }
    // SAFETY: `start..start + len` lies inside the loaded image (checked above); the bundle
    // lives in memory nothing writes to after boot. Bundle::parse bounds-checks the rest.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) };
    Bundle::parse(bytes).map_err(|_| "the bundle after the hypervisor image is corrupt")
}

/// Finds the console UART from `/chosen/stdout-path`, for errors before the config is known (and
/// before the heap exists: nothing here allocates): a
/// PL011 (the one UART this hypervisor drives) that is a child of the root, whose `reg` is a CPU
/// address (a Pi's `stdout-path` names its mini UART, on a bus).
fn fallback_uart(dtb: &[u8]) -> Option<usize> {
    let fdt = fdt::Fdt::new(dtb).ok()?;
    let node = fdt.chosen().stdout()?;
    let pl011 = node.compatible()?.all().any(|c| c == "arm,pl011");
    // (No allocation: this runs before the heap exists when refusing to run below EL2.)
    let at_root = fdt.find_node("/")?.children().any(|c| c.name == node.name);
    (pl011 && at_root).then_some(node.reg()?.next()?.starting_address as usize)
}

/// Bulkhead's options from the command line of the device tree the boot loader passed at
/// `dtb`, if it passed one where the early map can read it: the 1 GiB around the image, mapped
/// as normal memory. Anything else (no device tree, a bad one, one elsewhere) gives the defaults.
fn boot_options(dtb: usize) -> BootOptions {
    /// A larger device tree is not believed.
    const MAX_DTB: usize = 2 * 1024 * 1024;
    const FDT_MAGIC: u32 = 0xd00d_feed;
    let block = entry::image_start() >> 30;
    let readable = |start: usize, len: usize| {
        start.checked_add(len).is_some_and(|end| {
            start >> 30 == block && (end - 1) >> 30 == block && start.is_multiple_of(8) && len > 0
        })
    };
    if !readable(dtb, 8) {
        return BootOptions::default();
    }
    // SAFETY: the 8 header bytes lie in normal memory of the early map (checked above); they are
    // only read, before anything is loaded into memory.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
    let word =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let size = word(4) as usize;
    if word(0) != FDT_MAGIC || size > MAX_DTB || !readable(dtb, size) {
        return BootOptions::default();
    }
    // SAFETY: as for the header: the whole blob lies in readable normal memory (checked).
    let bytes = unsafe { core::slice::from_raw_parts(dtb as *const u8, size) };
    fdt::Fdt::new(bytes)
        .ok()
        .and_then(|fdt| {
            let chosen = fdt.find_node("/chosen")?;
            Some(BootOptions::parse(chosen.property("bootargs")?.as_str()?))
        })
        .unwrap_or_default()
}

/// Entry from `entry` on the primary CPU, MMU off. `el` is the exception level we were entered
/// at, `dtb` what the boot loader passed in x0 (a device tree, if it follows the arm64 boot
/// protocol).
pub extern "C" fn primary_main(el: u64, dtb: u64) -> ! {
    if el != 2 {
        refuse_below_el2(el);
    }
    // SAFETY: first thing on the primary CPU, MMU off, single-threaded.
    unsafe { mmu::enable_early(entry::image_start()) };
    heap::init();
    exceptions::install();

    let Ok(bundle) = bundle() else {
        // Nothing to print with: without a bundle there is no board description.
        loop {
            aarch64_cpu::asm::wfe();
        }
    };
    let options = boot_options(dtb as usize);
    let config = load_config(&bundle);
    power::configure(power::method_of(&config));
    prepare_console_pins(&config);
    start_console(&config, options.console);
    for word in &options.unknown {
        log::warn!("boot option `{word}` not understood: ignored");
    }
    log::info!(
        "Bulkhead {} starting at EL2 on CPU {:#x} at {:#x}, {} partition(s), counter at {} Hz",
        env!("CARGO_PKG_VERSION"),
        cpu::mpidr(),
        entry::image_start(),
        config.partitions.len(),
        timer::frequency()
    );
    let refuse = |what: core::fmt::Arguments| -> ! {
        console::print_error(format_args!("bulkhead: invalid board config: {what}\n"));
        power_off()
    };

    // The hypervisor's own footprint must lie inside its configured memory.
    let image = HostRange::new(
        HostPhysAddr(entry::image_start() as u64),
        (entry::bundle_address() - entry::image_start()) as u64 + bundle_len(&bundle),
    );
    if !config.hypervisor.memory.contains_range(&image) {
        refuse(format_args!(
            "node /hypervisor: the hypervisor image and bundle ({image}) do not fit in its memory ({})",
            config.hypervisor.memory
        ));
    }
    grow_heap(image.end(), config.hypervisor.memory.end());
    let primary = match this_cpu(&config) {
        Ok(cpu) => cpu,
        Err(why) => refuse(format_args!("{why}")),
    };
    cpu::set_id(primary);

    install_hypervisor_map(&config);
    let gic = Gic::of(&config);
    // SAFETY: the GIC registers were just mapped as device memory and only its driver uses them.
    if let Err(e) = unsafe { gic.init(&config, primary) } {
        refuse(format_args!("node /cpus: {e}"));
    }

    if let Err(what) = check_direct_interrupts(&config, gic, primary) {
        refuse(format_args!("{what}"));
    }

    let conduit = config.platform.psci;
    let sys = match System::new(Aarch64 { gic, conduit }, config, bundle) {
        Ok(sys) => SYSTEM.call_once(|| sys),
        Err(e) => refuse(format_args!("{e}")),
    };
    sys.start();
    if let Some(irq) = sys.console_irq() {
        gic.enable_spi(irq, primary);
        if let Some(c) = console::console() {
            c.set_interrupt_driven();
        }
    }
    start_secondaries(sys, primary);
    run_this_cpu()
}

/// The validated board config from the bundle; a bad one is refused, with the node and reason
/// on the console UART it names (or, if it does not parse, the PL011 `/chosen` names), and the
/// machine powered off.
fn load_config(bundle: &Bundle) -> BoardConfig {
    let dtb = bundle
        .find(Kind::BoardDtb, 0)
        .map(|e| e.data)
        .unwrap_or(&[]);
    let parsed = bulkhead_config::parse::parse(dtb);
    let console = parsed.as_ref().ok().and_then(|c| {
        let uart = c.platform.devices.get(c.hypervisor.console?)?;
        uart.compatible
            .iter()
            .any(|s| s == "arm,pl011")
            .then(|| uart.regs.first().map(|r| r.base.raw() as usize))?
    });
    if let Some(uart) = console.or_else(|| fallback_uart(dtb)) {
        console::set_emergency_uart(uart);
    }
    let checked = parsed.and_then(|config| {
        bulkhead_config::validate::validate(&config)?;
        Ok(config)
    });
    match checked {
        Ok(config) => config,
        Err(e) => {
            console::panic_print(format_args!("bulkhead: invalid board config: {e}\n"));
            // How to power off is unknown if the config did not parse: PSCI through SMC, as on
            // QEMU virt with EL2, is the default.
            if let Ok(config) = bulkhead_config::parse::parse(dtb) {
                power::configure(power::method_of(&config));
            }
            power_off();
        }
    }
}

/// Why Bulkhead cannot run on this machine's CPUs.
enum CpuProblem {
    TooMany(usize),
    NotFound(u64),
}

impl core::fmt::Display for CpuProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CpuProblem::TooMany(n) => write!(
                f,
                "node /cpus: {n} CPUs, but Bulkhead supports at most {}",
                cpu::MAX_CPUS
            ),
            CpuProblem::NotFound(mpidr) => {
                write!(f, "node /cpus: no CPU node has this CPU's MPIDR {mpidr:#x}")
            }
        }
    }
}

/// Which of the platform's CPUs this one is.
fn this_cpu(config: &BoardConfig) -> Result<PcpuId, CpuProblem> {
    let cpus = &config.platform.cpus;
    if cpus.len() > cpu::MAX_CPUS {
        return Err(CpuProblem::TooMany(cpus.len()));
    }
    cpus.iter()
        .position(|c| c.mpidr == cpu::mpidr())
        .map(PcpuId)
        .ok_or(CpuProblem::NotFound(cpu::mpidr()))
}

/// What the board config cannot say about `direct-interrupts` partitions and the machine does:
/// the hypervisor needs Group 0 for its own interrupts on their cores (a GIC with one security
/// state, `GICD_CTLR.DS` = 1), and the CPU it booted on (`primary`), which takes the console's
/// interrupt, must not be theirs (validation checks the platform's first CPU, where boards boot).
fn check_direct_interrupts(config: &BoardConfig, gic: Gic, primary: PcpuId) -> Result<(), String> {
    let Some(p) = config.partitions.iter().find(|p| p.direct_interrupts) else {
        return Ok(());
    };
    if !gic.group0_available() {
        return Err(alloc::format!(
            "node {}: `direct-interrupts` needs Group 0 interrupts for the hypervisor, and this \
             GIC keeps them for the Secure world (GICD_CTLR.DS = 0); remove `direct-interrupts`",
            p.path
        ));
    }
    if let Some(p) = config
        .partitions
        .iter()
        .find(|p| p.direct_interrupts && p.cpus.contains(&primary))
    {
        return Err(alloc::format!(
            "node {}: `direct-interrupts` partition owns CPU {primary}, which the hypervisor \
             booted on and which takes the console's interrupt; give the partition other CPUs",
            p.path
        ));
    }
    Ok(())
}

/// Entry from `entry` on a secondary CPU, MMU already on.
pub extern "C" fn secondary_main(id: usize) -> ! {
    cpu::set_id(PcpuId(id));
    exceptions::install();
    system().hw.gic.init_cpu(PcpuId(id));
    run_this_cpu()
}

/// Says, with what the DTB alone tells, that Bulkhead must run at EL2, and stops this CPU. No
/// MMU, no heap yet.
fn refuse_below_el2(el: u64) -> ! {
    let uart = bundle()
        .ok()
        .and_then(|b| b.find(Kind::BoardDtb, 0))
        .and_then(|e| fallback_uart(e.data));
    if let Some(uart) = uart {
        console::emergency_print(
            uart,
            format_args!(
                "bulkhead: entered at EL{el}, but Bulkhead must be entered at EL2 (enable \
                 virtualization in the firmware or QEMU `virtualization=on`); stopping\n"
            ),
        );
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// On a Raspberry Pi 4, the console PL011's pins (GPIO 14 and 15, which the firmware gives the
/// mini UART) and its line: 115200 8N1 from the 48 MHz clock `enable_uart=1` gives it (the
/// firmware leaves the PL011's baud rate unset when Bluetooth has it). Elsewhere nothing.
fn prepare_console_pins(config: &BoardConfig) {
    /// The PL011 clock the Pi 4's firmware sets with `enable_uart=1` (`init_uart_clock`).
    const RPI4_UART_CLOCK_HZ: u64 = 48_000_000;
    const BAUD: u64 = 115_200;
    let Some(gpio) = bcm2711::gpio(config) else {
        return;
    };
    let console = config
        .hypervisor
        .console
        .and_then(|i| config.platform.devices.get(i))
        .filter(|d| d.compatible.iter().any(|c| c == "arm,pl011"))
        .and_then(|d| d.regs.first());
    if let Some(uart) = console {
        // SAFETY: the early map maps everything outside the image's gigabyte as device memory;
        // nothing else drives the GPIO controller or the console UART yet.
        unsafe {
            bcm2711::console_pins(gpio.base.raw() as usize);
            Pl011::new(uart.base.raw() as usize).set_line(RPI4_UART_CLOCK_HZ, BAUD);
        }
    }
}

/// The console (if the board gives the hypervisor one), for a console in `mode`, and the `log`
/// backend.
fn start_console(config: &BoardConfig, mode: Mode) {
    let base = config
        .hypervisor
        .console
        .and_then(|i| config.platform.devices.get(i))
        .and_then(|c| c.regs.first())
        .map(|r| r.base.raw() as usize);
    if let Some(base) = base {
        let names: Vec<String> = config.partitions.iter().map(|p| p.name.clone()).collect();
        // SAFETY: the console UART is reserved for the hypervisor by the board config (no
        // partition may own it); the early map maps it as device memory.
        unsafe { console::init(base, names, mode) };
    }
    let _ = log::set_logger(&console::LOGGER);
    log::set_max_level(level_filter(config.hypervisor.log_level));
}

/// Starts every other CPU a partition owns, the way its node says ([`smp`]); the rest stay off.
fn start_secondaries(sys: &System<Aarch64>, primary: PcpuId) {
    smp::publish_mpidrs(&sys.config);
    for (n, c) in sys.config.platform.cpus.iter().enumerate() {
        let id = PcpuId(n);
        if id == primary {
            continue;
        }
        if !sys.is_assigned(id) {
            log::info!("CPU {n} is not assigned to any partition: parked");
            continue;
        }
        if let Err(e) = smp::start(&sys.config, n) {
            log::error!(
                "CPU {n} (MPIDR {:#x}) failed to start: {e}; its partition cannot run",
                c.mpidr
            );
        }
    }
}

/// Gives the hypervisor memory after the image and bundle to the heap.
fn grow_heap(free_start: HostPhysAddr, memory_end: HostPhysAddr) {
    let start = free_start.raw().next_multiple_of(PAGE_SIZE);
    if start < memory_end.raw() {
        // SAFETY: validated above: this range lies in the hypervisor's own memory, after the
        // image and bundle, and no partition memory overlaps it; nothing else uses it.
        unsafe { heap::grow(start as usize, memory_end.raw() as usize) };
        log::debug!("heap grows by {start:#x}..{memory_end}");
    }
}

fn bundle_len(bundle: &Bundle) -> u64 {
    bundle
        .entries()
        .map(|e| e.data.as_ptr() as u64 + e.data.len() as u64)
        .max()
        .unwrap_or(0)
        .saturating_sub(entry::bundle_address() as u64)
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

/// Replaces the coarse boot map with the precise one (`HypervisorMap::build`): the hypervisor's
/// code read-only, everything writable never executable, guard pages under the stacks,
/// partitions' memory (which EL2 loads) and channels' memory (which it zeroes) never executable,
/// and the console and GIC. The map is
/// complete before it goes live and never changes afterwards.
/// The devices EL2 itself accesses: the console, the GIC, the power controller, the spin tables,
/// and trapped passthrough devices (accessed for their partition).
fn el2_devices(config: &BoardConfig) -> Vec<HostRange> {
    let device = |i: usize| config.platform.devices.get(i);
    let gic = &config.platform.gic;
    let mut devices = Vec::new();
    if let Some(console) = config.hypervisor.console.and_then(device) {
        devices.extend_from_slice(&console.regs);
    }
    devices.push(gic.distributor);
    devices.extend_from_slice(&gic.redistributors);
    if let GicVersion::V2 { cpu, control, .. } = gic.version {
        devices.extend([cpu, control]);
    }
    devices.extend(bcm2711::watchdog(config));
    devices.extend(smp::spin_table_pages(config));
    for p in &config.partitions {
        for d in p.devices.iter().filter(|d| !d.is_mapped()) {
            if let Some(trapped) = device(d.device) {
                devices.extend_from_slice(&trapped.regs);
            }
        }
    }
    devices
}

fn install_hypervisor_map(config: &BoardConfig) {
    let page_range =
        |start: usize, end: usize| HostRange::new(HostPhysAddr(start as u64), (end - start) as u64);
    let (image, text_end, rodata_end) = entry::layout();
    let layout = El2Layout {
        hypervisor: config.hypervisor.memory,
        text: page_range(image, text_end),
        rodata: page_range(text_end, rodata_end),
        guards: (0..cpu::MAX_CPUS)
            .map(|n| {
                let guard = cpu::stack_guard(PcpuId(n));
                page_range(guard, guard + cpu::GUARD_SIZE)
            })
            .collect(),
        // Partitions' memory and channels' shared memory, which EL2 zeroes.
        partitions: config
            .partitions
            .iter()
            .flat_map(|p| p.memory.iter().map(|m| m.host()))
            .chain(config.channels.iter().map(|c| c.memory))
            .collect(),
        devices: el2_devices(config),
    };
    let map = match HypervisorMap::build(&layout) {
        Ok(map) => map,
        Err(e) => panic!("cannot build the hypervisor's own page tables: {e}"),
    };
    let root = map.root_address();
    // The tables must outlive everything: they stay installed until power-off.
    core::mem::forget(map);
    // SAFETY: the new map identity-maps the hypervisor's memory (image, stacks but their guard
    // pages, heap, bundle) as normal memory with the code executable, and the devices EL2 uses
    // as device memory, like the early map did; nothing in use lies in a guard page.
    unsafe { mmu::switch_to(MAIR_EL2, root.raw()) };
}
