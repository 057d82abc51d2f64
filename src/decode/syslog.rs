//! The syslog header of a line: the one parser of syslog headers in tripline (sources
//! only frame). Reads RFC 5424 (`<PRI>1 ts host app procid msgid SD msg`, also without
//! `<PRI>`, and with the NILVALUE `-` for a time, as `logger --rfc5424=notime` sends),
//! RFC 3164 (`<PRI>Mar  4 08:59:37 host app[pid]: msg`, `<PRI>` optional, also with a
//! year and a colon as Cisco ASA writes it: `Mar 04 2024 10:00:01: %ASA-6-302013: ...`),
//! and the BSD layout with an RFC 3339 stamp that rsyslog writes to files
//! (`2024-05-01T10:00:00Z host app: msg`), reported as RFC 3164. A line carried in
//! another log (Zeek's `syslog.log` `message` column) is read the same way.
//!
//! The structure (host, app, structured data, where the message starts) is
//! syslog_loose's; this module gates it, maps its slices back to byte offsets and
//! checks its guesses. The **time** is not syslog_loose's: the stamp is read again
//! from its known place (after `<PRI>` and the version) by the strict parsers of
//! [`super::time`], as written ([`Written`]), so that the decoder applies the source's
//! zone (IANA zones included) and the year rule with its reference.
//!
//! Checks: an RFC 3164 tag is only taken as the app name when a `:` follows it (after
//! an optional `[pid]`) and it holds no `=`, `{` or `"` (`file=C:\x` is a pair), so `host action=block src=...` keeps `action=block` in the
//! message; a tag `CEF` followed by `:<digit>` is the start of a CEF record; a host
//! holding `=`, `{` or `"`, or starting with `%` (a Cisco message id such as
//! `%ASA-6-302013:`) is message text. A UTF-8 byte order mark starting the message is
//! skipped. rsyslog's layout has no `<PRI>` to say it is syslog, and a plain line that
//! starts with a stamp looks the same (`2024-05-01T10:00:00Z evil.com no-host`): there
//! the word after the stamp is a host only when the shape says so: a tag with `:`
//! follows it, or the message is structured (JSON, `@cee:`, CEF, `key=value` first), or
//! it is a one-label name (`fw01`). Otherwise (a dotted name or an address before free
//! text) the line is not syslog: a plain line with a leading time and no host, so a
//! domain or address the line talks about is never taken for the host.
//!
//! Cost: a byte check on the line's start, then one syslog_loose parse (no allocation
//! but the structured data list; a NILVALUE time costs one copy of the line). For the
//! recorder's time and host only, [`quick`] reads the commonest RFC 3164 and rsyslog
//! shape by hand (one pass over the header, no syslog_loose) and gives what
//! [`parse`] gives.

use chrono::Utc;
use syslog_loose::{parse_message_with_year_exact_tz, Message, Protocol, Variant};

use super::time::{self, Written};
use super::Format;

/// What a syslog header says, as byte ranges of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub format: Format,
    /// The header's stamp as written; `None` for a NILVALUE or a stamp the strict
    /// parsers cannot read.
    pub time: Option<Written>,
    pub host: Option<(usize, usize)>,
    pub app: Option<(usize, usize)>,
    /// Where the message starts (the end of the text when there is none).
    pub body: usize,
    /// RFC 5424 structured data parameters: (name, value span inside the quotes).
    pub params: Vec<(String, (usize, usize))>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Stands in for a NILVALUE time, which syslog_loose does not accept.
const PLACEHOLDER_TIME: &str = "1970-01-01T00:00:00Z";

fn is_month(b: &[u8]) -> bool {
    const M: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    b.len() == 3 && M.iter().any(|m| m.eq_ignore_ascii_case(b))
}

fn is_iso_date(b: &[u8]) -> bool {
    b.len() >= 11
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && b[10] == b'T'
}

/// Whether `b` starts like a syslog line: `<PRI>`, an RFC 3164 month, an RFC 3339
/// date with `T`, or RFC 5424's version `1 ` before one.
pub(crate) fn looks_like(b: &[u8]) -> bool {
    let b = match b.first() {
        Some(b'<') => {
            let close = b.iter().take(5).position(|&c| c == b'>');
            return close.is_some_and(|c| c > 1 && b[1..c].iter().all(u8::is_ascii_digit));
        }
        Some(_) => b,
        None => return false,
    };
    if b.len() > 4 && is_month(&b[..3]) && b[3] == b' ' {
        return true;
    }
    is_iso_date(b) || (b.starts_with(b"1 ") && is_iso_date(&b[2..]))
}

