//! Decoding: what a raw line says about itself beyond its text, and the one place in
//! tripline that reads syslog headers and event times.
//!
//! Matching always works on the raw bytes; decoding adds context to a line that
//! matched. A [`Decoder`] (one per input: it holds the Zeek header of the file being
//! read) turns a line into an [`Event`]: its [`Format`], its own time, host and app,
//! its source and destination addresses, and its [`Field`]s, each naming the byte
//! range of its value in the raw line. [`Event::field_at`] maps a hit's span to the
//! field holding it, and [`Event::direction_of`] says whether that field is a source
//! or a destination, so an alert can say "a MISP `ip-src` attribute was seen as a
//! destination".
//!
//! Detection, in order, per line:
//! 1. a Zeek header line (`#separator`, `#fields`...) updates the decoder and gives an
//!    event with no fields (`zeek.rs`);
//! 2. `{` after optional whitespace: JSON (Suricata EVE, Zeek JSON, ECS) (`json.rs`);
//! 3. after a Zeek `#fields` header in the same input, a row holding its separator:
//!    Zeek TSV; a `message` column holding syslog (Zeek's `syslog.log`) is decoded
//!    too (`zeek.rs`);
//! 4. an Apache/nginx common or combined access log line (`apache.rs`);
//! 5. a syslog header (RFC 5424, RFC 3164 with or without a year, Cisco ASA's
//!    `Mar 04 2024 10:00:01: %ASA-...`, or rsyslog's file layout with an RFC 3339
//!    stamp) whose message is then decoded as a Snare record, JSON (`@cee: {...}`,
//!    `app: {...}`), CEF or key=value pairs (`syslog.rs`, `snare.rs`, `kv.rs`);
//! 6. a Snare record without a syslog header (`snare.rs`);
//! 7. CEF, or at least two `key=value` pairs, after a `<PRI>` if there is one
//!    (FortiGate sends `<189>date=...`) (`kv.rs`);
//! 8. else plain text.
//!
//! # The event's time
//! [`Event::time`] comes only from the format's own time field, never from text found
//! elsewhere in the line (a message, a URL, a user agent, a nested object): a line's
//! author may write any time there. Per format:
//! - syslog: the header's stamp (RFC 3339 in RFC 5424 and in rsyslog's layout;
//!   `Mar  4 10:00:01` or `Mar 04 2024 10:00:01` in RFC 3164 and Cisco ASA); none for
//!   RFC 5424's NILVALUE `-`;
//! - Apache/nginx: the bracketed `[01/May/2024:10:00:01 +0000]`;
//! - JSON: `@timestamp`, else `timestamp`, `ts`, `time` (the first of them that reads),
//!   each only as a key of the **outermost** object with a string or number value
//!   (never `file.ts`, never an array, never text inside `msg`);
//! - Zeek TSV: the `ts` column;
//! - CEF: the first `rt` (epoch milliseconds or a CEF date, `Mar 04 2024 10:00:00`,
//!   with an optional fraction and zone);
//! - key=value: the first `date` and the first `time` together (FortiGate:
//!   `date=2024-05-01 time=10:00:01`), in the zone of the first `tz` (`tz="+0200"`)
//!   when there is one (an unreadable `tz` gives no time);
//! - Snare: its date column (`Mon Mar 04 10:00:01 2024`);
//! - any line whose format gave none: a stamp **starting** the line, ISO 8601
//!   (`2024-05-01 10:00:03 fw01 ...`) or 10-digit epoch seconds (a Zeek TSV row read
//!   without its header), followed by a space, a tab or the end: the start of a line
//!   is its header; anywhere else is text.
//!
//! The outermost format's time wins (Zeek's `ts` over the header of the syslog line
//! in its `message` column; a syslog header over the CEF `rt`, Snare date or JSON
//! time of its message); an inner time is read only when the outer format has none.
//! Each value is read by the strict parsers of [`time`] (a whole value, or a stamp at
//! its known place); a value they cannot read gives no time rather than a guess. A
//! line with no readable own time has `time == None`: the caller uses the time of
//! reading and says so.
//!
//! Zones: a time that carries no zone (RFC 3164, Cisco ASA, Snare, FortiGate without
//! `tz`, zoneless ISO) is read in [`DecodeOptions::zone`], the source's [`Zone`] (UTC,
//! a fixed offset or an IANA zone, DST-correct). Years: a time without one takes the
//! latest year that puts it no later than the `reference` given to
//! [`Decoder::decode`] plus [`time::YEAR_TOLERANCE`] (one day); `Feb 29` goes to the
//! latest leap year that fits.
//!
//! The host is the syslog host, else Snare's host column, else JSON
//! `host.name`/`host.hostname`/`hostname`/`host` (not in Zeek JSON, where `host` is the
//! HTTP Host header).
//!
//! Cost: called only for lines that matched (and [`is_syslog`] once per message a
//! syslog source receives). Detection is a few byte checks and at most one anchored
//! regex and one syslog parse; each decoder is one pass over the line; reading a time
//! is a parse of a few dozen bytes at a known place. An event allocates one `String`
//! per field (its name), at most [`DecodeOptions::max_fields`] fields. Nothing here
//! panics on any input.

mod apache;
mod fields;
mod json;
mod kv;
mod snare;
mod syslog;
pub mod time;
mod zeek;
mod zone;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

pub use fields::{ecs_name, role_of, Field, Role};
pub use zone::{Zone, ZoneError};

use time::Written;

/// The layout of a line, outermost first (a CEF record carried by syslog is
/// [`Format::Syslog3164`], with the CEF fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Syslog3164,
    Syslog5424,
    /// Suricata EVE, Zeek JSON, ECS, or any other JSON object.
    Json,
    ZeekTsv,
    /// `key=value` pairs, CEF included.
    KeyValue,
    /// Apache or nginx common/combined access log.
    Apache,
    /// A Snare record (Windows event) without a syslog header.
    Snare,
    Plain,
}

impl Format {
    /// Short name for alerts and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Format::Syslog3164 => "syslog3164",
            Format::Syslog5424 => "syslog5424",
            Format::Json => "json",
            Format::ZeekTsv => "zeek_tsv",
            Format::KeyValue => "kv",
            Format::Apache => "apache",
            Format::Snare => "snare",
            Format::Plain => "plain",
        }
    }
}

/// What a line says about itself. Values are spans of the line it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub format: Format,
    /// The event's own time, from the format's own time field (see the module doc);
    /// `None` when the line gives none that reads.
    pub time: Option<DateTime<Utc>>,
    pub host: Option<String>,
    /// The syslog app name (tag).
    pub app: Option<String>,
    /// The first source-role field holding an IP address.
    pub source_ip: Option<IpAddr>,
    /// The first destination-role field holding an IP address.
    pub destination_ip: Option<IpAddr>,
    /// In line order, except that fields decoded inside another field (a Zeek
    /// `message` column) come after the outer ones.
    pub fields: Vec<Field>,
}

