//! The sidecar's index: built at start and on every reload with the one index-building
//! function ([`crate::index::build::build_index`]), published to the metrics, swapped
//! in whole (`ArcSwap`: workers load it per batch and never lock), refused when a
//! reload would shrink the intel too much or found bad intel, and reloaded on SIGHUP
//! or when watched intel changes.
//!
//! Cost: a build reads and compiles all intel on a blocking thread (about 0.5 s per
//! million indicators); matching goes on with the old index meanwhile.
//!
//! # Live retro matching (`[retro] enabled`)
//! After a reload swapped a new index in, [`retro_after_reload`] runs on a blocking
//! thread (matching never waits for it): it takes the indicators new in the new index
//! ([`matching::new_indicators`]: new values, and new provenances of known values),
//! asks the output thread to seal the observation store once every batch scanned
//! with the old index is recorded (so nothing falls between the old index and the
//! store; the open in-memory slices are sealed rather than probed), opens the store,
//! probes the new indicators, and hands the retro alerts (shaped as `tripline
//! retro`'s, `tripline.retro_trigger` set, the load time standing in for a
//! publication time the intel lacks) and their observations back to the output
//! thread, which writes them with the live alerts and correlates them. At start,
//! the indicators new since the last run of an earlier process are probed the same
//! way (trigger `start`): a run keeps the keys of the index it probed
//! (`<state>/retro-probed.bin`, [`matching::write_probed`]) once its alerts are
//! committed, so intel that arrived while the sidecar was down, or during a run that
//! a kill -9 cut short, is probed at the next start; the first start ever probes all
//! the intel. Runs go one at a time, in the order of their indexes. Costs: the old
//! index is held until the run ends; the store is read into memory for the run (its
//! size on disk); one probe per new indicator; 8 bytes per provenance kept on disk. A line read
//! in the moment of a swap may alert both live and retro (never neither).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::config::Plan;
use crate::index::build::{build_index, IntelPlan};
use crate::index::Index;
use crate::intel::load::LoadOptions;
use crate::intel::StoreOptions;
use crate::retro::matching::{self, RuleShape, RunOptions};
use crate::sink::metrics::Metrics;

/// The live index and how it was built.
pub struct Live {
    pub index: ArcSwap<Index>,
    pub metrics: Arc<Metrics>,
    /// Batches handed to the scan workers so far (the pipeline's dispatcher counts
    /// each before a worker can load the index for it).
    pub dispatched: std::sync::atomic::AtomicU64,
}

/// The live index as the outbox's send-time policy check reads it: the provenances
/// the intel holds for an indicator now (after every reload).
impl crate::share::outbox::IntelView for Live {
    fn provenances(
        &self,
        indicator: &str,
        kind: crate::intel::Kind,
    ) -> Option<Vec<crate::correlate::Provenance>> {
        self.index.load().provenances(indicator, kind)
    }

    fn lapsed(
        &self,
        indicator: &str,
        kind: crate::intel::Kind,
        provenances: &[crate::correlate::Provenance],
    ) -> Option<crate::share::policy::DropReason> {
        self.index.load().lapsed(indicator, kind, provenances)
    }
}

/// What the configuration says to load: `[intel] paths`, then each
/// `[[intel.sources]]` (a file source's path; the cache of the others where it holds
/// data). Looks at the cache directories, so a reload computes it again.
pub fn intel_plan(plan: &Plan) -> IntelPlan {
    let intel = &plan.config.intel;
    let mut specs = plan.intel.clone();
    specs.extend(crate::intel::sync::spec::cache_specs(
        &plan.config.state.dir,
        &plan.intel_sources,
    ));
    IntelPlan {
        specs,
        load: LoadOptions {
            store: StoreOptions {
                include_non_ids: intel.include_non_ids,
                keep_excluded: false,
                broad: crate::intel::broad::BroadPolicy {
                    allow: intel.allow_broad,
                    // In range: validated by the plan (config::bounds).
                    min_prefix_v4: u8::try_from(intel.min_prefix_v4).unwrap_or(32),
                    min_prefix_v6: u8::try_from(intel.min_prefix_v6).unwrap_or(128),
                },
            },
            strict: false,
            csv_column: Default::default(),
        },
        warninglists: intel.warninglists.clone(),
        no_default_warninglists: intel.no_default_warninglists,
        warninglist_mode: intel.warninglist_mode.into(),
        match_options: plan.config.matching.options(),
        expiry: intel.expiry_policy(),
        drop_lapsed: true,
    }
}

