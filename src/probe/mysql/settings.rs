//! A mysql target as parsed: the URI connectors and `DATABASE_URL`s use, MySQL's
//! `ssl-mode` and `ssl-ca` as its clients take them, the password from the URI, a file or
//! `MYSQL_PWD`, and holdup's own options.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};

use crate::probe::conn::{self, FailFast, PasswordFrom, Tls};
use crate::probe::options::Plan;
use crate::probe::target_url;
use crate::redact::{self, Secret};
use crate::tls::{Roots, Verify};

pub(super) const FORM: &str = "mysql://USER[:PASSWORD]@HOST[:PORT][/DB][?ssl-mode=...]";
pub(super) const DEFAULT_QUERY: &str = "SELECT 1";
const DEFAULT_PORT: u16 = 3306;
/// Where MySQL's clients read a password from, as holdup does.
const PASSWORD_VARIABLE: &str = "MYSQL_PWD";
/// The name a ping logs in with when the URI names no user; any name will do.
const PING_USER: &str = "holdup";
const OPTIONS: &[&str] = &["query", "ping", "fail-fast", "password-file"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode> {
        Ok(match text.to_ascii_uppercase().as_str() {
            "DISABLED" => SslMode::Disabled,
            "PREFERRED" => SslMode::Preferred,
            "REQUIRED" => SslMode::Required,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
            _ => bail!(
                "invalid ssl-mode '{text}' (expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
            ),
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// What "ready" means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Log in, select the database, run the query.
    Session { query: String },
    /// mysqladmin ping: the server greets; holdup completes the handshake with an empty
    /// password (so the server counts no aborted connection) and any answer is up.
    Ping,
}

pub struct Mysql {
    pub(super) host: String,
    pub(super) port: u16,
    /// `host:port`, for messages.
    pub(super) authority: String,
    pub(super) user: String,
    pub(super) password: Option<Secret>,
    password_from: Option<PasswordFrom>,
    pub(super) db: Option<String>,
    pub(super) ssl_mode: SslMode,
    /// Built once; None with ssl-mode=DISABLED.
    pub(super) tls: Option<Tls>,
    pub(super) check: Check,
    pub(super) fail_fast: FailFast,
    shown: String,
}

impl Mysql {
    pub fn parse(text: &str) -> Result<Mysql> {
        Self::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    pub(super) fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Mysql> {
        let (url, mut options) = target_url::parse(text)?;
        let query = options.take("query")?;
        let ping = options.take_switch("ping")?;
        let fail_fast = FailFast::take(&mut options, &["auth", "database"])?;
        let password_file = options.take("password-file")?;
        options.finish(url.scheme(), OPTIONS)?;

        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| anyhow!("missing host (expected {FORM})"))?
            .to_string();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            bail!("invalid port 0 (expected {FORM})");
        }
        let mut ssl_mode = None;
        let mut ssl_ca = None;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "ssl-mode" | "ssl_mode" => ssl_mode = Some(SslMode::parse(&value)?),
                "ssl-ca" | "ssl_ca" => ssl_ca = Some(PathBuf::from(value.as_ref())),
                other => bail!(
                    "unknown query parameter '{other}' (holdup reads ssl-mode and ssl-ca; its own options go after '#')"
                ),
            }
        }
        let db = match url.path() {
            "" | "/" => None,
            path if path[1..].contains('/') => {
                bail!("invalid database name '{}' (expected {FORM})", &path[1..])
            }
            path => Some(conn::percent_decode_strict(&path[1..], "database name")?),
        };
        let user = match url.username() {
            "" => None,
            user => Some(conn::percent_decode_strict(user, "user name")?),
        };
        let (password, password_from) =
            conn::password(&url, password_file, Some(PASSWORD_VARIABLE), env, "URI")?.unzip();

        let check = if ping || password.is_none() {
            if query.is_some() || !fail_fast.is_empty() {
                let why = if ping {
                    "'ping' does not log in"
                } else {
                    "without a password holdup only pings the server (give one in the URI, MYSQL_PWD or #password-file)"
                };
                bail!("options 'query' and 'fail-fast' need a login, and {why}");
            }
            Check::Ping
        } else {
            Check::Session {
                query: query.unwrap_or_else(|| DEFAULT_QUERY.to_string()),
            }
        };
        let user = match (user, &check) {
            (Some(user), _) => user,
            (None, Check::Ping) => PING_USER.to_string(),
            (None, Check::Session { .. }) => bail!("missing user name (expected {FORM})"),
        };

        // As MySQL's clients: a CA alone means VERIFY_CA.
        let ssl_mode = match (ssl_mode, &ssl_ca) {
            (Some(mode), _) => mode,
            (None, Some(_)) => SslMode::VerifyCa,
            (None, None) => SslMode::Preferred,
        };
        let roots = match (ssl_mode, ssl_ca) {
            (SslMode::VerifyCa | SslMode::VerifyIdentity, Some(ca)) => Roots::File(ca),
            (SslMode::VerifyIdentity, None) => Roots::BuiltIn,
            (SslMode::VerifyCa, None) => {
                bail!("ssl-mode=VERIFY_CA needs the CA: add ssl-ca=/path/to/ca.pem")
            }
            (mode, Some(_)) => bail!(
                "ssl-ca is read only with ssl-mode=VERIFY_CA or VERIFY_IDENTITY; ssl-mode={} checks no certificate",
                mode.name()
            ),
            (_, None) => Roots::BuiltIn,
        };
        let verify = match ssl_mode {
            SslMode::VerifyIdentity => Verify::Full,
            SslMode::VerifyCa => Verify::ChainOnly,
            _ => Verify::Nothing,
        };
        let tls = match ssl_mode {
            SslMode::Disabled => None,
            _ => Some(Tls::new(roots, verify, "ssl-ca=FILE")?),
        };
        Ok(Mysql {
            authority: format!("{host}:{port}"),
            host,
            port,
            user,
            password,
            password_from,
            db,
            ssl_mode,
            tls,
            check,
            fail_fast,
            shown: redact::url(&url),
        })
    }

    pub fn plan(&self) -> Plan {
        let ping = self.check == Check::Ping;
        let ready = match &self.check {
            Check::Session { query } => format!("a session runs {query:?}"),
            Check::Ping if self.password.is_none() => {
                "the server greets (mysqladmin ping, as no password is given)".to_string()
            }
            Check::Ping => "the server greets (mysqladmin ping, #ping)".to_string(),
        };
        let user = if ping && self.user == PING_USER {
            format!("{PING_USER} (a ping logs in with any name)")
        } else {
            self.user.clone()
        };
        let tls = match (ping, self.ssl_mode) {
            (true, _) => "none (a ping sends no password)",
            (false, SslMode::Disabled) => "never",
            (false, SslMode::Preferred) => "when the server offers it",
            (false, _) => "always",
        };
        let mut plan = vec![
            ("address", self.authority.clone()),
            ("user", user),
            (
                "database",
                self.db.clone().unwrap_or_else(|| "none".to_string()),
            ),
            ("password", PasswordFrom::plan(self.password_from.as_ref())),
            ("ready", ready),
            ("fail-fast", self.fail_fast.to_string()),
            ("ssl-mode", self.ssl_mode.name().to_string()),
            ("tls", tls.to_string()),
        ];
        if let (Some(tls), false) = (&self.tls, ping) {
            // Named as this kind takes it.
            plan.extend(
                tls.plan()
                    .into_iter()
                    .map(|(name, value)| (if name == "ca" { "ssl-ca" } else { name }, value)),
            );
        }
        plan
    }
}

