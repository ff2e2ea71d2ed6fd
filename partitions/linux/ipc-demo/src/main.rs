//! `bulkhead-ipc-demo`: the Linux userspace side of Bulkhead's IPC demo.
//!
//! Finds its channel by name, maps the shared memory and the doorbell page, attaches as its
//! endpoint and either sends `count` requests and checks every answer (role `send`, the demo)
//! or answers requests (role `echo`). It prints
//!
//! ```text
//! ipc: <sent> sent, <verified> verified, <lost> lost
//! ```
//!
//! and exits 0 only if every request got its answer, intact and once. Access to the channel:
//!
//! - **UIO** (preferred): the node `compatible = "bulkhead,channel", "generic-uio"` bound by
//!   `uio_pdrv_genirq of_id=generic-uio`: `/sys/class/uio/uioN/name` is the channel's name,
//!   map0 the shared memory, map1 the doorbell page, and the doorbell interrupt is waited for
//!   with `poll()`/`read()` on `/dev/uioN`, re-armed by writing 1.
//! - **/dev/mem** (when no UIO device has the name; Debian's arm64 kernels do not build
//!   `uio_pdrv_genirq`): the addresses come from the device-tree node under
//!   `/proc/device-tree`; the doorbell interrupt is waited for as rising edges of the GPIO line
//!   named after the channel (`gpio-line-names` of an emulated PL061, through the GPIO
//!   character device) if there is one, otherwise the peer is polled.
//!
//! Options: see [`options::USAGE`]. Built as a static `aarch64-unknown-linux-musl` binary for
//! the initramfs of the Linux guest recipe; it also builds and tests on the host.

mod discover;
mod gpio;
mod mapping;
mod options;
mod transport;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bulkhead_channel::demo::{self, Clock, Limits};
use bulkhead_channel::{Endpoint, Side, Transport};

use discover::PhysRange;
use mapping::{page_size, Mapping};
use options::{Access, Options, Role};
use transport::{Interrupts, IrqTransport, PollTransport};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = if args.iter().any(|a| a == "--from-cmdline") {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        match Options::from_cmdline(&cmdline) {
            Some(parsed) => parsed,
            None => {
                eprintln!(
                    "ipc-demo: no {}= on the kernel command line",
                    options::CMDLINE_KEY
                );
                return ExitCode::from(2);
            }
        }
    } else if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", options::USAGE);
        return ExitCode::SUCCESS;
    } else {
        Options::parse(args.iter().map(String::as_str))
    };
    let options = match options {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ipc-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ipc-demo: channel {}: {e}", options.channel);
            ExitCode::from(2)
        }
    };
    if options.poweroff {
        power_off();
    }
    code
}

/// The mapped channel and how to wait on it.
struct Opened {
    shm: Mapping,
    doorbell: Mapping,
    /// Where doorbell interrupts come from, if anywhere.
    interrupts: Option<Interrupts>,
    endpoint: Option<u32>,
    how: String,
}

fn check_ranges(shm: PhysRange, doorbell: PhysRange) -> Result<(), String> {
    let page = page_size();
    if !shm.addr.is_multiple_of(page)
        || shm.size == 0
        || !doorbell.addr.is_multiple_of(page)
        || doorbell.size < 8
    {
        return Err(format!(
            "bad geometry: shared memory {:#x}+{:#x}, doorbell {:#x}+{:#x} (both must be \
             page-aligned, the doorbell at least a register wide)",
            shm.addr, shm.size, doorbell.addr, doorbell.size
        ));
    }
    Ok(())
}

