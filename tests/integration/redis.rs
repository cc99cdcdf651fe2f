//! redis:// and rediss:// targets against a real redis-server (Debian's; Valkey is not
//! packaged in this Debian release): one that starts late, one loading a dataset
//! (-LOADING), passwords and ACL users (retried, or fail-fast), databases, a replica whose
//! master starts late (#replica=synced), #role, and TLS with a test CA.

use std::time::Duration;

use crate::support::postgres::free_port;
use crate::support::redis::{ACL_PASSWORD, ACL_USER, PASSWORD, RedisServer};
use crate::support::tls::TestCa;
use crate::support::{SOON, holdup};

#[test]
fn ready_when_the_server_starts_after_holdup() {
    let port = free_port();
    let target = format!("redis://127.0.0.1:{port}");
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
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
    let _server = RedisServer::builder().port(port).start_no_wait();
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(finished.events(), ["waiting", "ready"]);
}

#[test]
fn a_server_loading_its_dataset_is_not_ready_until_it_is_loaded() {
    let dataset = tempfile::tempdir().unwrap();
    {
        let seed = RedisServer::builder()
            .arg("enable-debug-command", &["yes"])
            .start();
        seed.save_dataset(2000, dataset.path());
    }
    let port = free_port();
    let target = format!("redis://127.0.0.1:{port}");
    let running = holdup().args(["-w", &target, "-t", "60s"]).spawn();
    running.wait_for_line("connection refused");
    // 1 ms per key, and clients answered every KiB loaded: -LOADING for about 2 s.
    let server = RedisServer::builder()
        .port(port)
        .data(dataset.path())
        .arg("key-load-delay", &["1000"])
        .arg("loading-process-events-interval-bytes", &["1024"])
        .start_no_wait();
    running.wait_for_line("LOADING Redis is loading the dataset in memory (answer to PING)");
    server.daemon().wait_for_log("DB loaded from disk");
    let finished = running.finish_within(SOON);
    finished.code(0);
    let loading = finished.stderr.find("LOADING").unwrap();
    let ready = finished.stderr.find("ready after").unwrap();
    assert!(loading < ready, "{}", finished.stderr);
}

