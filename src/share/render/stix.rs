//! STIX 2.1 rendering: sightings as `sighting` objects (false positives as
//! `opinion`s) and bundles, pure functions of an [`Outgoing`] row; they are written to
//! a directory (`share::transport::stix_dir`) or pushed to TAXII
//! (`share::transport::taxii`).
//!
//! Objects for one outbox row:
//! - `sighting` (type 0): `sighting_of_ref` is the indicator's STIX id when the intel
//!   had one; `indicator--<attribute uuid>` for MISP intel (MISP's own STIX export
//!   names indicators so). A by-value sighting (intel from a plain or CSV list, which
//!   has no id to point at) refers to an `indicator` object sent in the same bundle,
//!   whose `pattern` holds the value (`[domain-name:value = 'evil.example']`, see
//!   [`pattern`]) and whose id is a uuid v5 of the destination, kind and value: every
//!   sighting of that value to that destination points at the same object. Its
//!   timestamps are fixed (one version, whatever row carries it) and it names no
//!   creator. A kind with no STIX object path ([`Kind::Literal`]) has no such form:
//!   routing withholds it (`no_target`). `count`, `first_seen`, `last_seen`, and
//!   `where_sighted_refs` = our identity;
//! - `opinion` (type 1, false positive): `strongly-disagree` about the indicator, as
//!   MISP's STIX export writes false-positive sightings;
//! - expirations (type 2) have no STIX form: [`objects`] returns `None`;
//! - our `identity` (`created_by_ref`), unless the destination anonymises: then no
//!   identity, no `created_by_ref`, no `where_sighted_refs`.
//!
//! Ids derive from the row's idempotency key (uuid v5, stamped v4), `created` and
//! `modified` are the row's creation time: a retried push is the same object version,
//! which a TAXII server stores once. The identity's timestamps are a fixed date, so
//! every bundle carries the same identity version.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::intel::Kind;
use crate::share::sighting::{Outgoing, Sighting, SightingType, Target};

/// The namespace of tripline's deterministic (v5) STIX ids.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x11f3b792_18b0_4754_825f_e63d44805d77);

/// `created`/`modified` of our identity object and of by-value indicator objects
/// (and their `valid_from`): fixed, so each has one version.
const FIXED_TIME: &str = "2024-01-01T00:00:00.000Z";

/// A STIX timestamp: RFC 3339, UTC, millisecond precision.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `<type>--<uuid>`: the uuid v5 hash of `name`, stamped as version 4 (STIX asks SDOs
/// and SROs for v4 ids; a hash is as unpredictable as random bytes, and stays stable).
fn id(ty: &str, name: &str) -> String {
    let hashed = Uuid::new_v5(&NAMESPACE, name.as_bytes()).into_bytes();
    format!(
        "{ty}--{}",
        uuid::Builder::from_random_bytes(hashed).into_uuid()
    )
}

/// Our identity's id for `source_name`.
pub fn identity_id(source_name: &str) -> String {
    id("identity", &format!("identity:{source_name}"))
}

/// Our identity object.
pub fn identity(source_name: &str) -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(source_name),
        "created": FIXED_TIME,
        "modified": FIXED_TIME,
        "name": source_name,
        "identity_class": "organization",
    })
}

/// What the sighting is of: see the module doc.
pub fn indicator_ref(s: &Sighting) -> String {
    if let Target::Attribute(a) = &s.target {
        if a.starts_with("indicator--") {
            return a.clone();
        }
        if Uuid::parse_str(a).is_ok() {
            return format!("indicator--{}", a.to_ascii_lowercase());
        }
    }
    value_indicator_id(&s.destination, s.kind, &s.indicator)
}

/// The id of the indicator object a by-value sighting of `value` to `destination`
/// refers to (and carries).
pub fn value_indicator_id(destination: &str, kind: Kind, value: &str) -> String {
    id(
        "indicator",
        &format!("value\u{1f}{destination}\u{1f}{}\u{1f}{value}", kind.name()),
    )
}

