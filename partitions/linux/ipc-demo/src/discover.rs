//! Finding a channel by name: its UIO device (`/sys/class/uio/uioN/name` is the device-tree
//! node's name when `uio_pdrv_genirq` binds it), or else its device-tree node
//! (`/proc/device-tree/<name>@<addr>`, compatible `bulkhead,channel`) for `/dev/mem` access.
//! Every path is below a configurable root, so the host tests run against a fake tree.

use std::fs;
use std::path::{Path, PathBuf};

use bulkhead_channel::doorbell::{ACCESS_PROPERTY, COMPATIBLE, ENDPOINT_PROPERTY};

/// A physical range from a `reg` entry or a UIO map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub addr: u64,
    pub size: u64,
}

/// A channel's UIO device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UioDevice {
    /// `/dev/uioN` (below the root).
    pub dev: PathBuf,
    /// `uioN`.
    pub id: String,
    /// map0: the shared memory; map1: the doorbell page.
    pub shm: PhysRange,
    pub doorbell: PhysRange,
    /// `bulkhead,endpoint` of the node behind it, if readable.
    pub endpoint: Option<u32>,
}

/// A channel's device-tree node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtChannel {
    pub node: PathBuf,
    pub shm: PhysRange,
    pub doorbell: PhysRange,
    pub endpoint: Option<u32>,
    /// `bulkhead,access`, if present.
    pub access: Option<String>,
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn parse_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

/// A big-endian `u32` device-tree property.
fn read_be32(path: &Path) -> Option<u32> {
    let bytes = fs::read(path).ok()?;
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn uio_map(dir: &Path, index: usize) -> Result<PhysRange, String> {
    let map = dir.join(format!("maps/map{index}"));
    let addr = read_trimmed(&map.join("addr")).and_then(|t| parse_hex(&t));
    let size = read_trimmed(&map.join("size")).and_then(|t| parse_hex(&t));
    match (addr, size) {
        (Some(addr), Some(size)) => Ok(PhysRange { addr, size }),
        _ => Err(format!(
            "{} has no map{index} (a channel's UIO device has two: map0 the shared memory, \
             map1 the doorbell page)",
            dir.display()
        )),
    }
}

/// Names of all UIO devices (for messages).
pub fn uio_names(root: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(root.join("sys/class/uio")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = read_trimmed(&e.path().join("name"))?;
            Some(format!("{} ({name})", e.file_name().to_string_lossy()))
        })
        .collect();
    names.sort();
    names
}

/// The UIO device named `name`, if any.
pub fn find_uio(root: &Path, name: &str) -> Result<Option<UioDevice>, String> {
    let Ok(entries) = fs::read_dir(root.join("sys/class/uio")) else {
        return Ok(None);
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        if read_trimmed(&dir.join("name")).as_deref() != Some(name) {
            continue;
        }
        let id = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return Ok(Some(UioDevice {
            dev: root.join("dev").join(&id),
            shm: uio_map(&dir, 0)?,
            doorbell: uio_map(&dir, 1)?,
            endpoint: read_be32(&dir.join("device/of_node").join(ENDPOINT_PROPERTY)),
            id,
        }));
    }
    Ok(None)
}

/// `/proc/device-tree` below `root`.
fn dt_root(root: &Path) -> PathBuf {
    root.join("proc/device-tree")
}

fn is_channel_node(dir: &Path) -> bool {
    fs::read(dir.join("compatible"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|s| s == COMPATIBLE.as_bytes()))
}

