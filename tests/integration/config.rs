//! The `tripline run` configuration: every number has a range and an error naming its
//! key, validation builds a plan (no silent fallbacks), and `tripline run --check`
//! looks at files, directories, rules and secrets and reports every problem in
//! sentences. Also the caps on rule files, refused before parsing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::root;
use tripline::config::{bounds, Config, SourcePlan};

/// Runs the binary in the repository root with `env` set (and nothing else of the
/// caller's secrets-looking variables inherited).
fn tripline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tripline"));
    cmd.args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .env_remove("TRIPLINE_TEST_KEY")
        .env_remove("TRIPLINE_TEST_MISSING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tripline")
}

fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A valid configuration whose state lives in `dir`, with `extra` appended.
fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        "[intel]\npaths = [\"fixtures/intel\"]\n[state]\ndir = \"{}\"\n[metrics]\naddress = \"127.0.0.1:0\"\n{extra}\n",
        dir.join("state").display()
    )
}

/// What `Debug` output and enum variant names look like; none may reach a user.
fn assert_no_debug(what: &str, out: &str) {
    for needle in [
        "{",
        "}",
        "Some(",
        "None",
        "Toml",
        "File(",
        "Syslog(",
        "Stdin(",
        "PathBuf",
        "NoDestination",
        "DeliveryReport",
        "usize",
        "u64",
    ] {
        assert!(!out.contains(needle), "{what} shows {needle:?}:\n{out}");
    }
}

// ---------------------------------------------------------------------------------
// Ranges.

/// A TOML text that sets `key` (as listed in `bounds::ALL`) to `value`, and the key
/// with its index as the error must name it.
fn toml_setting(key: &str, value: &str) -> (String, String) {
    let intel = "[intel]\npaths = [\"x\"]\n";
    if let Some(k) = key.strip_prefix("intel.sources[].") {
        let source = "name = \"s\"\nkind = \"freetext\"\nurl = \"https://feeds.example/x.txt\"\n";
        return (
            format!("{intel}[[intel.sources]]\n{source}[[intel.sources]]\nname = \"t\"\nkind = \"csv\"\nurl = \"https://feeds.example/x.csv\"\n{k} = {value}\n"),
            format!("intel.sources[1].{k}"),
        );
    }
    if let Some(k) = key.strip_prefix("intel.") {
        return (format!("{intel}{k} = {value}\n"), key.to_string());
    }
    if let Some(k) = key.strip_prefix("sources[].") {
        let syslog = [
            "max_message_bytes",
            "max_connections",
            "idle_timeout_secs",
            "busy_idle_timeout_secs",
            "tls_handshake_timeout_secs",
        ]
        .contains(&k);
        let source = if syslog {
            "type = \"syslog\"\n"
        } else {
            "type = \"file\"\ninclude = [\"/tmp/*.log\"]\n"
        };
        // Index 1: the key must carry the right index.
        return (
            format!("{intel}[[sources]]\ntype = \"stdin\"\n[[sources]]\n{source}{k} = {value}\n"),
            format!("sources[1].{k}"),
        );
    }
    if let Some(k) = key.strip_prefix("share.destinations[].") {
        return (
            format!(
                "{intel}[[share.destinations]]\nname = \"d\"\n{k} = {value}\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp/b\"\n"
            ),
            format!("share.destinations[0].{k}"),
        );
    }
    let (table, k) = key.split_once('.').expect("table.key");
    (
        format!("{intel}[{table}]\n{k} = {value}\n"),
        key.to_string(),
    )
}

