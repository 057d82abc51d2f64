//! Apache (and nginx) access logs in the common and combined formats:
//! `client ident user [17/May/2015:10:05:03 +0000] "GET /path HTTP/1.1" 200 123
//! "referer" "user agent"`.
//!
//! Fields (ECS names): `source.address` (the client, a source; also the event's
//! source IP when it is an address), `user.name`, `http.request.method`,
//! `url.original` (the request target), `http.request.referrer`,
//! `user_agent.original`, `http.response.status_code`. Quoted parts may hold `\"`
//! escapes, as Apache writes them. The time is the bracketed one, and only it (a time
//! in the request, referrer or user agent is text); the decoder reads it strictly.
//!
//! Cost: one anchored regex match per line.

use std::sync::OnceLock;

use regex::bytes::Regex;

use super::fields::Field;

fn pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(
            r#"(?x-u)
            ^([^\ \t"\[\]]+)\ [^\ ]+\ ([^\ ]+|"[^"]*")\ \[([^\]]{10,40})\]\ 
            "((?:[^"\\]|\\.)*)"\ ([0-9]{3}|-)\ ([0-9]+|-)
            (?:\ "((?:[^"\\]|\\.)*)"\ "((?:[^"\\]|\\.)*)")?"#,
        )
        .expect("static regex")
    })
}

/// An access log line: its fields (appended to `out`, at most `max` in total) and the
/// span of its bracketed time (without the brackets). `None` when the line is not one.
pub(crate) fn parse(
    line: &[u8],
    end: usize,
    max: usize,
    out: &mut Vec<Field>,
) -> Option<(usize, usize)> {
    let text = line.get(..end)?;
    let c = pattern().captures(text)?;
    let mut push = |name: &str, span: Option<(usize, usize)>| {
        if let Some(span) = span {
            let v = &line[span.0..span.1];
            if !v.is_empty() && v != b"-" && out.len() < max {
                out.push(Field::new(name, span));
            }
        }
    };
    let group = |i: usize| c.get(i).map(|m| (m.start(), m.end()));
    push("source.address", group(1));
    push("user.name", group(2));
    if let Some(req) = c.get(4) {
        // "METHOD target PROTOCOL"
        let r = req.as_bytes();
        let mut parts = r.split(|&b| b == b' ').scan(req.start(), |pos, p| {
            let s = *pos;
            *pos += p.len() + 1;
            Some((s, s + p.len()))
        });
        let method = parts.next();
        let target = parts.next();
        if target.is_some() {
            push("http.request.method", method);
            push("url.original", target);
        } else {
            push("url.original", method);
        }
    }
    push("http.response.status_code", group(5));
    push("http.request.referrer", group(7));
    push("user_agent.original", group(8));
    let stamp = c.get(3)?;
    Some((stamp.start(), stamp.end()))
}

/// The span of the bracketed time of an access log line, without its fields: the
/// lines [`parse`] accepts and the same span, by a hand-written scan of the regex's
/// shape (no captures, no backtracking; cost: one pass over the line's head). Each
/// part of the regex is deterministic but the user (`[^ ]+` or `"[^"]*"`, tried in
/// that order, as the regex prefers them).
pub(crate) fn stamp(line: &[u8], end: usize) -> Option<(usize, usize)> {
    let b = line.get(..end)?;
    // ^([^ \t"\[\]]+)\
    let client = b
        .iter()
        .take_while(|&&c| !matches!(c, b' ' | b'\t' | b'"' | b'[' | b']'))
        .count();
    if client == 0 || b.get(client) != Some(&b' ') {
        return None;
    }
    // [^\ ]+\
    let i = client + 1;
    let ident = b[i..].iter().take_while(|&&c| c != b' ').count();
    if ident == 0 || b.get(i + ident) != Some(&b' ') {
        return None;
    }
    let u = i + ident + 1;
    // ([^\ ]+|"[^"]*")\
    let word = b[u..].iter().take_while(|&&c| c != b' ').count();
    if word > 0 {
        if let Some(span) = after_user(b, u + word) {
            return Some(span);
        }
    }
    if b.get(u) == Some(&b'"') {
        let close = memchr::memchr(b'"', &b[u + 1..])?;
        return after_user(b, u + 1 + close + 1);
    }
    None
}

