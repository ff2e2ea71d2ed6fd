//! Device-tree queries for guests: the hypervisor describes each partition with a small DTB whose
//! address it passes in `x0`, and this is the only source of truth a guest has.
//!
//! The DT Bulkhead generates contains `/chosen` (`bulkhead,partition`, optional `bootargs` and
//! `stdout-path`), `/memory@...` nodes, one `/cpus/cpu@N` per vCPU, `/psci` and the console's
//! `arm,pl011` node. Every query here tolerates a missing node or property (so the same guest
//! also runs on QEMU's own DT) and never panics on well-formed input.

use core::fmt;

use fdt::node::FdtNode;
use fdt::Fdt;

/// `/chosen` property naming the partition.
const PARTITION_PROPERTY: &str = "bulkhead,partition";
/// Name reported when the DT does not name the partition.
const UNNAMED: &str = "unnamed";
/// `compatible` string of the console UART.
const PL011_COMPATIBLE: &str = "arm,pl011";
/// `compatible` string of a shared-memory channel node (see `docs/channels.md`).
pub use bulkhead_config::guest_view::CHANNEL_COMPATIBLE;
use bulkhead_config::guest_view::{
    ACCESS_READ_ONLY, CHANNEL_ACCESS_PROPERTY as CHANNEL_ACCESS,
    CHANNEL_ENDPOINT_PROPERTY as CHANNEL_ENDPOINT, CHANNEL_ID_PROPERTY as CHANNEL_ID,
};
/// Magic number at the start of every flattened device tree (big-endian).
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Largest DTB accepted; anything bigger means `x0` does not point at a real DTB.
const MAX_FDT_SIZE: usize = 2 << 20;

/// A contiguous range of guest-physical memory, from a `reg` entry of a `/memory` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First address of the range.
    pub base: u64,
    /// Size in bytes (never 0).
    pub size: u64,
}

impl MemoryRange {
    /// First address past the end of the range (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the range.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }
}

impl fmt::Display for MemoryRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base, self.end())
    }
}

/// A shared-memory channel the partition is an endpoint of: a node
/// `compatible = "bulkhead,channel"` with `reg = <shared memory>, <doorbell page>`, one
/// `interrupts` specifier (the doorbell the peer rings), `bulkhead,endpoint` and
/// `bulkhead,access`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelNode {
    /// The channel's name: the node name without its unit address.
    pub name: &'static str,
    /// The shared memory, guest-physical.
    pub shm: MemoryRange,
    /// This endpoint's doorbell page, guest-physical.
    pub doorbell: MemoryRange,
    /// The doorbell interrupt's INTID (SPI n = 32 + n), if the node has a GIC specifier.
    pub intid: Option<u32>,
    /// This partition's endpoint index (0 or 1), if given.
    pub endpoint: Option<u32>,
    /// The channel's id (`bulkhead,channel-id`), which the hypercalls take, if given.
    pub channel_id: Option<u32>,
    /// Whether the partition may only read the shared memory.
    pub read_only: bool,
}

