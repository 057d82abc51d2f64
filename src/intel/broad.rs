//! Intel that would flag the world: public suffixes and very short CIDRs.
//!
//! Real trails hold values such as `org.ru`, `co.cl` or `duckdns.org` (public suffixes:
//! anyone may register below them) and prefixes such as `0.0.0.0/0`. Under tripline's
//! semantics a domain matches every subdomain and a CIDR every address it covers, so
//! one such value raises an alert on every host of a registry or every address. The
//! store refuses them at load ([`BroadPolicy::refusal`]) unless `--allow-broad`, and
//! reports each with its source and location.
//!
//! Public suffixes come from the Public Suffix List compiled into the `psl` crate,
//! ICANN and private sections both (`duckdns.org` is a private-section suffix). A
//! prefix of length 0 (`0.0.0.0/0`, `::/0`) is refused even with `--allow-broad`: it
//! is never an indicator. Cost: one list walk per domain-like value at load, nothing
//! per log line.

use super::model::Kind;

/// Default shortest IPv4 prefix accepted as an indicator (`/8`).
pub const DEFAULT_MIN_PREFIX_V4: u8 = 8;
/// Default shortest IPv6 prefix accepted as an indicator (`/16`).
pub const DEFAULT_MIN_PREFIX_V6: u8 = 16;

/// Refusal reasons, as reported and counted (bounded: used as a metrics label).
pub const PUBLIC_SUFFIX: &str = "public_suffix";
pub const SHORT_PREFIX: &str = "short_prefix";
pub const ZERO_PREFIX: &str = "zero_prefix";

/// Which indicators are too broad to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadPolicy {
    /// Keep public suffixes and short prefixes (never a `/0`).
    pub allow: bool,
    /// IPv4 prefixes shorter than this are refused (1 ..= 32).
    pub min_prefix_v4: u8,
    /// IPv6 prefixes shorter than this are refused (1 ..= 128).
    pub min_prefix_v6: u8,
}

impl Default for BroadPolicy {
    fn default() -> Self {
        BroadPolicy {
            allow: false,
            min_prefix_v4: DEFAULT_MIN_PREFIX_V4,
            min_prefix_v6: DEFAULT_MIN_PREFIX_V6,
        }
    }
}

/// Why an indicator was refused as too broad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// [`PUBLIC_SUFFIX`], [`SHORT_PREFIX`] or [`ZERO_PREFIX`].
    pub reason: &'static str,
    /// The sentence shown to people.
    pub text: &'static str,
}

impl BroadPolicy {
    /// Why the canonical `value` of `kind` must not be matched, if it must not.
    pub fn refusal(&self, kind: Kind, value: &str) -> Option<Refusal> {
        match kind {
            Kind::Ipv4 | Kind::Ipv6 => {
                let len: u8 = value.split_once('/')?.1.parse().ok()?;
                if len == 0 {
                    return Some(Refusal {
                        reason: ZERO_PREFIX,
                        text: "prefix /0 covers every address (refused even with --allow-broad)",
                    });
                }
                let min = if kind == Kind::Ipv4 {
                    self.min_prefix_v4
                } else {
                    self.min_prefix_v6
                };
                (!self.allow && len < min).then_some(Refusal {
                    reason: SHORT_PREFIX,
                    text: if kind == Kind::Ipv4 {
                        "IPv4 prefix shorter than the minimum (--min-prefix-v4)"
                    } else {
                        "IPv6 prefix shorter than the minimum (--min-prefix-v6)"
                    },
                })
            }
            Kind::Domain | Kind::Hostname if !self.allow && is_public_suffix(value) => {
                Some(Refusal {
                    reason: PUBLIC_SUFFIX,
                    text: "public suffix (on the Public Suffix List): would match every domain registered below it",
                })
            }
            _ => None,
        }
    }
}

/// Is the canonical (lower-case, punycode) domain a public suffix by a rule of its
/// own? `org.ru`, `co.uk`, `duckdns.org` are; `evil.org.ru` and unknown TLDs are not.
/// A name that is a suffix only through a wildcard rule (`*.localto.net` makes
/// `jw8ndw9ev.localto.net` one: a single tunnel endpoint, as trails list them) is
/// kept: its parent is no public suffix, so it flags one customer, not a registry.
pub fn is_public_suffix(domain: &str) -> bool {
    let whole = |d: &str| {
        psl::suffix(d.as_bytes()).is_some_and(|s| s.typ().is_some() && s.as_bytes() == d.as_bytes())
    };
    if !whole(domain) {
        return false;
    }
    match domain.split_once('.') {
        Some((_, parent)) => whole(parent),
        None => true,
    }
}

