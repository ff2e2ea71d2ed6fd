//! Harness for Bulkhead's integration tests.
//!
//! Each test runs `cargo xtask ...` as a subprocess from the repository root, captures its stdout
//! and stderr interleaved in one pipe (so QEMU's console output and xtask's own messages keep
//! their order), and checks the result with the assertion helpers of [`Outcome`], which print
//! the whole output when they fail.
//!
//! Stdin is closed by default. [`run_with_stdin`] pipes bytes in at start (as a shell pipe into
//! `cargo xtask run` would), and [`run_interactive`] streams the output and types each input only
//! once a given marker has appeared (Linux's PL011 driver discards input that arrives before it
//! starts). `cargo xtask run` passes its stdin on to the console, whose input goes to the first
//! partition; [`QUIT_QEMU`] ends a run early through QEMU's own console escape.
//!
//! Boots are serialised within a test binary (QEMU runs are CPU-heavy); `cargo xtask test`
//! also runs the test binaries with `--test-threads=1`.

#![forbid(unsafe_code)]

pub mod linux_beside_ticker;

use std::io::{Read, Write};
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
/// Typed into `cargo xtask run`, QEMU's console escape Ctrl-A x: QEMU quits at once (status 0),
/// without the guests having anything to say about it. Ends a run whose checks are done.
pub const QUIT_QEMU: &str = "\x01x";

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
    /// How many of the input steps ([`run_interactive`]) were sent, of `steps`.
    pub steps_done: usize,
    pub steps: usize,
}

