//! Validation of a parsed [`Config`] into a [`Plan`]: the built, checked values the
//! sidecar runs (parsed intel specs, socket addresses, the syslog zone, each source's
//! settings as its module takes them, the alert outputs, durations), so nothing
//! downstream parses a string again or falls back silently on a bad one.
//!
//! Every problem is collected, not just the first: [`Config::plan`] returns them all
//! (one [`ConfigError::Invalid`] each, naming the key, in [`ConfigError::Many`] when
//! several), so `tripline run --check` can list them. Nothing here touches the file
//! system beyond what [`IntelSpec`] parsing does (it asks whether `NAME=PATH` is itself
//! an existing path); `check.rs` looks at files, directories, rules and secrets.
//!
//! Cost: linear in the size of the configuration.

use crate::decode::Zone;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{bounds, Config, ConfigError, SourceConfig, StartAtConfig, SyslogModeConfig};
use crate::intel::load::IntelSpec;
use crate::intel::sync::spec::{CredentialsAt, SecretAt, SourceSpec};
use crate::source::file::{FileSourceConfig, StartAt};
use crate::source::relp::RelpConfig;
use crate::source::syslog::{SyslogConfig, SyslogMode};

/// The longest source name: it is a metrics label and a directory name.
pub const MAX_NAME_CHARS: usize = 128;

/// A validated configuration and what was built from it. `run` uses these values
/// instead of parsing the strings of [`Config`] again.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The configuration as written (field names as documented).
    pub config: Config,
    /// `intel.paths`, parsed (`NAME=PATH` names a source).
    pub intel: Vec<IntelSpec>,
    /// `[[intel.sources]]`, validated (credentials by reference).
    pub intel_sources: Vec<SourceSpec>,
    /// `sources`, in order, each with its unique name and built settings.
    pub sources: Vec<SourcePlan>,
    /// `alerts.path`: stdout and/or files, no duplicates.
    pub alerts: Vec<AlertTarget>,
    /// `metrics.address`, or `None` when `metrics.enabled` is false.
    pub metrics_addr: Option<SocketAddr>,
    /// Matching threads: `pipeline.workers`, with 0 resolved to the number of cores.
    pub workers: usize,
    /// `pipeline.queue_batches`.
    pub queue_batches: usize,
    /// `alerts.throttle_secs` (zero: no throttle).
    pub throttle: Duration,
    /// `intel.reload_debounce_ms`.
    pub reload_debounce: Duration,
}

/// One source, ready to start.
#[derive(Clone, Debug)]
pub struct SourcePlan {
    /// Unique among the sources: `name`, or `<type>-<index>` when unset. The metrics
    /// label, the events' `log.source`, and the file source's checkpoint directory.
    pub name: String,
    pub kind: SourceKind,
    /// `timezone`: the zone of times its lines write without one.
    pub zone: Zone,
}

/// A source's settings, as the source module takes them.
#[derive(Clone, Debug)]
pub enum SourceKind {
    File(FileSourceConfig),
    Syslog(SyslogConfig),
    Relp(RelpConfig),
    Stdin,
}

impl SourceKind {
    /// `file`, `syslog`, `relp` or `stdin`, as in the configuration's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::File(_) => "file",
            SourceKind::Syslog(_) => "syslog",
            SourceKind::Relp(_) => "relp",
            SourceKind::Stdin => "stdin",
        }
    }
}

/// One alert output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertTarget {
    /// `"-"`.
    Stdout,
    /// A file, rotated by size.
    File(PathBuf),
}

impl AlertTarget {
    /// As written in `alerts.path`.
    pub fn as_config_str(&self) -> String {
        match self {
            AlertTarget::Stdout => "-".to_string(),
            AlertTarget::File(p) => p.display().to_string(),
        }
    }
}

impl Plan {
    /// The same plan with stdin as the only source (`tripline run --stdin`), named as
    /// an unnamed stdin source would be.
    pub fn stdin_only(mut self) -> Plan {
        self.sources = vec![SourcePlan {
            name: "stdin-0".to_string(),
            kind: SourceKind::Stdin,
            zone: Zone::utc(),
        }];
        self
    }

    /// The source names, by index (what the pipeline labels batches with).
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.clone()).collect()
    }
}

/// The zone of times a source's lines write without one (RFC 3164 stamps, zoneless
/// ISO stamps): `UTC`, an offset such as `+02:00` / `-0530` (up to ±14:00), or an
/// IANA name such as `Europe/Berlin` (DST-correct). The one place the configured
/// zone is parsed ([`Zone::parse`]).
pub fn parse_timezone(s: &str) -> Result<Zone, String> {
    Zone::parse(s).map_err(|_| {
        format!(
            "expected UTC, an offset from UTC such as +02:00, or an IANA zone name such as \
             Europe/Berlin, got \"{s}\""
        )
    })
}

/// Collects problems, each naming the file and the key.
struct Problems<'a> {
    path: &'a Path,
    list: Vec<ConfigError>,
}

