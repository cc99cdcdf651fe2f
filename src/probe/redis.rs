//! `redis://…` and `rediss://…` (Redis, Valkey): ready when AUTH (an ACL user or the
//! legacy password), SELECT and PING succeed, and, if asked, the server has the role asked
//! for, its link to its master is up and synced, or its cluster is ok.
//!
//! RESP is written by hand: the handful of commands and replies a readiness check needs are
//! fewer lines than the glue a client library would need to use our own connection, TLS
//! and resolver, and add nothing to the binary.

use std::fmt;
use std::io;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};

use super::conn::{self, Conn, FailFast};
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact::{self, Secret};
use crate::words::io_error_words;

const DEFAULT_PORT: u16 = 6379;
const FORM: &str = "redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]";
const OPTIONS: &[&str] = &[
    "role",
    "replica",
    "cluster",
    "fail-fast",
    "password-file",
    "ca",
    "insecure",
];
/// Longest reply line or bulk string read; INFO replication is well under 2 KiB.
const REPLY_LIMIT: u64 = 1 << 20;

pub struct Redis {
    host: String,
    port: u16,
    /// `host:port`, for messages.
    authority: String,
    user: Option<String>,
    password: Option<Secret>,
    db: Option<u32>,
    role: Option<Role>,
    replica_synced: bool,
    cluster: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    fail_fast: FailFast,
    shown: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Master,
    Replica,
}

impl Redis {
    pub fn parse(text: &str) -> Result<Redis> {
        Self::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Redis> {
        let (url, mut options) = target_url::parse(text)?;
        let with_tls = url.scheme() == "rediss";
        let role = options.take_parsed("role", |value| match value {
            "master" => Ok(Role::Master),
            "replica" => Ok(Role::Replica),
            _ => bail!("expected role=master or role=replica"),
        })?;
        let replica_synced = options
            .take_parsed("replica", |value| match value {
                "synced" => Ok(true),
                _ => bail!("expected replica=synced"),
            })?
            .unwrap_or(false);
        let cluster = options.take_switch("cluster")?;
        let fail_fast = FailFast::take(&mut options, &["auth"])?;
        let password_file = options.take("password-file")?;
        let tls = conn::https_like_tls(&mut options, with_tls, "rediss")?;
        options.finish(url.scheme(), OPTIONS)?;

        if role == Some(Role::Master) && replica_synced {
            bail!("options 'role=master' and 'replica=synced' exclude each other");
        }
        let role = if replica_synced {
            Some(Role::Replica)
        } else {
            role
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| anyhow!("missing host (expected {FORM})"))?
            .to_string();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            bail!("invalid port 0 (expected {FORM})");
        }
        if url.query().is_some() {
            bail!(
                "redis targets take no query string (expected {FORM}; the database goes in the path: /2)"
            );
        }
        let db = match url.path() {
            "" | "/" => None,
            path => match path[1..].parse::<u32>() {
                Ok(db) => Some(db),
                Err(_) => bail!(
                    "invalid database '{}' (expected {FORM} with DB a number, e.g. /0)",
                    &path[1..]
                ),
            },
        };
        let user = match url.username() {
            "" => None,
            user => Some(conn::percent_decode_strict(user, "user name")?),
        };
        let in_url = url
            .password()
            .map(|password| conn::percent_decode_strict(password, "password"))
            .transpose()?
            .map(Secret::new);
        let password = match (in_url, password_file) {
            (Some(_), Some(_)) => {
                bail!("a password in the URL and option 'password-file': give one of them")
            }
            (Some(password), None) => Some(password),
            (None, Some(file)) => Some(conn::read_password_file(&file)?),
            (None, None) => env("REDISCLI_AUTH")
                .filter(|value| !value.is_empty())
                .map(Secret::new),
        };
        if let (Some(user), None) = (&user, &password) {
            bail!(
                "user '{user}' without a password (give it in the URL, REDISCLI_AUTH or #password-file)"
            );
        }
        Ok(Redis {
            authority: format!("{host}:{port}"),
            host,
            port,
            user,
            password,
            db,
            role,
            replica_synced,
            cluster,
            tls,
            fail_fast,
            shown: redact::url(&url),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let tcp = net.connect(&self.host, self.port, stage).await?;
        let stream: Conn = match &self.tls {
            Some(config) => {
                conn::tls_handshake(tcp, &self.host, &self.authority, config.clone(), stage)
                    .await
                    .map_err(|words| anyhow!(words))?
            }
            None => Box::new(tcp),
        };
        let mut session = Session {
            stream: BufReader::new(stream),
            authority: &self.authority,
        };
        if let Some(password) = &self.password {
            let user = self.user.as_deref().unwrap_or("default");
            stage.set(format!("authenticating as {user} with {}", self.authority));
            let mut command = vec!["AUTH"];
            command.extend(self.user.as_deref());
            command.push(password.expose());
            session.expect_ok(&command, "AUTH").await.map_err(|error| {
                self.failure(error.map_words(|words| format!("AUTH as {user}: {words}")))
            })?;
        }
        if let Some(db) = self.db {
            stage.set(format!("selecting database {db} on {}", self.authority));
            let db = db.to_string();
            session
                .expect_ok(&["SELECT", &db], "SELECT")
                .await
                .map_err(|error| self.failure(error))?;
        }
        stage.set(format!("sending PING to {}", self.authority));
        match session.call(&["PING"], "PING").await {
            Ok(Reply::Simple(pong)) if pong == "PONG" => {}
            Ok(other) => return Err(self.failure(other.unexpected("PING"))),
            Err(error) => return Err(self.failure(error)),
        }
        if let Some(role) = self.role {
            stage.set(format!("asking {} for its role", self.authority));
            let info = session.text(&["INFO", "replication"], "INFO").await;
            let info = info.map_err(|error| self.failure(error))?;
            judge_replication(&info, role, self.replica_synced)
                .map_err(|words| Failure::NotReady(anyhow!(words)))?;
        }
        if self.cluster {
            stage.set(format!("asking {} for CLUSTER INFO", self.authority));
            let info = session.text(&["CLUSTER", "INFO"], "CLUSTER INFO").await;
            let info = info.map_err(|error| self.failure(error))?;
            match field(&info, "cluster_state") {
                Some("ok") => {}
                Some(state) => {
                    return Err(anyhow!("CLUSTER INFO says cluster_state:{state}").into());
                }
                None => return Err(anyhow!("CLUSTER INFO has no cluster_state").into()),
            }
        }
        // QUIT is only a courtesy: the server closes the connection the same without it.
        let _ = session.stream.write_all(&command(&["QUIT"])).await;
        Ok(())
    }

    fn failure(&self, error: Problem) -> Failure {
        let auth = error.words.starts_with("AUTH ")
            || ["NOAUTH", "WRONGPASS", "NOPERM"]
                .iter()
                .any(|code| error.code.as_deref() == Some(code));
        let mut words = error.words;
        if error.code.as_deref() == Some("NOAUTH") && self.password.is_none() {
            words.push_str(
                " (no password given: put it in the URL, redis://:PASSWORD@host, or in REDISCLI_AUTH or #password-file)",
            );
        }
        if auth && self.fail_fast.covers(Some("auth")) {
            Failure::Permanent(anyhow!(words))
        } else {
            Failure::NotReady(anyhow!(words))
        }
    }
}

impl fmt::Display for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out: only the target as it may be shown.
        write!(f, "Redis({})", self.shown)
    }
}

