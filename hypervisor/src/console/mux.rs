//! The console multiplexer: one physical console shared by all partitions.
//!
//! This module owns how partitions' console output is merged onto the single host UART and how
//! input typed on it is routed back to exactly one partition. Every byte a partition transmits
//! goes through [`ConsoleMux::write`]: it is split into tokens ([`escape`](super::escape)) that
//! act on the partition's current line ([`Line`]), and whole lines are emitted, each as
//! `[<name>] <line>\r\n`, so lines from different partitions never interleave mid-line.
//!
//! # What reaches the terminal
//! Nothing a partition writes is passed on as written. Its lines are printed as the plain text
//! they end up as (a carriage-return progress bar prints its last state, a backspaced typo is
//! gone). The one exception is the partition with the input focus, once its unfinished line (a
//! shell prompt) is shown: what it writes then appears at once, and on a terminal
//! ([`Mode::Terminal`]) the line-editing tokens a shell needs (backspace, cursor left/right,
//! erase to the end, delete/insert/erase characters, colours, bell) and the terminal queries of
//! [`escape::Query`] pass, re-serialised and clamped to the line: the cursor never moves into the
//! `[name] ` prefix or off the line. Everything else (cursor movement to other lines, screen
//! and mode changes, character sets, titles, device control strings) is dropped for everyone.
//! A redraw prints the line's text only, so it never replays a query. On a console that is not
//! a terminal ([`Mode::Plain`]) only text and line ends are printed: the shown line grows as
//! characters are appended, and a line edited after it was shown is printed again, whole, when
//! it ends.
//!
//! The focused partition's unfinished line is shown when the caller says so with
//! [`ConsoleMux::show_partial`] (the hypervisor does a moment after the line started, if it is
//! still unfinished, so lines being written are not shown in pieces). When another partition's
//! line (or a hypervisor message, [`ConsoleMux::line`]) must be printed meanwhile, the mux takes
//! the shown line off the screen (on a terminal it erases it, on a plain console it ends it
//! there) and prints the other line; the unfinished line is shown again below, the way a shell
//! redraws its prompt, when the caller has printed what else was waiting
//! ([`ConsoleMux::redraw`]), so a block of lines (the monitoring table) is not cut by prompts.
//! So every physical line belongs to exactly one partition.
//!
//! Input goes to the partition that has the focus. The switch sequence is:
//!
//! | keys             | effect                                              |
//! |------------------|-----------------------------------------------------|
//! | Ctrl-T `1`..`9`  | focus partition 1..9 (if it exists)                 |
//! | Ctrl-T `n`       | focus the next partition (wrapping around)          |
//! | Ctrl-T `s`       | print the monitoring table (`runtime::monitor`)     |
//! | Ctrl-T Ctrl-T    | send a literal Ctrl-T (0x14) to the focused partition |
//! | Ctrl-T other     | nothing; both bytes are swallowed                   |
//!
//! The mux never writes to hardware itself: callers pass an `out` sink that receives chunks of
//! bytes in order.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bulkhead_config::{PartitionId, HYPERVISOR_CONSOLE_NAME};

use super::escape::{self, Parser, Token};
use super::line::{Change, Line};

pub use super::line::MAX_LINE;

/// The escape byte that starts a switch sequence: Ctrl-T.
pub const ESCAPE: u8 = 0x14;

/// Resets colours a partition set on its live line, before anything else is printed.
const STYLE_RESET: &[u8] = b"\x1b[0m";
/// Back to the start of the line and erase it: takes a shown line off a terminal. A line the
/// terminal wrapped keeps its earlier rows (the mux does not know the width); they hold only
/// that partition's text.
const ERASE_LINE: &[u8] = b"\r\x1b[K";

/// What the physical console is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A terminal: the focused partition's line editing is passed on.
    Terminal,
    /// A log or a pipe: plain text and line ends only.
    Plain,
}

