//! Validation tests: one per rejection, each asserting the error kind and the node at fault.

mod common;

use bulkhead_config::validate::validate;
use bulkhead_config::{DmaReason, ErrorKind, PartitionId, PassthroughDevice};
use common::*;

const A: &str = "/hypervisor/a";
const B: &str = "/hypervisor/b";

#[test]
fn default_board_is_valid() {
    Board::default().load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn memory_overlap_between_partitions() {
    let mut b = Board::default();
    b.part("b").memory = Some(region(0x4000_0000, 16 * MIB, 0x4880_0000));
    let e = assert_err!(b.load(), B, ErrorKind::MemoryOverlapsPartition { .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/b: memory 0x48800000..0x49800000 overlaps partition a (host-physical)"
    );
}

#[test]
fn memory_overlap_within_a_partition() {
    let mut b = Board::default();
    b.part("a").memory = Some(
        [
            region(0x4000_0000, 16 * MIB, 0x4800_0000),
            region(0x5000_0000, MIB, 0x4870_0000),
        ]
        .concat(),
    );
    assert_err!(b.load(), A, ErrorKind::MemoryOverlapsSelf { .. });
    let mut b = Board::default();
    b.part("a").memory = Some(
        [
            region(0x4000_0000, 16 * MIB, 0x4800_0000),
            region(0x4080_0000, MIB, 0x4a00_0000),
        ]
        .concat(),
    );
    assert_err!(b.load(), A, ErrorKind::GuestMemoryOverlapsSelf { .. });
}

#[test]
fn memory_outside_ram() {
    let mut b = Board::default();
    b.part("b").memory = Some(region(0x4000_0000, 16 * MIB, 0x7f80_0000));
    assert_err!(b.load(), B, ErrorKind::MemoryOutsideRam { .. });
}

#[test]
fn memory_overlapping_hypervisor() {
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0000, 16 * MIB, 0x4300_0000));
    assert_err!(b.load(), A, ErrorKind::MemoryOverlapsHypervisor { .. });
}

#[test]
fn hypervisor_memory_outside_ram() {
    let b = Board {
        hv_memory: Some([c2(0x3000_0000), c2(64 * MIB)].concat()),
        ..Board::default()
    };
    assert_err!(
        b.load(),
        "/hypervisor",
        ErrorKind::HypervisorMemoryOutsideRam { .. }
    );
}

#[test]
fn hypervisor_memory_misaligned() {
    let b = Board {
        hv_memory: Some([c2(0x4000_0800), c2(64 * MIB)].concat()),
        ..Board::default()
    };
    assert_err!(
        b.load(),
        "/hypervisor",
        ErrorKind::Misaligned {
            what: "hypervisor memory base",
            ..
        }
    );
}

#[test]
fn cpus_with_the_same_mpidr() {
    let mut c = bulkhead_config::parse::parse(&Board::default().dtb()).unwrap();
    c.platform.cpus[2].mpidr = c.platform.cpus[0].mpidr;
    let e = validate(&c).unwrap_err();
    assert_eq!(e.node, "/cpus/cpu@2");
    assert!(
        matches!(e.kind, ErrorKind::DuplicateMpidr { mpidr: 0, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("is also the MPIDR of /cpus/cpu@0"),
        "{e}"
    );
}

#[test]
fn cpu_in_two_partitions() {
    let mut b = Board::default();
    b.part("b").cpus = Some(vec![CPU0]);
    let e = assert_err!(b.load(), B, ErrorKind::CpuInTwoPartitions { .. });
    assert!(
        e.to_string()
            .contains("cpu /cpus/cpu@0 is already given to partition a"),
        "{e}"
    );
}

#[test]
fn cpu_listed_twice() {
    let mut b = Board::default();
    b.part("a").cpus = Some(vec![CPU2, CPU2]);
    assert_err!(b.load(), A, ErrorKind::DuplicateCpu { .. });
}

#[test]
fn partition_without_cpu() {
    let mut b = Board::default();
    b.part("b").cpus = Some(vec![]);
    assert_err!(b.load(), B, ErrorKind::NoCpus);
}

#[test]
fn partition_without_memory() {
    let mut b = Board::default();
    b.part("b").memory = Some(vec![]);
    assert_err!(b.load(), B, ErrorKind::NoMemory);
}

#[test]
fn device_in_two_partitions() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("b").devices = Some(vec![dev(1), dev(0)]);
    assert_err!(b.load(), B, ErrorKind::DeviceInTwoPartitions { .. });
}

#[test]
fn device_listed_twice() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![dev(0), dev(0)]);
    assert_err!(b.load(), A, ErrorKind::DuplicateDevice { .. });
}

