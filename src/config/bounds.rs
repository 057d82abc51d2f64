//! The range of every number in the configuration, in one place: validation
//! ([`super::plan`]) checks against these constants, [`ALL`] lists them for the
//! documentation and for the test that feeds every key an out-of-range value. The
//! ranges of `[share]` belong to the sharing policy ([`crate::share::policy`], which
//! cannot depend on this module) and are listed here from there.
//!
//! A range is what a SOC engineer would set, with room to spare. Beyond it a value is a
//! typo, or would exhaust memory (a queue or a thread pool sized by it), overflow a time
//! computation (`Instant + Duration::from_secs(u64::MAX)`) or stall a thread (a
//! `keep_files` of 2^63 turned the first rotation into 2^63 renames). Every range is
//! small enough that the durations and sums built from it cannot overflow.

use std::ops::RangeInclusive;

use crate::share::policy as share;

/// `intel.max_shrink_ratio`: a fraction of the loaded indicators, 0 to 1.
pub const MAX_SHRINK_RATIO: RangeInclusive<f64> = 0.0..=1.0;
/// `intel.reload_debounce_ms`: up to 10 minutes.
pub const RELOAD_DEBOUNCE_MS: RangeInclusive<u64> = 0..=600_000;
/// `intel.min_prefix_v4`: the shortest IPv4 prefix kept as an indicator, /1 to /32
/// (a /0 is never kept).
pub const MIN_PREFIX_V4: RangeInclusive<u64> = 1..=32;
/// `intel.min_prefix_v6`: the shortest IPv6 prefix kept as an indicator, /1 to /128.
pub const MIN_PREFIX_V6: RangeInclusive<u64> = 1..=128;
/// `intel.decay.lifetime_days` (and per-type overrides): 1 day to 100 years.
pub const DECAY_LIFETIME_DAYS: RangeInclusive<u64> = 1..=36_500;
/// `intel.decay.decay_speed`: MISP's `decay_speed` (delta), 1 to 10.
pub const DECAY_SPEED: RangeInclusive<f64> = 1.0..=10.0;
/// `intel.decay.threshold` and `intel.decay.default_base_score`: a score, 0 to 100.
pub const DECAY_SCORE: RangeInclusive<f64> = 0.0..=100.0;
/// `intel.lifetimes.*_days`: 0 (never) to 100 years.
pub const LIFETIME_DAYS: RangeInclusive<u64> = 0..=36_500;
/// `intel.sources[].interval_secs`: 10 seconds to 1 week between sync passes.
pub const INTEL_INTERVAL_SECS: RangeInclusive<u64> = 10..=604_800;
/// `intel.sources[].timeout_secs`: 1 second to 10 minutes per request.
pub const INTEL_TIMEOUT_SECS: RangeInclusive<u64> = 1..=600;
/// `sources[].max_line_bytes` (file): up to 64 MiB.
pub const MAX_LINE_BYTES: RangeInclusive<u64> = 1..=64 << 20;
/// `sources[].rescan_interval_ms` (file): 10 ms to 10 minutes.
pub const RESCAN_INTERVAL_MS: RangeInclusive<u64> = 10..=600_000;
/// `sources[].fingerprint_bytes` (file): 16 bytes to 64 KiB.
pub const FINGERPRINT_BYTES: RangeInclusive<u64> = 16..=64 << 10;
/// `sources[].max_message_bytes` (syslog, relp): up to 16 MiB.
pub const MAX_MESSAGE_BYTES: RangeInclusive<u64> = 1..=16 << 20;
/// `sources[].max_connections` (syslog, relp): 1 to 65536 connections open at once.
pub const MAX_CONNECTIONS: RangeInclusive<u64> = 1..=65_536;
/// `sources[].idle_timeout_secs` (syslog, relp): 1 second to 1 day.
pub const IDLE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=86_400;
/// `sources[].rotate_wait_secs` (file): 1 second to 1 day.
pub const ROTATE_WAIT_SECS: RangeInclusive<u64> = 1..=86_400;
/// `sources[].partial_line_flush_secs` (file): 0 (never) to 1 hour.
pub const PARTIAL_LINE_FLUSH_SECS: RangeInclusive<u64> = 0..=3_600;
/// `sources[].busy_idle_timeout_secs` (syslog): 1 second to 1 day.
pub const BUSY_IDLE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=86_400;
/// `sources[].tls_handshake_timeout_secs` (syslog): 1 second to 10 minutes.
pub const TLS_HANDSHAKE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=600;
/// `alerts.max_file_bytes`: 1 KiB to 1 TiB.
pub const MAX_FILE_BYTES: RangeInclusive<u64> = 1 << 10..=1 << 40;
/// `alerts.keep_files`: 0 to 10000 rotated files.
pub const KEEP_FILES: RangeInclusive<u64> = 0..=10_000;
/// `alerts.throttle_secs`: 0 (off) to 1 day.
pub const THROTTLE_SECS: RangeInclusive<u64> = 0..=86_400;
/// `pipeline.queue_batches`: 1 to 65536 batches.
pub const QUEUE_BATCHES: RangeInclusive<u64> = 1..=65_536;
/// `pipeline.workers`: 0 (one per core) to 1024 threads.
pub const WORKERS: RangeInclusive<u64> = 0..=1024;
/// `rules.max_groups`: 1 to 10 million correlation groups.
pub const MAX_GROUPS: RangeInclusive<u64> = 1..=10_000_000;
/// `rules.lateness_secs`: 0 to 1 day.
pub const LATENESS_SECS: RangeInclusive<u64> = 0..=86_400;

