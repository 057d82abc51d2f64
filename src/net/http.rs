//! [`HttpClient`]: a small blocking HTTP client (ureq) for sharing and intel servers.
//!
//! Invariants: TLS verification is always on, against the public (webpki) roots or,
//! when a CA file is given, against exactly the certificates in it; redirects are not
//! followed (a redirect could carry an `Authorization` header to another host);
//! every request has a connect timeout (at most 10 s) and an overall timeout. Errors
//! ([`HttpError`]) say whether the request surely never left ([`HttpError::Connect`])
//! or may have arrived ([`HttpError::Transport`]): a caller that must not apply
//! something twice checks before retrying the latter. Header values (credentials)
//! never appear in errors; answer bodies are shortened to one line.
//!
//! Costs: blocking; one connection pool per client (build one per server and keep it).
//! Bodies are read whole, up to ureq's 10 MB limit. Async callers run it on a
//! blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The longest connect timeout, whatever the overall timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request: which URL, and whether it may have arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing was sent: DNS, TCP or TLS connect failed, or the URL is unusable.
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    /// The request may have arrived (timeout, reset while waiting for the answer).
    #[error("{url}: {detail} (the request may have arrived)")]
    Transport { url: String, detail: String },
    /// The server answered with a status other than 2xx (body shortened).
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// The CA file cannot be used (`detail` names the file).
    #[error("ca_file: {detail}")]
    CaFile { path: PathBuf, detail: String },
}

/// An answer with a 2xx status, and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Builds an [`HttpClient`]: `HttpClient::builder().timeout(t).ca_file(p).build()`.
#[derive(Clone, Debug)]
pub struct HttpClientBuilder {
    timeout: Duration,
    ca_file: Option<PathBuf>,
}

impl HttpClientBuilder {
    /// The overall timeout of one request (at least one second; 30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// Trust exactly the PEM certificates in `path` instead of the public roots.
    pub fn ca_file(mut self, path: Option<&Path>) -> Self {
        self.ca_file = path.map(Path::to_path_buf);
        self
    }

    pub fn build(self) -> Result<HttpClient, HttpError> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(self.timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(self.timeout)
            .redirects(0)
            .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &self.ca_file {
            let tls = tls_config(path).map_err(|detail| HttpError::CaFile {
                path: path.clone(),
                detail,
            })?;
            builder = builder.tls_config(tls);
        }
        Ok(HttpClient {
            agent: builder.build(),
        })
    }
}

/// A blocking HTTP client for one server (see the module doc for its guarantees).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            timeout: Duration::from_secs(30),
            ca_file: None,
        }
    }

    /// POST `body` with `headers`; a non-2xx status is an error (body kept, shortened).
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, HttpError> {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        finish(url, req.send_string(body))
    }

    /// GET with query parameters.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer, HttpError> {
        let mut req = self.agent.get(url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        finish(url, req.call())
    }
}

fn finish(url: &str, result: Result<ureq::Response, ureq::Error>) -> Result<Answer, HttpError> {
    match result {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.into_string().map_err(|e| HttpError::Transport {
                url: url.to_string(),
                detail: format!("reading the answer: {e}"),
            })?;
            Ok(Answer { status, body })
        }
        Err(ureq::Error::Status(status, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            Err(HttpError::Status {
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
            let url = url.to_string();
            if not_sent {
                Err(HttpError::Connect { url, detail })
            } else {
                Err(HttpError::Transport { url, detail })
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
pub fn shorten(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
        assert_eq!(shorten("a\nb", 5), "a b");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").expect("written");
        let e = HttpClient::builder()
            .ca_file(Some(&ca))
            .build()
            .expect_err("no certificate");
        assert!(matches!(e, HttpError::CaFile { .. }), "{e}");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = HttpClient::builder()
            .ca_file(Some(&dir.path().join("missing.pem")))
            .build()
            .expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    /// Nothing listens: the request surely never left.
    #[test]
    fn a_refused_connection_is_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("an address").port()
        };
        let client = HttpClient::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a client");
        let url = format!("http://127.0.0.1:{port}/x");
        let e = client.get(&url, &[], &[]).expect_err("nothing listens");
        assert!(matches!(e, HttpError::Connect { .. }), "{e}");
    }
}
