//! tripline's integration tests: one test binary (as ripgrep's `tests/`), so the suite
//! links once. Each module drives one part for real (the binary, the file source,
//! syslog, sharing servers); `util` holds what several of them share.
//!
//! Nothing here asserts on timing: waits poll for a condition (a file, a metric, a log
//! line) with a generous deadline, so the suite holds on a loaded 2-core machine.

mod util;

mod archives;
mod cli;
mod cli_share;
mod config;
mod corpus;
mod decode;
mod durability;
mod ecs;
mod exactly_once_ingest;
mod expiry;
mod feed_hashes;
mod feedback;
mod file_tail;
mod intel_cache;
mod intel_sanity;
mod intel_sync;
mod intel_sync_guard;
mod match_semantics;
mod metrics;
mod misp_sync;
mod pipeline;
mod relp;
mod retro_live;
mod retro_match;
mod retro_store;
mod rules;
mod run;
mod share;
mod share_delivery;
mod share_exactly_once;
mod share_policy;
mod share_preview;
mod share_taxii;
mod syslog;
mod taxii_sync;
mod thread_invariance;
