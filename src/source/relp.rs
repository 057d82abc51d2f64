//! RELP source: a server for rsyslog's Reliable Event Logging Protocol (`omrelp`), the
//! syslog transport with application-level acknowledgements. Framing and the protocol
//! texts are in [`frame`]; this module owns the listener, the connections and when
//! each message is answered.
//!
//! What a message becomes: one [`Line`] whose bytes are the data of a `syslog` frame
//! (trailing LF, CR and NUL removed) and whose origin is [`Origin::Syslog`] with the
//! peer and [`Transport::Relp`]. Headers and times are read by [`crate::decode`], with
//! the source's zone, as for the syslog source.
//!
//! **The acknowledgement flow.** The messages a connection decodes from what it read
//! (at most `window` of them) are handed on as one [`Batch`] carrying an
//! [`Ack`](super::Ack); a full channel makes the connection wait. The `syslog` frames
//! in it are answered `200 OK` only once the pipeline fires that ack, that is once
//! their alerts were written and flushed; answers go out in the order the commands
//! came (the spec requires it), so an `open`, `close` or unknown command behind a
//! batch waits for it too. If tripline dies, nothing it had not answered was
//! acknowledged, and rsyslog sends it again on its next connection: delivery is
//! **at least once** (a message whose alerts were written but whose answer was lost
//! comes again, and is alerted twice).
//!
//! Invariants:
//! - Every `syslog` frame read is handed on (empty ones excepted: they are answered
//!   at once, there is nothing to match), answered, or left unanswered on a closed
//!   connection (counted): then the client still holds it. A message longer than
//!   `max_message_bytes` is truncated to that and counted, and answered like any
//!   other (a `500` would make the sender drop it).
//! - Bounded: at most `window` commands per connection are read and not yet answered
//!   (beyond that the connection is not read, and the sender's TCP window closes);
//!   answers not yet written are capped, so a client that never reads its answers is
//!   not read either; at most `max_connections` connections (more are closed at
//!   once and counted); a connection with nothing to send or receive for
//!   `idle_timeout` is closed.
//! - A malformed frame, a transaction number out of sequence, a `syslog` before
//!   `open` or an `rsp` from the client closes the connection at once, unanswered
//!   (counted): the client reconnects and resends what was not answered.
//! - When the pipeline drops a batch without acknowledging it (a fatal output error,
//!   or shutdown while the output is stalled), that batch and everything after it on
//!   its connection are not answered: the connection is closed.
//! - Shutdown: connections stop reading (a batch still waiting for room in the
//!   channel is dropped, unanswered), wait up to `shutdown_grace` for the answers of
//!   what was handed on, write them and the `serverclose` hint, and close.
//!
//! Not supported: TLS (omrelp's `tls="on"`: put a TLS terminator such as stunnel in
//! front of the port; the acknowledgements pass through it), `starttls`, and commands
//! other than `open`, `syslog` and `close` (answered `500`).
//!
//! Costs: one copy of each message (read buffer to its `Line`), one header check
//! ([`crate::decode::is_syslog`]) to count parse failures, an answer of about 16 bytes
//! per message, and a wait of one pipeline round trip (match, write, flush) before a
//! batch is answered: a client's throughput is at most `window` messages per round
//! trip. Memory per connection: `window` messages handed on, one frame being read
//! (at most `max_message_bytes`) plus one 16 KiB read, and 64 KiB of answers.

pub mod frame;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{debug, info, warn};

use self::frame::{Command, Frame, FrameDecoder};
use super::framing::trim_terminators;
use super::{Batch, BatchSender, Line, Origin, Transport};

