//! STIX 2.x loader: indicators from bundles (2.0 and 2.1), bare object lists and
//! single indicator objects.
//!
//! Owns the parser for the pattern subset tripline matches: comparisons
//! `type:property = 'value'` joined by `OR`, inside one bracket pair or as several
//! bracketed observation expressions, optionally grouped with parentheses. Anything
//! else (`AND`, `MATCHES`, `LIKE`, `FOLLOWEDBY`, qualifiers such as `WITHIN`, other
//! object paths, non-`stix` pattern types) skips the whole indicator with a counted
//! reason: matching part of an `AND` would turn a narrow indicator into a broad one.
//!
//! Provenance: one [`EventInfo`] per bundle (UUID of the bundle id; name of the first
//! report, else the file name); per indicator a [`Meta`] with the full STIX id, the
//! object path as its type (`domain-name:value`), labels and kill-chain phases as
//! tags, TLP from `object_marking_refs` (the standard TLP 1.0 and 2.0 marking
//! definitions, plus TLP marking definitions in the bundle), `revoked` and the validity
//! window. Invariant: every indicator is counted in `records_by_source`, and is added,
//! excluded by policy, or skipped with its location and reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::model::{EventInfo, Kind, Meta, Tlp};
use super::store::IntelStore;
use super::IntelError;

/// Skip reason for a pattern outside the supported subset.
pub const UNSUPPORTED_PATTERN: &str = "unsupported STIX pattern";

/// Loads one STIX JSON file under `source`.
pub fn load_stix_file(store: &mut IntelStore, path: &Path, source: u32) -> Result<(), IntelError> {
    let value = IntelError::read_json(path)?;
    load_stix_value(store, &value, source, &path.display().to_string())
}

/// Loads parsed STIX JSON: a bundle, a list of STIX objects, or one indicator.
/// `location` (a path or URL) prefixes skip locations, names the file in errors, and
/// its file name is the event name when the bundle has no report.
pub fn load_stix_value(
    store: &mut IntelStore,
    value: &Value,
    source: u32,
    location: &str,
) -> Result<(), IntelError> {
    let format_error = |message: String| IntelError::Format {
        path: PathBuf::from(location),
        message,
    };
    let (bundle_id, objects): (Option<&str>, &[Value]) = match value {
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("bundle") => match o.get("objects") {
                Some(Value::Array(list)) => (o.get("id").and_then(Value::as_str), list),
                None => (o.get("id").and_then(Value::as_str), &[]),
                Some(_) => return Err(format_error("bundle \"objects\" is not a list".into())),
            },
            Some("indicator") => (None, std::slice::from_ref(value)),
            Some(other) => {
                return Err(format_error(format!(
                    "not a STIX bundle or indicator (type {other:?})"
                )))
            }
            None => return Err(format_error("not STIX: an object without \"type\"".into())),
        },
        Value::Array(list) => {
            if !list.is_empty() && !list.iter().any(is_stix_object) {
                return Err(format_error(
                    "not STIX: a list with no STIX object (objects need \"type\" and \"id\")"
                        .into(),
                ));
            }
            (None, list)
        }
        _ => {
            return Err(format_error(
                "not STIX: expected a bundle, a list or an object".into(),
            ))
        }
    };

    let context = BundleContext::new(objects);
    // The bundle's event is added with its first indicator: a bundle of identities or
    // reports alone adds nothing.
    let mut event = None;
    for (i, object) in objects.iter().enumerate() {
        let Some(o) = object.as_object() else {
            continue;
        };
        if str_of(o, "type") != Some("indicator") {
            continue;
        }
        let event = *event.get_or_insert_with(|| {
            let info = context.event_info(bundle_id, location);
            // The bundle's author is the source's provider, when the caller did not say.
            if let (Some(org), Some(src)) = (&info.org, store.sources.get_mut(source as usize)) {
                src.provider.get_or_insert_with(|| org.clone());
            }
            store.add_event(info)
        });
        load_indicator(store, &context, o, source, event, || {
            let id = str_of(o, "id").unwrap_or("no id");
            format!("{location}: objects[{i}] ({id})")
        });
    }
    Ok(())
}

