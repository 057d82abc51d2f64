//! Staging a pass: each pass of a source runs on a copy of its last good data
//! (`staging/`, hard links of `data/`), and the copy replaces `data/` only after the
//! pass succeeded and passed the shrink guard ([`super::runner`]). So the data the
//! index reads is always one complete version, and a pass that fails, is killed, or
//! is held for review never shows half of itself to matching.
//!
//! Directories under `<state>/intel/<name>/`:
//! - `data/`: the last good data (the only one the index reads; [`readable_data_dir`]);
//! - `staging.tmp/`: a copy being made (junk when found);
//! - `staging/`: a complete copy a pass works on. One left by a killed or failed pass
//!   is the next pass's starting point: it holds whole files only, and the saved
//!   cursor is still the one of `data/` (the cursor moves only after a swap), so the
//!   fetchers' idempotent upserts make it as valid a start as `data/` itself, and
//!   the progress of a long pass is not lost;
//! - `old/`: the previous `data/` after a swap, removed once the new cursor is saved
//!   (junk when `data/` exists; the good version when `data/` does not, see below);
//! - `held/`: the data of a pass held by the shrink guard, left for review until the
//!   next pass.
//!
//! The swap is `renameat2(RENAME_EXCHANGE)` of `staging/` and `data/` (atomic: a
//! reader sees one or the other), then `staging/` (now the old data) is renamed to
//! `old/`. On a file system without `RENAME_EXCHANGE` it is two renames (`data/` →
//! `old/`, `staging/` → `data/`); a kill between them leaves no `data/` and the good
//! version in `old/`, which [`readable_data_dir`] reads and [`recover`] puts back.
//!
//! Fetchers must only replace files by rename or remove them (the module invariant of
//! [`super`]): a file written in place would change the hard-linked `data/` too.
//!
//! Costs: one `link` per file of the data directory per pass (and one `unlink` when
//! the copy is dropped), no data copied. Measured on ext4 here (release build): 100
//! files 0.5 ms to link; 10,000 files 0.11 s to link and 0.12 s to drop; 100,000 files
//! 1.2 s and 0.7 s. The swap itself is 6–13 ms (two fsyncs of directories). A TAXII
//! source keeps a fixed number of shard files and a list feed one file, so only a
//! MISP source with very many events pays the upper figures.

use std::io;
use std::path::{Path, PathBuf};

/// The directories of one source.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub data: PathBuf,
    pub staging: PathBuf,
    pub staging_tmp: PathBuf,
    pub old: PathBuf,
    pub held: PathBuf,
}

impl Dirs {
    pub fn new(source_dir: &Path) -> Dirs {
        Dirs {
            data: source_dir.join("data"),
            staging: source_dir.join("staging"),
            staging_tmp: source_dir.join("staging.tmp"),
            old: source_dir.join("old"),
            held: source_dir.join("held"),
        }
    }
}

/// The directory holding a source's last good data: `data/`, or `old/` while a
/// two-rename swap is half done (no `data/`).
pub fn readable_data_dir(source_dir: &Path) -> PathBuf {
    let d = Dirs::new(source_dir);
    if !d.data.exists() && d.old.is_dir() {
        d.old
    } else {
        d.data
    }
}

