//! The serde documents of a rule file: what `correlate/load.rs` deserialises before
//! it validates. Leaf values (ids, types, globs, group-by names, timespans,
//! conditions) check themselves inside their serde visitors, so the YAML library
//! reports their errors with the value's line and field path; rules that span
//! several fields are checked in `load.rs`.
//!
//! Invariant: every struct denies unknown fields. Costs: one pass over a small file.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::rule::{Condition, Field, Globs, Level, Op, Selector, Timespan};

/// A string, or a list of strings: what list-valued keys accept.
struct StrList(Vec<String>);

// Leaf types convert inside the visitor, so the YAML library gives their errors the
// value's line and field path (a `#[serde(try_from)]` error would get the parent's).
struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: TryFrom<StrList, Error = String>> Visitor<'de> for ListVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::try_from(StrList(vec![v.to_string()])).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut v = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            v.push(s);
        }
        T::try_from(StrList(v)).map_err(de::Error::custom)
    }
}

struct StringVisitor<T>(PhantomData<T>);

impl<T: TryFrom<String, Error = String>> Visitor<'_> for StringVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::try_from(v.to_string()).map_err(E::custom)
    }
}

macro_rules! from_list {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                d.deserialize_any(ListVisitor::<$t>(PhantomData))
            }
        }
    };
}

macro_rules! from_string {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                d.deserialize_str(StringVisitor::<$t>(PhantomData))
            }
        }
    };
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule (a mapping with title, id, level, ...)"
)]
pub(super) struct RuleDoc {
    pub(super) title: String,
    pub(super) id: RuleId,
    #[serde(default)]
    pub(super) description: String,
    pub(super) level: Level,
    #[serde(default, rename = "match")]
    pub(super) selector: Option<SelectorDoc>,
    #[serde(default)]
    pub(super) selectors: Option<NamedSelectors>,
    #[serde(default)]
    pub(super) correlation: Option<CorrelationDoc>,
    // Sigma metadata: accepted, not used.
    #[serde(default, rename = "author")]
    _author: Option<de::IgnoredAny>,
    #[serde(default, rename = "date")]
    _date: Option<de::IgnoredAny>,
    #[serde(default, rename = "modified")]
    _modified: Option<de::IgnoredAny>,
    #[serde(default, rename = "status")]
    _status: Option<de::IgnoredAny>,
    #[serde(default, rename = "references")]
    _references: Option<de::IgnoredAny>,
    #[serde(default, rename = "falsepositives")]
    _falsepositives: Option<de::IgnoredAny>,
}

/// A rule id: a UUID (any version), stored lowercase.
pub(super) struct RuleId(pub(super) String);
from_string!(RuleId);

