//! Syslog source: receives messages over UDP, TCP or TLS and hands them on in [`Batch`]es.
//! It only frames: headers and times are read by [`crate::decode`], the one place that
//! parses them (with the source's zone, when the line is decoded).
//!
//! What a message becomes: one [`Line`] whose bytes are the raw message without framing
//! (UDP: the datagram, trailing CR/LF/NUL removed; TCP/TLS: one frame cut by
//! [`super::framing`]) and whose origin is [`Origin::Syslog`] with the peer and transport.
//! Batches hold up to `batch_max` lines and wait at most `batch_linger` after their first
//! line; they carry no [`super::Ack`] (syslog cannot replay).
//!
//! Invariants:
//! - Nothing is lost silently: every message is handed on, or counted in
//!   [`SyslogStats`] (UDP drops, framing errors; oversized messages are truncated to
//!   `max_message_bytes` and counted). A message without a syslog header
//!   ([`crate::decode::is_syslog`]) is still handed on (matching works on raw text) and
//!   counted as a parse failure.
//! - Backpressure: a TCP/TLS connection stops reading while the channel is full (its
//!   sender's TCP window closes). UDP cannot push back, so the UDP loop never waits on the
//!   channel: it keeps one batch pending and drops, and counts, datagrams while that
//!   batch is full and the channel too. The kernel's own drop count for the socket is
//!   read from `/proc/net/udp*` where there is one.
//! - Fairness: a connection idle for `idle_timeout` is closed; a TLS handshake must
//!   finish within `tls_handshake_timeout`. When `max_connections` are open and another
//!   arrives, the connection that has been idle longest is closed to make room if it
//!   has been idle for `busy_idle_timeout` (a flood of idle or never-handshaking
//!   clients cannot lock senders out); else the newcomer is closed at once. Each is
//!   counted by reason; each connection has its own task.
//! - Shutdown (the watch turns `true`, or its sender is dropped): the listener closes,
//!   every connection hands on what it has framed and ends; unread bytes are not read.
//!
//! Costs: one copy of each message into its `Line`, and one header check
//! ([`crate::decode::is_syslog`], a few microseconds, no time read) to count parse
//! failures; decoding parses again, only for lines that matched. Memory per connection is
//! bounded by one message plus one 16 KiB read, and one batch.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::framing::{trim_terminators, FrameDecoder};
use super::{Batch, BatchSender, Line, Origin, Transport};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyslogMode {
    #[default]
    Udp,
    Tcp,
    /// TCP with TLS; needs `tls_cert` and `tls_key`.
    Tls,
}

impl SyslogMode {
    fn transport(self) -> Transport {
        match self {
            SyslogMode::Udp => Transport::Udp,
            SyslogMode::Tcp => Transport::Tcp,
            SyslogMode::Tls => Transport::Tls,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SyslogConfig {
    pub mode: SyslogMode,
    /// Default 127.0.0.1:5514.
    pub address: SocketAddr,
    /// Longer messages are truncated to this and counted. Default 64 KiB.
    pub max_message_bytes: usize,
    /// TCP/TLS connections open at once. Default 256.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed. Default 5 minutes.
    pub idle_timeout: Duration,
    /// While `max_connections` are open, a newcomer closes the longest-idle connection
    /// if it has been idle this long. Default 10 s.
    pub busy_idle_timeout: Duration,
    /// A TLS handshake must finish within this. Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// PEM certificate chain and private key, for [`SyslogMode::Tls`] only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Lines per batch at most. Default 256.
    pub batch_max: usize,
    /// How long a batch waits for more lines after its first. Default 10 ms.
    pub batch_linger: Duration,
    /// `SO_RCVBUF` for the UDP socket; `None` keeps the system default.
    pub udp_recv_buffer_bytes: Option<usize>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            mode: SyslogMode::Udp,
            address: SocketAddr::from(([127, 0, 0, 1], 5514)),
            max_message_bytes: 64 * 1024,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            busy_idle_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
            batch_max: 256,
            batch_linger: Duration::from_millis(10),
            udp_recv_buffer_bytes: None,
        }
    }
}

/// Counters of one syslog source, shared with the metrics exporter. All are totals
/// except `connections_open`, a gauge.
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Messages handed on (truncated ones included).
    pub messages: AtomicU64,
    /// Bytes of the messages handed on.
    pub bytes: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open and none was
    /// idle long enough to make room.
    pub connections_rejected: AtomicU64,
    /// Idle connections closed to make room for a newcomer while full.
    pub connections_evicted: AtomicU64,
    pub idle_timeouts: AtomicU64,
    /// TLS handshakes that did not finish within `tls_handshake_timeout`.
    pub tls_handshake_timeouts: AtomicU64,
    /// Messages truncated to `max_message_bytes`.
    pub oversized: AtomicU64,
    /// Connections closed on a malformed octet count or cut inside a counted frame.
    pub framing_errors: AtomicU64,
    /// Messages handed on without a syslog header ([`crate::decode::is_syslog`]).
    pub parse_failures: AtomicU64,
    /// Datagrams dropped because the channel was full.
    pub udp_drops: AtomicU64,
    /// The kernel's count of datagrams dropped on the socket (receive buffer full).
    pub udp_kernel_drops: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    /// Connections or datagrams lost to I/O errors (e.g. connection reset).
    pub read_errors: AtomicU64,
}

