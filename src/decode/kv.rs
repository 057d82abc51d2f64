//! `key=value` lines: firewall logs (`src=1.2.3.4 dst=... dport=443`), Linux UFW
//! (`[UFW BLOCK] IN=eth0 SRC=... DST=...`), quoted values (`devname="fw 1"`), and CEF
//! (`CEF:0|Vendor|Product|Version|SigID|Name|Sev|src=... shost=... msg=a b c`).
//!
//! Generic pairs: a key (`[A-Za-z_][A-Za-z0-9_.-]*`) starts the line or follows a
//! space or tab; an unquoted value runs to the next space, a quoted one (`"` or `'`,
//! backslash escapes) to its closing quote, and its span excludes the quotes. Empty
//! values (UFW's `OUT=`) give no field. CEF extensions follow the CEF rule instead: a
//! value runs up to the space before the next `key=`, so values may hold spaces. The
//! CEF header gives `deviceVendor`, `deviceProduct`, `deviceVersion`, `signatureId`,
//! `name` and `severity` (ArcSight's names).
//!
//! Cost: one pass over the line; one `String` per field (its key).

use super::fields::Field;

/// How far into the text a `CEF:` header is looked for (a syslog header may precede it).
const CEF_WINDOW: usize = 512;

/// CEF header field names, in order, after the `CEF:Version`.
const CEF_HEADER: [&str; 6] = [
    "deviceVendor",
    "deviceProduct",
    "deviceVersion",
    "signatureId",
    "name",
    "severity",
];

/// What [`decode`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Cef,
    /// This many generic pairs (fields were appended only if at least `min_pairs`).
    Pairs(usize),
}

/// Decodes `line[start..end]` as CEF if it holds a CEF header near its start, else as
/// generic pairs, appending fields only when it is CEF or has at least `min_pairs`
/// pairs. At most `max` fields in `out` in total.
pub(crate) fn decode(
    line: &[u8],
    start: usize,
    end: usize,
    min_pairs: usize,
    max: usize,
    out: &mut Vec<Field>,
) -> Found {
    let end = end.min(line.len());
    if start >= end {
        return Found::Pairs(0);
    }
    if let Some(at) = find_cef(line, start, end) {
        if cef(line, at, end, max, out) {
            return Found::Cef;
        }
    }
    let mut found = Vec::new();
    pairs(line, start, end, &mut found);
    let n = found.len();
    if n >= min_pairs.max(1) {
        for f in found {
            if out.len() >= max {
                break;
            }
            out.push(f);
        }
    }
    Found::Pairs(n)
}

/// Where `CEF:<digit>|` starts, at the start of the text or after a non-alphanumeric
/// byte, within [`CEF_WINDOW`] bytes of `start`.
fn find_cef(line: &[u8], start: usize, end: usize) -> Option<usize> {
    let window = &line[start..end.min(start + CEF_WINDOW)];
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&window[from..], b"CEF:") {
        let at = from + i;
        let before_ok = at == 0 || !window[at - 1].is_ascii_alphanumeric();
        let digit = line.get(start + at + 4).is_some_and(u8::is_ascii_digit);
        if before_ok && digit {
            return Some(start + at);
        }
        from = at + 4;
    }
    None
}

fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// The end of a key followed by `=` starting at `i`, if there is one.
fn key_at(line: &[u8], i: usize, end: usize) -> Option<usize> {
    if !is_key_start(*line.get(i)?) {
        return None;
    }
    let mut j = i + 1;
    while j < end && is_key_byte(line[j]) {
        j += 1;
    }
    (j < end && line[j] == b'=').then_some(j)
}

