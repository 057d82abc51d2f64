//! MISP delivery: `POST /sightings/add` with the body [`add_payload`]
//! builds, and `POST /sightings/restSearch/{context}` ([`search_request`])
//! to find out whether an attempt with an unknown outcome already landed.
//!
//! MISP answers a refused sighting with HTTP 200 and `{"message": "Could not add the
//! Sighting. …"}` (or `{"saved": false, "errors": …}`): that is a
//! [`DeliveryError::Refused`]. The API key goes into the `Authorization` header and
//! nowhere else.
//!
//! Costs: one blocking request per sighting, plus one search when a check is needed.

use std::path::Path;

use serde_json::Value;

use super::{shorten, DeliveryError, Http, Outgoing, Secret, Transport};
use crate::share::render::misp::{add_payload, search_finds, search_request};

/// A MISP instance.
pub struct MispTransport {
    name: String,
    base: String,
    key: Secret,
    http: Http,
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
        })
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
}

impl Transport for MispTransport {
    fn deliver(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError> {
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

    fn is_delivered(&self, out: &Outgoing<'_>) -> Result<bool, DeliveryError> {
        let (path, body) = search_request(out.sighting);
        let (_, answer) = self.post(path, &body)?;
        Ok(search_finds(out.sighting, &answer))
    }
}
