//! What a partition writes to its console, split into tokens the console's policy decides on:
//! printable characters (well-formed UTF-8 only), the control characters that mean something on
//! one line, and whole escape sequences, classified.
//!
//! Nothing a partition writes reaches the terminal as it was written: the console re-serialises
//! the tokens it lets through ([`Token::write_to`]), so a sequence the parser did not understand,
//! or that a guest cut short, cannot leave the terminal half-way through a sequence of its own
//! choosing. Everything that is not listed here is [`Token::Other`] and never printed.

/// The longest parameter string of a control sequence (CSI) kept; longer ones are dropped.
const MAX_PARAMS: usize = 24;

/// One unit of a partition's terminal output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A printable character (never a C0 or C1 control). Malformed UTF-8 becomes U+FFFD.
    Char(char),
    /// Line feed: the line ends.
    Newline,
    /// Carriage return: back to the start of the line.
    CarriageReturn,
    /// Backspace: one column left.
    Backspace,
    /// Horizontal tab.
    Tab,
    /// Bell.
    Bell,
    /// `CSI n D`: `n` columns left.
    CursorLeft(u16),
    /// `CSI n C`: `n` columns right.
    CursorRight(u16),
    /// `CSI K` or `CSI 0 K` (erase to the end of the line), and `CSI J` / `CSI 0 J` (erase
    /// below the cursor: on the last line of a scrolling console, the same).
    EraseToEnd,
    /// `CSI n P`: delete `n` characters, the rest of the line moving left.
    DeleteChars(u16),
    /// `CSI n @`: insert `n` blanks, the rest of the line moving right.
    InsertBlanks(u16),
    /// `CSI n X`: blank `n` characters without moving anything.
    EraseChars(u16),
    /// `CSI ... m`: select graphic rendition (colours, bold). The parameters are digits and
    /// separators only; see [`Parser::style_params`].
    Style,
    /// A terminal query whose answer the terminal types back.
    Query(Query),
    /// Anything else: cursor movement off the line, screen or mode changes, character sets,
    /// operating-system commands, device control strings, other controls. Never printed.
    Other,
}

/// The terminal queries the console may pass on (for the focused partition only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `CSI 6 n`: report the cursor position (busybox ash asks, to learn its prompt's width).
    CursorPosition,
    /// `CSI 5 n`: report the terminal's status.
    Status,
    /// `CSI c` / `CSI 0 c`: report the device attributes.
    DeviceAttributes,
}

impl Query {
    fn sequence(self) -> &'static [u8] {
        match self {
            Query::CursorPosition => b"\x1b[6n",
            Query::Status => b"\x1b[5n",
            Query::DeviceAttributes => b"\x1b[c",
        }
    }
}

/// Where the parser is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// Inside a UTF-8 character: the code point so far, continuation bytes still expected, and
    /// the smallest code point that length may encode (to refuse overlong forms).
    Utf8 {
        value: u32,
        left: u8,
        min: u32,
    },
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes (`ESC ( 0`, ...), waiting for the final byte.
    EscapeIntermediate,
    /// In a control sequence (`ESC [`).
    Csi,
    /// In a string (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _`), until BEL or `ESC \`.
    String,
    /// In a string, just after an ESC (which ends it if `\` follows).
    StringEscape,
}

/// Splits one partition's output into [`Token`]s. Keeps the state between bytes, so a sequence
/// may arrive one trapped byte at a time.
#[derive(Clone, Debug)]
pub struct Parser {
    state: State,
    /// The parameter and intermediate bytes of the current control sequence.
    params: [u8; MAX_PARAMS],
    len: usize,
    /// The current control sequence has more parameter bytes than fit, or bytes that cannot be
    /// parameters: it will be dropped.
    overflow: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub const fn new() -> Self {
        Self {
            state: State::Ground,
            params: [0; MAX_PARAMS],
            len: 0,
            overflow: false,
        }
    }

