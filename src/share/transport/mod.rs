//! Transports: the boundary where sightings leave, and how its failures are read.
//!
//! A [`Transport`] does two things for one outbox row: deliver it, and tell whether
//! an earlier attempt whose outcome we never learnt (a crash, a timeout) already
//! landed. The outbox calls `is_delivered` before re-sending such a row, so a sighting
//! is counted once at the destination. One module per way out: [`misp`] (MISP REST),
//! [`taxii`] (a TAXII 2.1 collection), [`stix_dir`] (bundle files in a directory).
//! They send what `share::render` builds, and build nothing themselves.
//!
//! Failures ([`DeliveryError`]) are read three ways: permanent (the destination refused
//! the content: retrying cannot help; the row goes to `failed`), surely not applied
//! (nothing reached the destination: no check needed before the retry), and
//! unreachable (skip the destination's other rows in this pass).
//!
//! Secrets (MISP API keys, TAXII passwords) are [`Secret`]s (`crate::net::secret`),
//! read when a destination's transport is built; they go into one header and nowhere
//! else: not into errors, logs or URLs.
//!
//! Every HTTP request to a destination waits for its slot (`max_requests_per_minute`,
//! evenly spaced: [`Pacer`]), and every POST is kept as an [`Exchange`] (URL, exact
//! body, answer) for the outbox's audit log. Headers (where the secrets are) are not.
//!
//! Costs: blocking HTTP through [`crate::net::http`] (ureq, rustls, TLS verification
//! on against the public roots or a destination's `ca_file`, no redirects followed);
//! MISP: one request per sighting (a row of count n is min(n, cap) sightings) plus
//! one search when a check is needed; TAXII: one envelope per batch of rows. Each
//! destination is delivered by its own worker thread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::policy::{DestinationConfig, TransportConfig};
pub use super::sighting::Outgoing;
pub(crate) use crate::net::http::shorten;
use crate::net::http::{Answer, HttpClient, HttpError};
/// Moved to [`crate::net::secret`]; kept here so `share::Secret` and
/// `share::delivery::Secret` still work.
pub use crate::net::secret::{Secret, SecretError};

pub mod misp;
pub mod stix_dir;
pub mod taxii;

