//! The shipped static binary in an empty root: a chroot holding nothing but /holdup (no
//! dynamic loader, no libc, no /dev, no /proc, no CA store), plus a CA file, /etc/hosts
//! or /etc/resolv.conf when a test puts one there. What must work there: tcp, http(s),
//! postgres, dns, exec, unix and file targets (real servers on loopback), retries (whose jitter needs random
//! numbers without /dev/urandom), built-in TLS roots and CA files, names from /etc/hosts
//! and through /etc/resolv.conf, and a reason when a name cannot be resolved for lack of
//! /etc/resolv.conf.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::support::dns::{DnsServer, a};
use crate::support::docker::static_binary;
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::postgres::{APP_DB, APP_PASSWORD, APP_USER, PgServer, free_port};
use crate::support::tls::TestCa;
use crate::support::{Holdup, Running, need};

/// A temporary root folder holding the static binary as /holdup.
struct EmptyRoot {
    dir: TempDir,
}

impl EmptyRoot {
    /// `None` (after a notice) when the static binary or chroot is not available here.
    fn new(test: &str) -> Option<EmptyRoot> {
        let binary = need(test, static_binary())?;
        need(test, can_chroot())?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&binary, dir.path().join("holdup")).unwrap();
        Some(EmptyRoot { dir })
    }

    /// Puts a file into the root, e.g. `/etc/hosts`.
    fn add(&self, path: &str, contents: &str) -> &Self {
        let inside = self.inside(path);
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(inside, contents).unwrap();
        self
    }

    fn inside(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    /// `chroot ROOT /holdup ARGS`.
    fn holdup(&self, args: &[&str]) -> Holdup {
        Holdup::command_line("chroot", &[&self.dir.path().to_string_lossy(), "/holdup"]).args(args)
    }

    /// Every path in the root, relative to it.
    fn listing(&self) -> Vec<String> {
        let mut found = Vec::new();
        list(self.dir.path(), self.dir.path(), &mut found);
        found.sort();
        found
    }
}

fn list(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push(
            path.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
        if path.is_dir() {
            list(root, &path, found);
        }
    }
}

/// chroot(2) needs root (CI runs as root).
fn can_chroot() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err("chroot needs root".to_string())
    }
}

#[test]
fn tcp_and_http_targets_wait_and_become_ready_in_an_empty_root() {
    let Some(root) = EmptyRoot::new("tcp_and_http_targets_wait_and_become_ready_in_an_empty_root")
    else {
        return;
    };
    assert_eq!(root.listing(), ["holdup"]);
    let closed = ClosedPort::new();
    let server = HttpServer::start(503, "starting");
    let tcp = format!("tcp://{}", closed.address());
    let http = server.url("/health");
    let running: Running = root
        .holdup(&["-w", &tcp, "-w", &http, "-t", "30s", "-v"])
        .spawn();
    // Both are retried (each retry draws random jitter) before they come up.
    running.wait_for_line("HTTP 503 Service Unavailable");
    running.wait_for_line("connection refused");
    let _listening = closed.open();
    server.set_status(200);
    running
        .finish()
        .code(0)
        .stderr_has(&format!("{tcp} ready after"))
        .stderr_has(&format!("{http} ready after"))
        .stderr_lacks("panicked");
    // Nothing was needed, and nothing was written.
    assert_eq!(root.listing(), ["holdup"]);
}

