//! Canonical forms and type detection for indicator values.
//!
//! Values are canonicalised the way MISP does before they enter the store, so that one
//! indicator written two ways is one indicator: domains, host names, hashes and e-mail
//! addresses lower-cased, a trailing dot trimmed, IDN converted to punycode, IP
//! addresses and prefixes in canonical form (an IPv4-mapped IPv6 address is the IPv4
//! address; a prefix is its network address). URLs are stored without their scheme
//! as `host[:port]/path[?query]`, the host lower-cased: the matcher compares them
//! that way too, so `hxxp://EVIL.com/x` and `evil.com/x` are one indicator.
//!
//! Defanged forms are refanged first (`hxxp`, `[.]`, `(.)`, `{.}`, `[dot]`, `[:]`,
//! `[at]`, `[@]`).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use super::model::{Kind, MIN_LITERAL_LEN};

/// A value understood as one indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    pub kind: Kind,
    pub value: String,
    /// A port that came with the value, kept as context.
    pub port: Option<u16>,
}

/// Undoes the common defanging conventions. Cheap when there is nothing to undo.
pub fn refang(raw: &str) -> Cow<'_, str> {
    let s = raw.trim();
    let needs = s.contains('[')
        || s.contains('(')
        || s.contains('{')
        || s.len() >= 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"hxxp")
        || s.len() >= 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"fxp:");
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[:]", ":"),
        ("[://]", "://"),
        ("[at]", "@"),
        ("(at)", "@"),
        ("[@]", "@"),
        ("[/]", "/"),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
        let upper = from.to_ascii_uppercase();
        if upper != from && out.contains(&upper) {
            out = out.replace(&upper, to);
        }
    }
    let lower4 = out.get(..4).map(|p| p.to_ascii_lowercase());
    if lower4.as_deref() == Some("hxxp") {
        out.replace_range(..4, "http");
    } else if lower4.as_deref() == Some("fxp:") {
        out.replace_range(..3, "ftp");
    }
    Cow::Owned(out)
}

/// Canonical IP address or prefix: `(kind, text)`. A /32 (/128) prefix is written as
/// the address; other prefixes as their network address.
pub fn canonical_ip(s: &str) -> Option<(Kind, String)> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Some(ip_text(addr));
    }
    let net: IpNet = s.parse().ok()?;
    let net = net.trunc();
    match net {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(ip_text(IpAddr::V4(n.addr()))),
        IpNet::V6(n) if n.prefix_len() == 128 => Some(ip_text(IpAddr::V6(n.addr()))),
        IpNet::V4(n) => Some((Kind::Ipv4, n.to_string())),
        IpNet::V6(n) => {
            // A mapped prefix ::ffff:a.b.c.d/len with len >= 96 is an IPv4 prefix.
            if let (Some(v4), true) = (n.addr().to_ipv4_mapped(), n.prefix_len() >= 96) {
                let v4net = ipnet::Ipv4Net::new(v4, n.prefix_len() - 96).ok()?;
                return Some((Kind::Ipv4, v4net.trunc().to_string()));
            }
            Some((Kind::Ipv6, n.to_string()))
        }
    }
}

fn ip_text(addr: IpAddr) -> (Kind, String) {
    match addr {
        IpAddr::V4(a) => (Kind::Ipv4, a.to_string()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (Kind::Ipv4, v4.to_string()),
            None => (Kind::Ipv6, a.to_string()),
        },
    }
}