/// Matchable indicators per (kind name, source name): the `indicators_loaded` gauge.
pub type IndicatorCounts = Vec<((&'static str, String), i64)>;

/// An index built for the sidecar, with what the logs and metrics need.
pub struct Built {
    pub index: Index,
    /// Intel that could not be loaded, one sentence each.
    pub problems: Vec<String>,
    pub counts: IndicatorCounts,
}

/// Builds the index and counts it for the metrics, on the calling (blocking) thread.
pub fn build(plan: &IntelPlan) -> Result<Built> {
    let built = build_index(plan)?;
    for line in crate::sink::report::intel_loss_lines(&built.index) {
        tracing::warn!(summary = %line, "Intel records skipped or refused at load.");
    }
    let counts = indicator_counts(&built.index);
    Ok(Built {
        index: built.index,
        problems: built.problems,
        counts,
    })
}

/// Counts an index's indicators for the metrics: one pass over every indicator, so it
/// runs on a blocking thread with the build.
fn indicator_counts(index: &Index) -> IndicatorCounts {
    index
        .counts_by_kind_and_source()
        .into_iter()
        .map(|((k, s), n)| {
            let name = index
                .sources
                .get(s as usize)
                .map_or("?", |x| x.name.as_str());
            ((k.name(), name.to_string()), n as i64)
        })
        .collect()
}

/// Publishes an index's figures to the metrics.
pub fn publish_index(metrics: &Metrics, index: &Index, counts: &IndicatorCounts) {
    metrics.indicators_loaded.reset();
    for ((k, s), n) in counts {
        metrics
            .indicators_loaded
            .with_label_values(&[k, s.as_str()])
            .set(*n);
    }
    metrics.indicators_refused.reset();
    for r in &index.refused {
        let source = index
            .sources
            .get(r.source as usize)
            .map_or("?", |s| s.name.as_str());
        metrics
            .indicators_refused
            .with_label_values(&[r.reason, source])
            .inc();
    }
    metrics.intel_expired.reset();
    for ((source, reason), n) in index.lapsed_counts() {
        metrics
            .intel_expired
            .with_label_values(&[source.as_str(), reason])
            .set(n as i64);
    }
    metrics.index_build_seconds.set(index.stats.build_secs);
    metrics
        .index_memory_bytes
        .set(index.stats.memory_bytes as i64);
    metrics
        .last_reload_timestamp
        .set(Utc::now().timestamp_millis() as f64 / 1000.0);
}

/// Why a reload was refused.
fn check_shrink(old: usize, new: usize, max_ratio: f64) -> Result<(), String> {
    if old == 0 {
        return Ok(());
    }
    let shrink = 1.0 - new as f64 / old as f64;
    if shrink > max_ratio {
        return Err(format!(
            "the new intel has {new} indicators, {:.0}% fewer than the {old} loaded (limit {:.0}%)",
            shrink * 100.0,
            max_ratio * 100.0
        ));
    }
    Ok(())
}

/// What a live retro run needs (`[retro] enabled`).
#[derive(Clone, Debug)]
pub struct RetroLive {
    /// The observation store (`<state>/retro/`).
    pub store_dir: PathBuf,
    /// To the pipeline's output thread.
    pub control: crossbeam_channel::Sender<super::pipeline::RetroControl>,
    /// The rules' shape; `None` without rules (no observations are built).
    pub shape: Option<RuleShape>,
    /// False positives reported with `tripline feedback`, applied to retro alerts as
    /// to live ones.
    pub suppressions: Option<(
        Arc<crate::share::SuppressionList>,
        crate::share::SuppressedAlerts,
    )>,
    /// Where the keys of the intel probed so far are kept
    /// ([`matching::write_probed`]): written once a run's alerts are committed, read
    /// at start to probe what is new since.
    pub probed_file: PathBuf,
    /// Runs go one at a time, in the order of the indexes they probe: the next
    /// generation's turn, and the next generation to hand out.
    pub order: Arc<(std::sync::Mutex<u64>, std::sync::Condvar)>,
    pub generations: Arc<std::sync::atomic::AtomicU64>,
    /// Set by the output thread when it stops: a request it had not taken is never
    /// answered (a finite input can end while a run waits).
    pub output_gone: Arc<std::sync::atomic::AtomicBool>,
    /// The store's segments when this process started: the start run probes those
    /// only (what earlier runs recorded), never what this run has already matched.
    pub start_segments: Arc<std::collections::HashSet<PathBuf>>,
}

/// Waits for the output thread's answer on `rx`, at most [`RETRO_SEAL_WAIT`]; `None`
/// when it stopped (or dropped the request) without answering.
fn answer(retro: &RetroLive, rx: &std::sync::mpsc::Receiver<()>) -> Option<bool> {
    let deadline = std::time::Instant::now() + RETRO_SEAL_WAIT;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => return Some(true),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if retro.output_gone.load(std::sync::atomic::Ordering::Acquire) {
                    // It may have answered just before it went.
                    return rx.try_recv().is_ok().then_some(true);
                }
                if std::time::Instant::now() >= deadline {
                    return Some(false);
                }
            }
        }
    }
}

