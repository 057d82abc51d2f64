//! Syslog framing on a byte stream (RFC 6587): where one message ends and the next begins.
//!
//! Framing is separate from parsing (as in Vector): this module only cuts a TCP/TLS
//! stream into message bytes; [`crate::decode`] reads what is inside (headers, times),
//! and only for lines that matched.
//!
//! The method is detected per frame, so one connection may switch between them:
//! - **Octet counting** (`<len> <msg>`, RFC 6587 §3.4.1) when the frame starts with a
//!   digit: exactly `len` bytes follow one space; they may hold any byte, LF and NUL
//!   included. Only trailing LF, CR and NUL bytes are dropped (rsyslog's RFC 5424
//!   forwarding template counts a final LF); a message of nothing else is skipped.
//! - **Non-transparent framing** (§3.4.2) otherwise: the message ends at the first LF
//!   or NUL; a CR just before the LF is dropped (CRLF). Empty frames (blank lines) are
//!   skipped.
//!
//! Invariants and costs:
//! - A message longer than `max_message_bytes` is **truncated**: its first
//!   `max_message_bytes` bytes come out as [`Frame::Truncated`] and the rest of that
//!   frame is skipped (as rsyslog does with its `maxMessageSize`). Truncating rather
//!   than dropping keeps the header and the start of the text matchable: padding a
//!   line does not hide it.
//! - A malformed octet count (a leading `0`, more than 10 digits, or no space after
//!   the digits) is a [`FramingError`], after which the decoder yields nothing more:
//!   the caller closes the connection. RFC 6587 gives no way to find the next frame in
//!   an octet-counted stream, so guessing would turn the rest of it into mis-framed
//!   garbage; a closed connection makes the sender reconnect with clean framing.
//! - The buffer holds at most one message (`max_message_bytes`), its count prefix and
//!   one read; bytes are scanned once for a terminator however the reads split them.

use memchr::memchr2;

/// How much [`FrameDecoder::buffer_for_read`] makes room for.
pub const READ_CHUNK: usize = 16 * 1024;

/// Octet counts longer than this are malformed (10 digits: up to 9,999,999,999 bytes).
const MAX_COUNT_DIGITS: usize = 10;

/// One message cut from the stream, without its framing.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Message(&'a [u8]),
    /// The first `max_message_bytes` of a longer message; the rest was skipped.
    Truncated(&'a [u8]),
}

impl<'a> Frame<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Frame::Message(b) | Frame::Truncated(b) => b,
        }
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self, Frame::Truncated(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The frame starts with a digit but is not `<nonzero digits> <msg>`.
    #[error("malformed octet count at frame start: {prefix}")]
    MalformedCount { prefix: String },
    /// The stream ended inside an octet-counted frame.
    #[error("stream ended inside an octet-counted frame: {missing} of {len} bytes missing")]
    Incomplete { len: usize, missing: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary, or inside a frame whose bytes are all still buffered.
    Ready,
    /// After truncating a non-transparent frame: skip through its terminator.
    SkipToTerminator,
    /// After truncating an octet-counted frame: skip this many more bytes.
    SkipCount { len: usize, left: usize },
    /// A framing error happened; nothing more is decoded.
    Failed,
}

/// Cuts a byte stream into syslog messages. Feed it with [`extend`](Self::extend) or
/// by reading into [`buffer_for_read`](Self::buffer_for_read), then call
/// [`decode`](Self::decode) until it returns `Ok(None)`; at end of stream call
/// [`decode_eof`](Self::decode_eof) the same way.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    pos: usize,
    /// Bytes after `pos` already searched for a terminator (non-transparent frames).
    scanned: usize,
    max: usize,
    state: State,
}

impl FrameDecoder {
    /// `max_message_bytes` is clamped to at least 1.
    pub fn new(max_message_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            max: max_message_bytes.max(1),
            state: State::Ready,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read into (for `AsyncReadExt::read_buf`), with room for at least
    /// [`READ_CHUNK`] more bytes; whatever is appended is decoded next.
    pub fn buffer_for_read(&mut self) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(READ_CHUNK);
        &mut self.buf
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True after a [`FramingError`]: the stream cannot be framed any more.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.scanned = 0;
    }

    fn fail(&mut self, e: FramingError) -> Result<Option<Span>, FramingError> {
        self.state = State::Failed;
        self.pos = self.buf.len();
        self.scanned = 0;
        Err(e)
    }