/// A plain copy of [`SyslogStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyslogStatsSnapshot {
    pub messages: u64,
    pub bytes: u64,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub connections_rejected: u64,
    pub connections_evicted: u64,
    pub idle_timeouts: u64,
    pub tls_handshake_timeouts: u64,
    pub oversized: u64,
    pub framing_errors: u64,
    pub parse_failures: u64,
    pub udp_drops: u64,
    pub udp_kernel_drops: u64,
    pub tls_handshake_failures: u64,
    pub read_errors: u64,
}

impl SyslogStats {
    pub fn snapshot(&self) -> SyslogStatsSnapshot {
        SyslogStatsSnapshot {
            messages: self.messages.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_rejected: self.connections_rejected.load(Relaxed),
            connections_evicted: self.connections_evicted.load(Relaxed),
            idle_timeouts: self.idle_timeouts.load(Relaxed),
            tls_handshake_timeouts: self.tls_handshake_timeouts.load(Relaxed),
            oversized: self.oversized.load(Relaxed),
            framing_errors: self.framing_errors.load(Relaxed),
            parse_failures: self.parse_failures.load(Relaxed),
            udp_drops: self.udp_drops.load(Relaxed),
            udp_kernel_drops: self.udp_kernel_drops.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
        }
    }
}

