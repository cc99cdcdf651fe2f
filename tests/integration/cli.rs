//! The command line: usage errors (exit 2, before anything is probed), environment
//! variables, --dry-run, log formats, and passwords kept out of every line.

use std::time::Duration;

use crate::support::net::{ClosedPort, HttpServer};
use crate::support::{SOON, holdup};

#[test]
fn usage_errors_exit_2_before_anything_is_probed() {
    let good = "tcp://127.0.0.1:1";
    let cases: &[(&[&str], &str)] = &[
        (&[], "nothing to wait for"),
        (&["-w", "htp://db:80"], "unknown scheme 'htp'"),
        (&["-w", "db"], "invalid target 'db'"),
        (&["-w", "tcp://db"], "missing port"),
        (&["-w", "http://db/#status=999"], "not an HTTP status"),
        (&["-w", "http://db/#bogus=1"], "unknown option 'bogus'"),
        (
            &["-w", "https://db/#ca=/nonexistent/ca.pem"],
            "cannot read CA file /nonexistent/ca.pem",
        ),
        (&["-w", good, "--timeout", "soon"], "invalid value 'soon'"),
        (&["-w", good, "--interval", "0"], "must be longer than zero"),
        (
            &["-w", good, "--max-interval", "10ms"],
            "shorter than --interval",
        ),
        (&["-w", good, "--log-format", "xml"], "invalid value 'xml'"),
        (&["-w", good, "--no-such-flag"], "unexpected argument"),
        (
            &["-w", "mysql://app:pw@db:99999/shop"],
            "invalid port number",
        ),
        (
            &["-w", "mysql://app:pw@db/shop?ssl-mode=ALWAYS"],
            "invalid ssl-mode 'ALWAYS' (expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)",
        ),
        (
            &["-w", "mariadb://app:pw@db/shop#retry"],
            "unknown option 'retry' for mariadb targets",
        ),
        (
            &["-w", "redis://cache#role=primary"],
            "expected role=master or role=replica",
        ),
        (
            &["-w", "amqp://app:pw@rabbit/sh%zzop"],
            "invalid percent-encoding in the vhost",
        ),
    ];
    for (args, expected) in cases {
        let finished = holdup().args(*args).run();
        finished.code(2).stderr_has(expected);
    }
}

#[test]
fn a_bad_target_stops_the_good_ones_from_being_probed() {
    let listening = ClosedPort::new();
    let address = listening.address();
    let listening = listening.open();
    holdup()
        .args(["-w", &format!("tcp://{address}"), "-w", "htp://x"])
        .run()
        .code(2);
    assert_eq!(
        listening.accepted(),
        0,
        "a target was probed despite a usage error"
    );
}

#[test]
fn help_and_version_exit_0() {
    holdup().arg("--help").run().code(0);
    let version = holdup().arg("--version").run();
    version.code(0);
    assert!(version.stdout.starts_with("holdup "), "{}", version.stdout);
}

#[test]
fn targets_and_settings_from_the_environment() {
    let server = HttpServer::start(200, "ok");
    let listening = ClosedPort::new();
    let address = listening.address();
    let _listening = listening.open();
    let list = format!("tcp://{address},{}\n{}", server.url("/a?x=1,2"), address);
    holdup()
        .env("HOLDUP_WAIT_FOR", &list)
        .env("HOLDUP_TIMEOUT", "5s")
        .run()
        .code(0);
    assert_eq!(server.requests(), ["GET /a?x=1,2"]);

    // A flag wins over its variable: the closed port below is waited on for 300 ms, not
    // for 60 s.
    let closed = ClosedPort::new();
    holdup()
        .env("HOLDUP_WAIT_FOR", format!("tcp://{}", closed.address()))
        .env("HOLDUP_TIMEOUT", "60s")
        .args(["--timeout", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "tcp://{} not ready after 300ms: ",
            closed.address()
        ))
        .took_between(Duration::from_millis(300), SOON);
    // And --wait-for wins over HOLDUP_WAIT_FOR.
    holdup()
        .env("HOLDUP_WAIT_FOR", format!("tcp://{}", closed.address()))
        .args(["-w", &server.url("/")])
        .run()
        .code(0);
    // A bad variable is a usage error like a bad flag.
    holdup()
        .env("HOLDUP_TIMEOUT", "forever")
        .args(["-w", &server.url("/")])
        .run()
        .code(2)
        .stderr_has("forever");
}

