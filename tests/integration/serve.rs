//! --serve: holdup keeps probing and answers /readyz, /livez and /metrics while a
//! dependency comes, goes and comes back; SIGTERM and SIGINT end it with 0; a command after
//! `--` and a port in use are usage errors.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Running, SOON, holdup, need};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// One GET on holdup's server: the status code and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(SOON)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

/// Starts holdup serving on a free loopback port; returns it with the address it serves on.
fn serve(args: &[&str]) -> (Running, String) {
    let running = holdup()
        .args(["--serve", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .spawn();
    let serving = running.wait_for_event("serving");
    let address = serving["address"].as_str().unwrap().to_string();
    (running, address)
}

/// The Python with `prometheus_client`, whose parser is the reference for the text format.
fn python() -> Result<String, String> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let found = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        Ok(python)
    } else {
        Err(format!(
            "{python} cannot import prometheus_client (run scripts/test, which installs it, \
             or set TEST_PYTHON to a python that has it)"
        ))
    }
}

/// Every sample of `text` as Prometheus' own client parses it: `[family, type, sample,
/// labels, value]`. The parser refuses what the format does not allow.
fn parse_metrics(python: &str, text: &str) -> Vec<Value> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for sample in family.samples:\n\
        \x20       print(json.dumps([family.name, family.type, sample.name, sample.labels, sample.value]))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The value of the sample named `name` whose labels include `labels`.
#[track_caller]
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|sample| {
            sample[2] == name
                && labels
                    .iter()
                    .all(|(label, value)| sample[3][label] == *value)
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {samples:?}"))[4]
        .as_f64()
        .unwrap()
}

/// Writes a file whole, as a tool that renders configuration does.
fn put(path: &Path) {
    let partial = path.with_extension("partial");
    fs::write(&partial, "ready").unwrap();
    fs::rename(&partial, path).unwrap();
}

#[test]
fn a_dependency_that_comes_goes_and_comes_back() {
    let python = need("the --serve metrics test", python());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");
    let target = format!("file://{}", path.display());
    let (mut running, address) = serve(&["-w", &target, "--recheck", "100ms"]);

    let waiting = running.wait_for_event("waiting");
    let reason = format!("{} does not exist", path.display());
    assert_eq!(waiting["error"], reason);
    assert_eq!(
        get(&address, "/readyz"),
        (503, format!("{target} not ready: {reason}\n"))
    );
    assert_eq!(get(&address, "/livez"), (200, "ok\n".to_string()));

    put(&path);
    running.wait_for_event("ready");
    assert_eq!(get(&address, "/readyz"), (200, "ok\n".to_string()));
    assert_eq!(
        get(&address, "/readyz?verbose"),
        (200, format!("[+]{target} ok\nreadyz check passed\n"))
    );

    fs::remove_file(&path).unwrap();
    let lost = running.wait_for_event("lost");
    assert_eq!(lost["error"], reason);
    assert_eq!(
        get(&address, "/readyz?verbose"),
        (
            503,
            format!("[-]{target} failed: {reason}\nreadyz check failed\n")
        )
    );

    put(&path);
    let back = running.wait_for_event("ready");
    assert!(
        back["message"]
            .as_str()
            .unwrap()
            .contains("ready again after"),
        "{back}"
    );
    assert_eq!(get(&address, "/readyz").0, 200);

    let (status, metrics) = get(&address, "/metrics");
    assert_eq!(status, 200);
    if let Some(python) = python {
        let samples = parse_metrics(&python, &metrics);
        let labels = [("target", target.as_str()), ("kind", "file")];
        assert_eq!(sample(&samples, "holdup_target_ready", &labels), 1.0);
        assert_eq!(sample(&samples, "holdup_ready", &[]), 1.0);
        let attempts = sample(&samples, "holdup_target_attempts_total", &labels);
        // At least: missing, ready, missing (lost), ready.
        assert!(attempts >= 4.0, "{attempts} attempts");
        let failures = sample(
            &samples,
            "holdup_target_failures_total",
            &[("target", target.as_str()), ("reason_class", "not_ready")],
        );
        assert!(failures >= 2.0, "{failures} failures");
        let histogram_count = sample(
            &samples,
            "holdup_target_attempt_duration_seconds_count",
            &labels,
        );
        assert_eq!(histogram_count, attempts);
        assert!(
            sample(
                &samples,
                "holdup_target_last_change_timestamp_seconds",
                &labels
            ) > 1.7e9
        );
    }

    running.assert_still_running();
    running.signal(SIGTERM);
    running
        .finish_within(SOON)
        .code(0)
        .stderr_has("stopped by SIGTERM after running for");
}

