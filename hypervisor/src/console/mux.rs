//! The console multiplexer: one physical console shared by all partitions.
//!
//! This module owns how partitions' console output is merged onto the single host UART and how
//! input typed on it is routed back to exactly one partition. Every byte a partition transmits
//! goes through [`ConsoleMux::write`], which buffers it per partition and emits whole lines, each
//! as `[<name>] <line>\r\n`, so lines from different partitions never interleave mid-line.
//! Carriage returns from guests are dropped (the mux supplies its own `\r\n`); all other bytes,
//! including escape sequences, pass through untouched. A line longer than [`MAX_LINE`] bytes is
//! emitted in pieces, each with its own prefix.
//!
//! The one exception is the partition that has the input focus: its unfinished line (a shell
//! prompt) is shown when the caller says so with [`ConsoleMux::show_partial`] (the hypervisor
//! does a moment after the line started, if it is still unfinished, so lines being written are
//! not shown in pieces), and from then on what it writes (the echo of what is being typed) appears at once.
//! When another partition's line (or a hypervisor message, [`ConsoleMux::line`]) must be printed
//! meanwhile, the mux ends the shown partial line, prints the other line, and shows the partial
//! line again on a fresh line, the way a shell redraws its prompt. So every physical line still
//! belongs to exactly one partition.
//!
//! Input goes to the partition that has the focus. The switch sequence is:
//!
//! | keys             | effect                                              |
//! |------------------|-----------------------------------------------------|
//! | Ctrl-T `1`..`9`  | focus partition 1..9 (if it exists)                 |
//! | Ctrl-T `n`       | focus the next partition (wrapping around)          |
//! | Ctrl-T Ctrl-T    | send a literal Ctrl-T (0x14) to the focused partition |
//! | Ctrl-T other     | nothing; both bytes are swallowed                   |
//!
//! The mux never writes to hardware itself: callers pass an `out` sink that receives complete
//! chunks of bytes, each of which should be written to the physical UART without interleaving.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bulkhead_config::PartitionId;

/// The longest line emitted in one piece, excluding prefix and line ending.
pub const MAX_LINE: usize = 256;

/// The escape byte that starts a switch sequence: Ctrl-T.
pub const ESCAPE: u8 = 0x14;

/// What to do with one byte of console input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Push `byte` into the receive FIFO of `partition`'s virtual UART.
    Deliver { partition: PartitionId, byte: u8 },
    /// The focus moved to `partition`; the caller should print [`ConsoleMux::focus_banner`].
    Switched { partition: PartitionId },
    /// The byte was part of a switch sequence (or there is nobody to deliver it to).
    Consumed,
}

/// Merges partition output into whole, prefixed lines and routes input to the focused partition.
#[derive(Debug)]
pub struct ConsoleMux {
    names: Vec<String>,
    pending: Vec<Vec<u8>>,
    /// The partition whose partial line is on screen (after its prefix, without line end).
    shown: Option<usize>,
    focus: usize,
    escape: bool,
    /// Reused buffer for assembling one output line.
    scratch: Vec<u8>,
}

impl ConsoleMux {
    /// A mux for partitions `0..names.len()`, named for the line prefixes. Input focus starts on
    /// partition 0.
    pub fn new(names: Vec<String>) -> Self {
        let pending = names.iter().map(|_| Vec::new()).collect();
        Self {
            names,
            pending,
            shown: None,
            focus: 0,
            escape: false,
            scratch: Vec::new(),
        }
    }

    /// The name of `partition`, if it exists.
    pub fn name(&self, partition: PartitionId) -> Option<&str> {
        self.names.get(partition.index()).map(String::as_str)
    }

    /// Takes one byte of output from `partition`. Complete lines (and more of the focused
    /// partition's partial line once it is shown) are passed to `out`; each call is one chunk to
    /// write without interleaving. Returns true when the focused partition has just started a
    /// partial line that is not shown: the caller should call [`show_partial`](Self::show_partial)
    /// a moment later (it shows the line only if it is still unfinished). Bytes for unknown
    /// partitions are dropped.
    pub fn write(&mut self, partition: PartitionId, byte: u8, out: &mut dyn FnMut(&[u8])) -> bool {
        let partition = partition.index();
        let Some(buf) = self.pending.get_mut(partition) else {
            return false;
        };
        match byte {
            b'\r' => {}
            b'\n' => self.emit(partition, out),
            _ => {
                buf.push(byte);
                if buf.len() >= MAX_LINE {
                    self.emit(partition, out);
                } else if self.shown == Some(partition) {
                    out(&[byte]);
                }
            }
        }
        partition == self.focus && self.shown.is_none() && self.pending[partition].len() == 1
    }