impl RetroLive {
    /// The next run's place in line.
    pub fn generation(&self) -> u64 {
        self.generations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Holds a run's turn; the next generation's run may go when it is dropped.
struct Turn<'a>(&'a (std::sync::Mutex<u64>, std::sync::Condvar), u64);

impl<'a> Turn<'a> {
    fn wait(order: &'a (std::sync::Mutex<u64>, std::sync::Condvar), generation: u64) -> Turn<'a> {
        let (lock, cv) = order;
        let mut turn = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *turn < generation {
            turn = cv.wait(turn).unwrap_or_else(|p| p.into_inner());
        }
        Turn(order, generation)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let (lock, cv) = self.0;
        let mut turn = lock.lock().unwrap_or_else(|p| p.into_inner());
        *turn = (*turn).max(self.1 + 1);
        cv.notify_all();
    }
}

/// Keeps the keys of what `index` holds as probed (see [`RetroLive::probed_file`]).
fn persist_probed(retro: &RetroLive, index: &Index) {
    let keys = matching::probed_keys(index);
    if let Err(e) = matching::write_probed(&retro.probed_file, &keys) {
        tracing::warn!(path = %retro.probed_file.display(), error = %e, "Cannot keep what retro probed; the next start probes it again.");
    }
}

/// How long a retro run waits for the store to be sealed (the output thread may be
/// held by an output that cannot be written); past it, it probes what is sealed.
pub const RETRO_SEAL_WAIT: Duration = Duration::from_secs(600);

/// The `trigger` label of a reload's retro run.
pub fn retro_trigger(why: &str) -> &'static str {
    if why == "intel synced" {
        "sync"
    } else {
        "reload"
    }
}

/// Probes the indicators of `new` that `old` lacked (with `old` `None`, at start: that
/// the last run of an earlier process did not probe, per [`RetroLive::probed_file`];
/// everything when there is no such file) against the store and hands the retro
/// alerts and observations to the output thread (see the module docs); once they are
/// committed, keeps `new`'s keys as probed, so a kill -9 before that probes them
/// again at the next start (duplicates are recognised by the outbox; nothing is
/// lost). `upto`: the batches dispatched when `new` was swapped in; `generation`:
/// its place in line ([`RetroLive::generation`]). Runs on a blocking thread.
pub fn retro_after_reload(
    old: Option<&Index>,
    new: &Index,
    retro: &RetroLive,
    trigger: &'static str,
    (upto, generation): (u64, u64),
    metrics: &Metrics,
) {
    use super::pipeline::RetroControl;
    let _turn = Turn::wait(&retro.order, generation);
    let t0 = std::time::Instant::now();
    let targets = match old {
        Some(old) => matching::new_indicators(old, new),
        None => match matching::read_probed(&retro.probed_file) {
            Ok(Some(keys)) => matching::new_since(&keys, new),
            Ok(None) => matching::all_targets(new),
            Err(e) => {
                tracing::warn!(error = %e, "What retro probed before cannot be read; probing all the intel.");
                matching::all_targets(new)
            }
        },
    };
    if targets.is_empty() {
        tracing::debug!(
            trigger,
            "No new indicators to probe the observation store with."
        );
        if old.is_none() {
            // A start's run is counted even when nothing is new: it did look.
            metrics.retro_runs.with_label_values(&[trigger]).inc();
        }
        persist_probed(retro, new);
        return;
    }
    // A reload's run: what the old index scanned must be in the store first. The
    // start run probes what earlier processes sealed, as it was at start: this
    // process's lines were matched live with this very intel.
    let open = || match old {
        Some(_) => crate::retro::Store::open(&retro.store_dir),
        None => crate::retro::Store::open_only(&retro.store_dir, &retro.start_segments),
    };
    if old.is_some() {
        let (done, sealed) = std::sync::mpsc::channel();
        if retro
            .control
            .send(RetroControl::Seal { upto, done })
            .is_err()
        {
            return;
        }
        match answer(retro, &sealed) {
            Some(true) => {}
            None => return,
            Some(false) => {
                tracing::warn!(
                    "The observation store was not sealed in time; probing what is sealed."
                )
            }
        }
    }
    // A periodic seal may be compacting a day meanwhile: try again.
    let mut store = open();
    for _ in 0..3 {
        if store.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        store = open();
    }
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the observation store; the new intel was not probed.");
            return;
        }
    };
    let opts = RunOptions {
        loaded_at: Some(Utc::now().timestamp()),
        trigger: Some(trigger),
    };
    let mut run = matching::probe(new, &store, None, targets, &opts);
    if let Some((list, mode)) = &retro.suppressions {
        matching::apply_suppressions(&mut run.alerts, new, list, *mode);
    }
    metrics.retro_runs.with_label_values(&[trigger]).inc();
    metrics.retro_probes.inc_by(run.stats.probed);
    metrics.retro_hits.inc_by(run.stats.hits);
    let mut lines = Vec::with_capacity(run.alerts.len());
    let mut observations = Vec::new();
    for a in &run.alerts {
        for (_, _, lag) in &a.indicators {
            if let Some(lag) = lag {
                metrics.retro_intel_lag.observe((*lag).max(0) as f64);
            }
        }
        match serde_json::to_vec(&a.doc) {
            Ok(l) => lines.push(l),
            Err(e) => tracing::error!(error = %e, "Cannot render a retro alert."),
        }
        if let Some(shape) = &retro.shape {
            observations.extend(matching::observations(new, a, shape));
        }
    }
    tracing::info!(
        trigger,
        probed = run.stats.probed,
        hits = run.stats.hits,
        alerts = run.stats.alerts,
        secs = format!("{:.3}", t0.elapsed().as_secs_f64()),
        "Retro: new intel probed against the observation store."
    );
    if lines.is_empty() {
        persist_probed(retro, new);
        return;
    }
    let (done, committed) = std::sync::mpsc::channel();
    if retro
        .control
        .send(RetroControl::Deliver {
            lines,
            observations,
            done: Some(done),
        })
        .is_err()
    {
        tracing::warn!(
            "Stopped before the retro alerts could be written; the next start probes them again."
        );
        return;
    }
    match answer(retro, &committed) {
        Some(true) => persist_probed(retro, new),
        _ => tracing::warn!(
            "The retro alerts were not committed in time; the next start probes them again."
        ),
    }
}

