//! RELP source: the protocol over a loopback socket (open / syslog / close, pipelined
//! frames, frames split across reads, malformed input, oversized messages, the window,
//! limits, shutdown), with the test standing in for the pipeline so it decides when a
//! batch is acknowledged; and rsyslog's `omrelp` forwarding to the real binary, killed
//! with SIGKILL mid-stream and restarted, losing nothing.
//!
//! Tests that need rsyslog (with omrelp, Debian's `rsyslog-relp`) or `logger` skip with
//! a message when they are missing. Waits poll with generous deadlines.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tripline::config::Config;
use tripline::source::relp::frame::{Command as Cmd, Frame, FrameDecoder};
use tripline::source::relp::{bind, RelpConfig, RelpError, RelpStats};
use tripline::source::{Batch, Line, Origin, Transport};

use crate::util::root;
use crate::util::sidecar::{free_addr, metric, wait_for};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Harness: the source, with the test as its pipeline; a small RELP client.

struct Running {
    addr: SocketAddr,
    rx: mpsc::Receiver<Batch>,
    stats: Arc<RelpStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), RelpError>>,
}

fn config() -> RelpConfig {
    RelpConfig {
        address: "127.0.0.1:0".parse().unwrap(),
        ..RelpConfig::default()
    }
}

async fn start(cfg: RelpConfig) -> Running {
    let bound = bind(cfg).await.expect("bind the RELP source");
    let addr = bound.local_addr();
    let (tx, rx) = mpsc::channel(64);
    let stats = Arc::new(RelpStats::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn({
        let stats = stats.clone();
        async move {
            bound.run(3, tx, stats, shutdown).await;
            Ok(())
        }
    });
    Running {
        addr,
        rx,
        stats,
        stop,
        task,
    }
}

impl Running {
    /// The next batch handed on (fails after [`WAIT`]).
    async fn batch(&mut self) -> Batch {
        match tokio::time::timeout(WAIT, self.rx.recv()).await {
            Ok(Some(b)) => {
                assert_eq!(b.source, 3);
                assert!(b.ack.is_some(), "RELP batches carry an ack");
                b
            }
            Ok(None) => panic!("source ended"),
            Err(_) => panic!("no batch; stats {:?}", self.stats.snapshot()),
        }
    }

    /// Batches until they hold `n` lines, acknowledged (as the pipeline would).
    async fn ack_lines(&mut self, n: usize) -> Vec<Line> {
        let mut got = Vec::new();
        while got.len() < n {
            let b = self.batch().await;
            got.extend(b.lines);
            let _ = b.ack.unwrap().send(());
        }
        assert_eq!(got.len(), n, "{:?}", texts(&got));
        got
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut rx = self.rx;
        // Whatever is still handed on is acknowledged, as a draining pipeline would.
        let acker = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                let _ = b.ack.map(|a| a.send(()));
            }
        });
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("source stops on shutdown")
            .expect("task")
            .expect("source ends cleanly");
        acker.abort();
    }
}

