//! Batch input: files, directories (recursively), archives (gzip, zstd, bzip2, xz, lz4:
//! detected by their magic bytes, multi-member/-frame/-stream) and stdin, read as
//! chunks of whole lines.
//!
//! A [`ChunkReader`] turns one input into a sequence of [`Piece`]s: chunks of about
//! [`CHUNK_BYTES`] that end on a line boundary, so that chunks can be matched in
//! parallel and put back in order. Compression ([`Compression`]) is detected by its
//! magic bytes, not the file name, and multi-member archives are read whole. A line longer than the limit is not
//! buffered whole: the reader skips to its end and reports it as
//! [`Piece::Oversized`], so memory stays bounded by the chunk size plus the limit. A read
//! error (a truncated archive) ends the input with [`Piece::Error`] after the lines read
//! before the damage, the last partial line included.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

/// Default target size of one chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// One input to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::Path(p) => p.display().to_string(),
        }
    }
}

/// How a directory walk chooses what to search (the choices ripgrep names
/// `--follow` and `--hidden`). Operands named on the command line are always
/// searched, symlinks and dot files included; these apply to what a walk finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Follow symlinks met in a walk (`-L`); a link to one of its own ancestor
    /// directories (a loop) is reported once and not followed.
    pub follow_links: bool,
    /// Search dot files and descend into dot directories (`--hidden`).
    pub hidden: bool,
}

/// What [`expand`] found.
#[derive(Debug, Default)]
pub struct Expanded {
    pub inputs: Vec<Input>,
    /// Operands or entries that could not be read, and symlink loops (with `-L`).
    pub errors: Vec<(PathBuf, io::Error)>,
    /// Dot files and dot directories a walk left out (without `--hidden`).
    pub skipped_hidden: u64,
    /// Symlinks a walk left out (without `-L`).
    pub skipped_links: u64,
}

/// Expands command-line operands: `-` is stdin, a directory is every regular file
/// below it in name order (see [`WalkOptions`]). Operands that cannot be read are
/// returned as errors with their path; the others are still searched.
pub fn expand(operands: &[PathBuf], opts: WalkOptions) -> Expanded {
    let mut out = Expanded::default();
    for op in operands {
        if op.as_os_str() == "-" {
            out.inputs.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(op) {
            Ok(m) if m.is_dir() => {
                let mut ancestors = vec![dir_id(&m)];
                walk(op, opts, &mut ancestors, &mut out);
            }
            Ok(_) => out.inputs.push(Input::Path(op.clone())),
            Err(e) => out.errors.push((op.clone(), e)),
        }
    }
    out
}

/// A directory's identity (device, inode): how a symlink loop is recognised.
fn dir_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

fn walk(dir: &Path, opts: WalkOptions, ancestors: &mut Vec<(u64, u64)>, out: &mut Expanded) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors.push((dir.to_path_buf(), e));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().first() == Some(&b'.'));
        if hidden && !opts.hidden {
            out.skipped_hidden += 1;
            continue;
        }
        let link = match std::fs::symlink_metadata(&p) {
            Ok(m) => m.file_type().is_symlink(),
            Err(e) => {
                out.errors.push((p, e));
                continue;
            }
        };
        if link && !opts.follow_links {
            out.skipped_links += 1;
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                let id = dir_id(&m);
                if ancestors.contains(&id) {
                    let e = io::Error::other(
                        "symlink loop: it points to a directory that contains it; not followed",
                    );
                    out.errors.push((p, e));
                    continue;
                }
                ancestors.push(id);
                walk(&p, opts, ancestors, out);
                ancestors.pop();
            }
            Ok(m) if m.is_file() => out.inputs.push(Input::Path(p)),
            Ok(_) => {}
            Err(e) => out.errors.push((p, e)),
        }
    }
}

/// What a reader yields.
#[derive(Debug)]
pub enum Piece {
    /// Whole lines (the last one may lack its newline at the end of input), starting
    /// at byte `offset` of the (decompressed) input.
    Lines { offset: u64, data: Vec<u8> },
    /// One line longer than the limit, skipped: where it started and its length.
    Oversized { offset: u64, len: u64 },
    /// The input could not be read (further); what came before was yielded.
    Error(String),
}

/// Reads one input as pieces.
pub struct ChunkReader {
    reader: Box<dyn Read + Send>,
    carry: Vec<u8>,
    /// Offset of `carry[0]` in the input.
    offset: u64,
    max_line: usize,
    chunk: usize,
    /// Inside an oversized line: where it started and how much was skipped.
    skipping: Option<(u64, u64)>,
    done: bool,
    pending_error: Option<String>,
    /// Buffers handed back by consumers, reused so that reading does not allocate and
    /// fault in fresh memory for every chunk.
    recycled: Option<crossbeam_channel::Receiver<Vec<u8>>>,
    pub compressed: bool,
}

