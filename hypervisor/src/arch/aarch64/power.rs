//! Powering the machine off: PSCI `SYSTEM_OFF` through the platform firmware where there is one,
//! else the board's own power controller (a Raspberry Pi 4's PM watchdog, [`super::bcm2711`]),
//! else nothing but stopping. Chosen once the board config is known ([`configure`]) and kept in
//! atomics, so the panic path can power off without a lock. Before that, PSCI through SMC is
//! tried (what QEMU virt with EL2 has).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bulkhead_config::{BoardConfig, PsciConduit};

use super::{bcm2711, firmware};

/// How the machine is powered off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// PSCI `SYSTEM_OFF`.
    Psci(PsciConduit),
    /// The BCM2711's PM watchdog, whose registers are at this address.
    PmWatchdog(usize),
    /// Nothing powers the machine off: stop the CPUs.
    Stop,
}

const PSCI_SMC: u8 = 0;
const PSCI_HVC: u8 = 1;
const PM_WATCHDOG: u8 = 2;
const STOP: u8 = 3;

static METHOD: AtomicU8 = AtomicU8::new(PSCI_SMC);
static WATCHDOG: AtomicUsize = AtomicUsize::new(0);

/// How `config`'s platform powers off.
pub fn method_of(config: &BoardConfig) -> Method {
    match (config.platform.psci, bcm2711::watchdog(config)) {
        (Some(conduit), _) => Method::Psci(conduit),
        (None, Some(pm)) => Method::PmWatchdog(pm.base.raw() as usize),
        (None, None) => Method::Stop,
    }
}

/// Records how to power off from now on. A watchdog's registers must stay mapped.
pub fn configure(method: Method) {
    let code = match method {
        Method::Psci(PsciConduit::Smc) => PSCI_SMC,
        Method::Psci(PsciConduit::Hvc) => PSCI_HVC,
        Method::PmWatchdog(base) => {
            WATCHDOG.store(base, Ordering::Relaxed);
            PM_WATCHDOG
        }
        Method::Stop => STOP,
    };
    METHOD.store(code, Ordering::Release);
}

/// Tries to power the machine off, without lock or allocation. Returns why it did not (the
/// firmware refused, or there is nothing to power off with); once the power controller has
/// been told, it returns `Ok` while the reset happens.
pub fn attempt() -> Result<(), &'static str> {
    let psci = |conduit| match firmware::system_off(conduit) {
        smccc::psci::Error::NotSupported => Err("the firmware does not support SYSTEM_OFF"),
        _ => Err("the firmware refused SYSTEM_OFF"),
    };
    match METHOD.load(Ordering::Acquire) {
        PSCI_SMC => psci(PsciConduit::Smc),
        PSCI_HVC => psci(PsciConduit::Hvc),
        PM_WATCHDOG => {
            // SAFETY: `configure` got the PM block's address from the board config, and boot
            // keeps its registers mapped as device memory.
            unsafe { bcm2711::watchdog_halt(WATCHDOG.load(Ordering::Relaxed)) };
            Ok(())
        }
        _ => Err("the platform has neither PSCI firmware nor a power controller Bulkhead knows"),
    }
}