#[derive(Clone, Debug)]
pub struct RelpConfig {
    /// Default 127.0.0.1:2514.
    pub address: SocketAddr,
    /// Longer messages are truncated to this and counted. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Connections open at once; more are closed at once. Default 256.
    pub max_connections: usize,
    /// A connection with nothing read, nothing unanswered and nothing to write for
    /// this long is closed (after the `serverclose` hint). Default 5 minutes.
    pub idle_timeout: Duration,
    /// Commands read and not yet answered, per connection (rsyslog's default window
    /// is 128). Default 128.
    pub window: usize,
    /// At shutdown, how long a connection waits for the answers of what it handed on.
    /// Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for RelpConfig {
    fn default() -> Self {
        RelpConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 2514)),
            max_message_bytes: 64 * 1024,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            window: 128,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Counters of one RELP source, shared with the metrics exporter. All are totals
/// except the gauges `connections_open` and `unanswered`.
#[derive(Debug, Default)]
pub struct RelpStats {
    /// Messages handed on (truncated ones included).
    pub messages: AtomicU64,
    /// Bytes of the messages handed on.
    pub bytes: AtomicU64,
    /// `syslog` frames answered `200 OK` (empty ones included).
    pub answered: AtomicU64,
    /// Messages handed on and not answered yet (gauge).
    pub unanswered: AtomicU64,
    /// Messages handed on whose connection closed before they were answered: the
    /// client sends them again (so they may be alerted twice).
    pub unanswered_at_close: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    pub idle_timeouts: AtomicU64,
    /// Messages truncated to `max_message_bytes`.
    pub oversized: AtomicU64,
    /// Connections closed on a malformed frame, or cut inside one.
    pub framing_errors: AtomicU64,
    /// Connections closed on a command out of place: a transaction number out of
    /// sequence, `syslog` before `open`, an `rsp` from the client, a refused `open`.
    pub protocol_errors: AtomicU64,
    /// Commands answered `500` (unknown commands).
    pub commands_refused: AtomicU64,
    /// Messages handed on without a syslog header ([`crate::decode::is_syslog`]).
    pub parse_failures: AtomicU64,
    /// Connections lost to I/O errors (e.g. connection reset).
    pub io_errors: AtomicU64,
}

/// A plain copy of [`RelpStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelpStatsSnapshot {
    pub messages: u64,
    pub bytes: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub unanswered_at_close: u64,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub connections_rejected: u64,
    pub idle_timeouts: u64,
    pub oversized: u64,
    pub framing_errors: u64,
    pub protocol_errors: u64,
    pub commands_refused: u64,
    pub parse_failures: u64,
    pub io_errors: u64,
}

impl RelpStats {
    pub fn snapshot(&self) -> RelpStatsSnapshot {
        RelpStatsSnapshot {
            messages: self.messages.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            answered: self.answered.load(Relaxed),
            unanswered: self.unanswered.load(Relaxed),
            unanswered_at_close: self.unanswered_at_close.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_rejected: self.connections_rejected.load(Relaxed),
            idle_timeouts: self.idle_timeouts.load(Relaxed),
            oversized: self.oversized.load(Relaxed),
            framing_errors: self.framing_errors.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            commands_refused: self.commands_refused.load(Relaxed),
            parse_failures: self.parse_failures.load(Relaxed),
            io_errors: self.io_errors.load(Relaxed),
        }
    }
}

