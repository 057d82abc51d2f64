//! Strict parsers of a time **value**: the whole value of a format's own time field, or
//! a stamp at a known position (the start of a header, the start of the line). Nothing
//! here searches a line for something that looks like a time: which field holds the
//! event's time is the decoder's decision (see the module doc of `decode`), and a time
//! written anywhere else (a URL, a message, a user agent, a nested object) is text.
//!
//! Layouts read, each anchored where it starts, and as a value anchored at both ends:
//! - ISO 8601 / RFC 3339: `2024-05-01T10:00:01Z`, `T`, `t` or one space between date
//!   and time, an optional fraction (`.` or `,`, 1 to 9 digits) and an optional zone
//!   (`Z`, `+02:00`, `+0200`, `+02`);
//! - Apache/nginx: `01/May/2024:10:00:01 +0000` (zone optional);
//! - BSD/syslog and CEF: `Mar  4 10:00:01` (no year), `Mar 04 2024 10:00:01`, with an
//!   optional fraction, and as a value an optional zone word after a space (`UTC`,
//!   `+0200`, `Europe/Berlin`, or one of `EST EDT CST CDT MST MDT PST PDT` (RFC 5322,
//!   US) and `WET WEST CET CEST EET EEST` (Europe), read as their fixed offsets);
//! - BIND 9 (`named` logging channels with `print-time yes`, the query log's default):
//!   `01-Jan-2024 10:00:01.123` (day, English month name, year; milliseconds), zoneless;
//!   read at the start of a line (`leading`);
//! - ctime, as Snare writes it: `Mon Mar 04 10:00:01 2024` (the weekday is checked to
//!   be a weekday name, not against the date);
//! - epoch numbers, as a value: seconds with an optional fraction (`1521911720.865716`),
//!   or an integer of milliseconds, microseconds or nanoseconds, told apart by
//!   magnitude (below 10^11: seconds; below 10^14: milliseconds; below 10^17:
//!   microseconds; else nanoseconds). Seconds below 10^8 (before March 1973) are not a
//!   log time (they are durations or counters) and give `None`, as do negative numbers
//!   and exponents.
//!
//! Month names are English, any case. Each layout checks every number's range (a
//! `Feb 30` is no time); a value with anything before or after the layout is no time.
//!
//! Zones and years ([`Written::resolve`]): a time with its own zone or an epoch is an
//! instant; a zoneless one is read in the source's [`Zone`]. A time without a year
//! takes the latest year that puts it no later than `reference` plus
//! [`YEAR_TOLERANCE`] (one day, for clocks that run ahead and for zones east of the
//! reader): read on 2025-01-01, `Dec 31 23:59:00` is 2024's and `Jan  2 00:00:00` is
//! 2025's (less than a day ahead). A `Feb 29` read in a year with none belongs to the
//! latest leap year before. `reference` is the time the line is known to be no later
//! than: the file's modification time in `hunt`, now in the sidecar.
//!
//! Cost: each parser is one pass over at most a few dozen bytes, no allocation and no
//! regex.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc,
};

use super::zone::Zone;

/// How far after the reference a year-less time may lie and still be this year's.
pub const YEAR_TOLERANCE: TimeDelta = TimeDelta::days(1);

/// A time as written, before the source's zone and the reference year are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// An instant: the stamp carried its own zone, or was an epoch.
    At(DateTime<Utc>),
    /// A wall-clock time with a year, without a zone.
    Local(NaiveDateTime),
    /// Month, day and time of day only (RFC 3164, CEF `MMM dd HH:mm:ss`).
    NoYear {
        month: u32,
        day: u32,
        time: NaiveTime,
    },
}

impl Written {
    /// The instant: a zoneless time in `zone`, a year-less one in the latest year that
    /// puts it no later than `reference` + [`YEAR_TOLERANCE`].
    /// The same stamp with its fraction of a second dropped: it resolves to the same
    /// second (`timestamp()`), and stamps of one second compare equal.
    pub(crate) fn whole_seconds(self) -> Written {
        match self {
            Written::At(t) => Written::At(t.with_nanosecond(0).unwrap_or(t)),
            Written::Local(l) => Written::Local(l.with_nanosecond(0).unwrap_or(l)),
            Written::NoYear { month, day, time } => Written::NoYear {
                month,
                day,
                time: time.with_nanosecond(0).unwrap_or(time),
            },
        }
    }