/// Byte offset of `inner` in `outer`, when `inner` is a slice of it.
fn offset_in(outer: &str, inner: &str) -> Option<usize> {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    (i >= o && i + inner.len() <= o + outer.len()).then(|| i - o)
}

/// Where an RFC 5424 NILVALUE time is in `b`: `<PRI>VERSION - `.
fn nil_time_at(b: &[u8]) -> Option<usize> {
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b.get(i) != Some(&b'<') {
        return None;
    }
    i += 1;
    let pri = digits(i);
    i += pri;
    if !(1..=3).contains(&pri) || b.get(i) != Some(&b'>') {
        return None;
    }
    i += 1;
    let version = digits(i);
    i += version;
    if !(1..=2).contains(&version) || b.get(i..i + 3) != Some(b" - ") {
        return None;
    }
    Some(i + 1)
}

/// Where the stamp starts in `b` (a syslog line): after whitespace, `<PRI>`, and for
/// RFC 5424 the version and its space; RFC 3164 allows spaces after `<PRI>`.
fn stamp_start(b: &[u8], rfc5424: bool) -> usize {
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    if b.get(i) == Some(&b'<') {
        i += b[i..].iter().position(|&c| c == b'>').map_or(0, |p| p + 1);
    }
    if rfc5424 {
        i += b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += usize::from(b.get(i) == Some(&b' '));
    } else {
        i += b[i..].iter().take_while(|&&c| c == b' ').count();
    }
    i
}

/// The header's stamp as written, read strictly at its place: RFC 5424's is one token
/// (RFC 3339, or `-`), RFC 3164's any stamp [`time::stamp_at`] reads, ended by a space,
/// a colon or the end.
fn stamp(b: &[u8], rfc5424: bool) -> Option<Written> {
    let at = b.get(stamp_start(b, rfc5424)..)?;
    let (w, n) = time::stamp_at(at)?;
    let ends = match at.get(n) {
        None | Some(b' ') => true,
        Some(b':') => !rfc5424,
        _ => false,
    };
    ends.then_some(w)
}

/// The time and host of the commonest syslog shape, read by hand, without
/// syslog_loose: `[<PRI>]Mmm dd hh:mm:ss host tag[pid]: msg` (the stamp exactly 15
/// bytes) and rsyslog's file layout `YYYY-MM-DDThh:mm:ss… host tag[pid]: msg` (no
/// `<PRI>`), with one space between the parts, a host of letters, digits, `.`, `-`,
/// `_` (not only digits), a tag of those and `/` starting with a letter (not `CEF`)
/// and a `:` ending the tag followed by a space or the end. For such a line
/// [`parse`] gives the same time and host (pinned by
/// `decode::tests::quick_header_agrees_with_parse_on_every_fixture_line`); `None` for
/// any other line (then [`parse`] decides). Cost: one pass over the header's bytes.
/// (The decoder reads the two parts apart, to cache stamps: [`quick_spans`].)
#[cfg(test)]
pub(crate) fn quick(line: &[u8], start: usize, end: usize) -> Option<(Written, (usize, usize))> {
    let h = quick_spans(line, start, end)?;
    let w = quick_stamp(line.get(h.stamp.0..h.stamp.1)?)?;
    Some((w, h.host))
}

/// [`quick`]'s header before its stamp is read: where the stamp and the host are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuickHeader {
    pub stamp: (usize, usize),
    pub host: (usize, usize),
}

/// Bytes of a host name (`[A-Za-z0-9._-]`) and of a tag (those and `/`).
const HOST_BYTE: [bool; 256] = byte_class(b"._-");
const TAG_BYTE: [bool; 256] = byte_class(b"._-/");

