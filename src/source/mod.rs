//! Sources: where lines come from.
//!
//! Batch inputs for `tripline hunt` ([`batch`]); for the sidecar (`tripline run`),
//! live sources that hand lines on in [`Batch`]es through a bounded tokio channel:
//! file tailing ([`file`]), syslog over UDP/TCP/TLS ([`syslog`]) and stdin. A source
//! that cannot send (the channel is full) waits: that is the backpressure that slows
//! file reading and stops TCP reads when matching falls behind.
//!
//! Invariant: a batch's [`Ack`] fires only after every line of it was matched and its
//! alerts were written; file sources advance their checkpoints on acks only, so a
//! restart replays at most what was not acknowledged.

pub mod batch;
pub mod file;
pub mod framing;
pub mod relp;
pub mod stdin;
pub mod syslog;

use std::net::SocketAddr;
use std::sync::Arc;

/// Where one live line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file: its path when read, the byte offset of the line, and its 1-based line
    /// number when known (a file followed from its start, or from an offset whose
    /// line count was taken; see `file::tail`).
    File {
        path: Arc<str>,
        offset: u64,
        line: Option<u64>,
        /// The file source's persistent id of the file content (it follows the file
        /// through renames and restarts; a file truncated in place gets a new one).
        /// `None` for a hunt's inputs.
        file_id: Option<u64>,
    },
    /// A syslog message: the sending peer and transport.
    Syslog {
        peer: SocketAddr,
        transport: Transport,
    },
    /// Standard input: the 1-based line number.
    Stdin { line: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    /// RELP (rsyslog's `omrelp`): TCP with application-level acknowledgements.
    Relp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
        }
    }
}

/// One line (one syslog message), without its line terminator.
#[derive(Clone, Debug)]
pub struct Line {
    pub bytes: Vec<u8>,
    pub origin: Origin,
}

/// Fires when a batch has been fully handled (matched, alerts written).
pub type Ack = tokio::sync::oneshot::Sender<()>;

/// Lines handed on together by one source.
#[derive(Debug)]
pub struct Batch {
    /// Index of the configured source (its name is the metrics label).
    pub source: usize,
    pub lines: Vec<Line>,
    pub ack: Option<Ack>,
}

/// The channel sources send batches into. Bounded: `send` waits when full.
pub type BatchSender = tokio::sync::mpsc::Sender<Batch>;