impl Problems<'_> {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, key: impl Into<String>, range: &RangeInclusive<u64>, value: u64) {
        if let Err(m) = bounds::check(range, value) {
            self.push(key, m);
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        match ConfigError::from_list(self.list) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Config {
    /// Validates the configuration and builds what `run` needs from it. Every problem
    /// found is returned (see [`ConfigError::problems`]); `path` names the file in
    /// them.
    pub fn plan(&self, path: &Path) -> Result<Plan, ConfigError> {
        let mut p = Problems {
            path,
            list: Vec::new(),
        };
        let intel = self.plan_intel(&mut p);
        let intel_sources = self.plan_intel_sources(&intel, &mut p);
        let sources = plan_sources(&self.sources, &mut p);
        let alerts = self.plan_alerts(&mut p);
        let metrics_addr = if self.metrics.enabled {
            parse_addr(&self.metrics.address, "metrics.address", &mut p)
        } else {
            None
        };
        if self.state.dir.as_os_str().is_empty() {
            p.push("state.dir", "must not be empty");
        }
        p.range(
            "pipeline.queue_batches",
            &bounds::QUEUE_BATCHES,
            self.pipeline.queue_batches as u64,
        );
        p.range(
            "pipeline.workers",
            &bounds::WORKERS,
            self.pipeline.workers as u64,
        );
        p.range(
            "rules.max_groups",
            &bounds::MAX_GROUPS,
            self.rules.max_groups as u64,
        );
        p.range(
            "rules.lateness_secs",
            &bounds::LATENESS_SECS,
            self.rules.lateness_secs,
        );
        p.range(
            "retro.retention_days",
            &bounds::RETRO_RETENTION_DAYS,
            self.retro.retention_days,
        );
        p.range(
            "retro.max_bytes",
            &bounds::RETRO_MAX_BYTES,
            self.retro.max_bytes,
        );
        if self
            .rules
            .dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            p.push(
                "rules.dir",
                "must not be empty (leave it out for the shipped rules)",
            );
        }
        for e in self.share.problems() {
            p.push(e.key(), e.reason());
        }
        p.finish()?;
        let workers = match self.pipeline.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut config = self.clone();
        config.pair_intel_sources();
        Ok(Plan {
            config,
            intel,
            intel_sources,
            sources,
            alerts,
            metrics_addr,
            workers,
            queue_batches: self.pipeline.queue_batches,
            throttle: Duration::from_secs(self.alerts.throttle_secs),
            reload_debounce: Duration::from_millis(self.intel.reload_debounce_ms),
        })
    }

    fn plan_intel(&self, p: &mut Problems) -> Vec<IntelSpec> {
        let i = &self.intel;
        if i.paths.is_empty() && i.sources.is_empty() {
            p.push(
                "intel.paths",
                "at least one intel path (or one [[intel.sources]] table) is needed",
            );
        }
        let mut specs = Vec::new();
        for (n, s) in i.paths.iter().enumerate() {
            match s.parse::<IntelSpec>() {
                Ok(spec) if spec.path.as_os_str().is_empty() => p.push(
                    format!("intel.paths[{n}]"),
                    format!("\"{s}\" names no path"),
                ),
                Ok(spec) => specs.push(spec),
                Err(e) => p.push(format!("intel.paths[{n}]"), e),
            }
        }
        for (n, w) in i.warninglists.iter().enumerate() {
            if w.as_os_str().is_empty() {
                p.push(format!("intel.warninglists[{n}]"), "must not be empty");
            }
        }
        // NaN is in no range.
        if !bounds::MAX_SHRINK_RATIO.contains(&i.max_shrink_ratio) {
            p.push(
                "intel.max_shrink_ratio",
                format!(
                    "must be between 0 and 1 (a fraction of the indicators), got {}",
                    i.max_shrink_ratio
                ),
            );
        }
        p.range(
            "intel.reload_debounce_ms",
            &bounds::RELOAD_DEBOUNCE_MS,
            i.reload_debounce_ms,
        );
        p.range(
            "intel.min_prefix_v4",
            &bounds::MIN_PREFIX_V4,
            i.min_prefix_v4,
        );
        p.range(
            "intel.min_prefix_v6",
            &bounds::MIN_PREFIX_V6,
            i.min_prefix_v6,
        );
        self.check_expiry(p);
        specs
    }

    /// Pairs each `[[intel.sources]]` entry with the sharing destinations that give
    /// its sightings back (into [`crate::share::policy::DestinationConfig`]'s
    /// `paired_intel_sources`): the destination its `destination` key names, else,
    /// for a `misp` source, every destination whose MISP transport `url` is the same
    /// server, and for a `taxii` source every TAXII destination at the same API root
    /// (whatever its collection: a community's TAXII server commonly takes sightings
    /// in another collection than the one it publishes intel in) — URLs compared as
    /// scheme, host, port and path after parsing, a trailing `/` ignored. An explicit
    /// `destination` wins: the source is then paired with that one only. A
    /// destination's own `intel_sources` list still adds to this.
    fn pair_intel_sources(&mut self) {
        use crate::intel::sync::SourceKind;
        use crate::share::policy::TransportConfig;
        let mut pairs: Vec<(usize, String)> = Vec::new();
        for s in &self.intel.sources {
            for (i, d) in self.share.destinations.iter().enumerate() {
                let paired = match (&s.destination, s.kind, &d.transport) {
                    (Some(name), _, _) => *name == d.name,
                    (None, SourceKind::Misp, TransportConfig::Misp { url, .. })
                    | (None, SourceKind::Taxii, TransportConfig::Taxii { api_root: url, .. }) => {
                        s.url.as_deref().is_some_and(|u| same_server(u, url))
                    }
                    _ => false,
                };
                if paired {
                    pairs.push((i, s.name.clone()));
                }
            }
        }
        for (i, name) in pairs {
            let d = &mut self.share.destinations[i];
            if !d.paired_intel_sources.contains(&name) {
                d.paired_intel_sources.push(name);
            }
        }
    }

    /// `[intel.decay]` and `[intel.lifetimes]` (NaN is in no range).
    fn check_expiry(&self, p: &mut Problems) {
        let d = &self.intel.decay;
        let mut models = vec![(
            "intel.decay".to_string(),
            Some(d.lifetime_days),
            Some(d.decay_speed),
            Some(d.threshold),
        )];
        models.extend(d.overrides.iter().map(|(t, o)| {
            (
                format!("intel.decay.overrides.{t:?}"),
                o.lifetime_days,
                o.decay_speed,
                o.threshold,
            )
        }));
        for (at, life, speed, threshold) in models {
            if let Some(v) = life {
                p.range(
                    format!("{at}.lifetime_days"),
                    &bounds::DECAY_LIFETIME_DAYS,
                    v,
                );
            }
            for (key, v, range) in [
                ("decay_speed", speed, &bounds::DECAY_SPEED),
                ("threshold", threshold, &bounds::DECAY_SCORE),
            ] {
                if let Some(v) = v.filter(|v| !range.contains(v)) {
                    p.push(
                        format!("{at}.{key}"),
                        format!(
                            "must be between {} and {}, got {v}",
                            range.start(),
                            range.end()
                        ),
                    );
                }
            }
        }
        if !bounds::DECAY_SCORE.contains(&d.default_base_score) {
            p.push(
                "intel.decay.default_base_score",
                format!("must be between 0 and 100, got {}", d.default_base_score),
            );
        }
        let l = &self.intel.lifetimes;
        for (key, v) in [
            ("ip_days", l.ip_days),
            ("url_days", l.url_days),
            ("domain_days", l.domain_days),
            ("email_days", l.email_days),
            ("hash_days", l.hash_days),
            ("filename_days", l.filename_days),
            ("other_days", l.other_days),
        ] {
            p.range(format!("intel.lifetimes.{key}"), &bounds::LIFETIME_DAYS, v);
        }
    }

    /// `[[intel.sources]]`: names unique among the sources and the names of
    /// `intel.paths`, URLs checked ([`crate::net::http::parse_destination_url`]: https,
    /// or http to loopback, never userinfo), credentials from one place, numbers in
    /// range, and the kind's own keys checked by its fetcher.
    fn plan_intel_sources(&self, paths: &[IntelSpec], p: &mut Problems) -> Vec<SourceSpec> {
        use crate::intel::sync::{registry, Credentials, SourceConfig, SourceKind, SyncError};
        let mut names: HashMap<String, String> = HashMap::new();
        for (n, spec) in paths.iter().enumerate() {
            if let Some(name) = &spec.name {
                names
                    .entry(name.clone())
                    .or_insert(format!("intel.paths[{n}]"));
            }
        }
        let destinations: Vec<&str> = self
            .share
            .destinations
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        let mut out = Vec::new();
        for (i, s) in self.intel.sources.iter().enumerate() {
            let before = p.list.len();
            let key = |k: &str| format!("intel.sources[{i}].{k}");
            if let Err(m) = check_name(&s.name) {
                p.push(key("name"), m);
            } else if let Some(other) = names.get(&s.name) {
                p.push(
                    key("name"),
                    format!(
                        "duplicate intel source name \"{}\": {other} has it too",
                        s.name
                    ),
                );
            } else {
                names.insert(s.name.clone(), format!("intel.sources[{i}]"));
            }
            let url = s.url.clone().unwrap_or_default();
            if url.trim().is_empty() {
                p.push(
                    key("url"),
                    if s.kind == SourceKind::File {
                        "a file source needs url = the path of its file or directory"
                    } else {
                        "needed: the server's or feed's https:// URL"
                    },
                );
            } else if s.kind != SourceKind::File {
                if let Err(m) = crate::net::http::parse_destination_url(&url) {
                    p.push(key("url"), m);
                }
            }
            if s.collection.is_some() && s.kind != SourceKind::Taxii {
                p.push(key("collection"), "only used with kind = \"taxii\"");
            }
            // One secret from an `<name>_env` / `<name>_file` pair.
            let mut secret =
                |name: &str, env: &Option<String>, file: &Option<PathBuf>| match (env, file) {
                    (Some(_), Some(_)) => {
                        p.push(
                            key(&format!("{name}_file")),
                            format!("give {name}_env or {name}_file, not both"),
                        );
                        None
                    }
                    (Some(v), None) => Some(SecretAt::Env(v.clone())),
                    (None, Some(f)) => Some(SecretAt::File(f.clone())),
                    (None, None) => None,
                };
            let api_key = secret("api_key", &s.api_key_env, &s.api_key_file);
            let password = secret("password", &s.password_env, &s.password_file);
            for (k, empty) in [
                (
                    "api_key_env",
                    s.api_key_env.as_ref().is_some_and(|v| v.trim().is_empty()),
                ),
                (
                    "password_env",
                    s.password_env.as_ref().is_some_and(|v| v.trim().is_empty()),
                ),
                (
                    "api_key_file",
                    s.api_key_file
                        .as_ref()
                        .is_some_and(|v| v.as_os_str().is_empty()),
                ),
                (
                    "password_file",
                    s.password_file
                        .as_ref()
                        .is_some_and(|v| v.as_os_str().is_empty()),
                ),
                (
                    "username",
                    s.username.as_ref().is_some_and(|v| v.trim().is_empty()),
                ),
                (
                    "ca_file",
                    s.ca_file.as_ref().is_some_and(|v| v.as_os_str().is_empty()),
                ),
                (
                    "destination",
                    s.destination.as_ref().is_some_and(|v| v.trim().is_empty()),
                ),
            ] {
                if empty {
                    p.push(key(k), "must not be empty");
                }
            }
            let credentials = match (api_key, &s.username, password) {
                (Some(_), Some(_), _) => {
                    p.push(
                        key("username"),
                        "give an API key (api_key_env / api_key_file) or a user name and password, not both",
                    );
                    CredentialsAt::None
                }
                (Some(k), None, None) => CredentialsAt::ApiKey(k),
                (Some(_), None, Some(_)) | (None, None, Some(_)) => {
                    p.push(key("password_env"), "a password needs username");
                    CredentialsAt::None
                }
                (None, Some(_), None) => {
                    p.push(
                        key("password_env"),
                        "username needs password_env or password_file",
                    );
                    CredentialsAt::None
                }
                (None, Some(u), Some(pw)) => CredentialsAt::Basic {
                    username: u.clone(),
                    password: pw,
                },
                (None, None, None) => CredentialsAt::None,
            };
            if s.kind == SourceKind::File && credentials != CredentialsAt::None {
                p.push(key("api_key_env"), "a file source takes no credentials");
            }
            p.range(
                key("interval_secs"),
                &bounds::INTEL_INTERVAL_SECS,
                s.interval_secs,
            );
            p.range(
                key("timeout_secs"),
                &bounds::INTEL_TIMEOUT_SECS,
                s.timeout_secs,
            );
            if let Some(proxy) = &s.proxy {
                match url::Url::parse(proxy.trim()) {
                    Ok(u) if u.scheme() == "http" && u.host().is_some() => {}
                    _ => p.push(
                        key("proxy"),
                        format!(
                            "expected http://HOST:PORT, got {:?}",
                            crate::net::http::redact_url(proxy)
                        ),
                    ),
                }
            }
            if let Some(r) = s.max_shrink_ratio {
                // NaN is in no range.
                if !bounds::MAX_SHRINK_RATIO.contains(&r) {
                    p.push(
                        key("max_shrink_ratio"),
                        format!("must be between 0 and 1 (a fraction of the source's indicators), got {r}"),
                    );
                }
            }
            if let Some(d) = s.destination.as_ref().filter(|d| !d.trim().is_empty()) {
                if !destinations.contains(&d.as_str()) {
                    p.push(
                        key("destination"),
                        format!("no [[share.destinations]] is named \"{d}\""),
                    );
                }
            }
            let config = SourceConfig {
                name: s.name.clone(),
                kind: s.kind,
                url,
                collection: s.collection.clone(),
                // The shape of the credentials, never their value (the plan holds no
                // secret; a pass reads it): enough for a fetcher to check it has the
                // kind it needs.
                credentials: if s.api_key_env.is_some() || s.api_key_file.is_some() {
                    Credentials::ApiKey(crate::net::Secret::new(String::new()))
                } else if let Some(user) = &s.username {
                    Credentials::Basic {
                        username: user.clone(),
                        password: crate::net::Secret::new(String::new()),
                    }
                } else {
                    Credentials::None
                },
                interval_secs: s.interval_secs,
                timeout_secs: s.timeout_secs,
                ca_file: s.ca_file.clone(),
                proxy: s.proxy.clone(),
                options: s.options.clone(),
            };
            if let Err(e) = registry::fetcher(s.kind).check_options(&config) {
                match e {
                    SyncError::Config {
                        key: k, message, ..
                    } => p.push(key(&k), message),
                    other => p.push(format!("intel.sources[{i}]"), other.to_string()),
                }
            }
            if p.list.len() == before {
                out.push(SourceSpec {
                    config,
                    credentials,
                    destination: s.destination.clone(),
                    max_shrink_ratio: s.max_shrink_ratio.unwrap_or(self.intel.max_shrink_ratio),
                });
            }
        }
        out
    }

    fn plan_alerts(&self, p: &mut Problems) -> Vec<AlertTarget> {
        let a = &self.alerts;
        let mut targets = Vec::new();
        let paths = a.paths();
        if paths.is_empty() {
            p.push("alerts.path", "no output: give \"-\" (stdout) or a file");
        }
        for (n, s) in paths.iter().enumerate() {
            let key = if matches!(a.path, super::AlertPaths::One(_)) {
                "alerts.path".to_string()
            } else {
                format!("alerts.path[{n}]")
            };
            let t = match s.as_str() {
                s if s.trim().is_empty() => {
                    p.push(key, "must not be empty");
                    continue;
                }
                "-" => AlertTarget::Stdout,
                _ => AlertTarget::File(PathBuf::from(s)),
            };
            if targets.contains(&t) {
                p.push(key, format!("\"{s}\" is listed twice"));
                continue;
            }
            targets.push(t);
        }
        p.range(
            "alerts.max_file_bytes",
            &bounds::MAX_FILE_BYTES,
            a.max_file_bytes,
        );
        p.range(
            "alerts.keep_files",
            &bounds::KEEP_FILES,
            a.keep_files as u64,
        );
        p.range(
            "alerts.throttle_secs",
            &bounds::THROTTLE_SECS,
            a.throttle_secs,
        );
        targets
    }
}