fn texts(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect()
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A frame as a client writes it.
fn frame(txnr: u32, command: &str, data: &[u8]) -> Vec<u8> {
    let mut f = format!("{txnr} {command} {}", data.len()).into_bytes();
    if !data.is_empty() {
        f.push(b' ');
        f.extend_from_slice(data);
    }
    f.push(b'\n');
    f
}

const OFFERS: &[u8] =
    b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";

fn open() -> Vec<u8> {
    frame(1, "open", OFFERS)
}

fn msg(i: usize) -> Vec<u8> {
    format!("<13>May  1 10:00:00 host app: relp message {i} from 198.51.100.7").into_bytes()
}

struct Client {
    s: TcpStream,
    dec: FrameDecoder,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            s: TcpStream::connect(addr).await.unwrap(),
            dec: FrameDecoder::new(1 << 20),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// The next frame from the server; `None` once it closed the connection.
    async fn next(&mut self) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(f) = self
                .dec
                .decode()
                .expect("the server's frames are well-formed")
            {
                return Some(f);
            }
            let read =
                tokio::time::timeout_at(deadline, self.s.read_buf(self.dec.buffer_for_read()))
                    .await
                    .expect("timed out waiting for the server");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next `n` answers, as `(txnr, body)`.
    async fn answers(&mut self, n: usize) -> Vec<(u32, String)> {
        let mut got = Vec::new();
        while got.len() < n {
            let f = self
                .next()
                .await
                .unwrap_or_else(|| panic!("closed after {got:?}"));
            assert_eq!(f.command, Cmd::Rsp, "{f:?}");
            got.push((f.txnr, String::from_utf8_lossy(&f.data).into_owned()));
        }
        got
    }

    /// Opens the session (txnr 1).
    async fn open(&mut self) {
        self.send(&open()).await;
        let a = self.answers(1).await;
        assert_eq!(a[0].0, 1);
        assert!(a[0].1.starts_with("200 OK\n"), "{a:?}");
    }

    /// What the server sends until it closes: nothing but the `serverclose` hint.
    async fn closed_by_server(&mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(f) = self.next().await {
            seen.push(f);
        }
        seen
    }

    /// True when nothing has arrived from the server yet (does not wait).
    fn nothing_yet(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

fn ok(txnrs: impl IntoIterator<Item = u32>) -> Vec<(u32, String)> {
    txnrs
        .into_iter()
        .map(|t| (t, "200 OK".to_string()))
        .collect()
}

fn is_serverclose(frames: &[Frame]) -> bool {
    frames.len() == 1
        && frames[0].txnr == 0
        && frames[0].command == Cmd::Other("serverclose".into())
}

// ---------------------------------------------------------------------------------------
// The protocol

/// An `open` is answered at once with the accepted offers; a message only once its
/// batch is acknowledged; `close` is answered and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_syslog_close_exchange() {
    let mut src = start(config()).await;
    let mut c = Client::connect(src.addr).await;
    c.send(&open()).await;
    let a = c.answers(1).await;
    assert_eq!(
        a,
        vec![(
            1,
            format!(
                "200 OK\nrelp_version=0\nrelp_software=tripline,{}\ncommands=syslog",
                env!("CARGO_PKG_VERSION")
            )
        )]
    );
    c.send(&frame(2, "syslog", &msg(0))).await;
    let b = src.batch().await;
    assert_eq!(texts(&b.lines), vec![String::from_utf8(msg(0)).unwrap()]);
    assert_eq!(
        b.lines[0].origin,
        Origin::Syslog {
            peer: c.s.local_addr().unwrap(),
            transport: Transport::Relp
        }
    );
    assert_eq!(Transport::Relp.as_str(), "relp");
    // Handed on, not acknowledged: not answered.
    let stats = src.stats.clone();
    wait_until("the message counted", || stats.snapshot().unanswered == 1).await;
    assert!(c.nothing_yet(), "answered before the pipeline acknowledged");
    b.ack.unwrap().send(()).unwrap();
    assert_eq!(c.answers(1).await, ok([2]));
    c.send(&frame(3, "close", b"")).await;
    assert_eq!(c.answers(1).await, ok([3]));
    assert!(
        c.closed_by_server().await.is_empty(),
        "no hint after a client's close"
    );
    let s = src.stats.snapshot();
    assert_eq!((s.messages, s.answered, s.unanswered), (1, 1, 0));
    assert_eq!((s.framing_errors, s.protocol_errors), (0, 0));
    wait_until("the connection to end", || {
        src.stats.snapshot().connections_open == 0
    })
    .await;
    src.stop().await;
}

/// Frames sent in one write are answered in the order they came, an unknown command
/// (`500`) and an empty message included, each message after its batch's ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_frames_are_answered_in_order() {
    let mut src = start(config()).await;
    let mut c = Client::connect(src.addr).await;
    let mut all = open();
    for t in 2..=6 {
        all.extend(frame(t, "syslog", &msg(t as usize)));
    }
    all.extend(frame(7, "starttls", b""));
    all.extend(frame(8, "syslog", b"\n")); // empty once its LF is trimmed
    all.extend(frame(9, "syslog", &msg(9)));
    all.extend(frame(10, "syslog", &[msg(10), b"\r\n".to_vec()].concat()));
    c.send(&all).await;
    let lines = src.ack_lines(7).await;
    let want: Vec<String> = [2, 3, 4, 5, 6, 9, 10]
        .iter()
        .map(|&i| String::from_utf8(msg(i)).unwrap())
        .collect();
    assert_eq!(texts(&lines), want);
    let mut want = vec![(1, String::new())];
    want.extend(ok(2..=6));
    want.push((7, "500 command not supported".into()));
    want.extend(ok(8..=10));
    let mut got = c.answers(10).await;
    assert!(got[0].1.starts_with("200 OK\n"));
    got[0].1.clear();
    assert_eq!(got, want);
    let s = src.stats.snapshot();
    assert_eq!((s.messages, s.answered, s.commands_refused), (7, 8, 1));
    src.stop().await;
}

/// A frame arriving a byte at a time, or several frames cut at odd places, is read
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_split_across_reads() {
    let mut src = start(config()).await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    for b in frame(2, "syslog", &msg(2)) {
        c.send(&[b]).await;
        c.s.flush().await.unwrap();
    }
    assert_eq!(texts(&src.ack_lines(1).await), texts_of(&[2]));
    assert_eq!(c.answers(1).await, ok([2]));
    // Two frames cut inside the header, inside the data, just before a trailer.
    let mut t = 3;
    for cut in [1, 4, 9, 13, 30, 58, 59] {
        let stream = [
            frame(t, "syslog", &msg(t as usize)),
            frame(t + 1, "syslog", &msg(t as usize + 1)),
        ]
        .concat();
        let (a, b) = stream.split_at(cut.min(stream.len() - 1));
        c.send(a).await;
        c.s.flush().await.unwrap();
        c.send(b).await;
        let lines = src.ack_lines(2).await;
        assert_eq!(
            texts(&lines),
            texts_of(&[t as usize, t as usize + 1]),
            "cut {cut}"
        );
        assert_eq!(c.answers(2).await, ok([t, t + 1]));
        t += 2;
    }
    src.stop().await;
}

fn texts_of(ids: &[usize]) -> Vec<String> {
    ids.iter()
        .map(|&i| String::from_utf8(msg(i)).unwrap())
        .collect()
}

/// Malformed or out-of-place input closes the connection at once, with the
/// `serverclose` hint: what was answered stays answered; the message read with the
/// bad frame is not handed on (it will come again), and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_the_connection() {
    // (what follows a good message 3 in the same write, the counter it must raise)
    let cases: &[(&[u8], &str)] = &[
        (b"4 syslog x hi\n", "framing"),         // DATALEN not a number
        (b"4 syslog 2 abc\n", "framing"),        // no LF after DATALEN bytes
        (b"4 syslog 1000000000 a\n", "framing"), // DATALEN of 10 digits
        (b"4 syslog 3abc\n", "framing"),         // no space before the data
        (b"4 syslog -1 a\n", "framing"),
        (b"1234567890 syslog 1 a\n", "framing"), // TXNR of 10 digits
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "framing"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "framing"), // a TLS hello
        (b"\0\0\0\0\n", "framing"),
        (
            b"4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n",
            "framing",
        ),
        (b"9 syslog 1 a\n", "protocol"),   // TXNR out of sequence
        (b"3 syslog 1 a\n", "protocol"),   // TXNR repeated
        (b"4 rsp 6 200 OK\n", "protocol"), // only a server answers
    ];
    let mut src = start(config()).await;
    for (i, (bad, counter)) in cases.iter().enumerate() {
        let before = src.stats.snapshot();
        let mut c = Client::connect(src.addr).await;
        c.open().await;
        c.send(&frame(2, "syslog", &msg(i))).await;
        assert_eq!(texts(&src.ack_lines(1).await), texts_of(&[i]));
        assert_eq!(c.answers(1).await, ok([2]));
        c.send(&[frame(3, "syslog", &msg(100 + i)), bad.to_vec()].concat())
            .await;
        let seen = c.closed_by_server().await;
        assert!(is_serverclose(&seen), "{bad:?}: {seen:?}");
        // Message 3 is handed on only if a read ended between it and the bad frame.
        while let Ok(b) = src.rx.try_recv() {
            assert_eq!(texts(&b.lines), texts_of(&[100 + i]), "{bad:?}");
        }
        let after = src.stats.snapshot();
        let (f, p) = (
            after.framing_errors - before.framing_errors,
            after.protocol_errors - before.protocol_errors,
        );
        let want = if *counter == "framing" {
            (1, 0)
        } else {
            (0, 1)
        };
        assert_eq!((f, p), want, "{bad:?}");
    }
    // Before `open`: a message is out of place; an open without a version is refused.
    let mut c = Client::connect(src.addr).await;
    c.send(&frame(1, "syslog", &msg(0))).await;
    assert!(is_serverclose(&c.closed_by_server().await));
    let mut c = Client::connect(src.addr).await;
    c.send(&frame(1, "open", b"commands=syslog")).await;
    assert_eq!(
        c.answers(1).await,
        vec![(1, "500 no relp_version offer".to_string())]
    );
    assert!(is_serverclose(&c.closed_by_server().await));
    let s = src.stats.snapshot();
    assert_eq!(s.protocol_errors, 3 + 2);
    assert_eq!(s.unanswered, 0);
    src.stop().await;
}

