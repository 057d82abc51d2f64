//! `tripline run --check`: everything that can be known about a configuration before
//! running it, every problem at once.
//!
//! On top of [`Config::plan`] (keys, ranges, addresses, zone, names), it looks at the
//! machine: every file and directory the configuration names exists and can be read
//! (intel paths, warninglists, the rules directory, TLS certificates, keys and CA
//! files, the directory above each include glob), the state directory and the alert
//! files can be written (or created), the rules compile, and each sharing destination
//! has its key or password (from its environment variable or file). A secret is read
//! only to see that it is there and never printed: the report says which variable or
//! file is missing.
//!
//! The [`CheckReport`] prints as a short human summary when all is well, or as one
//! line per problem (file, key, what is wrong) when not. It holds no `Debug` output.
//! Nothing is created or written by a check.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Config, ConfigError, SourceConfig, StartAtConfig, SyslogModeConfig};
use crate::correlate::load as rules;
use crate::intel::load::IntelSpec;
use crate::share::{Secret, TransportConfig};

/// What a check found.
#[derive(Debug)]
pub struct CheckReport {
    /// The configuration file, or `embedded default`.
    pub origin: String,
    /// Every problem, each naming the key (and the path at fault).
    pub problems: Vec<ConfigError>,
    /// What would run, one line per part; empty when there are problems.
    pub summary: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Prints the report (stdout when all is well, stderr when not) and returns the
    /// exit status: 0, or 2 when there are problems.
    pub fn print(&self) -> ExitCode {
        if self.is_ok() {
            print!("{self}");
            ExitCode::SUCCESS
        } else {
            eprint!("{self}");
            ExitCode::from(2)
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            writeln!(f, "config: {} OK", self.origin)?;
            for l in &self.summary {
                writeln!(f, "{l}")?;
            }
        } else {
            let n = self.problems.len();
            writeln!(
                f,
                "config: {}: {n} problem{}",
                self.origin,
                if n == 1 { "" } else { "s" }
            )?;
            for p in &self.problems {
                writeln!(f, "{p}")?;
            }
        }
        Ok(())
    }
}

/// Reads the configuration at `path` (the embedded default when `None`) and checks it.
pub fn check_file(path: Option<&Path>) -> CheckReport {
    match path {
        None => check(&Config::embedded_default(), Path::new("embedded default")),
        Some(p) => match Config::read(p) {
            Ok(config) => check(&config, p),
            Err(e) => CheckReport {
                origin: p.display().to_string(),
                problems: vec![e],
                summary: Vec::new(),
            },
        },
    }
}

/// Checks a parsed configuration; `config_path` names it in the report.
pub fn check(config: &Config, config_path: &Path) -> CheckReport {
    let mut c = Checker {
        path: config_path,
        problems: Vec::new(),
    };
    let plan = match config.plan(config_path) {
        Ok(plan) => Some(plan),
        Err(e) => {
            c.problems.extend(e.into_problems());
            None
        }
    };
    c.intel(config);
    c.sources(config);
    c.alerts(config);
    c.state(config);
    let rules = c.rules(config);
    let sharing = c.sharing(config);
    let summary = match plan {
        Some(plan) if c.problems.is_empty() => summary(&plan, &rules, &sharing),
        _ => Vec::new(),
    };
    CheckReport {
        origin: config_path.display().to_string(),
        problems: c.problems,
        summary,
    }
}

struct Checker<'a> {
    path: &'a Path,
    problems: Vec<ConfigError>,
}

