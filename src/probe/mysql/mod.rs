//! `mysql://…` and `mariadb://…`: ready when the server greets, authenticates the user
//! (following its auth-switch requests), selects the database and answers `SELECT 1` or
//! the user's query; without a password, or with `#ping`, when it greets (mysqladmin ping).
//!
//! The protocol is written by hand: the greeting, TLS, three password plugins and one
//! query are a few hundred lines, while a client library would bring its own connection,
//! TLS and name resolution. Every attempt finishes the handshake and ends with COM_QUIT:
//! a connection dropped mid-handshake counts toward the server's `max_connect_errors`,
//! and enough of them block the client's host.
//!
//! - [`settings`]: the URI, ssl-mode and ssl-ca, passwords, holdup's options;
//! - [`packets`]: the packets read and written;
//! - [`auth`]: the answers to the server's password plugins.

mod auth;
mod packets;
mod settings;

use std::io;

use anyhow::anyhow;
use tokio::net::TcpStream;
use tracing::debug;

use self::auth::{
    CACHING_SHA2, ED25519, NATIVE, SHA256_PASSWORD, clear_text, first_answer, rsa_encrypted,
};
use self::packets::{
    CLIENT_CONNECT_WITH_DB, CLIENT_DEPRECATE_EOF, CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_TRANSACTIONS, COM_QUERY,
    COM_QUIT, Greeting, ServerError, Wire, auth_switch, column_count, first_value,
    handshake_response, is_end, ssl_request,
};
pub use self::settings::Mysql;
use self::settings::{Check, DEFAULT_QUERY, SslMode};
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::probe::conn::{self, Conn};
use crate::words::io_error_words;

/// Errors that a login gets when the account is refused: wrong password or user (1045),
/// no password given (1698), host not allowed (1130), plugin not supported (1251),
/// password expired (1862), account locked (3118 MySQL, 4151 MariaDB).
const AUTH_ERRORS: &[u16] = &[1045, 1698, 1130, 1251, 1862, 3118, 4151];
/// Access denied to the database (1044), unknown database (1049).
const DATABASE_ERRORS: &[u16] = &[1044, 1049];

/// Why an attempt is not ready, and whether `#fail-fast` may end the wait for it.
struct Problem {
    words: String,
    kind: Option<&'static str>,
    /// The server answered the login (a ping counts that as up).
    answered: bool,
}

impl From<String> for Problem {
    fn from(words: String) -> Self {
        Problem {
            words,
            kind: None,
            answered: false,
        }
    }
}

impl From<&ServerError> for Problem {
    fn from(error: &ServerError) -> Self {
        let kind = if AUTH_ERRORS.contains(&error.code) {
            Some("auth")
        } else if DATABASE_ERRORS.contains(&error.code) {
            Some("database")
        } else {
            None
        };
        Problem {
            words: error.words(),
            kind,
            answered: true,
        }
    }
}

