//! Running passes: one source's pass with its cursor and status ([`run_pass`]), the
//! per-source state on disk, the retry backoff, and the scheduler of `tripline run`
//! ([`Scheduler`]: one thread per source, so a slow or failing source never delays
//! another).
//!
//! On disk, per source, under `<state>/intel/<name>/`:
//! - `data/`: the last good data (written by the fetcher, see [`super`]);
//! - `cursor.json`: the fetcher's cursor, saved only after a successful pass;
//! - `status.json`: the last attempt, last success, last error (redacted: never a
//!   credential), indicator count, figures of the last pass, and the next run;
//! - `lock`: held (`flock`) during a pass, so two processes never write one source;
//! - `staging/`, `old/`, `held/`: see [`super::stage`].
//!
//! A pass works on `staging/` (a hard-linked copy of `data/`, [`super::stage`]).
//! When it changed something, the staged data is counted and, unless the **shrink
//! guard** holds it, swapped in atomically; then the cursor is saved. The guard: a
//! pass that would leave the source with fewer than `(1 − max_shrink_ratio) ×` its
//! last good count (a TAXII full pass answering nothing, a feed answering an empty
//! file) is held for review: `data/` and the cursor stay, the staged data moves to
//! `held/`, the status records `held` and a `last_error` naming the command that
//! accepts it (`intel sync --source NAME --accept-shrink`, [`PassOptions`]), which
//! runs a pass again with the guard off. A source with no last good count (its
//! first pass) is never held.
//!
//! A pass whose process is killed (or that fails) leaves `data/` as the last good
//! pass left it, `staging/` with whole files only and the older cursor: the next pass
//! resumes from `staging/` and fetches again what it may have applied. Temporary
//! files of a killed pass (`.NAME.tmp-PID`) are removed at the start of the next one.
//!
//! Costs: one hard link per cached file per pass; after a pass that changed data, the
//! staged directory is counted through the source's snapshot
//! ([`crate::intel::load::count_intel`]): changed files are parsed, unchanged ones'
//! entries replayed into a counting store (values only: no metas, events or links),
//! and the snapshot rewritten, so the sidecar's next load replays everything; a pass
//! that changed nothing keeps the last count.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::{data_dir, source_dir, SourceSpec};
use super::stage::{self, Dirs};
use super::{registry, write_atomic, Credentials, PassContext, PassReport, SourceKind, SyncError};
use crate::intel::load::{count_intel, IntelSpec, LoadOptions};
use crate::net::HttpClient;

/// The first retry after a failure; each further failure doubles it, up to the
/// source's interval.
pub const RETRY_INITIAL: Duration = Duration::from_secs(30);

/// What `status.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// RFC 3339.
    pub last_attempt: Option<String>,
    /// RFC 3339, of the last pass that succeeded.
    pub last_success: Option<String>,
    /// The error of the last pass when it failed (redacted), else none.
    pub last_error: Option<String>,
    /// Indicators in the data directory after the last pass that changed it.
    pub indicators: Option<u64>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Figures of the last pass.
    pub duration_secs: f64,
    pub bytes_fetched: u64,
    pub requests: u64,
    pub upserted: u64,
    pub deleted: u64,
    pub changed: bool,
    /// RFC 3339: when `tripline run` passes next (interval, or backoff after a
    /// failure).
    pub next_run: Option<String>,
    /// The last pass was held by the shrink guard (none once a pass applies).
    pub held: Option<Held>,
}

/// A pass held for review by the shrink guard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The last good count (still what the cache holds).
    pub indicators_before: u64,
    /// What the held pass would have left.
    pub indicators_after: u64,
    /// RFC 3339, of the held pass.
    pub at: String,
}

/// How a pass runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Apply the pass however much it shrinks the source (`intel sync
    /// --accept-shrink`).
    pub accept_shrink: bool,
}

/// Whether going from `before` to `after` indicators shrinks by more than `ratio`
/// (the reload guard's rule; nothing before: never).
pub fn shrinks_too_much(before: u64, after: u64, ratio: f64) -> bool {
    before > 0 && after < before && 1.0 - after as f64 / before as f64 > ratio
}