#[test]
fn every_numeric_key_is_bounded_and_named() {
    let huge = i64::MAX.to_string();
    for b in bounds::ALL.iter() {
        let is_ratio = b.unit == "fraction";
        let mut bad: Vec<String> = vec![
            huge.clone(),
            "-1".into(),
            "nan".into(),
            "1e300".into(),
            "18446744073709551616".into(),
            "\"12\"".into(),
        ];
        if is_ratio {
            bad.extend(["inf".into(), "-0.5".into(), "1.5".into()]);
        } else {
            bad.push(format!("{}", b.max as u64 + 1));
            if b.min > 0.0 {
                bad.push(format!("{}", b.min as u64 - 1));
            }
        }
        for v in &bad {
            let (text, key) = toml_setting(b.key, v);
            let err = match Config::parse(&text, Path::new("t.toml")) {
                Ok(_) => panic!("{} = {v} was accepted:\n{text}", b.key),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(&key), "{} = {v}: {err}", b.key);
            assert!(err.starts_with("t.toml: "), "{err}");
            assert_no_debug(&format!("{} = {v}", b.key), &err);
        }
        // The bounds themselves are accepted (retry_max_secs must stay at least
        // retry_initial_secs).
        let edges = if is_ratio {
            vec!["0.0".to_string(), "1.0".to_string()]
        } else {
            vec![format!("{}", b.min as u64), format!("{}", b.max as u64)]
        };
        for v in edges {
            let (mut text, _) = toml_setting(b.key, &v);
            if b.key.ends_with("retry_initial_secs") {
                text = text.replace(
                    "retry_initial_secs",
                    "retry_max_secs = 604800\nretry_initial_secs",
                );
            }
            if b.key.ends_with("retry_max_secs") {
                text = text.replace("retry_max_secs", "retry_initial_secs = 1\nretry_max_secs");
            }
            if let Err(e) = Config::parse(&text, Path::new("t.toml")) {
                panic!("{} = {v} refused: {e}", b.key);
            }
        }
    }
}

#[test]
fn every_number_in_the_example_config_has_a_range() {
    let example = std::fs::read_to_string(root().join("contrib/tripline.example.toml")).unwrap();
    for line in example.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.split('#').next().unwrap_or("").trim();
        if v.parse::<f64>().is_ok() {
            let k = k.trim();
            assert!(
                bounds::ALL
                    .iter()
                    .any(|b| b.key.ends_with(&format!(".{k}"))),
                "{k} has no range in config::bounds::ALL"
            );
        }
    }
}