/// Is `b` a byte that can appear in a host name label (after IDN conversion)?
#[inline]
pub fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Canonical domain or host name: lower-case, trailing dot trimmed, IDN to punycode,
/// at least two labels, labels of host bytes only, a top-level label that is not all
/// digits.
pub fn canonical_domain(s: &str) -> Result<String, &'static str> {
    let s = s.trim().trim_end_matches('.');
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_prefix('.').unwrap_or(s);
    if s.is_empty() {
        return Err("empty domain");
    }
    let lower: String = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).map_err(|_| "invalid IDN domain")?
    };
    if lower.len() > 253 {
        return Err("domain longer than 253 bytes");
    }
    let mut labels = 0;
    for label in lower.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("empty or over-long label");
        }
        if !label.bytes().all(is_host_byte) {
            return Err("invalid character in domain");
        }
        labels += 1;
    }
    if labels < 2 {
        return Err("domain has a single label");
    }
    let tld = lower.rsplit('.').next().unwrap_or("");
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err("top-level label is numeric");
    }
    Ok(lower)
}

/// Canonical e-mail address: lower-cased, domain part canonical.
pub fn canonical_email(s: &str) -> Result<String, &'static str> {
    let s = s.trim().trim_matches(|c| c == '<' || c == '>');
    let (local, domain) = s.rsplit_once('@').ok_or("e-mail address without @")?;
    if local.is_empty() || local.contains('@') || local.contains(char::is_whitespace) {
        return Err("invalid e-mail local part");
    }
    if !local.bytes().all(is_email_local_byte) {
        return Err("invalid e-mail local part");
    }
    let domain = canonical_domain(domain)?;
    Ok(format!("{}@{}", local.to_ascii_lowercase(), domain))
}

/// Bytes allowed in the local part of an e-mail address as tripline recognises it in
/// logs (RFC 5322 atext without the rarely seen ones).
#[inline]
pub fn is_email_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'=' | b'\'')
}

/// Canonical hex digest of `kind`: lower-case, exact length.
pub fn canonical_hash(kind: Kind, s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("hash is not hexadecimal");
    }
    if Kind::hash_for_len(s.len()) != Some(kind) {
        return Err("hash length does not fit its type");
    }
    Ok(s.to_ascii_lowercase())
}

/// Canonical URL: `host[:port]/path[?query]`, scheme dropped, host canonical,
/// fragment dropped. A URL without a path gets `/`.
pub fn canonical_url(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    let (scheme, rest) = match s.find("://") {
        Some(i)
            if s[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            (Some(s[..i].to_ascii_lowercase()), &s[i + 3..])
        }
        Some(_) => return Err("malformed URL scheme"),
        None => (None, s),
    };
    // Strip user info.
    let rest = match rest.find(['/', '?', '#']) {
        Some(end) => match rest[..end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        },
        None => match rest.rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        },
    };
    let rest = rest.split('#').next().unwrap_or("");
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(host_end);
    if authority.is_empty() {
        return Err("URL without host");
    }
    let mut host = canonical_authority(authority)?;
    // The scheme's default port says nothing: `http://evil.com:80/x` is `evil.com/x`.
    let default_port = match scheme.as_deref() {
        None | Some("http") | Some("hxxp") => ":80",
        Some("https") | Some("hxxps") => ":443",
        Some(_) => "",
    };
    if !default_port.is_empty() && host.ends_with(default_port) {
        host.truncate(host.len() - default_port.len());
    }
    // A session id in the path (`;jsessionid=…`) is not part of the resource.
    let tail = match tail.to_ascii_lowercase().find(";jsessionid=") {
        Some(j) => {
            let to = tail[j..].find('?').map_or(tail.len(), |q| j + q);
            format!("{}{}", &tail[..j], &tail[to..])
        }
        None => tail.to_string(),
    };
    let tail = tail.as_str();
    let tail = if tail.is_empty() {
        "/".to_string()
    } else if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    if tail.contains(char::is_whitespace) {
        return Err("URL contains white space");
    }
    Ok(format!("{host}{tail}"))
}

