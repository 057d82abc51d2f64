//! The hot path: scan one line once, extract candidate tokens, look them up.
//!
//! One pass over the bytes splits the line into *words* (runs of `[A-Za-z0-9._-]`)
//! and records, per word, which byte classes it holds. From that alone a word is
//! classified without a second look: a dotted quad is an IPv4 candidate, a word with a
//! dot and a letter is a host candidate, a hex word of digest length is a hash
//! candidate. Colons trigger an IPv6 candidate over the surrounding hex run. Host
//! candidates are then looked up as a host name, as a domain (each label suffix), as
//! the domain of an e-mail address when an `@` precedes them, and as a URL when a path
//! follows them. Literal types (file names, user agents, mutexes…) are found by one
//! Aho-Corasick automaton over the line. Cost per line is linear in its length and
//! does not depend on the number of indicators.
//!
//! Token rules (each pinned by a test below):
//! - An IP token is whole: `1.2.3.4` is not found in `11.2.3.4`, `1.2.3.45` or
//!   `1.2.3.4.5`; it is in `1.2.3.4:443`, `src=1.2.3.4,`, `from 1.2.3.4.` and
//!   `::ffff:1.2.3.4`. A dotted quad glued to a letter (`v1.2.3.4`) or to a `/` after a
//!   product name (`Chrome/4.0.222.12`) is a version, not an address.
//! - Domains match on label boundaries, host names exactly, both case-insensitively.
//! - URLs match whole: followed by the end of the token, a query string or a fragment.
//! - Hashes match whole hex tokens of their length, any case.
//! - File names match whole path components, case-insensitively; other literals match
//!   as case-sensitive substrings.
//!
//! Invariant: no allocation per line unless something matched (the scratch buffers
//! live in the [`Matcher`] and are reused).

use std::net::Ipv6Addr;

use crate::index::{ip, Index};
use crate::intel::{IndicatorId, Kind};

/// One indicator found in a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub id: IndicatorId,
    /// The observable as it appeared in the line (the whole host for a domain match,
    /// the address for a CIDR match).
    pub atomic: String,
    /// Where `atomic` stands in the line (byte offsets), when it was found in the raw
    /// text rather than in decoded JSON strings: decoders map it to a field.
    pub span: Option<(usize, usize)>,
}

// Byte classes, OR-ed over a word.
const DIGIT: u8 = 1;
const HEXA: u8 = 2; // a-f A-F
const ALPHA: u8 = 4; // g-z G-Z
const DOT: u8 = 8;
const DASH: u8 = 16; // '-' or '_'
const UPPER: u8 = 32;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            DIGIT
        } else if matches!(c, b'a'..=b'f') {
            HEXA
        } else if matches!(c, b'A'..=b'F') {
            HEXA | UPPER
        } else if c.is_ascii_lowercase() {
            ALPHA
        } else if c.is_ascii_uppercase() {
            ALPHA | UPPER
        } else if c == b'.' {
            DOT
        } else if c == b'-' || c == b'_' {
            DASH
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Bytes that end a URL in free text.
#[inline]
fn ends_url(b: u8) -> bool {
    b <= b' '
        || matches!(
            b,
            b'"' | b'\'' | b'<' | b'>' | b'`' | b'|' | b'\\' | b'^' | b'{' | b'}' | 0x7f
        )
}

/// Bytes that can be part of a file name around a literal match.
#[inline]
fn is_filename_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'$')
}

/// A reusable matcher over one index. Cheap to create; keep one per thread.
pub struct Matcher<'i> {
    index: &'i Index,
    buf: Vec<u8>,
    want_v4: bool,
    want_v6: bool,
    want_hosts: bool,
    want_hash: bool,
    want_email: bool,
    want_url: bool,
    want_hostname: bool,
    want_domain: bool,
    json_buf: Vec<u8>,
}