const fn byte_class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// [`quick`]'s shape checks, all but the stamp's own layout ([`quick_stamp`]): the
/// stamp is the 15 bytes after the month's place, or the ISO date's word; the line is
/// [`quick`]'s exactly when its stamp reads. For a caller that caches stamps.
pub(crate) fn quick_spans(line: &[u8], start: usize, end: usize) -> Option<QuickHeader> {
    let b = line.get(start..end)?;
    let word = |b: &[u8], mut i: usize, class: &[bool; 256]| {
        while i < b.len() && class[usize::from(b[i])] {
            i += 1;
        }
        i
    };
    let iso = is_iso_date(b);
    let mut i = 0;
    let n = if iso {
        memchr::memchr(b' ', b)?
    } else {
        if b.first() == Some(&b'<') {
            let d = b[1..]
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if !(1..=3).contains(&d) || b.get(1 + d) != Some(&b'>') {
                return None;
            }
            i = d + 2;
        }
        let m = b.get(i..i + 4)?;
        let capital = m[0].is_ascii_uppercase() && m[1..3].iter().all(u8::is_ascii_lowercase);
        if !capital || !is_month(&m[..3]) || m[3] != b' ' {
            return None;
        }
        15
    };
    if b.get(i + n) != Some(&b' ') {
        return None;
    }
    let h0 = i + n + 1;
    let h1 = word(b, h0, &HOST_BYTE);
    if h1 == h0 || h1 - h0 > 255 || b.get(h1) != Some(&b' ') {
        return None;
    }
    if b[h0..h1].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let t0 = h1 + 1;
    let mut k = word(b, t0, &TAG_BYTE);
    if k == t0 || !b[t0].is_ascii_alphabetic() || &b[t0..k] == b"CEF" {
        return None;
    }
    if b.get(k) == Some(&b'[') {
        let p = k + 1 + b[k + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if p == k + 1 || b.get(p) != Some(&b']') {
            return None;
        }
        k = p + 1;
    }
    if b.get(k) != Some(&b':') || !matches!(b.get(k + 1), None | Some(b' ')) {
        return None;
    }
    Some(QuickHeader {
        stamp: (start + i, start + i + n),
        host: (start + h0, start + h1),
    })
}

/// The stamp of a [`quick_spans`] header: it must read whole.
pub(crate) fn quick_stamp(stamp: &[u8]) -> Option<Written> {
    let (w, n) = time::stamp_at(stamp)?;
    (n == stamp.len()).then_some(w)
}

/// Parses the syslog header of `line[start..end]`. `None` when it is not syslog.
pub(crate) fn parse(line: &[u8], start: usize, end: usize) -> Option<Header> {
    let bytes = line.get(start..end)?;
    if !looks_like(bytes) {
        return None;
    }
    // The header is ASCII; a message with invalid UTF-8 is cut where it starts, and
    // the body still runs to `end`.
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    };
    // syslog_loose's own time is not used: any year and zone will do for its parse
    // (2000 is a leap year, so `Feb 29` parses).
    let parse = |t| parse_message_with_year_exact_tz(t, |_| 2000, Some(Utc), Variant::Either);
    if let Ok(m) = parse(text) {
        return header(line, start, end, text, text, &m, |o| o, false);
    }
    // A NILVALUE time: parse with a placeholder, then map offsets back.
    let nil = nil_time_at(text.as_bytes())?;
    let patched = format!("{}{PLACEHOLDER_TIME}{}", &text[..nil], &text[nil + 1..]);
    let m = parse(&patched).ok()?;
    if !matches!(m.protocol, Protocol::RFC5424(_)) {
        return None;
    }
    let shift = PLACEHOLDER_TIME.len() - 1;
    let back = move |o: usize| if o > nil { o.saturating_sub(shift) } else { o };
    header(line, start, end, text, &patched, &m, back, true)
}

