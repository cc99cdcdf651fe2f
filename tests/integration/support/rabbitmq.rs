//! Real RabbitMQ brokers for tests (Debian's rabbitmq-server): each with its own node name,
//! ports, data directory and epmd, no plugins, run as the `rabbitmq` user when the tests
//! run as root. A broker boots in 4 to 20 s, so one is shared by the tests that only need
//! a running broker ([`shared`]); a test that starts one late has its own.
//!
//! Users, vhosts and permissions come from a definitions file imported at boot: user
//! [`USER`] on the vhosts `/` and [`VHOST`].

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;

use super::daemon::{self, Daemon, give_to, run_as_user};
use super::postgres::free_port;
use super::tls::TestCa;

pub const USER: &str = "app";
/// Distinctive, so that a test can tell it never reached holdup's output.
pub const PASSWORD: &str = "Rabbit-pw-3b7e0c";
pub const VHOST: &str = "shop";

/// A running broker, stopped (and its epmd) when dropped.
pub struct Broker {
    // Dropped in this order: the broker, then its epmd, then its directory.
    pub daemon: Daemon,
    _epmd: Daemon,
    pub info: BrokerInfo,
    _dir: tempfile::TempDir,
}

/// Where a broker listens, and what rabbitmqctl needs to reach it.
#[derive(Clone)]
pub struct BrokerInfo {
    pub port: u16,
    pub tls_port: u16,
    /// The CA the TLS listener's certificate is from, as a PEM file.
    pub ca_file: PathBuf,
    env: Vec<(String, String)>,
}

impl BrokerInfo {
    /// Runs rabbitmqctl against this broker.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut command = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        command.args(args).env_clear();
        for (name, value) in &self.env {
            command.env(name, value);
        }
        run_as_user("rabbitmq", &mut command)
    }
}

/// The broker shared by the tests of this process, booted on first use.
pub fn shared() -> &'static BrokerInfo {
    static SHARED: OnceLock<BrokerInfo> = OnceLock::new();
    SHARED.get_or_init(|| {
        daemon::shared(|| {
            let broker = Broker::start(free_port(), true);
            let info = broker.info.clone();
            (broker, info)
        })
    })
}

impl Broker {
    /// Starts a broker on `port`, and waits until it has booted if `wait`.
    pub fn start(port: u16, wait: bool) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("holdup-rabbitmq")
            .tempdir()
            .unwrap();
        let path = dir.path();
        let tls_port = free_port();
        let ca = TestCa::new("holdup rabbitmq test CA");
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        let ca_file = ca.write_pem(path);
        std::fs::write(path.join("server.crt"), &issued.certificate_pem).unwrap();
        std::fs::write(path.join("server.key"), &issued.key_pem).unwrap();
        std::fs::write(path.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(path.join("definitions.json"), definitions()).unwrap();
        std::fs::write(
            path.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{port}\n\
                 listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {dir}/ca.pem\n\
                 ssl_options.certfile = {dir}/server.crt\n\
                 ssl_options.keyfile = {dir}/server.key\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n\
                 load_definitions = {dir}/definitions.json\n",
                dir = path.display()
            ),
        )
        .unwrap();
        let epmd_port = free_port();
        let node = format!("holdup-{port}@localhost");
        let env: Vec<(String, String)> = [
            ("PATH", "/usr/bin:/bin:/usr/sbin:/sbin".to_string()),
            ("HOME", path.display().to_string()),
            ("RABBITMQ_NODENAME", node),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_DIST_PORT", free_port().to_string()),
            ("ERL_EPMD_PORT", epmd_port.to_string()),
            (
                "RABBITMQ_CONFIG_FILE",
                path.join("rabbitmq").display().to_string(),
            ),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                path.join("enabled_plugins").display().to_string(),
            ),
            (
                "RABBITMQ_MNESIA_BASE",
                path.join("mnesia").display().to_string(),
            ),
            ("RABBITMQ_LOG_BASE", path.join("log").display().to_string()),
            ("RABBITMQ_PID_FILE", path.join("pid").display().to_string()),
            ("RABBITMQ_LOGS", "-".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        give_to("rabbitmq", path);
        let epmd = Daemon::spawn(
            "epmd",
            "rabbitmq",
            Command::new("epmd")
                .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
                .env_clear()
                .envs(env.iter().map(|(n, v)| (n, v))),
            libc::SIGTERM,
        );
        let daemon = Daemon::spawn(
            "rabbitmq-server",
            "rabbitmq",
            Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
                .env_clear()
                .envs(env.iter().map(|(n, v)| (n, v))),
            libc::SIGTERM,
        );
        if wait {
            daemon.wait_for_log("Server startup complete");
        }
        Broker {
            daemon,
            _epmd: epmd,
            info: BrokerInfo {
                port,
                tls_port,
                ca_file,
                env,
            },
            _dir: dir,
        }
    }
}

/// User USER (password PASSWORD, hashed as RabbitMQ stores it) with every permission on
/// `/` and VHOST.
fn definitions() -> String {
    let salt: [u8; 4] = rand_salt();
    let mut salted = salt.to_vec();
    salted.extend_from_slice(PASSWORD.as_bytes());
    let mut hash = salt.to_vec();
    hash.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &salted).as_ref());
    let hash = base64::engine::general_purpose::STANDARD.encode(hash);
    let permission = |vhost: &str| {
        format!(
            r#"{{"user":"{USER}","vhost":"{vhost}","configure":".*","write":".*","read":".*"}}"#
        )
    };
    format!(
        r#"{{"users":[{{"name":"{USER}","password_hash":"{hash}","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["administrator"]}}],"vhosts":[{{"name":"/"}},{{"name":"{VHOST}"}}],"permissions":[{},{}]}}"#,
        permission("/"),
        permission(VHOST)
    )
}

fn rand_salt() -> [u8; 4] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos.to_le_bytes()
}