/// A way to reach one destination.
pub trait Transport: Send + Sync {
    /// Delivers one sighting.
    fn deliver(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError>;
    /// Did an earlier attempt already land? Called before re-sending a row whose last
    /// attempt has an unknown outcome.
    fn is_delivered(&self, out: &Outgoing<'_>) -> Result<bool, DeliveryError>;

    /// How many records this row is at the destination: 1, except where the
    /// destination records no count (MISP: one sighting per event, capped).
    fn wanted(&self, _out: &Outgoing<'_>) -> u64 {
        1
    }
    /// How many of the row's [`Transport::wanted`] records the destination holds
    /// (the crash check).
    fn landed(&self, out: &Outgoing<'_>) -> Result<u64, DeliveryError> {
        self.is_delivered(out).map(u64::from)
    }
    /// Delivers what is missing when `already` records of the row are there.
    fn deliver_rest(&self, out: &Outgoing<'_>, already: u64) -> Result<(), DeliveryError> {
        if already >= self.wanted(out) {
            return Ok(());
        }
        self.deliver(out)
    }
    /// Whether [`Transport::deliver_many`] carries several rows in one request (the
    /// outbox then claims up to `batch_size` rows at once; otherwise one at a time).
    fn batches(&self) -> bool {
        false
    }
    /// Delivers several rows in as few requests as the format allows (TAXII: one
    /// envelope); one result per row, in order. Default: one by one.
    fn deliver_many(&self, outs: &[Outgoing<'_>]) -> Vec<Result<(), DeliveryError>> {
        outs.iter().map(|o| self.deliver(o)).collect()
    }
    /// The requests that carried sightings since the last call (for the audit log).
    fn take_exchanges(&self) -> Vec<Exchange> {
        Vec::new()
    }
}

/// One request that carried sightings, as the audit log keeps it: where, the exact
/// body, and the answer (status and its first bytes; `None`: no answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub url: String,
    pub body: String,
    pub status: Option<u16>,
    pub answer: String,
}

/// Spaces requests evenly: at most `per_minute` in any minute (no bursts).
#[derive(Debug)]
pub(crate) struct Pacer {
    next: std::sync::Mutex<(Duration, Option<std::time::Instant>)>,
}

impl Pacer {
    pub fn new(per_minute: u64) -> Pacer {
        Pacer {
            next: std::sync::Mutex::new((Pacer::interval(per_minute), None)),
        }
    }

    fn interval(per_minute: u64) -> Duration {
        Duration::from_secs(60) / u32::try_from(per_minute.max(1)).unwrap_or(u32::MAX)
    }

    pub fn set_rate(&self, per_minute: u64) {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).0 = Pacer::interval(per_minute);
    }

    /// Waits for this request's slot.
    pub fn wait(&self) {
        let now = std::time::Instant::now();
        let slot = {
            let mut g = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = g.1.map_or(now, |n| n.max(now));
            g.1 = Some(slot + g.0);
            slot
        };
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// A delivery failure, with the destination and where it happened.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Nothing was sent: DNS or TCP/TLS connect failed.
    #[error("{destination}: cannot connect to {url}: {detail}")]
    Connect {
        destination: String,
        url: String,
        detail: String,
    },
    /// The request may have arrived (timeout, reset while waiting for the answer).
    #[error("{destination}: {url}: {detail} (the request may have arrived)")]
    Transport {
        destination: String,
        url: String,
        detail: String,
    },
    #[error("{destination}: {url} answered HTTP {status}: {body}")]
    Status {
        destination: String,
        url: String,
        status: u16,
        body: String,
    },
    /// The destination answered that it did not take the sighting (MISP: "Could not
    /// add the Sighting", e.g. no such attribute).
    #[error("{destination}: {url} refused the sighting: {detail}")]
    Refused {
        destination: String,
        url: String,
        detail: String,
    },
    #[error("{destination}: {url}: unexpected answer: {detail}")]
    Response {
        destination: String,
        url: String,
        detail: String,
    },
    #[error("{destination}: {path}: {source}")]
    Io {
        destination: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{destination}: {detail}")]
    Secret { destination: String, detail: String },
    /// The destination's `ca_file` cannot be used.
    #[error("{destination}: ca_file: {detail}")]
    Tls { destination: String, detail: String },
    /// Some of a row's requests landed (MISP: a row of count n is n sightings), then
    /// one failed: the next attempt counts what is there and sends the rest.
    #[error("{destination}: {done} of {wanted} sightings of the row delivered, then: {detail}")]
    Partial {
        destination: String,
        done: u64,
        wanted: u64,
        detail: String,
    },
    /// This destination cannot carry this sighting (e.g. an expiration over STIX).
    #[error("{destination}: {detail}")]
    Unsupported { destination: String, detail: String },
}

impl DeliveryError {
    /// Retrying cannot help: the destination refused the content.
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::Status { status, .. } => {
                matches!(status, 400 | 405 | 406 | 413 | 415 | 422)
            }
            DeliveryError::Refused { .. } | DeliveryError::Unsupported { .. } => true,
            _ => false,
        }
    }

    /// The sighting surely did not land: a retry needs no check first.
    pub fn surely_not_applied(&self) -> bool {
        self.is_permanent()
            || self.is_auth()
            || matches!(
                self,
                DeliveryError::Connect { .. }
                    | DeliveryError::Secret { .. }
                    | DeliveryError::Tls { .. }
            )
    }

    /// The destination refused our credentials (HTTP 401 or 403): no request to it
    /// can succeed until its configuration or key changes.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            DeliveryError::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// The HTTP status, where the destination answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The destination cannot be reached now: its other rows wait for the next pass.
    pub fn destination_unreachable(&self) -> bool {
        matches!(
            self,
            DeliveryError::Connect { .. }
                | DeliveryError::Transport { .. }
                | DeliveryError::Secret { .. }
                | DeliveryError::Tls { .. }
        )
    }

    /// An HTTP failure talking to `destination`, as a delivery failure.
    pub fn from_http(destination: &str, e: HttpError) -> DeliveryError {
        let destination = destination.to_string();
        match e {
            HttpError::Connect { url, detail } => DeliveryError::Connect {
                destination,
                url,
                detail,
            },
            HttpError::Transport { url, detail } => DeliveryError::Transport {
                destination,
                url,
                detail,
            },
            HttpError::Status { url, status, body } => DeliveryError::Status {
                destination,
                url,
                status,
                body,
            },
            HttpError::CaFile { detail, .. } => DeliveryError::Tls {
                destination,
                detail,
            },
        }
    }

    /// A short label for metrics (bounded set).
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryError::Connect { .. } => "connect",
            DeliveryError::Transport { .. } => "transport",
            DeliveryError::Status { .. } => "status",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::Response { .. } => "response",
            DeliveryError::Io { .. } => "io",
            DeliveryError::Secret { .. } => "secret",
            DeliveryError::Tls { .. } => "tls",
            DeliveryError::Unsupported { .. } => "unsupported",
            DeliveryError::Partial { .. } => "partial",
        }
    }
}

