//! Channels between partitions and doorbell GPIOs: parsing, the model's views of them, and
//! every validation rule of `docs/channels.md`, each refused at the node at fault.

mod common;

use bulkhead_config::hypercall::Signal;
use bulkhead_config::*;
use common::*;

#[test]
fn a_channel_parses_into_the_model() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[1].access = Some("read-only");
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.channels.len(), 1);
    let ch = &c.channels[0];
    assert_eq!(ch.name, "ipc0");
    assert_eq!(ch.path, "/hypervisor/ipc0");
    assert_eq!(
        ch.memory,
        HostRange::new(HostPhysAddr(0x4a00_0000), 0x1_0000)
    );
    let e1 = &ch.endpoints[1];
    assert_eq!(e1.path, "/hypervisor/ipc0/endpoint-1");
    assert_eq!(e1.partition, PartitionId(1));
    assert_eq!(e1.guest_address, GuestPhysAddr(0x5000_0000));
    assert_eq!(e1.doorbell, GuestPhysAddr(0x5001_0000));
    assert_eq!(e1.access, ChannelAccess::ReadOnly);
    assert_eq!(
        ch.endpoints[0].access,
        ChannelAccess::ReadWrite,
        "the default"
    );
    assert_eq!(e1.interrupt, Some(100));
    // Each side's view.
    let views: Vec<_> = c.endpoints_of(PartitionId(1)).collect();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].id, ChannelId(0));
    assert_eq!(views[0].index, 1);
    assert_eq!(views[0].peer.map(|p| p.partition), Some(PartitionId(0)));
    assert_eq!(views[0].signal, Some(Signal::Spi { intid: 132 }));
    assert_eq!(
        views[0].shm(),
        GuestRange::new(GuestPhysAddr(0x5000_0000), 0x1_0000)
    );
    // The doorbell SPI is the partition's, purely virtual like its UART's.
    assert_eq!(c.virtual_spis(PartitionId(0)), [33, 132]);
    assert_eq!(c.partition_spis(PartitionId(0)), [33, 132]);
}

