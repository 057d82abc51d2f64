//! `tripline run` configuration: TOML, every option with a default.
//!
//! Parsed with serde (`deny_unknown_fields`, so a misspelt key is an error naming it),
//! then validated into a [`Plan`] of built values that the sidecar runs
//! ([`Config::plan`], in `plan.rs`): parsed intel specs and addresses, the syslog zone,
//! unique source names, the alert outputs. Every number has a range (`bounds.rs`); a
//! value outside it is an error naming the key. `tripline run --check` goes further
//! and looks at the machine: files, directories, rules and secrets (`check.rs`).
//!
//! With no file, [`Config::embedded_default`] runs from a fresh clone on one machine:
//! intel and logs from `fixtures/`, alerts to stdout, metrics on 127.0.0.1, state under
//! `.tripline-state/` in the working directory. Relative paths are relative to the
//! working directory, not to the configuration file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::index::WarninglistMode;

pub mod bounds;
pub mod check;
mod plan;

pub use plan::{parse_timezone, AlertTarget, Plan, SourceKind, SourcePlan, MAX_NAME_CHARS};

/// A bad configuration, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a value serde cannot take, where no key could be named.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// `tripline.toml: sources[1].max_connections: must be between 1 and 65536, got …`
    #[error("{}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// Several problems, one per line.
    #[error("{}", lines(.0))]
    Many(Vec<ConfigError>),
}

fn lines(errors: &[ConfigError]) -> String {
    let v: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    v.join("\n")
}

impl ConfigError {
    /// One error for a non-empty list: itself when alone, else [`ConfigError::Many`].
    pub(crate) fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Many(errors)),
        }
    }

    /// Every single problem (a [`ConfigError::Many`] flattened).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(v) => v.iter().flat_map(|e| e.problems()).collect(),
            e => vec![e],
        }
    }

    /// Every single problem, owned.
    pub fn into_problems(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Many(v) => v.into_iter().flat_map(|e| e.into_problems()).collect(),
            e => vec![e],
        }
    }

    /// The key at fault, when one is known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub intel: IntelConfig,
    pub sources: Vec<SourceConfig>,
    pub alerts: AlertsConfig,
    pub metrics: MetricsConfig,
    pub state: StateConfig,
    pub pipeline: PipelineConfig,
    pub rules: RulesConfig,
    /// Where sightings go back to (see `share::policy`); none by default.
    pub share: crate::share::ShareConfig,
    /// The match semantics that are a judgement call (README, "Match semantics").
    #[serde(rename = "match")]
    pub matching: MatchConfig,
    /// False-positive reports (`tripline feedback`): what happens to the alerts of
    /// suppressed indicators.
    pub feedback: crate::share::FeedbackConfig,
    /// The observation store for retro-hunting (`<state>/retro/`).
    pub retro: RetroConfig,
}

/// `[retro]`: the observation store (see [`crate::retro`]).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetroConfig {
    /// Record every line's observables, and probe new intel against them (retro
    /// alerts). Default true in `tripline run` (README, Observation store, gives the
    /// cost); `false` records nothing and runs no retro matching.
    pub enabled: bool,
    /// Days of log time kept (default 7; range [`bounds::RETRO_RETENTION_DAYS`]).
    pub retention_days: u64,
    /// Bytes on disk at most; the oldest day goes first (default 1 GiB; range
    /// [`bounds::RETRO_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl Default for RetroConfig {
    fn default() -> Self {
        RetroConfig {
            enabled: true,
            retention_days: 7,
            max_bytes: 1 << 30,
        }
    }
}

impl RetroConfig {
    /// Where the store lives under the state directory.
    pub fn dir(state: &std::path::Path) -> PathBuf {
        state.join("retro")
    }
}

/// `[match]`: the switchable match semantics; the defaults favour detection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Look up host names that stand in a URL's query string (`?u=evil.com`).
    pub query_hosts: bool,
    /// The port of an `ip|port` indicator: `"any"` (context only) or `"exact"`
    /// (required next to the address).
    pub ip_port: crate::index::IpPortMatch,
}

