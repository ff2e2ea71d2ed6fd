//! Harness for Bulkhead's integration tests.
//!
//! Each test runs `cargo xtask ...` as a subprocess from the repository root with stdin closed,
//! captures its stdout and stderr interleaved in one pipe (so QEMU's console output and xtask's
//! own messages keep their order), and checks the result with the assertion helpers of
//! [`Outcome`], which print the whole output when they fail.
//!
//! Boots are serialised within a test binary (QEMU runs are CPU-heavy); `cargo xtask test`
//! also runs the test binaries with `--test-threads=1`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The exit status of `cargo xtask run` when its `--timeout` stopped QEMU.
pub const TIMEOUT_EXIT: i32 = 124;
/// What `cargo xtask run` prints when its `--timeout` stopped QEMU.
pub const TIMEOUT_MESSAGE: &str = "xtask: timeout after";
/// What `cargo xtask run` prints just before starting QEMU.
pub const BOOT_MESSAGE: &str = "xtask: booting board";

/// Time allowed, on top of a run's QEMU timeout, for cargo to build what is needed before QEMU
/// starts. Only a safety net against a hung build: normally the build is incremental (seconds);
/// a first build from scratch takes a few minutes on a 2-core machine.
const BUILD_ALLOWANCE: Duration = Duration::from_secs(1200);

/// Serialises QEMU boots within one test binary.
static BOOT_LOCK: Mutex<()> = Mutex::new(());

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives one level below the repository root")
        .to_path_buf()
}

/// How one `cargo xtask` invocation ended.
#[derive(Debug)]
pub struct Outcome {
    /// The command as typed in a shell, for messages.
    pub command: String,
    pub status: ExitStatus,
    /// Stdout and stderr, interleaved as written.
    pub output: String,
    pub elapsed: Duration,
}

/// Runs `cargo xtask <args>` in the repository root with stdin closed and waits for it, at most
/// `limit` (then it is killed and the test fails).
pub fn xtask(args: &[&str], limit: Duration) -> Outcome {
    let command = format!("cargo xtask {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (mut reader, writer) = std::io::pipe().expect("cannot create a pipe");
    let mut cmd = Command::new(cargo);
    cmd.arg("xtask")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("cannot duplicate a pipe"))
        .stderr(writer);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    // The command holds our copies of the pipe's write end: drop them so the reader sees end of
    // file once the child (and QEMU) are done.
    drop(cmd);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    let bytes = match rx.recv_timeout(limit) {
        Ok(bytes) => bytes,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not finish within {limit:?}; killed it");
        }
    };
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for `{command}`: {e}"));
    let outcome = Outcome {
        command,
        status,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        elapsed: start.elapsed(),
    };
    eprintln!(
        "{}: {} in {:.1} s",
        outcome.command,
        outcome.status,
        outcome.elapsed.as_secs_f64()
    );
    outcome
}

/// `cargo xtask run --board <board> --timeout <timeout>`: builds the board and boots it in QEMU.
pub fn run_board(board: &str, timeout: Duration) -> Outcome {
    boot(&["run", "--board", board], timeout)
}

/// `cargo xtask run --unchecked --board <board> --timeout <timeout>`: packs the board config
/// without checking it, so the hypervisor's own boot-time check is what refuses it.
pub fn run_board_unchecked(board: &str, timeout: Duration) -> Outcome {
    boot(&["run", "--unchecked", "--board", board], timeout)
}

fn boot(args: &[&str], timeout: Duration) -> Outcome {
    let _serialised = BOOT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let secs = timeout.as_secs().max(1).to_string();
    let mut args = args.to_vec();
    args.extend(["--timeout", &secs]);
    xtask(&args, timeout + BUILD_ALLOWANCE)
}

/// `cargo xtask build --board <board> [--unchecked]`.
pub fn build_board(board: &str, unchecked: bool) -> Outcome {
    let mut args = vec!["build", "--board", board];
    if unchecked {
        args.push("--unchecked");
    }
    xtask(&args, BUILD_ALLOWANCE)
}

/// `cargo xtask check <file>`.
pub fn check(file: &str) -> Outcome {
    xtask(&["check", file], BUILD_ALLOWANCE)
}

impl Outcome {
    /// The output's lines, without line terminators (QEMU's serial console writes `\r\n`).
    pub fn lines(&self) -> Vec<&str> {
        self.output
            .split('\n')
            .map(|line| line.trim_end_matches('\r'))
            .collect()
    }

