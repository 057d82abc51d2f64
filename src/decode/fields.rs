//! Fields of a decoded line and what their names say: which side of a connection a
//! value belongs to ([`role_of`]), and the IP address parser the decoders share (times
//! are `time.rs`'s).
//!
//! A [`Field`] holds no text of its own: its value is the byte range `span` of the raw
//! line, so decoding never copies a value and a matcher's hit span maps to a field by
//! containment. Cost: one `String` per field for its name; [`role_of`] lower-cases the
//! name once and compares it with fixed lists.

use std::net::{IpAddr, SocketAddr};

/// Which side of a connection a field describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client, originator or sender (`src_ip`, `source.ip`, `id.orig_h`, `SRC`,
    /// `shost`, `suser`, an Apache client address).
    Source,
    /// The server or responder (`dest_ip`, `destination.ip`, `id.resp_h`, `DST`,
    /// `dhost`, `http.hostname`, `tls.sni`).
    Destination,
    /// Anything else (DNS answers, URLs, messages, user agents...).
    Other,
}

impl Role {
    /// `"source"`, `"destination"` or `"other"`, as alerts write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
            Role::Other => "other",
        }
    }
}

/// One named value of a structured line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The format's own name (`src_ip`, `id.orig_h`, `SRC`) or, for nested JSON, the
    /// dotted path (`dns.rrname`, `source.ip`, `http.hostname`).
    pub name: String,
    /// The value's byte range in the raw line: for a JSON string the bytes between the
    /// quotes, still escaped; for a quoted key=value value the bytes inside the quotes.
    pub span: (usize, usize),
    pub role: Role,
}

impl Field {
    pub(crate) fn new(name: impl Into<String>, span: (usize, usize)) -> Field {
        let name = name.into();
        let role = role_of(&name);
        Field { name, span, role }
    }

    /// The raw bytes of the value in `line` (the line this field was decoded from);
    /// empty if `line` is another, shorter line.
    pub fn value<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        line.get(self.span.0..self.span.1).unwrap_or_default()
    }

    /// Whether this field's value contains the byte range `span`.
    pub fn contains(&self, span: (usize, usize)) -> bool {
        self.span.0 <= span.0 && span.1 <= self.span.1 && span.0 <= span.1
    }
}

/// The role a field name implies, whatever the format: ECS (`source.*`,
/// `destination.*`, `client.*`, `server.*`), Suricata EVE (`src_ip`, `dest_ip`), Zeek
/// (`id.orig_h`, `id.resp_h`), CEF (`src`, `shost`, `suser`, `dst`, `dhost`...),
/// firewalls and UFW (`src`, `SRC`, `SPT`...). Case-insensitive; a dotted name not
/// known whole is judged by its prefix, then by its last component
/// (`flow.src_ip` is a source).
pub fn role_of(name: &str) -> Role {
    let lower = name.to_ascii_lowercase();
    if let Some(r) = known(&lower) {
        return r;
    }
    for (prefix, role) in [
        ("source.", Role::Source),
        ("client.", Role::Source),
        ("destination.", Role::Destination),
        ("server.", Role::Destination),
    ] {
        if lower.starts_with(prefix) {
            return role;
        }
    }
    match lower.rsplit_once('.') {
        Some((_, last)) => known(last).unwrap_or(Role::Other),
        None => Role::Other,
    }
}

fn known(lower: &str) -> Option<Role> {
    Some(match lower {
        "src"
        | "src_ip"
        | "srcip"
        | "src_addr"
        | "srcaddr"
        | "src_host"
        | "srchost"
        | "src_port"
        | "srcport"
        | "sport"
        | "spt"
        | "src_mac"
        | "shost"
        | "suser"
        | "smac"
        | "sntdom"
        | "sip"
        | "saddr"
        | "client"
        | "client_ip"
        | "clientip"
        | "client_addr"
        | "c-ip"
        | "remote_addr"
        | "remote_ip"
        | "remote_host"
        | "sourceaddress"
        | "sourcehostname"
        | "sourceport"
        | "sourceusername"
        | "sourcetranslatedaddress"
        | "orig_h"
        | "orig_p"
        | "id.orig_h"
        | "id.orig_p" => Role::Source,
        "dst"
        | "dest"
        | "dst_ip"
        | "dest_ip"
        | "dstip"
        | "destip"
        | "dst_addr"
        | "dest_addr"
        | "dstaddr"
        | "dst_host"
        | "dest_host"
        | "dsthost"
        | "dst_port"
        | "dest_port"
        | "dstport"
        | "dport"
        | "dpt"
        | "dst_mac"
        | "dhost"
        | "duser"
        | "dmac"
        | "dntdom"
        | "dip"
        | "daddr"
        | "server"
        | "server_ip"
        | "serverip"
        | "server_addr"
        | "s-ip"
        | "destinationaddress"
        | "destinationhostname"
        | "destinationport"
        | "destinationusername"
        | "destinationtranslatedaddress"
        | "resp_h"
        | "resp_p"
        | "id.resp_h"
        | "id.resp_p"
        | "server_name"
        | "sni"
        | "http.hostname"
        | "tls.sni" => Role::Destination,
        _ => return None,
    })
}

