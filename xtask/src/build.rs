//! `cargo xtask build` and `cargo xtask check`: compile and check a board config, build the
//! hypervisor and every guest crate the board uses (one cargo invocation), fetch the Linux
//! recipe's kernel and initramfs if a partition uses them, pack everything into
//! `build/<board>/bulkhead.img` with the host tools of `bulkhead_tools`, and make the demo disk
//! the board's `qemu` node asks for.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{anyhow, bail, Context, Result};
use bulkhead_config::BoardConfig;
use bulkhead_tools::check::{resolve_sources, warnings, PartitionSources};
use bulkhead_tools::pack::{PackInput, PartitionBlobs};

use crate::board::{
    display_path, release_dir, repo_root, target_release_dir, Board, ImageSource, Role, SourceFile,
    HYPERVISOR_TARGET, TARGET,
};
use crate::platform::{self, LinuxInitrd, Platform};
use crate::qemu_node;

/// The hypervisor's package and binary name.
pub const HYPERVISOR: &str = "bulkhead-hypervisor";

/// A packed board, ready to boot.
pub struct Built {
    pub board: Board,
    pub config: BoardConfig,
    /// `build/<board>/bulkhead.img`.
    pub image: PathBuf,
    /// The hypervisor ELF (with symbols).
    pub hypervisor_elf: PathBuf,
    /// The ELF of each guest crate the board runs, once each, in partition order.
    pub guest_elfs: Vec<PathBuf>,
    /// Extra QEMU arguments from the board's `qemu` node ([`qemu_node`]), `{disk}` replaced.
    pub qemu_args: Vec<String>,
    /// The platform the board is written for (from its root `compatible`), if xtask knows it.
    pub platform: Option<&'static Platform>,
    /// Where boot loaders put `image` on the board (RAM base + `text_offset`).
    pub load_address: u64,
    /// For a board whose platform boots from an SD card, the card with `image` on it
    /// ([`crate::image`]), which `run` gives QEMU as its SD card.
    pub card: Option<crate::image::Made>,
    /// Each partition's generated device tree, as packed, in partition order.
    pub guest_dtbs: Vec<Vec<u8>>,
}

/// Builds the board named `board_arg` (see [`Board::resolve`]). With `unchecked`, the board
/// config is only parsed, not validated, and packed as it is.
pub fn build(board_arg: &str, unchecked: bool) -> Result<Built> {
    let board = Board::resolve(board_arg)?;
    let (config, board_dtb) = load_config(&board, unchecked)?;
    let qemu = qemu_node::parse(&board_dtb)
        .with_context(|| format!("{}: bad qemu node", board.dts.display()))?;

    // Missing image files are reported before the (slower) target build, the way
    // `bulkhead check` reports them.
    let sources = resolve_sources(&config, &board.dts, Some(&repo_root()))?;
    let mut guest_crates: Vec<String> = Vec::new();
    for source in &sources {
        if let ImageSource::Crate(name) = &source.image {
            if !guest_crates.contains(name) {
                guest_crates.push(name.clone());
            }
        }
    }

    // So is a Linux recipe that cannot be prepared.
    prepare_recipe(&sources)?;
    cargo_build_target(&guest_crates)?;

    let hypervisor_elf = release_dir(HYPERVISOR_TARGET).join(HYPERVISOR);
    let hypervisor_bytes = read(&hypervisor_elf)?;
    let platform = platform::of_dtb(&board_dtb).ok();
    let native_initrd = platform.is_some_and(|p| p.linux_initrd == LinuxInitrd::Native);
    let mut partitions = Vec::with_capacity(config.partitions.len());
    for source in &sources {
        let image = read(&source.image.path()?)?;
        let initrd = match &source.initrd {
            // The platform's own Linux initramfs, with the modules its devices need.
            Some(ImageSource::LinuxRecipe(Role::Initrd)) if native_initrd => {
                Some(crate::native_linux::initramfs()?)
            }
            Some(initrd) => Some(read(&initrd.path()?)?),
            None => None,
        };
        partitions.push(PartitionBlobs { image, initrd });
    }
    let packed = bulkhead_tools::pack::pack_detailed(&PackInput {
        hypervisor_elf: &hypervisor_bytes,
        board_dtb: &board_dtb,
        config: &config,
        partitions,
    })
    .with_context(|| format!("cannot pack board {}", board.name))?;
    let guest_dtbs = guest_dtbs(&packed, config.partitions.len())?;
    let (load_address, packed) = (packed.load_address, packed.bytes);

    let out_dir = board.out_dir();
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let image = out_dir.join("bulkhead.img");
    std::fs::write(&image, &packed).with_context(|| format!("cannot write {}", image.display()))?;
    println!(
        "xtask: built {} ({} bytes, {:.1} MiB; board {}, {}{})",
        display_path(&image),
        packed.len(),
        packed.len() as f64 / (1024.0 * 1024.0),
        board.name,
        partitions_text(&config),
        if unchecked {
            ", config NOT checked"
        } else {
            ""
        },
    );

    let qemu_args = match &qemu {
        Some(node) if node.uses_disk() => {
            let disk = out_dir.join(qemu_node::DISK_IMAGE);
            bulkhead_linux_guest::make_disk_image(&disk, &node.disk_file, &node.disk_contents)
                .with_context(|| format!("cannot make the demo disk {}", display_path(&disk)))?;
            node.args_with_disk(&disk)
        }
        Some(node) => node.args.clone(),
        None => Vec::new(),
    };

    let guest_elfs = guest_crates
        .iter()
        .map(|name| target_release_dir().join(name))
        .collect();
    let card = match platform.filter(|p| p.sd_card.is_some()) {
        Some(platform) => Some(crate::image::write_card(
            &board.name,
            platform,
            &out_dir,
            packed.clone(),
            false,
        )?),
        None => None,
    };
    Ok(Built {
        board,
        config,
        image,
        hypervisor_elf,
        guest_elfs,
        qemu_args,
        platform,
        load_address,
        card,
        guest_dtbs,
    })
}