    pub(crate) fn resolve(self, zone: &Zone, reference: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Written::At(t) => Some(t),
            Written::Local(l) => zone.to_utc(l),
            Written::NoYear { month, day, time } => {
                let limit = reference
                    .checked_add_signed(YEAR_TOLERANCE)
                    .unwrap_or(reference);
                // The reference's year in the zone is at most one more than in UTC;
                // nine years back reach a leap year from any year (2100 has none).
                let top = reference.year() + 1;
                (top - 9..=top).rev().find_map(|y| {
                    let t = zone.to_utc(NaiveDate::from_ymd_opt(y, month, day)?.and_time(time))?;
                    (t <= limit).then_some(t)
                })
            }
        }
    }
}

/// The time that `value` (a whole field value) holds, in any layout this module reads;
/// zoneless times in `zone`, year-less ones placed before `reference`.
pub fn parse_value(value: &[u8], zone: &Zone, reference: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match written_value(value)? {
        (w, Some(z)) => w.resolve(&z, reference),
        (w, None) => w.resolve(zone, reference),
    }
}

/// A whole value: the time and, when a zone word followed it, that zone.
fn written_value(b: &[u8]) -> Option<(Written, Option<Zone>)> {
    if let Some(t) = epoch(b) {
        return Some((Written::At(t), None));
    }
    let (w, n) = stamp_at(b)?;
    if n == b.len() {
        return Some((w, None));
    }
    // A zone word after a zoneless stamp (CEF: `Mar 04 2024 10:00:00 UTC`).
    let word = b.get(n + 1..).filter(|_| b[n] == b' ')?;
    let zone = zone_word(std::str::from_utf8(word).ok()?)?;
    matches!(w, Written::Local(_) | Written::NoYear { .. }).then_some((w, Some(zone)))
}

/// The stamp starting a line, the format's own header when the layout has none: ISO
/// 8601, BIND's `01-Jan-2024 10:00:01.123` or an epoch in seconds (10 digits, as Zeek
/// TSV rows), each followed by a space, a tab or the end of the line.
pub(crate) fn leading(line: &[u8]) -> Option<Written> {
    let ends_field = |n: usize| matches!(line.get(n), None | Some(b' ' | b'\t'));
    if let Some((w, n)) = iso_at(line).or_else(|| bind_at(line)) {
        return ends_field(n).then_some(w);
    }
    let digits = count_digits(line, 0);
    if digits != 10 {
        return None;
    }
    let mut n = digits;
    if line.get(n) == Some(&b'.') {
        let f = count_digits(line, n + 1);
        if !(1..=9).contains(&f) {
            return None;
        }
        n += 1 + f;
    }
    if !ends_field(n) {
        return None;
    }
    epoch(&line[..n]).map(Written::At)
}

