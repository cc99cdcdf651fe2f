//! `postgres://…` and `postgresql://…` (libpq connection URIs): ready when the server takes a
//! real session (startup, authentication, `SELECT 1` or the user's query), or, with
//! `#isready`, when it answers the startup packet and is not starting up (pg_isready).
//!
//! The URI is parsed here rather than by the `url` crate because libpq allows several hosts
//! (`postgres://a:5432,b:5433/db`), which are not URLs. Query parameters keep libpq's
//! meaning; holdup's own options are in the fragment. Connections, SSL negotiation and the
//! TLS handshake are ours (names resolve through [`Net`], TLS through [`crate::tls`]);
//! tokio-postgres then speaks the protocol over the stream we hand it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tracing::debug;

use super::{Failure, Options, Stage};
use crate::net::Net;
use crate::redact::Secret;
use crate::tls::{self, Roots, Verify};
use crate::words::{chain, io_error_words, lower_first};

const DEFAULT_PORT: u16 = 5432;
const DEFAULT_QUERY: &str = "SELECT 1";
/// SQLSTATE 57P03 `cannot_connect_now`: starting up, shutting down, in recovery.
const CANNOT_CONNECT_NOW: &str = "57P03";
/// The expected form, for error messages.
const FORM: &str =
    "postgres://user[:password]@host[:port][,host[:port]...]/dbname[?param=value&...][#options]";

/// libpq parameters holdup reads, with libpq's meaning.
const SUPPORTED: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "application_name",
    "fallback_application_name",
    "options",
    "target_session_attrs",
    "load_balance_hosts",
    "channel_binding",
    "gssencmode",
    "sslnegotiation",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

/// libpq parameters that only tune the client's socket or encoding: they cannot change
/// whether a server is ready (holdup's own timeouts bound every attempt), so an application's
/// URI that carries them is accepted as it is.
const IGNORED: &[&str] = &[
    "connect_timeout",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
];

/// libpq parameters for things holdup does not do. Ignoring them would check something else
/// than the user asked for (often something less secure), so they are refused.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("sslcert", "client certificates are not supported"),
    ("sslkey", "client certificates are not supported"),
    ("sslpassword", "client certificates are not supported"),
    ("sslcrl", "certificate revocation lists are not supported"),
    (
        "sslcrldir",
        "certificate revocation lists are not supported",
    ),
    ("sslkeylogfile", "TLS key logging is not supported"),
    ("requiressl", "use sslmode=require"),
    (
        "require_auth",
        "restricting authentication methods is not supported",
    ),
    ("requirepeer", "Unix-domain sockets are not supported"),
    ("krbsrvname", "Kerberos and GSSAPI are not supported"),
    ("gsslib", "Kerberos and GSSAPI are not supported"),
    ("gssdelegation", "Kerberos and GSSAPI are not supported"),
    (
        "service",
        "service files are not read: write the parameters in the URI",
    ),
    ("replication", "replication connections are not supported"),
    (
        "min_protocol_version",
        "choosing the protocol version is not supported",
    ),
    (
        "max_protocol_version",
        "choosing the protocol version is not supported",
    ),
    ("oauth_issuer", "OAuth is not supported"),
    ("oauth_client_id", "OAuth is not supported"),
    ("oauth_client_secret", "OAuth is not supported"),
    ("oauth_scope", "OAuth is not supported"),
    ("scram_client_key", "SCRAM keys are not supported"),
    ("scram_server_key", "SCRAM keys are not supported"),
];

/// holdup's own options, in the fragment.
const OPTIONS: &[&str] = &["query", "isready", "fail-fast"];

pub struct Postgres {
    /// The URI as it may be shown: no password, no fragment.
    shown: String,
    hosts: Vec<Host>,
    user: String,
    dbname: String,
    /// libpq's `options`: command-line options for the server backend.
    server_options: Option<String>,
    application_name: String,
    sslmode: SslMode,
    /// Built once; None with sslmode=disable.
    tls: Option<Arc<rustls::ClientConfig>>,
    session_attrs: SessionAttrs,
    check: Check,
    fail_fast: FailFast,
}

/// Its `Debug` shows the password as `(redacted)`.
#[derive(Debug)]
struct Host {
    /// The name as given (or the hostaddr when no name is): shown, checked by verify-full,
    /// looked up in the password file.
    name: String,
    /// libpq's `hostaddr`: connect here instead of resolving the name.
    address: Option<IpAddr>,
    port: u16,
    password: Option<Secret>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("check", &self.check)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.contains(':') {
            write!(f, "[{}]:{}", self.name, self.port)
        } else {
            write!(f, "{}:{}", self.name, self.port)
        }
    }
}

/// What "ready" means.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// A full session: log in, then run the query, which must return a row whose first
    /// value is neither NULL nor false.
    Session { query: String },
    /// pg_isready: the server answers the startup packet with anything but 57P03.
    IsReady,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "invalid sslmode '{other}' (expected disable, allow, prefer, require, verify-ca or verify-full)"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// libpq's target_session_attrs. `prefer-standby` only orders libpq's tries; since holdup
/// tries every host, it is ready exactly when `any` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
}

/// Which failures end the wait at once (exit 3) instead of being retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FailFast {
    auth: bool,
    database: bool,
}

impl FailFast {
    fn parse(values: Vec<String>) -> Result<FailFast> {
        let value = match values.as_slice() {
            [] => return Ok(FailFast::default()),
            [value] => value,
            _ => bail!(
                "option 'fail-fast' is given {} times; give it once",
                values.len()
            ),
        };
        if value.is_empty() {
            return Ok(FailFast {
                auth: true,
                database: true,
            });
        }
        let mut fail_fast = FailFast::default();
        for item in value.split(',') {
            match item.trim() {
                "auth" => fail_fast.auth = true,
                "database" => fail_fast.database = true,
                other => bail!(
                    "invalid option 'fail-fast={value}': '{other}' is not a failure kind (expected fail-fast, or fail-fast=auth, fail-fast=database, fail-fast=auth,database)"
                ),
            }
        }
        Ok(fail_fast)
    }

    fn covers(self, kind: Option<Kind>) -> bool {
        match kind {
            Some(Kind::Auth) => self.auth,
            Some(Kind::Database) => self.database,
            None => false,
        }
    }
}

/// The failures a user may choose to make permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Rejected credentials or no pg_hba.conf entry (SQLSTATE class 28, 42501 at login).
    Auth,
    /// The database does not exist (SQLSTATE 3D000).
    Database,
}

