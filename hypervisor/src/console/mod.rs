//! The hypervisor's console: one serial port shared by the `log` output and every partition's
//! virtual UART.
//!
//! No guest ever waits for the UART. What a partition writes goes into its own ring
//! ([`ring::OutputRing`]) and the trap returns; the rings are drained to the UART by the UART's
//! transmit interrupt, which stays on while anything is queued, and a few bytes at a time by a
//! CPU that just queued output and finds the console free (never waiting for room). A partition that
//! out-prints the UART overwrites its own oldest output, never another's, and the console then
//! says so: `[bulkhead] linux: 1234 bytes of output dropped`. Lines of different sources are
//! printed in the order they were completed (the rings' tickets). Until the UART's interrupt is
//! set up (at boot), and when flushing before power-off, draining waits for room instead.
//!
//! On the way out, the multiplexer ([`mux`]) turns each partition's bytes into whole prefixed
//! lines under the escape-sequence policy it documents. The service is generic over the port
//! ([`SerialPort`]); the arch code supplies the real UART driver and reaches the service through
//! the runtime's arch interface.

#![forbid(unsafe_code)]

pub mod escape;
pub mod line;
pub mod mux;
pub mod ring;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

use bulkhead_config::{PartitionId, HYPERVISOR_CONSOLE_NAME};

pub use mux::Mode;
use mux::{ConsoleMux, Input};
use ring::{EventKind, OutputRing};

/// Output each partition may have waiting for the UART before its oldest is dropped: some two
/// seconds of a 115200-baud line, enough for a Linux boot log to ride out a slow UART.
pub const PARTITION_RING: usize = 32 * 1024;
/// The same for the hypervisor's own messages.
pub const HYPERVISOR_RING: usize = 16 * 1024;
/// Line ends (and cuts) remembered per source for ordering lines across sources.
const MAX_EVENTS: usize = 1024;
/// Bytes a CPU that just queued output writes to the UART before it returns to its guest: a
/// few, so that what a guest's trap costs does not depend on what others print. Enough to fill
/// the FIFO past its transmit trigger level (the port sets it low), so the interrupt comes.
const WRITER_BUDGET: usize = 8;
/// Bytes the transmit interrupt writes: a FIFO-full.
const INTERRUPT_BUDGET: usize = 32;
/// Formatted output prepared ahead of the UART (the mux's output for a few lines).
const STAGING: usize = 8 * 1024;
/// The staging buffer is refilled up to this much at a time.
const REFILL_UNTIL: usize = 2 * 1024;
/// Bytes taken from a ring at a time.
const READ_CHUNK: usize = 256;
/// A hypervisor message line longer than this is printed in pieces.
const MAX_MESSAGE_LINE: usize = 512;

/// What typed input asks of the runtime ([`Console::interrupt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typed {
    /// A byte for `partition`'s virtual UART.
    Byte(PartitionId, u8),
    /// Ctrl-T s: print the monitoring table.
    Monitor,
}

/// What the console needs of its serial port.
pub trait SerialPort {
    /// How many bytes the transmitter takes now without waiting (a lower bound).
    fn room(&self) -> usize;
    /// Writes one byte; the caller checked [`room`](Self::room).
    fn write(&self, byte: u8);
    /// Turns the transmit interrupt on (while output waits) or off.
    fn set_tx_interrupt(&self, on: bool);
    /// The next received byte, if any.
    fn read_byte(&self) -> Option<u8>;
}

/// How long a drain may go on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// A few bytes, never waiting: the transmit interrupt does the rest.
    Writer,
    /// From the transmit interrupt: up to a FIFO-full, never waiting.
    Interrupt,
    /// Everything, waiting for room (boot, power-off, no interrupt).
    All,
}

/// Where the reader of one source's ring is.
#[derive(Clone, Copy, Debug, Default)]
struct Reader {
    pos: u64,
    /// Bytes dropped and not yet reported.
    unreported: u64,
}

/// The consumer side: everything that turns the rings into UART bytes, under one lock that
/// producers only ever try.
struct Drainer {
    mux: ConsoleMux,
    /// Formatted bytes waiting for the UART.
    staging: VecDeque<u8>,
    /// One per source: the partitions in config order, then the hypervisor.
    readers: Vec<Reader>,
    /// The hypervisor message line being assembled.
    message: Vec<u8>,
    /// Round-robin start for sources without ordered lines.
    next: usize,
    /// Whether the transmit interrupt is on.
    tx_interrupt: bool,
}