/// Generic `key=value` pairs of `line[start..end]`.
fn pairs(line: &[u8], start: usize, end: usize, out: &mut Vec<Field>) {
    let mut i = start;
    while i < end {
        let at_boundary = i == start || matches!(line[i - 1], b' ' | b'\t');
        let key_end = if at_boundary {
            key_at(line, i, end)
        } else {
            None
        };
        let Some(k) = key_end else {
            // Skip to the next space.
            i = match memchr::memchr2(b' ', b'\t', &line[i..end]) {
                Some(n) => i + n + 1,
                None => end,
            };
            continue;
        };
        let key = String::from_utf8_lossy(&line[i..k]).into_owned();
        let v = k + 1;
        let (span, next) = match line.get(v) {
            Some(&q @ (b'"' | b'\'')) if v < end => match closing_quote(line, v + 1, end, q) {
                Some(c) => ((v + 1, c), c + 1),
                // Unterminated: the rest of the text is the value.
                None => ((v + 1, end), end),
            },
            _ => {
                let e = memchr::memchr2(b' ', b'\t', &line[v..end]).map_or(end, |n| v + n);
                ((v, e), e)
            }
        };
        if span.1 > span.0 {
            out.push(Field::new(key, span));
        }
        i = next.max(i + 1);
    }
}

