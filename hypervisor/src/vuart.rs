//! A virtual Arm PL011 UART, one per partition that has a console.
//!
//! This module owns the register-level model of the PL011 (Arm PrimeCell UART, DDI 0183) as the
//! guest sees it: the trap handler forwards each decoded MMIO access to the UART's 4 KiB window
//! here, bytes the guest transmits go to a caller-supplied sink (normally the console
//! multiplexer), and the hypervisor feeds received bytes in with [`VirtualPl011::push_input`].
//! [`VirtualPl011::interrupt_pending`] tells the interrupt code whether to assert the UART's
//! virtual SPI.
//!
//! The model is complete enough for Linux's `amba-pl011` driver (and its earlycon) to probe and
//! run it, interrupt-driven or polled. Simplifications, all invisible to a well-behaved driver:
//!
//! - Transmission is instantaneous: every `UARTDR` write is handed to the sink at once, so the TX
//!   FIFO is always empty (`FR.TXFE` = 1, `FR.TXFF` = `FR.BUSY` = 0). Bytes are transmitted even
//!   if `CR.UARTEN`/`CR.TXE` are clear, so a guest's early console works before it programs the
//!   UART; the baud rate and line-control settings are stored and read back but have no effect.
//! - The receive FIFO is a [`RX_FIFO_CAPACITY`]-byte ring rather than 16/32 entries; received
//!   bytes are accepted whether or not `CR.RXE` is set, and `LCR_H.FEN` only changes the RX
//!   interrupt trigger level (to 1 byte when FIFOs are "disabled"). Trigger levels from `IFLS`
//!   are taken as fractions of the real 32-entry FIFO (4, 8, 16, 24, 28 bytes).
//! - There is no timing, so the receive-timeout interrupt (RT) is raised as soon as a byte arrives
//!   and stays raised while the FIFO is non-empty, until cleared through `ICR` or by draining.
//!   The TX interrupt is raised after every transmitted byte (the FIFO has drained below its
//!   trigger level) and cleared through `ICR`, matching the PL011's edge-like TX behaviour that
//!   Linux relies on (it enables `TXIM` only while it has data queued).
//! - No line errors, break, modem-status or DMA activity ever happens: `RSR` reads 0, the modem
//!   lines read as inactive, `DMACR` is stored only. Writes to `UARTDR` bits above 7 are ignored.
//! - 8- and 16-bit accesses are allowed at any naturally aligned offset; reads return the
//!   addressed bytes of the 32-bit register, a narrow write to the low byte(s) of a register writes
//!   the zero-extended value, and a narrow write to the upper bytes is ignored.
//! - Reads from reserved offsets in the 4 KiB window return 0 and writes are ignored; 64-bit,
//!   misaligned or out-of-window accesses are rejected with [`MmioError`].

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;

use crate::mmio::check_access;
use crate::mmio::MmioError;

/// Size of the register window of one PL011.
pub const PL011_WINDOW: u64 = 0x1000;

/// Capacity of the receive ring. [`VirtualPl011::push_input`] refuses bytes beyond it.
pub const RX_FIFO_CAPACITY: usize = 4096;

/// Depth of the FIFO the guest believes it has (for the `IFLS` trigger levels).
const HW_FIFO_DEPTH: usize = 32;

// Register offsets.
const DR: u64 = 0x000;
const RSR_ECR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const ID_BASE: u64 = 0xfe0;

/// `UARTPeriphID0..3` and `UARTPCellID0..3`, at 0xFE0..0xFFC: part 0x011, designer Arm (0x41),
/// revision 1 (r1p3, what QEMU also reports), and the PrimeCell ID 0xB105F00D.
const ID_REGS: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

// Flag register bits.
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;

// LCR_H bits.
const LCR_H_FEN: u32 = 1 << 4;

/// Interrupt bits, as in `IMSC`/`RIS`/`MIS`/`ICR`.
pub mod int {
    /// Receive interrupt.
    pub const RX: u32 = 1 << 4;
    /// Transmit interrupt.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout interrupt.
    pub const RT: u32 = 1 << 6;
    /// All 11 interrupt bits (modem, RX, TX, RT, error).
    pub const ALL: u32 = 0x7ff;
}