/// The header of a parsed message. `parsed` is the text syslog_loose read (`text`, or
/// a patched copy whose offsets `back` maps to `text`'s).
#[allow(clippy::too_many_arguments)]
fn header(
    line: &[u8],
    start: usize,
    end: usize,
    text: &str,
    parsed: &str,
    m: &Message<&str>,
    back: impl Fn(usize) -> usize,
    nil_time: bool,
) -> Option<Header> {
    let span = |s: &str| {
        offset_in(parsed, s).map(|o| {
            let o = back(o);
            (start + o, start + o + s.len())
        })
    };
    // An empty message: the body starts where the valid text ends (at `end` unless
    // the line held invalid UTF-8).
    let mut body = match offset_in(parsed, m.msg) {
        Some(o) if !m.msg.is_empty() => start + back(o),
        _ => start + text.len(),
    };
    let mut host = m.hostname.and_then(span);
    let mut app = m.appname.and_then(span);
    let rfc5424 = matches!(m.protocol, Protocol::RFC5424(_));
    let format = if rfc5424 {
        Format::Syslog5424
    } else {
        if let Some((a, e)) = app {
            let is_cef = line[a..end].starts_with(b"CEF:");
            let mut k = e;
            if k < end && line[k] == b'[' {
                k = memchr::memchr(b']', &line[k..end]).map_or(end, |n| k + n + 1);
            }
            let pair = memchr::memchr3(b'=', b'{', b'"', &line[a..e]).is_some();
            if is_cef || pair || k >= end || line[k] != b':' {
                app = None;
                body = body.min(a);
            }
        }
        if let Some((a, e)) = host {
            if line[a] == b'%' || memchr::memchr3(b'=', b'{', b'"', &line[a..e]).is_some() {
                host = None;
                app = None;
                body = body.min(a);
            }
        }
        if let Some((a, e)) = host {
            let bare = line
                .get(start..end)
                .is_some_and(|b| is_iso_date(skip_spaces(b)));
            if bare
                && app.is_none()
                && !is_structured(&line[body..end])
                && !is_single_label(&line[a..e])
            {
                // `2024-05-01T10:00:00Z evil.com no-host`: a plain line with a leading
                // stamp, not rsyslog's layout.
                return None;
            }
        }
        Format::Syslog3164
    };
    if line.get(body..end).is_some_and(|b| b.starts_with(BOM)) {
        body += BOM.len();
    }
    let params = m
        .structured_data
        .iter()
        .flat_map(|sd| sd.params.iter())
        .filter_map(|(k, v)| Some((k.to_string(), span(v)?)))
        .collect();
    let time = if nil_time {
        None
    } else {
        stamp(line.get(start..end).unwrap_or_default(), rfc5424)
    };
    Some(Header {
        format,
        time,
        host,
        app,
        body,
        params,
    })
}

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// A message that says it is one: JSON, `@cee:`, CEF, or a first word `key=value`.
fn is_structured(msg: &[u8]) -> bool {
    let msg = skip_spaces(msg);
    let word = msg.split(|&c| c == b' ').next().unwrap_or_default();
    msg.starts_with(b"{")
        || msg.starts_with(b"@cee:")
        || msg.starts_with(b"CEF:")
        || word.iter().position(|&c| c == b'=').is_some_and(|i| i > 0)
}