/// Why a command failed, in words, with the error code the server began its answer with
/// (`LOADING`, `WRONGPASS` …).
struct Problem {
    words: String,
    code: Option<String>,
}

impl Problem {
    fn map_words(self, map: impl FnOnce(String) -> String) -> Problem {
        Problem {
            words: map(self.words),
            ..self
        }
    }
}

/// A RESP2 reply, as far as a readiness check reads them.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    /// An array (or a RESP3 type) we do not read the elements of.
    Other(char),
}

impl Reply {
    fn unexpected(&self, command: &str) -> Problem {
        let words = match self {
            Reply::Simple(text) => format!("unexpected answer to {command}: {text}"),
            Reply::Integer(value) => format!("unexpected answer to {command}: {value}"),
            Reply::Bulk(_) => format!("unexpected answer to {command}: a bulk string"),
            Reply::Other(kind) => {
                format!("unexpected answer to {command}: a reply of type {kind:?}")
            }
            Reply::Error(text) => {
                // The server's own words: "LOADING Redis is loading the dataset in memory".
                return Problem {
                    code: text
                        .split_whitespace()
                        .next()
                        .filter(|code| code.chars().all(|c| c.is_ascii_uppercase()))
                        .map(str::to_string),
                    words: format!("{text} (answer to {command})"),
                };
            }
        };
        Problem { words, code: None }
    }
}

struct Session<'a> {
    stream: BufReader<Conn>,
    authority: &'a str,
}