/// What to do with one byte of console input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Push `byte` into the receive FIFO of `partition`'s virtual UART.
    Deliver { partition: PartitionId, byte: u8 },
    /// The focus moved to `partition`; the caller should print [`ConsoleMux::focus_banner`].
    Switched { partition: PartitionId },
    /// Ctrl-T s: the caller should print the monitoring table.
    Monitor,
    /// The byte was part of a switch sequence (or there is nobody to deliver it to).
    Consumed,
}

/// One partition's output state.
#[derive(Debug)]
struct Source {
    name: String,
    parser: Parser,
    line: Line,
    /// A carriage return waits: if a newline follows it is part of the line end, otherwise the
    /// cursor goes back to the start of the line.
    pending_cr: bool,
    /// Colours were set on the live line (reset before anything else is printed).
    styled: bool,
    /// (Plain mode.) The line changed after being shown, other than by appending.
    dirty: bool,
}

/// Merges partition output into whole, prefixed lines and routes input to the focused partition.
#[derive(Debug)]
pub struct ConsoleMux {
    sources: Vec<Source>,
    mode: Mode,
    /// The partition whose unfinished line is on screen (after its prefix, without line end).
    shown: Option<usize>,
    /// The focused partition's unfinished line was taken off the screen for other lines, to be
    /// shown again by [`redraw`](Self::redraw).
    redraw: bool,
    focus: usize,
    escape: bool,
    /// Reused buffer for assembling one output line.
    scratch: Vec<u8>,
}

impl ConsoleMux {
    /// A mux for partitions `0..names.len()`, named for the line prefixes, printing for a
    /// console in `mode`. Input focus starts on partition 0.
    pub fn new(names: Vec<String>, mode: Mode) -> Self {
        let sources = names
            .into_iter()
            .map(|name| Source {
                name,
                parser: Parser::new(),
                line: Line::new(),
                pending_cr: false,
                styled: false,
                dirty: false,
            })
            .collect();
        Self {
            sources,
            mode,
            shown: None,
            redraw: false,
            focus: 0,
            escape: false,
            scratch: Vec::new(),
        }
    }

    /// The name of `partition`, if it exists.
    pub fn name(&self, partition: PartitionId) -> Option<&str> {
        self.sources.get(partition.index()).map(|s| s.name.as_str())
    }

    /// Takes one byte of output from `partition`. Complete lines (and the focused partition's
    /// line once it is shown) are passed to `out`. Returns true when the focused partition has
    /// just started an unfinished line that is not shown: the caller should call
    /// [`show_partial`](Self::show_partial) a moment later (it shows the line only if it is
    /// still unfinished). Bytes for unknown partitions are dropped.
    pub fn write(&mut self, partition: PartitionId, byte: u8, out: &mut dyn FnMut(&[u8])) -> bool {
        let i = partition.index();
        let Some(src) = self.sources.get_mut(i) else {
            return false;
        };
        let Some(token) = src.parser.push(byte) else {
            return false;
        };
        let was_empty = src.line.is_empty();
        self.apply(i, token, out);
        i == self.focus && self.shown.is_none() && was_empty && !self.sources[i].line.is_empty()
    }