impl<'i> Matcher<'i> {
    pub fn new(index: &'i Index) -> Matcher<'i> {
        let nonempty = |k: Kind| index.stats.active_by_kind.contains_key(&k);
        let want_hash = Kind::ALL.iter().any(|k| k.is_hash() && nonempty(*k));
        Matcher {
            index,
            buf: Vec::with_capacity(256),
            want_v4: !index.v4.is_empty(),
            want_v6: !index.v6.is_empty() || !index.v4.is_empty(),
            want_hosts: !index.tlds.is_empty(),
            want_hash,
            want_email: nonempty(Kind::Email),
            want_url: nonempty(Kind::Url),
            want_hostname: nonempty(Kind::Hostname),
            want_domain: nonempty(Kind::Domain),
            json_buf: Vec::new(),
        }
    }

    pub fn index(&self) -> &'i Index {
        self.index
    }

    /// Finds every indicator in `line`, appending to `hits`. An indicator already in
    /// `hits` is not added again: give each line an empty vector.
    pub fn find(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        self.scan(line, hits);
        if self.index.literals.is_some() {
            self.literals(line, hits);
        }
    }

    /// Like [`Matcher::find`], and for a JSON line holding a backslash escape also
    /// matches its decoded string values, so `http:\/\/host\/x` still matches.
    pub fn find_with_json(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        self.find(line, hits);
        let first = line.iter().position(|b| !b.is_ascii_whitespace());
        if first.map(|i| line[i]) == Some(b'{') && memchr::memchr(b'\\', line).is_some() {
            // The decoded text of the whole line, strings unescaped in place: the same
            // tokens as its decoded string values, without building a JSON tree.
            let mut decoded = std::mem::take(&mut self.json_buf);
            unescape_json(line, &mut decoded);
            let before = hits.len();
            self.find(&decoded, hits);
            // Offsets in the decoded text are not offsets in the line.
            for h in &mut hits[before..] {
                h.span = None;
            }
            self.json_buf = decoded;
        }
    }

    /// Finds the words worth a lookup without classifying every byte: every token
    /// but a bare hash holds a `.` (addresses, hosts, URLs, e-mail domains) or a `:`
    /// (IPv6), so the scan jumps between those anchors with `memchr2` (SIMD) and
    /// widens each into its word. Hashes, which have no anchor, are found by one
    /// branch-light pass that counts hex runs ([`Matcher::hex_runs`]).
    fn scan(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let n = line.len();
        // Words and IPv6 runs already looked at end before these offsets.
        let mut done = 0usize;
        let mut v6_done = 0usize;
        if self.want_hosts || self.want_v4 || self.want_url || self.want_v6 {
            let mut from = 0usize;
            while let Some(p) = memchr::memchr2(b'.', b':', &line[from..]) {
                let pos = from + p;
                from = pos + 1;
                if line[pos] == b':' {
                    if self.want_v6 && pos >= v6_done {
                        v6_done = self.v6_at(line, pos, hits);
                    }
                    continue;
                }
                if pos < done {
                    continue;
                }
                let mut flags = DOT;
                let mut start = pos;
                while start > 0 {
                    let c = CLASS[line[start - 1] as usize];
                    if c == 0 {
                        break;
                    }
                    flags |= c;
                    start -= 1;
                }
                let mut end = pos + 1;
                while end < n {
                    let c = CLASS[line[end] as usize];
                    if c == 0 {
                        break;
                    }
                    flags |= c;
                    end += 1;
                }
                self.word(line, start, end, flags, hits);
                done = end;
                // The rest of this word holds no new anchor (a word has no `:`).
                from = end;
            }
        }
        if self.want_hash && n >= 32 {
            self.hex_runs(line, hits);
        }
    }

    /// Whole hex tokens of digest length: a run of hex digits bounded by bytes that
    /// are not alphanumeric. A run of 32 or more digits covers at least three whole
    /// 8-byte blocks of any 8-byte grid, so the pass tests eight bytes at a time
    /// ([`all_hex`], a few ALU operations, no branch per byte) and only widens a
    /// candidate when three blocks in a row are all hex.
    fn hex_runs(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let n = line.len();
        let is_hex = |b: u8| CLASS[b as usize] & (DIGIT | HEXA) != 0;
        let mut in_a_row = 0;
        let mut k = 0;
        while k + 8 <= n {
            let mut block = [0u8; 8];
            block.copy_from_slice(&line[k..k + 8]);
            if !all_hex(u64::from_le_bytes(block)) {
                in_a_row = 0;
                k += 8;
                continue;
            }
            in_a_row += 1;
            if in_a_row < 3 {
                k += 8;
                continue;
            }
            let mut start = k - 16;
            while start > 0 && is_hex(line[start - 1]) {
                start -= 1;
            }
            let mut end = k + 8;
            while end < n && is_hex(line[end]) {
                end += 1;
            }
            let before_ok = start == 0 || !line[start - 1].is_ascii_alphanumeric();
            let after_ok = end == n || !line[end].is_ascii_alphanumeric();
            if before_ok && after_ok {
                let word = &line[start..end];
                let upper = word.iter().any(|b| b.is_ascii_uppercase());
                self.hash(line, word, upper, hits);
            }
            in_a_row = 0;
            k = end;
        }
    }

