//! Sharing back: confirmed correlations become sightings for the communities that
//! supplied the indicators, guarded by policy and delivered through a durable outbox.
//!
//! Flow: [`Confirmation`](crate::correlate::Confirmation) → [`policy::Router`] (which
//! destination may hear about which indicator: only the supplying community, within
//! its TLP ceiling and MISP distribution) → [`Outbox`] (SQLite: one row per
//! indicator, destination and window; approval; retries with backoff; exactly-once
//! delivery across crashes) → a [`Transport`] ([`transport`]): MISP
//! (`/sightings/add`), a TAXII 2.1 collection, or STIX bundles in a directory.
//! Transports do the I/O; what they send is built by the pure renderers in
//! [`render`] (MISP bodies, STIX objects and bundles, `sightings export`).
//!
//! Invariant: a [`Sighting`] carries only the indicator value (as the intel wrote it),
//! its attribute/indicator id or event ids, the sighting type, a count, first and last
//! time, our source name (or none) and the destination; nothing from the log line.
//! Every format written here is rendered from a `Sighting` and nothing else.
//!
//! False-positive reports go back the same way (type 1 sightings) and add the
//! indicator to the local [`SuppressionList`] ([`suppress`]): its alerts are marked
//! (or dropped) and its positive sightings stop.
//!
//! Blocking: delivery uses blocking HTTP; the sidecar calls it from a blocking thread.

pub mod outbox;
pub mod policy;
pub mod preview;
pub mod render;
pub mod sighting;
pub mod stats;
pub mod suppress;
pub mod transport;
pub mod victim;

/// Old paths, kept so that callers of `share::delivery`, `share::taxii`,
/// `share::misp`, `share::stix` and `share::export` still compile.
pub use render::{export, misp, stix};
pub use transport as delivery;
pub use transport::taxii;

pub use outbox::{
    preview, preview_with_drops, AuditEntry, DeliveryReport, IntelView, Outbox, OutboxEntry,
    OutboxError, RecordOutcome, Selection, State,
};
pub use policy::{
    Approval, DestinationConfig, DropReason, Router, ShareConfig, ShareConfigError, TransportConfig,
};
pub use render::export::ExportFormat;
pub use sighting::{Outgoing, Sighting, SightingType, Target};
pub use stats::{DeliveryStats, ShareStats};
pub use suppress::{FeedbackConfig, SuppressedAlerts, Suppression, SuppressionList};
pub use transport::{DeliveryError, Secret, Transport};