impl Default for MatchConfig {
    fn default() -> Self {
        let d = crate::index::MatchOptions::default();
        MatchConfig {
            query_hosts: d.query_hosts,
            ip_port: d.ip_port,
        }
    }
}

impl MatchConfig {
    pub fn options(&self) -> crate::index::MatchOptions {
        crate::index::MatchOptions {
            query_hosts: self.query_hosts,
            ip_port: self.ip_port,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Correlation rules; the shipped ones (`rules/`, compiled in) when unset.
    pub dir: Option<PathBuf>,
    pub enabled: bool,
    /// Correlation groups kept at most (oldest evicted, counted). Range 1 ..= 10
    /// million groups ([`bounds::MAX_GROUPS`]).
    pub max_groups: usize,
    /// How far behind the newest event time (seconds) an event may reach the
    /// sidecar's rules and still be correlated in time order; later ones are counted
    /// (`tripline_rule_observations_late_total`) and correlated with their own time
    /// where their window is still held. Range 0 ..= 86400 ([`bounds::LATENESS_SECS`]).
    pub lateness_secs: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dir: None,
            enabled: true,
            max_groups: 100_000,
            lateness_secs: 300,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Files or directories, any supported format; `NAME=PATH` names a source.
    pub paths: Vec<String>,
    /// Extra warninglist files or directories (the shipped ones load unless
    /// `no_default_warninglists`).
    pub warninglists: Vec<PathBuf>,
    pub no_default_warninglists: bool,
    pub warninglist_mode: WarninglistModeConfig,
    pub include_non_ids: bool,
    /// A reload that would shrink the indicator count by more than this fraction is
    /// refused (the old index stays). Range 0 ..= 1 ([`bounds::MAX_SHRINK_RATIO`]).
    pub max_shrink_ratio: f64,
    /// Changes to watched intel are gathered for this long (milliseconds) before a
    /// reload. Range 0 ..= 600000 (10 minutes, [`bounds::RELOAD_DEBOUNCE_MS`]).
    pub reload_debounce_ms: u64,
    /// Watch intel paths and warninglists for changes (SIGHUP always reloads).
    pub watch: bool,
    /// Keep public suffixes and short prefixes as indicators (never a `/0`).
    pub allow_broad: bool,
    /// IPv4 prefixes shorter than this are refused. Range 1 ..= 32
    /// ([`bounds::MIN_PREFIX_V4`]).
    pub min_prefix_v4: u64,
    /// IPv6 prefixes shorter than this are refused. Range 1 ..= 128
    /// ([`bounds::MIN_PREFIX_V6`]).
    pub min_prefix_v6: u64,
    /// Remote intel kept in sync into the state directory (`[[intel.sources]]`).
    pub sources: Vec<IntelSourceToml>,
    /// MISP decay (`[intel.decay]`, see [`crate::intel::expiry`]).
    pub decay: DecayConfig,
    /// Default lifetimes of intel with no expiry of its own (`[intel.lifetimes]`).
    pub lifetimes: LifetimesConfig,
}

/// `[intel.decay]`: MISP's polynomial decay for MISP intel, with MISP's "NIDS Simple
/// Decaying Model" as the default model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecayConfig {
    pub enabled: bool,
    /// MISP `lifetime` in days. Range [`bounds::DECAY_LIFETIME_DAYS`].
    pub lifetime_days: u64,
    /// MISP `decay_speed`. Range [`bounds::DECAY_SPEED`].
    pub decay_speed: f64,
    /// Below this score (0 to 100) an indicator stops matching.
    pub threshold: f64,
    /// The base score of intel whose export carries no `decay_score` (0 to 100).
    pub default_base_score: f64,
    /// The MISP types the model applies to.
    pub types: Vec<String>,
    /// Per MISP type: other parameters (a type named here decays even when not in
    /// `types`).
    pub overrides: std::collections::BTreeMap<String, DecayOverride>,
}

impl Default for DecayConfig {
    fn default() -> Self {
        use crate::intel::expiry as e;
        DecayConfig {
            enabled: true,
            lifetime_days: e::NIDS_LIFETIME_DAYS as u64,
            decay_speed: e::NIDS_DECAY_SPEED,
            threshold: e::NIDS_THRESHOLD,
            default_base_score: e::NIDS_DEFAULT_BASE_SCORE,
            types: e::NIDS_TYPES.iter().map(|t| t.to_string()).collect(),
            overrides: Default::default(),
        }
    }
}

/// `[intel.decay.overrides.<MISP type>]`: what differs from the default model.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecayOverride {
    pub lifetime_days: Option<u64>,
    pub decay_speed: Option<f64>,
    pub threshold: Option<f64>,
}