fn is_stix_object(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str).is_some() && v.get("id").and_then(Value::as_str).is_some()
}

/// What the bundle says about its indicators: TLP marking definitions, identities,
/// the first report.
struct BundleContext<'a> {
    markings: HashMap<&'a str, Tlp>,
    identities: HashMap<&'a str, &'a str>,
    report: Option<&'a Map<String, Value>>,
}

impl<'a> BundleContext<'a> {
    fn new(objects: &'a [Value]) -> BundleContext<'a> {
        let mut ctx = BundleContext {
            markings: HashMap::new(),
            identities: HashMap::new(),
            report: None,
        };
        for o in objects.iter().filter_map(Value::as_object) {
            let (Some(ty), Some(id)) = (str_of(o, "type"), str_of(o, "id")) else {
                continue;
            };
            match ty {
                "marking-definition" => {
                    if let Some(tlp) = marking_tlp(o) {
                        ctx.markings.insert(id, tlp);
                    }
                }
                "identity" => {
                    if let Some(name) = str_of(o, "name") {
                        ctx.identities.insert(id, name);
                    }
                }
                "report" if ctx.report.is_none() => ctx.report = Some(o),
                _ => {}
            }
        }
        ctx
    }

    /// The most restrictive TLP among an object's `object_marking_refs`.
    fn tlp(&self, o: &Map<String, Value>) -> Option<Tlp> {
        strings(o, "object_marking_refs")
            .filter_map(|r| standard_tlp(r).or_else(|| self.markings.get(r).copied()))
            .max()
    }

    fn event_info(&self, bundle_id: Option<&str>, location: &str) -> EventInfo {
        let report = self.report;
        let file_name = Path::new(location)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let org = report
            .and_then(|r| str_of(r, "created_by_ref"))
            .and_then(|id| self.identities.get(id))
            .or_else(|| match self.identities.len() {
                1 => self.identities.values().next(),
                _ => None,
            })
            .map(|n| n.to_string());
        EventInfo {
            uuid: bundle_id.map(|id| id.strip_prefix("bundle--").unwrap_or(id).to_string()),
            info: report
                .and_then(|r| str_of(r, "name"))
                .map(str::to_string)
                .or(file_name),
            threat_level: None,
            tags: report
                .map(|r| strings(r, "labels").map(str::to_string).collect())
                .unwrap_or_default(),
            tlp: report.and_then(|r| self.tlp(r)),
            distribution: None,
            org,
            date: report
                .and_then(|r| str_of(r, "published"))
                .and_then(|p| p.get(..10))
                .map(str::to_string),
            reference: None,
        }
    }
}

/// TLP of a marking-definition object: `definition_type: tlp` (TLP 1.0) or the TLP 2.0
/// extension (`tlp_2_0`), else its `TLP:` name.
fn marking_tlp(o: &Map<String, Value>) -> Option<Tlp> {
    if str_of(o, "definition_type").is_some_and(|t| t.eq_ignore_ascii_case("tlp")) {
        if let Some(level) = o
            .get("definition")
            .and_then(|d| d.get("tlp"))
            .and_then(Value::as_str)
        {
            return Tlp::from_tag(&format!("tlp:{level}"));
        }
    }
    let tlp2 = o
        .get("extensions")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|e| e.values())
        .find_map(|e| e.get("tlp_2_0").and_then(Value::as_str));
    if let Some(level) = tlp2 {
        return Tlp::from_tag(&format!("tlp:{level}"));
    }
    str_of(o, "name").and_then(Tlp::from_tag)
}