/// Errors that stop a syslog source (set-up only: a bad peer or message is counted and
/// logged, never an error).
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog source {address}: {reason}")]
    Config { address: SocketAddr, reason: String },
    #[error("syslog source {address}: cannot bind {transport}: {source}")]
    Bind {
        address: SocketAddr,
        transport: &'static str,
        source: io::Error,
    },
    #[error("syslog source {address}: cannot set the UDP receive buffer: {source}")]
    RecvBuffer {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("syslog source {address}: cannot read {}: {source}", path.display())]
    TlsFile {
        address: SocketAddr,
        path: PathBuf,
        source: io::Error,
    },
    #[error("syslog source {address}: {}: {reason}", path.display())]
    TlsPem {
        address: SocketAddr,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("syslog source {address}: TLS set-up failed: {source}")]
    Tls {
        address: SocketAddr,
        source: rustls::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Binding and running

/// A syslog source bound to its address, not yet receiving.
pub struct BoundSyslog {
    cfg: SyslogConfig,
    local_addr: SocketAddr,
    listener: Listener,
}

enum Listener {
    Udp(UdpSocket),
    Tcp {
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
    },
}

/// Checks `cfg`, loads the TLS certificate and binds the socket. Bind port 0 and read
/// [`BoundSyslog::local_addr`] to learn the port.
pub async fn bind(cfg: SyslogConfig) -> Result<BoundSyslog, SyslogError> {
    let address = cfg.address;
    let invalid = |reason: &str| SyslogError::Config {
        address,
        reason: reason.to_owned(),
    };
    if cfg.max_message_bytes == 0 {
        return Err(invalid("max_message_bytes must be at least 1"));
    }
    if cfg.max_connections == 0 {
        return Err(invalid("max_connections must be at least 1"));
    }
    if cfg.batch_max == 0 {
        return Err(invalid("batch_max must be at least 1"));
    }
    let tls = match (cfg.mode, &cfg.tls_cert, &cfg.tls_key) {
        (SyslogMode::Tls, Some(cert), Some(key)) => Some(tls_acceptor(address, cert, key)?),
        (SyslogMode::Tls, _, _) => return Err(invalid("mode tls needs tls_cert and tls_key")),
        (_, None, None) => None,
        _ => return Err(invalid("tls_cert and tls_key are for mode tls only")),
    };
    let transport = cfg.mode.transport().as_str();
    let bind_err = |source| SyslogError::Bind {
        address,
        transport,
        source,
    };
    let (listener, local_addr) = if cfg.mode == SyslogMode::Udp {
        let socket = UdpSocket::bind(address).await.map_err(bind_err)?;
        if let Some(bytes) = cfg.udp_recv_buffer_bytes {
            set_recv_buffer(&socket, bytes)
                .map_err(|source| SyslogError::RecvBuffer { address, source })?;
        }
        let local = socket.local_addr().map_err(bind_err)?;
        (Listener::Udp(socket), local)
    } else {
        let listener = TcpListener::bind(address).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        (Listener::Tcp { listener, tls }, local)
    };
    Ok(BoundSyslog {
        cfg,
        local_addr,
        listener,
    })
}

/// [`bind`], then [`BoundSyslog::run`].
pub async fn run_syslog_source(
    source_index: usize,
    cfg: SyslogConfig,
    tx: BatchSender,
    stats: Arc<SyslogStats>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    bind(cfg)
        .await?
        .run(source_index, tx, stats, shutdown)
        .await
}

impl BoundSyslog {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Receives until shutdown (or until the channel's receiver is gone).
    pub async fn run(
        self,
        source_index: usize,
        tx: BatchSender,
        stats: Arc<SyslogStats>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), SyslogError> {
        let cfg = self.cfg;
        info!(
            address = %self.local_addr,
            transport = cfg.mode.transport().as_str(),
            "Syslog source listening."
        );
        let ctx = Arc::new(Ctx {
            source: source_index,
            tx,
            stats,
            batch_max: cfg.batch_max,
            batch_linger: cfg.batch_linger,
            idle_timeout: cfg.idle_timeout,
            tls_handshake_timeout: cfg.tls_handshake_timeout,
            max_message_bytes: cfg.max_message_bytes,
            start: Instant::now(),
        });
        match self.listener {
            Listener::Udp(socket) => run_udp(ctx, socket, shutdown).await,
            Listener::Tcp { listener, tls } => {
                let conns = Conns {
                    max: cfg.max_connections,
                    busy_idle: cfg.busy_idle_timeout,
                    open: std::sync::Mutex::new(HashMap::new()),
                    next: AtomicU64::new(0),
                };
                run_tcp(ctx, listener, tls, Arc::new(conns), shutdown).await
            }
        }
        Ok(())
    }
}

/// What every task of one source shares.
struct Ctx {
    source: usize,
    tx: BatchSender,
    stats: Arc<SyslogStats>,
    batch_max: usize,
    batch_linger: Duration,
    idle_timeout: Duration,
    tls_handshake_timeout: Duration,
    max_message_bytes: usize,
    /// The clock of connections' last activity.
    start: Instant,
}

impl Ctx {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One open TCP/TLS connection, as the listener sees it.
struct Conn {
    /// Milliseconds (on [`Ctx::start`]'s clock) of its last read, or of its accept.
    last: AtomicU64,
    /// Told to close, to make room.
    evict: tokio::sync::Notify,
}

/// The open connections of one listener, for the cap and eviction.
struct Conns {
    max: usize,
    busy_idle: Duration,
    open: std::sync::Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

/// Removes its connection from [`Conns`] however the task ends.
struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut open) = self.conns.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Conns {
    /// Makes room for a newcomer: under the cap, or by evicting the longest-idle
    /// connection if it has been idle for `busy_idle`. `None`: refuse it.
    fn admit(self: &Arc<Conns>, ctx: &Ctx) -> Option<(Arc<Conn>, Registered)> {
        let now = ctx.now_ms();
        let mut open = self.open.lock().ok()?;
        if open.len() >= self.max {
            let busy_idle = u64::try_from(self.busy_idle.as_millis()).unwrap_or(u64::MAX);
            let (&id, oldest) = open.iter().min_by_key(|(_, c)| c.last.load(Relaxed))?;
            if now.saturating_sub(oldest.last.load(Relaxed)) < busy_idle {
                return None;
            }
            oldest.evict.notify_one();
            open.remove(&id);
            ctx.stats.connections_evicted.fetch_add(1, Relaxed);
        }
        let id = self.next.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            last: AtomicU64::new(now),
            evict: tokio::sync::Notify::new(),
        });
        open.insert(id, conn.clone());
        Some((
            conn,
            Registered {
                conns: self.clone(),
                id,
            },
        ))
    }
}

/// The batch being filled, and when it must go.
#[derive(Default)]
struct Batcher {
    lines: Vec<Line>,
    deadline: Option<Instant>,
}

impl Ctx {
    fn push(&self, b: &mut Batcher, bytes: &[u8], origin: &Origin, truncated: bool) {
        let stats = &self.stats;
        stats.messages.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(bytes.len() as u64, Relaxed);
        if truncated {
            stats.oversized.fetch_add(1, Relaxed);
        }
        if !crate::decode::is_syslog(bytes) {
            stats.parse_failures.fetch_add(1, Relaxed);
        }
        if b.lines.is_empty() {
            b.deadline = Some(Instant::now() + self.batch_linger);
            b.lines.reserve(self.batch_max.min(1024));
        }
        b.lines.push(Line {
            bytes: bytes.to_vec(),
            origin: origin.clone(),
        });
    }

    fn is_full(&self, b: &Batcher) -> bool {
        b.lines.len() >= self.batch_max
    }

    fn take(&self, b: &mut Batcher) -> Option<Batch> {
        b.deadline = None;
        (!b.lines.is_empty()).then(|| Batch {
            source: self.source,
            lines: std::mem::take(&mut b.lines),
            ack: None,
        })
    }

    /// Sends the batch, waiting while the channel is full. False when the receiver is gone.
    async fn send(&self, b: &mut Batcher) -> bool {
        match self.take(b) {
            Some(batch) => self.tx.send(batch).await.is_ok(),
            None => true,
        }
    }

    /// Sends the batch if the channel has room, else keeps it and retries after the
    /// linger. False when the receiver is gone.
    fn try_send(&self, b: &mut Batcher) -> bool {
        if b.lines.is_empty() {
            return true;
        }
        match self.tx.try_reserve() {
            Ok(permit) => {
                if let Some(batch) = self.take(b) {
                    permit.send(batch);
                }
                true
            }
            Err(TrySendError::Full(())) => {
                b.deadline = Some(Instant::now() + self.batch_linger);
                true
            }
            Err(TrySendError::Closed(())) => false,
        }
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
// UDP

/// The largest UDP payload (IPv4: 65,507 bytes).
const MAX_DATAGRAM: usize = 65_535;

/// How often the kernel's drop count is read.
const KERNEL_DROPS_POLL: Duration = Duration::from_secs(5);

async fn run_udp(ctx: Arc<Ctx>, socket: UdpSocket, mut shutdown: watch::Receiver<bool>) {
    let max = ctx.max_message_bytes;
    // One byte more than the limit, to see that a datagram was longer.
    let mut buf = vec![0u8; max.min(MAX_DATAGRAM) + 1];
    let mut batch = Batcher::default();
    let inode = socket_inode(&socket);
    let mut poll = tokio::time::interval(KERNEL_DROPS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            () = sleep_until_some(batch.deadline) => {
                if !ctx.try_send(&mut batch) {
                    debug!("Syslog UDP source stopped: the pipeline is gone.");
                    return;
                }
            }
            _ = poll.tick() => update_kernel_drops(inode, &ctx.stats),
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => {
                    let truncated = n > max;
                    let data = trim_terminators(&buf[..n.min(max)]);
                    if data.is_empty() {
                        continue;
                    }
                    if ctx.is_full(&batch) && (!ctx.try_send(&mut batch) || ctx.is_full(&batch)) {
                        ctx.stats.udp_drops.fetch_add(1, Relaxed);
                        continue;
                    }
                    let origin = Origin::Syslog { peer, transport: Transport::Udp };
                    ctx.push(&mut batch, data, &origin, truncated);
                    if ctx.is_full(&batch) {
                        ctx.try_send(&mut batch);
                    }
                }
                Err(e) => {
                    ctx.stats.read_errors.fetch_add(1, Relaxed);
                    debug!(error = %e, "Syslog UDP receive failed.");
                }
            },
        }
    }
    update_kernel_drops(inode, &ctx.stats);
    ctx.send(&mut batch).await;
}

#[cfg(unix)]
fn set_recv_buffer(socket: &UdpSocket, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is open for the duration of the call (borrowed from
    // `socket`), and the pointer and length describe `value`, a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn set_recv_buffer(_socket: &UdpSocket, _bytes: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_RCVBUF is set on Unix only",
    ))
}