    /// Applies one token of partition `i`'s output.
    fn apply(&mut self, i: usize, token: Token, out: &mut dyn FnMut(&[u8])) {
        let live = self.shown == Some(i);
        let terminal = live && self.mode == Mode::Terminal;
        let src = &mut self.sources[i];
        if src.pending_cr && token != Token::Newline {
            src.pending_cr = false;
            src.line.carriage_return();
            if terminal {
                out(b"\r[");
                out(src.name.as_bytes());
                out(b"] ");
            }
        }
        let change = match token {
            Token::Newline => {
                src.pending_cr = false;
                return self.end_line(i, out);
            }
            Token::CarriageReturn => {
                src.pending_cr = true;
                return;
            }
            Token::Char(c) => {
                if src.line.at_limit() {
                    // The longest line: emitted, and the text goes on in a new one.
                    self.end_line(i, out);
                    return self.apply(i, token, out);
                }
                let change = src.line.put(c);
                if change != Change::None && (terminal || (live && change == Change::Appended)) {
                    token.write_to(&[], &mut |b| out(b));
                }
                change
            }
            Token::Tab => {
                let (n, change) = src.line.tab();
                if terminal || (live && change == Change::Appended) {
                    for _ in 0..n {
                        out(b" ");
                    }
                }
                change
            }
            Token::Backspace | Token::CursorLeft(_) => {
                let n = match token {
                    Token::CursorLeft(n) => usize::from(n),
                    _ => 1,
                };
                let moved = src.line.left(n);
                if terminal && moved > 0 {
                    moved_token(token, moved).write_to(&[], &mut |b| out(b));
                }
                Change::None
            }
            Token::CursorRight(n) => {
                let moved = src.line.right(usize::from(n));
                if terminal && moved > 0 {
                    moved_token(token, moved).write_to(&[], &mut |b| out(b));
                }
                Change::None
            }
            Token::EraseToEnd => src.line.erase_to_end(),
            Token::DeleteChars(n) => src.line.delete(usize::from(n)),
            Token::InsertBlanks(n) => src.line.insert_blanks(usize::from(n)),
            Token::EraseChars(n) => src.line.erase_chars(usize::from(n)),
            Token::Style | Token::Query(_) | Token::Bell => {
                if terminal {
                    src.styled |= token == Token::Style;
                    token.write_to(src.parser.style_params(), &mut |b| out(b));
                }
                Change::None
            }
            Token::Other => Change::None,
        };
        if matches!(
            token,
            Token::EraseToEnd
                | Token::DeleteChars(_)
                | Token::InsertBlanks(_)
                | Token::EraseChars(_)
        ) && terminal
            && change != Change::None
        {
            token.write_to(&[], &mut |b| out(b));
        }
        if live && self.mode == Mode::Plain && change == Change::Edited {
            src.dirty = true;
        }
    }

    /// Shows the focused partition's unfinished line (a prompt), if it has one.
    pub fn show_partial(&mut self, out: &mut dyn FnMut(&[u8])) {
        self.show_focus(out);
    }

    /// Prints a whole line that belongs to no partition (a hypervisor message), keeping the
    /// focused partition's unfinished line intact (shown again by [`redraw`](Self::redraw)).
    pub fn line(&mut self, text: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.break_shown(out);
        self.scratch.clear();
        self.scratch.extend_from_slice(text);
        self.scratch.extend_from_slice(b"\r\n");
        out(&self.scratch);
    }

    /// Shows the focused partition's unfinished line again if other lines took it off the
    /// screen: the caller calls this once it has printed everything that was waiting.
    pub fn redraw(&mut self, out: &mut dyn FnMut(&[u8])) {
        if core::mem::take(&mut self.redraw) {
            self.show_focus(out);
        }
    }

    /// Ends `partition`'s output stream as it is: its unfinished line, if any, is printed as a
    /// whole line, and a sequence it was in the middle of is forgotten. Used when a partition
    /// stops (so its last words are not lost and its next run starts clean) and when some of
    /// its output was dropped (what follows does not continue what came before).
    pub fn flush(&mut self, partition: PartitionId, out: &mut dyn FnMut(&[u8])) {
        let i = partition.index();
        let Some(src) = self.sources.get_mut(i) else {
            return;
        };
        src.parser = Parser::new();
        src.pending_cr = false;
        if !src.line.is_empty() {
            self.end_line(i, out);
        }
    }

    /// Ends partition `i`'s current line and passes it to `out`.
    fn end_line(&mut self, i: usize, out: &mut dyn FnMut(&[u8])) {
        if self.shown == Some(i) {
            // The start of the line is already on screen.
            self.shown = None;
            let src = &mut self.sources[i];
            if core::mem::take(&mut src.styled) {
                out(STYLE_RESET);
            }
            out(b"\r\n");
            if core::mem::take(&mut src.dirty) {
                // (Plain mode.) What was shown is not what the line became: print it again.
                self.scratch.clear();
                push_final_line(&mut self.scratch, src);
                self.scratch.extend_from_slice(b"\r\n");
                out(&self.scratch);
            }
        } else {
            self.break_shown(out);
            self.scratch.clear();
            push_final_line(&mut self.scratch, &self.sources[i]);
            self.scratch.extend_from_slice(b"\r\n");
            out(&self.scratch);
        }
        self.sources[i].line.clear();
    }