/// Garbage of every kind from many connections: each is closed, the source goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_stops_the_source() {
    let mut src = start(config()).await;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..40 {
        let mut junk = Vec::new();
        for _ in 0..(round * 7 % 300 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push((seed >> 24) as u8);
        }
        let mut c = Client::connect(src.addr).await;
        let _ = c.s.write_all(&junk).await;
        let _ = c.s.shutdown().await;
        // Read whatever comes (a hint, perhaps a 500) until closed.
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(WAIT, c.s.read_to_end(&mut sink)).await;
    }
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    c.send(&frame(2, "syslog", &msg(1))).await;
    assert_eq!(texts(&src.ack_lines(1).await), texts_of(&[1]));
    assert_eq!(c.answers(1).await, ok([2]));
    src.stop().await;
}

/// A message longer than `max_message_bytes` is truncated, handed on, answered
/// `200 OK` and counted; the frame after it is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_truncated_and_answered() {
    let mut src = start(RelpConfig {
        max_message_bytes: 32,
        ..config()
    })
    .await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    let long = [b"<13>".to_vec(), vec![b'x'; 100_000]].concat();
    c.send(&[frame(2, "syslog", &long), frame(3, "syslog", b"<13>short")].concat())
        .await;
    let lines = src.ack_lines(2).await;
    assert_eq!(lines[0].bytes, long[..32]);
    assert_eq!(lines[1].bytes, b"<13>short");
    assert_eq!(c.answers(2).await, ok([2, 3]));
    assert_eq!(src.stats.snapshot().oversized, 1);
    src.stop().await;
}

