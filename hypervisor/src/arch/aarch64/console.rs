//! The hypervisor's console on this machine: the portable console service
//! (`crate::console::Console`) on the physical PL011, the `log` backend that prints through it,
//! and the lock-free path for boot errors and panics, which must print without the console.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Once;

use bulkhead_config::HYPERVISOR_CONSOLE_NAME;

use super::uart::Pl011;
use crate::console::{Console, Mode};

static CONSOLE: Once<Console<Pl011>> = Once::new();
/// The console UART's address, for the panic path, which must not take locks or allocate.
static UART_BASE: AtomicUsize = AtomicUsize::new(0);

/// Takes the console UART at `base` and multiplexes it for the named partitions, for a console
/// in `mode`.
///
/// # Safety
/// `base` must be a mapped PL011 that nothing else drives.
pub unsafe fn init(base: usize, partition_names: Vec<String>, mode: Mode) {
    // SAFETY: guaranteed by the caller.
    let uart = unsafe { Pl011::new(base) };
    uart.enable();
    UART_BASE.store(base, Ordering::Release);
    CONSOLE.call_once(|| Console::new(uart, partition_names, mode));
}

/// Writes out everything the console has queued, waiting for the UART: before power-off.
pub fn flush() {
    if let Some(c) = CONSOLE.get() {
        c.flush();
    }
}

/// The console, once there is one.
pub fn console() -> Option<&'static Console<Pl011>> {
    CONSOLE.get()
}

/// Prints a hypervisor message (whole lines).
pub fn print(args: core::fmt::Arguments) {
    if let Some(c) = CONSOLE.get() {
        c.print(args);
    }
}

/// Prints a boot error: on the console if there is one, else on the UART `/chosen` names (a
/// board without a hypervisor console still says why it does not boot).
pub fn print_error(args: core::fmt::Arguments) {
    match CONSOLE.get() {
        Some(c) => c.print(args),
        None => panic_print(args),
    }
}

/// Writes straight to the UART at `base`, without lock or allocation: for boot errors before the
/// console exists (the caller knows the address) and for panics.
pub fn emergency_print(base: usize, args: core::fmt::Arguments) {
    /// `\n` as `\r\n`, byte by byte.
    struct UartWriter(Pl011);
    impl Write for UartWriter {
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
    // SAFETY: used only when nothing else can be relied on to drive the UART (boot failures,
    // panics); the address is a PL011 the board config or device tree names.
    let uart = unsafe { Pl011::new(base) };
    let _ = UartWriter(uart).write_fmt(args);
}

/// Remembers the UART to print boot errors and panics on when there is no console.
pub fn set_emergency_uart(base: usize) {
    let _ = UART_BASE.compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire);
}

/// Prints on the console's UART, or the emergency one, without lock or allocation. (Output the
/// console still has queued is not written first: that could wait for a lock or allocate.)
pub fn panic_print(args: core::fmt::Arguments) {
    let base = UART_BASE.load(Ordering::Acquire);
    if base != 0 {
        emergency_print(base, args);
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
                "[{HYPERVISOR_CONSOLE_NAME}] {:<5} {}\n",
                record.level(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

pub static LOGGER: Logger = Logger;
