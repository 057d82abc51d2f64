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
//! Destination URLs are parsed with the `url` crate (the parser ureq itself uses, so
//! what is checked is what is connected to): [`parse_destination_url`] refuses
//! userinfo (`http://localhost:x@192.0.2.10/` names host 192.0.2.10, and would carry a
//! credential in clear) and allows plain `http://` only to a loopback host after
//! parsing. Every URL shown in an error passes through [`redact_url`] first.
//!
//! A proxy (`http://host:port`, HTTP CONNECT for `https://` targets) may be set per
//! client; its userinfo, if any, is never shown either.
//!
//! Costs: blocking; one connection pool per client (build one per server and keep it).
//! Bodies are read whole, up to `max_body_bytes` (64 MiB by default; a larger body is
//! a [`HttpError::Transport`] that says so). Answers keep their headers (names in
//! lower case) for conditional requests and paging (`ETag`, `Last-Modified`,
//! `X-TAXII-Date-Added-Last`). Async callers run it on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Parses a destination URL: `https://`, or `http://` to a loopback address
/// (`localhost`, `127.0.0.0/8`, `::1`) after parsing; never with userinfo (credentials
/// come from an environment variable or a file). The error shows the URL redacted.
pub fn parse_destination_url(raw: &str) -> Result<url::Url, String> {
    let shown = redact_url(raw);
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{shown:?} holds a user name or password: credentials in a URL are refused \
             (set api_key_env / api_key_file, or username with password_env / password_file)"
        ));
    }
    let host = url.host().ok_or_else(|| format!("{shown:?} has no host"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" => {
            let loopback = match host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            };
            if loopback {
                Ok(url)
            } else {
                Err(format!(
                    "{shown:?}: plain http:// is allowed only to a loopback address; use https://"
                ))
            }
        }
        other => Err(format!("{shown:?} is not an https:// URL (scheme {other})")),
    }
}

/// `url` with any user name and password replaced by `***`, for errors and logs. A
/// string that does not parse has everything between `://` and the last `@` of its
/// authority replaced the same way.
pub fn redact_url(raw: &str) -> String {
    if let Ok(mut url) = url::Url::parse(raw.trim()) {
        if url.username().is_empty() && url.password().is_none() {
            return raw.trim().to_string();
        }
        if url.set_username("***").is_ok() && url.set_password(None).is_ok() {
            return url.to_string();
        }
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => raw.to_string(),
    }
}

/// `text` with the user information of every `scheme://user:pass@host` in it replaced
/// by `***` (for text stored before URLs were checked, such as an old `last_error`).
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'<>".contains(c))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `text` with every occurrence of `raw` replaced by its redacted form (a library's
/// error message may quote the URL it was given).
fn redact_in(text: &str, raw: &str) -> String {
    let shown = redact_url(raw);
    if shown == raw || raw.is_empty() {
        text.to_string()
    } else {
        text.replace(raw, &shown)
    }
}

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

/// An answer with a status below 400 (2xx, or 304 to a conditional request), its
/// headers (names in lower case, in the order received) and its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The first value of header `name` (case-insensitive), verbatim.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The default largest body read (64 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;

/// Builds an [`HttpClient`]: `HttpClient::builder().timeout(t).ca_file(p).build()`.
#[derive(Clone, Debug)]
pub struct HttpClientBuilder {
    timeout: Duration,
    ca_file: Option<PathBuf>,
    proxy: Option<String>,
    max_body_bytes: u64,
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

    /// Send every request through this HTTP proxy (`http://[user:pass@]host:port`).
    pub fn proxy(mut self, proxy: Option<&str>) -> Self {
        self.proxy = proxy.map(str::to_string);
        self
    }

    /// The largest answer body read (at least 1 KiB).
    pub fn max_body_bytes(mut self, max: u64) -> Self {
        self.max_body_bytes = max.max(1024);
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
        if let Some(raw) = &self.proxy {
            let proxy = ureq::Proxy::new(raw).map_err(|e| HttpError::Connect {
                url: redact_url(raw),
                detail: format!("unusable proxy: {}", redact_in(&e.to_string(), raw)),
            })?;
            builder = builder.proxy(proxy);
        }
        Ok(HttpClient {
            agent: builder.build(),
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// A blocking HTTP client for one server (see the module doc for its guarantees).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    max_body_bytes: u64,
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
            proxy: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
        finish(url, req.send_string(body), self.max_body_bytes)
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
        finish(url, req.call(), self.max_body_bytes)
    }
}

fn finish(
    raw: &str,
    result: Result<ureq::Response, ureq::Error>,
    max_body_bytes: u64,
) -> Result<Answer, HttpError> {
    let shown = redact_url(raw);
    let url = shown.as_str();
    match result {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp
                .headers_names()
                .into_iter()
                .filter_map(|name| {
                    let value = resp.header(&name)?.to_string();
                    Some((name.to_ascii_lowercase(), value))
                })
                .collect();
            let body = read_body(resp, max_body_bytes).map_err(|detail| HttpError::Transport {
                url: url.to_string(),
                detail,
            })?;
            Ok(Answer {
                status,
                body,
                headers,
            })
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
            let detail = redact_in(&t.to_string(), raw);
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

/// Reads a body whole, refusing one over `max` bytes or not UTF-8.
fn read_body(resp: ureq::Response, max: u64) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("the answer is larger than {max} bytes"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the answer is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
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
    fn destination_urls() {
        for (url, ok) in [
            ("https://misp.example.org", true),
            ("https://misp.example.org:8443/misp/", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1:8080/", true),
            ("http://localhost/", true),
            ("http://LOCALHOST:9/", true),
            ("http://[::1]:9/x", true),
            ("http://10.20.30.40", false),
            ("http://misp.example.org", false),
            ("http://localhost.example.org/", false),
            ("http://localhost:x@192.0.2.10:8080/misp", false),
            ("http://127.0.0.1@192.0.2.10/", false),
            ("https://user:pass@misp.example.org/", false),
            ("https://user@misp.example.org/", false),
            ("ftp://x", false),
            ("https://", false),
            ("misp.example.org", false),
        ] {
            assert_eq!(parse_destination_url(url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn userinfo_in_destination_url_is_refused() {
        let e = parse_destination_url("http://localhost:s3cr3t@192.0.2.10:8080/misp")
            .expect_err("userinfo");
        assert!(e.contains("user name or password"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(!e.contains("localhost:"), "{e}");
    }

    #[test]
    fn redacted_urls_keep_no_credentials() {
        for (raw, want) in [
            (
                "http://localhost:s3cr3t@192.0.2.10:8080/misp",
                "http://***@192.0.2.10:8080/misp",
            ),
            ("https://u:p@h.example/x?y", "https://***@h.example/x?y"),
            ("https://h.example/a@b", "https://h.example/a@b"),
            ("bad://u:s3cr3t@[zz/x", "bad://***@[zz/x"),
            ("no scheme", "no scheme"),
        ] {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }

    #[test]
    fn redacted_text_keeps_no_credentials() {
        assert_eq!(
            redact_text("misp: http://localhost:s3cr3t@192.0.2.10:8080/misp answered 500"),
            "misp: http://***@192.0.2.10:8080/misp answered 500"
        );
        assert_eq!(redact_text("a https://h/x@y b"), "a https://h/x@y b");
        assert_eq!(redact_text("u:p@h no scheme"), "u:p@h no scheme");
    }

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
