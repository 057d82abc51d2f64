//! Standard input as a live source (`tripline run --stdin`, pipelines): lines in
//! batches of at most 256, handed on as soon as no more input is buffered, numbered
//! from 1; the source ends at end of input or at shutdown.

use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use super::{Batch, BatchSender, Line, Origin};

/// Reads stdin as one source until end of input.
pub async fn run(
    source: usize,
    tx: BatchSender,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut reader = tokio::io::BufReader::with_capacity(1 << 16, tokio::io::stdin());
    let mut n = 0u64;
    let mut batch: Vec<Line> = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = tokio::select! {
            r = reader.read_until(b'\n', &mut buf) => r?,
            _ = shutdown.changed() => 0,
        };
        if read > 0 {
            n += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            batch.push(Line {
                bytes: buf.clone(),
                origin: Origin::Stdin { line: n },
            });
        }
        // Hand on when the batch is full, at the end, or when no more input is buffered.
        if !batch.is_empty() && (read == 0 || batch.len() >= 256 || reader.buffer().is_empty()) {
            let lines = std::mem::take(&mut batch);
            if tx
                .send(Batch {
                    source,
                    lines,
                    ack: None,
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        if read == 0 {
            return Ok(());
        }
    }
}
