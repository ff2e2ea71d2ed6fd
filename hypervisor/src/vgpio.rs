//! A virtual Arm PL061 GPIO controller whose lines are channel doorbells: a partition's
//! *doorbell GPIO* (see `docs/channels.md`).
//!
//! Debian's arm64 kernel has no `uio_pdrv_genirq`, but it has `gpio-pl061` and the GPIO
//! character device built in, so Linux userspace can wait for a doorbell as an edge on a GPIO
//! line without a kernel module. This module is the register-level model of the PL061 (Arm
//! PrimeCell GPIO, DDI 0190) as that driver uses it; the runtime (`runtime::channel`) traps the
//! partition's accesses to its window here and [`DoorbellGpio::ring`]s line `n` when the peer
//! of the partition's `n`-th channel rings.
//!
//! - The lines are inputs held low; a ring is a short pulse on the line: it latches the line's
//!   bit in `GPIORIS` whatever the trigger configuration (`GPIOIS`, `GPIOIBE` and `GPIOIEV` are
//!   stored and read back, not interpreted: there is no level to sense). `GPIOMIS` is
//!   `GPIORIS & GPIOIE`, a write of `GPIOIC` clears `GPIORIS` bits, and the controller's one
//!   (level) interrupt is asserted while `GPIOMIS` is not zero ([`DoorbellGpio::asserted`]).
//! - `GPIODATA` (0x000..0x3FC) is address-masked (bits \[9:2\] of the offset select the lines):
//!   reads return the output lines' data (`GPIODIR` set) and 0 for inputs; writes change the
//!   selected lines' data. `GPIODIR` and `GPIOAFSEL` are stored.
//! - The PrimeCell ID registers (0xFE0..0xFFC) read part 0x061, designer Arm, revision 1, and
//!   the PrimeCell ID 0xB105F00D, which is what Linux's AMBA bus matches `gpio-pl061` on.
//! - Registers are 8 bits wide in 32-bit slots; 8-, 16- and 32-bit naturally aligned accesses
//!   are served (Linux uses `readb`/`writeb`; the AMBA bus reads the IDs with `readl`). A
//!   narrow read returns the addressed bytes, a write to the upper bytes of a slot is ignored.
//!   Other offsets of the 4 KiB window read 0 and ignore writes; 64-bit, misaligned and
//!   out-of-window accesses are refused with [`MmioError`].

#![forbid(unsafe_code)]

use bulkhead_config::guest_view::{DOORBELL_GPIO_LINES, DOORBELL_GPIO_SIZE};

use crate::mmio::{check_access, MmioError};

// Register offsets.
const DATA_END: u64 = 0x400;
const DIR: u64 = 0x400;
const IS: u64 = 0x404;
const IBE: u64 = 0x408;
const IEV: u64 = 0x40c;
const IE: u64 = 0x410;
const RIS: u64 = 0x414;
const MIS: u64 = 0x418;
const IC: u64 = 0x41c;
const AFSEL: u64 = 0x420;
const ID_BASE: u64 = 0xfe0;