impl Status {
    /// The status of `name` (default when there is none or it cannot be read).
    pub fn load(state_dir: &Path, name: &str) -> Status {
        let p = source_dir(state_dir, name).join("status.json");
        std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The figures of the last pass.
    fn set_figures(&mut self, r: &PassReport) {
        self.bytes_fetched = r.bytes_fetched;
        self.requests = r.requests;
        self.upserted = r.upserted;
        self.deleted = r.deleted;
        self.changed = r.changed;
    }

    fn save(&self, state_dir: &Path, name: &str) -> std::io::Result<()> {
        let p = source_dir(state_dir, name).join("status.json");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&p, &text)
    }
}

/// The cursor of `name` (`Null` when there is none; a cursor that cannot be read is
/// dropped with a warning: the next pass starts over, which fetchers do idempotently).
pub fn load_cursor(state_dir: &Path, name: &str) -> Value {
    let p = source_dir(state_dir, name).join("cursor.json");
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!(source = %name, error = %e, "Intel sync cursor unreadable; starting over.");
            Value::Null
        }),
        Err(_) => Value::Null,
    }
}

/// The result of one pass.
#[derive(Debug)]
pub struct PassOutcome {
    pub name: String,
    pub result: Result<PassReport, String>,
    pub status: Status,
    pub duration: Duration,
    /// The pass was held by the shrink guard (`result` is its message).
    pub held: bool,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long to wait after `failures` failures in a row (≥ 1): 30 s doubling, at most
/// `interval`, spread by `jitter` (a fraction in `-0.1 ..= 0.1`).
pub fn retry_delay(failures: u32, interval: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = RETRY_INITIAL.saturating_mul(1u32 << exp).min(interval);
    base.mul_f64(1.0 + jitter.clamp(-0.1, 0.1))
}

/// A jitter fraction in `-0.1 ..= 0.1`.
fn jitter() -> f64 {
    let r = uuid::Uuid::new_v4().as_u128() % 2001;
    (r as f64 - 1000.0) / 10_000.0
}

/// Holds `flock` on a file while alive.
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> std::io::Result<Option<Lock>> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        Ok((r == 0).then_some(Lock(f)))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: as in `take`.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Removes temporary files a killed pass left (`.NAME.tmp-PID`).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') && n.contains(".tmp-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Counts the indicators the loaders find in `path` (as source `name`).
pub fn count_indicators(name: &str, path: &Path) -> Option<u64> {
    try_count_indicators(name, path).ok()
}

/// [`count_indicators`], with the loader's error.
fn try_count_indicators(name: &str, path: &Path) -> Result<u64, String> {
    let spec = IntelSpec {
        name: Some(name.to_string()),
        path: path.to_path_buf(),
    };
    // Loaded with the options of the source's snapshot, when it has one, so that the
    // snapshot this load rewrites (a synced source's data: [`crate::intel::snapshot`])
    // serves the sidecar's next reload; only changed files are parsed.
    let store = crate::intel::snapshot::path_for(Some(name), path)
        .and_then(|p| crate::intel::snapshot::options_of(&p))
        .unwrap_or_default();
    let opts = LoadOptions {
        store,
        ..LoadOptions::default()
    };
    count_intel(&[spec], &opts).map_err(|e| format!("{e:#}"))
}

/// What a pass that did not fail did.
enum Applied {
    /// Applied (or nothing changed); the count of the new data when it was counted.
    Done(PassReport, Option<u64>),
    /// Held by the shrink guard: the report and the count it would have left.
    Held(PassReport, u64),
}

/// `message` with the source's credentials, if any slipped in, replaced by `***`, and
/// URL userinfo redacted.
fn redact(message: &str, source: Option<&super::SourceConfig>) -> String {
    let mut m = crate::net::http::redact_text(message);
    if let Some(s) = source {
        let secret = match &s.credentials {
            Credentials::None => None,
            Credentials::ApiKey(k) => Some(k.expose()),
            Credentials::Basic { password, .. } => Some(password.expose()),
        };
        if let Some(v) = secret.filter(|v| !v.is_empty()) {
            m = m.replace(v, "***");
        }
    }
    m
}

/// One pass of `spec` now, with the shrink guard on: see [`run_pass_with`].
pub fn run_pass(spec: &SourceSpec, state_dir: &Path, now: DateTime<Utc>) -> PassOutcome {
    run_pass_with(spec, state_dir, now, PassOptions::default())
}

/// One pass of `spec` now: see the module doc. Never panics on outside data; every
/// failure is in the outcome (and in `status.json`).
pub fn run_pass_with(
    spec: &SourceSpec,
    state_dir: &Path,
    now: DateTime<Utc>,
    options: PassOptions,
) -> PassOutcome {
    let t0 = Instant::now();
    let name = spec.name().to_string();
    let mut status = Status::load(state_dir, &name);
    status.last_attempt = Some(rfc3339(now));
    let last_good = status.indicators;
    let mut resolved = None;
    let result = (|| -> Result<Applied, SyncError> {
        let io = |path: &Path, e: std::io::Error| SyncError::Io {
            source_name: name.clone(),
            path: path.to_path_buf(),
            source: e,
        };
        let dir = source_dir(state_dir, &name);
        let dirs = Dirs::new(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let lock_path = dir.join("lock");
        let Some(_lock) = Lock::take(&lock_path).map_err(|e| io(&lock_path, e))? else {
            return Err(SyncError::Config {
                source_name: name.clone(),
                key: "name".into(),
                message: "another pass of this source is running (its lock is held)".into(),
            });
        };
        stage::recover(&dirs).map_err(|e| io(&dir, e))?;
        remove_stale_temporaries(&dirs.data);
        let source = spec.resolve()?;
        let client = HttpClient::builder()
            .timeout(Duration::from_secs(source.timeout_secs))
            .ca_file(source.ca_file.as_deref())
            .proxy(source.proxy.as_deref())
            .build()
            .map_err(|e| SyncError::Http {
                source_name: name.clone(),
                source: e,
            })?;
        resolved = Some(source.clone());
        let mut cursor = load_cursor(state_dir, &name);
        let before = cursor.clone();
        let mut fetcher = registry::fetcher(source.kind);
        fetcher.check_options(&source)?;
        let resumed = stage::prepare(&dirs).map_err(|e| io(&dirs.staging, e))?;
        remove_stale_temporaries(&dirs.staging);
        if resumed {
            tracing::info!(source = %name, "Resuming from the data a killed or failed pass staged.");
        }
        // A failure leaves `staging/` for the next pass to resume from.
        let report = fetcher.pass(&mut PassContext {
            source: &source,
            client: &client,
            data_dir: &dirs.staging,
            cursor: &mut cursor,
            now,
        })?;
        let save_cursor = |cursor: &serde_json::Value| -> Result<(), SyncError> {
            if *cursor != before {
                let p = dir.join("cursor.json");
                let text =
                    serde_json::to_vec(cursor).map_err(|e| io(&p, std::io::Error::other(e)))?;
                write_atomic(&p, &text).map_err(|e| io(&p, e))?;
            }
            Ok(())
        };
        if !report.changed && !resumed {
            stage::drop_staging(&dirs).map_err(|e| io(&dirs.staging, e))?;
            save_cursor(&cursor)?;
            return Ok(Applied::Done(report, None));
        }
        let after = match try_count_indicators(&name, &dirs.staging) {
            Ok(n) => n,
            Err(e) => {
                stage::drop_staging(&dirs).map_err(|e| io(&dirs.staging, e))?;
                return Err(SyncError::Protocol {
                    source_name: name.clone(),
                    what: format!("the new data cannot be loaded (the last good data stays): {e}"),
                });
            }
        };
        let before_count = last_good.unwrap_or(0);
        if !options.accept_shrink && shrinks_too_much(before_count, after, spec.max_shrink_ratio) {
            stage::hold(&dirs).map_err(|e| io(&dirs.held, e))?;
            return Ok(Applied::Held(report, after));
        }
        stage::swap(&dirs).map_err(|e| io(&dirs.data, e))?;
        save_cursor(&cursor)?;
        stage::drop_old(&dirs).map_err(|e| io(&dirs.old, e))?;
        stage::drop_held(&dirs).map_err(|e| io(&dirs.held, e))?;
        Ok(Applied::Done(report, Some(after)))
    })();
    let duration = t0.elapsed();
    status.duration_secs = duration.as_secs_f64();
    let interval = Duration::from_secs(spec.config.interval_secs);
    let mut held = false;
    let result = match result {
        Ok(Applied::Done(report, count)) => {
            if let Some(n) = count {
                status.indicators = Some(n);
            } else if status.indicators.is_none() {
                status.indicators = count_indicators(&name, &data_dir(state_dir, &name));
            }
            status.last_success = Some(rfc3339(now));
            status.last_error = None;
            status.held = None;
            status.consecutive_failures = 0;
            status.set_figures(&report);
            status.next_run = Some(rfc3339(now + interval));
            Ok(report)
        }
        Ok(Applied::Held(report, after)) => {
            held = true;
            let before = last_good.unwrap_or(0);
            let message = format!(
                "held for review: would shrink from {before} to {after} indicators; \
                 run `tripline intel sync --source {name} --accept-shrink` to accept"
            );
            status.last_error = Some(message.clone());
            status.held = Some(Held {
                indicators_before: before,
                indicators_after: after,
                at: rfc3339(now),
            });
            status.set_figures(&report);
            status.next_run = Some(rfc3339(now + interval));
            Err(message)
        }
        Err(e) => {
            let message = redact(&e.to_string(), resolved.as_ref());
            status.last_error = Some(message.clone());
            status.consecutive_failures = status.consecutive_failures.saturating_add(1);
            status.set_figures(&PassReport::default());
            let wait = retry_delay(status.consecutive_failures, interval, jitter());
            status.next_run = Some(rfc3339(now + wait));
            Err(message)
        }
    };
    if let Err(e) = status.save(state_dir, &name) {
        tracing::error!(source = %name, error = %e, "Cannot write the intel source's status.");
    }
    PassOutcome {
        name,
        result,
        status,
        duration,
        held,
    }
}

/// When the next pass of a source is due, from its saved status (now when unknown or
/// past).
pub fn next_due(status: &Status, now: DateTime<Utc>) -> Duration {
    status
        .next_run
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| (t.with_timezone(&Utc) - now).to_std().ok())
        .unwrap_or(Duration::ZERO)
}

/// What the scheduler tells its owner after each pass.
pub type OnPass = Arc<dyn Fn(&SourceSpec, &PassOutcome) + Send + Sync>;

/// The scheduler of `tripline run`: one thread per remote source, each passing when
/// due (at start when its cache is older than its interval), then every interval, or
/// after the backoff when the pass failed, or at once when woken ([`SyncWaker::wake`]:
/// SIGHUP). [`Scheduler::stop`] wakes them and joins.
pub struct Scheduler {
    stop: Arc<(Mutex<Wakes>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the scheduler's threads wait on: stop, or pass now (a count of wake-ups).
#[derive(Default)]
struct Wakes {
    stopped: bool,
    wakes: u64,
}

/// Makes every source of a [`Scheduler`] pass now (a pass in flight is not
/// interrupted; its source passes again right after it).
#[derive(Clone)]
pub struct SyncWaker(Arc<(Mutex<Wakes>, Condvar)>);

impl SyncWaker {
    pub fn wake(&self) {
        let (lock, cv) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).wakes += 1;
        cv.notify_all();
    }
}

impl Scheduler {
    pub fn start(sources: &[SourceSpec], state_dir: &Path, on_pass: OnPass) -> Scheduler {
        let stop = Arc::new((Mutex::new(Wakes::default()), Condvar::new()));
        let mut threads = Vec::new();
        for spec in sources.iter().filter(|s| s.kind() != SourceKind::File) {
            let spec = spec.clone();
            let state: PathBuf = state_dir.to_path_buf();
            let stop = stop.clone();
            let on_pass = on_pass.clone();
            let name = format!("intel-sync-{}", spec.name());
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let mut wait = next_due(&Status::load(&state, spec.name()), Utc::now());
                let mut seen = 0u64;
                loop {
                    {
                        let (lock, cv) = &*stop;
                        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                        let deadline = Instant::now() + wait;
                        while !st.stopped && st.wakes == seen {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            st = cv
                                .wait_timeout(st, left)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                        if st.stopped {
                            return;
                        }
                        seen = st.wakes;
                    }
                    let outcome = run_pass(&spec, &state, Utc::now());
                    on_pass(&spec, &outcome);
                    wait = next_due(&outcome.status, Utc::now());
                }
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "Cannot start an intel sync thread."),
            }
        }
        Scheduler { stop, threads }
    }

