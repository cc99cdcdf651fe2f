//! Real MariaDB servers for tests (Debian's mariadb-server): a data directory made once
//! with mariadb-install-db and the users and database below, copied for each server,
//! started with `--no-defaults` (nothing of /etc/mysql is read) on a free loopback port as
//! the `mysql` user when the tests run as root, and stopped by PID on drop. The tests that
//! need only a running server share one ([`shared`]), with TLS from a test CA.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::daemon::{self, Daemon, give_to, run_as_user};
use super::postgres::free_port;
use super::tls::TestCa;

/// Has every privilege on DB only.
pub const APP_USER: &str = "app";
/// Distinctive, so that a test can tell it never reached holdup's output.
pub const PASSWORD: &str = "Maria-pw-91c4e2";
/// Has every privilege on every database (so a missing one is 1049, not 1044).
pub const ADMIN_USER: &str = "admin";
/// Identified via MariaDB's ed25519 plugin.
pub const ED25519_USER: &str = "ed";
pub const DB: &str = "shop";

/// A stopped data directory to copy, made once and kept in Cargo's test scratch directory.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mariadb-template-v1");
        if !kept.exists() {
            let made = make_template();
            // Made aside and renamed, so a half-made template is never used.
            let partial = kept.with_extension(format!("partial-{}", std::process::id()));
            run_as_user(
                "root",
                Command::new("cp").arg("-a").arg(made.path()).arg(&partial),
            );
            if std::fs::rename(&partial, &kept).is_err() {
                let _ = std::fs::remove_dir_all(&partial);
            }
        }
        kept
    })
}

fn make_template() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("holdup-mariadb-template")
        .tempdir()
        .unwrap();
    give_to("mysql", dir.path());
    let data = dir.path().join("data");
    run_as_user(
        "mysql",
        Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg("--skip-name-resolve"),
    );
    // Bootstrap mode: users and database without a running server or a client.
    let sql = format!(
        "FLUSH PRIVILEGES;\n\
         INSTALL SONAME 'auth_ed25519';\n\
         CREATE DATABASE {DB};\n\
         CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{PASSWORD}';\n\
         GRANT ALL ON {DB}.* TO '{APP_USER}'@'%';\n\
         CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{PASSWORD}';\n\
         GRANT ALL ON *.* TO '{ADMIN_USER}'@'%';\n\
         CREATE USER '{ED25519_USER}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{PASSWORD}');\n\
         GRANT ALL ON {DB}.* TO '{ED25519_USER}'@'%';\n"
    );
    let sql_file = dir.path().join("setup.sql");
    std::fs::write(&sql_file, sql).unwrap();
    run_as_user(
        "mysql",
        Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--bootstrap")
            .arg(format!("--datadir={}", data.display()))
            .args(["--skip-networking", "--skip-name-resolve"])
            .stdin(Stdio::from(std::fs::File::open(&sql_file).unwrap())),
    );
    dir
}

#[derive(Default)]
pub struct Builder {
    port: Option<u16>,
    tls: Option<(String, String, String)>,
    init_sql: Option<String>,
    fifos: Vec<String>,
    wait: bool,
}

impl Builder {
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// TLS with a certificate for localhost and 127.0.0.1 from `ca`.
    pub fn tls(mut self, ca: &TestCa) -> Self {
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        self.tls = Some((issued.certificate_pem, issued.key_pem, ca.pem()));
        self
    }

    /// SQL the server runs at start (`--init-file`), as an image's init scripts do;
    /// `{dir}` stands for the server's directory.
    pub fn init_sql(mut self, sql: &str) -> Self {
        self.init_sql = Some(sql.to_string());
        self
    }

    /// A named pipe in the server's directory, for init SQL to wait on (`LOAD DATA
    /// INFILE` blocks until the test writes to it).
    pub fn fifo(mut self, name: &str) -> Self {
        self.fifos.push(name.to_string());
        self
    }

    /// Starts the server and waits until it says it is ready.
    pub fn start(mut self) -> MariaServer {
        self.wait = true;
        self.launch()
    }

    /// Starts the server and returns at once: a test sequences on what holdup says.
    pub fn start_no_wait(self) -> MariaServer {
        self.launch()
    }

    fn launch(self) -> MariaServer {
        let dir = tempfile::Builder::new()
            .prefix("holdup-mariadb")
            .tempdir()
            .unwrap();
        let path = dir.path();
        run_as_user(
            "root",
            Command::new("cp")
                .arg("-a")
                .arg(template().join("data"))
                .arg(path.join("data")),
        );
        let port = self.port.unwrap_or_else(free_port);
        let mut command = Command::new("mariadbd");
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", path.join("data").display()))
            .arg(format!("--socket={}", path.join("sock").display()))
            .arg(format!("--pid-file={}", path.join("pid").display()))
            .arg(format!("--secure-file-priv={}", path.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .args(["--innodb-buffer-pool-size=16M", "--lc-messages=en_US"]);
        if let Some((certificate, key, ca)) = &self.tls {
            std::fs::write(path.join("server.crt"), certificate).unwrap();
            std::fs::write(path.join("server.key"), key).unwrap();
            std::fs::write(path.join("ca.pem"), ca).unwrap();
            command
                .arg(format!("--ssl-cert={}", path.join("server.crt").display()))
                .arg(format!("--ssl-key={}", path.join("server.key").display()))
                .arg(format!("--ssl-ca={}", path.join("ca.pem").display()));
        }
        if let Some(sql) = &self.init_sql {
            let sql = sql.replace("{dir}", &path.display().to_string());
            std::fs::write(path.join("init.sql"), sql).unwrap();
            command.arg(format!("--init-file={}", path.join("init.sql").display()));
        }
        for name in &self.fifos {
            run_as_user("root", Command::new("mkfifo").arg(path.join(name)));
        }
        give_to("mysql", path);
        let daemon = Daemon::spawn("mariadbd", "mysql", &mut command, libc::SIGTERM);
        if self.wait {
            daemon.wait_for_log("ready for connections");
        }
        MariaServer {
            _daemon: daemon,
            port,
            dir,
        }
    }
}

/// A running MariaDB server, stopped when dropped.
pub struct MariaServer {
    _daemon: Daemon,
    port: u16,
    dir: tempfile::TempDir,
}

impl MariaServer {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Where the shared server listens, and the CA of its certificate.
#[derive(Clone)]
pub struct SharedInfo {
    pub port: u16,
    pub ca_file: PathBuf,
}

impl SharedInfo {
    /// Runs SQL as ADMIN_USER with the mariadb client.
    pub fn sql(&self, sql: &str) -> String {
        run_as_user(
            "root",
            Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "-h",
                    "127.0.0.1",
                    "-P",
                    &self.port.to_string(),
                ])
                .arg(format!("-u{ADMIN_USER}"))
                .arg(format!("-p{PASSWORD}"))
                .args(["-e", sql]),
        )
    }
}

/// The server shared by the tests of this process, with TLS on, started on first use.
pub fn shared() -> &'static SharedInfo {
    static SHARED: OnceLock<SharedInfo> = OnceLock::new();
    SHARED.get_or_init(|| {
        daemon::shared(|| {
            let ca = TestCa::new("holdup mariadb test CA");
            let server = MariaServer::builder().tls(&ca).start();
            let ca_file = ca.write_pem(server.dir());
            let info = SharedInfo {
                port: server.port(),
                ca_file,
            };
            (server, info)
        })
    })
}
