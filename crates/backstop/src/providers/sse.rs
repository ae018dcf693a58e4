//! An incremental server-sent-events decoder over arbitrary byte chunks.
//!
//! Follows the WHATWG event-stream rules that matter for LLM APIs: `\n`, `\r\n` and `\r`
//! line ends (a `\r\n` split across two chunks counts once), multi-line `data:`, `event:`,
//! `id:`, comment lines starting with `:`, and a leading byte-order mark. Lines are parsed in
//! place: in the received piece itself while it holds whole lines, and only an unfinished
//! line is copied aside for the next piece. Nothing is held between pieces but that line, so
//! a stream waiting for its next event keeps no buffer.

use std::fmt;

use bytes::Bytes;

/// The longest line we accept; a peer that never ends a line must not grow us forever.
pub const MAX_LINE_LEN: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseEvent {
    /// The `event:` field, when given (the spec's default type is `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` field seen in this event, when given.
    pub id: Option<String>,
}

/// Why the decoder gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseError {
    /// A line grew past `MAX_LINE_LEN` (16 MiB) without ending.
    LineTooLong,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong => write!(f, "SSE line longer than {MAX_LINE_LEN} bytes"),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE decoder: [`push`](Self::push) bytes as they arrive, then drain complete
/// events with [`next_event`](Self::next_event).
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes carried from earlier pieces (an unfinished line, or pieces pushed as slices),
    /// read while `piece` is empty.
    buf: Vec<u8>,
    /// The last piece pushed whole, read in place; `buf` is empty while it is not.
    piece: Bytes,
    /// Start of the unconsumed bytes (of `piece`, else of `buf`).
    pos: usize,
    /// Where to resume scanning for a line end (everything in `pos..scan` has none).
    scan: usize,
    /// The previous line ended in `\r`; a `\n` right after it belongs to that line end.
    skip_lf: bool,
    /// Whether the stream start (and its optional BOM) has been handled.
    started: bool,
    /// The event being assembled.
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the transport (copied).
    pub fn push(&mut self, bytes: &[u8]) {
        self.carry();
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a piece received from the transport, read in place when nothing is carried.
    pub fn push_bytes(&mut self, bytes: Bytes) {
        self.carry();
        if self.buf.is_empty() {
            self.piece = bytes;
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Moves the unconsumed bytes to the front of `buf`: a piece's rest is copied there.
    fn carry(&mut self) {
        if !self.piece.is_empty() {
            self.buf
                .extend_from_slice(self.piece.get(self.pos..).unwrap_or_default());
            self.piece = Bytes::new();
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
        }
        self.scan = self.scan.saturating_sub(self.pos);
        self.pos = 0;
    }

    /// Everything read: let go of the bytes (a stream between events holds none).
    fn release(&mut self) {
        if self.pos == active(&self.buf, &self.piece).len() {
            self.piece = Bytes::new();
            self.buf = Vec::new();
            self.pos = 0;
            self.scan = 0;
            if !self.has_data {
                self.data = String::new();
            }
        }
    }

    /// Takes back an event's data buffer for the next event's data, saving an allocation per
    /// event while events keep coming; it is let go with the bytes once all are read.
    pub(crate) fn recycle(&mut self, mut data: String) {
        if self.data.capacity() == 0 && !self.has_data {
            data.clear();
            self.data = data;
        }
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if !self.started {
                // Strip one leading UTF-8 BOM; wait until we can tell whether there is one.
                let avail = &active(&self.buf, &self.piece)[self.pos..];
                let bom = [0xEF_u8, 0xBB, 0xBF];
                if avail.len() < 3 && bom.starts_with(avail) {
                    return Ok(None);
                }
                if avail.starts_with(&bom) {
                    self.pos += 3;
                    self.scan = self.scan.max(self.pos);
                }
                self.started = true;
            }
            let bytes = active(&self.buf, &self.piece);
            if self.skip_lf && self.pos < bytes.len() {
                if bytes[self.pos] == b'\n' {
                    self.pos += 1;
                    self.scan = self.scan.max(self.pos);
                }
                self.skip_lf = false;
            }
            let start = self.scan.max(self.pos);
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) else {
                self.scan = bytes.len();
                if bytes.len() - self.pos > MAX_LINE_LEN {
                    return Err(SseError::LineTooLong);
                }
                self.release();
                return Ok(None);
            };
            let end = start + offset;
            let line_start = self.pos;
            if bytes[end] == b'\r' {
                self.skip_lf = true;
            }
            self.pos = end + 1;
            self.scan = self.pos;
            if let Some(event) = self.process_line(line_start, end) {
                return Ok(Some(event));
            }
        }
    }

    /// True when bytes or fields of an unfinished event are buffered (the stream stopped
    /// mid-event if it ends now).
    pub fn has_partial(&self) -> bool {
        self.pos < active(&self.buf, &self.piece).len() || self.has_data || self.event.is_some()
    }

    /// Handles one line `buf[start..end]`; returns an event when the line is blank and
    /// data was collected.
    fn process_line(&mut self, start: usize, end: usize) -> Option<SseEvent> {
        if start == end {
            return self.dispatch();
        }
        let line = &active(&self.buf, &self.piece)[start..end];
        if line[0] == b':' {
            return None; // comment
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        // Valid UTF-8 (every well-behaved stream) is checked by the fast validator; only
        // invalid bytes take the slower lossy path (8.6% of a streamed request's instructions).
        let value = match std::str::from_utf8(value) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(value),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            _ => {} // `retry` and unknown fields are ignored
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let id = self.id.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
        })
    }
}

