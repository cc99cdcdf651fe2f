//! Saying why where operators look besides the log: the termination message Kubernetes
//! shows (`--termination-log`), and the `--report` file in JSON or JUnit XML.

use std::path::Path;

use serde_json::Value;

use crate::support::net::ClosedPort;
use crate::support::{Holdup, SOON, holdup, need};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn the_deadline_writes_each_target_not_ready_to_the_termination_log_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = (
        dir.path().join("termination-log"),
        dir.path().join("r.json"),
    );
    let listening = ClosedPort::new();
    let closed = ClosedPort::new();
    let (up, down) = (
        format!("tcp://{}", listening.address()),
        format!("tcp://{}", closed.address()),
    );
    let _listening = listening.open();
    holdup()
        .args(["-w", &up, "-w", &down, "-t", "1s"])
        .arg("--termination-log")
        .arg(&log)
        .env("HOLDUP_REPORT", &report)
        .run()
        .code(1);

    let message = read(&log);
    assert!(
        message.starts_with(&format!("{down} not ready after 1.00s: ")),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert!(!message.contains(&up), "a ready target is named: {message}");

    let report: Value = serde_json::from_str(&read(&report)).unwrap();
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["outcome"], "deadline_passed");
    assert!(report["elapsed_ms"].as_u64().unwrap() >= 1000, "{report}");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["target"], up);
    assert_eq!(targets[0]["kind"], "tcp");
    assert_eq!(targets[0]["ready"], true);
    assert_eq!(targets[0]["reason"], Value::Null);
    assert_eq!(targets[0]["ready_after_ms"], targets[0]["elapsed_ms"]);
    assert_eq!(targets[1]["target"], down);
    assert_eq!(targets[1]["ready"], false);
    assert_eq!(targets[1]["ready_after_ms"], Value::Null);
    assert!(targets[1]["attempts"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        targets[1]["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{report}"
    );
}

#[test]
fn success_leaves_the_termination_log_untouched_and_reports_junit_xml() {
    let Some(python) = need("the JUnit XML test", python()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = (
        dir.path().join("termination-log"),
        dir.path().join("junit.xml"),
    );
    std::fs::write(&log, "from before").unwrap();
    let listening = ClosedPort::new();
    let target = format!("tcp://{}", listening.address());
    let _listening = listening.open();
    holdup()
        .args(["-w", &target, "--report"])
        .arg(&report)
        .env("HOLDUP_TERMINATION_LOG", &log)
        .run()
        .code(0);
    assert_eq!(read(&log), "from before");

    // Read by a real XML parser, as a CI system reads it.
    let checked = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot()
assert suite.tag == 'testsuite', suite.tag
cases = suite.findall('testcase')
print(suite.get('tests'), suite.get('failures'), len(cases), cases[0].get('name'),
      cases[0].get('classname'), len(cases[0].findall('failure')))",
        )
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        format!("1 0 1 {target} holdup.tcp 0")
    );
}

#[test]
fn junit_xml_has_a_failure_with_the_reason_for_each_target_not_ready() {
    let Some(python) = need("the JUnit XML test", python()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    holdup()
        .args(["-w", &target, "-t", "500ms", "--report"])
        .arg(&report)
        .run()
        .code(1);
    let checked = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot()
failure = suite.find('testcase').find('failure')
print(suite.get('failures'), failure.get('type'), failure.get('message'))",
        )
        .arg(&report)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert!(
        printed.starts_with("1 not_ready ") && printed.contains("connection refused"),
        "{printed}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn a_usage_error_is_written_to_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    // Refused by clap (an unknown flag) and by holdup (an unknown scheme).
    for (args, expected) in [
        (
            &["--no-such-flag"][..],
            "usage: unexpected argument '--no-such-flag'",
        ),
        (&["-w", "htp://db"][..], "usage: invalid target 'htp://db'"),
    ] {
        std::fs::remove_file(&log).ok();
        holdup()
            .args(args)
            .arg(format!("--termination-log={}", log.display()))
            .run()
            .code(2);
        let message = read(&log);
        assert!(message.starts_with(expected), "{message}");
    }
    // From its variable, when the command line cannot be read at all.
    std::fs::remove_file(&log).ok();
    holdup()
        .arg("--no-such-flag")
        .env("HOLDUP_TERMINATION_LOG", &log)
        .run()
        .code(2);
    assert!(read(&log).starts_with("usage: "));
}

#[test]
fn a_command_that_cannot_run_is_written_to_the_termination_log_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = (
        dir.path().join("termination-log"),
        dir.path().join("r.json"),
    );
    let listening = ClosedPort::new();
    let target = format!("tcp://{}", listening.address());
    let _listening = listening.open();
    holdup()
        .args(["-w", &target])
        .arg("--termination-log")
        .arg(&log)
        .arg("--report")
        .arg(&report)
        .args(["--", "no-such-program-anywhere"])
        .run()
        .code(127);
    assert_eq!(
        read(&log),
        "cannot run no-such-program-anywhere: not found in PATH"
    );
    let report: Value = serde_json::from_str(&read(&report)).unwrap();
    assert_eq!(report["exit_code"], 127);
    assert_eq!(report["outcome"], "exec_failed");
    assert_eq!(report["targets"][0]["ready"], true);
}

