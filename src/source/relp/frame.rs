//! RELP framing: cuts a byte stream into frames and writes the few frames a server
//! sends (`rsp` answers, the `serverclose` hint), with the `open` offers in between.
//!
//! The frame, as librelp reads it (doc/relp.md of rsyslog/librelp):
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`, where TXNR and DATALEN are 1 to 9 decimal
//! digits, COMMAND 1 to 32 ASCII letters, and DATA exactly DATALEN bytes (any byte, LF
//! included) that are present, after one space, only when DATALEN is not 0. An answer
//! is the frame `TXNR rsp DATALEN CODE SP TEXT [LF DATA]`, CODE 200 (OK) or 500.
//!
//! Invariants and costs:
//! - Nothing here panics on any input: a byte that cannot start or continue a frame
//!   is a [`FrameError`], after which the decoder yields nothing more (the caller
//!   closes the connection, as the RELP spec asks: there is no way to find the next
//!   frame in a broken stream, and the client resends what was not answered).
//! - The data of a frame longer than `max_data` bytes is **truncated**: its first
//!   `max_data` bytes are kept ([`Frame::truncated`]) and the rest is read and
//!   dropped as it arrives, so a DATALEN of 999,999,999 costs time, never memory.
//! - Memory: one frame's kept data, a header (at most [`MAX_HEADER`] bytes) and one
//!   read ([`READ_CHUNK`]). Each byte is looked at once; kept data is copied once,
//!   from the read buffer into the frame's `Vec` (which becomes the `Line`).

use std::io::Write as _;

use crate::source::framing::READ_CHUNK;

/// The largest transaction number; the one after it is 1.
pub const MAX_TXNR: u32 = 999_999_999;
/// TXNR and DATALEN have at most this many digits.
const MAX_DIGITS: usize = 9;
/// A command has at most this many letters.
pub const MAX_COMMAND: usize = 32;
/// The longest header: TXNR SP COMMAND SP DATALEN SP.
pub const MAX_HEADER: usize = MAX_DIGITS + 1 + MAX_COMMAND + 1 + MAX_DIGITS + 1;

/// The hint a server sends (TXNR 0, no answer expected) before it closes a connection.
pub const SERVERCLOSE: &[u8] = b"0 serverclose 0\n";

/// The highest protocol version answered (librelp clients offer 0, the experimental
/// version that every deployed peer speaks; the spec's version 1 is the same frames).
pub const RELP_VERSION: u32 = 1;

/// The transaction number after `txnr`: they count up from 1 and wrap after
/// [`MAX_TXNR`].
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR {
        1
    } else {
        txnr + 1
    }
}

/// A frame's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Open,
    Syslog,
    Close,
    /// An answer: only a server sends these.
    Rsp,
    /// Any other command (letters only, at most [`MAX_COMMAND`]).
    Other(String),
}

impl Command {
    fn from_name(name: &[u8]) -> Command {
        match name {
            b"open" => Command::Open,
            b"syslog" => Command::Syslog,
            b"close" => Command::Close,
            b"rsp" => Command::Rsp,
            other => Command::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Close => "close",
            Command::Rsp => "rsp",
            Command::Other(name) => name,
        }
    }
}

/// One frame read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// 0 for a hint, else the number the answer must carry.
    pub txnr: u32,
    pub command: Command,
    /// The data: at most `max_data` bytes of it.
    pub data: Vec<u8>,
    /// DATALEN as sent.
    pub datalen: usize,
    /// DATALEN was more than `max_data`: `data` holds its start.
    pub truncated: bool,
}

/// Why a stream cannot be framed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header is not `TXNR SP COMMAND SP DATALEN` followed by LF (DATALEN 0) or SP.
    #[error("malformed RELP frame header ({what}): {prefix}")]
    Header { what: &'static str, prefix: String },
    /// The byte after DATALEN bytes of data is not LF.
    #[error("RELP frame {txnr} ({command}) does not end with LF after its {datalen} data bytes: got {got:#04x}")]
    Trailer {
        txnr: u32,
        command: String,
        datalen: usize,
        got: u8,
    },
}

/// A parsed header, before the frame's data.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Head {
    txnr: u32,
    command: Command,
    datalen: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// At a frame boundary, or inside a header whose bytes are all still buffered.
    Header,
    /// Reading data: `left` bytes of it still to come (kept up to `max_data`).
    Data {
        head: Head,
        data: Vec<u8>,
        left: usize,
    },
    /// All data read; the LF must come next.
    Trailer { head: Head, data: Vec<u8> },
    /// A framing error happened; nothing more is decoded.
    Failed,
}

/// Cuts a byte stream into RELP frames. Read into
/// [`buffer_for_read`](Self::buffer_for_read) (or [`extend`](Self::extend)), then call
/// [`decode`](Self::decode) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    pos: usize,
    max_data: usize,
    state: State,
}

impl FrameDecoder {
    /// `max_data` (the longest data kept per frame) is clamped to at least 1.
    pub fn new(max_data: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            pos: 0,
            max_data: max_data.max(1),
            state: State::Header,
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

    /// True when the bytes read so far end inside a frame (at end of stream: a frame
    /// was cut).
    pub fn is_mid_frame(&self) -> bool {
        self.state != State::Header || self.pos < self.buf.len()
    }

    /// True after a [`FrameError`].
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

    fn fail(&mut self, e: FrameError) -> Result<Option<Frame>, FrameError> {
        self.state = State::Failed;
        self.pos = self.buf.len();
        Err(e)
    }

    /// The next complete frame; `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            let available = &self.buf[self.pos..];
            match std::mem::replace(&mut self.state, State::Header) {
                State::Failed => {
                    self.state = State::Failed;
                    self.pos = self.buf.len();
                    return Ok(None);
                }
                State::Header => match parse_header(available) {
                    Ok(None) => return Ok(None),
                    Err(e) => return self.fail(e),
                    Ok(Some((head, used))) => {
                        self.pos += used;
                        self.state = if head.datalen == 0 {
                            State::Trailer {
                                head,
                                data: Vec::new(),
                            }
                        } else {
                            // Grown as data comes: a large DATALEN reserves nothing.
                            let cap = head.datalen.min(self.max_data).min(4 * READ_CHUNK);
                            State::Data {
                                left: head.datalen,
                                data: Vec::with_capacity(cap),
                                head,
                            }
                        };
                    }
                },
                State::Data {
                    head,
                    mut data,
                    left,
                } => {
                    let n = left.min(available.len());
                    let keep = self.max_data.saturating_sub(data.len()).min(n);
                    data.extend_from_slice(&available[..keep]);
                    self.pos += n;
                    let left = left - n;
                    if left > 0 {
                        self.state = State::Data { head, data, left };
                        return Ok(None);
                    }
                    self.state = State::Trailer { head, data };
                }
                State::Trailer { head, data } => match available.first() {
                    None => {
                        self.state = State::Trailer { head, data };
                        return Ok(None);
                    }
                    Some(b'\n') => {
                        self.pos += 1;
                        return Ok(Some(Frame {
                            txnr: head.txnr,
                            truncated: head.datalen > self.max_data,
                            datalen: head.datalen,
                            command: head.command,
                            data,
                        }));
                    }
                    Some(&got) => {
                        return self.fail(FrameError::Trailer {
                            txnr: head.txnr,
                            command: head.command.name().to_owned(),
                            datalen: head.datalen,
                            got,
                        })
                    }
                },
            }
        }
    }
}

