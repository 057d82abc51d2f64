//! Talking to servers, for whoever needs to: a blocking HTTP client with TLS
//! verification on ([`http`]), and credentials that never print ([`secret`]).
//!
//! Neutral on purpose: nothing here knows about sightings or intel. Sharing
//! (`share::transport`) uses it to deliver sightings; fetching intel from MISP or
//! TAXII servers can use the same client and secrets. Each caller wraps
//! [`HttpError`] into its own boundary's error, adding which destination or feed it
//! was talking to.

pub mod http;
pub mod secret;

pub use http::{shorten, Answer, HttpClient, HttpClientBuilder, HttpError};
pub use secret::{Secret, SecretError};