/// The guest device trees in a packed image's bundle, in partition order.
fn guest_dtbs(packed: &bulkhead_tools::pack::Packed, partitions: usize) -> Result<Vec<Vec<u8>>> {
    let bundle = packed
        .bytes
        .get(packed.bundle_offset as usize..)
        .ok_or_else(|| anyhow!("the packed image is shorter than its bundle offset"))?;
    let bundle = bulkhead_bundle::Bundle::parse(bundle)
        .map_err(|e| anyhow!("cannot read back the packed bundle: {e}"))?;
    (0..partitions)
        .map(|n| {
            let n = u32::try_from(n)?;
            Ok(bundle
                .find(bulkhead_bundle::Kind::GuestDtb, n)
                .ok_or_else(|| anyhow!("the bundle has no device tree for partition {n}"))?
                .data
                .to_vec())
        })
        .collect()
}

/// Compiles the board's DTS and checks it (or, with `unchecked`, only parses it).
fn load_config(board: &Board, unchecked: bool) -> Result<(BoardConfig, Vec<u8>)> {
    if !unchecked {
        return bulkhead_tools::check::check_file(&board.dts);
    }
    let dtb = bulkhead_tools::dts::compile(&board.dts)?;
    let config = bulkhead_config::parse::parse(&dtb).map_err(|err| {
        anyhow!(
            "{}: {err} (even --unchecked needs a config that parses)",
            board.dts.display()
        )
    })?;
    Ok((config, dtb))
}

/// Prepares the Linux recipe's kernel and initramfs if a partition uses them.
fn prepare_recipe(sources: &[PartitionSources]) -> Result<()> {
    let files = sources
        .iter()
        .flat_map(|s| std::iter::once(&s.image).chain(&s.initrd));
    for source in files {
        if matches!(source, ImageSource::LinuxRecipe(_)) {
            source.path()?;
        }
    }
    Ok(())
}

/// `cargo build --release` of the hypervisor (for `HYPERVISOR_TARGET`) and of `guests` (for
/// `TARGET`).
fn cargo_build_target(guests: &[String]) -> Result<()> {
    let mut builds = vec![(HYPERVISOR_TARGET, vec![HYPERVISOR.to_owned()])];
    if !guests.is_empty() {
        builds.push((TARGET, guests.to_vec()));
    }
    for (target, packages) in builds {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "--target", target]);
        for package in &packages {
            cmd.args(["-p", package, "--bin", package]);
        }
        let status = cmd
            .status()
            .context("cannot run cargo to build the target binaries")?;
        if !status.success() {
            bail!(
                "building {} for {target} failed ({status})",
                packages.join(", ")
            );
        }
    }
    Ok(())
}

/// A `cargo` command (the one running us, if known) in the repository root.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root());
    cmd
}

/// "1 partition", "2 partitions".
fn partitions_text(config: &BoardConfig) -> String {
    match config.partitions.len() {
        1 => "1 partition".to_owned(),
        n => format!("{n} partitions"),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", display_path(path)))
}

/// `cargo xtask check`: checks each board config and the images and initrds it names (as
/// `build` does, without building), prints the verdict and any warning for each and fails if
/// any is refused.
pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    for file in files {
        let checked = bulkhead_tools::check::check_file(file).and_then(|(config, _)| {
            resolve_sources(&config, file, Some(&repo_root()))?;
            Ok(config)
        });
        match checked {
            Ok(config) => {
                println!("{}: ok ({})", file.display(), partitions_text(&config));
                for warning in warnings(&config) {
                    println!("{}: warning: {warning}", file.display());
                }
            }
            Err(err) => {
                failed += 1;
                let message = format!("{err:#}");
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if message.contains(&name) {
                    eprintln!("{message}");
                } else {
                    eprintln!("{}: {message}", file.display());
                }
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask: {failed} of {} board configs refused", files.len());
        ExitCode::FAILURE
    }
}