/// A header at the start of `b`, and the bytes it takes (with the space before the
/// data; for DATALEN 0 not the LF, which is the trailer). `Ok(None)`: what is there
/// starts a header, more bytes are needed.
fn parse_header(b: &[u8]) -> Result<Option<(Head, usize)>, FrameError> {
    let bad = |what: &'static str| FrameError::Header {
        what,
        prefix: escape_prefix(b),
    };
    // TXNR SP
    let Some((txnr, mut i)) = number(b, 0).map_err(|()| bad("transaction number"))? else {
        return Ok(None);
    };
    // COMMAND SP
    let letters = b[i..]
        .iter()
        .take(MAX_COMMAND + 1)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    if letters > MAX_COMMAND {
        return Err(bad("command longer than 32 letters"));
    }
    let Some(&after) = b.get(i + letters) else {
        return Ok(None);
    };
    if letters == 0 || after != b' ' {
        return Err(bad("command"));
    }
    let command = Command::from_name(&b[i..i + letters]);
    i += letters + 1;
    // DATALEN, then SP (data follows) or, for DATALEN 0, the trailer.
    let digits = b[i..]
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits > MAX_DIGITS {
        return Err(bad("DATALEN longer than 9 digits"));
    }
    let Some(&after) = b.get(i + digits) else {
        return Ok(None);
    };
    if digits == 0 {
        return Err(bad("DATALEN"));
    }
    let datalen = parse_digits(&b[i..i + digits]);
    i += digits;
    if datalen > 0 {
        if after != b' ' {
            return Err(bad("no space between DATALEN and data"));
        }
        i += 1;
    }
    let txnr = u32::try_from(txnr).map_err(|_| bad("transaction number"))?;
    let datalen = usize::try_from(datalen).map_err(|_| bad("DATALEN"))?;
    Ok(Some((
        Head {
            txnr,
            command,
            datalen,
        },
        i,
    )))
}