/// The standard TLP marking definitions: TLP 1.0 from the STIX 2.0/2.1 specifications,
/// TLP 2.0 from the OASIS TLP 2.0 extension (cti-stix-common-objects), and the
/// TLP:AMBER+STRICT id OpenCTI uses.
fn standard_tlp(id: &str) -> Option<Tlp> {
    let uuid = id.strip_prefix("marking-definition--")?;
    Some(match uuid {
        "613f2e26-407d-48c7-9eca-b8e91df99dc9" | "94868c89-83c2-464b-929b-a1a8aa3c8487" => {
            Tlp::Clear
        }
        "34098fce-860f-48ae-8e50-ebd3cc5e41da" | "bab4a63c-aed9-4cf5-a766-dfca5abac2bb" => {
            Tlp::Green
        }
        "f88d31f6-486f-44da-b317-01333bde0b82" | "55d920b0-5e8b-4f79-9ee9-91f868d9b421" => {
            Tlp::Amber
        }
        "939a9414-2ddd-4d32-a0cd-375ea402b003" | "826578e1-40ad-459f-bc73-ede076f81f37" => {
            Tlp::AmberStrict
        }
        "5e57c739-391a-4eb3-b6be-7d15ca92d5ed" | "e828b379-4e03-4974-9ac4-e53a884c97c1" => Tlp::Red,
        _ => return None,
    })
}

fn load_indicator(
    store: &mut IntelStore,
    context: &BundleContext<'_>,
    o: &Map<String, Value>,
    source: u32,
    event: u32,
    location: impl Fn() -> String,
) {
    if let Some(n) = store.records_by_source.get_mut(source as usize) {
        *n += 1;
    }
    let pattern_type = str_of(o, "pattern_type").unwrap_or("stix");
    if !pattern_type.eq_ignore_ascii_case("stix") {
        store.unsupported(
            location(),
            format!("unsupported pattern_type: {pattern_type}"),
        );
        return;
    }
    let Some(pattern) = str_of(o, "pattern") else {
        store.skip(location(), "indicator without pattern");
        return;
    };
    let comparisons = match parse_pattern(pattern) {
        Ok(c) => c,
        Err(why) => {
            tracing::debug!(location = %location(), why, "Unsupported STIX pattern.");
            // Valid STIX that tripline cannot evaluate (AND, qualifiers...): counted as
            // unsupported, not malformed.
            store.unsupported(location(), UNSUPPORTED_PATTERN);
            return;
        }
    };

    let tlp = context.tlp(o);
    let mut tags: Vec<String> = strings(o, "labels").map(str::to_string).collect();
    for phase in o
        .get("kill_chain_phases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = phase.get("phase_name").and_then(Value::as_str) {
            tags.push(format!("kill-chain:{name}"));
        }
    }
    if let Some(t) = tlp {
        tags.push(format!("tlp:{}", t.as_str().to_ascii_lowercase()));
    }
    let base = Meta {
        source,
        event: Some(event),
        attr_uuid: str_of(o, "id").map(Into::into),
        tags: store.intern_tags(&tags),
        to_ids: true,
        revoked: o.get("revoked").and_then(Value::as_bool).unwrap_or(false),
        tlp,
        valid_from: str_of(o, "valid_from").and_then(rfc3339),
        valid_until: str_of(o, "valid_until").and_then(rfc3339),
        modified: str_of(o, "modified").and_then(rfc3339),
        ..Meta::default()
    };
    for (i, c) in comparisons.iter().enumerate() {
        let meta = Meta {
            misp_type: store.intern(c.path),
            ..base.clone()
        };
        let Some(meta) = store.meta_id(meta) else {
            // Revoked: counted by the store, once for the indicator.
            return;
        };
        store.add_typed(c.kind, &c.value, meta, || {
            format!("{} comparison {i} ({})", location(), c.path)
        });
    }
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The strings of a list field.
fn strings<'a>(o: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    o.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp())
}

/// One `type:property = 'value'` comparison tripline can match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub kind: Kind,
    /// The object path, normalised (`file:hashes.SHA-256`).
    pub path: &'static str,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Or,
    Eq,
    Str(String),
    /// `type:property.path`, quotes removed from path segments.
    Path(String, Vec<String>),
    /// Any other word or symbol (AND, LIKE, WITHIN, numbers, `!=`...).
    Other(String),
}

