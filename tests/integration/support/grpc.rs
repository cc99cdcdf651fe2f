//! A real gRPC server with the standard health service: Python's grpcio and
//! grpcio-health-checking, run from `grpc_health_server.py` beside this file. The Python is
//! `TEST_PYTHON` (scripts/test makes a virtual environment with both packages and sets it),
//! else `python3` if it has them.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::need;

pub struct GrpcServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

/// How the server starts.
#[derive(Default)]
pub struct Setup<'a> {
    /// `(service, status)`: "" is the whole server; statuses as the protocol names them.
    pub statuses: &'a [(&'a str, &'a str)],
    /// No health service at all: every Check is UNIMPLEMENTED.
    pub without_health: bool,
    /// Serve TLS with this certificate and key (PEM files).
    pub tls: Option<(&'a Path, &'a Path)>,
}

/// The Python that runs the server, if there is one with both packages.
fn python() -> Result<String, String> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let found = Command::new(&python)
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        Ok(python)
    } else {
        Err(format!(
            "{python} cannot import grpc and grpc_health (run scripts/test, which installs \
             grpcio and grpcio-health-checking, or set TEST_PYTHON to a python that has them)"
        ))
    }
}

impl GrpcServer {
    /// Starts the server on a free loopback port; `None` (with a notice) when there is no
    /// Python with grpcio outside CI.
    #[track_caller]
    pub fn start(test: &str, setup: Setup) -> Option<GrpcServer> {
        let python = need(test, python())?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/support/grpc_health_server.py");
        let mut command = Command::new(python);
        // grpcio logs every refused handshake; the tests make those on purpose.
        command.arg(script).env("GRPC_VERBOSITY", "ERROR");
        if setup.without_health {
            command.arg("--no-health");
        }
        if let Some((certificate, key)) = setup.tls {
            command.arg("--tls").arg(certificate).arg(key);
        }
        for (service, status) in setup.statuses {
            command.arg(format!("{}={status}", service_arg(service)));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the gRPC server");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("the gRPC server said {line:?}, not its port"));
        Some(GrpcServer {
            child,
            stdin,
            stdout,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets the status of `service` ("" for the whole server); returns once it is in force.
    pub fn set(&mut self, service: &str, status: &str) {
        writeln!(self.stdin, "set {} {status}", service_arg(service)).unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert_eq!(
            answer.trim(),
            "ok",
            "the gRPC server did not take the change"
        );
    }
}

fn service_arg(service: &str) -> &str {
    if service.is_empty() { "-" } else { service }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
