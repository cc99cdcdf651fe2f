//! `--serve`: a small HTTP/1.1 server for a kubelet's probes and Prometheus' scrapes, fed
//! from the [`Watch`] of the targets. `/readyz` says whether they are ready, `/livez`
//! that holdup is alive, `/metrics` what the attempts found.
//!
//! Each request is answered on its own connection and the connection closed: the kubelet
//! and Prometheus ask a few times a minute, so HTTP keep-alive, chunking or HTTP/2 would be
//! code without a use (and a web framework, hundreds of kilobytes in the static binary).

mod metrics;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, anyhow};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};
use tracing::debug;

use crate::cli::Listen;
use crate::keep::Watch;
use crate::probe::Target;
use crate::words::io_error_words;

/// The longest request head read: the kubelet's and Prometheus' are a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request and read the answer: a slow or stuck
/// one must not hold a connection open for ever.
const CLIENT_TIME: Duration = Duration::from_secs(10);

/// Listens on `listen`. `:PORT` is every address, IPv6 and IPv4, or IPv4 alone where the
/// host has no IPv6 (some clusters turn it off in pods).
pub async fn bind(listen: &Listen) -> Result<TcpListener> {
    let bound = match *listen {
        Listen::Address(address) => TcpListener::bind(address).await,
        Listen::AnyAddress(port) => match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
            Err(error) if error.kind() != io::ErrorKind::AddrInUse => {
                TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await
            }
            bound => bound,
        },
    };
    bound.map_err(|error| {
        let words = match error.kind() {
            io::ErrorKind::AddrInUse => {
                "address already in use (another process listens there)".to_string()
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)".to_string()
            }
            _ => io_error_words(&error),
        };
        anyhow!("cannot serve on {listen}: {words}")
    })
}

/// Answers requests on `listener` for ever.
pub async fn serve(listener: TcpListener, targets: &[Target], watch: &Watch) {
    let mut answering = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => answering.push(answer(stream, peer, targets, watch)),
                Err(error) => {
                    // Out of file descriptors, most likely: let connections close first
                    // instead of spinning on the same error.
                    debug!(event = "accept", error = %io_error_words(&error), "cannot accept a connection: {}", io_error_words(&error));
                    sleep(Duration::from_millis(100)).await;
                }
            },
            Some(()) = answering.next(), if !answering.is_empty() => {}
        }
    }
}

async fn answer(mut stream: TcpStream, peer: SocketAddr, targets: &[Target], watch: &Watch) {
    let exchange = async {
        let head = read_head(&mut stream).await?;
        let response = respond(&head, targets, watch);
        stream.write_all(&response).await?;
        stream.shutdown().await
    };
    match timeout(CLIENT_TIME, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            debug!(event = "request", peer = %peer, "request from {peer} failed: {}", io_error_words(&error))
        }
        Err(_) => debug!(event = "request", peer = %peer, "request from {peer} took too long"),
    }
}

/// The request line and headers, up to the blank line (or what came before the client
/// stopped sending, or [`MAX_HEAD`] bytes).
async fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(head)
}

/// The whole response to the request whose head is `head`.
fn respond(head: &[u8], targets: &[Target], watch: &Watch) -> Vec<u8> {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return response(400, "text/plain", "bad request\n".into(), false);
    };
    if !version.starts_with("HTTP/1.") {
        return response(400, "text/plain", "expected HTTP/1.x\n".into(), false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return response(405, "text/plain", "only GET and HEAD\n".into(), false),
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let verbose = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("verbose"));
    let (status, content_type, body) = match path {
        "/readyz" => {
            let (ready, body) = readyz(targets, watch, verbose);
            (if ready { 200 } else { 503 }, "text/plain", body)
        }
        "/livez" => (200, "text/plain", "ok\n".to_string()),
        "/metrics" => (
            200,
            "text/plain; version=0.0.4",
            metrics::render(targets, watch),
        ),
        _ => (
            404,
            "text/plain",
            "not found (holdup serves /readyz, /livez and /metrics)\n".to_string(),
        ),
    };
    response(status, content_type, body, head_only)
}

