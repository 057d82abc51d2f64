//! Syslog source: real clients (util-linux `logger`, rsyslog forwarding, `openssl
//! s_client`), framing tables, connection limits, timeouts and drops; and how
//! [`tripline::decode`] (the one parser of syslog headers: the source only frames)
//! reads what real clients send: format, host, app and time.
//!
//! Tests that need a tool skip with a message when it is not installed. Waits poll
//! with generous deadlines: the suite must pass on a busy 2-core machine.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tripline::decode::{is_syslog, DecodeOptions, Decoder, Event, Format, Zone};
use tripline::source::framing::{Frame, FrameDecoder, FramingError};
use tripline::source::syslog::{bind, SyslogConfig, SyslogError, SyslogMode, SyslogStats};
use tripline::source::{Batch, Line, Origin, Transport};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Harness

struct Running {
    addr: SocketAddr,
    rx: mpsc::Receiver<Batch>,
    stats: Arc<SyslogStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), SyslogError>>,
}

fn config(mode: SyslogMode) -> SyslogConfig {
    SyslogConfig {
        mode,
        address: "127.0.0.1:0".parse().unwrap(),
        batch_linger: Duration::from_millis(5),
        ..SyslogConfig::default()
    }
}

async fn start(cfg: SyslogConfig) -> Running {
    start_with_capacity(cfg, 64).await
}

