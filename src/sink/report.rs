//! Reports for `tripline intel` and `tripline intel lookup`, as text for people and
//! JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{json, Value};

use crate::index::Index;
use crate::intel::canon::Canonical;
use crate::intel::expiry::Lapse;
use crate::intel::warninglist::Warninglists;
use crate::intel::Exclusion;
use crate::matcher::Hit;

/// A domain indicator with at least this many subdomain indicators is reported as a
/// broad parent.
pub const BROAD_PARENT_MIN_CHILDREN: usize = 3;
/// How many examples of each kind of problem the text report lists.
const EXAMPLES: usize = 10;

pub struct Report {
    pub text: String,
    pub json: Value,
    pub matches: bool,
}

/// One line per intel source that lost records at load (skipped as malformed or
/// unsupported, refused as too broad): counts, the first loss with its location, and
/// where to look. `hunt` prints these on stderr.
pub fn intel_loss_lines(index: &Index) -> Vec<String> {
    let mut out = Vec::new();
    for (i, l) in index.losses_by_source.iter().enumerate() {
        if l.skipped == 0 && l.refused == 0 {
            continue;
        }
        let Some(s) = index.sources.get(i) else {
            continue;
        };
        let mut parts = Vec::new();
        if l.skipped > 0 {
            let unsupported = if l.unsupported > 0 {
                format!(
                    " ({} of them valid, of a type or pattern not matched)",
                    l.unsupported
                )
            } else {
                String::new()
            };
            parts.push(format!(
                "{} record{} skipped{unsupported}",
                l.skipped,
                if l.skipped == 1 { "" } else { "s" }
            ));
        }
        if l.refused > 0 {
            parts.push(format!(
                "{} indicator{} refused as too broad",
                l.refused,
                if l.refused == 1 { "" } else { "s" }
            ));
        }
        let first = l
            .first_skipped
            .as_ref()
            .or(l.first_refused.as_ref())
            .map(|f| format!("; first: {}: {}", f.location, f.reason))
            .unwrap_or_default();
        out.push(format!(
            "intel source \"{}\" ({}): {}{first}; run `tripline intel` for details",
            s.name,
            s.location,
            parts.join(", ")
        ));
    }
    out
}