impl Postgres {
    /// Parses a libpq URI whose passwords may also come from `PGPASSWORD` or a password file.
    pub fn parse(text: &str) -> Result<Postgres> {
        Self::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    /// The URI without password or options.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Postgres> {
        reject_misplaced_at(text)?;
        let (uri, fragment) = match text.split_once('#') {
            Some((uri, fragment)) => (uri, Some(fragment)),
            None => (text, None),
        };
        let mut options = Options::parse(fragment)?;
        let query = options.take("query")?;
        let is_ready = options.take_switch("isready")?;
        let fail_fast = FailFast::parse(options.take_all("fail-fast"))?;
        options.finish("postgres", OPTIONS)?;

        let (mut settings, shown) = parse_uri(uri)?;
        let mut take = |name: &str| settings.remove(name).filter(|value| !value.is_empty());

        let sslrootcert = take("sslrootcert");
        let sslmode = match take("sslmode") {
            Some(mode) => SslMode::parse(&mode)?,
            // libpq: the system roots make sense only with the host name checked.
            None if sslrootcert.as_deref() == Some("system") => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        let session_attrs = match take("target_session_attrs").as_deref() {
            None | Some("any" | "prefer-standby") => SessionAttrs::Any,
            Some("read-write") => SessionAttrs::ReadWrite,
            Some("read-only") => SessionAttrs::ReadOnly,
            Some("primary") => SessionAttrs::Primary,
            Some("standby") => SessionAttrs::Standby,
            Some(other) => bail!(
                "invalid target_session_attrs '{other}' (expected any, read-write, read-only, primary, standby or prefer-standby)"
            ),
        };
        check_value(
            "load_balance_hosts",
            take("load_balance_hosts"),
            &["disable", "random"],
            &[],
        )?;
        check_value(
            "channel_binding",
            take("channel_binding"),
            &["disable", "prefer"],
            &[("require", "holdup does not do SCRAM channel binding")],
        )?;
        check_value(
            "gssencmode",
            take("gssencmode"),
            &["disable", "prefer"],
            &[("require", "Kerberos and GSSAPI are not supported")],
        )?;
        check_value(
            "sslnegotiation",
            take("sslnegotiation"),
            &["postgres"],
            &[("direct", "only the SSLRequest negotiation is supported")],
        )?;
        check_value(
            "sslcertmode",
            take("sslcertmode"),
            &["disable", "allow"],
            &[("require", "client certificates are not supported")],
        )?;
        check_value(
            "ssl_min_protocol_version",
            take("ssl_min_protocol_version"),
            &["TLSv1", "TLSv1.1", "TLSv1.2"],
            &[("TLSv1.3", "holdup always allows TLS 1.2 and 1.3")],
        )?;
        check_value(
            "ssl_max_protocol_version",
            take("ssl_max_protocol_version"),
            &["TLSv1.3"],
            &[
                ("TLSv1", "holdup always allows TLS 1.2 and 1.3"),
                ("TLSv1.1", "holdup always allows TLS 1.2 and 1.3"),
                ("TLSv1.2", "holdup always allows TLS 1.2 and 1.3"),
            ],
        )?;

        let check = match (is_ready, query) {
            (true, Some(_)) => {
                bail!("options 'isready' and 'query' exclude each other: isready does not log in")
            }
            (true, None) => Check::IsReady,
            (false, query) => Check::Session {
                query: query.unwrap_or_else(|| DEFAULT_QUERY.to_string()),
            },
        };
        if check == Check::IsReady {
            if fail_fast != FailFast::default() {
                bail!(
                    "option 'fail-fast' does nothing with 'isready', which counts a rejected login or a missing database as up"
                );
            }
            if session_attrs != SessionAttrs::Any {
                bail!(
                    "target_session_attrs needs a session, and 'isready' does not log in (drop one of them)"
                );
            }
        }

        let user = match (take("user"), &check) {
            (Some(user), _) => user,
            // Any name will do: the server says whether it is up before checking who asks.
            (None, Check::IsReady) => "postgres".to_string(),
            (None, Check::Session { .. }) => bail!(
                "missing user name (expected {FORM}; or add #isready to check only that the server answers)"
            ),
        };
        let dbname = take("dbname").unwrap_or_else(|| user.clone());
        let application_name = take("application_name")
            .or_else(|| take("fallback_application_name"))
            .unwrap_or_else(|| "holdup".to_string());
        let server_options = take("options");

        let mut hosts = parse_hosts(take("host"), take("hostaddr"), take("port"))?;
        if let Check::Session { .. } = check {
            let password = take("password")
                .or_else(|| env("PGPASSWORD").filter(|value| !value.is_empty()))
                .map(Secret::new);
            for host in &mut hosts {
                host.password = password.clone();
            }
            if hosts.iter().any(|host| host.password.is_none()) {
                let explicit = take("passfile").or_else(|| env("PGPASSFILE"));
                if let Some(file) = PasswordFile::find(explicit, env("HOME"))? {
                    for host in hosts.iter_mut().filter(|host| host.password.is_none()) {
                        host.password = file.lookup(host, &dbname, &user);
                    }
                }
            }
        }

        let tls = match sslmode {
            SslMode::Disable => None,
            _ => Some(Arc::new(tls_config(sslmode, sslrootcert, env("HOME"))?)),
        };
        Ok(Postgres {
            shown,
            hosts,
            user,
            dbname,
            server_options,
            application_name,
            sslmode,
            tls,
            session_attrs,
            check,
            fail_fast,
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        if let [host] = self.hosts.as_slice() {
            return self
                .check_host(host, net, stage)
                .await
                .map_err(|failure| failure.into_failure(self.fail_fast));
        }
        // Every host at once: one that hangs must not hide one that is ready.
        let stages: Vec<Stage> = self.hosts.iter().map(|_| Stage::default()).collect();
        let mut running: FuturesUnordered<_> = self
            .hosts
            .iter()
            .zip(&stages)
            .enumerate()
            .map(|(index, (host, stage))| async move {
                (index, self.check_host(host, net, stage).await)
            })
            .collect();
        let mut failures: Vec<(usize, HostFailure)> = Vec::new();
        let mut next = poll_fn(|cx| {
            let polled = running.poll_next_unpin(cx);
            // What each host still in play is doing; their stages name host or address.
            stage.set(
                stages
                    .iter()
                    .map(Stage::get)
                    .filter(|doing| !doing.is_empty())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            polled
        });
        loop {
            match (&mut next).await {
                Some((_, Ok(()))) => return Ok(()),
                Some((index, Err(failure))) => {
                    stages[index].set("");
                    failures.push((index, failure));
                }
                None => break,
            }
        }
        failures.sort_by_key(|(index, _)| *index);
        let permanent = failures
            .iter()
            .all(|(_, failure)| self.fail_fast.covers(failure.kind));
        let words = failures
            .iter()
            .map(|(index, failure)| {
                // Connection errors already start with the address.
                let host = self.hosts[*index].to_string();
                if failure.words.starts_with(&format!("{host}:")) {
                    failure.words.clone()
                } else {
                    format!("{host}: {}", failure.words)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(if permanent {
            Failure::Permanent(anyhow!(words))
        } else {
            Failure::NotReady(anyhow!(words))
        })
    }

    /// One host, with libpq's second try: `allow` retries with TLS when the server rejects a
    /// plain session, `prefer` retries without TLS when TLS fails or is rejected.
    async fn check_host(&self, host: &Host, net: &Net, stage: &Stage) -> Result<(), HostFailure> {
        let (first, retry) = match self.sslmode {
            SslMode::Disable => (Encryption::Plain, None),
            SslMode::Allow => (Encryption::Plain, Some(Encryption::TlsRequired)),
            SslMode::Prefer => (Encryption::TlsIfOffered, Some(Encryption::Plain)),
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                (Encryption::TlsRequired, None)
            }
        };
        let failure = match self.check_once(host, first, net, stage).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        let retry_now = match (self.sslmode, retry) {
            (SslMode::Allow, Some(_)) => failure.server_rejected,
            (SslMode::Prefer, Some(_)) => {
                failure.over_tls && (failure.server_rejected || failure.tls_failed)
            }
            _ => false,
        };
        let Some(retry) = retry.filter(|_| retry_now) else {
            return Err(failure);
        };
        match self.check_once(host, retry, net, stage).await {
            Ok(()) => Ok(()),
            Err(second) => Err(failure.and_then(second, retry)),
        }
    }

    async fn check_once(
        &self,
        host: &Host,
        encryption: Encryption,
        net: &Net,
        stage: &Stage,
    ) -> Result<(), HostFailure> {
        let target = host
            .address
            .map_or_else(|| host.name.clone(), |address| address.to_string());
        let tcp = net
            .connect(&target, host.port, stage)
            .await
            .map_err(|error| HostFailure::new(format!("{error:#}")))?;
        let (stream, over_tls) = self.negotiate(tcp, host, encryption, stage).await?;
        let result = match &self.check {
            Check::IsReady => self.is_ready(stream, host, stage).await,
            Check::Session { query } => self.session(stream, host, query, over_tls, stage).await,
        };
        result.map_err(|mut failure| {
            failure.over_tls = over_tls;
            failure
        })
    }

    /// libpq's SSLRequest, then the TLS handshake if the server agrees. Reads exactly one
    /// byte before the handshake so that nothing a man in the middle slipped in ahead of
    /// it is taken as coming from the server (CVE-2021-23222).
    async fn negotiate(
        &self,
        mut tcp: tokio::net::TcpStream,
        host: &Host,
        encryption: Encryption,
        stage: &Stage,
    ) -> Result<(Box<dyn Stream>, bool), HostFailure> {
        let Some(tls) = self.tls.clone().filter(|_| encryption != Encryption::Plain) else {
            return Ok((Box::new(tcp), false));
        };
        stage.set(format!("asking {host} for TLS"));
        let io_failure = |error: io::Error| {
            HostFailure::new(format!(
                "{host}: {} (when asked for TLS)",
                io_error_words(&error)
            ))
        };
        tcp.write_all(&SSL_REQUEST).await.map_err(io_failure)?;
        let mut answer = [0u8];
        tcp.read_exact(&mut answer).await.map_err(io_failure)?;
        match answer[0] {
            b'S' => {}
            b'N' if encryption == Encryption::TlsIfOffered => return Ok((Box::new(tcp), false)),
            b'N' if self.sslmode == SslMode::Allow => {
                return Err(HostFailure::new(format!(
                    "{host} does not accept TLS either (ssl is off on the server)"
                )));
            }
            b'N' => {
                return Err(HostFailure::new(format!(
                    "{host} does not accept TLS (ssl is off on the server), and sslmode={} requires it",
                    self.sslmode.name()
                )));
            }
            other => {
                return Err(HostFailure::new(format!(
                    "{host} answered the TLS request with {:?}: is it a Postgres server?",
                    char::from(other)
                )));
            }
        }
        stage.set(format!("TLS handshake with {host}"));
        let name = server_name(&host.name).map_err(HostFailure::new)?;
        match tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
        {
            Ok(stream) => Ok((Box::new(stream), true)),
            Err(error) => {
                let reason = match error
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls_error) => tls_error.to_string(),
                    None => io_error_words(&error),
                };
                Err(HostFailure {
                    over_tls: true,
                    tls_failed: true,
                    ..HostFailure::new(format!("TLS handshake with {host} failed: {reason}"))
                })
            }
        }
    }

    /// pg_isready: any answer to the startup packet means the server is up, except 57P03.
    async fn is_ready(
        &self,
        mut stream: Box<dyn Stream>,
        host: &Host,
        stage: &Stage,
    ) -> Result<(), HostFailure> {
        stage.set(format!("waiting for {host} to answer the startup packet"));
        let mut parameters = vec![
            ("user", self.user.as_str()),
            ("database", self.dbname.as_str()),
            ("application_name", self.application_name.as_str()),
        ];
        if let Some(options) = &self.server_options {
            parameters.push(("options", options));
        }
        let io_failure = |error: io::Error| {
            HostFailure::new(format!(
                "{host}: {} (before answering the startup packet)",
                io_error_words(&error)
            ))
        };
        stream
            .write_all(&startup_packet(&parameters))
            .await
            .map_err(io_failure)?;
        let (kind, body) = read_message(&mut stream).await.map_err(io_failure)?;
        match kind {
            b'R' => {
                // 0 is AuthenticationOk (trust): say goodbye instead of vanishing.
                if body.get(..4) == Some(&[0, 0, 0, 0][..]) {
                    let _ = stream.write_all(&TERMINATE).await;
                }
                debug!(
                    "{host} is up: it answered the startup packet with an authentication request"
                );
                Ok(())
            }
            b'E' => {
                let fields = ErrorFields::parse(&body);
                match fields.code.as_deref() {
                    Some(CANNOT_CONNECT_NOW) => Err(HostFailure::new(fields.words())),
                    Some(_) => {
                        debug!("{host} is up: it answered {}", fields.words());
                        Ok(())
                    }
                    None => Err(HostFailure::new(format!(
                        "{host} answered with an error without SQLSTATE: {}",
                        fields.words()
                    ))),
                }
            }
            // NegotiateProtocolVersion: a newer or older server, but one that is up.
            b'v' => Ok(()),
            other => Err(HostFailure::new(format!(
                "{host} answered the startup packet with {:?}: is it a Postgres server?",
                char::from(other)
            ))),
        }
    }

    /// Logs in and runs the query.
    async fn session(
        &self,
        stream: Box<dyn Stream>,
        host: &Host,
        query: &str,
        over_tls: bool,
        stage: &Stage,
    ) -> Result<(), HostFailure> {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .ssl_mode(tokio_postgres::config::SslMode::Disable);
        if let Some(password) = &host.password {
            config.password(password.expose());
        }
        if let Some(options) = &self.server_options {
            config.options(options);
        }
        stage.set(format!("authenticating as {} with {host}", self.user));
        let (client, connection) = config
            .connect_raw(stream, NoTls)
            .await
            .map_err(|error| login_failure(&error, host, over_tls))?;
        // The connection does the I/O for the client: poll both in this task, so that an
        // attempt cut off by its timeout leaves nothing behind.
        let mut connection = pin!(connection);
        let checked = async {
            self.check_session_attrs(&client, host, stage).await?;
            stage.set(if query == DEFAULT_QUERY {
                format!("running SELECT 1 on {host}")
            } else {
                format!("running the query on {host}")
            });
            let messages = client
                .simple_query(query)
                .await
                .map_err(|error| HostFailure::new(query_error_words(&error)))?;
            judge_rows(&messages).map_err(HostFailure::new)
        };
        tokio::select! {
            result = checked => result,
            ended = &mut connection => Err(HostFailure::new(match ended {
                Ok(()) => format!("{host} closed the connection"),
                Err(error) => query_error_words(&error),
            })),
        }
    }

    async fn check_session_attrs(
        &self,
        client: &tokio_postgres::Client,
        host: &Host,
        stage: &Stage,
    ) -> Result<(), HostFailure> {
        if self.session_attrs == SessionAttrs::Any {
            return Ok(());
        }
        stage.set(format!("checking what kind of server {host} is"));
        let messages = client
            .simple_query(
                "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')",
            )
            .await
            .map_err(|error| HostFailure::new(query_error_words(&error)))?;
        let row = messages.iter().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        let value = |index: usize| row.and_then(|row| row.try_get(index).ok().flatten());
        let (in_recovery, read_only) = (value(0) == Some("t"), value(1) == Some("on"));
        let wrong = match self.session_attrs {
            SessionAttrs::Any => None,
            SessionAttrs::ReadWrite if read_only => {
                Some(("read-only (transaction_read_only is on)", "read-write"))
            }
            SessionAttrs::ReadOnly if !read_only => {
                Some(("read-write (transaction_read_only is off)", "read-only"))
            }
            SessionAttrs::Primary if in_recovery => Some(("a standby (in recovery)", "primary")),
            SessionAttrs::Standby if !in_recovery => {
                Some(("a primary (not in recovery)", "standby"))
            }
            _ => None,
        };
        match wrong {
            Some((is, wanted)) => Err(HostFailure::new(format!(
                "{host} is {is}, and target_session_attrs={wanted}"
            ))),
            None => Ok(()),
        }
    }
}

/// How one connection is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encryption {
    Plain,
    /// TLS if the server agrees, else plain on the same connection (sslmode=prefer).
    TlsIfOffered,
    TlsRequired,
}

/// Why one host is not ready, with what the sslmode retry and fail-fast need to know.
#[derive(Debug)]
struct HostFailure {
    words: String,
    kind: Option<Kind>,
    /// The server answered the startup with an error (libpq's condition for a second try).
    server_rejected: bool,
    over_tls: bool,
    tls_failed: bool,
}

impl HostFailure {
    fn new(words: impl Into<String>) -> Self {
        HostFailure {
            words: words.into(),
            kind: None,
            server_rejected: false,
            over_tls: false,
            tls_failed: false,
        }
    }

    /// Both tries of libpq's allow/prefer failed: say both (once if they agree); permanent
    /// only if both are.
    fn and_then(self, second: HostFailure, second_encryption: Encryption) -> HostFailure {
        let kind = if self.kind == second.kind {
            self.kind
        } else {
            None
        };
        let words = if self.words == second.words {
            self.words
        } else {
            let how = match second_encryption {
                Encryption::Plain => "without TLS",
                _ => "with TLS",
            };
            format!("{}; then {how}: {}", self.words, second.words)
        };
        HostFailure {
            words,
            kind,
            ..second
        }
    }

    fn into_failure(self, fail_fast: FailFast) -> Failure {
        if fail_fast.covers(self.kind) {
            Failure::Permanent(anyhow!(self.words))
        } else {
            Failure::NotReady(anyhow!(self.words))
        }
    }
}

/// A failed startup or login in words, classified for fail-fast.
fn login_failure(error: &tokio_postgres::Error, host: &Host, over_tls: bool) -> HostFailure {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let kind = if code.starts_with("28") || code == "42501" {
            Some(Kind::Auth)
        } else if code == "3D000" {
            Some(Kind::Database)
        } else {
            None
        };
        let mut words = db_words(db.message(), db.detail(), code);
        if !over_tls && code == "28000" && db.message().contains("no encryption") {
            words.push_str(": the server wants TLS here, and this connection has none (use sslmode=require or stronger)");
        }
        return HostFailure {
            kind,
            server_rejected: true,
            ..HostFailure::new(words)
        };
    }
    let text = error.to_string();
    if text.contains("password missing") || chain(error).contains("password missing") {
        return HostFailure {
            kind: Some(Kind::Auth),
            ..HostFailure::new(
                "the server asks for a password and none is given (in the URI, PGPASSWORD or a password file)",
            )
        };
    }
    if text.starts_with("authentication error") {
        return HostFailure {
            kind: Some(Kind::Auth),
            ..HostFailure::new(format!("{host}: {}", chain(error)))
        };
    }
    HostFailure::new(format!("{host}: {}", query_error_words(error)))
}

/// An error after login (or any non-server error) in words.
fn query_error_words(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db_words(db.message(), db.detail(), db.code().code());
    }
    if error.is_closed() {
        return "connection closed by the server".to_string();
    }
    let io = std::error::Error::source(error).and_then(|source| source.downcast_ref::<io::Error>());
    match io {
        Some(io) => io_error_words(io),
        None => chain(error),
    }
}

/// `the database system is not accepting connections: hot standby mode is disabled (SQLSTATE 57P03)`
fn db_words(message: &str, detail: Option<&str>, code: &str) -> String {
    match detail.map(|detail| detail.trim().trim_end_matches('.')) {
        Some(detail) if !detail.is_empty() => {
            format!("{message}: {} (SQLSTATE {code})", lower_first(detail))
        }
        _ => format!("{message} (SQLSTATE {code})"),
    }
}

/// Ready when the query returned a row whose first value is neither NULL nor false, so that
/// `SELECT count(*) > 0 FROM users` and `SELECT 1 FROM users LIMIT 1` both mean what they say.
fn judge_rows(messages: &[SimpleQueryMessage]) -> Result<(), String> {
    let row = messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let Some(row) = row else {
        return Err("the query returned no rows".to_string());
    };
    if row.is_empty() {
        return Ok(());
    }
    match row.try_get(0) {
        Ok(None) => Err("the query returned NULL".to_string()),
        Ok(Some("f")) => Err("the query returned false".to_string()),
        Ok(Some(_)) => Ok(()),
        Err(error) => Err(chain(&error)),
    }
}

/// A connection, plain or TLS, as tokio-postgres takes it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Length 8, code 80877103: "may we speak TLS?"
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// Terminate: 'X', length 4.
const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];
/// Longest answer to a startup packet we read; real ones are a few hundred bytes.
const MESSAGE_LIMIT: usize = 64 * 1024;