/// A pool of chunk buffers: consumers send buffers back through the sender after
/// use; readers opened with the receiver reuse them.
pub fn buffer_pool(
    capacity: usize,
) -> (
    crossbeam_channel::Sender<Vec<u8>>,
    crossbeam_channel::Receiver<Vec<u8>>,
) {
    crossbeam_channel::bounded(capacity)
}

/// Bytes read from the inputs' files, shared between the readers and the progress
/// bar: for an archive these are compressed bytes, so progress is measured against
/// the files' sizes on disk.
pub type ByteCounter = Arc<AtomicU64>;

/// Adds what it reads to a [`ByteCounter`].
struct Counting {
    inner: Box<dyn Read + Send>,
    counter: ByteCounter,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Concatenated LZ4 frames read as one stream. `lz4_flex`'s decoder returns 0 at
/// the end of each frame and starts the next on the following read; the input is at
/// its end only when a read that returned 0 consumed nothing.
struct Lz4Frames {
    decoder: lz4_flex::frame::FrameDecoder<Counting>,
    consumed: ByteCounter,
}

impl Lz4Frames {
    fn new(inner: impl Read + Send + 'static) -> Lz4Frames {
        let consumed = ByteCounter::default();
        let counting = Counting {
            inner: Box::new(inner),
            counter: consumed.clone(),
        };
        Lz4Frames {
            decoder: lz4_flex::frame::FrameDecoder::new(counting),
            consumed,
        }
    }
}

impl Read for Lz4Frames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let before = self.consumed.load(Ordering::Relaxed);
            let n = self.decoder.read(buf)?;
            if n > 0 || self.consumed.load(Ordering::Relaxed) == before {
                return Ok(n);
            }
        }
    }
}

/// A compressed input, told by its magic bytes (never by its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
    /// The LZ4 frame format (`lz4` tool), not the raw block format.
    Lz4,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with.
    pub fn of(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Some(Compression::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Compression::Lz4)
        } else {
            None
        }
    }
}

impl ChunkReader {
    /// Opens `input`; gzip, zstd, bzip2, xz and lz4 are detected by their magic bytes.
    /// Chunks are about `chunk` bytes. With `counter`, every byte read from the file
    /// (compressed bytes for an archive) is added to it as it is read.
    pub fn open(
        input: &Input,
        chunk: usize,
        max_line: usize,
        recycled: Option<crossbeam_channel::Receiver<Vec<u8>>>,
        counter: Option<ByteCounter>,
    ) -> io::Result<ChunkReader> {
        let raw: Box<dyn Read + Send> = match input {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(p) => Box::new(File::open(p)?),
        };
        let mut raw: Box<dyn Read + Send> = match counter {
            Some(counter) => Box::new(Counting {
                inner: raw,
                counter,
            }),
            None => raw,
        };
        let mut magic = [0u8; 6];
        let mut got = 0;
        while got < magic.len() {
            match raw.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = io::Cursor::new(magic[..got].to_vec());
        let chained = head.chain(raw);
        let kind = Compression::of(&magic[..got]);
        let reader: Box<dyn Read + Send> = match kind {
            None => Box::new(chained),
            Some(Compression::Gzip) => Box::new(MultiGzDecoder::new(chained)),
            Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::new(chained)?),
            Some(Compression::Bzip2) => Box::new(bzip2::read::MultiBzDecoder::new(chained)),
            Some(Compression::Xz) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(chained)),
            Some(Compression::Lz4) => Box::new(Lz4Frames::new(chained)),
        };
        let compressed = kind.is_some();
        Ok(ChunkReader {
            reader,
            carry: Vec::with_capacity(chunk.max(1) * 2),
            chunk: chunk.max(1),
            offset: 0,
            max_line: max_line.max(1),
            skipping: None,
            done: false,
            pending_error: None,
            recycled,
            compressed,
        })
    }

    /// The next piece, or `None` at the end of the input.
    fn next_piece(&mut self) -> Option<Piece> {
        loop {
            if self.done {
                if self.carry.is_empty() {
                    return None;
                }
                let data = std::mem::take(&mut self.carry);
                let offset = self.offset;
                self.offset += data.len() as u64;
                return Some(Piece::Lines { offset, data });
            }
            // Fill up to one chunk beyond the carry.
            let start = self.carry.len();
            self.carry.resize(start + self.chunk, 0);
            let n = loop {
                match self.reader.read(&mut self.carry[start..]) {
                    Ok(n) => break Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    // Lines before the damage are still yielded (the done branch
                    // above); the error comes last.
                    self.carry.truncate(start);
                    self.done = true;
                    self.pending_error = Some(e.to_string());
                    if let Some(p) = self.finish_skip() {
                        return Some(p);
                    }
                    continue;
                }
            };
            self.carry.truncate(start + n);
            if n == 0 {
                self.done = true;
                if let Some(p) = self.finish_skip() {
                    return Some(p);
                }
                continue;
            }
            if let Some((skip_start, skipped)) = self.skipping {
                // Drop bytes up to the end of the oversized line.
                match memchr::memchr(b'\n', &self.carry) {
                    Some(nl) => {
                        let len = skipped + nl as u64 + 1;
                        self.carry.drain(..nl + 1);
                        self.offset = skip_start + len;
                        self.skipping = None;
                        return Some(Piece::Oversized {
                            offset: skip_start,
                            len,
                        });
                    }
                    None => {
                        self.skipping = Some((skip_start, skipped + self.carry.len() as u64));
                        self.carry.clear();
                        continue;
                    }
                }
            }
            match memchr::memrchr(b'\n', &self.carry) {
                Some(nl) => {
                    let mut rest = self
                        .recycled
                        .as_ref()
                        .and_then(|r| r.try_recv().ok())
                        .unwrap_or_else(|| Vec::with_capacity(self.chunk * 2));
                    rest.clear();
                    rest.extend_from_slice(&self.carry[nl + 1..]);
                    self.carry.truncate(nl + 1);
                    let data = std::mem::replace(&mut self.carry, rest);
                    let offset = self.offset;
                    self.offset += data.len() as u64;
                    return Some(Piece::Lines { offset, data });
                }
                None if self.carry.len() > self.max_line => {
                    self.skipping = Some((self.offset, self.carry.len() as u64));
                    self.carry.clear();
                }
                None => {}
            }
        }
    }

    fn finish_skip(&mut self) -> Option<Piece> {
        let (offset, len) = self.skipping.take()?;
        self.offset = offset + len;
        Some(Piece::Oversized { offset, len })
    }
}

