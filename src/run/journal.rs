//! The correlation journal: an append-only file of the observations the sidecar's
//! rules took in since their state was last saved (`<state>/correlation.journal`).
//!
//! Why: file checkpoints move once a batch is acknowledged (every second), the
//! rules' state is saved every 30 s. Without the journal, the lines acknowledged
//! between two saves would be neither replayed (the checkpoint passed them) nor kept
//! (the state predates them), and `kill -9` would lose open windows. So each batch's
//! observations are appended and `fdatasync`ed *before* the batch is acknowledged:
//! the checkpoint never runs ahead of what the state and the journal hold together.
//!
//! Format: a header line `{"generation":N}`, then one observation per line (JSON, as
//! in snapshots: `correlate::state::ObservationDoc`, origin included, no log text).
//! The saved state names the generation of the journal that continues it; a journal
//! of another generation is stale (the state was saved after it) and is ignored. A
//! save writes the state first (generation N+1), then replaces the journal by an
//! empty one of generation N+1 (temporary file, fsync, rename, fsync of the
//! directory): a crash between the two leaves a stale journal, never one applied
//! twice. A torn last line (a crash during an append) ends the replay.
//!
//! Costs: one `write` and one `fdatasync` per acknowledged batch that produced
//! observations (batches without matches cost nothing); about 400 bytes per
//! observation until the next save.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::correlate::state::ObservationDoc;
use crate::correlate::Observation;

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "correlation.journal";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    generation: u64,
}

/// The open journal of one generation.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    generation: u64,
    /// Appended since the last sync, not yet written.
    pending: Vec<u8>,
    /// Bytes in the file.
    bytes: u64,
}

impl Journal {
    /// A journal at `<dir>/correlation.journal`; nothing is opened until
    /// [`Journal::reset`].
    pub fn new(dir: &Path) -> Journal {
        Journal {
            path: dir.join(JOURNAL_FILE),
            file: None,
            generation: 0,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    /// The observations of generation `generation`, in the order they were taken in;
    /// empty when the journal is missing or of another generation. Stops at the
    /// first line that does not parse (a torn append).
    pub fn read(&self, generation: u64) -> Vec<Observation> {
        let Ok(f) = File::open(&self.path) else {
            return Vec::new();
        };
        let mut lines = BufReader::new(f).split(b'\n');
        let header: Option<Header> = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| serde_json::from_slice(&l).ok());
        if header.is_none_or(|h| h.generation != generation) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for line in lines {
            let Ok(line) = line else { break };
            match serde_json::from_slice::<ObservationDoc>(&line).map(ObservationDoc::into_obs) {
                Ok(Ok(o)) => out.push(o),
                _ => {
                    tracing::warn!(path = %self.path.display(), kept = out.len(), "Correlation journal ends in a torn or unreadable line; replayed what came before it.");
                    break;
                }
            }
        }
        out
    }

    /// Replaces the journal by an empty one of `generation` (after a save of the
    /// state that names it).
    pub fn reset(&mut self, generation: u64) -> io::Result<()> {
        self.file = None;
        self.pending.clear();
        let tmp = self.path.with_extension("journal.tmp");
        let mut f = File::create(&tmp)?;
        let mut header = serde_json::to_vec(&Header { generation }).map_err(io::Error::other)?;
        header.push(b'\n');
        f.write_all(&header)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = Some(OpenOptions::new().append(true).open(&self.path)?);
        self.generation = generation;
        self.bytes = header.len() as u64;
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes written since the last reset.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Queues one observation; written at the next [`Journal::sync`].
    pub fn push(&mut self, o: &Observation) {
        if serde_json::to_writer(&mut self.pending, &ObservationDoc::from_obs(o)).is_ok() {
            self.pending.push(b'\n');
        }
    }

    /// Writes and `fdatasync`s what was queued. On error the queue is kept.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("the correlation journal is not open"));
        };
        f.write_all(&self.pending)?;
        f.sync_data()?;
        self.bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}
