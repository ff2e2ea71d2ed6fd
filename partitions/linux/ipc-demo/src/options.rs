//! Command-line options, from `argv` or from the kernel command line
//! (`bulkhead.ipc-demo=channel=ipc0,count=1000,poweroff`, for unattended runs started by the
//! initramfs's `/init`).

use std::fmt;

/// What this process does on the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends requests and checks the answers (the demo).
    Send,
    /// Answers requests (a Linux peer, for tests without a bare-metal partition).
    Echo,
    /// Waits for `count` doorbells and prints each (bring-up check of the doorbell interrupt).
    Listen,
}

/// How the channel is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Whichever is available: UIO first, then `/dev/mem`.
    Auto,
    /// `/dev/uioN` (needs `uio_pdrv_genirq of_id=generic-uio`): mmap and interrupts.
    Uio,
    /// `/dev/mem` at the addresses of the device-tree node, polling instead of interrupts.
    DevMem,
}

/// Everything the demo can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub channel: String,
    pub role: Role,
    pub access: Access,
    /// Requests to send (or answers to give; 0 = until idle).
    pub count: u64,
    /// Give up when the peer has not made progress (nor rung) for this long.
    pub timeout_ms: u64,
    /// How long to wait for the peer to attach at the start.
    pub attach_timeout_ms: u64,
    /// Slot size of the channel's rings (both endpoints must agree).
    pub slot_size: usize,
    /// Largest request payload (at most the slot payload).
    pub payload: usize,
    /// Request sizes: varying (default) or always `payload` (benchmarks).
    pub sizes: bulkhead_channel::echo::Sizes,
    /// Requests outstanding at most (1: ping-pong latency; 0: as many as the ring holds).
    pub window: u64,
    /// Endpoint index, overriding the device tree's `bulkhead,endpoint`.
    pub endpoint: Option<u32>,
    /// Polling interval when there are no interrupts, microseconds.
    pub poll_us: u64,
    /// Poll even when a doorbell interrupt is available.
    pub force_poll: bool,
    /// Power the machine off afterwards (unattended runs).
    pub poweroff: bool,
    /// Root of sysfs and procfs (tests point it elsewhere).
    pub root: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            channel: "ipc0".into(),
            role: Role::Send,
            access: Access::Auto,
            count: 1000,
            timeout_ms: 5000,
            attach_timeout_ms: 60_000,
            slot_size: bulkhead_channel::DEFAULT_SLOT_SIZE,
            payload: bulkhead_channel::DEFAULT_SLOT_SIZE - 16,
            sizes: bulkhead_channel::echo::Sizes::Varying,
            window: 0,
            endpoint: None,
            poll_us: 100,
            force_poll: false,
            poweroff: false,
            root: String::new(),
        }
    }
}

/// A usage error.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

pub const USAGE: &str = "\
usage: bulkhead-ipc-demo [OPTION=VALUE...] | --from-cmdline
  channel=NAME        channel (device-tree node / UIO device name), default ipc0
  role=send|echo|listen   send requests and check answers (default), answer them, or
                      wait for `count` doorbell interrupts and print each (bring-up check)
  access=auto|uio|devmem   /dev/uioN with interrupts, or /dev/mem (interrupts from a GPIO
                      line named after the channel if there is one, else polling); default auto
  count=N             requests to send (default 1000); for echo, answers to give (0: until idle)
  timeout-ms=MS       peer gone after MS without progress (default 5000)
  attach-timeout-ms=MS   wait this long for the peer to attach (default 60000)
  slot-size=BYTES     ring slot size, as the peer uses (default 256)
  payload=BYTES       largest request (default: slot size - 16)
  sizes=varying|full  request lengths vary (default) or are all `payload` (benchmarks)
  window=N            requests outstanding at most: 1 measures round-trip latency
                      (ping-pong), 0 (default) streams as many as the ring holds
  endpoint=0|1        our endpoint index (default: from the device tree)
  poll-us=US          polling interval without interrupts (default 100)
  wait=auto|poll      take doorbell interrupts when available (default), or always poll
  poweroff            power off when done (unattended runs)
  --from-cmdline      take the options from /proc/cmdline: bulkhead.ipc-demo=opt,opt,...
Prints `ipc-bench: window <w>, <n> round trips in <t> ms, median <x> us, p99 <y> us, max <z> us,
<m> MiB/s` and `ipc: <sent> sent, <verified> verified, <lost> lost`, and exits 0 only if
nothing was lost.";