fn open(o: &Options) -> Result<Opened, String> {
    let root = Path::new(if o.root.is_empty() { "/" } else { &o.root });
    if o.access != Access::DevMem {
        if let Some(dev) = discover::find_uio(root, &o.channel)? {
            check_ranges(dev.shm, dev.doorbell)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&dev.dev)
                .map_err(|e| format!("opening {}: {e}", dev.dev.display()))?;
            let page = page_size();
            let map = |index: u64, size: u64| {
                Mapping::new(&file, index * page, size.next_multiple_of(page) as usize)
                    .map_err(|e| format!("mmap of {} map{index}: {e}", dev.dev.display()))
            };
            let shm = map(0, dev.shm.size)?;
            let doorbell = map(1, dev.doorbell.size)?;
            return Ok(Opened {
                shm,
                doorbell,
                interrupts: (!o.force_poll).then_some(Interrupts::Uio(file)),
                endpoint: dev.endpoint,
                how: format!("{} (interrupts)", dev.id),
            });
        }
        if o.access == Access::Uio {
            return Err(not_found(root, &o.channel, true));
        }
    }
    let Some(node) = discover::find_dt(root, &o.channel)? else {
        return Err(not_found(root, &o.channel, o.access == Access::Auto));
    };
    if node.access.as_deref() == Some(bulkhead_channel::doorbell::ACCESS_READ_ONLY) {
        return Err(
            "this endpoint is read-only: the queue needs a read-write endpoint \
                    (read-only endpoints take snapshots, see bulkhead_channel::snapshot)"
                .into(),
        );
    }
    check_ranges(node.shm, node.doorbell)?;
    let mem = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_SYNC)
        .open(root.join("dev/mem"))
        .map_err(|e| format!("opening /dev/mem: {e}"))?;
    let map = |r: PhysRange| {
        Mapping::new(&mem, r.addr, r.size.next_multiple_of(page_size()) as usize)
            .map_err(|e| format!("mmap of /dev/mem at {:#x}: {e}", r.addr))
    };
    // Doorbell interrupts as edges of a GPIO line named after the channel, if there is one.
    let line = if o.force_poll {
        None
    } else {
        gpio::find_line(root, &o.channel)
    };
    let (interrupts, waiting) = match line {
        Some(line) => {
            let events = gpio::request_edges(&line).map_err(|e| {
                format!(
                    "requesting GPIO line {} of {} for edge events: {e}",
                    line.offset,
                    line.chip.display()
                )
            })?;
            let how = format!(
                "doorbell interrupts: GPIO line {} of {}",
                line.offset,
                line.chip.display()
            );
            (Some(Interrupts::Gpio(events)), how)
        }
        None => (None, "no doorbell interrupt: polling".to_string()),
    };
    Ok(Opened {
        shm: map(node.shm)?,
        doorbell: map(node.doorbell)?,
        interrupts,
        endpoint: node.endpoint,
        how: format!(
            "/dev/mem at the addresses of {} ({waiting})",
            node.node.display()
        ),
    })
}

fn not_found(root: &Path, name: &str, tried_uio: bool) -> String {
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut text = format!("no channel named {name:?}:");
    if tried_uio {
        text += &format!(
            " no UIO device of that name (UIO devices: {}; is uio_pdrv_genirq loaded with \
             of_id=generic-uio?),",
            list(discover::uio_names(root))
        );
    }
    text + &format!(
        " no device-tree node {name}@... compatible \"bulkhead,channel\" (channel nodes: {})",
        list(discover::dt_names(root))
    )
}