    /// Takes the unfinished line off the screen (it stays buffered, to be shown again by
    /// [`redraw`](Self::redraw)): on a terminal it is erased, so the other lines take its place
    /// and the prompt moves below them; on a plain console it is ended where it is.
    fn break_shown(&mut self, out: &mut dyn FnMut(&[u8])) {
        let Some(i) = self.shown.take() else {
            return;
        };
        if core::mem::take(&mut self.sources[i].styled) {
            out(STYLE_RESET);
        }
        out(match self.mode {
            Mode::Terminal => ERASE_LINE,
            Mode::Plain => b"\r\n",
        });
        self.redraw = true;
    }

    /// Shows the focused partition's unfinished line, if it has one and nothing is shown: its
    /// text only, then (on a terminal) the cursor where the partition left it.
    fn show_focus(&mut self, out: &mut dyn FnMut(&[u8])) {
        if self.shown.is_some() {
            return;
        }
        let focus = self.focus;
        let Some(src) = self.sources.get_mut(focus) else {
            return;
        };
        if src.line.is_empty() {
            return;
        }
        src.dirty = false;
        self.scratch.clear();
        match self.mode {
            Mode::Terminal => push_line(&mut self.scratch, src),
            Mode::Plain => push_final_line(&mut self.scratch, src),
        }
        let back = src.line.cursor_back();
        if self.mode == Mode::Terminal && back > 0 {
            let mut buf = [0u8; 16];
            let n = u16::try_from(back).unwrap_or(u16::MAX);
            self.scratch
                .extend_from_slice(escape::csi(&mut buf, n, b'D'));
        }
        out(&self.scratch);
        self.shown = Some(focus);
    }

