//! Snare records (Windows events sent as tab-separated text, usually over syslog):
//! `HOST<TAB>MSWinEventLog<TAB>criticality<TAB>log<TAB>counter<TAB>Mon Mar 04 10:00:01
//! 2024<TAB>event id<TAB>...`. After a syslog header the host column is usually gone
//! (the header names the host), so the record may also start at `MSWinEventLog`.
//!
//! What a record gives: its host (the first column, when there is one) and its time,
//! the fourth column after `MSWinEventLog` in ctime layout, read strictly (no other
//! column is ever read as a time: the event's description may hold any text). The
//! time is the Windows host's local time, so the source's zone applies.
//!
//! Cost: at most six tab searches from the start of the record.

use super::time::{self, Written};

const MARK: &[u8] = b"MSWinEventLog";

/// A Snare record at `line[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub host: Option<(usize, usize)>,
    /// The date column as written; `None` when it is not a ctime stamp.
    pub time: Option<Written>,
}

/// Tab-separated columns of `line[start..end]`, as spans, lazily.
fn columns(line: &[u8], start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = Some(start);
    std::iter::from_fn(move || {
        let s = at?;
        let e = memchr::memchr(b'\t', &line[s..end]).map_or(end, |n| s + n);
        at = (e < end).then_some(e + 1);
        Some((s, e))
    })
}

/// Reads the record at `line[start..end]`; `None` when `MSWinEventLog` is not its
/// first or second column.
pub(crate) fn parse(line: &[u8], start: usize, end: usize) -> Option<Record> {
    let end = end.min(line.len());
    if start >= end {
        return None;
    }
    let mut cols = columns(line, start, end);
    let first = cols.next()?;
    let host = if &line[first.0..first.1] == MARK {
        None
    } else {
        let second = cols.next()?;
        if &line[second.0..second.1] != MARK || first.0 == first.1 {
            return None;
        }
        Some(first)
    };
    // criticality, log name, counter, then the date.
    let date = cols.nth(3)?;
    let time = time::ctime(&line[date.0..date.1]);
    Some(Record { host, time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn records() {
        let full = "WINSRV01\tMSWinEventLog\t1\tSecurity\t1234\tMon Mar 04 10:00:01 2024\t4624\tMicrosoft-Windows-Security-Auditing\tCORP\\alice\tN/A\tSuccess Audit\tWINSRV01\tLogon\t\tAn account logged on 2019-01-01T00:00:00Z from 203.0.113.9\t0";
        let r = parse(full.as_bytes(), 0, full.len()).unwrap();
        assert_eq!(r.host, Some((0, 8)));
        assert_eq!(r.time, Some(Written::Local(local(2024, 3, 4, 10, 0, 1))));

        let body = "x: MSWinEventLog\t0\tSystem\t7\tTue Mar  5 23:59:59 2024\t7036";
        let r = parse(body.as_bytes(), 3, body.len()).unwrap();
        assert_eq!(r.host, None);
        assert_eq!(r.time, Some(Written::Local(local(2024, 3, 5, 23, 59, 59))));

        // A date column that is no ctime stamp: a record without a time.
        let bad = "H\tMSWinEventLog\t1\tSecurity\t1\t2019-01-01T00:00:00Z\t4624";
        assert_eq!(parse(bad.as_bytes(), 0, bad.len()).unwrap().time, None);
    }

    #[test]
    fn not_snare() {
        for s in [
            "",
            "MSWinEventLog",
            "MSWinEventLog\t1\tSecurity",
            "\tMSWinEventLog\t1\tSecurity\t1\tMon Mar 04 10:00:01 2024",
            "a\tb\tMSWinEventLog\t1\tSecurity\t1\tMon Mar 04 10:00:01 2024",
            "host MSWinEventLog 1 Security 1 Mon Mar 04 10:00:01 2024",
        ] {
            assert_eq!(parse(s.as_bytes(), 0, s.len()), None, "{s:?}");
        }
    }
}