/// Errors that stop a RELP source (set-up only: a bad peer or frame is counted and
/// logged, never an error).
#[derive(Debug, thiserror::Error)]
pub enum RelpError {
    #[error("relp source {address}: {reason}")]
    Config {
        address: SocketAddr,
        reason: &'static str,
    },
    #[error("relp source {address}: cannot bind tcp: {source}")]
    Bind {
        address: SocketAddr,
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Binding and running

/// A RELP source bound to its address, not yet accepting.
pub struct BoundRelp {
    cfg: RelpConfig,
    local_addr: SocketAddr,
    listener: TcpListener,
}

/// Checks `cfg` and binds the socket. Bind port 0 and read [`BoundRelp::local_addr`]
/// to learn the port.
pub async fn bind(cfg: RelpConfig) -> Result<BoundRelp, RelpError> {
    let address = cfg.address;
    let invalid = |reason| Err(RelpError::Config { address, reason });
    if cfg.max_message_bytes == 0 {
        return invalid("max_message_bytes must be at least 1");
    }
    if cfg.max_connections == 0 {
        return invalid("max_connections must be at least 1");
    }
    if cfg.window == 0 {
        return invalid("window must be at least 1");
    }
    let bind_err = |source| RelpError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    Ok(BoundRelp {
        cfg,
        local_addr,
        listener,
    })
}

/// [`bind`], then [`BoundRelp::run`].
pub async fn run_relp_source(
    source_index: usize,
    cfg: RelpConfig,
    tx: BatchSender,
    stats: Arc<RelpStats>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RelpError> {
    bind(cfg)
        .await?
        .run(source_index, tx, stats, shutdown)
        .await;
    Ok(())
}

/// What every connection of one source shares.
struct Ctx {
    source: usize,
    tx: BatchSender,
    stats: Arc<RelpStats>,
    cfg: RelpConfig,
}

impl BoundRelp {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts until shutdown, then waits for every connection to end.
    pub async fn run(
        self,
        source_index: usize,
        tx: BatchSender,
        stats: Arc<RelpStats>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        info!(address = %self.local_addr, window = self.cfg.window, "RELP source listening.");
        let ctx = Arc::new(Ctx {
            source: source_index,
            tx,
            stats,
            cfg: self.cfg,
        });
        let listener = self.listener;
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = shutdown_signalled(&mut shutdown) => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        warn!(error = %e, "RELP connection task failed.");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) if tasks.len() >= ctx.cfg.max_connections => {
                        ctx.stats.connections_rejected.fetch_add(1, Relaxed);
                        debug!(peer = %peer, "RELP connection refused: too many open.");
                        // A hint, if the socket takes it at once; the close says it anyway.
                        let _ = stream.try_write(frame::SERVERCLOSE);
                    }
                    Ok((stream, peer)) => {
                        ctx.stats.connections_accepted.fetch_add(1, Relaxed);
                        tasks.spawn(serve(ctx.clone(), stream, peer, shutdown.clone()));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: wait, do not spin.
                        warn!(error = %e, "RELP accept failed.");
                        sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        while tasks.join_next().await.is_some() {}
    }
}

/// Resolves once shutdown is asked for, or its sender is gone.
async fn shutdown_signalled(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------
// One connection

/// Answers not yet written, in bytes, beyond which the connection is not read.
const OUT_CAP: usize = 64 * 1024;

/// How long the last answers and the `serverclose` hint may take to write.
const FINAL_WRITE: Duration = Duration::from_secs(5);

/// Commands read and not answered yet, oldest first.
enum Pending {
    /// Answers ready once everything before them is written.
    Answer {
        bytes: Vec<u8>,
        /// Commands these answers are for.
        commands: usize,
        /// Close the connection once they are written (a `close`, a refused `open`).
        close: bool,
    },
    /// Messages handed on in one batch: answered `200 OK` once it is acknowledged.
    Batch {
        ack: oneshot::Receiver<()>,
        txnrs: Vec<u32>,
    },
}

/// Why a connection ends, when it is the server's doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Still serving.
    No,
    /// The client sent `close` (answered), or closed its side.
    Client,
    /// Shutdown, an idle timeout, or an error: the `serverclose` hint goes last.
    Server,
}

struct Conn {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    origin: Origin,
    decoder: FrameDecoder,
    /// `open` was answered `200`.
    opened: bool,
    /// The transaction number the next command must carry.
    expected: u32,
    /// Frames are read and decoded.
    reading: bool,
    ending: Ending,
    /// The batch being filled, the transaction numbers it answers, and how many of
    /// its messages were truncated.
    lines: Vec<Line>,
    txnrs: Vec<u32>,
    truncated: u64,
    pending: VecDeque<Pending>,
    /// Commands read and not answered yet (in `txnrs` and `pending`).
    in_flight: usize,
    /// Messages handed on and not answered yet.
    handed_on: u64,
    /// Answers to write, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Set at shutdown: when the connection stops waiting for answers.
    grace_until: Option<Instant>,
}

/// What a step of a connection decided.
enum Step {
    Go,
    /// Close at once, writing only what is already answered.
    Abort,
}

/// Keeps `connections_open` right however a connection ends.
struct Open(Arc<Ctx>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

async fn serve(
    ctx: Arc<Ctx>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    ctx.stats.connections_open.fetch_add(1, Relaxed);
    let _open = Open(ctx.clone());
    // Answers are small and the client waits on them: do not hold them back.
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let idle = ctx.cfg.idle_timeout;
    let mut c = Conn {
        decoder: FrameDecoder::new(ctx.cfg.max_message_bytes),
        origin: Origin::Syslog {
            peer,
            transport: Transport::Relp,
        },
        ctx,
        peer,
        opened: false,
        expected: 1,
        reading: true,
        ending: Ending::No,
        lines: Vec::new(),
        txnrs: Vec::new(),
        truncated: 0,
        pending: VecDeque::new(),
        in_flight: 0,
        handed_on: 0,
        out: Vec::new(),
        out_pos: 0,
        grace_until: None,
    };
    let mut idle_until = Instant::now() + idle;
    loop {
        if let Step::Abort = c.pump(&mut shutdown).await {
            break;
        }
        let writing = c.out_pos < c.out.len();
        if !c.reading && c.pending.is_empty() && !writing {
            break; // all answered and written
        }
        let can_read =
            c.reading && c.in_flight < c.ctx.cfg.window && c.out.len() - c.out_pos < OUT_CAP;
        let waiting = matches!(c.pending.front(), Some(Pending::Batch { .. }));
        let idle_armed = c.reading && c.pending.is_empty() && !writing;
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown), if c.grace_until.is_none() => c.stop_for_shutdown(),
            acked = head_ack(&mut c.pending), if waiting => {
                if let Step::Abort = c.on_head_ack(acked) {
                    break;
                }
            }
            written = wr.write(&c.out[c.out_pos..]), if writing => match written {
                Ok(n) => {
                    c.out_pos += n;
                    if c.out_pos == c.out.len() {
                        c.out.clear();
                        c.out_pos = 0;
                    }
                }
                Err(e) => {
                    c.ctx.stats.io_errors.fetch_add(1, Relaxed);
                    debug!(peer = %c.peer, error = %e, "RELP write failed.");
                    c.close_now(&mut wr, false).await;
                    return;
                }
            },
            read = rd.read_buf(c.decoder.buffer_for_read()), if can_read => match read {
                Ok(0) => c.on_eof(),
                Ok(_) => {}
                Err(e) => {
                    c.ctx.stats.io_errors.fetch_add(1, Relaxed);
                    debug!(peer = %c.peer, error = %e, "RELP read failed.");
                    c.close_now(&mut wr, false).await;
                    return;
                }
            },
            () = sleep_until(idle_until), if idle_armed => {
                c.ctx.stats.idle_timeouts.fetch_add(1, Relaxed);
                debug!(peer = %c.peer, "RELP connection closed: idle.");
                c.ending = Ending::Server;
                break;
            }
            () = sleep_until_some(c.grace_until) => {
                debug!(peer = %c.peer, "RELP connection closed at shutdown before every answer came.");
                break;
            }
        }
        idle_until = Instant::now() + idle;
    }
    let hint = c.ending != Ending::Client;
    c.close_now(&mut wr, hint).await;
}

/// The acknowledgement of the oldest pending batch (never resolves when the oldest
/// pending entry is not a batch).
async fn head_ack(pending: &mut VecDeque<Pending>) -> Result<(), oneshot::error::RecvError> {
    match pending.front_mut() {
        Some(Pending::Batch { ack, .. }) => ack.await,
        _ => std::future::pending().await,
    }
}

impl Conn {
    /// Moves answers that are ready, in order, to the output.
    fn promote(&mut self) -> Step {
        loop {
            match self.pending.front_mut() {
                None => return Step::Go,
                Some(Pending::Answer { .. }) => {
                    if let Some(Pending::Answer {
                        bytes,
                        commands,
                        close,
                    }) = self.pending.pop_front()
                    {
                        self.out.extend_from_slice(&bytes);
                        self.in_flight = self.in_flight.saturating_sub(commands);
                        if close {
                            self.reading = false;
                        }
                    }
                }
                Some(Pending::Batch { ack, .. }) => match ack.try_recv() {
                    Ok(()) => self.answer_head(),
                    Err(oneshot::error::TryRecvError::Empty) => return Step::Go,
                    Err(oneshot::error::TryRecvError::Closed) => return self.not_acknowledged(),
                },
            }
        }
    }

    fn on_head_ack(&mut self, acked: Result<(), oneshot::error::RecvError>) -> Step {
        match acked {
            Ok(()) => {
                self.answer_head();
                Step::Go
            }
            Err(_) => self.not_acknowledged(),
        }
    }

    /// The oldest pending entry, a batch, was acknowledged: `200 OK` for each message.
    fn answer_head(&mut self) {
        if let Some(Pending::Batch { txnrs, .. }) = self.pending.pop_front() {
            for &t in &txnrs {
                frame::push_rsp(&mut self.out, t, b"200 OK");
            }
            let n = txnrs.len();
            self.in_flight = self.in_flight.saturating_sub(n);
            self.handed_on = self.handed_on.saturating_sub(n as u64);
            let stats = &self.ctx.stats;
            stats.answered.fetch_add(n as u64, Relaxed);
            stats.unanswered.fetch_sub(n as u64, Relaxed);
        }
    }

    fn not_acknowledged(&mut self) -> Step {
        warn!(
            peer = %self.peer,
            "Closing RELP connection: the pipeline did not acknowledge a batch (its alerts \
             were not written); the client sends it again."
        );
        self.ending = Ending::Server;
        Step::Abort
    }

    fn stop_for_shutdown(&mut self) {
        self.reading = false;
        self.ending = Ending::Server;
        self.grace_until = Some(Instant::now() + self.ctx.cfg.shutdown_grace);
        // Not handed on, so not answered: the client sends these again.
        self.drop_batch();
    }

    fn drop_batch(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(self.txnrs.len());
        self.txnrs.clear();
        self.lines.clear();
        self.truncated = 0;
    }

    fn on_eof(&mut self) {
        self.reading = false;
        if self.ending == Ending::No {
            self.ending = Ending::Client;
        }
        if self.decoder.is_mid_frame() {
            self.ctx.stats.framing_errors.fetch_add(1, Relaxed);
            debug!(peer = %self.peer, "RELP connection closed inside a frame.");
        }
    }

    /// Decodes what was read, as far as the window allows, hands on the batch and
    /// moves the answers that are ready to the output.
    async fn pump(&mut self, shutdown: &mut watch::Receiver<bool>) -> Step {
        loop {
            let mut window_full = false;
            loop {
                if let Step::Abort = self.promote() {
                    return Step::Abort;
                }
                if !self.reading {
                    break;
                }
                if self.in_flight >= self.ctx.cfg.window {
                    window_full = true;
                    break;
                }
                let frame = match self.decoder.decode() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        self.ctx.stats.framing_errors.fetch_add(1, Relaxed);
                        warn!(peer = %self.peer, error = %e, "Closing RELP connection: framing error.");
                        self.ending = Ending::Server;
                        return Step::Abort;
                    }
                };
                if let Step::Abort = self.on_frame(frame, shutdown).await {
                    return Step::Abort;
                }
            }
            if let Step::Abort = self.hand_on(shutdown).await {
                return Step::Abort;
            }
            if let Step::Abort = self.promote() {
                return Step::Abort;
            }
            // Answers ready at once (empty messages) may have made room for frames
            // still buffered.
            if !(window_full && self.reading && self.in_flight < self.ctx.cfg.window) {
                return Step::Go;
            }
        }
    }

