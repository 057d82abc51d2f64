//! Helpers shared by the sharing tests (`tests/share*.rs`): confirmations full of
//! internal names, a fake MISP (`fake_misp.py`) and a real TAXII server (medallion)
//! run as child processes on loopback, and Python checks (PyMISP, stix2-validator).
//!
//! Python packages these tests need: `pip install medallion stix2-validator pymisp`.
#![allow(dead_code)]

pub mod sidecar;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tripline::correlate::{Confirmation, Observation, Provenance};
use tripline::intel::{Kind, Tlp};
use tripline::share::ShareConfig;

/// Strings from "log lines" that must never leave.
pub const SECRETS: &[&str] = &[
    "jdoe@corp.internal",
    "/home/jdoe/secret.txt",
    "hr-laptop-17.corp.internal",
    "10.20.30.40",
    "10.20.30.41",
    "corp.internal",
    "jdoe",
];

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .expect("valid test time")
}

/// 2024-05-01T00:00:00Z: windows around it closed long ago.
pub const T0: i64 = 1_714_521_600;

pub fn prov(source: &str, event: Option<&str>, attr: Option<&str>) -> Provenance {
    Provenance {
        source: source.to_string(),
        event_uuid: event.map(str::to_string),
        attribute_uuid: attr.map(str::to_string),
        source_type: "domain".to_string(),
        category: Some("Network activity".to_string()),
        tags: vec![],
        tlp: None,
        distribution: None,
    }
}

pub fn with_tlp(mut p: Provenance, tlp: Option<Tlp>) -> Provenance {
    p.tlp = tlp;
    p
}

pub fn with_distribution(mut p: Provenance, d: Option<u8>) -> Provenance {
    p.distribution = d;
    p
}

/// An observation whose log-side fields are full of internal names.
pub fn obs(time: i64, indicator: &str, kind: Kind, provenance: Vec<Provenance>) -> Observation {
    Observation {
        time: t(time),
        indicator: indicator.to_string(),
        kind,
        atomic: format!(
            "jdoe@corp.internal fetched {indicator} from hr-laptop-17.corp.internal:/home/jdoe/secret.txt"
        ),
        provenance,
        host: Some("hr-laptop-17.corp.internal".to_string()),
        source_ip: Some("10.20.30.40".parse::<IpAddr>().expect("ip")),
        destination_ip: Some("10.20.30.41".parse::<IpAddr>().expect("ip")),
        log_source: "/home/jdoe/secret.txt".to_string(),
        origin: None,
    }
}

pub fn confirmation(rule: &str, observations: Vec<Observation>) -> Confirmation {
    let first = observations.iter().map(|o| o.time).min().unwrap_or(t(T0));
    let last = observations.iter().map(|o| o.time).max().unwrap_or(t(T0));
    Confirmation {
        rule_id: rule.to_string(),
        rule_title: format!("{rule} on hr-laptop-17.corp.internal (jdoe@corp.internal)"),
        level: "high".to_string(),
        group: vec![
            ("host".to_string(), "hr-laptop-17.corp.internal".to_string()),
            ("user".to_string(), "jdoe@corp.internal".to_string()),
        ],
        first_seen: first,
        last_seen: last,
        observations,
    }
}

pub fn config(toml_text: &str) -> ShareConfig {
    let c: ShareConfig =
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("config: {e}\n{toml_text}"));
    c.validate().unwrap_or_else(|e| panic!("config: {e}"));
    c
}

/// The repository root (tests run the binary from there, with relative fixture paths).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real binary from the repository root and waits for it.
pub fn tripline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tripline")
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/util")
}

/// Fails with the install command when a Python module is missing.
pub fn require_python_module(module: &str, package: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 module {module} missing: run `pip install {package}` (see tests/integration/util/mod.rs)"
    );
}

/// Runs a Python script with `args`; panics with its output unless it exits 0.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