async fn start_with_capacity(cfg: SyslogConfig, capacity: usize) -> Running {
    let bound = bind(cfg).await.expect("bind the syslog source");
    let addr = bound.local_addr();
    let (tx, rx) = mpsc::channel(capacity);
    let stats = Arc::new(SyslogStats::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(bound.run(7, tx, stats.clone(), shutdown));
    Running {
        addr,
        rx,
        stats,
        stop,
        task,
    }
}

impl Running {
    /// Exactly `n` lines (waits for them; fails on a timeout, showing what came).
    async fn lines(&mut self, n: usize) -> Vec<Line> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => {
                    assert_eq!(batch.source, 7);
                    assert!(batch.ack.is_none(), "syslog batches carry no ack");
                    got.extend(batch.lines);
                }
                Ok(None) => panic!("source ended after {} of {n} lines", got.len()),
                Err(_) => panic!(
                    "timed out with {} of {n} lines, the last: {:?}; stats {:?}",
                    got.len(),
                    texts(&got[got.len().saturating_sub(3)..]),
                    self.stats.snapshot()
                ),
            }
        }
        assert_eq!(got.len(), n, "more lines than expected: {:?}", texts(&got));
        got
    }

    /// Stops the source; returns the lines it still handed on.
    async fn stop(mut self) -> Vec<Line> {
        self.stop.send(true).unwrap();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("source stops on shutdown");
        result.expect("task").expect("source ends cleanly");
        let mut rest = Vec::new();
        while let Ok(batch) = self.rx.try_recv() {
            rest.extend(batch.lines);
        }
        rest
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

/// The line as the decoder reads it; it must have a syslog header.
fn decoded(line: &Line) -> Event {
    let ev = Decoder::default().decode(&line.bytes, Utc::now());
    assert!(
        matches!(ev.format, Format::Syslog3164 | Format::Syslog5424) && is_syslog(&line.bytes),
        "not syslog: {:?}",
        String::from_utf8_lossy(&line.bytes)
    );
    ev
}

/// The raw text of a line that must have a syslog header.
fn raw_syslog(line: &Line) -> String {
    decoded(line);
    String::from_utf8_lossy(&line.bytes).into_owned()
}

fn tool(name: &str, version_arg: &str) -> Option<String> {
    let out = Command::new(name).arg(version_arg).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some(text.lines().next().unwrap_or("").to_owned())
}

/// Runs a blocking command off the runtime's threads; panics with its output on failure.
async fn run_cmd(program: &'static str, args: Vec<String>) {
    let shown = format!("{program} {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(&args).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

fn assert_host(ev: &Event) {
    let host = hostname();
    let short = host.split('.').next().unwrap_or("").to_owned();
    let got = ev.host.clone().unwrap_or_default();
    assert!(
        got == host || got == short,
        "hostname {got:?}, expected {host:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real clients

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_udp_tcp_rfc3164_rfc5424_octet_count() {
    let Some(version) = tool("logger", "--version") else {
        eprintln!("SKIPPED: util-linux `logger` is not installed (Debian: bsdutils)");
        return;
    };
    eprintln!("using {version}");
    let cases: &[(SyslogMode, &[&str], Format)] = &[
        (SyslogMode::Udp, &["--udp", "--rfc3164"], Format::Syslog3164),
        (SyslogMode::Udp, &["--udp", "--rfc5424"], Format::Syslog5424),
        (SyslogMode::Tcp, &["--tcp", "--rfc3164"], Format::Syslog3164),
        (SyslogMode::Tcp, &["--tcp", "--rfc5424"], Format::Syslog5424),
        (
            SyslogMode::Tcp,
            &["--tcp", "--octet-count", "--rfc5424"],
            Format::Syslog5424,
        ),
        (
            SyslogMode::Tcp,
            &["--tcp", "--octet-count", "--rfc3164"],
            Format::Syslog3164,
        ),
        (
            SyslogMode::Udp,
            &["--udp", "--rfc5424=notime"],
            Format::Syslog5424,
        ),
    ];
    for (i, &(mode, flags, format)) in cases.iter().enumerate() {
        let mut src = start(config(mode)).await;
        let tag = format!("tripline-t{i}");
        let text = format!("case {i}: login from 203.0.113.7 via evil.example.com");
        let mut args: Vec<String> = vec![
            "--server".into(),
            "127.0.0.1".into(),
            "--port".into(),
            src.addr.port().to_string(),
            "--tag".into(),
            tag.clone(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(text.clone());
        run_cmd("logger", args).await;

        let lines = src.lines(1).await;
        let ev = decoded(&lines[0]);
        let what = format!("{flags:?}: {:?}", texts(&lines));
        assert_eq!(ev.format, format, "{what}");
        assert_eq!(ev.app.as_deref(), Some(tag.as_str()), "{what}");
        assert_host(&ev);
        let notime = flags.iter().any(|f| f.contains("notime"));
        assert_eq!(ev.time.is_some(), !notime, "{what}");
        if let Some(t) = ev.time {
            // Sent just now (RFC 3164: in the local zone, which is UTC here).
            let age = Utc::now() - t;
            assert!(age.num_seconds().abs() < 24 * 3600, "{what}: {t}");
        }
        assert!(texts(&lines)[0].ends_with(&format!(" {text}")), "{what}");
        let Origin::Syslog { peer, transport } = &lines[0].origin else {
            panic!("origin {:?}", lines[0].origin);
        };
        assert_eq!(peer.ip(), src.addr.ip());
        let want = if mode == SyslogMode::Udp {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        assert_eq!(*transport, want, "{what}");
        let stats = src.stats.snapshot();
        assert_eq!(
            (stats.messages, stats.parse_failures, stats.framing_errors),
            (1, 0, 0)
        );
        assert!(src.stop().await.is_empty());
    }
}

/// Ends the child (started by this test, by its id) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// rsyslog receives from `logger` on its own imtcp port and forwards with omfwd,
/// octet-counted, in RFC 5424 and in its traditional (RFC 3164) format. A tap between
/// rsyslog and the source records the bytes to show the framing on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_octet_counted_over_tcp() {
    let Some(version) = tool("rsyslogd", "-v") else {
        eprintln!("SKIPPED: rsyslogd is not installed (Debian: apt-get install rsyslog)");
        return;
    };
    if tool("logger", "--version").is_none() {
        eprintln!("SKIPPED: util-linux `logger` is not installed");
        return;
    }
    eprintln!("using {version}");
    let mut src = start(config(SyslogMode::Tcp)).await;

    // The tap: accepts rsyslog's connections, records, relays to the source.
    let tap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tap_port = tap.local_addr().unwrap().port();
    let wire: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (wire2, target) = (wire.clone(), src.addr);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = tap.accept().await {
            let wire = wire2.clone();
            wire.lock().unwrap().push(Vec::new());
            let conn = wire.lock().unwrap().len() - 1;
            tokio::spawn(async move {
                let mut out = TcpStream::connect(target).await.unwrap();
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = inbound.read(&mut buf).await {
                    wire.lock().unwrap()[conn].extend_from_slice(&buf[..n]);
                    out.write_all(&buf[..n]).await.unwrap();
                }
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("work")).unwrap();
    let conf = format!(
        r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="0" listenPortFileName="{portfile}" ruleset="fwd")
ruleset(name="fwd") {{
  if $programname == "tripline-rs" then {{
    action(type="omfwd" target="127.0.0.1" port="{tap_port}" protocol="tcp"
           TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
    action(type="omfwd" target="127.0.0.1" port="{tap_port}" protocol="tcp"
           TCP_Framing="octet-counted")
  }}
}}
"#,
        work = d.join("work").display(),
        portfile = d.join("port").display(),
    );
    std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
    let child = Command::new("rsyslogd")
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
    let _rsyslog = KillOnDrop(child);
    let portfile = d.join("port");
    wait_until("rsyslog's listen port file", || {
        std::fs::read_to_string(&portfile).is_ok_and(|p| p.trim().parse::<u16>().is_ok())
    })
    .await;
    let rs_port = std::fs::read_to_string(&portfile)
        .unwrap()
        .trim()
        .to_owned();

    let sent: Vec<String> = (0..3)
        .map(|i| format!("forwarded {i}: beacon to 198.51.100.{i}"))
        .collect();
    for (i, text) in sent.iter().enumerate() {
        let format = if i % 2 == 0 { "--rfc5424" } else { "--rfc3164" };
        let args = ["--server", "127.0.0.1", "--port", &rs_port, "--tcp", format];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend(["--tag".into(), "tripline-rs".into(), text.clone()]);
        run_cmd("logger", args).await;
    }

    let lines = src.lines(2 * sent.len()).await;
    let mut by_protocol = [Vec::new(), Vec::new()];
    for line in &lines {
        let ev = decoded(line);
        // rsyslog's traditional format writes the tag of a message it received as RFC
        // 5424 without a colon (`vm tripline-rs forwarded 0: ...`): by the decoder's
        // rule (a tag is an app only before a colon; else `fw01 blocked a ...` would
        // make `blocked` an app) that word stays message text.
        let raw = raw_syslog(line);
        let tagged = ev.format == Format::Syslog5424 || raw.contains(" tripline-rs: ");
        let want = tagged.then_some("tripline-rs");
        assert_eq!(ev.app.as_deref(), want, "{raw:?} in {:?}", texts(&lines));
        assert_host(&ev);
        assert!(ev.time.is_some(), "{:?}", texts(&lines));
        let Origin::Syslog { transport, .. } = line.origin else {
            panic!()
        };
        assert_eq!(transport, Transport::Tcp);
        let text = sent
            .iter()
            .find(|t| raw.ends_with(&format!(" {t}")))
            .unwrap_or_else(|| panic!("no sent text ends {raw:?}"));
        by_protocol[(ev.format == Format::Syslog5424) as usize].push(text.clone());
    }
    for mut got in by_protocol {
        got.sort();
        assert_eq!(
            got,
            sent,
            "each format carries every message: {:?}",
            texts(&lines)
        );
    }
    let wire = wire.lock().unwrap().clone();
    assert!(!wire.is_empty());
    for conn in &wire {
        let digits = conn.iter().take_while(|b| b.is_ascii_digit()).count();
        assert!(
            digits > 0 && conn.get(digits) == Some(&b' ') && conn.get(digits + 1) == Some(&b'<'),
            "octet-counted on the wire: {:?}",
            String::from_utf8_lossy(conn)
        );
    }
    let stats = src.stats.snapshot();
    assert_eq!((stats.framing_errors, stats.parse_failures), (0, 0));
    drop(_rsyslog);
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_openssl_client() {
    let Some(version) = tool("openssl", "version") else {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    };
    eprintln!("using {version}");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let args = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["-keyout".into(), key.display().to_string()]);
    args.extend(["-out".into(), cert.display().to_string()]);
    run_cmd("openssl", args).await;

    let mut cfg = config(SyslogMode::Tls);
    cfg.tls_cert = Some(cert.clone());
    cfg.tls_key = Some(key.clone());
    let mut src = start(cfg).await;

    let msg = "<13>1 2024-05-01T10:00:00Z tlshost tlsapp 42 - - over TLS to 192.0.2.55";
    let input = format!(
        "{} {msg}<13>1 2024-05-01T10:00:01Z tlshost tlsapp - - - second\n",
        msg.len()
    );
    let addr = src.addr.to_string();
    let cafile = cert.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-servername", "localhost"])
            .args([
                "-CAfile",
                &cafile,
                "-verify_return_error",
                "-quiet",
                "-no_ign_eof",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl s_client");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let lines = src.lines(2).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(texts(&lines)[0], msg);
    let ev = decoded(&lines[0]);
    assert_eq!(ev.host.as_deref(), Some("tlshost"));
    assert_eq!(ev.app.as_deref(), Some("tlsapp"));
    assert_eq!(
        raw_syslog(&lines[1]),
        "<13>1 2024-05-01T10:00:01Z tlshost tlsapp - - - second"
    );
    for line in &lines {
        let Origin::Syslog { transport, .. } = line.origin else {
            panic!()
        };
        assert_eq!(transport, Transport::Tls);
    }

    // Plain text to the TLS port: a failed handshake, counted; nothing handed on.
    let mut plain = TcpStream::connect(src.addr).await.unwrap();
    plain.write_all(b"<13>1 - - - - - not tls\n").await.unwrap();
    let stats = src.stats.clone();
    wait_until("a TLS handshake failure", || {
        stats.snapshot().tls_handshake_failures == 1
    })
    .await;
    assert!(src.stop().await.is_empty());

    // A key that is not PEM is a set-up error naming the file.
    let mut bad = config(SyslogMode::Tls);
    bad.tls_cert = Some(cert);
    bad.tls_key = Some(dir.path().join("missing.pem"));
    let err = bind(bad).await.err().expect("missing key file");
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Connections over loopback

async fn tcp_send(addr: SocketAddr, data: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    s
}

/// True once the server has closed the connection (EOF or reset).
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(WAIT, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_rejects_extra_connections() {
    let mut cfg = config(SyslogMode::Tcp);
    cfg.max_connections = 2;
    // Active senders are never evicted: make "idle long enough" unreachable here.
    cfg.busy_idle_timeout = Duration::from_secs(3600);
    let mut src = start(cfg).await;
    let a = tcp_send(src.addr, b"<13>1 - h app - - - from a\n").await;
    let _b = tcp_send(src.addr, b"<13>1 - h app - - - from b\n").await;
    src.lines(2).await;
    assert_eq!(src.stats.snapshot().connections_open, 2);

    let mut c = tcp_send(src.addr, b"<13>1 - h app - - - from c\n").await;
    assert!(closed_by_server(&mut c).await, "third connection closed");
    assert_eq!(src.stats.snapshot().connections_rejected, 1);

    drop(a);
    let stats = src.stats.clone();
    wait_until("a slot to free", || stats.snapshot().connections_open == 1).await;
    let _d = tcp_send(src.addr, b"<13>1 - h app - - - from d\n").await;
    let lines = src.lines(1).await;
    assert_eq!(raw_syslog(&lines[0]), "<13>1 - h app - - - from d");
    let s = src.stats.snapshot();
    assert_eq!((s.connections_accepted, s.connections_rejected), (3, 1));
    src.stop().await;
}

/// Defect: 256 idle TCP or TLS connections (never sending, never handshaking) held
/// every slot for 300 s and locked every legitimate sender out. Now a newcomer at the
/// cap closes the longest-idle connection (idle for `busy_idle_timeout`), and a TLS
/// handshake has its own short deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_lock_out_senders() {
    let mut cfg = config(SyslogMode::Tcp);
    cfg.max_connections = 8;
    cfg.busy_idle_timeout = Duration::from_millis(200);
    let mut src = start(cfg).await;
    let mut flood = Vec::new();
    for _ in 0..8 {
        flood.push(TcpStream::connect(src.addr).await.unwrap());
    }
    let stats = src.stats.clone();
    wait_until("the flood to fill every slot", || {
        stats.snapshot().connections_open == 8
    })
    .await;
    // Let the flood become idle for longer than busy_idle_timeout (a precondition; a
    // slower machine only makes them idler).
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Senders one after the other, as clients that each come, send and go.
    let mut got = BTreeSet::new();
    for i in 0..20 {
        let msg = format!("<13>1 - h app - - - sender {i}\n");
        let _ = tcp_send(src.addr, msg.as_bytes()).await;
        got.extend(src.lines(1).await.iter().map(raw_syslog));
    }
    for i in 0..20 {
        assert!(
            got.contains(&format!("<13>1 - h app - - - sender {i}")),
            "{got:?}"
        );
    }
    let s = src.stats.snapshot();
    // Idle ones made room (as many as were needed: senders that finished free theirs).
    assert!((1..=8).contains(&s.connections_evicted), "{s:?}");
    assert_eq!(s.connections_rejected, 0, "{s:?}");
    drop(flood);
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_has_its_own_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = crate::util::test_certificates(dir.path());
    let mut cfg = config(SyslogMode::Tls);
    cfg.tls_cert = Some(cert);
    cfg.tls_key = Some(key);
    cfg.tls_handshake_timeout = Duration::from_millis(300);
    let src = start(cfg).await;
    // Connects, never says hello.
    let mut silent = TcpStream::connect(src.addr).await.unwrap();
    assert!(closed_by_server(&mut silent).await);
    let s = src.stats.snapshot();
    assert_eq!((s.tls_handshake_timeouts, s.idle_timeouts), (1, 0), "{s:?}");
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    let mut cfg = config(SyslogMode::Tcp);
    cfg.idle_timeout = Duration::from_millis(300);
    let mut src = start(cfg).await;
    let mut s = tcp_send(src.addr, b"<13>1 - h app - - - then silence").await;
    assert!(closed_by_server(&mut s).await);
    // The unterminated last frame is handed on when the connection ends.
    let lines = src.lines(1).await;
    assert_eq!(raw_syslog(&lines[0]), "<13>1 - h app - - - then silence");
    let s = src.stats.snapshot();
    assert_eq!((s.idle_timeouts, s.connections_open), (1, 0));
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_count_closes_the_connection() {
    let mut src = start(config(SyslogMode::Tcp)).await;
    let mut s = tcp_send(
        src.addr,
        b"<13>1 - h app - - - before\n12x <13>1 - h app - - - after\n",
    )
    .await;
    assert!(closed_by_server(&mut s).await);
    let lines = src.lines(1).await;
    assert_eq!(raw_syslog(&lines[0]), "<13>1 - h app - - - before");
    let stats = src.stats.clone();
    wait_until("the framing error", || stats.snapshot().framing_errors == 1).await;
    assert!(src.stop().await.is_empty(), "nothing after the bad count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_messages_are_handed_on_and_counted() {
    for mode in [SyslogMode::Udp, SyslogMode::Tcp] {
        let mut cfg = config(mode);
        cfg.max_message_bytes = 16;
        let mut src = start(cfg).await;
        let inputs: [&[u8]; 3] = [
            b"<13>0123456789abcdefXYZ",
            b"\x80\xff binary \x01",
            b"<13>short",
        ];
        if mode == SyslogMode::Udp {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for data in inputs {
                sock.send_to(data, src.addr).await.unwrap();
            }
        } else {
            let _s = tcp_send(src.addr, &inputs.join(&b'\n')).await;
        }
        let lines = src.lines(3).await;
        let got: Vec<&[u8]> = lines.iter().map(|l| l.bytes.as_slice()).collect();
        let want: [&[u8]; 3] = [b"<13>0123456789ab", b"\x80\xff binary \x01", b"<13>short"];
        assert_eq!(got, want, "{mode:?}");
        let s = src.stats.snapshot();
        // None of the three has a syslog header.
        assert_eq!(
            (s.messages, s.oversized, s.parse_failures),
            (3, 1, 3),
            "{mode:?}"
        );
        src.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_backpressure_loses_nothing_and_is_not_idleness() {
    let mut cfg = config(SyslogMode::Tcp);
    cfg.batch_max = 4;
    // Shorter than the stall below: waiting on the pipeline must not count as idle.
    cfg.idle_timeout = Duration::from_millis(100);
    let mut src = start_with_capacity(cfg, 1).await;
    let n = 2000;
    let data: String = (0..n)
        .map(|i| format!("<13>1 - h app - - - m{i}\n"))
        .collect();
    let sender = tokio::spawn(async move {
        let _s = tcp_send(src.addr, data.as_bytes()).await;
    });
    // The pipeline is stalled: the source stops reading, it does not drop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(src.stats.snapshot().messages < n as u64);
    let lines = src.lines(n).await;
    let got: Vec<String> = lines.iter().map(raw_syslog).collect();
    let want: Vec<String> = (0..n)
        .map(|i| format!("<13>1 - h app - - - m{i}"))
        .collect();
    assert_eq!(got, want);
    sender.await.unwrap();
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_when_pipeline_is_full_are_counted() {
    let mut cfg = config(SyslogMode::Udp);
    cfg.batch_max = 1;
    let mut src = start_with_capacity(cfg, 1).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let n = 50u64;
    for i in 0..n {
        sock.send_to(format!("<13>1 - h app - - - d{i}").as_bytes(), src.addr)
            .await
            .unwrap();
    }
    let stats = src.stats.clone();
    wait_until("every datagram handed on or counted", || {
        let s = stats.snapshot();
        s.messages + s.udp_drops + s.udp_kernel_drops >= n
    })
    .await;
    let s = src.stats.snapshot();
    assert!(s.udp_drops > 0, "{s:?}");
    let received = src.lines(s.messages as usize).await;
    assert_eq!(received.len() as u64, s.messages);
    src.stop().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_kernel_drops_are_read() {
    let mut cfg = config(SyslogMode::Udp);
    cfg.udp_recv_buffer_bytes = Some(4096);
    let bound = bind(cfg).await.unwrap();
    let addr = bound.local_addr();
    // Nobody reads yet: the kernel drops what its small buffer cannot hold.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        sock.send_to(&[b'x'; 512], addr).unwrap();
    }
    let (tx, _rx) = mpsc::channel(1024);
    let stats = Arc::new(SyslogStats::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(bound.run(0, tx, stats.clone(), shutdown));
    wait_until("the kernel drop count", || {
        stats.snapshot().udp_kernel_drops > 0
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_on_pending_lines_and_bad_configs_are_refused() {
    let mut cfg = config(SyslogMode::Tcp);
    cfg.batch_linger = Duration::from_secs(3600);
    let src = start(cfg).await;
    let _s = tcp_send(src.addr, b"<13>1 - h app - - - pending\n").await;
    let stats = src.stats.clone();
    wait_until("the message", || stats.snapshot().messages == 1).await;
    assert_eq!(texts(&src.stop().await), ["<13>1 - h app - - - pending"]);

    let mut tls_without_cert = config(SyslogMode::Tls);
    tls_without_cert.tls_key = Some("k.pem".into());
    let mut cert_without_tls = config(SyslogMode::Tcp);
    cert_without_tls.tls_cert = Some("c.pem".into());
    cert_without_tls.tls_key = Some("k.pem".into());
    let mut zero = config(SyslogMode::Udp);
    zero.batch_max = 0;
    for (cfg, want) in [
        (tls_without_cert, "needs tls_cert"),
        (cert_without_tls, "mode tls only"),
        (zero, "batch_max"),
    ] {
        let err = bind(cfg).await.err().expect("refused");
        let err = err.to_string();
        assert!(err.contains(want) && err.contains("127.0.0.1:0"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// Framing table

/// Counted frame.
fn oc(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

#[derive(Debug, PartialEq)]
enum Want {
    M(&'static str),
    T(&'static str),
    Malformed,
    Incomplete,
}

/// Feeds `chunks` one after the other, then ends the stream.
fn decode_all(chunks: &[&[u8]], max: usize) -> Vec<(Vec<u8>, bool)> {
    decode_all_with_error(chunks, max).0
}

fn decode_all_with_error(
    chunks: &[&[u8]],
    max: usize,
) -> (Vec<(Vec<u8>, bool)>, Option<FramingError>) {
    let mut d = FrameDecoder::new(max);
    let mut out = Vec::new();
    let take = |f: Frame<'_>| (f.bytes().to_vec(), f.is_truncated());
    for chunk in chunks {
        d.extend(chunk);
        loop {
            match d.decode() {
                Ok(Some(f)) => out.push(take(f)),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(d.buffered() <= max + 11 + chunk.len(), "buffer bounded");
    }
    loop {
        match d.decode_eof() {
            Ok(Some(f)) => out.push(take(f)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn as_wants(frames: &[(Vec<u8>, bool)], err: &Option<FramingError>) -> Vec<String> {
    let mut v: Vec<String> = frames
        .iter()
        .map(|(b, t)| {
            format!(
                "{}{}",
                if *t { "T:" } else { "M:" },
                String::from_utf8_lossy(b)
            )
        })
        .collect();
    match err {
        Some(FramingError::MalformedCount { .. }) => v.push("Malformed".into()),
        Some(FramingError::Incomplete { .. }) => v.push("Incomplete".into()),
        None => {}
    }
    v
}

#[test]
fn framing_table() {
    use Want::*;
    let cases: Vec<(&str, String, usize, Vec<Want>)> = vec![
        (
            "octet counted",
            oc("<13>a") + &oc("<13>bb"),
            64,
            vec![M("<13>a"), M("<13>bb")],
        ),
        (
            "counted drops a final LF",
            oc("<13>a\r\n") + &oc("<13>b\n"),
            64,
            vec![M("<13>a"), M("<13>b")],
        ),
        (
            "counted empty skipped",
            oc("\n") + &oc("<13>a"),
            64,
            vec![M("<13>a")],
        ),
        (
            "counted keeps LF and NUL",
            oc("<13>a\nb\0c"),
            64,
            vec![M("<13>a\nb\0c")],
        ),
        (
            "LF",
            "<13>a\n<13>b\n".into(),
            64,
            vec![M("<13>a"), M("<13>b")],
        ),
        (
            "NUL",
            "<13>a\0<13>b\0".into(),
            64,
            vec![M("<13>a"), M("<13>b")],
        ),
        (
            "CRLF",
            "<13>a\r\n<13>b\r\n".into(),
            64,
            vec![M("<13>a"), M("<13>b")],
        ),
        (
            "lone CR stays",
            "<13>a\rb\n".into(),
            64,
            vec![M("<13>a\rb")],
        ),
        (
            "mixed in one stream",
            oc("<13>a") + "<13>b\n" + &oc("<13>c\nd") + "<13>e\0<13>f\r\n" + &oc("<13>g"),
            64,
            vec![
                M("<13>a"),
                M("<13>b"),
                M("<13>c\nd"),
                M("<13>e"),
                M("<13>f"),
                M("<13>g"),
            ],
        ),
        (
            "empty frames skipped",
            "\n\n\r\n\0<13>a\n".into(),
            64,
            vec![M("<13>a")],
        ),
        (
            "unterminated last frame",
            "<13>a\n<13>b".into(),
            64,
            vec![M("<13>a"), M("<13>b")],
        ),
        ("unterminated CR", "<13>b\r".into(), 64, vec![M("<13>b")]),
        (
            "exactly max with CRLF",
            "<13>ab\r\n".into(),
            6,
            vec![M("<13>ab")],
        ),
        ("exactly max counted", oc("<13>ab"), 6, vec![M("<13>ab")]),
        (
            "oversized LF truncated",
            "<13>0123456789\n<13>ok\n".into(),
            8,
            vec![T("<13>0123"), M("<13>ok")],
        ),
        (
            "oversized counted truncated",
            oc("<13>0123456789") + &oc("<13>ok"),
            8,
            vec![T("<13>0123"), M("<13>ok")],
        ),
        (
            "oversized at EOF",
            "<13>0123456789".into(),
            8,
            vec![T("<13>0123")],
        ),
        ("max+1 truncated", "<13>abc\n".into(), 6, vec![T("<13>ab")]),
        (
            "malformed count",
            "<13>a\n12x <13>b\n<13>c\n".into(),
            64,
            vec![M("<13>a"), Malformed],
        ),
        (
            "count with leading zero",
            "05 <13>a".into(),
            64,
            vec![Malformed],
        ),
        (
            "count too long",
            "12345678901 <13>a".into(),
            64,
            vec![Malformed],
        ),
        ("count without space", "12\n".into(), 64, vec![Malformed]),
        ("cut counted frame", "10 <13>a".into(), 64, vec![Incomplete]),
        ("cut count", "1".into(), 64, vec![Incomplete]),
        (
            "cut oversized counted frame",
            oc("<13>0123456789")[..12].to_owned(),
            8,
            vec![T("<13>0123"), Incomplete],
        ),
        (
            "plain text line",
            "hello world\n".into(),
            64,
            vec![M("hello world")],
        ),
    ];
    for (name, input, max, want) in cases {
        let want: Vec<String> = want
            .iter()
            .map(|w| match w {
                M(s) => format!("M:{s}"),
                T(s) => format!("T:{s}"),
                Malformed => "Malformed".into(),
                Incomplete => "Incomplete".into(),
            })
            .collect();
        let input = input.as_bytes();
        let (frames, err) = decode_all_with_error(&[input], max);
        assert_eq!(as_wants(&frames, &err), want, "{name}: whole");
        // Split across reads at every byte boundary, and byte by byte.
        for at in 0..=input.len() {
            let (frames, err) = decode_all_with_error(&[&input[..at], &input[at..]], max);
            assert_eq!(as_wants(&frames, &err), want, "{name}: split at {at}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (frames, err) = decode_all_with_error(&bytes, max);
        assert_eq!(as_wants(&frames, &err), want, "{name}: byte by byte");
    }
}

#[test]
fn framing_error_stops_the_decoder() {
    let mut d = FrameDecoder::new(64);
    d.extend(b"0 junk\n<13>a\n");
    assert!(matches!(
        d.decode(),
        Err(FramingError::MalformedCount { .. })
    ));
    assert!(d.is_failed());
    d.extend(b"<13>b\n");
    assert_eq!(d.decode(), Ok(None));
    assert_eq!(d.decode_eof(), Ok(None));
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any bytes, cut anywhere: no panic, no frame over the limit, and the same
        /// frames whatever the reads.
        #[test]
        fn never_panics_and_reads_do_not_matter(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            at in 0usize..300,
            max in 1usize..40,
        ) {
            let at = at.min(data.len());
            let whole = decode_all_with_error(&[&data], max);
            let split = decode_all_with_error(&[&data[..at], &data[at..]], max);
            prop_assert_eq!(as_wants(&whole.0, &whole.1), as_wants(&split.0, &split.1));
            prop_assert!(whole.0.iter().all(|(b, _)| b.len() <= max && !b.is_empty()));
            let _ = is_syslog(&data);
            let _ = Decoder::default().decode(&data, Utc::now());
        }

        #[test]
        fn syslog_like_lines_round_trip(
            msgs in proptest::collection::vec("<[0-9]{1,3}>[ -~]{0,30}", 1..10),
        ) {
            let stream: String = msgs.iter().map(|m| format!("{} {m}", m.len())).collect();
            let got = decode_all(&[stream.as_bytes()], 64);
            let got: Vec<String> = got.into_iter().map(|(b, _)| String::from_utf8(b).unwrap()).collect();
            prop_assert_eq!(got, msgs);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Header table: how the decoder reads what syslog senders write

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

struct HeaderCase {
    name: &'static str,
    raw: &'static [u8],
    /// The source's zone.
    zone: &'static str,
    /// The decoder's reference (the time of reading).
    now: DateTime<Utc>,
    want: Option<Header>,
}

/// Format, time, host, app.
type Header = (
    Format,
    Option<DateTime<Utc>>,
    Option<&'static str>,
    Option<&'static str>,
);

#[test]
fn header_table() {
    use Format::{Syslog3164 as Rfc3164, Syslog5424 as Rfc5424};
    let now = utc(2024, 12, 1, 12, 0, 0);
    let ts_5424 = utc(2003, 10, 11, 22, 14, 15) + chrono::TimeDelta::milliseconds(3);
    let cases = [
        HeaderCase {
            name: "5424 RFC example 1, no structured data",
            raw: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
            zone: "UTC",
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("su"))),
        },
        HeaderCase {
            name: "5424 with a BOM and a zone",
            raw: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \u{FEFF}%% It's time to make the do-nuts.".as_bytes(),
            zone: "UTC",
            now,
            want: Some((Rfc5424, Some(utc(2003, 8, 24, 12, 14, 15) + chrono::TimeDelta::microseconds(3)), Some("192.0.2.1"), Some("myproc"))),
        },
        HeaderCase {
            name: "5424 with structured data",
            raw: b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry",
            zone: "UTC",
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("evntslog"))),
        },
        HeaderCase {
            name: "5424 structured data and BOM",
            raw: "<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 x=\"y\"][b@2 z=\"]\"] \u{FEFF}text".as_bytes(),
            zone: "UTC",
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("h"), Some("app"))),
        },
        HeaderCase {
            name: "5424 structured data only",
            raw: b"<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 x=\"y\"]",
            zone: "UTC",
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("h"), Some("app"))),
        },
        HeaderCase {
            name: "5424 NILVALUE time (logger --rfc5424=notime)",
            raw: b"<13>1 - myhost mytag - - [timeQuality tzKnown=\"1\"] sent at 2019-01-01T00:00:00Z",
            zone: "UTC",
            now,
            want: Some((Rfc5424, None, Some("myhost"), Some("mytag"))),
        },
        HeaderCase {
            name: "5424 ignores the source's zone",
            raw: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - x",
            zone: "+02:00",
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("su"))),
        },
        HeaderCase {
            name: "3164 RFC example, this year",
            raw: b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            zone: "UTC",
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 22, 14, 15)), Some("mymachine"), Some("su"))),
        },
        HeaderCase {
            name: "3164 with pid and padded day",
            raw: b"<38>Feb  5 17:32:18 10.0.0.99 sshd[1234]: Accepted publickey for root from 203.0.113.9",
            zone: "UTC",
            now,
            want: Some((Rfc3164, Some(utc(2024, 2, 5, 17, 32, 18)), Some("10.0.0.99"), Some("sshd"))),
        },
        HeaderCase {
            name: "3164 at +02:00",
            raw: b"<34>Oct 11 22:14:15 host app: x",
            zone: "+02:00",
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 20, 14, 15)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 at -05:00 crosses midnight",
            raw: b"<34>Oct 11 22:14:15 host app: x",
            zone: "-05:00",
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 12, 3, 14, 15)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 in Europe/Berlin, summer time",
            raw: b"<34>Oct 11 22:14:15 host app: x",
            zone: "Europe/Berlin",
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 20, 14, 15)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 in Europe/Berlin, winter time",
            raw: b"<34>Nov 11 22:14:15 host app: x",
            zone: "Europe/Berlin",
            now,
            want: Some((Rfc3164, Some(utc(2024, 11, 11, 21, 14, 15)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 December seen in January is last year",
            raw: b"<34>Dec 31 23:59:00 host app: x",
            zone: "UTC",
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2024, 12, 31, 23, 59, 0)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 less than a day ahead stays this year",
            raw: b"<34>Jan  2 00:00:00 host app: x",
            zone: "UTC",
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2025, 1, 2, 0, 0, 0)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 more than a day ahead is last year",
            raw: b"<34>Jan  3 00:00:00 host app: x",
            zone: "UTC",
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2024, 1, 3, 0, 0, 0)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 year decided in the source's zone",
            raw: b"<34>Jan  1 00:10:00 host app: x",
            zone: "+01:00",
            now: utc(2024, 12, 31, 23, 30, 0), // 00:30 on Jan 1 2025 at +01:00
            want: Some((Rfc3164, Some(utc(2024, 12, 31, 23, 10, 0)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 Feb 29 from a leap year",
            raw: b"<34>Feb 29 10:00:00 host app: x",
            zone: "UTC",
            now: utc(2025, 1, 10, 0, 0, 0),
            want: Some((Rfc3164, Some(utc(2024, 2, 29, 10, 0, 0)), Some("host"), Some("app"))),
        },
        HeaderCase {
            name: "3164 with a year (Cisco ASA)",
            raw: b"<166>Mar 04 2024 10:00:01: %ASA-6-302013: Built outbound TCP connection",
            zone: "UTC",
            now,
            want: Some((Rfc3164, Some(utc(2024, 3, 4, 10, 0, 1)), None, None)),
        },
        HeaderCase {
            name: "3164 text after the header is not UTF-8",
            raw: b"<13>Oct 11 22:14:15 host app: caf\xe9 \xff",
            zone: "UTC",
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 22, 14, 15)), Some("host"), Some("app"))),
        },
        HeaderCase { name: "plain text", raw: b"hello world", zone: "UTC", now, want: None },
        HeaderCase { name: "empty", raw: b"", zone: "UTC", now, want: None },
        HeaderCase { name: "binary", raw: b"\xff\xfe\x00\x01", zone: "UTC", now, want: None },
        HeaderCase { name: "PRI only", raw: b"<13>", zone: "UTC", now, want: None },
        HeaderCase { name: "PRI and text", raw: b"<13>just text", zone: "UTC", now, want: None },
    ];
    for c in cases {
        let mut d = Decoder::new(DecodeOptions {
            zone: Zone::parse(c.zone).unwrap(),
            ..DecodeOptions::default()
        });
        let ev = d.decode(c.raw, c.now);
        let syslog = matches!(ev.format, Format::Syslog3164 | Format::Syslog5424);
        assert_eq!(syslog, is_syslog(c.raw), "{}: is_syslog", c.name);
        let got = syslog.then(|| (ev.format, ev.time, ev.host.clone(), ev.app.clone()));
        let want = c
            .want
            .map(|(f, t, h, a)| (f, t, h.map(str::to_owned), a.map(str::to_owned)));
        assert_eq!(got, want, "{}", c.name);
    }
}

/// The source hands on raw bytes; the zone applies when its lines are decoded with
/// the source's options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_rfc3164_time_is_read_in_the_source_zone() {
    let mut src = start(config(SyslogMode::Udp)).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"<34>Jul 11 22:14:15 host app: x\n", src.addr)
        .await
        .unwrap();
    let lines = src.lines(1).await;
    assert_eq!(texts(&lines)[0], "<34>Jul 11 22:14:15 host app: x");
    let reference = utc(2024, 12, 1, 0, 0, 0);
    let mut d = Decoder::new(DecodeOptions {
        zone: Zone::parse("Europe/Berlin").unwrap(),
        ..DecodeOptions::default()
    });
    let ev = d.decode(&lines[0].bytes, reference);
    assert_eq!(ev.time, Some(utc(2024, 7, 11, 20, 14, 15)));
    assert_eq!(src.stats.snapshot().parse_failures, 0);
    src.stop().await;
}