/// Whether enough targets are ready (all, or `--min-ready N`), and the body of `/readyz`:
/// one line per target not ready with its reason, then `ok` if enough are; with `verbose`,
/// every target in the form of Kubernetes' own `/readyz?verbose` (`[+]name ok`,
/// `[-]name failed: reason`), how many are ready of how many needed when not all are
/// needed, then the verdict.
fn readyz(targets: &[Target], watch: &Watch, verbose: bool) -> (bool, String) {
    let ready = watch.enough_ready();
    let mut body = String::new();
    for (index, target) in targets.iter().enumerate() {
        let state = watch.state(index);
        match (state.ready, verbose) {
            (true, true) => body.push_str(&format!("[+]{target} ok\n")),
            (false, true) => body.push_str(&format!("[-]{target} failed: {}\n", state.reason())),
            (false, false) => body.push_str(&format!("{target} not ready: {}\n", state.reason())),
            (true, false) => {}
        }
    }
    if verbose && watch.needed() < targets.len() {
        // With --min-ready or --any, a failed line above does not fail the whole: say why.
        body.push_str(&format!(
            "{} of {} targets ready, {} needed\n",
            watch.ready_count(),
            targets.len(),
            watch.needed()
        ));
    }
    match (ready, verbose) {
        (true, false) => body.push_str("ok\n"),
        (true, true) => body.push_str("readyz check passed\n"),
        (false, true) => body.push_str("readyz check failed\n"),
        (false, false) => {}
    }
    (ready, body)
}

fn response(status: u16, content_type: &str, body: String, head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}; charset=utf-8\r\n\
         Content-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<Target> {
        ["tcp://db:5432", "postgres://app:secret@db/app"]
            .iter()
            .map(|text| Target::parse(text).unwrap())
            .collect()
    }

    fn text(response: Vec<u8>) -> String {
        String::from_utf8(response).unwrap()
    }

    #[test]
    fn requests_and_their_answers() {
        let targets = targets();
        let watch = Watch::new(targets.len(), targets.len());
        let cases = [
            (
                "GET /livez HTTP/1.1\r\n\r\n",
                "HTTP/1.1 200 OK\r\n",
                "\r\n\r\nok\n",
            ),
            (
                "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
                "HTTP/1.1 503 Service Unavailable\r\n",
                "tcp://db:5432 not ready: not tried yet\n",
            ),
            (
                "GET /readyz?verbose HTTP/1.1\r\n\r\n",
                "HTTP/1.1 503 ",
                "[-]postgres://app@db/app failed: not tried yet\nreadyz check failed\n",
            ),
            (
                "GET /metrics HTTP/1.0\r\n\r\n",
                "HTTP/1.1 200 OK\r\n",
                "holdup_target_ready{",
            ),
            (
                "GET /nothing HTTP/1.1\r\n\r\n",
                "HTTP/1.1 404 ",
                "/readyz, /livez and /metrics",
            ),
            (
                "POST /readyz HTTP/1.1\r\n\r\n",
                "HTTP/1.1 405 ",
                "Allow: GET, HEAD\r\n",
            ),
            ("garbage\r\n\r\n", "HTTP/1.1 400 ", "bad request"),
            ("GET / SPDY/3\r\n\r\n", "HTTP/1.1 400 ", "expected HTTP/1.x"),
        ];
        for (request, start, contains) in cases {
            let answer = text(respond(request.as_bytes(), &targets, &watch));
            assert!(answer.starts_with(start), "{request:?}: {answer}");
            assert!(answer.contains(contains), "{request:?}: {answer}");
            assert!(!answer.contains("secret"), "{request:?}: {answer}");
        }
        let head = text(respond(b"HEAD /livez HTTP/1.1\r\n\r\n", &targets, &watch));
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 3\r\n"));
    }

    #[test]
    fn listen_addresses_name_themselves_when_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = taken.local_addr().unwrap();
            let error = bind(&Listen::Address(address)).await.unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "cannot serve on {address}: address already in use (another process listens there)"
                )
            );
        });
    }
}