/// `host[:port]` with the host canonical (domain or IP; IPv6 in brackets).
fn canonical_authority(a: &str) -> Result<String, &'static str> {
    if let Some(inner) = a.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or("unclosed [ in URL host")?;
        let addr: Ipv6Addr = v6.parse().map_err(|_| "invalid IPv6 URL host")?;
        return Ok(format!("[{addr}]{after}"));
    }
    let (host, port) = match a.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        Some((_, "")) => (a.trim_end_matches(':'), None),
        Some(_) => return Err("invalid port in URL"),
        None => (a, None),
    };
    let host = if let Some((_, t)) = canonical_ip(host) {
        t
    } else {
        canonical_domain(host)?
    };
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// The host part of a canonical URL (`evil.com` of `evil.com:8080/x`).
pub fn url_host(canonical: &str) -> &str {
    let end = canonical.find(['/', '?']).unwrap_or(canonical.len());
    let authority = &canonical[..end];
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .unwrap_or(authority)
            .trim_start_matches('[');
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Canonicalises `value` as an indicator of `kind`. IP kinds accept either family.
pub fn canonical(kind: Kind, value: &str) -> Result<Canonical, &'static str> {
    let value = refang(value);
    let value = value.as_ref();
    let (kind, value) = match kind {
        Kind::Ipv4 | Kind::Ipv6 => canonical_ip(value).ok_or("invalid IP address or CIDR")?,
        Kind::Domain | Kind::Hostname => (kind, canonical_domain(value)?),
        Kind::Url => (kind, canonical_url(value)?),
        Kind::Email => (kind, canonical_email(value)?),
        k if k.is_hash() => (k, canonical_hash(k, value)?),
        Kind::Filename => {
            let v = value.trim();
            if v.is_empty() {
                return Err("empty file name");
            }
            // A path (`%APPDATA%\\x\\evil.exe`) stands for its last component.
            let v = v.rsplit(['/', '\\']).next().unwrap_or(v).trim();
            if v.is_empty() {
                return Err("file name is a directory path");
            }
            (kind, v.to_lowercase())
        }
        Kind::Regkey => (kind, canonical_regkey(value)?),
        Kind::RegkeyValue => {
            let (key, data) = value.split_once('|').ok_or("regkey|value without '|'")?;
            let data = regkey_data(data).ok_or(
                "regkey|value with an empty value (not reduced to its key: that would match every use of the key)",
            )?;
            (kind, format!("{}|{data}", canonical_regkey(key)?))
        }
        _ => {
            if value.len() < MIN_LITERAL_LEN {
                return Err("literal shorter than 6 bytes");
            }
            (Kind::Literal, value.to_string())
        }
    };
    Ok(Canonical {
        kind,
        value,
        port: None,
    })
}

/// Canonical registry key: trimmed, ASCII lower-case (Windows compares keys without
/// regard to case), at least [`MIN_LITERAL_LEN`] bytes.
pub fn canonical_regkey(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() < MIN_LITERAL_LEN {
        return Err("registry key shorter than 6 bytes");
    }
    Ok(s.to_ascii_lowercase())
}

/// The value part of `regkey|value` as it is compared: trimmed, quotes removed, ASCII
/// lower-case; a path written with an environment variable (`%TEMP%\x.exe`, which
/// logs show expanded) stands for its last component. `None` when empty.
pub fn regkey_data(s: &str) -> Option<String> {
    let s = s.trim().trim_matches('"').trim();
    let s = if s.contains('%') {
        s.rsplit(['\\', '/']).next().unwrap_or(s).trim()
    } else {
        s
    };
    (!s.is_empty()).then(|| s.to_ascii_lowercase())
}

/// Why [`detect`] refuses a URL path without a host: a valid entry that tripline
/// does not match (counted as unsupported, not malformed).
pub const PATH_ONLY: &str = "path-only entry (not matched yet)";

