//! What the kinds that speak a protocol of their own over TCP share (mysql, redis, amqp):
//! the connection, plain or TLS, with a failed handshake in words; the https-style TLS
//! options; a password from the URL, a file or a variable, and where it came from; and
//! `#fail-fast` with a kind's own list of failures. Each with what `--dry-run` shows of it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::options::{Options, Plan};
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact::Secret;
use crate::tls::{self, Roots, Verify};
use crate::words::io_error_words;

/// A connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Conn = Box<dyn Io>;

/// The TLS handshake with `host` (the name the certificate is checked against) over `io`,
/// whose failure says what the server's certificate or the connection did.
pub async fn tls_handshake<S: Io + 'static>(
    io: S,
    host: &str,
    shown: &str,
    config: Arc<rustls::ClientConfig>,
    stage: &Stage,
) -> Result<Conn, String> {
    stage.set(format!("TLS handshake with {shown}"));
    let name = server_name(host)?;
    match tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
    {
        Ok(stream) => Ok(Box::new(stream)),
        Err(error) => {
            let reason = match error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls_error) => tls::error_words(tls_error),
                None => io_error_words(&error),
            };
            Err(format!("TLS handshake with {shown} failed: {reason}"))
        }
    }
}

/// A connection to `host`:`port` (`authority` as shown), through TLS when `tls` is given.
pub async fn open(
    net: &Net,
    host: &str,
    port: u16,
    authority: &str,
    tls: Option<&Tls>,
    stage: &Stage,
) -> Result<Conn, Failure> {
    let tcp = net.connect(host, port, stage).await?;
    match tls {
        Some(tls) => Ok(
            tls_handshake(tcp, host, authority, tls.config.clone(), stage)
                .await
                .map_err(|words| anyhow::anyhow!(words))?,
        ),
        None => Ok(Box::new(tcp)),
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(bare.to_string())
            .map_err(|_| format!("'{bare}' is not a valid TLS server name")),
    }
}

/// A TLS client configuration, with the roots and checks it was built from, for
/// `--dry-run`.
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub roots: Roots,
    pub verify: Verify,
}

impl Tls {
    /// `give_ca` says how this kind of target is given a CA, for the hint when a
    /// certificate is not trusted.
    pub fn new(roots: Roots, verify: Verify, give_ca: &'static str) -> Result<Tls> {
        Ok(Tls {
            config: Arc::new(tls::client_config(&roots, verify, give_ca)?),
            roots,
            verify,
        })
    }

    /// What `--dry-run` shows of it: the roots (unless no certificate is checked, where
    /// they would mislead) and the checks.
    pub fn plan(&self) -> Plan {
        let roots = match self.verify {
            Verify::Nothing => "none (no certificate is checked)".to_string(),
            _ => self.roots.to_string(),
        };
        vec![
            ("ca", roots),
            ("certificate checked", self.verify.to_string()),
        ]
    }
}

/// The TLS options of https targets, `#ca=FILE` and `#insecure`, for a kind whose TLS
/// scheme is `tls_scheme`: a configuration when `with_tls`, and an error when the options
/// are given to the plain scheme (they would check nothing).
pub fn https_like_tls(
    options: &mut Options,
    with_tls: bool,
    tls_scheme: &str,
) -> Result<Option<Tls>> {
    let ca = options.take("ca")?.map(PathBuf::from);
    let insecure = options.take_switch("insecure")?;
    if !with_tls {
        if ca.is_some() || insecure {
            bail!("options 'ca' and 'insecure' are for {tls_scheme}:// targets");
        }
        return Ok(None);
    }
    if ca.is_some() && insecure {
        bail!("options 'ca' and 'insecure' exclude each other: insecure checks no certificate");
    }
    let roots = ca.map_or(Roots::BuiltIn, Roots::File);
    let verify = if insecure {
        Verify::Nothing
    } else {
        Verify::Full
    };
    Tls::new(roots, verify, "#ca=FILE").map(Some)
}

