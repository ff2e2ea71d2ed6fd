//! Generating the device tree a partition boots with, and placing it (and the initrd) in the
//! partition's memory.
//!
//! The guest device tree describes only what the partition sees: its memory regions (at their
//! guest-physical addresses), one CPU per vCPU, PSCI through `hvc` (the hypervisor implements
//! it), the virtual PL011 if it has one, its channels and doorbell GPIO (see
//! `docs/channels.md`), its monitor window (see `docs/hypercalls.md`), and `/chosen`. Each node kind has its own function so more can be added
//! alongside.
//!
//! Placement ([`layout`]): the DTB goes 2 MiB below the end of the partition's first memory
//! region (64 KiB below if the region is smaller than 8 MiB), so it stays clear of a Linux
//! kernel at the start of RAM; the initrd goes right below the DTB, 4 KiB aligned.

use anyhow::{anyhow, bail, Context, Result};
use bulkhead_config::guest_view::{
    vcpu_mpidr, CHANNEL_ACCESS_PROPERTY, CHANNEL_COMPATIBLE, CHANNEL_ENDPOINT_PROPERTY,
    CHANNEL_ID_PROPERTY, CHANNEL_UIO_COMPATIBLE, DEFAULT_TIMER_PPIS, DOORBELL_GPIO_LINES,
    DOORBELL_GPIO_SIZE, DOORBELL_PAGE_SIZE, VUART_SIZE,
};
use bulkhead_config::hypercall::Signal;
use bulkhead_config::monitor;
use bulkhead_config::{
    BoardConfig, DoorbellGpio, GuestPhysAddr, GuestRange, Irq, IrqKind, LocalEndpoint, Partition,
    PartitionId, VcpuId,
};
use vm_fdt::FdtWriter;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Space reserved for the DTB at the end of a first memory region of at least
/// [`SMALL_REGION`] bytes.
pub const DTB_SPACE: u64 = 2 * MIB;
/// Space reserved for the DTB at the end of a smaller first memory region.
pub const DTB_SPACE_SMALL: u64 = 64 * KIB;
/// First memory regions smaller than this get [`DTB_SPACE_SMALL`].
pub const SMALL_REGION: u64 = 8 * MIB;
/// Alignment of the initrd's start.
pub const INITRD_ALIGN: u64 = 4 * KIB;

/// Frequency of the fixed clock the virtual PL011 refers to (the one QEMU virt describes).
pub const APB_PCLK_HZ: u32 = 24_000_000;

/// Phandles used in guest device trees.
pub mod phandle {
    /// The `apb-pclk` fixed clock.
    pub const APB_PCLK: u32 = 1;
    /// The (virtual) GIC, the interrupt parent of every node.
    pub const GIC: u32 = 2;
    /// The doorbell GPIO, interrupt parent of the channels it signals.
    pub const DOORBELL_GPIO: u32 = 3;
}

/// `interrupts` specifier type cells.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// Level-high trigger flag of a GIC specifier.
const IRQ_LEVEL_HIGH: u32 = 4;
/// Rising-edge trigger flag of a GIC or GPIO interrupt specifier.
const IRQ_EDGE_RISING: u32 = 1;

/// Properties of a platform device node that are not copied into a guest's device tree: they
/// are regenerated from the board-config model (`reg`, `interrupts`, the clock links) or refer to
/// nodes the guest does not have (phandles: pin control, power sequences, regulators, power
/// domains, resets, DMA channels, PHYs), which would keep a driver from probing.
const NOT_COPIED: &[&str] = &[
    "reg",
    "interrupts",
    "interrupts-extended",
    "interrupt-parent",
    "interrupt-map",
    "interrupt-map-mask",
    "phandle",
    "linux,phandle",
    "clocks",
    "gpios",
    "status",
    "pinctrl-names",
    "mmc-pwrseq",
    "vmmc-supply",
    "vqmmc-supply",
    "power-domains",
    "resets",
    "dmas",
    "dma-names",
    "phys",
    "phy-names",
];

/// Whether platform property `name` is left out of a guest's device tree ([`NOT_COPIED`], and
/// every `pinctrl-<n>`).
fn not_copied(name: &str) -> bool {
    NOT_COPIED.contains(&name)
        || name
            .strip_prefix("pinctrl-")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a partition's guest device tree and initrd go, guest-physical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLayout {
    /// Load address of the DTB (passed to the guest in x0).
    pub dtb: GuestPhysAddr,
    /// Where the initrd goes, if the partition has one.
    pub initrd: Option<GuestRange>,
}

/// Places the DTB and initrd in `partition`'s first memory region, refusing if they do not fit
/// or would overlap the image (`image_len` bytes at `partition.load_address`).
pub fn layout(
    partition: &Partition,
    image_len: u64,
    initrd_len: Option<u64>,
) -> Result<GuestLayout> {
    let name = &partition.name;
    let slot = dtb_slot(partition)?;
    let dtb = slot.base;
    let region = partition.memory[0].guest();
    if partition.load_address.checked_add(image_len).is_none() {
        bail!("partition {name}: image of {image_len:#x} bytes wraps the address space");
    }
    let image = GuestRange::new(partition.load_address, image_len);
    if image.overlaps(&slot) {
        bail!(
            "partition {name}: image at {image} overlaps the device tree at {slot} \
             (the image must end before the last {} of the first memory region)",
            size_str(slot.size)
        );
    }
    let initrd = match initrd_len {
        None => None,
        Some(len) => {
            let start = dtb
                .raw()
                .checked_sub(len)
                .map(|s| GuestPhysAddr(s).align_down(INITRD_ALIGN))
                .filter(|&s| s >= region.base)
                .ok_or_else(|| {
                    anyhow!(
                        "partition {name}: initrd of {} does not fit in the first memory region \
                         {region} below the device tree at {dtb}",
                        size_str(len),
                    )
                })?;
            let initrd = GuestRange::new(start, len);
            if image.overlaps(&initrd) {
                bail!("partition {name}: initrd at {initrd} overlaps the image at {image}");
            }
            Some(initrd)
        }
    };
    Ok(GuestLayout { dtb, initrd })
}

