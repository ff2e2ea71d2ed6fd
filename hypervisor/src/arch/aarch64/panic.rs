//! The panic path: a panic in the hypervisor is a bug, whatever a guest did. It masks
//! interrupts, reports once (the first CPU to panic; others stop silently), without taking a
//! lock or allocating, and stops the machine.

use aarch64_cpu::registers::{Writeable, DAIF};
use core::sync::atomic::{AtomicBool, Ordering};

use super::{console, cpu, power};

/// Set by the first CPU that panics.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
    if !PANICKING.swap(true, Ordering::AcqRel) {
        console::panic_print(format_args!(
            "\n[bulkhead] PANIC on CPU {}: {info}\n[bulkhead] stopping the machine\n",
            cpu::id()
        ));
        // Lock-free: how to power off was recorded in atomics at boot.
        let _ = power::attempt();
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}