#[test]
fn channels_may_come_before_the_partitions_they_name() {
    let mut b = Board::with_channel();
    b.channels_first = true;
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.channels[0].endpoints[0].partition, PartitionId(0));
    assert_eq!(c.channels[0].endpoints[1].partition, PartitionId(1));
    let names: Vec<_> = c.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn doorbell_gpio_lines_follow_the_partitions_channel_order() {
    let mut b = Board::with_channel();
    b.channels.push(Chan::new("ipc1", 0x4a01_0000));
    for ch in &mut b.channels {
        ch.endpoints[1].interrupt = None;
    }
    b.chan("ipc1").endpoints[0].guest_address = Some(c2(0x5100_0000).to_vec());
    b.chan("ipc1").endpoints[0].doorbell = Some(c2(0x5101_0000).to_vec());
    b.chan("ipc1").endpoints[0].interrupt = Some(vec![101]);
    b.chan("ipc1").endpoints[1].guest_address = Some(c2(0x5100_0000).to_vec());
    b.chan("ipc1").endpoints[1].doorbell = Some(c2(0x5101_0000).to_vec());
    let p = b.part("b");
    p.doorbell_gpio = Some(c2(0x0904_0000).to_vec());
    p.doorbell_gpio_interrupt = Some(vec![110]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    let gpio = c.partitions[1].doorbell_gpio.unwrap();
    assert_eq!(gpio.base, GuestPhysAddr(0x0904_0000));
    assert_eq!(gpio.intid(), 142);
    let signals: Vec<_> = c.endpoints_of(PartitionId(1)).map(|e| e.signal).collect();
    assert_eq!(
        signals,
        [
            Some(Signal::GpioLine {
                intid: 142,
                line: 0
            }),
            Some(Signal::GpioLine {
                intid: 142,
                line: 1
            })
        ]
    );
    assert_eq!(c.virtual_spis(PartitionId(1)), [33, 142]);
    assert_eq!(c.virtual_spis(PartitionId(0)), [33, 132, 133]);
}

// ---- parsing ----

#[test]
fn an_endpoint_must_name_a_partition() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].partition = Some(vec![CPU2]);
    let e = assert_err!(
        b.parse(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::NotAPartition {
            property: "partition",
            ..
        }
    );
    assert!(e.to_string().contains("/cpus/cpu@2"), "{e}");
    b.chan("ipc0").endpoints[0].partition = Some(vec![0x999]);
    assert_err!(
        b.parse(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::DanglingPhandle {
            property: "partition",
            phandle: 0x999
        }
    );
    b.chan("ipc0").endpoints[0].partition = None;
    assert_err!(
        b.parse(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::MissingProperty("partition")
    );
}

#[test]
fn required_channel_properties() {
    let mut b = Board::with_channel();
    b.chan("ipc0").memory = None;
    assert_err!(
        b.parse(),
        "/hypervisor/ipc0",
        ErrorKind::MissingProperty("memory")
    );
    let mut b = Board::with_channel();
    b.chan("ipc0").memory = Some(vec![0, 0x4a00_0000, 0x1_0000]);
    assert_err!(
        b.parse(),
        "/hypervisor/ipc0",
        ErrorKind::BadPropertyLength {
            property: "memory",
            ..
        }
    );
    for property in ["guest-address", "doorbell"] {
        let mut b = Board::with_channel();
        let ep = &mut b.chan("ipc0").endpoints[1];
        match property {
            "guest-address" => ep.guest_address = None,
            _ => ep.doorbell = None,
        }
        let e = assert_err!(
            b.parse(),
            "/hypervisor/ipc0/endpoint-1",
            ErrorKind::MissingProperty(_)
        );
        assert!(e.to_string().contains(property), "{e}");
    }
}

#[test]
fn access_is_read_write_or_read_only() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].access = Some("rw");
    let e = assert_err!(
        b.parse(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::UnknownChannelAccess(_)
    );
    assert!(e.to_string().contains("\"read-write\" or \"read-only\""));
}

#[test]
fn doorbell_gpio_needs_both_properties() {
    let mut b = Board::with_channel();
    b.part("a").doorbell_gpio = Some(c2(0x0904_0000).to_vec());
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::MissingProperty("doorbell-gpio-interrupt")
    );
    let mut b = Board::with_channel();
    b.part("a").doorbell_gpio_interrupt = Some(vec![110]);
    assert_err!(
        b.parse(),
        "/hypervisor/a",
        ErrorKind::MissingProperty("doorbell-gpio")
    );
}

// ---- the channel ----

#[test]
fn channel_names_are_unique() {
    let mut b = Board::with_channel();
    let mut twin = Chan::new("ipc0", 0x4a01_0000);
    twin.name = "ipc0@4a010000".into();
    for e in &mut twin.endpoints {
        e.guest_address = Some(c2(0x5100_0000).to_vec());
        e.doorbell = Some(c2(0x5101_0000).to_vec());
        e.interrupt = Some(vec![101]);
    }
    b.channels.push(twin);
    assert_err!(
        b.load(),
        "/hypervisor/ipc0@4a010000",
        ErrorKind::DuplicateChannelName(_)
    );
}

#[test]
fn channel_memory_is_whole_pages_of_free_ram() {
    let cases: [(u64, u64, &str); 4] = [
        (0x4a00_0000, 0, "has size zero"),
        (
            0x4a00_0800,
            0x1_0000,
            "channel memory base 0x4a000800 is not a multiple of 4 KiB",
        ),
        (
            0x4a00_0000,
            0x1_0800,
            "channel memory size 0x10800 is not a multiple of 4 KiB",
        ),
        (0x9000_0000, 0x1_0000, "outside the platform's RAM"),
    ];
    for (base, size, expect) in cases {
        let mut b = Board::with_channel();
        b.chan("ipc0").memory = Some([c2(base), c2(size)].concat());
        let e = b.load().expect_err(expect);
        assert_eq!(e.node, "/hypervisor/ipc0");
        assert!(e.to_string().contains(expect), "{e}");
    }
}

