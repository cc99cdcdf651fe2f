//! Real Postgres servers for tests: a cluster made once with initdb (roles `postgres` and
//! `app`, database `app`), copied for each server, started on a free loopback port as the
//! unprivileged `postgres` user when the tests run as root, and stopped by PID on drop.
//! Readiness is read from the server's own log, never guessed with sleeps.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::tls::Issued;
use super::{first_line_with, send_signal, wait_until};

pub const APP_USER: &str = "app";
/// Distinctive, so that a test can tell it never reached holdup's output.
pub const APP_PASSWORD: &str = "Pw-5be2c0f1d7";
pub const APP_DB: &str = "app";

/// Longest a test server may take to start, promote or stop.
const SERVER_LIMIT: Duration = Duration::from_secs(60);

/// The directory of initdb, postgres and pg_ctl: the newest /usr/lib/postgresql/*/bin.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin).expect(
            "no Postgres server in /usr/lib/postgresql/*/bin: install the postgresql package (scripts/test does)",
        )
    })
}

/// As root, servers run as the `postgres` user: Postgres refuses to run as root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = c"postgres";
    // SAFETY: a valid C string; the result is read at once, before any other getpw* call
    // (tests only call this once, under the OnceLock below).
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root, the tests need the 'postgres' user to run the server (the postgresql package creates it)"
    );
    // SAFETY: checked non-null above.
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

fn owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(run_as)
}

fn as_owner(command: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = owner() {
        command.uid(uid).gid(gid);
    }
    command
}

fn give_to_owner(path: &Path) {
    if let Some((uid, gid)) = owner() {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {} failed", path.display());
    }
}

#[track_caller]
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stopped cluster to copy, made once and kept in Cargo's test scratch directory (its
/// name says what it holds, so a changed setup makes a new one).
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let version = bin_dir()
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kept =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("postgres-{version}-template-v1"));
        if !kept.exists() {
            let made = make_template();
            // Made aside and renamed, so a half-made template is never used.
            let partial = kept.with_extension(format!("partial-{}", std::process::id()));
            run(Command::new("cp").arg("-a").arg(made.path()).arg(&partial));
            if std::fs::rename(&partial, &kept).is_err() {
                // Another test run finished first; its template is as good.
                let _ = std::fs::remove_dir_all(&partial);
            }
        }
        kept
    })
}

/// initdb in a directory the server's user owns (/tmp, which every user can reach).
fn make_template() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("holdup-pg-template")
        .tempdir()
        .unwrap();
    give_to_owner(dir.path());
    let data = dir.path().join("data");
    let superuser_password = dir.path().join("pw");
    std::fs::write(&superuser_password, "postgres-pw\n").unwrap();
    give_to_owner(&superuser_password);
    run(as_owner(
        Command::new(bin_dir().join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", superuser_password.display())),
    ));
    std::fs::remove_file(&superuser_password).unwrap();
    // Single-user mode: roles and database without a running server or a client.
    let mut single = as_owner(
        Command::new(bin_dir().join("postgres"))
            .args(["--single", "-D"])
            .arg(&data)
            .args(["-c", "fsync=off", "postgres"]),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let sql = format!(
        "CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}';\nCREATE DATABASE {APP_DB} OWNER {APP_USER};\n"
    );
    single
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = single.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !said.contains("ERROR"),
        "setting up the template cluster failed: {said}"
    );
    dir
}

/// A loopback port that was free a moment ago (Postgres binds it itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a test server is set up.
#[derive(Default)]
pub struct Builder {
    port: Option<u16>,
    hba: Vec<String>,
    tls: Option<Issued>,
    standby: bool,
}

impl Builder {
    /// Listen on this port (from [`free_port`]) instead of a new one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A pg_hba.conf line; without any, TCP logins need a SCRAM password.
    pub fn hba(mut self, line: &str) -> Self {
        self.hba.push(line.to_string());
        self
    }

    /// ssl = on with this certificate.
    pub fn tls(mut self, issued: Issued) -> Self {
        self.tls = Some(issued);
        self
    }

    /// Start as a standby with hot_standby = off: every connection gets SQLSTATE 57P03
    /// until [`PgServer::promote`].
    pub fn standby(mut self) -> Self {
        self.standby = true;
        self
    }

    /// Starts the server and waits until it says it is ready (or, for a standby, that it
    /// has reached the point where it refuses connections).
    pub fn start(self) -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("holdup-pg")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        run(Command::new("cp")
            .arg("-a")
            .arg(template().join("data"))
            .arg(&data));
        let mut hba = vec!["local all all trust".to_string()];
        if self.hba.is_empty() {
            hba.push("host all all 127.0.0.1/32 scram-sha-256".into());
            hba.push("host all all ::1/128 scram-sha-256".into());
        } else {
            hba.extend(self.hba);
        }
        std::fs::write(data.join("pg_hba.conf"), hba.join("\n") + "\n").unwrap();
        let mut settings = vec![
            ("listen_addresses", "127.0.0.1".to_string()),
            ("unix_socket_directories", dir.path().display().to_string()),
            ("fsync", "off".into()),
            ("shared_buffers", "16MB".into()),
            ("max_connections", "20".into()),
            ("lc_messages", "C".into()),
        ];
        if let Some(issued) = &self.tls {
            std::fs::write(data.join("server.crt"), &issued.certificate_pem).unwrap();
            std::fs::write(data.join("server.key"), &issued.key_pem).unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            settings.push(("ssl", "on".into()));
            settings.push(("ssl_cert_file", "server.crt".into()));
            settings.push(("ssl_key_file", "server.key".into()));
        }
        if self.standby {
            std::fs::write(data.join("standby.signal"), "").unwrap();
            settings.push(("hot_standby", "off".into()));
        }
        give_to_owner(dir.path());
        let port = self.port.unwrap_or_else(free_port);
        let mut command = Command::new(bin_dir().join("postgres"));
        command.arg("-D").arg(&data).arg("-p").arg(port.to_string());
        for (name, value) in &settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let mut child = as_owner(&mut command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start postgres");
        let (lines_tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let collected = log.clone();
        let stderr = child.stderr.take().unwrap();
        // Always drained, so that the server never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push_str(&line);
                collected.lock().unwrap().push('\n');
                let _ = lines_tx.send(line);
            }
        });
        let server = PgServer {
            child,
            port,
            data,
            lines,
            log,
            _dir: dir,
        };
        if self.standby {
            server.wait_for_log("consistent recovery state reached");
        } else {
            server.wait_for_log("database system is ready to accept connections");
        }
        server
    }
}

/// A running Postgres server, stopped when dropped.
pub struct PgServer {
    child: Child,
    port: u16,
    data: PathBuf,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl PgServer {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn start() -> PgServer {
        Builder::default().start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Blocks until the server logs a line containing `needle`; returns when it did.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) -> Instant {
        if first_line_with(&self.lines, needle, Instant::now() + SERVER_LIMIT).is_none() {
            panic!(
                "postgres never logged {needle:?}; its log:\n{}",
                self.log.lock().unwrap()
            );
        }
        Instant::now()
    }

    /// Ends recovery on a standby and waits until it accepts sessions.
    pub fn promote(&self) {
        run(as_owner(
            Command::new(bin_dir().join("pg_ctl"))
                .args(["promote", "-w", "-D"])
                .arg(&self.data),
        ));
        self.wait_for_log("database system is ready to accept connections");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: Postgres' fast shutdown, which does not wait for clients.
        send_signal(self.child.id(), libc::SIGINT);
        if let Ok(Some(_)) = wait_until(&mut self.child, Instant::now() + SERVER_LIMIT) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