/// The socket's inode, which names it in `/proc/net/udp*` (Linux).
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let path = format!("/proc/self/fd/{}", socket.as_raw_fd());
        std::fs::metadata(path).ok().map(|m| m.ino())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
    }
}

fn update_kernel_drops(inode: Option<u64>, stats: &SyslogStats) {
    let Some(inode) = inode else { return };
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Some(drops) = std::fs::read_to_string(table)
            .ok()
            .and_then(|t| proc_udp_drops(&t, inode))
        {
            stats.udp_kernel_drops.store(drops, Relaxed);
            return;
        }
    }
}

/// The `drops` column of the socket `inode` in a `/proc/net/udp` table.
pub fn proc_udp_drops(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(9)?.parse::<u64>().ok()? == inode).then(|| cols.get(12)?.parse().ok())?
    })
}

// ---------------------------------------------------------------------------------------
// TCP and TLS

async fn run_tcp(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    conns: Arc<Conns>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    warn!(error = %e, "Syslog connection task failed.");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match conns.admit(&ctx) {
                    Some((conn, registered)) => {
                        ctx.stats.connections_accepted.fetch_add(1, Relaxed);
                        let c = serve(ctx.clone(), stream, peer, tls.clone(), conn, registered, shutdown.clone());
                        tasks.spawn(c);
                    }
                    None => {
                        ctx.stats.connections_rejected.fetch_add(1, Relaxed);
                        debug!(peer = %peer, "Syslog connection refused: too many open, none idle.");
                        drop(stream);
                    }
                },
                Err(e) => {
                    // Usually out of file descriptors: wait, do not spin.
                    warn!(error = %e, "Syslog accept failed.");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// Keeps `connections_open` right however a connection ends.
struct OpenConnection(Arc<Ctx>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

async fn serve(
    ctx: Arc<Ctx>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    conn: Arc<Conn>,
    _registered: Registered,
    mut shutdown: watch::Receiver<bool>,
) {
    ctx.stats.connections_open.fetch_add(1, Relaxed);
    let _open = OpenConnection(ctx.clone());
    let Some(acceptor) = tls else {
        return read_frames(&ctx, stream, peer, Transport::Tcp, &conn, shutdown).await;
    };
    let handshake = tokio::time::timeout(ctx.tls_handshake_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        () = shutdown_signalled(&mut shutdown) => return,
        () = conn.evict.notified() => {
            debug!(peer = %peer, "Syslog connection closed during its TLS handshake to make room.");
            return;
        }
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                ctx.stats.tls_handshake_failures.fetch_add(1, Relaxed);
                debug!(peer = %peer, error = %e, "Syslog TLS handshake failed.");
                return;
            }
            Err(_) => {
                ctx.stats.tls_handshake_timeouts.fetch_add(1, Relaxed);
                debug!(peer = %peer, "Syslog TLS handshake timed out.");
                return;
            }
        },
    };
    conn.last.store(ctx.now_ms(), Relaxed);
    read_frames(&ctx, stream, peer, Transport::Tls, &conn, shutdown).await;
}

/// Reads, frames and hands on messages until the peer closes, the connection fails or
/// idles, or shutdown; then hands on what is left, an unterminated last frame included.
async fn read_frames<S: AsyncRead + Unpin>(
    ctx: &Ctx,
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    conn: &Conn,
    mut shutdown: watch::Receiver<bool>,
) {
    let origin = Origin::Syslog { peer, transport };
    let mut decoder = FrameDecoder::new(ctx.max_message_bytes);
    let mut batch = Batcher::default();
    let mut idle_deadline = Instant::now() + ctx.idle_timeout;
    loop {
        let linger = batch.deadline;
        // Reads come before the idle check, and the idle clock restarts after every
        // hand-off: time spent waiting on a full channel is not the peer's idleness.
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            () = sleep_until_some(linger) => {
                if !ctx.send(&mut batch).await {
                    return;
                }
            }
            read = stream.read_buf(decoder.buffer_for_read()) => match read {
                Ok(0) => break,
                Ok(_) => match drain(ctx, &mut decoder, &mut batch, &origin, false).await {
                    Drained::More => {}
                    Drained::Stop => break,
                    Drained::PipelineGone => return,
                },
                Err(e) => {
                    ctx.stats.read_errors.fetch_add(1, Relaxed);
                    debug!(peer = %peer, error = %e, "Syslog connection read failed.");
                    break;
                }
            },
            // After the read: what the peer already sent is read before closing.
            () = conn.evict.notified() => {
                debug!(peer = %peer, "Syslog connection closed to make room: idle while the listener was full.");
                break;
            }
            () = sleep_until(idle_deadline) => {
                ctx.stats.idle_timeouts.fetch_add(1, Relaxed);
                debug!(peer = %peer, "Syslog connection closed: idle.");
                break;
            }
        }
        idle_deadline = Instant::now() + ctx.idle_timeout;
        conn.last.store(ctx.now_ms(), Relaxed);
    }
    drop(stream);
    if let Drained::PipelineGone = drain(ctx, &mut decoder, &mut batch, &origin, true).await {
        return;
    }
    ctx.send(&mut batch).await;
}