/// Names of all channel nodes in the device tree (for messages).
pub fn dt_names(root: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dt_root(root)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| is_channel_node(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Decodes `reg` with the root's cell counts.
fn decode_reg(reg: &[u8], address_cells: usize, size_cells: usize) -> Vec<PhysRange> {
    let cells: Vec<u64> = reg
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let per = address_cells + size_cells;
    if per == 0 {
        return Vec::new();
    }
    cells
        .chunks_exact(per)
        .map(|e| {
            let fold = |cs: &[u64]| cs.iter().fold(0u64, |acc, &c| acc << 32 | c);
            PhysRange {
                addr: fold(&e[..address_cells]),
                size: fold(&e[address_cells..]),
            }
        })
        .collect()
}

/// The device-tree node of channel `name` (a direct child of `/`, compatible
/// `bulkhead,channel`, node name `name` or `name@...`), if any.
pub fn find_dt(root: &Path, name: &str) -> Result<Option<DtChannel>, String> {
    let base = dt_root(root);
    let Ok(entries) = fs::read_dir(&base) else {
        return Ok(None);
    };
    let address_cells = read_be32(&base.join("#address-cells")).unwrap_or(2) as usize;
    let size_cells = read_be32(&base.join("#size-cells")).unwrap_or(1) as usize;
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let file = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if file.split('@').next() != Some(name) || !is_channel_node(&dir) {
            continue;
        }
        let reg = fs::read(dir.join("reg")).unwrap_or_default();
        let ranges = decode_reg(&reg, address_cells, size_cells);
        let [shm, doorbell, ..] = ranges[..] else {
            return Err(format!(
                "device-tree node {} has {} reg entries; a channel has two: the shared memory, \
                 then the doorbell page",
                dir.display(),
                ranges.len()
            ));
        };
        let access = fs::read(dir.join(ACCESS_PROPERTY)).ok().map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .to_string()
        });
        return Ok(Some(DtChannel {
            endpoint: read_be32(&dir.join(ENDPOINT_PROPERTY)),
            node: dir,
            shm,
            doorbell,
            access,
        }));
    }
    Ok(None)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A scratch directory below the system's temporary directory, removed on drop.
    pub struct Scratch(pub PathBuf);

    impl Scratch {
        pub fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("bulkhead-ipc-demo-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub fn write(&self, rel: &str, contents: &[u8]) {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn be(cells: &[u32]) -> Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    #[test]
    fn finds_the_uio_device_by_node_name() {
        let s = Scratch::new("uio");
        s.write("sys/class/uio/uio0/name", b"virtio-thing\n");
        s.write("sys/class/uio/uio1/name", b"ipc0\n");
        s.write("sys/class/uio/uio1/maps/map0/addr", b"0x0000000050000000\n");
        s.write("sys/class/uio/uio1/maps/map0/size", b"0x0000000000010000\n");
        s.write("sys/class/uio/uio1/maps/map1/addr", b"0x50010000\n");
        s.write("sys/class/uio/uio1/maps/map1/size", b"0x1000\n");
        s.write(
            "sys/class/uio/uio1/device/of_node/bulkhead,endpoint",
            &be(&[1]),
        );
        let dev = find_uio(&s.0, "ipc0").unwrap().unwrap();
        assert_eq!(dev.id, "uio1");
        assert_eq!(dev.dev, s.0.join("dev/uio1"));
        assert_eq!(
            dev.shm,
            PhysRange {
                addr: 0x5000_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(
            dev.doorbell,
            PhysRange {
                addr: 0x5001_0000,
                size: 0x1000
            }
        );
        assert_eq!(dev.endpoint, Some(1));
        assert_eq!(find_uio(&s.0, "ipc9").unwrap(), None);
        assert_eq!(uio_names(&s.0), ["uio0 (virtio-thing)", "uio1 (ipc0)"]);
        // A device with the right name but one map is refused with a reason.
        s.write("sys/class/uio/uio2/name", b"half\n");
        s.write("sys/class/uio/uio2/maps/map0/addr", b"0x1000\n");
        s.write("sys/class/uio/uio2/maps/map0/size", b"0x1000\n");
        assert!(find_uio(&s.0, "half").unwrap_err().contains("no map1"));
    }

    #[test]
    fn finds_the_device_tree_node() {
        let s = Scratch::new("dt");
        s.write("proc/device-tree/#address-cells", &be(&[2]));
        s.write("proc/device-tree/#size-cells", &be(&[2]));
        s.write(
            "proc/device-tree/ipc0@50000000/compatible",
            b"bulkhead,channel\0generic-uio\0",
        );
        s.write(
            "proc/device-tree/ipc0@50000000/reg",
            &be(&[0, 0x5000_0000, 0, 0x1_0000, 0, 0x5001_0000, 0, 0x1000]),
        );
        s.write(
            "proc/device-tree/ipc0@50000000/bulkhead,endpoint",
            &be(&[0]),
        );
        s.write(
            "proc/device-tree/ipc0@50000000/bulkhead,access",
            b"read-write\0",
        );
        s.write(
            "proc/device-tree/ipc1@60000000/compatible",
            b"something-else\0",
        );
        let ch = find_dt(&s.0, "ipc0").unwrap().unwrap();
        assert_eq!(
            ch.shm,
            PhysRange {
                addr: 0x5000_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(
            ch.doorbell,
            PhysRange {
                addr: 0x5001_0000,
                size: 0x1000
            }
        );
        assert_eq!(ch.endpoint, Some(0));
        assert_eq!(ch.access.as_deref(), Some("read-write"));
        assert_eq!(find_dt(&s.0, "ipc1").unwrap(), None, "not a channel node");
        assert_eq!(dt_names(&s.0), ["ipc0@50000000"]);
        s.write("proc/device-tree/bad@0/compatible", b"bulkhead,channel\0");
        s.write(
            "proc/device-tree/bad@0/reg",
            &be(&[0, 0x5000_0000, 0, 0x1_0000]),
        );
        assert!(find_dt(&s.0, "bad").unwrap_err().contains("1 reg entries"));
    }
}
