//! Standard input as a live source (`tripline run --stdin`, pipelines): lines in
//! batches of at most [`BATCH_LINES`], handed on as soon as no more input is waiting,
//! numbered from 1. The source ends at end of input (an unterminated last line is a
//! line) or at shutdown.
//!
//! Stdin is read on a blocking thread that waits for input with `poll(2)` and a short
//! timeout, so a shutdown ends it within [`POLL`] even while the input is idle, and it
//! never reads input it will not hand on: at shutdown the complete lines already read
//! are handed on, and what is still in the pipe stays there. (Only a partial line read
//! before the shutdown, whose end had not arrived, is dropped, and logged.)
//!
//! Lines longer than [`MAX_LINE_BYTES`] are skipped to their newline, logged once
//! each; memory stays bounded by that plus one read.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::sync::watch;

use super::{Batch, BatchSender, Line, Origin};

/// Lines per batch at most.
pub const BATCH_LINES: usize = 256;
/// Longer lines are skipped.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// How often the reader looks at the shutdown signal while stdin is idle.
pub const POLL: Duration = Duration::from_millis(100);

/// Reads stdin as source `source` until end of input or shutdown.
pub async fn run(
    source: usize,
    tx: BatchSender,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    tokio::task::spawn_blocking(move || read_loop(source, &tx, &shutdown))
        .await
        .map_err(io::Error::other)?
}

/// Whether stdin has input (or end of input) within `timeout`.
fn readable(timeout: Duration) -> io::Result<bool> {
    let mut fds = libc::pollfd {
        fd: io::stdin().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut fds, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

fn read_loop(source: usize, tx: &BatchSender, shutdown: &watch::Receiver<bool>) -> io::Result<()> {
    use std::io::Read;
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    // The start of a line whose end has not been read yet.
    let mut partial: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut n = 0u64;
    let mut batch: Vec<Line> = Vec::new();
    let send = |batch: &mut Vec<Line>| -> bool {
        if batch.is_empty() {
            return true;
        }
        let lines = std::mem::take(batch);
        tx.blocking_send(Batch {
            source,
            lines,
            ack: None,
        })
        .is_ok()
    };
    let push = |line: &[u8], batch: &mut Vec<Line>, n: &mut u64| {
        *n += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        batch.push(Line {
            bytes: line.to_vec(),
            origin: Origin::Stdin { line: *n },
        });
    };
    loop {
        if *shutdown.borrow() {
            if !partial.is_empty() {
                tracing::warn!(
                    bytes = partial.len(),
                    "Stopped in the middle of a line on stdin; it was not matched."
                );
            }
            send(&mut batch);
            return Ok(());
        }
        // Nothing more waiting: hand on what was read, then wait for input.
        if !batch.is_empty() && !readable(Duration::ZERO)? && !send(&mut batch) {
            return Ok(());
        }
        if !readable(POLL)? {
            continue;
        }
        let got = match stdin.read(&mut buf) {
            Ok(0) => {
                // End of input: an unterminated last line is a line.
                if !partial.is_empty() && !skipping {
                    push(&partial, &mut batch, &mut n);
                }
                send(&mut batch);
                return Ok(());
            }
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &buf[..got];
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if skipping {
                skipping = false;
            } else if partial.is_empty() {
                push(&rest[..i], &mut batch, &mut n);
            } else {
                partial.extend_from_slice(&rest[..i]);
                push(&partial, &mut batch, &mut n);
                partial.clear();
            }
            rest = &rest[i + 1..];
            if batch.len() >= BATCH_LINES && !send(&mut batch) {
                return Ok(());
            }
        }
        if !skipping {
            partial.extend_from_slice(rest);
            if partial.len() > MAX_LINE_BYTES {
                n += 1;
                tracing::warn!(
                    line = n,
                    max = MAX_LINE_BYTES,
                    "Skipped an oversized line on stdin."
                );
                partial.clear();
                skipping = true;
            }
        }
    }
}
