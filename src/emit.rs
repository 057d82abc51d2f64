//! Emit: the in-order step every driver runs after [`scan`](crate::scan).
//!
//! One [`Emitter`] per driver, fed scanned batches in input order. It owns one
//! [`Decoder`] per input (a file, a syslog source, stdin: Zeek headers are per file),
//! and for each matched line it
//! 1. decodes the line (format, own time, host, fields) with its input's decoder,
//!    after replaying the header lines that came before it;
//! 2. picks the event time: the line's own time as its format defines it, else the
//!    time of reading ([`TimeSource`] says which) — never text inside a message;
//! 3. judges each hit's intel valid at that time (STIX `valid_from`/`valid_until`,
//!    MISP decay below its threshold, per-kind lifetimes: [`crate::intel::expiry`]),
//!    dropping hits whose intel was not valid then, and gives each its decay score
//!    then (`tripline.enrichments[i].score`);
//! 4. builds the typed [`Alert`] from the line's origin and the decoded context, and
//!    the rules' [`Observation`]s through `correlate::observe`;
//! 5. marks (or drops) what the local suppression list says was reported as a
//!    false positive ([`crate::share::suppress`]), when the driver gave one;
//! 6. hands both to the driver's [`AlertSink`].
//!
//! `hunt` and `run` are drivers only: they differ in where lines come from, how
//! lines are numbered and how alerts are acknowledged, never in how a line is
//! decoded, timed, judged or turned into an alert. So the two give the same
//! `threat` blocks, `@timestamp`, line numbers and observations on the same input.
//!
//! Cost: decoding and alert building run only for lines that matched; per batch, one
//! ordered merge of its header lines into the matched ones.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::correlate::Observation;
use crate::decode::{DecodeOptions, Decoder, Event};
use crate::index::Index;
use crate::intel::Kind;
use crate::matcher::Hit;
use crate::scan::Scanned;
use crate::share::suppress::{SuppressedAlerts, SuppressionList};
use crate::sink::alert::{self, Alert, TimeSource};
use crate::source::Origin;

/// What the emitter knows of one configured source (one input in `hunt`).
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// The log source's name: the config's source name, or the input's path in
    /// `hunt`. Observations carry it; live alerts name it as `tripline.source`.
    pub name: String,
    /// Whether alerts name the source (`tripline.source`): configured sources do.
    pub named: bool,
    /// How its lines are decoded (the zone of zoneless times).
    pub decode: DecodeOptions,
}

/// One matched line, emitted: its alert and what the sinks need besides.
#[derive(Debug)]
pub struct Emitted {
    pub alert: Alert,
    /// The hits whose intel was valid at the event time, with those metas.
    pub matches: Vec<(Hit, Vec<u32>)>,
    /// One per match, for the rules (empty unless the emitter observes).
    pub observations: Vec<Observation>,
    /// The host the line names, else the origin's default host (see [`default_host`]).
    pub host: String,
    pub time: DateTime<Utc>,
}

/// Where a driver's alerts go, in input order.
pub trait AlertSink {
    /// A batch of `source` was scanned; called before its alerts.
    fn scanned(&mut self, source: usize, scanned: &Scanned);
    /// One matched line. An error stops the driver.
    fn alert(&mut self, index: &Index, source: usize, emitted: Emitted) -> io::Result<()>;
}

/// The times a batch is emitted with.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// When the lines were read: the time of lines with no readable own time.
    pub read: DateTime<Utc>,
    /// No line of the batch is later than this (the file's modification time in a
    /// hunt, now live): the year of year-less stamps is the one that puts them before
    /// it.
    pub reference: DateTime<Utc>,
}

/// The in-order emitter; see the module docs.
pub struct Emitter {
    sources: Vec<SourceInfo>,
    decoders: HashMap<String, Decoder>,
    observe: bool,
    suppressions: Option<(Arc<SuppressionList>, SuppressedAlerts)>,
    /// Unique per emitter: names the streams that cannot be read twice (stdin,
    /// syslog), so two runs never share one.
    run: u64,
    /// Syslog messages emitted so far: their position in their stream.
    messages: u64,
}

/// The stream and position of a line, as its observations carry them
/// ([`crate::correlate::LineOrigin`]): a file followed by the sidecar is named by
/// its persistent id and the line by its byte offset, so a line read again after a
/// restart has the origin it had; a hunt's input by its path and line number; stdin
/// by its line number and syslog by a message count, in streams unique to this run.
fn line_origin(origin: &Origin, run: u64, messages: u64) -> (String, u64) {
    match origin {
        Origin::File {
            file_id: Some(id),
            offset,
            ..
        } => (format!("file:{id:016x}"), *offset),
        Origin::File {
            path, offset, line, ..
        } => (format!("path:{path}"), line.unwrap_or(*offset)),
        Origin::Syslog { peer, transport } => (
            format!("syslog:{peer}/{}#{run:016x}", transport.as_str()),
            messages,
        ),
        Origin::Stdin { line } => (format!("stdin#{run:016x}"), *line),
    }
}