/// `[intel.lifetimes]`: days from the intel's latest time after which an indicator
/// with no `valid_until` and no decay model stops matching; 0 = never. Intel with no
/// time at all (a plain list) never expires.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimesConfig {
    pub ip_days: u64,
    pub url_days: u64,
    /// Domains and host names.
    pub domain_days: u64,
    pub email_days: u64,
    pub hash_days: u64,
    pub filename_days: u64,
    /// Other literals (user agents, mutexes, registry keys).
    pub other_days: u64,
}

impl Default for LifetimesConfig {
    fn default() -> Self {
        use crate::intel::expiry::default_lifetime_days as d;
        use crate::intel::Kind;
        LifetimesConfig {
            ip_days: d(Kind::Ipv4),
            url_days: d(Kind::Url),
            domain_days: d(Kind::Domain),
            email_days: d(Kind::Email),
            hash_days: d(Kind::Sha256),
            filename_days: d(Kind::Filename),
            other_days: d(Kind::Literal),
        }
    }
}

impl IntelConfig {
    /// The expiry policy this configuration describes (validated values assumed;
    /// see `plan`).
    pub fn expiry_policy(&self) -> crate::intel::expiry::ExpiryPolicy {
        use crate::intel::expiry::{self as e, DecayModel, DecaySettings, ExpiryPolicy};
        use crate::intel::Kind;
        let d = &self.decay;
        let model = |life: u64, speed: f64, threshold: f64| DecayModel {
            lifetime_secs: life as f64 * e::DAY_SECS as f64,
            decay_speed: speed,
            threshold,
        };
        let decay = d.enabled.then(|| {
            let mut models: std::collections::BTreeMap<String, DecayModel> = d
                .types
                .iter()
                .map(|t| {
                    (
                        t.clone(),
                        model(d.lifetime_days, d.decay_speed, d.threshold),
                    )
                })
                .collect();
            for (t, o) in &d.overrides {
                models.insert(
                    t.clone(),
                    model(
                        o.lifetime_days.unwrap_or(d.lifetime_days),
                        o.decay_speed.unwrap_or(d.decay_speed),
                        o.threshold.unwrap_or(d.threshold),
                    ),
                );
            }
            DecaySettings {
                default_base_score: d.default_base_score,
                models,
            }
        });
        let l = &self.lifetimes;
        let lifetimes = Kind::ALL.map(|k| {
            e::lifetime_secs(match k {
                Kind::Ipv4 | Kind::Ipv6 => l.ip_days,
                Kind::Url => l.url_days,
                Kind::Domain | Kind::Hostname => l.domain_days,
                Kind::Email => l.email_days,
                k if k.is_hash() => l.hash_days,
                Kind::Filename => l.filename_days,
                _ => l.other_days,
            })
        });
        ExpiryPolicy { decay, lifetimes }
    }
}