    /// Routes one byte typed on the physical console.
    pub fn input(&mut self, byte: u8) -> Input {
        if self.sources.is_empty() {
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
            b's' => Input::Monitor,
            b'n' => {
                self.focus = (self.focus + 1) % self.sources.len();
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
        if partition.index() < self.sources.len() {
            self.focus = partition.index();
            true
        } else {
            false
        }
    }

    /// A one-line notice (without line ending) announcing the focused partition, a hypervisor
    /// line like any other: `[bulkhead] console input now goes to linux (Ctrl-T <n> to switch)`.
    pub fn focus_banner(&self) -> String {
        match self.sources.get(self.focus).map(|s| &s.name) {
            Some(name) => format!(
                "[{HYPERVISOR_CONSOLE_NAME}] console input now goes to {name} (Ctrl-T <n> to switch)"
            ),
            None => format!("[{HYPERVISOR_CONSOLE_NAME}] no partition takes console input"),
        }
    }
}

/// `[name] ` and the text of `src`'s line.
fn push_line(buf: &mut Vec<u8>, src: &Source) {
    push_prefix(buf, src);
    src.line.write_text(buf);
}

/// `[name] ` and the text of `src`'s line as it ends.
fn push_final_line(buf: &mut Vec<u8>, src: &Source) {
    push_prefix(buf, src);
    src.line.write_final_text(buf);
}

fn push_prefix(buf: &mut Vec<u8>, src: &Source) {
    buf.push(b'[');
    buf.extend_from_slice(src.name.as_bytes());
    buf.extend_from_slice(b"] ");
}

/// A cursor movement of `moved` columns in `token`'s direction.
fn moved_token(token: Token, moved: usize) -> Token {
    let n = u16::try_from(moved).unwrap_or(u16::MAX);
    match token {
        Token::Backspace if moved == 1 => Token::Backspace,
        Token::CursorRight(_) => Token::CursorRight(n),
        _ => Token::CursorLeft(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn mux_in(mode: Mode) -> ConsoleMux {
        ConsoleMux::new(
            vec!["linux".to_string(), "rtos".to_string(), "hello".to_string()],
            mode,
        )
    }

    fn mux() -> ConsoleMux {
        mux_in(Mode::Terminal)
    }

    /// Collects emitted chunks, each as a string.
    #[derive(Default)]
    struct Sink(Vec<String>);

    impl Sink {
        fn f(&mut self) -> impl FnMut(&[u8]) + '_ {
            |chunk| self.0.push(String::from_utf8(chunk.to_vec()).unwrap())
        }
        fn text(&self) -> String {
            self.0.concat()
        }
    }

    /// Writes `s` as `partition`'s output, then redraws as the console's drainer does once
    /// everything waiting is out.
    fn write_str(mux: &mut ConsoleMux, partition: usize, s: &str, sink: &mut Sink) {
        let partition = PartitionId(partition);
        for b in s.bytes() {
            mux.write(partition, b, &mut sink.f());
        }
        mux.redraw(&mut sink.f());
    }

    /// What a terminal shows for `bytes`, line by line: enough of a terminal to check that
    /// output stays in its line (printable characters, CR, LF, BS, CSI n C/D/K/P/@/X/m).
    fn screen(bytes: &str) -> Vec<String> {
        let mut lines: Vec<Vec<char>> = vec![Vec::new()];
        let mut col = 0usize;
        let mut chars = bytes.chars().peekable();
        while let Some(c) = chars.next() {
            let line = lines.last_mut().unwrap();
            match c {
                '\r' => col = 0,
                '\n' => {
                    lines.push(Vec::new());
                }
                '\x08' => col = col.saturating_sub(1),
                '\x07' => {}
                '\x1b' => {
                    assert_eq!(
                        chars.next(),
                        Some('['),
                        "only CSI sequences reach the screen"
                    );
                    let mut params = String::new();
                    let fin = loop {
                        let c = chars.next().expect("complete sequence");
                        if c.is_ascii_digit() || c == ';' {
                            params.push(c);
                        } else {
                            break c;
                        }
                    };
                    let n = params.parse::<usize>().unwrap_or(1).max(1);
                    match fin {
                        'D' => col = col.saturating_sub(n),
                        'C' => col += n,
                        'K' => line.truncate(col),
                        'P' => {
                            let end = line.len().min(col + n);
                            if col < end {
                                line.drain(col..end);
                            }
                        }
                        '@' => {
                            for _ in 0..n {
                                if col <= line.len() {
                                    line.insert(col, ' ');
                                }
                            }
                        }
                        'X' => {
                            for cell in line.iter_mut().skip(col).take(n) {
                                *cell = ' ';
                            }
                        }
                        'm' | 'n' | 'c' => {}
                        other => panic!("sequence {other:?} reached the screen"),
                    }
                }
                c => {
                    assert!(!c.is_control(), "control {c:?} reached the screen");
                    while line.len() < col {
                        line.push(' ');
                    }
                    if col < line.len() {
                        line[col] = c;
                    } else {
                        line.push(c);
                    }
                    col += 1;
                }
            }
        }
        lines.into_iter().map(|l| l.into_iter().collect()).collect()
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
        assert_eq!(sink.text(), "[linux] # ");
        // ...and once shown, what follows appears at once.
        assert!(!mux.write(PartitionId(0), b' ', &mut sink.f()));
        assert_eq!(sink.text(), "[linux] #  ");
        let mut mux = self::mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "# ", &mut sink);
        mux.show_partial(&mut sink.f());
        // Another partition's line takes its place (on a terminal it is erased) and it is
        // redrawn below.
        write_str(&mut mux, 1, "tick\n", &mut sink);
        assert_eq!(sink.text(), "[linux] # \r\x1b[K[rtos] tick\r\n[linux] # ");
        assert_eq!(screen(&sink.text()), ["[rtos] tick", "[linux] # "]);
        // Typed characters echo onto the redrawn prompt; the newline ends it.
        write_str(&mut mux, 0, "ls\r\n", &mut sink);
        assert_eq!(screen(&sink.text()), ["[rtos] tick", "[linux] # ls", ""]);
        // A hypervisor line is treated the same way.
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "$ ", &mut sink);
        mux.show_partial(&mut sink.f());
        mux.line(b"[bulkhead] note", &mut sink.f());
        mux.line(b"[bulkhead] table", &mut sink.f());
        mux.redraw(&mut sink.f());
        assert_eq!(
            screen(&sink.text()),
            ["[bulkhead] note", "[bulkhead] table", "[linux] $ "],
            "a block of lines is not cut by the prompt: it comes back once, after them"
        );
        // On a plain console the shown prompt is ended where it is, and shown again after.
        let mut mux = mux_in(Mode::Plain);
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "$ ", &mut sink);
        mux.show_partial(&mut sink.f());
        write_str(&mut mux, 1, "tick\n", &mut sink);
        assert_eq!(sink.text(), "[linux] $ \r\n[rtos] tick\r\n[linux] $ ");
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
        assert_eq!(sink.text(), "--- focus ---\r\n[rtos] login: ");
    }

