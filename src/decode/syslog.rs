//! The syslog header of a line read from a file or carried in another log (Zeek's
//! `syslog.log` `message` column): RFC 5424 (`<PRI>1 ts host app procid msgid SD msg`,
//! also without `<PRI>`), RFC 3164 (`<PRI>Mar  4 08:59:37 host app[pid]: msg`, `<PRI>`
//! optional), and the BSD layout with an RFC 3339 stamp that rsyslog writes to files
//! (`2024-05-01T10:00:00Z host app: msg`), reported as RFC 3164. Parsing is
//! syslog_loose's; this module gates it, maps its slices back to byte offsets and
//! checks its guesses.
//!
//! Checks: an RFC 3164 tag is only taken as the app name when a `:` follows it (after
//! an optional `[pid]`), so `host action=block src=...` keeps `action=block` in the
//! message; a tag `CEF` followed by `:<digit>` is the start of a CEF record; a host
//! holding `=` is message text. RFC 3164 stamps have no zone and no year: the zone is
//! the configured one, the year the reading year, or the year before when that would
//! put the event more than a day in the future.
//!
//! Cost: a byte check on the line's start, then one syslog_loose parse (no allocation
//! but the structured data list).

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use syslog_loose::{parse_message_with_year_tz, IncompleteDate, Protocol, Variant};

use super::Format;

/// What a syslog header says, as byte ranges of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub format: Format,
    pub time: Option<DateTime<Utc>>,
    pub host: Option<(usize, usize)>,
    pub app: Option<(usize, usize)>,
    /// Where the message starts (the end of the text when there is none).
    pub body: usize,
    /// RFC 5424 structured data parameters: (name, value span inside the quotes).
    pub params: Vec<(String, (usize, usize))>,
}

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