/// One `[[intel.sources]]` table: a MISP server, a feed, a TAXII collection or a
/// local file, kept in sync (see [`crate::intel::sync`]). Keys not named here are the
/// kind's own settings (`column` for CSV): they go to `options` and the kind's fetcher
/// checks them, so a misspelt key is still an error naming it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct IntelSourceToml {
    /// Unique among the intel sources and the names of `[intel] paths`.
    pub name: String,
    /// `misp`, `misp-feed`, `csv`, `freetext`, `taxii` or `file`.
    pub kind: crate::intel::sync::SourceKind,
    /// MISP base URL, feed URL, TAXII API root URL, or (kind `file`) a path.
    #[serde(default)]
    pub url: Option<String>,
    /// TAXII collection id.
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds between passes in `tripline run`. Default 3600; range 10 ..= 604800
    /// ([`bounds::INTEL_INTERVAL_SECS`]).
    #[serde(default = "default_intel_interval_secs")]
    pub interval_secs: u64,
    /// Request timeout (seconds). Default 30; range 1 ..= 600
    /// ([`bounds::INTEL_TIMEOUT_SECS`]).
    #[serde(default = "default_intel_timeout_secs")]
    pub timeout_secs: u64,
    /// PEM file of the CAs to trust instead of the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `http://host:port` proxy for this source.
    #[serde(default)]
    pub proxy: Option<String>,
    /// The sharing destination (`[[share.destinations]]` name) this source pairs with.
    #[serde(default)]
    pub destination: Option<String>,
    /// A sync pass that would shrink this source by more than this fraction is held
    /// for review. Default: `[intel] max_shrink_ratio`; range 0 ..= 1.
    #[serde(default)]
    pub max_shrink_ratio: Option<f64>,
    /// Every other key: the kind's own settings.
    #[serde(flatten)]
    pub options: toml::Table,
}

fn default_intel_interval_secs() -> u64 {
    3600
}
fn default_intel_timeout_secs() -> u64 {
    30
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            paths: Vec::new(),
            warninglists: Vec::new(),
            no_default_warninglists: false,
            warninglist_mode: WarninglistModeConfig::Drop,
            include_non_ids: false,
            max_shrink_ratio: 0.5,
            reload_debounce_ms: 500,
            watch: true,
            allow_broad: false,
            min_prefix_v4: crate::intel::broad::DEFAULT_MIN_PREFIX_V4.into(),
            min_prefix_v6: crate::intel::broad::DEFAULT_MIN_PREFIX_V6.into(),
            sources: Vec::new(),
            decay: DecayConfig::default(),
            lifetimes: LifetimesConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarninglistModeConfig {
    Drop,
    Flag,
}

impl From<WarninglistModeConfig> for WarninglistMode {
    fn from(m: WarninglistModeConfig) -> Self {
        match m {
            WarninglistModeConfig::Drop => WarninglistMode::Drop,
            WarninglistModeConfig::Flag => WarninglistMode::Flag,
        }
    }
}

/// One source, tagged by `type`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    File(FileSourceToml),
    Syslog(SyslogSourceToml),
    Relp(RelpSourceToml),
    Stdin(StdinSourceToml),
}

