//! mysql:// and mariadb:// targets against a real MariaDB server (Debian's; Debian has no
//! MySQL 8, so caching_sha2_password is checked against known vectors in the unit tests
//! instead): one that starts late, one still running its init scripts, refused logins and
//! missing databases (retried, or fail-fast), ping, the user's query, passwords from the
//! environment and a file, and every ssl-mode with a test CA.

use std::time::Duration;

use crate::support::mariadb::{
    self, ADMIN_USER, APP_USER, DB, ED25519_USER, MariaServer, PASSWORD,
};
use crate::support::postgres::free_port;
use crate::support::tls::TestCa;
use crate::support::{SOON, holdup};

fn url(user: &str, password: &str, port: u16, db: &str) -> String {
    format!("mysql://{user}:{password}@127.0.0.1:{port}/{db}")
}

#[test]
fn ready_when_the_server_starts_after_holdup() {
    let port = free_port();
    let mut running = holdup()
        .args([
            "-w",
            &url(APP_USER, PASSWORD, port, DB),
            "-t",
            "60s",
            "--log-format",
            "json",
        ])
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
    let _server = MariaServer::builder().port(port).start_no_wait();
    let finished = running.finish();
    finished
        .code(0)
        .stderr_has(&format!(
            "mysql://{APP_USER}@127.0.0.1:{port}/{DB} ready after"
        ))
        .stderr_lacks(PASSWORD);
    assert_eq!(finished.events(), ["waiting", "ready"]);
}

#[test]
fn a_server_running_its_init_scripts_is_not_ready_until_they_are_done() {
    let port = free_port();
    let target = url("late", PASSWORD, port, DB);
    let mut running = holdup()
        .args(["-w", &target, "-t", "60s", "--attempt-timeout", "1s"])
        .spawn();
    running.wait_for_line("connection refused");
    // The init script waits on a FIFO the test opens, then creates the user: meanwhile the
    // server accepts connections and greets no one.
    let server = MariaServer::builder()
        .port(port)
        .init_sql(&format!(
            "CREATE TABLE {DB}.gate (x INT);\n\
             LOAD DATA INFILE '{{dir}}/gate' INTO TABLE {DB}.gate;\n\
             CREATE USER 'late'@'%' IDENTIFIED BY '{PASSWORD}';\n\
             GRANT ALL ON {DB}.* TO 'late'@'%';\n"
        ))
        .fifo("gate")
        .start_no_wait();
    running.wait_for_line(&format!(
        "timed out after 1.00s while waiting for the greeting of 127.0.0.1:{port}"
    ));
    running.assert_still_running();
    std::fs::write(server.dir().join("gate"), "1\n").unwrap();
    running.finish_within(SOON).code(0);
}

#[test]
fn a_refused_login_is_retried_or_fails_fast_and_is_never_shown() {
    let server = mariadb::shared();
    let wrong = "Wrong-77a0b3";
    let target = url(APP_USER, wrong, server.port, DB);
    let denied = format!(
        "Access denied for user '{APP_USER}'@'127.0.0.1' (using password: YES) (error 1045, SQLSTATE 28000)"
    );
    holdup()
        .args(["-w", &target, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "mysql://{APP_USER}@127.0.0.1:{}/{DB} not ready after 1.00s: {denied}",
            server.port
        ))
        .stderr_lacks(wrong);
    for fragment in ["#fail-fast", "#fail-fast=auth"] {
        holdup()
            .args(["-w", &format!("{target}{fragment}"), "-t", "30s"])
            .run()
            .code(3)
            .stderr_has(&denied)
            .stderr_has("waiting cannot fix this")
            .stderr_lacks(wrong)
            .took_between(Duration::ZERO, SOON);
    }
    holdup()
        .args(["-w", &format!("{target}#fail-fast=database"), "-t", "500ms"])
        .run()
        .code(1);
    // MariaDB's ed25519 accounts, reached through an auth switch.
    holdup()
        .args([
            "-w",
            &format!("{}#fail-fast", url(ED25519_USER, PASSWORD, server.port, DB)),
        ])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &format!("{}#fail-fast", url(ED25519_USER, wrong, server.port, DB)),
        ])
        .run()
        .code(3)
        .stderr_has(&format!("Access denied for user '{ED25519_USER}'"));
}

