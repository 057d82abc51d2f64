//! STIX 2.1 rendering: sightings as `sighting` objects (false positives as
//! `opinion`s) and bundles, pure functions of an [`Outgoing`] row; they are written to
//! a directory (`share::transport::stix_dir`) or pushed to TAXII
//! (`share::transport::taxii`).
//!
//! Objects for one outbox row:
//! - `sighting` (type 0): `sighting_of_ref` is the indicator's STIX id when the intel
//!   had one; `indicator--<attribute uuid>` for MISP intel (MISP's own STIX export
//!   names indicators so); else a deterministic `indicator--<uuid v5 of kind:value>`.
//!   `count`, `first_seen`, `last_seen`, and `where_sighted_refs` = our identity;
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

use crate::share::sighting::{Outgoing, Sighting, SightingType, Target};

/// The namespace of tripline's deterministic (v5) STIX ids.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x11f3b792_18b0_4754_825f_e63d44805d77);

/// `created`/`modified` of our identity object: fixed, so it has one version.
const IDENTITY_TIME: &str = "2024-01-01T00:00:00.000Z";

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
        "created": IDENTITY_TIME,
        "modified": IDENTITY_TIME,
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
    id("indicator", &format!("{}:{}", s.kind.name(), s.indicator))
}

/// The id of the sighting (or opinion) object of the row with idempotency `key`.
pub fn object_id(s: &Sighting, key: &str) -> String {
    let ty = match s.sighting_type {
        SightingType::FalsePositive => "opinion",
        _ => "sighting",
    };
    id(ty, key)
}

/// The objects for one row (identity first, when not anonymous); `None` for an
/// expiration, which STIX cannot say.
pub fn objects(out: &Outgoing<'_>) -> Option<Vec<Value>> {
    let s = out.sighting;
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
    let mut objects = Vec::with_capacity(2);
    if let (Some(source), Some(m)) = (&s.source, main.as_object_mut()) {
        let who = identity_id(source);
        m.insert("created_by_ref".into(), Value::String(who.clone()));
        if s.sighting_type == SightingType::Sighting {
            m.insert("where_sighted_refs".into(), json!([who]));
        }
        objects.push(identity(source));
    }
    objects.push(main);
    Some(objects)
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
            Target::Value {
                event_uuids: vec![],
            },
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
            Target::Value {
                event_uuids: vec![],
            },
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
            Target::Value {
                event_uuids: vec![],
            },
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
            Target::Value {
                event_uuids: vec![],
            },
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
}