impl SourceConfig {
    /// The source's name: the metrics label and the `log.source` of its events.
    pub fn name(&self, index: usize) -> String {
        let (n, kind) = match self {
            SourceConfig::File(f) => (&f.name, "file"),
            SourceConfig::Syslog(s) => (&s.name, "syslog"),
            SourceConfig::Relp(r) => (&r.name, "relp"),
            SourceConfig::Stdin(s) => (&s.name, "stdin"),
        };
        n.clone().unwrap_or_else(|| format!("{kind}-{index}"))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSourceToml {
    #[serde(default)]
    pub name: Option<String>,
    /// Glob patterns of files to follow.
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in files never seen before: `end` or `beginning`.
    #[serde(default = "default_start_at")]
    pub start_at: StartAtConfig,
    /// Longer lines are skipped and counted. Default 1 MiB; range 1 ..= 64 MiB
    /// (bytes, [`bounds::MAX_LINE_BYTES`]).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How often the include patterns are expanded again, in milliseconds. Default
    /// 1000; range 10 ..= 600000 ([`bounds::RESCAN_INTERVAL_MS`]).
    #[serde(default = "default_rescan_ms")]
    pub rescan_interval_ms: u64,
    /// Files are identified by a hash of their first bytes (inode as a hint): raise
    /// this for logs that start with a long fixed header. Default 1024; range
    /// 16 ..= 65536 (bytes, [`bounds::FINGERPRINT_BYTES`]).
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
    /// A file whose name went away (renamed out of the patterns, deleted) is still
    /// read for this long, then let go at its end. Default 30; range 1 ..= 86400
    /// ([`bounds::ROTATE_WAIT_SECS`]).
    #[serde(default = "default_rotate_wait_secs")]
    pub rotate_wait_secs: u64,
    /// An unterminated last line is alerted once its file has not grown for this long
    /// (seconds; 0: only when the file is let go). Default 5; range 0 ..= 3600
    /// ([`bounds::PARTIAL_LINE_FLUSH_SECS`]).
    #[serde(default = "default_partial_line_flush_secs")]
    pub partial_line_flush_secs: u64,
    /// The zone of times the files write without one: see [`parse_timezone`].
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_rotate_wait_secs() -> u64 {
    30
}
fn default_partial_line_flush_secs() -> u64 {
    5
}
fn default_fingerprint_bytes() -> usize {
    // Covers a Zeek header and its first row, so two Zeek logs of one type opened in
    // the same second are still two files.
    1024
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartAtConfig {
    Beginning,
    End,
}

fn default_start_at() -> StartAtConfig {
    StartAtConfig::End
}
fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_rescan_ms() -> u64 {
    1000
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyslogSourceToml {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_syslog_mode")]
    pub mode: SyslogModeConfig,
    /// `IP:PORT` to listen on. Default `127.0.0.1:5514`.
    #[serde(default = "default_syslog_address")]
    pub address: String,
    /// Longer messages are truncated and counted. Default 64 KiB; range 1 ..= 16 MiB
    /// (bytes, [`bounds::MAX_MESSAGE_BYTES`]).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// TCP/TLS connections open at once; more are closed at once and counted.
    /// Default 256; range 1 ..= 65536 ([`bounds::MAX_CONNECTIONS`]).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection silent for this long (seconds) is closed. Default 300; range
    /// 1 ..= 86400 ([`bounds::IDLE_TIMEOUT_SECS`]).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// While `max_connections` are open, a new connection closes the longest-idle one
    /// if it has been silent this long (seconds), so idle clients cannot lock senders
    /// out. Default 10; range 1 ..= 86400 ([`bounds::BUSY_IDLE_TIMEOUT_SECS`]).
    #[serde(default = "default_busy_idle_timeout_secs")]
    pub busy_idle_timeout_secs: u64,
    /// A TLS handshake must finish within this (seconds). Default 10; range 1 ..= 600
    /// ([`bounds::TLS_HANDSHAKE_TIMEOUT_SECS`]).
    #[serde(default = "default_tls_handshake_timeout_secs")]
    pub tls_handshake_timeout_secs: u64,
    /// PEM certificate and key, for `mode = "tls"`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The zone of times written without one (RFC 3164 stamps): see [`parse_timezone`].
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// A RELP server (rsyslog's `omrelp`): each message is acknowledged once its alerts
/// are written, so the sender keeps and resends what tripline did not finish.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelpSourceToml {
    #[serde(default)]
    pub name: Option<String>,
    /// `IP:PORT` to listen on. Default `127.0.0.1:2514`.
    #[serde(default = "default_relp_address")]
    pub address: String,
    /// Longer messages are truncated (and still acknowledged) and counted. Default
    /// 64 KiB; range 1 ..= 16 MiB (bytes, [`bounds::MAX_MESSAGE_BYTES`]).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Connections open at once; more are closed at once and counted. Default 256;
    /// range 1 ..= 65536 ([`bounds::MAX_CONNECTIONS`]).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection with nothing sent, unanswered or to answer for this long
    /// (seconds) is closed. Default 300; range 1 ..= 86400
    /// ([`bounds::IDLE_TIMEOUT_SECS`]).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The zone of times written without one (RFC 3164 stamps): see [`parse_timezone`].
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_relp_address() -> String {
    "127.0.0.1:2514".into()
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyslogModeConfig {
    Udp,
    Tcp,
    Tls,
}

fn default_syslog_mode() -> SyslogModeConfig {
    SyslogModeConfig::Udp
}
fn default_syslog_address() -> String {
    "127.0.0.1:5514".into()
}
fn default_max_message_bytes() -> usize {
    64 * 1024
}
fn default_max_connections() -> usize {
    256
}
fn default_busy_idle_timeout_secs() -> u64 {
    10
}
fn default_tls_handshake_timeout_secs() -> u64 {
    10
}
fn default_idle_timeout_secs() -> u64 {
    300
}
fn default_timezone() -> String {
    "UTC".into()
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceToml {
    #[serde(default)]
    pub name: Option<String>,
    /// The zone of times the input writes without one: see [`parse_timezone`].
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// `path` is one output or a list: `"-"` is stdout, anything else a file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum AlertPaths {
    One(String),
    Many(Vec<String>),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub path: AlertPaths,
    /// A file output is rotated when it reaches this size (`alerts.jsonl.1`, …).
    /// Default 100 MiB; range 1 KiB ..= 1 TiB (bytes, [`bounds::MAX_FILE_BYTES`]).
    pub max_file_bytes: u64,
    /// Rotated files kept. Default 5; range 0 ..= 10000 ([`bounds::KEEP_FILES`]).
    pub keep_files: usize,
    /// Repeated alerts for the same indicator and host within this window (seconds)
    /// are counted and not written; the count rides on the next alert written. 0
    /// disables. Range 0 ..= 86400 ([`bounds::THROTTLE_SECS`]).
    pub throttle_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            path: AlertPaths::One("-".into()),
            max_file_bytes: 100 << 20,
            keep_files: 5,
            throttle_secs: 0,
        }
    }
}

impl AlertsConfig {
    pub fn paths(&self) -> Vec<String> {
        match &self.path {
            AlertPaths::One(p) => vec![p.clone()],
            AlertPaths::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Listener for `/metrics` and `/healthz`; loopback by default.
    pub address: String,
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            address: "127.0.0.1:9469".into(),
            enabled: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Checkpoints (and, later, the sightings outbox).
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from(".tripline-state"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Batches waiting to be matched (the bound that gives backpressure). Default 64;
    /// range 1 ..= 65536 ([`bounds::QUEUE_BATCHES`]).
    pub queue_batches: usize,
    /// Matching threads; 0 means one per core. Range 0 ..= 1024
    /// ([`bounds::WORKERS`]).
    pub workers: usize,
    /// When a source stops with an error (a port taken, a state directory that cannot
    /// be locked), stop the whole run and exit non-zero (default), so a supervisor
    /// restarts it; `false` keeps the other sources running, `/healthz` 503 naming it.
    pub stop_on_source_failure: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_batches: 64,
            workers: 0,
            stop_on_source_failure: true,
        }
    }
}

impl Config {
    /// Reads and validates a TOML file; the configuration as the plan completed it
    /// (intel sources paired with their sharing destinations).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let config = Config::read(path)?;
        Ok(config.plan(path)?.config)
    }

    /// Reads and parses a TOML file, without the checks of [`Config::validate`] (for
    /// `--check`, which reports every problem at once).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config = Config::from_toml(text, path)?;
        Ok(config.plan(path)?.config)
    }

    /// Parses TOML text into a `Config`, unchecked. Errors name the line and, where
    /// it can be found, the key (`sources[1].max_connections`).
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| plan::toml_error(text, path, &e))
    }

    /// What `tripline run` uses without a file: works from a fresh clone.
    pub fn embedded_default() -> Config {
        // The embedded text is tested to parse and validate (see the tests below).
        toml::from_str(EMBEDDED_DEFAULT).unwrap_or_default()
    }

    /// Checks what serde cannot, every problem at once: numbers in their ranges,
    /// addresses and the syslog zone parse, source names are unique, sources make
    /// sense. The same checks as [`Config::plan`], which also returns what they built.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.plan(path).map(|_| ())
    }
}

/// The text of `contrib/tripline.default.toml`, compiled in.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../contrib/tripline.default.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_validates() {
        let text = include_str!("../../contrib/tripline.default.toml");
        let c = Config::parse(text, Path::new("embedded")).unwrap();
        assert_eq!(c, Config::embedded_default());
        assert_eq!(c.metrics.address, "127.0.0.1:9469");
        assert!(!c.sources.is_empty());
    }