/// Validates a STIX 2.1 bundle file with stix2-validator: errors and warnings fail.
pub fn stix_validate(path: &Path) {
    require_python_module("stix2validator", "stix2-validator");
    let script = r#"
import sys
from stix2validator import validate_file, print_results, ValidationOptions
r = validate_file(sys.argv[1], ValidationOptions(version="2.1"))
print_results(r)
warnings = [w for o in (r.object_results or []) for w in (o.warnings or [])]
sys.exit(0 if r.is_valid and not warnings else 1)
"#;
    python(script, &[path.to_str().expect("utf-8 path")]);
}

/// The fake MISP, on a loopback port, killed on drop.
pub struct FakeMisp {
    child: Child,
    pub port: u16,
    pub key: String,
    pub dir: PathBuf,
}

/// MISP attributes the fake knows: `(attribute uuid, value, event uuid)`.
pub fn misp_attributes(attrs: &[(&str, &str, &str)]) -> Value {
    Value::Array(
        attrs
            .iter()
            .map(|(u, v, e)| json!({"uuid": u, "value": v, "event_uuid": e, "type": "domain"}))
            .collect(),
    )
}

impl FakeMisp {
    /// Starts on `port` (0: any), with state kept in `dir` (so a restart keeps it).
    pub fn start(dir: &Path, attributes: &Value, port: u16) -> FakeMisp {
        FakeMisp::start_with(dir, attributes, port, None)
    }

    /// Serves HTTPS with `(certificate chain, key)` PEM files. Read what arrived with
    /// [`FakeMisp::saved_sightings`] (the control endpoints speak HTTPS too).
    pub fn start_tls(dir: &Path, attributes: &Value, cert: &Path, key: &Path) -> FakeMisp {
        FakeMisp::start_with(dir, attributes, 0, Some((cert, key)))
    }