/// The guest-physical range reserved for `partition`'s DTB: the largest DTB [`guest_dtb`] may
/// produce is its size.
pub fn dtb_slot(partition: &Partition) -> Result<GuestRange> {
    let region = partition
        .memory
        .first()
        .with_context(|| format!("partition {}: no memory regions", partition.name))?
        .guest();
    let space = if region.size < SMALL_REGION {
        DTB_SPACE_SMALL
    } else {
        DTB_SPACE
    };
    if region.size < space {
        bail!(
            "partition {}: first memory region ({}) is too small to hold the device tree ({})",
            partition.name,
            size_str(region.size),
            size_str(space)
        );
    }
    Ok(GuestRange::new(
        GuestPhysAddr(region.end().raw() - space),
        space,
    ))
}

/// Generates the device tree of partition number `partition` of `config`.
///
/// `board_dtb` is the compiled board config, from which passthrough devices' nodes are copied
/// (properties such as `compatible` and `dma-coherent`; `reg` and `interrupts` always come from
/// the model). Without it, device nodes hold only what the model knows.
pub fn guest_dtb(
    config: &BoardConfig,
    board_dtb: Option<&[u8]>,
    partition: usize,
    layout: &GuestLayout,
) -> Result<Vec<u8>> {
    let part = config
        .partitions
        .get(partition)
        .with_context(|| format!("no partition number {partition} in the board config"))?;
    let platform = match board_dtb {
        Some(bytes) => {
            Some(fdt::Fdt::new(bytes).map_err(|e| anyhow!("the board DTB is invalid: {e:?}"))?)
        }
        None => None,
    };
    let ctx = Ctx {
        config,
        partition: part,
        partition_id: PartitionId(partition),
        layout,
        platform,
    };
    build(&ctx).with_context(|| format!("partition {}: cannot generate its device tree", part.name))
}

/// Everything a node generator may need.
struct Ctx<'a> {
    config: &'a BoardConfig,
    partition: &'a Partition,
    partition_id: PartitionId,
    layout: &'a GuestLayout,
    platform: Option<fdt::Fdt<'a>>,
}

fn build(ctx: &Ctx) -> Result<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    root_properties(&mut fdt, ctx)?;
    chosen_node(&mut fdt, ctx)?;
    memory_nodes(&mut fdt, ctx)?;
    cpus_node(&mut fdt, ctx)?;
    psci_node(&mut fdt, ctx)?;
    gic_node(&mut fdt, ctx)?;
    timer_node(&mut fdt, ctx)?;
    let device_clocks = ctx
        .partition
        .device_indices()
        .any(|d| platform_clocks(ctx, d) > 0);
    let gpio = ctx.partition.doorbell_gpio;
    if ctx.partition.virtual_uart.is_some() || device_clocks || gpio.is_some() {
        clock_node(&mut fdt, ctx)?;
    }
    if let Some(base) = ctx.partition.virtual_uart {
        uart_node(&mut fdt, base, ctx.config.virtual_uart_intid())?;
    }
    // Mapped or trapped, a device looks the same to the guest.
    for device in ctx.partition.device_indices() {
        device_node(&mut fdt, ctx, device)?;
    }
    let endpoints: Vec<LocalEndpoint> = ctx.config.endpoints_of(ctx.partition_id).collect();
    if let Some(gpio) = gpio {
        doorbell_gpio_node(&mut fdt, &gpio, &endpoints)?;
    }
    for e in &endpoints {
        channel_node(&mut fdt, e)?;
    }
    if let Some(base) = ctx.partition.monitor_window {
        monitor_node(&mut fdt, base)?;
    }
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

fn root_properties(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", phandle::GIC)?;
    fdt.property_string("compatible", "bulkhead,partition")?;
    fdt.property_string(
        "model",
        &format!("Bulkhead partition {}", ctx.partition.name),
    )?;
    Ok(())
}

fn chosen_node(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    let p = ctx.partition;
    let node = fdt.begin_node("chosen")?;
    fdt.property_string("bulkhead,partition", &p.name)?;
    if let Some(args) = &p.bootargs {
        fdt.property_string("bootargs", args)?;
    }
    if let Some(base) = p.virtual_uart {
        fdt.property_string("stdout-path", &format!("/{}", uart_node_name(base)))?;
    }
    if let Some(initrd) = ctx.layout.initrd {
        fdt.property_u64("linux,initrd-start", initrd.base.raw())?;
        fdt.property_u64("linux,initrd-end", initrd.end().raw())?;
    }
    fdt.end_node(node)?;
    Ok(())
}

fn memory_nodes(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    for region in &ctx.partition.memory {
        let node = fdt.begin_node(&format!("memory@{:x}", region.ipa))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[region.ipa.raw(), region.size])?;
        fdt.end_node(node)?;
    }
    Ok(())
}

