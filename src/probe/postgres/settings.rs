//! A postgres target as parsed: libpq's keywords from the URI, checked as libpq checks
//! them (and refused where holdup would check something else than asked), passwords from
//! where libpq finds them, and holdup's own options from the fragment.

use std::fmt;
use std::sync::Arc;

use anyhow::{Result, bail};

use super::errors::FailFast;
use super::passfile::PasswordFile;
use super::ssl::{SslMode, tls_config};
use super::uri::{FORM, Host, check_value, parse_hosts, parse_uri, reject_misplaced_at};
use crate::probe::options::{Options, Plan};
use crate::redact::Secret;

pub(super) const DEFAULT_QUERY: &str = "SELECT 1";
/// SQLSTATE 57P03 `cannot_connect_now`: starting up, shutting down, in recovery.
pub(super) const CANNOT_CONNECT_NOW: &str = "57P03";
/// holdup's own options, in the fragment.
const OPTIONS: &[&str] = &["query", "isready", "fail-fast"];

pub struct Postgres {
    /// The URI as it may be shown: no password, no fragment.
    pub(super) shown: String,
    pub(super) hosts: Vec<Host>,
    pub(super) user: String,
    pub(super) dbname: String,
    /// libpq's `options`: command-line options for the server backend.
    pub(super) server_options: Option<String>,
    pub(super) application_name: String,
    pub(super) sslmode: SslMode,
    /// Built once; None with sslmode=disable.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// What the server's certificate is checked for, and against what, in words.
    pub(super) certificate_checks: String,
    pub(super) session_attrs: SessionAttrs,
    pub(super) check: Check,
    pub(super) fail_fast: FailFast,
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

/// What "ready" means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// A full session: log in, then run the query, which must return a row whose first
    /// value is neither NULL nor false.
    Session { query: String },
    /// pg_isready: the server answers the startup packet with anything but 57P03.
    IsReady,
}

/// libpq's target_session_attrs. `prefer-standby` only orders libpq's tries; since holdup
/// tries every host, it is ready exactly when `any` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
}

impl Postgres {
    /// Parses a libpq URI whose passwords may also come from `PGPASSWORD` or a password file.
    pub fn parse(text: &str) -> Result<Postgres> {
        Self::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    pub(super) fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Postgres> {
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

        let (tls, certificate_checks) = match sslmode {
            SslMode::Disable => (None, "no TLS".to_string()),
            _ => {
                let (config, checks) = tls_config(sslmode, sslrootcert, env("HOME"))?;
                (Some(Arc::new(config)), checks)
            }
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
            certificate_checks,
            session_attrs,
            check,
            fail_fast,
        })
    }
}

impl Postgres {
    pub fn plan(&self) -> Plan {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|host| match host.address {
                Some(address) => format!("{host} (at {address})"),
                None => host.to_string(),
            })
            .collect();
        let password = if self.hosts.iter().any(|host| host.password.is_some()) {
            "given (not shown)"
        } else {
            "none"
        };
        let ready = match &self.check {
            Check::Session { query } => format!("a session runs {query:?}"),
            Check::IsReady => "the server answers the startup packet (pg_isready)".to_string(),
        };
        let fail_fast = match (self.fail_fast.auth, self.fail_fast.database) {
            (false, false) => "off",
            (true, false) => "auth",
            (false, true) => "database",
            (true, true) => "auth, database",
        };
        vec![
            ("hosts", hosts.join(", ")),
            ("user", self.user.clone()),
            ("dbname", self.dbname.clone()),
            ("password", password.to_string()),
            ("ready", ready),
            ("fail-fast", fail_fast.to_string()),
            (
                "target_session_attrs",
                self.session_attrs.name().to_string(),
            ),
            ("sslmode", self.sslmode.name().to_string()),
            ("certificate checked", self.certificate_checks.clone()),
            ("application_name", self.application_name.clone()),
        ]
    }
}

impl SessionAttrs {
    fn name(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Parses with an empty environment; the tests of the other files use it too.
    pub(in crate::probe::postgres) fn parse(text: &str) -> Result<Postgres> {
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
