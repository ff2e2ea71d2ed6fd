//! The structure check: walks a flattened device tree's header, structure block and strings
//! block and refuses anything that is not a well-formed version-17 FDT the `fdt` crate can walk
//! without panicking. Also reads the memory reservation block (`/memreserve/` entries), with
//! checked reads: `fdt` would index past the blob on a bad offset.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::error::{ConfigError, ErrorKind};

use super::Result;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// `fdt` 0.1.5 keeps parents in a 64-entry array; the root counts as depth 1.
const MAX_DEPTH: usize = 63;

pub(super) fn blob_error(why: &'static str) -> Box<ConfigError> {
    ConfigError::boxed("/", ErrorKind::InvalidBlob(why))
}

pub(super) fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    let hi = be32(bytes, offset)?;
    let lo = be32(bytes, offset.checked_add(4)?)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
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

/// The entries of the memory reservation block (`/memreserve/` in a source file) as (address,
/// size) pairs, in blob order. The block must lie inside the blob and end with its (0, 0)
/// terminator.
pub(super) fn memory_reservations(dtb: &[u8]) -> Result<Vec<(u64, u64)>> {
    let total = be32(dtb, 4).ok_or_else(|| blob_error("truncated header"))? as usize;
    let blob = dtb
        .get(..total)
        .ok_or_else(|| blob_error("truncated header"))?;
    let mut pos = be32(blob, 16).ok_or_else(|| blob_error("truncated header"))? as usize;
    let mut entries = Vec::new();
    loop {
        let (Some(address), Some(size)) = (be64(blob, pos), be64(blob, pos.saturating_add(8)))
        else {
            return Err(blob_error(
                "memory reservation block runs past the blob (no terminating entry)",
            ));
        };
        if address == 0 && size == 0 {
            return Ok(entries);
        }
        entries.push((address, size));
        pos = pos.saturating_add(16);
    }
}
