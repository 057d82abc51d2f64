//! `tripline run`: the sidecar — a driver of the one scan and emit path.
//!
//! ```text
//! sources (tokio tasks) ──Batch──► bounded queue ──► pipeline (scan workers, in-order emit)
//!        ▲ acks after alerts are written                 │ observations
//!        └───────────────────────────────────────────────┤ rules (event time) ──► outbox
//! intel ──build (blocking thread)──► ArcSwap<Index> ◄── reload (SIGHUP, watched files)
//! ```
//!
//! This file owns the runtime: it takes a validated [`Plan`], builds the first index
//! ([`intel`]), starts the sources ([`sources`]), the pipeline ([`pipeline`]), the
//! sightings delivery loop and the reload and signal tasks, and logs one line when
//! ready and one when stopped. One shutdown signal (SIGINT/SIGTERM, or every source
//! finished): sources stop reading, queues drain, outputs flush, checkpoints and the
//! rules' state are written.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::{mpsc, watch};

mod confirm;
pub use confirm::retro_shape;
pub mod intel;
mod journal;
pub mod pipeline;
mod sources;
mod sync;

use crate::config::Plan;
use crate::emit::SourceInfo;
use crate::sink::health::Health;
use crate::sink::metrics::{self, Metrics};
use crate::sink::output::AlertOutput;
use crate::source::Batch;
use intel::Live;

/// How `tripline run` was asked to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The validated configuration.
    pub plan: Plan,
    /// Read stdin as the only source (pipelines); the run ends at end of input.
    pub stdin: bool,
    /// Overrides `metrics.address` (and enables the listener).
    pub metrics_addr: Option<SocketAddr>,
}

/// Entry point: builds the runtime and runs until shutdown.
pub fn run(opts: RunOptions) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tripline-io")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_async(opts))
}

