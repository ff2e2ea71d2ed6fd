//! Packing: the hypervisor binary followed by the bundle of everything it boots, as one file a
//! boot loader can load like an arm64 Linux `Image`.
//!
//! The hypervisor ELF is flattened; it starts with an arm64 Image header whose `image_size`
//! (set by the linker) is the offset of the end of `.bss`, 4 KiB aligned: the bundle goes
//! exactly there, so the hypervisor finds it at `__bundle_start`. The image is
//! position-independent: boot loaders put it at the board's RAM base (rounded down to 2 MiB)
//! plus the header's `text_offset` ([`load_address`]), which the hypervisor's memory must hold. The binary is zero-padded up
//! to that offset, the bundle ([`bulkhead_bundle`]) is appended, and `image_size` is rewritten
//! to the whole file's length (4 KiB aligned) so a boot loader reserves room for the bundle.
//!
//! The bundle holds the board DTB, then for each partition in order its flat image, generated
//! device tree ([`crate::guest_dt`]) and initrd, each with its guest-physical load address.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};
use bulkhead_bundle::{Entry, Kind};
use bulkhead_config::{BoardConfig, GuestRange, HostPhysAddr, HostRange, Partition};

use crate::elf;
use crate::guest_dt::{self, size_str, GuestLayout};

/// Offset of `text_offset` (u64, little-endian) in an arm64 Image header.
pub const TEXT_OFFSET_OFFSET: usize = 8;
/// Offset of `image_size` (u64, little-endian) in an arm64 Image header.
pub const IMAGE_SIZE_OFFSET: usize = 16;
/// Offset of the magic in an arm64 Image header.
pub const MAGIC_OFFSET: usize = 56;
/// The arm64 Image header magic.
pub const MAGIC: [u8; 4] = *b"ARM\x64";
/// Size of the arm64 Image header.
pub const HEADER_SIZE: usize = 64;
/// Alignment of the bundle start and of the packed file's length.
pub const PAGE: u64 = 4096;

/// The blobs of one partition, in the board config's partition order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionBlobs {
    /// The image: a flat binary loaded at the partition's `load_address`, or an ELF (flattened
    /// here; it must be linked at the `load_address`).
    pub image: Vec<u8>,
    /// The initrd; present exactly when the partition's config names one.
    pub initrd: Option<Vec<u8>>,
}

/// Everything [`pack`] needs.
#[derive(Clone, Debug)]
pub struct PackInput<'a> {
    pub hypervisor_elf: &'a [u8],
    /// The compiled board config, as the hypervisor will parse it again.
    pub board_dtb: &'a [u8],
    pub config: &'a BoardConfig,
    pub partitions: Vec<PartitionBlobs>,
}

/// One blob placed in the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedBlob {
    pub kind: Kind,
    pub partition: u32,
    pub load: u64,
    pub size: u64,
}

/// A packed image and where everything went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    /// The bootable file.
    pub bytes: Vec<u8>,
    /// Physical address boot loaders put the file at on this board ([`load_address`]).
    pub load_address: u64,
    /// Length of the flat hypervisor binary (code and data).
    pub hypervisor_len: u64,
    /// Offset of the bundle in the file: the linker's `image_size` (end of `.bss`).
    pub bundle_offset: u64,
    /// Length of the bundle.
    pub bundle_len: u64,
    /// The bundle's blobs, in order.
    pub blobs: Vec<PackedBlob>,
    /// Each partition's guest layout, in partition order.
    pub layouts: Vec<GuestLayout>,
}

impl Packed {
    /// A few lines describing the packed file, for printing.
    pub fn summary(&self, config: &BoardConfig) -> String {
        let mut s = String::new();
        let total = self.bytes.len() as u64;
        let _ = writeln!(
            s,
            "{} bytes ({}), loaded at {:#x}: hypervisor {} bytes, bundle at offset {:#x}, {} bytes",
            total,
            mib(total),
            self.load_address,
            self.hypervisor_len,
            self.bundle_offset,
            self.bundle_len
        );
        for b in &self.blobs {
            let owner = match b.kind {
                Kind::BoardDtb => "board".to_string(),
                _ => config
                    .partitions
                    .get(b.partition as usize)
                    .map_or_else(|| format!("#{}", b.partition), |p| p.name.clone()),
            };
            let kind = match b.kind {
                Kind::BoardDtb => "board-dtb",
                Kind::Image => "image",
                Kind::GuestDtb => "guest-dtb",
                Kind::Initrd => "initrd",
            };
            let load = if b.kind == Kind::BoardDtb {
                "-".to_string()
            } else {
                format!("{:#x}", b.load)
            };
            let _ = writeln!(
                s,
                "  {owner:<16} {kind:<10} at {load:<12} {:>10} bytes",
                b.size
            );
        }
        s
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[off..off + 8]);
    u64::from_le_bytes(b)
}

