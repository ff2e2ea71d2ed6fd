//! The `monitor` capability and the monitor window (`monitor-window`): parsing, and every
//! validation rule of `board-configs/README.md`, each refused at the partition node.

mod common;

use bulkhead_config::*;
use common::*;

const A: &str = "/hypervisor/a";

/// Board `a` with the monitor capability and its window at `window`.
fn with_window(window: u64) -> Board {
    let mut b = Board::default();
    let a = b.part("a");
    a.monitor = Some(vec![]);
    a.monitor_window = Some(c2(window).to_vec());
    b
}

#[test]
fn the_capability_and_the_window_parse_into_the_model() {
    let c = with_window(0x0b00_0000)
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.partitions[0].monitor);
    assert_eq!(
        c.partitions[0].monitor_window,
        Some(GuestPhysAddr(0x0b00_0000))
    );
    assert!(!c.partitions[1].monitor);
    assert_eq!(c.partitions[1].monitor_window, None);
    // The capability alone (hypercall only).
    let mut b = Board::default();
    b.part("b").monitor = Some(vec![]);
    let c = b.load().unwrap_or_else(|e| panic!("{e}"));
    assert!(c.partitions[1].monitor && c.partitions[1].monitor_window.is_none());
}

#[test]
fn monitor_is_a_boolean_property() {
    let mut b = Board::default();
    b.part("a").monitor = Some(vec![1]);
    assert_err!(
        b.parse(),
        A,
        ErrorKind::BadPropertyLength {
            property: "monitor",
            len: 4,
            ..
        }
    );
}

#[test]
fn a_window_needs_the_capability() {
    let mut b = with_window(0x0b00_0000);
    b.part("a").monitor = None;
    assert_err!(b.load(), A, ErrorKind::MonitorWindowWithoutMonitor);
    let text = b.load().unwrap_err().to_string();
    assert!(text.contains("add `monitor;`"), "{text}");
}

#[test]
fn the_window_is_a_page_of_its_own() {
    assert_err!(
        with_window(0x0b00_0800).load(),
        A,
        ErrorKind::Misaligned {
            what: "monitor-window",
            ..
        }
    );
    assert_err!(
        with_window(1 << 40).load(),
        A,
        ErrorKind::BeyondIpaLimit { .. }
    );
    // On its memory, its virtual UART, its virtual GIC, its device.
    for (at, other) in [
        (0x4000_1000, "memory"),
        (0x0900_0000, "the virtual UART"),
        (0x0800_0000, "the virtual GIC distributor"),
        (0x0a00_0000, "device /dev@a000000"),
    ] {
        let mut b = with_window(at);
        b.part("a").devices = Some(vec![dev(0)]);
        let e = b.load().unwrap_err();
        assert_eq!(e.node, A);
        match &e.kind {
            ErrorKind::GuestWindowOverlap {
                what: "monitor-window",
                other: o,
                ..
            } if o.starts_with(other) => {}
            _ => panic!("{at:#x}: {e}"),
        }
    }
    // Another partition's device there is no concern of this one: its window is its own.
    let mut b = with_window(0x0a00_0000);
    b.part("b").devices = Some(vec![dev(0)]);
    b.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn doorbells_and_channels_keep_clear_of_the_window() {
    let mut b = with_window(0x0904_0000);
    b.part("a").doorbell_gpio = Some(c2(0x0904_0000).to_vec());
    b.part("a").doorbell_gpio_interrupt = Some(vec![110]);
    let e = b.load().unwrap_err();
    assert!(
        matches!(
            &e.kind,
            ErrorKind::GuestWindowOverlap { what: "doorbell-gpio", other, .. }
                if other.starts_with("the monitor window")
        ),
        "{e}"
    );
    let mut b = Board::with_channel();
    b.part("a").monitor = Some(vec![]);
    b.part("a").monitor_window = Some(c2(0x5001_0000).to_vec());
    let e = b.load().unwrap_err();
    assert_eq!(e.node, "/hypervisor/ipc0/endpoint-0");
    assert!(
        matches!(
            &e.kind,
            ErrorKind::GuestWindowOverlap { what: "doorbell page", other, .. }
                if other.starts_with("the monitor window")
        ),
        "{e}"
    );
}