/// The TLS settings of a kind whose TLS comes with its scheme (`rediss`, `amqps`).
pub fn plan_tls(tls: Option<&Tls>) -> Plan {
    match tls {
        None => vec![("tls", "no".to_string())],
        Some(tls) => {
            let mut plan = vec![("tls", "yes".to_string())];
            plan.extend(tls.plan());
            plan
        }
    }
}

/// Where a password was found: `--dry-run` says that, never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordFrom {
    Url,
    File(String),
    Variable(&'static str),
}

impl PasswordFrom {
    /// The password setting of a plan: whether there is one, and where it comes from.
    pub fn plan(from: Option<&PasswordFrom>) -> String {
        match from {
            None => "none".to_string(),
            Some(PasswordFrom::Url) => "given in the URL (not shown)".to_string(),
            Some(PasswordFrom::File(path)) => format!("read from {path} (not shown)"),
            Some(PasswordFrom::Variable(name)) => format!("from ${name} (not shown)"),
        }
    }
}

/// The password of a target's URL: given in the URL (percent-decoded), else read from
/// `#password-file`, else taken from `variable` when it is set and not empty. Both a
/// password in the URL and a file is a usage error: which one should win is a guess.
/// `url_word` is what the kind's users call the URL ("URI" for MySQL's connectors).
pub fn password(
    url: &url::Url,
    password_file: Option<String>,
    variable: Option<&'static str>,
    env: &dyn Fn(&str) -> Option<String>,
    url_word: &str,
) -> Result<Option<(Secret, PasswordFrom)>> {
    let in_url = url
        .password()
        .map(|password| percent_decode_strict(password, "password"))
        .transpose()?;
    Ok(match (in_url, password_file) {
        (Some(_), Some(_)) => {
            bail!("a password in the {url_word} and option 'password-file': give one of them")
        }
        (Some(password), None) => Some((Secret::new(password), PasswordFrom::Url)),
        (None, Some(file)) => Some((read_password_file(&file)?, PasswordFrom::File(file))),
        (None, None) => variable.and_then(|variable| {
            env(variable)
                .filter(|value| !value.is_empty())
                .map(|value| (Secret::new(value), PasswordFrom::Variable(variable)))
        }),
    })
}

/// A password kept in a file (a mounted Kubernetes or compose secret): the whole file, less
/// one trailing line break. An unreadable or empty file is a usage error.
pub fn read_password_file(path: &str) -> Result<Secret> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read password file {path}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("password file {path} is not UTF-8 text"))?;
    let text = text
        .strip_suffix('\n')
        .map(|text| text.strip_suffix('\r').unwrap_or(text))
        .unwrap_or(&text);
    if text.is_empty() {
        bail!("password file {path} is empty");
    }
    Ok(Secret::new(text))
}

/// Which failures end the wait at once (exit 3): `#fail-fast` alone means all of a kind's
/// `kinds`, `#fail-fast=a,b` those named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailFast(Vec<&'static str>);

impl FailFast {
    pub fn take(options: &mut Options, kinds: &[&'static str]) -> Result<FailFast> {
        let values = options.take_all("fail-fast");
        let value = match values.as_slice() {
            [] => return Ok(FailFast::default()),
            [value] => value,
            _ => bail!(
                "option 'fail-fast' is given {} times; give it once",
                values.len()
            ),
        };
        if value.is_empty() {
            return Ok(FailFast(kinds.to_vec()));
        }
        let mut chosen = Vec::new();
        for item in value.split(',').map(str::trim) {
            match kinds.iter().find(|kind| **kind == item) {
                Some(kind) => chosen.push(*kind),
                None => bail!(
                    "invalid option 'fail-fast={value}': '{item}' is not a failure kind (expected fail-fast, or fail-fast= with one or more of {})",
                    kinds.join(", ")
                ),
            }
        }
        Ok(FailFast(chosen))
    }

    pub fn covers(&self, kind: Option<&str>) -> bool {
        kind.is_some_and(|kind| self.0.contains(&kind))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FailFast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("off")
        } else {
            f.write_str(&self.0.join(", "))
        }
    }
}