enum Drained {
    More,
    /// A framing error: close the connection.
    Stop,
    PipelineGone,
}

/// Hands on every frame the decoder holds; with `eof`, the unterminated last one too.
async fn drain(
    ctx: &Ctx,
    decoder: &mut FrameDecoder,
    batch: &mut Batcher,
    origin: &Origin,
    eof: bool,
) -> Drained {
    loop {
        let frame = if eof {
            decoder.decode_eof()
        } else {
            decoder.decode()
        };
        match frame {
            Ok(Some(frame)) => ctx.push(batch, frame.bytes(), origin, frame.is_truncated()),
            Ok(None) => return Drained::More,
            Err(e) => {
                ctx.stats.framing_errors.fetch_add(1, Relaxed);
                if let Origin::Syslog { peer, .. } = origin {
                    warn!(peer = %peer, error = %e, "Closing syslog connection: framing error.");
                }
                return Drained::Stop;
            }
        }
        if ctx.is_full(batch) && !ctx.send(batch).await {
            return Drained::PipelineGone;
        }
    }
}

fn tls_acceptor(address: SocketAddr, cert: &Path, key: &Path) -> Result<TlsAcceptor, SyslogError> {
    let open = |path: &Path| {
        std::fs::File::open(path)
            .map(BufReader::new)
            .map_err(|source| SyslogError::TlsFile {
                address,
                path: path.to_owned(),
                source,
            })
    };
    let file_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SyslogError::TlsFile {
            address,
            path,
            source,
        }
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_err(cert))?;
    if certs.is_empty() {
        return Err(SyslogError::TlsPem {
            address,
            path: cert.to_owned(),
            reason: "no PEM certificate found",
        });
    }
    let key_der = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(file_err(key))?
        .ok_or_else(|| SyslogError::TlsPem {
            address,
            path: key.to_owned(),
            reason: "no PEM private key found",
        })?;
    let tls_err = |source| SyslogError::Tls { address, source };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(tls_err)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyslogStats>();
        check::<SyslogConfig>();
        check::<SyslogError>();
        check::<BoundSyslog>();
    }

    #[test]
    fn trims_datagram_terminators() {
        assert_eq!(trim_terminators(b"<13>x\r\n\0"), b"<13>x");
        assert_eq!(trim_terminators(b"\n\n"), b"");
        assert_eq!(trim_terminators(b"a\nb"), b"a\nb");
    }

    #[test]
    fn reads_proc_net_udp_drops() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          123: 0100007F:1582 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
          124: 0100007F:1583 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
        assert_eq!(proc_udp_drops(table, 4242), Some(17));
        assert_eq!(proc_udp_drops(table, 4243), Some(0));
        assert_eq!(proc_udp_drops(table, 1), None);
        assert_eq!(proc_udp_drops("garbage\nx y z", 1), None);
    }
}