impl SourcePlan {
    /// Builds source `index` of a configuration on its own (its name is not checked
    /// against the others': [`Config::plan`] does that). `path` names the file in
    /// errors.
    pub fn build(
        index: usize,
        source: &SourceConfig,
        path: &Path,
    ) -> Result<SourcePlan, ConfigError> {
        let mut p = Problems {
            path,
            list: Vec::new(),
        };
        let plan = plan_source(index, source, &mut p);
        p.finish()?;
        plan.ok_or_else(|| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: format!("sources[{index}]"),
            message: "cannot be built".into(),
        })
    }
}

/// Whether two URLs name the same server and base path: scheme, host, port (the
/// scheme's default filled in) and path, a trailing `/` ignored. Unparsable: never.
fn same_server(a: &str, b: &str) -> bool {
    let key = |u: &str| {
        url::Url::parse(u.trim()).ok().map(|u| {
            (
                u.scheme().to_string(),
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
                u.path().trim_end_matches('/').to_string(),
            )
        })
    };
    matches!((key(a), key(b)), (Some(x), Some(y)) if x == y)
}

fn plan_sources(sources: &[SourceConfig], p: &mut Problems) -> Vec<SourcePlan> {
    let mut out = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        let name = s.name(i);
        if let Some(first) = names.get(&name) {
            p.push(
                format!("sources[{i}].name"),
                format!("duplicate source name \"{name}\": sources[{first}] has it too"),
            );
        } else {
            names.insert(name, i);
        }
        if let Some(plan) = plan_source(i, s, p) {
            out.push(plan);
        }
    }
    out
}