#[test]
fn device_is_gic() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![GIC]);
    assert_err!(b.load(), A, ErrorKind::DeviceIsInterruptController { .. });
    let mut b = Board::default();
    b.part("a").devices = Some(vec![ITS]);
    assert_err!(b.load(), A, ErrorKind::DeviceIsInterruptController { .. });
}

#[test]
fn device_is_cpu_in_model() {
    // `parse` already refuses a CPU phandle; validate also refuses a model that has one.
    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    let mut fake = c.platform.devices[0].clone();
    fake.path = "/cpus/cpu@0".into();
    c.platform.devices.push(fake);
    c.partitions[0].devices = vec![PassthroughDevice::mapped(c.platform.devices.len() - 1)];
    assert_err!(validate(&c), A, ErrorKind::DeviceIsCpu { .. });
}

#[test]
fn device_is_console() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![UART]);
    assert_err!(b.load(), A, ErrorKind::DeviceIsConsole { .. });
}

#[test]
fn interrupt_in_two_partitions() {
    let mut b = Board::default();
    b.devs[1].interrupts = b.devs[0].interrupts.clone();
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("b").devices = Some(vec![dev(1)]);
    let e = assert_err!(
        b.load(),
        B,
        ErrorKind::InterruptInTwoPartitions { intid: 48, .. }
    );
    assert!(
        e.to_string()
            .contains("interrupt 48 of device /dev@a001000"),
        "{e}"
    );
}

/// Two devices 0x200 apart on one page, as QEMU virt packs its virtio-mmio transports.
fn packed_pair() -> Board {
    let mut b = Board::default();
    b.devs[0].size = 0x200;
    b.devs[1].base = 0x0a00_0200;
    b.devs[1].size = 0x200;
    b
}

