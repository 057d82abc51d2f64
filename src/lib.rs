//! tripline: a threat-intelligence correlation engine.
//!
//! The crate is laid out in the order data flows (see `ARCHITECTURE.md`), and so are
//! the modules below:
//!
//! ```text
//!  intel ──► index (immutable, swapped whole on reload)
//!               │
//!  source ──► scan (matcher, on workers) ──► emit (in order: decode, time, validity,
//!                                                  alert, observations)
//!                                               │
//!                           sink (alerts, metrics) ◄┴► correlate (rules) ──► share
//! ```
//!
//! - [`intel`]: the indicator model and one loader per format, warninglists.
//! - [`index`]: compiles intel into an immutable [`index::Index`];
//!   [`index::build`] is the one function every command builds it with.
//! - [`source`]: where lines come from (batch inputs, file tailing, syslog, stdin);
//!   sources only frame lines.
//! - [`decode`]: what a matched line says about itself: format, host, fields, and
//!   its own time (the one clock).
//! - [`matcher`]: the hot path, one pass per line.
//! - [`scan`]: the matcher over a batch of lines, on worker threads.
//! - [`emit`]: the in-order step every driver shares: decode, event time, validity,
//!   the typed alert, observations, handed to an [`emit::AlertSink`].
//! - [`correlate`]: rules that confirm matches.
//! - [`share`]: sightings back to the communities: policy, outbox, delivery.
//! - [`sink`]: alerts as ECS JSON lines, metrics, summaries and reports.
//! - [`hunt`] and [`run`]: the two drivers (batch and sidecar) of scan and emit.
//! - [`config`]: the sidecar's TOML, validated into a [`config::Plan`].
//! - [`cli`]: one file per subcommand.

pub mod cli;
pub mod config;
pub mod correlate;
pub mod decode;
pub mod emit;
pub mod hunt;
pub mod index;
pub mod intel;
pub mod lookup;
pub mod matcher;
pub mod net;
pub mod retro;
pub mod run;
pub mod scan;
pub mod share;
pub mod sink;
pub mod source;