impl fmt::Display for Mysql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Mysql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mysql")
            .field("target", &self.shown)
            .field("user", &self.user)
            .field("ssl_mode", &self.ssl_mode)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Mysql> {
        Mysql::parse_with_env(text, &|_| None)
    }

    #[test]
    fn accepted_targets() {
        let session = |query: &str| Check::Session {
            query: query.to_string(),
        };
        let cases = [
            (
                "mysql://app:pw@db/shop",
                "db:3306",
                "app",
                Some("shop"),
                SslMode::Preferred,
                session("SELECT 1"),
                "mysql://app@db/shop",
            ),
            (
                "mariadb://app:pw@[::1]:3307/?ssl-mode=disabled",
                "[::1]:3307",
                "app",
                None,
                SslMode::Disabled,
                session("SELECT 1"),
                "mariadb://app@[::1]:3307/?ssl-mode=disabled",
            ),
            (
                "mysql://db:3306",
                "db:3306",
                "holdup",
                None,
                SslMode::Preferred,
                Check::Ping,
                "mysql://db:3306",
            ),
            (
                "mysql://app:pw@db/a%2Db?ssl_mode=REQUIRED#ping",
                "db:3306",
                "app",
                Some("a-b"),
                SslMode::Required,
                Check::Ping,
                "mysql://app@db/a%2Db?ssl_mode=REQUIRED",
            ),
            (
                "mysql://app:pw@db/shop#query=SELECT%20COUNT(*)%20%3E%200%20FROM%20t",
                "db:3306",
                "app",
                Some("shop"),
                SslMode::Preferred,
                session("SELECT COUNT(*) > 0 FROM t"),
                "mysql://app@db/shop",
            ),
        ];
        for (input, authority, user, db, ssl_mode, check, shown) in cases {
            let mysql = parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(mysql.authority, authority, "{input}");
            assert_eq!(mysql.user, user, "{input}");
            assert_eq!(mysql.db.as_deref(), db, "{input}");
            assert_eq!(mysql.ssl_mode, ssl_mode, "{input}");
            assert_eq!(mysql.check, check, "{input}");
            assert_eq!(mysql.to_string(), shown, "{input}");
            assert!(!format!("{mysql:?}").contains("pw"), "{input}");
        }
        let from_env = Mysql::parse_with_env("mysql://app@db", &|name| {
            (name == "MYSQL_PWD").then(|| "pw".into())
        })
        .unwrap();
        assert_eq!(from_env.check, session("SELECT 1"));
        assert_eq!(from_env.password.as_ref().map(Secret::expose), Some("pw"));
    }

    #[test]
    fn rejected_targets_say_why() {
        let cases = [
            ("mysql://", "missing host"),
            ("mysql://app:pw@db:99999", "invalid port number"),
            ("mysql://app:pw@db:0", "port 0 cannot be connected to"),
            ("mysql://:pw@db", "missing user name"),
            ("mysql://app:pw@db/a/b", "invalid database name 'a/b'"),
            ("mysql://app:pw@db/%zz", "invalid percent-encoding"),
            (
                "mysql://app:pw@db?ssl-mode=sometimes",
                "invalid ssl-mode 'sometimes'",
            ),
            (
                "mysql://app:pw@db?sslmode=REQUIRED",
                "unknown query parameter 'sslmode'",
            ),
            ("mysql://app:pw@db?ssl-mode=VERIFY_CA", "needs the CA"),
            (
                "mysql://app:pw@db?ssl-mode=REQUIRED&ssl-ca=/ca.pem",
                "checks no certificate",
            ),
            (
                "mysql://app:pw@db?ssl-ca=/does/not/exist.pem",
                "cannot read CA file",
            ),
            (
                "mysql://app:pw@db#nope",
                "unknown option 'nope' for mysql targets",
            ),
            (
                "mysql://app:pw@db#ping&query=SELECT%201",
                "'ping' does not log in",
            ),
            ("mysql://app@db#fail-fast", "without a password"),
            ("mysql://app:pw@db#fail-fast=password", "not a failure kind"),
            ("mysql://app:pw@db#password-file=/x", "give one of them"),
            (
                "mysql://app@db#password-file=/does/not/exist",
                "cannot read password file",
            ),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains(":pw"), "{input}: {message}");
        }
    }
}