/// A protocol 3.0 startup packet.
fn startup_packet(parameters: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (name, value) in parameters {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let length = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut packet = length.to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// One backend message: its type byte and body.
async fn read_message(stream: &mut Box<dyn Stream>) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MESSAGE_LIMIT).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "answered with {:?} and a length of {length}: is it a Postgres server?",
                char::from(header[0])
            ),
        ));
    }
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).await?;
    Ok((header[0], body))
}

/// The fields of an ErrorResponse that we show.
#[derive(Debug, Default, PartialEq, Eq)]
struct ErrorFields {
    code: Option<String>,
    message: String,
    detail: Option<String>,
}

impl ErrorFields {
    fn parse(body: &[u8]) -> ErrorFields {
        let mut fields = ErrorFields::default();
        let mut rest = body;
        while let [kind, tail @ ..] = rest {
            if *kind == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let value = String::from_utf8_lossy(&tail[..end]).into_owned();
            match kind {
                b'C' => fields.code = Some(value),
                b'M' => fields.message = value,
                b'D' => fields.detail = Some(value),
                _ => {}
            }
            rest = tail.get(end + 1..).unwrap_or_default();
        }
        fields
    }

    fn words(&self) -> String {
        match &self.code {
            Some(code) => db_words(&self.message, self.detail.as_deref(), code),
            None => self.message.clone(),
        }
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|_| format!("'{host}' is not a valid TLS server name")),
    }
}