/// Checks and builds one source; `None` when it has problems (pushed to `p`).
fn plan_source(i: usize, s: &SourceConfig, p: &mut Problems) -> Option<SourcePlan> {
    let before = p.list.len();
    let key = |k: &str| format!("sources[{i}].{k}");
    let name = s.name(i);
    if let Err(m) = check_name(&name) {
        p.push(key("name"), m);
    }
    let kind = match s {
        SourceConfig::File(f) => {
            if f.include.is_empty() {
                p.push(key("include"), "at least one glob pattern is needed");
            }
            for (field, globs) in [("include", &f.include), ("exclude", &f.exclude)] {
                for (n, g) in globs.iter().enumerate() {
                    if g.trim().is_empty() {
                        p.push(key(&format!("{field}[{n}]")), "must not be empty");
                    } else if let Err(e) = glob::Pattern::new(g) {
                        p.push(
                            key(&format!("{field}[{n}]")),
                            format!("\"{g}\" is not a glob pattern: {e}"),
                        );
                    }
                }
            }
            p.range(
                key("max_line_bytes"),
                &bounds::MAX_LINE_BYTES,
                f.max_line_bytes as u64,
            );
            p.range(
                key("rescan_interval_ms"),
                &bounds::RESCAN_INTERVAL_MS,
                f.rescan_interval_ms,
            );
            p.range(
                key("fingerprint_bytes"),
                &bounds::FINGERPRINT_BYTES,
                f.fingerprint_bytes as u64,
            );
            p.range(
                key("rotate_wait_secs"),
                &bounds::ROTATE_WAIT_SECS,
                f.rotate_wait_secs,
            );
            p.range(
                key("partial_line_flush_secs"),
                &bounds::PARTIAL_LINE_FLUSH_SECS,
                f.partial_line_flush_secs,
            );
            SourceKind::File(FileSourceConfig {
                include: f.include.clone(),
                exclude: f.exclude.clone(),
                start_at: match f.start_at {
                    StartAtConfig::Beginning => StartAt::Beginning,
                    StartAtConfig::End => StartAt::End,
                },
                max_line_bytes: f.max_line_bytes,
                rescan_interval: Duration::from_millis(f.rescan_interval_ms),
                fingerprint_bytes: f.fingerprint_bytes,
                rotate_wait: Duration::from_secs(f.rotate_wait_secs),
                partial_line_flush: (f.partial_line_flush_secs > 0)
                    .then(|| Duration::from_secs(f.partial_line_flush_secs)),
                ..FileSourceConfig::default()
            })
        }
        SourceConfig::Syslog(sy) => {
            let address = parse_addr(&sy.address, &key("address"), p);
            p.range(
                key("max_message_bytes"),
                &bounds::MAX_MESSAGE_BYTES,
                sy.max_message_bytes as u64,
            );
            p.range(
                key("max_connections"),
                &bounds::MAX_CONNECTIONS,
                sy.max_connections as u64,
            );
            p.range(
                key("idle_timeout_secs"),
                &bounds::IDLE_TIMEOUT_SECS,
                sy.idle_timeout_secs,
            );
            p.range(
                key("busy_idle_timeout_secs"),
                &bounds::BUSY_IDLE_TIMEOUT_SECS,
                sy.busy_idle_timeout_secs,
            );
            p.range(
                key("tls_handshake_timeout_secs"),
                &bounds::TLS_HANDSHAKE_TIMEOUT_SECS,
                sy.tls_handshake_timeout_secs,
            );
            let tls = sy.mode == SyslogModeConfig::Tls;
            for (k, v) in [("tls_cert", &sy.tls_cert), ("tls_key", &sy.tls_key)] {
                match v {
                    None if tls => p.push(key(k), "mode \"tls\" needs tls_cert and tls_key"),
                    Some(_) if !tls => p.push(
                        key(k),
                        "only used with mode = \"tls\" (this source would not encrypt)",
                    ),
                    Some(path) if path.as_os_str().is_empty() => {
                        p.push(key(k), "must not be empty")
                    }
                    _ => {}
                }
            }
            SourceKind::Syslog(SyslogConfig {
                mode: match sy.mode {
                    SyslogModeConfig::Udp => SyslogMode::Udp,
                    SyslogModeConfig::Tcp => SyslogMode::Tcp,
                    SyslogModeConfig::Tls => SyslogMode::Tls,
                },
                address: address.unwrap_or_else(|| SyslogConfig::default().address),
                max_message_bytes: sy.max_message_bytes,
                max_connections: sy.max_connections,
                idle_timeout: Duration::from_secs(sy.idle_timeout_secs),
                busy_idle_timeout: Duration::from_secs(sy.busy_idle_timeout_secs),
                tls_handshake_timeout: Duration::from_secs(sy.tls_handshake_timeout_secs),
                tls_cert: sy.tls_cert.clone(),
                tls_key: sy.tls_key.clone(),
                ..SyslogConfig::default()
            })
        }
        SourceConfig::Relp(r) => {
            let address = parse_addr(&r.address, &key("address"), p);
            p.range(
                key("max_message_bytes"),
                &bounds::MAX_MESSAGE_BYTES,
                r.max_message_bytes as u64,
            );
            p.range(
                key("max_connections"),
                &bounds::MAX_CONNECTIONS,
                r.max_connections as u64,
            );
            p.range(
                key("idle_timeout_secs"),
                &bounds::IDLE_TIMEOUT_SECS,
                r.idle_timeout_secs,
            );
            SourceKind::Relp(RelpConfig {
                address: address.unwrap_or_else(|| RelpConfig::default().address),
                max_message_bytes: r.max_message_bytes,
                max_connections: r.max_connections,
                idle_timeout: Duration::from_secs(r.idle_timeout_secs),
                ..RelpConfig::default()
            })
        }
        SourceConfig::Stdin(_) => SourceKind::Stdin,
    };
    let timezone = match s {
        SourceConfig::File(f) => &f.timezone,
        SourceConfig::Syslog(sy) => &sy.timezone,
        SourceConfig::Relp(r) => &r.timezone,
        SourceConfig::Stdin(st) => &st.timezone,
    };
    let zone = parse_timezone(timezone).unwrap_or_else(|m| {
        p.push(key("timezone"), m);
        Zone::utc()
    });
    (p.list.len() == before).then_some(SourcePlan { name, kind, zone })
}

