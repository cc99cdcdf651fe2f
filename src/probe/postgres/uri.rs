//! libpq connection URIs into libpq's keywords and values: the URI's parts, several hosts
//! with their ports and addresses, libpq's strict percent-decoding, and which parameters
//! holdup reads, ignores or refuses.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::net::{check_host_name, check_reachable};
use crate::redact::Secret;

/// The expected form, for error messages.
pub(super) const FORM: &str =
    "postgres://user[:password]@host[:port][,host[:port]...]/dbname[?param=value&...][#options]";

const DEFAULT_PORT: u16 = 5432;

/// Its `Debug` shows the password as `(redacted)`.
#[derive(Debug)]
pub(super) struct Host {
    /// The name as given (or the hostaddr when no name is): shown, checked by verify-full,
    /// looked up in the password file.
    pub(super) name: String,
    /// libpq's `hostaddr`: connect here instead of resolving the name.
    pub(super) address: Option<IpAddr>,
    pub(super) port: u16,
    pub(super) password: Option<Secret>,
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

/// The parameters holdup ignores still take only the values libpq takes: a URI libpq would
/// refuse is refused here too, rather than waited on as if it worked.
fn check_ignored(name: &str, value: &str) -> Result<()> {
    let integer = matches!(
        name,
        "connect_timeout"
            | "keepalives"
            | "keepalives_idle"
            | "keepalives_interval"
            | "keepalives_count"
            | "tcp_user_timeout"
    );
    // libpq's parse_int_param: strtol's optional white space and sign, digits that fit an
    // int, then only white space.
    if integer && value.trim().parse::<i32>().is_err() {
        bail!("invalid {name} '{value}' (expected a whole number, e.g. {name}=10)");
    }
    if matches!(name, "sslcompression" | "sslsni") && !matches!(value, "0" | "1") {
        bail!("invalid {name} '{value}' (expected 0 or 1)");
    }
    Ok(())
}

/// A parameter with a closed set of values, some of which libpq knows but holdup refuses.
pub(super) fn check_value(
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
pub(super) fn parse_uri(uri: &str) -> Result<(BTreeMap<String, String>, String)> {
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
            check_ignored(&name, &value)?;
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
pub(super) fn reject_misplaced_at(text: &str) -> Result<()> {
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
pub(super) fn parse_hosts(
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
            if let Some(address) = address.or_else(|| name.parse().ok()) {
                check_reachable(address)?;
            }
            let valid = name.parse::<IpAddr>().is_ok()
                || name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            check_host_name(&name)?;
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

#[cfg(test)]
mod tests {
    use super::super::settings::Postgres;
    use super::super::settings::tests::parse;
    use super::super::ssl::SslMode;

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
}
