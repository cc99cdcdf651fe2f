//! Targets: the forms holdup understands, one kind per file, and [`KINDS`], the one table
//! of them.
//!
//! A target is parsed once, before anything is probed (a bad one is a usage error), then
//! checked again and again by the scheduler. Every kind's type has the same three parts:
//! `parse(text) -> Result<Self>` (the whole target as typed; URL kinds read it through
//! [`target_url`], postgres reads libpq's URIs itself), `check(&self, &Net, &Stage)` (one
//! attempt, knowing nothing of time), `plan(&self) -> Plan` (what an attempt would use,
//! defaults filled in, for `--dry-run`) and `Display` (the target as it may be shown: no
//! password, no options). The row of a kind in [`kinds!`] below gives its schemes and the
//! lines `--help` shows; parsing by scheme, the "unknown scheme" message, `--help` and the
//! dispatch of attempts and plans all come from those rows.

mod amqp;
mod conn;
mod dns;
mod exec;
mod file;
mod grpc;
mod http;
mod k8s;
mod mysql;
mod options;
mod postgres;
mod redis;
mod target_url;
mod tcp;
mod unix;

use std::fmt;

use anyhow::{Result, anyhow, bail};

use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact;

pub use self::options::Plan;

/// One kind of target, as the table lists it.
pub struct Kind {
    /// The URL schemes that select it, lower case.
    pub schemes: &'static [&'static str],
    /// The forms shown by `--help`, each with what "ready" means for it.
    pub forms: &'static [(&'static str, &'static str)],
    parse: fn(&str) -> Result<Probe>,
}

/// Declares the kinds of target from one row each: the [`Probe`] enum, the [`KINDS`] table
/// and the dispatch of an attempt to the kind's `check`.
macro_rules! kinds {
    ($( $variant:ident($probe:ty) {
        schemes: [$($scheme:literal),+ $(,)?],
        forms: [$(($form:literal, $meaning:literal)),+ $(,)?] $(,)?
    } )+) => {
        /// A parsed target of one kind; boxed, as kinds differ much in size.
        enum Probe {
            $($variant(Box<$probe>),)+
        }

        /// Every kind of target, in the order `--help` lists them.
        pub const KINDS: &[Kind] = &[$(
            Kind {
                schemes: &[$($scheme),+],
                forms: &[$(($form, $meaning)),+],
                parse: |text| Ok(Probe::$variant(Box::new(<$probe>::parse(text)?))),
            },
        )+];

        impl Probe {
            async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
                // Boxed: unboxed, every target's loop would hold room for the largest
                // kind's attempt (9 KB), 90 MB for a list of 10,000.
                match self {
                    $(Probe::$variant(probe) => Box::pin(probe.check(net, stage)).await,)+
                }
            }

            fn plan(&self) -> Plan {
                match self {
                    $(Probe::$variant(probe) => probe.plan(),)+
                }
            }

            /// As it may be shown: no password, no options.
            fn shown(&self) -> String {
                match self {
                    $(Probe::$variant(probe) => probe.to_string(),)+
                }
            }
        }
    };
}