/// The INTID of the first GIC specifier (`<type number flags>`) of an `interrupts` value.
fn gic_intid(cells: &[u8]) -> Option<u32> {
    let cell = |i: usize| {
        let b = cells.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (cell(0)?, cell(1)?) {
        (0, n) if n < 988 => Some(n + 32),
        (1, n) if n < 16 => Some(n + 16),
        _ => None,
    }
}

/// The partition's device tree, as handed over by the hypervisor.
#[derive(Clone, Copy)]
pub struct GuestDt {
    fdt: Fdt<'static>,
    /// Where the DTB lies, when it was parsed from an address.
    addr: Option<usize>,
}

impl GuestDt {
    /// Parses the DTB at `addr`, returning `None` unless it starts with a valid FDT header.
    ///
    /// # Safety
    ///
    /// `addr` must be 0 or point to readable memory that stays valid and unmodified for the rest
    /// of the program: at least 8 bytes, and the whole DTB if the magic number matches.
    pub unsafe fn from_addr(addr: usize) -> Option<Self> {
        if addr == 0 {
            return None;
        }
        let ptr = addr as *const u8;
        // SAFETY: the caller guarantees at least 8 readable bytes at `addr`; byte reads need no
        // alignment.
        let header = unsafe { core::slice::from_raw_parts(ptr, 8) };
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        // `Fdt::from_ptr` panics on a bad magic number, so check it (and the size) first.
        if magic != FDT_MAGIC || !(8..=MAX_FDT_SIZE).contains(&size) {
            return None;
        }
        // SAFETY: the header is valid, and the caller guarantees the whole DTB (`size` bytes) is
        // readable and stays valid for the rest of the program.
        let fdt = unsafe { Fdt::from_ptr(ptr) }.ok()?;
        Some(Self {
            fdt,
            addr: Some(addr),
        })
    }

    /// Wraps an already parsed device tree (its [`location`](Self::location) is then unknown).
    pub fn new(fdt: Fdt<'static>) -> Self {
        Self { fdt, addr: None }
    }

    /// The memory the DTB itself occupies (`totalsize` bytes from its address), if it was parsed
    /// from an address: a guest using its memory freely must leave this alone.
    pub fn location(&self) -> Option<MemoryRange> {
        Some(MemoryRange {
            base: self.addr? as u64,
            size: self.fdt.total_size() as u64,
        })
    }

    /// The underlying parsed device tree, for queries not covered here.
    pub fn fdt(&self) -> &Fdt<'static> {
        &self.fdt
    }

    fn chosen_str(&self, property: &str) -> Option<&'static str> {
        self.fdt.find_node("/chosen")?.property(property)?.as_str()
    }

    /// The partition's name (`/chosen/bulkhead,partition`), or `"unnamed"`.
    pub fn partition_name(&self) -> &'static str {
        self.chosen_str(PARTITION_PROPERTY)
            .filter(|name| !name.is_empty())
            .unwrap_or(UNNAMED)
    }

    /// The whole `/chosen/bootargs` string, if any.
    pub fn bootargs(&self) -> Option<&'static str> {
        self.chosen_str("bootargs")
    }

    /// The value of the first whitespace-separated `key=value` boot argument named `key`.
    pub fn bootarg(&self, key: &str) -> Option<&'static str> {
        find_bootarg(self.bootargs()?, key)
    }

    /// The guest-physical memory ranges of all `/memory` nodes, in DT order.
    pub fn memory_regions(&self) -> impl Iterator<Item = MemoryRange> + '_ {
        self.fdt
            .find_node("/")
            .into_iter()
            .flat_map(|root| root.children())
            .filter(|node| {
                node_base_name(node) == "memory"
                    || node.property("device_type").and_then(|p| p.as_str()) == Some("memory")
            })
            .flat_map(|node| node.reg().into_iter().flatten())
            .filter_map(|region| {
                let size = region.size? as u64;
                (size != 0).then_some(MemoryRange {
                    base: region.starting_address as u64,
                    size,
                })
            })
    }

    /// The number of vCPUs (`/cpus/cpu@N` nodes); 0 if `/cpus` is missing.
    pub fn cpu_count(&self) -> usize {
        self.fdt.find_node("/cpus").map_or(0, |cpus| {
            cpus.children()
                .filter(|node| node_base_name(node) == "cpu")
                .count()
        })
    }

    /// The MPIDR affinity (`reg`) of each `/cpus/cpu@N` node, in DT order: what PSCI `CPU_ON`
    /// takes to start that vCPU.
    pub fn cpu_mpidrs(&self) -> impl Iterator<Item = u64> + '_ {
        self.fdt
            .find_node("/cpus")
            .into_iter()
            .flat_map(|cpus| cpus.children())
            .filter(|node| node_base_name(node) == "cpu")
            .filter_map(|node| Some(node.reg()?.next()?.starting_address as u64))
    }

    /// The GICv3's distributor and first redistributor region bases (`arm,gic-v3` node), if the
    /// partition has one.
    pub fn gic_v3(&self) -> Option<(usize, usize)> {
        let node = self.fdt.find_compatible(&["arm,gic-v3"])?;
        let mut reg = node.reg()?;
        let gicd = reg.next()?.starting_address as usize;
        let gicr = reg.next()?.starting_address as usize;
        Some((gicd, gicr))
    }

    /// The GICv2's distributor and CPU interface bases (`arm,gic-400` or `arm,cortex-a15-gic`
    /// node), if the partition has one (it does on a platform with a GICv2).
    pub fn gic_v2(&self) -> Option<(usize, usize)> {
        let node = self
            .fdt
            .find_compatible(&["arm,gic-400", "arm,cortex-a15-gic"])?;
        let mut reg = node.reg()?;
        let gicd = reg.next()?.starting_address as usize;
        let gicc = reg.next()?.starting_address as usize;
        Some((gicd, gicc))
    }

    /// The channels the partition is an endpoint of, in DT order. Nodes without two `reg`
    /// entries of non-zero size are skipped.
    pub fn channels(&self) -> impl Iterator<Item = ChannelNode> + '_ {
        self.fdt
            .all_nodes()
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|c| c == CHANNEL_COMPATIBLE))
            })
            .filter_map(|node| {
                let mut reg = node.reg()?.filter_map(|r| {
                    let size = r.size? as u64;
                    (size != 0).then_some(MemoryRange {
                        base: r.starting_address as u64,
                        size,
                    })
                });
                let (shm, doorbell) = (reg.next()?, reg.next()?);
                Some(ChannelNode {
                    name: node_base_name(&node),
                    shm,
                    doorbell,
                    intid: node.property("interrupts").and_then(|p| gic_intid(p.value)),
                    endpoint: node
                        .property(CHANNEL_ENDPOINT)
                        .and_then(|p| p.as_usize())
                        .and_then(|e| u32::try_from(e).ok()),
                    channel_id: node
                        .property(CHANNEL_ID)
                        .and_then(|p| p.as_usize())
                        .and_then(|e| u32::try_from(e).ok()),
                    read_only: node.property(CHANNEL_ACCESS).and_then(|p| p.as_str())
                        == Some(ACCESS_READ_ONLY),
                })
            })
    }

    /// The channel named `name`, or the first channel when `name` is `None`.
    pub fn channel(&self, name: Option<&str>) -> Option<ChannelNode> {
        self.channels()
            .find(|c| name.is_none_or(|name| c.name == name))
    }

    /// The console UART's node: the one `stdout-path` names if it is an enabled PL011,
    /// otherwise the first enabled `arm,pl011` node.
    fn console_node(&self) -> Option<FdtNode<'_, 'static>> {
        let from_stdout = self
            .chosen_str("stdout-path")
            // `stdout-path` may carry options after a colon, e.g. "serial0:115200n8".
            .and_then(|path| path.split(':').next())
            .and_then(|path| self.fdt.find_node(path))
            .filter(is_usable_pl011);
        match from_stdout {
            Some(node) => Some(node),
            None => self.fdt.all_nodes().find(is_usable_pl011),
        }
    }

    /// Base address of the console UART (see `console_node`). The first `reg` address is used
    /// as-is (no `ranges` translation: the UART is expected directly under the root node).
    pub fn console_base(&self) -> Option<usize> {
        let base = self.console_node()?.reg()?.next()?.starting_address as usize;
        (base != 0).then_some(base)
    }

    /// The console UART's interrupt as a GIC INTID, from the first 3-cell GIC specifier of its
    /// `interrupts` (`<type number flags>`: type 0 is an SPI, INTID = number + 32; type 1 a PPI,
    /// INTID = number + 16). `None` if it has none or another format.
    pub fn console_interrupt(&self) -> Option<u32> {
        gic_intid(self.console_node()?.property("interrupts")?.value)
    }
}