    /// Takes one byte; returns the token it completes, if any. A byte may complete two tokens
    /// (a malformed UTF-8 character and the byte that showed it): the second is then lost as
    /// [`Token::Other`]-like noise, never printed wrongly.
    pub fn push(&mut self, byte: u8) -> Option<Token> {
        match self.state {
            State::Ground => self.ground(byte),
            State::Utf8 { value, left, min } => {
                if byte & 0xc0 == 0x80 {
                    let value = value << 6 | u32::from(byte & 0x3f);
                    if left > 1 {
                        self.state = State::Utf8 {
                            value,
                            left: left - 1,
                            min,
                        };
                        return None;
                    }
                    self.state = State::Ground;
                    Some(printable(value, min))
                } else {
                    // The character was cut short: show that, and take the byte afresh.
                    self.state = State::Ground;
                    match self.ground(byte) {
                        None => Some(Token::Char(char::REPLACEMENT_CHARACTER)),
                        other => other,
                    }
                }
            }
            State::Escape => self.escape(byte),
            State::EscapeIntermediate => match byte {
                0x20..=0x2f => None,
                0x30..=0x7e => {
                    self.state = State::Ground;
                    Some(Token::Other)
                }
                _ => self.abort(byte),
            },
            State::Csi => self.csi(byte),
            State::String => {
                match byte {
                    0x07 => self.state = State::Ground,
                    0x1b => self.state = State::StringEscape,
                    _ => return None,
                }
                (self.state == State::Ground).then_some(Token::Other)
            }
            State::StringEscape => {
                if byte == b'\\' {
                    self.state = State::Ground;
                    Some(Token::Other)
                } else {
                    self.state = State::String;
                    None
                }
            }
        }
    }

    /// The parameters of the [`Token::Style`] just returned (digits, `;` and `:` only).
    pub fn style_params(&self) -> &[u8] {
        &self.params[..self.len]
    }

