//! Inter-processor interrupt latency between the partition's two vCPUs: vCPU 0 sends SGI 1 to
//! vCPU 1 (`ICC_SGI1R_EL1`) and measures from the virtual count just before the write to the
//! count at vCPU 1's IRQ vector. vCPU 1 (started with PSCI `CPU_ON`) idles in `wfi` with IRQs
//! unmasked between samples, as an idle core waiting for work does; vCPU 0 waits a random
//! 20-60 µs before each SGI so vCPU 1 is back in `wfi`.
//!
//! vCPU 0 waits with `yield` in its loop: in QEMU's single-threaded icount mode that hands the
//! host thread to vCPU 1 at once, so the icount figure is the delivery path's instructions
//! rather than QEMU's round-robin time slice.
//!
//! In a partition the SGI register write traps to the hypervisor, which queues the virtual SGI
//! and kicks vCPU 1's physical core with a physical SGI; natively QEMU's GIC delivers it. Both
//! vCPUs read the same virtual counter (one `CNTVOFF` per partition).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bulkhead_guest_rt::{
    counter_frequency, counter_ticks, gic, irq, println, start_vcpu, vcpu_id, GuestDt, VcpuStack,
};

use crate::samples::{spin_until, Rng, Samples, WARMUP};
use crate::stats::ns_to_ticks;

/// The SGI used.
const SGI: u32 = 1;

static STACK: VcpuStack = VcpuStack::new();
/// vCPU 1 is up and waits for SGIs.
static READY: AtomicBool = AtomicBool::new(false);
/// SGIs vCPU 1 has taken (only vCPU 1 writes it).
static TAKEN: AtomicU64 = AtomicU64::new(0);
/// The virtual count at vCPU 1's vector for the last SGI (written before `TAKEN`).
static TAKEN_AT: AtomicU64 = AtomicU64::new(0);

/// `ipi`.
pub fn run(dt: &GuestDt, samples: &mut Samples, n: usize) {
    let Some(target) = dt.cpu_mpidrs().nth(1) else {
        println!("bench: error ipi: the guest has only one vCPU");
        return;
    };
    irq::set_handler(on_irq);
    if let Err(e) = start_vcpu(target, &STACK, receiver) {
        println!("bench: error ipi: cannot start vCPU 1 ({target:#x}): {e}");
        return;
    }
    let frequency = counter_frequency();
    let give_up = counter_ticks() + frequency;
    while !READY.load(Ordering::Acquire) {
        if counter_ticks() > give_up {
            println!("bench: error ipi: vCPU 1 did not come up within a second");
            return;
        }
        yield_to_other_vcpus();
    }
    let mut rng = Rng::new(0x1b1);
    let (min_pause, spread) = (
        ns_to_ticks(20_000, frequency),
        ns_to_ticks(40_000, frequency),
    );
    samples.measure("ipi", n, WARMUP, || {
        spin_until(counter_ticks() + rng.between(min_pause, spread));
        let taken = TAKEN.load(Ordering::Acquire);
        let sent = counter_ticks();
        gic::send_sgi(SGI, target);
        while TAKEN.load(Ordering::Acquire) == taken {
            if counter_ticks() > sent + frequency {
                return Err("SGI not taken by vCPU 1 within a second");
            }
            yield_to_other_vcpus();
        }
        Ok(TAKEN_AT.load(Ordering::Relaxed).saturating_sub(sent))
    });
}

/// A `yield` hint, for loops waiting for vCPU 1: QEMU's single-threaded (icount) mode moves on
/// to the next vCPU at a YIELD, so vCPU 1 runs at once instead of after vCPU 0's time slice
/// (which, spent spinning, can be longer than the waits' one-second limit); elsewhere it does
/// nothing.
fn yield_to_other_vcpus() {
    // SAFETY: a hint without architectural effect.
    unsafe { core::arch::asm!("yield", options(nomem, nostack)) };
}

/// vCPU 1: take SGIs, idle in between.
fn receiver() -> ! {
    gic::enable_private(SGI);
    READY.store(true, Ordering::Release);
    irq::unmask();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// The IRQ handler during `ipi` (on vCPU 1).
fn on_irq(count: u64) {
    if let Some(intid) = gic::acknowledge() {
        if intid == SGI && vcpu_id() != 0 {
            TAKEN_AT.store(count, Ordering::Relaxed);
            TAKEN.store(TAKEN.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        gic::end(intid);
    }
}
