//! The panic path: a panic in the hypervisor is a bug, whatever a guest did. It masks
//! interrupts, reports once (the first CPU to panic; others stop silently), without taking a
//! lock or allocating, and stops the machine.

use aarch64_cpu::registers::{Writeable, DAIF};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use bulkhead_config::PsciConduit;

use super::{console, cpu, firmware};

/// Set by the first CPU that panics.
static PANICKING: AtomicBool = AtomicBool::new(false);
/// The firmware conduit to power off through (0 = SMC, 1 = HVC), once the config is known.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// Records how the firmware is reached, for the panic path.
pub fn set_conduit(conduit: PsciConduit) {
    CONDUIT.store(
        match conduit {
            PsciConduit::Smc => 0,
            PsciConduit::Hvc => 1,
        },
        Ordering::Release,
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
    if !PANICKING.swap(true, Ordering::AcqRel) {
        console::panic_print(format_args!(
            "\n[bulkhead] PANIC on CPU {}: {info}\n[bulkhead] stopping the machine\n",
            cpu::id()
        ));
        let conduit = match CONDUIT.load(Ordering::Acquire) {
            1 => PsciConduit::Hvc,
            _ => PsciConduit::Smc,
        };
        let _ = firmware::system_off(conduit);
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}
