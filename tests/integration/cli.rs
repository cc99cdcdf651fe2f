//! The command line: usage errors (exit 2, before anything is probed), environment
//! variables, --dry-run, log formats, and passwords kept out of every line.

use std::time::Duration;

use crate::support::net::{ClosedPort, HttpServer};
use crate::support::tls::TestCa;
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

/// Targets may be given as arguments, as other wait tools take them, beside --wait-for;
/// the command follows `--`.
#[test]
fn targets_as_arguments_then_the_command_after_the_separator() {
    let server = HttpServer::start(200, "ok");
    let listening = ClosedPort::new();
    let address = listening.address();
    let listening = listening.open();
    let finished = holdup()
        .args([
            &address.to_string(),
            &server.url("/health"),
            "-w",
            &server.url("/flag"),
            "--",
            "sh",
            "-c",
            "echo started",
        ])
        .run();
    finished.code(0);
    assert_eq!(finished.stdout, "started\n");
    assert!(listening.accepted() >= 1);
    let mut requests = server.requests();
    requests.sort();
    assert_eq!(requests, ["GET /flag", "GET /health"]);
}

/// A word that is no target, with no `--` on the command line, is most likely the
/// command: holdup says so, and probes nothing.
#[test]
fn a_command_without_the_separator_gets_a_hint() {
    let listening = ClosedPort::new();
    let address = listening.address().to_string();
    let listening = listening.open();
    let hint = "did you forget `--` before the command? (holdup TARGET... -- CMD ARGS...)";
    let cases: &[&[&str]] = &[
        &[&address, "./server"],
        &[&address, "./server", "--port", "8080"],
        &["-w", &address, "server"],
    ];
    for args in cases {
        holdup().args(*args).run().code(2).stderr_has(hint);
    }
    // With `--`, the same word is the command and no hint is given for a bad target.
    holdup()
        .args(["bad", "--", "./server"])
        .run()
        .code(2)
        .stderr_has("invalid target 'bad'")
        .stderr_lacks("did you forget");
    // A URL of a scheme holdup does not know is a mistyped target, not a command.
    holdup()
        .args(["bogus://x"])
        .run()
        .code(2)
        .stderr_has("unknown scheme 'bogus'")
        .stderr_lacks("did you forget");
    assert_eq!(listening.accepted(), 0);
}