#[test]
fn channel_memory_is_nobody_elses() {
    let cases: [(u64, &str); 3] = [
        (
            0x4300_0000,
            "the hypervisor's memory 0x40000000..0x44000000",
        ),
        (0x4900_8000, "memory 0x49000000..0x4a000000 of partition b"),
        (
            0x4a00_f000,
            "the memory 0x4a000000..0x4a010000 of channel ipc0",
        ),
    ];
    for (base, other) in cases {
        let mut b = Board::with_channel();
        let mut second = Chan::new("ipc1", base);
        for e in &mut second.endpoints {
            e.guest_address = Some(c2(0x5100_0000).to_vec());
            e.doorbell = Some(c2(0x5101_0000).to_vec());
            e.interrupt = Some(vec![101]);
        }
        b.channels.push(second);
        let e = assert_err!(
            b.load(),
            "/hypervisor/ipc1",
            ErrorKind::ChannelMemoryOverlaps { .. }
        );
        assert!(e.to_string().contains(other), "{e}");
    }
    let mut b = Board::with_channel();
    b.reserved_memory = vec![(0x4a00_8000, 0x1000)];
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0",
        ErrorKind::MemoryOverlapsReserved { .. }
    );
    assert!(e
        .to_string()
        .starts_with("node /hypervisor/ipc0: channel memory"));
}

#[test]
fn a_channel_has_two_endpoints_of_two_partitions_one_writing() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints.pop();
    assert_err!(
        b.load(),
        "/hypervisor/ipc0",
        ErrorKind::ChannelEndpointCount(1)
    );
    let mut b = Board::with_channel();
    let third = Ep::new("endpoint-2", 0, 0x5200_0000, 102);
    b.chan("ipc0").endpoints.push(third);
    assert_err!(
        b.load(),
        "/hypervisor/ipc0",
        ErrorKind::ChannelEndpointCount(3)
    );
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[1] = Ep::new("endpoint-1", 0, 0x5200_0000, 102);
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0",
        ErrorKind::ChannelEndpointsSamePartition { .. }
    );
    assert_eq!(
        e.to_string(),
        "node /hypervisor/ipc0: both endpoints are partition a"
    );
    let mut b = Board::with_channel();
    for e in &mut b.chan("ipc0").endpoints {
        e.access = Some("read-only");
    }
    assert_err!(
        b.load(),
        "/hypervisor/ipc0",
        ErrorKind::ChannelWithoutWriter
    );
}

// ---- an endpoint's addresses ----

#[test]
fn endpoint_windows_are_aligned_and_translatable() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[1].guest_address = Some(c2(0x5000_0800).to_vec());
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-1",
        ErrorKind::Misaligned {
            what: "channel guest-address",
            ..
        }
    );
    assert!(e.to_string().contains("0x50000800"), "{e}");
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[1].doorbell = Some(c2(0x5001_0004).to_vec());
    assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-1",
        ErrorKind::Misaligned {
            what: "doorbell",
            ..
        }
    );
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].guest_address = Some(c2(0x80_0000_0000).to_vec());
    assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::BeyondIpaLimit { .. }
    );
}

/// Everything the partition already sees at a fixed address refuses the channel's windows.
#[test]
fn endpoint_windows_clash_with_nothing_the_partition_sees() {
    let cases: [(u64, &str); 5] = [
        (0x40ff_0000, "memory 0x40000000..0x41000000"),
        (0x0900_0000, "the virtual UART 0x9000000..0x9001000"),
        (0x0800_0000, "the virtual GIC distributor"),
        (0x080a_0000, "the virtual GIC redistributors"),
        (0x0a00_0000, "device /dev@a000000 at 0xa000000..0xa001000"),
    ];
    for (ipa, other) in cases {
        let mut b = Board::with_channel();
        b.part("b").devices = Some(vec![dev(0)]);
        b.chan("ipc0").endpoints[1].guest_address = Some(c2(ipa).to_vec());
        b.chan("ipc0").endpoints[1].doorbell = Some(c2(0x6000_0000).to_vec());
        let e = assert_err!(
            b.load(),
            "/hypervisor/ipc0/endpoint-1",
            ErrorKind::GuestWindowOverlap {
                what: "shared memory",
                ..
            }
        );
        assert!(e.to_string().contains(other), "{ipa:#x}: {e}");
        assert!(e.to_string().contains("in partition b"), "{e}");
        // The doorbell page the same way.
        let mut b = Board::with_channel();
        b.part("b").devices = Some(vec![dev(0)]);
        b.chan("ipc0").endpoints[1].doorbell = Some(c2(ipa).to_vec());
        let e = assert_err!(
            b.load(),
            "/hypervisor/ipc0/endpoint-1",
            ErrorKind::GuestWindowOverlap {
                what: "doorbell page",
                ..
            }
        );
        assert!(e.to_string().contains(other), "{ipa:#x}: {e}");
    }
}