    /// What a partition printed: its console lines (`[name] ...`) with the prefix removed.
    pub fn partition_lines(&self, name: &str) -> Vec<(usize, &str)> {
        let prefix = format!("[{name}] ");
        self.lines()
            .into_iter()
            .enumerate()
            .filter_map(|(i, line)| line.strip_prefix(prefix.as_str()).map(|rest| (i, rest)))
            .collect()
    }

    /// Fails the test with `message`, the command, its status and its whole output.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\n\
             command: {}\n\
             status:  {} after {:.1} s\n\
             ---------------- output ----------------\n\
             {}\n\
             ------------- end of output ------------",
            self.command,
            self.status,
            self.elapsed.as_secs_f64(),
            self.output.trim_end()
        )
    }

    /// Whether xtask stopped QEMU because of `--timeout`.
    pub fn timed_out(&self) -> bool {
        self.status.code() == Some(TIMEOUT_EXIT) || self.output.contains(TIMEOUT_MESSAGE)
    }

    /// Asserts the command exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) {
        if !self.status.success() {
            self.fail("expected success");
        }
    }

    /// Asserts the command failed (non-zero status, not killed by the timeout).
    #[track_caller]
    pub fn assert_failure(&self) {
        if self.status.success() {
            self.fail("expected a failure (non-zero exit status)");
        }
    }

    /// Asserts QEMU was started and ended by itself (the guest or hypervisor powered the machine
    /// off) with status 0, rather than being stopped by the timeout or failing.
    #[track_caller]
    pub fn assert_exited_by_itself(&self) {
        if !self.output.contains(BOOT_MESSAGE) {
            self.fail("QEMU was never started (did the build fail?)");
        }
        if self.timed_out() {
            self.fail("QEMU did not exit by itself: the timeout stopped it");
        }
        if !self.status.success() {
            self.fail("QEMU exited by itself, but with a failure status");
        }
    }

    /// Asserts the output contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) {
        if !self.output.contains(needle) {
            self.fail(&format!("expected the output to contain {needle:?}"));
        }
    }

    /// Asserts no line of the output contains `needle`.
    #[track_caller]
    pub fn assert_not_contains(&self, needle: &str) {
        if let Some(line) = self.lines().iter().find(|line| line.contains(needle)) {
            self.fail(&format!(
                "expected no line containing {needle:?}, found {line:?}"
            ));
        }
    }

    /// The index of the first line at or after `from` for which `matches` holds.
    pub fn find_line(&self, from: usize, matches: impl Fn(&str) -> bool) -> Option<usize> {
        self.lines()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, line)| matches(line))
            .map(|(i, _)| i)
    }

    /// Asserts some line at or after `from` satisfies `matches` (described by `what`) and returns
    /// its index.
    #[track_caller]
    pub fn assert_line(&self, from: usize, what: &str, matches: impl Fn(&str) -> bool) -> usize {
        match self.find_line(from, matches) {
            Some(i) => i,
            None if from == 0 => self.fail(&format!("expected a line {what}")),
            None => self.fail(&format!("expected a line {what} after line {}", from)),
        }
    }

    /// Asserts some line at or after `from` starts with `prefix` and returns its index.
    #[track_caller]
    pub fn assert_line_starting(&self, from: usize, prefix: &str) -> usize {
        self.assert_line(from, &format!("starting with {prefix:?}"), |line| {
            line.starts_with(prefix)
        })
    }
}

/// The substring a bad board config's first line promises its error contains:
/// `// expect: <substring>`.
pub fn expected_error(dts_source: &str) -> Option<&str> {
    let first = dts_source.lines().next()?.trim();
    let rest = first.strip_prefix("//")?.trim_start();
    let expect = rest.strip_prefix("expect:")?.trim();
    (!expect.is_empty()).then_some(expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_error_is_read_from_the_first_line() {
        assert_eq!(
            expected_error("// expect: overlaps\n/dts-v1/;"),
            Some("overlaps")
        );
        assert_eq!(
            expected_error("//expect:  cpu cpu@1 is used twice  \n"),
            Some("cpu cpu@1 is used twice")
        );
        assert_eq!(expected_error("/dts-v1/;\n// expect: x"), None);
        assert_eq!(expected_error("// expect:\n"), None);
        assert_eq!(expected_error(""), None);
    }
}