/// Which certificate checks an sslmode makes, as libpq: verify-ca and verify-full check the
/// chain (verify-full also the name); allow, prefer and require check the chain only when a
/// root certificate file exists, and nothing otherwise.
fn tls_config(
    sslmode: SslMode,
    sslrootcert: Option<String>,
    home: Option<String>,
) -> Result<rustls::ClientConfig> {
    let roots = match sslrootcert.as_deref() {
        Some("system") => {
            if sslmode != SslMode::VerifyFull {
                bail!(
                    "sslmode={} may not be used with sslrootcert=system (use sslmode=verify-full, as libpq requires)",
                    sslmode.name()
                );
            }
            Some(Roots::BuiltIn)
        }
        // Unlike libpq, a named file that cannot be read is an error in every mode: a typo
        // must not quietly turn certificate checks off.
        Some(path) => Some(Roots::File(PathBuf::from(path))),
        None => home
            .map(|home| Path::new(&home).join(".postgresql/root.crt"))
            .filter(|path| path.exists())
            .map(Roots::File),
    };
    let verify = match (sslmode, &roots) {
        (SslMode::VerifyFull, Some(_)) => Verify::Full,
        (SslMode::VerifyCa, Some(_)) => Verify::ChainOnly,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => bail!(
            "sslmode={} needs the CA that signed the server's certificate: add sslrootcert=/path/to/ca.pem (or sslrootcert=system for the public roots)",
            sslmode.name()
        ),
        (_, Some(_)) => Verify::ChainOnly,
        (_, None) => Verify::Nothing,
    };
    let roots = roots.unwrap_or(Roots::BuiltIn);
    tls::client_config(&roots, verify)
        .with_context(|| format!("sslrootcert for sslmode={}", sslmode.name()))
}

