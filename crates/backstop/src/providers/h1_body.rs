//! How an HTTP/1.1 response body is delimited, and its decoding from the bytes read so far:
//! a length, chunked coding (RFC 9112 §7.1: sizes, extensions ignored, trailers skipped) or
//! the connection's close.

use std::io;

use bytes::{Bytes, BytesMut};

use super::h1::{MAX_HEAD, invalid};

/// Longest chunk-size line (size, extensions, line end).
const MAX_SIZE_LINE: usize = 4 * 1024;

/// A body's delimiting and how far its decoding got.
#[derive(Debug)]
pub(crate) struct Framing(State);

#[derive(Debug, PartialEq)]
enum State {
    /// This many bytes are left.
    Length(u64),
    /// Before a chunk-size line.
    Size,
    /// This many bytes of the current chunk are left.
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; this many bytes of them seen.
    Trailers(usize),
    /// Everything until the connection closes.
    UntilClose,
    Done,
}

impl Framing {
    pub(crate) fn length(n: u64) -> Self {
        Framing(if n == 0 {
            State::Done
        } else {
            State::Length(n)
        })
    }
    pub(crate) fn chunked() -> Self {
        Framing(State::Size)
    }
    pub(crate) fn until_close() -> Self {
        Framing(State::UntilClose)
    }

    /// Whether the body has ended.
    pub(crate) fn is_done(&self) -> bool {
        self.0 == State::Done
    }

    /// The next piece of body data from `buf` (possibly empty, when only framing was read);
    /// `None` when `buf` holds nothing more of it, or the body is done.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
        match self.0 {
            State::Done => Ok(None),
            _ if buf.is_empty() => Ok(None),
            State::Length(left) => Ok(Some(self.take(buf, left, State::Length, State::Done))),
            State::UntilClose => Ok(Some(buf.split().freeze())),
            State::Data(left) => Ok(Some(self.take(buf, left, State::Data, State::DataEnd))),
            State::DataEnd => {
                let Some(line) = line(buf, 2)? else {
                    return Ok(None);
                };
                if !line.is_empty() {
                    return Err(invalid(
                        "the upstream's chunked body has data past a chunk's size".to_owned(),
                    ));
                }
                self.0 = State::Size;
                Ok(Some(Bytes::new()))
            }
            State::Size => {
                let Some(line) = line(buf, MAX_SIZE_LINE)? else {
                    return Ok(None);
                };
                let size = chunk_size(&line)?;
                self.0 = if size == 0 {
                    State::Trailers(0)
                } else {
                    State::Data(size)
                };
                Ok(Some(Bytes::new()))
            }
            State::Trailers(seen) => {
                let Some(line) = line(buf, MAX_HEAD - seen)? else {
                    return Ok(None);
                };
                self.0 = if line.is_empty() {
                    State::Done
                } else {
                    State::Trailers(seen + line.len() + 2)
                };
                Ok(Some(Bytes::new()))
            }
        }
    }

    /// Up to `left` bytes of body from the front of `buf`; then the state is `more` of what
    /// is left, or `then` when nothing is.
    fn take(
        &mut self,
        buf: &mut BytesMut,
        left: u64,
        more: fn(u64) -> State,
        then: State,
    ) -> Bytes {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let data = buf.split_to(n).freeze();
        let left = left - n as u64;
        self.0 = if left == 0 { then } else { more(left) };
        data
    }

    /// The connection closed: the end of a body read until the close, an error otherwise.
    pub(crate) fn at_close(&mut self) -> io::Result<()> {
        match self.0 {
            State::UntilClose | State::Done => {
                self.0 = State::Done;
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the response body ended",
            )),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_length(&self, n: u64) -> bool {
        match self.0 {
            State::Length(l) => l == n,
            State::Done => n == 0,
            _ => false,
        }
    }
    #[cfg(test)]
    pub(crate) fn is_chunked(&self) -> bool {
        self.0 == State::Size
    }
    #[cfg(test)]
    pub(crate) fn is_until_close(&self) -> bool {
        self.0 == State::UntilClose
    }
}

/// One line from the front of `buf`, without its end (CRLF, or a bare LF as hyper accepts);
/// `None` until a whole one is there; an error when none ends within `max` bytes.
fn line(buf: &mut BytesMut, max: usize) -> io::Result<Option<BytesMut>> {
    match memchr::memchr(b'\n', buf) {
        Some(end) if end < max => {
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() < max => Ok(None),
        _ => Err(invalid(
            "the upstream's chunked body has a line that is too long".to_owned(),
        )),
    }
}

/// A chunk-size line's size: hex digits, then optional whitespace and `;extensions`.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let rest = line.get(digits..).unwrap_or_default().trim_ascii_start();
    let bad = || invalid("the upstream's chunked body has an invalid chunk size".to_owned());
    if digits == 0 || digits > 16 || !(rest.is_empty() || rest.first() == Some(&b';')) {
        return Err(bad());
    }
    let hex = std::str::from_utf8(line.get(..digits).unwrap_or_default()).map_err(|_| bad())?;
    u64::from_str_radix(hex, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Decodes `input` fed `step` bytes at a time: the data, and whether the body ended.
    fn decode(mut framing: Framing, input: &[u8], step: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(data) = framing.decode(&mut buf)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, framing.is_done()))
    }

    #[test]
    fn chunked_bodies_decode_the_same_however_they_arrive() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            let (data, done) = decode(Framing::chunked(), body, step).unwrap();
            assert_eq!(data, b"hello 0123456789", "step {step}");
            assert!(done, "step {step}");
        }
        // Bare LF line ends, as hyper accepts.
        let (data, done) = decode(Framing::chunked(), b"2\nok\n0\n\n", 1).unwrap();
        assert_eq!((data.as_slice(), done), (&b"ok"[..], true));
    }

    #[test]
    fn bytes_after_a_body_are_left_for_the_next_response() {
        let mut buf = BytesMut::from(&b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200"[..]);
        let mut f = Framing::chunked();
        while f.decode(&mut buf).unwrap().is_some() {}
        assert!(f.is_done());
        assert_eq!(&buf[..], b"HTTP/1.1 200");
        let mut buf = BytesMut::from(&b"okHTTP"[..]);
        let mut f = Framing::length(2);
        assert_eq!(f.decode(&mut buf).unwrap().unwrap(), "ok");
        assert!(f.is_done() && f.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"HTTP");
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"-1\r\n",
            b"\r\n",
            b"5 x\r\n",
            b"11111111111111111\r\n",
            b"2\r\nokX\r\n",
        ] {
            assert!(decode(Framing::chunked(), bad, 1).is_err(), "{bad:?}");
        }
        let long = vec![b'1'; MAX_SIZE_LINE + 1];
        assert!(decode(Framing::chunked(), &long, 64).is_err());
    }

    #[test]
    fn a_close_ends_only_a_body_delimited_by_it() {
        let mut f = Framing::until_close();
        let mut buf = BytesMut::from(&b"all of it"[..]);
        assert_eq!(f.decode(&mut buf).unwrap().unwrap(), "all of it");
        assert!(f.at_close().is_ok() && f.is_done());
        assert!(Framing::length(3).at_close().is_err());
        assert!(Framing::chunked().at_close().is_err());
        let (data, done) = decode(Framing::length(5), b"abc", 1).unwrap();
        assert_eq!((data.as_slice(), done), (&b"abc"[..], false));
    }
}
