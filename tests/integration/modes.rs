//! The wait's modes through the real binary: --once, #stable=N and --stable, --min-ready
//! and --any, #down and their combinations, on every kind of target against real servers,
//! sockets, files and commands.

use std::fs;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;

use crate::support::dns::{DnsServer, a};
use crate::support::grpc::{GrpcServer, Setup};
use crate::support::kube::{Fixture, Kind, endpoint_slice};
use crate::support::mariadb::{self, MariaServer};
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::postgres::{self, PgServer, free_port};
use crate::support::rabbitmq::{self, Broker};
use crate::support::redis::RedisServer;
use crate::support::{Finished, SOON, holdup};

/// `target` with one more option in its fragment.
fn with(target: &str, option: &str) -> String {
    let joint = if target.contains('#') { '&' } else { '#' };
    format!("{target}{joint}{option}")
}

/// `holdup --once` on `target`, JSON lines.
fn once(target: &str) -> Finished {
    holdup()
        .args(["--once", "--log-format", "json", "-w", target])
        .run()
}

/// The same modes on any kind, while its server is up, then once it is gone: with --once,
/// `#stable=2` takes two attempts; `#down` is not ready while it answers, and says what
/// answered; once `stop` has run, `#down` is ready at the first attempt.
#[track_caller]
fn up_then_down(target: &str, shown: &str, stop: impl FnOnce()) {
    let stable = once(&with(target, "stable=2"));
    stable
        .code(0)
        .stderr_has(&format!("{shown} ready after"))
        .stderr_has("(2 attempts, 2 in a row)");
    assert_eq!(stable.event("ready")["attempts"], 2);

    let still = once(&with(target, "down"));
    still
        .code(1)
        .stderr_has(&format!("{shown} not down: still answers: "))
        .stderr_has("(1 attempt)");
    assert_eq!(still.events(), ["not_ready"]);

    stop();
    let gone = once(&with(target, "down"));
    gone.code(0)
        .stderr_has(&format!("{shown} down after "))
        .stderr_has("(1 attempt)");
    let ready = gone.event("ready");
    assert_eq!(ready["down"], true, "{ready}");
    assert_eq!(ready["attempts"], 1, "{ready}");
}

#[test]
fn once_says_why_each_target_is_not_ready_and_runs_the_command_only_when_all_are() {
    let closed = ClosedPort::new();
    let server = HttpServer::start(503, "maintenance");
    let tcp = format!("tcp://{}", closed.address());
    let http = server.url("/health");
    let finished = holdup()
        .args(["--once", "-w", &tcp, "-w", &http, "--", "echo", "ran"])
        .run();
    finished
        .code(1)
        .stderr_has(&format!(
            "{tcp} not ready: {}: connection refused (1 attempt)",
            closed.address()
        ))
        .stderr_has(&format!("{http} not ready: HTTP 503"))
        .took_between(std::time::Duration::ZERO, SOON);
    assert_eq!(finished.stdout, "");
    assert_eq!(server.requests().len(), 1);

    let _listening = closed.open();
    server.set_status(200);
    let finished = holdup()
        .args(["--once", "-w", &tcp, "-w", &http, "--", "echo", "ran"])
        .run();
    finished.code(0);
    assert_eq!(finished.stdout, "ran\n");
    assert_eq!(server.requests().len(), 2);

    // HOLDUP_ONCE as well.
    let finished = holdup()
        .env("HOLDUP_ONCE", "true")
        .args(["-w", &format!("tcp://{}", ClosedPort::new().address())])
        .args(["-t", "0"])
        .run();
    finished.code(1).stderr_has("(1 attempt)");
}

#[test]
fn stable_counts_again_after_a_failure_and_its_attempts_are_exact() {
    let server = HttpServer::start(503, "starting");
    let target = with(&server.url("/health"), "stable=3");
    let mut running = holdup()
        .args(["-w", &target, "-t", "60s", "--interval", "400ms", "-v"])
        .args(["--log-format", "json"])
        .spawn();
    running.wait_for_event("waiting");
    server.set_status(200);
    loop {
        let attempt = running.wait_for_event("attempt");
        if attempt["streak"] == 1 {
            break;
        }
    }
    // Flapping: one good answer, then a bad one. The count starts again.
    server.set_status(503);
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .ends_with("(the count of 3 starts again)"),
        "{waiting}"
    );
    running.assert_still_running();
    server.set_status(200);
    let finished = running.finish_within(SOON);
    finished.code(0).stderr_has(", 3 in a row)");
    let ready = finished.event("ready");
    assert_eq!(
        ready["attempts"].as_u64().unwrap() as usize,
        server.requests().len(),
        "{ready}"
    );

    // --stable and HOLDUP_STABLE set it for every target; #stable=N wins.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = format!("tcp://{}", listener.local_addr().unwrap());
    let finished = holdup()
        .args(["--stable", "4", "--log-format", "json", "-w", &tcp])
        .run();
    finished.code(0);
    assert_eq!(finished.event("ready")["attempts"], 4);
    let finished = holdup()
        .env("HOLDUP_STABLE", "3")
        .args(["--log-format", "json", "-w", &with(&tcp, "stable=2")])
        .run();
    finished.code(0);
    assert_eq!(finished.event("ready")["attempts"], 2);
}

