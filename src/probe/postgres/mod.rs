//! `postgres://…` and `postgresql://…` (libpq connection URIs): ready when the server takes a
//! real session (startup, authentication, `SELECT 1` or the user's query), or, with
//! `#isready`, when it answers the startup packet and is not starting up (pg_isready).
//!
//! The URI is parsed here rather than by the `url` crate because libpq allows several hosts
//! (`postgres://a:5432,b:5433/db`), which are not URLs. Query parameters keep libpq's
//! meaning; holdup's own options are in the fragment. Connections, SSL negotiation and the
//! TLS handshake are ours (names resolve through [`Net`], TLS through [`crate::tls`]);
//! tokio-postgres then speaks the protocol over the stream we hand it.
//!
//! - [`uri`]: the URI into libpq's keywords, and which of them holdup takes;
//! - [`passfile`]: passwords from the password file;
//! - [`ssl`]: what sslmode means: certificate checks, and the SSLRequest and handshake;
//! - [`wire`]: the few protocol messages holdup writes and reads itself (pg_isready);
//! - [`errors`]: what the server and tokio-postgres report, in words.

mod errors;
mod passfile;
mod ssl;
mod uri;
mod wire;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tracing::debug;

use self::errors::{ErrorFields, login_failure, query_error_words};
use self::passfile::PasswordFile;
use self::ssl::{Encryption, SslMode, tls_config};
use self::uri::{check_value, parse_hosts, parse_uri, reject_misplaced_at};
use self::wire::{TERMINATE, read_message, startup_packet};
use super::{Failure, Options, Stage};
use crate::net::Net;
use crate::redact::Secret;
use crate::words::{chain, io_error_words};

const DEFAULT_QUERY: &str = "SELECT 1";
/// SQLSTATE 57P03 `cannot_connect_now`: starting up, shutting down, in recovery.
const CANNOT_CONNECT_NOW: &str = "57P03";
/// The expected form, for error messages.
const FORM: &str =
    "postgres://user[:password]@host[:port][,host[:port]...]/dbname[?param=value&...][#options]";

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with an empty environment; the tests of the other files use it too.
    pub(super) fn parse(text: &str) -> Result<Postgres> {
        Postgres::parse_with_env(text, &|_| None)
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
}