fn run(o: &Options) -> Result<bool, String> {
    let opened = open(o)?;
    let index = o
        .endpoint
        .or(opened.endpoint)
        .ok_or("the device tree gives no bulkhead,endpoint; pass endpoint=0|1")?;
    let side = Side::from_index(index).map_err(|e| e.to_string())?;
    let region = opened.shm.region().map_err(|e| e.to_string())?;
    let mut ep = Endpoint::attach(region, side, o.slot_size).map_err(|e| e.to_string())?;
    let g = ep.geometry();
    println!(
        "ipc-demo: channel {} via {}, endpoint {index}, epoch {}{}, {} slots of {} bytes per ring",
        o.channel,
        opened.how,
        ep.attached().epoch,
        if ep.attached().resumed {
            " (resumed)"
        } else {
            ""
        },
        g.slot_count,
        g.slot_size
    );
    // Each wait is bounded, so that the demo's own deadlines are checked regularly.
    let timeout = Duration::from_millis(o.timeout_ms.min(1000));
    if o.role == Role::Listen && opened.interrupts.is_none() {
        return Err(
            "no doorbell interrupt to listen to (neither a UIO device nor a GPIO line \
                    named after the channel)"
                .into(),
        );
    }
    match opened.interrupts {
        Some(source) => {
            let mut t =
                IrqTransport::new(source, opened.doorbell, timeout).map_err(|e| e.to_string())?;
            let ok = dispatch(&mut ep, &mut t, o);
            // A sender's run ends with its summary line; the other roles say what they heard.
            if o.role != Role::Send {
                println!("ipc-demo: {} doorbell interrupts taken", t.interrupts);
            }
            ok
        }
        None => {
            let mut t = PollTransport::new(opened.doorbell, Duration::from_micros(o.poll_us));
            dispatch(&mut ep, &mut t, o)
        }
    }
}

/// Milliseconds since the demo started.
struct StdClock(Instant);

impl Clock for StdClock {
    fn now_us(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

fn dispatch<T: Transport>(ep: &mut Endpoint<'_>, t: &mut T, o: &Options) -> Result<bool, String> {
    // Announce ourselves: the peer may be waiting for us to attach.
    t.ring()
        .map_err(|code| format!("ringing the doorbell: errno {code}"))?;
    let mut log = |args: std::fmt::Arguments<'_>| eprintln!("ipc-demo: {args}");
    let mut clock = StdClock(Instant::now());
    let limits = Limits {
        count: o.count,
        payload: o.payload,
        sizes: o.sizes,
        window: o.window,
        idle_ms: o.timeout_ms,
        attach_ms: o.attach_timeout_ms,
    };
    let mut buf = vec![0u8; ep.max_payload()];
    let mut out = vec![0u8; ep.max_payload()];
    match o.role {
        Role::Send => {
            let s = demo::sender(ep, t, &mut clock, limits, &mut out, &mut buf, &mut log);
            println!("ipc-demo: {}", s.counts());
            println!("{}", s.bench_line());
            if let Some(stop) = s.stop {
                eprintln!("ipc-demo: channel {}: {stop}", o.channel);
            }
            println!("{s}");
            Ok(s.ok())
        }
        Role::Listen => {
            let count = o.count.max(1);
            let mut heard = 0;
            let mut last = clock.now_us() / 1000;
            while heard < count {
                match t.wait() {
                    Ok(bulkhead_channel::Wake::Signalled) => {
                        heard += 1;
                        last = clock.now_us() / 1000;
                        println!("ipc-demo: doorbell {heard} at {last} ms");
                    }
                    Ok(bulkhead_channel::Wake::TimedOut)
                        if clock.now_us() / 1000 - last > o.timeout_ms =>
                    {
                        return Err(format!(
                            "no doorbell for {} ms ({heard} of {count} heard)",
                            o.timeout_ms
                        ));
                    }
                    Ok(bulkhead_channel::Wake::TimedOut) => {}
                    Err(code) => return Err(format!("waiting: errno {code}")),
                }
            }
            println!("ipc-demo: heard {heard} doorbells");
            Ok(true)
        }
        Role::Echo => {
            let (answered, stop) =
                demo::echo(ep, t, &mut clock, limits, &mut buf, &mut out, &mut log);
            println!("ipc-demo: echo answered {answered} requests");
            match stop {
                None => Ok(true),
                Some(stop) => Err(stop.to_string()),
            }
        }
    }
}

/// Powers the machine off (PSCI `SYSTEM_OFF` for a Linux partition: stops this partition).
fn power_off() {
    // SAFETY: plain system calls; reboot(2) with POWER_OFF does not return on success.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    eprintln!(
        "ipc-demo: power off failed: {}",
        std::io::Error::last_os_error()
    );
}