/// Is the top-level label of `domain` on the Public Suffix List at all?
pub fn has_known_tld(domain: &str) -> bool {
    let tld = domain.rsplit('.').next().unwrap_or(domain);
    psl::suffix(tld.as_bytes()).is_some_and(|s| s.typ().is_some())
}

/// File extensions seen in indicator lists. A value ending in one of these whose last
/// label is no top-level domain (`invoice.exe`, not `invoice.zip`) is a file name.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "scr", "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "hta",
    "jar", "lnk", "msi", "sys", "drv", "ocx", "cpl", "pif", "tmp", "dat", "bin", "elf", "doc",
    "docx", "docm", "dot", "dotm", "xls", "xlsx", "xlsm", "xlsb", "ppt", "pptx", "pptm", "rtf",
    "pdf", "iso", "img", "vhd", "vhdx", "rar", "7z", "gz", "tgz", "tar", "cab", "ace", "apk",
    "dmg", "pkg", "one", "chm", "reg", "inf", "ini", "db", "log", "txt", "html", "htm", "php",
    "asp", "aspx", "jsp", "py", "pl", "sh",
];

/// Does a dotted value without a path look like a file name rather than a domain: its
/// last label a file extension that is no top-level domain?
pub fn looks_like_file_name(value: &str) -> bool {
    let Some((stem, ext)) = value.rsplit_once('.') else {
        return false;
    };
    if stem.is_empty() {
        return false;
    }
    let ext = ext.to_ascii_lowercase();
    FILE_EXTENSIONS.contains(&ext.as_str()) && !has_known_tld(&ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_suffixes_from_real_trails_are_refused() {
        let p = BroadPolicy::default();
        // Lines of fixtures/intel/trails/trails-domains.txt and of the shared iocs.
        for v in [
            "org.ru",
            "net.ru",
            "co.cl",
            "pp.ua",
            "duckdns.org",
            "co.uk",
            "com",
        ] {
            let r = p.refusal(Kind::Domain, v);
            assert_eq!(r.map(|r| r.reason), Some(PUBLIC_SUFFIX), "{v}");
        }
        for v in [
            "evil.org.ru",
            "linux.org.ru",
            "x.duckdns.org",
            "example.com",
            "evil.bit",
            // Suffixes only by a wildcard rule: single hosts (real trail lines).
            "jw8ndw9ev.localto.net",
            "ec2-3-91-190-163.compute-1.amazonaws.com",
            "whole-playback.at.ply.gg",
        ] {
            assert_eq!(p.refusal(Kind::Domain, v), None, "{v}");
        }
        let allow = BroadPolicy { allow: true, ..p };
        assert_eq!(allow.refusal(Kind::Domain, "org.ru"), None);
    }

    #[test]
    fn short_and_zero_prefixes_are_refused() {
        let p = BroadPolicy::default();
        let reason = |k, v| p.refusal(k, v).map(|r| r.reason);
        assert_eq!(reason(Kind::Ipv4, "0.0.0.0/0"), Some(ZERO_PREFIX));
        assert_eq!(reason(Kind::Ipv6, "::/0"), Some(ZERO_PREFIX));
        assert_eq!(reason(Kind::Ipv4, "0.0.0.0/7"), Some(SHORT_PREFIX));
        assert_eq!(reason(Kind::Ipv4, "10.0.0.0/8"), None);
        assert_eq!(reason(Kind::Ipv4, "1.2.3.4"), None);
        assert_eq!(reason(Kind::Ipv6, "2000::/3"), Some(SHORT_PREFIX));
        assert_eq!(reason(Kind::Ipv6, "2001::/16"), None);
        let allow = BroadPolicy { allow: true, ..p };
        assert_eq!(allow.refusal(Kind::Ipv4, "0.0.0.0/7"), None);
        assert_eq!(
            allow.refusal(Kind::Ipv4, "0.0.0.0/0").map(|r| r.reason),
            Some(ZERO_PREFIX)
        );
        let strict = BroadPolicy {
            min_prefix_v4: 24,
            ..p
        };
        assert_eq!(
            strict.refusal(Kind::Ipv4, "10.0.0.0/16").map(|r| r.reason),
            Some(SHORT_PREFIX)
        );
    }

    #[test]
    fn file_names_are_told_from_domains() {
        for v in ["invoice.exe", "Report.DOCX", "loader.dll", "a.b.ps1"] {
            assert!(looks_like_file_name(v), "{v}");
        }
        // `.zip`, `.sh` and `.py` are top-level domains; `.com` is not an extension here.
        for v in [
            "invoice.zip",
            "evil.sh",
            "evil.py",
            "evil.com",
            "exe",
            ".exe",
        ] {
            assert!(!looks_like_file_name(v), "{v}");
        }
    }
}
