//! Renderers: what a sighting looks like in each format, as pure functions of
//! [`Sighting`](crate::share::Sighting)s and outbox rows: MISP `/sightings/add` bodies
//! and restSearch checks ([`misp`]), STIX 2.1 objects and bundles ([`stix`]), and the
//! `tripline sightings export` output ([`export`]). No I/O here: transports
//! (`share::transport`) send what these build.

pub mod export;
pub mod misp;
pub mod stix;