impl Checker<'_> {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn on(&mut self, key: impl Into<String>, r: Result<(), String>) {
        if let Err(m) = r {
            self.push(key, m);
        }
    }

    fn intel(&mut self, config: &Config) {
        for (n, s) in config.intel.paths.iter().enumerate() {
            if let Ok(spec) = s.parse::<IntelSpec>() {
                if !spec.path.as_os_str().is_empty() {
                    self.on(format!("intel.paths[{n}]"), readable(&spec.path));
                }
            }
        }
        for (n, w) in config.intel.warninglists.iter().enumerate() {
            if !w.as_os_str().is_empty() {
                self.on(format!("intel.warninglists[{n}]"), readable(w));
            }
        }
        self.intel_sources(config);
    }

    /// `[[intel.sources]]`: each key or password is there (read, never shown), CA
    /// files and file sources can be read.
    fn intel_sources(&mut self, config: &Config) {
        use crate::intel::sync::SourceKind;
        for (i, s) in config.intel.sources.iter().enumerate() {
            let key = |k: &str| format!("intel.sources[{i}].{k}");
            for (k, var) in [
                ("api_key_env", &s.api_key_env),
                ("password_env", &s.password_env),
            ] {
                if let Some(var) = var.as_ref().filter(|v| !v.trim().is_empty()) {
                    if let Err(e) = Secret::from_env(var) {
                        self.push(key(k), e.to_string());
                    }
                }
            }
            for (k, file) in [
                ("api_key_file", &s.api_key_file),
                ("password_file", &s.password_file),
            ] {
                if let Some(f) = file.as_ref().filter(|f| !f.as_os_str().is_empty()) {
                    match readable_file(f) {
                        Err(m) => self.push(key(k), m),
                        Ok(()) => {
                            if let Err(e) = Secret::from_file(f) {
                                self.push(key(k), e.to_string());
                            }
                        }
                    }
                }
            }
            if let Some(ca) = s.ca_file.as_ref().filter(|p| !p.as_os_str().is_empty()) {
                self.on(key("ca_file"), readable_file(ca));
            }
            if s.kind == SourceKind::File {
                if let Some(u) = s.url.as_ref().filter(|u| !u.trim().is_empty()) {
                    self.on(key("url"), readable(Path::new(u)));
                }
            }
        }
    }

    fn sources(&mut self, config: &Config) {
        for (i, s) in config.sources.iter().enumerate() {
            match s {
                SourceConfig::File(f) => {
                    for (n, g) in f.include.iter().enumerate() {
                        if g.trim().is_empty() {
                            continue;
                        }
                        let base = glob_base(g);
                        self.on(
                            format!("sources[{i}].include[{n}]"),
                            readable_dir(&base)
                                .map_err(|m| format!("the directory of \"{g}\": {m}")),
                        );
                    }
                }
                SourceConfig::Syslog(sy) => {
                    for (k, v) in [("tls_cert", &sy.tls_cert), ("tls_key", &sy.tls_key)] {
                        if let Some(p) = v.as_ref().filter(|p| !p.as_os_str().is_empty()) {
                            self.on(format!("sources[{i}].{k}"), readable_file(p));
                        }
                    }
                }
                SourceConfig::Relp(_) | SourceConfig::Stdin(_) => {}
            }
        }
    }

    fn alerts(&mut self, config: &Config) {
        let many = matches!(config.alerts.path, super::AlertPaths::Many(_));
        for (n, p) in config.alerts.paths().iter().enumerate() {
            if p.trim().is_empty() || p == "-" {
                continue;
            }
            let key = if many {
                format!("alerts.path[{n}]")
            } else {
                "alerts.path".to_string()
            };
            self.on(key, writable_file_or_creatable(Path::new(p)));
        }
    }

    fn state(&mut self, config: &Config) {
        let d = &config.state.dir;
        if !d.as_os_str().is_empty() {
            self.on("state.dir", writable_dir_or_creatable(d));
        }
    }

    /// Loads the rules; the summary's words for them.
    fn rules(&mut self, config: &Config) -> String {
        if !config.rules.enabled {
            return "off".into();
        }
        match &config.rules.dir {
            None => {
                let n = rules::default_rules().len();
                format!("{n} shipped rule{}", plural(n))
            }
            Some(dir) if dir.as_os_str().is_empty() => String::new(),
            Some(dir) => match rules::load_rules(dir) {
                Ok(r) => format!("{} rule{} from {}", r.len(), plural(r.len()), dir.display()),
                Err(errors) => {
                    for e in errors {
                        self.push("rules.dir", e.to_string());
                    }
                    String::new()
                }
            },
        }
    }

    /// Checks each destination's secret, CA file and directory; the summary's words
    /// for each destination.
    fn sharing(&mut self, config: &Config) -> Vec<String> {
        let mut out = Vec::new();
        for (i, d) in config.share.destinations.iter().enumerate() {
            let key = |k: &str| format!("share.destinations[{i}].transport.{k}");
            let (target, secret, ca) = match &d.transport {
                TransportConfig::Misp {
                    url,
                    api_key_env,
                    api_key_file,
                    ca_file,
                } => {
                    let secret = match (api_key_env, api_key_file) {
                        (Some(var), _) => Some(("key", "api_key_env", SecretAt::Env(var))),
                        (None, Some(p)) => Some(("key", "api_key_file", SecretAt::File(p))),
                        (None, None) => None,
                    };
                    (
                        format!("misp {}", crate::net::http::redact_url(url)),
                        secret,
                        ca_file,
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
                    let secret = match (username, password_env, password_file) {
                        (None, _, _) => None,
                        (Some(_), Some(var), _) => {
                            Some(("password", "password_env", SecretAt::Env(var)))
                        }
                        (Some(_), None, Some(p)) => {
                            Some(("password", "password_file", SecretAt::File(p)))
                        }
                        (Some(_), None, None) => None,
                    };
                    (
                        format!(
                            "taxii {} collection {collection_id}",
                            crate::net::http::redact_url(api_root)
                        ),
                        secret,
                        ca_file,
                    )
                }
                TransportConfig::StixDir { path } => {
                    if !path.as_os_str().is_empty() {
                        self.on(key("path"), writable_dir_or_creatable(path));
                    }
                    (format!("stix_dir {}", path.display()), None, &None)
                }
            };
            if let Some(ca) = ca.as_ref().filter(|p| !p.as_os_str().is_empty()) {
                self.on(key("ca_file"), readable_file(ca));
            }
            let mut line = format!("\"{}\" {target}", d.name);
            if let Some((what, k, at)) = secret {
                let (from, found) = match at {
                    SecretAt::Env(var) => (format!("env {var}"), Secret::from_env(var)),
                    SecretAt::File(p) => (format!("file {}", p.display()), Secret::from_file(p)),
                };
                // The secret itself is dropped here, unseen; only whether it is there
                // is reported.
                match found {
                    Ok(_) => line.push_str(&format!(" ({what} from {from}: set)")),
                    Err(m) => self.push(
                        key(k),
                        format!("the {what} of destination \"{}\" is missing: {m}", d.name),
                    ),
                }
            } else if matches!(d.transport, TransportConfig::Taxii { .. }) {
                line.push_str(" (no authentication)");
            }
            line.push_str(&format!(
                ", max_tlp {}, {}",
                d.max_tlp.as_str().to_ascii_lowercase(),
                if d.anonymise {
                    format!(
                        "anonymised (times rounded down to {} s{})",
                        d.anonymise_granularity_secs,
                        if d.count_buckets.is_empty() {
                            ""
                        } else {
                            ", counts bucketed"
                        }
                    )
                } else {
                    "not anonymised".to_string()
                }
            ));
            out.push(line);
        }
        out
    }
}

