//! The guest's boot arguments: which measurements to run and how many samples to take (see the
//! crate documentation for the list).

use bulkhead_guest_rt::{console, gic, GuestDt};
use bulkhead_guest_rt::{counter_frequency, counter_ticks, mpidr, parse_u64, println, sleep_until};

/// One measurement the guest can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measurement {
    Boot,
    TimerPoll,
    TimerIrq,
    Hypercall,
    Mmio,
    Compute,
    ConsoleWrite,
    Ipi,
}

impl Measurement {
    /// Every measurement, in the default order (the IPI last: it leaves vCPU 1 running).
    pub const ALL: [Measurement; 8] = [
        Measurement::Boot,
        Measurement::TimerPoll,
        Measurement::TimerIrq,
        Measurement::Hypercall,
        Measurement::Mmio,
        Measurement::Compute,
        Measurement::ConsoleWrite,
        Measurement::Ipi,
    ];

    /// The name used in `run=` (and in the result lines).
    pub fn name(self) -> &'static str {
        match self {
            Measurement::Boot => "boot",
            Measurement::TimerPoll => "timer-poll",
            Measurement::TimerIrq => "timer-irq",
            Measurement::Hypercall => "hypercall",
            Measurement::Mmio => "mmio",
            Measurement::Compute => "compute",
            Measurement::ConsoleWrite => "console-write",
            Measurement::Ipi => "ipi",
        }
    }

    fn from_name(name: &str) -> Option<Measurement> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Samples per latency measurement without `samples=`.
const DEFAULT_SAMPLES: u64 = 2000;
/// The most samples a measurement may take (8 bytes each, in free memory).
const MAX_SAMPLES: u64 = 100_000;

/// What to run, from the boot arguments.
pub struct Config {
    run: [Measurement; Measurement::ALL.len()],
    run_len: usize,
    /// Samples per latency measurement.
    pub samples: usize,
    /// Size of the CPU-bound compute kernel's buffer in KiB.
    pub compute_cpu_kib: u64,
    /// Size of the memory-bound compute kernel's buffer in KiB.
    pub compute_memory_kib: u64,
    /// Walk steps per compute sample.
    pub compute_steps: u64,
    /// Compute samples.
    pub compute_samples: usize,
    /// Wait for a console byte before measuring.
    pub wait_for_input: bool,
}

impl Config {
    /// Reads the boot arguments, saying on the console which ones it ignores.
    pub fn from_dt(dt: &GuestDt) -> Config {
        let number = |key: &str, default: u64, max: u64| match dt.bootarg(key) {
            None => default,
            Some(text) => match parse_u64(text).filter(|&v| v > 0 && v <= max) {
                Some(value) => value,
                None => {
                    println!("bench: info ignored-argument={key}={text}");
                    default
                }
            },
        };
        let mut config = Config {
            run: Measurement::ALL,
            run_len: Measurement::ALL.len(),
            samples: number("samples", DEFAULT_SAMPLES, MAX_SAMPLES) as usize,
            compute_cpu_kib: number("compute-cpu-kib", 256, 1 << 20),
            compute_memory_kib: number("compute-memory-kib", 4096, 1 << 20),
            compute_steps: number("compute-steps", 2_000_000, 1 << 40),
            compute_samples: number("compute-samples", 5, MAX_SAMPLES) as usize,
            wait_for_input: false,
        };
        if let Some(list) = dt.bootarg("run") {
            config.run_len = 0;
            for name in list.split(',').filter(|n| !n.is_empty()) {
                match Measurement::from_name(name) {
                    Some(m) if config.run_len < config.run.len() => {
                        config.run[config.run_len] = m;
                        config.run_len += 1;
                    }
                    _ => println!("bench: info ignored-argument=run:{name}"),
                }
            }
        }
        match dt.bootarg("wait") {
            None => {}
            Some("input") => config.wait_for_input = true,
            Some(other) => println!("bench: info ignored-argument=wait={other}"),
        }
        config
    }

    /// The measurements to run, in order.
    pub fn run(&self) -> &[Measurement] {
        &self.run[..self.run_len]
    }

    /// How many samples the largest measurement keeps.
    pub fn capacity(&self) -> usize {
        self.samples.max(self.compute_samples)
    }
}

/// Says so on the console and waits until a byte arrives there. With the console's interrupt
/// in the device tree, the guest waits for it in `wfi` (IRQs masked) and reads the UART once it
/// has acknowledged it: Bulkhead's virtual UART shows input to a guest that uses the GIC only
/// once it takes the UART's interrupt. Without one, it polls every 10 ms.
pub fn wait_for_input(dt: &GuestDt) {
    println!("bench: waiting for input");
    let Some(console) = console::global() else {
        return;
    };
    let Some(intid) = dt.console_interrupt().filter(|_| gic::is_present()) else {
        let period = counter_frequency() / 100;
        while console.read_byte().is_none() {
            sleep_until(counter_ticks() + period);
        }
        while console.read_byte().is_some() {}
        return;
    };
    gic::enable_spi(intid, mpidr());
    console.set_receive_interrupts(true);
    let mut received = false;
    while !received {
        aarch64_cpu::asm::wfi();
        while let Some(pending) = gic::acknowledge() {
            if pending == intid {
                // Drain everything typed, while the interrupt is active.
                while console.read_byte().is_some() {
                    received = true;
                }
            }
            gic::end(pending);
        }
    }
    console.set_receive_interrupts(false);
    gic::disable_spi(intid);
}