/// At most `window` commands are read and not answered: the rest waits in the socket
/// until answers free the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_bounds_unanswered_messages() {
    let mut src = start(RelpConfig {
        window: 4,
        ..config()
    })
    .await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    let all: Vec<u8> = (2..=11)
        .flat_map(|t| frame(t, "syslog", &msg(t as usize)))
        .collect();
    c.send(&all).await;
    // Held, not acknowledged: the first 4 (in one batch, or more if the reads split
    // them), and nothing more is read while they are unanswered.
    let mut held = Vec::new();
    let mut first = Vec::new();
    while first.len() < 4 {
        let b = src.batch().await;
        first.extend(b.lines);
        held.extend(b.ack);
    }
    assert_eq!(texts(&first), texts_of(&[2, 3, 4, 5]));
    let stats = src.stats.clone();
    wait_until("4 unanswered", || stats.snapshot().unanswered == 4).await;
    assert!(src.rx.try_recv().is_err());
    assert_eq!(src.stats.snapshot().messages, 4);
    for ack in held {
        ack.send(()).unwrap();
    }
    let rest = src.ack_lines(6).await;
    assert_eq!(texts(&rest), texts_of(&[6, 7, 8, 9, 10, 11]));
    assert_eq!(c.answers(10).await, ok(2..=11));
    src.stop().await;
}

