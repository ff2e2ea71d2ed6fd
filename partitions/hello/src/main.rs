//! `hello`: Bulkhead's demonstration guest.
//!
//! Introduces itself with everything it learnt from its device tree and `MPIDR_EL1`, counts
//! `count=N` (boot argument, default 10; `count=0` counts forever) steps `period=MS`
//! milliseconds apart (default 200) on its console, then powers its partition off with PSCI
//! `SYSTEM_OFF`.
//!
//! Each step prints the guest's elapsed time since it started, read from the virtual counter
//! (`CNTVCT_EL0` / `CNTFRQ_EL0`): `count 12/600 at 2400 ms` (`count 12 at 2400 ms` when
//! counting forever). Steps are due at fixed times (start + i × period), so the printed times
//! show how late the guest got to run: a test can check it never stalls for long.
//!
//! With `monitor=1` it then prints every partition's counters as the hypervisor's monitoring
//! table, read with the `MONITOR_READ` hypercall (`monitor: ` before each line), or the error
//! the hypervisor answers (`monitor: MONITOR_READ refused: DENIED (-4)` for a partition without
//! the `monitor` capability), before it powers off.
//!
//! With `flood=1` it prints instead `count` numbered 100-byte lines (`flood 17 xxxx...`) as fast
//! as it can (`count=0`: forever), then powers off: a partition out-printing the console, for
//! the tests and benchmarks of the console's isolation.
//!
//! With `scrub=N` it checks instead that the hypervisor scrubs its memory between runs: it
//! counts the words of its free memory that are not zero (`scrub: run 2 of 3: 16236 KiB of free
//! memory, 0 words not zero`), fills all of it with a pattern and restarts its partition with
//! PSCI `SYSTEM_RESET`, until it has run `N` times (its restart count read with `MONITOR_READ`,
//! so the partition needs `monitor`); then it powers off.
//!
//! On a host target this compiles to an empty stub, so the workspace builds everywhere.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use bulkhead_config::monitor::{Field, Row, Table, FIELDS, WINDOW_PARTITIONS};
    use bulkhead_guest_rt::{
        counter_frequency, counter_ticks, free_memory, hypercall, mpidr, parse_u64, power_off,
        println, reset, sleep_until, vcpu_id, GuestDt,
    };

    /// Number of steps counted without a `count=` boot argument.
    const DEFAULT_COUNT: u64 = 10;
    /// Pause between two steps without a `period=` boot argument, in milliseconds.
    const DEFAULT_PERIOD_MS: u64 = 200;

    bulkhead_guest_rt::entry!(main);

    fn main(dt: GuestDt) -> ! {
        let start = counter_ticks();
        let name = dt.partition_name();
        bulkhead_guest_rt::print!(
            "hello from {name}: vCPU {} of {} (MPIDR {:#x}), memory",
            vcpu_id(),
            dt.cpu_count(),
            mpidr()
        );
        for (i, range) in dt.memory_regions().enumerate() {
            let separator = if i == 0 { " " } else { ", " };
            bulkhead_guest_rt::print!("{separator}{range}");
        }
        println!();

        let count = bootarg_or(&dt, name, "count", DEFAULT_COUNT, |_| true);
        if bootarg_or(&dt, name, "flood", 0, |v| v <= 1) == 1 {
            flood(count);
            println!("hello from {name}: done, powering off");
            power_off()
        }
        let runs = bootarg_or(&dt, name, "scrub", 0, |_| true);
        if runs > 0 {
            scrub(&dt, name, runs);
        }
        let period = bootarg_or(&dt, name, "period", DEFAULT_PERIOD_MS, |ms| ms > 0);

        let frequency = counter_frequency().max(1);
        let ticks_per_period = u128::from(frequency) * u128::from(period) / 1000;
        let elapsed_ms = || {
            let ticks = counter_ticks().wrapping_sub(start);
            u128::from(ticks) * 1000 / u128::from(frequency)
        };
        let mut i: u64 = 0;
        while count == 0 || i < count {
            i += 1;
            // Step i is due at start + i periods: waiting for that, not for a period after the
            // previous print, keeps the schedule from drifting and shows any stall as a gap.
            let due = u128::from(start) + u128::from(i) * ticks_per_period;
            sleep_until(u64::try_from(due).unwrap_or(u64::MAX));
            if count == 0 {
                println!("count {i} at {} ms", elapsed_ms());
            } else {
                println!("count {i}/{count} at {} ms", elapsed_ms());
            }
        }

        if bootarg_or(&dt, name, "monitor", 0, |v| v <= 1) == 1 {
            print_monitor();
        }
        println!("hello from {name}: done, powering off");
        power_off()
    }

    /// Prints the monitoring table of every partition, read with `MONITOR_READ`.
    fn print_monitor() {
        let mut rows = [Row {
            fields: [0; FIELDS],
        }; WINDOW_PARTITIONS];
        let mut n = 0;
        while n < rows.len() {
            match hypercall::monitor_row(n as u64) {
                Ok(row) => rows[n] = row,
                // Past the last partition.
                Err(hypercall::Error::InvalidParameters) if n > 0 => break,
                Err(e) => {
                    println!("monitor: MONITOR_READ refused: {e}");
                    return;
                }
            }
            n += 1;
        }
        bulkhead_guest_rt::print!(
            "{}",
            Table {
                rows: &rows[..n],
                prefix: "monitor: "
            }
        );
    }

    /// Counts the words of free memory that are not zero, fills it with a pattern and restarts
    /// the partition, until this is run `runs`; then powers off.
    fn scrub(dt: &GuestDt, name: &str, runs: u64) -> ! {
        let restarts = hypercall::partition_info()
            .and_then(|me| hypercall::monitor_row(me.partition))
            .map(|row| row.get(Field::Restarts));
        let (Ok(restarts), Some(free)) = (restarts, free_memory(dt)) else {
            println!("scrub: needs `monitor` and free memory; powering off");
            power_off()
        };
        // SAFETY: free memory is guest RAM above the image and its stack, below the device
        // tree, that nothing else in this guest uses.
        let words = unsafe {
            core::slice::from_raw_parts_mut(free.base as *mut u64, (free.size / 8) as usize)
        };
        let dirty = words.iter().filter(|&&w| w != 0).count();
        let run = restarts + 1;
        println!(
            "scrub: run {run} of {runs}: {} KiB of free memory, {dirty} words not zero",
            free.size / 1024
        );
        if run >= runs {
            println!("hello from {name}: done, powering off");
            power_off()
        }
        for (i, word) in words.iter_mut().enumerate() {
            *word = 0x5c2b_0000_0000_0000 | i as u64;
        }
        println!("scrub: filled it, restarting");
        reset()
    }

    /// Prints `count` numbered 100-byte lines flat out (0: forever).
    fn flood(count: u64) {
        let mut n: u64 = 0;
        while count == 0 || n < count {
            // "flood " + 20 digits + " " + 72 x's + newline = 100 bytes.
            println!("flood {n:020} {:x<72}", "");
            n += 1;
        }
    }

    /// The numeric boot argument `key`, or `default` when it is absent, not a number or refused
    /// by `valid` (said on the console).
    fn bootarg_or(
        dt: &GuestDt,
        name: &str,
        key: &str,
        default: u64,
        valid: impl Fn(u64) -> bool,
    ) -> u64 {
        match dt.bootarg(key) {
            None => default,
            Some(text) => match parse_u64(text).filter(|&value| valid(value)) {
                Some(value) => value,
                None => {
                    println!("hello from {name}: ignoring bad {key}={text}, using {default}");
                    default
                }
            },
        }
    }
}

/// Host stub: the guest only runs on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