enum SecretAt<'a> {
    Env(&'a str),
    File(&'a PathBuf),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The human summary of a valid plan.
fn summary(plan: &super::Plan, rules: &str, sharing: &[String]) -> Vec<String> {
    let c = &plan.config;
    let mut out = Vec::new();
    let intel: Vec<String> = plan
        .intel
        .iter()
        .map(|s| match &s.name {
            Some(n) => format!("{n}={}", s.path.display()),
            None => s.path.display().to_string(),
        })
        .collect();
    let mut lists = Vec::new();
    if !c.intel.no_default_warninglists {
        lists.push("shipped".to_string());
    }
    if !c.intel.warninglists.is_empty() {
        lists.push(format!("{} extra", c.intel.warninglists.len()));
    }
    out.push(format!(
        "intel: {} path{} ({}), warninglists: {}{}",
        intel.len(),
        plural(intel.len()),
        intel.join(", "),
        if lists.is_empty() {
            "none".to_string()
        } else {
            lists.join(" + ")
        },
        if c.intel.watch {
            ", watched for changes"
        } else {
            ""
        }
    ));
    if !plan.intel_sources.is_empty() {
        let synced: Vec<String> = plan
            .intel_sources
            .iter()
            .map(|s| {
                format!(
                    "\"{}\" {} {} every {} s",
                    s.name(),
                    s.kind().as_str(),
                    crate::net::http::redact_url(&s.config.url),
                    s.config.interval_secs
                )
            })
            .collect();
        out.push(format!("intel sources: {}", synced.join(", ")));
    }
    out.push(if c.intel.allow_broad {
        "broad intel: public suffixes and short prefixes kept (allow_broad; a /0 never)".to_string()
    } else {
        format!(
            "broad intel: public suffixes and prefixes shorter than IPv4 /{} or IPv6 /{} refused",
            c.intel.min_prefix_v4, c.intel.min_prefix_v6
        )
    });
    let sources: Vec<String> = c
        .sources
        .iter()
        .zip(&plan.sources)
        .map(|(s, p)| match s {
            SourceConfig::File(f) => format!(
                "\"{}\" file {} (start at {})",
                p.name,
                f.include.join(", "),
                match f.start_at {
                    StartAtConfig::Beginning => "beginning",
                    StartAtConfig::End => "end",
                }
            ),
            SourceConfig::Syslog(sy) => format!(
                "\"{}\" syslog {} {} (zone {})",
                p.name,
                match sy.mode {
                    SyslogModeConfig::Udp => "udp",
                    SyslogModeConfig::Tcp => "tcp",
                    SyslogModeConfig::Tls => "tls",
                },
                sy.address,
                sy.timezone.trim()
            ),
            SourceConfig::Relp(r) => format!(
                "\"{}\" relp {} (zone {})",
                p.name,
                r.address,
                r.timezone.trim()
            ),
            SourceConfig::Stdin(_) => format!("\"{}\" stdin", p.name),
        })
        .collect();
    out.push(if sources.is_empty() {
        "sources: none (only `tripline run --stdin` would read anything)".to_string()
    } else {
        format!("sources: {} — {}", sources.len(), sources.join("; "))
    });
    let alerts: Vec<String> = plan
        .alerts
        .iter()
        .map(|a| match a {
            super::AlertTarget::Stdout => "stdout".to_string(),
            super::AlertTarget::File(p) => p.display().to_string(),
        })
        .collect();
    let files = plan
        .alerts
        .iter()
        .any(|a| matches!(a, super::AlertTarget::File(_)));
    let mut line = format!("alerts: {}", alerts.join(", "));
    if files {
        line.push_str(&format!(
            " (files rotated at {} bytes, {} kept)",
            c.alerts.max_file_bytes, c.alerts.keep_files
        ));
    }
    if c.alerts.throttle_secs > 0 {
        line.push_str(&format!(
            "; repeats throttled for {} s",
            c.alerts.throttle_secs
        ));
    }
    out.push(line);
    out.push(format!("rules: {rules}"));
    out.push(if sharing.is_empty() {
        "sharing: off (no destination)".to_string()
    } else {
        format!(
            "sharing: {} destination{} — {}",
            sharing.len(),
            plural(sharing.len()),
            sharing.join("; ")
        )
    });
    if !sharing.is_empty() {
        let sh = &c.share;
        out.push(format!(
            "sharing policy: victim data never shared (types {}; categories {}; {} own \
             domain{}, {} own network{}); {} mapped tlp tag{}",
            sh.victim_types.join(", "),
            sh.victim_categories.join(", "),
            sh.own_domains.len(),
            plural(sh.own_domains.len()),
            sh.own_networks.len(),
            plural(sh.own_networks.len()),
            sh.tlp_map.len(),
            plural(sh.tlp_map.len()),
        ));
    }
    out.push(match plan.metrics_addr {
        Some(a) => format!("metrics: http://{a}/metrics"),
        None => "metrics: off".to_string(),
    });
    out.push(format!(
        "state: {}; pipeline: {} matching thread{}{}, queue of {} batches",
        c.state.dir.display(),
        plan.workers,
        plural(plan.workers),
        if c.pipeline.workers == 0 {
            " (one per core)"
        } else {
            ""
        },
        plan.queue_batches
    ));
    out
}

// ---------------------------------------------------------------------------------
// The file system, read only.

/// An existing file or directory that can be read.
fn readable(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => readable_dir(p),
        Ok(_) => readable_file(p),
        Err(e) => Err(missing(p, &e)),
    }
}

fn readable_file(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", p.display())),
        Ok(_) => std::fs::File::open(p)
            .map(|_| ())
            .map_err(|e| format!("{} cannot be read: {e}", p.display())),
        Err(e) => Err(missing(p, &e)),
    }
}