/// Rebuilds the index off the hot path and swaps it in, unless the build failed or
/// would shrink the intel too much; with `retro`, then probes the new indicators
/// ([`retro_after_reload`], in the background). Returns what happened, for logs and
/// tests.
pub async fn reload(
    live: &Live,
    plan: &IntelPlan,
    max_shrink_ratio: f64,
    retro: Option<(&RetroLive, &'static str)>,
) -> Result<usize, String> {
    let p = plan.clone();
    let built = tokio::task::spawn_blocking(move || build(&p))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")));
    let built = match built {
        Ok(x) => x,
        Err(e) => {
            live.metrics.reloads.with_label_values(&["failed"]).inc();
            tracing::error!(error = %e, "Reload failed; the old index stays.");
            return Err(e);
        }
    };
    if !built.problems.is_empty() {
        live.metrics.reloads.with_label_values(&["failed"]).inc();
        let e = built.problems.join("; ");
        tracing::error!(error = %e, "Reload found bad intel; the old index stays.");
        return Err(e);
    }
    let old = live.index.load().len();
    if let Err(e) = check_shrink(old, built.index.len(), max_shrink_ratio) {
        live.metrics.reloads.with_label_values(&["refused"]).inc();
        tracing::error!(error = %e, "Reload refused; the old index stays.");
        return Err(e);
    }
    let n = built.index.len();
    publish_index(&live.metrics, &built.index, &built.counts);
    let new = Arc::new(built.index);
    let old = live.index.swap(new.clone());
    live.metrics.reloads.with_label_values(&["ok"]).inc();
    if let Some((r, trigger)) = retro {
        // Read after the swap: every batch numbered from here on is scanned with `new`.
        let upto = live.dispatched.load(std::sync::atomic::Ordering::SeqCst);
        let generation = r.generation();
        let (r, metrics) = (r.clone(), live.metrics.clone());
        tokio::task::spawn_blocking(move || {
            retro_after_reload(Some(&old), &new, &r, trigger, (upto, generation), &metrics)
        });
    } else {
        drop(old);
    }
    tracing::info!(indicators = n, "Reloaded intel.");
    Ok(n)
}

/// The paths a reload depends on: intel specs and extra warninglists.
fn watched_paths(plan: &IntelPlan) -> Vec<PathBuf> {
    plan.specs
        .iter()
        .map(|s| s.path.clone())
        .chain(plan.warninglists.iter().cloned())
        .collect()
}

/// Watches intel paths and warninglists (notify); each change asks for a reload.
///
/// A directory is watched recursively. A file is watched through its directory (and
/// events are filtered to its name), so the watch survives the file being replaced by
/// a rename, deleted and created again, or rewritten by `sed -i` or an editor. A path
/// that does not exist yet is watched through its nearest existing ancestor. Watches
/// can still be lost (an ancestor replaced); [`poll_intel`] covers that.
pub fn watch_intel(
    plan: &IntelPlan,
    reload: mpsc::Sender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let paths = watched_paths(plan);
    let wanted = paths.clone();
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if ev.kind.is_access() {
                return;
            }
            // Only events on (or under, or above) an intel path.
            let relevant = ev
                .paths
                .iter()
                .any(|p| wanted.iter().any(|w| p.starts_with(w) || w.starts_with(p)));
            if relevant {
                let _ = reload.try_send("intel changed");
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch intel; it is polled instead (and SIGHUP reloads).");
            return None;
        }
    };
    let mut watched = std::collections::BTreeSet::new();
    for p in &paths {
        let (target, mode) = if p.is_dir() {
            (p.clone(), RecursiveMode::Recursive)
        } else {
            // A file, or a path not there yet: its nearest existing ancestor.
            let mut dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            while !dir.as_os_str().is_empty() && !dir.is_dir() {
                dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            if dir.as_os_str().is_empty() {
                dir = PathBuf::from(".");
            }
            (dir, RecursiveMode::NonRecursive)
        };
        if !watched.insert((target.clone(), mode == RecursiveMode::Recursive)) {
            continue;
        }
        if let Err(e) = watcher.watch(&target, mode) {
            tracing::warn!(path = %target.display(), error = %e, "Cannot watch an intel path; it is polled instead.");
        }
    }
    Some(watcher)
}

/// What identifies the contents of the intel paths: for every file (directories
/// walked, at most [`POLL_MAX_FILES`]), its inode, size and modification time; a
/// missing path is its own entry.
fn signature(paths: &[PathBuf]) -> Vec<(PathBuf, u64, u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if out.len() >= POLL_MAX_FILES {
            break;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
                }
            }
            Ok(m) => out.push((
                p,
                m.ino(),
                m.size(),
                i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            )),
            Err(_) => out.push((p, 0, 0, 0)),
        }
    }
    out.sort();
    out
}

