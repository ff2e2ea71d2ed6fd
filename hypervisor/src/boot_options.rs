//! Bulkhead's own boot options: `bulkhead.<name>=<value>` words on the command line of the
//! device tree the boot loader passes (`/chosen/bootargs`; QEMU `-append`, U-Boot's `bootargs`,
//! a Pi's `cmdline.txt`). They say how the machine is used this time, not what it is: the board
//! config says that.
//!
//! | option | values | default |
//! |---|---|---|
//! | `bulkhead.console` | `terminal`: the console is a terminal, the focused partition's line editing is passed on; `plain`: a log or a pipe, plain text only | `terminal` |

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use crate::console::Mode;

/// The options Bulkhead understood, and what it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOptions {
    pub console: Mode,
    /// `bulkhead.*` words that are not options or have a bad value (reported at boot).
    pub unknown: Vec<String>,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            console: Mode::Terminal,
            unknown: Vec::new(),
        }
    }
}

impl BootOptions {
    /// The options in `bootargs`; words not starting with `bulkhead.` belong to someone else
    /// and are ignored.
    pub fn parse(bootargs: &str) -> Self {
        let mut options = Self::default();
        for word in bootargs.split_ascii_whitespace() {
            let Some(option) = word.strip_prefix("bulkhead.") else {
                continue;
            };
            match option.split_once('=') {
                Some(("console", "terminal")) => options.console = Mode::Terminal,
                Some(("console", "plain")) => options.console = Mode::Plain,
                _ => options.unknown.push(String::from(word)),
            }
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_mode() {
        assert_eq!(BootOptions::parse("").console, Mode::Terminal);
        assert_eq!(
            BootOptions::parse("console=ttyAMA0 bulkhead.console=plain quiet").console,
            Mode::Plain
        );
        assert_eq!(
            BootOptions::parse("bulkhead.console=plain bulkhead.console=terminal").console,
            Mode::Terminal,
            "the last one counts"
        );
    }

    #[test]
    fn unknown_options_are_kept_for_the_report() {
        let o = BootOptions::parse("bulkhead.console=fancy bulkhead.colour=1 root=/dev/vda");
        assert_eq!(o.console, Mode::Terminal);
        assert_eq!(o.unknown, ["bulkhead.console=fancy", "bulkhead.colour=1"]);
    }
}