/// Parses the syslog header of `line[start..end]`. `None` when it is not syslog.
pub(crate) fn parse(
    line: &[u8],
    start: usize,
    end: usize,
    tz: FixedOffset,
    now: DateTime<Utc>,
) -> Option<Header> {
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
    let get_year = move |(mo, d, h, mi, s): IncompleteDate| -> i32 {
        let y = now.year();
        let t = NaiveDate::from_ymd_opt(y, mo, d).and_then(|x| x.and_hms_opt(h, mi, s));
        match t {
            Some(t)
                if t - Duration::seconds(tz.local_minus_utc().into())
                    > now.naive_utc() + Duration::days(1) =>
            {
                y - 1
            }
            _ => y,
        }
    };
    let m = parse_message_with_year_tz(text, get_year, Some(tz), Variant::Either);
    let time = m.timestamp?.with_timezone(&Utc);
    let span = |s: &str| offset_in(text, s).map(|o| (start + o, start + o + s.len()));
    // An empty message: the body starts where the valid text ends (at `end` unless
    // the line held invalid UTF-8).
    let mut body = match offset_in(text, m.msg) {
        Some(o) if !m.msg.is_empty() => start + o,
        _ => start + text.len(),
    };
    let mut host = m.hostname.and_then(span);
    let mut app = m.appname.and_then(span);
    let format = match m.protocol {
        Protocol::RFC5424(_) => Format::Syslog5424,
        Protocol::RFC3164 => {
            if let Some((a, e)) = app {
                let is_cef = line[a..end].starts_with(b"CEF:");
                let mut k = e;
                if k < end && line[k] == b'[' {
                    k = memchr::memchr(b']', &line[k..end]).map_or(end, |n| k + n + 1);
                }
                if is_cef || k >= end || line[k] != b':' {
                    app = None;
                    body = body.min(a);
                }
            }
            if let Some((a, e)) = host {
                if memchr::memchr3(b'=', b'{', b'"', &line[a..e]).is_some() {
                    host = None;
                    app = None;
                    body = body.min(a);
                }
            }
            Format::Syslog3164
        }
    };
    let params = m
        .structured_data
        .iter()
        .flat_map(|sd| sd.params.iter())
        .filter_map(|(k, v)| Some((k.to_string(), span(v)?)))
        .collect();
    Some(Header {
        format,
        time: Some(time),
        host,
        app,
        body,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    struct Got {
        format: Format,
        time: String,
        host: Option<String>,
        app: Option<String>,
        body: String,
    }

    fn run(s: &str) -> Option<Got> {
        let b = s.as_bytes();
        let h = parse(b, 0, b.len(), FixedOffset::east_opt(0)?, now())?;
        let text = |sp: (usize, usize)| s[sp.0..sp.1].to_string();
        Some(Got {
            format: h.format,
            time: h.time?.to_rfc3339(),
            host: h.host.map(text),
            app: h.app.map(text),
            body: s[h.body..].to_string(),
        })
    }

    #[test]
    fn rfc3164() {
        let g = run("<34>Nov 24 08:59:37 web01 sshd[411]: Failed password from 1.2.3.4").unwrap();
        assert_eq!(g.format, Format::Syslog3164);
        assert_eq!(g.time, "2026-11-24T08:59:37+00:00");
        assert_eq!(g.host.as_deref(), Some("web01"));
        assert_eq!(g.app.as_deref(), Some("sshd"));
        assert_eq!(g.body, "Failed password from 1.2.3.4");

        // December 31st read on November 25th: last year's.
        let g = run("Dec 31 23:59:59 h kernel: x").unwrap();
        assert_eq!(g.time, "2025-12-31T23:59:59+00:00");
        assert_eq!(g.app.as_deref(), Some("kernel"));
    }

    #[test]
    fn rfc3164_zone_is_configured() {
        let s = b"Nov 24 08:59:37 h app: x";
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        let h = parse(s, 0, s.len(), tz, now()).unwrap();
        assert_eq!(h.time.unwrap().to_rfc3339(), "2026-11-24T06:59:37+00:00");
    }

    #[test]
    fn rfc5424_with_and_without_pri() {
        let s = r#"<165>1 2018-03-24T08:59:37-07:00 PC-helen.jerry.land EvntSLog 42 ID47 [ex@32473 src="10.0.0.1" eventID="1011"] @cee: {"a":1}"#;
        let g = run(s).unwrap();
        assert_eq!(g.format, Format::Syslog5424);
        assert_eq!(g.time, "2018-03-24T15:59:37+00:00");
        assert_eq!(g.host.as_deref(), Some("PC-helen.jerry.land"));
        assert_eq!(g.app.as_deref(), Some("EvntSLog"));
        assert_eq!(g.body, r#"@cee: {"a":1}"#);
        let h = parse(
            s.as_bytes(),
            0,
            s.len(),
            FixedOffset::east_opt(0).unwrap(),
            now(),
        )
        .unwrap();
        let p: Vec<(&str, &str)> = h
            .params
            .iter()
            .map(|(k, sp)| (k.as_str(), &s[sp.0..sp.1]))
            .collect();
        assert_eq!(p, [("src", "10.0.0.1"), ("eventID", "1011")]);

        let g = run("1 2018-03-24T08:59:37-07:00 PC-helen EvntSLog - - - @cee: {}").unwrap();
        assert_eq!(g.format, Format::Syslog5424);
        assert_eq!(g.host.as_deref(), Some("PC-helen"));
        assert_eq!(g.body, "@cee: {}");
    }

    #[test]
    fn rsyslog_file_format_keeps_pairs_in_body() {
        let g = run("2024-05-01T10:00:00Z fw01 action=block src=91.198.51.77").unwrap();
        assert_eq!(g.format, Format::Syslog3164);
        assert_eq!(g.time, "2024-05-01T10:00:00+00:00");
        assert_eq!(g.host.as_deref(), Some("fw01"));
        assert_eq!(g.app, None);
        assert_eq!(g.body, "action=block src=91.198.51.77");
    }

    #[test]
    fn cef_tag_is_body() {
        let g = run("Nov 24 08:59:37 fw CEF:0|V|P|1|2|N|3|src=1.2.3.4").unwrap();
        assert_eq!(g.host.as_deref(), Some("fw"));
        assert_eq!(g.app, None);
        assert_eq!(g.body, "CEF:0|V|P|1|2|N|3|src=1.2.3.4");
    }

    #[test]
    fn invalid_utf8_body_still_runs_to_end() {
        let s = b"<13>Nov 24 08:59:37 host app: \xff\xfe src=1.2.3.4";
        let h = parse(s, 0, s.len(), FixedOffset::east_opt(0).unwrap(), now()).unwrap();
        assert_eq!(&s[h.host.unwrap().0..h.host.unwrap().1], b"host");
        assert!(h.body <= s.len());
        assert!(s[h.body..].ends_with(b"src=1.2.3.4"));
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
            "1 2",
        ] {
            assert!(run(s).is_none(), "{s}");
        }
        assert!(looks_like(b"<13>Nov"));
        assert!(!looks_like(b"Nov"));
    }
}
