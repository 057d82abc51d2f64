//! The event's own time, read from a log line.
//!
//! Recognised, in this order: an epoch timestamp starting the line (Zeek TSV) or in a
//! JSON `ts` field (Zeek JSON); RFC 3339 / ISO 8601 anywhere (`2024-03-01T10:00:00Z`,
//! with or without zone, `T` or space, fractions; Suricata's `+0000` zones); Apache's
//! `[17/May/2015:10:05:03 +0000]`; RFC 3164 syslog `Mar  4 08:59:37` at the start of the
//! line (after an optional `<PRI>`), which has no year or zone: the zone is UTC and the
//! year the reading year, or the year before when that would put the event more than a
//! day in the future.
//!
//! Cost: a few regex searches, so callers parse only lines that matched.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::bytes::Regex;

struct Patterns {
    epoch_start: Regex,
    json_ts: Regex,
    iso: Regex,
    apache: Regex,
    syslog: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        epoch_start: Regex::new(r"^([0-9]{10})(?:\.([0-9]{1,9}))?[\t ]").expect("static regex"),
        json_ts: Regex::new(r#""ts"\s*:\s*([0-9]{10})(?:\.([0-9]{1,9}))?"#).expect("static regex"),
        iso: Regex::new(
            r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?(Z|z|[+-][0-9]{2}:?[0-9]{2})?",
        )
        .expect("static regex"),
        apache: Regex::new(
            r"\[([0-9]{2})/([A-Za-z]{3})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})\]",
        )
        .expect("static regex"),
        syslog: Regex::new(r"^(?:<[0-9]{1,3}>)?([A-Z][a-z]{2}) {1,2}([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\b")
            .expect("static regex"),
    })
}

fn num(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn nanos(b: Option<&[u8]>) -> u32 {
    let Some(b) = b else { return 0 };
    let mut n: u32 = 0;
    for i in 0..9 {
        n = n * 10 + b.get(i).map_or(0, |d| (d - b'0') as u32);
    }
    n
}

fn month(name: &[u8]) -> Option<u32> {
    const M: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = name.to_ascii_lowercase();
    M.iter()
        .position(|m| *m == lower.as_slice())
        .map(|i| i as u32 + 1)
}

/// Zone offset in seconds from `Z`, `+hh:mm` or `+hhmm`.
fn zone(b: Option<&[u8]>) -> Option<i32> {
    let b = match b {
        None => return Some(0),
        Some(b) => b,
    };
    if b.eq_ignore_ascii_case(b"z") {
        return Some(0);
    }
    let sign = if b[0] == b'-' { -1 } else { 1 };
    let digits: Vec<u8> = b[1..]
        .iter()
        .copied()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let h = num(&digits[..2])? as i32;
    let m = num(&digits[2..])? as i32;
    Some(sign * (h * 3600 + m * 60))
}

#[allow(clippy::too_many_arguments)]
fn from_parts(
    y: i32,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    ns: u32,
    off: i32,
) -> Option<DateTime<Utc>> {
    let naive: NaiveDateTime = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, s, ns)?;
    let utc = naive - chrono::Duration::seconds(off as i64);
    Some(Utc.from_utc_datetime(&utc))
}

/// The time the line itself gives, if any. `now` is used for the year of RFC 3164
/// timestamps.
pub fn event_time(line: &[u8], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let p = patterns();
    let head = &line[..line.len().min(4096)];
    for re in [&p.epoch_start, &p.json_ts] {
        if let Some(c) = re.captures(head) {
            let secs = num(c.get(1)?.as_bytes())? as i64;
            let ns = nanos(c.get(2).map(|m| m.as_bytes()));
            return Utc.timestamp_opt(secs, ns).single();
        }
    }
    if let Some(c) = p.syslog.captures(head) {
        let mo = month(c.get(1)?.as_bytes())?;
        let d = num(c.get(2)?.as_bytes())?;
        let (h, mi, s) = (num(&c[3])?, num(&c[4])?, num(&c[5])?);
        let t = from_parts(now.year(), mo, d, h, mi, s, 0, 0)?;
        if t > now + chrono::Duration::days(1) {
            return from_parts(now.year() - 1, mo, d, h, mi, s, 0, 0);
        }
        return Some(t);
    }
    if let Some(c) = p.iso.captures(head) {
        let y = num(&c[1])? as i32;
        let (mo, d, h, mi, s) = (
            num(&c[2])?,
            num(&c[3])?,
            num(&c[4])?,
            num(&c[5])?,
            num(&c[6])?,
        );
        let ns = nanos(c.get(7).map(|m| m.as_bytes()));
        let off = zone(c.get(8).map(|m| m.as_bytes()))?;
        return from_parts(y, mo, d, h, mi, s, ns, off);
    }
    if let Some(c) = p.apache.captures(head) {
        let d = num(&c[1])?;
        let mo = month(&c[2])?;
        let y = num(&c[3])? as i32;
        let (h, mi, s) = (num(&c[4])?, num(&c[5])?, num(&c[6])?);
        let off = zone(Some(&c[7]))?;
        return from_parts(y, mo, d, h, mi, s, 0, off);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            (
                "1521911720.865716\tCqKst53\t10.47.1.100",
                Some("2018-03-24T17:15:20.865716Z"),
            ),
            (
                r#"{"ts":1521911720.5,"uid":"x"}"#,
                Some("2018-03-24T17:15:20.500Z"),
            ),
            (
                "2024-03-01T10:00:00Z host app: x",
                Some("2024-03-01T10:00:00Z"),
            ),
            (
                r#"{"timestamp":"2024-03-01T10:00:00.123456+0100","src_ip":"1.2.3.4"}"#,
                Some("2024-03-01T09:00:00.123456Z"),
            ),
            (
                "<34>1 2018-03-24T08:59:37-07:00 PC-helen app - - msg",
                Some("2018-03-24T15:59:37Z"),
            ),
            (
                r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1""#,
                Some("2015-05-17T10:05:03Z"),
            ),
            (
                "Nov 24 08:59:37 host sshd[1]: x",
                Some("2026-11-24T08:59:37Z"),
            ),
            ("<13>Dec 31 23:59:59 host x", Some("2025-12-31T23:59:59Z")),
            ("no time here 1.2.3.4", None),
        ];
        for (line, want) in cases {
            let got = event_time(line.as_bytes(), now)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            assert_eq!(got.as_deref(), *want, "{line}");
        }
    }
}