/// The host a line without one is credited to: its file, its syslog peer, or stdin.
pub fn default_host(origin: &Origin) -> String {
    match origin {
        Origin::File { path, .. } => path.to_string(),
        Origin::Syslog { peer, .. } => peer.ip().to_string(),
        Origin::Stdin { .. } => "stdin".to_string(),
    }
}

impl Emitter {
    /// `observe`: build observations for the rules.
    pub fn new(sources: Vec<SourceInfo>, observe: bool) -> Emitter {
        Emitter {
            sources,
            decoders: HashMap::new(),
            observe,
            run: uuid::Uuid::new_v4().as_u64_pair().0,
            messages: 0,
            suppressions: None,
        }
    }

    /// Marks (`Mark`) or drops (`Drop`) alerts of indicators on `list`.
    pub fn with_suppressions(
        mut self,
        list: Option<Arc<SuppressionList>>,
        mode: SuppressedAlerts,
    ) -> Emitter {
        self.suppressions = list.map(|l| (l, mode));
        self
    }

    fn decoder(&mut self, source: usize, origin: &Origin) -> &mut Decoder {
        let info = self.sources.get(source);
        let key = match origin {
            Origin::File { path, .. } => path.to_string(),
            _ => info.map_or_else(String::new, |s| s.name.clone()),
        };
        let opts = info.map_or_else(DecodeOptions::default, |s| s.decode);
        self.decoders
            .entry(key)
            .or_insert_with(|| Decoder::new(opts))
    }

    /// Emits one scanned batch of `source`. `origin_of(idx, offset)` gives the origin
    /// of the batch's line `idx` (its byte offset, for chunks).
    pub fn emit<S: AlertSink>(
        &mut self,
        index: &Index,
        source: usize,
        mut scanned: Scanned,
        mut origin_of: impl FnMut(u64, u64) -> Origin,
        clock: Clock,
        sink: &mut S,
    ) -> io::Result<()> {
        sink.scanned(source, &scanned);
        let headers = std::mem::take(&mut scanned.headers);
        let mut headers = headers.into_iter().peekable();
        for m in std::mem::take(&mut scanned.matched) {
            while let Some((idx, h)) = headers.next_if(|(i, _)| *i < m.idx) {
                let origin = origin_of(idx, 0);
                self.decoder(source, &origin).observe(&h);
            }
            let origin = origin_of(m.idx, m.offset);
            if let Some(e) = self.line(index, source, &origin, &m.line, m.hits, clock) {
                sink.alert(index, source, e)?;
            }
        }
        for (idx, h) in headers {
            let origin = origin_of(idx, 0);
            self.decoder(source, &origin).observe(&h);
        }
        Ok(())
    }

    /// Emits one matched line; `None` when none of its hits' intel was valid at the
    /// line's time.
    pub fn line(
        &mut self,
        index: &Index,
        source: usize,
        origin: &Origin,
        line: &[u8],
        hits: Vec<Hit>,
        clock: Clock,
    ) -> Option<Emitted> {
        let event = self.decoder(source, origin).decode(line, clock.reference);
        let (time, time_source) = match event.time {
            Some(t) => (t, TimeSource::Event),
            None => (clock.read, TimeSource::Read),
        };
        let matches: Vec<(Hit, Vec<u32>)> = hits
            .into_iter()
            .filter_map(|hit| {
                let metas = index.metas_valid_at(hit.id, time.timestamp());
                (!metas.is_empty()).then_some((hit, metas))
            })
            .collect();
        if matches.is_empty() {
            return None;
        }
        let info = self.sources.get(source);
        let source_name = info.map_or("", |s| s.name.as_str());
        let fallback_host = default_host(origin);
        let sender = match origin {
            Origin::Syslog { .. } => Some(fallback_host.as_str()),
            _ => None,
        };
        if matches!(origin, Origin::Syslog { .. }) {
            self.messages += 1;
        }
        let observations = if self.observe {
            let (stream, position) = line_origin(origin, self.run, self.messages);
            crate::correlate::observe::observations(
                index,
                &matches,
                &event,
                time,
                source_name,
                sender,
                Some((&stream, position)),
            )
        } else {
            Vec::new()
        };
        let occurred = alert::time_text(time);
        let enrichments = matches
            .iter()
            .map(|(hit, metas)| {
                let mut e = alert::enrichment(index, hit, metas, &occurred);
                alert::add_field(&mut e, &event, hit.span, hit.id.kind());
                add_scores(&mut e, index, hit.id.kind(), metas, time.timestamp());
                e
            })
            .collect();
        let named = info.filter(|s| s.named).map(|s| s.name.clone());
        let mut alert = build_alert(origin, line, &event, time, time_source, named, enrichments);
        let (mut matches, mut observations) = (matches, observations);
        if let Some((list, mode)) = &self.suppressions {
            if !list.apply(*mode, index, &mut alert, &mut matches, &mut observations) {
                return None;
            }
        }
        Some(Emitted {
            alert,
            host: event.host.clone().unwrap_or(fallback_host),
            matches,
            observations,
            time,
        })
    }
}