fn readable_dir(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", p.display())),
        Ok(_) => std::fs::read_dir(p)
            .map(|_| ())
            .map_err(|e| format!("{} cannot be read: {e}", p.display())),
        Err(e) => Err(missing(p, &e)),
    }
}

fn missing(p: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{} does not exist", p.display())
    } else {
        format!("{} cannot be read: {e}", p.display())
    }
}

/// A directory that can be written, or that `create_dir_all` could create: its
/// nearest existing ancestor is a directory that can be written.
fn writable_dir_or_creatable(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", p.display())),
        Ok(_) if !access_ok(p, true) => Err(format!("{} cannot be written", p.display())),
        Ok(_) => Ok(()),
        Err(e) if !absent(&e) => Err(format!("{} cannot be used: {e}", p.display())),
        Err(_) => creatable(p),
    }
}

/// A file that can be written (appended to), or created in a directory that exists
/// or can be created.
fn writable_file_or_creatable(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", p.display())),
        Ok(_) if !access_ok(p, false) => Err(format!("{} cannot be written", p.display())),
        Ok(_) => Ok(()),
        Err(e) if !absent(&e) => Err(format!("{} cannot be used: {e}", p.display())),
        Err(_) => creatable(p),
    }
}

/// Not there: missing, or below a file.
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn creatable(p: &Path) -> Result<(), String> {
    let mut up = p.parent();
    while let Some(a) = up {
        let a = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() && access_ok(a, true) => return Ok(()),
            Ok(m) if m.is_dir() => {
                return Err(format!(
                    "{} does not exist and cannot be created: {} cannot be written",
                    p.display(),
                    a.display()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "{} cannot be created: {} is not a directory",
                    p.display(),
                    a.display()
                ))
            }
            Err(_) => up = a.parent(),
        }
    }
    Err(format!(
        "{} does not exist and cannot be created",
        p.display()
    ))
}

