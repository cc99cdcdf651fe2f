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
//! This file makes the attempt; the target as parsed is [`settings`]'s.
//!
//! - [`settings`]: libpq's keywords checked, passwords found, holdup's options;
//! - [`uri`]: the URI into libpq's keywords, and which of them holdup takes;
//! - [`passfile`]: passwords from the password file;
//! - [`ssl`]: what sslmode means: certificate checks, and the SSLRequest and handshake;
//! - [`wire`]: the few protocol messages holdup writes and reads itself (pg_isready);
//! - [`errors`]: why a host is not ready, in words, and which failures are permanent.

mod errors;
mod passfile;
mod settings;
mod ssl;
mod uri;
mod wire;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::pin;

use anyhow::{Result, anyhow};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::io::AsyncWriteExt as _;
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tracing::debug;

use self::errors::{ErrorFields, HostFailure, login_failure, query_error_words};
pub use self::settings::Postgres;
use self::settings::{CANNOT_CONNECT_NOW, Check, DEFAULT_QUERY, SessionAttrs};
use self::ssl::{Encryption, SslMode, negotiate};
use self::uri::Host;
use self::wire::{Stream, TERMINATE, read_message, startup_packet};
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::words::{chain, io_error_words};

impl Postgres {
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
            Err(second) => Err(failure.and_then(second, retry != Encryption::Plain)),
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
        let (stream, over_tls) =
            negotiate(tcp, host, self.tls.clone(), self.sslmode, encryption, stage).await?;
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

impl fmt::Display for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}
