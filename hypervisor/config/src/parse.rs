//! Device-tree parser: turns a board-config DTB (platform description plus the `/hypervisor`
//! node) into a [`BoardConfig`], without judging whether the partitioning is sound (that is
//! `validate`'s job).
//!
//! The same bytes are parsed by the host tools and by the hypervisor at boot, so nothing here may
//! panic on any input. The `fdt` crate (0.1.5) panics on some malformed blobs, so
//! [`check_structure`] first walks the whole blob and refuses anything `fdt` could trip over;
//! only then is `fdt` used to walk nodes and properties. All property decoding is done here with
//! checked accessors.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use fdt::node::FdtNode;
use fdt::Fdt;

use crate::error::{ConfigError, ErrorKind};
use crate::model::{
    BoardConfig, Cpu, Device, Gic, HypervisorConfig, Irq, IrqKind, LogLevel, MemRange,
    MemoryRegion, Partition, Platform, PsciConduit,
};

type Result<T> = core::result::Result<T, ConfigError>;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// `fdt` 0.1.5 keeps parents in a 64-entry array; the root counts as depth 1.
const MAX_DEPTH: usize = 63;

/// Largest SPI number a 3-cell GIC specifier may carry (INTID 1019).
const MAX_SPI: u32 = 987;
/// Largest PPI number a 3-cell GIC specifier may carry (INTID 31).
const MAX_PPI: u32 = 15;

/// Parses a board config from a flattened device tree blob. Does not validate it.
pub fn parse(dtb: &[u8]) -> Result<BoardConfig> {
    check_structure(dtb)?;
    let fdt = Fdt::new(dtb).map_err(|_| blob_error("bad header"))?;
    let tree = Tree::build(&fdt)?;
    Parser::new(&tree)?.run()
}

fn blob_error(why: &'static str) -> ConfigError {
    ConfigError::new("/", ErrorKind::InvalidBlob(why))
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The `len` bytes at `offset` inside `total` bytes, as a range, if they fit.
fn block(offset: u32, len: u32, total: usize) -> Option<core::ops::Range<usize>> {
    let start = offset as usize;
    let end = start.checked_add(len as usize)?;
    (end <= total).then_some(start..end)
}

/// Walks the header, structure block and strings block and refuses anything that is not a
/// well-formed, version-17 FDT that `fdt` 0.1.5 handles without panicking (NOP tokens,
/// properties after subnodes and nesting beyond 63 levels are refused too).
pub fn check_structure(dtb: &[u8]) -> Result<()> {
    let header = |i: usize| be32(dtb, i * 4).ok_or_else(|| blob_error("truncated header"));
    if header(0)? != FDT_MAGIC {
        return Err(blob_error("bad magic"));
    }
    let total = header(1)? as usize;
    if total > dtb.len() {
        return Err(blob_error("blob is shorter than its header's totalsize"));
    }
    if header(5)? < 17 {
        return Err(blob_error("FDT version is older than 17"));
    }
    let structs = block(header(2)?, header(9)?, total)
        .and_then(|r| dtb.get(r))
        .ok_or_else(|| blob_error("structure block lies outside the blob"))?;
    let strings = block(header(3)?, header(8)?, total)
        .and_then(|r| dtb.get(r))
        .ok_or_else(|| blob_error("strings block lies outside the blob"))?;

    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut has_child = [false; MAX_DEPTH + 1];
    let mut seen_root = false;
    let truncated = || blob_error("structure block is truncated");
    loop {
        let token = be32(structs, pos).ok_or_else(truncated)?;
        pos = pos.checked_add(4).ok_or_else(truncated)?;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err(blob_error("more than one root node"));
                }
                let rest = structs.get(pos..).ok_or_else(truncated)?;
                let nul = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| blob_error("unterminated node name"))?;
                let name = rest.get(..nul).ok_or_else(truncated)?;
                if core::str::from_utf8(name).is_err() {
                    return Err(blob_error("node name is not UTF-8"));
                }
                if depth == 0 && !name.is_empty() {
                    return Err(blob_error("root node has a name"));
                }
                if depth > 0 && name.is_empty() {
                    return Err(blob_error("node without a name"));
                }
                let skip = nul.checked_add(1).and_then(align4).ok_or_else(truncated)?;
                pos = pos.checked_add(skip).ok_or_else(truncated)?;
                if let Some(flag) = has_child.get_mut(depth) {
                    *flag = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(blob_error("nodes are nested more than 63 levels deep"));
                }
                if let Some(flag) = has_child.get_mut(depth) {
                    *flag = false;
                }
                seen_root = true;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(blob_error("unbalanced end of node"));
                }
                depth -= 1;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(blob_error("property outside any node"));
                }
                if has_child.get(depth).copied().unwrap_or(true) {
                    return Err(blob_error("property after a subnode"));
                }
                let len = be32(structs, pos).ok_or_else(truncated)? as usize;
                let name_off = be32(structs, pos.saturating_add(4)).ok_or_else(truncated)?;
                pos = pos.checked_add(8).ok_or_else(truncated)?;
                let end = pos.checked_add(len).ok_or_else(truncated)?;
                if end > structs.len() {
                    return Err(blob_error("property value runs past the structure block"));
                }
                let name = strings
                    .get(name_off as usize..)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| blob_error("property name offset outside the strings block"))?;
                let nul = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| blob_error("unterminated property name"))?;
                if name
                    .get(..nul)
                    .map(core::str::from_utf8)
                    .is_none_or(|r| r.is_err())
                {
                    return Err(blob_error("property name is not UTF-8"));
                }
                pos = pos
                    .checked_add(align4(len).ok_or_else(truncated)?)
                    .ok_or_else(truncated)?;
            }
            FDT_NOP => return Err(blob_error("NOP tokens are not supported")),
            FDT_END => {
                if depth != 0 || !seen_root {
                    return Err(blob_error("end of structure block inside a node"));
                }
                return Ok(());
            }
            _ => return Err(blob_error("unknown structure token")),
        }
    }
}

