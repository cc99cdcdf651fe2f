//! tcp:// targets: a port that opens later, one that stays closed, one that drops packets,
//! names with several addresses, several targets at once.

use std::time::Duration;

use crate::support::net::{Blackhole, ClosedPort};
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

#[test]
fn ready_when_the_port_opens_later() {
    let port = ClosedPort::new();
    let target = format!("tcp://{}", port.address());
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    // holdup has found the port closed, and waits on: only now does it open.
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        format!("{}: connection refused", port.address())
    );
    running.assert_still_running();
    let listening = port.open();
    let finished = running.finish_within(SOON);
    finished
        .code(0)
        .stderr_has(&format!("{target} ready after "));
    assert_eq!(finished.events(), ["waiting", "ready"]);
    let ready = finished.event("ready");
    assert!(ready["attempts"].as_u64().unwrap() >= 2, "{ready}");
    // The attempts before were refused: the one that connected came after the port opened.
    assert_eq!(listening.accepted(), 1);
}

#[test]
fn exits_1_at_the_deadline_on_a_closed_port() {
    let port = ClosedPort::new();
    let target = format!("tcp://{}", port.address());
    let finished = holdup().args(["-w", &target, "-t", "1s"]).run();
    finished
        .code(1)
        .stderr_has(&format!(
            "{target} not ready after 1.00s: {}: connection refused (",
            port.address()
        ))
        .took_between(secs(1.0), secs(1.0) + DEADLINE_SLACK);
}

#[test]
fn the_deadline_holds_on_a_blackholed_port() {
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins, and
    // cuts the one attempt short.
    let blackhole = Blackhole::new();
    let target = format!("tcp://{}", blackhole.address());
    let finished = holdup()
        .args(["-w", &target, "-t", "1500ms", "--attempt-timeout", "30s"])
        .run();
    finished
        .code(1)
        .stderr_has(&format!(
            "{target} not ready after 1.50s: timed out after 1.50s while connecting to {} (1 attempt)",
            blackhole.address()
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
}

#[test]
fn attempts_on_a_blackholed_port_time_out_and_are_retried() {
    let blackhole = Blackhole::new();
    let finished = holdup()
        .args([
            "-w",
            &format!("tcp://{}", blackhole.address()),
            "-t",
            "2s",
            "--attempt-timeout",
            "300ms",
        ])
        .run();
    finished
        .code(1)
        .stderr_has("timed out after 300ms while connecting to");
    let attempts: u32 = finished
        .stderr
        .rsplit('(')
        .next()
        .and_then(|tail| tail.split(' ').next())
        .and_then(|count| count.parse().ok())
        .expect("attempt count in the last line");
    assert!(
        attempts >= 3,
        "only {attempts} attempts in 2 s with 300 ms each:\n{}",
        finished.stderr
    );
}

#[test]
fn localhost_works_on_ipv4_and_on_ipv6() {
    for address in ["127.0.0.1:0", "[::1]:0"] {
        let port = ClosedPort::on(address.parse().unwrap());
        let number = port.port();
        let listening = port.open();
        holdup()
            .args(["-w", &format!("tcp://localhost:{number}"), "-t", "5s"])
            .run()
            .code(0);
        assert_eq!(listening.accepted(), 1, "{address}");
    }
}

#[test]
fn every_address_is_tried_and_every_failure_reported() {
    let port = ClosedPort::new();
    let finished = holdup()
        .args(["-w", &format!("localhost:{}", port.port()), "-t", "300ms"])
        .run();
    finished
        .code(1)
        .stderr_has(&format!("127.0.0.1:{}", port.port()))
        .stderr_has(&format!("[::1]:{}", port.port()));
}

#[test]
fn targets_are_waited_for_concurrently() {
    // One target that never answers must not hold up the others: the open one is ready at
    // once, and the whole run still ends at the deadline.
    let blackhole = Blackhole::new();
    let open = ClosedPort::new();
    let open_address = open.address();
    let _listening = open.open();
    let finished = holdup()
        .args([
            "-w",
            &format!("tcp://{}", blackhole.address()),
            "-w",
            &format!("tcp://{open_address}"),
            "-t",
            "1s",
            "--log-format",
            "json",
        ])
        .run();
    finished
        .code(1)
        .stderr_has(&format!("tcp://{} not ready after", blackhole.address()))
        .stderr_lacks(&format!("tcp://{open_address} not ready"))
        .took_between(secs(1.0), secs(1.0) + DEADLINE_SLACK);
    // The open port was ready on its first attempt, before the deadline ended the
    // blackholed one's first attempt (5 s long): it did not wait behind it.
    assert_eq!(finished.events(), ["ready", "waiting", "not_ready"]);
    let ready = finished.event("ready");
    assert_eq!(ready["target"], format!("tcp://{open_address}"));
    assert_eq!(
        ready["attempts"], 1,
        "the open port waited behind the blackholed one: {ready}"
    );
    assert!(ready["elapsed_ms"].as_u64().unwrap() < 1000, "{ready}");
}

#[test]
fn all_ready_exits_0_at_once() {
    let ports: Vec<_> = (0..3).map(|_| ClosedPort::new()).collect();
    let targets: Vec<String> = ports
        .iter()
        .map(|port| format!("tcp://{}", port.address()))
        .collect();
    let _listening: Vec<_> = ports.into_iter().map(ClosedPort::open).collect();
    let mut command = holdup().args(["--log-format", "json"]);
    for target in &targets {
        command = command.args(["-w", target]);
    }
    let finished = command.run();
    finished.code(0).took_between(Duration::ZERO, SOON);
    // Each one ready on its first attempt, none waited for.
    let lines = finished.json_lines();
    assert_eq!(lines.len(), targets.len(), "{}", finished.stderr);
    for line in &lines {
        assert_eq!(line["event"], "ready", "{line}");
        assert_eq!(line["attempts"], 1, "{line}");
    }
}