// Reset values.
const CR_RESET: u32 = 0x0300; // TXE | RXE
const IFLS_RESET: u32 = 0x12; // both trigger levels at 1/2

/// The state of one virtual PL011.
#[derive(Debug)]
pub struct VirtualPl011 {
    rx: VecDeque<u8>,
    /// Input that arrived while the receiver was closed (see [`VirtualPl011::open_rx`]).
    held: VecDeque<u8>,
    rx_open: bool,
    /// The guest polls (uses no interrupts): held input is visible, and reading it opens the
    /// receiver. Set by the caller before each access, see [`set_polled`](Self::set_polled).
    polled: bool,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    /// Latched raw interrupt status (see module docs for how each bit is set and cleared).
    ris: u32,
    dmacr: u32,
}

impl Default for VirtualPl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualPl011 {
    /// A UART in its reset state with an empty receive FIFO.
    pub fn new() -> Self {
        Self {
            rx: VecDeque::new(),
            held: VecDeque::new(),
            rx_open: false,
            polled: false,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    /// Handles a guest read of `size` bytes at `offset` within the register window.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, MmioError> {
        let (reg, lane) = check_access(offset, size, PL011_WINDOW)?;
        let value = match reg {
            // Only a read that covers the data byte pops the FIFO.
            DR if lane == 0 => self.pop_rx(),
            RSR_ECR => 0,
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            DMACR => self.dmacr,
            ID_BASE..=0xffc => u32::from(ID_REGS[((reg - ID_BASE) / 4) as usize]),
            // ICR is write-only; everything else is reserved.
            _ => 0,
        };
        let shifted = value >> (8 * lane);
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (8 * u32::from(size))) - 1
        };
        Ok(u64::from(shifted & mask))
    }

    /// Handles a guest write of `size` bytes at `offset`; transmitted bytes go to `tx`.
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        tx: &mut dyn FnMut(u8),
    ) -> Result<(), MmioError> {
        let (reg, lane) = check_access(offset, size, PL011_WINDOW)?;
        if lane != 0 {
            // Writes to the upper bytes of a register only touch reserved or rarely used bits;
            // see the module docs.
            return Ok(());
        }
        let value = (value & u64::from(u32::MAX)) as u32;
        let value = if size == 4 {
            value
        } else {
            value & ((1 << (8 * u32::from(size))) - 1)
        };
        match reg {
            DR => {
                tx(value as u8);
                // The byte left the (virtual) TX FIFO immediately, which is now below its
                // trigger level.
                self.ris |= int::TX;
            }
            RSR_ECR => {} // clears (nonexistent) errors
            ILPR => self.ilpr = value & 0xff,
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => {
                self.lcr_h = value & 0xff;
                self.update_rx_interrupts();
            }
            CR => self.cr = value & 0xff87,
            IFLS => {
                self.ifls = value & 0x3f;
                self.update_rx_interrupts();
            }
            IMSC => self.imsc = value & int::ALL,
            ICR => self.ris &= !(value & int::ALL),
            DMACR => self.dmacr = value & 0x7,
            // FR, RIS, MIS, the ID registers and reserved offsets are read-only / reserved.
            _ => {}
        }
        Ok(())
    }

    /// Queues a received byte for the guest. Returns `false` (and changes nothing) if the receive
    /// FIFO is full; the caller keeps the byte and retries after the guest has read some.
    pub fn push_input(&mut self, byte: u8) -> bool {
        if self.rx.len() + self.held.len() >= RX_FIFO_CAPACITY {
            return false;
        }
        if !self.rx_open {
            self.held.push_back(byte);
            return true;
        }
        self.receive(byte);
        true
    }

    /// Whether reading any register has no effect and every value changes only through a
    /// write: nothing received, nothing held back. While the UART is quiet, the hypervisor can
    /// show its registers ([`registers`](Self::registers)) in a read-only page and trap only
    /// writes.
    pub fn is_quiet(&self) -> bool {
        self.rx.is_empty() && self.held.is_empty()
    }

    /// Each 32-bit register's offset and the value a read returns now (for a quiet UART, with
    /// no effect). Offsets not listed (reserved, write-only) read as zero.
    pub fn registers(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let ids = (0..ID_REGS.len()).map(|i| (ID_BASE + 4 * i as u64, u32::from(ID_REGS[i])));
        [
            // An empty FIFO reads as 0 (see `pop_rx`).
            (DR, self.rx.front().map_or(0, |b| u32::from(*b))),
            (RSR_ECR, 0),
            (FR, self.flags()),
            (ILPR, self.ilpr),
            (IBRD, self.ibrd),
            (FBRD, self.fbrd),
            (LCR_H, self.lcr_h),
            (CR, self.cr),
            (IFLS, self.ifls),
            (IMSC, self.imsc),
            (RIS, self.ris),
            (MIS, self.ris & self.imsc),
            (DMACR, self.dmacr),
        ]
        .into_iter()
        .chain(ids)
    }

    /// Whether input is being held back (the receiver is closed and something arrived).
    pub fn has_held_input(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether the receiver is open: input is visible in the FIFO.
    pub fn rx_is_open(&self) -> bool {
        self.rx_open
    }

    /// Opens the receiver: input held back so far enters the FIFO, and later input goes there
    /// directly.
    ///
    /// Input that arrives before the guest is ready is held back rather than put in the FIFO,
    /// because drivers drain the FIFO when they start (Linux's `amba-pl011` discards up to twice
    /// the FIFO depth when its tty is opened) and would lose what was typed ahead. The receiver
    /// opens once the guest shows it reads input: it took the UART's interrupt (the caller
    /// sees that), or, polling, it reads `DR` (see [`set_polled`](Self::set_polled)).
    pub fn open_rx(&mut self) {
        if self.rx_open {
            return;
        }
        self.rx_open = true;
        while let Some(byte) = self.held.pop_front() {
            self.receive(byte);
        }
    }

    /// Tells the model whether the guest currently polls the UART rather than using its
    /// interrupt. A polling guest sees held input in `FR` and opens the receiver by reading
    /// `DR`; an interrupt-driven one only when it takes the interrupt (the caller then calls
    /// [`open_rx`](Self::open_rx)). A driver's start-up drain runs with interrupts configured, so
    /// it finds the FIFO empty either way; an early console that only transmits never reads `DR`.
    pub fn set_polled(&mut self, polled: bool) {
        self.polled = polled;
    }

    /// Puts `byte` in the guest-visible FIFO (there is room: checked by the caller).
    fn receive(&mut self, byte: u8) {
        if self.rx.capacity() == 0 {
            // Allocate the ring once, on first use, so idle UARTs cost nothing.
            self.rx.reserve_exact(RX_FIFO_CAPACITY);
        }
        self.rx.push_back(byte);
        // No timing is modelled, so the receive timeout has "expired" as soon as data sits in the
        // FIFO.
        self.ris |= int::RT;
        if self.rx.len() >= self.rx_trigger_level() {
            self.ris |= int::RX;
        }
    }

    /// Number of received bytes the guest has not read yet.
    pub fn rx_len(&self) -> usize {
        self.rx.len() + self.held.len()
    }

    /// Whether the UART's interrupt line is asserted (`UARTMIS` != 0), or input is held back
    /// while the guest has receive interrupts unmasked (the interrupt is what opens the
    /// receiver, see [`open_rx`](Self::open_rx)).
    pub fn interrupt_pending(&self) -> bool {
        self.ris & self.imsc != 0 || (!self.held.is_empty() && self.imsc & (int::RX | int::RT) != 0)
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        debug_assert_eq!(fr & FR_TXFF, 0);
        let held_visible = self.polled && !self.held.is_empty();
        if self.rx.is_empty() && !held_visible {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= RX_FIFO_CAPACITY {
            fr |= FR_RXFF;
        }
        fr
    }

    fn pop_rx(&mut self) -> u32 {
        if self.polled && !self.held.is_empty() {
            self.open_rx();
        }
        let byte = self.rx.pop_front();
        self.update_rx_interrupts();
        // An empty FIFO reads as 0 (the real UART returns stale data).
        byte.map_or(0, u32::from)
    }

    /// RX trigger level in bytes, from `IFLS.RXIFLSEL` when FIFOs are enabled.
    fn rx_trigger_level(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        match (self.ifls >> 3) & 0x7 {
            0 => HW_FIFO_DEPTH / 8,
            1 => HW_FIFO_DEPTH / 4,
            2 => HW_FIFO_DEPTH / 2,
            3 => HW_FIFO_DEPTH * 3 / 4,
            // 4 is 7/8; 5-7 are reserved and treated like it.
            _ => HW_FIFO_DEPTH * 7 / 8,
        }
    }

    /// Drops the RX and RT conditions once their cause is gone. (They are only ever raised by
    /// new data arriving, in `push_input`.)
    fn update_rx_interrupts(&mut self) {
        if self.rx.len() < self.rx_trigger_level() {
            self.ris &= !int::RX;
        }
        if self.rx.is_empty() {
            self.ris &= !int::RT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn write(uart: &mut VirtualPl011, offset: u64, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        uart.write(offset, 4, value, &mut |b| out.push(b)).unwrap();
        out
    }

    fn read(uart: &mut VirtualPl011, offset: u64) -> u64 {
        uart.read(offset, 4).unwrap()
    }

    /// A UART whose guest is ready for input.
    fn open_uart() -> VirtualPl011 {
        let mut uart = VirtualPl011::new();
        uart.open_rx();
        uart
    }

    #[test]
    fn input_is_held_until_the_receiver_opens() {
        let mut uart = VirtualPl011::new();
        assert!(uart.push_input(b'l'));
        assert!(uart.push_input(b's'));
        // A driver draining the FIFO at start-up finds it empty and loses nothing.
        assert_eq!(read(&mut uart, FR) & u64::from(FR_RXFE), u64::from(FR_RXFE));
        assert_eq!(read(&mut uart, DR), 0);
        assert_eq!(uart.rx_len(), 2);
        // Without receive interrupts unmasked, held input raises nothing.
        assert!(!uart.interrupt_pending());
        write(&mut uart, IMSC, u64::from(int::RX | int::RT));
        assert!(
            uart.interrupt_pending(),
            "held input must raise the interrupt that opens it"
        );
        uart.open_rx();
        assert_eq!(read(&mut uart, FR) & u64::from(FR_RXFE), 0);
        assert_eq!(read(&mut uart, DR), u64::from(b'l'));
        assert_eq!(read(&mut uart, DR), u64::from(b's'));
        assert!(uart.push_input(b'!'));
        assert_eq!(
            read(&mut uart, DR),
            u64::from(b'!'),
            "once open, input goes straight in"
        );
    }

    #[test]
    fn a_polling_guest_sees_held_input_and_opens_the_receiver_by_reading() {
        let mut uart = VirtualPl011::new();
        uart.push_input(b'k');
        uart.set_polled(true);
        assert_eq!(
            read(&mut uart, FR) & u64::from(FR_RXFE),
            0,
            "polling guests see held input"
        );
        assert!(
            !uart.rx_is_open(),
            "reading FR (as an early console does) opens nothing"
        );
        assert_eq!(read(&mut uart, DR), u64::from(b'k'));
        assert!(uart.rx_is_open());
    }

    #[test]
    fn held_input_counts_against_the_capacity() {
        let mut uart = VirtualPl011::new();
        for i in 0..RX_FIFO_CAPACITY {
            assert!(uart.push_input(i as u8));
        }
        assert!(!uart.push_input(0));
        uart.open_rx();
        assert_eq!(uart.rx_len(), RX_FIFO_CAPACITY);
        assert_eq!(read(&mut uart, DR), 0);
        assert_eq!(read(&mut uart, DR), 1);
    }

    #[test]
    fn a_quiet_uart_reads_as_its_register_list_says() {
        let mut uart = open_uart();
        write(&mut uart, IMSC, u64::from(int::TX | int::RX));
        write(&mut uart, DR, u64::from(b'x'));
        assert!(uart.is_quiet());
        let listed: alloc::collections::BTreeMap<u64, u32> = uart.registers().collect();
        for offset in (0..PL011_WINDOW).step_by(4) {
            let want = listed.get(&offset).copied().unwrap_or(0);
            assert_eq!(
                read(&mut uart, offset),
                u64::from(want),
                "offset {offset:#x}"
            );
        }
        // Input makes it not quiet: reading DR would take the byte.
        uart.push_input(b'a');
        assert!(!uart.is_quiet());
    }

    #[test]
    fn reset_state() {
        let mut uart = open_uart();
        assert_eq!(read(&mut uart, FR), u64::from(FR_TXFE | FR_RXFE));
        assert_eq!(read(&mut uart, CR), 0x300);
        assert_eq!(read(&mut uart, IFLS), 0x12);
        assert_eq!(read(&mut uart, IMSC), 0);
        assert_eq!(read(&mut uart, RIS), 0);
        assert!(!uart.interrupt_pending());
    }

    #[test]
    fn id_registers_match_real_pl011() {
        let mut uart = open_uart();
        let ids: Vec<u64> = (0..8).map(|i| read(&mut uart, 0xfe0 + 4 * i)).collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        // Read-only.
        assert!(write(&mut uart, 0xfe0, 0xff).is_empty());
        assert_eq!(read(&mut uart, 0xfe0), 0x11);
    }

    #[test]
    fn transmit_goes_to_sink() {
        let mut uart = open_uart();
        assert_eq!(write(&mut uart, DR, 0x41), b"A");
        // Upper bits of DR are ignored; byte-wide access to DR also transmits.
        assert_eq!(write(&mut uart, DR, 0xf42), b"B");
        let mut out = Vec::new();
        uart.write(DR, 1, b'C'.into(), &mut |b| out.push(b))
            .unwrap();
        assert_eq!(out, b"C");
        // Other registers never transmit.
        assert!(write(&mut uart, CR, 0x301).is_empty());
    }

    #[test]
    fn receive_and_flags() {
        let mut uart = open_uart();
        assert!(uart.push_input(b'x'));
        assert!(uart.push_input(b'y'));
        assert_eq!(read(&mut uart, FR) & u64::from(FR_RXFE), 0);
        assert_eq!(read(&mut uart, DR), u64::from(b'x'));
        assert_eq!(read(&mut uart, DR), u64::from(b'y'));
        assert_ne!(read(&mut uart, FR) & u64::from(FR_RXFE), 0);
        // Reading an empty FIFO is harmless.
        assert_eq!(read(&mut uart, DR), 0);
    }

    #[test]
    fn rx_fifo_is_bounded_and_never_drops() {
        let mut uart = open_uart();
        for i in 0..RX_FIFO_CAPACITY {
            assert!(uart.push_input(i as u8));
        }
        assert!(!uart.push_input(0xaa));
        assert_ne!(read(&mut uart, FR) & u64::from(FR_RXFF), 0);
        assert_eq!(read(&mut uart, DR), 0);
        assert!(uart.push_input(0xaa));
        for i in 1..RX_FIFO_CAPACITY {
            assert_eq!(read(&mut uart, DR), (i as u8).into());
        }
        assert_eq!(read(&mut uart, DR), 0xaa);
        assert_eq!(uart.rx_len(), 0);
    }

    #[test]
    fn rx_and_timeout_interrupts() {
        let mut uart = open_uart();
        write(&mut uart, IMSC, u64::from(int::RX | int::RT));
        assert!(!uart.interrupt_pending());
        uart.push_input(b'a');
        // FIFOs disabled: RX triggers on one byte; RT as well.
        assert_eq!(read(&mut uart, MIS), u64::from(int::RX | int::RT));
        assert!(uart.interrupt_pending());
        read(&mut uart, DR);
        assert_eq!(read(&mut uart, RIS), 0);
        assert!(!uart.interrupt_pending());

        // FIFOs enabled, RX trigger at 1/8 (4 bytes of 32).
        write(&mut uart, LCR_H, u64::from(LCR_H_FEN | 0x60));
        write(&mut uart, IFLS, 0);
        for b in b"abc" {
            uart.push_input(*b);
        }
        assert_eq!(read(&mut uart, RIS), u64::from(int::RT));
        uart.push_input(b'd');
        assert_eq!(read(&mut uart, RIS), u64::from(int::RX | int::RT));
        read(&mut uart, DR);
        assert_eq!(read(&mut uart, RIS), u64::from(int::RT));
        // RT is cleared by ICR even while data remains.
        write(&mut uart, ICR, u64::from(int::RT));
        assert_eq!(read(&mut uart, RIS), 0);
        assert!(!uart.interrupt_pending());
        assert_eq!(uart.rx_len(), 3);
    }

    #[test]
    fn tx_interrupt_after_transmit_cleared_by_icr() {
        let mut uart = open_uart();
        write(&mut uart, IMSC, u64::from(int::TX));
        // Like the real PL011, an empty FIFO alone does not raise TX.
        assert!(!uart.interrupt_pending());
        write(&mut uart, DR, u64::from(b'z'));
        assert!(uart.interrupt_pending());
        assert_eq!(read(&mut uart, MIS), u64::from(int::TX));
        write(&mut uart, ICR, int::ALL.into());
        assert!(!uart.interrupt_pending());
        // Masked TX: raw status set, no interrupt.
        write(&mut uart, IMSC, 0);
        write(&mut uart, DR, u64::from(b'z'));
        assert_eq!(read(&mut uart, RIS), u64::from(int::TX));
        assert!(!uart.interrupt_pending());
    }

    #[test]
    fn config_registers_read_back() {
        let mut uart = open_uart();
        write(&mut uart, IBRD, 0x1_0027);
        write(&mut uart, FBRD, 0xff);
        write(&mut uart, LCR_H, 0x70);
        write(&mut uart, CR, 0x301);
        write(&mut uart, ILPR, 0x5);
        write(&mut uart, DMACR, 0x7);
        assert_eq!(read(&mut uart, IBRD), 0x27);
        assert_eq!(read(&mut uart, FBRD), 0x3f);
        assert_eq!(read(&mut uart, LCR_H), 0x70);
        assert_eq!(read(&mut uart, CR), 0x301);
        assert_eq!(read(&mut uart, ILPR), 0x5);
        assert_eq!(read(&mut uart, DMACR), 0x7);
        // ICR is write-only, RIS/MIS/FR read-only.
        assert_eq!(read(&mut uart, ICR), 0);
        write(&mut uart, RIS, 0x7ff);
        assert_eq!(read(&mut uart, RIS), 0);
    }

    #[test]
    fn access_checks() {
        let mut uart = open_uart();
        let mut sink = |_| panic!("nothing should be transmitted");
        assert_eq!(uart.read(DR, 8), Err(MmioError::UnsupportedSize(8)));
        assert_eq!(
            uart.write(DR, 8, 0x41, &mut sink),
            Err(MmioError::UnsupportedSize(8))
        );
        assert_eq!(uart.read(0, 3), Err(MmioError::UnsupportedSize(3)));
        assert_eq!(
            uart.read(0x2, 4),
            Err(MmioError::Misaligned { offset: 2, size: 4 })
        );
        assert_eq!(uart.read(0x1000, 4), Err(MmioError::OutOfRange(0x1000)));
        assert_eq!(uart.read(u64::MAX, 1), Err(MmioError::OutOfRange(u64::MAX)));
        // Reserved offsets: RAZ/WI.
        assert_eq!(uart.read(0x100, 4), Ok(0));
        assert_eq!(uart.write(0x100, 4, 0x41, &mut sink), Ok(()));
        // Narrow reads see the addressed bytes; writes to upper lanes are ignored.
        assert_eq!(uart.read(0xfe0, 1), Ok(0x11));
        assert_eq!(uart.read(CR + 1, 1), Ok(0x03));
        assert_eq!(uart.read(CR, 2), Ok(0x300));
        assert_eq!(uart.write(DR + 1, 1, 0x41, &mut sink), Ok(()));
        assert_eq!(uart.read(FR, 2), Ok(u64::from(FR_TXFE | FR_RXFE)));
    }
}