/// The Elastic Common Schema name of a decoded field, for an alert's `matched.field`:
/// the ECS field that holds what this field holds (`src` → `source.ip`, Zeek's
/// `query` → `dns.question.name`, `tls.sni` → `tls.client.server_name`), or `None`
/// when ECS has none (the raw name is kept then). `ip` says whether the matched value
/// is an IP address: an address field holding a name is ECS `*.address`. A name that
/// already is an ECS name (ECS JSON input, the Apache decoder's) is not in this table
/// and stays as it is.
pub fn ecs_name(field: &Field, ip: bool) -> Option<&'static str> {
    let lower = field.name.to_ascii_lowercase();
    let addr = |ip_name, other| Some(if ip { ip_name } else { other });
    match lower.as_str() {
        "src" | "src_ip" | "srcip" | "src_addr" | "srcaddr" | "sip" | "saddr" | "client"
        | "client_ip" | "clientip" | "client_addr" | "c-ip" | "remote_addr" | "remote_ip"
        | "sourceaddress" | "orig_h" | "id.orig_h" => addr("source.ip", "source.address"),
        "dst" | "dest" | "dst_ip" | "dest_ip" | "dstip" | "destip" | "dst_addr" | "dest_addr"
        | "dstaddr" | "dip" | "daddr" | "server" | "server_ip" | "serverip" | "server_addr"
        | "s-ip" | "destinationaddress" | "resp_h" | "id.resp_h" => {
            addr("destination.ip", "destination.address")
        }
        "sourcetranslatedaddress" => addr("source.nat.ip", "source.address"),
        "destinationtranslatedaddress" => addr("destination.nat.ip", "destination.address"),
        "src_host" | "srchost" | "shost" | "sourcehostname" | "remote_host" => {
            addr("source.ip", "source.domain")
        }
        "dst_host" | "dest_host" | "dsthost" | "dhost" | "destinationhostname" => {
            addr("destination.ip", "destination.domain")
        }
        "suser" | "sourceusername" => Some("source.user.name"),
        "duser" | "destinationusername" => Some("destination.user.name"),
        "query" | "qname" | "rrname" | "dns.rrname" | "dns.query" | "dns_query" => {
            Some("dns.question.name")
        }
        "answers" | "answer" | "rdata" | "dns.rdata" => Some("dns.answers.data"),
        "server_name" | "sni" | "tls.sni" => Some("tls.client.server_name"),
        "http.hostname" => Some("url.domain"),
        "host" if field.role == Role::Destination => Some("url.domain"),
        "host" | "hostname" => Some("host.name"),
        "uri" | "url" | "http.url" | "request" | "request_url" | "requesturl" => {
            Some("url.original")
        }
        "user_agent"
        | "useragent"
        | "http_user_agent"
        | "http.http_user_agent"
        | "requestclientapplication" => Some("user_agent.original"),
        "referrer" | "referer" | "http_referer" | "http.http_refer" => {
            Some("http.request.referrer")
        }
        "md5" | "filehash.md5" => Some("file.hash.md5"),
        "sha1" => Some("file.hash.sha1"),
        "sha256" => Some("file.hash.sha256"),
        "sha512" => Some("file.hash.sha512"),
        "filename" | "fname" | "file_name" => Some("file.name"),
        "file" | "filepath" | "file_path" => Some("file.path"),
        "mailfrom" | "from" => Some("email.from.address"),
        "rcptto" | "to" => Some("email.to.address"),
        "subject" => Some("email.subject"),
        _ => None,
    }
}