/// `retro.retention_days`: 1 day to 10 years.
pub const RETRO_RETENTION_DAYS: RangeInclusive<u64> = 1..=3_650;
/// `retro.max_bytes`: 1 MiB to 64 TiB.
pub const RETRO_MAX_BYTES: RangeInclusive<u64> = 1 << 20..=1 << 46;

/// One numeric key: its name as written in TOML (`[]` for each element of a list),
/// its range and its unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
}

const fn float(key: &'static str, range: RangeInclusive<f64>, unit: &'static str) -> Bound {
    Bound {
        key,
        min: *range.start(),
        max: *range.end(),
        unit,
    }
}

const fn int(key: &'static str, range: RangeInclusive<u64>, unit: &'static str) -> Bound {
    Bound {
        key,
        min: *range.start() as f64,
        max: *range.end() as f64,
        unit,
    }
}

/// Every numeric key of the configuration with its range, in the order of
/// `contrib/tripline.example.toml`.
pub const ALL: [Bound; 47] = [
    Bound {
        key: "intel.max_shrink_ratio",
        min: *MAX_SHRINK_RATIO.start(),
        max: *MAX_SHRINK_RATIO.end(),
        unit: "fraction",
    },
    int("intel.reload_debounce_ms", RELOAD_DEBOUNCE_MS, "ms"),
    int("intel.min_prefix_v4", MIN_PREFIX_V4, "prefix length"),
    int("intel.min_prefix_v6", MIN_PREFIX_V6, "prefix length"),
    int("intel.decay.lifetime_days", DECAY_LIFETIME_DAYS, "days"),
    float("intel.decay.decay_speed", DECAY_SPEED, "MISP decay_speed"),
    float("intel.decay.threshold", DECAY_SCORE, "score"),
    float("intel.decay.default_base_score", DECAY_SCORE, "score"),
    int("intel.lifetimes.ip_days", LIFETIME_DAYS, "days, 0: never"),
    int("intel.lifetimes.url_days", LIFETIME_DAYS, "days, 0: never"),
    int(
        "intel.lifetimes.domain_days",
        LIFETIME_DAYS,
        "days, 0: never",
    ),
    int(
        "intel.lifetimes.email_days",
        LIFETIME_DAYS,
        "days, 0: never",
    ),
    int("intel.lifetimes.hash_days", LIFETIME_DAYS, "days, 0: never"),
    int(
        "intel.lifetimes.filename_days",
        LIFETIME_DAYS,
        "days, 0: never",
    ),
    int(
        "intel.lifetimes.other_days",
        LIFETIME_DAYS,
        "days, 0: never",
    ),
    int("intel.sources[].interval_secs", INTEL_INTERVAL_SECS, "s"),
    int("intel.sources[].timeout_secs", INTEL_TIMEOUT_SECS, "s"),
    Bound {
        key: "intel.sources[].max_shrink_ratio",
        min: *MAX_SHRINK_RATIO.start(),
        max: *MAX_SHRINK_RATIO.end(),
        unit: "fraction",
    },
    int("sources[].max_line_bytes", MAX_LINE_BYTES, "bytes"),
    int("sources[].rescan_interval_ms", RESCAN_INTERVAL_MS, "ms"),
    int("sources[].fingerprint_bytes", FINGERPRINT_BYTES, "bytes"),
    int("sources[].rotate_wait_secs", ROTATE_WAIT_SECS, "s"),
    int(
        "sources[].partial_line_flush_secs",
        PARTIAL_LINE_FLUSH_SECS,
        "s, 0: never",
    ),
    int("sources[].max_message_bytes", MAX_MESSAGE_BYTES, "bytes"),
    int("sources[].max_connections", MAX_CONNECTIONS, "connections"),
    int("sources[].idle_timeout_secs", IDLE_TIMEOUT_SECS, "s"),
    int(
        "sources[].busy_idle_timeout_secs",
        BUSY_IDLE_TIMEOUT_SECS,
        "s",
    ),
    int(
        "sources[].tls_handshake_timeout_secs",
        TLS_HANDSHAKE_TIMEOUT_SECS,
        "s",
    ),
    int("alerts.max_file_bytes", MAX_FILE_BYTES, "bytes"),
    int("alerts.keep_files", KEEP_FILES, "files"),
    int("alerts.throttle_secs", THROTTLE_SECS, "s"),
    int("pipeline.queue_batches", QUEUE_BATCHES, "batches"),
    int("pipeline.workers", WORKERS, "threads, 0: one per core"),
    int("rules.max_groups", MAX_GROUPS, "groups"),
    int("rules.lateness_secs", LATENESS_SECS, "s"),
    int("retro.retention_days", RETRO_RETENTION_DAYS, "days"),
    int("retro.max_bytes", RETRO_MAX_BYTES, "bytes"),
    int("share.destinations[].window_secs", share::WINDOW_SECS, "s"),
    int(
        "share.destinations[].retry_initial_secs",
        share::RETRY_INITIAL_SECS,
        "s",
    ),
    int(
        "share.destinations[].retry_max_secs",
        share::RETRY_MAX_SECS,
        "s, at least retry_initial_secs",
    ),
    int(
        "share.destinations[].timeout_secs",
        share::TIMEOUT_SECS,
        "s",
    ),
    int(
        "share.destinations[].anonymise_granularity_secs",
        share::ANONYMISE_GRANULARITY_SECS,
        "s",
    ),
    int(
        "share.destinations[].settle_secs",
        share::SETTLE_SECS,
        "s, default 2 × timeout_secs",
    ),
    int("share.destinations[].batch_size", share::BATCH_SIZE, "rows"),
    int(
        "share.destinations[].max_requests_per_minute",
        share::MAX_REQUESTS_PER_MINUTE,
        "requests",
    ),
    int(
        "share.destinations[].misp_max_sightings_per_row",
        share::MISP_MAX_SIGHTINGS_PER_ROW,
        "sightings",
    ),
    int(
        "share.audit_retention_days",
        share::AUDIT_RETENTION_DAYS,
        "days",
    ),
];

