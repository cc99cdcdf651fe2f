//! Why a host is not ready: what the server and tokio-postgres report, in words a person
//! can act on (a failed login, an error after login, an ErrorResponse read by hand), and
//! which of those failures the user asked to end the wait at once.

use std::io;

use anyhow::{Result, anyhow, bail};

use super::uri::Host;
use crate::attempt::Failure;
use crate::words::{chain, io_error_words, lower_first};

/// Which failures end the wait at once (exit 3) instead of being retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FailFast {
    pub(super) auth: bool,
    pub(super) database: bool,
}

impl FailFast {
    pub(super) fn parse(values: Vec<String>) -> Result<FailFast> {
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

    pub(super) fn covers(self, kind: Option<Kind>) -> bool {
        match kind {
            Some(Kind::Auth) => self.auth,
            Some(Kind::Database) => self.database,
            None => false,
        }
    }
}

/// The failures a user may choose to make permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Rejected credentials or no pg_hba.conf entry (SQLSTATE class 28, 42501 at login).
    Auth,
    /// The database does not exist (SQLSTATE 3D000).
    Database,
}

/// Why one host is not ready, with what the sslmode retry and fail-fast need to know.
#[derive(Debug)]
pub(super) struct HostFailure {
    pub(super) words: String,
    pub(super) kind: Option<Kind>,
    /// The server answered the startup with an error (libpq's condition for a second try).
    pub(super) server_rejected: bool,
    pub(super) over_tls: bool,
    pub(super) tls_failed: bool,
}

impl HostFailure {
    pub(super) fn new(words: impl Into<String>) -> Self {
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
    pub(super) fn and_then(self, second: HostFailure, second_with_tls: bool) -> HostFailure {
        let kind = if self.kind == second.kind {
            self.kind
        } else {
            None
        };
        let words = if self.words == second.words {
            self.words
        } else {
            let how = if second_with_tls {
                "with TLS"
            } else {
                "without TLS"
            };
            format!("{}; then {how}: {}", self.words, second.words)
        };
        HostFailure {
            words,
            kind,
            ..second
        }
    }

    pub(super) fn into_failure(self, fail_fast: FailFast) -> Failure {
        if fail_fast.covers(self.kind) {
            Failure::Permanent(anyhow!(self.words))
        } else {
            Failure::NotReady(anyhow!(self.words))
        }
    }
}

/// A failed startup or login in words, classified for fail-fast.
pub(super) fn login_failure(
    error: &tokio_postgres::Error,
    host: &Host,
    over_tls: bool,
) -> HostFailure {
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
pub(super) fn query_error_words(error: &tokio_postgres::Error) -> String {
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

/// The fields of an ErrorResponse that we show.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ErrorFields {
    pub(super) code: Option<String>,
    message: String,
    detail: Option<String>,
}

impl ErrorFields {
    pub(super) fn parse(body: &[u8]) -> ErrorFields {
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

    pub(super) fn words(&self) -> String {
        match &self.code {
            Some(code) => db_words(&self.message, self.detail.as_deref(), code),
            None => self.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