#[test]
fn any_and_min_ready_stop_the_others_as_not_needed() {
    let first = ClosedPort::new();
    let second = ClosedPort::new();
    let server = HttpServer::start(200, "ok");
    let targets = [
        format!("tcp://{}", first.address()),
        format!("tcp://{}", second.address()),
        server.url("/health"),
    ];
    let finished = holdup()
        .args(["--any", "--log-format", "json", "-t", "60s"])
        .args(&targets)
        .run();
    finished
        .code(0)
        .stderr_has(&format!("{} not needed: 1 of 3 targets ready", targets[0]))
        .stderr_has(&format!("{} not needed: 1 of 3 targets ready", targets[1]))
        .took_between(std::time::Duration::ZERO, SOON);
    let not_needed: Vec<_> = finished
        .json_lines()
        .into_iter()
        .filter(|line| line["event"] == "not_needed")
        .map(|line| line["target"].clone())
        .collect();
    assert_eq!(not_needed, [targets[0].as_str(), targets[1].as_str()]);

    let finished = holdup()
        .env("HOLDUP_MIN_READY", "2")
        .args(["-t", "1s"])
        .args(&targets)
        .run();
    finished
        .code(1)
        .stderr_has("1 of 3 targets ready; 2 needed")
        .stderr_has(&format!("{} not ready after 1.00s: ", targets[0]))
        .stderr_has(&format!("{} not ready after 1.00s: ", targets[1]));

    let _listening = second.open();
    let finished = holdup().args(["--min-ready", "2"]).args(&targets).run();
    finished
        .code(0)
        .stderr_has(&format!("{} not needed: 2 of 3 targets ready", targets[0]));

    let finished = holdup().args(["--min-ready", "4"]).args(&targets).run();
    finished
        .code(2)
        .stderr_has("--min-ready 4 asks for more targets than the 3 given");
}

#[test]
fn down_waits_until_the_port_is_let_go() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let target = format!("tcp://{address}");
    let mut running = holdup()
        .args([
            "-w",
            &with(&target, "down"),
            "-t",
            "60s",
            "--log-format",
            "json",
        ])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        format!("still answers: {address} accepts connections"),
        "{waiting}"
    );
    running.assert_still_running();
    drop(listener);
    let finished = running.finish_within(SOON);
    finished.code(0).stderr_has(&format!("{target} down after"));
    let ready = finished.event("ready");
    assert_eq!(ready["reason"], format!("{address}: connection refused"));

    // Three failures in a row.
    let finished = holdup()
        .args([
            "--log-format",
            "json",
            "-w",
            &with(&target, "down&stable=3"),
        ])
        .run();
    finished.code(0).stderr_has("(3 attempts, 3 in a row)");
}

#[test]
fn down_on_http_when_the_maintenance_page_is_gone() {
    let server = HttpServer::start(503, "down for maintenance");
    let target = with(&server.url("/"), "status=503&down");
    let mut running = holdup()
        .args(["-w", &target, "-t", "60s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .starts_with("still answers: HTTP 503"),
        "{waiting}"
    );
    running.assert_still_running();
    server.set_status(200);
    let finished = running.finish_within(SOON);
    finished.code(0);
    let ready = finished.event("ready");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .starts_with("answers, but not as asked: HTTP 200"),
        "{ready}"
    );
}

#[test]
fn bad_wait_options_are_usage_errors() {
    for (args, expected) in [
        (&["tcp://db:1#stable=0"][..], "1 or more (stable=3)"),
        (&["tcp://db:1#down=maybe"], "option 'down' is a switch"),
        (&["tcp://db:1#down&down"], "given twice"),
        (&["exec:true #down&x=1"], "unknown option 'x=1'"),
        (&["db:1", "--stable", "0"], "--stable"),
        (&["db:1", "--min-ready", "1", "--any"], "--any"),
    ] {
        holdup().args(args).run().code(2).stderr_has(expected);
    }
    for (variable, value, expected) in [
        (
            "HOLDUP_ONCE",
            "maybe",
            "HOLDUP_ONCE=maybe: expected true or false",
        ),
        (
            "HOLDUP_STABLE",
            "x",
            "HOLDUP_STABLE=x: 'x' is not a count of attempts in a row",
        ),
        (
            "HOLDUP_MIN_READY",
            "3",
            "HOLDUP_MIN_READY=3 asks for more targets than the 1 given",
        ),
    ] {
        holdup()
            .env(variable, value)
            .arg("db:1")
            .run()
            .code(2)
            .stderr_has(expected);
    }
}

