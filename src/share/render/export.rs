//! Rendering outbox rows as what would be shared: the MISP `/sightings/add` bodies, or
//! one STIX 2.1 bundle. Pure functions of the rows; nothing is sent.

use std::str::FromStr;

use serde_json::Value;

use super::{misp, stix};
use crate::share::outbox::OutboxEntry;
use crate::share::sighting::{Outgoing, Target};

/// `tripline sightings export --format misp|stix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// A JSON list of `/sightings/add` request bodies, one per row (rows MISP could
    /// not address safely, a value without event UUIDs, left out).
    Misp,
    /// One STIX 2.1 bundle (identities once; expirations, which STIX cannot say, left
    /// out).
    Stix,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "misp" => Ok(ExportFormat::Misp),
            "stix" | "stix2" | "stix21" => Ok(ExportFormat::Stix),
            other => Err(format!(
                "unknown export format {other:?} (expected misp or stix)"
            )),
        }
    }
}

/// Can MISP take this target without touching another community's attribute? A value
/// needs the event UUIDs to restrict it to.
fn misp_addressable(t: &Target) -> bool {
    match t {
        Target::Attribute(_) => true,
        Target::Value { event_uuids } => !event_uuids.is_empty(),
    }
}

/// Pretty JSON of `rows` in `format`, in row order.
pub fn render(format: ExportFormat, rows: &[OutboxEntry]) -> String {
    let value = match format {
        ExportFormat::Misp => Value::Array(
            rows.iter()
                .filter(|e| misp_addressable(&e.sighting.target))
                .map(|e| misp::add_payload(&e.sighting))
                .collect(),
        ),
        ExportFormat::Stix => {
            let mut objects = Vec::new();
            let mut name = String::from("export");
            for e in rows {
                let out = Outgoing {
                    sighting: &e.sighting,
                    key: &e.key,
                    created: e.created,
                };
                if let Some(objs) = stix::objects(&out) {
                    objects.extend(objs);
                    name.push('\n');
                    name.push_str(&e.key);
                }
            }
            stix::bundle(objects, &name)
        }
    };
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!("MISP".parse(), Ok(ExportFormat::Misp));
        assert_eq!("stix".parse(), Ok(ExportFormat::Stix));
        assert!("csv".parse::<ExportFormat>().is_err());
    }

    #[test]
    fn empty_exports_are_valid_json() {
        let misp: Value = serde_json::from_str(&render(ExportFormat::Misp, &[])).expect("json");
        assert_eq!(misp, Value::Array(vec![]));
        let stix: Value = serde_json::from_str(&render(ExportFormat::Stix, &[])).expect("json");
        assert_eq!(stix["type"], "bundle");
    }
}
