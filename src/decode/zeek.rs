//! Zeek TSV logs: the header at the top of a file (`#separator \x09`, `#fields`,
//! `#unset_field`, `#empty_field`...) and the rows after it.
//!
//! The header is per-input state held by the decoder: a row is only readable after
//! its file's `#fields` line, so callers must show the decoder every header line (see
//! `Decoder::observe`), matched or not. A new `#separator` line (logs concatenated)
//! starts a new header. A row gives one field per column, named from `#fields`, with
//! the column's raw bytes as its span (escapes such as `\x09` left as written); unset
//! (`-`) and empty (`(empty)`) columns give no field. Set and vector columns
//! (`answers`) are one field: a hit on one element maps to the column.
//!
//! Cost: header lines are parsed once; a row is one pass over its separators, one
//! `String` per field (its name).

use super::fields::{zeek_role, Field};

/// The header of the Zeek log being read.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    sep: Vec<u8>,
    fields: Vec<String>,
    unset: Vec<u8>,
    empty: Vec<u8>,
}

impl Default for Header {
    fn default() -> Header {
        Header {
            sep: b"\t".to_vec(),
            fields: Vec::new(),
            unset: b"-".to_vec(),
            empty: b"(empty)".to_vec(),
        }
    }
}

/// `\x09` and other `\xHH` escapes, as the `#separator` line writes its value.
fn unescape_hex(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'x') {
            let hex = raw
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

impl Header {
    /// Whether the header gives names to rows.
    pub(crate) fn active(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Reads `line` if it is a Zeek header line (`#` and a known directive) and
    /// returns whether it was one.
    pub(crate) fn observe(&mut self, line: &[u8]) -> bool {
        if line.first() != Some(&b'#') {
            return false;
        }
        let line = trim_eol(line);
        if let Some(v) = line.strip_prefix(b"#separator ") {
            let sep = unescape_hex(v);
            *self = Header::default();
            if !sep.is_empty() {
                self.sep = sep;
            }
            return true;
        }
        let (directive, value) = match memchr::memmem::find(&line[1..], &self.sep) {
            Some(i) => (&line[1..i + 1], &line[i + 1 + self.sep.len()..]),
            None => (&line[1..], &b""[..]),
        };
        match directive {
            b"fields" => {
                self.fields = split(value, &self.sep)
                    .map(|(s, e)| String::from_utf8_lossy(&value[s..e]).into_owned())
                    .collect();
            }
            b"unset_field" => self.unset = value.to_vec(),
            b"empty_field" => self.empty = value.to_vec(),
            b"set_separator" | b"path" | b"open" | b"close" | b"types" => {}
            _ => return false,
        }
        true
    }

    /// Appends the fields of the row `line[..end]` (at most `max` in `out`). Returns
    /// false when the row does not hold the separator.
    pub(crate) fn row(&self, line: &[u8], end: usize, max: usize, out: &mut Vec<Field>) -> bool {
        let row = &line[..end.min(line.len())];
        if memchr::memmem::find(row, &self.sep).is_none() {
            return false;
        }
        for ((s, e), name) in split(row, &self.sep).zip(&self.fields) {
            let v = &row[s..e];
            if v.is_empty() || v == self.unset.as_slice() || v == self.empty.as_slice() {
                continue;
            }
            if out.len() >= max {
                break;
            }
            out.push(Field {
                name: name.clone(),
                span: (s, e),
                role: zeek_role(name),
            });
        }
        true
    }
}

/// Byte ranges of the parts of `b` between separators.
fn split<'a>(b: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match memchr::memmem::find(&b[start..], sep) {
            Some(i) => {
                let r = (start, start + i);
                start += i + sep.len().max(1);
                Some(r)
            }
            None => {
                done = true;
                Some((start, b.len()))
            }
        }
    })
}

fn trim_eol(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Role;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#open\t2024-04-12-19-29-12\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\tanswers\tTTLs\n#types\ttime\tstring\taddr\taddr\tstring\tvector[string]\tvector[interval]\n";

    fn header() -> Header {
        let mut h = Header::default();
        for l in HEADER.lines() {
            assert!(h.observe(l.as_bytes()), "{l}");
        }
        h
    }

    #[test]
    fn header_and_row() {
        let h = header();
        assert!(h.active());
        let row = "1521911720.865716\tCq\t10.47.1.100\t10.0.0.100\tise.wrccdc.org\tise.wrccdc.cpp.edu,134.71.3.16\t(empty)\n";
        let mut out = Vec::new();
        assert!(h.row(row.as_bytes(), row.len() - 1, 100, &mut out));
        let got: Vec<(&str, &[u8], Role)> = out
            .iter()
            .map(|f| (f.name.as_str(), f.value(row.as_bytes()), f.role))
            .collect();
        assert_eq!(
            got,
            [
                ("ts", &b"1521911720.865716"[..], Role::Other),
                ("uid", b"Cq", Role::Other),
                ("id.orig_h", b"10.47.1.100", Role::Source),
                ("id.resp_h", b"10.0.0.100", Role::Destination),
                ("query", b"ise.wrccdc.org", Role::Other),
                ("answers", b"ise.wrccdc.cpp.edu,134.71.3.16", Role::Other),
            ]
        );
    }

    #[test]
    fn not_header_lines() {
        let mut h = Header::default();
        assert!(!h.observe(b"# a comment"));
        assert!(!h.observe(b"#"));
        assert!(!h.observe(b"plain"));
        assert!(!h.observe(b""));
        assert!(!h.active());
        // A row without the separator is not a row.
        let h = header();
        assert!(!h.row(b"no tabs here", 12, 10, &mut Vec::new()));
    }

    #[test]
    fn new_separator_resets_and_custom_separator() {
        let mut h = header();
        assert!(h.observe(b"#separator |"));
        assert!(!h.active());
        assert!(h.observe(b"#fields|ts|id.orig_h"));
        let mut out = Vec::new();
        assert!(h.row(b"1.5|10.0.0.1|extra", 18, 10, &mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].value(b"1.5|10.0.0.1|extra"), b"10.0.0.1");
    }

    #[test]
    fn hex_escapes() {
        assert_eq!(unescape_hex(br"\x09"), b"\t");
        assert_eq!(unescape_hex(br"\x7c\x"), b"|\\x");
        assert_eq!(unescape_hex(br"\xzz"), br"\xzz");
        assert_eq!(trim_eol(b"a\r\n"), b"a");
    }

    #[test]
    fn field_cap() {
        let h = header();
        let row = b"1\t2\t3\t4\t5\t6\t7";
        let mut out = Vec::new();
        h.row(row, row.len(), 3, &mut out);
        assert_eq!(out.len(), 3);
    }
}
