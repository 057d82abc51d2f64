//! STIX 2.1 bundles in a directory: one file per sighting, rendered by
//! [`crate::share::render::stix`].
//!
//! Invariant: a file that exists is complete (temporary file, fsync, rename, fsync of
//! the directory), so `is_delivered` is "does the file exist". Costs: two fsyncs per
//! sighting.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{DeliveryError, Exchange, Outgoing, Transport};
use crate::share::render::stix::{dir_file, object_id};

/// One bundle file per sighting, `<dir>/<sighting id>.json`, written atomically
/// (temporary file, fsync, rename): a file that exists is complete.
pub struct StixDirTransport {
    name: String,
    dir: PathBuf,
    log: std::sync::Mutex<Vec<Exchange>>,
}

impl StixDirTransport {
    pub fn new(name: &str, dir: &Path) -> StixDirTransport {
        StixDirTransport {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            log: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn path_for(&self, out: &Outgoing<'_>) -> PathBuf {
        self.dir
            .join(format!("{}.json", object_id(out.sighting, out.key)))
    }

    fn io(&self, path: &Path, source: std::io::Error) -> DeliveryError {
        DeliveryError::Io {
            destination: self.name.clone(),
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Transport for StixDirTransport {
    fn deliver(&self, out: &Outgoing<'_>) -> Result<(), DeliveryError> {
        // Name and bytes as the preview renders them (one function for both).
        let (name, body) = dir_file(out).ok_or_else(|| DeliveryError::Unsupported {
            destination: self.name.clone(),
            detail: "an expiration sighting has no STIX 2.1 form".into(),
        })?;
        fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(|e| self.io(&tmp, e))?;
        f.write_all(&body).map_err(|e| self.io(&tmp, e))?;
        f.sync_all().map_err(|e| self.io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))?;
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Exchange {
                url: path.display().to_string(),
                body: String::from_utf8_lossy(&body).into_owned(),
                status: None,
                answer: "written".into(),
            });
        if let Ok(d) = fs::File::open(&self.dir) {
            // Makes the rename durable; a failure here loses nothing we could fix.
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn is_delivered(&self, out: &Outgoing<'_>) -> Result<bool, DeliveryError> {
        Ok(self.path_for(out).is_file())
    }

    fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