    #[inline]
    fn word(&mut self, line: &[u8], start: usize, end: usize, flags: u8, hits: &mut Vec<Hit>) {
        if flags & DOT != 0 {
            if flags & (HEXA | ALPHA) == 0 {
                if self.want_v4 || self.want_url {
                    self.v4_word(line, start, end, hits);
                }
            } else if self.want_hosts {
                self.host_word(line, start, end, hits);
            }
        }
    }

    fn hash(&mut self, line: &[u8], word: &[u8], upper: bool, hits: &mut Vec<Hit>) {
        let Some(kind) = Kind::hash_for_len(word.len()) else {
            return;
        };
        let key: &[u8] = if upper {
            self.buf.clear();
            self.buf.extend(word.iter().map(|b| b.to_ascii_lowercase()));
            &self.buf
        } else {
            word
        };
        if let Some(local) = self.index.set(kind).find(key) {
            push(self.index, hits, line, IndicatorId::new(kind, local), word);
        }
    }

    fn v4_word(&mut self, line: &[u8], start: usize, mut end: usize, hits: &mut Vec<Hit>) {
        // `from 1.2.3.4.` at the end of a sentence.
        while end > start && line[end - 1] == b'.' {
            end -= 1;
        }
        let word = &line[start..end];
        let Some(addr) = ip::parse_v4(word) else {
            return;
        };
        if is_version_context(line, start) {
            return;
        }
        if self.want_v4 {
            self.index.v4.covering(addr, |_, id| {
                push(self.index, hits, line, IndicatorId(id), word);
            });
        }
        if self.want_url && url_follows(line, start, end) {
            self.url(line, start, end, hits);
        }
    }

    /// Tries an IPv6 address over the hex/colon run around the colon at `at`. Returns
    /// the end of the run, so that later colons in it are not tried again.
    fn v6_at(&mut self, line: &[u8], at: usize, hits: &mut Vec<Hit>) -> usize {
        let is_run = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let mut s = at;
        while s > 0 && is_run(line[s - 1]) && at - s < 45 {
            s -= 1;
        }
        let mut e = at + 1;
        while e < line.len() && is_run(line[e]) && e - s < 46 {
            e += 1;
        }
        let run_end = e;
        // Leading dots belong to something else; a trailing dot ends a sentence.
        while s < at && line[s] == b'.' {
            s += 1;
        }
        while e > at + 1 && line[e - 1] == b'.' {
            e -= 1;
        }
        if s > 0 && line[s - 1].is_ascii_alphanumeric() {
            return run_end;
        }
        if e < line.len() && (line[e].is_ascii_alphanumeric() || line[e] == b'_') {
            return run_end;
        }
        let run = &line[s..e];
        // Cheap shape check before parsing: an IPv6 address has seven colons, or a
        // `::` and fewer; groups of at most four hex digits (`10:05:03.120` is a time).
        let colons = run.iter().filter(|&&b| b == b':').count();
        let compressed = memchr::memmem::find(run, b"::").is_some();
        if !(2..=7).contains(&colons) || (colons < 7 && !compressed) {
            return run_end;
        }
        let Some(addr) = std::str::from_utf8(run)
            .ok()
            .and_then(|t| t.parse::<Ipv6Addr>().ok())
        else {
            return run_end;
        };
        if let Some(v4) = addr.to_ipv4_mapped() {
            if !run.contains(&b'.') {
                // `::ffff:102:304`: the dotted form is found by the word scan.
                self.index.v4.covering(ip::v4_bits(v4), |_, id| {
                    push(self.index, hits, line, IndicatorId(id), run);
                });
            }
        } else {
            self.index.v6.covering(ip::v6_bits(addr), |_, id| {
                push(self.index, hits, line, IndicatorId(id), run);
            });
        }
        run_end
    }