/// Checks `value` against `range`: `must be between 1 and 65536, got 70000`.
pub fn check(range: &RangeInclusive<u64>, value: u64) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ))
    }
}

/// A Markdown table of [`ALL`], for the README.
pub fn markdown_table() -> String {
    let mut s = String::from("| key | range | unit |\n|---|---|---|\n");
    for b in ALL.iter() {
        s.push_str(&format!(
            "| `{}` | {} ..= {} | {} |\n",
            b.key, b.min, b.max, b.unit
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_says_the_range_and_the_value() {
        assert_eq!(check(&QUEUE_BATCHES, 64), Ok(()));
        assert_eq!(
            check(&MAX_CONNECTIONS, u64::MAX).unwrap_err(),
            "must be between 1 and 65536, got 18446744073709551615"
        );
        assert!(check(&QUEUE_BATCHES, 0).is_err());
        assert!(check(&KEEP_FILES, 0).is_ok());
    }

    #[test]
    fn the_table_has_a_row_per_key() {
        let t = markdown_table();
        assert_eq!(t.lines().count(), ALL.len() + 2);
        assert!(t.contains("| `pipeline.workers` | 0 ..= 1024 |"), "{t}");
    }

    #[test]
    fn durations_built_from_the_ranges_cannot_overflow() {
        let now = std::time::Instant::now();
        for secs in [
            *IDLE_TIMEOUT_SECS.end(),
            *THROTTLE_SECS.end(),
            *share::WINDOW_SECS.end(),
            *share::RETRY_MAX_SECS.end(),
            *share::TIMEOUT_SECS.end(),
            *share::ANONYMISE_GRANULARITY_SECS.end(),
        ] {
            assert!(now
                .checked_add(std::time::Duration::from_secs(secs))
                .is_some());
            assert!(chrono::Duration::try_seconds(secs as i64).is_some());
        }
        // The outbox leases a row in `sending` for three request timeouts plus a
        // minute: still far from overflowing.
        let sum = share::TIMEOUT_SECS.end() * 3 + 60;
        assert!(chrono::Duration::try_seconds(sum as i64).is_some());
    }
}