/// With --log-format json or HOLDUP_LOG_FORMAT=json, a usage error is one JSON `usage`
/// event, whatever is wrong (a flag clap refuses, a bad value, a bad target); a bad value
/// from a variable names the variable.
#[test]
fn usage_errors_follow_the_log_format_and_name_their_variable() {
    let good = "tcp://127.0.0.1:1";
    // The arguments, the variables set, and how the one line must start.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["-w", good, "-t", "soon"],
            &[],
            "invalid value 'soon' for --timeout: 'soon' is not a duration (expected e.g. 500ms, 30s, 2m, or a number of seconds)",
        ),
        (
            &["-w", good, "-t", "-1"],
            &[],
            "invalid value '-1' for --timeout: durations cannot be negative",
        ),
        (
            &["-w", good, "--bogus"],
            &[],
            "unexpected argument '--bogus' (see holdup --help)",
        ),
        (
            &["-w", good],
            &[("HOLDUP_QUIET", "maybe")],
            "HOLDUP_QUIET=maybe: expected true or false (also 1 or 0, yes or no, on or off)",
        ),
        (
            &["-w", good],
            &[("HOLDUP_NO_EVENTS", "maybe")],
            "HOLDUP_NO_EVENTS=maybe: expected true or false (also 1 or 0, yes or no, on or off)",
        ),
        (
            &["-w", good],
            &[("HOLDUP_TIMEOUT", "-5s")],
            "HOLDUP_TIMEOUT=-5s: durations cannot be negative",
        ),
        (
            &["-w", good],
            &[("HOLDUP_VERBOSE", "lots")],
            "HOLDUP_VERBOSE=lots: expected a number",
        ),
        (
            &["-w", good, "-v"],
            &[("HOLDUP_QUIET", "1")],
            "--verbose and HOLDUP_QUIET exclude each other",
        ),
        (
            &["-w", good],
            &[("HOLDUP_MAX_INTERVAL", "10ms")],
            "HOLDUP_MAX_INTERVAL (10ms) is shorter than --interval (100ms)",
        ),
        (
            &[],
            &[("HOLDUP_WAIT_FOR", "db")],
            "HOLDUP_WAIT_FOR: invalid target 'db'",
        ),
        (
            &["-w", good],
            &[("HOLDUP_MAX_RATE", "-5")],
            "HOLDUP_MAX_RATE=-5: '-5' is not a number of retries a second (expected e.g. 1000",
        ),
        (
            &["-w", good, "--max-rate", "lots"],
            &[],
            "invalid value 'lots' for --max-rate: 'lots' is not a number of retries a second",
        ),
        (
            &["-w", "htp://x"],
            &[],
            "invalid target 'htp://x': unknown scheme 'htp'",
        ),
    ];
    for (args, env, expected) in cases {
        for json in [&["--log-format", "json"][..], &[]] {
            let mut command = holdup().args(*args).args(json);
            for (name, value) in *env {
                command = command.env(name, value);
            }
            if json.is_empty() {
                command = command.env("HOLDUP_LOG_FORMAT", "json");
            }
            let finished = command.run();
            finished.code(2);
            let lines = finished.json_lines();
            assert_eq!(lines.len(), 1, "{args:?} {env:?}: {}", finished.stderr);
            assert_eq!(lines[0]["event"], "usage", "{}", finished.stderr);
            assert_eq!(lines[0]["level"], "error", "{}", finished.stderr);
            let error = lines[0]["error"].as_str().unwrap();
            assert!(error.starts_with(expected), "{args:?} {env:?}: {error}");
            assert_eq!(lines[0]["message"], error);
        }
    }
    // In text, the same words on one line; the flag's own name only when it was typed.
    let finished = holdup()
        .env("HOLDUP_QUIET", "maybe")
        .args(["-w", good])
        .run();
    finished
        .code(2)
        .stderr_has("holdup: HOLDUP_QUIET=maybe: expected true or false")
        .stderr_lacks("--quiet");
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    // A bad log format cannot be followed: the error about it is text.
    holdup()
        .env("HOLDUP_LOG_FORMAT", "xml")
        .args(["-w", good])
        .run()
        .code(2)
        .stderr_has("holdup: HOLDUP_LOG_FORMAT=xml: expected text or json");
    // Help and version are no errors, whatever the log format.
    for flag in ["--help", "--version"] {
        let shown = holdup().args(["--log-format", "json", flag]).run();
        shown.code(0);
        assert!(shown.stdout.contains("holdup"), "{}", shown.stdout);
        assert_eq!(shown.stderr, "");
    }
}