/// A STIX pattern string literal: `'` and `\` escaped with a backslash (STIX 2.1
/// patterning, string constants).
fn literal(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The STIX pattern that matches `value` of `kind` (the object path per kind, as the
/// STIX loader reads it back), or `None` for a kind with no STIX object path (a free
/// literal: user agent, mutex, pipe name; tripline does not know which).
pub fn pattern(kind: Kind, value: &str) -> Option<String> {
    let path = match kind {
        Kind::Ipv4 => "ipv4-addr:value",
        Kind::Ipv6 => "ipv6-addr:value",
        Kind::Domain | Kind::Hostname => "domain-name:value",
        Kind::Url => "url:value",
        Kind::Md5 => "file:hashes.MD5",
        Kind::Sha1 => "file:hashes.'SHA-1'",
        Kind::Sha224 => "file:hashes.'SHA-224'",
        Kind::Sha256 => "file:hashes.'SHA-256'",
        Kind::Sha384 => "file:hashes.'SHA-384'",
        Kind::Sha512 => "file:hashes.'SHA-512'",
        Kind::Email => "email-addr:value",
        Kind::Filename => "file:name",
        Kind::Regkey => "windows-registry-key:key",
        Kind::RegkeyValue => {
            let (key, data) = value.split_once('|')?;
            return Some(format!(
                "[windows-registry-key:key = {} AND windows-registry-key:values[*].data = {}]",
                literal(key),
                literal(data)
            ));
        }
        Kind::Literal => return None,
    };
    Some(format!("[{path} = {}]", literal(value)))
}

/// Can a STIX destination take a by-value sighting of this kind (is there a pattern
/// for it)?
pub fn has_value_form(kind: Kind) -> bool {
    kind != Kind::Literal
}

/// The fixed description of by-value indicator objects (nothing local in it).
const VALUE_INDICATOR_DESCRIPTION: &str =
    "A value of this community's intel that came without a STIX id (a plain or CSV list); \
     sent with the sighting so that the sighting can name what was seen.";

/// The `indicator` object a by-value sighting carries: see the module doc.
pub fn value_indicator(s: &Sighting) -> Option<Value> {
    let pattern = pattern(s.kind, &s.indicator)?;
    Some(json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": value_indicator_id(&s.destination, s.kind, &s.indicator),
        "created": FIXED_TIME,
        "modified": FIXED_TIME,
        "name": s.indicator,
        "description": VALUE_INDICATOR_DESCRIPTION,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": FIXED_TIME,
    }))
}

/// The id of the sighting (or opinion) object of the row with idempotency `key`.
pub fn object_id(s: &Sighting, key: &str) -> String {
    let ty = match s.sighting_type {
        SightingType::FalsePositive => "opinion",
        _ => "sighting",
    };
    id(ty, key)
}

/// The objects for one row (identity first, when not anonymous, then the by-value
/// indicator when the sighting is by value); `None` for an expiration, which STIX
/// cannot say, and for a by-value sighting of a kind with no pattern (routing never
/// queues one).
pub fn objects(out: &Outgoing<'_>) -> Option<Vec<Value>> {
    let s = out.sighting;
    let indicator = match &s.target {
        Target::Value { .. } => Some(value_indicator(s)?),
        Target::Attribute(_) => None,
    };
    let created = timestamp(out.created);
    let mut main = match s.sighting_type {
        SightingType::Sighting => json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": object_id(s, out.key),
            "created": created,
            "modified": created,
            "sighting_of_ref": indicator_ref(s),
            "count": s.count.min(999_999_999),
            "first_seen": timestamp(s.first_seen),
            "last_seen": timestamp(s.last_seen),
        }),
        SightingType::FalsePositive => json!({
            "type": "opinion",
            "spec_version": "2.1",
            "id": object_id(s, out.key),
            "created": created,
            "modified": created,
            "opinion": "strongly-disagree",
            "object_refs": [indicator_ref(s)],
        }),
        SightingType::Expiration => return None,
    };
    let mut objects = Vec::with_capacity(3);
    if let (Some(source), Some(m)) = (&s.source, main.as_object_mut()) {
        let who = identity_id(source);
        m.insert("created_by_ref".into(), Value::String(who.clone()));
        if s.sighting_type == SightingType::Sighting {
            m.insert("where_sighted_refs".into(), json!([who]));
        }
        objects.push(identity(source));
    }
    objects.extend(indicator);
    objects.push(main);
    Some(objects)
}