fn cpus_node(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for vcpu in 0..ctx.partition.cpus.len() {
        let id = u32::try_from(vcpu_mpidr(VcpuId(vcpu))).context("too many vCPUs")?;
        let node = fdt.begin_node(&format!("cpu@{id:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", id)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(node)?;
    }
    fdt.end_node(cpus)?;
    Ok(())
}

fn psci_node(fdt: &mut FdtWriter, _ctx: &Ctx) -> Result<()> {
    let node = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(node)?;
    Ok(())
}

/// The fixed clock that AMBA devices (the PL011) name as `apb_pclk`.
fn clock_node(fdt: &mut FdtWriter, _ctx: &Ctx) -> Result<()> {
    let node = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", APB_PCLK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(phandle::APB_PCLK)?;
    fdt.end_node(node)?;
    Ok(())
}

/// Name of the virtual PL011's node (a child of the root).
pub fn uart_node_name(base: GuestPhysAddr) -> String {
    format!("pl011@{base:x}")
}

fn uart_node(fdt: &mut FdtWriter, base: GuestPhysAddr, intid: u32) -> Result<()> {
    let node = fdt.begin_node(&uart_node_name(base))?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )?;
    fdt.property_array_u64("reg", &[base.raw(), VUART_SIZE])?;
    fdt.property_array_u32(
        "interrupts",
        &irq_cells(&Irq {
            kind: IrqKind::Spi,
            number: intid.saturating_sub(32),
            flags: IRQ_LEVEL_HIGH,
        }),
    )?;
    fdt.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
    fdt.property_array_u32("clocks", &[phandle::APB_PCLK, phandle::APB_PCLK])?;
    fdt.end_node(node)?;
    Ok(())
}

/// The three cells of a GIC interrupt specifier.
fn irq_cells(irq: &Irq) -> [u32; 3] {
    let kind = match irq.kind {
        IrqKind::Spi => GIC_SPI,
        IrqKind::Ppi => GIC_PPI,
    };
    [kind, irq.number, irq.flags]
}

/// The GIC as the partition sees it: the platform's version at the platform's addresses
/// ([`Gic::guest_windows`]). A GICv3: the distributor and one redistributor frame pair per vCPU
/// from the platform's first redistributor address, both emulated. A GICv2: the distributor
/// (emulated) and the CPU interface (the hardware's virtual one).
fn gic_node(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    let gic = &ctx.config.platform.gic;
    let windows = gic.guest_windows(ctx.partition.cpus.len());
    let gicd = gic.distributor.base.raw();
    if !gic.is_v2() && windows.len() < 2 {
        bail!("the platform has no GIC redistributor region");
    }
    let node = fdt.begin_node(&format!("intc@{gicd:x}"))?;
    fdt.property_string(
        "compatible",
        if gic.is_v2() {
            "arm,gic-400"
        } else {
            "arm,gic-v3"
        },
    )?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    if !gic.is_v2() {
        fdt.property_u32("#redistributor-regions", 1)?;
    }
    let reg: Vec<u64> = windows
        .iter()
        .flat_map(|(_, w)| [w.base.raw(), w.size])
        .collect();
    fdt.property_array_u64("reg", &reg)?;
    fdt.property_phandle(phandle::GIC)?;
    fdt.end_node(node)?;
    Ok(())
}

/// The architected timer with the platform's PPIs (QEMU virt's when the platform names none).
fn timer_node(fdt: &mut FdtWriter, ctx: &Ctx) -> Result<()> {
    let default = DEFAULT_TIMER_PPIS.map(|intid| Irq {
        kind: IrqKind::Ppi,
        number: intid - 16,
        flags: 0x104,
    });
    let irqs: &[Irq] = if ctx.config.platform.timer_irqs.is_empty() {
        &default
    } else {
        &ctx.config.platform.timer_irqs
    };
    let node = fdt.begin_node("timer")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,armv8-timer".into(), "arm,armv7-timer".into()],
    )?;
    let cells: Vec<u32> = irqs.iter().flat_map(irq_cells).collect();
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.property_null("always-on")?;
    fdt.end_node(node)?;
    Ok(())
}

/// How many clocks platform device `index`'s node names (cells of its `clocks`, assuming
/// `#clock-cells` = 0 as for fixed clocks).
fn platform_clocks(ctx: &Ctx, index: usize) -> usize {
    let Some(device) = ctx.config.platform.devices.get(index) else {
        return 0;
    };
    ctx.platform
        .as_ref()
        .and_then(|p| p.find_node(&device.path))
        .and_then(|n| n.property("clocks"))
        .map_or(0, |clocks| clocks.value.len() / 4)
}

/// A passthrough device: its platform node's own properties, `reg` and `interrupts` from the
/// model (the same addresses and INTIDs as on the platform), and clocks (if it had any) linked to
/// the fixed `apb-pclk`.
fn device_node(fdt: &mut FdtWriter, ctx: &Ctx, index: usize) -> Result<()> {
    let device = ctx
        .config
        .platform
        .devices
        .get(index)
        .with_context(|| format!("no platform device number {index}"))?;
    let name = device.path.rsplit('/').next().unwrap_or(&device.path);
    let node = fdt.begin_node(name)?;
    let mut clocks = 0;
    if let Some(platform_node) = ctx
        .platform
        .as_ref()
        .and_then(|p| p.find_node(&device.path))
    {
        for prop in platform_node.properties() {
            if prop.name == "clocks" {
                clocks = prop.value.len() / 4;
            }
            if !not_copied(prop.name) {
                fdt.property(prop.name, prop.value)?;
            }
        }
    } else {
        fdt.property_string_list("compatible", device.compatible.clone())?;
    }
    let reg: Vec<u64> = device
        .regs
        .iter()
        .flat_map(|r| [r.base.raw(), r.size])
        .collect();
    fdt.property_array_u64("reg", &reg)?;
    if !device.irqs.is_empty() {
        let cells: Vec<u32> = device.irqs.iter().flat_map(irq_cells).collect();
        fdt.property_array_u32("interrupts", &cells)?;
    }
    if clocks > 0 {
        fdt.property_array_u32("clocks", &vec![phandle::APB_PCLK; clocks])?;
    }
    fdt.end_node(node)?;
    Ok(())
}