/// A source name is a metrics label and a directory under the state directory: no
/// path separators, no control characters, not `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "\"{name}\" cannot be used: a name is also a directory name, so no '/', '\\\\', control characters, '.' or '..'"
        ));
    }
    Ok(())
}

fn parse_addr(s: &str, key: &str, p: &mut Problems) -> Option<SocketAddr> {
    match s.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(
                key,
                format!("expected IP:PORT such as 127.0.0.1:5514 or [::1]:5514, got \"{s}\""),
            );
            None
        }
    }
}

/// A TOML or serde error as a [`ConfigError`]: `Invalid` naming the key when the
/// error's position is on a `key = value` line, else `Parse` with the line and column.
/// Rust type names in serde's messages (`expected usize`) are said in words.
pub(super) fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut message = e.message().trim().replace('\n', " ");
    for (rust, words) in [
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        message = message.replace(rust, words);
    }
    let Some(span) = e.span() else {
        return ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    // Serde reports errors inside tagged tables (`[[sources]]`) at the table's header:
    // find the key whose removal makes the error go away.
    if let Some(key) = key_at_line(text, line) {
        return ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{message}{} (line {line})", range_hint(&key)),
            key,
        };
    }
    match table_at_line(text, line).and_then(|t| culprit(text, &t)) {
        Some(key) => ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{message}{}", range_hint(&key)),
            key,
        },
        None => ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!("line {line}, column {column}: {message}"),
        },
    }
}

