//! http:// and https:// targets against a real HTTP server: not ready until the status
//! (and body) are right, a server that accepts and stalls, TLS with a test CA.

use crate::support::net::{HttpServer, Silent};
use crate::support::tls::{TestCa, openssl_self_signed, server_config_presenting};
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

#[test]
fn a_503_is_not_ready_until_it_turns_200() {
    let server = HttpServer::start(503, "starting");
    let target = server.url("/health");
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    // holdup has been answered 503, and waits on: only now does the server turn 200.
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503 Service Unavailable (expected 200-399)"),
        "{waiting}"
    );
    running.assert_still_running();
    server.set_status(200);
    let finished = running.finish_within(SOON);
    finished
        .code(0)
        .stderr_has(&format!("{target} ready after "));
    assert_eq!(finished.events(), ["waiting", "ready"]);
    let ready = finished.event("ready");
    assert!(ready["attempts"].as_u64().unwrap() >= 2, "{ready}");
    assert!(server.requests().len() >= 2);
}

#[test]
fn the_query_string_reaches_the_server_untouched_and_options_do_not() {
    let server = HttpServer::start(200, "ok");
    let target = format!(
        "{}#status=200&body=ok",
        server.url("/health?deep=1&check=db,cache&x=%2F")
    );
    holdup().args(["-w", &target]).run().code(0);
    assert_eq!(
        server.requests(),
        ["GET /health?deep=1&check=db,cache&x=%2F"]
    );
}