/// `GPIOPeriphID0..3` and `GPIOPCellID0..3` at 0xFE0..0xFFC: part 0x061, designer Arm (0x41),
/// revision 1, and the PrimeCell ID 0xB105F00D (QEMU's PL061 reports the same).
pub const ID_REGS: [u8; 8] = [0x61, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The registers of one doorbell GPIO. See the [module documentation](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoorbellGpio {
    data: u8,
    dir: u8,
    is: u8,
    ibe: u8,
    iev: u8,
    ie: u8,
    ris: u8,
    afsel: u8,
}

/// The lines the controller has, as a bit mask.
const LINES: u8 = if DOORBELL_GPIO_LINES >= 8 {
    0xff
} else {
    (1u8 << DOORBELL_GPIO_LINES) - 1
};

impl DoorbellGpio {
    /// The reset state: every line an input, interrupts masked, nothing latched.
    pub const fn new() -> Self {
        Self {
            data: 0,
            dir: 0,
            is: 0,
            ibe: 0,
            iev: 0,
            ie: 0,
            ris: 0,
            afsel: 0,
        }
    }

    /// The masked interrupt status: the lines that interrupt.
    pub const fn mis(&self) -> u8 {
        self.ris & self.ie
    }

    /// Whether the controller's interrupt is asserted.
    pub const fn asserted(&self) -> bool {
        self.mis() != 0
    }

    /// A ring of the channel on `line`: latches the line's edge in `GPIORIS`. Returns whether
    /// that makes a line interrupt that did not (a new edge of the controller's output).
    pub fn ring(&mut self, line: usize) -> bool {
        let Some(bit) = u8::try_from(line)
            .ok()
            .filter(|&l| usize::from(l) < DOORBELL_GPIO_LINES)
            .map(|l| 1u8 << l)
        else {
            return false;
        };
        let before = self.mis();
        self.ris |= bit;
        self.mis() & !before != 0
    }

    /// The 8-bit register at slot `reg`.
    fn register(&self, reg: u64) -> u8 {
        match reg {
            r if r < DATA_END => self.data & self.dir & ((r >> 2) as u8),
            DIR => self.dir,
            IS => self.is,
            IBE => self.ibe,
            IEV => self.iev,
            IE => self.ie,
            RIS => self.ris,
            MIS => self.mis(),
            AFSEL => self.afsel,
            r if r >= ID_BASE => ID_REGS[((r - ID_BASE) / 4) as usize],
            _ => 0,
        }
    }

    /// A guest read of `size` bytes at `offset`.
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, MmioError> {
        let (reg, lane) = check_access(offset, size, DOORBELL_GPIO_SIZE)?;
        let value = u64::from(self.register(reg)) >> (8 * lane);
        Ok(value & (u64::MAX >> (64 - 8 * u32::from(size))))
    }

    /// A guest write of `value` (`size` bytes) at `offset`. Returns whether it made a line
    /// interrupt that did not (unmasking a latched edge).
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<bool, MmioError> {
        let (reg, lane) = check_access(offset, size, DOORBELL_GPIO_SIZE)?;
        if lane != 0 {
            // The upper bytes of an 8-bit register: nothing there.
            return Ok(false);
        }
        let before = self.mis();
        let byte = value as u8 & LINES;
        match reg {
            r if r < DATA_END => {
                let mask = (r >> 2) as u8;
                self.data = (self.data & !mask) | (byte & mask);
            }
            DIR => self.dir = byte,
            IS => self.is = byte,
            IBE => self.ibe = byte,
            IEV => self.iev = byte,
            IE => self.ie = byte,
            IC => self.ris &= !byte,
            AFSEL => self.afsel = byte,
            // RIS, MIS and the IDs are read-only; the rest is reserved.
            _ => {}
        }
        Ok(self.mis() & !before != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primecell_ids_as_the_amba_bus_reads_them() {
        let g = DoorbellGpio::new();
        let word = |offset| g.read(offset, 4).unwrap() as u32;
        let periphid = (0..4).fold(0, |id, n| id | (word(0xfe0 + 4 * n) & 0xff) << (8 * n));
        let cellid = (0..4).fold(0, |id, n| id | (word(0xff0 + 4 * n) & 0xff) << (8 * n));
        // What Linux's amba bus matches gpio-pl061 on (id 0x00041061, mask 0x000fffff).
        assert_eq!(periphid & 0x000f_ffff, 0x0004_1061);
        assert_eq!(cellid, 0xb105_f00d);
        assert_eq!(g.read(0xfe0, 1), Ok(0x61));
    }

    /// The sequence Linux's gpio-pl061 and the GPIO character device go through for a rising
    /// edge event on line 2: probe masks, the line is made an input with a rising-edge
    /// interrupt and unmasked; a ring raises the interrupt; the handler reads MIS, acks with
    /// IC; the line drops.
    #[test]
    fn a_ring_as_linux_sees_it() {
        let mut g = DoorbellGpio::new();
        assert_eq!(g.write(IE, 1, 0), Ok(false));
        assert_eq!(g.write(DIR, 1, 0), Ok(false));
        // Edge (IS = 0), single edge (IBE = 0), rising (IEV = 1).
        g.write(IS, 1, 0).unwrap();
        g.write(IBE, 1, 0).unwrap();
        g.write(IEV, 1, 1 << 2).unwrap();
        // Linux acks a stale edge before unmasking.
        g.write(IC, 1, 1 << 2).unwrap();
        assert_eq!(g.write(IE, 1, 1 << 2), Ok(false));
        assert!(!g.asserted());

        assert!(g.ring(2), "a new edge raises the interrupt");
        assert!(g.asserted());
        assert!(!g.ring(2), "a second ring before the ack coalesces");
        assert_eq!(g.read(MIS, 1), Ok(1 << 2));
        assert_eq!(g.read(RIS, 1), Ok(1 << 2));
        assert_eq!(g.write(IC, 1, 1 << 2), Ok(false));
        assert!(!g.asserted());
        assert_eq!(g.read(RIS, 1), Ok(0));
        assert!(g.ring(2), "the next ring is a new edge");
        // The stored configuration reads back.
        assert_eq!(g.read(IEV, 1), Ok(1 << 2));
        assert_eq!(g.read(IE, 4), Ok(1 << 2));
    }

    #[test]
    fn a_masked_line_latches_and_interrupts_once_unmasked() {
        let mut g = DoorbellGpio::new();
        assert!(!g.ring(5), "masked: latched only");
        assert_eq!(g.read(RIS, 1), Ok(1 << 5));
        assert_eq!(g.read(MIS, 1), Ok(0));
        assert_eq!(g.write(IE, 1, 1 << 5), Ok(true), "unmasking raises it");
        assert_eq!(g.write(IE, 1, 1 << 5), Ok(false), "already raised");
        assert!(!g.ring(8), "no line 8");
        assert!(!g.ring(usize::MAX));
        // RIS and MIS are read-only.
        g.write(RIS, 1, 0).unwrap();
        g.write(MIS, 1, 0).unwrap();
        assert_eq!(g.read(MIS, 1), Ok(1 << 5));
    }

    #[test]
    fn data_is_address_masked_and_reads_outputs_only() {
        let mut g = DoorbellGpio::new();
        g.write(DIR, 1, 0b0000_0011).unwrap();
        // Offset bits [9:2] select lines 0 and 2: line 0 is written, line 2 is an input.
        g.write((0b101) << 2, 1, 0xff).unwrap();
        assert_eq!(g.read(0x3fc, 1), Ok(0b0000_0001));
        assert_eq!(g.read(0b10 << 2, 1), Ok(0), "line 1 was not selected");
        g.write(0x3fc, 1, 0b10).unwrap();
        assert_eq!(g.read(0x3fc, 1), Ok(0b10));
        assert_eq!(g.read(0x000, 1), Ok(0), "no line selected");
    }

    #[test]
    fn access_widths() {
        let mut g = DoorbellGpio::new();
        g.write(AFSEL, 4, 0xffff_ff0f).unwrap();
        assert_eq!(g.read(AFSEL, 4), Ok(0x0f), "8-bit registers");
        assert_eq!(g.read(AFSEL, 2), Ok(0x0f));
        assert_eq!(g.read(AFSEL + 1, 1), Ok(0), "upper bytes read 0");
        g.write(AFSEL + 1, 1, 0xff).unwrap();
        assert_eq!(g.read(AFSEL, 1), Ok(0x0f), "upper-byte writes are ignored");
        assert_eq!(g.read(0x800, 4), Ok(0), "reserved");
        assert_eq!(g.write(0x800, 4, 1), Ok(false));
        assert_eq!(g.read(DIR, 8), Err(MmioError::UnsupportedSize(8)));
        assert_eq!(
            g.write(DIR + 2, 4, 0),
            Err(MmioError::Misaligned {
                offset: 0x402,
                size: 4
            })
        );
        assert_eq!(g.read(0x1000, 4), Err(MmioError::OutOfRange(0x1000)));
    }
}