/// Whether `bytes` start with an arm64 Image header (checks the magic only).
pub fn is_arm64_image(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_SIZE && bytes[MAGIC_OFFSET..MAGIC_OFFSET + 4] == MAGIC
}

/// Alignment of the RAM base boot loaders place an arm64 Image above.
pub const IMAGE_BASE_ALIGN: u64 = 2 * 1024 * 1024;

/// Where boot loaders put an arm64 Image with `text_offset` on `config`'s board: the lowest
/// RAM address rounded down to 2 MiB, plus `text_offset` (QEMU's `-kernel` loader, U-Boot's
/// `booti` and the Raspberry Pi firmware all do).
pub fn load_address(config: &BoardConfig, text_offset: u64) -> u64 {
    let ram_base = config
        .platform
        .ram
        .iter()
        .map(|r| r.base.raw())
        .min()
        .unwrap_or(0);
    (ram_base & !(IMAGE_BASE_ALIGN - 1)) + text_offset
}

/// Packs the hypervisor and the bundle into one bootable file.
pub fn pack(input: &PackInput) -> Result<Vec<u8>> {
    Ok(pack_detailed(input)?.bytes)
}

/// Like [`pack`], also reporting where everything went.
pub fn pack_detailed(input: &PackInput) -> Result<Packed> {
    let config = input.config;
    let hv = elf::flatten(input.hypervisor_elf).context("cannot flatten the hypervisor ELF")?;
    if !is_arm64_image(&hv.bytes) {
        bail!("the hypervisor binary does not start with an arm64 Image header (no \"ARM\\x64\" magic at offset {MAGIC_OFFSET})");
    }
    if hv.entry != hv.load_address {
        bail!(
            "the hypervisor's entry point {:#x} is not its first byte {:#x} (the Image header must come first)",
            hv.entry,
            hv.load_address
        );
    }
    let image_size = u64_at(&hv.bytes, IMAGE_SIZE_OFFSET);
    let hypervisor_len = hv.bytes.len() as u64;
    if image_size == 0 || !image_size.is_multiple_of(PAGE) {
        bail!("the hypervisor's Image header has image_size {image_size:#x}, expected a non-zero multiple of 4 KiB (the linker's __image_size)");
    }
    if hypervisor_len > image_size {
        bail!("the flat hypervisor binary ({hypervisor_len:#x} bytes) is longer than its image_size {image_size:#x}");
    }
    if input.partitions.len() != config.partitions.len() {
        bail!(
            "{} partition image(s) given for {} partition(s) in the board config",
            input.partitions.len(),
            config.partitions.len()
        );
    }

    // Prepare every partition's blobs first so they outlive the bundle entries.
    let mut images = Vec::with_capacity(config.partitions.len());
    let mut dtbs = Vec::with_capacity(config.partitions.len());
    let mut layouts = Vec::with_capacity(config.partitions.len());
    for (i, (p, blobs)) in config.partitions.iter().zip(&input.partitions).enumerate() {
        let (image, footprint) = prepare_image(p, &blobs.image)?;
        match (&p.initrd, &blobs.initrd) {
            (Some(name), None) => bail!(
                "partition {}: the config names initrd \"{name}\" but none was given",
                p.name
            ),
            (None, Some(_)) => bail!(
                "partition {}: an initrd was given but the config names none",
                p.name
            ),
            _ => {}
        }
        let layout = guest_dt::layout(p, footprint, blobs.initrd.as_ref().map(|d| d.len() as u64))?;
        let dtb = guest_dt::guest_dtb(config, Some(input.board_dtb), i, &layout)?;
        let slot = guest_dt::dtb_slot(p)?;
        if dtb.len() as u64 > slot.size {
            bail!(
                "partition {}: its device tree ({} bytes) does not fit the {} reserved for it",
                p.name,
                dtb.len(),
                size_str(slot.size)
            );
        }
        images.push(image);
        dtbs.push(dtb);
        layouts.push(layout);
    }

    let mut entries = vec![Entry {
        kind: Kind::BoardDtb,
        partition: 0,
        load: 0,
        data: input.board_dtb,
    }];
    for (i, p) in config.partitions.iter().enumerate() {
        let partition = u32::try_from(i).context("too many partitions")?;
        entries.push(Entry {
            kind: Kind::Image,
            partition,
            load: p.load_address.raw(),
            data: &images[i],
        });
        entries.push(Entry {
            kind: Kind::GuestDtb,
            partition,
            load: layouts[i].dtb.raw(),
            data: &dtbs[i],
        });
        if let (Some(slot), Some(initrd)) = (layouts[i].initrd, &input.partitions[i].initrd) {
            entries.push(Entry {
                kind: Kind::Initrd,
                partition,
                load: slot.base.raw(),
                data: initrd,
            });
        }
    }
    let blobs = entries
        .iter()
        .map(|e| PackedBlob {
            kind: e.kind,
            partition: e.partition,
            load: e.load,
            size: e.data.len() as u64,
        })
        .collect();
    let bundle = bulkhead_bundle::write(&entries);

    let mut bytes = hv.bytes;
    bytes.resize(image_size as usize, 0);
    bytes.extend_from_slice(&bundle);
    let total = (bytes.len() as u64).div_ceil(PAGE) * PAGE;
    bytes.resize(total as usize, 0);
    bytes[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&total.to_le_bytes());

    let mem = config.hypervisor.memory;
    let load = load_address(config, u64_at(&bytes, TEXT_OFFSET_OFFSET));
    if !mem.contains_range(&HostRange::new(HostPhysAddr(load), total)) {
        bail!(
            "the packed image ({}) at {:#x}..{:#x}, where boot loaders put it (RAM base + \
             text_offset), does not fit the hypervisor's memory {:#x}..{:#x}",
            size_str(total),
            load,
            load.saturating_add(total),
            mem.base,
            mem.end()
        );
    }

    Ok(Packed {
        bytes,
        load_address: load,
        hypervisor_len,
        bundle_offset: image_size,
        bundle_len: bundle.len() as u64,
        blobs,
        layouts,
    })
}