/// A batch the pipeline drops without acknowledging it (its alerts were not written)
/// is never answered: the connection closes, and the client sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_batch_is_never_answered() {
    let mut src = start(config()).await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    c.send(&frame(2, "syslog", &msg(2))).await;
    let b = src.batch().await;
    b.ack.unwrap().send(()).unwrap();
    assert_eq!(c.answers(1).await, ok([2]));
    c.send(&[frame(3, "syslog", &msg(3)), frame(4, "close", b"")].concat())
        .await;
    let b = src.batch().await;
    drop(b); // not acknowledged
    assert!(is_serverclose(&c.closed_by_server().await));
    let s = src.stats.snapshot();
    assert_eq!((s.answered, s.unanswered_at_close, s.unanswered), (1, 1, 0));
    src.stop().await;
}

/// Shutdown: reading stops, the answers of what was handed on still go out once
/// acknowledged, then the `serverclose` hint, and the source ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_what_was_handed_on() {
    let mut src = start(config()).await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    c.send(&frame(2, "syslog", &msg(2))).await;
    let b = src.batch().await;
    src.stop.send(true).unwrap();
    wait_until("the listener to close", || {
        std::net::TcpStream::connect(src.addr).is_err()
    })
    .await;
    b.ack.unwrap().send(()).unwrap();
    assert_eq!(c.answers(1).await, ok([2]));
    assert!(is_serverclose(&c.closed_by_server().await));
    src.stop().await;
}

/// A silent connection is closed after `idle_timeout`, with the hint; one that is
/// waiting for its answers is not idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    let mut src = start(RelpConfig {
        idle_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut c = Client::connect(src.addr).await;
    c.open().await;
    c.send(&frame(2, "syslog", &msg(2))).await;
    let b = src.batch().await;
    // Waiting on the pipeline for longer than the idle timeout is not idleness (the
    // one wait here on time itself: that is what is tested).
    let t0 = std::time::Instant::now();
    wait_until("twice the idle timeout", || {
        t0.elapsed() > Duration::from_millis(600)
    })
    .await;
    assert_eq!(src.stats.snapshot().idle_timeouts, 0);
    b.ack.unwrap().send(()).unwrap();
    assert_eq!(c.answers(1).await, ok([2]));
    assert!(is_serverclose(&c.closed_by_server().await));
    assert_eq!(src.stats.snapshot().idle_timeouts, 1);
    src.stop().await;
}

