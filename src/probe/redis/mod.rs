//! `redis://…` and `rediss://…` (Redis, Valkey): ready when AUTH (an ACL user or the
//! legacy password), SELECT and PING succeed, and, if asked, the server has the role asked
//! for, its link to its master is up and synced, or its cluster is ok.
//!
//! RESP is written by hand: the handful of commands and replies a readiness check needs are
//! fewer lines than the glue a client library would need to use our own connection, TLS
//! and resolver, and add nothing to the binary.
//!
//! - [`resp`]: the commands written and the replies read.

mod resp;

use std::fmt;

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncWriteExt as _, BufReader};

use self::resp::{Problem, Reply, Session, command};
use super::conn::{self, FailFast, PasswordFrom, Tls};
use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact::{self, Secret};

const DEFAULT_PORT: u16 = 6379;
/// Where redis-cli reads a password from, as holdup does.
const PASSWORD_VARIABLE: &str = "REDISCLI_AUTH";
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

pub struct Redis {
    host: String,
    port: u16,
    /// `host:port`, for messages.
    authority: String,
    user: Option<String>,
    password: Option<Secret>,
    password_from: Option<PasswordFrom>,
    db: Option<u32>,
    role: Option<Role>,
    replica_synced: bool,
    cluster: bool,
    tls: Option<Tls>,
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
        let (password, password_from) =
            conn::password(&url, password_file, Some(PASSWORD_VARIABLE), env, "URL")?.unzip();
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
            password_from,
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
        let stream = conn::open(
            net,
            &self.host,
            self.port,
            &self.authority,
            self.tls.as_ref(),
            stage,
        )
        .await?;
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

    pub fn plan(&self) -> Plan {
        let mut before = Vec::new();
        if self.password.is_some() {
            before.push("AUTH".to_string());
        }
        if let Some(db) = self.db {
            before.push(format!("SELECT {db}"));
        }
        let mut ready = if before.is_empty() {
            "PING succeeds".to_string()
        } else {
            format!("{} and PING succeed", before.join(", "))
        };
        match (self.role, self.replica_synced) {
            (Some(Role::Replica), true) => ready.push_str(
                ", and INFO replication shows a replica whose link to its master is up and \
                 whose initial sync is done",
            ),
            (Some(Role::Replica), false) => {
                ready.push_str(", and INFO replication shows role replica (slave)")
            }
            (Some(Role::Master), _) => ready.push_str(", and INFO replication shows role master"),
            (None, _) => {}
        }
        if self.cluster {
            ready.push_str(", and CLUSTER INFO says cluster_state:ok");
        }
        let mut plan = vec![
            ("address", self.authority.clone()),
            (
                "user",
                self.user.clone().unwrap_or_else(|| "default".to_string()),
            ),
            ("password", PasswordFrom::plan(self.password_from.as_ref())),
            (
                "database",
                self.db
                    .map_or("0 (the server's default, no SELECT)".to_string(), |db| {
                        db.to_string()
                    }),
            ),
            ("ready", ready),
            ("fail-fast", self.fail_fast.to_string()),
        ];
        plan.extend(conn::plan_tls(self.tls.as_ref()));
        plan
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
            ("redis://cache:0", "port 0 cannot be connected to"),
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