#[test]
fn files_commands_and_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maintenance");
    fs::write(&path, "on").unwrap();
    let file = format!("file://{}", path.display());
    up_then_down(&file, &file, || fs::remove_file(&path).unwrap());

    let flag = dir.path().join("flag");
    fs::write(&flag, "").unwrap();
    let command = format!("exec:test -e {}", flag.display());
    let stable = once(&format!("{command} #stable=2"));
    stable.code(0).stderr_has("(2 attempts, 2 in a row)");
    once(&format!("{command} #down"))
        .code(1)
        .stderr_has("still answers: test exits 0");
    fs::remove_file(&flag).unwrap();
    once(&format!("{command} #down"))
        .code(0)
        .stderr_has(&format!("{command} down after"))
        .stderr_has("exited with status 1");

    let socket = dir.path().join("app.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let unix = format!("unix://{}", socket.display());
    up_then_down(&unix, &unix, move || drop(listener));
}

#[test]
fn dns_down_when_the_name_no_longer_has_the_address() {
    let server = DnsServer::start("test.");
    server.set("db", vec![a("10.0.0.5")]);
    let target = format!("dns://db.test#expect=10.0.0.5&server={}", server.address());
    up_then_down(&target, "dns://db.test", || {
        server.set("db", vec![a("10.0.0.6")])
    });
    once(&with(&target, "down"))
        .code(0)
        .stderr_has("answers, but not as asked: ");
}

#[test]
fn redis_up_then_down() {
    let server = RedisServer::builder().start();
    let target = format!("redis://127.0.0.1:{}", server.port());
    let shown = target.clone();
    up_then_down(&target, &shown, move || drop(server));
}

#[test]
fn postgres_up_then_down() {
    let server = PgServer::start();
    let port = server.port();
    let target = format!(
        "postgres://{}:{}@127.0.0.1:{port}/{}",
        postgres::APP_USER,
        postgres::APP_PASSWORD,
        postgres::APP_DB
    );
    let shown = format!(
        "postgres://{}@127.0.0.1:{port}/{}",
        postgres::APP_USER,
        postgres::APP_DB
    );
    up_then_down(&target, &shown, move || drop(server));
}

#[test]
fn mysql_up_then_down() {
    let server = MariaServer::builder().start();
    let port = server.port();
    let target = format!(
        "mysql://{}:{}@127.0.0.1:{port}/{}",
        mariadb::APP_USER,
        mariadb::PASSWORD,
        mariadb::DB
    );
    let shown = format!(
        "mysql://{}@127.0.0.1:{port}/{}",
        mariadb::APP_USER,
        mariadb::DB
    );
    up_then_down(&target, &shown, move || drop(server));
}

#[test]
fn amqp_up_then_down() {
    let broker = Broker::start(free_port(), true);
    let port = broker.info.port;
    let target = format!(
        "amqp://{}:{}@127.0.0.1:{port}/{}",
        rabbitmq::USER,
        rabbitmq::PASSWORD,
        rabbitmq::VHOST
    );
    let shown = format!(
        "amqp://{}@127.0.0.1:{port}/{}",
        rabbitmq::USER,
        rabbitmq::VHOST
    );
    up_then_down(&target, &shown, move || drop(broker));
}

#[test]
fn grpc_up_then_down() {
    let Some(server) = GrpcServer::start("modes::grpc_up_then_down", Setup::default()) else {
        return;
    };
    let target = format!("grpc://{}", server.address());
    let shown = target.clone();
    up_then_down(&target, &shown, move || drop(server));
}

#[test]
fn k8s_down_when_a_service_loses_its_endpoints() {
    let k8s = Fixture::with_token("token-1");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    let up = k8s.in_pod().args(["--once", "-w", "k8s://db#down"]).run();
    up.code(1)
        .stderr_has("k8s://db not down: still ready (an attempt succeeded) (1 attempt)");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    // The attempt watches for a change; #down ends it as soon as it says "not ready",
    // long before the 30 s attempt timeout.
    let down = k8s
        .in_pod()
        .args(["--once", "--attempt-timeout", "30s", "-w", "k8s://db#down"])
        .run();
    down.code(0)
        .stderr_has("k8s://db down after")
        .stderr_has("0 ready endpoints")
        .took_between(std::time::Duration::ZERO, SOON);
}

#[test]
fn down_and_min_ready_combine() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let answering = format!("tcp://{}#down", listener.local_addr().unwrap());
    let gone = format!("tcp://{}#down", ClosedPort::new().address());
    let finished = holdup()
        .args(["--once", "--any", "-w", &answering, "-w", &gone])
        .run();
    finished
        .code(0)
        .stderr_has(" down after ")
        .stderr_has("not needed: 1 of 2 targets ready; it was not: still answers: ");
    let finished = holdup()
        .args(["--once", "--min-ready", "2", "-w", &answering, "-w", &gone])
        .run();
    finished
        .code(1)
        .stderr_has(&format!("{} down after ", gone.trim_end_matches("#down")))
        .stderr_has(" not down: still answers: ");
}