    fn frame(&self, span: Span) -> Frame<'_> {
        let bytes = &self.buf[span.start..span.end];
        if span.truncated {
            Frame::Truncated(bytes)
        } else {
            Frame::Message(bytes)
        }
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Frame<'_>>, FramingError> {
        Ok(self.next_span()?.map(|span| self.frame(span)))
    }

    /// Like [`decode`](Self::decode) at end of stream: an unterminated last
    /// non-transparent frame is a message; a cut octet-counted frame is an error.
    pub fn decode_eof(&mut self) -> Result<Option<Frame<'_>>, FramingError> {
        let span = match self.next_span()? {
            Some(span) => Some(span),
            None => self.tail_span()?,
        };
        Ok(span.map(|span| self.frame(span)))
    }

    fn next_span(&mut self) -> Result<Option<Span>, FramingError> {
        loop {
            let data = &self.buf[self.pos..];
            match self.state {
                State::Failed => {
                    self.pos = self.buf.len();
                    return Ok(None);
                }
                State::SkipCount { len, left } => {
                    let k = left.min(data.len());
                    self.consume(k);
                    if k < left {
                        self.state = State::SkipCount {
                            len,
                            left: left - k,
                        };
                        return Ok(None);
                    }
                    self.state = State::Ready;
                }
                State::SkipToTerminator => match memchr2(b'\n', 0, data) {
                    Some(i) => {
                        self.consume(i + 1);
                        self.state = State::Ready;
                    }
                    None => {
                        self.consume(data.len());
                        return Ok(None);
                    }
                },
                State::Ready => {
                    let Some(&first) = data.first() else {
                        return Ok(None);
                    };
                    if first.is_ascii_digit() {
                        match self.counted_span()? {
                            Some(span) if span.start == span.end => continue, // empty
                            found => return Ok(found),
                        }
                    }
                    // Non-transparent: search only the bytes not searched before.
                    let from = self.scanned.min(data.len());
                    match memchr2(b'\n', 0, &data[from..]) {
                        Some(i) => {
                            let end = from + i;
                            let mut len = end;
                            if data[end] == b'\n' && end > 0 && data[end - 1] == b'\r' {
                                len -= 1;
                            }
                            let start = self.pos;
                            self.consume(end + 1);
                            if len == 0 {
                                continue; // empty frame
                            }
                            return Ok(Some(Span::new(start, len, self.max)));
                        }
                        // `max + 1`: the last byte may be the CR of a CRLF to come.
                        None if data.len() > self.max + 1 => {
                            let start = self.pos;
                            self.consume(self.max);
                            self.state = State::SkipToTerminator;
                            return Ok(Some(Span::new(start, usize::MAX, self.max)));
                        }
                        None => {
                            self.scanned = data.len();
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// Octet counting: the unconsumed bytes start with a digit.
    fn counted_span(&mut self) -> Result<Option<Span>, FramingError> {
        let data = &self.buf[self.pos..];
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_COUNT_DIGITS || data[0] == b'0' {
            let prefix = escape_prefix(data);
            return self.fail(FramingError::MalformedCount { prefix });
        }
        if digits == data.len() {
            return Ok(None); // the count goes on in the next read
        }
        if data[digits] != b' ' {
            let prefix = escape_prefix(data);
            return self.fail(FramingError::MalformedCount { prefix });
        }
        let Some(len) = parse_count(&data[..digits]) else {
            let prefix = escape_prefix(data);
            return self.fail(FramingError::MalformedCount { prefix });
        };
        let body = digits + 1;
        let available = data.len() - body;
        let start = self.pos + body;
        if available < len.min(self.max) {
            return Ok(None);
        }
        if len <= self.max {
            self.consume(body + len);
        } else {
            self.consume(body + self.max);
            self.state = State::SkipCount {
                len,
                left: len - self.max,
            };
        }
        let mut span = Span::new(start, len, self.max);
        // rsyslog's RFC 5424 forwarding template ends the counted message with LF.
        let body = &self.buf[span.start..span.end];
        span.end = span.start + trim_terminators(body).len();
        Ok(Some(span))
    }

    /// At end of stream, once [`next_span`](Self::next_span) found nothing: what is
    /// left of the last frame.
    fn tail_span(&mut self) -> Result<Option<Span>, FramingError> {
        let data = &self.buf[self.pos..];
        let rest = data.len();
        match self.state {
            State::Failed => {
                self.consume(rest);
                Ok(None)
            }
            State::SkipToTerminator => {
                self.consume(rest);
                self.state = State::Ready;
                Ok(None)
            }
            State::SkipCount { len, left } => {
                self.consume(rest);
                self.state = State::Ready;
                Err(FramingError::Incomplete { len, missing: left })
            }
            State::Ready if rest == 0 => Ok(None),
            State::Ready if data[0].is_ascii_digit() => {
                // `next_span` rejected malformed counts, so this is `<digits>[ <part>]`.
                let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
                let len = parse_count(&data[..digits]).unwrap_or(0);
                let got = rest.saturating_sub(digits + 1);
                self.consume(rest);
                Err(FramingError::Incomplete {
                    len,
                    missing: len.saturating_sub(got),
                })
            }
            State::Ready => {
                let len = if data[rest - 1] == b'\r' {
                    rest - 1
                } else {
                    rest
                };
                let start = self.pos;
                self.consume(rest);
                Ok((len > 0).then(|| Span::new(start, len, self.max)))
            }
        }
    }
}

/// Where a frame's bytes lie in the buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    truncated: bool,
}

impl Span {
    /// A message of `len` bytes at `start`, cut to `max`.
    fn new(start: usize, len: usize, max: usize) -> Span {
        Span {
            start,
            end: start + len.min(max),
            truncated: len > max,
        }
    }
}

/// Without trailing LF, CR and NUL bytes.
pub fn trim_terminators(mut data: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | 0] = data {
        data = rest;
    }
    data
}

fn parse_count(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// Up to 16 bytes of the frame start, printable, for error messages.
fn escape_prefix(data: &[u8]) -> String {
    let n = data.len().min(16);
    data[..n].escape_ascii().to_string()
}