    /// Shows the focused partition's partial line (a prompt), if it has one.
    pub fn show_partial(&mut self, out: &mut dyn FnMut(&[u8])) {
        self.show_focus(out);
    }

    /// Prints a whole line that belongs to no partition (a hypervisor message), keeping the
    /// focused partition's partial line intact.
    pub fn line(&mut self, text: &[u8], out: &mut dyn FnMut(&[u8])) {
        let was_shown = self.break_shown(out);
        self.scratch.clear();
        self.scratch.extend_from_slice(text);
        self.scratch.extend_from_slice(b"\r\n");
        out(&self.scratch);
        if was_shown {
            self.show_focus(out);
        }
    }

    /// Emits `partition`'s pending partial line, if any, terminated like a whole line. Used when a
    /// partition stops, so its last words are not lost.
    pub fn flush(&mut self, partition: PartitionId, out: &mut dyn FnMut(&[u8])) {
        let partition = partition.index();
        if self
            .pending
            .get(partition)
            .is_some_and(|buf| !buf.is_empty())
        {
            self.emit(partition, out);
        }
    }

    /// Ends `partition`'s current line and passes it to `out`.
    fn emit(&mut self, partition: usize, out: &mut dyn FnMut(&[u8])) {
        if self.shown == Some(partition) {
            // The start of the line is already on screen.
            self.shown = None;
            if let Some(buf) = self.pending.get_mut(partition) {
                buf.clear();
            }
            out(b"\r\n");
        } else {
            let was_shown = self.break_shown(out);
            let (Some(name), Some(buf)) =
                (self.names.get(partition), self.pending.get_mut(partition))
            else {
                return;
            };
            self.scratch.clear();
            self.scratch.push(b'[');
            self.scratch.extend_from_slice(name.as_bytes());
            self.scratch.extend_from_slice(b"] ");
            self.scratch.append(buf);
            self.scratch.extend_from_slice(b"\r\n");
            out(&self.scratch);
            if was_shown {
                self.show_focus(out);
            }
        }
    }

    /// Ends the partial line on screen (it stays buffered, to be shown again). Returns whether
    /// there was one.
    fn break_shown(&mut self, out: &mut dyn FnMut(&[u8])) -> bool {
        let was_shown = self.shown.take().is_some();
        if was_shown {
            out(b"\r\n");
        }
        was_shown
    }

    /// Shows the focused partition's partial line, if it has one and nothing is shown.
    fn show_focus(&mut self, out: &mut dyn FnMut(&[u8])) {
        let focus = self.focus;
        if self.shown.is_some() {
            return;
        }
        let (Some(name), Some(buf)) = (self.names.get(focus), self.pending.get(focus)) else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch.push(b'[');
        self.scratch.extend_from_slice(name.as_bytes());
        self.scratch.extend_from_slice(b"] ");
        self.scratch.extend_from_slice(buf);
        out(&self.scratch);
        self.shown = Some(focus);
    }

    /// Routes one byte typed on the physical console.
    pub fn input(&mut self, byte: u8) -> Input {
        if self.names.is_empty() {
            return Input::Consumed;
        }
        if !self.escape {
            if byte == ESCAPE {
                self.escape = true;
                return Input::Consumed;
            }
            return Input::Deliver {
                partition: PartitionId(self.focus),
                byte,
            };
        }
        self.escape = false;
        match byte {
            ESCAPE => Input::Deliver {
                partition: PartitionId(self.focus),
                byte: ESCAPE,
            },
            b'1'..=b'9' => {
                let partition = PartitionId(usize::from(byte - b'1'));
                if self.set_focus(partition) {
                    Input::Switched { partition }
                } else {
                    Input::Consumed
                }
            }
            b'n' => {
                self.focus = (self.focus + 1) % self.names.len();
                Input::Switched {
                    partition: PartitionId(self.focus),
                }
            }
            _ => Input::Consumed,
        }
    }

    /// The partition that currently receives input.
    pub fn focus(&self) -> PartitionId {
        PartitionId(self.focus)
    }

    /// Gives the input focus to `partition`. Returns `false` (and keeps the focus) if there is no
    /// such partition.
    pub fn set_focus(&mut self, partition: PartitionId) -> bool {
        if partition.index() < self.names.len() {
            self.focus = partition.index();
            true
        } else {
            false
        }
    }

