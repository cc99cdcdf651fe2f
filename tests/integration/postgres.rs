//! postgres:// targets against a real Postgres server: one that starts late, a standby that
//! is promoted, rejected logins and missing databases (retried, or fail-fast with exit 3),
//! pg_isready mode, the user's query, several hosts, and every sslmode with a test CA.

use std::time::Duration;

use crate::support::net::{Blackhole, ClosedPort, Silent};
use crate::support::postgres::{APP_DB, APP_PASSWORD, APP_USER, PgServer, free_port};
use crate::support::tls::{TestCa, openssl_self_signed};
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

/// `postgres://app:PASSWORD@HOST:PORT/DB` followed by `rest` (a query string or fragment).
fn uri(password: &str, host: &str, port: u16, db: &str, rest: &str) -> String {
    format!("postgres://{APP_USER}:{password}@{host}:{port}/{db}{rest}")
}

#[test]
fn ready_when_the_server_starts_after_holdup() {
    let port = free_port();
    let target = uri(APP_PASSWORD, "127.0.0.1", port, APP_DB, "");
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    // holdup has found nothing listening, and waits on: only now does the server start.
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .ends_with(&format!("127.0.0.1:{port}: connection refused")),
        "{waiting}"
    );
    running.assert_still_running();
    let _server = PgServer::builder().port(port).start();
    let finished = running.finish_within(SOON);
    finished
        .code(0)
        .stderr_has(&format!(
            "postgres://{APP_USER}@127.0.0.1:{port}/{APP_DB} ready after "
        ))
        .stderr_lacks(APP_PASSWORD);
    // Waiting (refused, then perhaps "starting up" while the server starts), then ready.
    assert_eq!(finished.events(), ["waiting", "ready"]);
    let ready = finished.event("ready");
    assert!(ready["attempts"].as_u64().unwrap() >= 2, "{ready}");
}

