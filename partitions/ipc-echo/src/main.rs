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
//! virtual timer; a ring is one 32-bit store to the doorbell page, which the hypervisor traps
//! (`ring=hvc`: the `CHANNEL_RING` hypercall instead).
//!
//! Before attaching it asks the hypervisor about itself and its channels (the hypercalls of
//! `docs/hypercalls.md`) and checks the answers against the device tree. For the tests:
//! `foreign=ID` asks about and rings channel `ID` (one it is not an endpoint of: both must fail
//! with `NOT_ENDPOINT`); `restart-after=N` (echo) restarts the partition (PSCI `SYSTEM_RESET`)
//! after answering `N` requests, once: the restarted echo rejoins the channel, whose memory the
//! hypervisor keeps; `bad=1` (sender) first sends a malformed message and tries an oversized one.
//!
//! On a host target this compiles to an empty stub, so the workspace builds everywhere.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use core::sync::atomic::{fence, Ordering};

    use bulkhead_channel::demo::{self, Clock, Limits};
    use bulkhead_channel::echo::Sizes;
    use bulkhead_channel::{doorbell, Endpoint, Error, SharedRegion, Side, Transport, Wake};
    use bulkhead_guest_rt::hypercall::{self, Signal};
    use bulkhead_guest_rt::{
        counter_frequency, counter_ticks, enable_spi, parse_u64, power_off, println, reset,
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
        /// Ring with the `CHANNEL_RING` hypercall of this channel id instead of the page.
        hvc: Option<u64>,
        /// Whether the doorbell interrupt is enabled (else waits poll the counter).
        irq: bool,
        wait_ticks: u64,
    }

    impl Transport for Doorbell {
        fn ring(&mut self) -> Result<(), i32> {
            // The ring indices and slots published before are ordered before the doorbell
            // write, which the hypervisor traps.
            fence(Ordering::SeqCst);
            if let Some(id) = self.hvc {
                return hypercall::channel_ring(id)
                    .map(|_| ())
                    .map_err(|e| e.code() as i32);
            }
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

    /// Where the hypercalls disagree with the device tree.
    enum Disagreement {
        Failed(&'static str, hypercall::Error),
        NotListed,
        Field {
            what: &'static str,
            dt: u64,
            hypercall: u64,
        },
    }

    impl core::fmt::Display for Disagreement {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Disagreement::Failed(call, e) => write!(f, "{call} failed: {e}"),
                Disagreement::NotListed => f.write_str("the channel is not among its channels"),
                Disagreement::Field {
                    what,
                    dt,
                    hypercall,
                } => write!(
                    f,
                    "{what} is {hypercall:#x} by the hypercalls, {dt:#x} by the device tree"
                ),
            }
        }
    }

    /// Asks the hypervisor who we are and finds `ch` among our channels: (partition, channel
    /// count, channel id), if everything agrees with the device tree.
    fn ask_hypervisor(ch: &ChannelNode, index: u32) -> Result<(u64, u64, u64), Disagreement> {
        let me =
            hypercall::partition_info().map_err(|e| Disagreement::Failed("PARTITION_INFO", e))?;
        for n in 0..me.channels {
            let id = hypercall::channel_id(n).map_err(|e| Disagreement::Failed("CHANNEL_ID", e))?;
            let info =
                hypercall::channel_info(id).map_err(|e| Disagreement::Failed("CHANNEL_INFO", e))?;
            if info.shm != ch.shm.base {
                continue;
            }
            let intid = match info.signal {
                Signal::Spi { intid } | Signal::GpioLine { intid, .. } => u64::from(intid),
            };
            let fields = [
                ("the channel id", ch.channel_id.map(u64::from), id),
                ("the shared memory size", Some(ch.shm.size), info.size),
                ("the doorbell page", Some(ch.doorbell.base), info.doorbell),
                (
                    "the endpoint",
                    Some(u64::from(index)),
                    u64::from(info.endpoint),
                ),
                (
                    "read-only",
                    Some(u64::from(ch.read_only)),
                    u64::from(info.read_only),
                ),
                ("the doorbell INTID", ch.intid.map(u64::from), intid),
            ];
            for (what, dt, hypercall) in fields {
                match dt {
                    Some(dt) if dt != hypercall => {
                        return Err(Disagreement::Field {
                            what,
                            dt,
                            hypercall,
                        })
                    }
                    _ => {}
                }
            }
            return Ok((me.partition, me.channels, id));
        }
        Err(Disagreement::NotListed)
    }

    /// Checks the hypercalls against the device tree and, with `foreign=ID`, tries channel `ID`.
    fn check_hypercalls(dt: &GuestDt, ch: &ChannelNode, index: u32) -> Option<u64> {
        let id = match ask_hypervisor(ch, index) {
            Ok((partition, channels, id)) => {
                println!(
                    "ipc-echo: hypercalls: partition {partition}, {channels} channel(s); channel \
                     {} is id {id}, as the device tree says",
                    ch.name
                );
                Some(id)
            }
            Err(why) => {
                println!(
                    "ipc-echo: hypercalls disagree with the device tree about channel {}: {why}",
                    ch.name
                );
                None
            }
        };
        if let Some(foreign) = dt.bootarg("foreign").and_then(parse_u64) {
            let info = hypercall::channel_info(foreign).map(|_| ());
            let ring = hypercall::channel_ring(foreign).map(|_| ());
            let show = |r: Result<(), hypercall::Error>| match r {
                Ok(()) => "succeeded",
                Err(e) => e.name(),
            };
            println!(
                "ipc-echo: channel id {foreign}: CHANNEL_INFO {}, CHANNEL_RING {}",
                show(info),
                show(ring)
            );
        }
        id
    }

    /// Sends one malformed demo message (the queue carries it intact; the echo must refuse it)
    /// and tries one larger than a slot (the queue must refuse it), once the peer attached.
    fn send_bad(ep: &mut Endpoint<'_>, t: &mut Doorbell, attach_ms: u64) {
        let garbage = [0x5au8; 40];
        let due =
            counter_ticks().saturating_add(counter_frequency().saturating_mul(attach_ms) / 1000);
        loop {
            match ep.try_send(&garbage) {
                Ok(_) => {
                    let _ = t.ring();
                    println!(
                        "ipc-echo: sent a malformed message of {} bytes",
                        garbage.len()
                    );
                    break;
                }
                Err(Error::PeerNotAttached | Error::Full) if counter_ticks() < due => {
                    let _ = t.wait();
                }
                Err(e) => {
                    println!("ipc-echo: could not send the malformed message: {e}");
                    break;
                }
            }
        }
        let big = [0u8; MAX_SLOT + 8];
        let len = ep.max_payload() + 1;
        match ep.try_send(&big[..len]) {
            Err(e) => println!("ipc-echo: an oversized message is refused: {e}"),
            Ok(_) => println!("ipc-echo: an oversized message of {len} bytes was accepted"),
        }
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
        let id = check_hypercalls(dt, &ch, index);
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
        let hvc = match dt.bootarg("ring") {
            Some("hvc") => match id {
                Some(id) => Some(id),
                None => fail(format_args!(
                    "ring=hvc: the hypercalls do not know the channel"
                )),
            },
            _ => None,
        };
        let mut t = Doorbell {
            ring: (ch.doorbell.base as usize + doorbell::RING) as *mut u32,
            hvc,
            irq,
            wait_ticks: frequency * WAIT_MS / 1000,
        };
        let g = ep.geometry();
        println!(
            "ipc-echo: channel {} (shm {}, doorbell {}, {}{}), endpoint {index}, epoch {}{}, {} \
             slots of {} bytes",
            ch.name,
            ch.shm,
            ch.doorbell,
            if irq {
                "interrupt"
            } else {
                "no interrupt: polling"
            },
            if t.hvc.is_some() {
                ", rings with CHANNEL_RING"
            } else {
                ""
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

        let mut limits = Limits {
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
                if dt.bootarg("bad") == Some("1") {
                    send_bad(&mut ep, &mut t, limits.attach_ms);
                }
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
                let restart_after = arg(dt, "restart-after", 0);
                // Only the first incarnation restarts: the next one has a higher epoch.
                let restarts = restart_after > 0 && ep.attached().epoch == 1;
                if restarts {
                    limits.count = restart_after;
                }
                let (answered, stop) = demo::echo(
                    &mut ep,
                    &mut t,
                    &mut clock,
                    limits,
                    &mut a[..max],
                    &mut b[..max],
                    &mut log,
                );
                if restarts {
                    if let Some(stop) = stop {
                        println!("ipc-echo: channel {}: {stop}", ch.name);
                    }
                    println!(
                        "ipc-echo: answered {answered} requests, restarting (PSCI SYSTEM_RESET)"
                    );
                    reset();
                }
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