/// The MISP decay score of the indicator at the line's time, when its intel decays:
/// `tripline.enrichments[i].score` (the highest of its sources') and each source's own
/// `sources[j].score`, 0 to 100 with two decimals. ECS has no numeric indicator score
/// (`threat.indicator.confidence` is a None/Low/Medium/High keyword), so it stays in
/// tripline's record.
fn add_scores(e: &mut alert::Enrichment, index: &Index, kind: Kind, metas: &[u32], t: i64) {
    let round = |s: f64| (s * 100.0).round() / 100.0;
    let scores: Vec<Option<f64>> = metas
        .iter()
        .map(|&m| index.judge(kind, m, t).score.map(round))
        .collect();
    let Some(best) = scores.iter().flatten().copied().reduce(f64::max) else {
        return;
    };
    let Some(o) = e.tripline.as_object_mut() else {
        return;
    };
    if let Some(sources) = o.get_mut("sources").and_then(|v| v.as_array_mut()) {
        for (source, score) in sources.iter_mut().zip(&scores) {
            if let (Some(src), Some(score)) = (source.as_object_mut(), score) {
                src.insert("score".into(), serde_json::json!(score));
            }
        }
    }
    o.insert("score".into(), serde_json::json!(best));
}

#[allow(clippy::too_many_arguments)]
fn build_alert(
    origin: &Origin,
    line: &[u8],
    event: &Event,
    time: DateTime<Utc>,
    time_source: TimeSource,
    source: Option<String>,
    enrichments: Vec<alert::Enrichment>,
) -> Alert {
    let mut syslog_peer = None;
    let mut offset = None;
    let (log, line_number) = match origin {
        Origin::File {
            path,
            offset: at,
            line,
            ..
        } => {
            offset = Some(*at);
            let file = Some(alert::LogFile {
                path: path.to_string(),
            });
            (alert::LogBlock { file }, *line)
        }
        Origin::Syslog { peer, .. } => {
            syslog_peer = Some(peer.to_string());
            (alert::LogBlock::default(), None)
        }
        // Standard input, named `-` as on the command line.
        Origin::Stdin { line } => (
            alert::LogBlock {
                file: Some(alert::LogFile {
                    path: "-".to_string(),
                }),
            },
            Some(*line),
        ),
    };
    let (ecs, ours): (Vec<_>, Vec<_>) =
        enrichments.into_iter().map(|e| (e.ecs, e.tripline)).unzip();
    let timestamp = alert::time_text(time);
    let place = match origin {
        Origin::Syslog { peer, .. } => peer.to_string(),
        _ => log
            .file
            .as_ref()
            .map_or_else(String::new, |f| f.path.clone()),
    };
    // The time of reading is no part of the line: a line without its own time keeps
    // its id when read again.
    let own_time = if time_source == TimeSource::Event {
        timestamp.as_str()
    } else {
        ""
    };
    let alert_id = alert::alert_id(&place, offset, line_number, own_time, line);
    let named = |s: &Option<String>| s.clone().map(|name| alert::Named { name });
    let address = |ip: Option<std::net::IpAddr>| ip.map(|ip| alert::Address { ip: ip.to_string() });
    Alert {
        timestamp,
        destination: address(event.destination_ip),
        event: alert::EventBlock {
            category: ["threat"],
            kind: "event",
            kind_type: ["indicator"],
        },
        host: named(&event.host),
        log,
        message: alert::message(line),
        process: named(&event.app),
        source: address(event.source_ip),
        threat: alert::Threat { enrichments: ecs },
        tripline: alert::AlertTripline {
            alert_id,
            enrichments: ours,
            syslog_peer,
            format: event.format.name(),
            line_number,
            offset,
            source,
            suppressed: None,
            throttled: None,
            time_source,
        },
    }
}