/// One node of the tree, flattened.
struct Node<'b, 'a> {
    node: FdtNode<'b, 'a>,
    name: &'a str,
    path: String,
    parent: Option<usize>,
}

/// The device tree flattened into a table in depth-first (blob) order; index 0 is the root.
struct Tree<'b, 'a> {
    nodes: Vec<Node<'b, 'a>>,
    /// (phandle, node index), sorted by phandle.
    phandles: Vec<(u32, usize)>,
}

impl<'b, 'a> Tree<'b, 'a> {
    fn build(fdt: &'b Fdt<'a>) -> Result<Self> {
        let root = fdt
            .all_nodes()
            .next()
            .ok_or_else(|| blob_error("no root node"))?;
        let mut tree = Tree {
            nodes: Vec::new(),
            phandles: Vec::new(),
        };
        tree.add(root, String::from("/"), None);
        let mut phandles = Vec::new();
        for i in 0..tree.nodes.len() {
            let mut ph = tree.u32_prop(i, "phandle")?;
            if ph.is_none() {
                ph = tree.u32_prop(i, "linux,phandle")?;
            }
            if let Some(ph) = ph {
                phandles.push((ph, i));
            }
        }
        phandles.sort_unstable();
        for pair in phandles.windows(2) {
            if let [(a, _), (b, i)] = pair {
                if a == b {
                    return Err(tree.err(*i, ErrorKind::DuplicatePhandle(*b)));
                }
            }
        }
        tree.phandles = phandles;
        Ok(tree)
    }

    fn add(&mut self, node: FdtNode<'b, 'a>, path: String, parent: Option<usize>) {
        let idx = self.nodes.len();
        let name = if parent.is_none() { "" } else { node.name };
        self.nodes.push(Node {
            node,
            name,
            path: path.clone(),
            parent,
        });
        for child in node.children() {
            let child_path = if parent.is_none() {
                format!("/{}", child.name)
            } else {
                format!("{}/{}", path, child.name)
            };
            self.add(child, child_path, Some(idx));
        }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn path(&self, i: usize) -> &str {
        self.nodes.get(i).map_or("/", |n| n.path.as_str())
    }

    fn name(&self, i: usize) -> &'a str {
        self.nodes.get(i).map_or("", |n| n.name)
    }