#[test]
fn sigint_ends_serving_with_0_and_secrets_stay_out_of_the_answers() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let target = format!("redis://:hunter2@127.0.0.1:{port}");
    let (running, address) = serve(&["-w", &target]);
    running.wait_for_event("waiting");
    let (status, body) = get(&address, "/readyz?verbose");
    assert_eq!(status, 503);
    assert!(
        body.starts_with(&format!("[-]redis://127.0.0.1:{port} failed: ")),
        "{body}"
    );
    let (_, metrics) = get(&address, "/metrics");
    assert!(metrics.contains("kind=\"redis\""), "{metrics}");
    for answer in [&body, &metrics] {
        assert!(!answer.contains("hunter2"), "{answer}");
    }
    assert_eq!(get(&address, "/nothing").0, 404);
    running.signal(SIGINT);
    running
        .finish_within(SOON)
        .code(0)
        .stderr_has("stopped by SIGINT")
        .stderr_lacks("hunter2");
}

#[test]
fn sighup_ends_serving_as_it_ends_a_wait() {
    // A closed terminal is no orderly shutdown by the pod: 129, as when waiting, and so
    // said in the termination message.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let log_arg = log.to_str().unwrap();
    let (running, address) = serve(&["-w", "127.0.0.1:1", "--termination-log", log_arg]);
    assert_eq!(get(&address, "/livez").0, 200);
    running.signal(SIGHUP);
    running
        .finish_within(SOON)
        .code(129)
        .stderr_has("stopped by SIGHUP");
    let message = fs::read_to_string(&log).unwrap();
    assert!(message.starts_with("stopped by SIGHUP after "), "{message}");
}

#[test]
fn serving_reports_the_targets_when_stopped_and_leaves_the_termination_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report, ready) = (
        dir.path().join("termination-log"),
        dir.path().join("r.json"),
        dir.path().join("ready"),
    );
    put(&ready);
    let file = format!("file://{}", ready.display());
    let (running, address) = serve(&[
        "-w",
        &file,
        "-w",
        "127.0.0.1:1",
        "--termination-log",
        log.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    running.wait_for_event("ready");
    assert_eq!(get(&address, "/readyz").0, 503);
    assert!(!report.exists(), "the report is written at the end only");
    running.signal(SIGTERM);
    running.finish_within(SOON).code(0);
    // A sidecar stopped with its pod has not failed: no termination message.
    assert!(!log.exists(), "{}", fs::read_to_string(&log).unwrap());
    let report: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["outcome"], "signal");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets[0]["target"], file);
    assert_eq!(targets[0]["ready"], true);
    assert!(targets[0]["ready_after_ms"].is_u64(), "{report}");
    assert_eq!(targets[1]["ready"], false);
    assert!(targets[1]["reason"].is_string(), "{report}");
}

#[test]
fn serving_with_a_command_is_a_usage_error() {
    holdup()
        .args(["--serve", ":0", "-w", "127.0.0.1:1", "--", "true"])
        .run()
        .code(2)
        .stderr_has("--serve keeps holdup running, so there is no command to run after `--`");
    holdup()
        .env("HOLDUP_SERVE", ":0")
        .args(["-w", "127.0.0.1:1", "--", "true"])
        .run()
        .code(2)
        .stderr_has("HOLDUP_SERVE keeps holdup running");
    holdup()
        .args(["--serve", "8080", "-w", "127.0.0.1:1"])
        .run()
        .code(2)
        .stderr_has("expected :PORT for every address, or IP:PORT");
}

#[test]
fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    holdup()
        .args(["--serve", &address, "-w", "127.0.0.1:1"])
        .run()
        .code(2)
        .stderr_has(&format!(
            "cannot serve on {address}: address already in use"
        ));
}

