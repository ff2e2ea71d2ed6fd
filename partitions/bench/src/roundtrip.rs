//! Round trips to whatever is below the guest: a null hypercall (PSCI `PSCI_VERSION` over HVC,
//! the partition's PSCI conduit; natively QEMU answers it itself), a trapped MMIO read (the GIC
//! distributor's type register: in a partition a stage-2 fault emulated by the hypervisor's
//! virtual GIC, natively a read of QEMU's GIC) and a console write (a byte to the UART's data
//! register: in a partition the whole transmit path, into the console's queue). Each sample is
//! one call, timed with the virtual counter around it.

use bulkhead_guest_rt::{counter_ticks, println, GuestDt};
use smccc::psci::PSCI_VERSION;

use crate::samples::{Samples, WARMUP};

/// Offset of the distributor's type register (`GICD_TYPER`).
const GICD_TYPER: usize = 0x4;
/// Offset of the PL011 data register (`UARTDR`).
const UARTDR: usize = 0x0;
/// What `console-write` writes, a byte per sample: not a `bench:` line, so xtask ignores it.
const CONSOLE_LINE: &[u8; 64] =
    b"console-write sample line .....................................\n";

/// `hypercall`: `hvc #0` with `PSCI_VERSION`.
pub fn hypercall(samples: &mut Samples, n: usize) {
    samples.measure("hypercall", n, WARMUP, || {
        let start = counter_ticks();
        let version: u64;
        // SAFETY: an SMCCC call over HVC: PSCI_VERSION has no effect but returning the version
        // in x0; the call may clobber the caller-saved registers.
        unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") u64::from(PSCI_VERSION) => version,
                clobber_abi("C"),
            );
        }
        let end = counter_ticks();
        if (version as i32) < 0 {
            return Err("PSCI_VERSION failed");
        }
        Ok(end - start)
    });
}

/// `mmio`: a 32-bit read of the GIC distributor's `GICD_TYPER` (in a partition the virtual
/// distributor is trapped and emulated; the console UART's registers are not a trapped
/// round trip any more: a partition reads them from a shadow page while nothing is received).
pub fn mmio(dt: &GuestDt, samples: &mut Samples, n: usize) {
    let Some((gicd, _)) = dt.gic_v3() else {
        println!("bench: error mmio: no GICv3 distributor in the device tree");
        return;
    };
    let register = (gicd + GICD_TYPER) as *const u32;
    samples.measure("mmio", n, WARMUP, || {
        let start = counter_ticks();
        // SAFETY: the DT names this GIC distributor; reading GICD_TYPER has no side effects,
        // and with the MMU off its guest-physical address is used directly.
        let _typer = unsafe { register.read_volatile() };
        let end = counter_ticks();
        Ok(end - start)
    });
}

/// `console-write`: one byte to the console UART's `UARTDR` per sample, never waiting for room
/// (QEMU's PL011 and Bulkhead's virtual UART always have it). The bytes make whole lines.
pub fn console_write(dt: &GuestDt, samples: &mut Samples, n: usize) {
    let Some(base) = dt.console_base() else {
        println!("bench: error console-write: no console UART in the device tree");
        return;
    };
    let register = (base + UARTDR) as *mut u32;
    let write = |byte: u8| {
        // SAFETY: the DT names this PL011 as the console; writing its data register transmits
        // one byte, and with the MMU off its guest-physical address is used directly.
        unsafe { register.write_volatile(u32::from(byte)) };
    };
    let mut next = 0;
    let calls = WARMUP + n;
    samples.measure("console-write", n, WARMUP, || {
        let byte = CONSOLE_LINE[next % CONSOLE_LINE.len()];
        next += 1;
        let start = counter_ticks();
        write(byte);
        let end = counter_ticks();
        if next == calls {
            // The last sample: finish its line (untimed) before the result line is printed.
            while next % CONSOLE_LINE.len() != 0 {
                write(CONSOLE_LINE[next % CONSOLE_LINE.len()]);
                next += 1;
            }
        }
        Ok(end - start)
    });
}