    /// A handle that makes every source pass now.
    pub fn waker(&self) -> SyncWaker {
        SyncWaker(self.stop.clone())
    }

    /// Stops the threads (a pass in flight finishes first) and waits for them.
    pub fn stop(self) {
        let (lock, cv) = &*self.stop;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
        cv.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A cursor as `intel status` shows it: fields whose JSON is longer than 256 bytes
/// (a feed's per-event map) replaced by their number of entries.
pub fn cursor_summary(cursor: &Value) -> Value {
    match cursor {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let big = v.to_string().len() > 256;
                    let shown = match v {
                        Value::Object(o) if big => serde_json::json!(o.len()),
                        Value::Array(a) if big => serde_json::json!(a.len()),
                        v => v.clone(),
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        v => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30s_to_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(retry_delay(1, hour, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(2, hour, 0.0), Duration::from_secs(60));
        assert_eq!(retry_delay(5, hour, 0.0), Duration::from_secs(480));
        assert_eq!(retry_delay(8, hour, 0.0), hour);
        assert_eq!(retry_delay(u32::MAX, hour, 0.0), hour);
        assert_eq!(
            retry_delay(1, Duration::from_secs(10), 0.0),
            Duration::from_secs(10)
        );
        assert_eq!(retry_delay(1, hour, 0.1), Duration::from_secs(33));
        for _ in 0..100 {
            assert!((-0.1..=0.1).contains(&jitter()));
        }
    }

    #[test]
    fn next_due_reads_the_status() {
        let now = Utc::now();
        let mut s = Status::default();
        assert_eq!(next_due(&s, now), Duration::ZERO);
        s.next_run = Some(rfc3339(now + Duration::from_secs(100)));
        let d = next_due(&s, now);
        assert!(
            d <= Duration::from_secs(100) && d >= Duration::from_secs(98),
            "{d:?}"
        );
        s.next_run = Some(rfc3339(now - Duration::from_secs(100)));
        assert_eq!(next_due(&s, now), Duration::ZERO);
    }

    #[test]
    fn secrets_are_scrubbed_from_errors() {
        let mut c = super::super::SourceConfig {
            name: "s".into(),
            kind: SourceKind::Csv,
            url: "https://x.example/".into(),
            collection: None,
            credentials: Credentials::ApiKey(crate::net::Secret::new("hunter2")),
            interval_secs: 3600,
            timeout_secs: 30,
            ca_file: None,
            proxy: None,
            options: toml::Table::new(),
        };
        assert_eq!(
            redact("got hunter2 back from http://u:p@h/x", Some(&c)),
            "got *** back from http://***@h/x"
        );
        c.credentials = Credentials::None;
        assert_eq!(redact("plain", Some(&c)), "plain");
    }

    #[test]
    fn big_cursor_fields_are_summarised() {
        let events: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("uuid-{i}"), serde_json::json!("1700000000")))
            .collect();
        let c = serde_json::json!({"etag": "\"abc\"", "events": events});
        assert_eq!(
            cursor_summary(&c),
            serde_json::json!({"etag": "\"abc\"", "events": 100})
        );
    }
}