#[test]
fn device_page_shared_between_partitions() {
    let mut b = packed_pair();
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("b").devices = Some(vec![dev(1)]);
    // Refused at the first partition already: the page holds a device it does not own.
    let e = assert_err!(b.load(), A, ErrorKind::DevicePageShared { .. });
    assert!(
        e.to_string()
            .contains("shares a 4 KiB page with device /dev@a000200 of partition b"),
        "{e}"
    );
    // Trapped in both: each reaches only its own registers.
    b.part("a").devices = None;
    b.part("a").trapped_devices = Some(vec![dev(0)]);
    b.part("b").devices = None;
    b.part("b").trapped_devices = Some(vec![dev(1)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

/// A page shared with a device nobody owns is refused too (virtio31 in the old default board):
/// the partition would reach that device.
#[test]
fn device_page_shared_with_an_unassigned_device() {
    let mut b = packed_pair();
    b.part("a").devices = Some(vec![dev(1)]);
    let e = assert_err!(b.load(), A, ErrorKind::DevicePageShared { .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/a: device /dev@a000200 shares a 4 KiB page with device /dev@a000000 \
         (given to no partition), which the partition does not own, and `devices` maps whole \
         pages: list /dev@a000200 in `trapped-devices` instead (the hypervisor then traps its \
         accesses and lets the partition reach only its registers), or give the partition \
         every device on that page"
    );
    // Either way out: trap it, or own the whole page.
    b.part("a").devices = None;
    b.part("a").trapped_devices = Some(vec![dev(1)]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.partitions[0].devices[0].is_mapped());
    b.part("a").trapped_devices = None;
    b.part("a").devices = Some(vec![dev(1), dev(0)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));
    // Or own one of them mapped and the other trapped: the partition owns both.
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("a").trapped_devices = Some(vec![dev(1)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

/// The index of the platform device at `path`.
fn device_index(c: &bulkhead_config::BoardConfig, path: &str) -> usize {
    c.platform
        .devices
        .iter()
        .position(|d| d.path == path)
        .unwrap_or_else(|| panic!("no device {path}"))
}

#[test]
fn device_page_shared_with_the_console() {
    let mut b = Board::default();
    b.devs[0].base = 0x0900_0e00;
    b.devs[0].size = 0x400;
    b.part("a").devices = Some(vec![dev(0)]);
    let e = assert_err!(b.load(), A, ErrorKind::DeviceOverlapsDevice { .. });
    assert!(
        e.to_string()
            .contains("overlap those of the hypervisor console /pl011@9000000"),
        "{e}"
    );
    // A console smaller than its page (a hand-built model: the test board's fills its page).
    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    let console = c.hypervisor.console.expect("the test board has a console");
    c.platform.devices[console].regs[0].size = 0x200;
    let d = device_index(&c, "/dev@a000000");
    c.platform.devices[d].regs[0] =
        bulkhead_config::HostRange::new(bulkhead_config::HostPhysAddr(0x0900_0800), 0x200);
    c.partitions[0].devices = vec![PassthroughDevice::mapped(d)];
    c.partitions[0].virtual_uart = None;
    let e = assert_err!(validate(&c), A, ErrorKind::DevicePageShared { .. });
    assert!(
        e.to_string()
            .contains("shares a 4 KiB page with the hypervisor console /pl011@9000000"),
        "{e}"
    );
    // Trapped, it reaches only its own bytes.
    c.partitions[0].devices = vec![PassthroughDevice::trapped(d)];
    validate(&c).unwrap_or_else(|e| panic!("{e}"));
}

/// A trapped device may share its page, but never its registers, and the hypervisor
/// range-checks accesses by 32-bit words.
#[test]
fn trapped_devices_are_word_aligned_and_overlap_no_one() {
    let mut b = packed_pair();
    b.devs[1].base = 0x0a00_0202;
    b.part("a").trapped_devices = Some(vec![dev(1)]);
    let e = assert_err!(b.load(), A, ErrorKind::TrappedDeviceMisaligned { .. });
    assert!(
        e.to_string().contains(
            "trapped device /dev@a000202 has register window 0xa000202..0xa000402, which is not \
             made of whole 32-bit words"
        ),
        "{e}"
    );
    let mut b = packed_pair();
    b.devs[1].size = 0x1fe;
    b.part("a").trapped_devices = Some(vec![dev(1)]);
    assert_err!(b.load(), A, ErrorKind::TrappedDeviceMisaligned { .. });
    // A mapped device is mapped by pages: any window is fine.
    b.part("a").trapped_devices = None;
    b.part("a").devices = Some(vec![dev(1), dev(0)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));

    let mut b = packed_pair();
    b.devs[1].base = 0x0a00_0100;
    b.part("a").trapped_devices = Some(vec![dev(1)]);
    let e = assert_err!(b.load(), A, ErrorKind::DeviceOverlapsDevice { .. });
    assert!(
        e.to_string().contains(
            "the registers of device /dev@a000100 overlap those of device /dev@a000000 (given \
             to no partition)"
        ),
        "{e}"
    );
}

/// Trapped devices obey the ownership rules of mapped ones.
#[test]
fn trapped_devices_are_owned_once() {
    let mut b = packed_pair();
    b.part("a").devices = Some(vec![dev(2)]);
    b.part("b").trapped_devices = Some(vec![dev(2)]);
    assert_err!(b.load(), B, ErrorKind::DeviceInTwoPartitions { .. });
    let mut b = packed_pair();
    b.part("a").devices = Some(vec![dev(2)]);
    b.part("a").trapped_devices = Some(vec![dev(2)]);
    assert_err!(b.load(), A, ErrorKind::DuplicateDevice { .. });
    let mut b = packed_pair();
    b.devs[1].interrupts = b.devs[2].interrupts.clone();
    b.part("a").devices = Some(vec![dev(2)]);
    b.part("b").trapped_devices = Some(vec![dev(1)]);
    assert_err!(b.load(), B, ErrorKind::InterruptInTwoPartitions { .. });
    let mut b = packed_pair();
    b.part("a").trapped_devices = Some(vec![UART]);
    assert_err!(b.load(), A, ErrorKind::DeviceIsConsole { .. });
}

#[test]
fn device_sharing_the_console_interrupt() {
    let mut b = Board::default();
    b.devs[2].interrupts = vec![0, 1, 4];
    b.part("b").devices = Some(vec![dev(2)]);
    let e = assert_err!(b.load(), B, ErrorKind::InterruptOfConsole { intid: 33, .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/b: interrupt 33 of device /dev@a002000 is the hypervisor console's \
         interrupt"
    );
    // Without a console (and so without virtual UARTs), the line is free.
    b.console = None;
    for p in &mut b.parts {
        p.virtual_uart = None;
    }
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

/// A device whose registers are RAM would give the partition that RAM.
#[test]
fn device_registers_in_ram() {
    let cases = [
        (
            0x4000_1000,
            "the hypervisor's memory 0x40000000..0x44000000",
        ),
        (0x4900_0000, "memory 0x49000000..0x4a000000 of partition b"),
        (0x7000_0000, "RAM 0x40000000..0x80000000"),
    ];
    for (base, memory) in cases {
        let mut b = Board::default();
        b.devs[0].base = base;
        b.part("a").devices = Some(vec![dev(0)]);
        let e = assert_err!(b.load(), A, ErrorKind::DeviceOverlapsMemory { .. });
        assert!(
            e.to_string().contains(&format!(
                "device /dev@{base:x} registers {:#x}..{:#x} overlap {memory} (host-physical)",
                base,
                base + 0x1000
            )),
            "{e}"
        );
    }
    // Trapped too: the hypervisor would perform the accesses to that RAM for the partition.
    let mut b = Board::default();
    b.devs[0].base = 0x3fff_fe00;
    b.devs[0].size = 0x400;
    b.part("a").trapped_devices = Some(vec![dev(0)]);
    let e = assert_err!(b.load(), A, ErrorKind::DeviceOverlapsMemory { .. });
    assert!(
        e.to_string()
            .contains("registers 0x3ffffe00..0x40000200 overlap the hypervisor's memory"),
        "{e}"
    );
}

#[test]
fn device_register_windows_must_be_real() {
    let mut b = Board::default();
    b.devs[0].size = 0;
    b.part("a").devices = Some(vec![dev(0)]);
    let e = assert_err!(b.load(), A, ErrorKind::DeviceRegionZeroSize { .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/a: device /dev@a000000 has a zero-size register window at 0xa000000"
    );
    // Nobody's zero-size device is no one's problem.
    b.part("a").devices = None;
    b.load().unwrap_or_else(|e| panic!("{e}"));

    let mut b = Board::default();
    b.devs[0].base = 0xffff_ffff_ffff_f000;
    b.devs[0].size = 0x2000;
    b.part("a").devices = Some(vec![dev(0)]);
    assert_err!(b.load(), A, ErrorKind::DeviceRegionOverflow { .. });

    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    let d = device_index(&c, "/dev@a000000");
    c.platform.devices[d].regs.clear();
    c.partitions[0].devices = vec![PassthroughDevice::trapped(d)];
    assert_err!(validate(&c), A, ErrorKind::DeviceWithoutRegisters { .. });
}

/// Everything a partition sees must lie below the IPA limit its stage-2 tables translate.
#[test]
fn guest_addresses_beyond_the_ipa_limit() {
    let limit = bulkhead_config::guest_view::IPA_LIMIT;
    let mut b = Board::default();
    b.part("a").memory = Some(region(limit - MIB, 2 * MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(limit - MIB).to_vec());
    let e = assert_err!(b.load(), A, ErrorKind::BeyondIpaLimit { .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/a: memory 0x7ffff00000..0x8000100000 lies beyond the guest-physical \
         addresses stage 2 translates (below 0x8000000000, 39 bits)"
    );
    // Just below is fine.
    b.part("a").memory = Some(region(limit - 16 * MIB, 16 * MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(limit - 16 * MIB).to_vec());
    b.load().unwrap_or_else(|e| panic!("{e}"));

    let mut b = Board::default();
    b.part("a").virtual_uart = Some(c2(limit).to_vec());
    let e = assert_err!(b.load(), A, ErrorKind::BeyondIpaLimit { .. });
    assert!(e.to_string().contains("virtual-uart 0x8000000000.."), "{e}");

    // Passthrough devices appear at their host-physical addresses.
    let mut b = Board::default();
    b.devs[0].base = limit;
    b.part("a").trapped_devices = Some(vec![dev(0)]);
    let e = assert_err!(b.load(), A, ErrorKind::BeyondIpaLimit { .. });
    assert!(
        e.to_string().contains("device /dev@8000000000 registers"),
        "{e}"
    );

    // So does the virtual GIC (a hand-built model: the test board's GIC is low).
    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    c.platform.gic.redistributors[0].base = bulkhead_config::HostPhysAddr(limit - 0x1_0000);
    let e = assert_err!(validate(&c), A, ErrorKind::BeyondIpaLimit { .. });
    assert!(
        e.to_string().contains("the virtual GIC redistributors"),
        "{e}"
    );
}

#[test]
fn memory_overlapping_reserved_memory() {
    let b = Board {
        memreserve: vec![(0x4900_0000, 0x1000)],
        ..Board::default()
    };
    let e = assert_err!(b.load(), B, ErrorKind::MemoryOverlapsReserved { .. });
    assert_eq!(
        e.to_string(),
        "node /hypervisor/b: memory 0x49000000..0x4a000000 overlaps memory the platform \
         reserves: 0x49000000..0x49001000 (/memreserve/)"
    );
    let b = Board {
        reserved_memory: vec![(0x4880_0000, MIB)],
        ..Board::default()
    };
    let e = assert_err!(b.load(), A, ErrorKind::MemoryOverlapsReserved { .. });
    assert!(
        e.to_string()
            .contains("0x48800000..0x48900000 (/reserved-memory/carveout@48800000)"),
        "{e}"
    );
    let b = Board {
        reserved_memory: vec![(0x4000_0000, MIB)],
        ..Board::default()
    };
    let e = assert_err!(
        b.load(),
        "/hypervisor",
        ErrorKind::MemoryOverlapsReserved {
            what: "hypervisor memory",
            ..
        }
    );
    assert!(e
        .to_string()
        .starts_with("node /hypervisor: hypervisor memory"));
    // Reserved memory nobody uses is fine.
    let b = Board {
        memreserve: vec![(0x7000_0000, 0x1000)],
        reserved_memory: vec![(0x7e00_0000, MIB)],
        ..Board::default()
    };
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn missing_or_empty_image() {
    let mut b = Board::default();
    b.part("b").image = None;
    assert_err!(b.load(), B, ErrorKind::MissingImage);
    let mut b = Board::default();
    b.part("a").image = Some(String::new());
    assert_err!(b.load(), A, ErrorKind::MissingImage);
}

#[test]
fn virtual_uart_overlapping_memory() {
    let mut b = Board::default();
    b.part("a").virtual_uart = Some(c2(0x4010_0000).to_vec());
    assert_err!(b.load(), A, ErrorKind::VirtualUartOverlapsMemory { .. });
}

#[test]
fn virtual_uart_overlapping_device() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("a").virtual_uart = Some(c2(0x0a00_0000).to_vec());
    assert_err!(b.load(), A, ErrorKind::VirtualUartOverlapsDevice { .. });
}

#[test]
fn virtual_uart_misaligned() {
    let mut b = Board::default();
    b.part("a").virtual_uart = Some(c2(0x0900_0100).to_vec());
    assert_err!(
        b.load(),
        A,
        ErrorKind::Misaligned {
            what: "virtual-uart base",
            ..
        }
    );
}

#[test]
fn zero_size_memory() {
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0000, 0, 0x4800_0000));
    assert_err!(b.load(), A, ErrorKind::ZeroSize { .. });
}

#[test]
fn unaligned_memory() {
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0000, 16 * MIB, 0x4800_0800));
    assert_err!(
        b.load(),
        A,
        ErrorKind::Misaligned {
            what: "memory host-physical base",
            ..
        }
    );
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0010, 16 * MIB, 0x4800_0000));
    assert_err!(
        b.load(),
        A,
        ErrorKind::Misaligned {
            what: "memory guest-physical base",
            ..
        }
    );
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0000, 16 * MIB + 1, 0x4800_0000));
    assert_err!(
        b.load(),
        A,
        ErrorKind::Misaligned {
            what: "memory size",
            ..
        }
    );
}

#[test]
fn memory_wrapping_around() {
    let mut b = Board::default();
    b.part("a").memory = Some(region(0x4000_0000, 0x2000, 0xffff_ffff_ffff_f000));
    assert_err!(b.load(), A, ErrorKind::AddressOverflow { .. });
}

#[test]
fn duplicate_partition_names() {
    let mut b = Board::default();
    b.part("b").name = "a".into();
    assert_err!(b.load(), A, ErrorKind::DuplicatePartitionName(_));
}

#[test]
fn the_hypervisors_console_name_is_reserved() {
    let mut b = Board::default();
    b.part("b").name = "bulkhead".into();
    assert_err!(
        b.load(),
        "/hypervisor/bulkhead",
        ErrorKind::ReservedPartitionName(_)
    );
}

#[test]
fn no_partitions() {
    let b = Board {
        parts: vec![],
        ..Board::default()
    };
    assert_err!(b.load(), "/hypervisor", ErrorKind::NoPartitions);
}

#[test]
fn entry_or_load_address_outside_memory() {
    let mut b = Board::default();
    b.part("a").entry = Some(c2(0x4100_0000).to_vec());
    assert_err!(
        b.load(),
        A,
        ErrorKind::AddressNotInMemory { what: "entry", .. }
    );
    let mut b = Board::default();
    b.part("b").load_address = Some(c2(0x3fff_f000).to_vec());
    b.part("b").entry = Some(c2(0x4000_0000).to_vec());
    assert_err!(
        b.load(),
        B,
        ErrorKind::AddressNotInMemory {
            what: "load-address",
            ..
        }
    );
}

#[test]
fn bad_indices_in_a_hand_built_model() {
    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    c.partitions[1].cpus = vec![bulkhead_config::PcpuId(99)];
    assert_err!(
        validate(&c),
        B,
        ErrorKind::IndexOutOfRange {
            what: "cpu",
            index: 99
        }
    );
    let mut c = Board::default().load().unwrap_or_else(|e| panic!("{e}"));
    c.hypervisor.console = Some(1000);
    assert_err!(
        validate(&c),
        "/hypervisor",
        ErrorKind::IndexOutOfRange { .. }
    );
}

/// A bus master reaches all memory: only a partition that says it accepts that may own one.
#[test]
fn dma_master_needs_a_dma_trusted_partition() {
    let mut b = Board::default();
    b.devs[0].dma = true;
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("a").memory = Some(region(0x4800_0000, 16 * MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(0x4800_0000).to_vec());
    let e = assert_err!(
        b.load(),
        A,
        ErrorKind::DmaMasterNotTrusted {
            reason: DmaReason::Coherent,
            ..
        }
    );
    assert_eq!(
        e.to_string(),
        "node /hypervisor/a: device /dev@a000000 can master the bus (its node says \
         `dma-coherent`) and no IOMMU confines its DMA, so the partition could read and write \
         all memory, the hypervisor's and other partitions' included: add `dma-trusted;` to the \
         partition to accept that it is part of the trusted base, or do not give it the device \
         (if the device cannot master the bus, list it in /hypervisor `not-dma-masters`)"
    );
    b.part("a").dma_trusted = Some(vec![]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    let exposure = c
        .dma_exposure(PartitionId(0))
        .expect("a dma-trusted partition with a bus master");
    assert_eq!(
        exposure.to_string(),
        "partition a can reach all memory, the hypervisor's and other partitions' included: \
         it is `dma-trusted` and owns bus master /dev@a000000 (its node says `dma-coherent`), \
         which no IOMMU confines"
    );
    assert_eq!(c.dma_exposure(PartitionId(1)), None);

    // Nothing in the node, but a kind known to DMA: a non-coherent virtio-mmio transport.
    let mut b = Board::default();
    b.devs[1].compatible = "virtio,mmio";
    b.part("b").trapped_devices = Some(vec![dev(1)]);
    let e = assert_err!(b.load(), B, ErrorKind::DmaMasterNotTrusted { .. });
    assert!(
        e.to_string().contains(
            "device /dev@a001000 can master the bus (it is a virtio-mmio transport (compatible \
             \"virtio,mmio\"))"
        ),
        "{e}"
    );
    // The board config has the last word, either way.
    b.not_dma_masters = Some(vec![dev(1)]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert!(c.dma_masters(PartitionId(1)).is_empty());
    let mut b = Board {
        dma_masters: Some(vec![dev(2)]),
        ..Board::default()
    };
    b.part("b").devices = Some(vec![dev(2)]);
    assert_err!(
        b.load(),
        B,
        ErrorKind::DmaMasterNotTrusted {
            reason: DmaReason::Board,
            ..
        }
    );
    // `dma-trusted` without a bus master exposes nothing.
    let mut b = Board::default();
    b.part("a").dma_trusted = Some(vec![]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dma_exposure(PartitionId(0)), None);
}

#[test]
fn dma_device_needs_identity_mapped_memory() {
    let mut b = Board::default();
    b.devs[0].dma = true;
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("a").dma_trusted = Some(vec![]);
    let e = assert_err!(
        b.load(),
        A,
        ErrorKind::PassthroughNeedsIdentityMemory { .. }
    );
    assert!(e.to_string().contains("no IOMMU"), "{e}");
    // The same device with memory mapped 1:1 is fine...
    b.part("a").memory = Some(region(0x4800_0000, 16 * MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(0x4800_0000).to_vec());
    b.load().unwrap_or_else(|e| panic!("{e}"));
    // ...and so is a device that does no DMA, with any mapping.
    let mut b = Board::default();
    b.part("a").devices = Some(vec![dev(1)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn memory_must_not_cover_the_virtual_gic() {
    let mut b = Board::default();
    // The GIC distributor is at 0x08000000.
    b.part("a").memory = Some(region(0x0800_0000, MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(0x0800_0000).to_vec());
    assert_err!(b.load(), A, ErrorKind::MemoryOverlapsGic { .. });
}

#[test]
fn memory_must_not_cover_a_passthrough_device() {
    let mut b = Board::default();
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("a").memory = Some(region(0x0a00_0000, MIB, 0x4800_0000));
    b.part("a").load_address = Some(c2(0x0a00_0000).to_vec());
    assert_err!(b.load(), A, ErrorKind::MemoryOverlapsDevice { .. });
}

#[test]
fn direct_interrupts_need_a_cpu_other_than_the_first_and_no_doorbell() {
    let mut b = Board::default();
    b.part("b").direct_interrupts = Some(vec![]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert!(c.partitions[1].direct_interrupts && !c.partitions[0].direct_interrupts);

    // The first CPU is where the hypervisor boots and takes the console's interrupt.
    b.part("a").direct_interrupts = Some(vec![]);
    let e = assert_err!(b.load(), A, ErrorKind::DirectInterruptsOnBootCpu { .. });
    assert!(e.to_string().contains("/cpus/cpu@0"), "{e}");

    // A doorbell interrupt is purely virtual: no virtual CPU interface, no doorbell.
    let mut b = Board::with_channel();
    b.part("b").direct_interrupts = Some(vec![]);
    assert_err!(b.load(), B, ErrorKind::DirectInterruptsWithDoorbell);

    // `direct-interrupts = <0>` is not read as yes.
    let mut b = Board::default();
    b.part("b").direct_interrupts = Some(vec![0]);
    assert_err!(
        b.parse(),
        B,
        ErrorKind::BadPropertyLength {
            property: "direct-interrupts",
            ..
        }
    );
}
