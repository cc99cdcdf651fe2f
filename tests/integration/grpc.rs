//! grpc:// and grpcs:// targets against a real gRPC server (Python's grpcio with the
//! standard health service): NOT_SERVING until it serves, services known and unknown, a
//! server without the health service, TLS with a test CA, and the name given by #authority.

use crate::support::grpc::{GrpcServer, Setup};
use crate::support::net::HttpServer;
use crate::support::tls::TestCa;
use crate::support::{SOON, holdup};

#[test]
fn not_serving_is_not_ready_until_it_serves() {
    let setup = Setup {
        statuses: &[("", "NOT_SERVING")],
        ..Setup::default()
    };
    let Some(mut server) = GrpcServer::start("grpc::not_serving", setup) else {
        return;
    };
    let target = format!("grpc://{}", server.address());
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    // holdup has been told NOT_SERVING and waits on: only now does the server serve.
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"], "the health service answers NOT_SERVING",
        "{waiting}"
    );
    running.assert_still_running();
    server.set("", "SERVING");
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(finished.events(), ["waiting", "ready"]);
    assert!(finished.event("ready")["attempts"].as_u64().unwrap() >= 2);
}

#[test]
fn a_service_is_asked_for_by_name_known_or_not() {
    let setup = Setup {
        statuses: &[("shop.Cart", "SERVING"), ("shop.Stock", "NOT_SERVING")],
        ..Setup::default()
    };
    let Some(mut server) = GrpcServer::start("grpc::services", setup) else {
        return;
    };
    let address = server.address();
    holdup()
        .arg(format!("grpc://{address}#service=shop.Cart"))
        .run()
        .code(0);
    holdup()
        .args([&format!("grpc://{address}#service=shop.Stock"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "grpc://{address} not ready after 300ms: the health service answers NOT_SERVING for service \"shop.Stock\""
        ));
    // A service the server does not know yet (NOT_FOUND) is waited for, like any other.
    let target = format!("grpc://{address}#service=shop.Orders");
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        "the health service does not know service \"shop.Orders\" (NOT_FOUND): check #service=",
        "{waiting}"
    );
    running.assert_still_running();
    server.set("shop.Orders", "SERVING");
    running.finish_within(SOON).code(0);
}

#[test]
fn a_server_without_the_health_service_says_so_and_the_way_out() {
    let setup = Setup {
        without_health: true,
        ..Setup::default()
    };
    let Some(server) = GrpcServer::start("grpc::without_health", setup) else {
        return;
    };
    let address = server.address();
    holdup()
        .args([&format!("grpc://{address}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "{address} has no gRPC health service (grpc.health.v1.Health/Check is UNIMPLEMENTED): \
             register it in the server, or wait for the port alone with tcp://{address}"
        ));
}

#[test]
fn grpcs_with_a_private_ca_and_the_name_given_by_authority() {
    let ca = TestCa::new("holdup test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    // The certificate names localhost only, as a server behind a name-based proxy has a
    // certificate for its name, not for the address it is reached at.
    let issued = ca.issue(&["localhost"]);
    let certificate = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&certificate, &issued.certificate_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let setup = Setup {
        statuses: &[("", "SERVING")],
        tls: Some((&certificate, &key)),
        ..Setup::default()
    };
    let Some(server) = GrpcServer::start("grpc::grpcs", setup) else {
        return;
    };
    let (address, port, ca) = (server.address(), server.port(), ca_file.display());

    holdup()
        .arg(format!("grpcs://localhost:{port}#ca={ca}"))
        .run()
        .code(0);
    holdup()
        .args([&format!("grpcs://{address}#ca={ca}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "TLS handshake with {address} failed: the server's certificate is for localhost, not for 127.0.0.1"
        ));
    holdup()
        .arg(format!("grpcs://{address}#ca={ca}&authority=localhost"))
        .run()
        .code(0);
    // Without #ca, the public roots do not know the test CA.
    holdup()
        .args([&format!("grpcs://localhost:{port}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has("is not signed by a CA of the public roots built into holdup; give the CA that signed it with #ca=FILE");
    holdup()
        .args([&format!("grpc://{address}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "{address}: connection closed by the server (is it a gRPC port? for TLS, use grpcs://)"
        ));
}

/// An HTTP/1 server hangs up on HTTP/2's preface (or answers it with an HTTP/1 error).
#[test]
fn a_port_that_is_not_grpc_says_so() {
    let server = HttpServer::start(200, "ok");
    let address = server.address();
    holdup()
        .args([&format!("grpc://{address}"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "grpc://{address} not ready after 300ms: {address}: "
        ))
        .stderr_has("(is it a gRPC port? for TLS, use grpcs://)");
}
