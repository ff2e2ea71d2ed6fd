//! `bulkhead-top`: prints Bulkhead's monitoring table (one row per partition: state, uptime,
//! restarts, faults, exits by reason, injected interrupts, CPU time in the guest and in the
//! hypervisor) from Linux userspace, the same table as the hypervisor's Ctrl-T s.
//!
//! Linux userspace cannot make hypercalls (`HVC` is undefined at EL0), so it reads the same
//! counters `MONITOR_READ` returns through the partition's **monitor window**: a read-only page
//! the hypervisor traps and answers with each field as it is read (`docs/hypercalls.md`). The
//! window is the device-tree node `compatible = "bulkhead,monitor"` under `/proc/device-tree`,
//! there only if the board config gives the partition `monitor;` and `monitor-window`; it is
//! mapped through `/dev/mem` (needs root).
//!
//! ```text
//! bulkhead-top              # the table, once
//! bulkhead-top -d 2 -n 5    # five times, two seconds apart
//! ```
//!
//! Built as a static `aarch64-unknown-linux-musl` binary for the initramfs of the Linux guest
//! recipe (`/bin/bulkhead-top`); it also builds and tests on the host.

mod window;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bulkhead_config::monitor::Table;

const USAGE: &str = "\
usage: bulkhead-top [-d SECONDS] [-n COUNT]
Prints Bulkhead's monitoring table, one row per partition, read from this partition's monitor
window (the board config must give it `monitor;` and `monitor-window`).
  -d SECONDS  print it again every SECONDS seconds (default: once)
  -n COUNT    print it COUNT times (default: 1, or forever with -d)";

/// What the command line asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Options {
    /// Between two tables.
    delay: Option<Duration>,
    /// How many tables (`None`: forever).
    count: Option<u64>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        delay: None,
        count: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .ok_or_else(|| format!("{arg} needs {what}"))
                .cloned()
        };
        match arg.as_str() {
            "-d" => {
                let text = value("a number of seconds")?;
                let seconds = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("-d {text}: not a positive number of seconds"))?;
                options.delay = Some(Duration::from_secs_f64(seconds));
            }
            "-n" => {
                let text = value("a count")?;
                let count = text
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("-n {text}: not a positive count"))?;
                options.count = Some(count);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.delay.is_none() {
        options.count = Some(options.count.unwrap_or(1));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bulkhead-top: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let window = match window::Window::open(Path::new("/")) {
        Ok(window) => window,
        Err(e) => {
            eprintln!("bulkhead-top: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut printed = 0u64;
    loop {
        let rows = window.rows();
        print!(
            "{}",
            Table {
                rows: &rows,
                prefix: ""
            }
        );
        printed += 1;
        if options.count.is_some_and(|n| printed >= n) {
            return ExitCode::SUCCESS;
        }
        if let Some(delay) = options.delay {
            std::thread::sleep(delay);
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_default_to_one_table() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                delay: None,
                count: Some(1)
            }
        );
        assert_eq!(
            parse(&args("-d 0.5 -n 3")).unwrap(),
            Options {
                delay: Some(Duration::from_millis(500)),
                count: Some(3)
            }
        );
        assert_eq!(parse(&args("-d 2")).unwrap().count, None, "forever");
        for bad in ["-d", "-d 0", "-d x", "-n 0", "-n -1", "--all"] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
