//! Targets of every kind in one run, under one deadline: waited for together, and reported
//! one line each.

use std::fs;
use std::os::unix::net::UnixListener;

use crate::support::grpc::{GrpcServer, Setup};
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

#[test]
fn one_target_of_each_kind_under_one_deadline() {
    let setup = Setup {
        statuses: &[("", "SERVING")],
        ..Setup::default()
    };
    let Some(grpc) = GrpcServer::start("mixed::one_of_each", setup) else {
        return;
    };
    let http = HttpServer::start(200, "ok");
    let tcp = ClosedPort::new();
    let tcp_address = tcp.address();
    let _tcp = tcp.open();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    let marker = dir.path().join("ready");
    let file = format!("file://{}", marker.display());
    let targets = [
        format!("tcp://{tcp_address}"),
        http.url("/health"),
        format!("grpc://{}", grpc.address()),
        format!("unix://{}", socket.display()),
        "exec:sh -c 'exit 0'".to_string(),
        file.clone(),
    ];

    // The file never appears: one line says so, at the deadline, and only for it.
    let finished = holdup()
        .args(&targets)
        .args(["-t", "1500ms", "--log-format", "json"])
        .run();
    finished
        .code(1)
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    let lines = finished.json_lines();
    let not_ready: Vec<&str> = lines
        .iter()
        .filter(|line| line["event"] == "not_ready")
        .map(|line| line["target"].as_str().unwrap())
        .collect();
    assert_eq!(not_ready, [file.as_str()]);
    assert_eq!(
        lines.iter().filter(|line| line["event"] == "ready").count(),
        5
    );

    // The file appears while holdup waits: everything is ready.
    let mut running = holdup()
        .args(&targets)
        .args(["-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(waiting["target"], file, "{waiting}");
    running.assert_still_running();
    fs::write(&marker, "").unwrap();
    let finished = running.finish_within(SOON);
    finished.code(0);
    let mut ready: Vec<String> = finished
        .json_lines()
        .iter()
        .filter(|line| line["event"] == "ready")
        .map(|line| line["target"].as_str().unwrap().to_string())
        .collect();
    ready.sort();
    let mut expected: Vec<String> = targets.to_vec();
    expected.sort();
    assert_eq!(ready, expected);
}