/// The rest of the access log regex from just after the user: `\ \[([^\]]{10,40})\]\
/// "((?:[^"\\]|\\.)*)"\ ([0-9]{3}|-)\ ([0-9]+|-)`; the stamp's span.
fn after_user(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if b.get(i..i + 2) != Some(b" [") {
        return None;
    }
    let s = i + 2;
    let window = &b[s..b.len().min(s + 41)];
    let n = memchr::memchr(b']', window)?;
    if !(10..=40).contains(&n) {
        return None;
    }
    let e = s + n;
    let mut k = e + 1;
    if b.get(k..k + 2) != Some(b" \"") {
        return None;
    }
    k += 2;
    loop {
        // Vectorised to the next quote or backslash.
        k += memchr::memchr2(b'"', b'\\', b.get(k..)?)?;
        if b[k] == b'"' {
            break;
        }
        if matches!(b.get(k + 1), None | Some(b'\n')) {
            return None;
        }
        k += 2;
    }
    k += 1;
    if b.get(k) != Some(&b' ') {
        return None;
    }
    k += 1;
    if b.get(k) == Some(&b'-') {
        k += 1;
    } else if b
        .get(k..k + 3)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    {
        k += 3;
    } else {
        return None;
    }
    if b.get(k) != Some(&b' ') {
        return None;
    }
    k += 1;
    match b.get(k) {
        Some(c) if *c == b'-' || c.is_ascii_digit() => Some((s, e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::time::parse_value;
    use crate::decode::{Role, Zone};

    /// The time (RFC 3339) and the fields (name, value, role).
    type Got = (Option<String>, Vec<(String, String, Role)>);

    fn run(s: &str) -> Option<Got> {
        let mut out = Vec::new();
        let stamp = parse(s.as_bytes(), s.len(), 100, &mut out)?;
        let reference = chrono::Utc::now();
        let t = parse_value(&s.as_bytes()[stamp.0..stamp.1], &Zone::utc(), reference);
        let f = out
            .iter()
            .map(|f| {
                let v = String::from_utf8_lossy(f.value(s.as_bytes())).into_owned();
                (f.name.clone(), v, f.role)
            })
            .collect();
        Some((t.map(|t| t.to_rfc3339()), f))
    }

    #[test]
    fn combined() {
        let s = r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/" "Mozilla/5.0 (Macintosh) \"quoted\"""#;
        let (t, f) = run(s).unwrap();
        assert_eq!(t.as_deref(), Some("2015-05-17T10:05:03+00:00"));
        let nv: Vec<(&str, &str)> = f.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect();
        assert_eq!(
            nv,
            [
                ("source.address", "83.149.9.216"),
                ("http.request.method", "GET"),
                ("url.original", "/presentations/x.png"),
                ("http.response.status_code", "200"),
                (
                    "http.request.referrer",
                    "http://semicomplete.com/presentations/"
                ),
                (
                    "user_agent.original",
                    r#"Mozilla/5.0 (Macintosh) \"quoted\""#
                ),
            ]
        );
        assert_eq!(f[0].2, Role::Source);
    }

    #[test]
    fn common_with_user_and_zone() {
        let s = r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let (t, f) = run(s).unwrap();
        assert_eq!(t.as_deref(), Some("2000-10-10T20:55:36+00:00"));
        assert_eq!(f[1], ("user.name".into(), "frank".into(), Role::Other));
        assert_eq!(f.len(), 5);
        // A malformed request line is kept whole as the target.
        let (_, f) = run(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03" 400 -"#).unwrap();
        assert_eq!(f[1].0, "url.original");
    }

    #[test]
    fn not_apache() {
        for s in [
            "",
            "1.2.3.4 - - [bad] \"GET /\" 200 1",
            "2024-05-01T10:00:00Z fw01 action=block",
            "1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1",
        ] {
            assert!(run(s).is_none(), "{s}");
        }
        // A time that cannot be read still gives the fields.
        let (t, f) =
            run(r#"1.2.3.4 - - [99/Foo/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1"#).unwrap();
        assert_eq!((t, f.len()), (None, 4));
    }
}
