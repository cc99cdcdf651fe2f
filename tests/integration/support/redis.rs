//! Real Redis servers for tests (Debian's redis-server): each in its own temp dir on a free
//! loopback port, as the `redis` user when the tests run as root, ready when it says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::daemon::{Daemon, give_to, run_as_user};
use super::postgres::free_port;
use super::tls::Issued;

/// Distinctive, so that a test can tell it never reached holdup's output.
pub const PASSWORD: &str = "Redis-pw-7f3a91";
/// An ACL user beside `default`.
pub const ACL_USER: &str = "app";
pub const ACL_PASSWORD: &str = "Acl-pw-c2d8e4";

#[derive(Default)]
pub struct Builder {
    port: Option<u16>,
    args: Vec<String>,
    tls: Option<(Issued, String)>,
    data: Option<PathBuf>,
    wait: bool,
}

impl Builder {
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A configuration directive: `arg("requirepass", &["pw"])`.
    pub fn arg(mut self, name: &str, values: &[&str]) -> Self {
        self.args.push(format!("--{name}"));
        self.args
            .extend(values.iter().map(|value| value.to_string()));
        self
    }

    /// requirepass PASSWORD, and an ACL user ACL_USER with ACL_PASSWORD.
    pub fn passwords(self) -> Self {
        self.arg("requirepass", &[PASSWORD]).arg(
            "user",
            &[
                ACL_USER,
                "on",
                &format!(">{ACL_PASSWORD}"),
                "~*",
                "&*",
                "+@all",
            ],
        )
    }

    /// A replica of the master on `port` (which may not be up yet).
    pub fn replica_of(self, port: u16) -> Self {
        self.arg("replicaof", &["127.0.0.1", &port.to_string()])
    }

    /// TLS only, on the port, with this certificate; `ca_pem` is the CA's PEM.
    pub fn tls(mut self, issued: Issued, ca_pem: String) -> Self {
        self.tls = Some((issued, ca_pem));
        self
    }

    /// Starts from the dump.rdb in `dir` (see [`RedisServer::save_dataset`]).
    pub fn data(mut self, dir: &Path) -> Self {
        self.data = Some(dir.to_path_buf());
        self
    }

    /// Starts the server and waits until it says it is ready.
    pub fn start(mut self) -> RedisServer {
        self.wait = true;
        self.launch()
    }

    /// Starts the server and returns at once: a test sequences on what holdup says.
    pub fn start_no_wait(self) -> RedisServer {
        self.launch()
    }

    fn launch(self) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("holdup-redis")
            .tempdir()
            .unwrap();
        if let Some(data) = &self.data {
            std::fs::copy(data.join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
        }
        let port = self.port.unwrap_or_else(free_port);
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--daemonize", "no", "--logfile", ""])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
            ])
            .arg("--dir")
            .arg(dir.path());
        match &self.tls {
            Some((issued, ca_pem)) => {
                std::fs::write(dir.path().join("server.crt"), &issued.certificate_pem).unwrap();
                std::fs::write(dir.path().join("server.key"), &issued.key_pem).unwrap();
                std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
                command
                    .args(["--port", "0", "--tls-port", &port.to_string()])
                    .args(["--tls-auth-clients", "no"])
                    .arg("--tls-cert-file")
                    .arg(dir.path().join("server.crt"))
                    .arg("--tls-key-file")
                    .arg(dir.path().join("server.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(dir.path().join("ca.crt"));
            }
            None => {
                command.args(["--port", &port.to_string()]);
            }
        }
        command.args(&self.args);
        give_to("redis", dir.path());
        let daemon = Daemon::spawn("redis-server", "redis", &mut command, libc::SIGTERM);
        if self.wait {
            daemon.wait_for_log("Ready to accept connections");
        }
        RedisServer { daemon, port, dir }
    }
}

/// A running redis-server, stopped when dropped.
pub struct RedisServer {
    daemon: Daemon,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs a command with redis-cli (on a server without TLS and without a password).
    pub fn cli(&self, args: &[&str]) -> String {
        run_as_user(
            "redis",
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(args),
        )
    }

    /// Fills the server with `keys` keys and saves them to dump.rdb in a directory of the
    /// test's own, for another server to load.
    pub fn save_dataset(&self, keys: u32, into: &Path) {
        self.cli(&["DEBUG", "POPULATE", &keys.to_string()]);
        self.cli(&["SAVE"]);
        std::fs::copy(self.dir.path().join("dump.rdb"), into.join("dump.rdb")).unwrap();
    }
}
