//! Targets: the URL forms holdup understands, one probe per form.
//!
//! A target is parsed once, before anything is probed (a bad one is a usage error), then
//! checked again and again by the scheduler. Adding a kind of target means one new file
//! here, one variant of [`Probe`] and its arms in [`Target::parse`] and [`Target::check`].

mod dns;
mod http;
mod k8s;
mod options;
mod postgres;
mod tcp;

use std::fmt;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use url::Url;

use crate::net::Net;
use crate::redact;
pub use options::Options;

/// One thing to wait for, as given on the command line.
pub struct Target {
    probe: Probe,
    /// The target as it may be shown: without password or options.
    shown: String,
}

enum Probe {
    Tcp(tcp::Tcp),
    Http(Box<http::Http>),
    Postgres(Box<postgres::Postgres>),
    Dns(Box<dns::Dns>),
    K8s(Box<k8s::K8s>),
}

/// The URL schemes accepted, for error messages.
const SCHEMES: &str = "tcp, http, https, postgres, postgresql, dns, k8s";

impl Target {
    /// Parses `scheme://...#options`, or a bare `host:port` as a TCP target.
    pub fn parse(text: &str) -> Result<Target> {
        Self::parse_url(text).with_context(|| format!("invalid target '{}'", redact::text(text)))
    }

    fn parse_url(text: &str) -> Result<Target> {
        let text = text.trim();
        if text.is_empty() {
            bail!("empty target (expected e.g. tcp://db:5432 or http://api:8080/health)");
        }
        // libpq URIs may name several hosts (`postgres://a:5432,b:5432/db`): not URLs.
        let scheme = text
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if let Some("postgres" | "postgresql") = scheme.as_deref() {
            let probe = postgres::Postgres::parse(text)?;
            return Ok(Target {
                shown: probe.shown().to_string(),
                probe: Probe::Postgres(Box::new(probe)),
            });
        }
        let url = if is_host_port(text) {
            Url::parse(&format!("tcp://{text}"))
        } else {
            Url::parse(text)
        };
        let url = url.map_err(|error| match error {
            url::ParseError::RelativeUrlWithoutBase => {
                anyhow::anyhow!(
                    "expected a URL such as tcp://host:port or http://host/path, or host:port"
                )
            }
            other => anyhow::anyhow!("{other}"),
        })?;
        let options = Options::parse(url.fragment())?;
        let probe = match url.scheme() {
            "tcp" => Probe::Tcp(tcp::Tcp::parse(&url, options)?),
            "http" | "https" => Probe::Http(Box::new(http::Http::parse(&url, options)?)),
            "dns" => Probe::Dns(Box::new(dns::Dns::parse(&url, options)?)),
            "k8s" => Probe::K8s(Box::new(k8s::K8s::parse(&url, options)?)),
            other => bail!("unknown scheme '{other}' (expected one of {SCHEMES})"),
        };
        Ok(Target {
            shown: redact::url(&url),
            probe,
        })
    }

    /// One attempt: is the target ready now?
    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        match &self.probe {
            Probe::Tcp(probe) => probe.check(net, stage).await,
            Probe::Http(probe) => probe.check(net, stage).await,
            Probe::Postgres(probe) => probe.check(net, stage).await,
            Probe::Dns(probe) => probe.check(net, stage).await,
            Probe::K8s(probe) => probe.check(net, stage).await,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.shown)
    }
}

/// `host:port` without a scheme, as other wait tools accept it (`db:5432`, `[::1]:5432`).
pub fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    port_ok && host_ok
}

/// Why an attempt found its target not ready.
#[derive(Debug)]
pub enum Failure {
    /// Not ready yet; another attempt may succeed.
    NotReady(anyhow::Error),
    /// Waiting cannot help (a failed Job, a rejected password with fail-fast): exit 3.
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::NotReady(error)
    }
}

/// What an attempt is doing right now ("connecting to 10.0.0.5:5432"), so that an attempt
/// cut off by its timeout can say where it was stuck.
#[derive(Clone, Debug, Default)]
pub struct Stage(Arc<Mutex<Doing>>);

#[derive(Debug, Default)]
struct Doing {
    step: String,
    /// Set while the attempt waits, on a healthy connection, for its target to change.
    waiting: Option<String>,
}