/// Flattens an ELF image (checking it is linked at the load address) or takes a flat one as
/// it is; returns it with the number of bytes it occupies from the load address once running.
fn prepare_image(p: &Partition, image: &[u8]) -> Result<(Vec<u8>, u64)> {
    if image.is_empty() {
        bail!("partition {}: the image is empty", p.name);
    }
    let (bytes, footprint) = if elf::is_elf(image) {
        let flat = elf::flatten(image)
            .with_context(|| format!("partition {}: cannot flatten the image", p.name))?;
        if flat.load_address != p.load_address.raw() {
            bail!(
                "partition {}: the image ELF is linked at {:#x} but the partition loads it at {:#x}",
                p.name,
                flat.load_address,
                p.load_address
            );
        }
        let (_, end) = elf::memory_span(image)?;
        let footprint = end
            .saturating_sub(flat.load_address)
            .max(flat.bytes.len() as u64);
        (flat.bytes, footprint)
    } else {
        // A Linux arm64 Image says how much memory it needs, .bss included.
        let declared = if is_arm64_image(image) {
            u64_at(image, IMAGE_SIZE_OFFSET)
        } else {
            0
        };
        (image.to_vec(), declared.max(image.len() as u64))
    };
    let range = GuestRange::new(p.load_address, footprint);
    if !p.memory.iter().any(|r| r.guest().contains_range(&range)) {
        bail!(
            "partition {}: the image ({footprint:#x} bytes at {:#x}) does not fit in one of its memory regions",
            p.name,
            p.load_address
        );
    }
    Ok((bytes, footprint))
}

/// Reads the `text_offset` and `image_size` of an arm64 Image header.
pub fn image_header(bytes: &[u8]) -> Result<(u64, u64)> {
    if !is_arm64_image(bytes) {
        return Err(anyhow!("no arm64 Image header"));
    }
    Ok((
        u64_at(bytes, TEXT_OFFSET_OFFSET),
        u64_at(bytes, IMAGE_SIZE_OFFSET),
    ))
}

