//! Round trips to whatever is below the guest: a null hypercall (PSCI `PSCI_VERSION` over HVC,
//! the partition's PSCI conduit; natively QEMU answers it itself) and a trapped MMIO read (the
//! console UART's flag register: in a partition a stage-2 fault emulated by the hypervisor's
//! virtual UART, natively a read of QEMU's PL011). Each sample is one call, timed with the
//! virtual counter around it.

use bulkhead_guest_rt::{counter_ticks, println, GuestDt};
use smccc::psci::PSCI_VERSION;

use crate::samples::{Samples, WARMUP};

/// Offset of the PL011 flag register (`UARTFR`).
const UARTFR: usize = 0x18;

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

/// `mmio`: a 32-bit read of the console UART's `UARTFR`.
pub fn mmio(dt: &GuestDt, samples: &mut Samples, n: usize) {
    let Some(base) = dt.console_base() else {
        println!("bench: error mmio: no console UART in the device tree");
        return;
    };
    let register = (base + UARTFR) as *const u32;
    samples.measure("mmio", n, WARMUP, || {
        let start = counter_ticks();
        // SAFETY: the DT names this PL011 as the console; reading its flag register has no
        // side effects, and with the MMU off its guest-physical address is used directly.
        let _flags = unsafe { register.read_volatile() };
        let end = counter_ticks();
        Ok(end - start)
    });
}
