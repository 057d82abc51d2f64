//! The victim-data deny-list: indicators that name a victim (a targeted address, a
//! recipient, our own domains and networks) are never sighted, whatever else the
//! policy allows. A sighting of `jane.doe@ourcorp.example` tells the community who was
//! targeted; one of `vpn.ourcorp.example` tells it what we run.
//!
//! Rules, from `[share]` ([`ShareConfig`]):
//! - the provenance's MISP category is one of `victim_categories` (default
//!   `Targeting data`), case-insensitive;
//! - its MISP type matches `victim_types` (default `target-*` and `email-dst`): an
//!   exact name, or a prefix ending in `*`, case-insensitive;
//! - the indicator is in one of `own_domains` (written in UTF-8 or punycode): a domain
//!   or host there, an e-mail address there, a URL whose host is there, on label
//!   boundaries;
//! - the indicator is an address or prefix inside (or overlapping) one of
//!   `own_networks`, or a URL whose host is such an address.
//!
//! Cost: O(domains + networks) per provenance checked, all small.

use std::net::IpAddr;

use ipnet::IpNet;

use super::policy::ShareConfig;
use crate::correlate::Provenance;
use crate::intel::Kind;

/// Is this provenance of `indicator` (canonical value, `kind`) victim data?
pub fn is_victim(config: &ShareConfig, indicator: &str, kind: Kind, p: &Provenance) -> bool {
    if let Some(category) = &p.category {
        if config
            .victim_categories
            .iter()
            .any(|c| c.trim().eq_ignore_ascii_case(category.trim()))
        {
            return true;
        }
    }
    if config
        .victim_types
        .iter()
        .any(|t| type_matches(t, &p.source_type))
    {
        return true;
    }
    is_own(config, indicator, kind)
}

/// Is `indicator` one of our own domains or networks?
pub fn is_own(config: &ShareConfig, indicator: &str, kind: Kind) -> bool {
    let host = match kind {
        Kind::Domain | Kind::Hostname => indicator,
        Kind::Email => indicator.rsplit_once('@').map_or("", |(_, d)| d),
        Kind::Url => crate::intel::canon::url_host(indicator),
        Kind::Ipv4 | Kind::Ipv6 => return in_networks(&config.own_networks, indicator),
        _ => return false,
    };
    if in_networks(&config.own_networks, host) {
        return true;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    config.own_domains.iter().any(|d| {
        let d = d.trim().trim_start_matches("*.").trim_matches('.');
        // Indicators are canonical (IDN as punycode): compare in the same form.
        let d = idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_ascii_lowercase());
        !d.is_empty()
            && (host == d
                || (host.len() > d.len()
                    && host.ends_with(&d)
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.'))
    })
}

/// `target-*` matches `target-email`; `email-dst` matches only itself.
fn type_matches(pattern: &str, ty: &str) -> bool {
    let pattern = pattern.trim();
    match pattern.strip_suffix('*') {
        Some(prefix) => ty
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        None => pattern.eq_ignore_ascii_case(ty.trim()),
    }
}

/// Is `value` (an address or prefix) inside or overlapping one of `networks`?
fn in_networks(networks: &[IpNet], value: &str) -> bool {
    if networks.is_empty() {
        return false;
    }
    let net = match value.trim().parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match value.trim().parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return false,
        },
    };
    networks
        .iter()
        .any(|own| own.contains(&net) || net.contains(own))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(ty: &str, category: Option<&str>) -> Provenance {
        Provenance {
            source: "circl".into(),
            event_uuid: None,
            attribute_uuid: None,
            source_type: ty.into(),
            category: category.map(str::to_string),
            tags: Vec::new(),
            tlp: None,
            distribution: None,
        }
    }

    fn config() -> ShareConfig {
        ShareConfig {
            own_domains: vec!["ourcorp.example".into(), "München.example".into()],
            own_networks: vec!["192.0.2.0/24".parse().expect("a network")],
            ..ShareConfig::default()
        }
    }

    #[test]
    fn victim_types_categories_and_own_assets() {
        let c = config();
        for (indicator, kind, ty, category, victim) in [
            (
                "evil.example",
                Kind::Domain,
                "domain",
                Some("Network activity"),
                false,
            ),
            (
                "jane.doe@x.example",
                Kind::Email,
                "target-email",
                None,
                true,
            ),
            (
                "cfo@x.example",
                Kind::Email,
                "email-dst",
                Some("Payload delivery"),
                true,
            ),
            (
                "a@x.example",
                Kind::Email,
                "email-src",
                Some("Payload delivery"),
                false,
            ),
            (
                "Bob Smith",
                Kind::Literal,
                "text",
                Some("Targeting data"),
                true,
            ),
            (
                "Bob Smith",
                Kind::Literal,
                "text",
                Some("targeting DATA"),
                true,
            ),
            (
                "vpn.ourcorp.example",
                Kind::Hostname,
                "hostname",
                None,
                true,
            ),
            ("ourcorp.example", Kind::Domain, "domain", None, true),
            ("notourcorp.example", Kind::Domain, "domain", None, false),
            (
                "x@mail.ourcorp.example",
                Kind::Email,
                "email-src",
                None,
                true,
            ),
            ("ourcorp.example:8443/login", Kind::Url, "url", None, true),
            ("192.0.2.77", Kind::Ipv4, "ip-dst", None, true),
            ("192.0.2.128/25", Kind::Ipv4, "ip-dst", None, true),
            ("192.0.0.0/16", Kind::Ipv4, "ip-dst", None, true),
            ("198.51.100.7", Kind::Ipv4, "ip-dst", None, false),
            ("192.0.2.9/admin", Kind::Url, "url", None, true),
            (
                "mail.xn--mnchen-3ya.example",
                Kind::Hostname,
                "hostname",
                None,
                true,
            ),
        ] {
            assert_eq!(
                is_victim(&c, indicator, kind, &prov(ty, category)),
                victim,
                "{indicator} ({ty}, {category:?})"
            );
        }
    }

    #[test]
    fn type_patterns() {
        assert!(type_matches("target-*", "target-email"));
        assert!(type_matches("TARGET-*", "target-user"));
        assert!(!type_matches("target-*", "targ"));
        assert!(type_matches("email-dst", "EMAIL-DST"));
        assert!(!type_matches("email-dst", "email-dst-display-name"));
    }
}
