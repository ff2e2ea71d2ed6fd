//! Validation tests: one per rejection, each asserting the error kind and the node at fault.

mod common;

use bulkhead_config::validate::validate;
use bulkhead_config::ErrorKind;
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
    c.partitions[0].devices = vec![c.platform.devices.len() - 1];
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

#[test]
fn device_page_shared_between_partitions() {
    let mut b = Board::default();
    b.devs[0].size = 0x200;
    b.devs[1].base = 0x0a00_0200;
    b.devs[1].size = 0x200;
    b.part("a").devices = Some(vec![dev(0)]);
    b.part("b").devices = Some(vec![dev(1)]);
    assert_err!(b.load(), B, ErrorKind::DevicePageShared { .. });
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

#[test]
fn dma_device_needs_identity_mapped_memory() {
    let mut b = Board::default();
    b.devs[0].dma = true;
    b.part("a").devices = Some(vec![dev(0)]);
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