#[test]
fn endpoint_windows_clash_with_its_other_channels_and_each_other() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].doorbell = Some(c2(0x5000_8000).to_vec());
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::GuestWindowOverlap {
            what: "doorbell page",
            ..
        }
    );
    assert!(e.to_string().contains("its own shared memory"), "{e}");

    let mut b = Board::with_channel();
    let mut second = Chan::new("ipc1", 0x4a01_0000);
    // Partition b puts ipc1 on ipc0's doorbell page; partition a is fine.
    second.endpoints[0].guest_address = Some(c2(0x5100_0000).to_vec());
    second.endpoints[0].doorbell = Some(c2(0x5101_0000).to_vec());
    second.endpoints[0].interrupt = Some(vec![101]);
    second.endpoints[1].guest_address = Some(c2(0x5200_0000).to_vec());
    second.endpoints[1].doorbell = Some(c2(0x5001_0000).to_vec());
    second.endpoints[1].interrupt = Some(vec![101]);
    b.channels.push(second);
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc1/endpoint-1",
        ErrorKind::GuestWindowOverlap { .. }
    );
    assert!(
        e.to_string()
            .contains("the doorbell page 0x50010000..0x50011000 of channel ipc0"),
        "{e}"
    );
    // Another partition's addresses are its own business: the same guest addresses in
    // different partitions are fine (ipc0 uses the same ones in a and b).
    assert!(Board::with_channel().load().is_ok());
}

// ---- an endpoint's interrupt ----

#[test]
fn doorbell_interrupts_are_spis_of_their_own() {
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].interrupt = None;
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::EndpointWithoutInterrupt { .. }
    );
    assert!(e.to_string().contains("`doorbell-gpio`"), "{e}");
    let mut b = Board::with_channel();
    b.chan("ipc0").endpoints[0].interrupt = Some(vec![988]);
    assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::DoorbellInterruptNotSpi { number: 988 }
    );
    // The virtual UART's SPI 1 (INTID 33), a passthrough device's SPI 17 (INTID 49).
    let cases: [(u32, &str); 2] = [
        (1, "the virtual UART's interrupt"),
        (17, "an interrupt of device /dev@a001000"),
    ];
    for (spi, other) in cases {
        let mut b = Board::with_channel();
        b.part("a").devices = Some(vec![dev(1)]);
        b.chan("ipc0").endpoints[0].interrupt = Some(vec![spi]);
        let e = assert_err!(
            b.load(),
            "/hypervisor/ipc0/endpoint-0",
            ErrorKind::DoorbellInterruptClash { .. }
        );
        assert!(e.to_string().contains(other), "{e}");
        assert!(e.to_string().contains(&format!("{}", spi + 32)), "{e}");
    }
    // Two doorbells of one partition.
    let mut b = Board::with_channel();
    let mut second = Chan::new("ipc1", 0x4a01_0000);
    for e in &mut second.endpoints {
        e.guest_address = Some(c2(0x5100_0000).to_vec());
        e.doorbell = Some(c2(0x5101_0000).to_vec());
    }
    second.endpoints[0].interrupt = Some(vec![101]);
    b.channels.push(second);
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc1/endpoint-1",
        ErrorKind::DoorbellInterruptClash { intid: 132, .. }
    );
    assert!(
        e.to_string().contains("the doorbell of channel ipc0"),
        "{e}"
    );
}