#[test]
fn status_and_body_options() {
    let server = HttpServer::start(204, "");
    holdup()
        .args(["-w", &format!("{}#status=204", server.url("/"))])
        .run()
        .code(0);
    // 204 is in the default 200-399, but not in an explicit 200.
    holdup()
        .args([
            "-w",
            &format!("{}#status=200", server.url("/")),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has("HTTP 204 No Content (expected 200)");

    server.set_status(200);
    server.set_body(r#"{"status":"starting"}"#);
    let target = format!("{}#body=%22status%22:%22up%22", server.url("/"));
    let running = holdup().args(["-w", &target, "-t", "30s"]).spawn();
    running.wait_for_line(r#"but the body does not contain "\"status\":\"up\"" (it starts "{\"status\":\"starting\"}")"#);
    server.set_body(r#"{"status":"up"}"#);
    running.finish().code(0);
}

#[test]
fn method_and_headers_are_sent() {
    let server = HttpServer::start(200, "");
    holdup()
        .args([
            "-w",
            &format!(
                "{}#method=HEAD&header=X-Probe:%20holdup",
                server.url("/ping")
            ),
        ])
        .run()
        .code(0);
    assert_eq!(server.requests(), ["HEAD /ping"]);
}

#[test]
fn redirects_are_judged_not_followed() {
    let server = HttpServer::start(302, "");
    holdup().args(["-w", &server.url("/")]).run().code(0);
    assert_eq!(server.requests().len(), 1);
    holdup()
        .args([
            "-w",
            &format!("{}#status=200-299", server.url("/")),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has("HTTP 302 Found (expected 200-299)");
}

#[test]
fn a_server_that_accepts_and_never_answers_cannot_hold_past_the_deadline() {
    let silent = Silent::start();
    let target = format!("http://{}/health", silent.address());
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins.
    let finished = holdup()
        .args(["-w", &target, "-t", "1500ms", "--attempt-timeout", "30s"])
        .run();
    finished
        .code(1)
        .stderr_has(&format!(
            "{target} not ready after 1.50s: timed out after 1.50s while waiting for a response from {} (1 attempt)",
            silent.address()
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    assert!(silent.accepted() >= 1);
}

#[test]
fn a_stalled_tls_handshake_cannot_hold_past_the_deadline() {
    let silent = Silent::start();
    let target = format!("https://{}/health", silent.address());
    holdup()
        .args(["-w", &target, "-t", "1500ms", "--attempt-timeout", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "timed out after 500ms while connecting to {}",
            silent.address()
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
}

#[test]
fn https_with_a_private_ca() {
    let ca = TestCa::new("holdup test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let server = HttpServer::start_with_tls(
        200,
        "ok",
        Some(ca.server_config(&["localhost", "127.0.0.1"])),
    );
    let port = server.address().port();

    let trusted = format!("https://localhost:{port}/health#ca={}", ca_file.display());
    holdup().args(["-w", &trusted]).run().code(0);
    let by_ip = format!("https://127.0.0.1:{port}/health#ca={}", ca_file.display());
    holdup().args(["-w", &by_ip]).run().code(0);

    // The built-in public roots do not know the test CA.
    holdup()
        .args([
            "-w",
            &format!("https://localhost:{port}/health"),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with localhost:{port} failed: the server's certificate (CN=localhost, \
             issued by CN=holdup test CA) is not signed by a CA of the public roots built into \
             holdup; give the CA that signed it with #ca=FILE"
        ));

    // Another CA's file is no better.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new("another CA").write_pem(other_dir.path());
    holdup()
        .args([
            "-w",
            &format!("https://localhost:{port}/health#ca={}", other.display()),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has(&format!(
            "is not signed by a CA in {} (which holds CN=another CA)",
            other.display()
        ));

    // A certificate for another name fails on the name...
    let misnamed = HttpServer::start_with_tls(200, "ok", Some(ca.server_config(&["db.internal"])));
    let port = misnamed.address().port();
    holdup()
        .args([
            "-w",
            &format!("https://localhost:{port}/health#ca={}", ca_file.display()),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has("the server's certificate is for db.internal, not for localhost");
    // ...unless verification is switched off.
    holdup()
        .args(["-w", &format!("https://localhost:{port}/health#insecure")])
        .run()
        .code(0);
}

/// The self-signed certificate `openssl req -x509` makes is a CA certificate; given as the
/// CA file, it is trusted as the server's own, as curl --cacert trusts it. Its name is
/// still checked, and without it the failure says what the certificate is.
#[test]
fn a_self_signed_openssl_certificate_given_as_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (issued, cert) = openssl_self_signed(dir.path());
    let server =
        HttpServer::start_with_tls(200, "ok", Some(server_config_presenting(&issued, None)));
    let port = server.address().port();
    holdup()
        .args([
            "-w",
            &format!("https://localhost:{port}/health#ca={}", cert.display()),
        ])
        .run()
        .code(0);

    let refused = |target: String| holdup().args(["-w", &target, "-t", "300ms"]).run();
    refused(format!("https://localhost:{port}/health"))
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with localhost:{port} failed: the server's certificate (CN=localhost) \
             is self-signed; to trust it, give a file that holds it with #ca=FILE"
        ))
        .stderr_lacks("CaUsedAsEndEntity");
    refused(format!(
        "https://127.0.0.1:{port}/health#ca={}",
        cert.display()
    ))
    .code(1)
    .stderr_has("the server's certificate is for localhost, not for 127.0.0.1");
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new("another CA").write_pem(other_dir.path());
    refused(format!(
        "https://localhost:{port}/health#ca={}",
        other.display()
    ))
    .code(1)
    .stderr_has(&format!(
        "the server's certificate (CN=localhost) is self-signed, and is not one of the \
             certificates in {} (which holds CN=another CA)",
        other.display()
    ));
}

#[test]
fn an_expired_certificate_says_when_it_expired() {
    let ca = TestCa::new("holdup test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    for (issued, expected) in [
        (
            ca.issue_valid(&["localhost"], 2001, 2002),
            "the server's certificate (CN=localhost) expired at 2002-01-01T00:00:00Z (it is now ",
        ),
        (
            ca.issue_valid(&["localhost"], 2190, 2200),
            "the server's certificate (CN=localhost) is not valid before 2190-01-01T00:00:00Z",
        ),
    ] {
        let server =
            HttpServer::start_with_tls(200, "ok", Some(server_config_presenting(&issued, None)));
        let target = format!(
            "https://localhost:{}/#ca={}",
            server.address().port(),
            ca_file.display()
        );
        holdup()
            .args(["-w", &target, "-t", "300ms"])
            .run()
            .code(1)
            .stderr_has(expected);
    }
}