/// `; must be between 1 and 65536 (connections)` for a key with a range, else empty.
fn range_hint(key: &str) -> String {
    // `sources[1].max_connections` → `sources[].max_connections`.
    let mut general = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                general.push('[');
            }
            ']' => {
                in_index = false;
                general.push(']');
            }
            _ if in_index => {}
            c => general.push(c),
        }
    }
    bounds::ALL
        .iter()
        .find(|b| b.key == general)
        .map(|b| format!("; must be between {} and {} ({})", b.min, b.max, b.unit))
        .unwrap_or_default()
}

/// The dotted key of `key = value` on 1-based line `line`, with the tables above it:
/// `sources[1].max_connections`, `share.destinations[0].transport.url`. Best effort
/// (plain and quoted keys, `[table]` and `[[array]]` headers); `None` when the line is
/// not a `key = value` line.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut arrays: HashMap<String, usize> = HashMap::new();
    let mut table = String::new();
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if n + 1 == line {
            let (k, _) = l.split_once('=')?;
            let k: String = k
                .split('.')
                .map(|s| s.trim().trim_matches(['"', '\'']))
                .collect::<Vec<_>>()
                .join(".");
            if k.is_empty() || k.starts_with('[') {
                return None;
            }
            return Some(if table.is_empty() {
                k
            } else {
                format!("{table}.{k}")
            });
        }
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = clean_header(h);
            *arrays.entry(h.clone()).or_default() += 1;
            table = indexed(&h, &arrays);
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = indexed(&clean_header(h), &arrays);
        }
    }
    None
}

