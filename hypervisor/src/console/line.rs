//! One partition's current console line as the terminal would show it: the characters and the
//! cursor. Line-editing tokens act on it exactly as on a terminal line, clamped to the line (the
//! cursor never moves into the `[name] ` prefix), so the console can let the focused
//! partition's editing through, redraw its line after another partition's output, and print
//! everyone else's lines as the plain text they end up as.

use alloc::vec::Vec;

/// The longest line kept, in characters; a longer one is emitted in pieces.
pub const MAX_LINE: usize = 256;

/// Tab stops, every 8 columns from the start of the partition's text.
const TAB_WIDTH: usize = 8;

/// The characters of one line and the cursor.
#[derive(Clone, Debug, Default)]
pub struct Line {
    cells: Vec<char>,
    cursor: usize,
}

/// How a change left the line: whether only new characters were appended at its end, which a
/// plain-text console can show as they come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing changed.
    None,
    /// Characters were appended at the end.
    Appended,
    /// Something already on the line changed (overwritten, deleted, moved).
    Edited,
}

impl Line {
    pub fn new() -> Self {
        Self {
            cells: Vec::with_capacity(MAX_LINE),
            cursor: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cursor is at the end of the longest line: nothing more can be written on it.
    pub fn at_limit(&self) -> bool {
        self.cursor >= MAX_LINE
    }

    /// The characters, as UTF-8 into `out`.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        self.write_cells(&self.cells, out);
    }

    /// The characters as the line ends: without the blanks past the cursor (what a shell
    /// leaves where it erased characters by writing blanks over them).
    pub fn write_final_text(&self, out: &mut Vec<u8>) {
        let mut end = self.cells.len();
        while end > self.cursor && self.cells[end - 1] == ' ' {
            end -= 1;
        }
        self.write_cells(&self.cells[..end], out);
    }

    fn write_cells(&self, cells: &[char], out: &mut Vec<u8>) {
        let mut buf = [0u8; 4];
        for c in cells {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    /// How far the cursor is left of the line's end.
    pub fn cursor_back(&self) -> usize {
        self.cells.len().saturating_sub(self.cursor)
    }

    /// Writes `c` at the cursor (overwriting) and moves right; blanks fill a gap the cursor
    /// left past the end.
    pub fn put(&mut self, c: char) -> Change {
        if self.cursor >= MAX_LINE {
            return Change::None;
        }
        let change = if self.cursor == self.cells.len() {
            Change::Appended
        } else {
            Change::Edited
        };
        while self.cells.len() < self.cursor {
            self.cells.push(' ');
        }
        if self.cursor == self.cells.len() {
            self.cells.push(c);
        } else {
            self.cells[self.cursor] = c;
        }
        self.cursor += 1;
        change
    }

    /// Blanks up to the next tab stop, written as [`put`](Self::put) would. Returns how many.
    pub fn tab(&mut self) -> (usize, Change) {
        let n = (TAB_WIDTH - self.cursor % TAB_WIDTH).min(MAX_LINE.saturating_sub(self.cursor));
        let mut change = Change::None;
        for _ in 0..n {
            change = worse(change, self.put(' '));
        }
        (n, change)
    }

    /// Moves the cursor `n` left, not past the start; returns how far it moved.
    pub fn left(&mut self, n: usize) -> usize {
        let moved = n.min(self.cursor);
        self.cursor -= moved;
        moved
    }

    /// Moves the cursor `n` right, not past [`MAX_LINE`]; returns how far it moved.
    pub fn right(&mut self, n: usize) -> usize {
        let moved = n.min(MAX_LINE - self.cursor.min(MAX_LINE));
        self.cursor += moved;
        moved
    }

    /// Back to the start of the line.
    pub fn carriage_return(&mut self) {
        self.cursor = 0;
    }

    /// Erases from the cursor to the end.
    pub fn erase_to_end(&mut self) -> Change {
        if self.cursor < self.cells.len() {
            self.cells.truncate(self.cursor);
            Change::Edited
        } else {
            Change::None
        }
    }

    /// Deletes `n` characters at the cursor; the rest moves left.
    pub fn delete(&mut self, n: usize) -> Change {
        let end = self.cells.len().min(self.cursor.saturating_add(n));
        if self.cursor >= end {
            return Change::None;
        }
        self.cells.drain(self.cursor..end);
        Change::Edited
    }

    /// Inserts `n` blanks at the cursor; what is pushed past [`MAX_LINE`] is lost.
    pub fn insert_blanks(&mut self, n: usize) -> Change {
        if self.cursor >= self.cells.len() || n == 0 {
            return Change::None;
        }
        let n = n.min(MAX_LINE - self.cursor);
        let at = self.cursor;
        self.cells.splice(at..at, core::iter::repeat_n(' ', n));
        self.cells.truncate(MAX_LINE);
        Change::Edited
    }

    /// Blanks `n` characters at the cursor without moving anything.
    pub fn erase_chars(&mut self, n: usize) -> Change {
        let end = self.cells.len().min(self.cursor.saturating_add(n));
        let mut change = Change::None;
        for cell in &mut self.cells[self.cursor.min(end)..end] {
            if *cell != ' ' {
                *cell = ' ';
                change = Change::Edited;
            }
        }
        change
    }

    /// Empties the line.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.cursor = 0;
    }
}

/// The more significant of two changes.
pub fn worse(a: Change, b: Change) -> Change {
    match (a, b) {
        (Change::Edited, _) | (_, Change::Edited) => Change::Edited,
        (Change::Appended, _) | (_, Change::Appended) => Change::Appended,
        _ => Change::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn text(line: &Line) -> String {
        let mut out = Vec::new();
        line.write_text(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn put_str(line: &mut Line, s: &str) -> Change {
        s.chars()
            .fold(Change::None, |change, c| worse(change, line.put(c)))
    }

    #[test]
    fn typing_and_backspacing_like_a_shell() {
        let mut l = Line::new();
        assert_eq!(put_str(&mut l, "# lsx"), Change::Appended);
        // ash's backspace: back one, rewrite the rest, a blank, back again.
        assert_eq!(l.left(1), 1);
        assert_eq!(l.put(' '), Change::Edited);
        assert_eq!(l.left(1), 1);
        assert_eq!(text(&l), "# ls ");
        assert_eq!(l.cursor_back(), 1);
        assert_eq!(l.erase_to_end(), Change::Edited);
        assert_eq!(text(&l), "# ls");
        assert_eq!(l.cursor_back(), 0);
    }

    #[test]
    fn the_cursor_stays_on_the_line() {
        let mut l = Line::new();
        put_str(&mut l, "abc");
        assert_eq!(
            l.left(100),
            3,
            "clamped at the start: never into the prefix"
        );
        assert_eq!(l.left(1), 0);
        assert_eq!(l.right(usize::MAX), MAX_LINE);
        assert_eq!(l.put('x'), Change::None, "nothing past the longest line");
        l.carriage_return();
        assert_eq!(l.right(5), 5);
        assert_eq!(l.put('z'), Change::Edited, "a gap was filled");
        assert_eq!(text(&l), "abc  z");
    }

    #[test]
    fn erased_blanks_are_not_part_of_the_final_text() {
        let mut l = Line::new();
        put_str(&mut l, "# lsx");
        l.left(1);
        l.put(' ');
        l.left(1);
        let mut out = Vec::new();
        l.write_final_text(&mut out);
        assert_eq!(out, b"# ls");
        // A prompt's own trailing blank stays.
        let mut l = Line::new();
        put_str(&mut l, "# ");
        let mut out = Vec::new();
        l.write_final_text(&mut out);
        assert_eq!(out, b"# ");
    }

    #[test]
    fn carriage_return_overwrites_like_a_progress_bar() {
        let mut l = Line::new();
        put_str(&mut l, "10%");
        l.carriage_return();
        assert_eq!(put_str(&mut l, "100%"), Change::Edited);
        assert_eq!(text(&l), "100%");
    }

    #[test]
    fn history_recall_redraws_the_line() {
        // ash recalling a shorter command: back to the start of the input, the new text, erase.
        let mut l = Line::new();
        put_str(&mut l, "# cat /proc/cpuinfo");
        l.left(17);
        put_str(&mut l, "ls");
        l.erase_to_end();
        assert_eq!(text(&l), "# ls");
    }

    #[test]
    fn delete_insert_erase() {
        let mut l = Line::new();
        put_str(&mut l, "abcdef");
        l.left(4);
        assert_eq!(l.delete(2), Change::Edited);
        assert_eq!(text(&l), "abef");
        assert_eq!(l.insert_blanks(3), Change::Edited);
        assert_eq!(text(&l), "ab   ef");
        l.right(3);
        assert_eq!(l.erase_chars(10), Change::Edited);
        assert_eq!(text(&l), "ab     ");
        assert_eq!(l.delete(100), Change::Edited);
        assert_eq!(text(&l), "ab   ");
        l.clear();
        assert!(l.is_empty());
        assert_eq!(l.delete(1), Change::None);
    }

    #[test]
    fn tabs_expand_from_the_line_start() {
        let mut l = Line::new();
        put_str(&mut l, "ab");
        assert_eq!(l.tab(), (6, Change::Appended));
        put_str(&mut l, "c");
        assert_eq!(text(&l), "ab      c");
    }
}