#[cfg(test)]
mod tests {
    /// A valid device tree with only a root node, standing in for a board DTB.
    fn empty_dtb() -> Vec<u8> {
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    use super::*;
    use crate::testutil::{build_elf, sample_config, Seg, MIB};
    use bulkhead_bundle::Bundle;

    const HV_BASE: u64 = 0x4020_0000;

    /// A hypervisor ELF: Image header, then code up to `len` bytes, linked at HV_BASE with
    /// the given image_size.
    fn hypervisor(len: usize, image_size: u64) -> Vec<u8> {
        let mut text = vec![0xaa; len];
        text[..HEADER_SIZE].fill(0);
        text[TEXT_OFFSET_OFFSET..TEXT_OFFSET_OFFSET + 8]
            .copy_from_slice(&0x20_0000u64.to_le_bytes());
        text[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&image_size.to_le_bytes());
        text[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        build_elf(
            HV_BASE,
            &[Seg {
                vaddr: HV_BASE,
                paddr: HV_BASE,
                data: text,
                memsz: image_size,
            }],
        )
    }

    fn guest_elf() -> Vec<u8> {
        build_elf(
            0x4000_0000,
            &[Seg {
                vaddr: 0x4000_0000,
                paddr: 0x4000_0000,
                data: vec![0x11; 0x1234],
                memsz: 0x8000,
            }],
        )
    }

    fn blobs() -> Vec<PartitionBlobs> {
        vec![
            PartitionBlobs {
                image: guest_elf(),
                initrd: None,
            },
            PartitionBlobs {
                image: vec![0x22; 0x3000],
                initrd: Some(vec![0x33; 5000]),
            },
        ]
    }

    #[test]
    fn packs_hypervisor_and_bundle() {
        let config = sample_config();
        let hv = hypervisor(0x1800, 0x5000);
        let board_dtb = empty_dtb();
        let input = PackInput {
            hypervisor_elf: &hv,
            board_dtb: &board_dtb,
            config: &config,
            partitions: blobs(),
        };
        let packed = pack_detailed(&input).unwrap();
        let out = &packed.bytes;
        assert_eq!(pack(&input).unwrap(), *out);

        // Header kept, image_size rewritten to the whole (aligned) length.
        assert_eq!(out.len() % 4096, 0);
        let (text_offset, image_size) = image_header(out).unwrap();
        assert_eq!(text_offset, 0x20_0000);
        assert_eq!(image_size, out.len() as u64);
        // Code, then zero padding up to the linker's image_size.
        assert!(out[HEADER_SIZE..0x1800].iter().all(|&b| b == 0xaa));
        assert!(out[0x1800..0x5000].iter().all(|&b| b == 0));
        assert_eq!(
            (
                packed.bundle_offset,
                packed.hypervisor_len,
                packed.load_address
            ),
            (0x5000, 0x1800, HV_BASE)
        );

        let bundle = Bundle::parse(&out[0x5000..]).unwrap();
        assert_eq!(bundle.len(), 6);
        assert_eq!(packed.bundle_len as usize, out.len() - 0x5000);
        let kinds: Vec<_> = bundle.entries().map(|e| (e.kind, e.partition)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::BoardDtb, 0),
                (Kind::Image, 0),
                (Kind::GuestDtb, 0),
                (Kind::Image, 1),
                (Kind::GuestDtb, 1),
                (Kind::Initrd, 1),
            ]
        );
        assert_eq!(bundle.find(Kind::BoardDtb, 0).unwrap().data, &board_dtb[..]);
        // The ELF image was flattened; the flat one kept as it is.
        let img0 = bundle.find(Kind::Image, 0).unwrap();
        assert_eq!((img0.load, img0.data), (0x4000_0000, &[0x11; 0x1234][..]));
        let img1 = bundle.find(Kind::Image, 1).unwrap();
        assert_eq!((img1.load, img1.data.len()), (0x4020_0000, 0x3000));

        // Guest DTBs at their layout addresses, and valid.
        let dtb0 = bundle.find(Kind::GuestDtb, 0).unwrap();
        assert_eq!(dtb0.load, 0x4000_0000 + 14 * MIB);
        let fdt = fdt::Fdt::new(dtb0.data).unwrap();
        assert_eq!(fdt.root().model(), "Bulkhead partition hello");
        let dtb1 = bundle.find(Kind::GuestDtb, 1).unwrap();
        assert_eq!(dtb1.load, 0x4000_0000 + 126 * MIB);
        let initrd = bundle.find(Kind::Initrd, 1).unwrap();
        assert_eq!(initrd.data, &[0x33; 5000][..]);
        assert_eq!(
            Some(GuestRange::new(
                bulkhead_config::GuestPhysAddr(initrd.load),
                5000
            )),
            packed.layouts[1].initrd
        );
        let fdt = fdt::Fdt::new(dtb1.data).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let start = chosen.property("linux,initrd-start").unwrap().value;
        assert_eq!(u64::from_be_bytes(start.try_into().unwrap()), initrd.load);

        let summary = packed.summary(&config);
        assert!(summary.contains("bundle at offset 0x5000"), "{summary}");
        assert!(summary.contains("linux"), "{summary}");
        assert!(summary.contains("initrd"), "{summary}");
    }

