//! Decoding: what a raw line says about itself beyond its text.
//!
//! Matching always works on the raw bytes; decoding adds context. For now that is the
//! event's own time ([`time::event_time`]), read only from lines that matched.

pub mod time;
