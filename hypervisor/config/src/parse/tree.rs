//! The tree index: the device tree flattened into a table of nodes (path, name, parent, and its
//! properties, read from the blob once) with a phandle index, and the checked property accessors
//! the board parser uses (cells, strings, `reg` translated through `ranges`, GIC interrupt
//! specifiers).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use fdt::node::FdtNode;
use fdt::Fdt;

use crate::addr::{HostPhysAddr, HostRange};
use crate::error::{ConfigError, ErrorKind};
use crate::model::{Irq, IrqKind};

use super::structure::{be32, blob_error};
use super::Result;

/// Largest SPI number a 3-cell GIC specifier may carry (INTID 1019).
const MAX_SPI: u32 = 987;
/// Largest PPI number a 3-cell GIC specifier may carry (INTID 31).
const MAX_PPI: u32 = 15;

/// One node of the tree, flattened.
struct Node<'a> {
    /// Its properties, by name.
    props: Vec<(&'a str, &'a [u8])>,
    name: &'a str,
    path: String,
    parent: Option<usize>,
}

/// The device tree flattened into a table in depth-first (blob) order; index 0 is the root.
pub(super) struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    /// (phandle, node index), sorted by phandle.
    pub(super) phandles: Vec<(u32, usize)>,
}

impl<'a> Tree<'a> {
    pub(super) fn build(fdt: &Fdt<'a>) -> Result<Self> {
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
        crate::small_sort::sort(&mut phandles);
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

    pub(super) fn add(&mut self, node: FdtNode<'_, 'a>, path: String, parent: Option<usize>) {
        let idx = self.nodes.len();
        let name = if parent.is_none() { "" } else { node.name };
        self.nodes.push(Node {
            props: node.properties().map(|p| (p.name, p.value)).collect(),
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

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(super) fn path(&self, i: usize) -> &str {
        self.nodes.get(i).map_or("/", |n| n.path.as_str())
    }

    pub(super) fn name(&self, i: usize) -> &'a str {
        self.nodes.get(i).map_or("", |n| n.name)
    }

    /// The node name without its unit address.
    pub(super) fn base_name(&self, i: usize) -> &'a str {
        self.name(i).split('@').next().unwrap_or("")
    }

    pub(super) fn parent(&self, i: usize) -> Option<usize> {
        self.nodes.get(i)?.parent
    }

    pub(super) fn err(&self, i: usize, kind: ErrorKind) -> Box<ConfigError> {
        ConfigError::boxed(self.path(i), kind)
    }

    pub(super) fn children(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.parent(i) == Some(parent))
    }

    pub(super) fn child(&self, parent: usize, name: &str) -> Option<usize> {
        self.children(parent).find(|&i| self.name(i) == name)
    }

    /// Whether `i` is `ancestor` or lies below it.
    pub(super) fn is_within(&self, mut i: usize, ancestor: usize) -> bool {
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

    pub(super) fn by_phandle(&self, phandle: u32) -> Option<usize> {
        let pos = self
            .phandles
            .binary_search_by_key(&phandle, |&(p, _)| p)
            .ok()?;
        self.phandles.get(pos).map(|&(_, i)| i)
    }

    pub(super) fn prop(&self, i: usize, name: &str) -> Option<&'a [u8]> {
        let props = &self.nodes.get(i)?.props;
        props.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// A property as big-endian cells.
    pub(super) fn cells(&self, i: usize, name: &'static str) -> Result<Option<Vec<u32>>> {
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
    pub(super) fn fixed_cells(
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
            Err(mut e) => {
                // The length is wrong: say what was expected.
                if let ErrorKind::BadPropertyLength { len, .. } = e.kind {
                    e.kind = ErrorKind::BadPropertyLength {
                        property: name,
                        len,
                        expected,
                    };
                }
                Err(e)
            }
            other => other,
        }
    }

    pub(super) fn u32_prop(&self, i: usize, name: &'static str) -> Result<Option<u32>> {
        Ok(self
            .fixed_cells(i, name, 1, "1 cell")?
            .and_then(|c| c.first().copied()))
    }

    /// A 2-cell (64-bit) property.
    pub(super) fn u64_prop(&self, i: usize, name: &'static str) -> Result<Option<u64>> {
        Ok(self
            .fixed_cells(i, name, 2, "2 cells (64-bit address)")?
            .and_then(|c| combine(&c)))
    }

    pub(super) fn string_list(&self, i: usize, name: &'static str) -> Result<Option<Vec<String>>> {
        let Some(value) = self.prop(i, name) else {
            return Ok(None);
        };
        let bad = || self.err(i, ErrorKind::BadString { property: name });
        let body = value.strip_suffix(&[0]).ok_or_else(bad)?;
        let text = core::str::from_utf8(body).map_err(|_| bad())?;
        Ok(Some(text.split('\0').map(ToString::to_string).collect()))
    }

    /// A single-string property.
    pub(super) fn string(&self, i: usize, name: &'static str) -> Result<Option<String>> {
        match self.string_list(i, name)? {
            None => Ok(None),
            Some(list) if list.len() == 1 => Ok(list.into_iter().next()),
            Some(_) => Err(self.err(i, ErrorKind::BadString { property: name })),
        }
    }

    pub(super) fn compatible(&self, i: usize) -> Result<Vec<String>> {
        Ok(self.string_list(i, "compatible")?.unwrap_or_default())
    }

    pub(super) fn is_compatible(&self, i: usize, with: &str) -> Result<bool> {
        Ok(self.compatible(i)?.iter().any(|c| c == with))
    }

    /// `#address-cells` of node `i` (for its children), default 2.
    pub(super) fn address_cells(&self, i: usize) -> Result<usize> {
        Ok(self.u32_prop(i, "#address-cells")?.unwrap_or(2) as usize)
    }

    /// `#size-cells` of node `i` (for its children), default 1.
    pub(super) fn size_cells(&self, i: usize) -> Result<usize> {
        Ok(self.u32_prop(i, "#size-cells")?.unwrap_or(1) as usize)
    }

    /// `reg` of node `i` as (address, size) pairs in its parent's address space, or `None` if
    /// the node has no `reg` or its parent's cell counts are not decodable (more than 2 cells).
    pub(super) fn raw_reg(&self, i: usize) -> Result<Option<Vec<(u64, u64)>>> {
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
    pub(super) fn translate(&self, mut bus: usize, mut addr: u64) -> Result<Option<u64>> {
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
    pub(super) fn mmio_regs(&self, i: usize) -> Result<Option<Vec<HostRange>>> {
        let (Some(parent), Some(raw)) = (self.parent(i), self.raw_reg(i)?) else {
            return Ok(None);
        };
        let mut regs = Vec::with_capacity(raw.len());
        for (addr, size) in raw {
            match self.translate(parent, addr)? {
                Some(base) => regs.push(HostRange::new(HostPhysAddr(base), size)),
                None => return Ok(None),
            }
        }
        Ok(Some(regs))
    }

    /// The node's interrupt parent: `interrupt-parent` of itself or its nearest ancestor having
    /// one, else its tree parent.
    pub(super) fn interrupt_parent(&self, i: usize) -> Option<usize> {
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
    pub(super) fn interrupts(&self, i: usize, gic: usize) -> (Vec<Irq>, bool) {
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
pub(super) fn combine(cells: &[u32]) -> Option<u64> {
    match cells {
        [] => Some(0),
        [lo] => Some(u64::from(*lo)),
        [hi, lo] => Some((u64::from(*hi) << 32) | u64::from(*lo)),
        _ => None,
    }
}