/// A FortiGate-style `date` + `time` pair (`2024-05-01`, `10:00:01`, optionally with a
/// fraction): the wall-clock time, read in the pair's `tz` where given.
pub(crate) fn date_and_time(date: &[u8], time: &[u8]) -> Option<NaiveDateTime> {
    if date.len() != 10 || !matches!(date[4], b'-' | b'/') || date[7] != date[4] {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(num(date, 0, 4)? as i32, num(date, 5, 2)?, num(date, 8, 2)?)?;
    let (t, n) = hms_at(time, 0)?;
    (n == time.len()).then(|| d.and_time(t))
}

/// The stamp starting `b`, in any layout but epoch, and its length in bytes.
pub(crate) fn stamp_at(b: &[u8]) -> Option<(Written, usize)> {
    iso_at(b)
        .or_else(|| bsd_at(b))
        .or_else(|| apache_at(b))
        .or_else(|| bind_at(b))
        .or_else(|| ctime_at(b))
}

/// The value of the exactly `n` ASCII digits at `b[i..]`.
fn num(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let d = b.get(i..i + n)?;
    d.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn count_digits(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// `HH:MM:SS` and an optional fraction at `b[i..]`; the time and where it ends.
fn hms_at(b: &[u8], i: usize) -> Option<(NaiveTime, usize)> {
    if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
        return None;
    }
    let (h, m, s) = (num(b, i, 2)?, num(b, i + 3, 2)?, num(b, i + 6, 2)?);
    let mut end = i + 8;
    let mut nanos = 0;
    if matches!(b.get(end), Some(b'.' | b',')) {
        let f = count_digits(b, end + 1);
        if !(1..=9).contains(&f) {
            return None;
        }
        nanos = num(b, end + 1, f)? * 10u32.pow(9 - f as u32);
        end += 1 + f;
    }
    // A leap second (`:60`) is read as the last nanosecond of `:59`.
    let t = if s == 60 {
        NaiveTime::from_hms_nano_opt(h, m, 59, 999_999_999)?
    } else {
        NaiveTime::from_hms_nano_opt(h, m, s, nanos)?
    };
    Some((t, end))
}

/// `Z`, `z`, `+HH:MM`, `+HHMM` or `+HH` at `b[i..]`; the offset and where it ends.
fn iso_zone_at(b: &[u8], i: usize) -> Option<(FixedOffset, usize)> {
    let sign = match b.get(i)? {
        b'Z' | b'z' => return Some((FixedOffset::east_opt(0)?, i + 1)),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = num(b, i + 1, 2)?;
    let (m, end) = if b.get(i + 3) == Some(&b':') {
        (num(b, i + 4, 2)?, i + 6)
    } else if let Some(m) = num(b, i + 3, 2) {
        (m, i + 5)
    } else {
        (0, i + 3)
    };
    if h > 14 || m > 59 || b.get(end).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((
        FixedOffset::east_opt(sign * (h as i32 * 3600 + m as i32 * 60))?,
        end,
    ))
}

/// `2024-05-01T10:00:01.5+02:00` and its variants at the start of `b`.
fn iso_at(b: &[u8]) -> Option<(Written, usize)> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(b, 0, 4)? as i32, num(b, 5, 2)?, num(b, 8, 2)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (time, end) = hms_at(b, 11)?;
    let local = date.and_time(time);
    match iso_zone_at(b, end) {
        Some((off, end)) => Some((Written::At(in_offset(local, off)?), end)),
        None => Some((Written::Local(local), end)),
    }
}

/// The instant of `local` at the fixed `offset`.
fn in_offset(local: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn month_at(b: &[u8], i: usize) -> Option<u32> {
    const M: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let name = b.get(i..i + 3)?;
    M.iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|p| p as u32 + 1)
}

/// A day of the month: two digits, or one after a space (`Mar  4`, `Mar 4`).
fn day_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    if b.get(i) == Some(&b' ') {
        return Some((num(b, i + 1, 1)?, i + 2));
    }
    match count_digits(b, i) {
        1 => Some((num(b, i, 1)?, i + 1)),
        2 => Some((num(b, i, 2)?, i + 2)),
        _ => None,
    }
}

/// `Mar  4 10:00:01` or `Mar 04 2024 10:00:01` at the start of `b`.
fn bsd_at(b: &[u8]) -> Option<(Written, usize)> {
    let month = month_at(b, 0)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (day, i) = day_at(b, 4)?;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    if b.get(i + 5) == Some(&b' ') && count_digits(b, i + 1) == 4 {
        let year = num(b, i + 1, 4)? as i32;
        let (time, end) = hms_at(b, i + 6)?;
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        return Some((Written::Local(date.and_time(time)), end));
    }
    let (time, end) = hms_at(b, i + 1)?;
    // Checks the day against the month, in a leap year so that `Feb 29` passes.
    NaiveDate::from_ymd_opt(2000, month, day)?;
    Some((Written::NoYear { month, day, time }, end))
}

/// `01/May/2024:10:00:01 +0000` at the start of `b`.
fn apache_at(b: &[u8]) -> Option<(Written, usize)> {
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(b, 7, 4)? as i32, month_at(b, 3)?, num(b, 0, 2)?)?;
    let (time, end) = hms_at(b, 12)?;
    let local = date.and_time(time);
    if b.get(end) == Some(&b' ') {
        if let Some((off, zend)) = iso_zone_at(b, end + 1) {
            return Some((Written::At(in_offset(local, off)?), zend));
        }
    }
    Some((Written::Local(local), end))
}

