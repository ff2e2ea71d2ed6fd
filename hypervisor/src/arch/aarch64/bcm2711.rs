//! What the Raspberry Pi 4's SoC (BCM2711) needs beyond the Arm architecture, found by its device
//! tree's `compatible` strings: the PM block's watchdog, through which the board resets and
//! powers off (there is no PSCI firmware), and the console's pins and baud rate (the firmware
//! sets the PL011's clock but, with Bluetooth on it, neither its pins nor its baud rate).
//!
//! The watchdog's values are those of Linux's `bcm2835_wdt` driver and QEMU's model: every write
//! carries the password 0x5a in its top byte; `PM_WDOG` counts down in 1/65536 s ticks; when it
//! expires, `PM_RSTC.WRCFG` = full reset resets the SoC. Before that, `PM_RSTS` gets the
//! partition number 63 (in its interleaved bits, 0x555), which the Pi's boot firmware takes as
//! "halt": the board stays off instead of booting again. QEMU exits on the reset when run with
//! `-no-reboot`.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

use bulkhead_config::{BoardConfig, HostRange};

/// `compatible` of the PM block with the watchdog.
const PM_WATCHDOG: &str = "brcm,bcm2835-pm-wdt";
/// `compatible` of the GPIO controller.
const GPIO: &str = "brcm,bcm2711-gpio";

/// Every write to a PM register carries this in its top byte.
const PM_PASSWORD: u32 = 0x5a;
/// Watchdog ticks before the reset: 10 of 1/65536 s, at once for a person.
const WATCHDOG_TICKS: u32 = 10;

register_bitfields! {u32,
    PM_RSTC [
        PASSWORD OFFSET(24) NUMBITS(8) [],
        /// What the watchdog's expiry does.
        WRCFG OFFSET(4) NUMBITS(2) [FullReset = 2],
    ],
    PM_RSTS [
        PASSWORD OFFSET(24) NUMBITS(8) [],
        /// The partition the firmware boots next, in bits 0, 2, ..., 10: 63 (0x555) is "halt,
        /// do not boot".
        PARTITION OFFSET(0) NUMBITS(11) [Halt = 0x555],
    ],
    PM_WDOG [
        PASSWORD OFFSET(24) NUMBITS(8) [],
        TIME OFFSET(0) NUMBITS(20) [],
    ],
    GPFSEL1 [
        /// GPIO 14's function: ALT0 is the PL011's TXD.
        FSEL14 OFFSET(12) NUMBITS(3) [Alt0 = 0b100],
        /// GPIO 15's function: ALT0 is the PL011's RXD.
        FSEL15 OFFSET(15) NUMBITS(3) [Alt0 = 0b100],
    ],
}

register_structs! {
    PmRegs {
        (0x00 => _before),
        (0x1c => rstc: ReadWrite<u32, PM_RSTC::Register>),
        (0x20 => rsts: ReadWrite<u32, PM_RSTS::Register>),
        (0x24 => wdog: ReadWrite<u32, PM_WDOG::Register>),
        (0x28 => @END),
    },
    GpioRegs {
        (0x00 => _gpfsel0),
        (0x04 => gpfsel1: ReadWrite<u32, GPFSEL1::Register>),
        (0x08 => @END),
    }
}

/// The first register range of the platform device compatible with `compatible`.
fn device(config: &BoardConfig, compatible: &str) -> Option<HostRange> {
    config
        .platform
        .devices
        .iter()
        .find(|d| d.compatible.iter().any(|c| c == compatible))
        .and_then(|d| d.regs.first().copied())
}

/// The PM block with the watchdog, if the platform has one.
pub fn watchdog(config: &BoardConfig) -> Option<HostRange> {
    device(config, PM_WATCHDOG)
}

/// The GPIO controller, if the platform has a BCM2711's.
pub fn gpio(config: &BoardConfig) -> Option<HostRange> {
    device(config, GPIO)
}

/// Halts the board through the PM watchdog at `base`: marks the next boot as a halt, then has
/// the watchdog reset the SoC at once. Returns when the reset is under way.
///
/// # Safety
/// `base` must be the PM block's registers, mapped as device memory (or the MMU off).
pub unsafe fn watchdog_halt(base: usize) {
    // SAFETY: guaranteed by the caller.
    let pm = unsafe { &*(base as *const PmRegs) };
    pm.rsts
        .modify(PM_RSTS::PASSWORD.val(PM_PASSWORD) + PM_RSTS::PARTITION::Halt);
    pm.wdog
        .write(PM_WDOG::PASSWORD.val(PM_PASSWORD) + PM_WDOG::TIME.val(WATCHDOG_TICKS));
    pm.rstc
        .modify(PM_RSTC::PASSWORD.val(PM_PASSWORD) + PM_RSTC::WRCFG::FullReset);
    // (A read makes sure the writes left before the caller waits.)
    let _ = pm.rstc.get();
}

/// Puts GPIO 14 and 15 (header pins 8 and 10) on the PL011, where the console is.
///
/// # Safety
/// `base` must be the GPIO controller's registers, mapped as device memory, used by nothing
/// else at the same time.
pub unsafe fn console_pins(base: usize) {
    // SAFETY: guaranteed by the caller.
    let gpio = unsafe { &*(base as *const GpioRegs) };
    gpio.gpfsel1
        .modify(GPFSEL1::FSEL14::Alt0 + GPFSEL1::FSEL15::Alt0);
}