/// A command runs with no /dev/null to give it as stdin, and is waited for without /proc;
/// a socket and a file are looked at with nothing but the kernel.
#[test]
fn exec_unix_and_file_targets_in_an_empty_root() {
    let Some(root) = EmptyRoot::new("exec_unix_and_file_targets_in_an_empty_root") else {
        return;
    };
    std::fs::create_dir(root.inside("/run")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(root.inside("/run/app.sock")).unwrap();
    root.holdup(&[
        "exec:/holdup --version",
        "unix:///run/app.sock",
        "file:///holdup#type=file&nonempty",
    ])
    .run()
    .code(0)
    .stderr_lacks("panicked");
    root.holdup(&["exec:/holdup --no-such-flag", "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has("exited with status 2: ");
}

#[test]
fn the_empty_root_gives_reasons_exit_codes_and_execs_nothing_it_lacks() {
    let Some(root) =
        EmptyRoot::new("the_empty_root_gives_reasons_exit_codes_and_execs_nothing_it_lacks")
    else {
        return;
    };
    let closed = ClosedPort::new();
    let tcp = format!("tcp://{}", closed.address());
    root.holdup(&["-w", &tcp, "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "{tcp} not ready after 500ms: {}: connection refused",
            closed.address()
        ));
    // There is no /bin/sh to run: exit 127, as a shell would say.
    let _listening = closed.open();
    root.holdup(&["-w", &tcp, "--", "/bin/sh", "-c", "true"])
        .run()
        .code(127)
        .stderr_has("cannot run /bin/sh: no such file");
    // A program that is there is exec'd: holdup itself.
    let finished = root
        .holdup(&["-w", &tcp, "--", "/holdup", "--version"])
        .run();
    finished.code(0);
    assert!(
        finished.stdout.starts_with("holdup "),
        "stdout: {:?}",
        finished.stdout
    );
}

#[test]
fn https_uses_the_built_in_roots_or_a_ca_file_without_a_system_store() {
    let Some(root) =
        EmptyRoot::new("https_uses_the_built_in_roots_or_a_ca_file_without_a_system_store")
    else {
        return;
    };
    let ca = TestCa::new("holdup empty-root test CA");
    let server = HttpServer::start_with_tls(200, "ok", Some(ca.server_config(&["127.0.0.1"])));
    root.add("/ca.pem", &ca.pem());
    let url = format!("https://{}/health", server.address());
    root.holdup(&["-w", &format!("{url}#ca=/ca.pem"), "-t", "10s"])
        .run()
        .code(0)
        .stderr_has(&format!("{url} ready after"));
    // Without the CA file, the built-in public roots are used: the client is built (no
    // "no CA certificates" failure) and the handshake rejects the test CA's certificate.
    root.holdup(&["-w", &url, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has("issued by CN=holdup empty-root test CA) is not signed by a CA of the public roots built into holdup");
}

#[test]
fn names_come_from_etc_hosts_and_other_names_say_why_they_fail() {
    let Some(root) = EmptyRoot::new("names_come_from_etc_hosts_and_other_names_say_why_they_fail")
    else {
        return;
    };
    let closed = ClosedPort::new();
    let port = closed.port();
    let _listening = closed.open();
    root.add(
        "/etc/hosts",
        "127.0.0.1 localhost\n127.0.0.1 db.internal db\n",
    );
    let by_name = format!("tcp://db.internal:{port}");
    let server = HttpServer::start(200, "ok");
    let http = format!("http://db:{}/health", server.address().port());
    root.holdup(&["-w", &by_name, "-w", &http, "-t", "10s"])
        .run()
        .code(0)
        .stderr_has(&format!("{by_name} ready after"))
        .stderr_has(&format!("{http} ready after"));
    // No /etc/resolv.conf: a name that is not in /etc/hosts cannot be looked up, and the
    // reason says so.
    let elsewhere = format!("tcp://elsewhere.internal:{port}");
    root.holdup(&["-w", &elsewhere, "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has("cannot resolve elsewhere.internal")
        .stderr_has("cannot read /etc/resolv.conf");
}

#[test]
fn a_postgres_session_over_tls_by_a_name_from_etc_hosts_in_an_empty_root() {
    let Some(root) =
        EmptyRoot::new("a_postgres_session_over_tls_by_a_name_from_etc_hosts_in_an_empty_root")
    else {
        return;
    };
    let ca = TestCa::new("holdup empty-root postgres CA");
    root.add("/etc/hosts", "127.0.0.1 db.internal\n")
        .add("/ca.pem", &ca.pem());
    let port = free_port();
    let target = format!(
        "postgres://{APP_USER}:{APP_PASSWORD}@db.internal:{port}/{APP_DB}\
         ?sslmode=verify-full&sslrootcert=/ca.pem"
    );
    let running = root.holdup(&["-w", &target, "-t", "60s"]).spawn();
    // The server starts only once holdup has found it missing.
    running.wait_for_line("connection refused");
    let _server = PgServer::builder()
        .port(port)
        .tls(ca.issue(&["db.internal"]))
        .start();
    running
        .finish()
        .code(0)
        .stderr_has(&format!(
            "postgres://{APP_USER}@db.internal:{port}/{APP_DB}?sslmode=verify-full&sslrootcert=/ca.pem ready after"
        ))
        .stderr_lacks(APP_PASSWORD);
}

#[test]
fn dns_targets_and_names_through_resolv_conf_in_an_empty_root() {
    let Some(root) = EmptyRoot::new("dns_targets_and_names_through_resolv_conf_in_an_empty_root")
    else {
        return;
    };
    // resolv.conf has no port: the server gets port 53 of a loopback address of its own.
    let dns = on_port_53(|address| DnsServer::start_on(address, "internal."));
    let dns_ip = dns.address().ip();
    root.add(
        "/etc/resolv.conf",
        &format!("nameserver {dns_ip}\nsearch holdup-test.internal\noptions timeout:1\n"),
    );
    let port = ClosedPort::new();
    let tcp_port = port.port();
    let _listening = port.open();
    // Both names are missing at first and added while holdup waits.
    let running = root
        .holdup(&[
            "-w",
            &format!("tcp://db:{tcp_port}"),
            "-w",
            "dns://cache.holdup-test.internal#type=A&expect=127.0.0.2",
            "-t",
            "30s",
        ])
        .spawn();
    // One "waiting for" line from each target, in either order.
    running.wait_for_line("waiting for ");
    running.wait_for_line("waiting for ");
    dns.set("db.holdup-test", vec![a("127.0.0.1")]);
    dns.set("cache.holdup-test", vec![a("127.0.0.2")]);
    running
        .finish()
        .code(0)
        .stderr_has(&format!("tcp://db:{tcp_port} ready after"))
        .stderr_has("dns://cache.holdup-test.internal ready after");
}

/// Starts `server` on port 53 of a free 127.x.y.z (chroot already needs root, and so does
/// port 53).
fn on_port_53<S>(server: impl Fn(SocketAddr) -> io::Result<S>) -> S {
    let pid = std::process::id().to_le_bytes();
    let mut last_error = None;
    for attempt in 0..32u8 {
        let ip = Ipv4Addr::new(127, 53, pid[0] ^ attempt, pid[1].clamp(2, 254));
        match server(SocketAddr::new(IpAddr::V4(ip), 53)) {
            Ok(server) => return server,
            Err(error) => last_error = Some(error),
        }
    }
    panic!("no free 127.53.x.y:53 address: {last_error:?}");
}