/// The name and bytes of the file the `stix_dir` transport writes for one row:
/// `<sighting id>.json`, the pretty bundle of [`objects`]. `None` as for [`objects`].
pub fn dir_file(out: &Outgoing<'_>) -> Option<(String, Vec<u8>)> {
    let objs = objects(out)?;
    let body = serde_json::to_vec_pretty(&bundle(objs, out.key)).ok()?;
    Some((format!("{}.json", object_id(out.sighting, out.key)), body))
}

/// The body the TAXII transport posts for one row: the envelope `{"objects": […]}`
/// of [`objects`], compact. `None` as for [`objects`].
pub fn envelope(out: &Outgoing<'_>) -> Option<String> {
    Some(json!({ "objects": objects(out)? }).to_string())
}

/// The body the TAXII transport posts for several rows at once (`batch_size` rows of
/// one destination, in delivery order): one envelope `{"objects": […]}` holding each
/// row's [`objects`] in row order, an object shared by rows (our identity, a by-value
/// indicator) once, by (`id`, `modified`). Also says, per row, whether it has a STIX
/// form (an expiration has none: it is in the batch but not in the envelope).
/// `None` for the body when no row has one. For one row, the same bytes as
/// [`envelope`].
pub fn batch_envelope(outs: &[Outgoing<'_>]) -> (Option<String>, Vec<bool>) {
    let mut envelope: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut has_form = Vec::with_capacity(outs.len());
    for out in outs {
        match objects(out) {
            Some(objs) => {
                for o in objs {
                    let id = (
                        o.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        o.get("modified").map(Value::to_string).unwrap_or_default(),
                    );
                    if seen.insert(id) {
                        envelope.push(o);
                    }
                }
                has_form.push(true);
            }
            None => has_form.push(false),
        }
    }
    let body = (!envelope.is_empty()).then(|| json!({ "objects": envelope }).to_string());
    (body, has_form)
}

/// A bundle of `objects`, its id derived from `name`. Identities appear once.
pub fn bundle(objects: Vec<Value>, name: &str) -> Value {
    let mut seen = std::collections::BTreeSet::new();
    let objects: Vec<Value> = objects
        .into_iter()
        .filter(|o| match o.get("id").and_then(Value::as_str) {
            Some(id) => seen.insert(id.to_string()),
            None => true,
        })
        .collect();
    json!({
        "type": "bundle",
        "id": id("bundle", name),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::Kind;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).single().expect("valid")
    }

    fn s(target: Target, ty: SightingType, source: Option<&str>) -> Sighting {
        Sighting::new(
            "evil.com",
            Kind::Domain,
            target,
            ty,
            2,
            t(10),
            t(20),
            source,
            "d",
        )
    }

    #[test]
    fn refs() {
        let u = "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
        let stix = format!("indicator--{u}");
        let cases = [
            (Target::Attribute(stix.clone()), stix.clone()),
            (Target::Attribute(u.to_uppercase()), stix.clone()),
        ];
        for (target, want) in cases {
            assert_eq!(
                indicator_ref(&s(target, SightingType::Sighting, None)),
                want
            );
        }
        let v = indicator_ref(&s(
            Target::Value {
                event_uuids: vec![],
            },
            SightingType::Sighting,
            None,
        ));
        assert!(v.starts_with("indicator--"));
        assert_eq!(
            v,
            indicator_ref(&s(
                Target::Value {
                    event_uuids: vec!["e".into()]
                },
                SightingType::Sighting,
                None
            )),
            "deterministic"
        );
    }

    #[test]
    fn sighting_objects_name_us_unless_anonymous() {
        let sg = s(
            Target::Attribute("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into()),
            SightingType::Sighting,
            Some("ACME"),
        );
        let out = Outgoing {
            sighting: &sg,
            key: "k",
            created: t(30),
        };
        let objs = objects(&out).expect("a sighting has a STIX form");
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["type"], "identity");
        let main = &objs[1];
        assert_eq!(main["type"], "sighting");
        assert_eq!(main["count"], 2);
        assert_eq!(main["first_seen"], "1970-01-01T00:00:10.000Z");
        assert_eq!(main["where_sighted_refs"][0], objs[0]["id"]);
        assert_eq!(main["created_by_ref"], objs[0]["id"]);

        let anon = s(
            Target::Attribute("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into()),
            SightingType::Sighting,
            None,
        );
        let objs = objects(&Outgoing {
            sighting: &anon,
            key: "k",
            created: t(30),
        })
        .expect("a sighting has a STIX form");
        assert_eq!(objs.len(), 1);
        assert!(objs[0].get("where_sighted_refs").is_none());
        assert!(objs[0].get("created_by_ref").is_none());
    }

    #[test]
    fn false_positive_is_an_opinion_and_expiration_has_no_form() {
        let fp = s(
            Target::Attribute("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into()),
            SightingType::FalsePositive,
            None,
        );
        let objs = objects(&Outgoing {
            sighting: &fp,
            key: "k",
            created: t(30),
        })
        .expect("an opinion");
        assert_eq!(objs[0]["type"], "opinion");
        assert_eq!(objs[0]["opinion"], "strongly-disagree");
        let exp = s(
            Target::Attribute("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into()),
            SightingType::Expiration,
            None,
        );
        assert!(objects(&Outgoing {
            sighting: &exp,
            key: "k",
            created: t(30)
        })
        .is_none());
    }

    #[test]
    fn patterns_escape_and_use_the_path_of_each_kind() {
        for (kind, value, want) in [
            (
                Kind::Domain,
                "evil.example",
                Some("[domain-name:value = 'evil.example']"),
            ),
            (
                Kind::Hostname,
                "a.evil.example",
                Some("[domain-name:value = 'a.evil.example']"),
            ),
            (
                Kind::Ipv4,
                "192.0.2.1",
                Some("[ipv4-addr:value = '192.0.2.1']"),
            ),
            (
                Kind::Ipv6,
                "2001:db8::1",
                Some("[ipv6-addr:value = '2001:db8::1']"),
            ),
            (
                Kind::Url,
                "evil.example/a'b",
                Some(r"[url:value = 'evil.example/a\'b']"),
            ),
            (
                Kind::Email,
                "x@evil.example",
                Some("[email-addr:value = 'x@evil.example']"),
            ),
            (
                Kind::Md5,
                "d41d8cd98f00b204e9800998ecf8427e",
                Some("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
            ),
            (Kind::Sha256, "ab", Some("[file:hashes.'SHA-256' = 'ab']")),
            (
                Kind::Filename,
                r"a\b.exe",
                Some(r"[file:name = 'a\\b.exe']"),
            ),
            (
                Kind::Regkey,
                r"HKLM\Run",
                Some(r"[windows-registry-key:key = 'HKLM\\Run']"),
            ),
            (
                Kind::RegkeyValue,
                r"HKLM\Run|x.exe",
                Some(
                    r"[windows-registry-key:key = 'HKLM\\Run' AND windows-registry-key:values[*].data = 'x.exe']",
                ),
            ),
            (Kind::Literal, "Mozilla/4.0 (evil)", None),
        ] {
            assert_eq!(pattern(kind, value).as_deref(), want, "{kind:?} {value}");
        }
    }

    #[test]
    fn by_value_sightings_carry_their_indicator() {
        let sg = s(
            Target::Value {
                event_uuids: vec![],
            },
            SightingType::Sighting,
            None,
        );
        let objs = objects(&Outgoing {
            sighting: &sg,
            key: "k",
            created: t(30),
        })
        .expect("a STIX form");
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["type"], "indicator");
        assert_eq!(objs[0]["pattern"], "[domain-name:value = 'evil.com']");
        assert_eq!(objs[1]["sighting_of_ref"], objs[0]["id"]);
        // Another destination: another indicator id.
        let mut other = sg.clone();
        other.destination = "e".into();
        assert_ne!(indicator_ref(&other), indicator_ref(&sg));
        // By attribute: no indicator object.
        let by_attr = s(
            Target::Attribute("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into()),
            SightingType::Sighting,
            None,
        );
        let objs = objects(&Outgoing {
            sighting: &by_attr,
            key: "k",
            created: t(30),
        })
        .expect("a STIX form");
        assert_eq!(objs.len(), 1);
    }
}