    /// A one-line notice (without line ending) announcing the focused partition, e.g.
    /// `--- console input now goes to linux (Ctrl-T <n> to switch) ---`.
    pub fn focus_banner(&self) -> String {
        match self.names.get(self.focus) {
            Some(name) => {
                format!("--- console input now goes to {name} (Ctrl-T <n> to switch) ---")
            }
            None => String::from("--- no partition takes console input ---"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn mux() -> ConsoleMux {
        ConsoleMux::new(vec![
            "linux".to_string(),
            "rtos".to_string(),
            "hello".to_string(),
        ])
    }

    /// Collects emitted chunks, each as a string.
    #[derive(Default)]
    struct Sink(Vec<String>);

    impl Sink {
        fn f(&mut self) -> impl FnMut(&[u8]) + '_ {
            |chunk| self.0.push(String::from_utf8(chunk.to_vec()).unwrap())
        }
    }

    fn write_str(mux: &mut ConsoleMux, partition: usize, s: &str, sink: &mut Sink) {
        let partition = PartitionId(partition);
        for b in s.bytes() {
            mux.write(partition, b, &mut sink.f());
        }
    }

    #[test]
    fn lines_of_the_focused_partition_are_not_shown_in_pieces() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "count 1 at", &mut sink);
        write_str(&mut mux, 1, "tick\n", &mut sink);
        write_str(&mut mux, 0, " 200 ms\n", &mut sink);
        assert_eq!(sink.0, ["[rtos] tick\r\n", "[linux] count 1 at 200 ms\r\n"]);
    }

    #[test]
    fn interleaved_output_stays_in_whole_lines() {
        let mut mux = mux();
        let mut sink = Sink::default();
        // Byte-by-byte interleaving of two partitions without the input focus.
        mux.set_focus(PartitionId(2));
        let a = b"hello from linux\r\n";
        let b = b"rtos tick 1\nrtos tick 2\n";
        for i in 0..a.len().max(b.len()) {
            if let Some(&x) = a.get(i) {
                mux.write(PartitionId(0), x, &mut sink.f());
            }
            if let Some(&y) = b.get(i) {
                mux.write(PartitionId(1), y, &mut sink.f());
            }
        }
        assert_eq!(
            sink.0,
            [
                "[rtos] rtos tick 1\r\n",
                "[linux] hello from linux\r\n",
                "[rtos] rtos tick 2\r\n"
            ]
        );
    }

