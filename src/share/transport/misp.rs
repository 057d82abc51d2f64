//! MISP delivery: `POST /sightings/add` with the body [`add_payload`]
//! builds, and `POST /sightings/restSearch/{context}` ([`search_request`])
//! to find out whether an attempt with an unknown outcome already landed.
//!
//! MISP answers a refused sighting with HTTP 200 and `{"message": "Could not add the
//! Sighting. …"}` (or `{"saved": false, "errors": …}`): that is a
//! [`DeliveryError::Refused`]. The API key goes into the `Authorization` header and
//! nowhere else.
//!
//! Counts: a MISP sighting has no count field, so a row of count n is sent as
//! min(n, `misp_max_sightings_per_row`) sightings, one request each (MISP's own
//! reading: one sighting per event). The check counts the row's sightings at the
//! server and sends only the missing ones, so a retry never doubles.
//!
//! Older MISP releases search sightings only by numeric id (`restSearch/attribute`
//! with a `uuid` filter answers 405 "An id must be provided"). The first such answer
//! switches this transport to resolving ids: the attribute's numeric id from
//! `attributes/restSearch` (by UUID, or by value within the row's events), then the
//! search by `id`. Resolved ids are cached.
//!
//! Costs: one blocking request per sighting, plus one search when a check is needed
//! (two on an older release, the first time an attribute is checked).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::{shorten, DeliveryError, Exchange, Http, Outgoing, Secret, Transport};
use crate::share::render::misp::{
    add_payload, attribute_ids, search_count, search_request, search_request_by_ids,
};
use crate::share::sighting::Target;

/// A MISP instance.
pub struct MispTransport {
    name: String,
    base: String,
    key: Secret,
    http: Http,
    max_per_row: u64,
    /// This server searches sightings by numeric id only (an older release).
    ids_only: AtomicBool,
    /// Attribute UUID (or `value\u{1f}events`) → numeric attribute ids.
    ids: Mutex<HashMap<String, Vec<String>>>,
}

impl MispTransport {
    pub fn new(
        name: &str,
        url: &str,
        key: Secret,
        timeout_secs: u64,
        ca_file: Option<&Path>,
    ) -> Result<MispTransport, DeliveryError> {
        Ok(MispTransport {
            name: name.to_string(),
            base: url.trim_end_matches('/').to_string(),
            key,
            http: Http::new(name, timeout_secs, ca_file)?,
            max_per_row: 100,
            ids_only: AtomicBool::new(false),
            ids: Mutex::new(HashMap::new()),
        })
    }

    /// At most `per_minute` requests a minute; a row is at most `max_per_row`
    /// sightings.
    pub fn with_limits(self, per_minute: u64, max_per_row: u64) -> MispTransport {
        self.http.pacer.set_rate(per_minute);
        MispTransport {
            max_per_row: max_per_row.max(1),
            ..self
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<(String, Value), DeliveryError> {
        let url = format!("{}/{path}", self.base);
        tracing::debug!(destination = %self.name, url = %url, "POST to MISP.");
        let answer = self.http.post(
            &url,
            &[
                ("Authorization", self.key.expose()),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            &body.to_string(),
        )?;
        let value = serde_json::from_str(&answer.body).map_err(|e| DeliveryError::Response {
            destination: self.name.clone(),
            url: url.clone(),
            detail: format!(
                "HTTP {}, not JSON ({e}): {}",
                answer.status,
                shorten(&answer.body, 200)
            ),
        })?;
        Ok((url, value))
    }

    fn add_one(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError> {
        let (url, answer) = self.post("sightings/add", &add_payload(out.sighting))?;
        let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
        let refused = message.starts_with("Could not add")
            || answer.get("saved") == Some(&Value::Bool(false))
            || answer.get("errors").is_some();
        if refused {
            let detail = if message.is_empty() {
                shorten(&answer.to_string(), 300)
            } else {
                shorten(message, 300)
            };
            return Err(DeliveryError::Refused {
                destination: self.name.clone(),
                url,
                detail,
            });
        }
        Ok(())
    }

    /// The numeric ids of the attributes this row's sightings land on (older
    /// releases), from `attributes/restSearch`.
    fn resolve_ids(&self, out: &Outgoing<'_>) -> Result<Vec<String>, DeliveryError> {
        let s = out.sighting;
        let (cache_key, body) = match &s.target {
            Target::Attribute(uuid) => (
                uuid.clone(),
                json!({"returnFormat": "json", "uuid": uuid, "deleted": false}),
            ),
            Target::Value { event_uuids } => (
                format!("{}\u{1f}{}", s.indicator, event_uuids.join(",")),
                json!({"returnFormat": "json", "value": s.indicator, "deleted": false}),
            ),
        };
        if let Some(ids) = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            return Ok(ids.clone());
        }
        let (_, answer) = self.post("attributes/restSearch", &body)?;
        let ids = attribute_ids(s, &answer);
        if !ids.is_empty() {
            self.ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(cache_key, ids.clone());
        }
        Ok(ids)
    }

    fn landed_by_ids(&self, out: &Outgoing<'_>) -> Result<u64, DeliveryError> {
        let ids = self.resolve_ids(out)?;
        if ids.is_empty() {
            // No such attribute visible to us: nothing of ours can be there.
            return Ok(0);
        }
        let (path, body) = search_request_by_ids(out.sighting, &ids);
        let (_, answer) = self.post(path, &body)?;
        Ok(search_count(out.sighting, &answer))
    }
}

/// An answer saying this release cannot search sightings by UUID.
fn uuid_search_unsupported(e: &DeliveryError) -> bool {
    matches!(
        e,
        DeliveryError::Status {
            status: 400 | 404 | 405,
            ..
        }
    )
}

impl Transport for MispTransport {
    fn deliver(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError> {
        self.deliver_rest(out, 0)
    }

    fn is_delivered(&self, out: &Outgoing<'_>) -> Result<bool, DeliveryError> {
        self.landed(out).map(|n| n > 0)
    }

    fn wanted(&self, out: &Outgoing<'_>) -> u64 {
        out.sighting.count.clamp(1, self.max_per_row)
    }

    fn landed(&self, out: &Outgoing<'_>) -> Result<u64, DeliveryError> {
        if self.ids_only.load(Ordering::Relaxed) {
            return self.landed_by_ids(out);
        }
        let (path, body) = search_request(out.sighting);
        match self.post(path, &body) {
            Ok((_, answer)) => Ok(search_count(out.sighting, &answer)),
            Err(e) if uuid_search_unsupported(&e) => {
                tracing::info!(destination = %self.name, error = %e, "This MISP searches sightings by numeric id only (an older release); resolving attribute ids.");
                self.ids_only.store(true, Ordering::Relaxed);
                self.landed_by_ids(out)
            }
            Err(e) => Err(e),
        }
    }

    fn deliver_rest(&self, out: &Outgoing<'_>, already: u64) -> Result<(), DeliveryError> {
        let wanted = self.wanted(out);
        for done in already..wanted {
            match self.add_one(out) {
                Ok(()) => {}
                // Nothing of this row landed in this attempt: the error as it is.
                Err(e) if done == already => return Err(e),
                Err(e) if e.is_auth() => return Err(e),
                Err(e) => {
                    return Err(DeliveryError::Partial {
                        destination: self.name.clone(),
                        done,
                        wanted,
                        detail: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    fn take_exchanges(&self) -> Vec<Exchange> {
        self.http.take_exchanges()
    }
}