    fn host_word(&mut self, line: &[u8], mut start: usize, mut end: usize, hits: &mut Vec<Hit>) {
        while start < end && CLASS[line[start] as usize] & (DOT | DASH) != 0 {
            start += 1;
        }
        while end > start && CLASS[line[end - 1] as usize] & (DOT | DASH) != 0 {
            end -= 1;
        }
        let host = &line[start..end];
        let Some(dot) = memchr::memrchr(b'.', host) else {
            return;
        };
        // Reject hosts whose last label no indicator has, before copying the host.
        let tld = &host[dot + 1..];
        if tld.len() > 63 {
            return;
        }
        let mut tld_buf = [0u8; 63];
        for (d, s) in tld_buf.iter_mut().zip(tld) {
            *d = s.to_ascii_lowercase();
        }
        if self.index.tlds.find(&tld_buf[..tld.len()]).is_none() {
            return;
        }
        self.buf.clear();
        self.buf.extend(host.iter().map(|b| b.to_ascii_lowercase()));
        let index = self.index;
        if self.want_hostname {
            if let Some(l) = index.set(Kind::Hostname).find(&self.buf) {
                push(index, hits, line, IndicatorId::new(Kind::Hostname, l), host);
            }
        }
        if self.want_domain {
            let set = index.set(Kind::Domain);
            let mut p = 0;
            while p < dot {
                if let Some(l) = set.find(&self.buf[p..]) {
                    push(index, hits, line, IndicatorId::new(Kind::Domain, l), host);
                }
                match memchr::memchr(b'.', &self.buf[p..dot]) {
                    Some(q) => p += q + 1,
                    None => break,
                }
            }
        }
        if self.want_email && start > 1 && line[start - 1] == b'@' {
            let mut s = start - 1;
            while s > 0 && crate::intel::canon::is_email_local_byte(line[s - 1]) {
                s -= 1;
            }
            if s < start - 1 {
                let local = &line[s..start - 1];
                let mut key = Vec::with_capacity(local.len() + 1 + self.buf.len());
                key.extend(local.iter().map(|b| b.to_ascii_lowercase()));
                key.push(b'@');
                key.extend_from_slice(&self.buf);
                if let Some(l) = index.set(Kind::Email).find(&key) {
                    push(
                        index,
                        hits,
                        line,
                        IndicatorId::new(Kind::Email, l),
                        &line[s..end],
                    );
                }
            }
        }
        if self.want_url && url_follows(line, start, end) {
            self.url(line, start, end, hits);
        }
    }