    #[test]
    fn decay_and_lifetimes_from_config() {
        use crate::intel::Kind;
        let text =
            "[intel]\npaths = [\"x\"]\n[intel.decay]\nthreshold = 50.0\ntypes = [\"ip-dst\"]\n\
                    [intel.decay.overrides.url]\nlifetime_days = 3\ndecay_speed = 2.5\n\
                    [intel.lifetimes]\nip_days = 0\nhash_days = 7\n";
        let c = Config::parse(text, Path::new("t.toml")).expect("valid");
        let p = c.intel.expiry_policy();
        let ip = p.model("ip-dst").expect("ip-dst decays");
        assert_eq!((ip.threshold, ip.lifetime_secs), (50.0, 120.0 * 86_400.0));
        let url = p.model("url").expect("an override adds its type");
        assert_eq!((url.lifetime_secs, url.decay_speed), (3.0 * 86_400.0, 2.5));
        assert!(
            p.model("domain").is_none(),
            "types replaces the default list"
        );
        assert_eq!(p.lifetimes[Kind::Ipv4 as usize], None);
        assert_eq!(p.lifetimes[Kind::Md5 as usize], Some(7 * 86_400));
        assert_eq!(p.lifetimes[Kind::Domain as usize], Some(180 * 86_400));
        // The defaults are the NIDS model and the documented lifetimes.
        assert_eq!(
            IntelConfig::default().expiry_policy(),
            crate::intel::expiry::ExpiryPolicy::default()
        );
        let off = "[intel]\npaths = [\"x\"]\n[intel.decay]\nenabled = false\n";
        let c = Config::parse(off, Path::new("t.toml")).expect("valid");
        assert!(c.intel.expiry_policy().decay.is_none());
        let bad = "[intel]\npaths = [\"x\"]\n[intel.decay.overrides.url]\nthreshold = 101.0\n";
        let err = Config::parse(bad, Path::new("t.toml")).expect_err("out of range");
        assert!(
            err.to_string()
                .contains("intel.decay.overrides.\"url\".threshold"),
            "{err}"
        );
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../contrib/tripline.example.toml");
        Config::parse(text, Path::new("example")).unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[intel]\npaths = [\"x\"]\nbogus = 1\n",
                "unknown field `bogus`",
            ),
            ("[intel]\npaths = []\n", "intel.paths"),
            (
                "[intel]\npaths = [\"x\"]\n[metrics]\naddress = \"nope\"\n",
                "metrics.address",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\naddress = \"1.2.3.4\"\n",
                "sources[0].address",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"tape\"\n",
                "unknown variant `tape`",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"file\"\ninclude = []\n",
                "sources[0].include",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\nmode = \"tls\"\n",
                "sources[0].tls_cert",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\ntimezone = \"Mars/Olympus\"\n",
                "sources[0].timezone",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"relp\"\naddress = \"localhost\"\n",
                "sources[0].address",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"relp\"\nmode = \"tcp\"\n",
                "unknown field `mode`",
            ),
            (
                "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"relp\"\ntimezone = \"Mars/Olympus\"\n",
                "sources[0].timezone",
            ),
            (
                "[intel]\npaths = [\"x\"]\nmax_shrink_ratio = 2.0\n",
                "intel.max_shrink_ratio",
            ),
        ];
        for (text, want) in cases {
            let err = Config::parse(text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("t.toml"), "{err}");
        }
    }
}
