//! TAXII 2.1: push a row's STIX objects to a collection, and read the collection to
//! find out whether an earlier push landed.
//!
//! Push: `POST {api_root}/collections/{id}/objects/` with an envelope
//! (`{"objects": […]}`), `Content-Type` and `Accept`
//! `application/taxii+json;version=2.1`, optional basic auth. The server answers with a
//! status resource; our object among its `failures` is re-checked by reading, since a
//! server refuses an object version it already holds (a retried push).
//!
//! Check: `GET …/objects/?match[id]=<object id>`.
//!
//! Batches: [`Transport::deliver_many`] pushes the objects of several rows in one
//! envelope (`batch_size` rows, objects shared by rows, such as our identity, once);
//! each row's result is read from the status resource by its own sighting id.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use super::{shorten, DeliveryError, Exchange, Http, Outgoing, Secret, Transport};
use crate::share::render::stix;

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// A TAXII 2.1 collection.
pub struct TaxiiTransport {
    name: String,
    objects_url: String,
    authorization: Option<Secret>,
    http: Http,
}

impl TaxiiTransport {
    pub fn new(
        name: &str,
        api_root: &str,
        collection_id: &str,
        auth: Option<(String, Secret)>,
        timeout_secs: u64,
        ca_file: Option<&Path>,
    ) -> Result<TaxiiTransport, DeliveryError> {
        let root = api_root.trim_end_matches('/');
        let authorization = auth.map(|(user, password)| {
            let raw = format!("{user}:{}", password.expose());
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        });
        Ok(TaxiiTransport {
            name: name.to_string(),
            objects_url: format!("{root}/collections/{collection_id}/objects/"),
            authorization,
            http: Http::new(name, timeout_secs, ca_file)?,
        })
    }

    fn headers(&self, with_body: bool) -> Vec<(&str, &str)> {
        let mut h = vec![("Accept", MEDIA_TYPE)];
        if with_body {
            h.push(("Content-Type", MEDIA_TYPE));
        }
        if let Some(a) = &self.authorization {
            h.push(("Authorization", a.expose()));
        }
        h
    }

    fn bad_answer(&self, detail: String) -> DeliveryError {
        DeliveryError::Response {
            destination: self.name.clone(),
            url: self.objects_url.clone(),
            detail,
        }
    }

    /// Does the collection hold an object with this id?
    pub fn holds(&self, object_id: &str) -> Result<bool, DeliveryError> {
        let answer = self.http.get(
            &self.objects_url,
            &[("match[id]", object_id)],
            &self.headers(false),
        )?;
        let v: Value = serde_json::from_str(&answer.body).map_err(|e| {
            self.bad_answer(format!("not JSON ({e}): {}", shorten(&answer.body, 200)))
        })?;
        Ok(v.get("objects")
            .and_then(Value::as_array)
            .is_some_and(|objs| {
                objs.iter()
                    .any(|o| o.get("id").and_then(Value::as_str) == Some(object_id))
            }))
    }
}

impl TaxiiTransport {
    /// At most `per_minute` requests a minute.
    pub fn with_max_requests_per_minute(self, per_minute: u64) -> TaxiiTransport {
        self.http.pacer.set_rate(per_minute);
        self
    }
}

impl Transport for TaxiiTransport {
    fn batches(&self) -> bool {
        true
    }

    fn take_exchanges(&self) -> Vec<Exchange> {
        self.http.take_exchanges()
    }

    fn deliver_many(&self, outs: &[Outgoing<'_>]) -> Vec<Result<(), DeliveryError>> {
        if outs.len() == 1 {
            return vec![self.deliver(&outs[0])];
        }
        // The envelope as the preview renders it (one function for both).
        let (body, has_form) = stix::batch_envelope(outs);
        let results: Vec<Option<Result<(), DeliveryError>>> = has_form
            .into_iter()
            .map(|form| {
                (!form).then(|| {
                    Err(DeliveryError::Unsupported {
                        destination: self.name.clone(),
                        detail: "an expiration sighting has no STIX 2.1 form".into(),
                    })
                })
            })
            .collect();
        let Some(body) = body else {
            return results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect();
        };
        tracing::debug!(destination = %self.name, url = %self.objects_url, rows = outs.len(), "Pushing a batch to TAXII.");
        let status = self
            .http
            .post(&self.objects_url, &self.headers(true), &body)
            .and_then(|answer| {
                serde_json::from_str::<Value>(&answer.body).map_err(|e| {
                    self.bad_answer(format!(
                        "status not JSON ({e}): {}",
                        shorten(&answer.body, 200)
                    ))
                })
            });
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                // One failure for the whole envelope: each pending row gets it.
                let text = e.to_string();
                let kind_of = |_: usize| match &e {
                    DeliveryError::Connect {
                        destination, url, ..
                    } => DeliveryError::Connect {
                        destination: destination.clone(),
                        url: url.clone(),
                        detail: text.clone(),
                    },
                    DeliveryError::Status {
                        destination,
                        url,
                        status,
                        body,
                    } => DeliveryError::Status {
                        destination: destination.clone(),
                        url: url.clone(),
                        status: *status,
                        body: body.clone(),
                    },
                    DeliveryError::Tls {
                        destination,
                        detail,
                    } => DeliveryError::Tls {
                        destination: destination.clone(),
                        detail: detail.clone(),
                    },
                    _ => DeliveryError::Transport {
                        destination: self.name.clone(),
                        url: self.objects_url.clone(),
                        detail: text.clone(),
                    },
                };
                return results
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| r.unwrap_or_else(|| Err(kind_of(i))))
                    .collect();
            }
        };
        let failed: Vec<String> = status
            .get("failures")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|d| d.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        results
            .into_iter()
            .zip(outs)
            .map(|(r, out)| {
                r.unwrap_or_else(|| {
                    let ours = stix::object_id(out.sighting, out.key);
                    if failed.contains(&ours) && !self.holds(&ours)? {
                        return Err(DeliveryError::Refused {
                            destination: self.name.clone(),
                            url: self.objects_url.clone(),
                            detail: shorten(&status.to_string(), 300),
                        });
                    }
                    Ok(())
                })
            })
            .collect()
    }

    fn deliver(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError> {
        // The body as the preview renders it (one function for both).
        let body = stix::envelope(out).ok_or_else(|| DeliveryError::Unsupported {
            destination: self.name.clone(),
            detail: "an expiration sighting has no STIX 2.1 form".into(),
        })?;
        let ours = stix::object_id(out.sighting, out.key);
        tracing::debug!(destination = %self.name, url = %self.objects_url, id = %ours, "Pushing to TAXII.");
        let answer = self
            .http
            .post(&self.objects_url, &self.headers(true), &body)?;
        let status: Value = serde_json::from_str(&answer.body).map_err(|e| {
            self.bad_answer(format!(
                "status not JSON ({e}): {}",
                shorten(&answer.body, 200)
            ))
        })?;
        let failed = status
            .get("failures")
            .and_then(Value::as_array)
            .is_some_and(|f| {
                f.iter()
                    .any(|d| d.get("id").and_then(Value::as_str) == Some(&ours))
            });
        if failed && !self.holds(&ours)? {
            let detail = shorten(&status.to_string(), 300);
            return Err(DeliveryError::Refused {
                destination: self.name.clone(),
                url: self.objects_url.clone(),
                detail,
            });
        }
        Ok(())
    }

    fn is_delivered(&self, out: &Outgoing<'_>) -> Result<bool, DeliveryError> {
        self.holds(&stix::object_id(out.sighting, out.key))
    }
}