impl TryFrom<String> for RuleId {
    type Error = String;
    fn try_from(s: String) -> Result<RuleId, String> {
        let t = s.trim().to_ascii_lowercase();
        let groups: Vec<&str> = t.split('-').collect();
        let shape = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
        if shape
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            Ok(RuleId(t))
        } else {
            Err(format!(
                "{s:?} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            ))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a selector (a mapping of types, sources, tags, categories, log-sources)"
)]
pub(super) struct SelectorDoc {
    #[serde(default)]
    types: Option<KindMask>,
    #[serde(default)]
    sources: Option<GlobsDoc>,
    #[serde(default)]
    tags: Option<GlobsDoc>,
    #[serde(default)]
    categories: Option<GlobsDoc>,
    #[serde(default, rename = "log-sources")]
    log_sources: Option<GlobsDoc>,
}

impl SelectorDoc {
    pub(super) fn build(self) -> Selector {
        let g = |x: Option<GlobsDoc>| x.map(|g| g.0).unwrap_or_default();
        Selector {
            kinds: self.types.map(|k| k.0),
            sources: g(self.sources),
            tags: g(self.tags),
            categories: g(self.categories),
            log_sources: g(self.log_sources),
        }
    }
}

struct KindMask(u16);
from_list!(KindMask);

impl TryFrom<StrList> for KindMask {
    type Error = String;
    fn try_from(l: StrList) -> Result<KindMask, String> {
        if l.0.is_empty() {
            return Err("empty list: leave `types` out to select every type".into());
        }
        let mut mask = 0u16;
        for name in &l.0 {
            let kinds = Selector::kinds_named(name).ok_or_else(|| {
                format!(
                    "unknown indicator type {name:?}: expected one of {}, hash, ip",
                    crate::intel::Kind::ALL.map(|k| k.name()).join(", ")
                )
            })?;
            for k in kinds {
                mask |= 1 << k as u16;
            }
        }
        Ok(KindMask(mask))
    }
}

struct GlobsDoc(Globs);
from_list!(GlobsDoc);

impl TryFrom<StrList> for GlobsDoc {
    type Error = String;
    fn try_from(l: StrList) -> Result<GlobsDoc, String> {
        if l.0.is_empty() {
            return Err("empty list: leave the key out to select everything".into());
        }
        Globs::new(&l.0).map(GlobsDoc)
    }
}

/// `selectors:`, a mapping of names to selectors, in the order written.
pub(super) struct NamedSelectors(pub(super) Vec<(String, SelectorDoc)>);

impl<'de> Deserialize<'de> for NamedSelectors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NamedSelectors, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NamedSelectors;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of selector names to selectors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NamedSelectors, A::Error> {
                let mut v: Vec<(String, SelectorDoc)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if v.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("duplicate selector {name:?}")));
                    }
                    v.push((name, map.next_value()?));
                }
                Ok(NamedSelectors(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a correlation (a mapping of type, group-by, timespan, condition, field)"
)]
pub(super) struct CorrelationDoc {
    #[serde(rename = "type")]
    pub(super) kind: CorrelationTypeDoc,
    #[serde(default, rename = "group-by")]
    pub(super) group_by: Option<GroupByDoc>,
    pub(super) timespan: TimespanDoc,
    #[serde(default)]
    pub(super) condition: Option<ConditionDoc>,
    #[serde(default)]
    pub(super) field: Option<FieldDoc>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum CorrelationTypeDoc {
    EventCount,
    ValueCount,
    Temporal,
}

pub(super) struct GroupByDoc(pub(super) Vec<Field>);
from_list!(GroupByDoc);

impl TryFrom<StrList> for GroupByDoc {
    type Error = String;
    fn try_from(l: StrList) -> Result<GroupByDoc, String> {
        let mut out: Vec<Field> = Vec::new();
        for name in &l.0 {
            let f = Field::from_name(name)
                .filter(|f| Field::GROUP_BY.contains(f))
                .ok_or_else(|| {
                    format!(
                        "cannot group by {name:?}: expected any of {}",
                        Field::GROUP_BY.map(|f| f.name()).join(", ")
                    )
                })?;
            if out.contains(&f) {
                return Err(format!("{name:?} is listed twice"));
            }
            out.push(f);
        }
        Ok(GroupByDoc(out))
    }
}

pub(super) struct FieldDoc(pub(super) Field);
from_string!(FieldDoc);

impl TryFrom<String> for FieldDoc {
    type Error = String;
    fn try_from(name: String) -> Result<FieldDoc, String> {
        Field::from_name(&name).map(FieldDoc).ok_or_else(|| {
            format!(
                "unknown field {name:?}: expected one of {}",
                Field::ALL.map(|f| f.name()).join(", ")
            )
        })
    }
}

pub(super) struct TimespanDoc(pub(super) Timespan);

impl<'de> Deserialize<'de> for TimespanDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TimespanDoc, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TimespanDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timespan such as 30s, 10m, 1h, 24h or 7d")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TimespanDoc, E> {
                Timespan::parse(v).map(TimespanDoc).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TimespanDoc, E> {
                Err(E::custom(format!(
                    "invalid timespan {v}: missing unit (s, m, h, d, w)"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TimespanDoc, E> {
                Err(E::custom(format!(
                    "invalid timespan {v}: missing unit (s, m, h, d, w)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// `condition`: Sigma's map (`{gte: 3}`, `{gte: 2, lte: 10}`, with `field` for a
/// value_count), or one comparison as a string (`">= 3"`, `"gte 3"`).
pub(super) struct ConditionDoc {
    pub(super) condition: Condition,
    pub(super) field: Option<Field>,
}

impl<'de> Deserialize<'de> for ConditionDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ConditionDoc, D::Error> {
        struct V;
        const EXPECTED: &str = "gte, gt, eq, lte, lt, field";
        impl<'de> Visitor<'de> for V {
            type Value = ConditionDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition such as `gte: 3`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConditionDoc, A::Error> {
                let mut ops = Vec::new();
                let mut field = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "field" {
                        let f: FieldDoc = map.next_value()?;
                        field = Some(f.0);
                        continue;
                    }
                    let op = Op::from_name(&key).ok_or_else(|| {
                        de::Error::custom(format!(
                            "unknown operator `{key}`, expected one of {EXPECTED}"
                        ))
                    })?;
                    ops.push((op, map.next_value::<u64>()?));
                }
                let condition = Condition::new(&ops).map_err(de::Error::custom)?;
                Ok(ConditionDoc { condition, field })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConditionDoc, E> {
                let t = v.trim();
                let split = t
                    .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
                    .unwrap_or(t.len());
                let (op, n) = t.split_at(split);
                let op = Op::from_name(op.trim().trim_end_matches(':'));
                let n: Option<u64> = n.trim().parse().ok();
                match (op, n) {
                    (Some(op), Some(n)) => Condition::new(&[(op, n)])
                        .map(|condition| ConditionDoc {
                            condition,
                            field: None,
                        })
                        .map_err(E::custom),
                    _ => Err(E::custom(format!(
                        "invalid condition {v:?}: expected e.g. `gte: 3` or \">= 3\""
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConditionDoc, E> {
                Err(E::custom(format!(
                    "invalid condition {v}: give an operator, e.g. `gte: {v}`"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_uuids() {
        assert!(RuleId::try_from("D7A1C34B-8FEE-4108-8389-8137AF4DA63C".to_string()).is_ok());
        for bad in [
            "",
            "d7a1c34b",
            "d7a1c34b-8fee-4108-8389-8137af4da63",
            "g7a1c34b-8fee-4108-8389-8137af4da63c",
        ] {
            assert!(RuleId::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