#[test]
fn a_missing_database_is_retried_or_fails_fast() {
    let server = mariadb::shared();
    // A database the user may not see is 1044; only a user who could see it gets 1049.
    let hidden = url(APP_USER, PASSWORD, server.port, "nope");
    let missing = url(ADMIN_USER, PASSWORD, server.port, "nope");
    holdup()
        .args(["-w", &hidden, "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "Access denied for user '{APP_USER}'@'%' to database 'nope' (error 1044, SQLSTATE 42000)"
        ));
    holdup()
        .args(["-w", &missing, "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("Unknown database 'nope' (error 1049, SQLSTATE 42000)");
    for target in [&hidden, &missing] {
        holdup()
            .args(["-w", &format!("{target}#fail-fast=database"), "-t", "30s"])
            .run()
            .code(3)
            .stderr_has("'nope'")
            .took_between(Duration::ZERO, SOON);
    }
    // Created while holdup waits: ready.
    let running = holdup()
        .args([
            "-w",
            &url(ADMIN_USER, PASSWORD, server.port, "later"),
            "-t",
            "30s",
        ])
        .spawn();
    running.wait_for_line("Unknown database 'later'");
    server.sql("CREATE DATABASE later");
    running.finish_within(SOON).code(0);
}

#[test]
fn ping_needs_no_password() {
    let server = mariadb::shared();
    for target in [
        format!("mysql://127.0.0.1:{}", server.port),
        format!("mariadb://{APP_USER}@localhost:{}/{DB}", server.port),
        format!("{}#ping", url(APP_USER, "Wrong-1", server.port, DB)),
    ] {
        holdup()
            .args(["-w", &target, "-v"])
            .run()
            .code(0)
            .stderr_has("MariaDB")
            .stderr_lacks("Wrong-1");
    }
    let closed = free_port();
    holdup()
        .args(["-w", &format!("mysql://127.0.0.1:{closed}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has("connection refused");
}

#[test]
fn the_query_and_passwords_from_the_environment_or_a_file() {
    let server = mariadb::shared();
    server.sql(&format!("CREATE TABLE {DB}.migrations (version INT)"));
    let query = "#query=SELECT%20COUNT(*)%20%3E%200%20FROM%20migrations";
    let running = holdup()
        .args([
            "-w",
            &format!("{}{query}", url(APP_USER, PASSWORD, server.port, DB)),
            "-t",
            "30s",
        ])
        .spawn();
    running.wait_for_line("the query returned 0");
    server.sql(&format!("INSERT INTO {DB}.migrations VALUES (42)"));
    running.finish_within(SOON).code(0);

    let without_password = format!("mysql://{APP_USER}@127.0.0.1:{}/{DB}", server.port);
    holdup()
        .args(["-w", &format!("{without_password}#query=SELECT%20nope")])
        .env("MYSQL_PWD", PASSWORD)
        .args(["-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("Unknown column 'nope'")
        .stderr_lacks(PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    holdup()
        .args([
            "-w",
            &format!(
                "{without_password}#password-file={}&fail-fast",
                file.display()
            ),
        ])
        .run()
        .code(0)
        .stderr_lacks(PASSWORD);
}

#[test]
fn ssl_modes_with_a_test_ca() {
    let server = mariadb::shared();
    let base = url(APP_USER, PASSWORD, server.port, DB);
    let ca = server.ca_file.display().to_string();
    let other = TestCa::new("another CA");
    let dir = tempfile::tempdir().unwrap();
    let other_file = other.write_pem(dir.path()).display().to_string();
    for params in [
        String::new(),
        "?ssl-mode=DISABLED".to_string(),
        "?ssl-mode=REQUIRED".to_string(),
        format!("?ssl-ca={ca}"),
        format!("?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ] {
        holdup()
            .args(["-w", &format!("{base}{params}#fail-fast")])
            .run()
            .code(0);
    }
    holdup()
        .args([
            "-w",
            &format!("{base}?ssl-mode=VERIFY_CA&ssl-ca={other_file}"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with 127.0.0.1:{} failed: the server's certificate (CN=localhost, \
             issued by CN=holdup mariadb test CA) is not signed by a CA in {other_file} (which \
             holds CN=another CA)",
            server.port
        ));
    // VERIFY_IDENTITY without ssl-ca checks against the public roots, and says how to give
    // the CA in this kind's own words.
    holdup()
        .args([
            "-w",
            &format!("{base}?ssl-mode=VERIFY_IDENTITY"),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(
            "is not signed by a CA of the public roots built into holdup; give the CA that \
             signed it with ssl-ca=FILE",
        );
    // A server without a certificate.
    let plain = MariaServer::builder().start();
    holdup()
        .args([
            "-w",
            &format!(
                "{}?ssl-mode=REQUIRED",
                url(APP_USER, PASSWORD, plain.port(), DB)
            ),
            "-t",
            "500ms",
        ])
        .run()
        .code(1)
        .stderr_has(
            "does not offer TLS (it has no certificate), and ssl-mode=REQUIRED requires it",
        );
}
