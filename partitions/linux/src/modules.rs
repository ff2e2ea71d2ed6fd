//! Picking the kernel modules the initramfs must load, straight from an unpacked kernel
//! package: Debian's `linux-image-*` package ships no `modules.dep` (depmod writes it at
//! install time), so dependencies are read from each module's own `.modinfo` ELF section
//! (`depends=` and `softdep=pre:`), and `modules.builtin` tells which are built in.
//!
//! Modules compressed with xz (`.ko.xz`) or gzip (`.ko.gz`) are decompressed here on the host
//! so that busybox `insmod` only ever sees plain `.ko` files.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A module to put into the initramfs, in load order.
#[derive(Debug, Clone)]
pub struct Module {
    /// Module name (`-` normalised to `_`), e.g. `virtio_blk`.
    pub name: String,
    /// Uncompressed `.ko` contents.
    pub data: Vec<u8>,
}

/// The modules of one kernel release (`lib/modules/<release>`).
pub struct ModuleTree {
    builtin: HashSet<String>,
    files: HashMap<String, PathBuf>,
}

/// Normalises a module name the way the kernel does (`-` and `_` are equivalent).
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// Module name of a file name like `virtio-blk.ko.xz`, or `None` if it isn't a module.
fn module_name(file_name: &str) -> Option<String> {
    [".ko", ".ko.xz", ".ko.gz", ".ko.zst"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .map(normalize)
}

fn walk(dir: &Path, files: &mut HashMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else if let Some(name) = entry.file_name().to_str().and_then(module_name) {
            files.entry(name).or_insert(path);
        }
    }
    Ok(())
}

/// The `key=value` pairs of a module's `.modinfo` section.
pub fn modinfo(ko: &[u8]) -> Result<Vec<(String, String)>> {
    let elf = object::File::parse(ko).context("parsing module ELF")?;
    let Some(section) = elf.section_by_name(".modinfo") else {
        return Ok(Vec::new());
    };
    let data = section.data().context("reading .modinfo")?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = std::str::from_utf8(kv).ok()?;
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// Reads a module file, decompressing `.ko.xz` / `.ko.gz`.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        lzma_rs::xz_decompress(&mut &raw[..], &mut out)
            .map_err(|e| anyhow::anyhow!("xz-decompressing {name}: {e:?}"))?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("gunzipping {name}"))?;
    } else if name.ends_with(".zst") {
        bail!("{name}: zstd-compressed modules are not supported");
    } else {
        out = raw;
    }
    Ok(out)
}

/// Module names a `softdep=pre: ...` token may refer to. Softdeps name aliases such as
/// `crypto-crc32c`; without `modules.alias` the generic implementation is guessed.
fn softdep_candidates(token: &str) -> Vec<String> {
    let base = normalize(token.strip_prefix("crypto-").unwrap_or(token));
    vec![base.clone(), format!("{base}_generic")]
}

impl ModuleTree {
    /// Indexes `lib/modules/<release>`.
    pub fn open(root: &Path) -> Result<Self> {
        let builtin = match fs::read_to_string(root.join("modules.builtin")) {
            Ok(text) => text
                .lines()
                .filter_map(|l| module_name(l.rsplit('/').next().unwrap_or(l)))
                .collect(),
            Err(_) => HashSet::new(),
        };
        let mut files = HashMap::new();
        walk(root, &mut files)?;
        Ok(Self { builtin, files })
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// Whether `name` is built in or shipped as a module.
    pub fn is_available(&self, name: &str) -> bool {
        let name = normalize(name);
        self.builtin.contains(&name) || self.files.contains_key(&name)
    }

    /// The loadable modules needed for `wanted`, dependencies first. Built-in modules are
    /// skipped; a wanted module that is neither built in nor shipped is an error.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<Module>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for name in wanted {
            self.visit(&normalize(name), true, &mut seen, &mut out)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        required: bool,
        seen: &mut HashSet<String>,
        out: &mut Vec<Module>,
    ) -> Result<bool> {
        if self.builtin.contains(name) || !seen.insert(name.to_string()) {
            return Ok(true);
        }
        let Some(path) = self.files.get(name) else {
            if required {
                bail!("kernel module {name} is neither built in nor shipped with the kernel");
            }
            seen.remove(name);
            return Ok(false);
        };
        let data = read_module(path)?;
        for (key, value) in modinfo(&data).with_context(|| format!("module {name}"))? {
            match key.as_str() {
                "depends" => {
                    for dep in value.split(',').filter(|d| !d.is_empty()) {
                        self.visit(&normalize(dep), true, seen, out)?;
                    }
                }
                "softdep" => {
                    // Format: "pre: a b post: c"; only "pre" modules matter before use.
                    let mut pre = false;
                    for tok in value.split_whitespace() {
                        match tok {
                            "pre:" => pre = true,
                            "post:" => pre = false,
                            t if pre => {
                                for cand in softdep_candidates(t) {
                                    if self.visit(&cand, false, seen, out)? {
                                        break;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(Module {
            name: name.to_string(),
            data,
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            module_name("virtio-blk.ko.xz").as_deref(),
            Some("virtio_blk")
        );
        assert_eq!(module_name("ext4.ko").as_deref(), Some("ext4"));
        assert_eq!(module_name("modules.dep"), None);
        assert_eq!(
            softdep_candidates("crypto-crc32c"),
            ["crc32c", "crc32c_generic"]
        );
    }

    #[test]
    fn xz_modules_are_decompressed() {
        let dir = std::env::temp_dir().join(format!("bulkhead-mod-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let payload = b"\x7fELF pretend module".repeat(50);
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &payload[..], &mut xz).unwrap();
        let path = dir.join("foo.ko.xz");
        fs::write(&path, &xz).unwrap();
        assert_eq!(read_module(&path).unwrap(), payload);
        fs::remove_dir_all(&dir).unwrap();
    }
}