pub fn intel_report(index: &Index, w: &Warninglists, problems: &[String], secs: f64) -> Report {
    let mut t = String::new();
    let n = index.len();
    let _ = writeln!(
        t,
        "Intel: {n} matchable indicators from {} source(s), loaded and built in {secs:.2} s",
        index.sources.len()
    );

    // Per source: records read and indicators held.
    let mut per_source: BTreeMap<u32, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for ((kind, s), n) in index.counts_by_kind_and_source() {
        per_source.entry(s).or_default().insert(kind.name(), n);
    }
    let _ = writeln!(t, "\nSources:");
    let mut sources_json = Vec::new();
    for (i, s) in index.sources.iter().enumerate() {
        let counts = per_source.get(&(i as u32)).cloned().unwrap_or_default();
        let total: u64 = counts.values().sum();
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let records = index.records_by_source.get(i).copied().unwrap_or(0);
        let losses = index.losses_by_source.get(i).cloned().unwrap_or_default();
        let _ = writeln!(
            t,
            "  {} ({}, {}): {total} indicators{}{}{}",
            s.name,
            s.format,
            s.location,
            if parts.is_empty() {
                String::new()
            } else {
                format!(" [{}]", parts.join(", "))
            },
            if records > 0 {
                format!(", {records} records read")
            } else {
                String::new()
            },
            match (losses.skipped, losses.refused) {
                (0, 0) => String::new(),
                (k, r) => format!(", {k} skipped, {r} refused as too broad"),
            }
        );
        sources_json.push(json!({"name": s.name, "format": s.format, "location": s.location, "provider": s.provider, "indicators": total, "by_type": counts, "records": records,
            "skipped": losses.skipped, "unsupported": losses.unsupported, "refused": losses.refused}));
    }

    let _ = writeln!(t, "\nMatchable indicators by type:");
    for (k, v) in &index.stats.active_by_kind {
        let _ = writeln!(t, "  {:<10} {v}", k.name());
    }
    if !index.excluded_by_reason.is_empty() {
        let _ = writeln!(t, "\nNot matched by policy:");
        for (r, v) in &index.excluded_by_reason {
            let _ = writeln!(t, "  {r}: {v}");
        }
    }
    let skipped_total: u64 = index.skipped_by_reason.values().sum();
    if skipped_total > 0 {
        let unsupported = index
            .losses_by_source
            .iter()
            .map(|l| l.unsupported)
            .sum::<u64>();
        let _ = writeln!(
            t,
            "\nSkipped records: {skipped_total} ({unsupported} valid but of a type or pattern not matched, {} malformed)",
            skipped_total.saturating_sub(unsupported)
        );
        for (r, v) in &index.skipped_by_reason {
            let _ = writeln!(t, "  {r}: {v}");
        }
        let _ = writeln!(t, "  first locations:");
        for s in index.skipped.iter().take(EXAMPLES) {
            let _ = writeln!(t, "    {}: {}", s.location, s.reason);
        }
    }
    let refused_total: u64 = index.refused_by_reason.values().sum();
    if refused_total > 0 {
        let _ = writeln!(
            t,
            "\nRefused as too broad: {refused_total} (kept with --allow-broad, a /0 never)"
        );
        for (r, v) in &index.refused_by_reason {
            let _ = writeln!(t, "  {r}: {v}");
        }
        let _ = writeln!(t, "  first locations:");
        for r in index.refused.iter().take(EXAMPLES) {
            let source = index
                .sources
                .get(r.source as usize)
                .map_or("?", |s| s.name.as_str());
            let _ = writeln!(
                t,
                "    {}: {} {} (source {source}): {}",
                r.location, r.kind, r.value, r.text
            );
        }
    }
    let hits = index.warninglist_hits();
    let _ = writeln!(
        t,
        "\nWarninglists: {} loaded; {} indicators on them ({})",
        w.lists().len(),
        hits.len(),
        match index.warninglist_mode() {
            crate::index::WarninglistMode::Drop => "not matched",
            crate::index::WarninglistMode::Flag => "matched with a mark",
        }
    );
    for (list, v) in &index.stats.warninglisted_by_list {
        let _ = writeln!(t, "  {list}: {v}");
    }
    let mut warn_json = Vec::new();
    for h in hits.iter().take(EXAMPLES) {
        let _ = writeln!(
            t,
            "    {} ({}) on {}",
            index.value(h.indicator),
            h.indicator.kind(),
            index.warninglist_name(h.list)
        );
    }
    for h in hits {
        warn_json.push(json!({"indicator": index.value(h.indicator), "type": h.indicator.kind().name(), "list": index.warninglist_name(h.list)}));
    }

    let broad = index.broad_parents(BROAD_PARENT_MIN_CHILDREN);
    // Domains on the shared-parents list, whichever list (or the public-suffix check)
    // took them out first: `duckdns.org` is also on the Cloudflare top-1k list.
    let is_shared = |value: &str| {
        w.check_all(crate::intel::Kind::Domain, "domain", value)
            .into_iter()
            .any(|l| {
                w.lists()
                    .get(l)
                    .is_some_and(|l| l.name.to_ascii_lowercase().contains("shared parent"))
            })
    };
    let mut shared: Vec<&str> = hits
        .iter()
        .filter(|h| h.indicator.kind() == crate::intel::Kind::Domain)
        .map(|h| index.value(h.indicator))
        .chain(
            index
                .refused
                .iter()
                .filter(|r| r.kind == crate::intel::Kind::Domain)
                .map(|r| r.value.as_str()),
        )
        .filter(|v| is_shared(v))
        .collect();
    shared.sort_unstable();
    shared.dedup();
    let _ = writeln!(
        t,
        "\nBroad parents (domain indicators that match every subdomain):"
    );
    let _ = writeln!(
        t,
        "  {} on the shared-parents warninglist (dynamic DNS, hosting)",
        shared.len()
    );
    for v in shared.iter().take(EXAMPLES) {
        let _ = writeln!(t, "    {v}");
    }
    let _ = writeln!(
        t,
        "  {} with {BROAD_PARENT_MIN_CHILDREN} or more subdomain indicators in the intel",
        broad.len()
    );
    for (id, c) in broad.iter().take(EXAMPLES) {
        let live = if index.metas_of(*id).is_empty() {
            " (warninglisted)"
        } else {
            ""
        };
        let _ = writeln!(t, "    {} ({c} subdomains){live}", index.value(*id));
    }

    let mem = index.stats.memory_bytes;
    let per = if n > 0 { mem as f64 / n as f64 } else { 0.0 };
    let _ = writeln!(
        t,
        "\nIndex: {:.1} MiB ({per:.0} bytes per indicator), built in {:.3} s",
        mem as f64 / (1 << 20) as f64,
        index.stats.build_secs
    );
    if let Some(a) = &index.stats.literal_automaton {
        let _ = writeln!(t, "  literal automaton: {a}");
    }
    for p in problems {
        let _ = writeln!(t, "\nerror: {p}");
    }
    let json = json!({
        "indicators": n,
        "by_type": index.stats.active_by_kind.iter().map(|(k, v)| (k.name().to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "sources": sources_json,
        "excluded_by_reason": index.excluded_by_reason,
        "skipped_by_reason": index.skipped_by_reason,
        "skipped": index.skipped.iter().map(|s| json!({"location": s.location, "reason": s.reason})).collect::<Vec<_>>(),
        "warninglists": w.lists().iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        "warninglisted": warn_json,
        "refused_by_reason": index.refused_by_reason,
        "refused": index.refused.iter().map(|r| json!({"value": r.value, "type": r.kind.name(), "source": index.sources.get(r.source as usize).map(|s| s.name.as_str()), "location": r.location, "reason": r.reason})).collect::<Vec<_>>(),
        "shared_parents": shared,
        "broad_parents": broad.iter().map(|(id, c)| json!({"domain": index.value(*id), "subdomain_indicators": c})).collect::<Vec<_>>(),
        "index": {"memory_bytes": mem, "bytes_per_indicator": per, "build_secs": index.stats.build_secs, "literal_automaton": index.stats.literal_automaton},
        "errors": problems,
    });
    Report {
        text: t,
        json,
        matches: n > 0,
    }
}

/// Explains `value`: the matches found by matching it as a log line, with each
/// source's standing at time `at` (Unix seconds: a log line of that time) — matched,
/// or why not: excluded at load, warninglisted, or lapsed then by the same judgement
/// matching makes (`valid_until`, the type's lifetime, the decay score under its
/// threshold) — or why nothing matches.
pub fn lookup_report(
    index: &Index,
    w: &Warninglists,
    value: &str,
    detected: Option<&Canonical>,
    hits: &[Hit],
    at: i64,
) -> Report {
    let now = at;
    let mut t = String::new();
    let mut entries = Vec::new();
    let mut matches = false;
    for hit in hits {
        let id = hit.id;
        let warn = index.warninglist_of(id);
        let _ = writeln!(
            t,
            "{} matches indicator {} ({}){}",
            hit.atomic,
            index.value(id),
            id.kind(),
            warn.map(|l| format!(", warninglisted by {l:?}: not matched"))
                .unwrap_or_default()
        );
        let mut sources = Vec::new();
        for &m in index.metas_of(id) {
            let meta = index.meta(m);
            let src = index
                .sources
                .get(meta.source as usize)
                .map_or("?", |s| s.name.as_str());
            let event = meta.event.and_then(|e| index.events.get(e as usize));
            let mut why: Option<String> = index.meta_exclusion(m).map(Exclusion::to_string);
            let judged = index.judge(id.kind(), m, now);
            if why.is_none() {
                why = judged.lapse.map(|l| match l {
                    Lapse::ValidUntil => Exclusion::Expired.to_string(),
                    Lapse::Lifetime => format!(
                        "past the default lifetime of {} intel ([intel.lifetimes])",
                        id.kind()
                    ),
                    Lapse::Decayed => format!(
                        "decayed: score {:.1} under the threshold ([intel.decay])",
                        judged.score.unwrap_or(0.0)
                    ),
                });
            }
            if why.is_none() {
                if let Some(l) = warn {
                    why = Some(Exclusion::Warninglisted(l.to_string()).to_string());
                }
            }
            matches |= why.is_none();
            let _ = writeln!(
                t,
                "  source {src}{}{}: {}",
                event
                    .and_then(|e| e.info.as_ref())
                    .map(|i| format!(", event {i:?}"))
                    .unwrap_or_default(),
                meta.attr_uuid
                    .as_ref()
                    .map(|u| format!(", attribute {u}"))
                    .unwrap_or_default(),
                match (&why, judged.score) {
                    (Some(w), _) => format!("not matched: {w}"),
                    (None, Some(score)) => format!("matched (decay score {score:.1})"),
                    (None, None) => "matched".to_string(),
                }
            );
            sources.push(json!({
                "source": src,
                "event": event.and_then(|e| e.uuid.clone()),
                "event_info": event.and_then(|e| e.info.clone()),
                "attribute": meta.attr_uuid.as_deref(),
                "type": index.string(meta.misp_type),
                "matched": why.is_none(),
                "reason": why,
                "lapse": judged.lapse.map(Lapse::name),
                "score": judged.score,
            }));
        }
        entries.push(json!({"atomic": hit.atomic, "indicator": index.value(id), "type": id.kind().name(), "warninglisted": warn, "sources": sources}));
    }
    let mut would_be_warninglisted = Vec::new();
    let mut refused = Vec::new();
    if hits.is_empty() {
        let _ = writeln!(t, "{value}: not in the intel");
        if let Some(c) = detected {
            let _ = writeln!(t, "  understood as {} {}", c.kind, c.value);
            for r in index
                .refused
                .iter()
                .filter(|r| r.kind == c.kind && r.value == c.value)
            {
                let _ = writeln!(
                    t,
                    "  refused at load as too broad ({}): {}; kept with --allow-broad",
                    r.location, r.text
                );
                refused.push(json!({"location": r.location, "reason": r.reason}));
            }
            for l in w.check_all(c.kind, c.kind.default_misp_type(), &c.value) {
                let name = w.lists().get(l).map_or("?", |x| x.name.as_str());
                would_be_warninglisted.push(name.to_string());
                let _ = writeln!(t, "  on warninglist {name:?}: it would not be matched even if it were in the intel");
            }
        } else {
            let _ = writeln!(t, "  no indicator type recognised in it");
        }
    }
    let json = json!({"value": value, "matches": matches, "hits": entries,
        "detected": detected.map(|c| json!({"type": c.kind.name(), "value": c.value})),
        "warninglists": would_be_warninglisted, "refused": refused});
    Report {
        text: t,
        json,
        matches,
    }
}