    /// Looks up the URL whose host is `line[start..end]` (see [`url_follows`]). The host
    /// is lower-cased; the path is compared as written.
    fn url(&mut self, line: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let index = self.index;
        self.buf.clear();
        self.buf
            .extend(line[start..end].iter().map(|b| b.to_ascii_lowercase()));
        if index.url_hosts.find(&self.buf).is_none() {
            return;
        }
        let mut e = end;
        // `:port`
        if e < line.len() && line[e] == b':' {
            let mut p = e + 1;
            while p < line.len() && line[p].is_ascii_digit() {
                p += 1;
            }
            if p == e + 1 || p >= line.len() || !matches!(line[p], b'/' | b'?') {
                return;
            }
            self.buf.extend_from_slice(&line[e..p]);
            e = p;
        }
        let host_len = self.buf.len();
        if e < line.len() && line[e] == b'?' {
            self.buf.push(b'/');
        }
        let mut t = e;
        while t < line.len() && !ends_url(line[t]) {
            t += 1;
        }
        // A JSON-escaped slash (`\/`) stops here; the decoded pass handles it.
        let tail = &line[e..t];
        self.buf.extend_from_slice(tail);
        let set = index.set(Kind::Url);
        // Candidates: the whole URL (less trailing punctuation), and the URL cut at the
        // query string, at each `&` parameter boundary and at the fragment.
        let full_len = self.buf.len();
        let mut cuts: [usize; 8] = [0; 8];
        let mut ncut = 0;
        let mut trimmed = full_len;
        while trimmed > host_len + 1
            && matches!(self.buf[trimmed - 1], b'.' | b',' | b';' | b')' | b']')
        {
            trimmed -= 1;
        }
        cuts[ncut] = trimmed;
        ncut += 1;
        if trimmed != full_len {
            cuts[ncut] = full_len;
            ncut += 1;
        }
        for (k, &b) in self.buf[host_len..full_len].iter().enumerate() {
            if (b == b'?' || b == b'#' || b == b'&') && ncut < cuts.len() {
                cuts[ncut] = host_len + k;
                ncut += 1;
            }
        }
        let mut found: Option<u32> = None;
        for &cut in &cuts[..ncut] {
            let mut key = &self.buf[..cut];
            let slash_only;
            if key.len() == host_len {
                // `http://evil.com` followed by the end: the URL `evil.com/`.
                slash_only = [key, b"/"].concat();
                key = &slash_only;
                if let Some(l) = set.find(key) {
                    found = Some(l);
                    break;
                }
                continue;
            }
            if let Some(l) = set.find(key) {
                found = Some(l);
                break;
            }
        }
        if let Some(l) = found {
            let mut a = start;
            // Show the scheme in the atomic when the line has one.
            if a >= 3 && &line[a - 3..a] == b"://" {
                let mut s = a - 3;
                while s > 0 && line[s - 1].is_ascii_alphanumeric() {
                    s -= 1;
                }
                a = s;
            }
            push(
                index,
                hits,
                line,
                IndicatorId::new(Kind::Url, l),
                &line[a..t],
            );
        }
    }

    fn literals(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let index = self.index;
        let Some(ac) = index.literals.as_ref() else {
            return;
        };
        for m in ac.find_overlapping_iter(line) {
            let Some(&id) = index.literal_ids.get(m.pattern().as_usize()) else {
                continue;
            };
            let (s, e) = (m.start(), m.end());
            let text = &line[s..e];
            match id.kind() {
                Kind::Filename => {
                    let before_ok = s == 0 || !is_filename_byte(line[s - 1]);
                    let after_ok = e == line.len() || !is_filename_byte(line[e]);
                    if before_ok && after_ok {
                        push(index, hits, line, id, text);
                    }
                }
                Kind::Regkey => {
                    if text.eq_ignore_ascii_case(index.value(id).as_bytes()) {
                        push(index, hits, line, id, text);
                    }
                }
                Kind::RegkeyValue => {
                    // `key|value`: the key here, the value elsewhere on the line.
                    let (key, value) = index.value(id).split_once('|').unwrap_or(("", ""));
                    let elsewhere = |part: &[u8]| {
                        !value.is_empty()
                            && part
                                .windows(value.len())
                                .any(|w| w.eq_ignore_ascii_case(value.as_bytes()))
                    };
                    if text.eq_ignore_ascii_case(key.as_bytes())
                        && (elsewhere(&line[..s]) || elsewhere(&line[e..]))
                    {
                        push(index, hits, line, id, text);
                    }
                }
                _ => {
                    if text == index.value(id).as_bytes() {
                        push(index, hits, line, id, text);
                    }
                }
            }
        }
    }
}

/// Are all eight bytes of `w` ASCII hex digits? SWAR range checks on each byte's low
/// seven bits (no carry crosses a byte), masked to bytes below 0x80.
#[inline]
fn all_hex(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ascii = !w & HIGH;
    let low = w & !HIGH;
    let digit = (low + (0x80 - 0x30) * ONES) & !(low + (0x80 - 0x3a) * ONES);
    let lower = low | (0x20 * ONES);
    let letter = (lower + (0x80 - 0x61) * ONES) & !(lower + (0x80 - 0x67) * ONES);
    (digit | letter) & ascii & HIGH == HIGH
}

/// Can a URL start at the host `line[start..end]`: a path, port or query follows it,
/// or a scheme (`://`) precedes it?
#[inline]
fn url_follows(line: &[u8], start: usize, end: usize) -> bool {
    (end < line.len() && matches!(line[end], b'/' | b':' | b'?'))
        || (start >= 3 && &line[start - 3..start] == b"://")
}

