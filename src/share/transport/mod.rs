//! Delivery: the boundary where sightings leave, and how its failures are read.
//!
//! A [`Transport`] does two things for one outbox row: deliver it, and tell whether
//! an earlier attempt whose outcome we never learnt (a crash, a timeout) already
//! landed. The outbox calls `is_delivered` before re-sending such a row, so a sighting
//! is counted once at the destination.
//!
//! Failures ([`DeliveryError`]) are read three ways: permanent (the destination refused
//! the content: retrying cannot help; the row goes to `failed`), surely not applied
//! (nothing reached the destination: no check needed before the retry), and
//! unreachable (skip the destination's other rows in this pass).
//!
//! Secrets (MISP API keys, TAXII passwords) live in [`Secret`], whose `Debug` prints
//! `***`; they go into one header and nowhere else: not into errors, logs or URLs.
//!
//! Costs: blocking HTTP (ureq, rustls, TLS verification on against the public roots or
//! a destination's `ca_file`, no redirects followed); one
//! request per sighting plus one search when a check is needed. The sidecar runs
//! delivery on a blocking thread.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::policy::{DestinationConfig, TransportConfig};
pub use super::sighting::Outgoing;

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
            || matches!(
                self,
                DeliveryError::Connect { .. }
                    | DeliveryError::Secret { .. }
                    | DeliveryError::Tls { .. }
            )
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
        }
    }
}

/// A credential. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// From an environment variable (trimmed, must not be empty).
    pub fn from_env(var: &str) -> Result<Secret, String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(_) => Err(format!("environment variable {var} is not set")),
        }
    }

    /// From a file (trimmed, must not be empty).
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(format!("{} is empty", path.display())),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// The value, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// Seconds to wait after `attempts` failed attempts: `initial × 2^(attempts-1)`,
/// capped at `max`.
pub fn backoff_secs(attempts: u32, initial: u64, max: u64) -> u64 {
    let shift = attempts.saturating_sub(1).min(40);
    initial.saturating_mul(1u64 << shift).min(max).max(1)
}

/// A blocking HTTP client for one destination.
pub(crate) struct Http {
    agent: ureq::Agent,
    destination: String,
}

/// An HTTP answer: status and body (bodies are read up to ureq's 10 MB limit).
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Http {
    /// A client with TLS verification against the public roots, or against the CAs in
    /// `ca_file` only.
    pub fn new(
        destination: &str,
        timeout_secs: u64,
        ca_file: Option<&Path>,
    ) -> Result<Http, DeliveryError> {
        let timeout = Duration::from_secs(timeout_secs.max(1));
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let tls = tls_config(path).map_err(|detail| DeliveryError::Tls {
                destination: destination.to_string(),
                detail,
            })?;
            builder = builder.tls_config(tls);
        }
        Ok(Http {
            agent: builder.build(),
            destination: destination.to_string(),
        })
    }

    /// POST `body` with `headers`; a non-2xx status is an error (body kept, shortened).
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, DeliveryError> {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        self.finish(url, req.send_string(body))
    }

    /// GET with query parameters.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer, DeliveryError> {
        let mut req = self.agent.get(url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        self.finish(url, req.call())
    }

    fn finish(
        &self,
        url: &str,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<Answer, DeliveryError> {
        match result {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.into_string().map_err(|e| DeliveryError::Transport {
                    destination: self.destination.clone(),
                    url: url.to_string(),
                    detail: format!("reading the answer: {e}"),
                })?;
                Ok(Answer { status, body })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                Err(DeliveryError::Status {
                    destination: self.destination.clone(),
                    url: url.to_string(),
                    status,
                    body: shorten(&body, 300),
                })
            }
            Err(ureq::Error::Transport(t)) => {
                let detail = t.to_string();
                let not_sent = matches!(
                    t.kind(),
                    ureq::ErrorKind::Dns
                        | ureq::ErrorKind::ConnectionFailed
                        | ureq::ErrorKind::InvalidUrl
                        | ureq::ErrorKind::UnknownScheme
                        | ureq::ErrorKind::InsecureRequestHttpsOnly
                        | ureq::ErrorKind::InvalidProxyUrl
                        | ureq::ErrorKind::ProxyConnect
                );
                if not_sent {
                    Err(DeliveryError::Connect {
                        destination: self.destination.clone(),
                        url: url.to_string(),
                        detail,
                    })
                } else {
                    Err(DeliveryError::Transport {
                        destination: self.destination.clone(),
                        url: url.to_string(),
                        detail,
                    })
                }
            }
        }
    }
}

/// A rustls client configuration trusting exactly the PEM certificates in `path`.
fn tls_config(path: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// At most `max` characters, on a char boundary, one line.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Builds the transport for one destination. Secrets are read here (so a missing key
/// shows at the first delivery, and `list`/`approve` work without them).
pub(crate) fn build(dest: &DestinationConfig) -> Result<Box<dyn Transport>, DeliveryError> {
    let secret_err = |detail: String| DeliveryError::Secret {
        destination: dest.name.clone(),
        detail,
    };
    Ok(match &dest.transport {
        TransportConfig::Misp {
            url,
            api_key_env,
            api_key_file,
            ca_file,
        } => {
            let key = match (api_key_env, api_key_file) {
                (Some(var), _) => Secret::from_env(var),
                (None, Some(path)) => Secret::from_file(path),
                (None, None) => Err("no api_key_env or api_key_file".to_string()),
            }
            .map_err(secret_err)?;
            Box::new(misp::MispTransport::new(
                &dest.name,
                url,
                key,
                dest.timeout_secs,
                ca_file.as_deref(),
            )?)
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
                (Some(var), _) => Some(Secret::from_env(var).map_err(secret_err)?),
                (None, Some(path)) => Some(Secret::from_file(path).map_err(secret_err)?),
                (None, None) => None,
            };
            let auth = username.as_ref().map(|u| {
                (
                    u.clone(),
                    password.unwrap_or_else(|| Secret::new(String::new())),
                )
            });
            Box::new(taxii::TaxiiTransport::new(
                &dest.name,
                api_root,
                collection_id,
                auth,
                dest.timeout_secs,
                ca_file.as_deref(),
            )?)
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
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = (1..=8).map(|a| backoff_secs(a, 30, 600)).collect();
        assert_eq!(got, vec![30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(backoff_secs(0, 30, 600), 30);
        assert_eq!(backoff_secs(u32::MAX, 30, 3600), 3600);
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-api-key");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2-api-key");
    }

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
        assert_eq!(shorten("a\nb", 5), "a b");
    }

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
