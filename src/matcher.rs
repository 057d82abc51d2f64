//! The hot path: scan one line once, extract candidate tokens, look them up.
//!
//! One pass over the bytes splits the line into *words* (runs of `[A-Za-z0-9._-]`)
//! and records, per word, which byte classes it holds. From that alone a word is
//! classified without a second look: a dotted quad is an IPv4 candidate, a word with a
//! dot and a letter is a host candidate, a hex word of digest length is a hash
//! candidate. Colons trigger an IPv6 candidate over the surrounding hex run. Host
//! candidates are then looked up as a host name, as a domain (each label suffix), as
//! the domain of an e-mail address when an `@` precedes them, and as a URL when a path
//! follows them. File names of word bytes (`invoice.exe`) are looked up as dotted
//! words whose extension some indicator has; other literal types (user agents,
//! mutexes, registry keys, file names with `~` or spaces…) are found by one
//! Aho-Corasick automaton over the line, built only when such indicators exist. Cost per line is linear in its length and
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

use crate::index::{ip, Index, IpPortMatch};
use crate::intel::{IndicatorId, Kind};

/// One indicator found in a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub id: IndicatorId,
    /// The observable as it appeared in the line (the whole host for a domain match,
    /// the address for a CIDR match; for a name the line writes in another form — a
    /// DNS wire name, a URL split over fields — the name in its usual form).
    pub atomic: String,
    /// Where `atomic` stands in the line (byte offsets), when it was found in the raw
    /// text rather than in decoded JSON strings: decoders map it to a field.
    pub span: Option<(usize, usize)>,
}

/// The longest host name (RFC 1035): no name lookup hashes more than this.
const MAX_HOST: usize = 253;
/// The longest e-mail local part (RFC 5321).
const MAX_LOCAL: usize = 64;
/// At most this many cut points (query, `&` parameters, fragment) are tried per URL.
const MAX_URL_CUTS: usize = 64;
/// How far back a query string is looked for when `query_hosts` is off.
const QUERY_LOOKBACK: usize = 4096;

// Byte classes, OR-ed over a word.
const DIGIT: u8 = 1;
const HEXA: u8 = 2; // a-f A-F
const ALPHA: u8 = 4; // g-z G-Z
const DOT: u8 = 8;
const DASH: u8 = 16; // '-' or '_'
const UPPER: u8 = 32;
/// Not a byte class: set on a word that holds non-ASCII letters.
const UNICODE: u8 = 64;

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

/// A non-ASCII character that belongs to a host name label: a letter or digit of any
/// script, a combining mark, or the joiners IDNA allows. Returns its length in bytes
/// when the UTF-8 character ending before `i` is one.
fn label_char_before(line: &[u8], i: usize) -> Option<usize> {
    let mut k = i;
    while k > 0 && i - k < 4 {
        k -= 1;
        if line[k] & 0xC0 != 0x80 {
            break;
        }
    }
    label_char(&line[k..i]).then_some(i - k)
}

/// Like [`label_char_before`], for the character starting at `i`.
fn label_char_at(line: &[u8], i: usize) -> Option<usize> {
    let len = match line[i] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let bytes = line.get(i..i + len)?;
    label_char(bytes).then_some(len)
}