kinds! {
    Tcp(tcp::Tcp) {
        schemes: ["tcp"],
        forms: [("tcp://HOST:PORT  (or HOST:PORT)", "a TCP connection is accepted")],
    }
    Http(http::Http) {
        schemes: ["http", "https"],
        forms: [
            ("http://HOST[:PORT]/PATH", "a GET answers 200-399"),
            ("https://HOST[:PORT]/PATH", "the same over TLS"),
        ],
    }
    Postgres(postgres::Postgres) {
        schemes: ["postgres", "postgresql"],
        forms: [
            ("postgres://USER@HOST[:PORT]/DB", "a session (login, SELECT 1) succeeds;"),
            ("", "#isready: the server answers (pg_isready)"),
        ],
    }
    Dns(dns::Dns) {
        schemes: ["dns"],
        forms: [("dns://NAME", "NAME has an address (or #type=SRV, #expect=..., #min=N)")],
    }
    K8s(k8s::K8s) {
        schemes: ["k8s"],
        forms: [
            ("k8s://[NS/]SERVICE", "the Service has ready endpoints"),
            ("k8s://[NS/]job/NAME", "the Kubernetes Job has completed (failed: exit 3)"),
            ("k8s://[NS/]pods/SELECTOR", "pods matching the label selector are Ready"),
            ("k8s://[NS/]deployment/NAME", "the rollout is complete (also statefulset, daemonset)"),
            ("k8s://[NS/]RESOURCE/NAME", "#condition=TYPE, #jsonpath=EXPR=VALUE, #deleted, #exists"),
        ],
    }
    Mysql(mysql::Mysql) {
        schemes: ["mysql", "mariadb"],
        forms: [
            ("mysql://USER:PASSWORD@HOST[:PORT][/DB]", "a session (login, SELECT 1) succeeds;"),
            ("", "without a password or with #ping: the server greets"),
        ],
    }
    Redis(redis::Redis) {
        schemes: ["redis", "rediss"],
        forms: [("redis://[USER:PASSWORD@]HOST[:PORT][/DB]", "AUTH, SELECT and PING succeed (rediss: TLS)")],
    }
    Amqp(amqp::Amqp) {
        schemes: ["amqp", "amqps"],
        forms: [("amqp://USER:PASSWORD@HOST[:PORT][/VHOST]", "the broker opens the vhost (amqps: TLS)")],
    }
    Grpc(grpc::Grpc) {
        schemes: ["grpc", "grpcs"],
        forms: [
            ("grpc://HOST:PORT", "the gRPC health service answers SERVING (#service=NAME)"),
            ("grpcs://HOST[:PORT]", "the same over TLS"),
        ],
    }
    Unix(unix::Unix) {
        schemes: ["unix"],
        forms: [("unix:///PATH", "the socket accepts a connection (#http=/PATH: a GET answers)")],
    }
    File(file::File) {
        schemes: ["file"],
        forms: [("file:///PATH", "the path exists (#type=, #nonempty, #contains=TEXT)")],
    }
    Exec(exec::Exec) {
        schemes: ["exec"],
        forms: [("exec:COMMAND ARGS...", "the command exits 0 (no shell: exec:sh -c '...')")],
    }
}

/// One thing to wait for, as given on the command line.
pub struct Target {
    probe: Probe,
    /// The target as it may be shown: without password or options.
    shown: String,
    /// Its kind, by the first scheme of its row (`tcp`, `postgres`, `k8s`).
    kind: &'static str,
}

impl Target {
    /// Parses `scheme://...#options`, or a bare `host:port` as a TCP target.
    pub fn parse(text: &str) -> Result<Target> {
        Self::parse_text(text).map_err(|error| {
            // One line, whatever the target held: a control character (a percent-decoded
            // %0A) is shown escaped.
            let line = format!("invalid target '{}': {error:#}", quoted(text));
            let line: String = line
                .chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect();
            anyhow!(line)
        })
    }

    fn parse_text(text: &str) -> Result<Target> {
        let text = text.trim();
        if text.is_empty() {
            bail!("empty target (expected e.g. tcp://db:5432 or http://api:8080/health)");
        }
        let with_scheme;
        let text = if is_host_port(text) {
            with_scheme = format!("tcp://{text}");
            &with_scheme
        } else {
            text
        };
        let scheme = scheme_of(text).ok_or_else(|| {
            anyhow!("expected a URL such as tcp://host:port or http://host/path, or host:port")
        })?;
        let kind = KINDS
            .iter()
            .find(|kind| kind.schemes.contains(&scheme.as_str()))
            .ok_or_else(|| {
                let known: Vec<&str> = KINDS
                    .iter()
                    .flat_map(|kind| kind.schemes)
                    .copied()
                    .collect();
                anyhow!(
                    "unknown scheme '{scheme}' (expected one of {})",
                    known.join(", ")
                )
            })?;
        let probe = (kind.parse)(text)?;
        Ok(Target {
            shown: probe.shown(),
            probe,
            kind: kind.schemes[0],
        })
    }

    /// One attempt: is the target ready now?
    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        self.probe.check(net, stage).await
    }

    /// What an attempt would use, for `--dry-run`.
    pub fn plan(&self) -> Plan {
        self.probe.plan()
    }

    /// Its kind, by the first scheme of its row in the table: `tcp`, `http`, `k8s`, ….
    pub fn kind(&self) -> &'static str {
        self.kind
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

/// A target as an error may quote it: redacted, and cut short when it is long, so that a
/// hostile 70,000-character target makes a line that can still be read.
fn quoted(text: &str) -> String {
    const LONGEST: usize = 200;
    let shown = redact::text(text);
    match shown.char_indices().nth(LONGEST) {
        Some((end, _)) => format!("{}… ({} characters)", &shown[..end], shown.chars().count()),
        None => shown,
    }
}

