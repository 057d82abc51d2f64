//! The zone of times that carry none: a [`Zone`] is UTC, a fixed offset from UTC, or an
//! IANA tz database zone (`Europe/Berlin`), configured per source.
//!
//! A zoneless local time (an RFC 3164 stamp, a FortiGate `date`/`time` pair without
//! `tz`, an ISO time without offset) is read in the source's zone. For an IANA zone the
//! offset is the one in force at that local date (DST-correct). Two local times have
//! no single answer, and both are resolved the same way every time:
//! - **ambiguous** (a clock set back: `02:30` happens twice in Berlin on the last
//!   Sunday of October): the **earlier** instant, i.e. the offset in force before the
//!   change (`02:30 CEST`, 00:30 UTC);
//! - **nonexistent** (a clock set forward: `02:30` never happens in Berlin on the last
//!   Sunday of March): read with the offset in force **before** the change, which
//!   lands the same distance after it (`02:30 CET` = 01:30 UTC = `03:30 CEST`), as
//!   `java.time` and RFC 5545 do.
//!
//! Cost: a fixed offset is one subtraction; an IANA zone is a binary search in the
//! zone's compiled transition table (chrono-tz, no file access, no allocation).
//! [`Zone::parse`] runs once per configured source.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Largest offset accepted, in hours (real zones run from -12 to +14).
const MAX_OFFSET_HOURS: i32 = 14;

/// The zone a source's zoneless times are read in. `Zone::default()` is UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fixed(FixedOffset),
    Iana(Tz),
}

/// A zone name [`Zone::parse`] cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown time zone {input:?}: expected UTC, an offset such as +02:00, +0200 or UTC+2, \
     or an IANA zone name such as Europe/Berlin"
)]
pub struct ZoneError {
    pub input: String,
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone(Kind::Fixed(Utc.fix()))
    }

    /// A fixed offset east of UTC.
    pub fn fixed(offset: FixedOffset) -> Zone {
        Zone(Kind::Fixed(offset))
    }

    /// Reads a zone as configured (surrounding whitespace ignored):
    /// - `UTC`, `GMT`, `UT` (any case) and `Z`: UTC;
    /// - an offset east of UTC, ISO 8601 signs: `+02:00`, `+0200`, `+02`, `+2`,
    ///   `-05:00`, `-0530`, optionally after `UTC` or `GMT` (`UTC+2`, `GMT-05:00`),
    ///   at most 14 hours. Note `UTC+2` is two hours **east** (+02:00), not POSIX's
    ///   inverted `TZ=UTC+2`; the IANA names `Etc/GMT+2` keep their own (POSIX) sign;
    /// - an IANA tz database name, as spelled there: `Europe/Berlin`,
    ///   `America/New_York`, `Asia/Kolkata`, `CET`, `EST5EDT`.
    ///
    /// Everything `config::parse_utc_offset` accepts is accepted.
    pub fn parse(s: &str) -> Result<Zone, ZoneError> {
        let t = s.trim();
        let err = || ZoneError {
            input: s.to_owned(),
        };
        if t.is_empty() {
            return Err(err());
        }
        if t == "Z" || t == "z" || is_utc_word(t) {
            return Ok(Zone::utc());
        }
        let offset_part = strip_utc_word(t).unwrap_or(t);
        if matches!(offset_part.as_bytes().first(), Some(b'+' | b'-')) {
            return parse_offset(offset_part).map(Zone::fixed).ok_or_else(err);
        }
        t.parse::<Tz>()
            .map(|tz| Zone(Kind::Iana(tz)))
            .map_err(|_| err())
    }

    /// The instant of the local wall-clock time `local` in this zone; ambiguous and
    /// nonexistent local times resolved as the module documents. `None` only past
    /// chrono's range.
    pub fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let offset = match self.0 {
            Kind::Fixed(off) => off,
            Kind::Iana(tz) => iana_offset(tz, local),
        };
        let utc = local.checked_sub_signed(TimeDelta::seconds(offset.local_minus_utc().into()))?;
        Some(Utc.from_utc_datetime(&utc))
    }

    /// The offset in force at the instant `t` (for an IANA zone, DST included).
    pub fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        match self.0 {
            Kind::Fixed(off) => off,
            Kind::Iana(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
        }
    }
}