/// `01-Jan-2024 10:00:01.123` (BIND 9's log time) at the start of `b`: zoneless.
pub(crate) fn bind_at(b: &[u8]) -> Option<(Written, usize)> {
    if b.get(2) != Some(&b'-') || b.get(6) != Some(&b'-') || b.get(11) != Some(&b' ') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(b, 7, 4)? as i32, month_at(b, 3)?, num(b, 0, 2)?)?;
    let (time, end) = hms_at(b, 12)?;
    Some((Written::Local(date.and_time(time)), end))
}

/// A whole value in ctime layout (`Mon Mar 04 10:00:01 2024`), as Snare's date
/// column holds it.
pub(crate) fn ctime(b: &[u8]) -> Option<Written> {
    ctime_at(b).and_then(|(w, n)| (n == b.len()).then_some(w))
}

/// `Mon Mar 04 10:00:01 2024` (ctime; Snare) at the start of `b`.
fn ctime_at(b: &[u8]) -> Option<(Written, usize)> {
    const DAYS: [&[u8]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];
    let wd = b.get(..3)?;
    if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(wd)) || b.get(3) != Some(&b' ') {
        return None;
    }
    let month = month_at(b, 4)?;
    if b.get(7) != Some(&b' ') {
        return None;
    }
    let (day, i) = day_at(b, 8)?;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let (time, end) = hms_at(b, i + 1)?;
    if b.get(end) != Some(&b' ') || count_digits(b, end + 1) != 4 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(b, end + 1, 4)? as i32, month, day)?;
    Some((Written::Local(date.and_time(time)), end + 5))
}

/// An epoch number: seconds with an optional fraction, or integer milliseconds,
/// microseconds or nanoseconds by magnitude (see the module doc).
fn epoch(b: &[u8]) -> Option<DateTime<Utc>> {
    let int = count_digits(b, 0);
    if !(1..=19).contains(&int) {
        return None;
    }
    let whole: u64 = std::str::from_utf8(&b[..int]).ok()?.parse().ok()?;
    let mut nanos = 0u32;
    if int < b.len() {
        let f = count_digits(b, int + 1);
        if b[int] != b'.'
            || !(1..=9).contains(&f)
            || int + 1 + f != b.len()
            || whole >= 100_000_000_000
        {
            return None;
        }
        nanos = num(b, int + 1, f)? * 10u32.pow(9 - f as u32);
    }
    let (secs, sub) = match whole {
        w if w < 100_000_000_000 => (w, u64::from(nanos)),
        w if w < 100_000_000_000_000 => (w / 1_000, (w % 1_000) * 1_000_000),
        w if w < 100_000_000_000_000_000 => (w / 1_000_000, (w % 1_000_000) * 1_000),
        w => (w / 1_000_000_000, w % 1_000_000_000),
    };
    if secs < 100_000_000 {
        return None;
    }
    Utc.timestamp_opt(i64::try_from(secs).ok()?, u32::try_from(sub).ok()?)
        .single()
}