/// Decodes `%XX` escapes strictly: a `%` not followed by two hex digits is an error, not
/// kept as it is, so that a mistyped escape never names another user or vhost.
pub fn percent_decode_strict(text: &str, what: &str) -> Result<String> {
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
                Some(byte) => decoded.push(byte),
                None => bail!(
                    "invalid percent-encoding in the {what} (expected % and two hex digits, e.g. %2f for '/')"
                ),
            }
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded)
        .map_err(|_| anyhow::anyhow!("the {what} is not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_fast_names_a_kinds_own_failures() {
        let parse = |fragment: &str| {
            let mut options = Options::parse(Some(fragment)).unwrap();
            FailFast::take(&mut options, &["auth", "vhost"])
        };
        assert_eq!(parse("").unwrap(), FailFast::default());
        assert_eq!(parse("fail-fast").unwrap(), FailFast(vec!["auth", "vhost"]));
        assert_eq!(parse("fail-fast=vhost").unwrap(), FailFast(vec!["vhost"]));
        assert!(parse("fail-fast=auth").unwrap().covers(Some("auth")));
        assert!(!parse("fail-fast=auth").unwrap().covers(Some("vhost")));
        assert!(!parse("fail-fast").unwrap().covers(None));
        for (bad, expected) in [
            ("fail-fast=database", "one or more of auth, vhost"),
            ("fail-fast&fail-fast", "given 2 times"),
        ] {
            let message = format!("{:#}", parse(bad).unwrap_err());
            assert!(message.contains(expected), "{bad}: {message}");
        }
    }

    #[test]
    fn plans_name_the_source_of_a_password_never_its_value() {
        let cases = [
            (None, "none"),
            (Some(PasswordFrom::Url), "given in the URL (not shown)"),
            (
                Some(PasswordFrom::File("/run/secrets/db".to_string())),
                "read from /run/secrets/db (not shown)",
            ),
            (
                Some(PasswordFrom::Variable("MYSQL_PWD")),
                "from $MYSQL_PWD (not shown)",
            ),
        ];
        for (from, expected) in cases {
            assert_eq!(PasswordFrom::plan(from.as_ref()), expected);
        }
        assert_eq!(FailFast::default().to_string(), "off");
        assert_eq!(FailFast(vec!["auth", "vhost"]).to_string(), "auth, vhost");
        let insecure = Tls::new(Roots::BuiltIn, Verify::Nothing, "#ca=FILE").unwrap();
        assert_eq!(
            plan_tls(Some(&insecure)),
            [
                ("tls", "yes".to_string()),
                ("ca", "none (no certificate is checked)".to_string()),
                ("certificate checked", "nothing".to_string()),
            ]
        );
        assert_eq!(plan_tls(None), [("tls", "no".to_string())]);
    }

    #[test]
    fn strict_percent_decoding() {
        let cases = [
            ("%2f", Some("/")),
            ("%2Fprod", Some("/prod")),
            ("a%20b", Some("a b")),
            ("plain", Some("plain")),
            ("%zz", None),
            ("%2", None),
            ("%", None),
            ("%ff", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                percent_decode_strict(input, "vhost").ok().as_deref(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn password_files() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], Option<&str>); 5] = [
            (b"s3cret\n", Some("s3cret")),
            (b"s3cret\r\n", Some("s3cret")),
            (b"two words \n\n", Some("two words \n")),
            (b"\n", None),
            (b"\xff", None),
        ];
        for (index, (content, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(index.to_string());
            std::fs::write(&path, content).unwrap();
            let read = read_password_file(path.to_str().unwrap());
            assert_eq!(
                read.ok().as_ref().map(Secret::expose),
                expected,
                "{content:?}"
            );
        }
        let message = format!("{:#}", read_password_file("/does/not/exist").unwrap_err());
        assert!(message.contains("cannot read password file /does/not/exist"));
    }
}