/// The bytes being read: the piece in place, else the carried ones.
fn active<'a>(buf: &'a [u8], piece: &'a Bytes) -> &'a [u8] {
    if piece.is_empty() { buf } else { piece }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the pieces are pushed: copied, read in place, or alternating.
    #[derive(Clone, Copy, Debug)]
    enum Feed {
        Copied,
        InPlace,
        Mixed,
    }

    fn decode_with(chunks: &[&[u8]], feed: Feed) -> (Vec<SseEvent>, bool) {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            match (feed, i % 2) {
                (Feed::Copied, _) | (Feed::Mixed, 0) => d.push(c),
                (Feed::InPlace, _) | (Feed::Mixed, _) => d.push_bytes(Bytes::copy_from_slice(c)),
            }
            while let Some(e) = d.next_event().unwrap() {
                out.push(e);
            }
        }
        (out, d.has_partial())
    }

    /// The events, the same whichever way the pieces were pushed.
    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let copied = decode_with(chunks, Feed::Copied);
        for feed in [Feed::InPlace, Feed::Mixed] {
            assert_eq!(decode_with(chunks, feed), copied, "{feed:?}");
        }
        copied.0
    }

    fn byte_by_byte(input: &[u8]) -> Vec<SseEvent> {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        decode_all(&chunks)
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        }
    }

    #[test]
    fn invalid_utf8_in_a_field_becomes_replacement_characters() {
        let input = b"data: ok \xff\xfe end\n\ndata: caf\xc3\xa9\n\n";
        let want = vec![ev(None, "ok \u{FFFD}\u{FFFD} end"), ev(None, "caf\u{e9}")];
        assert_eq!(decode_all(&[input]), want);
        assert_eq!(byte_by_byte(input), want);
    }

    #[test]
    fn all_line_endings_give_the_same_events() {
        let lf = b"event: a\ndata: 1\n\ndata: 2\n\n".to_vec();
        let crlf = b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n".to_vec();
        let cr = b"event: a\rdata: 1\r\rdata: 2\r\r".to_vec();
        let want = vec![ev(Some("a"), "1"), ev(None, "2")];
        for input in [lf, crlf, cr] {
            assert_eq!(decode_all(&[&input]), want);
            assert_eq!(byte_by_byte(&input), want);
        }
    }

    #[test]
    fn crlf_split_across_chunks_counts_once() {
        let got = decode_all(&[b"data: x\r", b"\n", b"\r", b"\ndata: y\r\n\r\n"]);
        assert_eq!(got, vec![ev(None, "x"), ev(None, "y")]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let got = byte_by_byte(b"data: first\ndata:second\ndata\n\n");
        assert_eq!(got, vec![ev(None, "first\nsecond\n")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let got = decode_all(&[b": keep-alive\nretry: 10\nfoo: bar\ndata: hi\n\n:\n\n"]);
        assert_eq!(got, vec![ev(None, "hi")]);
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_reset_the_type() {
        let got = decode_all(&[b"event: ping\n\ndata: x\n\n"]);
        assert_eq!(got, vec![ev(None, "x")]);
    }

    #[test]
    fn only_one_leading_space_is_stripped_and_colons_in_values_survive() {
        let got = decode_all(&[b"data:  two spaces: yes\n\n"]);
        assert_eq!(got, vec![ev(None, " two spaces: yes")]);
    }

    #[test]
    fn id_is_kept_per_event() {
        let got = decode_all(&[b"id: 7\ndata: a\n\n"]);
        assert_eq!(got[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn leading_bom_is_stripped_even_when_split() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        assert_eq!(byte_by_byte(input), vec![ev(None, "x")]);
        // A BOM later in the stream is data, not stripped.
        let got = decode_all(&[b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"]);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn utf8_split_across_chunks_is_reassembled() {
        let input = "data: héllo ✓\n\n".as_bytes();
        assert_eq!(byte_by_byte(input), vec![ev(None, "héllo ✓")]);
    }

    #[test]
    fn partial_event_is_reported_and_not_dispatched() {
        let mut d = SseDecoder::new();
        d.push(b"data: {\"half\":");
        assert_eq!(d.next_event().unwrap(), None);
        assert!(d.has_partial());
        d.push(b" 1}\n");
        assert_eq!(d.next_event().unwrap(), None);
        assert!(d.has_partial());
        d.push(b"\n");
        assert_eq!(d.next_event().unwrap(), Some(ev(None, "{\"half\": 1}")));
        assert!(!d.has_partial());
    }

    #[test]
    fn anthropic_documented_stream_decodes_in_any_split() {
        let input = include_bytes!("../../tests/fixtures/anthropic/stream_basic.sse");
        let whole = decode_all(&[input]);
        assert!(whole.len() >= 8, "{whole:?}");
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole.last().unwrap().event.as_deref(), Some("message_stop"));
        for split in [1, 2, 3, 7, 64] {
            let chunks: Vec<&[u8]> = input.chunks(split).collect();
            assert_eq!(decode_all(&chunks), whole, "split {split}");
        }
    }

    #[test]
    fn an_events_buffer_serves_the_next_event_and_is_let_go_with_the_bytes() {
        let mut d = SseDecoder::new();
        d.push_bytes(Bytes::from_static(b"data: first event\n\ndata: second\n\n"));
        let first = d.next_event().unwrap().unwrap();
        let buffer = first.data.as_ptr();
        d.recycle(first.data);
        let second = d.next_event().unwrap().unwrap();
        assert_eq!(second.data, "second");
        assert_eq!(
            second.data.as_ptr(),
            buffer,
            "the first event's buffer is reused"
        );
        d.recycle(second.data);
        assert_eq!(d.next_event().unwrap(), None);
        assert_eq!(d.data.capacity(), 0, "nothing is held between pieces");
    }

    #[test]
    fn a_piece_read_in_place_is_let_go_once_read_and_its_unfinished_line_carried() {
        let mut d = SseDecoder::new();
        d.push_bytes(Bytes::from_static(b"data: a\n\ndata: b"));
        assert_eq!(d.next_event().unwrap(), Some(ev(None, "a")));
        assert_eq!(d.next_event().unwrap(), None);
        assert!(d.has_partial());
        assert_eq!(
            (d.piece.len(), d.buf.len()),
            (16, 0),
            "the piece is read in place"
        );
        d.push_bytes(Bytes::from_static(b"c\n\n"));
        assert_eq!(
            d.buf, b"data: bc\n\n",
            "only the unfinished line was copied"
        );
        assert_eq!(d.next_event().unwrap(), Some(ev(None, "bc")));
        assert_eq!(d.next_event().unwrap(), None);
        assert!(!d.has_partial());
        assert!(
            d.piece.is_empty() && d.buf.capacity() == 0,
            "nothing held between events"
        );
    }

    #[test]
    fn endless_line_is_an_error() {
        let mut d = SseDecoder::new();
        let big = vec![b'a'; MAX_LINE_LEN + 1];
        d.push(&big);
        assert_eq!(d.next_event(), Err(SseError::LineTooLong));
    }
}
