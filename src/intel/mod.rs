//! Intel: the indicator model and one loader per format.
//!
//! Every loader pushes into an [`IntelStore`]: a bad record is skipped with its
//! location and reason (see [`IntelStore::skip`]); only a file that cannot be read at
//! all is an [`IntelError`].

pub mod broad;
pub mod canon;
pub mod expiry;
pub mod list;
pub mod load;
pub mod misp;
pub mod model;
pub mod snapshot;
pub mod stix;
pub mod store;
pub mod sync;
pub mod warninglist;

pub use model::{EventInfo, Exclusion, Kind, Meta, Skipped, Source, Tlp};
pub use store::{IndicatorId, IntelStore, StoreOptions};

use std::path::PathBuf;

/// A failure to load a whole intel file or directory.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A problem at one line of a file (`file:line: message`).
    #[error("{path}:{line}: {message}")]
    At {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

impl IntelError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> IntelError {
        IntelError::Io {
            path: path.into(),
            source,
        }
    }

    /// Reads and parses a whole JSON file, errors naming the file (and line/column).
    pub fn read_json(path: &std::path::Path) -> Result<serde_json::Value, IntelError> {
        let bytes = std::fs::read(path).map_err(|e| IntelError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| IntelError::json(path, &e))
    }

    pub fn json(path: impl Into<PathBuf>, e: &serde_json::Error) -> IntelError {
        IntelError::Json {
            path: path.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}