/// A parameter with a closed set of values, some of which libpq knows but holdup refuses.
fn check_value(
    name: &str,
    value: Option<String>,
    accepted: &[&str],
    refused: &[(&str, &str)],
) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    if accepted.contains(&value.as_str()) {
        return Ok(());
    }
    if let Some((_, why)) = refused.iter().find(|(refused, _)| *refused == value) {
        bail!("{name}={value} is not supported: {why}");
    }
    let mut known: Vec<&str> = accepted.to_vec();
    known.extend(refused.iter().map(|(value, _)| *value));
    bail!("invalid {name} '{value}' (expected {})", known.join(", "))
}

/// Splits a libpq URI (without its fragment) into libpq's keywords and values: the parts of
/// the URI first, then the query parameters, which win, as in libpq.
fn parse_uri(uri: &str) -> Result<(BTreeMap<String, String>, String)> {
    let lower = uri.get(..13).unwrap_or(uri).to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("postgresql://") {
        uri.split_at(13)
    } else if lower.starts_with("postgres://") {
        uri.split_at(11)
    } else {
        bail!("expected {FORM}");
    };
    let mut shown = scheme.to_string();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, dbname) = match before_query.split_once('/') {
        Some((authority, dbname)) => (authority, Some(dbname)),
        None => (before_query, None),
    };
    let mut settings = BTreeMap::new();
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, hostspec)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            settings.insert(
                "user".to_string(),
                decode(user).context("in the user name")?,
            );
            shown.push_str(user);
            shown.push('@');
            if let Some(password) = password {
                // Never quoted in an error: it is the password.
                let password = decode(password)
                    .map_err(|_| anyhow!("the password is not validly percent-encoded"))?;
                settings.insert("password".to_string(), password);
            }
            hostspec
        }
        None => authority,
    };
    shown.push_str(hostspec);
    if let Some(dbname) = dbname {
        shown.push('/');
        shown.push_str(dbname);
    }
    if !hostspec.is_empty() {
        let (hosts, ports) = split_hostspec(hostspec)?;
        settings.insert("host".to_string(), hosts);
        if ports.split(',').any(|port| !port.is_empty()) {
            settings.insert("port".to_string(), ports);
        }
    }
    if let Some(dbname) = dbname.filter(|dbname| !dbname.is_empty()) {
        settings.insert(
            "dbname".to_string(),
            decode(dbname).context("in the database name")?,
        );
    }
    let mut shown_pairs = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("query parameter '{pair}' has no value (expected name=value)");
        };
        let name = decode(name)?;
        shown_pairs.push(if name == "password" {
            "password=redacted".to_string()
        } else {
            pair.to_string()
        });
        if value.contains('=') {
            bail!("query parameter '{name}' has a second '=' (percent-encode it as %3D)");
        }
        let value = if name == "password" {
            decode(value).map_err(|_| anyhow!("the password is not validly percent-encoded"))?
        } else {
            decode(value).with_context(|| format!("in query parameter '{name}'"))?
        };
        // libpq's bow to JDBC: ssl=true means sslmode=require.
        let (name, value) = if name == "ssl" && value == "true" {
            ("sslmode".to_string(), "require".to_string())
        } else {
            (name, value)
        };
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(known, _)| *known == name) {
            bail!("query parameter '{name}' is not supported: {why}");
        }
        if IGNORED.contains(&name.as_str()) {
            continue;
        }
        if !SUPPORTED.contains(&name.as_str()) {
            bail!(
                "unknown query parameter '{name}' (libpq refuses it too; see the README for the parameters holdup reads)"
            );
        }
        settings.insert(name, value);
    }
    if !shown_pairs.is_empty() {
        shown.push('?');
        shown.push_str(&shown_pairs.join("&"));
    }
    Ok((settings, shown))
}

