//! unix:// targets against sockets the tests make: ready once something listens, an HTTP
//! server on the socket judged by its status, and what is in the way said as such (no
//! socket yet, a stale one, not a socket at all, a permission denied).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::support::tls::serve_unix;
use crate::support::{NOBODY, SOON, assert_nobody_is_refused, holdup, holdup_as_nobody};

#[test]
fn a_socket_is_ready_once_a_server_listens_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let target = format!("unix://{}", path.display());
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        format!("{} does not exist", path.display()),
        "{waiting}"
    );
    // A socket file that nobody listens on, as a server that died leaves it.
    drop(UnixListener::bind(&path).unwrap());
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        format!(
            "{}: connection refused (no process listens on the socket)",
            path.display()
        ),
        "{waiting}"
    );
    running.assert_still_running();
    fs::remove_file(&path).unwrap();
    let _listener = UnixListener::bind(&path).unwrap();
    running.finish_within(SOON).code(0);
}

#[test]
fn http_over_the_socket_is_judged_like_an_http_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let status = Arc::new(AtomicU16::new(503));
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let (answer, seen) = (status.clone(), requests.clone());
    let _server = serve_unix(&path, move |request, _| {
        seen.lock().unwrap().push(format!(
            "{} {} host={:?}",
            request.method(),
            request.uri(),
            request.headers().get("host")
        ));
        Response::builder()
            .status(answer.load(Ordering::SeqCst))
            .body(Full::new(Bytes::from_static(b"OK")))
            .unwrap()
    });
    let target = format!("unix://{}#http=/_ping", path.display());
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"],
        format!(
            "HTTP 503 Service Unavailable (expected 200-399) from GET /_ping over {}",
            path.display()
        ),
        "{waiting}"
    );
    running.assert_still_running();
    status.store(200, Ordering::SeqCst);
    running.finish_within(SOON).code(0);
    assert_eq!(
        requests.lock().unwrap().last().unwrap(),
        "GET /_ping host=Some(\"localhost\")"
    );

    holdup()
        .args([
            &format!("unix://{}#http=/_ping&status=204", path.display()),
            "-t",
            "300ms",
        ])
        .run()
        .code(1)
        .stderr_has("HTTP 200 OK (expected 204) from GET /_ping over");
}

#[test]
fn what_is_not_a_socket_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.sock");
    fs::write(&file, "").unwrap();
    let cases = [
        (
            format!("unix://{}", file.display()),
            format!("{} is a regular file, not a socket", file.display()),
        ),
        (
            format!("unix://{}#http=/health", dir.path().display()),
            format!("{} is a directory, not a socket", dir.path().display()),
        ),
    ];
    for (target, reason) in cases {
        holdup()
            .args([&target, "-t", "300ms"])
            .run()
            .code(1)
            .stderr_has(&reason);
    }
}

/// Root may connect to any socket, so holdup runs as another user here.
#[test]
fn permission_denied_is_said_as_such() {
    let Some(as_nobody) = holdup_as_nobody("unix::permission_denied") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("docker.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
    assert_nobody_is_refused("-w", &path);
    as_nobody
        .args([&format!("unix://{}", path.display()), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "permission denied: uid {NOBODY} may not write to the socket {} (owner 0, group 0, mode 0660)",
            path.display()
        ));

    // A directory on the way that may not be searched.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let Some(as_nobody) = holdup_as_nobody("unix::permission_denied") else {
        return;
    };
    as_nobody
        .args([&format!("unix://{}#http=/_ping", path.display()), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "permission denied: {} may not be searched by uid {NOBODY} (owner 0, group 0, mode 0700)",
            dir.path().display()
        ));
}
