//! The interrupt probe (`foreign-spi=N`): what a partition taking its cores' physical interrupts
//! itself (`direct-interrupts`) can and cannot reach. It takes its own virtual timer's interrupt
//! and its own SGI, then tries to reach other partitions: SGI 3 to the affinities of the other
//! cores (target list Aff0 1..3) and to all but itself, and SPI `N` (another partition's device
//! interrupt) enabled, routed to itself and made pending in its distributor. It prints what it
//! took, one line each, so a test can check that its own interrupts arrive and nobody else's do.

use core::sync::atomic::{AtomicU32, Ordering};

use aarch64_cpu::registers::{Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use bulkhead_guest_rt::gic::{self, VTIMER_INTID};
use bulkhead_guest_rt::{counter_frequency, counter_ticks, irq, mpidr, println};

/// Timer interrupts taken one after the other.
const TICKS: u32 = 20;
/// The SGI the probe sends itself.
const OWN_SGI: u32 = 2;
/// The SGI it sends towards the other cores.
const FOREIGN_SGI: u32 = 3;
/// Interrupts counted by INTID; higher INTIDs count in the last slot.
const COUNTED: usize = 128;

/// Interrupts taken, by INTID.
static TAKEN: [AtomicU32; COUNTED] = [const { AtomicU32::new(0) }; COUNTED];

fn taken(intid: u32) -> u32 {
    TAKEN
        .get(intid as usize)
        .map_or(0, |n| n.load(Ordering::Acquire))
}

/// The IRQ handler: counts every interrupt and silences the timer until it is armed again.
fn handler(_count: u64) {
    while let Some(intid) = gic::acknowledge() {
        if intid == VTIMER_INTID {
            CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
        }
        let slot = (intid as usize).min(COUNTED - 1);
        TAKEN[slot].fetch_add(1, Ordering::AcqRel);
        gic::end(intid);
    }
}

/// Waits with IRQs unmasked until `done` or `ms` milliseconds passed; returns `done()`.
fn wait(ms: u64, done: impl Fn() -> bool) -> bool {
    let until = counter_ticks() + counter_frequency() * ms / 1000;
    irq::unmask();
    while !done() && counter_ticks() < until {
        core::hint::spin_loop();
    }
    irq::mask();
    done()
}

/// Runs the probe; `foreign_spi` is another partition's SPI (its INTID).
pub fn probe(foreign_spi: u32) {
    println!("trespasser: probing interrupts");
    irq::set_handler(handler);

    gic::enable_private(VTIMER_INTID);
    let period = counter_frequency() / 1000;
    for tick in 0..TICKS {
        CNTV_CVAL_EL0.set(counter_ticks() + period);
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
        if !wait(1000, || taken(VTIMER_INTID) > tick) {
            break;
        }
    }
    println!(
        "trespasser: timer interrupts taken {} of {TICKS}",
        taken(VTIMER_INTID)
    );

    gic::enable_private(OWN_SGI);
    gic::send_sgi(OWN_SGI, mpidr());
    wait(100, || taken(OWN_SGI) > 0);
    println!("trespasser: own SGI {OWN_SGI} taken {}", taken(OWN_SGI));

    gic::enable_private(FOREIGN_SGI);
    let others = (gic::sgi1r(FOREIGN_SGI, 1) & !0xffff) | 0b1110;
    let all_but_self = (1 << 40) | (u64::from(FOREIGN_SGI) << 24);
    for value in [others, all_but_self] {
        // SAFETY: writing ICC_SGI1R_EL1 only raises SGIs (trapped to the hypervisor, which
        // decides where they go).
        unsafe { core::arch::asm!("msr icc_sgi1r_el1, {0}", "isb", in(reg) value) };
    }
    wait(50, || taken(FOREIGN_SGI) > 0);
    println!(
        "trespasser: SGI {FOREIGN_SGI} to the other cores taken {}",
        taken(FOREIGN_SGI)
    );

    gic::enable_spi(foreign_spi, mpidr());
    gic::set_pending_spi(foreign_spi);
    wait(50, || taken(foreign_spi) > 0);
    println!(
        "trespasser: foreign SPI {foreign_spi} taken {}",
        taken(foreign_spi)
    );
    let mine = [VTIMER_INTID, OWN_SGI];
    let others: u32 = (0..COUNTED as u32)
        .filter(|i| !mine.contains(i))
        .map(taken)
        .sum();
    println!("trespasser: other interrupts taken {others}");
}