#[test]
fn a_standby_is_not_ready_until_it_is_promoted() {
    let server = PgServer::builder().standby().start();
    let port = server.port();
    let starting_up = "the database system is not accepting connections: hot standby mode is disabled (SQLSTATE 57P03)";

    // pg_isready says the same of a standby that refuses connections.
    holdup()
        .args([
            "-w",
            &format!("postgres://127.0.0.1:{port}#isready"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(starting_up);

    let target = uri(APP_PASSWORD, "127.0.0.1", port, APP_DB, "");
    let running = holdup().args(["-w", &target, "-t", "30s"]).spawn();
    running.wait_for_line(starting_up);
    server.promote();
    let finished = running.finish();
    finished.code(0);
    let waiting = finished.stderr.find(starting_up).unwrap();
    let ready = finished.stderr.find("ready after").unwrap();
    assert!(waiting < ready, "{}", finished.stderr);

    holdup()
        .args(["-w", &format!("postgres://127.0.0.1:{port}#isready")])
        .run()
        .code(0);
}

#[test]
fn a_wrong_password_is_retried_until_the_deadline_and_never_shown() {
    let server = PgServer::start();
    let wrong = "Wrong-9c41e7";
    let target = uri(wrong, "127.0.0.1", server.port(), APP_DB, "");
    let shown = format!("postgres://{APP_USER}@127.0.0.1:{}/{APP_DB}", server.port());
    let rejected =
        format!("password authentication failed for user \"{APP_USER}\" (SQLSTATE 28P01)");
    let finished = holdup().args(["-w", &target, "-t", "2s", "-vv"]).run();
    finished
        .code(1)
        .stderr_has(&format!("{shown} not ready after 2.00s: {rejected} ("))
        .stderr_lacks(wrong)
        .took_between(secs(2.0), secs(10.0));

    let finished = holdup()
        .args(["-w", &target, "-t", "1s", "-vv", "--log-format", "json"])
        .run();
    finished.code(1).stderr_lacks(wrong);
    let lines = finished.json_lines();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "not_ready");
    assert_eq!(last["target"], shown);
    assert!(
        last["error"].as_str().unwrap().contains(&rejected),
        "{last}"
    );

    // Passwords from the query string and from PGPASSWORD are kept out just the same.
    let in_query = format!(
        "postgres://{APP_USER}@127.0.0.1:{}/{APP_DB}?password={wrong}",
        server.port()
    );
    holdup()
        .args(["-w", &in_query, "-t", "500ms", "-vv"])
        .run()
        .code(1)
        .stderr_has(&rejected)
        .stderr_lacks(wrong);
    holdup()
        .args(["-w", &shown, "-t", "500ms", "-vv"])
        .env("PGPASSWORD", wrong)
        .run()
        .code(1)
        .stderr_has(&rejected)
        .stderr_lacks(wrong);
    holdup()
        .args(["-w", &shown])
        .env("PGPASSWORD", APP_PASSWORD)
        .run()
        .code(0)
        .stderr_lacks(APP_PASSWORD);
}

#[test]
fn fail_fast_turns_chosen_failures_into_exit_3() {
    let server = PgServer::start();
    let port = server.port();
    let wrong_password = uri("Wrong-1", "127.0.0.1", port, APP_DB, "");
    let missing_db = uri(APP_PASSWORD, "127.0.0.1", port, "nope", "");

    // Without fail-fast both are retried: a role or database may be created while we wait.
    holdup()
        .args(["-w", &missing_db, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has("database \"nope\" does not exist (SQLSTATE 3D000)");

    for (target, fragment, reason) in [
        (
            &wrong_password,
            "#fail-fast=auth",
            "password authentication failed",
        ),
        (
            &wrong_password,
            "#fail-fast",
            "password authentication failed",
        ),
        (
            &missing_db,
            "#fail-fast=database",
            "database \"nope\" does not exist",
        ),
        (
            &missing_db,
            "#fail-fast=auth,database",
            "database \"nope\" does not exist",
        ),
    ] {
        holdup()
            .args(["-w", &format!("{target}{fragment}"), "-t", "30s"])
            .run()
            .code(3)
            .stderr_has(&format!("postgres://{APP_USER}@127.0.0.1:{port}/"))
            .stderr_has(reason)
            .stderr_has("waiting cannot fix this")
            .stderr_lacks("Wrong-1")
            .took_between(Duration::ZERO, SOON);
    }
    // A failure of another kind than the one named is still retried.
    holdup()
        .args(["-w", &format!("{missing_db}#fail-fast=auth"), "-t", "500ms"])
        .run()
        .code(1);
}

#[test]
fn isready_needs_no_credentials() {
    let server = PgServer::start();
    let port = server.port();
    for target in [
        format!("postgres://127.0.0.1:{port}#isready"),
        // A role and database that do not exist: the server is up all the same, as for pg_isready.
        format!("postgres://nobody@127.0.0.1:{port}/nowhere#isready"),
        format!("postgres://localhost:{port}?sslmode=disable#isready"),
    ] {
        holdup().args(["-w", &target]).run().code(0);
    }
    let closed = ClosedPort::new();
    holdup()
        .args([
            "-w",
            &format!("postgres://127.0.0.1:{}#isready", closed.port()),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!("127.0.0.1:{}: connection refused", closed.port()));
}

#[test]
fn the_query_decides_and_every_host_is_tried() {
    let server = PgServer::start();
    let port = server.port();
    let base = uri(APP_PASSWORD, "127.0.0.1", port, APP_DB, "");
    holdup()
        .args([
            "-w",
            &format!("{base}#query=SELECT%20count(*)%20%3E%200%20FROM%20pg_class"),
        ])
        .run()
        .code(0);
    for (fragment, reason) in [
        ("#query=SELECT%20false", "the query returned false"),
        (
            "#query=SELECT%201%20WHERE%20false",
            "the query returned no rows",
        ),
        ("#query=SELECT%20NULL", "the query returned NULL"),
        (
            "#query=SELECT%20*%20FROM%20migrations",
            "relation \"migrations\" does not exist (SQLSTATE 42P01)",
        ),
        (
            "?target_session_attrs=standby",
            "is a primary (not in recovery), and target_session_attrs=standby",
        ),
        (
            "?sslmode=require",
            "does not accept TLS (ssl is off on the server), and sslmode=require requires it",
        ),
    ] {
        holdup()
            .args(["-w", &format!("{base}{fragment}"), "-t", "500ms"])
            .run()
            .code(1)
            .stderr_has(reason);
    }
    holdup()
        .args(["-w", &format!("{base}?target_session_attrs=read-write")])
        .run()
        .code(0);

    // Several hosts: ready when any one is; otherwise each says why.
    let closed = ClosedPort::new();
    let both = format!(
        "postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{},127.0.0.1:{port}/{APP_DB}",
        closed.port()
    );
    holdup().args(["-w", &both]).run().code(0);
    let neither = format!(
        "postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{},127.0.0.1:{port}/nope",
        closed.port()
    );
    holdup()
        .args(["-w", &neither, "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "127.0.0.1:{0}: connection refused; 127.0.0.1:{port}: database \"nope\" does not exist",
            closed.port()
        ));
}

#[test]
fn a_silent_or_unreachable_host_cannot_hold_past_the_deadline() {
    let silent = Silent::start();
    let address = silent.address();
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins.
    for (query, stage) in [
        ("", format!("asking {address} for TLS")),
        (
            "?sslmode=disable",
            format!("authenticating as {APP_USER} with {address}"),
        ),
    ] {
        holdup()
            .args([
                "-w",
                &format!("postgres://{APP_USER}:{APP_PASSWORD}@{address}/{APP_DB}{query}"),
                "-t",
                "1s",
                "--attempt-timeout",
                "30s",
            ])
            .run()
            .code(1)
            .stderr_has("not ready after 1.00s: timed out after ")
            .stderr_has(&format!("while {stage} (1 attempt)"))
            .took_between(secs(1.0), secs(1.0) + DEADLINE_SLACK);
    }

    // Hosts are tried at once: a blackholed first host does not hide a ready second one
    // (tried one after the other, this would take the 30 s attempt timeout).
    let server = PgServer::start();
    let blackhole = Blackhole::new();
    let target = format!(
        "postgres://{APP_USER}:{APP_PASSWORD}@{},127.0.0.1:{}/{APP_DB}",
        blackhole.address(),
        server.port()
    );
    holdup()
        .args(["-w", &target, "-t", "60s", "--attempt-timeout", "30s"])
        .run()
        .code(0)
        .stderr_has("(1 attempt)")
        .took_between(Duration::ZERO, secs(20.0));
}

#[test]
fn tls_sslmodes_with_a_private_ca() {
    let ca = TestCa::new("holdup postgres CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("another CA").write_pem(other_dir.path());
    // TLS only: a plain connection has no pg_hba.conf line.
    let server = PgServer::builder()
        .tls(ca.issue(&["localhost", "127.0.0.1"]))
        .hba("hostssl all all 127.0.0.1/32 scram-sha-256")
        .start();
    let port = server.port();
    let target = |query: &str| uri(APP_PASSWORD, "localhost", port, APP_DB, query);
    let root = |mode: &str, file: &std::path::Path| {
        target(&format!("?sslmode={mode}&sslrootcert={}", file.display()))
    };

    for ready in [
        root("verify-full", &ca_file),
        root("verify-ca", &ca_file),
        target("?sslmode=require"),
        // allow tries plain first, and TLS when the server rejects that.
        target("?sslmode=allow"),
        // prefer (the default) takes TLS when the server offers it.
        target(""),
        uri(
            APP_PASSWORD,
            "127.0.0.1",
            port,
            APP_DB,
            &format!("?sslmode=verify-full&sslrootcert={}", ca_file.display()),
        ),
    ] {
        holdup().args(["-w", &ready]).run().code(0);
    }

    for (not_ready, reason) in [
        (
            root("verify-full", &other_ca),
            format!("TLS handshake with localhost:{port} failed: the server's certificate (CN=localhost, issued by CN=holdup postgres CA) is not signed by a CA in {} (which holds CN=another CA)", other_ca.display()),
        ),
        // As in libpq, require with a root certificate checks the chain like verify-ca.
        (
            root("require", &other_ca),
            format!("is not signed by a CA in {}", other_ca.display()),
        ),
        // ...and prefer, whose TLS then fails, tries again without it.
        (
            root("prefer", &other_ca),
            "(which holds CN=another CA); then without TLS: no pg_hba.conf entry".to_string(),
        ),
        (
            target("?sslmode=disable"),
            "no encryption (SQLSTATE 28000): the server wants TLS here, and this connection has none (use sslmode=require or stronger)".to_string(),
        ),
    ] {
        holdup()
            .args(["-w", &not_ready, "-t", "500ms"])
            .run()
            .code(1)
            .stderr_has(&reason);
    }

    // A certificate for another name: verify-ca accepts it, verify-full does not.
    let misnamed = PgServer::builder()
        .tls(ca.issue(&["db.example.test"]))
        .start();
    let port = misnamed.port();
    let misnamed_uri = |mode: &str| {
        uri(
            APP_PASSWORD,
            "localhost",
            port,
            APP_DB,
            &format!("?sslmode={mode}&sslrootcert={}", ca_file.display()),
        )
    };
    holdup()
        .args(["-w", &misnamed_uri("verify-ca")])
        .run()
        .code(0);
    holdup()
        .args(["-w", &misnamed_uri("verify-full"), "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("the server's certificate is for db.example.test, not for localhost");
}

/// sslrootcert may be the server's own self-signed certificate, as openssl makes it (a CA
/// certificate), as libpq allows; the built-in roots refuse it in words.
#[test]
fn a_self_signed_openssl_certificate_as_sslrootcert() {
    let dir = tempfile::tempdir().unwrap();
    let (issued, cert) = openssl_self_signed(dir.path());
    let server = PgServer::builder().tls(issued).start();
    let port = server.port();
    let with_root = |root: &str| {
        uri(
            APP_PASSWORD,
            "localhost",
            port,
            APP_DB,
            &format!("?sslmode=verify-full&sslrootcert={root}"),
        )
    };
    holdup()
        .args(["-w", &with_root(&cert.to_string_lossy())])
        .run()
        .code(0);
    holdup()
        .args(["-w", &with_root("system"), "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with localhost:{port} failed: the server's certificate (CN=localhost) \
             is self-signed; to trust it, give a file that holds it with sslrootcert=FILE"
        ));
}

#[test]
fn bad_postgres_targets_are_usage_errors() {
    for (target, expected) in [
        ("postgres://db/app", "missing user name"),
        ("postgres://u@db/app?sslmode=verify-full", "needs the CA"),
        (
            "postgres://u@db/app?bogus=1",
            "unknown query parameter 'bogus'",
        ),
        ("postgres://u:Pw-leak@db:x/app", "invalid port 'x'"),
        (
            "postgres://u@db/app#isready&fail-fast",
            "does nothing with 'isready'",
        ),
    ] {
        holdup()
            .args(["-w", target])
            .run()
            .code(2)
            .stderr_has(expected)
            .stderr_lacks("Pw-leak");
    }
}
