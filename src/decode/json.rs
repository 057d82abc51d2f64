//! JSON objects (Suricata EVE, Zeek JSON, ECS, `@cee:` payloads): every string and
//! number value becomes a [`Field`] named by its dotted path (`dns.rrname`,
//! `source.ip`; array elements keep their array's name), spanning the value's raw text
//! in the line: for a string the bytes between the quotes, escapes left as written.
//!
//! The scan also reports the first **top-level** scalar value of the keys a caller asks
//! for ([`TopLevel`]): the event's time is read from `{"@timestamp": ...}` only, never
//! from `{"file": {"ts": ...}}` (`file.ts`), from an array (`{"ts": [...]}`), or from
//! text inside another value; and it is found even past the field cap.
//!
//! Cost: one pass over the bytes with no tree and no unescaping, except for keys that
//! hold an escape; one `String` per field (its name). Nesting is capped at
//! [`MAX_DEPTH`]. A truncated or invalid document keeps the fields read before the
//! fault, so a cut line still gives context.

use super::fields::Field;

/// Deeper objects and arrays end the scan (the fields read so far are kept).
pub(crate) const MAX_DEPTH: usize = 64;

/// A scalar value of the document: its span (for a string, inside the quotes, still
/// escaped) and whether it was a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scalar {
    pub span: (usize, usize),
    pub quoted: bool,
}

/// The keys whose top-level values a scan reports, and what it found: `found[i]` is the
/// first scalar value of `keys[i]` directly in the outermost object.
pub(crate) struct TopLevel<'k, const N: usize> {
    pub keys: &'k [&'k str; N],
    pub found: [Option<Scalar>; N],
}

impl<'k, const N: usize> TopLevel<'k, N> {
    pub(crate) fn new(keys: &'k [&'k str; N]) -> Self {
        TopLevel {
            keys,
            found: [None; N],
        }
    }
}

/// Where a scan's fields go: a list of [`Field`]s, or a [`NamesOnly`] that keeps only
/// the spans of a few names (for [`super::Decoder::time_and_host`]: no allocation per
/// field).
pub(crate) trait Sink {
    /// Fields taken so far (the scan stops adding past its cap).
    fn taken(&self) -> usize;
    fn add(&mut self, path: &str, span: (usize, usize));
}

impl Sink for Vec<Field> {
    fn taken(&self) -> usize {
        self.len()
    }
    fn add(&mut self, path: &str, span: (usize, usize)) {
        self.push(Field::new(path, span));
    }
}

/// Counts the fields a scan would take and keeps the span of the first field of each
/// of `names` among them, and whether any was named one of `flags`.
pub(crate) struct NamesOnly<'k, const N: usize, const F: usize> {
    pub names: &'k [&'k str; N],
    pub found: [Option<(usize, usize)>; N],
    pub flags: &'k [&'k str; F],
    pub flagged: bool,
    pub taken: usize,
}

impl<'k, const N: usize, const F: usize> NamesOnly<'k, N, F> {
    pub(crate) fn new(names: &'k [&'k str; N], flags: &'k [&'k str; F]) -> Self {
        NamesOnly {
            names,
            found: [None; N],
            flags,
            flagged: false,
            taken: 0,
        }
    }
}

impl<const N: usize, const F: usize> Sink for NamesOnly<'_, N, F> {
    fn taken(&self) -> usize {
        self.taken
    }
    fn add(&mut self, path: &str, span: (usize, usize)) {
        self.taken += 1;
        if let Some(i) = self.names.iter().position(|n| *n == path) {
            self.found[i].get_or_insert(span);
        }
        self.flagged |= self.flags.contains(&path);
    }
}

/// Scans the JSON value starting at `line[start]` (a `{`), up to `end`, appending at
/// most `max` fields in total to `out` and filling `top`. Returns whether the document
/// was complete.
pub(crate) fn scan<const N: usize>(
    line: &[u8],
    start: usize,
    end: usize,
    max: usize,
    out: &mut impl Sink,
    top: &mut TopLevel<'_, N>,
) -> bool {
    let b = line.get(..end.min(line.len())).unwrap_or_default();
    let mut s = Scanner {
        b,
        i: start,
        path: String::new(),
        stack: Vec::new(),
        max,
    };
    s.run(out, top).is_some()
}