/// Connections beyond `max_connections` are closed at once and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit() {
    let mut src = start(RelpConfig {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut first = Client::connect(src.addr).await;
    first.open().await;
    let mut second = Client::connect(src.addr).await;
    let seen = second.closed_by_server().await;
    assert!(seen.is_empty() || is_serverclose(&seen), "{seen:?}");
    assert_eq!(src.stats.snapshot().connections_rejected, 1);
    first.send(&frame(2, "syslog", &msg(2))).await;
    assert_eq!(texts(&src.ack_lines(1).await), texts_of(&[2]));
    assert_eq!(first.answers(1).await, ok([2]));
    src.stop().await;
}

/// `type = "relp"` in the configuration: defaults, ranges named by key.
#[test]
fn relp_source_config() {
    let intel = "[intel]\npaths = [\"x\"]\n";
    let c = Config::parse(
        &format!("{intel}[[sources]]\ntype = \"relp\"\n"),
        Path::new("t.toml"),
    )
    .unwrap();
    let plan = c.plan(Path::new("t.toml")).unwrap();
    assert_eq!(plan.sources[0].name, "relp-0");
    assert_eq!(plan.sources[0].kind.type_name(), "relp");
    let tripline::config::SourceKind::Relp(r) = &plan.sources[0].kind else {
        panic!("not relp")
    };
    assert_eq!(r.address, "127.0.0.1:2514".parse().unwrap());
    assert_eq!(
        (r.max_message_bytes, r.max_connections, r.idle_timeout),
        (65536, 256, Duration::from_secs(300))
    );
    for (key, bad) in [
        ("max_message_bytes", "0"),
        ("max_message_bytes", "16777217"),
        ("max_connections", "0"),
        ("max_connections", "65537"),
        ("idle_timeout_secs", "0"),
        ("idle_timeout_secs", "86401"),
        ("address", "\"2514\""),
        ("timezone", "\"Mars/Olympus\""),
    ] {
        let text = format!(
            "{intel}[[sources]]\ntype = \"stdin\"\n[[sources]]\ntype = \"relp\"\n{key} = {bad}\n"
        );
        let err = Config::parse(&text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("sources[1].{key}")),
            "{key} = {bad}: {err}"
        );
    }
    let text = format!("{intel}[[sources]]\ntype = \"relp\"\nmode = \"tls\"\n");
    let err = Config::parse(&text, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `mode`"), "{err}");
}

// ---------------------------------------------------------------------------------------
// rsyslog omrelp, end to end, with kill -9

/// Ends the child (started by this test, by its id) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Why rsyslog with omrelp cannot run here, if it cannot.
fn missing_rsyslog_relp(dir: &Path) -> Option<String> {
    if Command::new("logger").arg("--version").output().is_err() {
        return Some("util-linux `logger` is not installed".into());
    }
    let conf = dir.join("check.conf");
    std::fs::write(
        &conf,
        "module(load=\"omrelp\")\naction(type=\"omrelp\" target=\"127.0.0.1\" port=\"1\")\n",
    )
    .ok()?;
    match Command::new("rsyslogd")
        .arg("-N1")
        .arg("-f")
        .arg(&conf)
        .output()
    {
        Err(_) => Some("rsyslogd is not installed (Debian: apt-get install rsyslog)".into()),
        Ok(out) if !out.status.success() => Some(format!(
            "rsyslog's omrelp is not installed (Debian: apt-get install rsyslog-relp): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

fn spawn_tripline(config: &Path, metrics: SocketAddr, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--metrics-addr", &metrics.to_string()])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Lines in the alerts file so far (a cheap progress count: duplicates included).
fn line_count(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// Polls `done` every 5 ms (the stream must not pause long) until it holds; panics
/// with `what` after `secs`.
fn poll_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `relpn=` numbers of the whole alert lines in `path`, each with how often it was
/// alerted; and the count of lines. A torn last line (being written) is left out.
fn alerted(path: &Path) -> (BTreeMap<u64, u32>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut seen = BTreeMap::new();
    let mut lines = 0;
    for l in text.lines() {
        if serde_json::from_str::<serde_json::Value>(l).is_err() {
            continue;
        }
        lines += 1;
        let Some(n) = l
            .split("relpn=")
            .nth(1)
            .map(|r| {
                r.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| d.parse().ok())
        else {
            continue;
        };
        *seen.entry(n).or_insert(0) += 1;
    }
    (seen, lines)
}

/// Plain TCP syslog lost 39 and 17 messages when tripline was killed. Over RELP, a
/// message is answered only once its alert is written, so rsyslog keeps and resends
/// what a killed tripline had not finished: every message is alerted at least once.
#[test]
fn rsyslog_relp_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if let Some(why) = missing_rsyslog_relp(d) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    const N: usize = 2000;
    // The sender stays at most this many messages ahead of the alerts: the stream
    // flows without a pause (more than rsyslog's window of 128 in flight) and is far
    // from its end when the kill comes, however fast this machine is.
    const AHEAD: usize = 300;
    const KILL_AFTER: usize = 500;

    let relp = free_addr();
    let alerts = d.join("alerts.jsonl");
    let config = d.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"fixtures/intel/traps\"]\nwatch = false\n\
             [[sources]]\ntype = \"relp\"\naddress = \"{relp}\"\n\
             [alerts]\npath = {:?}\n[rules]\nenabled = false\n[state]\ndir = {:?}\n",
            alerts.display().to_string(),
            d.join("state").display().to_string()
        ),
    )
    .unwrap();
    let tlog = d.join("tripline.log");
    let metrics = free_addr();
    let mut tripline = KillOnDrop(spawn_tripline(&config, metrics, &tlog));
    // Ready first: rsyslog resends the first messages it could not deliver (omrelp's
    // retry after a failed connect), which would blur the figures below.
    wait_for("tripline ready", 120, || {
        metric(metrics, "tripline_ready") == Some(1.0)
    });

    std::fs::create_dir(d.join("work")).unwrap();
    let conf = format!(
        r#"global(workDirectory="{work}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="0" listenPortFileName="{portfile}" ruleset="fwd")
ruleset(name="fwd") {{
  if $programname == "tripline-relp" then {{
    action(type="omrelp" target="127.0.0.1" port="{port}"
           queue.type="LinkedList" queue.size="100000"
           action.resumeRetryCount="-1" action.resumeInterval="1")
  }}
}}
"#,
        work = d.join("work").display(),
        portfile = d.join("port").display(),
        port = relp.port(),
    );
    std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
    let rsyslog = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(d.join("rsyslog.conf"))
        .arg("-i")
        .arg(d.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rsyslogd");
    let _rsyslog = KillOnDrop(rsyslog);
    let portfile = d.join("port");
    wait_for("rsyslog's listen port file", 30, || {
        std::fs::read_to_string(&portfile).is_ok_and(|p| p.trim().parse::<u16>().is_ok())
    });
    let rs_port = std::fs::read_to_string(&portfile)
        .unwrap()
        .trim()
        .to_owned();

    // logger reads messages from its stdin and sends them to rsyslog over TCP.
    let mut logger = Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &rs_port, "--tcp"])
        .args(["--tag", "tripline-relp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logger");
    let mut stdin = logger.stdin.take().unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = {
        let alerts = alerts.clone();
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut alerted_lines = 0;
            for i in 0..N {
                if alerted_lines + AHEAD <= i {
                    poll_until("the alerts to catch up with the sender", 300, || {
                        alerted_lines = line_count(&alerts);
                        alerted_lines + AHEAD > i
                    });
                }
                writeln!(stdin, "relpn={i:06} beacon to 91.198.51.77 padding-padding").unwrap();
                stdin.flush().unwrap();
                sent.store(i + 1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };

    poll_until("the first alerts", 120, || {
        line_count(&alerts) >= KILL_AFTER
    });
    let sent_at_kill = sent.load(std::sync::atomic::Ordering::SeqCst);
    tripline.0.kill().unwrap(); // SIGKILL
    tripline.0.wait().unwrap();
    let (before, lines_before) = alerted(&alerts);
    eprintln!(
        "kill -9 with {sent_at_kill} of {N} messages sent, {} alerted ({lines_before} alert lines)",
        before.len()
    );
    // (The sender may have run on between the two counts: they are figures, and only
    // the end of the stream is certain to be still to come.)
    assert!(before.len() < N, "the kill came after the stream ended");

    let mut tripline = KillOnDrop(spawn_tripline(&config, metrics, &tlog));
    // Every message, or the figures of what is missing after a generous deadline.
    let t0 = std::time::Instant::now();
    while alerted(&alerts).0.len() < N && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (seen, _) = alerted(&alerts);
    let lost: Vec<u64> = (0..N as u64).filter(|n| !seen.contains_key(n)).collect();
    assert!(
        lost.is_empty(),
        "lost {} of {N} messages: {:?}…",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    sender.join().unwrap();
    let logged = logger.wait_with_output().unwrap();
    assert!(logged.status.success(), "logger: {logged:?}");
    wait_for("tripline's metrics", 30, || {
        metric(metrics, "tripline_ready") == Some(1.0)
    });
    Command::new("kill")
        .args(["-TERM", &tripline.0.id().to_string()])
        .status()
        .unwrap();
    let status = tripline.0.wait().unwrap();
    let log = std::fs::read_to_string(&tlog).unwrap_or_default();
    assert!(status.success(), "tripline: {status}\n{log}");

    // Every line whole (a torn tail from the kill is cut at the next start).
    let text = std::fs::read_to_string(&alerts).unwrap();
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("torn alert line ({e}): {l}"));
    }
    let (seen, lines) = alerted(&alerts);
    let lost: Vec<u64> = (0..N as u64).filter(|n| !seen.contains_key(n)).collect();
    let duplicates: u32 = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "rsyslog omrelp -> tripline relp, kill -9 mid-stream: sent {N}, alerted {} distinct \
         in {lines} alert lines, lost {}, duplicates {duplicates}",
        seen.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost {} messages: {lost:?}", lost.len());
    assert_eq!(seen.len(), N, "numbers never sent: {seen:?}");
}
