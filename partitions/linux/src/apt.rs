//! Getting Debian arm64 packages onto the host with the ordinary Debian tools: enabling the
//! `arm64` foreign architecture, resolving `linux-image-arm64` to its concrete kernel
//! package with `apt-cache`, `apt-get download` and `dpkg -x`.
//!
//! Only `ensure_arm64` may need root (`dpkg --add-architecture`, `apt-get update`); when
//! it does and the caller isn't root, it fails with the exact commands to run.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian architecture of the packages.
pub const ARCH: &str = "arm64";
/// The metapackage that depends on the current arm64 kernel.
pub const KERNEL_META: &str = "linux-image-arm64";
/// Statically linked busybox.
pub const BUSYBOX: &str = "busybox-static";

/// Runs a command, returning its stdout; fails with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Candidate version of `pkg` (e.g. `busybox-static:arm64`) per `apt-cache policy`.
pub fn candidate_version(pkg: &str) -> Result<Option<String>> {
    let out = run(Command::new("apt-cache").args(["policy", pkg]))?;
    Ok(parse_candidate(&out))
}

fn parse_candidate(policy: &str) -> Option<String> {
    policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "(none)")
        .map(str::to_string)
}

/// The concrete kernel package a metapackage depends on, from `apt-cache depends` output.
fn parse_kernel_dependency(depends: &str) -> Option<String> {
    depends.lines().find_map(|l| {
        let dep = l
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends:")?
            .trim();
        let name = dep.split(':').next()?.trim();
        (name.starts_with("linux-image-") && !name.starts_with('<')).then(|| name.to_string())
    })
}

/// Makes sure `arm64` packages can be resolved: the architecture is enabled and the package
/// lists know the kernel metapackage. Runs `dpkg --add-architecture` / `apt-get update` when
/// root; otherwise fails with the commands to run.
pub fn ensure_arm64() -> Result<()> {
    let native = run(Command::new("dpkg").arg("--print-architecture"))?;
    let foreign = run(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let enabled = native.trim() == ARCH || foreign.split_whitespace().any(|a| a == ARCH);
    let meta = format!("{KERNEL_META}:{ARCH}");
    if enabled && candidate_version(&meta)?.is_some() {
        return Ok(());
    }
    let mut commands = Vec::new();
    if !enabled {
        commands.push(vec!["dpkg", "--add-architecture", ARCH]);
    }
    commands.push(vec!["apt-get", "update"]);
    if !is_root() {
        let text: Vec<String> = commands
            .iter()
            .map(|c| format!("  sudo {}", c.join(" ")))
            .collect();
        bail!(
            "Debian {ARCH} packages are not available to apt; run as root:\n{}",
            text.join("\n")
        );
    }
    for c in &commands {
        eprintln!("bulkhead-linux-guest: running {}", c.join(" "));
        run(Command::new(c[0])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(&c[1..]))?;
    }
    if candidate_version(&meta)?.is_none() {
        bail!("apt still knows no {meta} after apt-get update; check /etc/apt/sources.list*");
    }
    Ok(())
}

/// The concrete kernel image package (e.g. `linux-image-6.1.0-56-arm64`) and its version.
pub fn resolve_kernel() -> Result<(String, String)> {
    let meta = format!("{KERNEL_META}:{ARCH}");
    let depends = run(Command::new("apt-cache").args(["depends", &meta]))?;
    let pkg = parse_kernel_dependency(&depends)
        .with_context(|| format!("no linux-image-* dependency of {meta}: {depends}"))?;
    let version = candidate_version(&format!("{pkg}:{ARCH}"))?
        .with_context(|| format!("no candidate version of {pkg}:{ARCH}"))?;
    Ok((pkg, version))
}

/// `apt-get download`s `pkg:arm64=version` into `dir` (unless already there) and returns
/// the `.deb`.
pub fn download(pkg: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let find = || -> Result<Option<PathBuf>> {
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{pkg}_")) && name.ends_with(&format!("_{ARCH}.deb")) {
                return Ok(Some(dir.join(name)));
            }
        }
        Ok(None)
    };
    if let Some(deb) = find()? {
        return Ok(deb);
    }
    eprintln!("bulkhead-linux-guest: apt-get download {pkg}:{ARCH}={version}");
    run(Command::new("apt-get")
        .args(["download", "-q", &format!("{pkg}:{ARCH}={version}")])
        .current_dir(dir))?;
    find()?.with_context(|| format!("apt-get download left no {pkg} .deb in {}", dir.display()))
}

/// `dpkg -x deb dir`.
pub fn extract(deb: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    run(Command::new("dpkg").arg("-x").arg(deb).arg(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_output() {
        let depends = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n";
        assert_eq!(
            parse_kernel_dependency(depends).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        let unsigned = "linux-image-arm64\n |Depends: linux-image-6.12.9-arm64-unsigned\n";
        assert_eq!(
            parse_kernel_dependency(unsigned).as_deref(),
            Some("linux-image-6.12.9-arm64-unsigned")
        );
        let policy =
            "busybox-static:arm64:\n  Installed: (none)\n  Candidate: 1:1.35.0-4+deb12u1+b1\n";
        assert_eq!(
            parse_candidate(policy).as_deref(),
            Some("1:1.35.0-4+deb12u1+b1")
        );
        assert_eq!(parse_candidate("foo:\n  Candidate: (none)\n"), None);
        assert_eq!(parse_candidate(""), None);
    }
}