impl Event {
    fn new(format: Format) -> Event {
        Event {
            format,
            time: None,
            host: None,
            app: None,
            source_ip: None,
            destination_ip: None,
            fields: Vec::new(),
        }
    }

    /// The innermost field whose value contains `span` (a hit's byte range in the
    /// line this event was decoded from).
    pub fn field_at(&self, span: (usize, usize)) -> Option<&Field> {
        self.fields
            .iter()
            .filter(|f| f.contains(span))
            .min_by_key(|f| f.span.1 - f.span.0)
    }

    /// The role of the field holding `span`; `None` when no field holds it.
    pub fn direction_of(&self, span: (usize, usize)) -> Option<Role> {
        self.field_at(span).map(|f| f.role)
    }

    /// The first field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// How a [`Decoder`] reads what lines leave unsaid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The zone of times that carry none (RFC 3164, Cisco ASA, Snare, FortiGate
    /// without `tz`, zoneless ISO): the source's. UTC by default.
    pub zone: Zone,
    /// At most this many fields per event; the rest of a line is not decoded.
    pub max_fields: usize,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            zone: Zone::utc(),
            max_fields: 512,
        }
    }
}

/// Whether `line` starts (after spaces) with a syslog header that [`Decoder`] reads:
/// RFC 5424 (a NILVALUE time included), RFC 3164 or rsyslog's file layout. For a
/// syslog source's count of messages that are not syslog; it says nothing of the time.
/// Cost: a byte check, then one syslog_loose parse (no time is read).
pub fn is_syslog(line: &[u8]) -> bool {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    syslog::parse(line, skip_ws(line, 0, end), end).is_some()
}

/// Decodes the lines of one input (a file, a syslog peer, stdin). Keep one per
/// input: it holds that input's Zeek header.
#[derive(Clone, Debug)]
pub struct Decoder {
    opts: DecodeOptions,
    zeek: zeek::Header,
    /// [`Decoder::time_and_host`]'s last stamp per layout (see [`Site`]): logs that
    /// interleave layouts (several programs in one file) do not evict each other's.
    stamps: [StampCache; Site::COUNT],
    /// [`Decoder::cached_value`]'s key being built.
    scratch: Vec<u8>,
}

/// Where [`Decoder::time_and_host`] read a stamp: one cache entry each.
#[derive(Clone, Copy, Debug)]
enum Site {
    Apache,
    Json,
    Syslog,
    Leading,
}

impl Site {
    const COUNT: usize = 4;
}

/// One layout's last stamp, to the second: its bytes without the fraction of a second
/// (or the stamp as written, nanoseconds zeroed), the reference, and its second.
#[derive(Clone, Debug, Default)]
struct StampCache {
    /// The last value as read, and without its fraction (the key).
    raw: Vec<u8>,
    bytes: Vec<u8>,
    written: Option<Written>,
    reference: Option<DateTime<Utc>>,
    secs: Option<i64>,
    /// Whether the value read as a stamp of the layout at all (a syslog header whose
    /// stamp does not is no such header).
    reads: bool,
}

/// A line's own time and host ([`Decoder::time_and_host`]): what [`Event::time`] (to the
/// second: `timestamp()`) and [`Event::host`] would be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeHost<'a> {
    /// Unix seconds (the fraction dropped, as `DateTime::timestamp` drops it).
    pub time: Option<i64>,
    pub host: Option<Cow<'a, str>>,
}

/// `value` without the fraction of its seconds (`…:05.250+02:00` → `…:05+02:00`):
/// the digits after a `.` or `,` that follows `:SS`. Parsing the result gives the
/// same second (every layout reads the fraction as an addition below one second).
fn without_fraction(value: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 3;
    while i < value.len() {
        if matches!(value[i], b'.' | b',')
            && value[i - 3] == b':'
            && value[i - 2].is_ascii_digit()
            && value[i - 1].is_ascii_digit()
        {
            let mut j = i + 1;
            while j < value.len() && value[j].is_ascii_digit() {
                j += 1;
            }
            if (1..=9).contains(&(j - i - 1)) {
                out.extend_from_slice(&value[..i]);
                out.extend_from_slice(&value[j..]);
                return;
            }
        }
        i += 1;
    }
    out.extend_from_slice(value);
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DecodeOptions::default())
    }
}

/// JSON names of the event time, in order of preference (outermost object only).
const JSON_TIME: [&str; 4] = ["@timestamp", "timestamp", "ts", "time"];
/// JSON names of the event host, in order of preference.
const JSON_HOST: [&str; 4] = ["host.name", "host.hostname", "hostname", "host"];

/// Whether every `"host…` string in `b` (a JSON object holding no escape but `\/`) lies
/// inside a nested object, where no name of [`JSON_HOST`] is read (EVE's
/// `"http":{"hostname":…}`): braces are counted outside strings up to each one. A
/// `"host…` at the top level, or one that is not where a string starts, is `false`
/// (the scan decides). Cost: one look at each byte before the last `"host`.
fn host_keys_all_nested(host: &memchr::memmem::Finder<'_>, b: &[u8]) -> bool {
    let mut depth = 0i32;
    let mut in_string = false;
    let mut i = 0;
    for p in host.find_iter(b) {
        // Quotes come every few bytes: a plain loop beats a search per quote.
        for &c in &b[i..p] {
            match c {
                b'"' => in_string = !in_string,
                b'{' if !in_string => depth += 1,
                b'}' if !in_string => depth -= 1,
                _ => {}
            }
        }
        if in_string || depth <= 1 {
            return false;
        }
        i = p;
    }
    true
}