/// The console: a serial port, one output ring per partition and one for the hypervisor, and
/// the multiplexer that drains them.
pub struct Console<S> {
    port: S,
    /// The partitions' rings in config order, then the hypervisor's.
    rings: Vec<Mutex<OutputRing>>,
    tickets: AtomicU64,
    drainer: Mutex<Drainer>,
    /// Set by every producer before it tries to drain: the drainer looks again.
    more: AtomicBool,
    /// The transmit interrupt is set up: producers write only a FIFO-full.
    interrupt_driven: AtomicBool,
}

impl<S: SerialPort> Console<S> {
    /// The console on `port`, multiplexing the partitions named `names` (in config order) for
    /// a console in `mode`.
    pub fn new(port: S, names: Vec<String>, mode: Mode) -> Self {
        let sources = names.len() + 1;
        let mut rings: Vec<_> = (0..names.len())
            .map(|_| Mutex::new(OutputRing::new(PARTITION_RING, MAX_EVENTS)))
            .collect();
        rings.push(Mutex::new(OutputRing::new(HYPERVISOR_RING, MAX_EVENTS)));
        Self {
            port,
            rings,
            tickets: AtomicU64::new(0),
            drainer: Mutex::new(Drainer {
                mux: ConsoleMux::new(names, mode),
                staging: VecDeque::with_capacity(STAGING),
                readers: alloc::vec![Reader::default(); sources],
                message: Vec::with_capacity(MAX_MESSAGE_LINE),
                next: 0,
                tx_interrupt: false,
            }),
            more: AtomicBool::new(false),
            interrupt_driven: AtomicBool::new(false),
        }
    }

    /// The UART's interrupt reaches [`interrupt`](Self::interrupt) from now on: writers stop
    /// waiting for room.
    pub fn set_interrupt_driven(&self) {
        self.interrupt_driven.store(true, Ordering::Release);
    }

    /// Queues a hypervisor message (one or more whole lines), printed without breaking a
    /// partition's line.
    pub fn print(&self, args: core::fmt::Arguments) {
        let mut text = format!("{args}");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        {
            let mut ring = self.hypervisor_ring().lock();
            for b in text.bytes() {
                ring.push(b, &self.tickets);
            }
        }
        self.kick(Drain::Writer);
    }

    /// A byte `partition` wrote to its console. Returns whether the focused partition just
    /// started an unfinished line: the caller shows it a moment later with
    /// [`show_partial`](Self::show_partial) if it is still unfinished.
    pub fn partition_output(&self, partition: PartitionId, byte: u8) -> bool {
        match self.partition_ring(partition) {
            Some(ring) => ring.lock().push(byte, &self.tickets),
            None => return false,
        }
        self.kick(Drain::Writer)
    }

    /// Ends `partition`'s output stream as it is (when it stops): its unfinished line is
    /// printed, and its next run starts on a fresh line with a fresh escape-sequence state.
    pub fn flush_partition(&self, partition: PartitionId) {
        if let Some(ring) = self.partition_ring(partition) {
            ring.lock().cut(&self.tickets);
        }
        self.kick(Drain::Writer);
    }

    /// Shows the focused partition's unfinished line, if it still is.
    pub fn show_partial(&self) -> bool {
        {
            let mut d = self.drainer.lock();
            let Drainer { mux, staging, .. } = &mut *d;
            mux.show_partial(&mut |b: &[u8]| staging.extend(b));
        }
        self.kick(Drain::Interrupt)
    }

    /// The UART's interrupt: takes what was typed, handing each byte meant for a partition and
    /// each request of the console's keys to `deliver` (without holding the console lock) and
    /// announcing focus switches, then sends more of what waits. Returns whether to show a
    /// partial line later, as [`partition_output`](Self::partition_output).
    pub fn interrupt(&self, deliver: &mut dyn FnMut(Typed)) -> bool {
        loop {
            let mut d = self.drainer.lock();
            let Some(byte) = self.port.read_byte() else {
                break;
            };
            match d.mux.input(byte) {
                Input::Deliver { partition, byte } => {
                    drop(d);
                    deliver(Typed::Byte(partition, byte));
                }
                Input::Monitor => {
                    drop(d);
                    deliver(Typed::Monitor);
                }
                Input::Switched { .. } => {
                    let banner = d.mux.focus_banner();
                    let Drainer { mux, staging, .. } = &mut *d;
                    mux.line(banner.as_bytes(), &mut |b: &[u8]| staging.extend(b));
                }
                Input::Consumed => {}
            }
        }
        self.kick(Drain::Interrupt)
    }