#[test]
fn a_signal_is_written_to_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = holdup()
        .args(["-w", &target, "-t", "60s", "--termination-log"])
        .arg(&log)
        .spawn();
    running.wait_for_line("waiting for");
    running.signal(15);
    running.finish_within(SOON).code(143);
    let message = read(&log);
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].starts_with("stopped by SIGTERM after "),
        "{message}"
    );
    assert!(
        lines[1].starts_with(&format!("{target} not ready: ")),
        "{message}"
    );
}

#[test]
fn passwords_stay_out_of_the_termination_log_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = (
        dir.path().join("termination-log"),
        dir.path().join("r.json"),
    );
    let closed = ClosedPort::new();
    holdup()
        .args([
            "-w",
            &format!("redis://app:hunter2@{}/0", closed.address()),
            "-w",
            &format!("http://{}/health?token=hunter2", closed.address()),
            "-t",
            "500ms",
            "--termination-log",
        ])
        .arg(&log)
        .arg("--report")
        .arg(&report)
        .run()
        .code(1);
    for written in [read(&log), read(&report)] {
        assert!(written.contains("not ready") || written.contains("\"ready\": false"));
        assert!(!written.contains("hunter2"), "{written}");
    }
}

#[test]
fn a_long_termination_message_is_cut_to_4096_bytes_at_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let closed: Vec<ClosedPort> = (0..60).map(|_| ClosedPort::new()).collect();
    let mut holdup = holdup()
        .args(["-t", "500ms", "--termination-log"])
        .arg(&log);
    for port in &closed {
        // A long path makes every line long.
        holdup = holdup.args([
            "-w",
            &format!("http://{}/{}", port.address(), "health/".repeat(8)),
        ]);
    }
    holdup.run().code(1);
    let message = read(&log);
    assert!(message.len() <= 4096, "{} bytes", message.len());
    assert!(message.len() > 3000, "{} bytes", message.len());
    let (kept, marker) = message.rsplit_once('\n').unwrap();
    assert_eq!(marker, "… (cut to Kubernetes' 4096 bytes)");
    for line in kept.lines() {
        assert!(
            line.starts_with("http://127.0.0.1:") && line.ends_with(" attempts)")
                || line.ends_with(" attempt)"),
            "a line cut short: {line}"
        );
    }
}

fn python() -> Result<String, String> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    match std::process::Command::new(&python)
        .arg("--version")
        .output()
    {
        Ok(output) if output.status.success() => Ok(python),
        _ => Err(format!("{python} does not run")),
    }
}

#[test]
fn dry_run_says_where_the_run_will_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("namespace"), "shop").unwrap();
    let log = dir.path().join("termination-log");
    let finished = holdup()
        .args(["--dry-run", "--log-format", "json", "-w", "db:5432"])
        .args(["--report", "out/junit.xml", "--termination-log"])
        .arg(&log)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("HOLDUP_SERVICE_ACCOUNT_DIR", dir.path())
        .env("HOSTNAME", "web-7d9f4-x2x")
        .env("POD_NAME", "")
        .env("POD_NAMESPACE", "")
        .run();
    finished.code(0);
    let plan = finished
        .json_lines()
        .into_iter()
        .find(|line| line["part"] == "reporting")
        .expect("a reporting plan");
    assert_eq!(
        plan["settings"],
        serde_json::json!({
            "termination_log": format!("{} (on failure)", log.display()),
            "report": "out/junit.xml (JUnit XML)",
            "events": format!("on pod shop/web-7d9f4-x2x (from the hostname and {})", dir.path().join("namespace").display()),
        })
    );
    assert!(!log.exists(), "a dry run wrote the termination log");
}

/// Kubernetes' file exists in every container: holdup writes it without being told to,
/// and leaves it alone where it does not exist (every other test here).
#[test]
fn by_default_the_message_goes_to_dev_termination_log_when_it_is_there() {
    let Some(()) = need("the /dev/termination-log test", can_unshare_mounts()) else {
        return;
    };
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    // A /dev of its own (a tmpfs in a mount namespace), as a container has, with the
    // file the kubelet mounts.
    let script = format!(
        "mount -t tmpfs none /dev && touch /dev/termination-log && \
         '{}' -w {target} -t 300ms; echo \"exit $?\"; cat /dev/termination-log",
        env!("CARGO_BIN_EXE_holdup")
    );
    let finished = Holdup::command_line("unshare", &["--mount", "sh", "-c", &script]).run();
    finished.code(0);
    assert!(
        finished
            .stdout
            .starts_with(&format!("exit 1\n{target} not ready after 300ms: ")),
        "{}",
        finished.stdout
    );
}

fn can_unshare_mounts() -> Result<(), String> {
    match std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount -t tmpfs none /mnt"])
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err("cannot make a mount namespace (needs root)".into()),
    }
}
