//! RESP2 for the simulator: parsing requests (multibulk and inline) out of a byte buffer, and
//! encoding replies. Parsing never panics and bounds what a client may make it buffer.

/// Most arguments accepted in one command.
pub const MAX_ARGS: usize = 1024;
/// Largest bulk argument accepted.
pub const MAX_BULK: usize = 1 << 20;
/// Longest inline command line accepted.
pub const MAX_INLINE: usize = 64 * 1024;

/// The outcome of trying to parse one command from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// One command (possibly with no arguments, which callers ignore) and how many bytes it used.
    Command {
        /// The arguments, command name first.
        args: Vec<Vec<u8>>,
        /// Bytes consumed from the buffer.
        used: usize,
    },
    /// The bytes are not valid RESP (or exceed a bound); the connection should be closed after
    /// sending this error.
    Invalid(&'static str),
}

/// Finds `\r\n` at or after `from`; returns the line (without it) and the index after it.
fn line_at(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let pos = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..pos)?, from + pos + 2))
}

/// Parses a decimal integer (optional leading `-`) with overflow checks.
fn parse_int(digits: &[u8]) -> Option<i64> {
    let (neg, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Parses one command from the front of `buf`.
pub fn parse(buf: &[u8]) -> Frame {
    match buf.first() {
        None => Frame::Incomplete,
        Some(b'*') => parse_multibulk(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_multibulk(buf: &[u8]) -> Frame {
    let Some((header, mut pos)) = line_at(buf, 0) else {
        return if buf.len() > MAX_INLINE {
            Frame::Invalid("Protocol error: too big mbulk count string")
        } else {
            Frame::Incomplete
        };
    };
    let Some(count) = header.get(1..).and_then(parse_int) else {
        return Frame::Invalid("Protocol error: invalid multibulk length");
    };
    if count <= 0 {
        return Frame::Command {
            args: Vec::new(),
            used: pos,
        };
    }
    let Ok(count) = usize::try_from(count) else {
        return Frame::Invalid("Protocol error: invalid multibulk length");
    };
    if count > MAX_ARGS {
        return Frame::Invalid("Protocol error: too many arguments");
    }
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((bulk_header, after)) = line_at(buf, pos) else {
            return if buf.len() - pos > MAX_INLINE {
                Frame::Invalid("Protocol error: too big bulk count string")
            } else {
                Frame::Incomplete
            };
        };
        let len = match bulk_header.split_first() {
            Some((b'$', digits)) => parse_int(digits),
            _ => return Frame::Invalid("Protocol error: expected '$'"),
        };
        let Some(len) = len.and_then(|l| usize::try_from(l).ok()) else {
            return Frame::Invalid("Protocol error: invalid bulk length");
        };
        if len > MAX_BULK {
            return Frame::Invalid("Protocol error: invalid bulk length");
        }
        let end = after + len;
        if buf.len() < end + 2 {
            return Frame::Incomplete;
        }
        if buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
            return Frame::Invalid("Protocol error: bulk not terminated by CRLF");
        }
        let Some(arg) = buf.get(after..end) else {
            return Frame::Incomplete;
        };
        args.push(arg.to_vec());
        pos = end + 2;
    }
    Frame::Command { args, used: pos }
}

fn parse_inline(buf: &[u8]) -> Frame {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Frame::Invalid("Protocol error: too big inline request")
        } else {
            Frame::Incomplete
        };
    };
    let line = buf.get(..nl).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let args: Vec<Vec<u8>> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if args.len() > MAX_ARGS {
        return Frame::Invalid("Protocol error: too many arguments");
    }
    Frame::Command { args, used: nl + 1 }
}

/// Appends a simple string reply (`+text`).
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends an error reply (`-text`); `text` starts with the error code, e.g. `ERR ...`.
pub fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    // An error line must not contain CR or LF.
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string reply.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_u64(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends an integer reply.
pub fn integer(out: &mut Vec<u8>, v: i64) {
    out.push(b':');
    push_i64(out, v);
    out.extend_from_slice(b"\r\n");
}

/// Appends an array header (`*n`); the caller appends the n elements.
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_u64(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `v` (no allocation; the hot path of CLUSTER NODES).
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `v % 10` is below 10, so the cast is exact.
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends the decimal digits of a signed value.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        array_header(&mut out, args.len());
        for a in args {
            bulk(&mut out, a.as_bytes());
        }
        out
    }

    #[test]
    fn parses_pipelined_multibulk() {
        let mut buf = cmd(&["CLUSTER", "INFO"]);
        buf.extend(cmd(&["INFO", "server", "replication"]));
        let Frame::Command { args, used } = parse(&buf) else {
            panic!("first command not parsed");
        };
        assert_eq!(args, vec![b"CLUSTER".to_vec(), b"INFO".to_vec()]);
        let Frame::Command { args, used: used2 } = parse(&buf[used..]) else {
            panic!("second command not parsed");
        };
        assert_eq!(args.len(), 3);
        assert_eq!(used + used2, buf.len());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = cmd(&["CLIENT", "SETINFO", "LIB-NAME", "x"]);
        for n in 0..buf.len() {
            assert_eq!(parse(&buf[..n]), Frame::Incomplete, "prefix {n}");
        }
    }

    #[test]
    fn inline_and_garbage() {
        assert_eq!(
            parse(b"PING\r\n"),
            Frame::Command {
                args: vec![b"PING".to_vec()],
                used: 6
            }
        );
        assert!(matches!(parse(b"*x\r\n"), Frame::Invalid(_)));
        assert!(matches!(parse(b"*1\r\n+OK\r\n"), Frame::Invalid(_)));
        assert!(matches!(parse(b"*1\r\n$-5\r\n"), Frame::Invalid(_)));
        assert!(matches!(
            parse(b"*99999999999999999999\r\n"),
            Frame::Invalid(_)
        ));
        assert!(matches!(parse(b"*1\r\n$2\r\nabXY"), Frame::Invalid(_)));
        assert!(matches!(
            parse(&vec![b'a'; MAX_INLINE + 1]),
            Frame::Invalid(_)
        ));
        assert_eq!(
            parse(b"*0\r\n"),
            Frame::Command {
                args: vec![],
                used: 4
            }
        );
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_i64(&mut out, -1);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0 -1 18446744073709551615");
    }
}