/// What a `cargo xtask` invocation gets on its stdin.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Nothing: stdin is closed.
    Closed,
    /// These bytes, written at once at start, then end of file.
    Bytes(&'a [u8]),
    /// Each `(wait_for, send)` in turn: once `wait_for` has appeared in the output (after where
    /// the previous step's marker was), `send` is written. End of file after the last one.
    Steps(&'a [(&'a str, &'a str)]),
}

/// Runs `cargo xtask <args>` in the repository root with stdin closed and waits for it, at most
/// `limit` (then it is killed and the test fails).
pub fn xtask(args: &[&str], limit: Duration) -> Outcome {
    xtask_with_input(args, limit, Input::Closed)
}

/// Runs `cargo xtask <args>` in the repository root with `input` on its stdin and waits for it,
/// at most `limit` (then it is killed and the test fails).
pub fn xtask_with_input(args: &[&str], limit: Duration, input: Input) -> Outcome {
    let command = format!("cargo xtask {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (mut reader, writer) = std::io::pipe().expect("cannot create a pipe");
    let mut cmd = Command::new(cargo);
    cmd.arg("xtask")
        .args(args)
        .current_dir(repo_root())
        .stdin(match input {
            Input::Closed => Stdio::null(),
            Input::Bytes(_) | Input::Steps(_) => Stdio::piped(),
        })
        .stdout(writer.try_clone().expect("cannot duplicate a pipe"))
        .stderr(writer);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    // The command holds our copies of the pipe's write end: drop them so the reader sees end of
    // file once the child (and QEMU) are done.
    drop(cmd);

    let mut stdin = child.stdin.take();
    let steps: &[(&str, &str)] = match input {
        Input::Closed => &[],
        Input::Bytes(bytes) => {
            // Written by a thread: the child may not read it all before it exits.
            let mut pipe = stdin.take().expect("stdin is piped");
            let bytes = bytes.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
                // Dropping the pipe closes it: end of file.
            });
            &[]
        }
        Input::Steps(steps) => {
            if steps.is_empty() {
                stdin = None;
            }
            steps
        }
    };

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    let deadline = start + limit;
    let mut bytes = Vec::new();
    let mut next_step = 0;
    let mut search_from = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` did not finish within {limit:?}; killed it. Output so far:\n{}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
        while let Some((wait_for, send)) = steps.get(next_step) {
            let Some(at) = find(&bytes[search_from..], wait_for.as_bytes()) else {
                break;
            };
            search_from += at + wait_for.len();
            next_step += 1;
            if let Some(pipe) = stdin.as_mut() {
                // The child may be gone already; then the output will tell.
                let _ = pipe.write_all(send.as_bytes()).and_then(|_| pipe.flush());
            }
            if next_step == steps.len() {
                stdin = None;
            }
        }
    }
    drop(stdin);
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for `{command}`: {e}"));
    let outcome = Outcome {
        command,
        status,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        elapsed: start.elapsed(),
        steps_done: next_step,
        steps: steps.len(),
    };
    eprintln!(
        "{}: {} in {:.1} s",
        outcome.command,
        outcome.status,
        outcome.elapsed.as_secs_f64()
    );
    outcome
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `cargo xtask run --board <board> --timeout <timeout>`: builds the board and boots it in QEMU.
pub fn run_board(board: &str, timeout: Duration) -> Outcome {
    boot(&["run", "--board", board], timeout, Input::Closed)
}

/// `cargo xtask run --unchecked --board <board> --timeout <timeout>`: packs the board config
/// without checking it, so the hypervisor's own boot-time check is what refuses it.
pub fn run_board_unchecked(board: &str, timeout: Duration) -> Outcome {
    boot(
        &["run", "--unchecked", "--board", board],
        timeout,
        Input::Closed,
    )
}

/// `cargo xtask run [--board <board>] --timeout <timeout>` (no `--board`: the default board)
/// with `stdin` piped in at start, then end of file: like `printf ... | cargo xtask run`.
pub fn run_with_stdin(board: Option<&str>, timeout: Duration, stdin: &[u8]) -> Outcome {
    boot(&run_args(board), timeout, Input::Bytes(stdin))
}

/// `cargo xtask run [--board <board>] --timeout <timeout>` (no `--board`: the default board),
/// typing each step's `send` into it once its `wait_for` has appeared in the output (searching
/// after the previous step's marker). Send [`QUIT_QEMU`] last to end the run when the checks
/// are done; [`Outcome::assert_steps_done`] says whether every marker showed up.
pub fn run_interactive(board: Option<&str>, timeout: Duration, steps: &[(&str, &str)]) -> Outcome {
    boot(&run_args(board), timeout, Input::Steps(steps))
}

/// `cargo xtask <args> --timeout <timeout>` with `input` on its stdin.
pub fn boot_with_input(args: &[&str], timeout: Duration, input: Input) -> Outcome {
    boot(args, timeout, input)
}

fn run_args(board: Option<&str>) -> Vec<&str> {
    match board {
        Some(board) => vec!["run", "--board", board],
        None => vec!["run"],
    }
}

fn boot(args: &[&str], timeout: Duration, input: Input) -> Outcome {
    let _serialised = BOOT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let secs = timeout.as_secs().max(1).to_string();
    let mut args = args.to_vec();
    // Before `--`: what follows it goes to QEMU.
    let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    args.splice(at..at, ["--timeout", secs.as_str()]);
    xtask_with_input(&args, timeout + BUILD_ALLOWANCE, input)
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
    /// The output's lines as a terminal shows them, without line terminators (QEMU's serial
    /// console writes `\r\n`). On a terminal the console takes a shown prompt off the screen
    /// with `\r ESC[K` before printing another line in its place: only what follows the last
    /// such erase is on the line.
    pub fn lines(&self) -> Vec<&str> {
        const ERASE_LINE: &str = "\r\x1b[K";
        self.output
            .split('\n')
            .map(|line| {
                let shown = line
                    .rfind(ERASE_LINE)
                    .map_or(line, |i| &line[i + ERASE_LINE.len()..]);
                shown.trim_end_matches('\r')
            })
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

    /// Like [`Outcome::partition_lines`], with terminal escape sequences (`ESC [ ... letter`)
    /// and surrounding white space removed: what a partition's shell printed, as a user sees it.
    pub fn partition_text_lines(&self, name: &str) -> Vec<(usize, String)> {
        self.partition_lines(name)
            .into_iter()
            .map(|(i, line)| (i, strip_escapes(line).trim().to_owned()))
            .collect()
    }

    /// What the `bench` guest in partition `name` printed (its `bench: ` lines, without that);
    /// fails if it reported an error.
    pub fn bench_lines(&self, name: &str) -> Vec<&str> {
        let lines: Vec<&str> = self
            .partition_lines(name)
            .into_iter()
            .filter_map(|(_, line)| line.strip_prefix("bench: "))
            .collect();
        if let Some(error) = lines.iter().find(|l| l.starts_with("error ")) {
            self.fail(&format!("the guest reported {error:?}"));
        }
        lines
    }

    /// The count lines of a `hello` partition (`count i/N at T ms`), in output order.
    pub fn counts(&self, name: &str) -> Vec<(usize, Count)> {
        self.partition_lines(name)
            .into_iter()
            .filter_map(|(i, line)| Some((i, Count::parse(line)?)))
            .collect()
    }

    /// Asserts every input step's marker appeared (so every input was sent).
    #[track_caller]
    pub fn assert_steps_done(&self) {
        if self.steps_done < self.steps {
            self.fail(&format!(
                "only {} of {} input steps were reached: the marker of step {} never appeared",
                self.steps_done,
                self.steps,
                self.steps_done + 1
            ));
        }
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

impl Outcome {
    /// The `trespasser` partition announced a write to `address`, the hypervisor stopped it
    /// with a report naming the address, the write never went through, and `hello-a` finished
    /// its count after that (the boards of `isolation.rs` and `rpi4.rs`). Returns the line of
    /// hello-a's last words.
    #[track_caller]
    pub fn assert_trespasser_stopped(&self, address: &str) -> usize {
        let attempt = self.assert_line(0, "where the trespasser announces its write", |line| {
            line.contains(&format!("writing to {address}"))
        });
        let report = self.assert_line(
            attempt,
            &format!("reporting that the trespasser was stopped at {address}"),
            |line| {
                let line = line.to_ascii_lowercase();
                line.contains("trespasser") && line.contains("stopped") && line.contains(address)
            },
        );
        self.assert_not_contains("isolation is broken");
        self.assert_line_starting(
            report + 1,
            "[hello-a] hello from hello-a: done, powering off",
        )
    }
}

/// One `count` line of the `hello` guest: `count 12/600 at 2400 ms` (or `count 12 at 2400 ms`
/// when it counts forever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// The step, from 1.
    pub step: u64,
    /// The number of steps, `None` when counting forever.
    pub total: Option<u64>,
    /// The guest's time since it started, in milliseconds.
    pub ms: u64,
}

impl Count {
    /// Parses a count line (without the partition prefix); `None` if it is not one.
    pub fn parse(line: &str) -> Option<Count> {
        let rest = line.trim_end().strip_prefix("count ")?;
        let (steps, at) = rest.split_once(" at ")?;
        let ms = at.strip_suffix(" ms")?.parse().ok()?;
        let (step, total) = match steps.split_once('/') {
            Some((step, total)) => (step.parse().ok()?, Some(total.parse().ok()?)),
            None => (steps.parse().ok()?, None),
        };
        Some(Count { step, total, ms })
    }
}

/// `line` without terminal escape sequences: CSI sequences (`ESC [`, parameters, one final
/// letter or `@`..`~`), other two-byte `ESC x` sequences, and stray control characters other
/// than tab.
pub fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn count_lines_parse() {
        assert_eq!(
            Count::parse("count 12/600 at 2400 ms"),
            Some(Count {
                step: 12,
                total: Some(600),
                ms: 2400
            })
        );
        assert_eq!(
            Count::parse("count 3 at 600 ms\r"),
            Some(Count {
                step: 3,
                total: None,
                ms: 600
            })
        );
        assert_eq!(Count::parse("count 1/10"), None);
        assert_eq!(Count::parse("hello from x"), None);
        assert_eq!(Count::parse("count x/1 at 2 ms"), None);
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(strip_escapes("\x1b[6n2"), "2");
        assert_eq!(
            strip_escapes("bulkhead-linux# \x1b[6ngrep -c ^processor"),
            "bulkhead-linux# grep -c ^processor"
        );
        assert_eq!(strip_escapes("a\x1b[1;31mb\x1b[0m\x07c\r"), "abc");
        assert_eq!(strip_escapes("\x1b7x"), "x");
    }

    #[test]
    fn markers_are_found() {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"abc", b""), Some(0));
    }
}