/// The part of a node's name before the unit address.
fn node_base_name<'a>(node: &FdtNode<'_, 'a>) -> &'a str {
    node.name.split('@').next().unwrap_or(node.name)
}

/// Whether `node` is a PL011 that is not disabled.
fn is_usable_pl011(node: &FdtNode<'_, '_>) -> bool {
    let compatible = node
        .compatible()
        .is_some_and(|c| c.all().any(|c| c == PL011_COMPATIBLE));
    let status = node.property("status").and_then(|p| p.as_str());
    compatible && matches!(status, None | Some("okay" | "ok"))
}

/// Looks up `key` in a whitespace-separated `key=value` argument string.
pub fn find_bootarg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_ascii_whitespace()
        .filter_map(|arg| arg.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| value)
}

/// Parses an unsigned integer written in decimal or with a `0x`/`0b`/`0o` prefix; `_` separators
/// are allowed. Returns `None` on anything else or on overflow.
pub fn parse_u64(text: &str) -> Option<u64> {
    let (digits, radix) = match text.get(..2) {
        Some("0x" | "0X") => (&text[2..], 16),
        Some("0b" | "0B") => (&text[2..], 2),
        Some("0o" | "0O") => (&text[2..], 8),
        _ => (text, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix)?;
        value = value.checked_mul(radix.into())?.checked_add(digit.into())?;
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    /// Builds a DT shaped like the ones Bulkhead generates and leaks it, as a guest's DT lives
    /// for the whole program.
    fn bulkhead_like_dt(chosen: &[(&str, &str)], memory: &[(u64, u64)], cpus: u32) -> GuestDt {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();

        let node = w.begin_node("chosen").unwrap();
        for (name, value) in chosen {
            w.property_string(name, value).unwrap();
        }
        w.end_node(node).unwrap();

        for &(base, size) in memory {
            let node = w.begin_node(&format!("memory@{base:x}")).unwrap();
            w.property_string("device_type", "memory").unwrap();
            w.property_array_u64("reg", &[base, size]).unwrap();
            w.end_node(node).unwrap();
        }

        let node = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        for n in 0..cpus {
            let cpu = w.begin_node(&format!("cpu@{n}")).unwrap();
            w.property_string("device_type", "cpu").unwrap();
            w.property_u32("reg", n).unwrap();
            w.end_node(cpu).unwrap();
        }
        w.end_node(node).unwrap();

        let node = w.begin_node("ipc0@50000000").unwrap();
        w.property_string_list(
            "compatible",
            vec!["bulkhead,channel".into(), "generic-uio".into()],
        )
        .unwrap();
        w.property_array_u64("reg", &[0x5000_0000, 0x1_0000, 0x5001_0000, 0x1000])
            .unwrap();
        w.property_array_u32("interrupts", &[0, 40, 1]).unwrap();
        w.property_u32("bulkhead,endpoint", 1).unwrap();
        w.property_u32("bulkhead,channel-id", 3).unwrap();
        w.property_string("bulkhead,access", "read-write").unwrap();
        w.end_node(node).unwrap();
        let node = w.begin_node("ctl@51000000").unwrap();
        w.property_string("compatible", "bulkhead,channel").unwrap();
        w.property_array_u64("reg", &[0x5100_0000, 0x1_0000, 0x5101_0000, 0x1000])
            .unwrap();
        w.property_string("bulkhead,access", "read-only").unwrap();
        w.end_node(node).unwrap();
        let node = w.begin_node("broken@52000000").unwrap();
        w.property_string("compatible", "bulkhead,channel").unwrap();
        w.property_array_u64("reg", &[0x5200_0000, 0x1_0000])
            .unwrap();
        w.end_node(node).unwrap();

        let node = w.begin_node("pl011@9000000").unwrap();
        w.property_string_list(
            "compatible",
            vec!["arm,pl011".into(), "arm,primecell".into()],
        )
        .unwrap();
        w.property_array_u64("reg", &[0x900_0000, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 1, 4]).unwrap();
        w.end_node(node).unwrap();

        w.end_node(root).unwrap();
        let blob: &'static [u8] = Box::leak(w.finish().unwrap().into_boxed_slice());
        // SAFETY: `blob` is a leaked, hence permanently valid, DTB.
        unsafe { GuestDt::from_addr(blob.as_ptr() as usize) }.expect("valid DTB")
    }

    #[test]
    fn reads_partition_description() {
        let dt = bulkhead_like_dt(
            &[
                ("bulkhead,partition", "hello-a"),
                ("bootargs", "count=3 target=0x41001000"),
                ("stdout-path", "/pl011@9000000"),
            ],
            &[(0x4000_0000, 0x100_0000), (0x5000_0000, 0x20_0000)],
            2,
        );
        assert_eq!(dt.partition_name(), "hello-a");
        assert_eq!(dt.cpu_count(), 2);
        assert_eq!(dt.cpu_mpidrs().collect::<Vec<_>>(), [0, 1]);
        let location = dt.location().expect("parsed from an address");
        assert_eq!(location.size, dt.fdt().total_size() as u64);
        assert_eq!(dt.console_base(), Some(0x900_0000));
        assert_eq!(dt.console_interrupt(), Some(33));
        assert_eq!(dt.bootarg("count"), Some("3"));
        assert_eq!(dt.bootarg("target").and_then(parse_u64), Some(0x4100_1000));
        assert_eq!(dt.bootarg("missing"), None);
        let memory: Vec<_> = dt.memory_regions().collect();
        assert_eq!(
            memory,
            [
                MemoryRange {
                    base: 0x4000_0000,
                    size: 0x100_0000
                },
                MemoryRange {
                    base: 0x5000_0000,
                    size: 0x20_0000
                },
            ]
        );
        assert_eq!(memory[0].to_string(), "0x40000000..0x41000000");
    }

    #[test]
    fn finds_channel_nodes() {
        let dt = bulkhead_like_dt(&[], &[(0x4000_0000, 0x100_0000)], 1);
        let all: Vec<_> = dt.channels().collect();
        assert_eq!(all.len(), 2, "the node with one reg entry is skipped");
        assert_eq!(
            all[0],
            ChannelNode {
                name: "ipc0",
                shm: MemoryRange {
                    base: 0x5000_0000,
                    size: 0x1_0000
                },
                doorbell: MemoryRange {
                    base: 0x5001_0000,
                    size: 0x1000
                },
                intid: Some(72),
                endpoint: Some(1),
                channel_id: Some(3),
                read_only: false,
            }
        );
        assert_eq!(
            (all[1].name, all[1].intid, all[1].endpoint, all[1].read_only),
            ("ctl", None, None, true)
        );
        assert_eq!(dt.channel(None).map(|c| c.name), Some("ipc0"));
        assert_eq!(dt.channel(Some("ctl")).map(|c| c.name), Some("ctl"));
        assert_eq!(dt.channel(Some("nope")), None);
        assert_eq!(gic_intid(&[0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0, 4]), Some(27));
        assert_eq!(gic_intid(&[0, 0, 0, 2, 0, 0, 0, 11]), None);
    }

    #[test]
    fn tolerates_missing_properties() {
        let dt = bulkhead_like_dt(&[], &[(0x4000_0000, 0x100_0000)], 1);
        assert_eq!(dt.partition_name(), "unnamed");
        assert_eq!(dt.bootargs(), None);
        assert_eq!(dt.bootarg("count"), None);
        // No stdout-path: the first PL011 is used.
        assert_eq!(dt.console_base(), Some(0x900_0000));
    }

    #[test]
    fn rejects_non_dtb() {
        let junk: &'static [u8; 16] = &[0; 16];
        // SAFETY: `junk` is 16 readable bytes that live forever.
        assert!(unsafe { GuestDt::from_addr(junk.as_ptr() as usize) }.is_none());
        // SAFETY: 0 is explicitly allowed.
        assert!(unsafe { GuestDt::from_addr(0) }.is_none());
    }

    #[test]
    fn bootarg_lookup_and_numbers() {
        assert_eq!(find_bootarg("a=1  count=10 x", "count"), Some("10"));
        assert_eq!(find_bootarg("counter=1", "count"), None);
        assert_eq!(parse_u64("10"), Some(10));
        assert_eq!(parse_u64("0x4100_1000"), Some(0x4100_1000));
        assert_eq!(parse_u64("0b101"), Some(5));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("12a"), None);
        assert_eq!(parse_u64("0x1_0000_0000_0000_0000"), None);
    }
}