    /// The node name without its unit address.
    fn base_name(&self, i: usize) -> &'a str {
        self.name(i).split('@').next().unwrap_or("")
    }

    fn parent(&self, i: usize) -> Option<usize> {
        self.nodes.get(i)?.parent
    }

    fn err(&self, i: usize, kind: ErrorKind) -> ConfigError {
        ConfigError::new(self.path(i), kind)
    }

    fn children(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.parent(i) == Some(parent))
    }

    fn child(&self, parent: usize, name: &str) -> Option<usize> {
        self.children(parent).find(|&i| self.name(i) == name)
    }

    /// Whether `i` is `ancestor` or lies below it.
    fn is_within(&self, mut i: usize, ancestor: usize) -> bool {
        loop {
            if i == ancestor {
                return true;
            }
            match self.parent(i) {
                Some(p) => i = p,
                None => return false,
            }
        }
    }

    fn by_phandle(&self, phandle: u32) -> Option<usize> {
        let pos = self
            .phandles
            .binary_search_by_key(&phandle, |&(p, _)| p)
            .ok()?;
        self.phandles.get(pos).map(|&(_, i)| i)
    }

    fn prop(&self, i: usize, name: &str) -> Option<&'a [u8]> {
        self.nodes.get(i)?.node.property(name).map(|p| p.value)
    }

    /// A property as big-endian cells.
    fn cells(&self, i: usize, name: &'static str) -> Result<Option<Vec<u32>>> {
        let Some(value) = self.prop(i, name) else {
            return Ok(None);
        };
        if value.len() % 4 != 0 {
            return Err(self.err(
                i,
                ErrorKind::BadPropertyLength {
                    property: name,
                    len: value.len(),
                    expected: "a multiple of 4 bytes (cells)",
                },
            ));
        }
        Ok(Some(
            value.chunks_exact(4).filter_map(|c| be32(c, 0)).collect(),
        ))
    }

    /// A property of exactly `n` cells.
    fn fixed_cells(
        &self,
        i: usize,
        name: &'static str,
        n: usize,
        expected: &'static str,
    ) -> Result<Option<Vec<u32>>> {
        match self.cells(i, name) {
            Ok(Some(cells)) if cells.len() != n => Err(self.err(
                i,
                ErrorKind::BadPropertyLength {
                    property: name,
                    len: cells.len() * 4,
                    expected,
                },
            )),
            Err(ConfigError {
                node,
                kind: ErrorKind::BadPropertyLength { len, .. },
            }) => Err(ConfigError::new(
                node,
                ErrorKind::BadPropertyLength {
                    property: name,
                    len,
                    expected,
                },
            )),
            other => other,
        }
    }

    fn u32_prop(&self, i: usize, name: &'static str) -> Result<Option<u32>> {
        Ok(self
            .fixed_cells(i, name, 1, "1 cell")?
            .and_then(|c| c.first().copied()))
    }

    /// A 2-cell (64-bit) property.
    fn u64_prop(&self, i: usize, name: &'static str) -> Result<Option<u64>> {
        Ok(self
            .fixed_cells(i, name, 2, "2 cells (64-bit address)")?
            .and_then(|c| combine(&c)))
    }

    fn string_list(&self, i: usize, name: &'static str) -> Result<Option<Vec<String>>> {
        let Some(value) = self.prop(i, name) else {
            return Ok(None);
        };
        let bad = || self.err(i, ErrorKind::BadString { property: name });
        let body = value.strip_suffix(&[0]).ok_or_else(bad)?;
        let text = core::str::from_utf8(body).map_err(|_| bad())?;
        Ok(Some(text.split('\0').map(ToString::to_string).collect()))
    }

    /// A single-string property.
    fn string(&self, i: usize, name: &'static str) -> Result<Option<String>> {
        match self.string_list(i, name)? {
            None => Ok(None),
            Some(list) if list.len() == 1 => Ok(list.into_iter().next()),
            Some(_) => Err(self.err(i, ErrorKind::BadString { property: name })),
        }
    }

    fn compatible(&self, i: usize) -> Result<Vec<String>> {
        Ok(self.string_list(i, "compatible")?.unwrap_or_default())
    }

    fn is_compatible(&self, i: usize, with: &str) -> Result<bool> {
        Ok(self.compatible(i)?.iter().any(|c| c == with))
    }

    /// `#address-cells` of node `i` (for its children), default 2.
    fn address_cells(&self, i: usize) -> Result<usize> {
        Ok(self.u32_prop(i, "#address-cells")?.unwrap_or(2) as usize)
    }

    /// `#size-cells` of node `i` (for its children), default 1.
    fn size_cells(&self, i: usize) -> Result<usize> {
        Ok(self.u32_prop(i, "#size-cells")?.unwrap_or(1) as usize)
    }

    /// `reg` of node `i` as (address, size) pairs in its parent's address space, or `None` if
    /// the node has no `reg` or its parent's cell counts are not decodable (more than 2 cells).
    fn raw_reg(&self, i: usize) -> Result<Option<Vec<(u64, u64)>>> {
        let Some(parent) = self.parent(i) else {
            return Ok(None);
        };
        let (ac, sc) = (self.address_cells(parent)?, self.size_cells(parent)?);
        if ac == 0 || ac > 2 || sc > 2 {
            return Ok(None);
        }
        let Some(cells) = self.cells(i, "reg")? else {
            return Ok(None);
        };
        let entry = ac + sc;
        if cells.len() % entry != 0 {
            return Err(self.err(
                i,
                ErrorKind::BadPropertyLength {
                    property: "reg",
                    len: cells.len() * 4,
                    expected: "a multiple of (#address-cells + #size-cells) cells",
                },
            ));
        }
        Ok(Some(
            cells
                .chunks_exact(entry)
                .filter_map(|e| Some((combine(e.get(..ac)?)?, combine(e.get(ac..)?)?)))
                .collect(),
        ))
    }

    /// Translates `addr`, in the address space of `bus`'s children, to a CPU physical address
    /// through the `ranges` of `bus` and its ancestors. `None` if some bus on the way has no
    /// `ranges` (not memory-mapped) or no range covers the address.
    fn translate(&self, mut bus: usize, mut addr: u64) -> Result<Option<u64>> {
        while let Some(up) = self.parent(bus) {
            let Some(ranges) = self.cells(bus, "ranges")? else {
                return Ok(None);
            };
            if !ranges.is_empty() {
                let child_ac = self.address_cells(bus)?;
                let parent_ac = self.address_cells(up)?;
                let sc = self.size_cells(bus)?;
                if child_ac > 2 || parent_ac > 2 || sc > 2 || child_ac + parent_ac + sc == 0 {
                    return Ok(None);
                }
                let hit = ranges
                    .chunks_exact(child_ac + parent_ac + sc)
                    .find_map(|e| {
                        let child = combine(e.get(..child_ac)?)?;
                        let parent = combine(e.get(child_ac..child_ac + parent_ac)?)?;
                        let size = combine(e.get(child_ac + parent_ac..)?)?;
                        let off = addr.checked_sub(child)?;
                        (off < size).then(|| parent.checked_add(off)).flatten()
                    });
                match hit {
                    Some(a) => addr = a,
                    None => return Ok(None),
                }
            }
            bus = up;
        }
        Ok(Some(addr))
    }

    /// The memory-mapped regions of node `i` in CPU physical addresses, or `None` if it has
    /// none that can be decoded.
    fn mmio_regs(&self, i: usize) -> Result<Option<Vec<MemRange>>> {
        let (Some(parent), Some(raw)) = (self.parent(i), self.raw_reg(i)?) else {
            return Ok(None);
        };
        let mut regs = Vec::with_capacity(raw.len());
        for (addr, size) in raw {
            match self.translate(parent, addr)? {
                Some(base) => regs.push(MemRange::new(base, size)),
                None => return Ok(None),
            }
        }
        Ok(Some(regs))
    }

    /// The node's interrupt parent: `interrupt-parent` of itself or its nearest ancestor having
    /// one, else its tree parent.
    fn interrupt_parent(&self, i: usize) -> Option<usize> {
        let mut cur = Some(i);
        while let Some(n) = cur {
            if let Some(v) = self.prop(n, "interrupt-parent") {
                return self.by_phandle(be32(v, 0)?);
            }
            cur = self.parent(n);
        }
        self.parent(i)
    }

    /// Decodes `interrupts` as 3-cell GIC specifiers if the interrupt parent is `gic`.
    /// Returns the decoded interrupts and whether some specifier could not be decoded.
    fn interrupts(&self, i: usize, gic: usize) -> (Vec<Irq>, bool) {
        let Some(value) = self.prop(i, "interrupts") else {
            return (Vec::new(), self.prop(i, "interrupts-extended").is_some());
        };
        if self.interrupt_parent(i) != Some(gic) || value.len() % 12 != 0 {
            return (Vec::new(), true);
        }
        let mut irqs = Vec::new();
        let mut undecodable = false;
        for spec in value.chunks_exact(12) {
            let (Some(kind), Some(number), Some(flags)) =
                (be32(spec, 0), be32(spec, 4), be32(spec, 8))
            else {
                undecodable = true;
                continue;
            };
            let kind = match kind {
                0 if number <= MAX_SPI => IrqKind::Spi,
                1 if number <= MAX_PPI => IrqKind::Ppi,
                _ => {
                    undecodable = true;
                    continue;
                }
            };
            irqs.push(Irq {
                kind,
                number,
                flags,
            });
        }
        (irqs, undecodable)
    }
}