/// Nesting of parentheses accepted before a pattern is refused as unsupported.
const MAX_DEPTH: usize = 32;

/// Parses the supported pattern subset into its comparisons, or says why not.
pub fn parse_pattern(pattern: &str) -> Result<Vec<Comparison>, &'static str> {
    let tokens = tokenize(pattern)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        out: Vec::new(),
    };
    p.observation_expr(0)?;
    if p.pos != tokens.len() {
        return Err("unexpected text after the pattern (qualifier or operator)");
    }
    Ok(p.out)
}

fn tokenize(s: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' | ']' | '(' | ')' | '=' => {
                chars.next();
                out.push(match c {
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    _ => Token::Eq,
                });
            }
            '\'' => {
                chars.next();
                out.push(Token::Str(quoted(&mut chars)?));
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let word = take_while(&mut chars, |c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == '-'
                });
                if chars.peek() == Some(&':') {
                    chars.next();
                    out.push(Token::Path(word, property_path(&mut chars)?));
                } else if word == "OR" || word == "or" {
                    out.push(Token::Or);
                } else {
                    out.push(Token::Other(word));
                }
            }
            _ => {
                chars.next();
                out.push(Token::Other(c.to_string()));
            }
        }
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn take_while(chars: &mut Chars<'_>, f: impl Fn(char) -> bool) -> String {
    let mut s = String::new();
    while let Some(&c) = chars.peek() {
        if !f(c) {
            break;
        }
        s.push(c);
        chars.next();
    }
    s
}

/// A string literal after its opening quote; `\'` and `\\` are the only escapes.
fn quoted(chars: &mut Chars<'_>) -> Result<String, &'static str> {
    let mut s = String::new();
    loop {
        match chars.next() {
            Some('\'') => return Ok(s),
            Some('\\') => match chars.next() {
                Some(c @ ('\'' | '\\')) => s.push(c),
                _ => return Err("invalid escape in string literal"),
            },
            Some(c) => s.push(c),
            None => return Err("unterminated string literal"),
        }
    }
}

/// `hashes.'SHA-256'` → `["hashes", "SHA-256"]`.
fn property_path(chars: &mut Chars<'_>) -> Result<Vec<String>, &'static str> {
    let mut segments = Vec::new();
    loop {
        let segment = if chars.peek() == Some(&'\'') {
            chars.next();
            quoted(chars)?
        } else {
            take_while(chars, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if segment.is_empty() {
            return Err("empty object path segment");
        }
        segments.push(segment);
        if chars.peek() == Some(&'.') {
            chars.next();
        } else {
            return Ok(segments);
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    out: Vec<Comparison>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// observation_expr := observation (OR observation)*
    fn observation_expr(&mut self, depth: usize) -> Result<(), &'static str> {
        self.observation(depth)?;
        while self.eat(&Token::Or) {
            self.observation(depth)?;
        }
        Ok(())
    }

    /// observation := '[' comparison_expr ']' | '(' observation_expr ')'
    fn observation(&mut self, depth: usize) -> Result<(), &'static str> {
        if depth > MAX_DEPTH {
            return Err("parentheses nested too deep");
        }
        if self.eat(&Token::LParen) {
            self.observation_expr(depth + 1)?;
            return self.require(&Token::RParen);
        }
        self.require(&Token::LBracket)?;
        self.comparison_expr(depth)?;
        self.require(&Token::RBracket)
    }

    /// comparison_expr := comparison (OR comparison)*
    fn comparison_expr(&mut self, depth: usize) -> Result<(), &'static str> {
        self.comparison(depth)?;
        while self.eat(&Token::Or) {
            self.comparison(depth)?;
        }
        Ok(())
    }

    /// comparison := path '=' string | '(' comparison_expr ')'
    fn comparison(&mut self, depth: usize) -> Result<(), &'static str> {
        if depth > MAX_DEPTH {
            return Err("parentheses nested too deep");
        }
        if self.eat(&Token::LParen) {
            self.comparison_expr(depth + 1)?;
            return self.require(&Token::RParen);
        }
        let Some(Token::Path(ty, property)) = self.peek() else {
            return Err("expected an object path");
        };
        let (kind, path) = supported_path(ty, property).ok_or("unsupported object path")?;
        self.pos += 1;
        self.require(&Token::Eq)?;
        let Some(Token::Str(value)) = self.peek() else {
            return Err("expected a string literal");
        };
        self.out.push(Comparison {
            kind,
            path,
            value: value.clone(),
        });
        self.pos += 1;
        Ok(())
    }

    fn require(&mut self, t: &Token) -> Result<(), &'static str> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(match t {
                Token::RBracket => "expected ']' (AND, LIKE, MATCHES or another operator?)",
                Token::Eq => "expected '=' (only equality is supported)",
                _ => "unexpected token",
            })
        }
    }
}