/// A host name of one label (`fw01`, `web-2`): no dot, so it cannot be a domain or an
/// address that a message talks about.
fn is_single_label(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Zone;
    use chrono::{DateTime, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Got {
        format: Format,
        time: Option<String>,
        host: Option<String>,
        app: Option<String>,
        body: String,
    }

    fn run_in(s: &[u8], zone: &Zone) -> Option<Got> {
        let h = parse(s, 0, s.len())?;
        let text = |sp: (usize, usize)| String::from_utf8_lossy(&s[sp.0..sp.1]).into_owned();
        Some(Got {
            format: h.format,
            time: h
                .time
                .and_then(|w| w.resolve(zone, now()))
                .map(|t| t.to_rfc3339()),
            host: h.host.map(text),
            app: h.app.map(text),
            body: String::from_utf8_lossy(&s[h.body..]).into_owned(),
        })
    }

    fn run(s: &str) -> Option<Got> {
        run_in(s.as_bytes(), &Zone::utc())
    }

    /// (line, format, time, host, app, message)
    type Row = (
        &'static str,
        Format,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );

    #[test]
    fn headers() {
        use Format::{Syslog3164 as B, Syslog5424 as I};
        let rows: &[Row] = &[
            (
                "<34>Nov 24 08:59:37 web01 sshd[411]: Failed password from 1.2.3.4",
                B,
                Some("2026-11-24T08:59:37+00:00"),
                Some("web01"),
                Some("sshd"),
                "Failed password from 1.2.3.4",
            ),
            // December 31st read on November 25th: last year's.
            (
                "Dec 31 23:59:59 h kernel: x",
                B,
                Some("2025-12-31T23:59:59+00:00"),
                Some("h"),
                Some("kernel"),
                "x",
            ),
            (
                "<34>Feb 29 10:00:00 h app: x",
                B,
                Some("2024-02-29T10:00:00+00:00"),
                Some("h"),
                Some("app"),
                "x",
            ),
            // Cisco ASA: a year, a colon after the stamp, a message id that is no host.
            (
                "<166>Mar 04 2024 10:00:01: %ASA-6-302013: Built outbound TCP connection",
                B,
                Some("2024-03-04T10:00:01+00:00"),
                None,
                None,
                "%ASA-6-302013: Built outbound TCP connection",
            ),
            (
                "Mar 04 2024 10:00:01 fw01 : %ASA-6-302013: Built",
                B,
                Some("2024-03-04T10:00:01+00:00"),
                Some("fw01"),
                None,
                "%ASA-6-302013: Built",
            ),
            (
                r#"<165>1 2018-03-24T08:59:37-07:00 PC-helen.jerry.land EvntSLog 42 ID47 [ex@32473 src="10.0.0.1" eventID="1011"] @cee: {"a":1}"#,
                I,
                Some("2018-03-24T15:59:37+00:00"),
                Some("PC-helen.jerry.land"),
                Some("EvntSLog"),
                r#"@cee: {"a":1}"#,
            ),
            (
                "1 2018-03-24T08:59:37-07:00 PC-helen EvntSLog - - - @cee: {}",
                I,
                Some("2018-03-24T15:59:37+00:00"),
                Some("PC-helen"),
                Some("EvntSLog"),
                "@cee: {}",
            ),
            // NILVALUE time (`logger --rfc5424=notime`): syslog, without a time.
            (
                "<13>1 - myhost tag - - - text after a nil time",
                I,
                None,
                Some("myhost"),
                Some("tag"),
                "text after a nil time",
            ),
            (
                "<13>1 - h app - - [a@1 x=\"y\"]",
                I,
                None,
                Some("h"),
                Some("app"),
                "",
            ),
            // A byte order mark starting the message is skipped.
            (
                "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \u{FEFF}%% It's time",
                I,
                Some("2003-08-24T12:14:15.000003+00:00"),
                Some("192.0.2.1"),
                Some("myproc"),
                "%% It's time",
            ),
            (
                "<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 x=\"y\"][b@2 z=\"]\"] \u{FEFF}text",
                I,
                Some("2003-10-11T22:14:15.003+00:00"),
                Some("h"),
                Some("app"),
                "text",
            ),
            (
                "2024-05-01T10:00:00Z fw01 action=block src=91.198.51.77",
                B,
                Some("2024-05-01T10:00:00+00:00"),
                Some("fw01"),
                None,
                "action=block src=91.198.51.77",
            ),
            // rsyslog's layout: a one-label host before free text, any host before a
            // tag or a structured message.
            (
                "2024-05-01T10:00:03Z fw01 blocked a connection",
                B,
                Some("2024-05-01T10:00:03+00:00"),
                Some("fw01"),
                None,
                "blocked a connection",
            ),
            (
                "2024-05-01T10:00:03Z web01.example.com sshd[7]: x",
                B,
                Some("2024-05-01T10:00:03+00:00"),
                Some("web01.example.com"),
                Some("sshd"),
                "x",
            ),
            (
                "2024-05-01T10:00:03Z web01.example.com a=1",
                B,
                Some("2024-05-01T10:00:03+00:00"),
                Some("web01.example.com"),
                None,
                "a=1",
            ),
            // With `<PRI>` the header says it is syslog: the host is where syslog puts it.
            (
                "<13>2024-05-01T10:00:03Z evil.com no-host",
                B,
                Some("2024-05-01T10:00:03+00:00"),
                Some("evil.com"),
                None,
                "no-host",
            ),
            (
                "Nov 24 08:59:37 fw CEF:0|V|P|1|2|N|3|src=1.2.3.4",
                B,
                Some("2026-11-24T08:59:37+00:00"),
                Some("fw"),
                None,
                "CEF:0|V|P|1|2|N|3|src=1.2.3.4",
            ),
            // A `key=value` pair is no tag, even when a colon follows (a Windows path).
            (
                "2024-05-01T10:00:19Z av01 file=C:\\x md5=44D8",
                B,
                Some("2024-05-01T10:00:19+00:00"),
                Some("av01"),
                None,
                "file=C:\\x md5=44D8",
            ),
            // A tag that no colon follows is message text.
            (
                "<13>Nov 24 08:59:37 host key=\"v\" app: x",
                B,
                Some("2026-11-24T08:59:37+00:00"),
                Some("host"),
                None,
                "key=\"v\" app: x",
            ),
        ];
        for &(line, format, time, host, app, body) in rows {
            let want = Got {
                format,
                time: time.map(str::to_owned),
                host: host.map(str::to_owned),
                app: app.map(str::to_owned),
                body: body.to_owned(),
            };
            assert_eq!(run(line), Some(want), "{line}");
        }
    }

    #[test]
    fn rfc3164_zone_is_the_sources() {
        let s = b"Nov 24 08:59:37 h app: x";
        let plus2 = Zone::parse("+02:00").unwrap();
        assert_eq!(
            run_in(s, &plus2).unwrap().time.as_deref(),
            Some("2026-11-24T06:59:37+00:00")
        );
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let july = b"Jul 24 08:59:37 h app: x";
        assert_eq!(
            run_in(july, &berlin).unwrap().time.as_deref(),
            Some("2026-07-24T06:59:37+00:00")
        );
        // RFC 5424 and rsyslog stamps carry their zone: the source's is not used.
        let s = b"<34>1 2003-10-11T22:14:15.003Z h su - ID47 - x";
        assert_eq!(
            run_in(s, &plus2).unwrap().time.as_deref(),
            Some("2003-10-11T22:14:15.003+00:00")
        );
    }

    #[test]
    fn params_map_to_their_values() {
        let s = r#"<165>1 2018-03-24T08:59:37-07:00 h a 42 ID47 [ex@32473 src="10.0.0.1" eventID="1011"] m"#;
        let h = parse(s.as_bytes(), 0, s.len()).unwrap();
        let p: Vec<(&str, &str)> = h
            .params
            .iter()
            .map(|(k, sp)| (k.as_str(), &s[sp.0..sp.1]))
            .collect();
        assert_eq!(p, [("src", "10.0.0.1"), ("eventID", "1011")]);
        // With a NILVALUE time the offsets are mapped back to the line.
        let s = r#"<165>1 - h a - - [ex@1 src="10.0.0.2"] m"#;
        let h = parse(s.as_bytes(), 0, s.len()).unwrap();
        assert_eq!(&s[h.params[0].1 .0..h.params[0].1 .1], "10.0.0.2");
        assert_eq!(&s[h.host.unwrap().0..h.host.unwrap().1], "h");
    }

    #[test]
    fn invalid_utf8_body_still_runs_to_end() {
        let s = b"<13>Nov 24 08:59:37 host app: \xff\xfe src=1.2.3.4";
        let h = parse(s, 0, s.len()).unwrap();
        assert_eq!(&s[h.host.unwrap().0..h.host.unwrap().1], b"host");
        assert!(h.body <= s.len());
        assert!(s[h.body..].ends_with(b"src=1.2.3.4"));
    }

    #[test]
    fn unreadable_stamp_is_syslog_without_time() {
        // syslog_loose takes one-digit hours; the strict parser does not guess.
        let g = run("<13>Nov 24 8:59:37 host app: x").unwrap();
        assert_eq!((g.time, g.host.as_deref()), (None, Some("host")));
    }

    #[test]
    fn not_syslog() {
        for s in [
            "",
            "<",
            "<x>",
            "<1234567>",
            "hello world",
            "March 4 is a date",
            "2024-05-01 10:00:00 x",
            "Mar",
            "<13>",
            "<13>garbage",
            "<13>0123456789ab",
            "<13>short",
            "1 2",
            "<13>1 -",
            "<13>Feb 30 10:00:00 h app: x",
            "<13>Feb 29 2023 10:00:00 h app: x",
            // A leading stamp, then a dotted name and free text: a plain line.
            "2024-05-01T10:00:00Z evil.com no-host",
            "2024-05-01T10:00:00Z 91.198.51.77 blocked",
        ] {
            assert!(run(s).is_none(), "{s}");
        }
        assert!(looks_like(b"<13>Nov"));
        assert!(!looks_like(b"Nov"));
    }
}
