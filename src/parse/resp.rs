//! Framing of RESP replies in a read buffer: where one complete reply ends, without decoding it
//! or allocating. The client reads a pipeline's replies into one buffer, asks [`frame_len`]
//! whether the next reply is complete, and only then decodes exactly those bytes; so a reply
//! that arrives in many reads is decoded once, and a length header alone allocates nothing.
//!
//! Pure and panic-free on any input. RESP2 and the RESP3 frame types are known (the exporter
//! speaks RESP2, but a server may send an out-of-band push frame).

/// Deepest nesting of aggregates accepted (the deepest real reply, SLOWLOG GET, nests three).
pub const MAX_DEPTH: usize = 16;

/// Why the bytes are not RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A byte that starts no RESP type.
    #[error("unknown RESP type byte 0x{0:02x}")]
    UnknownType(u8),
    /// A length or count that is not a decimal integer (or a negative one other than -1).
    #[error("bad length in a RESP header")]
    BadLength,
    /// A bulk payload not followed by CRLF.
    #[error("bulk payload not terminated by CRLF")]
    Unterminated,
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    #[error("RESP nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// The length in bytes of the complete RESP frame at the start of `buf`; `Ok(None)` while more
/// bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    frame_at(buf, 0, 0)
}

/// The payload of `frame` when it is one complete, non-null bulk string (`$<len>\r\n...\r\n`),
/// the shape of nearly every reply the exporter reads (CLUSTER INFO, CLUSTER NODES, INFO): the
/// client takes those bytes as they are instead of running a general decoder over them. `None`
/// for any other frame, and for bytes that are not exactly one complete bulk string.
pub fn bulk_payload(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"$")?;
    let header_end = line_end(rest, 0)?;
    let n = length(rest.get(..header_end)?).ok()??;
    let payload = rest.get(header_end + 2..)?;
    let (body, tail) = payload.split_at_checked(n)?;
    (tail == b"\r\n").then_some(body)
}

/// The end of the frame starting at `pos`, nested `depth` deep.
fn frame_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError::TooDeep);
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(line_end) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let header = buf.get(pos + 1..line_end).unwrap_or_default();
    let after = line_end + 2;
    match kind {
        // Simple string, error, integer, null, boolean, double, big number: one line.
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(Some(after)),
        // Bulk string, bulk error, verbatim string: a length, the payload, CRLF.
        b'$' | b'!' | b'=' => match length(header)? {
            None => Ok(Some(after)),
            Some(n) => {
                let end = after.saturating_add(n);
                match buf.get(end..end.saturating_add(2)) {
                    None => Ok(None),
                    Some(b"\r\n") => Ok(Some(end + 2)),
                    Some(_) => Err(FrameError::Unterminated),
                }
            }
        },
        // Array, set, push: a count of elements; map, attribute: a count of pairs.
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some(count) = length(header)? else {
                return Ok(Some(after));
            };
            let per = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            let Some(mut end) = elements(buf, after, count.saturating_mul(per), depth)? else {
                return Ok(None);
            };
            if kind == b'|' {
                // An attribute is followed by the value it describes.
                match frame_at(buf, end, depth + 1)? {
                    Some(e) => end = e,
                    None => return Ok(None),
                }
            }
            Ok(Some(end))
        }
        other => Err(FrameError::UnknownType(other)),
    }
}

/// The end of `count` consecutive frames from `pos`. Each frame takes at least three bytes, so a
/// huge count runs out of buffer (incomplete) after at most `buf.len() / 3` steps.
fn elements(
    buf: &[u8],
    mut pos: usize,
    count: usize,
    depth: usize,
) -> Result<Option<usize>, FrameError> {
    for _ in 0..count {
        match frame_at(buf, pos, depth + 1)? {
            Some(end) => pos = end,
            None => return Ok(None),
        }
    }
    Ok(Some(pos))
}

/// The index of the CR of the first CRLF at or after `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// A header's length: `None` for the null length -1.
fn length(header: &[u8]) -> Result<Option<usize>, FrameError> {
    if header == b"-1" {
        return Ok(None);
    }
    if header.is_empty() || header.len() > 19 || !header.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::BadLength);
    }
    let n = header
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    usize::try_from(n)
        .map(Some)
        .map_err(|_| FrameError::BadLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_and_incomplete_frames() {
        assert_eq!(frame_len(b"+OK\r\n"), Ok(Some(5)));
        assert_eq!(frame_len(b"+OK\r"), Ok(None));
        assert_eq!(frame_len(b"$3\r\nabc\r\n+x"), Ok(Some(9)));
        assert_eq!(frame_len(b"$3\r\nab"), Ok(None));
        assert_eq!(frame_len(b"$-1\r\n"), Ok(Some(5)));
        assert_eq!(frame_len(b"*2\r\n:1\r\n$1\r\na\r\n"), Ok(Some(15)));
        assert_eq!(frame_len(b"*2\r\n:1\r\n"), Ok(None));
        assert_eq!(frame_len(b"%1\r\n+a\r\n:1\r\n"), Ok(Some(12)));
        assert_eq!(frame_len(b"$1073741824\r\n"), Ok(None));
        assert_eq!(frame_len(b"*1000000000\r\n"), Ok(None));
    }

    #[test]
    fn a_bulk_strings_payload_is_taken_as_it_is_and_nothing_else_is() {
        assert_eq!(bulk_payload(b"$3\r\nabc\r\n"), Some(&b"abc"[..]));
        assert_eq!(bulk_payload(b"$0\r\n\r\n"), Some(&b""[..]));
        let info = b"$28\r\n# Replication\r\nrole:master\r\n\r\n";
        assert_eq!(
            bulk_payload(info),
            Some(&b"# Replication\r\nrole:master\r\n"[..])
        );
        for other in [
            &b"$-1\r\n"[..],
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":1\r\n",
            b"*1\r\n$1\r\na\r\n",
            b"$3\r\nab\r\n",
            b"$3\r\nabcd\r\n",
            b"$3\r\nabc\r\n+x\r\n",
            b"$x\r\nabc\r\n",
            b"$3\r\nabc",
            b"",
        ] {
            assert_eq!(
                bulk_payload(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn invalid_frames() {
        assert_eq!(
            frame_len(b"\x16\x03\r\n"),
            Err(FrameError::UnknownType(0x16))
        );
        assert_eq!(frame_len(b"$x\r\n"), Err(FrameError::BadLength));
        assert_eq!(frame_len(b"$-2\r\n"), Err(FrameError::BadLength));
        assert_eq!(frame_len(b"$1\r\nabc\r\n"), Err(FrameError::Unterminated));
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(frame_len(&deep), Err(FrameError::TooDeep));
    }
}