/// The scheme of `text`, lower case, as a URL parser reads it: letters first, then letters,
/// digits, `+`, `-` or `.`, up to the first `:`.
fn scheme_of(text: &str) -> Option<String> {
    let (scheme, _) = text.split_once(':')?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// Whether `text` starts with the scheme of a kind of target (`http:`, `exec:`).
pub fn has_known_scheme(text: &str) -> bool {
    scheme_of(text.trim()).is_some_and(|scheme| {
        KINDS
            .iter()
            .any(|kind| kind.schemes.contains(&scheme.as_str()))
    })
}

/// Whether `text` starts an `exec:` target, whose command holds spaces and commas of its
/// own: in HOLDUP_WAIT_FOR it takes the rest of its line.
pub fn takes_rest_of_line(text: &str) -> bool {
    let word = text.split(char::is_whitespace).next().unwrap_or_default();
    scheme_of(word).as_deref() == Some("exec")
}

/// The target forms and their meaning, one per line, for `--help`.
pub fn help() -> String {
    let width = KINDS
        .iter()
        .flat_map(|kind| kind.forms)
        .map(|(form, _)| form.len())
        .max()
        .unwrap_or(0);
    KINDS
        .iter()
        .flat_map(|kind| kind.forms)
        .map(|(form, meaning)| format!("  {form:width$}  {meaning}\n"))
        .collect()
}

/// `HOST:PORT` without a scheme, as other wait tools accept it (`db:5432`, `[::1]:5432`):
/// HOST is a name whose last label holds a letter (`db`, `db-0.db.shop`, not `11`), an
/// IPv4 address, or an IPv6 address in brackets; PORT is a number. The same rule tells
/// where a new target starts in HOLDUP_WAIT_FOR, so `?t=10:30,11:45` stays one target.
pub fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() {
        true
    } else {
        let name = host.strip_suffix('.').unwrap_or(host);
        let labels_ok = name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let last_has_letter = name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().any(|b| b.is_ascii_alphabetic()));
        labels_ok && last_has_letter
    };
    port_ok && host_ok
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
            ("mysql://app:pw@db/shop#fail-fast", "mysql://app@db/shop"),
            ("mariadb://db#ping", "mariadb://db"),
            ("redis://:pw@cache/1#role=master", "redis://cache/1"),
            ("rediss://app:pw@cache#insecure", "rediss://app@cache"),
            ("amqp://app:pw@rabbit/%2f", "amqp://app@rabbit/%2f"),
            (
                "amqps://app:pw@rabbit/shop#fail-fast=vhost",
                "amqps://app@rabbit/shop",
            ),
            ("grpc://api:50051#service=shop.Cart", "grpc://api:50051"),
            ("grpcs://api", "grpcs://api"),
            ("unix:///run/app.sock#http=/health", "unix:///run/app.sock"),
            ("file:///data/ready#nonempty", "file:///data/ready"),
            ("exec:sh -c 'exit 0'", "exec:sh -c 'exit 0'"),
            ("EXEC:sh --password=pw", "exec:sh --password=redacted"),
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
                "unknown scheme 'htp' (expected one of tcp, http, https, postgres, postgresql, dns, k8s, mysql, mariadb, redis, rediss, amqp, amqps, grpc, grpcs, unix, file, exec)",
            ),
            ("tcp://db", "missing port"),
            ("tcp://:80", "empty host"),
            ("tcp://db:99999", "invalid port number"),
            ("tcp://db:80/path", "tcp targets have no path"),
            ("tcp://db:80#x=1", "tcp targets take no options"),
            ("tcp://u:secret@db:80", "credentials"),
            ("http://db/#status=600", "status"),
            ("http://db/#nope=1", "unknown option 'nope'"),
            ("file://data/ready", "expected an absolute path"),
            ("unix://run/app.sock", "expected an absolute path"),
            ("exec:", "empty command"),
            ("exec:sh -c 'exit", "unclosed single quote"),
            ("exec:mysqladmin --password=secret | x", "'|' means a pipe"),
            ("grpc://api", "missing port"),
            // Targets that can never work are refused at once, not waited on (issue 14).
            ("tcp://db:0", "port 0 cannot be connected to"),
            ("db:0", "port 0 cannot be connected to"),
            ("https://x:0/", "port 0 cannot be connected to"),
            ("redis://cache:0", "port 0 cannot be connected to"),
            ("postgres://u@db:0/app", "invalid port '0'"),
            ("tcp://a..b:80", "empty label"),
            ("http://a..b/", "empty label"),
            ("tcp://224.0.0.1:80", "multicast or broadcast"),
            ("tcp://255.255.255.255:80", "multicast or broadcast"),
            ("tcp://[ff02::1]:80", "multicast or broadcast address"),
            ("postgres://u@224.0.0.1/d", "multicast or broadcast address"),
            (
                "postgres://u@h/d?hostaddr=224.0.0.1",
                "multicast or broadcast",
            ),
            ("dns://x#server=1.2.3.4:0", "port 0 cannot be asked"),
            ("dns://x#server=224.0.0.1", "multicast or broadcast"),
            ("k8s://db#port=0", "invalid option 'port=0'"),
            ("k8s://db#port=99999", "a number from 1 to 65535"),
            (
                "postgres://u@h/d?connect_timeout=abc",
                "invalid connect_timeout 'abc' (expected a whole number",
            ),
            ("postgres://u@h/d?keepalives=yes", "invalid keepalives"),
            (
                "postgres://u@h/d?sslsni=2",
                "invalid sslsni '2' (expected 0 or 1)",
            ),
            ("k8s://job/", "missing name after 'job/'"),
            ("k8s://shop/deployment/", "missing name after 'deployment/'"),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", Target::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains("secret"), "{input}: {message}");
        }
    }

    /// A host name longer than DNS carries is refused, without being quoted whole.
    #[test]
    fn overlong_host_names_are_refused_briefly() {
        let long_label = "a".repeat(64);
        let long_name = ["abc"; 70].join(".");
        let huge = "h".repeat(70_000);
        let cases = [
            (format!("tcp://{long_label}:80"), "label of 64 characters"),
            (
                format!("tcp://{long_name}:80"),
                "host name of 279 characters",
            ),
            (format!("tcp://{huge}:80"), "host name of 70000 characters"),
            (format!("http://{huge}/"), "70000 characters"),
            (format!("dns://{long_name}"), "host name of 279 characters"),
            (
                format!("postgres://u@{huge}/d"),
                "host name of 70000 characters",
            ),
            (
                format!("mysql://u@{long_label}/d"),
                "label of 64 characters",
            ),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", Target::parse(&input).expect_err(&input));
            assert!(message.contains(expected), "{}: {message}", &input[..40]);
            assert!(message.len() < 800, "{}: {message}", &input[..40]);
        }
        // The longest name DNS carries is still taken.
        let longest = [&*"a".repeat(63); 4].join(".")[..253].to_string();
        let longest = longest.trim_end_matches('.');
        assert!(Target::parse(&format!("tcp://{longest}:80")).is_ok());
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
            "mysql://",
            "redis://",
            "rediss://",
            "amqp://",
            "amqps://",
            "grpc://",
            "grpcs://",
            "unix://",
            "file://",
            "exec:",
            "'",
            "\"",
            "\\",
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
            "ssl-mode=",
            "role=",
            "ping",
            "%2f",
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

    /// Property tests: any text, and targets built from the pieces of every kind's form
    /// with wrong parts in them, parse or are refused in one readable line; never a panic.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A refusal as the user reads it: one line, not empty, named as a bad target, not
        /// much longer than the target it quotes (at most 200 characters of it).
        fn refused_well(text: &str, result: Result<Target>) -> Result<(), TestCaseError> {
            if let Err(error) = result {
                let message = format!("{error:#}");
                prop_assert!(message.starts_with("invalid target '"), "{message}");
                prop_assert!(!message.contains('\n'), "{message}");
                prop_assert!(
                    message.len() < 1_500 + 2 * text.len().min(300),
                    "{} characters for a target of {}",
                    message.len(),
                    text.len()
                );
            }
            Ok(())
        }

        /// The words targets are made of, right and wrong.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("".to_string()),
                "[a-z]{1,8}",
                "[0-9]{1,6}",
                "[a-zA-Z0-9._~-]{0,12}",
                "%[0-9A-Fa-f]{0,2}",
                prop::sample::select(vec![
                    ":",
                    "@",
                    "/",
                    "//",
                    "?",
                    "#",
                    "&",
                    "=",
                    ",",
                    "[",
                    "]",
                    "::1",
                    "0",
                    "65535",
                    "65536",
                    "-1",
                    "..",
                    ".",
                    " ",
                    "'",
                    "\"",
                    "\\",
                    "|",
                    "$",
                    "*",
                    "\u{0}",
                    "é",
                    "status=",
                    "status=200-299,418",
                    "expect=",
                    "type=SRV",
                    "type=TXT",
                    "type=bogus",
                    "min=",
                    "min=0",
                    "min=3",
                    "body=",
                    "method=HEAD",
                    "header=",
                    "isready",
                    "query=",
                    "fail-fast",
                    "fail-fast=vhost",
                    "sslmode=verify-full",
                    "sslmode=",
                    "connect_timeout=",
                    "host=",
                    "port=",
                    "ca=",
                    "insecure",
                    "service=",
                    "http=/",
                    "role=master",
                    "condition=Ready",
                    "jsonpath=",
                    "jsonpath={.status.phase}=Running",
                    "selector=",
                    "selector=app in (a,b)",
                    "deleted",
                    "exists",
                    "version=v1",
                    "context=",
                    "contains=",
                    "nonempty",
                    "job",
                    "pods",
                    "deployment",
                    "svc",
                    "app=web,tier!=db",
                    "sh -c 'x'",
                    "--password=pw",
                ])
                .prop_map(str::to_string),
            ]
        }

        fn scheme() -> impl Strategy<Value = String> {
            let schemes: Vec<String> = KINDS
                .iter()
                .flat_map(|kind| kind.schemes)
                .map(|scheme| match *scheme {
                    "exec" => "exec:".to_string(),
                    scheme => format!("{scheme}://"),
                })
                .chain(["".to_string(), "HTTP://".to_string(), "x-y://".to_string()])
                .collect();
            prop::sample::select(schemes)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn any_text(text in any::<String>()) {
                refused_well(&text, Target::parse(&text))?;
            }

            #[test]
            fn any_text_after_a_scheme(scheme in scheme(), rest in ".{0,80}") {
                let text = format!("{scheme}{rest}");
                refused_well(&text, Target::parse(&text))?;
            }

            #[test]
            fn targets_made_of_pieces(
                scheme in scheme(),
                pieces in prop::collection::vec(piece(), 0..12),
            ) {
                let text = format!("{scheme}{}", pieces.concat());
                refused_well(&text, Target::parse(&text))?;
            }

            /// user:password@host:port/path?query#options, each part right or wrong.
            #[test]
            fn urls_with_wrong_parts(
                scheme in scheme(),
                user in prop::option::of("[a-z%:@]{0,6}"),
                host in prop::option::of(piece()),
                port in prop::option::of(prop_oneof!["[0-9]{1,6}".prop_map(|p| p), piece()]),
                path in prop::collection::vec(piece(), 0..4),
                query in prop::option::of(prop::collection::vec(piece(), 0..4)),
                options in prop::option::of(prop::collection::vec(piece(), 0..5)),
            ) {
                let mut text = scheme;
                if let Some(user) = user {
                    text.push_str(&user);
                    text.push('@');
                }
                text.push_str(&host.unwrap_or_default());
                if let Some(port) = port {
                    text.push(':');
                    text.push_str(&port);
                }
                for segment in path {
                    text.push('/');
                    text.push_str(&segment);
                }
                if let Some(query) = query {
                    text.push('?');
                    text.push_str(&query.join("&"));
                }
                if let Some(options) = options {
                    text.push('#');
                    text.push_str(&options.join("&"));
                }
                refused_well(&text, Target::parse(&text))?;
            }

            /// A valid host and port stays valid in every spelling that should be taken.
            #[test]
            fn host_and_port_targets(
                host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,3}",
                port in 1u16..,
            ) {
                for text in [format!("{host}:{port}"), format!("tcp://{host}:{port}")] {
                    let target = Target::parse(&text);
                    prop_assert!(target.is_ok(), "{text}: {:#}", target.err().unwrap());
                }
                let zero = format!("tcp://{host}:0");
                prop_assert!(Target::parse(&zero).is_err());
            }
        }
    }

    #[test]
    fn host_port_detection() {
        for yes in [
            "db:5432",
            "a.b-c_d:1",
            "[::1]:80",
            "10.0.0.1:65535",
            "db-0.db.shop.svc.cluster.local.:5432",
            "x1:80",
            "1a:80",
        ] {
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
            // A last label of digits is no host name: these are times, ratios, versions.
            "11:45",
            "1.2:3",
            "10.0.0:80",
            "a..b:1",
            "db:54 32",
        ] {
            assert!(!is_host_port(no), "{no}");
        }
    }
}