#[test]
fn a_dry_run_says_where_it_would_serve_and_which_condition_it_would_keep() {
    holdup()
        .args(["--dry-run", "--serve", ":8080", "--recheck", "10s"])
        .args(["--pod-condition", "holdup.dev/dependencies", "-w", "db:5432"])
        .run()
        .code(0)
        .stderr_has("then keep probing (ready targets every 10s) and serve /readyz, /livez and /metrics on :8080")
        .stderr_has("then keep condition holdup.dev/dependencies of this pod")
        // Serving, the run still reports: the plan says where, as for a wait.
        .stderr_has("reporting: termination log=");
}

#[test]
fn serving_with_min_ready_is_ready_when_enough_targets_are() {
    holdup()
        .args([
            "--dry-run",
            "--serve",
            ":8080",
            "--any",
            "-w",
            "db:5432",
            "-w",
            "api:80",
        ])
        .run()
        .code(0)
        .stderr_has("/readyz answers 200 while 1 of 2 targets are ready")
        .stderr_has("attempts=for as long as holdup runs")
        .stderr_has("timeout=none (--serve and --pod-condition keep probing)");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    put(&ready);
    let file = format!("file://{}", ready.display());
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let tcp = format!("tcp://127.0.0.1:{port}");
    let (running, address) = serve(&["-w", &file, "-w", &tcp, "--min-ready", "1"]);
    running.wait_for_event("ready");
    let (status, body) = get(&address, "/readyz?verbose");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(&format!("[+]{file} ok\n[-]{tcp} failed: ")),
        "{body}"
    );
    assert!(
        body.ends_with("1 of 2 targets ready, 1 needed\nreadyz check passed\n"),
        "{body}"
    );
    let (status, body) = get(&address, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("ok\n"), "{body}");
    let (_, metrics) = get(&address, "/metrics");
    assert!(metrics.contains("\nholdup_ready 1\n"), "{metrics}");

    // Below the count, not ready: the whole follows the targets.
    fs::remove_file(&ready).unwrap();
    running.wait_for_event("lost");
    let (status, body) = get(&address, "/readyz?verbose");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.ends_with("0 of 2 targets ready, 1 needed\nreadyz check failed\n"),
        "{body}"
    );
    running.signal(SIGTERM);
    running.finish_within(SOON).code(0);
}

#[test]
fn serving_with_any_and_down_follows_a_server_that_goes_and_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let (running, address) = serve(&["-w", &format!("{tcp}#down"), "--any", "--recheck", "100ms"]);
    // Something answers: a #down target is not ready.
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"].as_str().unwrap().starts_with("still "),
        "{waiting}"
    );
    let (status, body) = get(&address, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(&format!("{tcp} not ready: still ")),
        "{body}"
    );

    drop(listener);
    let gone = running.wait_for_event("ready");
    assert_eq!(gone["down"], true, "{gone}");
    assert_eq!(get(&address, "/readyz"), (200, "ok\n".to_string()));

    // It answers again: no longer "ready".
    let _back = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let lost = running.wait_for_event("lost");
    assert!(
        lost["error"].as_str().unwrap().starts_with("still "),
        "{lost}"
    );
    assert_eq!(get(&address, "/readyz").0, 503);
    running.signal(SIGTERM);
    running.finish_within(SOON).code(0);
}

#[test]
fn serving_with_stable_needs_that_many_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    put(&ready);
    let file = format!("file://{}", ready.display());
    let (running, address) = serve(&["-w", &format!("{file}#stable=3")]);
    let became = running.wait_for_event("ready");
    assert_eq!(became["attempts"], 3, "{became}");
    assert!(
        became["message"].as_str().unwrap().contains("(3 in a row)"),
        "{became}"
    );
    assert_eq!(get(&address, "/readyz").0, 200);
    running.signal(SIGTERM);
    running.finish_within(SOON).code(0);
}

#[test]
fn serving_once_is_a_usage_error() {
    holdup()
        .args(["--serve", ":0", "--once", "-w", "127.0.0.1:1"])
        .run()
        .code(2)
        .stderr_has("--once cannot be used with --serve");
    holdup()
        .env("HOLDUP_ONCE", "1")
        .args([
            "--pod-condition",
            "holdup.dev/dependencies",
            "-w",
            "127.0.0.1:1",
        ])
        .run()
        .code(2)
        .stderr_has("HOLDUP_ONCE cannot be used with --pod-condition");
}