fn skip_ws(line: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && matches!(line[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// After a `<PRI>` (1 to 3 digits) at `line[i]`, if there is one.
fn skip_pri(line: &[u8], i: usize, end: usize) -> usize {
    let Some(b) = line.get(i..end) else { return i };
    let digits = b.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
    if b.first() == Some(&b'<') && (1..=3).contains(&digits) && b.get(digits + 1) == Some(&b'>') {
        i + digits + 2
    } else {
        i
    }
}

fn text(line: &[u8], span: (usize, usize)) -> Option<String> {
    let v = line.get(span.0..span.1)?;
    (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned())
}

impl Decoder {
    pub fn new(opts: DecodeOptions) -> Decoder {
        Decoder {
            opts,
            zeek: zeek::Header::default(),
            stamps: Default::default(),
            scratch: Vec::new(),
        }
    }

    /// Shows the decoder a line that will not be decoded (one that did not match), so
    /// that it sees the Zeek header at the top of a file. Returns whether the line was
    /// a Zeek header line. Cost: one byte comparison for lines not starting with `#`.
    pub fn observe(&mut self, line: &[u8]) -> bool {
        self.zeek.observe(line)
    }

    /// The options it decodes with.
    pub fn options(&self) -> DecodeOptions {
        self.opts
    }

    /// Forgets what it learnt of its input (a Zeek header) before lines of another
    /// input; keeps its stamp caches.
    pub fn forget_input(&mut self) {
        self.zeek = zeek::Header::default();
    }

    /// Decodes one line (with or without its line ending). `reference` is the time the
    /// line is known to be no later than: the file's modification time in `hunt`, now
    /// in the sidecar; it gives the year of stamps written without one. Never fails:
    /// an unknown layout is [`Format::Plain`].
    pub fn decode(&mut self, line: &[u8], reference: DateTime<Utc>) -> Event {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if self.zeek.observe(line) {
            return Event::new(Format::ZeekTsv);
        }
        self.decode_row(line, end, reference)
    }

    /// [`Decoder::decode`] after the Zeek header check, `end` the line's end without
    /// its line ending.
    fn decode_row(&mut self, line: &[u8], end: usize, reference: DateTime<Utc>) -> Event {
        let mut ev = Event::new(Format::Plain);
        let s = skip_ws(line, 0, end);
        if line.get(s) == Some(&b'{') {
            ev.format = Format::Json;
            self.json(line, s, end, reference, &mut ev);
        } else if self.zeek.active()
            && self
                .zeek
                .row(line, end, self.opts.max_fields, &mut ev.fields)
        {
            ev.format = Format::ZeekTsv;
            self.zeek_row(line, reference, &mut ev);
        } else if let Some(stamp) = apache::parse(line, end, self.opts.max_fields, &mut ev.fields) {
            ev.format = Format::Apache;
            let value = line.get(stamp.0..stamp.1).unwrap_or_default();
            ev.time = time::parse_value(value, &self.opts.zone, reference);
        } else if let Some(format) = self.syslog(line, s, end, reference, &mut ev) {
            ev.format = format;
        } else if let Some(r) = snare::parse(line, s, end) {
            ev.format = Format::Snare;
            ev.host = r.host.and_then(|sp| text(line, sp));
            self.set_time(&mut ev, r.time, reference);
            kv::decode(line, s, end, 2, self.opts.max_fields, &mut ev.fields);
        } else {
            // FortiGate sends `<189>date=... time=...`: a `<PRI>` without a header.
            let s = skip_pri(line, s, end);
            let found = self.pairs(line, s, end, 2, reference, &mut ev);
            if !ev.fields.is_empty() || found == kv::Found::Cef {
                ev.format = Format::KeyValue;
            }
        }
        if ev.time.is_none() {
            let leading = time::leading(line.get(s..end).unwrap_or_default());
            self.set_time(&mut ev, leading, reference);
        }
        self.finish(line, &mut ev);
        ev
    }

    /// Only the line's own time and host, exactly as [`Decoder::decode`] gives them
    /// (`time`, `host`), for recording observables (see [`crate::retro`]). Fast paths,
    /// in the decoder's order of detection: a Zeek header line; an Apache/nginx line (a
    /// hand-written scan of the access log's shape for its stamp: no regex, no
    /// fields); the common RFC 3164 / rsyslog header `[<PRI>]Mmm dd hh:mm:ss host
    /// tag[pid]: ` read by hand (`syslog::quick`: no syslog_loose parse); any other
    /// syslog header that names both a time and a host (the message is not
    /// decoded: an inner time or host is read only when the header has none); a JSON
    /// line starting `{"timestamp":"…"` with no host name at its top level (a few
    /// vectorised searches, no scan: `Decoder::json_quick`), else one scan keeping only the
    /// spans of the time and host names (no field list, no allocation per field); a
    /// BIND 9 log line (`01-Jan-2024 10:00:01.123 …` holding no `=` nor tab) by its
    /// stamp. Any other line (a Zeek row, a syslog header missing either, Snare,
    /// key=value, plain) takes the full [`Decoder::decode`]. The time is in whole
    /// seconds. The last stamp of each layout and its second are kept (per layout, so
    /// that interleaved layouts do not evict each other; compared by their bytes, the
    /// fraction of a second left out): lines of one second do not resolve it again.
    /// Cost on the fast paths: the syslog header's shape check (or a scan of the access
    /// log's head), no allocation but a host that is not UTF-8.
    pub fn time_and_host<'a>(&mut self, line: &'a [u8], reference: DateTime<Utc>) -> TimeHost<'a> {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if self.zeek.observe(line) {
            return TimeHost::default();
        }
        let s = skip_ws(line, 0, end);
        if line.get(s) == Some(&b'{') {
            return self.json_time_and_host(line, s, end, reference);
        }
        if !self.zeek.active() {
            let mut time = None;
            let mut host = None;
            let mut known = false;
            if let Some(stamp) = apache::stamp(line, end) {
                let value = line.get(stamp.0..stamp.1).unwrap_or_default();
                time = self.cached_value(Site::Apache, value, reference);
                known = true;
            } else if let Some((t, (a, b))) = self.quick_syslog(line, s, end, reference) {
                // The common RFC 3164 shape, without syslog_loose: the same time and
                // host (`syslog::quick`).
                time = t;
                host = line.get(a..b).map(String::from_utf8_lossy);
                known = time.is_some();
            } else if let Some(h) = syslog::parse(line, s, end) {
                time = h
                    .time
                    .and_then(|w| self.cached_resolve(Site::Syslog, w, reference));
                host = h
                    .host
                    .and_then(|sp| line.get(sp.0..sp.1))
                    .filter(|v| !v.is_empty())
                    .map(String::from_utf8_lossy);
                // The message decides only what the header leaves open.
                known = time.is_some() && host.is_some();
            } else if let Some(w) = self.bind_quick(line, s, end) {
                time = self.cached_resolve(Site::Leading, w, reference);
                known = true;
            }
            if known {
                if time.is_none() {
                    let leading = time::leading(line.get(s..end).unwrap_or_default());
                    time = leading.and_then(|w| self.cached_resolve(Site::Leading, w, reference));
                }
                return TimeHost { time, host };
            }
        }
        let ev = self.decode_row(line, end, reference);
        TimeHost {
            time: ev.time.map(|t| t.timestamp()),
            host: ev.host.map(Cow::Owned),
        }
    }

    /// [`syslog::quick`]'s time (to the second) and host span, the stamp read through
    /// the syslog site's cache by its bytes (a stamp that does not read is cached
    /// too): `None` when the line is not that shape.
    fn quick_syslog(
        &mut self,
        line: &[u8],
        s: usize,
        end: usize,
        reference: DateTime<Utc>,
    ) -> Option<(Option<i64>, (usize, usize))> {
        let h = syslog::quick_spans(line, s, end)?;
        let stamp = line.get(h.stamp.0..h.stamp.1)?;
        let secs = self.cached_stamp(Site::Syslog, stamp, reference, |v, zone, reference| {
            syslog::quick_stamp(v).map(|w| w.resolve(zone, reference).map(|t| t.timestamp()))
        })?;
        Some((secs, h.host))
    }

    /// A BIND 9 log line (`01-Jan-2024 10:00:01.123 queries: info: client …`): its
    /// stamp, when [`Decoder::decode_row`] would give that time and no host: no `=`
    /// (no key=value pair, no CEF) and no tab (no Snare record) in the line, which is
    /// neither an access log nor syslog (tried before). `None` for any other line.
    fn bind_quick(&self, line: &[u8], s: usize, end: usize) -> Option<Written> {
        let b = line.get(s..end)?;
        let (w, n) = time::bind_at(b)?;
        if b.get(n) != Some(&b' ') || memchr::memchr2(b'=', b'\t', b).is_some() {
            return None;
        }
        Some(w)
    }

    /// [`Decoder::time_and_host`] of a JSON line: [`Decoder::json`]'s time and host
    /// from one scan that keeps only the spans of the host names (no field list), then
    /// the leading time as [`Decoder::decode_row`] falls back to it.
    fn json_time_and_host<'a>(
        &mut self,
        line: &'a [u8],
        s: usize,
        end: usize,
        reference: DateTime<Utc>,
    ) -> TimeHost<'a> {
        if let Some(th) = self.json_quick(line, s, end, reference) {
            return th;
        }
        let mut top = json::TopLevel::new(&JSON_TIME);
        let mut names = json::NamesOnly::new(&JSON_HOST, &["uid", "id.orig_h"]);
        json::scan(line, s, end, self.opts.max_fields, &mut names, &mut top);
        let mut time = top.found.iter().flatten().find_map(|v| {
            let raw = line.get(v.span.0..v.span.1)?;
            if v.quoted && std::str::from_utf8(raw).is_err() {
                return None;
            }
            if v.quoted && memchr::memchr(b'\\', raw).is_some() {
                let s = json::unescape(raw)?;
                time::parse_value(s.as_bytes(), &self.opts.zone, reference).map(|t| t.timestamp())
            } else {
                self.cached_value(Site::Json, raw, reference)
            }
        });
        // A Zeek JSON record's `host` is a peer address, not the event's host.
        let zeek = names.flagged;
        let host = JSON_HOST
            .iter()
            .zip(names.found)
            .filter(|(name, _)| !(zeek && **name == "host"))
            .find_map(|(_, span)| {
                let (a, b) = span?;
                let raw = line.get(a..b)?;
                let quoted = a > 0 && line[a - 1] == b'"';
                let s: Cow<'a, str> = if quoted && memchr::memchr(b'\\', raw).is_some() {
                    Cow::Owned(json::unescape(raw)?)
                } else if quoted {
                    Cow::Borrowed(std::str::from_utf8(raw).ok()?)
                } else {
                    String::from_utf8_lossy(raw)
                };
                (!s.is_empty()).then_some(s)
            });
        if time.is_none() {
            let leading = time::leading(line.get(s..end).unwrap_or_default());
            time = leading.and_then(|w| self.cached_resolve(Site::Leading, w, reference));
        }
        TimeHost { time, host }
    }

    /// The common JSON shape read without a scan: a line that starts with
    /// `{"timestamp":"…"` (Suricata's EVE, many shippers) and holds no backslash but
    /// in `\/`, no `"@timestamp"` (preferred to it) and no `"host…` at the top level
    /// (no host name of [`JSON_HOST`]; EVE's nested `http.hostname` is no host):
    /// the time is that first value (the first scalar of the key, as
    /// [`json::TopLevel`] keeps it), no host. `None` when the line is not that shape
    /// or the value does not read (then the scan decides). Cost: three vectorised
    /// searches of the line (searchers built once) instead of a byte-by-byte scan.
    fn json_quick<'a>(
        &mut self,
        line: &'a [u8],
        s: usize,
        end: usize,
        reference: DateTime<Utc>,
    ) -> Option<TimeHost<'a>> {
        static HOST: LazyLock<memchr::memmem::Finder<'static>> =
            LazyLock::new(|| memchr::memmem::Finder::new(b"\"host"));
        static AT_TIMESTAMP: LazyLock<memchr::memmem::Finder<'static>> =
            LazyLock::new(|| memchr::memmem::Finder::new(b"\"@timestamp\""));
        let b = line.get(s..end)?;
        let rest = b.strip_prefix(br#"{"timestamp":""#)?;
        let raw = &rest[..memchr::memchr(b'"', rest)?];
        // Escaped slashes (`\/`, as Suricata writes every `/`) change no name and no
        // string's end; any other escape leaves the line to the scan.
        if memchr::memchr_iter(b'\\', b).any(|i| b.get(i + 1) != Some(&b'/'))
            || memchr::memchr(b'\\', raw).is_some()
            || !host_keys_all_nested(&HOST, b)
            || AT_TIMESTAMP.find(b).is_some()
            || std::str::from_utf8(raw).is_err()
        {
            return None;
        }
        let time = self.cached_value(Site::Json, raw, reference)?;
        Some(TimeHost {
            time: Some(time),
            host: None,
        })
    }

    /// [`time::parse_value`] in the source's zone, to the second, through `site`'s
    /// cache: the fraction of a second is not part of the key, so lines of one second
    /// hit it whatever their milliseconds.
    fn cached_value(&mut self, site: Site, value: &[u8], reference: DateTime<Utc>) -> Option<i64> {
        self.cached_stamp(site, value, reference, |v, zone, reference| {
            Some(time::parse_value(v, zone, reference).map(|t| t.timestamp()))
        })
        .flatten()
    }

    /// `read(value)` through `site`'s cache: `None` when the value is no stamp of
    /// the layout, else its second (`None` when it does not resolve). Compared first
    /// by its bytes (a stamp without a fraction: no key to build), then without its
    /// fraction of a second (`read` is given that key: it reads the same second).
    fn cached_stamp(
        &mut self,
        site: Site,
        value: &[u8],
        reference: DateTime<Utc>,
        read: impl FnOnce(&[u8], &Zone, DateTime<Utc>) -> Option<Option<i64>>,
    ) -> Option<Option<i64>> {
        let c = &mut self.stamps[site as usize];
        let fresh = c.written.is_none() && c.reference == Some(reference);
        if fresh && c.raw == value {
            return c.reads.then_some(c.secs);
        }
        c.raw.clear();
        c.raw.extend_from_slice(value);
        without_fraction(value, &mut self.scratch);
        if !(fresh && c.bytes == self.scratch) {
            let got = read(&self.scratch, &self.opts.zone, reference);
            std::mem::swap(&mut c.bytes, &mut self.scratch);
            c.written = None;
            c.reference = Some(reference);
            c.reads = got.is_some();
            c.secs = got.flatten();
        }
        c.reads.then_some(c.secs)
    }

    /// [`Written::resolve`] in the source's zone, to the second, through `site`'s
    /// cache (the stamp's nanoseconds zeroed: they do not change the second).
    fn cached_resolve(&mut self, site: Site, w: Written, reference: DateTime<Utc>) -> Option<i64> {
        let w = w.whole_seconds();
        let c = &mut self.stamps[site as usize];
        if c.written == Some(w) && c.reference == Some(reference) {
            return c.secs;
        }
        let secs = w.resolve(&self.opts.zone, reference).map(|t| t.timestamp());
        c.written = Some(w);
        c.reference = Some(reference);
        c.secs = secs;
        secs
    }

    /// Sets the event's time from `w`, read in the source's zone, unless an outer
    /// format already set it.
    fn set_time(&self, ev: &mut Event, w: Option<Written>, reference: DateTime<Utc>) {
        if ev.time.is_none() {
            ev.time = w.and_then(|w| w.resolve(&self.opts.zone, reference));
        }
    }

    /// A syslog header at `line[start..end]` and its message; the header's format.
    fn syslog(
        &self,
        line: &[u8],
        start: usize,
        end: usize,
        reference: DateTime<Utc>,
        ev: &mut Event,
    ) -> Option<Format> {
        let h = syslog::parse(line, start, end)?;
        self.set_time(ev, h.time, reference);
        if ev.host.is_none() {
            ev.host = h.host.and_then(|sp| text(line, sp));
        }
        if ev.app.is_none() {
            ev.app = h.app.and_then(|sp| text(line, sp));
        }
        for (name, span) in h.params {
            if ev.fields.len() < self.opts.max_fields {
                ev.fields.push(Field::new(name, span));
            }
        }
        self.body(line, h.body, end, reference, ev);
        Some(h.format)
    }

    /// A message after a syslog header: a Snare record, JSON (optionally after
    /// `@cee:`), CEF or key=value pairs (one pair is enough here).
    fn body(
        &self,
        line: &[u8],
        start: usize,
        end: usize,
        reference: DateTime<Utc>,
        ev: &mut Event,
    ) {
        let mut s = skip_ws(line, start, end);
        if line.get(s..end).is_some_and(|b| b.starts_with(b"@cee:")) {
            s = skip_ws(line, s + 5, end);
        }
        if s < end && line[s] == b'{' {
            self.json(line, s, end, reference, ev);
            return;
        }
        if let Some(r) = snare::parse(line, s, end) {
            if ev.host.is_none() {
                ev.host = r.host.and_then(|sp| text(line, sp));
            }
            self.set_time(ev, r.time, reference);
        }
        if s < end {
            self.pairs(line, s, end, 1, reference, ev);
        }
    }

    /// CEF or `key=value` pairs at `line[start..end]` (see [`kv::decode`]), then the
    /// time from CEF's `rt` or from `date` + `time` (+ `tz`) where the event has none.
    fn pairs(
        &self,
        line: &[u8],
        start: usize,
        end: usize,
        min_pairs: usize,
        reference: DateTime<Utc>,
        ev: &mut Event,
    ) -> kv::Found {
        let first = ev.fields.len();
        let found = kv::decode(
            line,
            start,
            end,
            min_pairs,
            self.opts.max_fields,
            &mut ev.fields,
        );
        if ev.time.is_some() {
            return found;
        }
        let new = &ev.fields[first..];
        let value = |name: &str| new.iter().find(|f| f.name == name).map(|f| f.value(line));
        ev.time = if found == kv::Found::Cef {
            value("rt").and_then(|v| time::parse_value(v, &self.opts.zone, reference))
        } else {
            let local = time::date_and_time(
                value("date").unwrap_or_default(),
                value("time").unwrap_or_default(),
            );
            let zone = match value("tz") {
                None => Some(self.opts.zone),
                Some(tz) => std::str::from_utf8(tz)
                    .ok()
                    .and_then(|tz| Zone::parse(tz).ok()),
            };
            local.zip(zone).and_then(|(l, z)| z.to_utc(l))
        };
        found
    }

    /// A JSON object at `line[start..end]`: its fields, then time (outermost object
    /// only) and host from them where the event has none yet.
    fn json(
        &self,
        line: &[u8],
        start: usize,
        end: usize,
        reference: DateTime<Utc>,
        ev: &mut Event,
    ) {
        let first = ev.fields.len();
        let mut top = json::TopLevel::new(&JSON_TIME);
        json::scan(
            line,
            start,
            end,
            self.opts.max_fields,
            &mut ev.fields,
            &mut top,
        );
        let new = &mut ev.fields[first..];
        let zeek = new.iter().any(|f| f.name == "uid" || f.name == "id.orig_h");
        if zeek {
            for f in new.iter_mut().filter(|f| f.name == "host") {
                f.role = fields::zeek_role("host");
            }
        }
        if ev.time.is_none() {
            let zone = &self.opts.zone;
            ev.time = top.found.iter().flatten().find_map(|v| {
                let raw = line.get(v.span.0..v.span.1)?;
                if v.quoted {
                    let s = json::unescape(raw)?;
                    time::parse_value(s.as_bytes(), zone, reference)
                } else {
                    time::parse_value(raw, zone, reference)
                }
            });
        }
        let new = &ev.fields[first..];
        if ev.host.is_none() {
            ev.host = JSON_HOST
                .iter()
                .filter(|name| !(zeek && **name == "host"))
                .find_map(|name| {
                    let f = new.iter().find(|f| f.name == *name)?;
                    let raw = line.get(f.span.0..f.span.1)?;
                    let quoted = f.span.0 > 0 && line[f.span.0 - 1] == b'"';
                    let s = if quoted {
                        json::unescape(raw)?
                    } else {
                        String::from_utf8_lossy(raw).into_owned()
                    };
                    (!s.is_empty()).then_some(s)
                });
        }
    }

    /// After a Zeek row's fields: its `ts`, and a `message` column holding syslog or
    /// JSON.
    fn zeek_row(&self, line: &[u8], reference: DateTime<Utc>, ev: &mut Event) {
        if let Some(ts) = ev.field("ts") {
            ev.time = time::parse_value(ts.value(line), &self.opts.zone, reference);
        }
        let Some(msg) = ev.field("message").map(|f| f.span) else {
            return;
        };
        if self.syslog(line, msg.0, msg.1, reference, ev).is_none() {
            self.body(line, msg.0, msg.1, reference, ev);
        }
    }

    /// Addresses from the role fields.
    fn finish(&self, line: &[u8], ev: &mut Event) {
        for f in &ev.fields {
            let slot = match f.role {
                Role::Source => &mut ev.source_ip,
                Role::Destination => &mut ev.destination_ip,
                Role::Other => continue,
            };
            if slot.is_none() {
                *slot = fields::parse_ip(f.value(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn span_of(line: &str, needle: &str) -> (usize, usize) {
        let i = line.find(needle).unwrap();
        (i, i + needle.len())
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Decoder>();
        check::<Event>();
        check::<Field>();
    }

    #[test]
    fn suricata_eve() {
        let l = r#"{"timestamp":"2024-03-01T10:00:00.123456+0100","flow_id":1,"event_type":"tls","src_ip":"10.0.0.5","src_port":51000,"dest_ip":"203.0.113.7","dest_port":443,"proto":"TCP","host":"sensor1","tls":{"sni":"evil.example","version":"TLS 1.2"}}"#;
        let ev = Decoder::default().decode(l.as_bytes(), now());
        assert_eq!(ev.format, Format::Json);
        assert_eq!(
            ev.time.unwrap().to_rfc3339(),
            "2024-03-01T09:00:00.123456+00:00"
        );
        assert_eq!(ev.host.as_deref(), Some("sensor1"));
        assert_eq!(ev.source_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(ev.destination_ip, Some("203.0.113.7".parse().unwrap()));
        let f = ev.field_at(span_of(l, "evil.example")).unwrap();
        assert_eq!((f.name.as_str(), f.role), ("tls.sni", Role::Destination));
        assert_eq!(
            ev.direction_of(span_of(l, "203.0.113.7")),
            Some(Role::Destination)
        );
        assert_eq!(ev.direction_of(span_of(l, "10.0.0.5")), Some(Role::Source));
        assert_eq!(ev.direction_of(span_of(l, "event_type")), None);
    }

    #[test]
    fn zeek_json_host_is_http_host() {
        let l = r#"{"ts":1521911720.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5,"id.resp_h":"198.51.100.2","id.resp_p":80,"host":"evil.example","uri":"/x"}"#;
        let ev = Decoder::default().decode(l.as_bytes(), now());
        assert_eq!(
            ev.time.unwrap().to_rfc3339(),
            "2018-03-24T17:15:20.500+00:00"
        );
        assert_eq!(ev.host, None);
        assert_eq!(
            ev.direction_of(span_of(l, "evil.example")),
            Some(Role::Destination)
        );
        assert_eq!(ev.source_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ev.destination_ip, Some("198.51.100.2".parse().unwrap()));
    }

    #[test]
    fn innermost_field_wins() {
        let ev = Event {
            fields: vec![Field::new("message", (0, 20)), Field::new("src", (5, 12))],
            ..Event::new(Format::ZeekTsv)
        };
        assert_eq!(ev.field_at((6, 9)).unwrap().name, "src");
        assert_eq!(ev.field_at((1, 3)).unwrap().name, "message");
        assert_eq!(ev.field_at((15, 25)), None);
        assert_eq!(ev.field("src").unwrap().span, (5, 12));
    }

    #[test]
    fn line_endings_and_whitespace() {
        let ev = Decoder::default().decode(b"  {\"src_ip\":\"1.2.3.4\"}\r\n", now());
        assert_eq!(ev.format, Format::Json);
        assert_eq!(ev.source_ip, Some("1.2.3.4".parse().unwrap()));
        let ev = Decoder::default().decode(b"", now());
        assert_eq!(ev.format, Format::Plain);
        let ev = Decoder::default().decode(b"\n", now());
        assert_eq!((ev.format, ev.time), (Format::Plain, None));
    }

    #[test]
    fn plain_keeps_time_fallback() {
        let ev = Decoder::default().decode(b"2024-05-01 10:00:03 fw01 blocked 1.2.3.4", now());
        assert_eq!(ev.format, Format::Plain);
        assert_eq!(ev.time.unwrap().to_rfc3339(), "2024-05-01T10:00:03+00:00");
        assert!(ev.fields.is_empty());
        // Only a stamp starting the line is its header: elsewhere it is text.
        let ev = Decoder::default().decode(b"fw01 blocked 1.2.3.4 at 2024-05-01 10:00:03", now());
        assert_eq!((ev.format, ev.time), (Format::Plain, None));
    }

    #[test]
    fn plain_line_host_is_not_an_indicator_value() {
        let ev = Decoder::default().decode(b"2024-05-01T10:00:00Z evil.com no-host", now());
        assert_eq!((ev.format, ev.host), (Format::Plain, None));
        assert_eq!(ev.time.unwrap().to_rfc3339(), "2024-05-01T10:00:00+00:00");
        // A one-label host before free text is still rsyslog's layout.
        let ev = Decoder::default().decode(b"2024-05-01T10:00:03Z fw01 blocked 1.2.3.4", now());
        assert_eq!(ev.format, Format::Syslog3164);
        assert_eq!(ev.host.as_deref(), Some("fw01"));
    }

    #[test]
    fn is_syslog_is_the_decoders_header_check() {
        for (line, want) in [
            (&b"<13>Nov 24 08:59:37 h app: x"[..], true),
            (b"  <13>1 - h app - - - nil time\r\n", true),
            (b"2024-05-01T10:00:00Z fw01 action=block", true),
            (b"<13>short", false),
            (b"2024-05-01 10:00:00 fw01", false),
            (b"\xff\xfe", false),
            (b"", false),
        ] {
            assert_eq!(is_syslog(line), want, "{}", String::from_utf8_lossy(line));
            let format = Decoder::default().decode(line, now()).format;
            let decoded = matches!(format, Format::Syslog3164 | Format::Syslog5424);
            assert_eq!(decoded, want, "{}", String::from_utf8_lossy(line));
        }
    }

    /// Every file under `dir`, recursively.
    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    /// JSON lines take [`Decoder::time_and_host`]'s own scan (no field list): the same
    /// time and host as the full decode, field cap, nesting, Zeek's `host`, escapes
    /// and a leading stamp included.
    #[test]
    fn json_time_and_host_agrees_with_decode() {
        let lines: &[&str] = &[
            r#"{"timestamp":"2024-01-01T00:00:00.020000+0000","src_ip":"10.0.0.1","host":"sensor1"}"#,
            r#"{"@timestamp":"2024-01-01T00:00:01Z","timestamp":"2020-01-01T00:00:00Z","host":{"name":"web01","hostname":"w"}}"#,
            r#"{"file":{"ts":"2020-01-01T00:00:00Z"},"ts":1700000000.5,"hostname":"h2"}"#,
            r#"{"ts":[1,2],"time":"2024-02-02T02:02:02Z","host":""}"#,
            r#"{"ts":"bad","time":"2024-02-02T02:02:02Z","host":"hé"}"#,
            r#"{"time":"2024-02-02T02:02:02Z","host.name":"flat","host":"x"}"#,
            r#"{"uid":"C1","ts":1700000000,"host":"1.2.3.4","hostname":"z"}"#,
            r#"{"id.orig_h":"10.0.0.1","ts":1700000000,"host":"1.2.3.4"}"#,
            r#"{"a":1,"b":2,"c":3,"host":"past-the-cap","time":"2024-03-03T03:03:03Z"}"#,
            r#"  {"time":"2024-03-03T03:03:03Z","host":true,"hostname":12}"#,
            r#"{"time":"2024-03-03T03:03:03Z","host":"cut"#,
            r#"{"msg":"no time","host":"h"}"#,
            r#"{}"#,
            // `json_quick`'s shape and its edges.
            r#"{"timestamp":"2024-01-01T00:00:00.020000+0000","src_ip":"10.0.0.1","event_type":"dns"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","@timestamp":"2020-01-01T00:00:00Z"}"#,
            r#"{"timestamp":"bad","time":"2024-02-02T02:02:02Z"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":"x\"host\":\"h\""}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":{"hostname":"h"}}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","src_ip":"1.2"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","timestamp":"2020-01-01T00:00:00Z"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","ts":1700000000,"host_ip":"1.2.3.4"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":1,"b":2,"c":3,"d":4}"#,
            r#"{"timestamp":1700000000,"time":"2024-02-02T02:02:02Z"}"#,
            // `"host…` names in nested objects only (EVE's http), or also at the top.
            r#"{"timestamp":"2024-01-01T00:00:00.130000+0000","event_type":"http","http":{"hostname":"a.example","url":"/"}}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":"}}{","b":{"hostname":"n"}}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","list":[{"host":"x"}]}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":{"b":{"host":"x"}},"host":"top"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":"{","host":"top"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":{"x":1},"hostname":"top"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":{"hostname":"n"},"host":{"name":"top"}}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","http":{"hostname":"n","url":"\/a\/b"}}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","http":{"hostname":"n"},"ho\/st":"x"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","http":{"hostname":"n"},"\u0068ost":"x"}"#,
            r#"{"timestamp":"2024-01-01T00:00:00Z","a":"\"{","host":"top"}"#,
            r#"{"timestamp":"2024\/01","time":"2024-02-02T02:02:02Z"}"#,
        ];
        let reference = now();
        let quick = lines
            .iter()
            .filter(|l| {
                let l = l.as_bytes();
                Decoder::default()
                    .json_quick(l, 0, l.len(), reference)
                    .is_some()
            })
            .count();
        assert_eq!(quick, 10, "lines read by json_quick");
        for max_fields in [512, 3] {
            let opts = DecodeOptions {
                max_fields,
                ..DecodeOptions::default()
            };
            let mut full = Decoder::new(opts);
            let mut fast = Decoder::new(opts);
            for l in lines {
                let ev = full.decode(l.as_bytes(), reference);
                let th = fast.time_and_host(l.as_bytes(), reference);
                assert_eq!(
                    th.time,
                    ev.time.map(|t| t.timestamp()),
                    "time of {l} (cap {max_fields})"
                );
                assert_eq!(
                    th.host.as_deref(),
                    ev.host.as_deref(),
                    "host of {l} (cap {max_fields})"
                );
            }
        }
    }

    #[test]
    fn time_and_host_agrees_with_decode_on_every_fixture_line() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files = Vec::new();
        files_under(&root.join("logs"), &mut files);
        files_under(&root.join("corpus"), &mut files);
        files.sort();
        assert!(files.len() > 5, "fixtures missing: {files:?}");
        let extra: &[&[u8]] = &[
            b"Jan  1 00:16:40 db01 kernel: [87400.01] [UFW BLOCK] SRC=22.24.129.51 DST=1.2.3.4",
            b"Jan  1 00:16:40 db01 kernel: [87400.01] [UFW BLOCK] SRC=22.24.129.51 DST=1.2.3.4",
            b"Jan  1 00:16:41 web02 postfix/smtpd[30165]: connect from polar2.de[56.253.198.126]",
            b"01-Jan-2024 00:00:00.010 queries: info: client @0x7f 10.5.63.163#27660 (a.b.net)",
            b"1700000000 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1",
            b"1.2.3.4 - \"a b\" [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1",
            b"1.2.3.4 - \"a [x] [17/May/2015:10:05:03 +0000] \"GET /\" 200 1",
            b"1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET \\\" x\" 200 -",
            b"<13>Nov 24 08:59:37 h app: x",
            b"<13>1 - h app - - - nil time",
            b"<13>Nov 24 08:59:37 : no host",
            b"<13>1 2024-01-01T00:00:00Z - app - - - {\"host\":\"inner\"}",
            b"<13>1 - h app - - - {\"time\":\"2020-01-01T00:00:00Z\"}",
            b"<13>1 - - app - - - {\"host\":\"in\",\"time\":\"2020-01-01T00:00:00Z\"}",
            b"2024-05-01T10:00:00Z evil.com no-host",
            b"2024-05-01T10:00:03Z fw01 blocked 1.2.3.4",
            b"<13>Nov 24 08:59:37 h app: {\"host\":\"inner\",\"time\":\"2020-01-01T00:00:00Z\"}",
            // BIND's layout, its quick path and lines it must leave to the full decode;
            // layouts interleaved, fractions that change and seconds that do not.
            b"01-Jan-2024 00:00:00.999 queries: info: client x (a.b.net): query: a.b.net IN A",
            b"{\"timestamp\":\"2024-01-01T00:00:00.020000+0000\",\"event_type\":\"dns\"}",
            b"01-Jan-2024 00:00:01.001 queries: info: client x (a.b.net): query: a.b.net IN A",
            b"{\"timestamp\":\"2024-01-01T00:00:00.999999+0000\",\"event_type\":\"dns\"}",
            b"01-Jan-2024 00:00:01.001 fw date=2024-02-02 time=10:00:00 host=kvhost",
            b"01-Jan-2024 00:00:01.001\tMSWinEventLog\t1\tSecurity",
            b"01-Jan-2024 00:00:01.001 CEF:0|V|P|1|2|n|5|rt=Feb 02 2024 10:00:00 dhost=x",
            b"01-Jan-2024 00:00:01.001:x not a stamp",
            b"31-Feb-2024 00:00:01.001 no such day",
            b"{\"timestamp\":\"2024-01-01T00:00:01.000001+0000\",\"event_type\":\"dns\"}",
            b"{\"timestamp\":\"2024-01-01T00:00:01.1234567891Z\",\"event_type\":\"dns\"}",
            b"{\"timestamp\":\"2024-01-01T00:00:01,5Z\",\"event_type\":\"dns\"}",
            b"{\"timestamp\":\"2024-01-01T00:00:01.Z\",\"event_type\":\"dns\"}",
            b"{\"timestamp\":1704067201.75,\"event_type\":\"dns\"}",
            b"Jan  1 00:00:01.250 h app: fraction in the header",
            b"Jan  1 00:00:01.750 h app: fraction in the header",
            b"Jan  1 00:00:02 h app: no fraction",
            b"1.2.3.4 - - [17/May/2015:10:05:04 +0000] \"GET / HTTP/1.1\" 200 1",
            b"1.2.3.4 - - [17/May/2015:10:05:04 +0100] \"GET / HTTP/1.1\" 200 1",
        ];
        let reference = now();
        let mut lines = 0;
        let mut timed = 0;
        let mut hosted = 0;
        let mut check = |file: &str, data: &[u8]| {
            let mut full = Decoder::default();
            let mut fast = Decoder::default();
            for (n, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
                let ev = full.decode(line, reference);
                let th = fast.time_and_host(line, reference);
                let what = format!("{file}:{}: {}", n + 1, String::from_utf8_lossy(line));
                assert_eq!(th.time, ev.time.map(|t| t.timestamp()), "time of {what}");
                assert_eq!(th.host.as_deref(), ev.host.as_deref(), "host of {what}");
                let end = line.len() - line.iter().rev().take_while(|c| **c == b'\n').count();
                let end = end
                    - line[..end]
                        .iter()
                        .rev()
                        .take_while(|c| **c == b'\r')
                        .count();
                let mut fields = Vec::new();
                let regex = apache::parse(line, end, 512, &mut fields);
                assert_eq!(apache::stamp(line, end), regex, "apache stamp of {what}");
                lines += 1;
                timed += usize::from(th.time.is_some());
                hosted += usize::from(th.host.is_some());
            }
        };
        for f in &files {
            let data = std::fs::read(f).unwrap();
            check(&f.display().to_string(), &data);
        }
        check("extra", &extra.join(&b'\n'));
        assert!(
            lines > 1000 && timed > 500 && hosted > 100,
            "{lines} {timed} {hosted}"
        );
    }

    /// `syslog::quick` (the hand-read RFC 3164 / rsyslog header of
    /// [`Decoder::time_and_host`]) gives the time and host that syslog_loose's parse
    /// gives, on every fixture line it reads and on variants of each (case, spacing,
    /// host and tag shapes it must leave to the parser); and `time_and_host` still
    /// equals `decode` on every variant.
    #[test]
    fn quick_header_agrees_with_parse_on_every_fixture_line() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files = Vec::new();
        files_under(&root.join("logs"), &mut files);
        files_under(&root.join("corpus"), &mut files);
        files.sort();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for f in &files {
            let data = std::fs::read(f).unwrap();
            for l in data.split(|&b| b == b'\n') {
                lines.push(l.strip_suffix(b"\r").unwrap_or(l).to_vec());
            }
        }
        for l in [
            &b"Jan  1 00:16:41 web02 postfix/smtpd[30165]: connect from x.de[1.2.3.4]"[..],
            b"<13>Nov 24 08:59:37 h app: x",
            b"<13>Nov 24 08:59:37 h app:",
            b"2024-05-01T10:00:00Z fw01 sshd[12]: Accepted",
            b"2024-05-01T10:00:00.123+02:00 a.b.example kernel: x",
            b"Mar 04 2024 10:00:01: %ASA-6-302013: Built",
            b"Jan  1 00:00:00 2024 kernel: x",
            b"Jan  1 00:00:00 1234 kernel: x",
        ] {
            lines.push(l.to_vec());
        }
        // Variants of each line `quick` reads: shapes at its edges.
        let mut variants = Vec::new();
        for l in &lines {
            if syslog::quick(l, 0, l.len()).is_none() {
                continue;
            }
            let text = String::from_utf8_lossy(l).into_owned();
            let at = text.find(": ").unwrap_or(text.len());
            for v in [
                text.replacen("Jan", "jan", 1).replacen("Nov", "NOV", 1),
                text.replacen(' ', "  ", 1),
                format!("{}:{}", &text[..at], text.get(at + 2..).unwrap_or("")),
                format!("{}[x]{}", &text[..at], &text[at..]),
                format!("{} CEF{}", &text[..at], &text[at..]),
                text.replacen(": ", "=1: ", 1),
                format!("<13> {text}"),
                format!("<1234>{text}"),
                format!("  {text}"),
                format!("{text}\r"),
            ] {
                variants.push(v.into_bytes());
            }
            let sp: Vec<usize> = text.match_indices(' ').map(|(i, _)| i).collect();
            if let Some(w) = sp.windows(2).find(|w| {
                let host = &text[w[0] + 1..w[1]];
                !host.is_empty()
                    && !host.contains(':')
                    && host.bytes().any(|b| b.is_ascii_alphabetic())
            }) {
                for host in ["%ASA-6", "a=b", "12345", "1.2.3.4", "x.evil.com", "mx_1"] {
                    variants
                        .push(format!("{}{host}{}", &text[..w[0] + 1], &text[w[1]..]).into_bytes());
                }
            }
        }
        let reference = now();
        let mut quick = 0;
        for l in lines.iter().chain(&variants) {
            let what = String::from_utf8_lossy(l);
            let s = skip_ws(l, 0, l.len());
            if let Some((w, host)) = syslog::quick(l, s, l.len()) {
                quick += 1;
                let h =
                    syslog::parse(l, s, l.len()).unwrap_or_else(|| panic!("not syslog: {what}"));
                assert_eq!(h.time, Some(w), "time of {what}");
                assert_eq!(h.host, Some(host), "host of {what}");
            }
            let mut full = Decoder::default();
            let mut fast = Decoder::default();
            let ev = full.decode(l, reference);
            let th = fast.time_and_host(l, reference);
            assert_eq!(th.time, ev.time.map(|t| t.timestamp()), "time of {what}");
            assert_eq!(th.host.as_deref(), ev.host.as_deref(), "host of {what}");
        }
        assert!(quick > 200, "the quick header read only {quick} line(s)");
    }

    #[test]
    fn max_fields_caps_every_format() {
        let mut d = Decoder::new(DecodeOptions {
            max_fields: 2,
            ..DecodeOptions::default()
        });
        for l in [
            &br#"{"a":1,"b":2,"c":3,"d":4}"#[..],
            b"a=1 b=2 c=3 d=4",
            b"<13>1 2024-01-01T00:00:00Z h a - - [x a=\"1\" b=\"2\" c=\"3\"] k=1 l=2",
        ] {
            assert_eq!(d.decode(l, now()).fields.len(), 2);
        }
    }
}