/// 1 to 9 digits at `b[at..]` followed by a space: the number and where the next
/// field starts. `Ok(None)`: a valid start, cut short. `Err`: not such a field.
fn number(b: &[u8], at: usize) -> Result<Option<(u64, usize)>, ()> {
    let rest = b.get(at..).unwrap_or_default();
    let digits = rest
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits > MAX_DIGITS {
        return Err(());
    }
    match rest.get(digits) {
        None => Ok(None),
        Some(b' ') if digits > 0 => Ok(Some((parse_digits(&rest[..digits]), at + digits + 1))),
        Some(_) => Err(()),
    }
}

/// At most 9 ASCII digits as a number (no overflow: 999,999,999 fits).
fn parse_digits(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d.wrapping_sub(b'0') % 10))
}

/// The first bytes of `b`, escaped, for an error message.
fn escape_prefix(b: &[u8]) -> String {
    let shown: String = b
        .iter()
        .take(MAX_HEADER)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > MAX_HEADER {
        format!("\"{shown}\"…")
    } else {
        format!("\"{shown}\"")
    }
}

// ---------------------------------------------------------------------------------------
// What a server sends

/// Appends the answer `TXNR rsp DATALEN BODY LF` to `out`.
pub fn push_rsp(out: &mut Vec<u8>, txnr: u32, body: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{txnr} rsp {}", body.len());
    if !body.is_empty() {
        out.push(b' ');
        out.extend_from_slice(body);
    }
    out.push(b'\n');
}

/// Why an `open` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("no relp_version offer")]
    NoVersion,
    #[error("relp_version is not a number")]
    BadVersion,
}