fn closing_quote(line: &[u8], mut i: usize, end: usize, q: u8) -> Option<usize> {
    while i < end {
        match line[i] {
            b'\\' => i += 2,
            c if c == q => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index of the next `|` not escaped by a backslash, from `i`.
fn next_pipe(line: &[u8], mut i: usize, end: usize) -> Option<usize> {
    while i < end {
        match line[i] {
            b'\\' => i += 2,
            b'|' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A CEF record at `line[at..end]` (`at` is the `C` of `CEF:`). False when the header
/// is incomplete (nothing appended then).
fn cef(line: &[u8], at: usize, end: usize, max: usize, out: &mut Vec<Field>) -> bool {
    let mut i = at + 4;
    let mut start = i;
    // The version, then the six named header fields; each ends with a pipe.
    let mut spans = [(0usize, 0usize); 7];
    for s in spans.iter_mut() {
        let Some(p) = next_pipe(line, i, end) else {
            return false;
        };
        *s = (start, p);
        i = p + 1;
        start = i;
    }
    for (name, span) in CEF_HEADER.iter().zip(&spans[1..]) {
        if span.1 > span.0 && out.len() < max {
            out.push(Field::new(*name, *span));
        }
    }
    extension(line, i, end, max, out);
    true
}

/// CEF extension pairs: a key follows the start or a space; its value runs to the
/// space before the next key (trailing spaces trimmed).
fn extension(line: &[u8], start: usize, end: usize, max: usize, out: &mut Vec<Field>) {
    let mut keys: Vec<(usize, usize)> = Vec::new(); // (key start, '=' index)
    let mut i = start;
    while i < end {
        if (i == start || line[i - 1] == b' ') && line[i] != b' ' {
            if let Some(eq) = key_at(line, i, end) {
                // CEF keys have no dots or dashes, but accept them as firewalls do.
                keys.push((i, eq));
                i = eq + 1;
                continue;
            }
        }
        i += 1;
    }
    for (n, &(k, eq)) in keys.iter().enumerate() {
        let mut e = keys.get(n + 1).map_or(end, |next| next.0);
        while e > eq + 1 && matches!(line[e - 1], b' ' | b'\t') {
            e -= 1;
        }
        if e > eq + 1 && out.len() < max {
            let key = String::from_utf8_lossy(&line[k..eq]).into_owned();
            out.push(Field::new(key, (eq + 1, e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Role;

    fn run(s: &str, min: usize) -> (Found, Vec<(String, String, Role)>) {
        let mut out = Vec::new();
        let found = decode(s.as_bytes(), 0, s.len(), min, 100, &mut out);
        let got = out
            .iter()
            .map(|f| {
                let v = String::from_utf8_lossy(f.value(s.as_bytes())).into_owned();
                (f.name.clone(), v, f.role)
            })
            .collect();
        (found, got)
    }

    fn names_values(v: &[(String, String, Role)]) -> Vec<(&str, &str)> {
        v.iter().map(|(n, v, _)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn firewall_pairs() {
        let (found, got) = run(
            r#"action=block src=91.198.51.77 dst=192.168.1.5 dport=443 devname="fw 1" note='it\'s' e="#,
            2,
        );
        assert_eq!(found, Found::Pairs(6));
        assert_eq!(
            names_values(&got),
            [
                ("action", "block"),
                ("src", "91.198.51.77"),
                ("dst", "192.168.1.5"),
                ("dport", "443"),
                ("devname", "fw 1"),
                ("note", r"it\'s"),
            ]
        );
        assert_eq!(got[1].2, Role::Source);
        assert_eq!(got[2].2, Role::Destination);
    }

    #[test]
    fn ufw() {
        let s = "[UFW BLOCK] IN=eth0 OUT= MAC=00:11 SRC=203.0.113.9 DST=10.0.0.2 LEN=60 PROTO=TCP SPT=5555 DPT=22 SYN URGP=0";
        let (found, got) = run(s, 2);
        assert!(matches!(found, Found::Pairs(n) if n >= 8));
        let src = got.iter().find(|f| f.0 == "SRC").unwrap();
        assert_eq!((src.1.as_str(), src.2), ("203.0.113.9", Role::Source));
        let dst = got.iter().find(|f| f.0 == "DST").unwrap();
        assert_eq!((dst.1.as_str(), dst.2), ("10.0.0.2", Role::Destination));
        assert!(got.iter().all(|f| f.0 != "OUT"));
    }

    #[test]
    fn too_few_pairs_or_not_at_boundary() {
        assert_eq!(run("just a=1 sentence", 2), (Found::Pairs(1), vec![]));
        assert_eq!(run("GET http://x/?a=1&b=2 x=", 2).0, Found::Pairs(0));
        assert_eq!(run("", 2).0, Found::Pairs(0));
        assert_eq!(run("1a=2 =3", 1).0, Found::Pairs(0));
    }

    #[test]
    fn cef_header_and_extension() {
        let s = r"CEF:0|Trend Micro|Deep Security|9.6|20|Web\|Reputation|6|src=10.0.0.5 shost=ws01.corp suser=alice dst=198.51.100.7 dhost=evil.example msg=Blocked a bad \= site  act=block";
        let (found, got) = run(s, 2);
        assert_eq!(found, Found::Cef);
        assert_eq!(
            names_values(&got),
            [
                ("deviceVendor", "Trend Micro"),
                ("deviceProduct", "Deep Security"),
                ("deviceVersion", "9.6"),
                ("signatureId", "20"),
                ("name", r"Web\|Reputation"),
                ("severity", "6"),
                ("src", "10.0.0.5"),
                ("shost", "ws01.corp"),
                ("suser", "alice"),
                ("dst", "198.51.100.7"),
                ("dhost", "evil.example"),
                ("msg", r"Blocked a bad \= site"),
                ("act", "block"),
            ]
        );
        let roles: Vec<Role> = got[6..11].iter().map(|f| f.2).collect();
        assert_eq!(
            roles,
            [
                Role::Source,
                Role::Source,
                Role::Source,
                Role::Destination,
                Role::Destination
            ]
        );
    }

    #[test]
    fn cef_after_prefix_and_incomplete() {
        let s = "host CEF:0|V|P|1|2|N|3|src=1.2.3.4";
        let mut out = Vec::new();
        assert_eq!(
            decode(s.as_bytes(), 0, s.len(), 2, 100, &mut out),
            Found::Cef
        );
        assert_eq!(out.last().unwrap().value(s.as_bytes()), b"1.2.3.4");
        // Not a CEF header: falls back to pairs.
        let (found, _) = run("xCEF:0|a|b src=1 dst=2", 2);
        assert_eq!(found, Found::Pairs(2));
        let (found, got) = run("CEF:0|V|P|1|2", 2);
        assert_eq!((found, got.len()), (Found::Pairs(0), 0));
    }

    #[test]
    fn unterminated_quote_takes_the_rest() {
        let (_, got) = run(r#"a=1 b="unterminated value"#, 2);
        assert_eq!(
            names_values(&got),
            [("a", "1"), ("b", "unterminated value")]
        );
    }
}
