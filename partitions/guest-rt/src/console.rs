//! The guest console: a polled driver for the PL011 UART named by the device tree.
//!
//! Bulkhead emulates the console UART by trapping every access. This driver needs no
//! initialisation and uses the data register (`UARTDR`, offset 0x000: writes transmit, reads
//! receive) and the flag register (`UARTFR`, offset 0x018: `TXFF` and `RXFE`), plus, for a guest
//! that waits for input with interrupts, the interrupt mask (`UARTIMSC`, offset 0x038); it always
//! accesses the registers 32 bits wide.
//!
//! The console used by [`print!`](crate::print)/[`println!`](crate::println) and by the panic
//! handler is selected once at boot (see [`set_global`]); until then, printing is a no-op.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields![u32,
    /// Flag register.
    UARTFR [
        /// Transmit FIFO full: wait before writing `UARTDR`.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty: nothing to read from `UARTDR`.
        RXFE OFFSET(4) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear register: 1 enables an interrupt.
    UARTIMSC [
        /// Receive timeout interrupt.
        RTIM OFFSET(6) NUMBITS(1) [],
        /// Receive interrupt.
        RXIM OFFSET(4) NUMBITS(1) []
    ],
];

register_structs! {
    /// The part of the PL011 register block this driver uses.
    pub Pl011Registers {
        /// Data register: the low 8 bits are the character sent or received.
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        /// Flag register.
        (0x018 => fr: ReadOnly<u32, UARTFR::Register>),
        (0x01c => _reserved1),
        /// Interrupt mask set/clear register.
        (0x038 => imsc: ReadWrite<u32, UARTIMSC::Register>),
        (0x03c => @END),
    }
}

/// A handle on a PL011 UART used for polled console I/O.
#[derive(Clone, Copy)]
pub struct Console {
    regs: &'static Pl011Registers,
}

impl Console {
    /// Creates a console driving the PL011 whose registers start at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a PL011 register block (at least 0x1c bytes of device
    /// memory, 4-byte aligned) that stays mapped for the rest of the program, and nothing else
    /// may use it as ordinary memory.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees that `base` points to a live, suitably aligned PL011
        // register block; `Pl011Registers` only consists of interior-mutable register cells.
        let regs = unsafe { &*(base as *const Pl011Registers) };
        Self { regs }
    }

    /// Returns the address of the register block.
    pub fn base(&self) -> usize {
        self.regs as *const Pl011Registers as usize
    }

    /// Transmits one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.fr.is_set(UARTFR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.set(u32::from(byte));
    }

    /// Transmits `bytes`, turning each `\n` into `\r\n`.
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }

    /// Enables or disables the UART's receive and receive-timeout interrupts (`UARTIMSC.RXIM`,
    /// `RTIM`), leaving the others as they are. Under Bulkhead, input typed before the guest shows
    /// it reads input is held back from an interrupt-driven guest until it takes this interrupt
    /// (see `hypervisor/src/vuart.rs`).
    pub fn set_receive_interrupts(&self, enabled: bool) {
        if enabled {
            self.regs
                .imsc
                .modify(UARTIMSC::RXIM::SET + UARTIMSC::RTIM::SET);
        } else {
            self.regs
                .imsc
                .modify(UARTIMSC::RXIM::CLEAR + UARTIMSC::RTIM::CLEAR);
        }
    }

    /// Returns the next received byte, or `None` if the receive FIFO is empty.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs.fr.is_set(UARTFR::RXFE) {
            None
        } else {
            Some((self.regs.dr.get() & 0xff) as u8)
        }
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Base address of the global console's registers, 0 while there is none.
///
/// Only plain atomic loads and stores are used: the guest runs with the MMU off, where memory is
/// Device memory and exclusive (read-modify-write) accesses are not guaranteed to work.
static GLOBAL_BASE: AtomicUsize = AtomicUsize::new(0);

/// Makes `console` the one used by [`print!`](crate::print), [`println!`](crate::println) and the
/// panic handler.
pub fn set_global(console: Console) {
    GLOBAL_BASE.store(console.base(), Ordering::Release);
}

/// Returns the global console, if one has been set.
pub fn global() -> Option<Console> {
    match GLOBAL_BASE.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: only `set_global` stores a non-zero value, and it takes it from a `Console`,
        // whose constructor's contract makes the address valid for the rest of the program.
        base => Some(unsafe { Console::new(base) }),
    }
}

/// Implementation detail of [`print!`](crate::print) and [`println!`](crate::println).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    if let Some(mut console) = global() {
        // `Console::write_str` never fails.
        let _ = fmt::Write::write_fmt(&mut console, args);
    }
}

/// Prints to the guest console (nothing if there is none).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the guest console (nothing if there is none).
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}