/// Detects the type of a list entry and canonicalises it: IPs and CIDRs (`ip:port`
/// keeps the port as context), URLs (with a scheme, or `host/path`), e-mail addresses,
/// hashes by length, and anything else with a dot as a domain. Path-only entries and
/// values of no known shape are refused with a reason.
pub fn detect(raw: &str) -> Result<Canonical, &'static str> {
    let s = refang(raw);
    let s = s.as_ref().trim();
    if s.is_empty() {
        return Err("empty value");
    }
    if s.starts_with('/') {
        return Err(PATH_ONLY);
    }
    if s.contains("://") {
        return canonical(Kind::Url, s);
    }
    if let Some((kind, value)) = canonical_ip(s) {
        return Ok(Canonical {
            kind,
            value,
            port: None,
        });
    }
    if let Some((ip, port)) = split_ip_port(s) {
        if let Some((kind, value)) = canonical_ip(ip) {
            return Ok(Canonical {
                kind,
                value,
                port: Some(port),
            });
        }
    }
    if let Some((addr, len)) = s.split_once('/') {
        // `10.0.0.0/33`: a CIDR that failed, not a URL with a short all-digit path
        // (`23.227.193.167/ca` is a URL, as real trails write them).
        let addr_like = !addr.is_empty()
            && (addr.bytes().all(|b| b.is_ascii_digit() || b == b'.') || addr.contains(':'))
            && !addr.contains("::/");
        if addr_like && !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("invalid CIDR");
        }
        if addr.bytes().all(|b| b.is_ascii_digit() || b == b'.') && canonical_ip(addr).is_none() {
            return Err("invalid IP address");
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("invalid IP address");
    }
    if s.contains('@') && !s.contains('/') {
        return canonical(Kind::Email, s);
    }
    if let Some(kind) = Kind::hash_for_len(s.len()) {
        if s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return canonical(kind, s);
        }
    }
    if s.contains('/') || s.contains('?') {
        return canonical(Kind::Url, s);
    }
    if s.contains('.') {
        // `invoice.exe`: a file name, not a domain (`.exe` is no top-level domain).
        if super::broad::looks_like_file_name(s) {
            return canonical(Kind::Filename, s);
        }
        return canonical(Kind::Domain, s);
    }
    Err("unrecognised value (no type could be detected)")
}