impl Stage {
    pub fn set(&self, doing: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            current.step = doing.into();
            current.waiting = None;
        }
    }

    pub fn get(&self) -> String {
        self.0
            .lock()
            .map(|current| current.step.clone())
            .unwrap_or_default()
    }

    /// The attempt is not stuck but waiting to be told of a change (a Kubernetes watch),
    /// and `reason` is why the target is not ready as of now. An attempt that runs out of
    /// time in this state is reported with `reason`, not as a timeout.
    pub fn waiting(&self, reason: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            current.waiting = Some(reason.into());
        }
    }

    /// The reason given to [`Stage::waiting`], unless a later step replaced it.
    pub fn waiting_reason(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|current| current.waiting.clone())
    }
}

/// Host and port of a URL whose scheme has no default port: both required.
fn host_and_port(url: &Url, example: &str) -> Result<(String, u16)> {
    let host = url.host_str().filter(|host| !host.is_empty());
    match (host, url.port()) {
        (Some(host), Some(port)) => Ok((host.to_string(), port)),
        (None, _) => bail!("missing host (expected {example})"),
        (Some(_), None) => bail!("missing port (expected {example})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_targets_and_how_they_are_shown() {
        let cases = [
            ("tcp://db:5432", "tcp://db:5432"),
            ("db:5432", "tcp://db:5432"),
            ("127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("[::1]:80", "tcp://[::1]:80"),
            ("  tcp://[::1]:5432  ", "tcp://[::1]:5432"),
            (
                "http://api:8080/health?deep=1#status=200",
                "http://api:8080/health?deep=1",
            ),
            ("https://user:pw@api/health", "https://user@api/health"),
            (
                "postgres://app:pw@db:5432/app?sslmode=require#isready",
                "postgres://app@db:5432/app?sslmode=require",
            ),
            (
                "postgresql://app:pw@a:5432,b:5433/app#fail-fast",
                "postgresql://app@a:5432,b:5433/app",
            ),
        ];
        for (input, shown) in cases {
            let target = Target::parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(target.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn rejected_targets_say_why() {
        let cases = [
            ("", "empty target"),
            ("db", "expected a URL"),
            (
                "htp://db:80",
                "unknown scheme 'htp' (expected one of tcp, http, https, postgres, postgresql, dns, k8s)",
            ),
            ("tcp://db", "missing port"),
            ("tcp://:80", "empty host"),
            ("tcp://db:99999", "invalid port number"),
            ("tcp://db:80/path", "tcp targets have no path"),
            ("tcp://db:80#x=1", "tcp targets take no options"),
            ("tcp://u:secret@db:80", "credentials"),
            ("http://db/#status=600", "status"),
            ("http://db/#nope=1", "unknown option 'nope'"),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", Target::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains("secret"), "{input}: {message}");
        }
    }

    /// Whatever is typed, parsing answers with a target or an error, never a panic.
    #[test]
    fn no_input_makes_parsing_panic() {
        const PIECES: &[&str] = &[
            "tcp://",
            "http://",
            "https://",
            "postgres://",
            "postgresql://",
            "dns://",
            "k8s://",
            "x://",
            "://",
            "user",
            ":",
            "@",
            "[",
            "]",
            "::1",
            "%",
            "%zz",
            "%00",
            "#",
            "&",
            "=",
            "?",
            "/",
            "//",
            "..",
            "-",
            ",",
            "0",
            "65535",
            "99999",
            "host",
            "ns/svc",
            "a=b",
            "status=",
            "sslmode=",
            "type=",
            "\u{0}",
            "é",
            " ",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64: reproducible without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let length = next() % 8;
            let input: String = (0..length)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let _ = Target::parse(&input);
        }
    }

    #[test]
    fn host_port_detection() {
        for yes in ["db:5432", "a.b-c_d:1", "[::1]:80", "10.0.0.1:65535"] {
            assert!(is_host_port(yes), "{yes}");
        }
        for no in [
            "db",
            "db:",
            ":80",
            "fe80::1",
            "http://x:1",
            "db:port",
            "db:123456",
            "[zz]:80",
        ] {
            assert!(!is_host_port(no), "{no}");
        }
    }
}
