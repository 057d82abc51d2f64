//! tripline: a threat-intelligence correlation engine.
//!
//! The crate is laid out in the order data flows (see `ARCHITECTURE.md`):
//! [`intel`] loaders fill an [`intel::IntelStore`], which [`index`] compiles into an
//! immutable [`index::Index`]; [`source`] reads lines, [`matcher`] scans each line
//! once against the index, and [`sink`] writes alerts (ECS JSON lines) and summaries.
//! [`hunt`] wires these together for batch correlation.

pub mod cli;
pub mod cli_share;
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
pub mod run;
pub mod scan;
pub mod share;
pub mod sink;
pub mod source;
