//! Hand-built board configs for unit tests.

use bulkhead_config::*;

pub const MIB: u64 = 1 << 20;

/// A QEMU-virt-like board with two partitions: `hello` (one vCPU, 16 MiB, a virtual UART) and
/// `linux` (two vCPUs, two memory regions, a passthrough virtio device, initrd and bootargs).
pub fn sample_config() -> BoardConfig {
    let cpus = (0..4)
        .map(|i| Cpu {
            path: format!("/cpus/cpu@{i}"),
            phandle: Some(0x8000 + i),
            mpidr: i as u64,
            enable_method: Some(EnableMethod::Psci),
        })
        .collect();
    let devices = vec![
        Device {
            path: "/pl011@9000000".into(),
            phandle: None,
            compatible: vec!["arm,pl011".into(), "arm,primecell".into()],
            regs: vec![HostRange::new(HostPhysAddr(0x0900_0000), 0x1000)],
            irqs: vec![Irq {
                kind: IrqKind::Spi,
                number: 1,
                flags: 4,
            }],
            dma: Dma::None,
        },
        Device {
            path: "/virtio_mmio@a000000".into(),
            phandle: None,
            compatible: vec!["virtio,mmio".into()],
            regs: vec![HostRange::new(HostPhysAddr(0x0a00_0000), 0x200)],
            irqs: vec![Irq {
                kind: IrqKind::Spi,
                number: 16,
                flags: 1,
            }],
            dma: Dma::Master(DmaReason::Coherent),
        },
    ];
    BoardConfig {
        platform: Platform {
            ram: vec![HostRange::new(HostPhysAddr(0x4000_0000), 1 << 30)],
            cpus,
            gic: Gic {
                version: GicVersion::V3,
                distributor: HostRange::new(HostPhysAddr(0x0800_0000), 0x1_0000),
                redistributors: vec![HostRange::new(HostPhysAddr(0x080a_0000), 0xf6_0000)],
            },
            psci: Some(PsciConduit::Smc),
            devices,
            reserved: vec![],
            timer_irqs: vec![],
        },
        hypervisor: HypervisorConfig {
            memory: HostRange::new(HostPhysAddr(0x4000_0000), 64 * MIB),
            console: Some(0),
            log_level: LogLevel::Info,
            stage2_blocks: true,
        },
        partitions: vec![
            Partition {
                name: "hello".into(),
                path: "/hypervisor/hello".into(),
                cpus: vec![PcpuId(1)],
                memory: vec![MemoryRegion {
                    ipa: GuestPhysAddr(0x4000_0000),
                    size: 16 * MIB,
                    pa: HostPhysAddr(0x4800_0000),
                }],
                devices: vec![],
                dma_trusted: false,
                direct_interrupts: false,
                virtual_uart: Some(GuestPhysAddr(0x0900_0000)),
                image: "hello".into(),
                load_address: GuestPhysAddr(0x4000_0000),
                entry: GuestPhysAddr(0x4000_0000),
                initrd: None,
                bootargs: None,
                doorbell_gpio: None,
                monitor: false,
                monitor_window: None,
            },
            Partition {
                name: "linux".into(),
                path: "/hypervisor/linux".into(),
                cpus: vec![PcpuId(2), PcpuId(3)],
                memory: vec![
                    MemoryRegion {
                        ipa: GuestPhysAddr(0x4000_0000),
                        size: 128 * MIB,
                        pa: HostPhysAddr(0x5000_0000),
                    },
                    MemoryRegion {
                        ipa: GuestPhysAddr(0x8000_0000),
                        size: 64 * MIB,
                        pa: HostPhysAddr(0x5800_0000),
                    },
                ],
                devices: vec![PassthroughDevice::mapped(1)],
                dma_trusted: true,
                direct_interrupts: false,
                virtual_uart: None,
                image: "Image".into(),
                load_address: GuestPhysAddr(0x4020_0000),
                entry: GuestPhysAddr(0x4020_0000),
                initrd: Some("rootfs.cpio".into()),
                bootargs: Some("console=hvc0 earlycon".into()),
                doorbell_gpio: None,
                monitor: false,
                monitor_window: None,
            },
        ],
        channels: vec![],
    }
}

/// One `PT_LOAD` segment for [`build_elf`].
pub struct Seg {
    pub vaddr: u64,
    pub paddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
}

/// Builds a minimal little-endian ELF64 AArch64 executable: header, program headers, then each
/// segment's data in order.
pub fn build_elf(entry: u64, segs: &[Seg]) -> Vec<u8> {
    const EHSIZE: u64 = 64;
    const PHENTSIZE: u64 = 56;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, SYSV ABI
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&EHSIZE.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PHENTSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(out.len() as u64, EHSIZE);
    let mut offset = EHSIZE + PHENTSIZE * segs.len() as u64;
    for s in segs {
        out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        out.extend_from_slice(&7u32.to_le_bytes()); // RWX
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&s.paddr.to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.memsz.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
        offset += s.data.len() as u64;
    }
    for s in segs {
        out.extend_from_slice(&s.data);
    }
    out
}