fn label_char(bytes: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_ascii() => {
            c.is_alphanumeric()
                || ('\u{300}'..='\u{36f}').contains(&c)
                || c == '\u{200c}'
                || c == '\u{200d}'
        }
        _ => false,
    }
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
    want_file_words: bool,
    json_buf: Vec<u8>,
    /// Scratch for e-mail keys.
    key_buf: Vec<u8>,
    cuts: Vec<usize>,
    /// When recording (retro store): every candidate token of the line, matched or
    /// not ([`crate::retro`]).
    rec: Option<Box<crate::retro::LineTokens>>,
    /// Scratch for recorded URL and e-mail keys.
    rec_buf: Vec<u8>,
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
            want_file_words: !index.file_exts.is_empty(),
            json_buf: Vec::new(),
            key_buf: Vec::new(),
            cuts: Vec::with_capacity(MAX_URL_CUTS),
            rec: None,
            rec_buf: Vec::new(),
        }
    }

    pub fn index(&self) -> &'i Index {
        self.index
    }

    /// Also records every candidate token of each line (IPv4/IPv6 addresses, host
    /// names and their label suffixes, URLs, hashes, e-mail addresses) into
    /// [`Matcher::tokens`], whatever the index holds. Costs one more hash per token.
    pub fn set_recording(&mut self, on: bool) {
        self.rec = on.then(Box::default);
    }

    /// Records into `tokens` (a worker's, kept across batches with its host-name
    /// cache); `None` stops recording.
    pub fn set_tokens(&mut self, tokens: Option<Box<crate::retro::LineTokens>>) {
        self.rec = tokens;
    }

    /// Stops recording and hands back the tokens buffer.
    pub fn take_tokens(&mut self) -> Option<Box<crate::retro::LineTokens>> {
        self.rec.take()
    }

    /// The tokens recorded since the caller last cleared them (recording only).
    pub fn tokens(&mut self) -> Option<&mut crate::retro::LineTokens> {
        self.rec.as_deref_mut()
    }

    /// Finds every indicator in `line`, appending to `hits`. An indicator already in
    /// `hits` is not added again: give each line an empty vector.
    pub fn find(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let wire = self.want_hosts && wire_name_end().find(line).is_some();
        self.find_marked(line, wire, hits);
    }

    /// [`Matcher::find`] once it is known whether the line holds a DNS wire name.
    fn find_marked(&mut self, line: &[u8], wire: bool, hits: &mut Vec<Hit>) {
        self.scan(line, hits);
        if wire {
            self.dns_wire_names(line, hits);
        }
        if self.index.literals.is_some() {
            self.literals(line, hits);
        }
    }

    /// Like [`Matcher::find`], and for a line holding JSON string escapes (`\/`, `\"`,
    /// `\uXXXX`, or any backslash in a line that starts with `{` or `[`) also matches
    /// its text with the escapes decoded, so `http:\/\/host\/x` still matches — in a
    /// JSON line, in a JSON array, or in JSON inside a syslog message.
    pub fn find_with_json(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let marks = markers(line, self.want_hosts);
        self.find_marked(line, marks.wire_name, hits);
        let before = hits.len();
        let mut decoded = std::mem::take(&mut self.json_buf);
        if marks.escapes {
            // The decoded text of the whole line, strings unescaped in place: the same
            // tokens as its decoded string values, without building a JSON tree.
            unescape_json(line, &mut decoded);
            if decoded != line {
                self.find(&decoded, hits);
                // JSON in a JSON string (an application's JSON log in journald's
                // MESSAGE): one level more.
                if markers(&decoded, false).escapes {
                    let mut twice = Vec::with_capacity(decoded.len());
                    unescape_json(&decoded, &mut twice);
                    if twice != decoded {
                        self.find(&twice, hits);
                    }
                }
            }
        }
        // `journalctl -o json` writes a MESSAGE that is not valid UTF-8 as an array of
        // byte values.
        if let Some(k) = (marks.first == Some(b'{'))
            .then(|| memchr::memmem::find(line, b"\"MESSAGE\":["))
            .flatten()
        {
            decoded.clear();
            if journal_bytes(&line[k + 11..], &mut decoded) {
                self.find(&decoded, hits);
            }
        }
        // Offsets in decoded text are not offsets in the line.
        for h in &mut hits[before..] {
            h.span = None;
        }
        self.json_buf = decoded;
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
        let rec = self.rec.is_some();
        if self.want_hosts
            || self.want_v4
            || self.want_url
            || self.want_v6
            || self.want_file_words
            || rec
        {
            let mut from = 0usize;
            while let Some(p) = memchr::memchr2(b'.', b':', &line[from..]) {
                let pos = from + p;
                from = pos + 1;
                if line[pos] == b':' {
                    if (self.want_v6 || rec) && pos >= v6_done {
                        v6_done = self.v6_at(line, pos, v6_done, hits);
                    }
                    continue;
                }
                if pos < done {
                    continue;
                }
                let mut flags = DOT;
                let mut start = pos;
                loop {
                    while start > 0 {
                        let c = CLASS[line[start - 1] as usize];
                        if c == 0 {
                            break;
                        }
                        flags |= c;
                        start -= 1;
                    }
                    // A UTF-8 letter is part of the word, never a label boundary.
                    match (start > 0 && line[start - 1] >= 0x80)
                        .then(|| label_char_before(line, start))
                        .flatten()
                    {
                        Some(len) => {
                            flags |= UNICODE;
                            start -= len;
                        }
                        None => break,
                    }
                }
                let mut end = pos + 1;
                loop {
                    while end < n {
                        let c = CLASS[line[end] as usize];
                        if c == 0 {
                            break;
                        }
                        flags |= c;
                        end += 1;
                    }
                    match (end < n && line[end] >= 0x80)
                        .then(|| label_char_at(line, end))
                        .flatten()
                    {
                        Some(len) => {
                            flags |= UNICODE;
                            end += len;
                        }
                        None => break,
                    }
                }
                self.word(line, start, end, flags, hits);
                done = end;
                // The rest of this word holds no new anchor (a word has no `:`).
                from = end;
            }
        }
        if (self.want_hash || rec) && n >= 32 {
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
            if self.want_file_words && flags & (HEXA | ALPHA) != 0 && flags & UNICODE == 0 {
                self.file_word(line, start, end, hits);
            }
            if flags & (HEXA | ALPHA | UNICODE) == 0 {
                if self.want_v4 || self.want_url || self.rec.is_some() {
                    self.v4_word(line, start, end, hits);
                }
            } else if self.want_hosts || self.rec.is_some() {
                self.host_word(line, start, end, flags & UNICODE != 0, hits);
            }
        }
    }

    /// A file name the word scan finds (see `index::is_word_file_name`): the whole
    /// word, any case, when its extension is one some indicator has. Same semantics as
    /// the automaton's file names: a whole path component (`~` and `$` glued to it
    /// make another name).
    fn file_word(&mut self, line: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let glued = |b: u8| matches!(b, b'~' | b'$');
        if (start > 0 && glued(line[start - 1])) || (end < line.len() && glued(line[end])) {
            return;
        }
        let word = &line[start..end];
        let Some(dot) = memchr::memrchr(b'.', word) else {
            return;
        };
        let ext = &word[dot + 1..];
        if ext.is_empty() || ext.len() > 16 || word.len() > 255 {
            return;
        }
        // A table of the extensions' first bytes before the set lookup: most dotted
        // words are host names whose last label no file-name indicator ends with.
        if !self.index.file_ext_first[ext[0].to_ascii_lowercase() as usize] {
            return;
        }
        let mut e = [0u8; 16];
        for (d, s) in e.iter_mut().zip(ext) {
            *d = s.to_ascii_lowercase();
        }
        if self.index.file_exts.find(&e[..ext.len()]).is_none() {
            return;
        }
        self.buf.clear();
        self.buf.extend(word.iter().map(|b| b.to_ascii_lowercase()));
        if let Some(l) = self.index.set(Kind::Filename).find(&self.buf) {
            push(
                self.index,
                hits,
                line,
                IndicatorId::new(Kind::Filename, l),
                word,
            );
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
        if let Some(r) = self.rec.as_deref_mut() {
            r.push(kind, key);
        }
        if let Some(local) = self.index.set(kind).find(key) {
            push(self.index, hits, line, IndicatorId::new(kind, local), word);
        }
    }

    fn v4_word(&mut self, line: &[u8], start: usize, mut end: usize, hits: &mut Vec<Hit>) {
        // `from 1.2.3.4.` at the end of a sentence.
        while end > start && line[end - 1] == b'.' {
            end -= 1;
        }
        let mut word = &line[start..end];
        let mut port = None;
        let addr = match ip::parse_v4(word) {
            Some(a) => a,
            None => {
                // tcpdump writes the port after a fifth dot: `IP 1.2.3.4.443 > …`.
                let Some((a, p, cut)) = tcpdump_v4(line, start, end) else {
                    return;
                };
                word = &line[start..cut];
                port = Some(p);
                end = cut;
                a
            }
        };
        if is_version_context(line, start, end) {
            return;
        }
        if let Some(r) = self.rec.as_deref_mut() {
            r.push_v4(addr);
            if url_follows(line, start, end) {
                self.buf.clear();
                self.buf.extend_from_slice(word);
                self.record_url(line, start, end);
            }
        }
        if self.want_v4 {
            let exact = self.index.match_options.ip_port == IpPortMatch::Exact;
            let port = if exact {
                port.or_else(|| port_after(line, end))
            } else {
                None
            };
            self.index.v4.covering(addr, |_, id| {
                let id = IndicatorId(id);
                if !exact || port_matches(self.index, id, port) {
                    push(self.index, hits, line, id, word);
                }
            });
        }
        if self.want_url && url_follows(line, start, end) {
            self.buf.clear();
            self.buf.extend_from_slice(word);
            self.url(line, start, end, hits);
        }
    }

    /// Tries an IPv6 address over the hex/colon run around the colon at `at` (the run
    /// starts at or after `floor`, the end of the previous one). Returns the end of the
    /// run, so that later colons in it are not tried again: each byte is looked at
    /// once, and a run too long to be an address (`1:2:3:4:5:6:7:8:…`) is skipped whole.
    fn v6_at(&mut self, line: &[u8], at: usize, floor: usize, hits: &mut Vec<Hit>) -> usize {
        let is_run = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let mut s = at;
        while s > floor && is_run(line[s - 1]) {
            s -= 1;
        }
        let mut e = at + 1;
        while e < line.len() && is_run(line[e]) {
            e += 1;
        }
        let run_end = e;
        // The longest address is 45 bytes (`ffff:…:255.255.255.255`); with a key's hex
        // digits before it (`IPv6:`) and a tcpdump port after it, 64 is enough.
        if e - s > 64 {
            return run_end;
        }
        // Leading dots belong to something else; a trailing dot ends a sentence.
        while s < at && line[s] == b'.' {
            s += 1;
        }
        while e > at + 1 && line[e - 1] == b'.' {
            e -= 1;
        }
        if s > 0 && (line[s - 1].is_ascii_alphanumeric() || line[s - 1] == b'_') {
            // `IPv6:2a02:…`, `addr:2a02:…`, `ip6:…`, `src_ip:…`: a key glued to the
            // address by a colon. The address starts after the key's colon.
            let Some(c) = memchr::memchr(b':', &line[s..e]) else {
                return run_end;
            };
            s += c + 1;
            if s >= e {
                return run_end;
            }
        }
        if e < line.len() && (line[e].is_ascii_alphanumeric() || line[e] == b'_') {
            return run_end;
        }
        let mut run = &line[s..e];
        let mut port = None;
        // Cheap shape check before parsing: an IPv6 address has seven colons, or a
        // `::` and fewer; groups of at most four hex digits (`10:05:03.120` is a time).
        let colons = run.iter().filter(|&&b| b == b':').count();
        let compressed = run.windows(2).any(|w| w == b"::");
        if !(2..=7).contains(&colons) || (colons < 7 && !compressed) {
            return run_end;
        }
        let mut addr = std::str::from_utf8(run)
            .ok()
            .and_then(|t| t.parse::<Ipv6Addr>().ok());
        if addr.is_none() {
            // tcpdump: `IP6 2001:db8::1.443 > …`.
            if let Some(dot) = memchr::memrchr(b'.', run) {
                let p = &run[dot + 1..];
                if tcpdump_context(line, s, e) && (1..=5).contains(&p.len()) {
                    if let Some(p) = std::str::from_utf8(p).ok().and_then(|t| t.parse().ok()) {
                        addr = std::str::from_utf8(&run[..dot])
                            .ok()
                            .and_then(|t| t.parse::<Ipv6Addr>().ok());
                        run = &run[..dot];
                        port = Some(p);
                    }
                }
            }
        }
        let Some(addr) = addr else {
            return run_end;
        };
        if let Some(r) = self.rec.as_deref_mut() {
            match addr.to_ipv4_mapped() {
                Some(v4) if !run.contains(&b'.') => r.push_v4(ip::v4_bits(v4)),
                Some(_) => {}
                None => r.push_v6(u128::from(addr)),
            }
        }
        let exact = self.index.match_options.ip_port == IpPortMatch::Exact;
        let port = if exact {
            port.or_else(|| v6_port_after(line, s, s + run.len()))
        } else {
            None
        };
        let index = self.index;
        let mut emit = |id: u32| {
            let id = IndicatorId(id);
            if !exact || port_matches(index, id, port) {
                push(index, hits, line, id, run);
            }
        };
        if let Some(v4) = addr.to_ipv4_mapped() {
            if !run.contains(&b'.') {
                // `::ffff:102:304`: the dotted form is found by the word scan.
                index.v4.covering(ip::v4_bits(v4), |_, id| emit(id));
            }
        } else {
            index.v6.covering(ip::v6_bits(addr), |_, id| emit(id));
        }
        run_end
    }

    fn host_word(
        &mut self,
        line: &[u8],
        mut start: usize,
        mut end: usize,
        unicode: bool,
        hits: &mut Vec<Hit>,
    ) {
        while start < end && CLASS[line[start] as usize] & (DOT | DASH) != 0 {
            start += 1;
        }
        while end > start && CLASS[line[end - 1] as usize] & (DOT | DASH) != 0 {
            end -= 1;
        }
        let host = &line[start..end];
        self.buf.clear();
        if unicode {
            // `münchen.example` → `xn--mnchen-3ya.example`, as the intel holds it.
            // A name is at most 253 bytes once converted, and each of those bytes
            // comes from at least one character (at most 4 bytes) of the text: only
            // the whole labels within the last 1012 bytes can matter.
            let mut tail = host;
            if host.len() > 4 * MAX_HOST {
                let from = host.len() - 4 * MAX_HOST;
                match memchr::memchr(b'.', &host[from..]) {
                    Some(d) => tail = &host[from + d + 1..],
                    None => return,
                }
            }
            let Ok(text) = std::str::from_utf8(tail) else {
                return;
            };
            let Ok(ascii) = idna::domain_to_ascii(text) else {
                return;
            };
            self.buf.extend_from_slice(ascii.as_bytes());
            if self.rec.is_none() && !self.tld_known(&self.buf) {
                return;
            }
        } else {
            // Reject hosts whose last label no indicator has, before copying the host.
            if self.rec.is_none() && !self.tld_known(host) {
                return;
            }
            self.buf.extend(host.iter().map(|b| b.to_ascii_lowercase()));
        }
        if self.rec.is_some() {
            self.record_host(line, start, end);
            if !self.want_hosts || !self.tld_known(&self.buf) {
                return;
            }
        }
        if !self.index.match_options.query_hosts && in_query_string(line, start) {
            return;
        }
        let atomic = Atomic::Span(start, end);
        self.names(line, &atomic, hits);
        if self.want_email && start > 1 && line[start - 1] == b'@' {
            self.email(line, start, end, hits);
        }
        if self.want_url {
            if url_follows(line, start, end) {
                self.url(line, start, end, hits);
            } else {
                self.split_url(line, start, end, hits);
            }
        }
    }

    /// Records the host `line[start..end]` (lower case in `self.buf`), and the e-mail
    /// address and URL it is the domain of, as the lookups below would key them.
    fn record_host(&mut self, line: &[u8], start: usize, end: usize) {
        let Some(r) = self.rec.as_deref_mut() else {
            return;
        };
        r.push_host(&self.buf);
        if start > 1 && line[start - 1] == b'@' {
            // Both readings the e-mail lookup tries (`from=bad@x`: `bad@x`, and the
            // whole local part).
            let at = start - 1;
            let mut s = at;
            while s > 0
                && at - s < MAX_LOCAL
                && crate::intel::canon::is_email_local_byte(line[s - 1])
            {
                s -= 1;
            }
            let mut short = s;
            if let Some(eq) = memchr::memrchr(b'=', &line[s..at]) {
                short = s + eq + 1;
            }
            while short < at && !line[short].is_ascii_alphanumeric() {
                short += 1;
            }
            for from in [s, short] {
                if from < at && (from == s || short != s) {
                    self.rec_buf.clear();
                    self.rec_buf
                        .extend(line[from..at].iter().map(|b| b.to_ascii_lowercase()));
                    self.rec_buf.push(b'@');
                    self.rec_buf.extend_from_slice(&self.buf);
                    r.push(Kind::Email, &self.rec_buf);
                }
            }
        }
        if url_follows(line, start, end) {
            self.record_url(line, start, end);
        }
    }

    /// Records the URL whose host (lower case) is in `self.buf`, keyed as the index
    /// keys URLs (`host[:port]/path?query`, default port dropped): the whole URL less
    /// trailing punctuation, and the URL cut at its query or fragment. A URL indicator
    /// holding only some of a query's parameters is not found by a retro probe.
    fn record_url(&mut self, line: &[u8], start: usize, end: usize) {
        let Some(r) = self.rec.as_deref_mut() else {
            return;
        };
        let key = &mut self.rec_buf;
        key.clear();
        key.extend_from_slice(&self.buf);
        let mut e = end;
        if e + 1 < line.len() && line[e] == b'.' && matches!(line[e + 1], b'/' | b':' | b'?') {
            e += 1;
        }
        if e < line.len() && line[e] == b':' {
            let mut p = e + 1;
            while p < line.len() && line[p].is_ascii_digit() && p - e <= 5 {
                p += 1;
            }
            if p == e + 1
                || (p < line.len() && !matches!(line[p], b'/' | b'?') && !ends_url(line[p]))
            {
                return;
            }
            if !is_default_port(scheme_before(line, start), &line[e + 1..p]) {
                key.extend_from_slice(&line[e..p]);
            }
            e = p;
        }
        let limit = line.len().min(e + crate::retro::MAX_URL_BYTES);
        let mut t = e;
        while t < limit && !ends_url(line[t]) {
            t += 1;
        }
        if t == limit && limit < line.len() && !ends_url(line[limit]) {
            return;
        }
        while t > e && matches!(line[t - 1], b'.' | b',' | b';' | b')' | b']') {
            t -= 1;
        }
        let tail = &line[e..t];
        if tail.first() != Some(&b'/') {
            key.push(b'/');
        }
        let host_len = key.len();
        key.extend_from_slice(tail);
        r.push(Kind::Url, key);
        if let Some(q) = key[host_len..].iter().position(|&b| b == b'?' || b == b'#') {
            key.truncate(host_len + q);
            r.push(Kind::Url, key);
        }
    }

    /// Is the last label of `host` (any case) one that some indicator has?
    #[inline]
    fn tld_known(&self, host: &[u8]) -> bool {
        let Some(dot) = memchr::memrchr(b'.', host) else {
            return false;
        };
        let tld = &host[dot + 1..];
        if tld.is_empty() || tld.len() > 63 {
            return false;
        }
        let mut tld_buf = [0u8; 63];
        for (d, s) in tld_buf.iter_mut().zip(tld) {
            *d = s.to_ascii_lowercase();
        }
        self.index.tlds.find(&tld_buf[..tld.len()]).is_some()
    }

    /// Host name and domain lookups of the lower-case host in `self.buf`. A name is at
    /// most 253 bytes, so only the suffixes within the last 253 bytes are hashed: the
    /// work per token is bounded whatever its length.
    fn names(&self, line: &[u8], atomic: &Atomic, hits: &mut Vec<Hit>) {
        let index = self.index;
        let key = &self.buf[..];
        let Some(dot) = memchr::memrchr(b'.', key) else {
            return;
        };
        if self.want_hostname && key.len() <= MAX_HOST {
            if let Some(l) = index.set(Kind::Hostname).find(key) {
                atomic.push(index, hits, line, IndicatorId::new(Kind::Hostname, l));
            }
        }
        if self.want_domain {
            let set = index.set(Kind::Domain);
            // The first label start within the last 253 bytes.
            let mut p = key.len().saturating_sub(MAX_HOST);
            if p > 0 && key[p - 1] != b'.' {
                match memchr::memchr(b'.', &key[p..]) {
                    Some(q) => p += q + 1,
                    None => return,
                }
            }
            while p < dot {
                if let Some(l) = set.find(&key[p..]) {
                    atomic.push(index, hits, line, IndicatorId::new(Kind::Domain, l));
                }
                match memchr::memchr(b'.', &key[p..dot]) {
                    Some(q) => p += q + 1,
                    None => break,
                }
            }
        }
    }

    /// The e-mail address whose domain is the host `line[start..end]` (its lower-case
    /// form in `self.buf`). The local part is read back from the `@`, at most 64
    /// bytes. Logs write `from=bad@x`, `'bad@x'` and `+bad@x`: besides the local
    /// part as RFC 5322 allows it, the part after its last `=` and without leading
    /// punctuation is tried.
    fn email(&mut self, line: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let index = self.index;
        let at = start - 1;
        let mut s = at;
        while s > 0 && at - s < MAX_LOCAL && crate::intel::canon::is_email_local_byte(line[s - 1]) {
            s -= 1;
        }
        if s == at {
            return;
        }
        let mut short = s;
        if let Some(eq) = memchr::memrchr(b'=', &line[s..at]) {
            short = s + eq + 1;
        }
        // A leading quote or `+` (`'bad@x'`, a user agent's `+bad@x`).
        while short < at && !line[short].is_ascii_alphanumeric() {
            short += 1;
        }
        let mut candidates = [Some(s), None];
        if short != s && short < at {
            // The log's reading first: `from=bad@x` is `bad@x`.
            candidates = [Some(short), Some(s)];
        }
        let mut key = std::mem::take(&mut self.key_buf);
        for from in candidates.into_iter().flatten() {
            key.clear();
            key.extend(line[from..at].iter().map(|b| b.to_ascii_lowercase()));
            key.push(b'@');
            key.extend_from_slice(&self.buf);
            if let Some(l) = index.set(Kind::Email).find(&key) {
                push(
                    index,
                    hits,
                    line,
                    IndicatorId::new(Kind::Email, l),
                    &line[from..end],
                );
                break;
            }
        }
        self.key_buf = key;
    }

    /// Looks up the URL whose host is `line[start..end]` (its lower-case form in
    /// `self.buf`; see [`url_follows`]). The host is lower-cased, a default port
    /// (`:80` for http or no scheme, `:443` for https) and a trailing dot after the
    /// host dropped, `;jsessionid=…` removed from the path; the path is compared as
    /// written.
    fn url(&mut self, line: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let index = self.index;
        if index.url_hosts.find(&self.buf).is_none() {
            return;
        }
        let mut e = end;
        // `http://evil.com./x`: a trailing dot after the host.
        if e + 1 < line.len() && line[e] == b'.' && matches!(line[e + 1], b'/' | b':' | b'?') {
            e += 1;
        }
        // `:port`
        if e < line.len() && line[e] == b':' {
            let mut p = e + 1;
            while p < line.len() && line[p].is_ascii_digit() && p - e <= 5 {
                p += 1;
            }
            if p == e + 1
                || (p < line.len() && !matches!(line[p], b'/' | b'?') && !ends_url(line[p]))
            {
                return;
            }
            if !is_default_port(scheme_before(line, start), &line[e + 1..p]) {
                self.buf.extend_from_slice(&line[e..p]);
            }
            e = p;
        }
        // The tail: at most as long as the longest URL indicator (a longer key cannot
        // match), so a 1 MiB URL costs no more than a short one.
        let limit = line.len().min(e + index.max_url_len + 1);
        let mut t = e;
        while t < limit && !ends_url(line[t]) {
            t += 1;
        }
        let Some((id, used)) = self.url_tail(&line[e..t]) else {
            return;
        };
        if hits.iter().any(|h| h.id == id) {
            return;
        }
        // The atomic: the URL as the line writes it, scheme included, without the
        // punctuation that ends a sentence.
        let mut t_end = t;
        if t == limit {
            while t_end < line.len() && !ends_url(line[t_end]) {
                t_end += 1;
            }
        }
        // Not below what the indicator used: it may itself end with `)` or `.`.
        while t_end > e + used && matches!(line[t_end - 1], b'.' | b',' | b';' | b')' | b']') {
            t_end -= 1;
        }
        let mut a = start;
        // Show the scheme in the atomic when the line has one.
        if a >= 3 && &line[a - 3..a] == b"://" {
            let mut s = a - 3;
            while s > 0 && line[s - 1].is_ascii_alphanumeric() {
                s -= 1;
            }
            a = s;
        }
        push(index, hits, line, id, &line[a..t_end]);
    }

    /// Tries the URL made of the host key in `self.buf` and `tail` (path, query,
    /// fragment). Candidates: the whole URL less trailing punctuation, the whole URL,
    /// and the URL cut at the query string, at each `&` parameter and at the fragment
    /// (at most [`MAX_URL_CUTS`], none longer than the longest URL indicator).
    /// Returns the indicator and how many bytes of `tail` it used.
    fn url_tail(&mut self, tail: &[u8]) -> Option<(IndicatorId, usize)> {
        let index = self.index;
        let host_len = self.buf.len();
        if tail.first() == Some(&b'?') || tail.is_empty() {
            self.buf.push(b'/');
        }
        let slash_added = self.buf.len() - host_len;
        // `;jsessionid=…` (a session id in the path) up to the query or fragment.
        let mut skipped: Option<(usize, usize)> = None;
        if let Some(j) = find_ascii_ci(tail, b";jsessionid=") {
            let to = tail[j..]
                .iter()
                .position(|&b| b == b'?' || b == b'#')
                .map_or(tail.len(), |q| j + q);
            skipped = Some((j, to));
            self.buf.extend_from_slice(&tail[..j]);
            self.buf.extend_from_slice(&tail[to..]);
        } else {
            self.buf.extend_from_slice(tail);
        }
        // Key offset → tail offset.
        let to_tail = |k: usize| -> usize {
            let k = (k - host_len).saturating_sub(slash_added);
            match skipped {
                Some((j, to)) if k > j => k + (to - j),
                _ => k,
            }
        };
        let full_len = self.buf.len();
        let max = index.max_url_len;
        self.cuts.clear();
        let mut trimmed = full_len;
        while trimmed > host_len + 1
            && matches!(self.buf[trimmed - 1], b'.' | b',' | b';' | b')' | b']')
        {
            trimmed -= 1;
        }
        self.cuts.push(trimmed);
        // Each level of trailing punctuation (`/a),` tries `/a)` and `/a),` too): an
        // indicator may itself end with `)` or `.`.
        let mut t = trimmed;
        while t < full_len && self.cuts.len() < 4 {
            t += 1;
            self.cuts.push(t);
        }
        for (k, &b) in self.buf[host_len..full_len].iter().enumerate() {
            if self.cuts.len() >= MAX_URL_CUTS || host_len + k > max {
                break;
            }
            if b == b'?' || b == b'#' || b == b'&' {
                self.cuts.push(host_len + k);
            }
        }
        let set = index.set(Kind::Url);
        let mut found = None;
        for &cut in &self.cuts {
            if cut > max {
                continue;
            }
            let l = if cut == host_len {
                // `http://evil.com` followed by the end: the URL `evil.com/`.
                let mut key = self.buf[..cut].to_vec();
                key.push(b'/');
                set.find(&key)
            } else {
                set.find(&self.buf[..cut])
            };
            if let Some(l) = l {
                found = Some((IndicatorId::new(Kind::Url, l), to_tail(cut).min(tail.len())));
                break;
            }
        }
        self.buf.truncate(host_len);
        found
    }

    /// A URL that a structured log splits over fields: the host in one, the path in
    /// the next (Zeek http.log `host` and `uri` columns; Suricata EVE `http.hostname`
    /// and `http.url`, Zeek JSON `host` and `uri`, FortiGate `hostname="…"` and
    /// `url="…"`). The atomic is host and path joined, without a span.
    fn split_url(&mut self, line: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let index = self.index;
        // The shape first (cheap), the host lookup last.
        let tsv = end + 1 < line.len() && line[end] == b'\t' && line[end + 1] == b'/';
        let quoted = end < line.len() && line[end] == b'"' && start > 0 && line[start - 1] == b'"';
        if !(tsv || quoted) {
            return;
        }
        if quoted {
            // JSON (`"hostname":"…"`) or key=value (FortiGate `hostname="…"`).
            let before = line[..start - 1].trim_ascii_end();
            let key_is_host = [
                &b"\"hostname\":"[..],
                b"\"host\":",
                b" hostname=",
                b" host=",
            ]
            .iter()
            .any(|k| before.ends_with(k));
            if !key_is_host {
                return;
            }
        }
        if index.url_hosts.find(&self.buf).is_none() {
            return;
        }
        // The path is looked for near the host (structured logs write the two fields
        // side by side), so a line of many hosts costs no more than linear work.
        const NEAR: usize = 4096;
        let window = &line[start.saturating_sub(NEAR)..line.len().min(end + NEAR)];
        let path: &[u8] = if tsv {
            // TSV: the next column.
            let p = &line[end + 1..];
            let stop = memchr::memchr(b'\t', p).unwrap_or(p.len());
            &p[..stop]
        } else {
            let Some(v) = [
                &b"\"url\":\""[..],
                b"\"uri\":\"",
                b"\"url\": \"",
                b"\"uri\": \"",
                b" url=\"",
                b" uri=\"",
            ]
            .iter()
            .find_map(|k| memchr::memmem::find(window, k).map(|i| i + k.len())) else {
                return;
            };
            let p = &window[v..];
            let stop = memchr::memchr(b'"', p).unwrap_or(p.len());
            let p = &p[..stop];
            if p.first() != Some(&b'/') || p.contains(&b'\\') {
                return;
            }
            p
        };
        if path.is_empty() {
            return;
        }
        if let Some((id, _)) = self.url_tail(path) {
            let mut atomic = String::from_utf8_lossy(&line[start..end]).into_owned();
            atomic.push_str(&String::from_utf8_lossy(path));
            push_owned(index, hits, id, atomic, None);
        }
    }

    /// Windows DNS debug logs write names as DNS wire labels:
    /// `(3)www(4)evil(3)com(0)` is `www.evil.com`. Each such name is looked up as a
    /// host; the atomic is the dotted name.
    fn dns_wire_names(&mut self, line: &[u8], hits: &mut Vec<Hit>) {
        let mut from = 0;
        while let Some(p) = wire_name_end().find(&line[from..]) {
            let zero = from + p;
            // The name starts after the last byte that cannot be part of it.
            let mut s = zero;
            while s > from && !matches!(line[s - 1], b' ' | b'\t' | b'"' | b'=' | b',' | b'[') {
                s -= 1;
            }
            from = zero + 3;
            self.buf.clear();
            let mut k = s;
            let mut ok = k < zero;
            while ok && k < zero {
                // `(n)label`
                let Some(close) = line[k..zero].iter().position(|&b| b == b')') else {
                    ok = false;
                    break;
                };
                let digits = &line[k + 1..k + close];
                let len: usize = match std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                {
                    Some(n) if line[k] == b'(' && (1..=63).contains(&n) => n,
                    _ => {
                        ok = false;
                        break;
                    }
                };
                let label = k + close + 1;
                if label + len > zero
                    || !line[label..label + len]
                        .iter()
                        .all(|&b| crate::intel::canon::is_host_byte(b))
                {
                    ok = false;
                    break;
                }
                if !self.buf.is_empty() {
                    self.buf.push(b'.');
                }
                self.buf.extend(
                    line[label..label + len]
                        .iter()
                        .map(|b| b.to_ascii_lowercase()),
                );
                k = label + len;
                if self.buf.len() > MAX_HOST {
                    ok = false;
                }
            }
            if !ok
                || k != zero
                || memchr::memchr(b'.', &self.buf).is_none()
                || !self.tld_known(&self.buf)
            {
                continue;
            }
            // The atomic is the dotted name, which the line does not hold as such: no
            // span.
            let atomic = Atomic::Owned(String::from_utf8_lossy(&self.buf).into_owned());
            self.names(line, &atomic, hits);
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

/// The end of a DNS wire name, `(0)`: a searcher built once (building one per line
/// cost more than the search).
fn wire_name_end() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(b"(0)"))
}

/// Where a hit's atomic comes from: a span of the line, or a name the line writes in
/// another form (a DNS wire name).
enum Atomic {
    Span(usize, usize),
    Owned(String),
}

impl Atomic {
    fn push(&self, index: &Index, hits: &mut Vec<Hit>, line: &[u8], id: IndicatorId) {
        match self {
            Atomic::Span(s, e) => push(index, hits, line, id, &line[*s..*e]),
            Atomic::Owned(text) => push_owned(index, hits, id, text.clone(), None),
        }
    }
}

/// Can a URL start at the host `line[start..end]`: a path, port or query follows it,
/// or a scheme (`://`) precedes it?
#[inline]
fn url_follows(line: &[u8], start: usize, end: usize) -> bool {
    (end < line.len() && matches!(line[end], b'/' | b':' | b'?'))
        || (end + 1 < line.len() && line[end] == b'.' && matches!(line[end + 1], b'/' | b'?'))
        || (start >= 3 && &line[start - 3..start] == b"://")
}

/// The scheme written before the host at `start` (`http` of `http://host`).
fn scheme_before(line: &[u8], start: usize) -> Option<&[u8]> {
    if start < 3 || &line[start - 3..start] != b"://" {
        return None;
    }
    let mut s = start - 3;
    while s > 0 && line[s - 1].is_ascii_alphanumeric() {
        s -= 1;
    }
    Some(&line[s..start - 3])
}

/// Is `port` the default port of `scheme` (`:80` of http or of a URL written without
/// a scheme, `:443` of https)?
fn is_default_port(scheme: Option<&[u8]>, port: &[u8]) -> bool {
    match scheme {
        None => port == b"80",
        Some(s) if s.eq_ignore_ascii_case(b"http") || s.eq_ignore_ascii_case(b"hxxp") => {
            port == b"80"
        }
        Some(s) if s.eq_ignore_ascii_case(b"https") || s.eq_ignore_ascii_case(b"hxxps") => {
            port == b"443"
        }
        Some(_) => false,
    }
}

/// The first position of `needle` in `hay`, ASCII case-insensitively.
fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle.first()?;
    let mut from = 0;
    while let Some(p) = memchr::memchr(*first, &hay[from..]) {
        let i = from + p;
        if hay.len() - i >= needle.len() && hay[i..i + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Does the host at `start` stand in a URL's query string (`/r?u=evil.com`)? Looks
/// back at most [`QUERY_LOOKBACK`] bytes within the token.
fn in_query_string(line: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(QUERY_LOOKBACK);
    let mut k = start;
    while k > from {
        let b = line[k - 1];
        if ends_url(b) {
            return false;
        }
        if b == b'?' {
            return line[from..k - 1]
                .iter()
                .rev()
                .take_while(|&&b| !ends_url(b))
                .any(|&b| b == b'/');
        }
        k -= 1;
    }
    false
}

/// Is the dotted quad at `line[start..end]` a version rather than an address?
/// - after a key that names a version (`FileVersion`, `"ProductVersion": "…"`,
///   `version=`);
/// - glued to a `/` after a product name (`Chrome/4.0.222.12`), unless the name is a
///   log keyword that introduces an address (Squid's `HIER_DIRECT/`, `ORIGINAL_DST/`,
///   `DIRECT/`: upper case with `_`), the address carries a port in parentheses
///   (Cisco ASA `outside/1.2.3.4(54321)`), or the name is itself part of a path or
///   URL (`host/1.2.3.4`, `=dir/1.2.3.4`).
fn is_version_context(line: &[u8], start: usize, end: usize) -> bool {
    if version_key_before(line, start) {
        return true;
    }
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
    if k > 0 && matches!(line[k - 1], b'/' | b':' | b'=') {
        return false;
    }
    if is_address_keyword(&line[k..slash]) {
        return false;
    }
    let port_follows =
        line.get(end) == Some(&b'(') && line.get(end + 1).is_some_and(u8::is_ascii_digit);
    !port_follows
}

/// Squid's hierarchy codes and other upper-case log keywords that a `/` and an address
/// follow (`HIER_DIRECT/1.2.3.4`, `ORIGINAL_DST/…`, `DIRECT/…`).
fn is_address_keyword(word: &[u8]) -> bool {
    let caps = word
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    caps && (word.contains(&b'_') || matches!(word, b"DIRECT" | b"NONE" | b"CARP" | b"PINNED"))
}

/// Does a key naming a version stand right before `start` (`FileVersion":"`,
/// `version=`, `Version: `)?
fn version_key_before(line: &[u8], start: usize) -> bool {
    let mut k = start;
    while k > 0 && start - k < 5 && matches!(line[k - 1], b'"' | b'\'' | b':' | b'=' | b' ') {
        k -= 1;
    }
    if k == start || k < 7 {
        return false;
    }
    let key = &line[k - 7..k];
    key.eq_ignore_ascii_case(b"version") && (k == 7 || !line[k - 8].is_ascii_digit())
}

/// tcpdump's `1.2.3.4.443`: an address with its port after a fifth dot, in tcpdump's
/// `IP a.p > b.p:` shape. Returns the address, the port and where the address ends.
fn tcpdump_v4(line: &[u8], start: usize, end: usize) -> Option<(u32, u16, usize)> {
    let word = &line[start..end];
    let dot = memchr::memrchr(b'.', word)?;
    let port = &word[dot + 1..];
    if !(1..=5).contains(&port.len()) || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let addr = ip::parse_v4(&word[..dot])?;
    let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
    tcpdump_context(line, start, end).then_some((addr, port, start + dot))
}

/// Is `line[start..end]` an endpoint of tcpdump's `IP a > b:` text?
fn tcpdump_context(line: &[u8], start: usize, end: usize) -> bool {
    let before = &line[..start];
    let after = &line[end..];
    after.starts_with(b" > ")
        || before.ends_with(b"IP ")
        || before.ends_with(b"IP6 ")
        || (before.ends_with(b"> ") && after.first() == Some(&b':'))
}

/// The port written right after an address ending at `end`: `:443`, `/443` (Cisco),
/// `(443)` (Cisco ASA), `#443`, ` port 443`.
fn port_after(line: &[u8], end: usize) -> Option<u16> {
    let rest = &line[end..];
    let digits = match rest.first()? {
        b':' | b'/' | b'(' | b'#' => &rest[1..],
        b' ' if rest.starts_with(b" port ") => &rest[6..],
        _ => return None,
    };
    let n = digits
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > 5 {
        return None;
    }
    std::str::from_utf8(&digits[..n]).ok()?.parse().ok()
}

/// The port of an IPv6 address at `line[s..e]`: `[addr]:443`, or as after IPv4.
fn v6_port_after(line: &[u8], s: usize, e: usize) -> Option<u16> {
    if s > 0 && line[s - 1] == b'[' && line.get(e) == Some(&b']') {
        return port_after(line, e + 1);
    }
    match line.get(e) {
        Some(b':') => None,
        _ => port_after(line, e),
    }
}

/// With `ip_port = exact`: does the indicator allow `port`? An indicator that some
/// source gave without a port matches any; one whose every source gave a port
/// matches only one of those ports written next to the address.
fn port_matches(index: &Index, id: IndicatorId, port: Option<u16>) -> bool {
    let metas = index.metas_of(id);
    if metas.iter().any(|&m| index.meta(m).port.is_none()) {
        return true;
    }
    port.is_some_and(|p| metas.iter().any(|&m| index.meta(m).port == Some(p)))
}

/// Decodes journald's byte-array value (`[70,97,105,…]`, the text after `[`) into
/// `out`. False when it is not a list of byte values.
fn journal_bytes(text: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(close) = memchr::memchr(b']', text) else {
        return false;
    };
    for item in text[..close].split(|&b| b == b',') {
        let item = item.trim_ascii();
        match std::str::from_utf8(item)
            .ok()
            .and_then(|t| t.parse::<u8>().ok())
        {
            Some(b) => out.push(b),
            None => return false,
        }
    }
    !out.is_empty()
}

/// What one pass over a line's `\\` and `(` bytes tells (see [`markers`]).
struct Markers {
    /// The first byte that is not white space.
    first: Option<u8>,
    /// JSON string escapes worth a decoded pass: any backslash in a line that starts
    /// with `{` or `[`, else `\/`, `\"` or `\uXXXX` anywhere (JSON in a syslog message).
    escapes: bool,
    /// The end of a DNS wire name, `(0)` (looked for only when `want_wire`).
    wire_name: bool,
}

fn markers(line: &[u8], want_wire: bool) -> Markers {
    let first = line.iter().copied().find(|b| !b.is_ascii_whitespace());
    let json = matches!(first, Some(b'{' | b'['));
    let (mut escapes, mut wire_name) = (false, false);
    for p in memchr::memchr2_iter(b'\\', b'(', line) {
        if line[p] == b'(' {
            wire_name |= want_wire && line.get(p + 1..p + 3) == Some(b"0)");
        } else if !escapes {
            escapes = json
                || match line.get(p + 1) {
                    Some(b'/' | b'"') => true,
                    Some(b'u') => line
                        .get(p + 2..p + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                    _ => false,
                };
        }
        if escapes && (wire_name || !want_wire) {
            break;
        }
    }
    Markers {
        first,
        escapes,
        wire_name,
    }
}

/// Adds a hit unless the indicator is already there. `atomic` is a sub-slice of
/// `line`; its offsets become the hit's span.
#[inline]
fn push(index: &Index, hits: &mut Vec<Hit>, line: &[u8], id: IndicatorId, atomic: &[u8]) {
    if index.metas_of(id).is_empty() || hits.iter().any(|h| h.id == id) {
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

/// Adds a hit whose atomic is not a slice of the line.
fn push_owned(
    index: &Index,
    hits: &mut Vec<Hit>,
    id: IndicatorId,
    atomic: String,
    span: Option<(usize, usize)>,
) {
    if index.metas_of(id).is_empty() || hits.iter().any(|h| h.id == id) {
        return;
    }
    hits.push(Hit { id, atomic, span });
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