struct Frame {
    object: bool,
    /// `path` length while inside this container.
    base: usize,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    path: String,
    stack: Vec<Frame>,
    max: usize,
}

enum Next {
    Value,
    Key,
    After,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Index of the closing quote of the string whose first byte is at `from`.
    fn string_end(&self, mut from: usize) -> Option<usize> {
        loop {
            let j = from + memchr::memchr2(b'"', b'\\', self.b.get(from..)?)?;
            if self.b[j] == b'"' {
                return Some(j);
            }
            from = j + 2;
        }
    }

    fn emit<const N: usize>(
        &self,
        span: (usize, usize),
        quoted: bool,
        out: &mut impl Sink,
        top: &mut TopLevel<'_, N>,
    ) {
        if self.path.is_empty() {
            return;
        }
        // Directly in the outermost object (not in an array, not nested): the path is
        // the key itself.
        if self.stack.len() == 1 && self.stack[0].object {
            if let Some(i) = top.keys.iter().position(|k| *k == self.path) {
                top.found[i].get_or_insert(Scalar { span, quoted });
            }
        }
        if out.taken() < self.max {
            out.add(self.path.as_str(), span);
        }
    }

    fn run<const N: usize>(
        &mut self,
        out: &mut impl Sink,
        top: &mut TopLevel<'_, N>,
    ) -> Option<()> {
        let mut next = Next::Value;
        loop {
            self.ws();
            match next {
                Next::Value => {
                    let c = self.peek()?;
                    match c {
                        b'{' | b'[' => {
                            if self.stack.len() >= MAX_DEPTH {
                                return None;
                            }
                            self.stack.push(Frame {
                                object: c == b'{',
                                base: self.path.len(),
                            });
                            self.i += 1;
                            self.ws();
                            let close = if c == b'{' { b'}' } else { b']' };
                            if self.peek() == Some(close) {
                                self.i += 1;
                                self.stack.pop();
                                next = Next::After;
                            } else if c == b'{' {
                                next = Next::Key;
                            }
                        }
                        b'"' => {
                            let e = self.string_end(self.i + 1)?;
                            self.emit((self.i + 1, e), true, out, top);
                            self.i = e + 1;
                            next = Next::After;
                        }
                        _ => {
                            let s = self.i;
                            while self.i < self.b.len()
                                && !matches!(
                                    self.b[self.i],
                                    b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'
                                )
                            {
                                self.i += 1;
                            }
                            let tok = &self.b[s..self.i];
                            match tok.first() {
                                Some(b'-' | b'0'..=b'9') => self.emit((s, self.i), false, out, top),
                                _ if matches!(tok, b"true" | b"false" | b"null") => {}
                                _ => return None,
                            }
                            next = Next::After;
                        }
                    }
                }
                Next::Key => {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let e = self.string_end(self.i + 1)?;
                    let raw = &self.b[self.i..=e];
                    let key: std::borrow::Cow<str> = if memchr::memchr(b'\\', raw).is_some() {
                        serde_json::from_slice::<String>(raw)
                            .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
                            .into()
                    } else {
                        String::from_utf8_lossy(&raw[1..raw.len() - 1])
                    };
                    if !self.path.is_empty() {
                        self.path.push('.');
                    }
                    self.path.push_str(&key);
                    self.i = e + 1;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    next = Next::Value;
                }
                Next::After => {
                    let Some(top) = self.stack.last() else {
                        return Some(());
                    };
                    let (object, base) = (top.object, top.base);
                    if object {
                        self.path.truncate(base);
                    }
                    match (self.peek()?, object) {
                        (b',', true) => {
                            self.i += 1;
                            next = Next::Key;
                        }
                        (b',', false) => {
                            self.i += 1;
                            next = Next::Value;
                        }
                        (b'}', true) | (b']', false) => {
                            self.i += 1;
                            self.stack.pop();
                            next = Next::After;
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

/// The text of a JSON string value whose raw (escaped) bytes are `raw`.
pub(crate) fn unescape(raw: &[u8]) -> Option<String> {
    if memchr::memchr(b'\\', raw).is_none() {
        return std::str::from_utf8(raw).ok().map(str::to_owned);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> (bool, Vec<(String, String)>) {
        let mut out = Vec::new();
        let ok = scan(
            s.as_bytes(),
            0,
            s.len(),
            1000,
            &mut out,
            &mut TopLevel::new(&[]),
        );
        let got = out
            .iter()
            .map(|f| {
                let v = String::from_utf8_lossy(f.value(s.as_bytes())).into_owned();
                (f.name.clone(), v)
            })
            .collect();
        (ok, got)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn nested_paths_and_spans() {
        let (ok, got) =
            fields(r#"{"a":1,"b":{"c":"x","d":[1,"y",{"e":-2.5e3}]},"f":true,"g":null,"h":[]}"#);
        assert!(ok);
        assert_eq!(
            got,
            pairs(&[
                ("a", "1"),
                ("b.c", "x"),
                ("b.d", "1"),
                ("b.d", "y"),
                ("b.d.e", "-2.5e3"),
            ])
        );
    }

    #[test]
    fn escaped_strings_keep_raw_span() {
        let s = r#"{"url":"http:\/\/evil.example\/a\"b","k\u0065y":"v", "x" : "\\"}"#;
        let (ok, got) = fields(s);
        assert!(ok);
        assert_eq!(
            got,
            pairs(&[
                ("url", r#"http:\/\/evil.example\/a\"b"#),
                ("key", "v"),
                ("x", r"\\"),
            ])
        );
        assert_eq!(
            unescape(br#"http:\/\/evil.example\/a\"b"#).as_deref(),
            Some(r#"http://evil.example/a"b"#)
        );
        assert_eq!(unescape(b"plain").as_deref(), Some("plain"));
        assert_eq!(unescape(br"bad\q"), None);
    }

    #[test]
    fn truncated_and_invalid_keep_what_was_read() {
        let (ok, got) = fields(r#"{"a":"1","b":{"c":"2","d":"unterminated"#);
        assert!(!ok);
        assert_eq!(got, pairs(&[("a", "1"), ("b.c", "2")]));
        for bad in [
            "{",
            "{\"",
            "{\"a\"",
            "{\"a\":",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":x}",
            "{\"a\":1,,}",
            "{\"a\":[1}",
            "{\"a\":\"\\",
            "}",
            "",
        ] {
            let (ok, _) = fields(bad);
            assert!(!ok, "{bad}");
        }
    }

    #[test]
    fn depth_and_field_caps() {
        let deep = "[".repeat(MAX_DEPTH + 10);
        let s = format!("{{\"a\":{deep}");
        assert!(!fields(&s).0);
        let mut out = Vec::new();
        let s = br#"{"a":1,"b":2,"c":3}"#;
        assert!(scan(s, 0, s.len(), 2, &mut out, &mut TopLevel::new(&[])));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn offset_start_and_end() {
        let line = br#"app: {"src_ip":"1.2.3.4"} trailing"#;
        let mut out = Vec::new();
        assert!(scan(line, 5, 25, 10, &mut out, &mut TopLevel::new(&[])));
        assert_eq!(out[0].name, "src_ip");
        assert_eq!(out[0].value(line), b"1.2.3.4");
        // An end inside the document truncates it.
        out.clear();
        assert!(!scan(line, 5, 18, 10, &mut out, &mut TopLevel::new(&[])));
        assert!(out.is_empty());
    }

    #[test]
    fn top_level_values_only() {
        let s = r#"{"file":{"ts":1500000000},"ts":[1],"msg":"\"ts\":2","x":[{"ts":3}],"ts":"4","ts":5,"n":6}"#;
        let mut top = TopLevel::new(&["ts", "n", "file", "none"]);
        let mut out = Vec::new();
        // A cap of one field: top-level values are still found.
        assert!(scan(s.as_bytes(), 0, s.len(), 1, &mut out, &mut top));
        assert_eq!(out.len(), 1);
        let got: Vec<Option<(&str, bool)>> = top
            .found
            .iter()
            .map(|f| f.map(|v| (&s[v.span.0..v.span.1], v.quoted)))
            .collect();
        assert_eq!(got, [Some(("4", true)), Some(("6", false)), None, None]);
    }
}