/// A zone written after a stamp: a fixed abbreviation, else anything [`Zone::parse`]
/// reads.
fn zone_word(s: &str) -> Option<Zone> {
    const ABBREVIATIONS: [(&str, i32); 14] = [
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
        ("WET", 0),
        ("WEST", 1),
        ("CET", 1),
        ("CEST", 2),
        ("EET", 2),
        ("EEST", 3),
    ];
    if let Some(&(_, h)) = ABBREVIATIONS.iter().find(|(a, _)| *a == s) {
        return FixedOffset::east_opt(h * 3600).map(Zone::fixed);
    }
    Zone::parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn show(t: Option<DateTime<Utc>>) -> Option<String> {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }

    /// One row per layout; every value is whole (anything around it is no time).
    #[test]
    fn values() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let utc = Zone::utc();
        let cases: &[(&str, &Zone, Option<&str>)] = &[
            // ISO 8601 / RFC 3339.
            ("2024-05-01T10:00:01Z", &utc, Some("2024-05-01T10:00:01Z")),
            ("2024-05-01t10:00:01z", &utc, Some("2024-05-01T10:00:01Z")),
            (
                "2024-05-01T10:00:01.5+02:00",
                &utc,
                Some("2024-05-01T08:00:01.500Z"),
            ),
            (
                "2024-05-01T10:00:01,123456+0100",
                &utc,
                Some("2024-05-01T09:00:01.123456Z"),
            ),
            ("2024-05-01T10:00:01-05", &utc, Some("2024-05-01T15:00:01Z")),
            ("2024-05-01 10:00:01", &utc, Some("2024-05-01T10:00:01Z")),
            ("2024-05-01 10:00:01", &berlin, Some("2024-05-01T08:00:01Z")),
            ("2024-01-01T10:00:01", &berlin, Some("2024-01-01T09:00:01Z")),
            (
                "2016-12-31T23:59:60Z",
                &utc,
                Some("2016-12-31T23:59:59.999999999Z"),
            ),
            // Apache.
            (
                "01/May/2024:10:00:01 +0000",
                &utc,
                Some("2024-05-01T10:00:01Z"),
            ),
            (
                "10/Oct/2000:13:55:36 -0700",
                &utc,
                Some("2000-10-10T20:55:36Z"),
            ),
            (
                "01/May/2024:10:00:01",
                &berlin,
                Some("2024-05-01T08:00:01Z"),
            ),
            // BIND 9.
            (
                "01-May-2024 10:00:01.250",
                &berlin,
                Some("2024-05-01T08:00:01.250Z"),
            ),
            ("01-May-2024 10:00:01", &utc, Some("2024-05-01T10:00:01Z")),
            ("01-May-2024 10:00:01 x", &utc, None),
            // BSD / CEF, with and without year and zone.
            ("Mar 04 2024 10:00:00", &utc, Some("2024-03-04T10:00:00Z")),
            (
                "Mar 04 2024 10:00:00.250",
                &utc,
                Some("2024-03-04T10:00:00.250Z"),
            ),
            (
                "Mar 04 2024 10:00:00 UTC",
                &berlin,
                Some("2024-03-04T10:00:00Z"),
            ),
            (
                "Mar 04 2024 10:00:00 +0200",
                &utc,
                Some("2024-03-04T08:00:00Z"),
            ),
            (
                "Jul 04 2024 10:00:00 CET",
                &utc,
                Some("2024-07-04T09:00:00Z"),
            ),
            (
                "Jul 04 2024 10:00:00 Europe/Berlin",
                &utc,
                Some("2024-07-04T08:00:00Z"),
            ),
            (
                "Jul 04 2024 10:00:00 PDT",
                &utc,
                Some("2024-07-04T17:00:00Z"),
            ),
            ("Mar  4 10:00:00", &utc, Some("2026-03-04T10:00:00Z")),
            ("mar 4 10:00:00", &berlin, Some("2026-03-04T09:00:00Z")),
            ("Dec 31 23:59:59", &utc, Some("2025-12-31T23:59:59Z")),
            // ctime (Snare).
            (
                "Mon Mar 04 10:00:01 2024",
                &utc,
                Some("2024-03-04T10:00:01Z"),
            ),
            (
                "Mon Mar  4 10:00:01 2024",
                &berlin,
                Some("2024-03-04T09:00:01Z"),
            ),
            // Epochs.
            (
                "1521911720.865716",
                &berlin,
                Some("2018-03-24T17:15:20.865716Z"),
            ),
            ("1521911720", &utc, Some("2018-03-24T17:15:20Z")),
            ("1709546400123", &utc, Some("2024-03-04T10:00:00.123Z")),
            (
                "1709546400123456",
                &utc,
                Some("2024-03-04T10:00:00.123456Z"),
            ),
            (
                "1709546400123456789",
                &utc,
                Some("2024-03-04T10:00:00.123456789Z"),
            ),
            // No time.
            ("", &utc, None),
            ("0", &utc, None),
            ("0.35", &utc, None),
            ("99999999", &utc, None),
            ("-1521911720", &utc, None),
            ("1.5e9", &utc, None),
            ("1709546400123.5", &utc, None),
            ("12345678901234567890", &utc, None),
            ("1521911720.", &utc, None),
            ("1521911720.1234567890", &utc, None),
            (" 2024-05-01T10:00:01Z", &utc, None),
            ("2024-05-01T10:00:01Z ", &utc, None),
            ("2024-05-01T10:00:01Zx", &utc, None),
            ("upload 2023-01-01 00:00:00", &utc, None),
            ("2023-01-01 00:00:00 upload", &utc, None),
            ("2024-02-30T10:00:00Z", &utc, None),
            ("2024-05-01T24:00:00Z", &utc, None),
            ("2024-05-01T10:00:01+15:00", &utc, None),
            ("2024-05-01T10:00", &utc, None),
            ("2024-05-01", &utc, None),
            ("Feb 30 10:00:00", &utc, None),
            ("Foo 04 2024 10:00:00", &utc, None),
            ("Mar 04 2024 10:00:00 Mars/Olympus", &utc, None),
            ("Mar 04 2024 10:00:00 UTC extra", &utc, None),
            ("2024-05-01T10:00:01Z UTC", &utc, None),
            ("Xyz Mar 04 10:00:01 2024", &utc, None),
            ("32/May/2024:10:00:01 +0000", &utc, None),
            ("\u{FEFF}2024-05-01T10:00:01Z", &utc, None),
        ];
        for &(value, zone, want) in cases {
            let got = show(parse_value(value.as_bytes(), zone, reference()));
            assert_eq!(got.as_deref(), want, "{value:?} in {zone}");
        }
    }

    #[test]
    fn year_less_time_is_in_the_past_of_reference() {
        let at = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        let utc = Zone::utc();
        let plus1 = Zone::parse("+01:00").unwrap();
        // (stamp, zone, reference, want)
        let cases = [
            (
                "Dec 31 23:59:00",
                &utc,
                at(2025, 1, 1, 0, 30),
                "2024-12-31T23:59:00Z",
            ),
            // Less than a day ahead: this year's (clock skew).
            (
                "Jan  2 00:00:00",
                &utc,
                at(2025, 1, 1, 0, 30),
                "2025-01-02T00:00:00Z",
            ),
            // More than a day ahead: last year's.
            (
                "Jan  3 00:00:00",
                &utc,
                at(2025, 1, 1, 0, 30),
                "2024-01-03T00:00:00Z",
            ),
            (
                "Nov 25 12:00:00",
                &utc,
                at(2026, 11, 25, 12, 0),
                "2026-11-25T12:00:00Z",
            ),
            (
                "Nov 26 11:59:59",
                &utc,
                at(2026, 11, 25, 12, 0),
                "2026-11-26T11:59:59Z",
            ),
            (
                "Nov 26 12:00:01",
                &utc,
                at(2026, 11, 25, 12, 0),
                "2025-11-26T12:00:01Z",
            ),
            // The year is decided on the instant: 00:10 on Jan 1 at +01:00 is
            // 2024-12-31T23:10Z, before a reference of 23:30Z.
            (
                "Jan  1 00:10:00",
                &plus1,
                at(2024, 12, 31, 23, 30),
                "2024-12-31T23:10:00Z",
            ),
        ];
        for (stamp, zone, reference, want) in cases {
            let got = show(parse_value(stamp.as_bytes(), zone, reference));
            assert_eq!(got.as_deref(), Some(want), "{stamp} at {reference}");
        }
    }

    #[test]
    fn feb_29_without_year() {
        let at = |y, mo, d, h| Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap();
        let utc = Zone::utc();
        for (reference, want) in [
            (at(2025, 1, 10, 0), "2024-02-29T10:00:00Z"),
            (at(2024, 3, 1, 0), "2024-02-29T10:00:00Z"),
            (at(2024, 2, 28, 12), "2024-02-29T10:00:00Z"), // within the day of tolerance
            (at(2024, 2, 28, 9), "2020-02-29T10:00:00Z"),  // 25 hours ahead
            (at(2027, 12, 31, 0), "2024-02-29T10:00:00Z"),
            (at(2103, 6, 1, 0), "2096-02-29T10:00:00Z"), // 2100 is no leap year
        ] {
            let got = show(parse_value(b"Feb 29 10:00:00", &utc, reference));
            assert_eq!(got.as_deref(), Some(want), "{reference}");
        }
    }

    #[test]
    fn leading_stamps() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "2024-05-01 10:00:03 fw01 blocked",
                Some("2024-05-01T10:00:03Z"),
            ),
            ("2024-05-01T10:00:03Z x", Some("2024-05-01T10:00:03Z")),
            (
                "2024-05-01T10:00:03.5+02:00\tx",
                Some("2024-05-01T08:00:03.500Z"),
            ),
            ("2024-05-01T10:00:03Z", Some("2024-05-01T10:00:03Z")),
            (
                "1521911720.865716\tCq\t10.0.0.1",
                Some("2018-03-24T17:15:20.865716Z"),
            ),
            ("1521911720 x", Some("2018-03-24T17:15:20Z")),
            // BIND 9's query log (its default `print-time yes` layout).
            (
                "07-Dec-2026 01:02:03.456 queries: info: client @0x7f1 10.0.0.1#5353 (a.example): query: a.example IN A +E(0) (10.0.0.53)",
                Some("2026-12-07T01:02:03.456Z"),
            ),
            ("29-Feb-2024 23:59:59.000 client x", Some("2024-02-29T23:59:59Z")),
            ("30-Feb-2024 10:00:00.000 x", None),
            ("07-Dec-2026 01:02:03.456x", None),
            ("07-Xyz-2026 01:02:03 x", None),
            ("7-Dec-2026 01:02:03 x", None),
            ("2024-05-01T10:00:03Z: x", None),
            ("2024-05-01T10:00:03-x", None),
            ("x 2024-05-01 10:00:03", None),
            ("152191172 x", None),
            ("15219117200 x", None),
            ("1521911720.\tx", None),
            ("1521911720x", None),
            ("", None),
        ];
        for &(line, want) in cases {
            let got = leading(line.as_bytes()).and_then(|w| w.resolve(&Zone::utc(), reference()));
            assert_eq!(show(got).as_deref(), want, "{line:?}");
        }
    }

    #[test]
    fn date_and_time_pairs() {
        let d = |a: &str, b: &str| date_and_time(a.as_bytes(), b.as_bytes()).map(|t| t.to_string());
        assert_eq!(
            d("2024-05-01", "10:00:01").as_deref(),
            Some("2024-05-01 10:00:01")
        );
        assert_eq!(
            d("2024/05/01", "10:00:01.5").as_deref(),
            Some("2024-05-01 10:00:01.500")
        );
        assert_eq!(d("2024-05/01", "10:00:01"), None);
        assert_eq!(d("2024-05-01", "10:00:01 x"), None);
        assert_eq!(d("2024-13-01", "10:00:01"), None);
        assert_eq!(d("", ""), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"0123456789-:/.,+TZ MarFebSunMon\t";
        for len in 0..48 {
            for _ in 0..300 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if x % 7 == 0 {
                            (x >> 8) as u8
                        } else {
                            alphabet[(x >> 16) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                let _ = parse_value(&v, &Zone::utc(), reference());
                let _ = leading(&v);
                let _ = date_and_time(&v, &v);
                let _ = parse_value(&v, &Zone::utc(), DateTime::<Utc>::MAX_UTC);
                let _ = parse_value(&v, &Zone::utc(), DateTime::<Utc>::MIN_UTC);
            }
        }
    }
}