/// HOLDUP_WAIT_FOR: a comma starts a new target only before scheme:// or a whole
/// HOST:PORT; every other comma stays in its target.
#[test]
fn holdup_wait_for_splits_only_where_a_target_starts() {
    let cases: &[(&str, &[&str])] = &[
        ("http://x/?t=10:30,11:45", &["http://x/?t=10:30,11:45"]),
        ("http://x/?v=1.2:3,4.5:6", &["http://x/?v=1.2:3,4.5:6"]),
        ("http://x/#status=200,204", &["http://x/"]),
        (
            "db:5432,10.0.0.1:80,[::1]:5432",
            &["tcp://db:5432", "tcp://10.0.0.1:80", "tcp://[::1]:5432"],
        ),
        (
            "http://x/?t=10:30,db:5432",
            &["http://x/?t=10:30", "tcp://db:5432"],
        ),
        (
            "http://x/?t=10:30%2Cdb:5432",
            &["http://x/?t=10:30%2Cdb:5432"],
        ),
        (
            "tcp://a:1, http://b/ dns://c",
            &["tcp://a:1", "http://b/", "dns://c"],
        ),
        (
            "postgres://u@a:5432,b:5432/app,https://y/",
            &["postgres://u@a:5432,b:5432/app", "https://y/"],
        ),
    ];
    for (list, expected) in cases {
        let finished = holdup()
            .env("HOLDUP_WAIT_FOR", list)
            .args(["--dry-run", "--log-format", "json"])
            .run();
        finished.code(0);
        let targets: Vec<String> = finished
            .json_lines()
            .iter()
            .filter(|line| line["part"] == "target")
            .map(|line| line["target"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(targets, *expected, "{list}");
    }
    // And the query reaches the server whole.
    let server = HttpServer::start(200, "ok");
    holdup()
        .env("HOLDUP_WAIT_FOR", server.url("/at?t=10:30,11:45"))
        .run()
        .code(0);
    assert_eq!(server.requests(), ["GET /at?t=10:30,11:45"]);
}

/// --dry-run says everything a run would use: each target's settings with the defaults
/// filled in, the resolver configuration and the schedule; as text, and as JSON objects.
#[test]
fn dry_run_shows_every_setting_with_its_default() {
    let targets = [
        "https://admin:hunter2@api:8443/health#header=Authorization:%20Bearer%20tok3n",
        "db:5432",
        "postgres://app:hunter2@db/app?sslmode=require#isready",
        "dns://db.internal#type=SRV&expect=db-0:5432",
    ];
    let text = holdup()
        .arg("--dry-run")
        .args(targets)
        .args(["-t", "90s", "--", "./server"])
        .run();
    text.code(0)
        .stderr_lacks("hunter2")
        .stderr_lacks("tok3n")
        .stderr_has("would wait for https://admin@api:8443/health: address=api:8443; method=GET; status=200-399; body=any; headers=authorization (values not shown); redirects=not followed; ca=the public roots built into holdup; certificate checked=chain and name")
        .stderr_has("would wait for tcp://db:5432: host=db; port=5432")
        .stderr_has("hosts=db:5432; user=app; dbname=app; password=none; ready=the server answers the startup packet (pg_isready); fail-fast=off; target_session_attrs=any; sslmode=require; certificate checked=nothing (no root certificate file)")
        .stderr_has("name=db.internal (through the search list); type=SRV; expect=db-0:5432; match=all; min=1")
        .stderr_has("holdup: resolver: from=")
        .stderr_has("; nameservers=")
        .stderr_has("; ndots=")
        .stderr_has("holdup: schedule: timeout=1m 30s; attempt timeout=5s; interval=100ms; backoff after=1s 500ms; steady interval=700ms; slow after=2m; max interval=2s; stable=1; ready when=all targets are ready; attempts=until ready or the deadline; jitter=±20%; max rate=1000 retries/s")
        // A bare program: nothing dangles after it.
        .stderr_has("then run ./server\n");

    let json = holdup()
        .args(["--dry-run", "--log-format", "json"])
        .args(targets)
        .run();
    json.code(0).stderr_lacks("hunter2").stderr_lacks("tok3n");
    let lines = json.json_lines();
    assert!(
        lines.iter().all(|line| line["event"] == "plan"),
        "{}",
        json.stderr
    );
    let part = |part: &str, target: Option<&str>| {
        lines
            .iter()
            .find(|line| line["part"] == part && target.is_none_or(|t| line["target"] == t))
            .unwrap_or_else(|| panic!("no {part} plan:\n{}", json.stderr))["settings"]
            .clone()
    };
    let https = part("target", Some("https://admin@api:8443/health"));
    assert_eq!(https["status"], "200-399");
    assert_eq!(https["method"], "GET");
    assert_eq!(part("target", Some("tcp://db:5432"))["port"], "5432");
    assert_eq!(part("target", Some("dns://db.internal"))["min"], "1");
    assert!(part("resolver", None)["nameservers"].is_string());
    assert_eq!(part("schedule", None)["timeout"], "1m");
}

#[test]
fn dry_run_shows_the_settings_of_mysql_redis_and_amqp() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret-in-file\n").unwrap();
    let password_file = password_file.display().to_string();
    let ca = TestCa::new("holdup dry-run CA").write_pem(dir.path());
    let ca = ca.display().to_string();
    let targets = [
        format!("mysql://app:hunter2@db/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}#fail-fast"),
        "mariadb://app@db:3307#query=SELECT%202".to_string(),
        "mysql://db#ping".to_string(),
        format!("rediss://app@cache:6380/2#password-file={password_file}&replica=synced&ca={ca}"),
        "redis://cache#cluster".to_string(),
        "amqps://app:hunter2@rabbit/shop#insecure&fail-fast=vhost".to_string(),
        format!("amqp://app@rabbit#password-file={password_file}"),
    ];
    let run = |format: &str| {
        holdup()
            .args(["--dry-run", "--log-format", format])
            .args(&targets)
            .env("MYSQL_PWD", "s3cret-in-env")
            .env("REDISCLI_AUTH", "s3cret-in-env")
            .run()
    };
    let text = run("text");
    text.code(0)
        .stderr_lacks("hunter2")
        .stderr_lacks("s3cret")
        .stderr_has(&format!(
            "would wait for mysql://app@db/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}: \
             address=db:3306; user=app; database=shop; password=given in the URL (not shown); \
             ready=a session runs \"SELECT 1\"; fail-fast=auth, database; \
             ssl-mode=VERIFY_IDENTITY; tls=always; ssl-ca={ca}; certificate checked=chain and name"
        ))
        .stderr_has(
            "would wait for mariadb://app@db:3307: address=db:3307; user=app; database=none; \
             password=from $MYSQL_PWD (not shown); ready=a session runs \"SELECT 2\"; \
             fail-fast=off; ssl-mode=PREFERRED; tls=when the server offers it; \
             ssl-ca=none (no certificate is checked); certificate checked=nothing",
        )
        .stderr_has(
            "would wait for mysql://db: address=db:3306; user=holdup (a ping logs in with any \
             name); database=none; password=from $MYSQL_PWD (not shown); ready=the server \
             greets (mysqladmin ping, #ping)",
        )
        .stderr_has(&format!(
            "would wait for rediss://app@cache:6380/2: address=cache:6380; user=app; \
             password=read from {password_file} (not shown); database=2; ready=AUTH, SELECT 2 \
             and PING succeed, and INFO replication shows a replica whose link to its master is \
             up and whose initial sync is done; fail-fast=off; tls=yes; ca={ca}; \
             certificate checked=chain and name"
        ))
        .stderr_has(
            "would wait for redis://cache: address=cache:6379; user=default; \
             password=from $REDISCLI_AUTH (not shown); database=0 (the server's default, no \
             SELECT); ready=AUTH and PING succeed, and CLUSTER INFO says cluster_state:ok; \
             fail-fast=off; tls=no",
        )
        .stderr_has(
            "would wait for amqps://app@rabbit/shop: address=rabbit:5671; user=app; \
             password=given in the URL (not shown); vhost=shop; ready=the broker logs in app \
             (PLAIN) and opens vhost shop (connection.open-ok); fail-fast=vhost; tls=yes; \
             ca=none (no certificate is checked); certificate checked=nothing",
        )
        .stderr_has(&format!(
            "would wait for amqp://app@rabbit: address=rabbit:5672; user=app; \
             password=read from {password_file} (not shown); vhost=/;"
        ));

    let json = run("json");
    json.code(0).stderr_lacks("hunter2").stderr_lacks("s3cret");
    let lines = json.json_lines();
    let settings = |target: &str| {
        lines
            .iter()
            .find(|line| line["part"] == "target" && line["target"] == target)
            .unwrap_or_else(|| panic!("no plan of {target}:\n{}", json.stderr))["settings"]
            .clone()
    };
    assert_eq!(settings("mysql://db")["ssl-mode"], "PREFERRED");
    assert_eq!(settings("redis://cache")["fail-fast"], "off");
    assert_eq!(settings("amqp://app@rabbit")["vhost"], "/");
}