/// The offset for the local time `local` in `tz`: the earlier instant when it happens
/// twice, the offset before the change when it never happens.
fn iana_offset(tz: Tz, local: NaiveDateTime) -> FixedOffset {
    use chrono::LocalResult;
    match tz.offset_from_local_datetime(&local) {
        LocalResult::Single(o) => o.fix(),
        // Two offsets: the earlier instant has the larger offset.
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.fix(), b.fix());
            if a.local_minus_utc() >= b.local_minus_utc() {
                a
            } else {
                b
            }
        }
        // In a gap: the offset in force a day before (no zone changes twice in a day).
        LocalResult::None => {
            let before = local
                .checked_sub_signed(TimeDelta::days(1))
                .unwrap_or(local);
            tz.offset_from_utc_datetime(&before).fix()
        }
    }
}

fn is_utc_word(s: &str) -> bool {
    ["utc", "gmt", "ut"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
}

/// `UTC+2` → `+2`; `None` when `s` does not start with `UTC`/`GMT` and a sign.
fn strip_utc_word(s: &str) -> Option<&str> {
    let head = s.get(..3)?;
    let rest = &s[3..];
    (["utc", "gmt"].iter().any(|w| head.eq_ignore_ascii_case(w))
        && matches!(rest.as_bytes().first(), Some(b'+' | b'-')))
    .then_some(rest)
}

/// `+02:00`, `+0200`, `+02`, `+2`, `+2:00` (and `-`): an offset of at most 14 hours.
pub(crate) fn parse_offset(s: &str) -> Option<FixedOffset> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let colon = rest.contains(&b':');
    let digits: Vec<u8> = rest.iter().copied().filter(|&c| c != b':').collect();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |d: &[u8]| {
        d.iter()
            .fold(0i32, |acc, &c| acc * 10 + i32::from(c - b'0'))
    };
    let (h, m) = match digits.len() {
        1 | 2 if !colon => (n(&digits), 0),
        3 if colon => (n(&digits[..1]), n(&digits[1..])),
        4 => (n(&digits[..2]), n(&digits[2..])),
        _ => return None,
    };
    if h > MAX_OFFSET_HOURS || m >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

impl FromStr for Zone {
    type Err = ZoneError;

    fn from_str(s: &str) -> Result<Zone, ZoneError> {
        Zone::parse(s)
    }
}

/// `UTC`, `+02:00`, or the IANA name.
impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Fixed(off) if off.local_minus_utc() == 0 => f.write_str("UTC"),
            Kind::Fixed(off) => write!(f, "{off}"),
            Kind::Iana(tz) => f.write_str(tz.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn parse_table() {
        // (input, offset in seconds at 2024-01-15 12:00 local, display)
        let cases: &[(&str, Option<i32>, &str)] = &[
            ("UTC", Some(0), "UTC"),
            ("utc", Some(0), "UTC"),
            (" Z ", Some(0), "UTC"),
            ("GMT", Some(0), "UTC"),
            ("+02:00", Some(7200), "+02:00"),
            ("+0200", Some(7200), "+02:00"),
            ("-0530", Some(-19800), "-05:30"),
            ("-05:00", Some(-18000), "-05:00"),
            ("+2", Some(7200), "+02:00"),
            ("+02", Some(7200), "+02:00"),
            ("+5:30", Some(19800), "+05:30"),
            ("UTC+2", Some(7200), "+02:00"),
            ("utc-05:00", Some(-18000), "-05:00"),
            ("GMT+0100", Some(3600), "+01:00"),
            ("+14:00", Some(50400), "+14:00"),
            ("Europe/Berlin", Some(3600), "Europe/Berlin"),
            ("America/New_York", Some(-18000), "America/New_York"),
            ("Asia/Kolkata", Some(19800), "Asia/Kolkata"),
            ("CET", Some(3600), "CET"),
            ("Etc/GMT+2", Some(-7200), "Etc/GMT+2"),
            ("Etc/UTC", Some(0), "Etc/UTC"),
            ("", None, ""),
            ("  ", None, ""),
            ("+15:00", None, ""),
            ("+02:60", None, ""),
            ("+123", None, ""),
            ("+02:0x", None, ""),
            ("+", None, ""),
            ("UTC+", None, ""),
            ("UTC2", None, ""),
            ("Europe/Atlantis", None, ""),
            ("europe/berlin", None, ""),
            ("CEST", None, ""),
            ("02:00", None, ""),
        ];
        for &(input, want, shown) in cases {
            let got = Zone::parse(input);
            match want {
                Some(secs) => {
                    let z = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    let t = z.to_utc(local(2024, 1, 15, 12, 0)).unwrap();
                    assert_eq!(
                        (utc(2024, 1, 15, 12, 0) - t).num_seconds(),
                        i64::from(secs),
                        "{input:?}"
                    );
                    assert_eq!(z.to_string(), shown, "{input:?}");
                    assert_eq!(z.to_string().parse::<Zone>(), Ok(z), "{input:?}");
                }
                None => {
                    let e = got.expect_err(input);
                    assert_eq!(e.input, input);
                    assert!(e.to_string().contains("Europe/Berlin"), "{e}");
                }
            }
        }
    }

    /// Everything the config's `parse_utc_offset` accepts today reads the same here.
    #[test]
    fn accepts_what_config_accepted() {
        for (s, secs) in [
            ("UTC", 0),
            ("uTc", 0),
            ("Z", 0),
            ("+02:00", 7200),
            ("-0530", -19800),
            ("+14:59", 14 * 3600 + 59 * 60),
            ("-00:00", 0),
        ] {
            let z = Zone::parse(s).unwrap();
            assert_eq!(z.offset_at(utc(2024, 1, 1, 0, 0)).local_minus_utc(), secs);
        }
    }

    #[test]
    fn iana_zone_follows_dst() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let cases = [
            // Winter: +01:00; summer: +02:00.
            (local(2024, 1, 15, 12, 0), utc(2024, 1, 15, 11, 0)),
            (local(2024, 7, 15, 12, 0), utc(2024, 7, 15, 10, 0)),
            // The day of the spring change (31 March 2024, 02:00 → 03:00).
            (local(2024, 3, 31, 1, 30), utc(2024, 3, 31, 0, 30)),
            (local(2024, 3, 31, 3, 30), utc(2024, 3, 31, 1, 30)),
            // Nonexistent 02:30: read at +01:00, the offset before the change.
            (local(2024, 3, 31, 2, 30), utc(2024, 3, 31, 1, 30)),
            // The autumn change (27 October 2024, 03:00 → 02:00): 02:30 happens
            // twice; the earlier (+02:00) is taken.
            (local(2024, 10, 27, 2, 30), utc(2024, 10, 27, 0, 30)),
            (local(2024, 10, 27, 3, 30), utc(2024, 10, 27, 2, 30)),
        ];
        for (l, want) in cases {
            assert_eq!(berlin.to_utc(l), Some(want), "{l}");
        }
        assert_eq!(
            berlin.offset_at(utc(2024, 7, 1, 0, 0)).local_minus_utc(),
            7200
        );
        assert_eq!(Zone::default(), Zone::utc());
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let z = Zone::parse("-14:00").unwrap();
        assert_eq!(z.to_utc(NaiveDateTime::MAX), None);
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let _ = berlin.to_utc(NaiveDateTime::MAX);
        let _ = berlin.to_utc(NaiveDateTime::MIN);
    }
}