/// Name of a partition's doorbell GPIO node (a child of the root).
pub fn doorbell_gpio_node_name(base: GuestPhysAddr) -> String {
    format!("gpio@{base:x}")
}

/// The doorbell GPIO: an emulated PL061 whose line `n` (named after the channel) gets a rising
/// edge when the peer of the partition's `n`-th channel rings. Linux's `gpio-pl061` drives it;
/// userspace waits for the edges through the GPIO character device.
fn doorbell_gpio_node(
    fdt: &mut FdtWriter,
    gpio: &DoorbellGpio,
    endpoints: &[LocalEndpoint],
) -> Result<()> {
    let node = fdt.begin_node(&doorbell_gpio_node_name(gpio.base))?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,pl061".into(), "arm,primecell".into()],
    )?;
    fdt.property_array_u64("reg", &[gpio.base.raw(), DOORBELL_GPIO_SIZE])?;
    fdt.property_array_u32(
        "interrupts",
        &irq_cells(&Irq {
            kind: IrqKind::Spi,
            number: gpio.interrupt,
            flags: IRQ_LEVEL_HIGH,
        }),
    )?;
    fdt.property_null("gpio-controller")?;
    fdt.property_u32("#gpio-cells", 2)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 2)?;
    fdt.property_array_u32("clocks", &[phandle::APB_PCLK])?;
    fdt.property_string("clock-names", "apb_pclk")?;
    let mut names = vec![String::new(); DOORBELL_GPIO_LINES];
    for e in endpoints {
        if let Some(Signal::GpioLine { line, .. }) = e.signal {
            if let Some(name) = names.get_mut(usize::from(line)) {
                name.clone_from(&e.channel.name);
            }
        }
    }
    fdt.property_string_list("gpio-line-names", names)?;
    fdt.property_phandle(phandle::DOORBELL_GPIO)?;
    fdt.end_node(node)?;
    Ok(())
}

/// Name of a partition's monitor window node (a child of the root).
pub fn monitor_node_name(base: GuestPhysAddr) -> String {
    format!("monitor@{base:x}")
}

/// The monitor window: a read-only page of every partition's counters, read with plain loads
/// (`bulkhead_config::monitor`).
fn monitor_node(fdt: &mut FdtWriter, base: GuestPhysAddr) -> Result<()> {
    let node = fdt.begin_node(&monitor_node_name(base))?;
    fdt.property_string("compatible", monitor::COMPATIBLE)?;
    fdt.property_array_u64("reg", &[base.raw(), monitor::WINDOW_SIZE])?;
    fdt.end_node(node)?;
    Ok(())
}

/// Name of a channel's node: the channel's name at the shared memory's guest-physical address.
pub fn channel_node_name(e: &LocalEndpoint) -> String {
    format!("{}@{:x}", e.channel.name, e.endpoint.guest_address)
}

/// One channel the partition is an endpoint of: its shared memory and doorbell page (in that
/// order, UIO's map0 and map1), its doorbell interrupt (a GIC SPI, edge rising, or a line of
/// the doorbell GPIO), and who the partition is in it.
fn channel_node(fdt: &mut FdtWriter, e: &LocalEndpoint) -> Result<()> {
    let node = fdt.begin_node(&channel_node_name(e))?;
    fdt.property_string_list(
        "compatible",
        vec![CHANNEL_COMPATIBLE.into(), CHANNEL_UIO_COMPATIBLE.into()],
    )?;
    let shm = e.shm();
    fdt.property_array_u64(
        "reg",
        &[
            shm.base.raw(),
            shm.size,
            e.endpoint.doorbell.raw(),
            DOORBELL_PAGE_SIZE,
        ],
    )?;
    fdt.property_string_list("reg-names", vec!["shm".into(), "doorbell".into()])?;
    match e.signal {
        Some(Signal::Spi { intid }) => fdt.property_array_u32(
            "interrupts",
            &irq_cells(&Irq {
                kind: IrqKind::Spi,
                number: intid.saturating_sub(32),
                flags: IRQ_EDGE_RISING,
            }),
        )?,
        Some(Signal::GpioLine { line, .. }) => fdt.property_array_u32(
            "interrupts-extended",
            &[phandle::DOORBELL_GPIO, u32::from(line), IRQ_EDGE_RISING],
        )?,
        None => {}
    }
    fdt.property_u32(
        CHANNEL_ENDPOINT_PROPERTY,
        u32::try_from(e.index).context("endpoint index")?,
    )?;
    fdt.property_u32(
        CHANNEL_ID_PROPERTY,
        u32::try_from(e.id.index()).context("channel id")?,
    )?;
    fdt.property_string(CHANNEL_ACCESS_PROPERTY, e.endpoint.access.as_str())?;
    fdt.end_node(node)?;
    Ok(())
}