    fn protocol_error(&mut self, why: &str, frame: &Frame) -> Step {
        self.ctx.stats.protocol_errors.fetch_add(1, Relaxed);
        warn!(
            peer = %self.peer,
            txnr = frame.txnr,
            command = frame.command.name(),
            expected = self.expected,
            "Closing RELP connection: {why}."
        );
        self.ending = Ending::Server;
        Step::Abort
    }

    async fn on_frame(&mut self, frame: Frame, shutdown: &mut watch::Receiver<bool>) -> Step {
        if frame.txnr == 0 {
            // A hint: none is defined from client to server; nothing to answer.
            debug!(peer = %self.peer, command = frame.command.name(), "RELP hint ignored.");
            return Step::Go;
        }
        if frame.txnr != self.expected {
            return self.protocol_error("transaction number out of sequence", &frame);
        }
        self.expected = frame::next_txnr(frame.txnr);
        match frame.command {
            Command::Syslog if !self.opened => self.protocol_error("syslog before open", &frame),
            Command::Syslog => {
                self.take_message(frame);
                if self.txnrs.len() >= self.ctx.cfg.window {
                    return self.hand_on(shutdown).await;
                }
                Step::Go
            }
            Command::Rsp => self.protocol_error("a client sent rsp", &frame),
            Command::Open => {
                let body = if self.opened {
                    Ok(b"200 OK session already open".to_vec())
                } else {
                    frame::open_answer(&frame.data)
                };
                match body {
                    Ok(body) => {
                        self.opened = true;
                        self.answer_in_order(frame.txnr, &body, false, shutdown)
                            .await
                    }
                    Err(e) => {
                        self.ctx.stats.protocol_errors.fetch_add(1, Relaxed);
                        warn!(peer = %self.peer, error = %e, "Refusing RELP open.");
                        let body = format!("500 {e}");
                        self.answer_in_order(frame.txnr, body.as_bytes(), true, shutdown)
                            .await
                    }
                }
            }
            Command::Close => {
                self.reading = false;
                self.ending = Ending::Client;
                self.answer_in_order(frame.txnr, b"200 OK", true, shutdown)
                    .await
            }
            Command::Other(ref name) => {
                self.ctx.stats.commands_refused.fetch_add(1, Relaxed);
                debug!(peer = %self.peer, command = %name, "RELP command not supported.");
                self.answer_in_order(frame.txnr, b"500 command not supported", false, shutdown)
                    .await
            }
        }
    }

