//! Syslog source: real clients (util-linux `logger`, rsyslog forwarding, `openssl
//! s_client`), framing and parsing tables, connection limits, timeouts and drops.
//!
//! Tests that need a tool skip with a message when it is not installed. Waits poll
//! with generous deadlines: the suite must pass on a busy 2-core machine.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tripline::source::framing::{Frame, FrameDecoder, FramingError};
use tripline::source::syslog::{
    bind, parse, SyslogConfig, SyslogError, SyslogMessage, SyslogMode, SyslogProtocol, SyslogStats,
};
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

fn parsed(line: &Line) -> SyslogMessage {
    parse(&line.bytes, 0, Utc::now())
        .unwrap_or_else(|| panic!("unparsable: {:?}", String::from_utf8_lossy(&line.bytes)))
}

fn text_of(line: &Line) -> String {
    let m = parsed(line);
    String::from_utf8_lossy(&line.bytes[m.msg_offset..]).into_owned()
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

fn assert_host(m: &SyslogMessage) {
    let host = hostname();
    let short = host.split('.').next().unwrap_or("").to_owned();
    let got = m.hostname.clone().unwrap_or_default();
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
    let cases: &[(SyslogMode, &[&str], SyslogProtocol)] = &[
        (
            SyslogMode::Udp,
            &["--udp", "--rfc3164"],
            SyslogProtocol::Rfc3164,
        ),
        (
            SyslogMode::Udp,
            &["--udp", "--rfc5424"],
            SyslogProtocol::Rfc5424,
        ),
        (
            SyslogMode::Tcp,
            &["--tcp", "--rfc3164"],
            SyslogProtocol::Rfc3164,
        ),
        (
            SyslogMode::Tcp,
            &["--tcp", "--rfc5424"],
            SyslogProtocol::Rfc5424,
        ),
        (
            SyslogMode::Tcp,
            &["--tcp", "--octet-count", "--rfc5424"],
            SyslogProtocol::Rfc5424,
        ),
        (
            SyslogMode::Tcp,
            &["--tcp", "--octet-count", "--rfc3164"],
            SyslogProtocol::Rfc3164,
        ),
        (
            SyslogMode::Udp,
            &["--udp", "--rfc5424=notime"],
            SyslogProtocol::Rfc5424,
        ),
    ];
    for (i, &(mode, flags, protocol)) in cases.iter().enumerate() {
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
        let m = parsed(&lines[0]);
        let what = format!("{flags:?}: {:?}", texts(&lines));
        assert_eq!(m.protocol, protocol, "{what}");
        assert_eq!(m.app_name.as_deref(), Some(tag.as_str()), "{what}");
        assert_host(&m);
        let notime = flags.iter().any(|f| f.contains("notime"));
        assert_eq!(m.timestamp.is_some(), !notime, "{what}");
        assert_eq!(text_of(&lines[0]), text, "{what}");
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
        let m = parsed(line);
        assert_eq!(
            m.app_name.as_deref(),
            Some("tripline-rs"),
            "{:?}",
            texts(&lines)
        );
        assert_host(&m);
        let Origin::Syslog { transport, .. } = line.origin else {
            panic!()
        };
        assert_eq!(transport, Transport::Tcp);
        by_protocol[(m.protocol == SyslogProtocol::Rfc5424) as usize].push(text_of(line));
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
    let m = parsed(&lines[0]);
    assert_eq!(m.hostname.as_deref(), Some("tlshost"));
    assert_eq!(m.app_name.as_deref(), Some("tlsapp"));
    assert_eq!(m.procid.as_deref(), Some("42"));
    assert_eq!(text_of(&lines[1]), "second");
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
    assert_eq!(text_of(&lines[0]), "from d");
    let s = src.stats.snapshot();
    assert_eq!((s.connections_accepted, s.connections_rejected), (3, 1));
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
    assert_eq!(text_of(&lines[0]), "then silence");
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
    assert_eq!(text_of(&lines[0]), "before");
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
        // All three fail to parse: no timestamp.
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
    let got: Vec<String> = lines.iter().map(text_of).collect();
    let want: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
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
            let _ = parse(&data, 3600, Utc::now());
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
// Parse table

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

struct ParseCase {
    name: &'static str,
    raw: &'static [u8],
    tz: i32,
    now: DateTime<Utc>,
    want: Option<Header>,
}

/// Protocol, timestamp, host, app, procid, msgid, and the text at `msg_offset`.
type Header = (
    SyslogProtocol,
    Option<DateTime<Utc>>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[test]
fn parse_table() {
    use SyslogProtocol::*;
    let now = utc(2024, 12, 1, 12, 0, 0);
    let ts_5424 = utc(2003, 10, 11, 22, 14, 15) + chrono::TimeDelta::milliseconds(3);
    let cases = [
        ParseCase {
            name: "5424 RFC example 1, no structured data",
            raw: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
            tz: 0,
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("su"), None, Some("ID47"), "'su root' failed for lonvick on /dev/pts/8")),
        },
        ParseCase {
            name: "5424 with a BOM and a zone",
            raw: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \u{FEFF}%% It's time to make the do-nuts.".as_bytes(),
            tz: 0,
            now,
            want: Some((Rfc5424, Some(utc(2003, 8, 24, 12, 14, 15) + chrono::TimeDelta::microseconds(3)), Some("192.0.2.1"), Some("myproc"), Some("8710"), None, "%% It's time to make the do-nuts.")),
        },
        ParseCase {
            name: "5424 with structured data",
            raw: b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry",
            tz: 0,
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("evntslog"), None, Some("ID47"), "An application event log entry")),
        },
        ParseCase {
            name: "5424 structured data and BOM",
            raw: "<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 x=\"y\"][b@2 z=\"]\"] \u{FEFF}text".as_bytes(),
            tz: 0,
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("h"), Some("app"), None, None, "text")),
        },
        ParseCase {
            name: "5424 structured data only",
            raw: b"<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 x=\"y\"]",
            tz: 0,
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("h"), Some("app"), None, None, "")),
        },
        ParseCase {
            name: "5424 ignores the 3164 zone option",
            raw: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - x",
            tz: 7200,
            now,
            want: Some((Rfc5424, Some(ts_5424), Some("mymachine.example.com"), Some("su"), None, Some("ID47"), "x")),
        },
        ParseCase {
            name: "3164 RFC example, this year",
            raw: b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            tz: 0,
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 22, 14, 15)), Some("mymachine"), Some("su"), None, None, "'su root' failed for lonvick on /dev/pts/8")),
        },
        ParseCase {
            name: "3164 with pid and padded day",
            raw: b"<38>Feb  5 17:32:18 10.0.0.99 sshd[1234]: Accepted publickey for root from 203.0.113.9",
            tz: 0,
            now,
            want: Some((Rfc3164, Some(utc(2024, 2, 5, 17, 32, 18)), Some("10.0.0.99"), Some("sshd"), Some("1234"), None, "Accepted publickey for root from 203.0.113.9")),
        },
        ParseCase {
            name: "3164 at +02:00",
            raw: b"<34>Oct 11 22:14:15 host app: x",
            tz: 7200,
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 20, 14, 15)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 at -05:00 crosses midnight",
            raw: b"<34>Oct 11 22:14:15 host app: x",
            tz: -5 * 3600,
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 12, 3, 14, 15)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 December seen in January is last year",
            raw: b"<34>Dec 31 23:59:00 host app: x",
            tz: 0,
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2024, 12, 31, 23, 59, 0)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 less than a day ahead stays this year",
            raw: b"<34>Jan  2 00:00:00 host app: x",
            tz: 0,
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2025, 1, 2, 0, 0, 0)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 more than a day ahead is last year",
            raw: b"<34>Jan  3 00:00:00 host app: x",
            tz: 0,
            now: utc(2025, 1, 1, 0, 30, 0),
            want: Some((Rfc3164, Some(utc(2024, 1, 3, 0, 0, 0)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 year decided in the configured zone",
            raw: b"<34>Jan  1 00:10:00 host app: x",
            tz: 3600,
            now: utc(2024, 12, 31, 23, 30, 0), // 00:30 on Jan 1 2025 at +01:00
            want: Some((Rfc3164, Some(utc(2024, 12, 31, 23, 10, 0)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 Feb 29 from a leap year",
            raw: b"<34>Feb 29 10:00:00 host app: x",
            tz: 0,
            now: utc(2025, 1, 10, 0, 0, 0),
            want: Some((Rfc3164, Some(utc(2024, 2, 29, 10, 0, 0)), Some("host"), Some("app"), None, None, "x")),
        },
        ParseCase {
            name: "3164 text after the header is not UTF-8",
            raw: b"<13>Oct 11 22:14:15 host app: caf\xe9 \xff",
            tz: 0,
            now,
            want: Some((Rfc3164, Some(utc(2024, 10, 11, 22, 14, 15)), Some("host"), Some("app"), None, None, "caf\u{FFFD} \u{FFFD}")),
        },
        ParseCase { name: "plain text", raw: b"hello world", tz: 0, now, want: None },
        ParseCase { name: "empty", raw: b"", tz: 0, now, want: None },
        ParseCase { name: "binary", raw: b"\xff\xfe\x00\x01", tz: 0, now, want: None },
        ParseCase { name: "PRI only", raw: b"<13>", tz: 0, now, want: None },
        ParseCase { name: "PRI and text", raw: b"<13>just text", tz: 0, now, want: None },
    ];
    for c in cases {
        let got = parse(c.raw, c.tz, c.now);
        let got = got.map(|m| {
            (
                m.protocol,
                m.timestamp,
                m.hostname.clone(),
                m.app_name.clone(),
                m.procid.clone(),
                m.msgid.clone(),
                String::from_utf8_lossy(&c.raw[m.msg_offset..]).into_owned(),
            )
        });
        let want = c.want.map(|(p, ts, h, a, pid, mid, text)| {
            (
                p,
                ts,
                h.map(str::to_owned),
                a.map(str::to_owned),
                pid.map(str::to_owned),
                mid.map(str::to_owned),
                text.to_owned(),
            )
        });
        assert_eq!(got, want, "{}", c.name);
    }
}

#[test]
fn parse_is_fine_with_a_bad_zone_offset() {
    let raw = b"<34>Oct 11 22:14:15 host app: x";
    let m = parse(raw, i32::MAX, utc(2024, 12, 1, 0, 0, 0)).expect("parsed at UTC");
    assert_eq!(m.timestamp, Some(utc(2024, 10, 11, 22, 14, 15)));
}