#[test]
fn passwords_and_acl_users() {
    let server = RedisServer::builder().passwords().start();
    let port = server.port();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();

    for target in [
        format!("redis://:{PASSWORD}@127.0.0.1:{port}"),
        format!("redis://default:{PASSWORD}@127.0.0.1:{port}/3"),
        format!("redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{port}/0"),
        format!(
            "redis://127.0.0.1:{port}#password-file={}",
            password_file.display()
        ),
    ] {
        holdup()
            .args(["-w", &target])
            .run()
            .code(0)
            .stderr_lacks(PASSWORD)
            .stderr_lacks(ACL_PASSWORD);
    }
    holdup()
        .args(["-w", &format!("redis://127.0.0.1:{port}")])
        .env("REDISCLI_AUTH", PASSWORD)
        .run()
        .code(0)
        .stderr_lacks(PASSWORD);

    // No password: NOAUTH, with where to put one.
    holdup()
        .args(["-w", &format!("redis://127.0.0.1:{port}"), "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("NOAUTH Authentication required. (answer to PING) (no password given");
    // A database that does not exist.
    holdup()
        .args([
            "-w",
            &format!("redis://:{PASSWORD}@127.0.0.1:{port}/99"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has("DB index is out of range (answer to SELECT)");
}

#[test]
fn a_wrong_password_is_retried_or_fails_fast_and_is_never_shown() {
    let server = RedisServer::builder().passwords().start();
    let port = server.port();
    let wrong = "Wrong-4e1b9d";
    let target = format!("redis://{ACL_USER}:{wrong}@127.0.0.1:{port}");
    let rejected = "AUTH as app: WRONGPASS invalid username-password pair or user is disabled. (answer to AUTH)";
    holdup()
        .args(["-w", &target, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "redis://{ACL_USER}@127.0.0.1:{port} not ready after 1.00s: {rejected}"
        ))
        .stderr_lacks(wrong);
    holdup()
        .args(["-w", &format!("{target}#fail-fast"), "-t", "30s"])
        .run()
        .code(3)
        .stderr_has(rejected)
        .stderr_has("waiting cannot fix this")
        .stderr_lacks(wrong)
        .took_between(Duration::ZERO, SOON);
    // No password at all is an authentication failure too.
    holdup()
        .args([
            "-w",
            &format!("redis://127.0.0.1:{port}#fail-fast=auth"),
            "-t",
            "30s",
        ])
        .run()
        .code(3)
        .stderr_has("NOAUTH");
}

#[test]
fn a_replica_is_synced_only_once_its_late_master_is_up() {
    let master_port = free_port();
    let replica = RedisServer::builder().replica_of(master_port).start();
    let replica_target = format!("redis://127.0.0.1:{}", replica.port());

    // A replica whose master is down still answers PING: ready without #replica=synced.
    holdup()
        .args(["-w", &format!("{replica_target}#role=replica")])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &format!("{replica_target}#role=master"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has("role is slave, and #role=master");

    let running = holdup()
        .args([
            "-w",
            &format!("{replica_target}#replica=synced"),
            "-t",
            "60s",
        ])
        .spawn();
    running.wait_for_line(&format!(
        "replica of 127.0.0.1:{master_port}: the link to its master is"
    ));
    let master = RedisServer::builder()
        .port(master_port)
        .arg("repl-diskless-sync-delay", &["0"])
        .start();
    running.finish_within(SOON).code(0);

    let master_target = format!("redis://127.0.0.1:{}", master.port());
    holdup()
        .args(["-w", &format!("{master_target}#role=master")])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &format!("{master_target}#replica=synced"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has("role is master, and #replica=synced");
    // Not a cluster: CLUSTER INFO is refused with the server's words.
    holdup()
        .args(["-w", &format!("{master_target}#cluster"), "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("cluster support disabled");
}

#[test]
fn rediss_checks_the_certificate_against_the_ca() {
    let ca = TestCa::new("holdup redis test CA");
    let other = TestCa::new("another CA");
    let server = RedisServer::builder()
        .tls(ca.issue(&["localhost", "127.0.0.1"]), ca.pem())
        .arg("requirepass", &[PASSWORD])
        .start();
    let port = server.port();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other_file = other.write_pem(other_dir.path());

    holdup()
        .args([
            "-w",
            &format!(
                "rediss://:{PASSWORD}@127.0.0.1:{port}#ca={}",
                ca_file.display()
            ),
        ])
        .run()
        .code(0)
        .stderr_lacks(PASSWORD);
    holdup()
        .args([
            "-w",
            &format!(
                "rediss://:{PASSWORD}@127.0.0.1:{port}#ca={}",
                other_file.display()
            ),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with 127.0.0.1:{port} failed: the server's certificate (CN=localhost, \
             issued by CN=holdup redis test CA) is not signed by a CA in {} (which holds \
             CN=another CA)",
            other_file.display()
        ));
    // Without #ca, the public roots: the refusal says how to give the CA.
    holdup()
        .args([
            "-w",
            &format!("rediss://:{PASSWORD}@127.0.0.1:{port}"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with 127.0.0.1:{port} failed: the server's certificate (CN=localhost, \
             issued by CN=holdup redis test CA) is not signed by a CA of the public roots built \
             into holdup; give the CA that signed it with #ca=FILE"
        ))
        .stderr_lacks(PASSWORD);
    holdup()
        .args([
            "-w",
            &format!("rediss://:{PASSWORD}@127.0.0.1:{port}#insecure"),
        ])
        .run()
        .code(0);
    // Plain RESP to a TLS port: the server hangs up.
    holdup()
        .args([
            "-w",
            &format!("redis://:{PASSWORD}@127.0.0.1:{port}"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has("(waiting for the answer to AUTH)");
}