    /// Sends what the UART takes now, as its transmit interrupt would (see
    /// [`Hw::console_pump`](crate::runtime::Hw::console_pump)). Returns what
    /// [`partition_output`](Self::partition_output) does.
    pub fn pump(&self) -> bool {
        self.kick(Drain::Interrupt)
    }

    /// Writes everything queued, waiting for the UART: before the machine powers off.
    pub fn flush(&self) {
        let mut d = self.drainer.lock();
        d.run(self, Drain::All);
    }

    /// Drains what waits as `how` allows (everything, before the interrupt is set up), unless
    /// another CPU is at it (it then looks again before it stops).
    fn kick(&self, how: Drain) -> bool {
        let how = if self.interrupt_driven.load(Ordering::Acquire) {
            how
        } else {
            Drain::All
        };
        let mut show_later = false;
        self.more.store(true, Ordering::SeqCst);
        loop {
            let Some(mut d) = self.drainer.try_lock() else {
                return show_later;
            };
            self.more.store(false, Ordering::SeqCst);
            show_later |= d.run(self, how);
            drop(d);
            if !self.more.load(Ordering::SeqCst) {
                return show_later;
            }
        }
    }

    fn partition_ring(&self, partition: PartitionId) -> Option<&Mutex<OutputRing>> {
        // The last ring is the hypervisor's.
        self.rings[..self.rings.len() - 1].get(partition.index())
    }

    fn hypervisor_ring(&self) -> &Mutex<OutputRing> {
        &self.rings[self.rings.len() - 1]
    }
}

impl Drainer {
    /// Moves queued output to the UART as `how` allows. Returns whether the focused partition
    /// started an unfinished line.
    fn run<S: SerialPort>(&mut self, console: &Console<S>, how: Drain) -> bool {
        let port = &console.port;
        let mut show_later = false;
        let mut budget = match how {
            Drain::Writer => WRITER_BUDGET,
            Drain::Interrupt => INTERRUPT_BUDGET,
            Drain::All => usize::MAX,
        };
        let mut room = 0;
        let waiting = loop {
            while let Some(&byte) = self.staging.front() {
                if budget == 0 {
                    break;
                }
                if room == 0 {
                    room = port.room();
                    if room == 0 {
                        if how == Drain::All {
                            core::hint::spin_loop();
                            continue;
                        }
                        break;
                    }
                }
                port.write(byte);
                self.staging.pop_front();
                budget -= 1;
                room -= 1;
            }
            if !self.staging.is_empty() {
                break true;
            }
            match self.refill(console) {
                Some(show) => show_later |= show,
                None => {
                    // Everything waiting is out: the prompt other lines took away comes back.
                    let Drainer { mux, staging, .. } = self;
                    mux.redraw(&mut |b: &[u8]| staging.extend(b));
                    if staging.is_empty() {
                        break false;
                    }
                }
            }
        };
        let interrupt = waiting && how != Drain::All;
        if interrupt != self.tx_interrupt {
            port.set_tx_interrupt(interrupt);
            self.tx_interrupt = interrupt;
        }
        show_later
    }

    /// Formats the next piece of queued output into the staging buffer: the source whose
    /// oldest line end (or cut) came first, up to it; else the unfinished output of the sources
    /// in turn. Returns `None` when nothing is queued, else whether the focused partition
    /// started an unfinished line.
    fn refill<S: SerialPort>(&mut self, console: &Console<S>) -> Option<bool> {
        let sources = console.rings.len();
        let mut first = None;
        let mut unfinished = None;
        for k in 0..sources {
            let i = (self.next + k) % sources;
            let mut ring = console.rings[i].lock();
            let pos = self.readers[i].pos;
            match ring.next_event(pos) {
                Some(e) if first.is_none_or(|(_, f): (usize, ring::Event)| e.ticket < f.ticket) => {
                    first = Some((i, e));
                }
                Some(_) => {}
                None if ring.written() > pos && unfinished.is_none() => unfinished = Some(i),
                None => {}
            }
        }
        let (i, event) = match (first, unfinished) {
            (Some((i, e)), _) => (i, Some(e)),
            (None, Some(i)) => {
                self.next = (i + 1) % sources;
                (i, None)
            }
            (None, None) => return None,
        };
        let limit = event.map_or(u64::MAX, |e| e.at);

        let mut buf = [0u8; READ_CHUNK];
        let mut pos = self.readers[i].pos;
        let (read, written, capacity) = {
            let ring = console.rings[i].lock();
            (
                ring.read(&mut pos, limit, &mut buf),
                ring.written(),
                ring.capacity(),
            )
        };
        let start = pos - read.len as u64;
        let hypervisor = i == sources - 1;
        let partition = PartitionId(i);
        let mut show_later = false;
        if read.lost > 0 {
            self.readers[i].unreported += read.lost;
            self.feed(partition, hypervisor, None);
        }
        let mut fed = 0;
        for &byte in &buf[..read.len] {
            fed += 1;
            show_later |= self.feed(partition, hypervisor, Some(byte));
            if self.staging.len() >= REFILL_UNTIL {
                break;
            }
        }
        let pos = start + fed as u64;
        self.readers[i].pos = pos;
        if let Some(e) = event.filter(|e| pos >= e.at) {
            console.rings[i].lock().consume_event(e);
            if e.kind == EventKind::Cut {
                self.feed(partition, hypervisor, None);
            }
        }
        let reader = &mut self.readers[i];
        if reader.unreported > 0 && (pos >= written || reader.unreported >= capacity) {
            let dropped = core::mem::take(&mut reader.unreported);
            let notice = match self.mux.name(partition) {
                Some(name) if !hypervisor => {
                    format!("[{HYPERVISOR_CONSOLE_NAME}] {name}: {dropped} bytes of output dropped")
                }
                _ => format!(
                    "[{HYPERVISOR_CONSOLE_NAME}] {dropped} bytes of hypervisor messages dropped"
                ),
            };
            let Drainer { mux, staging, .. } = self;
            mux.line(notice.as_bytes(), &mut |b: &[u8]| staging.extend(b));
        }
        Some(show_later)
    }