fn remove_dir_if_present(p: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_dir(p: &Path) -> io::Result<()> {
    std::fs::File::open(p)?.sync_all()
}

/// Puts the directories back in order after a killed pass (call under the source's
/// lock): a half-done swap is completed backwards (`old/` back to `data/`), junk
/// removed, `data/` created. Leaves `staging/` (see the module doc) and `held/`.
pub fn recover(d: &Dirs) -> io::Result<()> {
    if !d.data.exists() && d.old.is_dir() {
        std::fs::rename(&d.old, &d.data)?;
    }
    remove_dir_if_present(&d.old)?;
    remove_dir_if_present(&d.staging_tmp)?;
    std::fs::create_dir_all(&d.data)
}

/// Hard-links every file under `from` into `to` (created), directories recreated.
fn link_tree(from: &Path, to: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut n = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().contains(".tmp-") {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            n += link_tree(&e.path(), &to.join(&name))?;
        } else {
            std::fs::hard_link(e.path(), to.join(&name))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes `staging/` ready: kept as it is when a killed or failed pass left it
/// (returns true), else a fresh hard-linked copy of `data/` (`staging.tmp/`, renamed
/// when complete).
pub fn prepare(d: &Dirs) -> io::Result<bool> {
    if d.staging.is_dir() {
        return Ok(true);
    }
    remove_dir_if_present(&d.staging_tmp)?;
    link_tree(&d.data, &d.staging_tmp)?;
    std::fs::rename(&d.staging_tmp, &d.staging)?;
    Ok(false)
}

/// `renameat2(a, b, RENAME_EXCHANGE)`.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: two NUL-terminated paths that live across the call; no memory is shared.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Replaces `data/` by `staging/` (see the module doc); the old data is left in
/// `old/` for [`drop_old`] once the cursor is saved.
pub fn swap(d: &Dirs) -> io::Result<()> {
    sync_dir(&d.staging)?;
    match exchange(&d.staging, &d.data) {
        Ok(()) => std::fs::rename(&d.staging, &d.old)?,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
            ) =>
        {
            tracing::debug!(error = %e, "RENAME_EXCHANGE unsupported here; swapping by two renames.");
            std::fs::rename(&d.data, &d.old)?;
            std::fs::rename(&d.staging, &d.data)?;
        }
        Err(e) => return Err(e),
    }
    if let Some(parent) = d.data.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes `old/` (after the new cursor is saved).
pub fn drop_old(d: &Dirs) -> io::Result<()> {
    remove_dir_if_present(&d.old)
}

/// Removes `staging/` (a pass that changed nothing, or whose data cannot be used).
pub fn drop_staging(d: &Dirs) -> io::Result<()> {
    remove_dir_if_present(&d.staging)
}

/// Moves `staging/` to `held/` (replacing an older one), for review.
pub fn hold(d: &Dirs) -> io::Result<()> {
    remove_dir_if_present(&d.held)?;
    std::fs::rename(&d.staging, &d.held)
}

/// Removes `held/` (a later pass applied or replaced it).
pub fn drop_held(d: &Dirs) -> io::Result<()> {
    remove_dir_if_present(&d.held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(p: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn a_pass_on_staging_leaves_data_until_the_swap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Dirs::new(dir.path());
        recover(&d).expect("recover");
        std::fs::write(d.data.join("a"), "1").expect("write");
        std::fs::write(d.data.join("b"), "2").expect("write");
        std::fs::write(d.data.join(".a.tmp-9"), "x").expect("write");
        assert!(!prepare(&d).expect("prepare"));
        // What a fetcher does: replace by rename, remove.
        super::super::write_atomic(&d.staging.join("a"), b"new").expect("write");
        std::fs::remove_file(d.staging.join("b")).expect("rm");
        assert_eq!(files(&d.data)[1..], [pair("a", "1"), pair("b", "2")]);
        swap(&d).expect("swap");
        assert_eq!(files(&d.data), [pair("a", "new")]);
        assert!(d.old.is_dir() && !d.staging.exists());
        drop_old(&d).expect("drop");
        assert!(!d.old.exists());
    }

    #[test]
    fn a_staging_left_behind_is_resumed_and_junk_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Dirs::new(dir.path());
        recover(&d).expect("recover");
        std::fs::write(d.data.join("a"), "1").expect("write");
        assert!(!prepare(&d).expect("prepare"));
        std::fs::write(d.staging.join("c"), "3").expect("write");
        std::fs::create_dir_all(&d.staging_tmp).expect("mkdir");
        recover(&d).expect("recover");
        assert!(!d.staging_tmp.exists());
        assert!(prepare(&d).expect("prepare"), "resumed");
        assert_eq!(files(&d.staging), [pair("a", "1"), pair("c", "3")]);
    }

    #[test]
    fn a_half_done_two_rename_swap_reads_and_recovers_the_old_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Dirs::new(dir.path());
        recover(&d).expect("recover");
        std::fs::write(d.data.join("a"), "1").expect("write");
        assert!(!prepare(&d).expect("prepare"));
        super::super::write_atomic(&d.staging.join("a"), b"2").expect("write");
        // Killed between `data` → `old` and `staging` → `data`.
        std::fs::rename(&d.data, &d.old).expect("rename");
        assert_eq!(readable_data_dir(dir.path()), d.old);
        recover(&d).expect("recover");
        assert_eq!(readable_data_dir(dir.path()), d.data);
        assert_eq!(files(&d.data), [pair("a", "1")]);
        assert!(prepare(&d).expect("prepare"), "the staged pass resumes");
    }

    #[test]
    fn hold_keeps_the_data_and_moves_the_pass_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = Dirs::new(dir.path());
        recover(&d).expect("recover");
        std::fs::write(d.data.join("a"), "1").expect("write");
        prepare(&d).expect("prepare");
        std::fs::remove_file(d.staging.join("a")).expect("rm");
        hold(&d).expect("hold");
        assert_eq!(files(&d.data), [pair("a", "1")]);
        assert!(d.held.is_dir() && !d.staging.exists());
        assert!(
            !prepare(&d).expect("prepare"),
            "a fresh copy, not the held one"
        );
        drop_held(&d).expect("drop");
        assert!(!d.held.exists());
    }
}