    #[test]
    fn focused_partial_line_is_shown_and_redrawn() {
        let mut mux = mux();
        let mut sink = Sink::default();
        // A prompt from the focused partition waits until the caller shows it...
        assert!(
            mux.write(PartitionId(0), b'#', &mut sink.f()),
            "a new partial line asks to be shown"
        );
        assert!(
            !mux.write(PartitionId(0), b' ', &mut sink.f()),
            "once is enough"
        );
        assert!(sink.0.is_empty());
        mux.show_partial(&mut sink.f());
        assert_eq!(sink.0.concat(), "[linux] # ");
        // ...and once shown, what follows appears at once.
        assert!(!mux.write(PartitionId(0), b' ', &mut sink.f()));
        assert_eq!(sink.0.concat(), "[linux] #  ");
        let mut mux = self::mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "# ", &mut sink);
        mux.show_partial(&mut sink.f());
        // Another partition's line ends it and redraws it below.
        write_str(&mut mux, 1, "tick\n", &mut sink);
        assert_eq!(sink.0.concat(), "[linux] # \r\n[rtos] tick\r\n[linux] # ");
        // Typed characters echo onto the redrawn prompt; the newline ends it.
        write_str(&mut mux, 0, "ls\n", &mut sink);
        assert_eq!(
            sink.0.concat(),
            "[linux] # \r\n[rtos] tick\r\n[linux] # ls\r\n"
        );
        // A hypervisor line is treated the same way.
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "$ ", &mut sink);
        mux.show_partial(&mut sink.f());
        mux.line(b"[bulkhead] note", &mut sink.f());
        assert_eq!(
            sink.0.concat(),
            "[linux] $ \r\n[bulkhead] note\r\n[linux] $ "
        );
        // Every physical line belongs to one partition.
        for line in sink.0.concat().split("\r\n") {
            assert!(line.is_empty() || line.starts_with('['), "{line:?}");
        }
    }

    #[test]
    fn switching_focus_shows_the_new_partial_line() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 1, "login: ", &mut sink);
        assert!(sink.0.is_empty(), "a partial line without focus waits");
        mux.set_focus(PartitionId(1));
        mux.line(b"--- focus ---", &mut sink.f());
        mux.show_partial(&mut sink.f());
        assert_eq!(sink.0.concat(), "--- focus ---\r\n[rtos] login: ");
    }

    #[test]
    fn carriage_returns_are_stripped_and_empty_lines_kept() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 2, "a\rb\r\n\r\n", &mut sink);
        assert_eq!(sink.0, ["[hello] ab\r\n", "[hello] \r\n"]);
    }

    #[test]
    fn long_lines_are_split_with_prefixes() {
        let mut mux = mux();
        let mut sink = Sink::default();
        let long = "x".repeat(MAX_LINE * 2 + 10);
        write_str(&mut mux, 2, &long, &mut sink);
        assert_eq!(sink.0.len(), 2);
        write_str(&mut mux, 2, "\n", &mut sink);
        assert_eq!(sink.0.len(), 3);
        let piece = format!("[hello] {}\r\n", "x".repeat(MAX_LINE));
        assert_eq!(sink.0[0], piece);
        assert_eq!(sink.0[1], piece);
        assert_eq!(sink.0[2], format!("[hello] {}\r\n", "x".repeat(10)));
    }

    #[test]
    fn flush_emits_partial_line_once() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 1, "panic: no", &mut sink);
        assert!(sink.0.is_empty());
        mux.flush(PartitionId(1), &mut sink.f());
        mux.flush(PartitionId(1), &mut sink.f());
        mux.flush(PartitionId(7), &mut sink.f());
        assert_eq!(sink.0, ["[rtos] panic: no\r\n"]);
    }

    #[test]
    fn output_for_unknown_partition_is_dropped() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 3, "ghost\n", &mut sink);
        assert!(sink.0.is_empty());
    }

    #[test]
    fn input_goes_to_focus() {
        let mut mux = mux();
        assert_eq!(mux.focus(), PartitionId(0));
        assert_eq!(
            mux.input(b'a'),
            Input::Deliver {
                partition: PartitionId(0),
                byte: b'a'
            }
        );
        assert!(mux.set_focus(PartitionId(2)));
        assert_eq!(
            mux.input(b'\r'),
            Input::Deliver {
                partition: PartitionId(2),
                byte: b'\r'
            }
        );
        assert!(!mux.set_focus(PartitionId(3)));
        assert_eq!(mux.focus(), PartitionId(2));
    }

    #[test]
    fn switch_sequences() {
        let mut mux = mux();
        assert_eq!(mux.input(ESCAPE), Input::Consumed);
        assert_eq!(
            mux.input(b'2'),
            Input::Switched {
                partition: PartitionId(1)
            }
        );
        assert_eq!(mux.focus(), PartitionId(1));
        assert_eq!(
            mux.focus_banner(),
            "--- console input now goes to rtos (Ctrl-T <n> to switch) ---"
        );
        // Nonexistent partition: consumed, focus unchanged.
        assert_eq!(mux.input(ESCAPE), Input::Consumed);
        assert_eq!(mux.input(b'9'), Input::Consumed);
        assert_eq!(mux.focus(), PartitionId(1));
        // Next, with wrap-around.
        mux.input(ESCAPE);
        assert_eq!(
            mux.input(b'n'),
            Input::Switched {
                partition: PartitionId(2)
            }
        );
        mux.input(ESCAPE);
        assert_eq!(
            mux.input(b'n'),
            Input::Switched {
                partition: PartitionId(0)
            }
        );
        // Literal Ctrl-T.
        mux.input(ESCAPE);
        assert_eq!(
            mux.input(ESCAPE),
            Input::Deliver {
                partition: PartitionId(0),
                byte: ESCAPE
            }
        );
        // Unknown key after Ctrl-T is swallowed, and the sequence ends.
        mux.input(ESCAPE);
        assert_eq!(mux.input(b'x'), Input::Consumed);
        assert_eq!(
            mux.input(b'x'),
            Input::Deliver {
                partition: PartitionId(0),
                byte: b'x'
            }
        );
        // '0' is not a partition number.
        mux.input(ESCAPE);
        assert_eq!(mux.input(b'0'), Input::Consumed);
    }

    #[test]
    fn no_partitions() {
        let mut mux = ConsoleMux::new(Vec::new());
        let mut sink = Sink::default();
        assert_eq!(mux.input(b'a'), Input::Consumed);
        assert_eq!(mux.input(ESCAPE), Input::Consumed);
        assert_eq!(mux.input(b'n'), Input::Consumed);
        mux.write(PartitionId(0), b'a', &mut sink.f());
        mux.flush(PartitionId(0), &mut sink.f());
        assert!(sink.0.is_empty());
        assert_eq!(
            mux.focus_banner(),
            "--- no partition takes console input ---"
        );
    }
}