/// `16 MiB`, `64 KiB`, or a byte count.
pub(crate) fn size_str(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{sample_config, MIB};
    use bulkhead_config::{
        Channel, ChannelAccess, ChannelEndpoint, Gic, GicVersion, HostPhysAddr, HostRange,
        MemoryRegion,
    };

    fn be_u32s(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }
    /// A board DTB holding the platform node of the sample config's virtio device, with
    /// properties that must be copied and ones that must not.
    fn board_dtb_with_virtio() -> Vec<u8> {
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        let node = fdt.begin_node("virtio_mmio@a000000").unwrap();
        fdt.property_string("compatible", "virtio,mmio").unwrap();
        fdt.property_null("dma-coherent").unwrap();
        fdt.property_u32("interrupt-parent", 0x8005).unwrap();
        fdt.property_array_u32("clocks", &[0x8000]).unwrap();
        // Links to nodes the guest does not have, as a Pi's SD controller's.
        fdt.property_string("pinctrl-names", "default").unwrap();
        fdt.property_u32("pinctrl-0", 0x0f).unwrap();
        fdt.property_u32("mmc-pwrseq", 0x10).unwrap();
        fdt.property_u32("bus-width", 4).unwrap();
        fdt.property_array_u64("reg", &[0x0a00_0000, 0x200])
            .unwrap();
        fdt.end_node(node).unwrap();
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    #[test]
    fn a_gicv2_platform_gives_guests_a_gicv2() {
        let mut config = sample_config();
        let range = |base| HostRange::new(HostPhysAddr(base), 0x1_0000);
        config.platform.gic = Gic {
            version: GicVersion::V2 {
                cpu: range(0x0801_0000),
                control: range(0x0803_0000),
                vcpu: range(0x0804_0000),
            },
            distributor: range(0x0800_0000),
            redistributors: vec![],
        };
        let linux = &config.partitions[1];
        let l = layout(linux, 0x100_0000, Some(4096)).unwrap();
        let dtb = guest_dtb(&config, None, 1, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        let gic = fdt.find_node("/intc@8000000").unwrap();
        assert_eq!(
            gic.compatible().unwrap().all().collect::<Vec<_>>(),
            ["arm,gic-400"]
        );
        // The distributor's 4 KiB and the CPU interface's 8 KiB, at the platform's addresses.
        let regs: Vec<_> = gic
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as usize, r.size.unwrap()))
            .collect();
        assert_eq!(regs, [(0x0800_0000, 0x1000), (0x0801_0000, 0x2000)]);
        assert!(gic.property("#redistributor-regions").is_none());
        assert_eq!(
            gic.property("#interrupt-cells").unwrap().as_usize(),
            Some(3)
        );
        // Guests see PSCI whatever the platform uses.
        config.platform.psci = None;
        let dtb = guest_dtb(&config, None, 1, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        assert_eq!(
            fdt.find_node("/psci")
                .unwrap()
                .property("method")
                .unwrap()
                .as_str(),
            Some("hvc")
        );
        assert!(fdt
            .cpus()
            .all(|c| c.property("enable-method").unwrap().as_str() == Some("psci")));
    }

    #[test]
    fn gic_timer_uart_interrupt_and_passthrough_devices() {
        let config = sample_config();
        let board = board_dtb_with_virtio();
        let linux = &config.partitions[1];
        let l = layout(linux, 0x100_0000, Some(4096)).unwrap();
        let dtb = guest_dtb(&config, Some(&board), 1, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        let root = fdt.find_node("/").unwrap();
        assert_eq!(
            root.property("interrupt-parent").unwrap().as_usize(),
            Some(phandle::GIC as usize)
        );
        // The GIC as the partition sees it: the platform's GICD, and one GICR frame pair per
        // vCPU (2 vCPUs) from the platform's first redistributor.
        let gic = fdt.find_node("/intc@8000000").unwrap();
        let regs: Vec<_> = gic
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as usize, r.size.unwrap()))
            .collect();
        assert_eq!(regs, [(0x0800_0000, 0x1_0000), (0x080a_0000, 2 * 0x2_0000)]);
        assert!(gic.property("interrupt-controller").is_some());
        assert_eq!(
            gic.property("phandle").unwrap().as_usize(),
            Some(phandle::GIC as usize)
        );
        // The timer gets QEMU virt's PPIs when the platform names none.
        let timer = fdt.find_node("/timer").unwrap();
        let cells: Vec<u32> = timer
            .property("interrupts")
            .unwrap()
            .value
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            cells,
            [1, 13, 0x104, 1, 14, 0x104, 1, 11, 0x104, 1, 10, 0x104]
        );
        // The passthrough device: platform properties copied, phandle links dropped, reg and
        // interrupts from the model, clocks linked to the fixed clock.
        let dev = fdt.find_node("/virtio_mmio@a000000").unwrap();
        assert_eq!(dev.compatible().unwrap().first(), "virtio,mmio");
        assert!(dev.property("dma-coherent").is_some());
        assert!(dev.property("interrupt-parent").is_none());
        for linked in ["pinctrl-names", "pinctrl-0", "mmc-pwrseq"] {
            assert!(dev.property(linked).is_none(), "{linked} dropped");
        }
        assert_eq!(dev.property("bus-width").unwrap().as_usize(), Some(4));
        let reg = dev.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as usize, reg.size),
            (0x0a00_0000, Some(0x200))
        );
        let irq: Vec<u32> = dev
            .property("interrupts")
            .unwrap()
            .value
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(irq, [0, 16, 1]);
        assert_eq!(
            dev.property("clocks").unwrap().as_usize(),
            Some(phandle::APB_PCLK as usize)
        );
        assert!(
            fdt.find_node("/apb-pclk").is_some(),
            "the clock the device links to exists"
        );

        // The hello partition's virtual UART interrupts on the console's SPI (SPI 1, INTID 33).
        let hello = &config.partitions[0];
        let l = layout(hello, 0x1000, None).unwrap();
        let dtb = guest_dtb(&config, Some(&board), 0, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        let uart = fdt.find_node("/pl011@9000000").unwrap();
        let irq: Vec<u32> = uart
            .property("interrupts")
            .unwrap()
            .value
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(irq, [0, 1, 4]);
    }

    fn be_u64(bytes: &[u8]) -> u64 {
        u64::from_be_bytes(bytes.try_into().unwrap())
    }
    fn strings(bytes: &[u8]) -> Vec<&str> {
        bytes
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect()
    }

    /// The sample board with two channels between hello and linux; linux has a doorbell GPIO.
    fn config_with_channels() -> BoardConfig {
        let mut config = sample_config();
        config.partitions[1].doorbell_gpio = Some(DoorbellGpio {
            base: GuestPhysAddr(0x0904_0000),
            interrupt: 101,
        });
        let endpoint = |partition, ipa: u64, access, interrupt| ChannelEndpoint {
            path: String::new(),
            partition: PartitionId(partition),
            guest_address: GuestPhysAddr(ipa),
            doorbell: GuestPhysAddr(ipa + 0x1_0000),
            access,
            interrupt,
        };
        let rw = ChannelAccess::ReadWrite;
        config.channels = vec![
            Channel {
                name: "ipc0".into(),
                path: "/hypervisor/ipc0".into(),
                memory: HostRange::new(HostPhysAddr(0x4a00_0000), 0x1_0000),
                endpoints: vec![
                    endpoint(1, 0x7000_0000, rw, None),
                    endpoint(0, 0x4100_0000, rw, Some(100)),
                ],
            },
            Channel {
                name: "ctl".into(),
                path: "/hypervisor/ctl".into(),
                memory: HostRange::new(HostPhysAddr(0x4a01_0000), 0x2000),
                endpoints: vec![
                    endpoint(0, 0x4200_0000, rw, Some(102)),
                    endpoint(1, 0x7100_0000, ChannelAccess::ReadOnly, None),
                ],
            },
        ];
        config
    }

    #[test]
    fn channels_with_spi_doorbells() {
        let config = config_with_channels();
        let hello = &config.partitions[0];
        let l = layout(hello, 0x1000, None).unwrap();
        let dtb = guest_dtb(&config, None, 0, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        let node = fdt.find_node("/ipc0@41000000").unwrap();
        assert_eq!(
            node.compatible().unwrap().all().collect::<Vec<_>>(),
            ["bulkhead,channel", "generic-uio"]
        );
        let regs: Vec<_> = node
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as usize, r.size.unwrap()))
            .collect();
        assert_eq!(regs, [(0x4100_0000, 0x1_0000), (0x4101_0000, 0x1000)]);
        assert_eq!(
            strings(node.property("reg-names").unwrap().value),
            ["shm", "doorbell"]
        );
        assert_eq!(
            be_u32s(node.property("interrupts").unwrap().value),
            [0, 100, 1],
            "SPI 100, edge rising"
        );
        assert_eq!(
            node.property("bulkhead,endpoint").unwrap().as_usize(),
            Some(1)
        );
        assert_eq!(
            node.property("bulkhead,channel-id").unwrap().as_usize(),
            Some(0)
        );
        assert_eq!(
            node.property("bulkhead,access").unwrap().as_str(),
            Some("read-write")
        );
        let ctl = fdt.find_node("/ctl@42000000").unwrap();
        assert_eq!(
            ctl.property("bulkhead,endpoint").unwrap().as_usize(),
            Some(0)
        );
        assert_eq!(
            ctl.property("bulkhead,channel-id").unwrap().as_usize(),
            Some(1)
        );
        assert_eq!(
            be_u32s(ctl.property("interrupts").unwrap().value),
            [0, 102, 1]
        );
        assert!(
            fdt.all_nodes().all(|n| n.name != "gpio@9040000"),
            "no doorbell GPIO for hello"
        );
        // The shared memory is not the partition's RAM.
        let memory: Vec<_> = fdt
            .all_nodes()
            .filter(|n| n.name.starts_with("memory@"))
            .map(|n| n.name)
            .collect();
        assert_eq!(memory, ["memory@40000000"]);
    }

    #[test]
    fn channels_on_doorbell_gpio_lines() {
        let config = config_with_channels();
        let linux = &config.partitions[1];
        let l = layout(linux, 0x10_0000, None).unwrap();
        let dtb = guest_dtb(&config, None, 1, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();
        let gpio = fdt.find_node("/gpio@9040000").unwrap();
        assert_eq!(
            gpio.compatible().unwrap().all().collect::<Vec<_>>(),
            ["arm,pl061", "arm,primecell"]
        );
        let reg = gpio.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as usize, reg.size),
            (0x0904_0000, Some(0x1000))
        );
        assert_eq!(
            be_u32s(gpio.property("interrupts").unwrap().value),
            [0, 101, 4],
            "one level-high SPI for all lines"
        );
        assert!(gpio.property("gpio-controller").is_some());
        assert!(gpio.property("interrupt-controller").is_some());
        assert_eq!(gpio.property("#gpio-cells").unwrap().as_usize(), Some(2));
        assert_eq!(
            gpio.property("#interrupt-cells").unwrap().as_usize(),
            Some(2)
        );
        assert_eq!(
            gpio.property("clocks").unwrap().as_usize(),
            Some(phandle::APB_PCLK as usize)
        );
        assert!(fdt.find_node("/apb-pclk").is_some(), "its clock exists");
        // Eight names, the partition's channels in config order on lines 0 and 1.
        let names: Vec<&str> = gpio
            .property("gpio-line-names")
            .unwrap()
            .value
            .split(|&b| b == 0)
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect();
        assert_eq!(names, ["ipc0", "ctl", "", "", "", "", "", "", ""]);
        let ipc0 = fdt.find_node("/ipc0@70000000").unwrap();
        assert!(ipc0.property("interrupts").is_none());
        assert_eq!(
            be_u32s(ipc0.property("interrupts-extended").unwrap().value),
            [phandle::DOORBELL_GPIO, 0, 1],
            "line 0, rising edge"
        );
        let ctl = fdt.find_node("/ctl@71000000").unwrap();
        assert_eq!(
            be_u32s(ctl.property("interrupts-extended").unwrap().value),
            [phandle::DOORBELL_GPIO, 1, 1]
        );
        assert_eq!(
            ctl.property("bulkhead,access").unwrap().as_str(),
            Some("read-only")
        );
        let regs: Vec<_> = ctl
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as usize, r.size.unwrap()))
            .collect();
        assert_eq!(regs, [(0x7100_0000, 0x2000), (0x7101_0000, 0x1000)]);
    }

    #[test]
    fn layout_places_dtb_and_initrd() {
        let config = sample_config();
        let hello = &config.partitions[0];
        // 16 MiB at 0x4000_0000: DTB 2 MiB below the end.
        let l = layout(hello, 0x1000, None).unwrap();
        assert_eq!(
            l,
            GuestLayout {
                dtb: GuestPhysAddr(0x4000_0000 + 14 * MIB),
                initrd: None
            }
        );
        let l = layout(hello, 0x1000, Some(0x1_2345)).unwrap();
        let start = (0x40e0_0000 - 0x1_2345) & !0xfff;
        assert_eq!(
            l.initrd,
            Some(GuestRange::new(GuestPhysAddr(start), 0x1_2345))
        );
        assert_eq!(start % 4096, 0);
        assert!(start + 0x1_2345 <= l.dtb.raw());

        // A small region: 64 KiB below the end.
        let mut small = hello.clone();
        small.memory[0].size = 4 * MIB;
        assert_eq!(
            layout(&small, 0x1000, None).unwrap().dtb,
            GuestPhysAddr(0x4000_0000 + 4 * MIB - 0x1_0000)
        );
        // Only the first region counts.
        let linux = &config.partitions[1];
        assert_eq!(
            layout(linux, 0, None).unwrap().dtb,
            GuestPhysAddr(0x4000_0000 + 126 * MIB)
        );
        assert_eq!(
            dtb_slot(linux).unwrap(),
            GuestRange::new(GuestPhysAddr(0x4000_0000 + 126 * MIB), 2 * MIB)
        );
    }

    #[test]
    fn layout_refuses_overlaps_and_misfits() {
        let config = sample_config();
        let hello = &config.partitions[0];
        let err = layout(hello, 15 * MIB, None).unwrap_err().to_string();
        assert!(
            err.contains(
                "partition hello: image at 0x40000000..0x40f00000 overlaps the device tree"
            ),
            "{err}"
        );
        let err = layout(hello, MIB, Some(14 * MIB)).unwrap_err().to_string();
        assert!(
            err.contains("initrd at") && err.contains("overlaps the image"),
            "{err}"
        );
        let err = layout(hello, 0, Some(15 * MIB)).unwrap_err().to_string();
        assert!(err.contains("initrd of 15 MiB does not fit"), "{err}");
        let err = layout(hello, 0, Some(u64::MAX)).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");

        let mut tiny = hello.clone();
        tiny.memory[0].size = 32 * 1024;
        let err = layout(&tiny, 0, None).unwrap_err().to_string();
        assert!(err.contains("too small"), "{err}");
        tiny.memory.clear();
        assert!(layout(&tiny, 0, None)
            .unwrap_err()
            .to_string()
            .contains("no memory regions"));
    }

    #[test]
    fn guest_dtb_describes_the_partition() {
        let config = sample_config();
        let hello = &config.partitions[0];
        let l = layout(hello, 0x1000, None).unwrap();
        let dtb = guest_dtb(&config, None, 0, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();

        let root = fdt.find_node("/").unwrap();
        assert_eq!(root.property("#address-cells").unwrap().as_usize(), Some(2));
        assert_eq!(root.property("#size-cells").unwrap().as_usize(), Some(2));
        assert_eq!(fdt.root().compatible().first(), "bulkhead,partition");
        assert_eq!(fdt.root().model(), "Bulkhead partition hello");

        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(
            chosen.property("bulkhead,partition").unwrap().as_str(),
            Some("hello")
        );
        assert_eq!(
            chosen.property("stdout-path").unwrap().as_str(),
            Some("/pl011@9000000")
        );
        assert!(chosen.property("bootargs").is_none());
        assert!(chosen.property("linux,initrd-start").is_none());

        let mem = fdt.find_node("/memory@40000000").unwrap();
        assert_eq!(
            mem.property("device_type").unwrap().as_str(),
            Some("memory")
        );
        let reg: Vec<_> = mem
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as u64, r.size))
            .collect();
        assert_eq!(reg, vec![(0x4000_0000, Some(16 * MIB as usize))]);

        let cpus: Vec<_> = fdt.find_node("/cpus").unwrap().children().collect();
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].name, "cpu@0");
        assert_eq!(cpus[0].property("reg").unwrap().as_usize(), Some(0));
        assert_eq!(
            cpus[0].property("device_type").unwrap().as_str(),
            Some("cpu")
        );
        assert_eq!(
            cpus[0].property("enable-method").unwrap().as_str(),
            Some("psci")
        );
        assert_eq!(cpus[0].compatible().unwrap().first(), "arm,armv8");

        let psci = fdt.find_node("/psci").unwrap();
        let compat: Vec<_> = psci.compatible().unwrap().all().collect();
        assert_eq!(compat, vec!["arm,psci-1.0", "arm,psci-0.2"]);
        assert_eq!(psci.property("method").unwrap().as_str(), Some("hvc"));

        let uart = fdt.find_node("/pl011@9000000").unwrap();
        let compat: Vec<_> = uart.compatible().unwrap().all().collect();
        assert_eq!(compat, vec!["arm,pl011", "arm,primecell"]);
        let reg: Vec<_> = uart
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as u64, r.size))
            .collect();
        assert_eq!(reg, vec![(0x0900_0000, Some(0x1000))]);
        assert_eq!(
            strings(uart.property("clock-names").unwrap().value),
            vec!["uartclk", "apb_pclk"]
        );
        let clocks = be_u32s(uart.property("clocks").unwrap().value);
        let clk = fdt.find_phandle(clocks[0]).unwrap();
        assert_eq!(clk.name, "apb-pclk");
        assert_eq!(clk.compatible().unwrap().first(), "fixed-clock");
        assert_eq!(
            clk.property("clock-frequency").unwrap().as_usize(),
            Some(24_000_000)
        );
        assert_eq!(clk.property("#clock-cells").unwrap().as_usize(), Some(0));
    }

    #[test]
    fn a_monitor_window_gets_a_node_and_the_capability_alone_none() {
        let mut config = sample_config();
        config.partitions[0].monitor = true;
        config.partitions[0].monitor_window = Some(GuestPhysAddr(0x0b00_0000));
        config.partitions[1].monitor = true;
        let dtb = |i: usize| {
            let l = layout(&config.partitions[i], 0x1000, None).unwrap();
            guest_dtb(&config, None, i, &l).unwrap()
        };
        let with = dtb(0);
        let fdt = fdt::Fdt::new(&with).unwrap();
        let node = fdt.find_node("/monitor@b000000").unwrap();
        assert_eq!(node.compatible().unwrap().first(), "bulkhead,monitor");
        let reg: Vec<_> = node
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as u64, r.size))
            .collect();
        assert_eq!(reg, vec![(0x0b00_0000, Some(0x1000))]);
        let without = dtb(1);
        let fdt = fdt::Fdt::new(&without).unwrap();
        assert!(fdt.all_nodes().all(|n| !n.name.starts_with("monitor")));
    }

    #[test]
    fn guest_dtb_with_initrd_bootargs_and_no_uart() {
        let mut config = sample_config();
        config.partitions[1].memory.push(MemoryRegion {
            ipa: GuestPhysAddr(0x1_0000_0000),
            size: MIB,
            pa: bulkhead_config::HostPhysAddr(0x6000_0000),
        });
        let linux = &config.partitions[1];
        let l = layout(linux, 32 * MIB, Some(5000)).unwrap();
        let dtb = guest_dtb(&config, None, 1, &l).unwrap();
        let fdt = fdt::Fdt::new(&dtb).unwrap();

        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(
            chosen.property("bulkhead,partition").unwrap().as_str(),
            Some("linux")
        );
        assert_eq!(
            chosen.property("bootargs").unwrap().as_str(),
            Some("console=hvc0 earlycon")
        );
        assert!(chosen.property("stdout-path").is_none());
        let initrd = l.initrd.unwrap();
        let (start, end) = (initrd.base.raw(), initrd.end().raw());
        assert_eq!(
            be_u64(chosen.property("linux,initrd-start").unwrap().value),
            start
        );
        assert_eq!(
            be_u64(chosen.property("linux,initrd-end").unwrap().value),
            end
        );
        assert_eq!(end - start, 5000);

        let mems: Vec<_> = fdt
            .all_nodes()
            .filter(|n| n.name.starts_with("memory@"))
            .map(|n| (n.name, n.reg().unwrap().next().unwrap().size))
            .collect();
        assert_eq!(
            mems,
            vec![
                ("memory@40000000", Some(128 * MIB as usize)),
                ("memory@80000000", Some(64 * MIB as usize)),
                ("memory@100000000", Some(MIB as usize)),
            ]
        );
        let cpus: Vec<_> = fdt
            .find_node("/cpus")
            .unwrap()
            .children()
            .map(|c| c.name)
            .collect();
        assert_eq!(cpus, vec!["cpu@0", "cpu@1"]);
        let regs: Vec<_> = fdt
            .find_node("/cpus")
            .unwrap()
            .children()
            .map(|c| c.property("reg").unwrap().as_usize())
            .collect();
        assert_eq!(regs, vec![Some(0), Some(1)]);
        assert!(fdt
            .all_nodes()
            .all(|n| !n.name.starts_with("pl011") && n.name != "apb-pclk"));
    }

    #[test]
    fn guest_dtb_refuses_bad_index() {
        let config = sample_config();
        let l = GuestLayout {
            dtb: GuestPhysAddr(0),
            initrd: None,
        };
        assert!(guest_dtb(&config, None, 7, &l)
            .unwrap_err()
            .to_string()
            .contains("no partition number 7"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size_str(16 * MIB), "16 MiB");
        assert_eq!(size_str(64 * 1024), "64 KiB");
        assert_eq!(size_str(5000), "5000 bytes");
    }
}