/// `access(2)`: may this process write `p` (and, for a directory, enter it)?
fn access_ok(p: &Path, dir: bool) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let mode = if dir {
        libc::W_OK | libc::X_OK
    } else {
        libc::W_OK
    };
    // SAFETY: `c` is a NUL-terminated string that lives across the call; access only
    // reads it.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// The directory a glob pattern lists: its components up to the first one with a
/// wildcard (`/var/log/app/*.log` → `/var/log/app`); `.` when the pattern starts with
/// one. A pattern without wildcards names a file: its directory.
fn glob_base(pattern: &str) -> PathBuf {
    let wild = |s: &str| s.contains(['*', '?', '[']);
    let mut base = PathBuf::new();
    let mut had_wild = false;
    for comp in Path::new(pattern).components() {
        let s = comp.as_os_str().to_string_lossy();
        if wild(&s) {
            had_wild = true;
            break;
        }
        base.push(comp);
    }
    if !had_wild {
        base.pop();
    }
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_bases() {
        assert_eq!(glob_base("/var/log/app/*.log"), Path::new("/var/log/app"));
        assert_eq!(glob_base("fixtures/logs/*.log"), Path::new("fixtures/logs"));
        assert_eq!(glob_base("*.log"), Path::new("."));
        assert_eq!(glob_base("/var/log/**/x.log"), Path::new("/var/log"));
        assert_eq!(glob_base("/var/log/syslog"), Path::new("/var/log"));
        assert_eq!(glob_base("syslog"), Path::new("."));
    }

    #[test]
    fn creatable_below_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(writable_dir_or_creatable(&dir.path().join("a/b/c")).is_ok());
        assert!(writable_dir_or_creatable(dir.path()).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(writable_dir_or_creatable(&file)
            .unwrap_err()
            .contains("is not a directory"));
        assert!(writable_dir_or_creatable(&file.join("below"))
            .unwrap_err()
            .contains("is not a directory"));
        assert!(writable_file_or_creatable(&file).is_ok());
        assert!(readable(&dir.path().join("nope"))
            .unwrap_err()
            .ends_with("does not exist"));
    }
}