impl Mysql {
    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let tcp = net.connect(&self.host, self.port, stage).await?;
        self.attempt(tcp, stage).await.map_err(|problem| {
            if self.fail_fast.covers(problem.kind) {
                Failure::Permanent(anyhow!(problem.words))
            } else {
                Failure::NotReady(anyhow!(problem.words))
            }
        })
    }

    fn io(&self, error: &io::Error, when: &str) -> Problem {
        Problem::from(format!(
            "{}: {} ({when})",
            self.authority,
            io_error_words(error)
        ))
    }

    async fn attempt(&self, tcp: TcpStream, stage: &Stage) -> Result<(), Problem> {
        stage.set(format!("waiting for the greeting of {}", self.authority));
        let mut wire = Wire::new(tcp);
        let packet = wire
            .read()
            .await
            .map_err(|error| self.io(&error, "before its greeting"))?;
        if packet.first() == Some(&0xFF) {
            // Too many connections, host blocked or not allowed: the server greets no one.
            return Err(Problem::from(&ServerError::parse(&packet)));
        }
        let greeting = Greeting::parse(&packet)
            .map_err(|words| Problem::from(format!("{}: {words}", self.authority)))?;
        debug!("{} is {}", self.authority, greeting.shown_version());
        if greeting.capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(Problem::from(format!(
                "{} is {}, older than MySQL 4.1: holdup does not speak its protocol",
                self.authority,
                greeting.shown_version()
            )));
        }
        let ping = self.check == Check::Ping;
        let offers_tls = greeting.capabilities & CLIENT_SSL != 0;
        // A ping sends no password, so it needs no TLS.
        let with_tls = match (self.ssl_mode, offers_tls) {
            _ if ping => false,
            (SslMode::Disabled, _) => false,
            (SslMode::Preferred, offers) => offers,
            (_, true) => true,
            (mode, false) => {
                return Err(Problem::from(format!(
                    "{} does not offer TLS (it has no certificate), and ssl-mode={} requires it",
                    self.authority,
                    mode.name()
                )));
            }
        };
        let mut capabilities = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_TRANSACTIONS
            | CLIENT_DEPRECATE_EOF;
        if self.db.is_some() && !ping {
            capabilities |= CLIENT_CONNECT_WITH_DB;
        }
        if with_tls {
            capabilities |= CLIENT_SSL;
        }
        capabilities &= greeting.capabilities;

        let stream: Conn = match (&self.tls, with_tls) {
            (Some(tls), true) => {
                stage.set(format!("asking {} for TLS", self.authority));
                wire.write(&ssl_request(capabilities))
                    .await
                    .map_err(|error| self.io(&error, "when asked for TLS"))?;
                conn::tls_handshake(
                    wire.stream,
                    &self.host,
                    &self.authority,
                    tls.config.clone(),
                    stage,
                )
                .await?
            }
            _ => Box::new(wire.stream),
        };
        let mut wire = Wire {
            stream,
            sequence: wire.sequence,
        };

        let password = match (&self.check, &self.password) {
            (Check::Session { .. }, Some(password)) => password.expose(),
            _ => "",
        };
        let plugin = match greeting.plugin.as_str() {
            "" => NATIVE,
            plugin => plugin,
        };
        // A plugin we do not speak is answered as mysql_native_password: the server then
        // switches to the account's plugin, which may well be one we speak.
        let (plugin, answer) = match first_answer(plugin, password, &greeting.nonce, with_tls) {
            Some(answer) => (plugin, answer),
            None => (
                NATIVE,
                first_answer(NATIVE, password, &greeting.nonce, with_tls).unwrap_or_default(),
            ),
        };
        stage.set(format!("logging in as {} to {}", self.user, self.authority));
        let db = if ping { None } else { self.db.as_deref() };
        wire.write(&handshake_response(
            capabilities,
            &self.user,
            &answer,
            db,
            plugin,
        ))
        .await
        .map_err(|error| self.io(&error, "after the login"))?;
        let login = self
            .authenticate(
                &mut wire,
                plugin,
                greeting.nonce.clone(),
                with_tls,
                password,
            )
            .await;
        if ping {
            // Any answer to the login means the server is up, as for mysqladmin ping.
            return match login {
                Ok(()) => {
                    let _ = wire.command(&[COM_QUIT]).await;
                    Ok(())
                }
                Err(problem) if problem.answered => {
                    debug!("{} is up: it answered {}", self.authority, problem.words);
                    Ok(())
                }
                Err(problem) => Err(problem),
            };
        }
        login?;
        let Check::Session { query } = &self.check else {
            return Ok(());
        };
        stage.set(if query == DEFAULT_QUERY {
            format!("running SELECT 1 on {}", self.authority)
        } else {
            format!("running the query on {}", self.authority)
        });
        let result = self
            .query(&mut wire, query, capabilities & CLIENT_DEPRECATE_EOF != 0)
            .await;
        let _ = wire.command(&[COM_QUIT]).await;
        result
    }

    /// The server's answers to the login, until OK or ERR: auth switches, and the full
    /// authentication of caching_sha2_password and sha256_password.
    async fn authenticate(
        &self,
        wire: &mut Wire<Conn>,
        plugin: &str,
        mut nonce: Vec<u8>,
        over_tls: bool,
        password: &str,
    ) -> Result<(), Problem> {
        let mut plugin = plugin.to_string();
        let io = |error: io::Error| self.io(&error, "while logging in");
        loop {
            let packet = wire.read().await.map_err(io)?;
            match packet.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => return Err(Problem::from(&ServerError::parse(&packet))),
                Some(0xFE) => {
                    let Some((switched, switched_nonce)) = auth_switch(&packet) else {
                        return Err(unsupported_plugin("mysql_old_password"));
                    };
                    plugin = switched;
                    nonce = switched_nonce;
                    let answer = first_answer(&plugin, password, &nonce, over_tls)
                        .ok_or_else(|| unsupported_plugin(&plugin))?;
                    wire.write(&answer).await.map_err(io)?;
                }
                Some(0x01) => {
                    let data = &packet[1..];
                    let answer = match (plugin.as_str(), data) {
                        // caching_sha2_password: the scramble matched the server's cache.
                        (CACHING_SHA2, [3]) => continue,
                        // Full authentication: the password itself, over TLS or encrypted.
                        (CACHING_SHA2, [4]) if over_tls => clear_text(password),
                        (CACHING_SHA2, [4]) => {
                            wire.write(&[2]).await.map_err(io)?;
                            let key = wire.read().await.map_err(io)?;
                            match key.split_first() {
                                Some((0x01, pem)) => rsa_encrypted(pem, password, &nonce)?,
                                _ => {
                                    return Err(Problem::from(format!(
                                        "{} did not send its RSA public key: use TLS (ssl-mode=REQUIRED)",
                                        self.authority
                                    )));
                                }
                            }
                        }
                        (SHA256_PASSWORD, pem) => rsa_encrypted(pem, password, &nonce)?,
                        _ => {
                            return Err(Problem::from(format!(
                                "{}: unexpected data from authentication plugin {plugin}",
                                self.authority
                            )));
                        }
                    };
                    wire.write(&answer).await.map_err(io)?;
                }
                _ => {
                    return Err(Problem::from(format!(
                        "{}: unexpected answer to the login",
                        self.authority
                    )));
                }
            }
        }
    }

    /// Ready when the query returns a row whose first value is neither NULL nor 0, so that
    /// `SELECT COUNT(*) > 0 FROM users` means what it says.
    async fn query(&self, wire: &mut Wire<Conn>, query: &str, no_eof: bool) -> Result<(), Problem> {
        let io = |error: io::Error| self.io(&error, "while running the query");
        let mut command = vec![COM_QUERY];
        command.extend_from_slice(query.as_bytes());
        wire.command(&command).await.map_err(io)?;
        let first = wire.read().await.map_err(io)?;
        let columns = match first.first() {
            Some(0x00) => return Err(Problem::from("the query returned no rows".to_string())),
            Some(0xFF) => return Err(Problem::from(ServerError::parse(&first).words())),
            Some(0xFB) => {
                return Err(Problem::from(
                    "the query asks to load a local file".to_string(),
                ));
            }
            _ => column_count(&first).unwrap_or(0),
        };
        for _ in 0..columns {
            wire.read().await.map_err(io)?;
        }
        if !no_eof {
            wire.read().await.map_err(io)?;
        }
        let row = wire.read().await.map_err(io)?;
        let verdict = if is_end(&row) {
            Err("the query returned no rows".to_string())
        } else if row.first() == Some(&0xFF) {
            Err(ServerError::parse(&row).words())
        } else {
            match first_value(&row).as_deref() {
                None => Err("the query returned NULL".to_string()),
                Some("0") => Err("the query returned 0".to_string()),
                Some(_) => Ok(()),
            }
        };
        // The rest of the result, so that COM_QUIT finds the connection between commands.
        let mut last = row;
        while !is_end(&last) && last.first() != Some(&0xFF) {
            last = wire.read().await.map_err(io)?;
        }
        verdict.map_err(Problem::from)
    }
}

fn unsupported_plugin(plugin: &str) -> Problem {
    Problem {
        words: format!(
            "the server asks for authentication plugin {plugin}, which holdup does not speak (it speaks {NATIVE}, {CACHING_SHA2}, {SHA256_PASSWORD} and {ED25519})"
        ),
        kind: Some("auth"),
        answered: true,
    }
}