/// The body of the answer to an `open` whose data (the client's offers) is `offers`:
/// `200 OK`, then the offers accepted, one a line: the protocol version (the client's,
/// at most [`RELP_VERSION`]), this software, and `commands=syslog` when the client
/// offered it. An offer is `NAME[=VALUE[,VALUE…]]`; unknown offers are ignored.
pub fn open_answer(offers: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut version = None;
    let mut syslog = false;
    for line in offers.split(|&c| c == b'\n') {
        let (name, values) = match line.iter().position(|&c| c == b'=') {
            Some(eq) => (&line[..eq], &line[eq + 1..]),
            None => (line, &b""[..]),
        };
        let mut values = values.split(|&c| c == b',').filter(|v| !v.is_empty());
        match name {
            b"relp_version" => {
                let v = values.next().ok_or(OpenError::NoVersion)?;
                let ok = !v.is_empty() && v.len() <= MAX_DIGITS && v.iter().all(u8::is_ascii_digit);
                if !ok {
                    return Err(OpenError::BadVersion);
                }
                version = Some(u32::try_from(parse_digits(v)).unwrap_or(u32::MAX));
            }
            b"commands" => syslog |= values.any(|v| v == b"syslog"),
            _ => {}
        }
    }
    let version = version.ok_or(OpenError::NoVersion)?.min(RELP_VERSION);
    let mut body = Vec::with_capacity(96);
    let _ = write!(
        body,
        "200 OK\nrelp_version={version}\nrelp_software=tripline,{}\ncommands={}",
        env!("CARGO_PKG_VERSION"),
        if syslog { "syslog" } else { "" }
    );
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]], max: usize) -> (Vec<Frame>, Option<FrameError>) {
        let mut d = FrameDecoder::new(max);
        let mut frames = Vec::new();
        for chunk in chunks {
            d.extend(chunk);
            loop {
                match d.decode() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    fn frame(txnr: u32, command: Command, data: &[u8], datalen: usize) -> Frame {
        Frame {
            txnr,
            command,
            data: data.to_vec(),
            datalen,
            truncated: datalen > data.len(),
        }
    }

    /// Chunks as read, `max_data`, the frames expected, and whether an error ends them.
    type Case = (&'static [&'static [u8]], usize, Vec<Frame>, bool);

    #[test]
    fn frames_table() {
        let cases: Vec<Case> = vec![
            (
                // DATALEN 13 stops one byte short of the LF: a trailer error.
                &[b"1 open 13 relp_version=0\n"],
                64,
                vec![],
                true,
            ),
            (
                &[b"1 open 14 relp_version=0\n"],
                64,
                vec![frame(1, Command::Open, b"relp_version=0", 14)],
                false,
            ),
            (
                &[b"2 close 0\n"],
                64,
                vec![frame(2, Command::Close, b"", 0)],
                false,
            ),
            (
                // Pipelined, data holding LF and NUL.
                &[b"2 syslog 3 a\nb\n3 syslog 2 c\0\n4 close 0\n"],
                64,
                vec![
                    frame(2, Command::Syslog, b"a\nb", 3),
                    frame(3, Command::Syslog, b"c\0", 2),
                    frame(4, Command::Close, b"", 0),
                ],
                false,
            ),
            (
                // Split at every byte boundary of interest.
                &[
                    b"1", b"0 sys", b"log ", b"1", b"1 ", b"hello", b" world", b"\n",
                ],
                64,
                vec![frame(10, Command::Syslog, b"hello world", 11)],
                false,
            ),
            (
                // Oversized: truncated, the rest skipped, the next frame intact.
                &[b"5 syslog 10 0123456789\n6 syslog 1 x\n"],
                4,
                vec![
                    frame(5, Command::Syslog, b"0123", 10),
                    frame(6, Command::Syslog, b"x", 1),
                ],
                false,
            ),
            (
                &[b"5 syslog 10 01", b"2345", b"6789", b"\n"],
                4,
                vec![frame(5, Command::Syslog, b"0123", 10)],
                false,
            ),
            (
                &[b"0 serverclose 0\n7 Foo 0\n"],
                64,
                vec![
                    frame(0, Command::Other("serverclose".into()), b"", 0),
                    frame(7, Command::Other("Foo".into()), b"", 0),
                ],
                false,
            ),
            (
                &[b"999999999 syslog 000000001 x\n"],
                64,
                vec![frame(999_999_999, Command::Syslog, b"x", 1)],
                false,
            ),
            // Errors.
            (&[b"x syslog 1 a\n"], 64, vec![], true),
            (&[b"1000000000 syslog 1 a\n"], 64, vec![], true),
            (&[b"1 syslog 1000000000 a\n"], 64, vec![], true),
            (&[b"1 syslog -1 a\n"], 64, vec![], true),
            (&[b"1 sys1og 1 a\n"], 64, vec![], true),
            (&[b"1  1 a\n"], 64, vec![], true),
            (&[b" 1 syslog 1 a\n"], 64, vec![], true),
            (&[b"1 syslog 1a\n"], 64, vec![], true), // no space before the data
            (&[b"1 syslog 0 \n"], 64, vec![], true), // DATALEN 0 then a space
            (&[b"1 syslog 2 abc\n"], 64, vec![], true),
            (&[b"1 syslog 2 a\n"], 64, vec![], false), // cut short: waits for more
            (&[b"1 syslog\n"], 64, vec![], true),
            (&[b"1\n"], 64, vec![], true),
            (&[b"\n"], 64, vec![], true),
            (
                &[b"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n"], // 33 letters
                64,
                vec![],
                true,
            ),
            (
                &[b"1 syslog 1 a\n", b"GET / HTTP/1.1\r\n"],
                64,
                vec![frame(1, Command::Syslog, b"a", 1)],
                true,
            ),
        ];
        for (chunks, max, want, want_err) in cases {
            let (got, err) = decode_all(chunks, max);
            assert_eq!(got, want, "{chunks:?}");
            assert_eq!(err.is_some(), want_err, "{chunks:?}: {err:?}");
            if let Some(e) = err {
                assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn the_same_frames_however_the_reads_split_them() {
        let mut stream = Vec::new();
        for (txnr, cmd, data) in [
            (
                1,
                "open",
                &b"relp_version=0\nrelp_software=x\ncommands=syslog"[..],
            ),
            (2, "syslog", b"<13>a b"),
            (3, "syslog", b"<13>0123456789"),
            (4, "close", b""),
        ] {
            let _ = write!(stream, "{txnr} {cmd} {}", data.len());
            if !data.is_empty() {
                stream.push(b' ');
                stream.extend_from_slice(data);
            }
            stream.push(b'\n');
        }
        let stream = &stream[..];
        let (whole, err) = decode_all(&[stream], 8);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(whole.len(), 4);
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                decode_all(&[a, b], 8),
                (whole.clone(), None),
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_all(&bytes, 8), (whole, None));
    }

    #[test]
    fn after_an_error_nothing_more() {
        let mut d = FrameDecoder::new(16);
        d.extend(b"1 syslog 1 ab\n2 syslog 1 c\n");
        assert!(d.decode().is_err());
        assert!(d.is_failed());
        assert_eq!(d.decode(), Ok(None));
        d.extend(b"3 syslog 1 c\n");
        assert_eq!(d.decode(), Ok(None));
    }

    #[test]
    fn mid_frame() {
        let mut d = FrameDecoder::new(16);
        assert!(!d.is_mid_frame());
        d.extend(b"1 syslog 3 a");
        assert_eq!(d.decode(), Ok(None));
        assert!(d.is_mid_frame());
        d.extend(b"bc\n");
        assert!(d.decode().unwrap().is_some());
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn answers() {
        let mut out = Vec::new();
        push_rsp(&mut out, 7, b"200 OK");
        push_rsp(&mut out, 8, b"");
        assert_eq!(out, b"7 rsp 6 200 OK\n8 rsp 0\n");
        // An answer is itself a well-formed frame.
        let (frames, err) = decode_all(&[&out], 64);
        assert_eq!(err, None);
        assert_eq!(frames[0], frame(7, Command::Rsp, b"200 OK", 6));
        let (frames, err) = decode_all(&[SERVERCLOSE], 64);
        assert_eq!(err, None);
        assert_eq!(frames[0].command, Command::Other("serverclose".into()));
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }

    #[test]
    fn open_offers_table() {
        let sw = format!("relp_software=tripline,{}", env!("CARGO_PKG_VERSION"));
        // (client offers, answer or error)
        let cases: Vec<(&[u8], Result<String, OpenError>)> = vec![
            (
                b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog",
                Ok(format!("200 OK\nrelp_version=0\n{sw}\ncommands=syslog")),
            ),
            (
                b"commands=foo,syslog\nrelp_version=7",
                Ok(format!("200 OK\nrelp_version=1\n{sw}\ncommands=syslog")),
            ),
            (
                b"relp_version=1",
                Ok(format!("200 OK\nrelp_version=1\n{sw}\ncommands=")),
            ),
            (b"commands=syslog", Err(OpenError::NoVersion)),
            (b"", Err(OpenError::NoVersion)),
            (b"relp_version=", Err(OpenError::NoVersion)),
            (b"relp_version=x", Err(OpenError::BadVersion)),
            (b"relp_version=1234567890", Err(OpenError::BadVersion)),
            (b"\xff\xfe=\n=\n,,,\nrelp_version=0", Ok(format!("200 OK\nrelp_version=0\n{sw}\ncommands="))),
        ];
        for (offers, want) in cases {
            let got = open_answer(offers).map(|b| String::from_utf8(b).unwrap());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(offers));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_garbage(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..16),
            max in 1usize..32,
        ) {
            let mut d = FrameDecoder::new(max);
            for c in &chunks {
                d.extend(c);
                while let Ok(Some(f)) = d.decode() {
                    proptest::prop_assert!(f.data.len() <= max);
                    proptest::prop_assert!(f.txnr <= MAX_TXNR);
                }
            }
            let _ = open_answer(&chunks.concat());
        }

        #[test]
        fn encoded_frames_round_trip(
            frames in proptest::collection::vec(
                (0u32..=MAX_TXNR, "[a-zA-Z]{1,32}", proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                1..8,
            ),
            cut in 0usize..400,
            max in 1usize..48,
        ) {
            let mut stream = Vec::new();
            for (txnr, cmd, data) in &frames {
                let _ = write!(stream, "{txnr} {cmd} {}", data.len());
                if !data.is_empty() {
                    stream.push(b' ');
                    stream.extend_from_slice(data);
                }
                stream.push(b'\n');
            }
            let cut = cut.min(stream.len());
            let (got, err) = decode_all(&[&stream[..cut], &stream[cut..]], max);
            proptest::prop_assert_eq!(err, None);
            proptest::prop_assert_eq!(got.len(), frames.len());
            for (f, (txnr, cmd, data)) in got.iter().zip(&frames) {
                proptest::prop_assert_eq!(f.txnr, *txnr);
                proptest::prop_assert_eq!(f.command.name(), cmd.as_str());
                proptest::prop_assert_eq!(&f.data[..], &data[..data.len().min(max)]);
                proptest::prop_assert_eq!(f.truncated, data.len() > max);
            }
        }
    }
}