    /// Formats one byte of a source (`Some`), or ends its stream (`None`: it stopped, or bytes
    /// were lost), printing its unfinished line. Returns whether the focused partition started
    /// an unfinished line.
    fn feed(&mut self, partition: PartitionId, hypervisor: bool, byte: Option<u8>) -> bool {
        let Drainer {
            mux,
            staging,
            message,
            ..
        } = self;
        let out = &mut |b: &[u8]| staging.extend(b);
        if !hypervisor {
            return match byte {
                Some(byte) => mux.write(partition, byte, out),
                None => {
                    mux.flush(partition, out);
                    false
                }
            };
        }
        if let Some(b) = byte.filter(|b| *b != b'\n') {
            message.push(b);
        }
        let line_ends = match byte {
            Some(b'\n') => true,
            Some(_) => message.len() >= MAX_MESSAGE_LINE,
            None => !message.is_empty(),
        };
        if line_ends {
            mux.line(message, out);
            message.clear();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use core::cell::{Cell, RefCell};

    /// A port that records what was written, takes `room` more bytes (then is full until the
    /// test makes room), and replays what was "typed".
    pub struct FakePort {
        pub written: RefCell<Vec<u8>>,
        pub room: Cell<usize>,
        pub tx_interrupt: Cell<bool>,
        pub typed: RefCell<alloc::collections::VecDeque<u8>>,
    }

    impl Default for FakePort {
        fn default() -> Self {
            Self {
                written: RefCell::default(),
                room: Cell::new(usize::MAX),
                tx_interrupt: Cell::new(false),
                typed: RefCell::default(),
            }
        }
    }

    impl FakePort {
        fn text(&self) -> String {
            String::from_utf8(self.written.borrow().clone()).unwrap()
        }
    }

    impl SerialPort for &FakePort {
        fn room(&self) -> usize {
            self.room.get()
        }
        fn write(&self, byte: u8) {
            assert!(self.room.get() > 0, "written while full");
            self.room.set(self.room.get() - 1);
            self.written.borrow_mut().push(byte);
        }
        fn set_tx_interrupt(&self, on: bool) {
            self.tx_interrupt.set(on);
        }
        fn read_byte(&self) -> Option<u8> {
            self.typed.borrow_mut().pop_front()
        }
    }

    fn console(port: &FakePort) -> Console<&FakePort> {
        Console::new(
            port,
            vec!["linux".to_string(), "ticker".to_string()],
            Mode::Terminal,
        )
    }

    fn write_str(console: &Console<&FakePort>, partition: usize, s: &str) {
        for b in s.bytes() {
            console.partition_output(PartitionId(partition), b);
        }
    }

    #[test]
    fn messages_lines_and_input() {
        let port = FakePort::default();
        let console = console(&port);
        console.print(format_args!("[bulkhead] hello\n"));
        write_str(&console, 1, "tick\n");
        assert!(
            console.partition_output(PartitionId(0), b'#'),
            "a prompt starts"
        );
        console.flush_partition(PartitionId(0));
        assert_eq!(
            port.text(),
            "[bulkhead] hello\r\n[ticker] tick\r\n[linux] #\r\n"
        );
        port.written.borrow_mut().clear();
        port.typed.borrow_mut().extend(b"a\x142b\x14s");
        let mut got = Vec::new();
        console.interrupt(&mut |t| got.push(t));
        assert_eq!(
            got,
            [
                Typed::Byte(PartitionId(0), b'a'),
                Typed::Byte(PartitionId(1), b'b'),
                Typed::Monitor
            ]
        );
        assert!(port.text().contains("console input now goes to ticker"));
    }

    #[test]
    fn lines_keep_the_order_they_were_completed_in() {
        let port = FakePort::default();
        port.room.set(0);
        let console = console(&port);
        console.set_interrupt_driven();
        write_str(&console, 1, "tick 1\n");
        write_str(&console, 0, "about to fault\n");
        console.print(format_args!("[bulkhead] partition linux stopped"));
        write_str(&console, 1, "tick 2\n");
        port.room.set(usize::MAX);
        while port.tx_interrupt.get() {
            console.interrupt(&mut |_| {});
        }
        assert_eq!(
            port.text(),
            "[ticker] tick 1\r\n[linux] about to fault\r\n[bulkhead] partition linux \
             stopped\r\n[ticker] tick 2\r\n"
        );
    }

    #[test]
    fn no_writer_waits_and_a_flooding_partition_loses_only_its_own_output() {
        let port = FakePort::default();
        let console = console(&port);
        console.set_interrupt_driven();
        // The UART is stuck (a slow line, a terminal that stopped reading).
        port.room.set(0);
        let flood = PARTITION_RING * 3;
        let mut ticks = 0;
        for n in 0..flood / 64 {
            // 64 bytes a line from linux...
            write_str(&console, 0, &format!("{n:063}\n"));
            // ...and now and then a line from ticker.
            if n % 64 == 0 {
                write_str(&console, 1, &format!("tick {ticks}\n"));
                ticks += 1;
            }
        }
        assert!(port.written.borrow().is_empty());
        assert!(
            port.tx_interrupt.get(),
            "the transmit interrupt waits for room"
        );
        // The UART drains, a FIFO-full per interrupt.
        let mut interrupts = 0;
        while port.tx_interrupt.get() {
            port.room.set(INTERRUPT_BUDGET);
            console.interrupt(&mut |_| {});
            interrupts += 1;
            assert!(interrupts < 100_000);
        }
        let text = port.text();
        let lines: Vec<&str> = text.split("\r\n").collect();
        // Every ticker line arrived, in order.
        let got: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("[ticker] "))
            .collect();
        let want: Vec<String> = (0..ticks).map(|t| format!("tick {t}")).collect();
        assert_eq!(got, want);
        // linux lost its oldest output and is told so, once per ring-full it lost.
        let dropped: u64 = lines
            .iter()
            .filter_map(|l| l.strip_prefix("[bulkhead] linux: "))
            .map(|l| {
                l.strip_suffix(" bytes of output dropped")
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        let linux: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("[linux] "))
            .collect();
        // Exactly what did not fit in its ring (the first line was formatted before the UART
        // stuck, and waited there).
        assert_eq!(dropped as usize, flood / 64 * 64 - PARTITION_RING - 64);
        // What is left of linux's output is its first line and its newest ones.
        assert_eq!(linux.len(), 1 + PARTITION_RING / 64);
        assert_eq!(linux[0], format!("{:063}", 0));
        assert_eq!(
            linux[1],
            format!("{:063}", flood / 64 - PARTITION_RING / 64)
        );
        assert_eq!(
            linux.last().unwrap(),
            &format!("{:063}", flood / 64 - 1).as_str()
        );
    }

    #[test]
    fn the_hypervisor_waits_for_the_uart_until_its_interrupt_is_set_up() {
        let port = FakePort::default();
        let console = console(&port);
        port.room.set(3);
        // Not interrupt-driven: the boot messages must all come out; the fake port would
        // spin forever with no room, so give it room as it asks.
        port.room.set(usize::MAX);
        console.print(format_args!("[bulkhead] booting"));
        assert_eq!(port.text(), "[bulkhead] booting\r\n");
        assert!(!port.tx_interrupt.get());
    }

    #[test]
    fn flush_empties_the_queue() {
        let port = FakePort::default();
        let console = console(&port);
        console.set_interrupt_driven();
        port.room.set(5);
        write_str(&console, 1, "last words before power-off\n");
        assert_eq!(port.written.borrow().len(), 5);
        port.room.set(usize::MAX);
        console.flush();
        assert_eq!(port.text(), "[ticker] last words before power-off\r\n");
        assert!(!port.tx_interrupt.get());
    }
}
