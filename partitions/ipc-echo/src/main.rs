//! `ipc-echo`: the bare-metal side of Bulkhead's IPC demo.
//!
//! Finds its channel in its device tree (the node `compatible = "bulkhead,channel"` named by
//! the `channel=` boot argument, or the first one; see `docs/channels.md`), attaches to it as
//! the endpoint the node names, enables the doorbell interrupt and then, by `mode=`:
//!
//! - `echo` (default): answers every request (checking its sequence number and checksums,
//!   [`bulkhead_channel::echo`]) until it has answered `count=N` (0, the default: until the
//!   sender has been idle for `idle=MS`), then powers off;
//! - `send`: sends `count=N` requests (default 1000), checks every answer and prints
//!   `ipc: <sent> sent, <verified> verified, <lost> lost` before powering off (the bare-metal
//!   to bare-metal test), preceded by `ipc-bench: window <w>, <n> round trips in <t> ms, median
//!   <x> us, p99 <y> us, max <z> us, <m> MiB/s` for `cargo xtask bench`.
//!
//! Other boot arguments: `slot=BYTES` (ring slot size, default 256; both endpoints must agree),
//! `payload=BYTES` (largest request), `sizes=full` (sender: every request `payload` bytes,
//! for benchmarks), `window=N` (requests outstanding at most; 1
//! measures round-trip latency; default: the ring), `idle=MS` (peer gone after that long without progress,
//! default 10000), `attach=MS` (wait that long for the peer, default 120000), `endpoint=0|1`
//! (overrides the device tree). Waiting is `wfi` on the doorbell interrupt, bounded by the
//! virtual timer; a ring is one 32-bit store to the doorbell page, which the hypervisor traps.
//!
//! On a host target this compiles to an empty stub, so the workspace builds everywhere.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use core::sync::atomic::{fence, Ordering};

    use bulkhead_channel::demo::{self, Clock, Limits};
    use bulkhead_channel::echo::Sizes;
    use bulkhead_channel::{doorbell, Endpoint, SharedRegion, Side, Transport, Wake};
    use bulkhead_guest_rt::{
        counter_frequency, counter_ticks, enable_spi, parse_u64, power_off, println,
        wait_for_interrupt, ChannelNode, GuestDt,
    };

    /// Largest slot the guest's buffers hold.
    const MAX_SLOT: usize = 4096;
    /// Bound of one wait, so the demo loops check their deadlines.
    const WAIT_MS: u64 = 100;

    bulkhead_guest_rt::entry!(main);

    /// The doorbell page and interrupt of our endpoint.
    struct Doorbell {
        ring: *mut u32,
        /// Whether the doorbell interrupt is enabled (else waits poll the counter).
        irq: bool,
        wait_ticks: u64,
    }

    impl Transport for Doorbell {
        fn ring(&mut self) -> Result<(), i32> {
            // The ring indices and slots published before are ordered before the doorbell
            // write, which the hypervisor traps.
            fence(Ordering::SeqCst);
            // SAFETY: `ring` is the RING register of the doorbell page the device tree gives
            // this endpoint (4-byte aligned, MMU off: guest-physical address); the store is the
            // MMIO access the hypervisor traps.
            unsafe { core::ptr::write_volatile(self.ring, 1) };
            Ok(())
        }

        fn wait(&mut self) -> Result<Wake, i32> {
            let due = counter_ticks().saturating_add(self.wait_ticks);
            if !self.irq {
                bulkhead_guest_rt::delay_ms(1);
                return Ok(Wake::Signalled);
            }
            loop {
                match wait_for_interrupt(due) {
                    bulkhead_guest_rt::Wake::Interrupt => return Ok(Wake::Signalled),
                    bulkhead_guest_rt::Wake::Timeout => return Ok(Wake::TimedOut),
                    bulkhead_guest_rt::Wake::Spurious => {}
                }
            }
        }
    }

    /// Microseconds of the virtual counter.
    struct CounterClock(u64);

    impl Clock for CounterClock {
        fn now_us(&mut self) -> u64 {
            (u128::from(counter_ticks()) * 1_000_000 / u128::from(self.0)) as u64
        }
    }

    fn arg(dt: &GuestDt, key: &str, default: u64) -> u64 {
        match dt.bootarg(key) {
            None => default,
            Some(text) => parse_u64(text).unwrap_or_else(|| {
                println!("ipc-echo: ignoring bad {key}={text}, using {default}");
                default
            }),
        }
    }

    fn fail(what: core::fmt::Arguments<'_>) -> ! {
        println!("ipc-echo: {what}");
        power_off()
    }

    fn main(dt: GuestDt) -> ! {
        let wanted = dt.bootarg("channel");
        let Some(ch) = dt.channel(wanted) else {
            fail(format_args!(
                "no channel {} in the device tree (no node compatible \"bulkhead,channel\"{})",
                wanted.unwrap_or(""),
                if wanted.is_some() {
                    " of that name"
                } else {
                    ""
                }
            ));
        };
        run(&dt, ch)
    }

    fn run(dt: &GuestDt, ch: ChannelNode) -> ! {
        if ch.read_only {
            fail(format_args!(
                "channel {}: this endpoint is read-only; the queue needs read-write endpoints",
                ch.name
            ));
        }
        let Some(index) = dt
            .bootarg("endpoint")
            .and_then(parse_u64)
            .map(|e| e as u32)
            .or(ch.endpoint)
        else {
            fail(format_args!("channel {}: no bulkhead,endpoint", ch.name));
        };
        let side = Side::from_index(index).unwrap_or_else(|e| fail(format_args!("{e}")));
        let slot = arg(dt, "slot", bulkhead_channel::DEFAULT_SLOT_SIZE as u64) as usize;
        if slot > MAX_SLOT {
            fail(format_args!("slot={slot}: at most {MAX_SLOT}"));
        }
        if (ch.doorbell.size as usize) < doorbell::PAGE_SIZE {
            fail(format_args!(
                "channel {}: doorbell page {} too small",
                ch.name, ch.doorbell
            ));
        }
        // SAFETY: the device tree names this range as the channel's shared memory, mapped
        // read-write for this endpoint; with the MMU off its guest-physical addresses are used
        // directly, and this guest touches it only through the channel crate.
        let region =
            unsafe { SharedRegion::from_raw(ch.shm.base as *mut u8, ch.shm.size as usize) }
                .unwrap_or_else(|e| fail(format_args!("channel {}: {e}", ch.name)));
        let mut ep = Endpoint::attach(region, side, slot)
            .unwrap_or_else(|e| fail(format_args!("channel {}: {e}", ch.name)));
        let irq = ch.intid.is_some_and(|intid| enable_spi(intid, true));
        let frequency = counter_frequency().max(1);
        let mut t = Doorbell {
            ring: (ch.doorbell.base as usize + doorbell::RING) as *mut u32,
            irq,
            wait_ticks: frequency * WAIT_MS / 1000,
        };
        let g = ep.geometry();
        println!(
            "ipc-echo: channel {} (shm {}, doorbell {}, {}), endpoint {index}, epoch {}{}, {} \
             slots of {} bytes",
            ch.name,
            ch.shm,
            ch.doorbell,
            if irq {
                "interrupt"
            } else {
                "no interrupt: polling"
            },
            ep.attached().epoch,
            if ep.attached().resumed {
                " (resumed)"
            } else {
                ""
            },
            g.slot_count,
            g.slot_size
        );
        let _ = t.ring();

        let limits = Limits {
            count: arg(
                dt,
                "count",
                if dt.bootarg("mode") == Some("send") {
                    1000
                } else {
                    0
                },
            ),
            payload: (arg(dt, "payload", ep.max_payload() as u64) as usize).min(ep.max_payload()),
            sizes: match dt.bootarg("sizes") {
                Some("full") => Sizes::Full,
                _ => Sizes::Varying,
            },
            window: arg(dt, "window", 0),
            idle_ms: arg(dt, "idle", 10_000),
            attach_ms: arg(dt, "attach", 120_000),
        };
        let mut clock = CounterClock(frequency);
        let mut log = |args: core::fmt::Arguments<'_>| println!("ipc-echo: {args}");
        let (mut a, mut b) = ([0u8; MAX_SLOT], [0u8; MAX_SLOT]);
        let max = ep.max_payload();
        match dt.bootarg("mode").unwrap_or("echo") {
            "send" => {
                let s = demo::sender(
                    &mut ep,
                    &mut t,
                    &mut clock,
                    limits,
                    &mut a[..max],
                    &mut b[..max],
                    &mut log,
                );
                println!("ipc-echo: {}", s.counts());
                println!("{}", s.bench_line());
                if let Some(stop) = s.stop {
                    println!("ipc-echo: channel {}: {stop}", ch.name);
                }
                println!("{s}");
            }
            "echo" => {
                let (answered, stop) = demo::echo(
                    &mut ep,
                    &mut t,
                    &mut clock,
                    limits,
                    &mut a[..max],
                    &mut b[..max],
                    &mut log,
                );
                match stop {
                    None => println!("ipc-echo: answered {answered} requests"),
                    Some(stop) => println!(
                        "ipc-echo: answered {answered} requests, then: channel {}: {stop}",
                        ch.name
                    ),
                }
            }
            other => fail(format_args!("mode={other}: echo or send")),
        }
        ep.detach();
        let _ = t.ring();
        power_off()
    }
}

/// Host stub: the guest only runs on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