#[test]
fn shipped_configs_validate() {
    for name in [
        "contrib/tripline.default.toml",
        "contrib/tripline.example.toml",
    ] {
        let c = Config::load(&root().join(name)).unwrap_or_else(|e| panic!("{e}"));
        c.plan(Path::new(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let embedded = Config::embedded_default();
    let plan = embedded.plan(Path::new("embedded")).unwrap();
    assert_eq!(plan.sources.len(), 1);
    assert_eq!(plan.source_names(), vec!["fixtures".to_string()]);
    assert!(plan.metrics_addr.is_some());
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[intel]\npaths = []\n[pipeline]\nworkers = 5000\nqueue_batches = 0\n[alerts]\nkeep_files = 20000\n";
    let err = Config::parse(text, Path::new("t.toml")).unwrap_err();
    let keys: Vec<&str> = err.problems().iter().filter_map(|e| e.key()).collect();
    assert_eq!(
        keys,
        [
            "intel.paths",
            "alerts.keep_files",
            "pipeline.queue_batches",
            "pipeline.workers"
        ]
    );
    assert_eq!(err.to_string().lines().count(), 4, "{err}");
}

fn refused(text: &str, key: &str, got: &str) {
    let err = Config::parse(text, Path::new("t.toml"))
        .expect_err(text)
        .to_string();
    assert!(err.contains(key), "{err}");
    assert!(err.contains(got), "{err}");
}

#[test]
fn huge_keep_files_is_refused() {
    // 2^63 - 1: the first rotation used to rename that many files and ignore SIGTERM.
    let text = format!(
        "[intel]\npaths = [\"x\"]\n[alerts]\nkeep_files = {}\n",
        i64::MAX
    );
    refused(
        &text,
        "alerts.keep_files: must be between 0 and 10000",
        "got 9223372036854775807",
    );
    // And `tripline run` stops at once rather than starting.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.toml",
        &config_text(
            dir.path(),
            &format!(
                "[alerts]\npath = \"{}\"\nkeep_files = {}\nmax_file_bytes = 1024\n",
                dir.path().join("a.jsonl").display(),
                i64::MAX
            ),
        ),
    );
    let out = tripline(&["run", "--stdin", "--config", path.to_str().unwrap()], &[]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("alerts.keep_files"), "{err}");
}

#[test]
fn huge_queue_batches_is_refused() {
    let text = format!(
        "[intel]\npaths = [\"x\"]\n[pipeline]\nqueue_batches = {}\n",
        i64::MAX
    );
    refused(
        &text,
        "pipeline.queue_batches: must be between 1 and 65536",
        "got 9223372036854775807",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.toml",
        &config_text(
            dir.path(),
            &format!("[pipeline]\nqueue_batches = {}\n", i64::MAX),
        ),
    );
    let out = tripline(&["run", "--stdin", "--config", path.to_str().unwrap()], &[]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pipeline.queue_batches"), "{err}");
}

#[test]
fn huge_workers_is_refused() {
    let text = format!(
        "[intel]\npaths = [\"x\"]\n[pipeline]\nworkers = {}\n",
        i64::MAX
    );
    refused(
        &text,
        "pipeline.workers: must be between 0 and 1024",
        "got 9223372036854775807",
    );
    refused(
        "[intel]\npaths = [\"x\"]\n[pipeline]\nworkers = 1025\n",
        "pipeline.workers",
        "got 1025",
    );
}

#[test]
fn huge_max_connections_is_refused() {
    let text = format!(
        "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"file\"\ninclude = [\"/tmp/*\"]\n[[sources]]\ntype = \"syslog\"\nmode = \"tcp\"\nmax_connections = {}\n",
        i64::MAX
    );
    refused(
        &text,
        "sources[1].max_connections: must be between 1 and 65536",
        "got 9223372036854775807",
    );
    refused(
        "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\nmax_connections = 0\n",
        "sources[0].max_connections",
        "got 0",
    );
}

#[test]
fn timeout_overflow_is_refused() {
    let text = format!(
        "[intel]\npaths = [\"x\"]\n[[share.destinations]]\nname = \"circl\"\ntimeout_secs = {m}\nretry_initial_secs = {m}\nretry_max_secs = {m}\nwindow_secs = {m}\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp/b\"\n",
        m = i64::MAX
    );
    let err = Config::parse(&text, Path::new("t.toml")).unwrap_err();
    let keys: Vec<&str> = err.problems().iter().filter_map(|e| e.key()).collect();
    for k in [
        "share.destinations[0].timeout_secs",
        "share.destinations[0].retry_initial_secs",
        "share.destinations[0].retry_max_secs",
        "share.destinations[0].window_secs",
    ] {
        assert!(keys.contains(&k), "{k} not in {keys:?}");
    }
    assert!(
        err.to_string()
            .contains("must be between 1 and 3600, got 9223372036854775807"),
        "{err}"
    );
    // The sharing policy says the same on its own.
    let share: tripline::share::ShareConfig = toml::from_str(&format!(
        "[[destinations]]\nname = \"x\"\ntimeout_secs = {}\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp\"\n",
        u32::MAX
    ))
    .unwrap();
    assert!(share
        .validate()
        .unwrap_err()
        .to_string()
        .contains("timeout_secs"));
}

#[test]
fn bad_timezone_is_an_error_not_utc() {
    for zone in ["Mars/Olympus", "+25:00", "0200", "", "+02:0x"] {
        let text = format!(
            "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\ntimezone = \"{zone}\"\n"
        );
        refused(&text, "sources[0].timezone", &format!("got \"{zone}\""));
    }
    // The path `run` takes to start a source refuses it too, instead of using UTC.
    let config: Config = Config::from_toml(
        "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\ntimezone = \"Mars/Olympus\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let err = SourcePlan::build(0, &config.sources[0], Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("sources[0].timezone"), "{err}");
    // A valid offset is kept.
    let ok: Config = Config::parse(
        "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\ntimezone = \"-05:30\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let plan = ok.plan(Path::new("t.toml")).unwrap();
    assert_eq!(plan.sources[0].zone, "-05:30".parse().unwrap());
    // IANA names are zones too, for every kind of source.
    for kind in [
        "\"syslog\"",
        "\"stdin\"",
        "\"file\"\ninclude = [\"/var/log/x.log\"]",
    ] {
        let ok = Config::parse(
            &format!("[intel]\npaths = [\"x\"]\n[[sources]]\ntype = {kind}\ntimezone = \"Europe/Berlin\"\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        let plan = ok.plan(Path::new("t.toml")).unwrap();
        assert_eq!(
            plan.sources[0].zone,
            "Europe/Berlin".parse().unwrap(),
            "{kind}"
        );
    }
}

#[test]
fn duplicate_source_names_are_refused() {
    let text = "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"file\"\nname = \"app\"\ninclude = [\"/tmp/a\"]\n[[sources]]\ntype = \"syslog\"\nname = \"app\"\n";
    refused(
        text,
        "sources[1].name",
        "duplicate source name \"app\": sources[0] has it too",
    );
    // A name that another source gets by default (`<type>-<index>`) clashes too.
    let text = "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"stdin\"\nname = \"file-1\"\n[[sources]]\ntype = \"file\"\ninclude = [\"/tmp/a\"]\n";
    refused(text, "sources[1].name", "sources[0] has it too");
    // A name is a directory under the state directory: no way out of it.
    let text = "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"file\"\nname = \"../../etc\"\ninclude = [\"/tmp/a\"]\n";
    refused(text, "sources[0].name", "directory name");
}

#[test]
fn type_errors_name_the_key_in_words() {
    let err = Config::parse(
        "[intel]\npaths = [\"x\"]\n[pipeline]\nworkers = -1\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("t.toml: pipeline.workers: "), "{err}");
    assert!(err.contains("(line 4)"), "{err}");
    let err = Config::parse(
        "[intel]\npaths = [\"x\"]\n[[sources]]\ntype = \"syslog\"\nmax_connections = -1\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("t.toml: sources[0].max_connections: "),
        "{err}"
    );
    assert!(!err.contains("usize"), "{err}");
}

// ---------------------------------------------------------------------------------
// `tripline run --check`.

#[test]
fn check_refuses_missing_intel_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.toml",
        &format!(
            "[intel]\npaths = [\"fixtures/intel\", \"circl=/nonexistent/misp\", \"fixtures/no-such-feed.json\"]\nwarninglists = [\"/nonexistent/lists\"]\n[state]\ndir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    );
    let out = tripline(&["run", "--check", "--config", path.to_str().unwrap()], &[]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{err}");
    assert!(err.contains("3 problems"), "{err}");
    assert!(
        err.contains("intel.paths[1]: /nonexistent/misp does not exist"),
        "{err}"
    );
    assert!(
        err.contains("intel.paths[2]: fixtures/no-such-feed.json does not exist"),
        "{err}"
    );
    assert!(
        err.contains("intel.warninglists[0]: /nonexistent/lists does not exist"),
        "{err}"
    );
    assert!(!err.contains("intel.paths[0]"), "{err}");
    assert_no_debug("check", &err);
}

#[test]
fn check_refuses_missing_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "cert.pem", "-----BEGIN CERTIFICATE-----\n");
    let ca = dir.path().join("no-ca.pem");
    let path = write(
        dir.path(),
        "t.toml",
        &config_text(
            dir.path(),
            &format!(
                "[[sources]]\ntype = \"syslog\"\nname = \"tls\"\nmode = \"tls\"\naddress = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[[share.destinations]]\nname = \"circl\"\n[share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.example\"\napi_key_env = \"TRIPLINE_TEST_KEY\"\nca_file = \"{}\"\n",
                cert.display(),
                dir.path().join("missing-key.pem").display(),
                ca.display()
            ),
        ),
    );
    let out = tripline(
        &["run", "--check", "--config", path.to_str().unwrap()],
        &[("TRIPLINE_TEST_KEY", "k")],
    );
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sources[0].tls_key: "), "{err}");
    assert!(err.contains("missing-key.pem does not exist"), "{err}");
    assert!(!err.contains("sources[0].tls_cert"), "{err}");
    assert!(
        err.contains("share.destinations[0].transport.ca_file: ")
            && err.contains("no-ca.pem does not exist"),
        "{err}"
    );
    assert_no_debug("check", &err);
}

#[test]
fn check_reports_missing_api_key_without_printing_secrets() {
    let secret = "s3cr3t-key-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let key_file = write(dir.path(), "circl.key", &format!("{secret}\n"));
    let dests = format!(
        "[[share.destinations]]\nname = \"from-env\"\n[share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.example\"\napi_key_env = \"TRIPLINE_TEST_KEY\"\n\
         [[share.destinations]]\nname = \"from-file\"\n[share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.example\"\napi_key_file = \"{}\"\n",
        key_file.display()
    );
    let missing = format!(
        "{dests}[[share.destinations]]\nname = \"unset\"\n[share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.example\"\napi_key_env = \"TRIPLINE_TEST_MISSING\"\n\
         [[share.destinations]]\nname = \"no-file\"\n[share.destinations.transport]\ntype = \"taxii\"\napi_root = \"https://taxii.example/api/\"\ncollection_id = \"c\"\nusername = \"u\"\npassword_file = \"{}\"\n",
        dir.path().join("nope.pass").display()
    );
    let bad = write(dir.path(), "bad.toml", &config_text(dir.path(), &missing));
    let out = tripline(
        &["run", "--check", "--config", bad.to_str().unwrap()],
        &[("TRIPLINE_TEST_KEY", secret)],
    );
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("share.destinations[2].transport.api_key_env: ")
            && err.contains("environment variable TRIPLINE_TEST_MISSING is not set"),
        "{err}"
    );
    assert!(
        err.contains("share.destinations[3].transport.password_file: ")
            && err.contains("nope.pass"),
        "{err}"
    );
    for out in [&stdout, &err] {
        assert!(!out.contains(secret), "the secret leaked:\n{out}");
    }
    // With every secret there: OK, saying where each comes from, never what it is.
    let good = write(dir.path(), "good.toml", &config_text(dir.path(), &dests));
    let out = tripline(
        &["run", "--check", "--config", good.to_str().unwrap()],
        &[("TRIPLINE_TEST_KEY", secret)],
    );
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    assert!(
        stdout.contains("(key from env TRIPLINE_TEST_KEY: set)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("(key from file {}: set)", key_file.display())),
        "{stdout}"
    );
    assert!(
        !stdout.contains(secret) && !err.contains(secret),
        "{stdout}{err}"
    );
}

#[test]
fn check_prints_no_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.toml",
        &config_text(
            dir.path(),
            &format!(
                "[[sources]]\ntype = \"file\"\nname = \"app logs\"\ninclude = [\"fixtures/logs/*.log\"]\n\
                 [[sources]]\ntype = \"syslog\"\nname = \"syslog\"\naddress = \"127.0.0.1:5514\"\ntimezone = \"+02:00\"\n\
                 [[sources]]\ntype = \"stdin\"\n\
                 [alerts]\npath = [\"-\", \"{}\"]\nthrottle_secs = 60\n\
                 [[share.destinations]]\nname = \"bundles\"\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
                dir.path().join("alerts.jsonl").display(),
                dir.path().join("bundles").display()
            ),
        ),
    );
    let out = tripline(&["run", "--check", "--config", path.to_str().unwrap()], &[]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    assert!(
        stdout.starts_with(&format!("config: {} OK\n", path.display())),
        "{stdout}"
    );
    for want in [
        "intel: 1 path (fixtures/intel), warninglists: shipped",
        "\"app logs\" file fixtures/logs/*.log (start at end)",
        "\"syslog\" syslog udp 127.0.0.1:5514 (zone +02:00)",
        "\"stdin-2\" stdin",
        "alerts: stdout, ",
        "rules: 5 shipped rules",
        "sharing: 1 destination — \"bundles\" stix_dir ",
        "metrics: http://127.0.0.1:0/metrics",
    ] {
        assert!(stdout.contains(want), "{want:?} not in:\n{stdout}");
    }
    assert_no_debug("check", &stdout);
    // Nothing was created by the check.
    assert!(!dir.path().join("state").exists());
    assert!(!dir.path().join("bundles").exists());
    // A bad configuration: sentences too, one problem per line.
    let bad = write(
        dir.path(),
        "bad.toml",
        "[intel]\npaths = [\"/nonexistent\"]\n[[sources]]\ntype = \"syslog\"\naddress = \"localhost\"\ntimezone = \"Mars/Olympus\"\n[metrics]\naddress = \"nope\"\n[rules]\ndir = \"/nonexistent/rules\"\n",
    );
    let out = tripline(&["run", "--check", "--config", bad.to_str().unwrap()], &[]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{err}");
    assert!(stdout.is_empty(), "{stdout}");
    for key in [
        "sources[0].address",
        "sources[0].timezone",
        "metrics.address",
        "intel.paths[0]",
        "rules.dir",
    ] {
        assert!(
            err.contains(&format!("bad.toml: {key}: ")),
            "{key} not in:\n{err}"
        );
    }
    assert_no_debug("check", &err);
}

#[test]
fn check_compiles_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write(
        &rules,
        "bad.yml",
        "title: x\nid: 0b7c1e52-3c4d-4e5f-8a9b-0c1d2e3f4a5b\nlevel: high\ncorrelation:\n  type: event_count\n  timespan: 10x\n  condition: {gte: 2}\n",
    );
    let path = write(
        dir.path(),
        "t.toml",
        &config_text(
            dir.path(),
            &format!("[rules]\ndir = \"{}\"\n", rules.display()),
        ),
    );
    let out = tripline(&["run", "--check", "--config", path.to_str().unwrap()], &[]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rules.dir: ") && err.contains("bad.yml:6: correlation.timespan"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Rule files.

#[test]
fn nested_rule_file_is_refused_fast() {
    let dir = tempfile::tempdir().unwrap();
    // 100 KB of nested flow sequences, as a tester's file that took 29 s to parse.
    let depth = 50_000;
    let body = format!(
        "title: nested\nid: 0b7c1e52-3c4d-4e5f-8a9b-0c1d2e3f4a5b\nlevel: low\nmatch:\n  types: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(body.len() >= 100_000);
    write(dir.path(), "nested.yml", &body);
    let errors = tripline::correlate::load::load_rules(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = errors[0].to_string();
    assert!(
        e.contains("nested.yml:5: nested deeper than 64 levels"),
        "{e}"
    );
    // Nested block mappings too.
    let mut block = String::from(
        "title: nested\nid: 0b7c1e52-3c4d-4e5f-8a9b-0c1d2e3f4a5b\nlevel: low\nmatch:\n",
    );
    let mut d = 1;
    while block.len() < 100_000 {
        block.push_str(&format!("{}k{d}:\n", " ".repeat(d)));
        d += 1;
    }
    write(dir.path(), "nested.yml", &block);
    let e = tripline::correlate::load::load_rules(dir.path()).unwrap_err()[0].to_string();
    assert!(
        e.contains("nested.yml:") && e.contains("nested deeper than 64 levels"),
        "{e}"
    );
    // Through the CLI as well.
    let out = tripline(&["rules", "check", dir.path().to_str().unwrap()], &[]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nested deeper than 64 levels"), "{err}");
}

#[test]
fn large_rule_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut body =
        String::from("title: big\nid: 0b7c1e52-3c4d-4e5f-8a9b-0c1d2e3f4a5b\nlevel: low\n");
    while body.len() <= (1 << 20) {
        body.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    write(dir.path(), "big.yml", &body);
    let e = tripline::correlate::load::load_rules(dir.path()).unwrap_err()[0].to_string();
    assert!(
        e.contains("big.yml") && e.contains("larger than the 1048576 bytes"),
        "{e}"
    );
}

/// The configuration shown in the README runs from the repository root: `run --check`
/// passes on it (files exist, rules compile) and prints a summary without `Debug`.
#[test]
fn readme_config_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let begin = readme
        .find("<!-- readme-config:begin -->")
        .expect("begin marker");
    let end = readme
        .find("<!-- readme-config:end -->")
        .expect("end marker");
    let block = &readme[begin..end];
    let toml = block
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block between the markers");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readme.toml");
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--check", "--config", path.to_str().unwrap()])
        .current_dir(root)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("fixture-logs"), "{text}");
    assert!(!text.contains(" { ") && !text.contains("Some("), "{text}");
}