/// Combines 0, 1 or 2 big-endian cells into a number.
fn combine(cells: &[u32]) -> Option<u64> {
    match cells {
        [] => Some(0),
        [lo] => Some(u64::from(*lo)),
        [hi, lo] => Some((u64::from(*hi) << 32) | u64::from(*lo)),
        _ => None,
    }
}

/// Builds the model out of a [`Tree`].
struct Parser<'t, 'b, 'a> {
    tree: &'t Tree<'b, 'a>,
    /// Node index -> index into `cpus`.
    cpu_of_node: Vec<Option<usize>>,
    /// Node index -> index into `devices`.
    device_of_node: Vec<Option<usize>>,
    /// Per device: some interrupt specifier could not be decoded.
    undecodable: Vec<bool>,
    cpus: Vec<Cpu>,
    devices: Vec<Device>,
}

impl<'t, 'b, 'a> Parser<'t, 'b, 'a> {
    fn new(tree: &'t Tree<'b, 'a>) -> Result<Self> {
        Ok(Self {
            tree,
            cpu_of_node: vec![None; tree.len()],
            device_of_node: vec![None; tree.len()],
            undecodable: Vec::new(),
            cpus: Vec::new(),
            devices: Vec::new(),
        })
    }

    fn run(mut self) -> Result<BoardConfig> {
        let t = self.tree;
        let (root_ac, root_sc) = (t.address_cells(0)?, t.size_cells(0)?);
        if root_ac == 0 || root_ac > 2 {
            return Err(t.err(0, unsupported("#address-cells", root_ac)));
        }
        if root_sc > 2 {
            return Err(t.err(0, unsupported("#size-cells", root_sc)));
        }

        // RAM: root children with device_type = "memory".
        let mut ram = Vec::new();
        let mut ram_nodes = Vec::new();
        for c in t.children(0) {
            if t.string(c, "device_type")?.as_deref() == Some("memory") {
                ram_nodes.push(c);
                let regs = t
                    .raw_reg(c)?
                    .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("reg")))?;
                ram.extend(regs.into_iter().map(|(b, s)| MemRange::new(b, s)));
            }
        }
        if ram.is_empty() {
            return Err(ConfigError::new(
                "/memory",
                ErrorKind::MissingNode("/memory"),
            ));
        }

        let cpus_node = self.parse_cpus()?;

        // The GICv3.
        let mut gic_node = None;
        for i in 0..t.len() {
            if t.is_compatible(i, "arm,gic-v3")? {
                gic_node = Some(i);
                break;
            }
        }
        let gic_node = gic_node.ok_or_else(|| {
            ConfigError::new(
                "/",
                ErrorKind::MissingNode("GICv3 (compatible \"arm,gic-v3\")"),
            )
        })?;
        let gic = self.parse_gic(gic_node)?;

        // PSCI.
        let psci_node = t
            .children(0)
            .find(|&c| t.base_name(c) == "psci")
            .ok_or_else(|| ConfigError::new("/psci", ErrorKind::MissingNode("/psci")))?;
        let method = t
            .string(psci_node, "method")?
            .ok_or_else(|| t.err(psci_node, ErrorKind::MissingProperty("method")))?;
        let psci = match method.as_str() {
            "smc" => PsciConduit::Smc,
            "hvc" => PsciConduit::Hvc,
            _ => return Err(t.err(psci_node, ErrorKind::UnknownPsciMethod(method))),
        };

        // Architected timer.
        let timer_irqs = match t.children(0).find(|&c| t.base_name(c) == "timer") {
            Some(timer) => t.interrupts(timer, gic_node).0,
            None => Vec::new(),
        };

        // Devices: every other node with a memory-mapped `reg`.
        let hv_node = t.child(0, "hypervisor");
        let reserved = t.child(0, "reserved-memory");
        for i in 1..t.len() {
            let excluded = t.is_within(i, cpus_node)
                || hv_node.is_some_and(|h| t.is_within(i, h))
                || reserved.is_some_and(|r| t.is_within(i, r))
                || ram_nodes.contains(&i);
            if excluded {
                continue;
            }
            let Some(regs) = t.mmio_regs(i)? else {
                continue;
            };
            let (irqs, undecodable) = t.interrupts(i, gic_node);
            if let Some(slot) = self.device_of_node.get_mut(i) {
                *slot = Some(self.devices.len());
            }
            self.undecodable.push(undecodable);
            self.devices.push(Device {
                path: t.path(i).to_string(),
                phandle: self.phandle_of(i),
                compatible: t.compatible(i)?,
                regs,
                irqs,
                dma: t.prop(i, "dma-coherent").is_some() || t.prop(i, "iommus").is_some(),
            });
        }

        let hv_node = hv_node.ok_or_else(|| {
            ConfigError::new("/hypervisor", ErrorKind::MissingNode("/hypervisor"))
        })?;
        let hypervisor = self.parse_hypervisor(hv_node)?;

        let mut partitions = Vec::new();
        for c in t.children(hv_node) {
            if t.is_compatible(c, "bulkhead,partition")? {
                partitions.push(self.parse_partition(c)?);
            }
        }

        Ok(BoardConfig {
            platform: Platform {
                ram,
                cpus: self.cpus,
                gic,
                psci,
                devices: self.devices,
                timer_irqs,
            },
            hypervisor,
            partitions,
        })
    }

    fn phandle_of(&self, i: usize) -> Option<u32> {
        self.tree
            .phandles
            .iter()
            .find(|&&(_, n)| n == i)
            .map(|&(p, _)| p)
    }

    /// Parses `/cpus/cpu@*`; returns the `/cpus` node index.
    fn parse_cpus(&mut self) -> Result<usize> {
        let t = self.tree;
        let cpus_node = t
            .child(0, "cpus")
            .ok_or_else(|| ConfigError::new("/cpus", ErrorKind::MissingNode("/cpus")))?;
        let ac = t.address_cells(cpus_node)?;
        if ac == 0 || ac > 2 {
            return Err(t.err(cpus_node, unsupported("#address-cells", ac)));
        }
        for c in t.children(cpus_node) {
            if t.base_name(c) != "cpu" {
                continue;
            }
            let reg = t
                .cells(c, "reg")?
                .ok_or_else(|| t.err(c, ErrorKind::MissingProperty("reg")))?;
            let mpidr = reg.get(..ac).and_then(combine).ok_or_else(|| {
                t.err(
                    c,
                    ErrorKind::BadPropertyLength {
                        property: "reg",
                        len: reg.len() * 4,
                        expected: "at least #address-cells cells",
                    },
                )
            })?;
            if let Some(slot) = self.cpu_of_node.get_mut(c) {
                *slot = Some(self.cpus.len());
            }
            self.cpus.push(Cpu {
                path: t.path(c).to_string(),
                phandle: self.phandle_of(c),
                mpidr,
            });
        }
        if self.cpus.is_empty() {
            return Err(t.err(cpus_node, ErrorKind::MissingNode("/cpus/cpu@*")));
        }
        Ok(cpus_node)
    }

    fn parse_gic(&self, g: usize) -> Result<Gic> {
        let t = self.tree;
        let regs = match t.mmio_regs(g)? {
            Some(regs) => regs,
            None if t.prop(g, "reg").is_none() => {
                return Err(t.err(g, ErrorKind::MissingProperty("reg")))
            }
            None => {
                return Err(t.err(
                    g,
                    ErrorKind::BadPropertyLength {
                        property: "reg",
                        len: t.prop(g, "reg").map_or(0, <[u8]>::len),
                        expected: "memory-mapped ranges",
                    },
                ))
            }
        };
        let redists = t.u32_prop(g, "#redistributor-regions")?.unwrap_or(1) as usize;
        if redists == 0 {
            return Err(t.err(
                g,
                ErrorKind::BadPropertyValue {
                    property: "#redistributor-regions",
                    value: 0,
                },
            ));
        }
        let (Some(distributor), Some(redistributors)) =
            (regs.first().copied(), regs.get(1..1 + redists))
        else {
            return Err(t.err(
                g,
                ErrorKind::BadPropertyLength {
                    property: "reg",
                    len: regs.len() * 16,
                    expected: "a distributor range and #redistributor-regions redistributor ranges",
                },
            ));
        };
        match t.u32_prop(g, "#interrupt-cells")? {
            Some(3) => {}
            Some(v) => {
                return Err(t.err(
                    g,
                    ErrorKind::BadPropertyValue {
                        property: "#interrupt-cells",
                        value: v.into(),
                    },
                ))
            }
            None => return Err(t.err(g, ErrorKind::MissingProperty("#interrupt-cells"))),
        }
        Ok(Gic {
            distributor,
            redistributors: redistributors.to_vec(),
        })
    }

    /// Resolves a phandle property value to a node index.
    fn resolve(&self, at: usize, property: &'static str, phandle: u32) -> Result<usize> {
        self.tree.by_phandle(phandle).ok_or_else(|| {
            self.tree
                .err(at, ErrorKind::DanglingPhandle { property, phandle })
        })
    }

    /// Resolves a phandle to a platform device index.
    fn device(&self, at: usize, property: &'static str, phandle: u32) -> Result<usize> {
        let t = self.tree;
        let target = self.resolve(at, property, phandle)?;
        if let Some(d) = self.device_of_node.get(target).copied().flatten() {
            return Ok(d);
        }
        let target_path = t.path(target).to_string();
        if self.cpu_of_node.get(target).copied().flatten().is_some() {
            return Err(t.err(
                at,
                ErrorKind::DeviceIsCpu {
                    device: target_path,
                },
            ));
        }
        Err(t.err(
            at,
            ErrorKind::NotADevice {
                property,
                target: target_path,
            },
        ))
    }

    fn parse_hypervisor(&self, h: usize) -> Result<HypervisorConfig> {
        let t = self.tree;
        if !t.is_compatible(h, "bulkhead,hypervisor")? {
            return Err(t.err(
                h,
                ErrorKind::NotCompatible {
                    expected: "bulkhead,hypervisor",
                },
            ));
        }
        let memory = t
            .fixed_cells(h, "memory", 4, "4 cells (2 address, 2 size)")?
            .ok_or_else(|| t.err(h, ErrorKind::MissingProperty("memory")))?;
        let memory = MemRange::new(
            memory.get(..2).and_then(combine).unwrap_or(0),
            memory.get(2..).and_then(combine).unwrap_or(0),
        );
        let console = match t.u32_prop(h, "console")? {
            Some(phandle) => Some(self.device(h, "console", phandle)?),
            None => None,
        };
        let log_level = match t.string(h, "log-level")?.as_deref() {
            None | Some("info") => LogLevel::Info,
            Some("error") => LogLevel::Error,
            Some("warn") => LogLevel::Warn,
            Some("debug") => LogLevel::Debug,
            Some("trace") => LogLevel::Trace,
            Some(other) => return Err(t.err(h, ErrorKind::UnknownLogLevel(other.to_string()))),
        };
        Ok(HypervisorConfig {
            memory,
            console,
            log_level,
            stage2_blocks: t.prop(h, "no-stage2-blocks").is_none(),
        })
    }

    fn parse_partition(&self, p: usize) -> Result<Partition> {
        let t = self.tree;

        let mut cpus = Vec::new();
        let phandles = t
            .cells(p, "cpus")?
            .ok_or_else(|| t.err(p, ErrorKind::MissingProperty("cpus")))?;
        for ph in phandles {
            let target = self.resolve(p, "cpus", ph)?;
            match self.cpu_of_node.get(target).copied().flatten() {
                Some(cpu) => cpus.push(cpu),
                None => {
                    return Err(t.err(
                        p,
                        ErrorKind::NotACpu {
                            property: "cpus",
                            target: t.path(target).to_string(),
                        },
                    ))
                }
            }
        }

        let cells = t
            .cells(p, "memory")?
            .ok_or_else(|| t.err(p, ErrorKind::MissingProperty("memory")))?;
        if cells.len() % 6 != 0 {
            return Err(t.err(
                p,
                ErrorKind::BadPropertyLength {
                    property: "memory",
                    len: cells.len() * 4,
                    expected: "a multiple of 6 cells (guest base, size, host base; 2 cells each)",
                },
            ));
        }
        let memory: Vec<MemoryRegion> = cells
            .chunks_exact(6)
            .filter_map(|e| {
                Some(MemoryRegion {
                    ipa: combine(e.get(0..2)?)?,
                    size: combine(e.get(2..4)?)?,
                    pa: combine(e.get(4..6)?)?,
                })
            })
            .collect();

        let mut devices = Vec::new();
        for ph in t.cells(p, "devices")?.unwrap_or_default() {
            let d = self.device(p, "devices", ph)?;
            if self.undecodable.get(d).copied().unwrap_or(false) {
                let device = self
                    .devices
                    .get(d)
                    .map_or_else(String::new, |d| d.path.clone());
                return Err(t.err(p, ErrorKind::UndecodableInterrupts { device }));
            }
            devices.push(d);
        }

        let virtual_uart = t.u64_prop(p, "virtual-uart")?;
        let image = t.string(p, "image")?.unwrap_or_default();
        let load_address = match t.u64_prop(p, "load-address")? {
            Some(a) => a,
            None => memory.first().map_or(0, |m| m.ipa),
        };
        let entry = t.u64_prop(p, "entry")?.unwrap_or(load_address);

        Ok(Partition {
            name: t.name(p).to_string(),
            path: t.path(p).to_string(),
            cpus,
            memory,
            devices,
            virtual_uart,
            image,
            load_address,
            entry,
            initrd: t.string(p, "initrd")?,
            bootargs: t.string(p, "bootargs")?,
        })
    }
}

fn unsupported(property: &'static str, value: usize) -> ErrorKind {
    ErrorKind::UnsupportedCells {
        property,
        value: u32::try_from(value).unwrap_or(u32::MAX),
    }
}
