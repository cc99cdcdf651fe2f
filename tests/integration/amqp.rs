//! amqp:// and amqps:// targets against a real RabbitMQ broker (Debian's): one that boots
//! after holdup starts, a vhost created while holdup waits, refused credentials (retried,
//! or fail-fast), the clean close the broker logs, and amqps:// with a test CA.

use std::time::Duration;

use crate::support::postgres::free_port;
use crate::support::rabbitmq::{self, Broker, PASSWORD, USER, VHOST};
use crate::support::tls::TestCa;
use crate::support::{SOON, holdup};

fn url(port: u16, vhost: &str) -> String {
    format!("amqp://{USER}:{PASSWORD}@127.0.0.1:{port}/{vhost}")
}

#[test]
fn ready_when_the_broker_boots_after_holdup_and_closes_cleanly() {
    let port = free_port();
    let mut running = holdup()
        .args(["-w", &url(port, VHOST), "-t", "90s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .ends_with("connection refused"),
        "{waiting}"
    );
    running.assert_still_running();
    // Booting takes seconds: holdup must wait through all of it.
    let broker = Broker::start(port, false);
    let finished = running.finish();
    finished.code(0).stderr_lacks(PASSWORD);
    assert_eq!(finished.events(), ["waiting", "ready"]);
    // connection.close, answered: the broker logs a closed connection, not an error.
    broker.daemon.wait_for_log("closing AMQP connection");
    let log = broker.daemon.log();
    assert!(!log.contains("unexpectedly closed"), "{log}");
}

#[test]
fn refused_credentials_are_retried_or_fail_fast_and_never_shown() {
    let broker = rabbitmq::shared();
    let wrong = "Wrong-8d2f61";
    let target = format!("amqp://{USER}:{wrong}@127.0.0.1:{}/{VHOST}", broker.port);
    let refused = "403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN";
    holdup()
        .args(["-w", &target, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "amqp://{USER}@127.0.0.1:{}/{VHOST} not ready after 1.00s: {refused}",
            broker.port
        ))
        .stderr_lacks(wrong);
    holdup()
        .args(["-w", &format!("{target}#fail-fast"), "-t", "30s"])
        .run()
        .code(3)
        .stderr_has(refused)
        .stderr_has("waiting cannot fix this")
        .stderr_lacks(wrong)
        .took_between(Duration::ZERO, SOON);
    // A failure of another kind than the one named is still retried.
    holdup()
        .args(["-w", &format!("{target}#fail-fast=vhost"), "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(refused);
}

#[test]
fn a_vhost_created_while_holdup_waits() {
    let broker = rabbitmq::shared();
    let late = "late";
    let running = holdup()
        .args(["-w", &url(broker.port, late), "-t", "60s"])
        .spawn();
    running.wait_for_line("530 NOT_ALLOWED - vhost late not found");
    broker.ctl(&["add_vhost", late]);
    broker.ctl(&["set_permissions", "-p", late, USER, ".*", ".*", ".*"]);
    running.finish_within(SOON).code(0);

    holdup()
        .args([
            "-w",
            &format!("{}#fail-fast=vhost", url(broker.port, "nowhere")),
            "-t",
            "30s",
        ])
        .run()
        .code(3)
        .stderr_has("530 NOT_ALLOWED - vhost nowhere not found");
    // The default vhost, written as nothing, as / or as %2f.
    for vhost in ["", "%2f"] {
        holdup()
            .args(["-w", &url(broker.port, vhost)])
            .run()
            .code(0);
    }
    holdup()
        .args([
            "-w",
            &format!("amqp://{USER}:{PASSWORD}@127.0.0.1:{}", broker.port),
        ])
        .run()
        .code(0);
}

#[test]
fn amqps_checks_the_certificate_against_the_ca() {
    let broker = rabbitmq::shared();
    let target = format!(
        "amqps://{USER}:{PASSWORD}@127.0.0.1:{}/{VHOST}",
        broker.tls_port
    );
    holdup()
        .args(["-w", &format!("{target}#ca={}", broker.ca_file.display())])
        .run()
        .code(0)
        .stderr_lacks(PASSWORD);
    let other = TestCa::new("another CA");
    let dir = tempfile::tempdir().unwrap();
    let other_file = other.write_pem(dir.path());
    holdup()
        .args([
            "-w",
            &format!("{target}#ca={}", other_file.display()),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with 127.0.0.1:{} failed: the server's certificate (CN=localhost, \
             issued by CN=holdup rabbitmq test CA) is not signed by a CA in {} (which holds \
             CN=another CA)",
            broker.tls_port,
            other_file.display()
        ));
    holdup()
        .args(["-w", &format!("{target}#insecure")])
        .run()
        .code(0);
}
