//! The physical PL011 the hypervisor owns as its console: transmit without waiting (the console
//! checks for room and takes the transmit interrupt while output waits), interrupt-driven
//! receive. Registers are a `tock-registers` block. It is the console service's serial port.
//!
//! Firmware usually leaves the UART's baud rate set (QEMU's model has none); where it does not
//! (a Raspberry Pi 4, whose firmware sets up the UART on Bluetooth's pins), [`Pl011::set_line`]
//! sets it from the UART's clock.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::console::SerialPort;

register_bitfields! {u32,
    FR [
        BUSY OFFSET(3) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) [],
        TXFE OFFSET(7) NUMBITS(1) [],
            ],
    CR [
        UARTEN OFFSET(0) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        RXE OFFSET(9) NUMBITS(1) [],
    ],
    IFLS [
        /// Transmit interrupt when the FIFO is at most this full.
        TXIFLSEL OFFSET(0) NUMBITS(3) [OneEighth = 0],
    ],
    IMSC [
        RXIM OFFSET(4) NUMBITS(1) [],
        TXIM OFFSET(5) NUMBITS(1) [],
        RTIM OFFSET(6) NUMBITS(1) [],
    ],
    LCR_H [
        FEN OFFSET(4) NUMBITS(1) [],
        WLEN OFFSET(5) NUMBITS(2) [EightBits = 3],
    ],
    IBRD [
        /// Integer part of the baud rate divisor.
        DIVINT OFFSET(0) NUMBITS(16) [],
    ],
    FBRD [
        /// Fractional part of the baud rate divisor, in 64ths.
        DIVFRAC OFFSET(0) NUMBITS(6) [],
    ],
    ICR [
        RXIC OFFSET(4) NUMBITS(1) [],
        RTIC OFFSET(6) NUMBITS(1) [],
        ALL OFFSET(0) NUMBITS(11) [],
    ],
}

register_structs! {
    Pl011Regs {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _r0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _r1),
        (0x024 => ibrd: ReadWrite<u32, IBRD::Register>),
        (0x028 => fbrd: ReadWrite<u32, FBRD::Register>),
        (0x02c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => ifls: ReadWrite<u32, IFLS::Register>),
        (0x038 => imsc: ReadWrite<u32, IMSC::Register>),
        (0x03c => _r3),
        (0x044 => icr: WriteOnly<u32, ICR::Register>),
        (0x048 => @END),
    }
}

/// Transmit FIFO depth of the earliest PL011 revisions (later ones have 32): what an empty FIFO
/// surely takes.
const MIN_FIFO_DEPTH: usize = 16;

/// The hypervisor's console UART.
pub struct Pl011 {
    regs: &'static Pl011Regs,
}

// SAFETY: the registers are MMIO; the console uses its UART only under its drainer lock (the
// panic path aside, which writes whole bytes), so sharing the handle between CPUs is sound.
unsafe impl Send for Pl011 {}
// SAFETY: as for `Send`.
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be a PL011 mapped as device memory for the hypervisor's lifetime, used through
    /// this driver only.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: the caller guarantees `base` points to mapped PL011 registers.
            regs: unsafe { &*(base as *const Pl011Regs) },
        }
    }

    /// Enables transmit and receive and the receive interrupts (firmware may leave it off).
    pub fn enable(&self) {
        self.regs
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        // The transmit interrupt as soon as the FIFO drains below an eighth: the console writes
        // a few bytes at a time from guest traps and relies on it for the rest.
        self.regs.ifls.modify(IFLS::TXIFLSEL::OneEighth);
        self.regs.icr.write(ICR::ALL::SET);
        self.regs.imsc.write(IMSC::RXIM::SET + IMSC::RTIM::SET);
    }

    /// Sets the line to `baud` baud, 8 data bits, no parity, one stop bit, FIFOs on, for a UART
    /// clocked at `clock_hz`. Leaves the UART disabled: [`enable`](Self::enable) follows.
    pub fn set_line(&self, clock_hz: u64, baud: u64) {
        let (int, frac) = baud_divisor(clock_hz, baud);
        self.regs.cr.set(0);
        // What was being sent finishes before the line changes.
        while self.regs.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        self.regs.ibrd.write(IBRD::DIVINT.val(int));
        self.regs.fbrd.write(FBRD::DIVFRAC.val(frac));
        self.regs
            .lcr_h
            .write(LCR_H::WLEN::EightBits + LCR_H::FEN::SET);
    }

    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.set(byte as u32);
    }

    /// The next received byte, if any.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs.dr.get() as u8)
        }
    }
}

/// The PL011's baud rate divisor for `baud` at `clock_hz`: `clock / (16 * baud)` as its integer
/// part and its fraction in 64ths, rounded to the nearest 64th.
pub const fn baud_divisor(clock_hz: u64, baud: u64) -> (u32, u32) {
    let in_64ths = (clock_hz * 4 + baud / 2) / baud;
    ((in_64ths >> 6) as u32, (in_64ths & 63) as u32)
}

/// 115200 baud from the Raspberry Pi 4's 48 MHz UART clock: 26 + 3/64 (0.16% off).
const _: () = assert!(matches!(baud_divisor(48_000_000, 115_200), (26, 3)));

impl SerialPort for Pl011 {
    fn room(&self) -> usize {
        let flags = self.regs.fr.extract();
        if flags.is_set(FR::TXFE) {
            MIN_FIFO_DEPTH
        } else if flags.is_set(FR::TXFF) {
            0
        } else {
            1
        }
    }

    fn write(&self, byte: u8) {
        self.regs.dr.set(u32::from(byte));
    }

    fn set_tx_interrupt(&self, on: bool) {
        self.regs.imsc.modify(if on {
            IMSC::TXIM::SET
        } else {
            IMSC::TXIM::CLEAR
        });
    }

    fn read_byte(&self) -> Option<u8> {
        Pl011::read_byte(self)
    }
}