    /// The sightings it saved to its state file.
    pub fn saved_sightings(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.join("state.json")) {
            Ok(s) => serde_json::from_str(&s).expect("state json"),
            Err(_) => Vec::new(),
        }
    }

    fn start_with(
        dir: &Path,
        attributes: &Value,
        port: u16,
        tls: Option<(&Path, &Path)>,
    ) -> FakeMisp {
        std::fs::create_dir_all(dir).expect("fake misp dir");
        let attrs = dir.join("attributes.json");
        std::fs::write(&attrs, attributes.to_string()).expect("write attributes");
        let key = "fake-misp-api-key-0123456789abcdef".to_string();
        let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
        if let Some((cert, tls_key)) = tls {
            tls_args.extend([
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                tls_key.into(),
            ]);
        }
        let mut child = Command::new("python3")
            .arg(support_dir().join("fake_misp.py"))
            .args(["--key", &key, "--port", &port.to_string()])
            .arg("--attributes")
            .arg(&attrs)
            .arg("--state")
            .arg(dir.join("state.json"))
            .args(&tls_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fake_misp.py (python3)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("fake misp port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("fake misp said {line:?}"));
        FakeMisp {
            child,
            port,
            key,
            dir: dir.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Writes the API key to a file and returns its path.
    pub fn key_file(&self) -> PathBuf {
        let p = self.dir.join("api.key");
        let mut f = std::fs::File::create(&p).expect("key file");
        writeln!(f, "{}", self.key).expect("write key");
        p
    }

    pub fn control(&self, mode: &str, times: Option<u32>, hang_secs: f64) {
        let mut body = json!({"mode": mode, "hang_secs": hang_secs});
        if let Some(n) = times {
            body["times"] = json!(n);
        }
        ureq::post(&format!("{}/_control", self.url()))
            .send_string(&body.to_string())
            .expect("control fake misp");
    }

    /// Makes the fake an older MISP release (sightings searched by numeric id only).
    pub fn set_old_release(&self, old: bool) {
        ureq::post(&format!("{}/_control", self.url()))
            .send_string(&json!({"mode": "ok", "old_release": old}).to_string())
            .expect("control fake misp");
    }

    /// The requests it answered, in order (`path`, `status`, `body`, `at`).
    pub fn requests(&self) -> Vec<Value> {
        self.state()["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn state(&self) -> Value {
        let body = ureq::get(&format!("{}/_state", self.url()))
            .call()
            .expect("fake misp state")
            .into_string()
            .expect("state body");
        serde_json::from_str(&body).expect("state json")
    }

    pub fn sightings(&self) -> Vec<Value> {
        self.state()["sightings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `pred(state)` holds (10 s at most).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if pred(&self.state()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fake misp: timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FakeMisp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real TAXII 2.1 server (medallion, memory backend), killed on drop.
pub struct Medallion {
    child: Child,
    pub port: u16,
    pub api_root: String,
    pub collection: String,
}

pub const TAXII_USER: &str = "tripline";
pub const TAXII_PASSWORD: &str = "taxii-test-password";

impl Medallion {
    pub fn start(dir: &Path) -> Medallion {
        require_python_module("medallion", "medallion");
        std::fs::create_dir_all(dir).expect("medallion dir");
        let port = free_port();
        let collection = "365fed99-08fa-fdcd-a1b3-fb247eb41d01";
        let base = format!("http://127.0.0.1:{port}");
        let data = json!({
            "/discovery": {
                "title": "tripline test TAXII server",
                "default": format!("{base}/sharing/"),
                "api_roots": [format!("{base}/sharing/")]
            },
            "sharing": {
                "information": {
                    "title": "Sharing community",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": 10485760
                },
                "status": [],
                "collections": [{
                    "id": collection,
                    "title": "Sightings",
                    "can_read": true,
                    "can_write": true,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": []
                }]
            }
        });
        let data_file = dir.join("medallion-data.json");
        std::fs::write(&data_file, data.to_string()).expect("medallion data");
        let config = json!({
            "backend": {
                "module": "medallion.backends.memory_backend",
                "module_class": "MemoryBackend",
                "filename": data_file,
            },
            "users": { TAXII_USER: TAXII_PASSWORD },
            "taxii": { "max_page_size": 100 }
        });
        let config_file = dir.join("medallion.json");
        std::fs::write(&config_file, config.to_string()).expect("medallion config");
        let child = Command::new("python3")
            .args([
                "-c",
                "import sys; from medallion.scripts.run import main; sys.exit(main())",
            ])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start medallion");
        let m = Medallion {
            child,
            port,
            api_root: format!("{base}/sharing/"),
            collection: collection.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = ureq::get(&format!("{base}/taxii2/"))
                .set("Accept", "application/taxii+json;version=2.1")
                .set("Authorization", &m.basic_auth())
                .call()
                .is_ok();
            if ok {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "medallion did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn basic_auth(&self) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{TAXII_USER}:{TAXII_PASSWORD}"))
        )
    }

    /// Every object in the collection.
    pub fn objects(&self) -> Vec<Value> {
        let body = ureq::get(&format!(
            "{}collections/{}/objects/",
            self.api_root, self.collection
        ))
        .set("Accept", "application/taxii+json;version=2.1")
        .set("Authorization", &self.basic_auth())
        .call()
        .expect("read collection")
        .into_string()
        .expect("collection body");
        let v: Value = serde_json::from_str(&body).expect("envelope json");
        v["objects"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, made with the
/// openssl CLI: `(ca.pem, server chain, server key)`.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=tripline test CA",
        ][..],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec[..],
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ][..],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Every byte of the outbox database (main file and WAL), lossy as text.
pub fn outbox_bytes(state_dir: &Path) -> String {
    let mut all = String::new();
    for name in ["sightings.sqlite", "sightings.sqlite-wal"] {
        if let Ok(b) = std::fs::read(state_dir.join(name)) {
            all.push_str(&String::from_utf8_lossy(&b));
        }
    }
    all
}

/// Panics if any secret appears in `text` (`what` names where it was found).
pub fn assert_no_secrets(what: &str, text: &str) {
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "{what} leaks {s:?}:\n{}",
            &text[..text.len().min(4000)]
        );
    }
}