impl Session<'_> {
    async fn call(&mut self, args: &[&str], name: &str) -> Result<Reply, Problem> {
        let io_problem = |error: io::Error| Problem {
            words: format!(
                "{}: {} (waiting for the answer to {name})",
                self.authority,
                io_error_words(&error)
            ),
            code: None,
        };
        self.stream
            .write_all(&command(args))
            .await
            .map_err(io_problem)?;
        self.stream.flush().await.map_err(io_problem)?;
        read_reply(&mut self.stream).await.map_err(io_problem)
    }

    async fn expect_ok(&mut self, args: &[&str], name: &str) -> Result<(), Problem> {
        match self.call(args, name).await? {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(other.unexpected(name)),
        }
    }

    /// A command answered with a bulk string of text (INFO).
    async fn text(&mut self, args: &[&str], name: &str) -> Result<String, Problem> {
        match self.call(args, name).await? {
            Reply::Bulk(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            other => Err(other.unexpected(name)),
        }
    }
}

/// A command as a RESP array of bulk strings.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_line(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .take(REPLY_LIMIT)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(not_resp("a line without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn not_resp(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server answered with {what}: is it a Redis server?"),
    )
}

async fn read_reply(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Reply> {
    let line = read_line(reader).await?;
    let mut chars = line.chars();
    let kind = chars.next().ok_or_else(|| not_resp("an empty line"))?;
    let rest = chars.as_str();
    Ok(match kind {
        '+' => Reply::Simple(rest.to_string()),
        '-' => Reply::Error(rest.to_string()),
        ':' => Reply::Integer(rest.parse().map_err(|_| not_resp("a bad integer"))?),
        '$' => {
            let length: i64 = rest.parse().map_err(|_| not_resp("a bad length"))?;
            if length < 0 {
                return Ok(Reply::Bulk(None));
            }
            let length = u64::try_from(length).unwrap_or(u64::MAX);
            if length > REPLY_LIMIT {
                return Err(not_resp("a string longer than 1 MiB"));
            }
            let mut bytes = vec![0; length as usize + 2];
            reader.read_exact(&mut bytes).await?;
            bytes.truncate(length as usize);
            Reply::Bulk(Some(bytes))
        }
        '*' | '_' | ',' | '#' | '%' | '~' | '>' | '(' | '!' | '=' | '|' => Reply::Other(kind),
        other => {
            let shown: String = line.chars().take(20).collect();
            return Err(not_resp(&format!("{shown:?} (first byte {other:?})")));
        }
    })
}

/// The value of `name:value` in INFO text.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether INFO replication shows the role asked for and, with `synced`, a replica whose
/// link to its master is up and whose initial sync is done.
fn judge_replication(info: &str, role: Role, synced: bool) -> Result<(), String> {
    let is = field(info, "role").unwrap_or("unknown");
    let is_replica = matches!(is, "slave" | "replica");
    match role {
        Role::Master if is != "master" => return Err(format!("role is {is}, and #role=master")),
        Role::Replica if !is_replica => {
            let option = if synced {
                "replica=synced"
            } else {
                "role=replica"
            };
            return Err(format!("role is {is}, and #{option}"));
        }
        _ => {}
    }
    if !synced {
        return Ok(());
    }
    let master = format!(
        "replica of {}:{}",
        field(info, "master_host").unwrap_or("?"),
        field(info, "master_port").unwrap_or("?")
    );
    let link = field(info, "master_link_status").unwrap_or("unknown");
    if link != "up" {
        let since = field(info, "master_link_down_since_seconds")
            .and_then(|seconds| seconds.parse::<i64>().ok())
            .filter(|seconds| *seconds >= 0)
            .map(|seconds| format!(", for {seconds}s"))
            .unwrap_or_default();
        return Err(format!(
            "{master}: the link to its master is {link} (master_link_status:{link}{since})"
        ));
    }
    if field(info, "master_sync_in_progress") == Some("1") {
        return Err(format!(
            "{master}: the initial sync from its master is in progress (master_sync_in_progress:1)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Redis> {
        Redis::parse_with_env(text, &|_| None)
    }

    #[test]
    fn accepted_targets() {
        let cases = [
            ("redis://cache", "cache:6379", None, None, "redis://cache"),
            (
                "redis://:pw@cache:6380/2",
                "cache:6380",
                None,
                Some(2),
                "redis://cache:6380/2",
            ),
            (
                "redis://app:p%40ss@[::1]/0#role=replica",
                "[::1]:6379",
                Some("app"),
                Some(0),
                "redis://app@[::1]/0",
            ),
            (
                "rediss://cache/#insecure",
                "cache:6379",
                None,
                None,
                "rediss://cache/",
            ),
        ];
        for (input, authority, user, db, shown) in cases {
            let redis = parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(redis.authority, authority, "{input}");
            assert_eq!(redis.user.as_deref(), user, "{input}");
            assert_eq!(redis.db, db, "{input}");
            assert_eq!(redis.to_string(), shown, "{input}");
        }
        let redis = parse("redis://app:p%40ss@cache#replica=synced&fail-fast").unwrap();
        assert_eq!(redis.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(redis.role, Some(Role::Replica));
        assert!(redis.replica_synced && redis.fail_fast.covers(Some("auth")));
        let from_env = Redis::parse_with_env("redis://cache", &|name| {
            (name == "REDISCLI_AUTH").then(|| "pw".into())
        })
        .unwrap();
        assert_eq!(from_env.password.as_ref().map(Secret::expose), Some("pw"));
    }

    #[test]
    fn rejected_targets_say_why() {
        let cases = [
            ("redis://", "missing host"),
            ("redis://cache:99999", "invalid port number"),
            ("redis://cache:0", "invalid port 0"),
            ("redis://cache/x", "invalid database 'x'"),
            ("redis://cache/1/2", "invalid database '1/2'"),
            ("redis://cache?db=1", "no query string"),
            (
                "redis://cache#role=primary",
                "expected role=master or role=replica",
            ),
            ("redis://cache#replica=up", "expected replica=synced"),
            (
                "redis://cache#role=master&replica=synced",
                "exclude each other",
            ),
            ("redis://cache#fail-fast=database", "not a failure kind"),
            ("redis://cache#ca=/x.pem", "for rediss:// targets"),
            (
                "rediss://cache#ca=/does/not/exist.pem",
                "cannot read CA file",
            ),
            (
                "redis://cache#nope",
                "unknown option 'nope' for redis targets",
            ),
            ("redis://app@cache", "user 'app' without a password"),
            ("redis://:pw@cache#password-file=/x", "give one of them"),
            (
                "redis://cache#password-file=/does/not/exist",
                "cannot read password file",
            ),
            (
                "redis://:p%zz@cache",
                "invalid percent-encoding in the password",
            ),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
    }

    #[tokio::test]
    async fn replies_are_read_as_resp() {
        let cases: &[(&[u8], Option<Reply>)] = &[
            (b"+PONG\r\n", Some(Reply::Simple("PONG".into()))),
            (
                b"-LOADING Redis is loading the dataset in memory\r\n",
                Some(Reply::Error(
                    "LOADING Redis is loading the dataset in memory".into(),
                )),
            ),
            (b":42\r\n", Some(Reply::Integer(42))),
            (b"$3\r\nabc\r\n", Some(Reply::Bulk(Some(b"abc".to_vec())))),
            (b"$-1\r\n", Some(Reply::Bulk(None))),
            (b"*1\r\n$1\r\na\r\n", Some(Reply::Other('*'))),
            (b"HTTP/1.1 400 Bad Request\r\n", None),
            (b"+PONG", None),
            (b"$99999999\r\n", None),
            (b"", None),
        ];
        for (input, expected) in cases {
            let mut reader = BufReader::new(*input);
            let reply = read_reply(&mut reader).await.ok();
            assert_eq!(&reply, expected, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            command(&["AUTH", "pw"]),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
    }

    #[test]
    fn replication_is_judged_from_info() {
        let master = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";
        let down = "role:slave\r\nmaster_host:10.0.0.5\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_sync_in_progress:0\r\nmaster_link_down_since_seconds:-1\r\n";
        let syncing = "role:slave\r\nmaster_host:db\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_sync_in_progress:1\r\n";
        let loading = "role:slave\r\nmaster_host:db\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_sync_in_progress:1\r\n";
        let up = "role:slave\r\nmaster_host:db\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n";
        let cases = [
            (master, Role::Master, false, Ok(())),
            (
                master,
                Role::Replica,
                false,
                Err("role is master, and #role=replica"),
            ),
            (
                master,
                Role::Replica,
                true,
                Err("role is master, and #replica=synced"),
            ),
            (
                up,
                Role::Master,
                false,
                Err("role is slave, and #role=master"),
            ),
            (down, Role::Replica, false, Ok(())),
            (
                down,
                Role::Replica,
                true,
                Err(
                    "replica of 10.0.0.5:6379: the link to its master is down (master_link_status:down)",
                ),
            ),
            (
                syncing,
                Role::Replica,
                true,
                Err("replica of db:6379: the link to its master is down (master_link_status:down)"),
            ),
            (
                loading,
                Role::Replica,
                true,
                Err(
                    "replica of db:6379: the initial sync from its master is in progress (master_sync_in_progress:1)",
                ),
            ),
            (up, Role::Replica, true, Ok(())),
        ];
        for (info, role, synced, expected) in cases {
            assert_eq!(
                judge_replication(info, role, synced),
                expected.map_err(str::to_string),
                "{info} {role:?} {synced}"
            );
        }
    }
}