    fn ground(&mut self, byte: u8) -> Option<Token> {
        match byte {
            b'\n' => Some(Token::Newline),
            b'\r' => Some(Token::CarriageReturn),
            0x08 => Some(Token::Backspace),
            b'\t' => Some(Token::Tab),
            0x07 => Some(Token::Bell),
            0x1b => {
                self.state = State::Escape;
                None
            }
            0x20..=0x7e => Some(Token::Char(char::from(byte))),
            0xc2..=0xdf => self.utf8(u32::from(byte & 0x1f), 1, 0x80),
            0xe0..=0xef => self.utf8(u32::from(byte & 0x0f), 2, 0x800),
            0xf0..=0xf4 => self.utf8(u32::from(byte & 0x07), 3, 0x1_0000),
            // Other C0 controls (vertical tab and form feed move down, SO/SI switch character
            // sets), DEL, and bytes that cannot start a UTF-8 character.
            0x00..=0x1f | 0x7f => Some(Token::Other),
            _ => Some(Token::Char(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn utf8(&mut self, value: u32, left: u8, min: u32) -> Option<Token> {
        self.state = State::Utf8 { value, left, min };
        None
    }

    fn escape(&mut self, byte: u8) -> Option<Token> {
        match byte {
            b'[' => {
                self.state = State::Csi;
                self.len = 0;
                self.overflow = false;
                None
            }
            b']' | b'P' | b'X' | b'^' | b'_' => {
                self.state = State::String;
                None
            }
            0x20..=0x2f => {
                self.state = State::EscapeIntermediate;
                None
            }
            0x30..=0x7e => {
                self.state = State::Ground;
                Some(Token::Other)
            }
            _ => self.abort(byte),
        }
    }

    fn csi(&mut self, byte: u8) -> Option<Token> {
        match byte {
            0x20..=0x3f => {
                if self.len < MAX_PARAMS {
                    self.params[self.len] = byte;
                    self.len += 1;
                } else {
                    self.overflow = true;
                }
                None
            }
            0x40..=0x7e => {
                self.state = State::Ground;
                Some(if self.overflow {
                    Token::Other
                } else {
                    self.control_sequence(byte)
                })
            }
            _ => self.abort(byte),
        }
    }

    /// A sequence broken by a byte that cannot continue it: dropped, and the byte taken afresh
    /// (a terminal would execute a control byte inside a sequence; dropping the sequence keeps
    /// it from acting on whatever follows).
    fn abort(&mut self, byte: u8) -> Option<Token> {
        self.state = State::Ground;
        match byte {
            // CAN and SUB only cancel.
            0x18 | 0x1a => Some(Token::Other),
            _ => self.ground(byte),
        }
    }

    /// Classifies the complete control sequence `CSI <params> final`.
    fn control_sequence(&self, final_byte: u8) -> Token {
        let params = &self.params[..self.len];
        if final_byte == b'm' {
            return if params
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
            {
                Token::Style
            } else {
                Token::Other
            };
        }
        // Everything else takes at most one plain decimal parameter.
        let Some(n) = single_parameter(params) else {
            return Token::Other;
        };
        let count = n.unwrap_or(1).max(1);
        match (final_byte, n) {
            (b'D', _) => Token::CursorLeft(count),
            (b'C', _) => Token::CursorRight(count),
            (b'K' | b'J', None | Some(0)) => Token::EraseToEnd,
            (b'P', _) => Token::DeleteChars(count),
            (b'@', _) => Token::InsertBlanks(count),
            (b'X', _) => Token::EraseChars(count),
            (b'n', Some(6)) => Token::Query(Query::CursorPosition),
            (b'n', Some(5)) => Token::Query(Query::Status),
            (b'c', None | Some(0)) => Token::Query(Query::DeviceAttributes),
            _ => Token::Other,
        }
    }
}

/// The one decimal parameter of `params`: `Some(None)` if empty, `Some(Some(n))` for digits
/// (saturating), `None` for anything else (several parameters, private markers, intermediates).
fn single_parameter(params: &[u8]) -> Option<Option<u16>> {
    if params.is_empty() {
        return Some(None);
    }
    if !params.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = params.iter().fold(0u16, |n, d| {
        n.saturating_mul(10).saturating_add(u16::from(d - b'0'))
    });
    Some(Some(n))
}

/// The character a finished UTF-8 sequence encodes, if it is printable: overlong forms,
/// surrogates and C1 controls (which some terminals obey as 8-bit control sequences) become
/// U+FFFD.
fn printable(value: u32, min: u32) -> Token {
    match char::from_u32(value) {
        Some(c) if value >= min && !('\u{80}'..='\u{9f}').contains(&c) => Token::Char(c),
        _ => Token::Char(char::REPLACEMENT_CHARACTER),
    }
}

impl Token {
    /// Writes what the terminal gets for this token, where the console lets it through: its
    /// canonical form, never the partition's bytes. `style` is the parser's
    /// [`Parser::style_params`] for a [`Token::Style`]. Tokens that are never printed, and
    /// those with a meaning that depends on the line (newline, carriage return), write
    /// nothing: the console handles them.
    pub fn write_to(self, style: &[u8], out: &mut impl FnMut(&[u8])) {
        let mut buf = [0u8; 16];
        match self {
            Token::Char(c) => out(c.encode_utf8(&mut buf).as_bytes()),
            Token::Backspace => out(b"\x08"),
            Token::Bell => out(b"\x07"),
            Token::CursorLeft(n) => out(csi(&mut buf, n, b'D')),
            Token::CursorRight(n) => out(csi(&mut buf, n, b'C')),
            Token::EraseToEnd => out(b"\x1b[K"),
            Token::DeleteChars(n) => out(csi(&mut buf, n, b'P')),
            Token::InsertBlanks(n) => out(csi(&mut buf, n, b'@')),
            Token::EraseChars(n) => out(csi(&mut buf, n, b'X')),
            Token::Style => {
                out(b"\x1b[");
                out(style);
                out(b"m");
            }
            Token::Query(q) => out(q.sequence()),
            Token::Newline | Token::CarriageReturn | Token::Tab | Token::Other => {}
        }
    }
}

/// `CSI n final` in `buf`.
pub fn csi(buf: &mut [u8; 16], n: u16, final_byte: u8) -> &[u8] {
    buf[0] = 0x1b;
    buf[1] = b'[';
    let mut len = 2;
    let mut digits = [0u8; 5];
    let mut count = 0;
    let mut v = n;
    loop {
        digits[count] = b'0' + (v % 10) as u8;
        count += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..count].iter().rev() {
        buf[len] = *d;
        len += 1;
    }
    buf[len] = final_byte;
    &buf[..=len]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn tokens(bytes: &[u8]) -> Vec<Token> {
        let mut p = Parser::new();
        bytes.iter().filter_map(|b| p.push(*b)).collect()
    }

    #[test]
    fn text_and_line_controls() {
        assert_eq!(
            tokens(b"a\tb\x08\r\n\x07"),
            [
                Token::Char('a'),
                Token::Tab,
                Token::Char('b'),
                Token::Backspace,
                Token::CarriageReturn,
                Token::Newline,
                Token::Bell
            ]
        );
    }

    #[test]
    fn utf8_is_validated() {
        assert_eq!(
            tokens("é€😀".as_bytes()),
            [Token::Char('é'), Token::Char('€'), Token::Char('😀')]
        );
        // A C1 control encoded as UTF-8 (U+009B, the 8-bit CSI) is not printable.
        assert_eq!(
            tokens(b"\xc2\x9b6n"),
            [
                Token::Char(char::REPLACEMENT_CHARACTER),
                Token::Char('6'),
                Token::Char('n')
            ]
        );
        // A raw 8-bit CSI, an overlong '/', a surrogate, a cut-short character.
        assert_eq!(tokens(b"\x9b"), [Token::Char(char::REPLACEMENT_CHARACTER)]);
        assert_eq!(
            tokens(b"\xc0\xaf"),
            [
                Token::Char(char::REPLACEMENT_CHARACTER),
                Token::Char(char::REPLACEMENT_CHARACTER)
            ]
        );
        assert_eq!(
            tokens(b"\xe0\x80\xaf"),
            [Token::Char(char::REPLACEMENT_CHARACTER)]
        );
        assert_eq!(
            tokens(b"\xed\xa0\x80"),
            [Token::Char(char::REPLACEMENT_CHARACTER)]
        );
        assert_eq!(tokens(b"\xe2\x82x"), [Token::Char('x')]);
    }

    #[test]
    fn line_editing_sequences() {
        assert_eq!(
            tokens(b"\x1b[D\x1b[3D\x1b[12C\x1b[K\x1b[0K\x1b[J\x1b[2P\x1b[@\x1b[4X"),
            [
                Token::CursorLeft(1),
                Token::CursorLeft(3),
                Token::CursorRight(12),
                Token::EraseToEnd,
                Token::EraseToEnd,
                Token::EraseToEnd,
                Token::DeleteChars(2),
                Token::InsertBlanks(1),
                Token::EraseChars(4)
            ]
        );
        // A zero count means one, as terminals take it.
        assert_eq!(tokens(b"\x1b[0D"), [Token::CursorLeft(1)]);
        // Huge counts saturate.
        assert_eq!(tokens(b"\x1b[99999999D"), [Token::CursorLeft(u16::MAX)]);
    }

    #[test]
    fn everything_that_leaves_the_line_is_other() {
        for seq in [
            &b"\x1b[A"[..],      // up
            b"\x1b[2B",          // down
            b"\x1b[H",           // home
            b"\x1b[10;5H",       // position
            b"\x1b[2J",          // clear screen
            b"\x1b[1K",          // erase to line start (the prefix)
            b"\x1b[2K",          // erase the line (the prefix)
            b"\x1b[?1049h",      // alternate screen
            b"\x1b[?25l",        // hide cursor
            b"\x1b[1;24r",       // scroll region
            b"\x1b[s",           // save cursor
            b"\x1b7",            // save cursor
            b"\x1bM",            // reverse index
            b"\x1bc",            // full reset
            b"\x1b(0",           // line-drawing character set
            b"\x1b]0;title\x07", // window title
            b"\x1b]11;?\x1b\\",  // colour query
            b"\x1bP$qm\x1b\\",   // DECRQSS
            b"\x1b[>c",          // secondary device attributes
            b"\x0b",             // vertical tab
            b"\x0c",             // form feed
            b"\x0e",             // shift out
            b"\x7f",
        ] {
            assert_eq!(tokens(seq), [Token::Other], "{seq:?}");
        }
    }

    #[test]
    fn queries() {
        assert_eq!(
            tokens(b"\x1b[6n\x1b[5n\x1b[c\x1b[0c"),
            [
                Token::Query(Query::CursorPosition),
                Token::Query(Query::Status),
                Token::Query(Query::DeviceAttributes),
                Token::Query(Query::DeviceAttributes)
            ]
        );
    }

    #[test]
    fn styles_keep_their_parameters() {
        let mut p = Parser::new();
        let got: Vec<_> = b"\x1b[1;31m".iter().filter_map(|b| p.push(*b)).collect();
        assert_eq!(got, [Token::Style]);
        assert_eq!(p.style_params(), b"1;31");
        assert_eq!(tokens(b"\x1b[?1m"), [Token::Other]);
    }

    #[test]
    fn broken_sequences_are_dropped_and_the_rest_kept() {
        // A newline inside a sequence: the sequence is dropped, the newline kept, and what
        // follows is text (not the tail of a cursor movement).
        assert_eq!(
            tokens(b"\x1b[1\n5A"),
            [Token::Newline, Token::Char('5'), Token::Char('A')]
        );
        assert_eq!(tokens(b"\x1b[1\x18x"), [Token::Other, Token::Char('x')]);
        // An over-long parameter string.
        let mut long = b"\x1b[".to_vec();
        long.extend(core::iter::repeat_n(b'1', 100));
        long.push(b'D');
        assert_eq!(tokens(&long), [Token::Other]);
        // A string that never ends swallows everything after it, printing nothing.
        assert_eq!(tokens(b"\x1b]0;never ends\nrm -rf"), []);
    }

    #[test]
    fn canonical_forms() {
        let mut out = Vec::new();
        for t in [
            Token::CursorLeft(3),
            Token::Char('é'),
            Token::EraseToEnd,
            Token::Query(Query::CursorPosition),
            Token::Other,
            Token::Newline,
        ] {
            t.write_to(b"", &mut |b| out.extend_from_slice(b));
        }
        Token::Style.write_to(b"0", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, "\x1b[3Dé\x1b[K\x1b[6n\x1b[0m".as_bytes());
    }
}