/// The kernel command-line parameter holding the options.
pub const CMDLINE_KEY: &str = "bulkhead.ipc-demo";

impl Options {
    /// Parses `key=value` words (a leading `--` is allowed).
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, UsageError> {
        let mut o = Options::default();
        let mut payload = None;
        for arg in args {
            let arg = arg.trim_start_matches("--");
            let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
            let num = |v: &str| -> Result<u64, UsageError> {
                v.parse()
                    .map_err(|_| UsageError(format!("{key}={v}: not a number")))
            };
            match key {
                "channel" if !value.is_empty() => o.channel = value.into(),
                "role" => {
                    o.role = match value {
                        "send" => Role::Send,
                        "echo" => Role::Echo,
                        "listen" => Role::Listen,
                        _ => return Err(UsageError(format!("role={value}: send, echo or listen"))),
                    }
                }
                "access" => {
                    o.access = match value {
                        "auto" => Access::Auto,
                        "uio" => Access::Uio,
                        "devmem" => Access::DevMem,
                        _ => {
                            return Err(UsageError(format!("access={value}: auto, uio or devmem")))
                        }
                    }
                }
                "count" => o.count = num(value)?,
                "timeout-ms" => o.timeout_ms = num(value)?.max(1),
                "attach-timeout-ms" => o.attach_timeout_ms = num(value)?.max(1),
                "slot-size" => o.slot_size = num(value)? as usize,
                "payload" => payload = Some(num(value)? as usize),
                "window" => o.window = num(value)?,
                "sizes" => {
                    o.sizes = match value {
                        "varying" => bulkhead_channel::echo::Sizes::Varying,
                        "full" => bulkhead_channel::echo::Sizes::Full,
                        _ => return Err(UsageError(format!("sizes={value}: varying or full"))),
                    }
                }
                "endpoint" => o.endpoint = Some(num(value)? as u32),
                "poll-us" => o.poll_us = num(value)?.max(1),
                "wait" => {
                    o.force_poll = match value {
                        "auto" => false,
                        "poll" => true,
                        _ => return Err(UsageError(format!("wait={value}: auto or poll"))),
                    }
                }
                "root" => o.root = value.into(),
                "poweroff" if value.is_empty() => o.poweroff = true,
                _ => return Err(UsageError(format!("unknown option {arg:?}"))),
            }
        }
        let max = o.slot_size.saturating_sub(16);
        o.payload = payload.unwrap_or(max);
        if o.payload > max || o.payload <= bulkhead_channel::echo::HEADER {
            return Err(UsageError(format!(
                "payload={}: must be more than {} and at most slot-size - 16 = {max}",
                o.payload,
                bulkhead_channel::echo::HEADER
            )));
        }
        Ok(o)
    }

    /// Parses the options out of a kernel command line; `None` if it has no
    /// `bulkhead.ipc-demo=` parameter.
    pub fn from_cmdline(cmdline: &str) -> Option<Result<Self, UsageError>> {
        let value = cmdline
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix(CMDLINE_KEY)?.strip_prefix('='))?;
        let value = value.trim_matches('"');
        Some(Self::parse(value.split(',').filter(|w| !w.is_empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_and_cmdline() {
        let o = Options::parse(["channel=ctl", "count=5", "--role=echo", "poweroff"]).unwrap();
        assert_eq!(
            (o.channel.as_str(), o.count, o.role),
            ("ctl", 5, Role::Echo)
        );
        assert!(o.poweroff);
        assert_eq!(o.payload, 240);
        let o = Options::from_cmdline(
            "console=ttyAMA0 bulkhead.ipc-demo=channel=ipc1,count=7,access=uio quiet",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.channel.as_str(), o.count, o.access),
            ("ipc1", 7, Access::Uio)
        );
        assert!(Options::from_cmdline("console=ttyAMA0").is_none());
        let o = Options::from_cmdline("bulkhead.ipc-demo=\"count=3\"")
            .unwrap()
            .unwrap();
        assert_eq!(o.count, 3);
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        assert!(Options::parse(["count=x"])
            .unwrap_err()
            .0
            .contains("count=x"));
        assert!(Options::parse(["frobnicate"])
            .unwrap_err()
            .0
            .contains("unknown option"));
        assert!(Options::parse(["payload=300"])
            .unwrap_err()
            .0
            .contains("slot-size"));
        assert!(Options::parse(["role=sing"]).is_err());
    }
}