/// Zeek's own names, where they differ from [`role_of`]: in `http.log` `host` is the
/// HTTP Host header, the server's name.
pub(crate) fn zeek_role(name: &str) -> Role {
    match name {
        "host" => Role::Destination,
        _ => role_of(name),
    }
}

/// An IP address written alone, in brackets, with a port (`1.2.3.4:443`,
/// `[2001:db8::1]:443`) or with an IPv6 zone (`fe80::1%eth0`).
pub(crate) fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        let cases: &[(&str, Role)] = &[
            ("src_ip", Role::Source),
            ("SRC", Role::Source),
            ("source.ip", Role::Source),
            ("source.domain", Role::Source),
            ("client.address", Role::Source),
            ("id.orig_h", Role::Source),
            ("shost", Role::Source),
            ("suser", Role::Source),
            ("flow.src_ip", Role::Source),
            ("dest_ip", Role::Destination),
            ("DST", Role::Destination),
            ("destination.ip", Role::Destination),
            ("server.address", Role::Destination),
            ("id.resp_h", Role::Destination),
            ("dhost", Role::Destination),
            ("http.hostname", Role::Destination),
            ("tls.sni", Role::Destination),
            ("dns.rrname", Role::Other),
            ("source", Role::Other),
            ("url.original", Role::Other),
            ("answers", Role::Other),
            ("", Role::Other),
        ];
        for (name, want) in cases {
            assert_eq!(role_of(name), *want, "{name}");
        }
        assert_eq!(zeek_role("host"), Role::Destination);
        assert_eq!(role_of("host"), Role::Other);
    }

    #[test]
    fn matched_field_is_ecs_name() {
        // (raw name, role override, value is an IP, ECS name)
        let cases: &[(&str, Option<Role>, bool, Option<&str>)] = &[
            ("dst", None, true, Some("destination.ip")),
            ("DST", None, true, Some("destination.ip")),
            ("src", None, true, Some("source.ip")),
            ("src", None, false, Some("source.address")),
            ("id.resp_h", None, true, Some("destination.ip")),
            ("id.orig_h", None, true, Some("source.ip")),
            ("dest_ip", None, true, Some("destination.ip")),
            ("shost", None, false, Some("source.domain")),
            ("query", None, false, Some("dns.question.name")),
            ("dns.rrname", None, false, Some("dns.question.name")),
            ("server_name", None, false, Some("tls.client.server_name")),
            ("tls.sni", None, false, Some("tls.client.server_name")),
            ("http.url", None, false, Some("url.original")),
            ("uri", None, false, Some("url.original")),
            ("host", Some(Role::Destination), false, Some("url.domain")),
            ("host", None, false, Some("host.name")),
            ("md5", None, false, Some("file.hash.md5")),
            ("from", None, false, Some("email.from.address")),
            // Already ECS, or unknown to ECS: the raw name is kept.
            ("source.address", None, true, None),
            ("dns.question.name", None, false, None),
            ("eventID", None, false, None),
        ];
        for &(name, role, ip, want) in cases {
            let mut f = Field::new(name, (0, 0));
            if let Some(r) = role {
                f.role = r;
            }
            assert_eq!(ecs_name(&f, ip), want, "{name}");
        }
    }

    #[test]
    fn ips() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1.2.3.4", Some("1.2.3.4")),
            (" 1.2.3.4 ", Some("1.2.3.4")),
            ("1.2.3.4:443", Some("1.2.3.4")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("fe80::1%eth0", Some("fe80::1")),
            ("host.example", None),
            ("1.2.3.4.5", None),
            ("", None),
        ];
        for (raw, want) in cases {
            let got = parse_ip(raw.as_bytes()).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *want, "{raw}");
        }
        assert_eq!(parse_ip(b"\xff\xfe"), None);
    }

    #[test]
    fn field_value_and_contains() {
        let line = b"src=1.2.3.4 x";
        let f = Field::new("src", (4, 11));
        assert_eq!(f.value(line), b"1.2.3.4");
        assert_eq!(f.value(b"short"), b"");
        assert!(f.contains((4, 11)));
        assert!(f.contains((6, 8)));
        assert!(!f.contains((3, 8)));
        assert!(!f.contains((8, 12)));
    }
}
