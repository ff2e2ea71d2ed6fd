//! The optional `qemu` node of a board config: QEMU extras for `run` and `bench`.
//!
//! A board DTS may have a root-level node
//!
//! ```dts
//! qemu {
//!     compatible = "bulkhead,qemu";
//!     args = "-drive", "if=none,file={disk},format=raw,id=d0",
//!            "-device", "virtio-blk-device,drive=d0";
//!     disk-file = "hello.txt";          /* optional */
//!     disk-contents = "hello\n";        /* optional */
//! };
//! ```
//!
//! `args` are appended to QEMU's command line, with every `{disk}` replaced by the path of a
//! small ext2 disk image xtask makes at `build/<board>/disk.img` holding one file
//! (`disk-file`, `disk-contents`; see `bulkhead_linux_guest::make_disk_image`). The node has no
//! `reg`, so neither the hypervisor nor the config parser treats it as a device; they ignore it.
//! It is read here from the compiled DTB, the same bytes that get packed.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// The `compatible` string that marks the node.
pub const COMPATIBLE: &str = "bulkhead,qemu";
/// What `args` entries use for the demo disk's path.
pub const DISK_PLACEHOLDER: &str = "{disk}";
/// The disk's file name without `disk-file`.
pub const DEFAULT_DISK_FILE: &str = "hello.txt";
/// The disk file's contents without `disk-contents`.
pub const DEFAULT_DISK_CONTENTS: &str = "hello from the Bulkhead demo disk\n";
/// The demo disk's file name in `build/<board>/`.
pub const DISK_IMAGE: &str = "disk.img";

/// What the board's `qemu` node asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuNode {
    /// Extra QEMU arguments, `{disk}` not yet substituted.
    pub args: Vec<String>,
    /// Name of the one file on the demo disk.
    pub disk_file: String,
    /// Its contents.
    pub disk_contents: String,
}

impl QemuNode {
    /// Whether an argument refers to the demo disk (so it must be made).
    pub fn uses_disk(&self) -> bool {
        self.args.iter().any(|a| a.contains(DISK_PLACEHOLDER))
    }

    /// The arguments with `{disk}` replaced by `disk`.
    pub fn args_with_disk(&self, disk: &Path) -> Vec<String> {
        let disk = disk.to_string_lossy();
        self.args
            .iter()
            .map(|a| a.replace(DISK_PLACEHOLDER, &disk))
            .collect()
    }
}

/// Finds the root-level node with `compatible = "bulkhead,qemu"` in a board DTB. `None` when
/// there is none; an error for two such nodes or malformed properties.
pub fn parse(dtb: &[u8]) -> Result<Option<QemuNode>> {
    let fdt = fdt::Fdt::new(dtb).map_err(|e| anyhow!("cannot read the board DTB: {e:?}"))?;
    let root = fdt
        .find_node("/")
        .ok_or_else(|| anyhow!("the board DTB has no root node"))?;
    let mut found = None;
    for node in root.children() {
        let is_qemu = node
            .compatible()
            .is_some_and(|c| c.all().any(|s| s == COMPATIBLE));
        if !is_qemu {
            continue;
        }
        if found.is_some() {
            bail!("more than one root node with compatible = \"{COMPATIBLE}\"");
        }
        let what = |prop: &str| format!("node /{}: property {prop}", node.name);
        let args = match node.property("args") {
            Some(p) => string_list(p.value).with_context(|| what("args"))?,
            None => Vec::new(),
        };
        let string = |prop: &str, default: &str| -> Result<String> {
            match node.property(prop) {
                Some(p) => match string_list(p.value).with_context(|| what(prop))?.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Err(anyhow!("{}: expected one string", what(prop))),
                },
                None => Ok(default.to_owned()),
            }
        };
        found = Some(QemuNode {
            args,
            disk_file: string("disk-file", DEFAULT_DISK_FILE)?,
            disk_contents: string("disk-contents", DEFAULT_DISK_CONTENTS)?,
        });
    }
    Ok(found)
}

/// Decodes a device-tree string list: NUL-terminated UTF-8 strings back to back.
fn string_list(value: &[u8]) -> Result<Vec<String>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = value.strip_suffix(&[0]) else {
        bail!("not a NUL-terminated string list");
    };
    body.split(|&b| b == 0)
        .map(|s| {
            std::str::from_utf8(s)
                .map(str::to_owned)
                .map_err(|_| anyhow!("not UTF-8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(dts: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("xtask-qemu-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.dts", dts.len()));
        std::fs::write(&path, dts).unwrap();
        let out = std::process::Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb"])
            .arg(&path)
            .output()
            .expect("dtc runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn string_lists_decode() {
        assert_eq!(string_list(b"a\0bc\0").unwrap(), ["a", "bc"]);
        assert_eq!(string_list(b"\0").unwrap(), [""]);
        assert!(string_list(b"").unwrap().is_empty());
        assert!(string_list(b"abc").is_err());
        assert!(string_list(b"\xff\0").is_err());
    }

    #[test]
    fn node_is_read_with_defaults() {
        let dtb = compile(
            r#"/dts-v1/; / { qemu { compatible = "bulkhead,qemu";
                args = "-drive", "if=none,file={disk},format=raw,id=d0"; }; };"#,
        );
        let node = parse(&dtb).unwrap().unwrap();
        assert_eq!(
            node.args,
            ["-drive", "if=none,file={disk},format=raw,id=d0"]
        );
        assert_eq!(node.disk_file, DEFAULT_DISK_FILE);
        assert_eq!(node.disk_contents, DEFAULT_DISK_CONTENTS);
        assert!(node.uses_disk());
        assert_eq!(
            node.args_with_disk(Path::new("/b/disk.img"))[1],
            "if=none,file=/b/disk.img,format=raw,id=d0"
        );
    }

    #[test]
    fn disk_file_and_contents_are_read() {
        let dtb = compile(
            r#"/dts-v1/; / { extras { compatible = "bulkhead,qemu"; args = "-s";
                disk-file = "a.txt"; disk-contents = "x\n"; }; };"#,
        );
        let node = parse(&dtb).unwrap().unwrap();
        assert_eq!(node.args, ["-s"]);
        assert!(!node.uses_disk());
        assert_eq!(
            (node.disk_file.as_str(), node.disk_contents.as_str()),
            ("a.txt", "x\n")
        );
    }

    #[test]
    fn no_node_is_none_and_two_are_refused() {
        assert_eq!(parse(&compile("/dts-v1/; / { a { }; };")).unwrap(), None);
        let two = compile(
            r#"/dts-v1/; / { a { compatible = "bulkhead,qemu"; };
                b { compatible = "bulkhead,qemu"; }; };"#,
        );
        assert!(parse(&two).is_err());
    }
}