    fn pack_err(hv: &[u8], config: &BoardConfig, partitions: Vec<PartitionBlobs>) -> String {
        let input = PackInput {
            hypervisor_elf: hv,
            board_dtb: &empty_dtb(),
            config,
            partitions,
        };
        format!("{:#}", pack(&input).unwrap_err())
    }

    #[test]
    fn refuses_bad_hypervisors() {
        let config = sample_config();
        let err = pack_err(&hypervisor(0x1800, 0x1000), &config, blobs());
        assert!(err.contains("longer than its image_size"), "{err}");
        let err = pack_err(&hypervisor(0x1800, 0x2001), &config, blobs());
        assert!(err.contains("multiple of 4 KiB"), "{err}");
        let mut no_magic = hypervisor(0x1800, 0x2000);
        let pos = no_magic.windows(4).position(|w| w == MAGIC).unwrap();
        no_magic[pos] = b'X';
        let err = pack_err(&no_magic, &config, blobs());
        assert!(err.contains("arm64 Image header"), "{err}");
        let err = pack_err(b"not an elf", &config, blobs());
        assert!(err.contains("cannot flatten the hypervisor"), "{err}");
        // Loaded at RAM base + 2 MiB, whatever the ELF's link address: a board whose RAM
        // starts at 0 needs its hypervisor memory at 0x200000.
        let mut low = config.clone();
        low.platform.ram = vec![HostRange::new(HostPhysAddr(0), 1 << 30)];
        let err = pack_err(&hypervisor(0x1800, 0x2000), &low, blobs());
        assert!(err.contains("at 0x200000.."), "{err}");
        low.hypervisor.memory = HostRange::new(HostPhysAddr(0x20_0000), 64 * MIB);
        let packed = pack_detailed(&PackInput {
            hypervisor_elf: &hypervisor(0x1800, 0x2000),
            board_dtb: &empty_dtb(),
            config: &low,
            partitions: blobs(),
        })
        .unwrap();
        assert_eq!(packed.load_address, 0x20_0000);
        // Does not fit the hypervisor's memory.
        let mut small = config.clone();
        small.hypervisor.memory = HostRange::new(HostPhysAddr(0x4000_0000), 0x20_4000);
        let err = pack_err(&hypervisor(0x1800, 0x2000), &small, blobs());
        assert!(
            err.contains("does not fit the hypervisor's memory"),
            "{err}"
        );
    }

    #[test]
    fn refuses_mismatched_partitions() {
        let config = sample_config();
        let hv = hypervisor(0x1800, 0x2000);
        let err = pack_err(&hv, &config, blobs()[..1].to_vec());
        assert!(err.contains("1 partition image(s) given for 2"), "{err}");

        let mut b = blobs();
        b[1].initrd = None;
        let err = pack_err(&hv, &config, b);
        assert!(
            err.contains("partition linux: the config names initrd \"rootfs.cpio\""),
            "{err}"
        );

        let mut b = blobs();
        b[0].initrd = Some(vec![1]);
        assert!(pack_err(&hv, &config, b).contains("partition hello: an initrd was given"));

        let mut b = blobs();
        b[0].image = build_elf(
            0x4100_0000,
            &[Seg {
                vaddr: 0x4100_0000,
                paddr: 0x4100_0000,
                data: vec![1; 8],
                memsz: 8,
            }],
        );
        let err = pack_err(&hv, &config, b);
        assert!(
            err.contains("linked at 0x41000000 but the partition loads it at 0x40000000"),
            "{err}"
        );

        let mut b = blobs();
        b[0].image = vec![0; 17 * MIB as usize];
        let err = pack_err(&hv, &config, b);
        assert!(
            err.contains("partition hello: the image") && err.contains("does not fit"),
            "{err}"
        );

        let mut b = blobs();
        b[0].image = vec![0; 15 * MIB as usize];
        let err = pack_err(&hv, &config, b);
        assert!(err.contains("overlaps the device tree"), "{err}");

        let mut b = blobs();
        b[0].image.clear();
        assert!(pack_err(&hv, &config, b).contains("image is empty"));
    }

    #[test]
    fn linux_image_size_counts_as_footprint() {
        let config = sample_config();
        let hv = hypervisor(0x1800, 0x2000);
        let mut b = blobs();
        // A 64 KiB Linux Image claiming 127 MiB of memory runs into the DTB of `linux`.
        let mut linux = vec![0u8; 0x1_0000];
        linux[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&(125 * MIB).to_le_bytes());
        linux[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        b[1].image = linux;
        let err = pack_err(&hv, &config, b);
        assert!(
            err.contains(
                "partition linux: image at 0x40200000..0x47f00000 overlaps the device tree"
            ),
            "{err}"
        );
    }
}
