//! One benchmark run of a program (QEMU): start it, read its output line by line (stdout and
//! stderr merged line by line, each line whole), let the caller react to each line (type input,
//! or stop the run), and kill the program when the caller stops or a time limit passes.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How much of a failed run's output an error shows.
const TAIL: usize = 3000;

/// What to do after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep reading.
    Continue,
    /// Write these bytes to the program's stdin, then keep reading.
    Send(Vec<u8>),
    /// Stop the run now (the program is killed).
    Stop,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Transcript {
    /// Every output line, without line terminators.
    pub lines: Vec<String>,
    /// Time from starting the program to the end of the run (the `Stop`, or its exit).
    pub elapsed: Duration,
    /// Whether the caller stopped the run (otherwise the program exited by itself).
    pub stopped: bool,
}

/// Runs `program` with `args`, calling `on_line` for every complete output line, for at most
/// `limit`. Ends when `on_line` says [`Step::Stop`] or the program exits; the program is killed
/// in any case. Running out of time is an error that shows the end of the output.
pub fn run(
    program: &str,
    args: &[String],
    limit: Duration,
    mut on_line: impl FnMut(&str) -> Step,
) -> Result<Transcript> {
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    // Chunks of output, tagged with their stream (0 stdout, 1 stderr).
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let streams = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    for (index, stream) in streams.into_iter().enumerate() {
        if let Some(stream) = stream {
            let tx = tx.clone();
            std::thread::spawn(move || forward(index, stream, tx));
        }
    }
    drop(tx);
    let mut stdin = child.stdin.take();

    let mut lines = Vec::new();
    // Each stream's unfinished line.
    let mut partials = [Vec::new(), Vec::new()];
    let outcome = 'run: loop {
        let left = limit.saturating_sub(start.elapsed());
        let (stream, chunk) = match rx.recv_timeout(left) {
            Ok(tagged) => tagged,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!("{program} still running after {limit:?}"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Both streams are closed: the program ended. Last lines may lack a newline.
                for partial in partials.iter_mut().filter(|p| !p.is_empty()) {
                    let line = take_line(partial);
                    let step = on_line(&line);
                    lines.push(line);
                    if step == Step::Stop {
                        break 'run Ok(true);
                    }
                }
                break Ok(false);
            }
        };
        let partial = &mut partials[stream];
        for &byte in &chunk {
            if byte != b'\n' {
                partial.push(byte);
                continue;
            }
            let line = take_line(partial);
            let step = on_line(&line);
            lines.push(line);
            match step {
                Step::Continue => {}
                Step::Send(bytes) => {
                    let sent = stdin
                        .as_mut()
                        .map(|s| s.write_all(&bytes).and_then(|_| s.flush()));
                    if let Some(Err(e)) = sent {
                        break 'run Err(format!("cannot write to {program}'s input: {e}"));
                    }
                }
                Step::Stop => break 'run Ok(true),
            }
        }
    };
    let elapsed = start.elapsed();
    stop(&mut child);
    match outcome {
        Ok(stopped) => Ok(Transcript {
            lines,
            elapsed,
            stopped,
        }),
        Err(reason) => {
            let mut text = lines.join("\n");
            for partial in &partials {
                text.push('\n');
                text.push_str(&String::from_utf8_lossy(partial));
            }
            bail!(
                "{reason}; last output:\n{}\n(command: {program} {})",
                tail(&text, TAIL),
                args.join(" ")
            )
        }
    }
}

/// Takes the bytes gathered so far as a line, dropping a trailing `\r`.
fn take_line(partial: &mut Vec<u8>) -> String {
    if partial.last() == Some(&b'\r') {
        partial.pop();
    }
    let line = String::from_utf8_lossy(partial).into_owned();
    partial.clear();
    line
}

/// Kills the program (it may have exited already) and reaps it.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

/// Sends what `from` yields, chunk by chunk and tagged with `index`, until end of file or the
/// receiver is gone.
fn forward(index: usize, mut from: Box<dyn Read + Send>, to: mpsc::Sender<(usize, Vec<u8>)>) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.send((index, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn lines_are_read_until_stop_and_the_program_killed() {
        let start = Instant::now();
        let script = "echo booting; sleep 0.3; printf 'x\\r\\nMARK\\n'; sleep 30";
        let t = run("sh", &sh(script), Duration::from_secs(20), |line| {
            if line == "MARK" {
                Step::Stop
            } else {
                Step::Continue
            }
        })
        .unwrap();
        assert!(t.stopped);
        assert!(t.elapsed >= Duration::from_millis(300), "{:?}", t.elapsed);
        assert_eq!(t.lines, ["booting", "x", "MARK"]);
        // Killed, not waited for: far less than the 30 s sleep.
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn lines_of_the_two_streams_stay_whole() {
        // Half lines on both streams at once: each stream's line is completed separately.
        let script = "printf 'out-' ; printf 'err-' >&2; sleep 0.2; echo one; echo two >&2";
        let t = run("sh", &sh(script), Duration::from_secs(20), |_| {
            Step::Continue
        })
        .unwrap();
        let mut lines = t.lines.clone();
        lines.sort();
        assert_eq!(lines, ["err-two", "out-one"]);
    }

    #[test]
    fn input_is_sent_when_asked() {
        // `read` waits for our answer to the prompt.
        let script = "echo ready; read answer; echo got $answer; printf 'no newline'";
        let t = run("sh", &sh(script), Duration::from_secs(20), |line| {
            if line == "ready" {
                Step::Send(b"yes\n".to_vec())
            } else {
                Step::Continue
            }
        })
        .unwrap();
        assert!(!t.stopped);
        assert_eq!(t.lines, ["ready", "got yes", "no newline"]);
    }

    #[test]
    fn running_out_of_time_is_an_error_with_the_output() {
        let err = run(
            "sh",
            &sh("echo started; sleep 30"),
            Duration::from_millis(300),
            |_| Step::Continue,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("still running") && err.contains("started"),
            "{err}"
        );
    }

    #[test]
    fn tails_cut_at_character_boundaries() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }
}
