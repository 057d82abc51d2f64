//! Wake-ups from the file system: a notify watch on the include patterns' base
//! directories. It only makes the source look sooner (a rescan for files created,
//! removed or renamed; a read for data written); the periodic rescan stays the source
//! of truth, so a watch that cannot be set up, fails or overflows changes only latency.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// What the watch saw since the source last looked.
#[derive(Default)]
pub(super) struct Signals {
    /// Files created, removed or renamed (or the watch failed): rescan.
    pub(super) structure: AtomicBool,
    /// Data written: read; rescan only for files not yet decided about.
    pub(super) data: AtomicBool,
}

/// Wakes the source when something changes in the watched directories.
pub(super) struct DirWatch {
    watcher: Option<notify::RecommendedWatcher>,
    bases: Vec<(PathBuf, RecursiveMode)>,
    watched: HashSet<PathBuf>,
}

impl DirWatch {
    pub(super) fn new(
        bases: Vec<(PathBuf, RecursiveMode)>,
        wake: mpsc::Sender<()>,
        signals: Arc<Signals>,
    ) -> DirWatch {
        let warned = AtomicBool::new(false);
        let handler = move |res: notify::Result<notify::Event>| {
            match res {
                Ok(ev) => {
                    // Opens and reads (ours included) change nothing.
                    if matches!(
                        ev.kind,
                        EventKind::Access(
                            AccessKind::Open(_)
                                | AccessKind::Read
                                | AccessKind::Close(AccessMode::Read)
                        )
                    ) {
                        return;
                    }
                    let data_only = matches!(
                        ev.kind,
                        EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_)
                    );
                    if ev.need_rescan() || !data_only {
                        signals.structure.store(true, Ordering::Relaxed);
                    } else {
                        signals.data.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    if warned.swap(true, Ordering::Relaxed) {
                        debug!(error = %e, "File watch failed.");
                    } else {
                        warn!(error = %e, "File watch failed; rescans go on every interval.");
                    }
                    signals.structure.store(true, Ordering::Relaxed);
                }
            }
            let _ = wake.try_send(());
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "Cannot watch directories; relying on rescans.");
                None
            }
        };
        DirWatch {
            watcher,
            bases,
            watched: HashSet::new(),
        }
    }

    /// Watches the base directories not watched yet (one may appear later).
    pub(super) fn refresh(&mut self) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for (dir, mode) in &self.bases {
            if self.watched.contains(dir) {
                continue;
            }
            match w.watch(dir, *mode) {
                Ok(()) => {
                    debug!(dir = %dir.display(), "Watching directory.");
                    self.watched.insert(dir.clone());
                }
                Err(e) => debug!(dir = %dir.display(), error = %e, "Cannot watch directory yet."),
            }
        }
    }
}

/// The directory to watch for a pattern: its components before the first one with a
/// wildcard (recursively if a wildcard names a directory), or a literal path's parent.
pub(super) fn watch_base(pattern: &str) -> (PathBuf, RecursiveMode) {
    let path = Path::new(pattern);
    let comps: Vec<_> = path.components().collect();
    let wild = comps
        .iter()
        .position(|c| c.as_os_str().to_string_lossy().contains(['*', '?', '[']));
    let (base, recursive) = match wild {
        None => (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            false,
        ),
        Some(i) => (comps[..i].iter().collect::<PathBuf>(), i + 1 < comps.len()),
    };
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    (base, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_base_of_patterns() {
        let nr = RecursiveMode::NonRecursive;
        let r = RecursiveMode::Recursive;
        let cases = [
            ("/var/log/nginx/*.log", ("/var/log/nginx", nr)),
            ("/var/log/app.log", ("/var/log", nr)),
            ("/var/log/*/access.log", ("/var/log", r)),
            ("/var/log/**/*.log", ("/var/log", r)),
            ("*.log", (".", nr)),
            ("logs/a?.log", ("logs", nr)),
        ];
        for (pattern, (dir, mode)) in cases {
            assert_eq!(watch_base(pattern), (PathBuf::from(dir), mode), "{pattern}");
        }
    }
}