#[test]
fn dry_run_checks_everything_and_probes_nothing() {
    let listening = ClosedPort::new();
    let address = listening.address();
    let listening = listening.open();
    let finished = holdup()
        .args([
            "--dry-run",
            "-w",
            &format!("tcp://{address}"),
            "--",
            "app",
            "--serve",
        ])
        .run();
    finished
        .code(0)
        .stderr_has(&format!("would wait for tcp://{address}"))
        .stderr_has("then run app --serve");
    assert_eq!(listening.accepted(), 0);
    holdup().args(["--dry-run", "-w", "htp://x"]).run().code(2);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let closed = ClosedPort::new();
    let finished = holdup()
        .args([
            "-w",
            &format!("tcp://{}", closed.address()),
            "-t",
            "300ms",
            "--log-format",
            "json",
        ])
        .run();
    finished.code(1);
    let lines = finished.json_lines();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "not_ready");
    assert_eq!(last["level"], "error");
    assert_eq!(last["target"], format!("tcp://{}", closed.address()));
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{last}"
    );
    assert!(last["attempts"].as_u64().unwrap() >= 2, "{last}");
    assert!(last["elapsed_ms"].as_u64().unwrap() >= 300, "{last}");
    assert!(last["time"].as_str().unwrap().ends_with('Z'), "{last}");
}

#[test]
fn quiet_prints_only_errors_and_verbose_every_attempt() {
    let server = HttpServer::start(200, "ok");
    let quiet = holdup().args(["-q", "-w", &server.url("/")]).run();
    quiet.code(0);
    assert_eq!(quiet.stderr, "");
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let quiet = holdup().args(["-q", "-t", "200ms", "-w", &target]).run();
    quiet.code(1);
    assert_eq!(quiet.stderr.lines().count(), 1, "{}", quiet.stderr);
    let quiet = holdup()
        .env("HOLDUP_QUIET", "1")
        .args(["-t", "200ms", "-w", &target])
        .run();
    quiet.code(1);
    assert_eq!(quiet.stderr.lines().count(), 1, "{}", quiet.stderr);
    let verbose = holdup().args(["-v", "-t", "300ms", "-w", &target]).run();
    verbose
        .code(1)
        .stderr_has("attempt 2 failed")
        .stderr_has("next in");
}

#[test]
fn passwords_never_appear() {
    let closed = ClosedPort::new();
    let secret_targets = [
        format!(
            "http://admin:hunter2@127.0.0.1:{}/health?token=tok3n",
            closed.port()
        ),
        format!(
            "https://admin:hunter2@127.0.0.1:{}/#header=Authorization:%20Bearer%20tok3n",
            closed.port()
        ),
        format!("mysql://admin:hunter2@127.0.0.1:{}/app", closed.port()),
        format!("redis://admin:hunter2@127.0.0.1:{}/0", closed.port()),
        format!("amqps://admin:hunter2@127.0.0.1:{}/%2f", closed.port()),
    ];
    for format in ["text", "json"] {
        let mut args = vec![
            "-vv".to_string(),
            "-t".into(),
            "500ms".into(),
            "--log-format".into(),
            format.into(),
        ];
        for target in &secret_targets {
            args.extend(["-w".to_string(), target.clone()]);
        }
        let finished = holdup().args(&args).run();
        finished
            .code(1)
            .stderr_has("admin@127.0.0.1")
            .stderr_lacks("hunter2")
            .stderr_lacks("tok3n");
        let dry = holdup().arg("--dry-run").args(&args).run();
        dry.code(0).stderr_lacks("hunter2").stderr_lacks("tok3n");
    }
    // Also when the target is rejected.
    for bad in [
        "http://admin:hunter2@[::1/",
        "postgres://admin:hunter2@db:notaport/app",
        "http://admin:hunter2@db/#bogus",
        "mysql://admin:hunter2@db:notaport/app",
        "redis://admin:hunter2@db/notadb",
        "amqp://admin:hunter2@db/a/b",
    ] {
        holdup()
            .args(["-w", bad])
            .run()
            .code(2)
            .stderr_has("admin")
            .stderr_lacks("hunter2");
    }
}
