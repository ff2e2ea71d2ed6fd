//! The monitor window: finding it in the device tree (`/proc/device-tree`, below a root the
//! host tests replace with a fake tree), mapping it through `/dev/mem`, and reading the rows.
//!
//! Every field is read with one aligned 64-bit load, which the hypervisor traps and answers with
//! the field's value at that moment (the kernel maps `/dev/mem` outside RAM as Device memory, so
//! each load reaches it).

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bulkhead_config::monitor::{
    Field, Row, COMPATIBLE, FIELDS, ROW_STRIDE, STATE_NONE, WINDOW_PARTITIONS, WINDOW_SIZE,
};

/// Where the window is: its device-tree node and physical address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub node: PathBuf,
    pub address: u64,
    pub size: u64,
}

/// The `monitor@...` node with compatible `bulkhead,monitor` under `root`'s
/// `/proc/device-tree`, if any, with the address its `reg` gives (the root's cell counts).
pub fn find(root: &Path) -> Result<Found, String> {
    let base = root.join("proc/device-tree");
    let cells = |name: &str, default: usize| {
        fs::read(base.join(name))
            .ok()
            .and_then(|b| Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize))
            .unwrap_or(default)
    };
    let (address_cells, size_cells) = (cells("#address-cells", 2), cells("#size-cells", 1));
    let mut dirs: Vec<PathBuf> = fs::read_dir(&base)
        .map_err(|e| format!("cannot read {}: {e}", base.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    let node = dirs
        .into_iter()
        .find(|d| {
            fs::read(d.join("compatible"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|s| s == COMPATIBLE.as_bytes()))
        })
        .ok_or_else(|| {
            format!(
                "this partition has no monitor window: {} has no node with compatible \
                 \"{COMPATIBLE}\" (the board config must give the partition `monitor;` and \
                 `monitor-window = <...>;`)",
                base.display()
            )
        })?;
    let reg = fs::read(node.join("reg")).unwrap_or_default();
    let cells: Vec<u64> = reg
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let fold = |cs: &[u64]| cs.iter().fold(0u64, |acc, &c| acc << 32 | c);
    if cells.len() < address_cells + size_cells || address_cells == 0 {
        return Err(format!("{} has no usable reg", node.display()));
    }
    let (address, size) = (
        fold(&cells[..address_cells]),
        fold(&cells[address_cells..address_cells + size_cells]),
    );
    if size < WINDOW_SIZE {
        return Err(format!(
            "{}: the window is {size:#x} bytes, less than a page of counters ({WINDOW_SIZE:#x})",
            node.display()
        ));
    }
    Ok(Found {
        node,
        address,
        size,
    })
}

/// Every partition's row, reading field `f` of partition `p` with `load(p * ROW_STRIDE + 8 * f)`;
/// the rows end at the first partition whose state reads [`STATE_NONE`].
pub fn read_rows(load: impl Fn(u64) -> u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in 0..WINDOW_PARTITIONS as u64 {
        let at = |f: usize| p * ROW_STRIDE + 8 * f as u64;
        if load(at(Field::State as usize)) == STATE_NONE {
            break;
        }
        let mut row = Row {
            fields: [0; FIELDS],
        };
        for (f, value) in row.fields.iter_mut().enumerate() {
            *value = load(at(f));
        }
        rows.push(row);
    }
    rows
}

/// The mapped window, unmapped on drop.
pub struct Window {
    ptr: *const u64,
    len: usize,
    /// Kept open while mapped.
    _mem: File,
}

impl Window {
    /// Finds the window under `root` and maps it read-only from `root`'s `/dev/mem`.
    pub fn open(root: &Path) -> Result<Window, String> {
        let found = find(root)?;
        let mem = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_SYNC)
            .open(root.join("dev/mem"))
            .map_err(|e| format!("opening /dev/mem (needs root): {e}"))?;
        let len = WINDOW_SIZE as usize;
        let offset = libc::off_t::try_from(found.address)
            .map_err(|_| format!("address {:#x} out of range", found.address))?;
        // SAFETY: a fresh read-only shared mapping chosen by the kernel (null hint) of the file we
        // hold open; checked before use, unmapped only in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                mem.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap of /dev/mem at {:#x} (the window of {}): {}",
                found.address,
                found.node.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Window {
            ptr: ptr.cast(),
            len,
            _mem: mem,
        })
    }

    /// The 64-bit field at byte `offset` of the window (8-aligned, inside it).
    fn load(&self, offset: u64) -> u64 {
        let index = (offset / 8) as usize;
        assert!(
            offset.is_multiple_of(8) && index < self.len / 8,
            "offset {offset:#x}"
        );
        // SAFETY: inside the live read-only mapping (checked above), 8-byte aligned (the mapping
        // is page-aligned); a volatile load is one aligned 64-bit access, which the hypervisor
        // traps and answers.
        unsafe { std::ptr::read_volatile(self.ptr.add(index)) }
    }

    /// Every partition's row, now.
    pub fn rows(&self) -> Vec<Row> {
        read_rows(|offset| self.load(offset))
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`, which nothing uses any more.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_config::monitor::{ExitKind, STATE_RUNNING, STATE_STOPPED};

    /// A fake root with `/proc/device-tree` holding `nodes` (name, compatible, reg cells).
    fn tree(name: &str, nodes: &[(&str, &str, &[u32])]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("bulkhead-top-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dt = root.join("proc/device-tree");
        fs::create_dir_all(&dt).unwrap();
        fs::write(dt.join("#address-cells"), 2u32.to_be_bytes()).unwrap();
        fs::write(dt.join("#size-cells"), 2u32.to_be_bytes()).unwrap();
        for (node, compatible, reg) in nodes {
            let dir = dt.join(node);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("compatible"), format!("{compatible}\0")).unwrap();
            let bytes: Vec<u8> = reg.iter().flat_map(|c| c.to_be_bytes()).collect();
            fs::write(dir.join("reg"), bytes).unwrap();
        }
        root
    }

    #[test]
    fn the_window_is_found_by_its_compatible() {
        let root = tree(
            "found",
            &[
                ("pl011@9000000", "arm,pl011", &[0, 0x0900_0000, 0, 0x1000]),
                ("monitor@b000000", COMPATIBLE, &[0, 0x0b00_0000, 0, 0x1000]),
            ],
        );
        assert_eq!(
            find(&root).unwrap(),
            Found {
                node: root.join("proc/device-tree/monitor@b000000"),
                address: 0x0b00_0000,
                size: 0x1000
            }
        );
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn a_partition_without_a_window_is_told_what_the_board_needs() {
        let root = tree(
            "missing",
            &[("pl011@9000000", "arm,pl011", &[0, 0x0900_0000, 0, 0x1000])],
        );
        let e = find(&root).unwrap_err();
        assert!(
            e.contains("no monitor window") && e.contains("monitor-window"),
            "{e}"
        );
        let small = tree(
            "small",
            &[("monitor@b000000", COMPATIBLE, &[0, 0x0b00_0000, 0, 0x100])],
        );
        assert!(find(&small).unwrap_err().contains("less than a page"));
        let _ = fs::remove_dir_all(root);
        let _ = fs::remove_dir_all(small);
    }

    #[test]
    fn rows_are_read_field_by_field_until_a_missing_partition() {
        let mut linux = Row::named("linux");
        linux.set(Field::State, STATE_RUNNING);
        linux.add_exits(ExitKind::Uart, 12);
        let mut ticker = Row::named("ticker");
        ticker.set(Field::State, STATE_STOPPED);
        ticker.set(Field::Restarts, 2);
        let mut page = vec![0u64; (WINDOW_SIZE / 8) as usize];
        for (p, row) in [linux, ticker].iter().enumerate() {
            let at = p * (ROW_STRIDE / 8) as usize;
            page[at..at + FIELDS].copy_from_slice(&row.fields);
        }
        let rows = read_rows(|offset| page[(offset / 8) as usize]);
        assert_eq!(rows, [linux, ticker]);
    }
}