    /// Adds a `syslog` frame's message to the batch.
    fn take_message(&mut self, frame: Frame) {
        self.in_flight += 1;
        self.txnrs.push(frame.txnr);
        let mut bytes = frame.data;
        let len = trim_terminators(&bytes).len();
        bytes.truncate(len);
        if bytes.is_empty() {
            return; // answered with the batch; nothing to match
        }
        if frame.truncated {
            self.truncated += 1;
        }
        if self.lines.is_empty() {
            self.lines.reserve(self.ctx.cfg.window.min(1024));
        }
        self.lines.push(Line {
            bytes,
            origin: self.origin.clone(),
        });
    }

    /// What the batch being filled adds to the counters once handed on: messages,
    /// bytes, truncated, without a syslog header.
    fn batch_counts(&mut self) -> [u64; 4] {
        let bytes: usize = self.lines.iter().map(|l| l.bytes.len()).sum();
        let headerless = self
            .lines
            .iter()
            .filter(|l| !crate::decode::is_syslog(&l.bytes))
            .count();
        let truncated = std::mem::take(&mut self.truncated);
        [
            self.lines.len() as u64,
            bytes as u64,
            truncated,
            headerless as u64,
        ]
    }

    /// Queues the answer to a command behind everything read before it.
    async fn answer_in_order(
        &mut self,
        txnr: u32,
        body: &[u8],
        close: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Step {
        if let Step::Abort = self.hand_on(shutdown).await {
            return Step::Abort;
        }
        if close {
            self.reading = false;
        }
        self.in_flight += 1;
        let mut bytes = Vec::with_capacity(body.len() + 24);
        frame::push_rsp(&mut bytes, txnr, body);
        self.pending.push_back(Pending::Answer {
            bytes,
            commands: 1,
            close,
        });
        Step::Go
    }

    /// Hands the batch on (waiting while the channel is full) and queues its answers.
    async fn hand_on(&mut self, shutdown: &mut watch::Receiver<bool>) -> Step {
        if self.txnrs.is_empty() {
            return Step::Go;
        }
        if self.lines.is_empty() {
            // Only empty messages: nothing to match, answered in order.
            let txnrs = std::mem::take(&mut self.txnrs);
            let mut bytes = Vec::with_capacity(txnrs.len() * 16);
            for &t in &txnrs {
                frame::push_rsp(&mut bytes, t, b"200 OK");
            }
            self.ctx
                .stats
                .answered
                .fetch_add(txnrs.len() as u64, Relaxed);
            self.pending.push_back(Pending::Answer {
                bytes,
                commands: txnrs.len(),
                close: false,
            });
            return Step::Go;
        }
        let [messages, bytes, truncated, headerless] = self.batch_counts();
        let (ack, acked) = oneshot::channel();
        let batch = Batch {
            source: self.ctx.source,
            lines: std::mem::take(&mut self.lines),
            ack: Some(ack),
        };
        let n = self.txnrs.len() as u64;
        tokio::select! {
            biased;
            sent = self.ctx.tx.send(batch) => {
                if sent.is_err() {
                    debug!(peer = %self.peer, "RELP connection closed: the pipeline is gone.");
                    self.ending = Ending::Server;
                    self.drop_batch();
                    return Step::Abort;
                }
            }
            () = shutdown_signalled(shutdown) => {
                self.stop_for_shutdown();
                return Step::Go;
            }
        }
        self.handed_on += n;
        let stats = &self.ctx.stats;
        stats.unanswered.fetch_add(n, Relaxed);
        stats.messages.fetch_add(messages, Relaxed);
        stats.bytes.fetch_add(bytes, Relaxed);
        stats.oversized.fetch_add(truncated, Relaxed);
        stats.parse_failures.fetch_add(headerless, Relaxed);
        self.pending.push_back(Pending::Batch {
            ack: acked,
            txnrs: std::mem::take(&mut self.txnrs),
        });
        Step::Go
    }

    /// Writes what is answered (and the `serverclose` hint), within [`FINAL_WRITE`],
    /// and closes. What was handed on and not answered is counted.
    async fn close_now(&mut self, wr: &mut OwnedWriteHalf, hint: bool) {
        if self.handed_on > 0 {
            let stats = &self.ctx.stats;
            stats.unanswered_at_close.fetch_add(self.handed_on, Relaxed);
            stats.unanswered.fetch_sub(self.handed_on, Relaxed);
            self.handed_on = 0;
        }
        let rest = &self.out[self.out_pos..];
        let last = async {
            wr.write_all(rest).await?;
            if hint {
                wr.write_all(frame::SERVERCLOSE).await?;
            }
            wr.shutdown().await
        };
        let _ = tokio::time::timeout(FINAL_WRITE, last).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RelpStats>();
        check::<RelpConfig>();
        check::<RelpError>();
        check::<BoundRelp>();
        check::<frame::FrameDecoder>();
        check::<frame::FrameError>();
    }

    #[tokio::test]
    async fn bad_configs_are_refused() {
        let ok = RelpConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            ..RelpConfig::default()
        };
        for bad in [
            RelpConfig {
                max_message_bytes: 0,
                ..ok.clone()
            },
            RelpConfig {
                max_connections: 0,
                ..ok.clone()
            },
            RelpConfig {
                window: 0,
                ..ok.clone()
            },
        ] {
            assert!(matches!(bind(bad).await, Err(RelpError::Config { .. })));
        }
        assert!(bind(ok).await.is_ok());
    }
}