/// `1.2.3.4:443` or `[2001:db8::1]:443` → (address, port).
pub fn split_ip_port(s: &str) -> Option<(&str, u16)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (addr, rest) = inner.split_once(']')?;
        let port = rest.strip_prefix(':')?.parse().ok()?;
        return Some((addr, port));
    }
    let (addr, port) = s.rsplit_once(':')?;
    if addr.contains(':') {
        return None;
    }
    Some((addr, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refang_table() {
        let cases = [
            ("hxxp://evil[.]com/x", "http://evil.com/x"),
            ("hXXps://evil(.)com", "https://evil.com"),
            ("evil{.}com", "evil.com"),
            ("user[at]evil[.]com", "user@evil.com"),
            ("1.2.3[.]4", "1.2.3.4"),
            ("2001:db8[:]1", "2001:db8:1"),
            ("plain.example", "plain.example"),
            ("evil[DOT]com", "evil.com"),
        ];
        for (input, want) in cases {
            assert_eq!(refang(input), want, "refang({input:?})");
        }
    }

    #[test]
    fn detect_table() {
        use Kind::*;
        type Case<'a> = (&'a str, Option<(Kind, &'a str, Option<u16>)>);
        let cases: &[Case] = &[
            ("1.2.3.4", Some((Ipv4, "1.2.3.4", None))),
            ("1.2.3.4:443", Some((Ipv4, "1.2.3.4", Some(443)))),
            ("10.1.2.3/8", Some((Ipv4, "10.0.0.0/8", None))),
            ("1.2.3.4/32", Some((Ipv4, "1.2.3.4", None))),
            ("2001:DB8:0:0::1", Some((Ipv6, "2001:db8::1", None))),
            (
                "[2001:db8::1]:8443",
                Some((Ipv6, "2001:db8::1", Some(8443))),
            ),
            ("::ffff:1.2.3.4", Some((Ipv4, "1.2.3.4", None))),
            ("2001:db8::/32", Some((Ipv6, "2001:db8::/32", None))),
            ("EVIL.com.", Some((Domain, "evil.com", None))),
            ("evil[.]com", Some((Domain, "evil.com", None))),
            (
                "bücher.example",
                Some((Domain, "xn--bcher-kva.example", None)),
            ),
            (
                "hxxp://Evil.COM/Gate.php",
                Some((Url, "evil.com/Gate.php", None)),
            ),
            ("evil.com/gate.php", Some((Url, "evil.com/gate.php", None))),
            ("https://evil.com", Some((Url, "evil.com/", None))),
            (
                "https://1.2.3.4:8080/a?b=c#frag",
                Some((Url, "1.2.3.4:8080/a?b=c", None)),
            ),
            ("Bad@Evil.com", Some((Email, "bad@evil.com", None))),
            ("bad[at]evil[.]com", Some((Email, "bad@evil.com", None))),
            (
                "D41D8CD98F00B204E9800998ECF8427E",
                Some((Md5, "d41d8cd98f00b204e9800998ecf8427e", None)),
            ),
            (
                "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                Some((Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", None)),
            ),
            ("/gate.php", None),
            ("localhost", None),
            ("999.1.1.1", None),
            ("10.0.0.0/33", None),
            ("1.2.3.4/8x", Some((Url, "1.2.3.4/8x", None))),
            ("23.227.193.167/ca", Some((Url, "23.227.193.167/ca", None))),
            ("300.1.1.1/gate.php", None),
            ("1.2.3", None),
            ("", None),
            ("Invoice.EXE", Some((Filename, "invoice.exe", None))),
            ("invoice.zip", Some((Domain, "invoice.zip", None))),
        ];
        for (input, want) in cases {
            let got = detect(input)
                .ok()
                .map(|c| (c.kind, c.value.clone(), c.port));
            let want = want.map(|(k, v, p)| (k, v.to_string(), p));
            assert_eq!(got, want, "detect({input:?})");
        }
    }

    #[test]
    fn url_host_table() {
        assert_eq!(url_host("evil.com:8080/x"), "evil.com");
        assert_eq!(url_host("evil.com/"), "evil.com");
        assert_eq!(url_host("[2001:db8::1]:80/x"), "2001:db8::1");
        assert_eq!(url_host("1.2.3.4/x?y"), "1.2.3.4");
    }

    #[test]
    fn registry_keys_are_case_insensitive_and_pairs_keep_their_value() {
        let key = canonical(Kind::Regkey, "HKCU\\Software\\Evil").map(|c| c.value);
        assert_eq!(key, Ok("hkcu\\software\\evil".to_string()));
        let pair = canonical(
            Kind::RegkeyValue,
            "Software\\Microsoft\\Windows\\CurrentVersion\\Run|%TEMP%\\3Z4wnG9603it23y.exe",
        )
        .map(|c| c.value);
        assert_eq!(
            pair,
            Ok("software\\microsoft\\windows\\currentversion\\run|3z4wng9603it23y.exe".to_string())
        );
        let plain = canonical(Kind::RegkeyValue, "HKLM\\Software\\Run|\"C:\\x\\a.exe\" /s")
            .map(|c| c.value);
        assert_eq!(
            plain,
            Ok("hklm\\software\\run|c:\\x\\a.exe\" /s".to_string())
        );
        assert!(canonical(Kind::RegkeyValue, "HKLM\\Software\\Run| ").is_err());
        assert!(canonical(Kind::RegkeyValue, "HKLM\\Software\\Run").is_err());
    }

    #[test]
    fn literal_needs_six_bytes() {
        assert!(canonical(Kind::Literal, "abcde").is_err());
        assert_eq!(
            canonical(Kind::Literal, "Global\\Mutex1").map(|c| c.value),
            Ok("Global\\Mutex1".to_string())
        );
    }
}