// ---- doorbell GPIOs ----

fn with_gpio(board: &mut Board, part: &str) {
    let p = board.part(part);
    p.doorbell_gpio = Some(c2(0x0904_0000).to_vec());
    p.doorbell_gpio_interrupt = Some(vec![110]);
}

#[test]
fn with_a_doorbell_gpio_endpoints_have_no_interrupt() {
    let mut b = Board::with_channel();
    with_gpio(&mut b, "b");
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-1",
        ErrorKind::EndpointInterruptWithGpio { .. }
    );
    assert!(e.to_string().contains("remove `interrupt`"), "{e}");
    b.chan("ipc0").endpoints[1].interrupt = None;
    assert!(b.load().is_ok());
}

#[test]
fn a_doorbell_gpio_has_eight_lines() {
    let mut b = Board::default();
    with_gpio(&mut b, "b");
    for n in 0..9u64 {
        let mut ch = Chan::new(&format!("ipc{n}"), 0x4a00_0000 + n * 0x1_0000);
        for e in &mut ch.endpoints {
            e.guest_address = Some(c2(0x5000_0000 + n * 0x10_0000).to_vec());
            e.doorbell = Some(c2(0x5001_0000 + n * 0x10_0000).to_vec());
        }
        ch.endpoints[0].interrupt = Some(vec![100 + n as u32]);
        ch.endpoints[1].interrupt = None;
        b.channels.push(ch);
    }
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc8/endpoint-1",
        ErrorKind::TooManyGpioChannels { lines: 8, .. }
    );
    assert!(e.to_string().contains("partition b"), "{e}");
    b.channels.pop();
    assert!(b.load().is_ok());
}

#[test]
fn the_doorbell_gpio_fits_among_what_the_partition_sees() {
    let mut b = Board::with_channel();
    with_gpio(&mut b, "a");
    b.chan("ipc0").endpoints[0].interrupt = None;
    b.part("a").doorbell_gpio = Some(c2(0x0900_0000).to_vec());
    let e = assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::GuestWindowOverlap {
            what: "doorbell-gpio",
            ..
        }
    );
    assert!(e.to_string().contains("the virtual UART"), "{e}");
    b.part("a").doorbell_gpio = Some(c2(0x0904_0100).to_vec());
    assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::Misaligned {
            what: "doorbell-gpio",
            ..
        }
    );
    b.part("a").doorbell_gpio = Some(c2(0x0904_0000).to_vec());
    b.part("a").doorbell_gpio_interrupt = Some(vec![1]);
    assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::DoorbellInterruptClash { intid: 33, .. }
    );
    b.part("a").doorbell_gpio_interrupt = Some(vec![1000]);
    assert_err!(
        b.load(),
        "/hypervisor/a",
        ErrorKind::DoorbellInterruptNotSpi { number: 1000 }
    );
    // A channel's window on the GPIO's page.
    b.part("a").doorbell_gpio_interrupt = Some(vec![110]);
    b.chan("ipc0").endpoints[0].doorbell = Some(c2(0x0904_0000).to_vec());
    let e = assert_err!(
        b.load(),
        "/hypervisor/ipc0/endpoint-0",
        ErrorKind::GuestWindowOverlap { .. }
    );
    assert!(e.to_string().contains("the doorbell GPIO"), "{e}");
}

#[test]
fn hand_built_models_with_bad_indices_do_not_panic() {
    let mut c = Board::with_channel().load().unwrap();
    c.channels[0].endpoints[1].partition = PartitionId(7);
    let e = validate::validate(&c).unwrap_err();
    assert_eq!(e.node, "/hypervisor/ipc0/endpoint-1");
    assert!(matches!(
        e.kind,
        ErrorKind::IndexOutOfRange {
            what: "partition",
            index: 7
        }
    ));
    // The views answer without panicking: the channel names partition 7, which does not exist.
    assert_eq!(c.endpoints_of(PartitionId(7)).count(), 1);
    assert!(c.virtual_spis(PartitionId(7)).is_empty());
    assert_eq!(c.endpoints_of(PartitionId(1)).count(), 0);
}