/// The table whose `[header]` or `[[header]]` is on 1-based line `line`, indexed:
/// `sources[1]`.
fn table_at_line(text: &str, line: usize) -> Option<String> {
    let mut arrays: HashMap<String, usize> = HashMap::new();
    for (n, raw) in text.lines().enumerate().take(line) {
        let l = raw.trim();
        let t = if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = clean_header(h);
            *arrays.entry(h.clone()).or_default() += 1;
            indexed(&h, &arrays)
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            indexed(&clean_header(h), &arrays)
        } else {
            continue;
        };
        if n + 1 == line {
            return Some(t);
        }
    }
    None
}

/// The key at fault under `table` (as [`table_at_line`] names it; serde points at the
/// first element of an array of tables for an error in any of them): the one whose
/// removal makes the configuration parse, or makes serde miss exactly it.
fn culprit(text: &str, table: &str) -> Option<String> {
    let root: toml::Table = text.parse().ok()?;
    // `sources[0]` may stand for any element of `sources`.
    let (array, _) = table.rsplit_once('[').unwrap_or((table, ""));
    let candidates: Vec<String> = match lookup_value(&mut root.clone(), array)? {
        toml::Value::Array(v) => (0..v.len()).map(|i| format!("{array}[{i}]")).collect(),
        _ => vec![table.to_string()],
    };
    for t in candidates {
        let Some(toml::Value::Table(tab)) = lookup_value(&mut root.clone(), &t).cloned() else {
            continue;
        };
        for k in tab.keys().filter(|k| *k != "type") {
            let mut r = root.clone();
            if let Some(toml::Value::Table(tab)) = lookup_value(&mut r, &t) {
                tab.remove(k);
            }
            let gone = match toml::Value::Table(r).try_into::<Config>() {
                Ok(_) => true,
                Err(e) => e.message().contains(&format!("missing field `{k}`")),
            };
            if gone {
                return Some(format!("{t}.{k}"));
            }
        }
    }
    None
}

/// The value at `sources[1]` or `share.destinations[0].transport` in `root`.
fn lookup_value<'a>(root: &'a mut toml::Table, path: &str) -> Option<&'a mut toml::Value> {
    let mut segs = path.split('.').peekable();
    let mut t = root;
    loop {
        let seg = segs.next()?;
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, Some(i.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (seg, None),
        };
        let v = t.get_mut(name)?;
        let v = match index {
            Some(i) => v.as_array_mut()?.get_mut(i)?,
            None => v,
        };
        if segs.peek().is_none() {
            return Some(v);
        }
        t = v.as_table_mut()?;
    }
}

