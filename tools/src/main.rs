//! `bulkhead`: check and inspect board configs, and pack bootable images.
//!
//! ```text
//! bulkhead check <board.dts>...      # config, then every image and initrd; DMA warnings
//! bulkhead inspect <board.dts>
//! bulkhead pack --hypervisor <elf> --board <board.dts> [--image <name>=<file>]...
//!               [--initrd <name>=<file>]... -o <out>
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bulkhead_config::BoardConfig;
use bulkhead_tools::check::{board_dir, check_all, check_file, warnings, ImageSource, Role};
use bulkhead_tools::inspect;
use bulkhead_tools::pack::{pack_detailed, PackInput, PartitionBlobs};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bulkhead",
    version,
    about = "Bulkhead host tools: check, inspect and pack board configs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile and validate board configs and find every partition's image and initrd, as
    /// `cargo xtask build` would; exit 1 if any is refused. Warns about partitions that can reach
    /// all memory.
    Check {
        /// Board configs (.dts).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a board config as a table: CPUs, memory and devices of each partition.
    Inspect {
        /// Board config (.dts).
        file: PathBuf,
    },
    /// Pack the hypervisor and every partition's blobs into one bootable image.
    Pack {
        /// The hypervisor ELF.
        #[arg(long)]
        hypervisor: PathBuf,
        /// The board config (.dts).
        #[arg(long)]
        board: PathBuf,
        /// A partition's image (flat binary or ELF); defaults to the config's `image` if that
        /// is a file.
        #[arg(long = "image", value_name = "NAME=FILE", value_parser = parse_assignment)]
        images: Vec<(String, PathBuf)>,
        /// A partition's initrd; defaults to the config's `initrd` file.
        #[arg(long = "initrd", value_name = "NAME=FILE", value_parser = parse_assignment)]
        initrds: Vec<(String, PathBuf)>,
        /// Where to write the packed image.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

fn parse_assignment(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("expected <partition>=<file>, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files } => return check_cmd(&files),
        Command::Inspect { file } => inspect_cmd(&file),
        Command::Pack {
            hypervisor,
            board,
            images,
            initrds,
            output,
        } => pack_cmd(&hypervisor, &board, &images, &initrds, &output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_cmd(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match check_all(file) {
            Ok(config) => {
                let n = config.partitions.len();
                println!(
                    "ok: {} ({n} partition{})",
                    file.display(),
                    if n == 1 { "" } else { "s" }
                );
                for warning in warnings(&config) {
                    println!("warning: {}: {warning}", file.display());
                }
            }
            Err(err) => {
                failed = true;
                eprintln!("{err:#}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn inspect_cmd(file: &Path) -> Result<()> {
    let (config, _) = check_file(file)?;
    print!("{}", inspect::render(&config));
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Maps `name=file` arguments to partitions, refusing unknown and repeated names.
fn by_partition<'a>(
    config: &BoardConfig,
    args: &'a [(String, PathBuf)],
    flag: &str,
) -> Result<BTreeMap<&'a str, &'a Path>> {
    let mut map = BTreeMap::new();
    for (name, file) in args {
        if !config.partitions.iter().any(|p| &p.name == name) {
            let names: Vec<&str> = config.partitions.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "--{flag} {name}=...: no partition named {name} (partitions: {})",
                names.join(", ")
            );
        }
        if map.insert(name.as_str(), file.as_path()).is_some() {
            bail!("--{flag} given twice for partition {name}");
        }
    }
    Ok(map)
}

fn pack_cmd(
    hypervisor: &Path,
    board: &Path,
    images: &[(String, PathBuf)],
    initrds: &[(String, PathBuf)],
    output: &Path,
) -> Result<()> {
    let (config, board_dtb) = check_file(board)?;
    let images = by_partition(&config, images, "image")?;
    let initrds = by_partition(&config, initrds, "initrd")?;
    // A name the build would make (a guest crate, the Linux recipe) must be given as a file.
    let file_of = |role: Role, name: &str, partition: &str| -> Result<PathBuf> {
        let flag = role.property();
        match ImageSource::classify(name, role, board_dir(board)) {
            ImageSource::File(path) if path.is_file() => Ok(path),
            ImageSource::File(path) => bail!(
                "partition {partition}: {flag} \"{name}\" not found (no file {}): pass \
                 --{flag} {partition}=<file>",
                path.display()
            ),
            ImageSource::Crate(_) => bail!(
                "partition {partition}: {flag} \"{name}\" is a guest crate: build it and pass \
                 --{flag} {partition}=<elf>"
            ),
            ImageSource::LinuxRecipe(_) => bail!(
                "partition {partition}: {flag} \"{name}\" is the Linux recipe, which `cargo \
                 xtask build` prepares: pass --{flag} {partition}=<file>"
            ),
        }
    };

    let mut partitions = Vec::with_capacity(config.partitions.len());
    for p in &config.partitions {
        let image = match images.get(p.name.as_str()) {
            Some(file) => file.to_path_buf(),
            None => file_of(Role::Image, &p.image, &p.name)?,
        };
        let initrd = match (&p.initrd, initrds.get(p.name.as_str())) {
            (None, Some(_)) => bail!(
                "--initrd {}=...: the partition has no initrd in the board config",
                p.name
            ),
            (None, None) => None,
            (Some(_), Some(file)) => Some(file.to_path_buf()),
            (Some(name), None) => Some(file_of(Role::Initrd, name, &p.name)?),
        };
        let image = read(&image)?;
        let initrd = initrd.as_deref().map(read).transpose()?;
        partitions.push(PartitionBlobs { image, initrd });
    }

    let hypervisor_elf = read(hypervisor)?;
    let packed = pack_detailed(&PackInput {
        hypervisor_elf: &hypervisor_elf,
        board_dtb: &board_dtb,
        config: &config,
        partitions,
    })
    .with_context(|| format!("cannot pack {}", board.display()))?;
    std::fs::write(output, &packed.bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "wrote {}: {}",
        output.display(),
        packed.summary(&config).trim_end()
    );
    Ok(())
}
