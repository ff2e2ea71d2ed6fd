//! The hypervisor's console: one serial port shared by the `log` output and every partition's
//! virtual UART, through the multiplexer ([`mux`]) under one lock, so hypervisor messages and
//! partition lines never interleave mid-line.
//!
//! The service is generic over the port ([`SerialPort`]); the arch code supplies the real UART
//! driver and reaches the service through the runtime's arch interface.

#![forbid(unsafe_code)]

pub mod mux;

use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

use bulkhead_config::PartitionId;

use mux::{ConsoleMux, Input};

/// What the console needs of its serial port.
pub trait SerialPort {
    /// Writes `bytes`, waiting for room as needed.
    fn write_bytes(&self, bytes: &[u8]);
    /// The next received byte, if any.
    fn read_byte(&self) -> Option<u8>;
}

struct Inner<S> {
    port: S,
    mux: ConsoleMux,
}

/// The console: a serial port and the multiplexer, under one lock.
pub struct Console<S> {
    inner: Mutex<Inner<S>>,
}

impl<S: SerialPort> Console<S> {
    /// The console on `port`, multiplexing the partitions named `names` (in config order).
    pub fn new(port: S, names: Vec<String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                port,
                mux: ConsoleMux::new(names),
            }),
        }
    }

    /// Prints a hypervisor message (one or more whole lines) without breaking a partition's
    /// line.
    pub fn print(&self, args: core::fmt::Arguments) {
        let text = alloc::format!("{args}");
        let mut c = self.inner.lock();
        let Inner { port, mux } = &mut *c;
        for line in text.trim_end_matches('\n').split('\n') {
            mux.line(line.as_bytes(), &mut |chunk: &[u8]| port.write_bytes(chunk));
        }
    }

    /// A byte `partition` wrote to its console. Returns whether the focused partition just
    /// started an unfinished line: the caller shows it a moment later with
    /// [`show_partial`](Self::show_partial) if it is still unfinished.
    pub fn partition_output(&self, partition: PartitionId, byte: u8) -> bool {
        let mut c = self.inner.lock();
        let Inner { port, mux } = &mut *c;
        mux.write(partition, byte, &mut |line: &[u8]| port.write_bytes(line))
    }

    /// Shows the focused partition's unfinished line, if it still is.
    pub fn show_partial(&self) {
        let mut c = self.inner.lock();
        let Inner { port, mux } = &mut *c;
        mux.show_partial(&mut |chunk: &[u8]| port.write_bytes(chunk));
    }

    /// Emits `partition`'s unfinished line (when it stops).
    pub fn flush_partition(&self, partition: PartitionId) {
        let mut c = self.inner.lock();
        let Inner { port, mux } = &mut *c;
        mux.flush(partition, &mut |line: &[u8]| port.write_bytes(line));
    }

    /// Takes what was typed, handing each byte meant for a partition to `deliver` (without
    /// holding the console lock) and announcing focus switches.
    pub fn drain_input(&self, deliver: &mut dyn FnMut(PartitionId, u8)) {
        loop {
            let mut c = self.inner.lock();
            let Some(byte) = c.port.read_byte() else {
                return;
            };
            match c.mux.input(byte) {
                Input::Deliver { partition, byte } => {
                    drop(c);
                    deliver(partition, byte);
                }
                Input::Switched { .. } => {
                    let banner = c.mux.focus_banner();
                    let Inner { port, mux } = &mut *c;
                    mux.line(banner.as_bytes(), &mut |chunk: &[u8]| {
                        port.write_bytes(chunk)
                    });
                }
                Input::Consumed => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use core::cell::RefCell;

    /// A port that records what was written and replays what was "typed".
    #[derive(Default)]
    pub struct FakePort {
        pub written: RefCell<Vec<u8>>,
        pub typed: RefCell<alloc::collections::VecDeque<u8>>,
    }

    impl SerialPort for &FakePort {
        fn write_bytes(&self, bytes: &[u8]) {
            self.written.borrow_mut().extend_from_slice(bytes);
        }
        fn read_byte(&self) -> Option<u8> {
            self.typed.borrow_mut().pop_front()
        }
    }

    #[test]
    fn messages_lines_and_input() {
        let port = FakePort::default();
        let console = Console::new(&port, vec!["linux".to_string(), "ticker".to_string()]);
        console.print(format_args!("[bulkhead] hello\n"));
        for b in b"tick\n" {
            console.partition_output(PartitionId(1), *b);
        }
        assert!(
            console.partition_output(PartitionId(0), b'#'),
            "a prompt starts"
        );
        console.flush_partition(PartitionId(0));
        assert_eq!(
            String::from_utf8(port.written.borrow().clone()).unwrap(),
            "[bulkhead] hello\r\n[ticker] tick\r\n[linux] #\r\n"
        );
        port.written.borrow_mut().clear();
        port.typed.borrow_mut().extend(b"a\x142b");
        let mut got = Vec::new();
        console.drain_input(&mut |p, b| got.push((p, b)));
        assert_eq!(got, [(PartitionId(0), b'a'), (PartitionId(1), b'b')]);
        assert!(String::from_utf8(port.written.borrow().clone())
            .unwrap()
            .contains("console input now goes to ticker"));
    }
}