/// The kind and normalised path of an object path tripline matches.
fn supported_path(ty: &str, property: &[String]) -> Option<(Kind, &'static str)> {
    let props: Vec<&str> = property.iter().map(String::as_str).collect();
    Some(match (ty, props.as_slice()) {
        ("ipv4-addr", ["value"]) => (Kind::Ipv4, "ipv4-addr:value"),
        ("ipv6-addr", ["value"]) => (Kind::Ipv6, "ipv6-addr:value"),
        ("domain-name", ["value"]) => (Kind::Domain, "domain-name:value"),
        ("url", ["value"]) => (Kind::Url, "url:value"),
        ("email-addr", ["value"]) => (Kind::Email, "email-addr:value"),
        ("file", ["name"]) => (Kind::Filename, "file:name"),
        ("windows-registry-key", ["key"]) => (Kind::Regkey, "windows-registry-key:key"),
        ("file", ["hashes", algo]) => {
            let algo: String = algo
                .chars()
                .filter(|c| *c != '-' && *c != '_')
                .map(|c| c.to_ascii_uppercase())
                .collect();
            match algo.as_str() {
                "MD5" => (Kind::Md5, "file:hashes.MD5"),
                "SHA1" => (Kind::Sha1, "file:hashes.SHA-1"),
                "SHA256" => (Kind::Sha256, "file:hashes.SHA-256"),
                "SHA512" => (Kind::Sha512, "file:hashes.SHA-512"),
                _ => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::model::Source;
    use crate::intel::store::StoreOptions;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/intel/stix");

    fn new_store(options: StoreOptions) -> (IntelStore, u32) {
        let mut store = IntelStore::new(options);
        let source = store.add_source(Source {
            name: "stix".into(),
            format: "stix",
            location: "bundle.json".into(),
            provider: None,
        });
        (store, source)
    }

    fn load(value: Value) -> IntelStore {
        let (mut store, source) = new_store(StoreOptions::default());
        load_stix_value(&mut store, &value, source, "dir/bundle.json").expect("STIX loads");
        store
    }

    fn load_fixture(name: &str, options: StoreOptions) -> IntelStore {
        let (mut store, source) = new_store(options);
        let path = Path::new(FIXTURES).join(name);
        load_stix_file(&mut store, &path, source).expect("fixture loads");
        store
    }

    /// Every value added, as `kind value`, in insertion order.
    fn added(store: &IntelStore) -> Vec<String> {
        let links = store.links.iter();
        links
            .map(|&(id, _)| format!("{} {}", id.kind(), store.value(id)))
            .collect()
    }

    fn meta<'s>(store: &'s IntelStore, kind: Kind, value: &str) -> &'s Meta {
        let mut links = store.links.iter();
        let link = links.find(|(id, _)| id.kind() == kind && store.value(*id) == value);
        let &(_, m) = link.unwrap_or_else(|| panic!("{kind} {value} not loaded"));
        &store.metas[m as usize]
    }

    fn skipped(store: &IntelStore, reason: &str) -> u64 {
        store.skipped_by_reason.get(reason).copied().unwrap_or(0)
    }

    fn indicator(pattern: &str) -> Value {
        json!({"type": "indicator", "id": "indicator--1", "pattern": pattern, "pattern_type": "stix"})
    }

    /// A parsed pattern as `path=value` items.
    fn parsed(pattern: &str) -> Result<Vec<String>, &'static str> {
        let comparisons = parse_pattern(pattern)?;
        Ok(comparisons
            .iter()
            .map(|c| format!("{} {}={}", c.kind, c.path, c.value))
            .collect())
    }

    #[test]
    fn pattern_table_supported() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("[ipv4-addr:value = '198.51.100.1']", &["ipv4 ipv4-addr:value=198.51.100.1"]),
            ("[ipv6-addr:value='2001:db8::/32']", &["ipv6 ipv6-addr:value=2001:db8::/32"]),
            ("[domain-name:value = 'a.example' OR url:value = 'http://a.example/x']",
             &["domain domain-name:value=a.example", "url url:value=http://a.example/x"]),
            ("[email-addr:value = 'x@a.example'] OR [file:name = 'a.exe'] or [file:hashes.MD5 = 'm']",
             &["email email-addr:value=x@a.example", "filename file:name=a.exe", "md5 file:hashes.MD5=m"]),
            ("[file:hashes.'SHA-256' = 'a' OR file:hashes.SHA256 = 'b' OR file:hashes.'SHA-1' = 'c' \
              OR file:hashes.SHA1 = 'd' OR file:hashes.'SHA-512' = 'e']",
             &["sha256 file:hashes.SHA-256=a", "sha256 file:hashes.SHA-256=b", "sha1 file:hashes.SHA-1=c",
               "sha1 file:hashes.SHA-1=d", "sha512 file:hashes.SHA-512=e"]),
            ("([file:name = 'a'] OR ([file:name = 'b' OR (file:name = 'c')]))",
             &["filename file:name=a", "filename file:name=b", "filename file:name=c"]),
            (r"[file:name = 'O\'Brien \\ invoice.exe']", &[r"filename file:name=O'Brien \ invoice.exe"]),
            (r"[windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\Harbor']",
             &[r"regkey windows-registry-key:key=HKEY_CURRENT_USER\Software\Harbor"]),
        ];
        for (pattern, want) in cases {
            assert_eq!(
                parsed(pattern),
                Ok(want.iter().map(|w| w.to_string()).collect()),
                "{pattern}"
            );
        }
    }

    #[test]
    fn pattern_table_unsupported() {
        let cases = [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']",
            "[domain-name:value MATCHES '^evil']",
            "[domain-name:value LIKE '%.evil.example']",
            "[domain-name:value != 'a.example']",
            "[process:name = 'evil.exe']",
            "[file:hashes.SSDEEP = '3:abc:def']",
            "[file:extensions.'windows-pebinary-ext'.sections[*].entropy = '7']",
            "[file:name = 'a'] FOLLOWEDBY [file:name = 'b']",
            "[file:name = 'a'] WITHIN 300 SECONDS",
            "[file:name = 'a'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
            "[network-traffic:dst_port = 443]",
            "[file:name = 'unterminated]",
            r"[file:name = 'bad \n escape']",
            "[file:name = 'a'",
            "file:name = 'a'",
            "",
            "[]",
        ];
        for pattern in cases {
            assert!(
                parse_pattern(pattern).is_err(),
                "{pattern:?} should be unsupported"
            );
        }
        let deep = format!("{}[file:name = 'a']{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(parse_pattern(&deep), Err("parentheses nested too deep"));
    }

    #[test]
    fn harbor_bundle_fixture() {
        let store = load_fixture("harbor-campaign.json", StoreOptions::default());
        // 8 indicators read: one revoked (excluded), two skipped, five loaded.
        assert_eq!(store.records_by_source[0], 8);
        assert_eq!(store.excluded_by_reason.get("revoked"), Some(&1));
        assert_eq!(skipped(&store, UNSUPPORTED_PATTERN), 1);
        assert_eq!(skipped(&store, "unsupported pattern_type: sigma"), 1);
        assert_eq!(store.skipped_total(), 2);
        let unsupported =
            "harbor-campaign.json: objects[12] (indicator--f7a8b9c0-d1e2-4f3a-8b4c-5d6e7f8a9b0c)";
        assert!(store
            .skipped
            .iter()
            .any(|s| s.location.ends_with(unsupported)));
        let want = [
            "ipv4 198.51.100.23",
            "ipv4 203.0.113.0/24",
            "domain update-check.example.net",
            "url cdn.update-check.example.net/dl/stage2.bin",
            "sha256 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
            "md5 44d88612fea8a8f36de82e1278abb02f",
            "sha1 3395856ce81f2b7382dee72602f798b642f14140",
            "email billing@invoice-portal.example.com",
            "filename harbor dues 'march' 2024.pdf.exe",
            "ipv6 2001:db8:dead:beef::7",
            "sha512 cc805d5fab1fd71a4ab352a9c533e65fb2d5b885518f4e565e68847223b8e6b8\
             5cb48f3afad842726d99239c9e36505c64b0dc9a061d9e507d833277ada336ab",
        ];
        assert_eq!(added(&store), want);

        assert_eq!(store.events.len(), 1);
        let ev = &store.events[0];
        assert_eq!(
            ev.uuid.as_deref(),
            Some("5d0092c5-5f74-4287-9642-33f4c354e56d")
        );
        let info = Some("Operation Quiet Harbor: loader infrastructure");
        assert_eq!(
            (ev.info.as_deref(), ev.org.as_deref()),
            (info, Some("Example Regional CERT"))
        );
        assert_eq!(
            (ev.tlp, ev.date.as_deref()),
            (Some(Tlp::Green), Some("2024-03-04"))
        );
        assert_eq!(ev.tags, ["campaign:quiet-harbor"]);
        assert_eq!(
            store.sources[0].provider.as_deref(),
            Some("Example Regional CERT")
        );

        let c2 = meta(&store, Kind::Ipv4, "198.51.100.23");
        let id = Some("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        assert_eq!(
            (c2.attr_uuid.as_deref(), store.strings.get(c2.misp_type)),
            (id, "ipv4-addr:value")
        );
        assert_eq!(
            (c2.to_ids, c2.event, c2.tlp),
            (true, Some(0), Some(Tlp::Green))
        );
        assert_eq!((c2.valid_from, c2.valid_until), (Some(1_709_283_600), None));
        let mut tags: Vec<&str> = store.tags(c2.tags).collect();
        tags.sort_unstable();
        assert_eq!(tags, ["c2", "kill-chain:command-and-control", "tlp:green"]);
        // Two markings: the most restrictive wins (TLP 2.0 amber+strict, defined in the bundle).
        let domain = meta(&store, Kind::Domain, "update-check.example.net");
        assert_eq!(domain.tlp, Some(Tlp::AmberStrict));
        // The standard TLP 1.0 red marking, not defined in the bundle, is known by its id.
        let payload = meta(&store, Kind::Md5, "44d88612fea8a8f36de82e1278abb02f");
        assert_eq!(
            (payload.tlp, store.strings.get(payload.misp_type)),
            (Some(Tlp::Red), "file:hashes.MD5")
        );
        // valid_until is recorded; whether it has passed is judged at match time.
        let v6 = meta(&store, Kind::Ipv6, "2001:db8:dead:beef::7");
        assert_eq!(v6.valid_until, Some(1_717_200_000));
        assert!(!v6.valid_at(1_717_200_000) && v6.valid_at(1_717_199_999));
    }

    #[test]
    fn revoked_is_kept_in_explain_mode() {
        let options = StoreOptions {
            include_non_ids: false,
            keep_excluded: true,
            ..StoreOptions::default()
        };
        let store = load_fixture("harbor-campaign.json", options);
        assert!(meta(&store, Kind::Domain, "old-harbor.example.org").revoked);
    }

    #[test]
    fn stix20_bundle_fixture() {
        let store = load_fixture("stix20-bundle.json", StoreOptions::default());
        let url = "login.example-bank.test/secure/verify.php";
        assert_eq!(added(&store), [format!("url {url}")]);
        assert_eq!(meta(&store, Kind::Url, url).tlp, Some(Tlp::Clear));
        assert_eq!(skipped(&store, UNSUPPORTED_PATTERN), 1);
        assert_eq!(store.events[0].info.as_deref(), Some("stix20-bundle.json"));
    }

    #[test]
    fn list_and_single_indicator_shapes() {
        let mut marked = indicator("[domain-name:value = 'list.example']");
        marked["object_marking_refs"] = json!(["marking-definition--custom"]);
        let store = load(json!([
            {"type": "marking-definition", "id": "marking-definition--custom",
             "definition_type": "tlp", "definition": {"tlp": "amber"}},
            marked,
        ]));
        assert_eq!(
            meta(&store, Kind::Domain, "list.example").tlp,
            Some(Tlp::Amber)
        );
        let ev = &store.events[0];
        assert_eq!(
            (ev.uuid.as_deref(), ev.info.as_deref()),
            (None, Some("bundle.json"))
        );

        let mut single = indicator("[ipv4-addr:value = '198.51.100.77']");
        single.as_object_mut().map(|o| o.remove("pattern_type"));
        single["valid_until"] = json!("2020-01-01T00:00:00.5Z");
        let store = load(single);
        assert_eq!(
            meta(&store, Kind::Ipv4, "198.51.100.77").valid_until,
            Some(1_577_836_800)
        );

        let store = load(json!({"type": "bundle", "id": "bundle--b0", "objects": [
            {"type": "identity", "id": "identity--1", "name": "Nobody"}]}));
        assert!(store.events.is_empty() && store.is_empty());
    }

    #[test]
    fn record_problems_are_counted_not_fatal() {
        let mut no_pattern = indicator("");
        no_pattern.as_object_mut().map(|o| o.remove("pattern"));
        let mut yara = indicator("rule x { condition: true }");
        yara["pattern_type"] = json!("yara");
        let mixed =
            indicator("[ipv4-addr:value = 'not-an-ip' OR domain-name:value = 'ok.example']");
        let objects = json!([no_pattern, yara, mixed]);
        let store = load(json!({"type": "bundle", "id": "bundle--b1", "objects": objects}));
        assert_eq!(added(&store), ["domain ok.example"]);
        assert_eq!(skipped(&store, "indicator without pattern"), 1);
        assert_eq!(skipped(&store, "unsupported pattern_type: yara"), 1);
        let want = "dir/bundle.json: objects[2] (indicator--1) comparison 0 (ipv4-addr:value)";
        assert_eq!(
            store.skipped.last().map(|s| s.location.as_str()),
            Some(want)
        );
        assert_eq!(store.events[0].uuid.as_deref(), Some("b1"));
    }

    #[test]
    fn non_stix_json_is_a_format_error() {
        let (mut store, source) = new_store(StoreOptions::default());
        for value in [
            json!({"Event": {"info": "misp"}}),
            json!({"type": "malware", "id": "malware--1"}),
            json!([{"SharingGroup": {}}]),
            json!({"type": "bundle", "objects": {}}),
            json!(42),
        ] {
            let err = load_stix_value(&mut store, &value, source, "x.json").expect_err("not STIX");
            assert!(matches!(err, IntelError::Format { .. }), "{value}: {err:?}");
        }
        let misp = Path::new(FIXTURES).join("../../bad-intel/sharing_groups.json");
        let err = load_stix_file(&mut store, &misp, source);
        assert!(matches!(err, Err(IntelError::Format { .. })), "{err:?}");
        let dir = tempfile::tempdir().expect("temp dir");
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{\"type\": \"bundle\",\n \"objects\": [}").expect("write");
        match load_stix_file(&mut store, &broken, source) {
            Err(IntelError::Json { line, column, .. }) => assert_eq!((line, column), (2, 14)),
            other => panic!("want Json error, got {other:?}"),
        }
    }
}