/// A password holding an unencoded '/', '?' or '#' (or '@') would be split into host, path
/// or options, and pieces of it quoted in error messages: refuse such a URI without quoting
/// it. An '@' after the host is taken as a sign of that unless the URI has user info too,
/// and never allowed in the database name.
fn reject_misplaced_at(text: &str) -> Result<()> {
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    if after[..path_end].contains('@') || (!authority.contains('@') && after.contains('@')) {
        bail!(
            "an '@' after the host: percent-encode '/', '?', '#' and '@' in the user name and password (%2F, %3F, %23, %40), and write any other '@' as %40 (expected {FORM})"
        );
    }
    Ok(())
}

/// `a:1,[::1]:2,b` into libpq's comma lists `a,::1,b` and `1,2,`.
fn split_hostspec(hostspec: &str) -> Result<(String, String)> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in hostspec.split(',') {
        let (host, port) = if let Some(inner) = entry.strip_prefix('[') {
            let Some((address, after)) = inner.split_once(']') else {
                bail!("missing ']' after the IPv6 address in '{entry}'");
            };
            let port = match after {
                "" => "",
                _ => after.strip_prefix(':').ok_or_else(|| {
                    anyhow!("unexpected '{after}' after the IPv6 address [{address}]")
                })?,
            };
            (address.to_string(), port)
        } else {
            let (host, port) = entry.split_once(':').unwrap_or((entry, ""));
            (decode(host).context("in the host name")?, port)
        };
        if host.is_empty() {
            bail!("empty host in '{hostspec}' (expected {FORM})");
        }
        hosts.push(host);
        ports.push(port);
    }
    Ok((hosts.join(","), ports.join(",")))
}