/// Files looked at per poll at most.
pub const POLL_MAX_FILES: usize = 10_000;

/// Asks for a reload whenever the intel paths' [`signature`] changes: the fallback for
/// watches that cannot be set or were lost. Runs until the reload channel closes.
pub async fn poll_intel(plan: IntelPlan, reload: mpsc::Sender<&'static str>, every: Duration) {
    let paths = watched_paths(&plan);
    let p = paths.clone();
    let mut last = tokio::task::spawn_blocking(move || signature(&p))
        .await
        .unwrap_or_default();
    loop {
        tokio::time::sleep(every).await;
        let p = paths.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || signature(&p)).await else {
            return;
        };
        if now != last {
            last = now;
            if reload.send("intel changed (poll)").await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_limit() {
        assert!(check_shrink(0, 0, 0.5).is_ok());
        assert!(check_shrink(100, 60, 0.5).is_ok());
        assert!(check_shrink(100, 40, 0.5)
            .unwrap_err()
            .contains("60% fewer"));
        assert!(check_shrink(100, 200, 0.0).is_ok());
    }

    /// The refused indicators of a build reach `tripline_indicators_refused`, by
    /// reason and source, and the next build replaces them.
    #[test]
    fn refused_indicators_are_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("trail.txt");
        std::fs::write(
            &list,
            "org.ru
co.cl
0.0.0.0/0
evil.example
",
        )
        .expect("write");
        let plan = IntelPlan {
            specs: vec![list.to_string_lossy().parse().expect("spec")],
            load: LoadOptions::default(),
            warninglists: Vec::new(),
            no_default_warninglists: true,
            warninglist_mode: Default::default(),
            match_options: Default::default(),
            expiry: Default::default(),
            drop_lapsed: true,
        };
        let built = build(&plan).expect("builds");
        let metrics = Metrics::new();
        publish_index(&metrics, &built.index, &built.counts);
        let get = |reason: &str| {
            metrics
                .indicators_refused
                .with_label_values(&[reason, "trail"])
                .get()
        };
        assert_eq!((get("public_suffix"), get("zero_prefix")), (2, 1));
        std::fs::write(
            &list,
            "evil.example
",
        )
        .expect("write");
        let built = build(&plan).expect("builds");
        publish_index(&metrics, &built.index, &built.counts);
        assert_eq!(get("public_suffix"), 0);
    }
}
