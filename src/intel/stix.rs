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
    let bytes = std::fs::read(path).map_err(|e| IntelError::io(path, e))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| IntelError::json(path, &e))?;
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
                    "not STIX: a list with no STIX object (objects need \"type\" and \"id\")".into(),
                ));
            }
            (None, list)
        }
        _ => return Err(format_error("not STIX: expected a bundle, a list or an object".into())),
    };

    let context = BundleContext::new(objects);
    let event = store.add_event(context.event_info(bundle_id, location));
    for (i, object) in objects.iter().enumerate() {
        if object.get("type").and_then(Value::as_str) == Some("indicator") {
            if let Some(o) = object.as_object() {
                load_indicator(store, &context, o, source, event, || {
                    let id = o.get("id").and_then(Value::as_str).unwrap_or("no id");
                    format!("{location}: objects[{i}] ({id})")
                });
            }
        }
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
            info: report.and_then(|r| str_of(r, "name")).map(str::to_string).or(file_name),
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
        if let Some(level) = o.get("definition").and_then(|d| d.get("tlp")).and_then(Value::as_str) {
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
        "613f2e26-407d-48c7-9eca-b8e91df99dc9" | "94868c89-83c2-464b-929b-a1a8aa3c8487" => Tlp::Clear,
        "34098fce-860f-48ae-8e50-ebd3cc5e41da" | "bab4a63c-aed9-4cf5-a766-dfca5abac2bb" => Tlp::Green,
        "f88d31f6-486f-44da-b317-01333bde0b82" | "55d920b0-5e8b-4f79-9ee9-91f868d9b421" => Tlp::Amber,
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
        store.skip(location(), format!("unsupported pattern_type: {pattern_type}"));
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
            store.skip(location(), UNSUPPORTED_PATTERN);
            return;
        }
    };

    let tlp = context.tlp(o);
    let mut tags: Vec<String> = strings(o, "labels").map(str::to_string).collect();
    for phase in o.get("kill_chain_phases").and_then(Value::as_array).into_iter().flatten() {
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
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp())
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
                let word = take_while(&mut chars, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
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
            return self.expect(&Token::RParen);
        }
        self.expect(&Token::LBracket)?;
        self.comparison_expr(depth)?;
        self.expect(&Token::RBracket)
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
            return self.expect(&Token::RParen);
        }
        let Some(Token::Path(ty, property)) = self.peek() else {
            return Err("expected an object path");
        };
        let (kind, path) = supported_path(ty, property).ok_or("unsupported object path")?;
        self.pos += 1;
        self.expect(&Token::Eq)?;
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

    fn expect(&mut self, t: &Token) -> Result<(), &'static str> {
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