    #[test]
    fn lines_print_as_the_text_they_end_up_as() {
        let mut mux = mux();
        let mut sink = Sink::default();
        // Carriage-return overwrites (a progress bar), CRLF line ends, empty lines.
        write_str(&mut mux, 2, "10%\r100%\r\n\r\n", &mut sink);
        // A backspaced typo and a colour.
        write_str(&mut mux, 2, "lsx\x08 \x08\x1b[31m!\n", &mut sink);
        assert_eq!(
            sink.0,
            ["[hello] 100%\r\n", "[hello] \r\n", "[hello] ls!\r\n"]
        );
    }

    #[test]
    fn a_partition_cannot_move_outside_its_line() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "[linux] # ", &mut sink);
        mux.show_partial(&mut sink.f());
        // Another partition tries to overwrite the line above, clear the screen, move home,
        // change the character set, set the window title and ask the terminal to type.
        write_str(
            &mut mux,
            1,
            "\x1b[A\x1b[2K\r[bulkhead] forged\x1b[2J\x1b[H\x1b(0\x1b]0;pwned\x07\x1b[6n\x0c\n",
            &mut sink,
        );
        // The focused partition itself backspaces far past its line start and erases it.
        write_str(
            &mut mux,
            0,
            "\x08\x08\x1b[99D\x1b[2K\x1b[1K\x1b[K",
            &mut sink,
        );
        let text = sink.text();
        assert!(!text.contains("\x1b[A") && !text.contains("\x1b[2") && !text.contains("\x1b(0"));
        assert!(!text.contains("\x1b]") && !text.contains('\x0c'));
        assert_eq!(
            text.matches("\x1b[6n").count(),
            0,
            "only the focused partition may ask"
        );
        let screen = screen(&text);
        assert_eq!(
            screen[0], "[rtos] [bulkhead] forged",
            "the neighbour's line takes the erased prompt's place, prefixed"
        );
        assert_eq!(
            screen[1], "[linux] ",
            "the focused partition erased its own text, never the prefix"
        );
    }

    #[test]
    fn the_focused_line_keeps_shell_editing() {
        // What busybox ash writes for: prompt, "cat x", backspace twice (ash: BS, rest of
        // line, blank, BS), "ls", then up-arrow history recalling "uname -a" (back to the
        // input start, the text, erase to the end), then Enter.
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "\x1b[6n~ # ", &mut sink);
        mux.show_partial(&mut sink.f());
        write_str(&mut mux, 0, "cat x", &mut sink);
        write_str(&mut mux, 0, "\x08 \x08\x08 \x08ls", &mut sink);
        write_str(&mut mux, 0, "\x1b[5Duname -a\x1b[K", &mut sink);
        assert_eq!(screen(&sink.text()), ["[linux] ~ # uname -a"]);
        // A neighbour's line interrupts: the redraw shows the same line, cursor in place...
        write_str(&mut mux, 1, "tick\n", &mut sink);
        write_str(&mut mux, 0, "\x1b[2D", &mut sink);
        write_str(&mut mux, 0, "X", &mut sink);
        let screen = screen(&sink.text());
        assert_eq!(screen.last().unwrap(), "[linux] ~ # uname Xa");
        assert_eq!(screen[screen.len() - 2], "[rtos] tick");
        // ...and never replays the query the partition sent before the line was shown.
        assert!(!sink.text().contains("\x1b[6n"));
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "\x1b[6n\x1b[1;32mok", &mut sink);
        assert!(
            sink.text().contains("\x1b[6n"),
            "the focused live line may ask"
        );
        assert!(sink.text().contains("\x1b[1;32m"));
        write_str(&mut mux, 1, "tick\n", &mut sink);
        assert!(
            sink.text().contains("\x1b[0m\r\x1b[K[rtos] tick"),
            "colours are reset before another partition prints"
        );
        assert_eq!(
            sink.text().matches("\x1b[6n").count(),
            1,
            "the redraw does not ask again"
        );
    }

    #[test]
    fn plain_mode_prints_plain_text() {
        let mut mux = mux_in(Mode::Plain);
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "\x1b[6n# ", &mut sink);
        mux.show_partial(&mut sink.f());
        write_str(&mut mux, 0, "lsx\x08 \x08", &mut sink);
        write_str(&mut mux, 1, "\x1b[31mtick\x1b[0m\n", &mut sink);
        write_str(&mut mux, 0, "\r\n", &mut sink);
        let text = sink.text();
        assert!(
            text.bytes()
                .all(|b| b == b'\r' || b == b'\n' || !b.is_ascii_control()),
            "{text:?}"
        );
        assert_eq!(
            text, "[linux] # lsx\r\n[rtos] tick\r\n[linux] # ls\r\n",
            "the shown line grows by appends; the redraw shows the edited text"
        );
        // An edit after the line was shown: the line is printed again, whole, when it ends.
        let mut sink = Sink::default();
        write_str(&mut mux, 0, "# ", &mut sink);
        mux.show_partial(&mut sink.f());
        write_str(&mut mux, 0, "lsx\x08 \x08\n", &mut sink);
        assert_eq!(sink.text(), "[linux] # lsx\r\n[linux] # ls\r\n");
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
    fn flush_emits_partial_line_once_and_forgets_a_cut_sequence() {
        let mut mux = mux();
        let mut sink = Sink::default();
        write_str(&mut mux, 1, "panic: no\x1b]0;unterminated title", &mut sink);
        assert!(sink.0.is_empty());
        mux.flush(PartitionId(1), &mut sink.f());
        mux.flush(PartitionId(1), &mut sink.f());
        mux.flush(PartitionId(7), &mut sink.f());
        assert_eq!(sink.0, ["[rtos] panic: no\r\n"]);
        // The next run's output is not swallowed by the string the last one left open.
        write_str(&mut mux, 1, "booting\n", &mut sink);
        assert_eq!(sink.0[1], "[rtos] booting\r\n");
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
            "[bulkhead] console input now goes to rtos (Ctrl-T <n> to switch)"
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
        // The monitoring table, without a focus change; a lone 's' is typed text.
        mux.input(ESCAPE);
        assert_eq!(mux.input(b's'), Input::Monitor);
        assert_eq!(mux.focus(), PartitionId(0));
        assert_eq!(
            mux.input(b's'),
            Input::Deliver {
                partition: PartitionId(0),
                byte: b's'
            }
        );
    }

    #[test]
    fn no_partitions() {
        let mut mux = ConsoleMux::new(Vec::new(), Mode::Terminal);
        let mut sink = Sink::default();
        assert_eq!(mux.input(b'a'), Input::Consumed);
        assert_eq!(mux.input(ESCAPE), Input::Consumed);
        assert_eq!(mux.input(b'n'), Input::Consumed);
        mux.write(PartitionId(0), b'a', &mut sink.f());
        mux.flush(PartitionId(0), &mut sink.f());
        assert!(sink.0.is_empty());
        assert_eq!(
            mux.focus_banner(),
            "[bulkhead] no partition takes console input"
        );
    }
}