/// The shared HTTP client ([`crate::net::http`]) for one destination: its errors
/// become [`DeliveryError`]s naming the destination; requests are paced
/// (`max_requests_per_minute`) and POSTs recorded for the audit log.
pub(crate) struct Http {
    client: HttpClient,
    destination: String,
    pub pacer: Pacer,
    log: std::sync::Mutex<Vec<Exchange>>,
}

impl Http {
    /// A client with TLS verification against the public roots, or against the CAs in
    /// `ca_file` only.
    pub fn new(
        destination: &str,
        timeout_secs: u64,
        ca_file: Option<&Path>,
    ) -> Result<Http, DeliveryError> {
        let client = HttpClient::builder()
            .timeout(Duration::from_secs(timeout_secs))
            .ca_file(ca_file)
            .build()
            .map_err(|e| DeliveryError::from_http(destination, e))?;
        Ok(Http {
            client,
            destination: destination.to_string(),
            pacer: Pacer::new(600),
            log: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The POSTs made since the last call.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// POST `body` with `headers`; a non-2xx status is an error (body kept, shortened).
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, DeliveryError> {
        self.pacer.wait();
        let got = self.client.post(url, headers, body);
        let (status, answer) = match &got {
            Ok(a) => (Some(a.status), shorten(&a.body, 300)),
            Err(HttpError::Status { status, body, .. }) => (Some(*status), shorten(body, 300)),
            Err(e) => (None, shorten(&e.to_string(), 300)),
        };
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Exchange {
                url: url.to_string(),
                body: body.to_string(),
                status,
                answer,
            });
        got.map_err(|e| DeliveryError::from_http(&self.destination, e))
    }

    /// GET with query parameters.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer, DeliveryError> {
        self.pacer.wait();
        self.client
            .get(url, query, headers)
            .map_err(|e| DeliveryError::from_http(&self.destination, e))
    }
}

/// Builds the transport for one destination. Secrets are read here (so a missing key
/// shows at the first delivery, and `list`/`approve` work without them).
pub(crate) fn build(dest: &DestinationConfig) -> Result<Box<dyn Transport>, DeliveryError> {
    let secret_err = |detail: String| DeliveryError::Secret {
        destination: dest.name.clone(),
        detail,
    };
    let unreadable = |e: SecretError| secret_err(e.to_string());
    Ok(match &dest.transport {
        TransportConfig::Misp {
            url,
            api_key_env,
            api_key_file,
            ca_file,
        } => {
            let key = match (api_key_env, api_key_file) {
                (Some(var), _) => Secret::from_env(var).map_err(unreadable)?,
                (None, Some(path)) => Secret::from_file(path).map_err(unreadable)?,
                (None, None) => return Err(secret_err("no api_key_env or api_key_file".into())),
            };
            Box::new(
                misp::MispTransport::new(
                    &dest.name,
                    url,
                    key,
                    dest.timeout_secs,
                    ca_file.as_deref(),
                )?
                .with_limits(
                    dest.max_requests_per_minute,
                    dest.misp_max_sightings_per_row,
                ),
            )
        }
        TransportConfig::Taxii {
            api_root,
            collection_id,
            username,
            password_env,
            password_file,
            ca_file,
        } => {
            let password = match (password_env, password_file) {
                (Some(var), _) => Some(Secret::from_env(var).map_err(unreadable)?),
                (None, Some(path)) => Some(Secret::from_file(path).map_err(unreadable)?),
                (None, None) => None,
            };
            let auth = username.as_ref().map(|u| {
                (
                    u.clone(),
                    password.unwrap_or_else(|| Secret::new(String::new())),
                )
            });
            Box::new(
                taxii::TaxiiTransport::new(
                    &dest.name,
                    api_root,
                    collection_id,
                    auth,
                    dest.timeout_secs,
                    ca_file.as_deref(),
                )?
                .with_max_requests_per_minute(dest.max_requests_per_minute),
            )
        }
        TransportConfig::StixDir { path } => {
            Box::new(stix_dir::StixDirTransport::new(&dest.name, path))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes() {
        let d = || "d".to_string();
        let u = || "u".to_string();
        let status = |s| DeliveryError::Status {
            destination: d(),
            url: u(),
            status: s,
            body: String::new(),
        };
        assert!(status(400).is_permanent());
        assert!(!status(500).is_permanent());
        assert!(
            !status(403).is_permanent(),
            "a bad key is fixed, then retried"
        );
        assert!(!status(500).surely_not_applied());
        let connect = DeliveryError::Connect {
            destination: d(),
            url: u(),
            detail: "refused".into(),
        };
        assert!(connect.surely_not_applied() && connect.destination_unreachable());
        let timeout = DeliveryError::Transport {
            destination: d(),
            url: u(),
            detail: "timed out".into(),
        };
        assert!(!timeout.surely_not_applied() && timeout.destination_unreachable());
    }
}
