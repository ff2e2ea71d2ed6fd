//! The hypervisor's console: the physical UART, shared by the `log` backend and the console
//! multiplexer so that log lines and partition lines never interleave mid-line.

use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::{Mutex, Once};

use crate::arch::aarch64::timer;
use crate::arch::aarch64::uart::Pl011;
use crate::console::{ConsoleMux, Input};

struct Console {
    uart: Pl011,
    mux: ConsoleMux,
}

static CONSOLE: Once<Mutex<Console>> = Once::new();
/// The console UART's address, for the panic path, which must not take locks or allocate.
static UART_BASE: AtomicUsize = AtomicUsize::new(0);

struct UartWriter<'a>(&'a Pl011);

impl Write for UartWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(b);
        }
        Ok(())
    }
}

/// Takes the console UART at `base` and sets up the multiplexer for the named partitions.
///
/// # Safety
/// `base` must be a mapped PL011 that nothing else drives.
pub unsafe fn init(base: usize, partition_names: Vec<alloc::string::String>) {
    // SAFETY: guaranteed by the caller.
    let uart = unsafe { Pl011::new(base) };
    uart.enable();
    UART_BASE.store(base, Ordering::Release);
    CONSOLE.call_once(|| {
        Mutex::new(Console {
            uart,
            mux: ConsoleMux::new(partition_names),
        })
    });
}

/// Prints a hypervisor message (one or more whole lines) without breaking a partition's line.
pub fn print(args: core::fmt::Arguments) {
    let Some(c) = CONSOLE.get() else { return };
    let text = alloc::format!("{args}");
    let mut c = c.lock();
    let Console { uart, mux } = &mut *c;
    for line in text.trim_end_matches('\n').split('\n') {
        mux.line(line.as_bytes(), &mut |chunk: &[u8]| uart.write_bytes(chunk));
    }
}

/// Prints from the panic handler: straight to the UART, no lock, no allocation.
pub fn panic_print(args: core::fmt::Arguments) {
    let base = UART_BASE.load(Ordering::Acquire);
    if base != 0 {
        emergency_print(base, args);
    }
}

/// Writes bytes straight to the UART (before the console exists, the caller knows the address).
pub fn emergency_print(base: usize, args: core::fmt::Arguments) {
    // SAFETY: used only when nothing else drives the UART (boot failure paths).
    let uart = unsafe { Pl011::new(base) };
    let _ = UartWriter(&uart).write_fmt(args);
}

/// How long after it starts the focused partition's unfinished line (a prompt) is shown.
const PARTIAL_LINE_DELAY_MS: u64 = 20;

/// A byte a partition wrote to its console.
pub fn partition_output(partition: usize, byte: u8) {
    if let Some(c) = CONSOLE.get() {
        let mut c = c.lock();
        let Console { uart, mux } = &mut *c;
        if mux.write(partition, byte, &mut |line: &[u8]| uart.write_bytes(line)) {
            // Show the partial line if it is still unfinished in a moment (`show_partial_line`).
            timer::arm_ms(PARTIAL_LINE_DELAY_MS);
        }
    }
}

/// Shows the focused partition's unfinished line, if it still is: its delay has passed.
pub fn show_partial_line() {
    timer::cancel();
    if let Some(c) = CONSOLE.get() {
        let mut c = c.lock();
        let Console { uart, mux } = &mut *c;
        mux.show_partial(&mut |chunk: &[u8]| uart.write_bytes(chunk));
    }
}

/// Emits a partition's unfinished line (when it stops).
pub fn flush_partition(partition: usize) {
    if let Some(c) = CONSOLE.get() {
        let mut c = c.lock();
        let Console { uart, mux } = &mut *c;
        mux.flush(partition, &mut |line: &[u8]| uart.write_bytes(line));
    }
}

/// Drains the UART's receive FIFO through the multiplexer, handing each byte meant for a
/// partition to `deliver`.
pub fn drain_input(deliver: &mut dyn FnMut(usize, u8)) {
    let Some(c) = CONSOLE.get() else { return };
    loop {
        let mut c = c.lock();
        let Some(byte) = c.uart.read_byte() else {
            return;
        };
        match c.mux.input(byte) {
            Input::Deliver { partition, byte } => {
                drop(c);
                deliver(partition, byte);
            }
            Input::Switched { .. } => {
                let banner = c.mux.focus_banner();
                let Console { uart, mux } = &mut *c;
                mux.line(banner.as_bytes(), &mut |chunk: &[u8]| {
                    uart.write_bytes(chunk)
                });
            }
            Input::Consumed => {}
        }
    }
}

/// The `log` backend: `[bulkhead] LEVEL message` lines on the console.
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            print(format_args!(
                "[bulkhead] {:<5} {}\n",
                record.level(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

pub static LOGGER: Logger = Logger;
