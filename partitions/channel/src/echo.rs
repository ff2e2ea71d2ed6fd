//! The request/answer payloads of the IPC demo, shared by the Linux userspace demo and the
//! bare-metal echo guest, so that both sides check every message end to end (above the queue's
//! own sequence numbers and CRCs).
//!
//! ```text
//! 0x00  u32  magic "IPCD"
//! 0x04  u16  kind: 1 request, 2 answer
//! 0x06  u16  data length
//! 0x08  u64  application sequence number (0, 1, 2, ... per run)
//! 0x10  u32  CRC-32C of the data
//! 0x14  u32  tag: chosen by the sender, copied into the answer (the demo's send time in µs)
//! 0x18  data
//! ```
//!
//! Request `n` carries a pattern derived from `n` (its length varies with `n`, or is always the
//! largest, see [`Sizes`]); the answer carries the same data XORed with [`ANSWER_XOR`], so an
//! answer proves the echo read the request.

use core::fmt;

use crate::crc::crc32c;

/// `"IPCD"`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"IPCD");
/// Bytes before the data.
pub const HEADER: usize = 0x18;
/// What the echo XORs each data byte with.
pub const ANSWER_XOR: u8 = 0x5a;
/// `kind` of a request.
pub const REQUEST: u16 = 1;
/// `kind` of an answer.
pub const ANSWER: u16 = 2;

/// How long requests are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// The data length varies with the sequence number, from 1 byte to all that fits, so every
    /// length (and alignment of the tail) is exercised.
    Varying,
    /// Every request is as large as the payload allows (benchmarks).
    Full,
}

/// A parsed demo message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub seq: u64,
    /// The sender's tag, copied into the answer.
    pub tag: u32,
    pub data: &'a [u8],
}

/// Why a demo payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoError {
    /// Shorter than the header, or the data length disagrees with the size.
    BadLength {
        len: usize,
    },
    BadMagic {
        magic: u32,
    },
    BadKind {
        kind: u16,
    },
    BadChecksum {
        expected: u32,
        found: u32,
    },
    /// A well-formed message for another sequence number than expected.
    WrongSeq {
        expected: u64,
        found: u64,
    },
    /// An answer whose data is not the transformed request.
    WrongData {
        seq: u64,
    },
    /// The output buffer is too small.
    NoRoom,
}

impl fmt::Display for EchoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EchoError::BadLength { len } => write!(f, "malformed message of {len} bytes"),
            EchoError::BadMagic { magic } => write!(f, "bad magic {magic:#010x}"),
            EchoError::BadKind { kind } => write!(f, "unexpected message kind {kind}"),
            EchoError::BadChecksum { expected, found } => {
                write!(f, "data checksum {found:#010x}, computed {expected:#010x}")
            }
            EchoError::WrongSeq { expected, found } => {
                write!(f, "message {found} where {expected} was expected")
            }
            EchoError::WrongData { seq } => write!(f, "answer {seq} does not match its request"),
            EchoError::NoRoom => write!(f, "output buffer too small"),
        }
    }
}

/// Data length of request `seq` for payloads of at most `max_payload` bytes.
fn data_len(seq: u64, max_payload: usize, sizes: Sizes) -> usize {
    let room = max_payload.saturating_sub(HEADER).min(u16::MAX as usize);
    match sizes {
        _ if room == 0 => 0,
        Sizes::Full => room,
        Sizes::Varying => 1 + (seq.wrapping_mul(37) % room as u64) as usize,
    }
}

fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(131) as usize).wrapping_add(i.wrapping_mul(7)) as u8
}

/// The header fields of a message being written.
struct Head {
    kind: u16,
    seq: u64,
    tag: u32,
}

fn write(head: Head, data: impl Iterator<Item = u8>, len: usize, out: &mut [u8]) -> usize {
    let (h, body) = out.split_at_mut(HEADER);
    for (slot, byte) in body[..len].iter_mut().zip(data) {
        *slot = byte;
    }
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&head.kind.to_le_bytes());
    h[6..8].copy_from_slice(&(len as u16).to_le_bytes());
    h[8..16].copy_from_slice(&head.seq.to_le_bytes());
    h[16..20].copy_from_slice(&crc32c(&body[..len]).to_le_bytes());
    h[20..24].copy_from_slice(&head.tag.to_le_bytes());
    HEADER + len
}

/// Writes request `seq` with `tag` into `out` (at most `max_payload` bytes); returns its
/// length.
pub fn request(
    seq: u64,
    max_payload: usize,
    sizes: Sizes,
    tag: u32,
    out: &mut [u8],
) -> Result<usize, EchoError> {
    let len = data_len(seq, max_payload, sizes);
    if out.len() < HEADER + len {
        return Err(EchoError::NoRoom);
    }
    let head = Head {
        kind: REQUEST,
        seq,
        tag,
    };
    Ok(write(head, (0..len).map(|i| pattern(seq, i)), len, out))
}