fn clean_header(h: &str) -> String {
    h.split('.')
        .map(|s| s.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".")
}

/// `share.destinations.transport` → `share.destinations[0].transport` when
/// `share.destinations` is an array of tables seen once.
fn indexed(header: &str, arrays: &HashMap<String, usize>) -> String {
    let mut out = String::new();
    let mut prefix = String::new();
    for seg in header.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
            out.push('.');
        }
        prefix.push_str(seg);
        out.push_str(seg);
        if let Some(n) = arrays.get(&prefix) {
            out.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_under_their_tables() {
        let text = "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"file\"\n[[sources]]\nmax_connections = 1\n[[share.destinations]]\nname = \"a\"\n[share.destinations.transport]\nurl = 1\n";
        assert_eq!(key_at_line(text, 2).as_deref(), Some("intel.paths"));
        assert_eq!(
            key_at_line(text, 6).as_deref(),
            Some("sources[1].max_connections")
        );
        assert_eq!(
            key_at_line(text, 10).as_deref(),
            Some("share.destinations[0].transport.url")
        );
        assert_eq!(key_at_line(text, 5), None);
        assert_eq!(table_at_line(text, 5).as_deref(), Some("sources[1]"));
        assert_eq!(
            table_at_line(text, 9).as_deref(),
            Some("share.destinations[0].transport")
        );
    }

    #[test]
    fn zones() {
        assert_eq!(parse_timezone("UTC"), Ok(Zone::utc()));
        let two = chrono::FixedOffset::east_opt(7200).unwrap();
        assert_eq!(parse_timezone("+02:00"), Ok(Zone::fixed(two)));
        assert!(parse_timezone("Europe/Berlin").is_ok());
        assert!(parse_timezone("Mars/Olympus")
            .unwrap_err()
            .contains("\"Mars/Olympus\""));
        assert!(parse_timezone("+").is_err());
    }

    #[test]
    fn same_server_compares_parsed_urls() {
        assert!(same_server(
            "https://misp.example",
            "https://MISP.example:443/"
        ));
        assert!(same_server(
            "https://m.example/misp/",
            "https://m.example/misp"
        ));
        assert!(!same_server("https://m.example", "http://m.example"));
        assert!(!same_server("https://m.example", "https://m.example:8443"));
        assert!(!same_server("https://m.example/a", "https://m.example/b"));
        assert!(!same_server("nonsense", "nonsense"));
    }

    #[test]
    fn misp_sources_pair_by_url_unless_a_destination_is_named() {
        let text = r#"
[intel]
paths = []
[[intel.sources]]
name = "isac"
kind = "misp"
url = "https://misp.isac.example/"
api_key_env = "K"
[[intel.sources]]
name = "cert"
kind = "misp"
url = "https://misp.isac.example"
api_key_env = "K"
destination = "other"
[[intel.sources]]
name = "feed"
kind = "csv"
url = "https://misp.isac.example"
[[share.destinations]]
name = "isac-misp"
[share.destinations.transport]
type = "misp"
url = "https://misp.isac.example:443"
api_key_env = "K"
[[share.destinations]]
name = "other"
[share.destinations.transport]
type = "stix_dir"
path = "/tmp/x"
"#;
        let c = Config::parse(text, Path::new("t.toml")).expect("valid");
        let d = &c.share.destinations;
        assert_eq!(d[0].paired_intel_sources, ["isac"]);
        assert!(d[0].serves("isac") && d[0].serves("isac-misp"));
        assert!(!d[0].serves("cert") && !d[0].serves("feed"));
        assert_eq!(d[1].paired_intel_sources, ["cert"]);
        assert!(d[1].serves("other") && !d[1].serves("isac"));
    }

    #[test]
    fn taxii_sources_pair_by_api_root_whatever_the_collection() {
        let text = r#"
[intel]
paths = []
[[intel.sources]]
name = "cert-intel"
kind = "taxii"
url = "https://taxii.cert.example/api1/"
collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
[[intel.sources]]
name = "other-root"
kind = "taxii"
url = "https://taxii.cert.example/api2/"
collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
[[intel.sources]]
name = "misp-same-host"
kind = "misp"
url = "https://taxii.cert.example/api1"
api_key_env = "K"
[[share.destinations]]
name = "cert-sightings"
[share.destinations.transport]
type = "taxii"
api_root = "https://taxii.cert.example:443/api1"
collection_id = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
"#;
        let c = Config::parse(text, Path::new("t.toml")).expect("valid");
        let d = &c.share.destinations[0];
        assert_eq!(d.paired_intel_sources, ["cert-intel"]);
        assert!(d.serves("cert-intel"));
        assert!(!d.serves("other-root") && !d.serves("misp-same-host"));
    }
}