/// Is the word starting at `start` a version (`Chrome/4.0.222.12`) rather than an
/// address? True when it is glued to a `/` that follows a product name: a word with a
/// letter that is not itself part of a path or URL.
fn is_version_context(line: &[u8], start: usize) -> bool {
    if start == 0 || line[start - 1] != b'/' {
        return false;
    }
    let slash = start - 1;
    let mut k = slash;
    let mut letter = false;
    while k > 0 {
        let b = line[k - 1];
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            letter |= b.is_ascii_alphabetic();
            k -= 1;
        } else {
            break;
        }
    }
    if k == slash || !letter {
        return false;
    }
    // `host/1.2.3.4` inside a URL or path: the word before is preceded by `/` or `:`.
    !(k > 0 && matches!(line[k - 1], b'/' | b':' | b'='))
}

/// Adds a hit unless the indicator is already there. `atomic` is a sub-slice of
/// `line`; its offsets become the hit's span.
#[inline]
fn push(index: &Index, hits: &mut Vec<Hit>, line: &[u8], id: IndicatorId, atomic: &[u8]) {
    if index.metas_of(id).is_empty() {
        return;
    }
    if hits.iter().any(|h| h.id == id) {
        return;
    }
    let start = (atomic.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
    let span = (start <= line.len() && start + atomic.len() <= line.len())
        .then_some((start, start + atomic.len()));
    hits.push(Hit {
        id,
        atomic: String::from_utf8_lossy(atomic).into_owned(),
        span,
    });
}

/// Writes `line` to `out` with JSON string escapes decoded (`\\/`, `\\\\`, `\\"`, `\\n`…,
/// `\\uXXXX` with surrogate pairs, as UTF-8). An escape that is not valid is copied as
/// it stands.
fn unescape_json(line: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(line.len());
    let hex4 = |b: &[u8]| -> Option<u32> {
        let s = std::str::from_utf8(b.get(..4)?).ok()?;
        u32::from_str_radix(s, 16).ok()
    };
    let mut i = 0;
    while i < line.len() {
        let Some(p) = memchr::memchr(b'\\', &line[i..]) else {
            out.extend_from_slice(&line[i..]);
            break;
        };
        out.extend_from_slice(&line[i..i + p]);
        i += p;
        let Some(&e) = line.get(i + 1) else {
            out.push(b'\\');
            break;
        };
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        if e == b'u' {
            if let Some(hi) = hex4(&line[i + 2..]) {
                let (code, used) =
                    if (0xD800..0xDC00).contains(&hi) && line.get(i + 6..i + 8) == Some(b"\\u") {
                        match hex4(&line[i + 8..]) {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12)
                            }
                            _ => (hi, 6),
                        }
                    } else {
                        (hi, 6)
                    };
                if let Some(c) = char::from_u32(code) {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    i += used;
                    continue;
                }
            }
        }
        out.push(b'\\');
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_json_table() {
        let cases: &[(&str, &str)] = &[
            (r#"{"u":"http:\/\/a.com\/x"}"#, r#"{"u":"http://a.com/x"}"#),
            (r#"{"a":"x\"y\\z\n"}"#, "{\"a\":\"x\"y\\z\n\"}"),
            (
                r#"{"h":"caf\u00e9.example"}"#,
                "{\"h\":\"caf\u{e9}.example\"}",
            ),
            (r#"{"e":"\ud83d\ude00"}"#, "{\"e\":\"\u{1f600}\"}"),
            (r#"{"bad":"\q\u12"}"#, r#"{"bad":"\q\u12"}"#),
            ("trailing \\", "trailing \\"),
        ];
        let mut out = Vec::new();
        for (input, want) in cases {
            unescape_json(input.as_bytes(), &mut out);
            assert_eq!(String::from_utf8_lossy(&out), *want, "{input}");
        }
    }

    #[test]
    fn all_hex_matches_the_byte_table() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut block = *b"0123abcd";
                block[pos] = b;
                let want = block.iter().all(|c| c.is_ascii_hexdigit());
                assert_eq!(
                    all_hex(u64::from_le_bytes(block)),
                    want,
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }
}