async fn run_async(opts: RunOptions) -> Result<ExitCode> {
    let plan = if opts.stdin {
        opts.plan.clone().stdin_only()
    } else {
        opts.plan.clone()
    };
    let config = &plan.config;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    health.set("intel", Some("no index loaded yet".into()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown_tx = Arc::new(shutdown_tx);

    let mut metrics_at = None;
    if let Some(addr) = opts.metrics_addr.or(plan.metrics_addr) {
        let (bound, _) = metrics::serve(addr, metrics.clone(), health.clone(), shutdown_rx.clone())
            .await
            .with_context(|| format!("binding the metrics listener on {addr}"))?;
        metrics_at = Some(bound);
    }

    // Reload triggers: SIGHUP, watched intel, and a poll of the intel files.
    let (reload_tx, mut reload_rx) = mpsc::channel::<&'static str>(4);
    let intel_plan = intel::intel_plan(&plan);
    let _watcher = if config.intel.watch {
        intel::watch_intel(&intel_plan, reload_tx.clone())
    } else {
        None
    };
    let poller = config.intel.watch.then(|| {
        tokio::spawn(intel::poll_intel(
            intel_plan.clone(),
            reload_tx.clone(),
            INTEL_POLL,
        ))
    });
    // SIGHUP also makes every remote intel source pass now, once the sync scheduler
    // runs (set below).
    let sync_waker: Arc<std::sync::OnceLock<crate::intel::sync::runner::SyncWaker>> =
        Arc::new(std::sync::OnceLock::new());
    let signals = tokio::spawn(signal_loop(
        shutdown_tx.clone(),
        reload_tx.clone(),
        sync_waker.clone(),
    ));

    // No reading without intel: the sources start once every configured intel path
    // has loaded. Until then nothing is read (files keep their place, syslog is not
    // received) and /healthz says why.
    let t0 = Instant::now();
    let mut shutdown = shutdown_rx.clone();
    let built = loop {
        let p = intel_plan.clone();
        let why = match tokio::task::spawn_blocking(move || intel::build(&p)).await {
            Ok(Ok(b)) if b.problems.is_empty() => break b,
            Ok(Ok(b)) => b.problems.join("; "),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) => e.to_string(),
        };
        metrics.reloads.with_label_values(&["failed"]).inc();
        tracing::error!(
            error = %why,
            "Intel not loaded; no log is read until it is (fix it: the change is picked up, or send SIGHUP)."
        );
        health.set("intel", Some(format!("no index loaded: {why}")));
        tokio::select! {
            got = reload_rx.recv() => {
                if got.is_none() {
                    return Ok(ExitCode::SUCCESS);
                }
                settle(&mut reload_rx, plan.reload_debounce).await;
            }
            _ = shutdown.changed() => {
                tracing::info!("Stopped before the intel loaded; nothing was read.");
                return Ok(ExitCode::SUCCESS);
            }
        }
    };
    intel::publish_index(&metrics, &built.index, &built.counts);
    metrics.reloads.with_label_values(&["ok"]).inc();
    let indicators = built.index.len();
    let index_secs = t0.elapsed().as_secs_f64();
    let live = Arc::new(Live {
        index: ArcSwap::from_pointee(built.index),
        metrics: metrics.clone(),
        dispatched: Default::default(),
    });

    let (tx, rx) = mpsc::channel::<Batch>(plan.queue_batches);
    let mut source_tasks = tokio::task::JoinSet::new();
    for (i, s) in plan.sources.iter().enumerate() {
        let task = sources::start_planned(
            i,
            s,
            &config.state.dir,
            tx.clone(),
            metrics.clone(),
            health.clone(),
            shutdown_rx.clone(),
        )
        .await
        .with_context(|| format!("cannot start source {:?}", s.name))?;
        let name = s.name.clone();
        source_tasks.spawn(async move {
            let res = match task.await {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("its task failed: {e}")),
            };
            (name, res)
        });
    }
    drop(tx);

    let alert_paths: Vec<String> = plan.alerts.iter().map(|a| a.as_config_str()).collect();
    let output = AlertOutput::open(
        &alert_paths,
        config.alerts.max_file_bytes,
        config.alerts.keep_files,
        plan.throttle,
    )
    .context("opening alert outputs")?;
    let outbox = confirm::open_outbox(config, &metrics).context("opening the sightings outbox")?;
    // False positives reported with `tripline feedback` (by this or another process).
    let suppressions = Arc::new(
        crate::share::SuppressionList::open(&config.state.dir)
            .context("opening the suppression list")?,
    );
    {
        let list = suppressions.clone();
        metrics.on_scrape(move |m| {
            metrics::set_counter(&m.observations_suppressed, list.observed());
        });
    }
    if let Some(o) = &outbox {
        // The policy is asked again before every delivery, against the intel as it
        // stands then.
        o.set_intel(live.clone());
    }
    let correlation =
        confirm::Correlation::open(config, outbox.clone()).context("loading rules")?;
    let rules = correlation.as_ref().map_or(0, |c| c.rules());
    // Live retro matching: reloads probe their new indicators against the store.
    let (retro_tx, retro_rx) = crossbeam_channel::bounded::<pipeline::RetroControl>(16);
    let output_gone = Arc::new(AtomicBool::new(false));
    let retro_live = config.retro.enabled.then(|| intel::RetroLive {
        store_dir: crate::config::RetroConfig::dir(&config.state.dir),
        control: retro_tx,
        shape: correlation.as_ref().map(|c| c.retro_shape()),
        suppressions: Some((suppressions.clone(), config.feedback.suppressed_alerts)),
        probed_file: config.state.dir.join(RETRO_PROBED_FILE),
        order: Arc::new((std::sync::Mutex::new(0), std::sync::Condvar::new())),
        generations: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        output_gone: output_gone.clone(),
        // Listed before any line is read (and so before this run seals anything).
        start_segments: Arc::new(
            crate::retro::Store::segment_paths(&crate::config::RetroConfig::dir(&config.state.dir))
                .unwrap_or_default(),
        ),
    });
    let infos = plan
        .sources
        .iter()
        .map(|s| SourceInfo {
            name: s.name.clone(),
            named: true,
            decode: crate::decode::DecodeOptions {
                zone: s.zone,
                ..Default::default()
            },
        })
        .collect();
    // Set at shutdown: a pipeline stalled on a failing output stops retrying.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let mut rx = shutdown_rx.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                if *rx.borrow() {
                    stop.store(true, Ordering::Release);
                    return;
                }
            }
        });
    }
    let pipeline = pipeline::start(
        rx,
        live.clone(),
        plan.workers,
        pipeline::OutputParts {
            output,
            sources: infos,
            correlation,
            finite: opts.stdin,
            stop,
            health: health.clone(),
            on_fatal: {
                let tx = shutdown_tx.clone();
                Box::new(move || {
                    let _ = tx.send(true);
                })
            },
            suppressions: Some(suppressions),
            suppressed_alerts: config.feedback.suppressed_alerts,
            retro: config.retro.enabled.then(|| pipeline::RetroParts {
                dir: crate::config::RetroConfig::dir(&config.state.dir),
                retention_days: config.retro.retention_days.clamp(1, 3_650) as u32,
                max_bytes: config.retro.max_bytes,
                control: Some(retro_rx),
                output_gone,
            }),
        },
    );
    // Intel new since the last live retro run of an earlier process (all of it the
    // first time, or when that record is lost): probed in the background, first in
    // line before any reload's run.
    if let Some(r) = &retro_live {
        let generation = r.generation();
        let (r, index, metrics) = (r.clone(), live.index.load_full(), metrics.clone());
        tokio::task::spawn_blocking(move || {
            intel::retro_after_reload(None, &index, &r, "start", (0, generation), &metrics)
        });
    }
    // Deliver due sightings every few seconds, off the async threads: one worker per
    // destination, so a slow or failing one never delays the others.
    let delivery: Option<Vec<tokio::task::JoinHandle<()>>> = outbox.clone().map(|outbox| {
        let names: Vec<String> = outbox
            .config()
            .destinations
            .iter()
            .map(|d| d.name.clone())
            .collect();
        names
            .into_iter()
            .map(|name| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        every.tick().await;
                        let o = outbox.clone();
                        let n = name.clone();
                        let pass = tokio::task::spawn_blocking(move || {
                            o.deliver_destination(&n, Utc::now(), false)
                        });
                        match pass.await {
                            Ok(Ok(r)) if r.delivered + r.failed + r.retrying > 0 => {
                                tracing::info!(
                                    destination = %name,
                                    delivered = r.delivered,
                                    failed = r.failed,
                                    retrying = r.retrying,
                                    "Sightings delivery pass."
                                );
                            }
                            Ok(Err(e)) => {
                                tracing::error!(destination = %name, error = %e, "Sightings delivery failed.")
                            }
                            _ => {}
                        }
                    }
                })
            })
            .collect()
    });

    // Reload on SIGHUP, on changes to the intel, and after a sync pass changed a
    // source's cache (the plan is computed again: a cache may hold data now).
    let reload_task = {
        let live = live.clone();
        let debounce = plan.reload_debounce;
        let max_shrink = config.intel.max_shrink_ratio;
        let plan = plan.clone();
        tokio::spawn(async move {
            while let Some(why) = reload_rx.recv().await {
                settle(&mut reload_rx, debounce).await;
                tracing::info!(trigger = why, "Reloading intel.");
                let intel_plan = intel::intel_plan(&plan);
                let retro = retro_live.as_ref().map(|r| (r, intel::retro_trigger(why)));
                let _ = intel::reload(&live, &intel_plan, max_shrink, retro).await;
            }
        })
    };
    // Intel sources are synced in the background, from the cache loaded above.
    let syncing = sync::start(&plan, metrics.clone(), reload_tx.clone());
    if let Some(s) = &syncing {
        let _ = sync_waker.set(s.waker());
    }

    health.set("intel", None);
    metrics.ready.set(1);
    let names: Vec<&str> = plan.sources.iter().map(|s| s.name.as_str()).collect();
    tracing::info!(
        indicators,
        index_secs = format!("{index_secs:.2}"),
        sources = %names.join(", "),
        alerts = %alert_paths.join(", "),
        rules,
        destinations = config.share.destinations.len(),
        metrics = %metrics_at.map_or_else(|| "off".to_string(), |a| format!("http://{a}/metrics")),
        "Ready."
    );

    // Runs until every source has finished (stdin at end of input; the others at
    // shutdown) and the pipeline has drained.
    let mut failed = Vec::new();
    while let Some(done) = source_tasks.join_next().await {
        let (name, res) = match done {
            Ok(x) => x,
            Err(e) => ("?".to_string(), Err(anyhow::anyhow!("{e}"))),
        };
        if let Err(e) = res {
            tracing::error!(source = %name, error = format!("{e:#}"), "Source stopped.");
            failed.push(format!("source {name:?} stopped: {e:#}"));
            health.set(&format!("source:{name}"), Some(format!("stopped: {e:#}")));
            if config.pipeline.stop_on_source_failure {
                let _ = shutdown_tx.send(true);
            }
        }
    }
    let stats = tokio::task::spawn_blocking(move || pipeline.join())
        .await
        .context("pipeline")?;
    let _ = shutdown_tx.send(true);
    signals.abort();
    reload_task.abort();
    if let Some(s) = syncing {
        // A pass in flight finishes (bounded by the source's request timeout).
        let _ = tokio::task::spawn_blocking(move || s.stop()).await;
    }
    if let Some(p) = poller {
        p.abort();
    }
    for worker in delivery.into_iter().flatten() {
        worker.abort();
    }
    let queued = outbox
        .and_then(|o| o.stats().ok())
        .map_or(0, |s| s.outbox_depth);
    if let Some(why) = failed.first() {
        anyhow::bail!("{why}");
    }
    if let Some(why) = &stats.fatal {
        tracing::error!(
            lines = stats.lines,
            alerts = stats.alerts_written,
            "Stopped: the last batch read was not acknowledged and will be read again."
        );
        anyhow::bail!("{why}");
    }
    tracing::info!(
        lines = stats.lines,
        matched_lines = stats.matched_lines,
        alerts = stats.alerts_written,
        sightings_queued = queued,
        state = %config.state.dir.display(),
        "Stopped; checkpoints and correlation state saved."
    );
    Ok(ExitCode::SUCCESS)
}

/// In the state directory: the keys of the intel live retro has probed
/// ([`crate::retro::matching::write_probed`]).
pub const RETRO_PROBED_FILE: &str = "retro-probed.bin";

/// How often the intel files are polled for changes (the fallback for watches).
pub const INTEL_POLL: Duration = Duration::from_secs(2);

/// Waits until no reload trigger came for `quiet`, so a file being written is read
/// once it is complete.
async fn settle(rx: &mut mpsc::Receiver<&'static str>, quiet: Duration) {
    loop {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return,
        }
    }
}

async fn signal_loop(
    shutdown: Arc<watch::Sender<bool>>,
    reload: mpsc::Sender<&'static str>,
    sync: Arc<std::sync::OnceLock<crate::intel::sync::runner::SyncWaker>>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("Cannot install signal handlers.");
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { tracing::info!("SIGINT: shutting down."); let _ = shutdown.send(true); }
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down."); let _ = shutdown.send(true); }
            _ = hup.recv() => {
                let _ = reload.try_send("SIGHUP");
                if let Some(w) = sync.get() {
                    tracing::info!("SIGHUP: syncing every intel source now.");
                    w.wake();
                }
            }
        }
    }
}