/// libpq's comma lists of hosts, addresses and ports, paired up.
fn parse_hosts(
    hosts: Option<String>,
    addresses: Option<String>,
    ports: Option<String>,
) -> Result<Vec<Host>> {
    let names: Vec<String> = hosts
        .map(|hosts| hosts.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let addresses: Vec<Option<IpAddr>> = match addresses {
        Some(addresses) => addresses
            .split(',')
            .map(|address| match address {
                "" => Ok(None),
                address => address.parse().map(Some).map_err(|_| {
                    anyhow!("invalid hostaddr '{address}' (expected an IPv4 or IPv6 address)")
                }),
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    if names.is_empty() && addresses.is_empty() {
        bail!(
            "missing host (expected {FORM}; Unix-domain sockets are not supported, so give a host name or address)"
        );
    }
    if !names.is_empty() && !addresses.is_empty() && names.len() != addresses.len() {
        bail!(
            "{} host names but {} hostaddr values: give one address per host",
            names.len(),
            addresses.len()
        );
    }
    let count = names.len().max(addresses.len());
    let ports: Vec<u16> = match ports {
        Some(ports) => ports
            .split(',')
            .map(|port| match port {
                "" => Ok(DEFAULT_PORT),
                port => match port.parse::<u16>() {
                    Ok(port) if port > 0 => Ok(port),
                    _ => bail!("invalid port '{port}' (expected 1-65535)"),
                },
            })
            .collect::<Result<_>>()?,
        None => vec![DEFAULT_PORT],
    };
    if ports.len() != 1 && ports.len() != count {
        bail!(
            "{} ports for {count} hosts: give one port, or one per host",
            ports.len()
        );
    }
    (0..count)
        .map(|index| {
            let address = addresses.get(index).copied().flatten();
            let name = match (names.get(index), address) {
                (Some(name), _) if !name.is_empty() => name.clone(),
                (_, Some(address)) => address.to_string(),
                _ => bail!("empty host (expected {FORM})"),
            };
            if name.starts_with('/') {
                bail!(
                    "host '{name}' is a Unix-domain socket directory; holdup connects over TCP only (give a host name or address)"
                );
            }
            let valid = name.parse::<IpAddr>().is_ok()
                || name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !valid {
                bail!("invalid host name '{name}'");
            }
            Ok(Host {
                name,
                address,
                port: ports[if ports.len() == 1 { 0 } else { index }],
                password: None,
            })
        })
        .collect()
}

/// libpq's strict percent-decoding: `%00` and malformed escapes are errors.
fn decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match hex {
                Some(0) => bail!("'%00' is not allowed in '{text}'"),
                Some(byte) => decoded.push(byte),
                None => bail!("invalid percent-encoding in '{text}'"),
            }
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| anyhow!("'{text}' is not UTF-8 once percent-decoded"))
}

/// libpq's password file: `host:port:database:user:password` lines, `*` matching anything,
/// `\` escaping `:` and `\`.
struct PasswordFile {
    entries: Vec<[String; 5]>,
}

impl PasswordFile {
    /// The file named by `passfile` or PGPASSFILE (which must be usable), else ~/.pgpass if
    /// it exists.
    fn find(explicit: Option<String>, home: Option<String>) -> Result<Option<PasswordFile>> {
        let path = match (explicit, home) {
            (Some(path), _) => PathBuf::from(path),
            (None, Some(home)) => {
                let path = Path::new(&home).join(".pgpass");
                if !path.exists() {
                    return Ok(None);
                }
                path
            }
            (None, None) => return Ok(None),
        };
        Self::read(&path).map(Some)
    }

    fn read(path: &Path) -> Result<PasswordFile> {
        use std::os::unix::fs::PermissionsExt as _;
        let shown = path.display();
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read password file {shown}"))?;
        if !metadata.is_file() {
            bail!("password file {shown} is not a plain file");
        }
        if metadata.permissions().mode() & 0o077 != 0 {
            bail!(
                "password file {shown} has group or world access, so libpq would ignore it: make it u=rw (chmod 0600; in Kubernetes, defaultMode: 0600)"
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {shown}"))?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> PasswordFile {
        let entries = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut fields = Vec::with_capacity(5);
                let mut field = String::new();
                let mut chars = line.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => field.extend(chars.next()),
                        ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                        c => field.push(c),
                    }
                }
                fields.push(field);
                <[String; 5]>::try_from(fields).ok()
            })
            .collect();
        PasswordFile { entries }
    }

    fn lookup(&self, host: &Host, dbname: &str, user: &str) -> Option<Secret> {
        let port = host.port.to_string();
        let wanted = [host.name.as_str(), &port, dbname, user];
        self.entries
            .iter()
            .find(|entry| {
                entry[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, wanted)| field == "*" || field == wanted)
            })
            .map(|entry| Secret::new(entry[4].clone()))
            .filter(|password| !password.expose().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Postgres> {
        Postgres::parse_with_env(text, &|_| None)
    }

    fn hosts(postgres: &Postgres) -> Vec<String> {
        postgres.hosts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn accepted_uris() {
        struct Case {
            uri: &'static str,
            hosts: &'static [&'static str],
            user: &'static str,
            dbname: &'static str,
            sslmode: SslMode,
        }
        let cases = [
            Case {
                uri: "postgres://app:pw@db:5432/app",
                hosts: &["db:5432"],
                user: "app",
                dbname: "app",
                sslmode: SslMode::Prefer,
            },
            Case {
                uri: "postgresql://app@db/other",
                hosts: &["db:5432"],
                user: "app",
                dbname: "other",
                sslmode: SslMode::Prefer,
            },
            Case {
                uri: "POSTGRES://app@db",
                hosts: &["db:5432"],
                user: "app",
                dbname: "app",
                sslmode: SslMode::Prefer,
            },
            Case {
                uri: "postgres://a%40b@[::1]:6000,db2,10.0.0.3:5433/my%20db?sslmode=disable",
                hosts: &["[::1]:6000", "db2:5432", "10.0.0.3:5433"],
                user: "a@b",
                dbname: "my db",
                sslmode: SslMode::Disable,
            },
            Case {
                uri: "postgres:///app?host=db1,db2&port=6432&user=me&sslmode=require",
                hosts: &["db1:6432", "db2:6432"],
                user: "me",
                dbname: "app",
                sslmode: SslMode::Require,
            },
            Case {
                uri: "postgres://u@db/x?host=other&port=1&hostaddr=10.1.1.1&ssl=true",
                hosts: &["other:1"],
                user: "u",
                dbname: "x",
                sslmode: SslMode::Require,
            },
            Case {
                uri: "postgres://u@db?connect_timeout=10&keepalives=1&application_name=x&target_session_attrs=read-write&channel_binding=prefer",
                hosts: &["db:5432"],
                user: "u",
                dbname: "u",
                sslmode: SslMode::Prefer,
            },
            Case {
                uri: "postgres://db#isready",
                hosts: &["db:5432"],
                user: "postgres",
                dbname: "postgres",
                sslmode: SslMode::Prefer,
            },
            Case {
                uri: "postgres://?hostaddr=127.0.0.1&port=5&user=u",
                hosts: &["127.0.0.1:5"],
                user: "u",
                dbname: "u",
                sslmode: SslMode::Prefer,
            },
        ];
        for case in cases {
            let parsed = parse(case.uri).unwrap_or_else(|e| panic!("{}: {e:#}", case.uri));
            assert_eq!(hosts(&parsed), case.hosts, "{}", case.uri);
            assert_eq!(parsed.user, case.user, "{}", case.uri);
            assert_eq!(parsed.dbname, case.dbname, "{}", case.uri);
            assert_eq!(parsed.sslmode, case.sslmode, "{}", case.uri);
        }
        let with_address = parse("postgres://u@db?hostaddr=10.1.1.1").unwrap();
        assert_eq!(with_address.hosts[0].address, Some([10, 1, 1, 1].into()));
        assert_eq!(with_address.hosts[0].name, "db");
    }

    #[test]
    fn options_in_the_fragment() {
        let parsed = parse(
            "postgres://u@db/app#query=SELECT%20count(*)%20%3E%200%20FROM%20t&fail-fast=auth",
        )
        .unwrap();
        assert_eq!(
            parsed.check,
            Check::Session {
                query: "SELECT count(*) > 0 FROM t".into()
            }
        );
        assert_eq!(
            parsed.fail_fast,
            FailFast {
                auth: true,
                database: false
            }
        );
        let all = parse("postgres://u@db/app#fail-fast").unwrap();
        assert_eq!(
            all.fail_fast,
            FailFast {
                auth: true,
                database: true
            }
        );
        assert_eq!(
            parse("postgres://db#isready").unwrap().check,
            Check::IsReady
        );
        assert_eq!(
            parse("postgres://u@db").unwrap().check,
            Check::Session {
                query: "SELECT 1".into()
            }
        );
    }

    #[test]
    fn rejected_uris_say_why() {
        let cases = [
            ("postgres://db/app", "missing user name"),
            ("postgres://app@/app", "missing host"),
            ("postgres:///app?user=u", "missing host"),
            (
                "postgres://u@%2Fvar%2Frun%2Fpostgresql/app",
                "Unix-domain socket",
            ),
            ("postgres://u@db:99999/app", "invalid port '99999'"),
            ("postgres://u@db:0/app", "invalid port '0'"),
            ("postgres://u@db:x/app", "invalid port 'x'"),
            ("postgres://u@a,,b/app", "empty host"),
            ("postgres://u@[::1/app", "missing ']'"),
            ("postgres://u@[::1]x/app", "unexpected 'x'"),
            (
                "postgres://u@db/app?sslmode=bogus",
                "invalid sslmode 'bogus'",
            ),
            (
                "postgres://u@db/app?nope=1",
                "unknown query parameter 'nope'",
            ),
            ("postgres://u@db/app?sslmode", "has no value"),
            ("postgres://u@db/app?a=b=c", "second '='"),
            (
                "postgres://u@db/app?sslcert=/c.pem",
                "client certificates are not supported",
            ),
            ("postgres://u@db/app?service=x", "service files"),
            (
                "postgres://u@db/app?channel_binding=require",
                "channel_binding=require is not supported",
            ),
            ("postgres://u@db/app?gssencmode=require", "GSSAPI"),
            ("postgres://u@db/app?sslnegotiation=direct", "not supported"),
            (
                "postgres://u@db/app?target_session_attrs=master",
                "invalid target_session_attrs",
            ),
            (
                "postgres://u@db/app?load_balance_hosts=yes",
                "invalid load_balance_hosts",
            ),
            (
                "postgres://u@db/app?ssl_min_protocol_version=TLSv1.3",
                "not supported",
            ),
            ("postgres://u@db/app?sslmode=verify-full", "needs the CA"),
            ("postgres://u@db/app?sslmode=verify-ca", "needs the CA"),
            (
                "postgres://u@db/app?sslmode=require&sslrootcert=system",
                "may not be used with sslrootcert=system",
            ),
            (
                "postgres://u@db/app?sslmode=require&sslrootcert=/does/not/exist.pem",
                "cannot read CA file /does/not/exist.pem",
            ),
            ("postgres://u@db/app?hostaddr=db", "invalid hostaddr 'db'"),
            (
                "postgres://u@a,b/app?hostaddr=10.0.0.1",
                "2 host names but 1 hostaddr",
            ),
            ("postgres://u@a,b,c/app?port=1,2", "2 ports for 3 hosts"),
            ("postgres://u@db%00x/app", "'%00' is not allowed"),
            ("postgres://u@db%zz/app", "invalid percent-encoding"),
            (
                "postgres://u@db/app#nope",
                "unknown option 'nope' for postgres targets",
            ),
            (
                "postgres://u@db/app#isready&query=SELECT%201",
                "exclude each other",
            ),
            (
                "postgres://u@db/app#isready&fail-fast",
                "does nothing with 'isready'",
            ),
            (
                "postgres://u@db/app?target_session_attrs=primary#isready",
                "does not log in",
            ),
            (
                "postgres://u@db/app#fail-fast=password",
                "not a failure kind",
            ),
            (
                "postgres://u@db/app#fail-fast&fail-fast=auth",
                "given 2 times",
            ),
            ("postgres://u@bad!name/app", "invalid host name"),
            (
                "postgres://u@db/app?passfile=/does/not/exist",
                "cannot read password file /does/not/exist",
            ),
            ("mysql://u@db/app", "expected postgres://"),
            (
                "postgres://db/app?user=me@corp",
                "write any other '@' as %40",
            ),
        ];
        for (uri, expected) in cases {
            let message = format!("{:#}", parse(uri).expect_err(uri));
            assert!(message.contains(expected), "{uri}: {message}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let cases = [
            "postgres://u:hunter2@db:notaport/app",
            "postgres://u:hunter2%zz@db/app",
            "postgres://u@db/app?password=hunter2%zz",
            "postgres://u:hunter2@db/app?sslmode=verify-full",
            "postgres://u@db/app?password=hunter2&nope=1",
            "postgres://u:hun/ter2@db/app",
            "postgres://u:hun?ter2@db/app",
            "postgres://u:12#hunter2@db/app",
            "postgres://u:hun@ter2/x@db/app",
        ];
        for uri in cases {
            let message = format!("{:#}", parse(uri).expect_err(uri));
            assert!(!message.contains("hunter2"), "{uri}: {message}");
        }
        let parsed = parse("postgres://u:hunter2@db/app").unwrap();
        assert_eq!(
            parsed.hosts[0].password.as_ref().unwrap().expose(),
            "hunter2"
        );
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    #[test]
    fn password_sources_in_libpq_order() {
        let dir = tempfile::tempdir().unwrap();
        let passfile = dir.path().join("pgpass");
        std::fs::write(
            &passfile,
            "# comment\nother:*:*:*:wrong\ndb:5432:app:u:from\\:file\n*:*:*:*:fallback\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        let passfile_text = passfile.display().to_string();
        let env = |name: &str| match name {
            "PGPASSWORD" => Some("from-env".to_string()),
            "PGPASSFILE" => Some(passfile_text.clone()),
            _ => None,
        };
        let password = |uri: &str, env: &dyn Fn(&str) -> Option<String>| {
            Postgres::parse_with_env(uri, env).unwrap().hosts[0]
                .password
                .as_ref()
                .map(|secret| secret.expose().to_string())
        };
        assert_eq!(
            password("postgres://u:in-uri@db/app?password=in-query", &env).as_deref(),
            Some("in-query")
        );
        assert_eq!(
            password("postgres://u:in-uri@db/app", &env).as_deref(),
            Some("in-uri")
        );
        assert_eq!(
            password("postgres://u@db/app", &env).as_deref(),
            Some("from-env")
        );
        let no_env_password = |name: &str| env(name).filter(|_| name != "PGPASSWORD");
        assert_eq!(
            password("postgres://u@db/app", &no_env_password).as_deref(),
            Some("from:file")
        );
        assert_eq!(
            password("postgres://u@db:6000/app", &no_env_password).as_deref(),
            Some("fallback")
        );
        assert_eq!(password("postgres://db/app#isready", &env), None);

        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let message = format!(
            "{:#}",
            Postgres::parse_with_env("postgres://u@db/app", &no_env_password).unwrap_err()
        );
        assert!(message.contains("group or world access"), "{message}");
    }

    #[test]
    fn sslmodes_follow_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let certificate = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
        std::fs::write(&ca, certificate.cert.pem()).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        let home_text = home.display().to_string();
        let env = |name: &str| (name == "HOME").then(|| home_text.clone());
        // No root certificate anywhere: require checks nothing, verify-* refuse to start.
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=require", &env).is_ok());
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=verify-ca", &env).is_err());
        // ~/.postgresql/root.crt is found as libpq finds it.
        std::fs::copy(&ca, home.join(".postgresql/root.crt")).unwrap();
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=verify-full", &env).is_ok());
        let system = parse("postgres://u@db?sslrootcert=system").unwrap();
        assert_eq!(system.sslmode, SslMode::VerifyFull);
        assert!(
            parse("postgres://u@db?sslmode=disable&sslrootcert=/nope")
                .unwrap()
                .tls
                .is_none()
        );
    }

    #[test]
    fn password_file_lines() {
        let file = PasswordFile::parse("a\\:b:*:db:u:p\\\\w:x\nshort:line\n");
        assert_eq!(file.entries.len(), 1);
        assert_eq!(file.entries[0][0], "a:b");
        assert_eq!(file.entries[0][4], "p\\w:x");
    }

    #[test]
    fn server_errors_in_words() {
        let body = b"SFATAL\0C57P03\0Mthe database system is not accepting connections\0DHot standby mode is disabled.\0\0";
        let fields = ErrorFields::parse(body);
        assert_eq!(fields.code.as_deref(), Some("57P03"));
        assert_eq!(
            fields.words(),
            "the database system is not accepting connections: hot standby mode is disabled (SQLSTATE 57P03)"
        );
        assert_eq!(
            db_words("database \"x\" does not exist", None, "3D000"),
            "database \"x\" does not exist (SQLSTATE 3D000)"
        );
    }

    #[test]
    fn startup_packet_layout() {
        let packet = startup_packet(&[("user", "u")]);
        assert_eq!(packet, b"\0\0\0\x10\0\x03\0\0user\0u\0\0");
    }
}