/// Parses and checks a demo message (magic, length, checksum).
pub fn parse(bytes: &[u8]) -> Result<Message<'_>, EchoError> {
    let bad_len = EchoError::BadLength { len: bytes.len() };
    let head = bytes.get(..HEADER).ok_or(bad_len)?;
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    let magic = u32_at(0);
    if magic != MAGIC {
        return Err(EchoError::BadMagic { magic });
    }
    let kind = u16_at(4);
    if kind != REQUEST && kind != ANSWER {
        return Err(EchoError::BadKind { kind });
    }
    let len = usize::from(u16_at(6));
    if bytes.len() != HEADER + len {
        return Err(bad_len);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&head[8..16]);
    let data = &bytes[HEADER..];
    let (expected, found) = (crc32c(data), u32_at(16));
    if expected != found {
        return Err(EchoError::BadChecksum { expected, found });
    }
    Ok(Message {
        kind,
        seq: u64::from_le_bytes(seq),
        tag: u32_at(20),
        data,
    })
}

/// The echo's job: checks a request and writes its answer into `out`; returns the request's
/// sequence number and the answer's length.
pub fn answer(request: &[u8], out: &mut [u8]) -> Result<(u64, usize), EchoError> {
    let msg = parse(request)?;
    if msg.kind != REQUEST {
        return Err(EchoError::BadKind { kind: msg.kind });
    }
    let len = msg.data.len();
    if out.len() < HEADER + len {
        return Err(EchoError::NoRoom);
    }
    let data = msg.data.iter().map(|b| b ^ ANSWER_XOR);
    let head = Head {
        kind: ANSWER,
        seq: msg.seq,
        tag: msg.tag,
    };
    Ok((msg.seq, write(head, data, len, out)))
}

/// Checks that `bytes` is the answer to request `expected` (made for `max_payload` and
/// `sizes`); returns the tag it carries.
pub fn check_answer(
    expected: u64,
    max_payload: usize,
    sizes: Sizes,
    bytes: &[u8],
) -> Result<u32, EchoError> {
    let msg = parse(bytes)?;
    if msg.kind != ANSWER {
        return Err(EchoError::BadKind { kind: msg.kind });
    }
    if msg.seq != expected {
        return Err(EchoError::WrongSeq {
            expected,
            found: msg.seq,
        });
    }
    let len = data_len(expected, max_payload, sizes);
    let intact = msg.data.len() == len
        && msg
            .data
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern(expected, i) ^ ANSWER_XOR);
    if intact {
        Ok(msg.tag)
    } else {
        Err(EchoError::WrongData { seq: expected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_answer_round_trip_and_refusals() {
        let mut req = [0u8; 240];
        let mut ans = [0u8; 240];
        for seq in [0u64, 1, 2, 215, 216, 1 << 40] {
            let n = request(seq, 240, Sizes::Varying, seq as u32 ^ 7, &mut req).unwrap();
            assert!(n <= 240 && n > HEADER);
            let (s, m) = answer(&req[..n], &mut ans).unwrap();
            assert_eq!((s, m), (seq, n));
            assert_eq!(
                check_answer(seq, 240, Sizes::Varying, &ans[..m]),
                Ok(seq as u32 ^ 7),
                "the tag comes back"
            );
            if n < 240 {
                assert_eq!(
                    check_answer(seq, 240, Sizes::Full, &ans[..m]),
                    Err(EchoError::WrongData { seq }),
                    "a shorter answer is not a full-size one"
                );
            }
            assert_eq!(
                check_answer(seq + 1, 240, Sizes::Varying, &ans[..m]),
                Err(EchoError::WrongSeq {
                    expected: seq + 1,
                    found: seq
                })
            );
            // The echo refuses answers, the sender refuses requests.
            assert_eq!(
                answer(&ans[..m], &mut req),
                Err(EchoError::BadKind { kind: ANSWER })
            );
        }
        assert_eq!(request(9, 240, Sizes::Full, 0, &mut req), Ok(240));
        let n = request(3, 240, Sizes::Varying, 0, &mut req).unwrap();
        assert_eq!(
            check_answer(3, 240, Sizes::Varying, &req[..n]),
            Err(EchoError::BadKind { kind: REQUEST })
        );
        let mut bad = req;
        bad[HEADER] ^= 1;
        assert!(matches!(
            parse(&bad[..n]),
            Err(EchoError::BadChecksum { .. })
        ));
        assert_eq!(
            parse(&req[..n - 1]),
            Err(EchoError::BadLength { len: n - 1 })
        );
        assert_eq!(parse(&req[..3]), Err(EchoError::BadLength { len: 3 }));
        bad = req;
        bad[0] = 0;
        assert!(matches!(parse(&bad[..n]), Err(EchoError::BadMagic { .. })));
        assert_eq!(
            request(0, 240, Sizes::Varying, 0, &mut [0; 10]),
            Err(EchoError::NoRoom)
        );
        // An answer with right header and checksum but wrong data.
        let (_, m) = answer(&req[..n], &mut ans).unwrap();
        let mut forged = [0u8; 240];
        let data: Vec<u8> = ans[HEADER..m].iter().map(|b| b ^ 1).collect();
        let head = Head {
            kind: ANSWER,
            seq: 3,
            tag: 0,
        };
        let k = write(head, data.iter().copied(), m - HEADER, &mut forged);
        assert_eq!(
            check_answer(3, 240, Sizes::Varying, &forged[..k]),
            Err(EchoError::WrongData { seq: 3 })
        );
    }
}