/// Iterates the pieces of an input, then its read error if one ended it.
impl Iterator for ChunkReader {
    type Item = Piece;
    fn next(&mut self) -> Option<Piece> {
        if let Some(p) = self.next_piece() {
            return Some(p);
        }
        self.pending_error.take().map(Piece::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn drain(r: ChunkReader) -> Vec<u8> {
        let mut out = Vec::new();
        for p in r {
            match p {
                Piece::Lines { data, .. } => out.extend(data),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn magic_bytes_tell_the_compression() {
        let table: &[(&[u8], Option<Compression>)] = &[
            (&[0x1f, 0x8b, 8], Some(Compression::Gzip)),
            (&[0x28, 0xb5, 0x2f, 0xfd], Some(Compression::Zstd)),
            (b"BZh9", Some(Compression::Bzip2)),
            (b"BZh0", None),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0], Some(Compression::Xz)),
            (&[0x04, 0x22, 0x4d, 0x18], Some(Compression::Lz4)),
            (&[0x04, 0x22, 0x4d], None),
            (b"Mar  4 10:00:01 host", None),
            (b"", None),
        ];
        for (head, want) in table {
            assert_eq!(Compression::of(head), *want, "{head:?}");
        }
    }

    /// The counter sees the bytes read from the file (compressed), not the lines
    /// yielded (decompressed): what the progress bar measures against file sizes.
    #[test]
    fn byte_counter_counts_compressed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i} of a log that compresses well\n").into_bytes())
            .collect();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&text).unwrap();
        let gz = e.finish().unwrap();
        let path = dir.path().join("log.gz");
        std::fs::write(&path, &gz).unwrap();
        for (input, on_disk) in [(&path, gz.len()), (&dir.path().join("plain"), text.len())] {
            if !input.exists() {
                std::fs::write(input, &text).unwrap();
            }
            let counter = ByteCounter::default();
            let r = ChunkReader::open(
                &Input::Path(input.clone()),
                4096,
                1 << 20,
                None,
                Some(counter.clone()),
            )
            .unwrap();
            assert_eq!(drain(r), text);
            assert_eq!(counter.load(Ordering::Relaxed), on_disk as u64);
        }
    }

    #[test]
    fn lz4_frames_are_read_one_after_another() {
        let mut data = Vec::new();
        // An empty frame between two others does not end the input.
        for part in [&b"a\nb\n"[..], b"", b"c\n"] {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(part).unwrap();
            data.extend(e.finish().unwrap());
        }
        let mut out = Vec::new();
        Lz4Frames::new(io::Cursor::new(data))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\nc\n");
    }
}
