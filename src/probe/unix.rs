//! `unix:///PATH`: ready when a connection to the Unix socket is accepted; with
//! `#http=/PATH`, when a GET over it answers an accepted status (the Docker engine's
//! `/_ping`, a php-fpm status page, an app's admin socket), judged as an http target is.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use reqwest::Client;
use tokio::net::UnixStream;

use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::http_client::{self, StageTracker, StatusSet, describe, status_words};
use crate::net::Net;
use crate::paths::{access_words, lookup_words, type_words, whoami};
use crate::redact;
use crate::tls;

const FORM: &str = "unix:///path/to/socket";

pub struct Unix {
    path: PathBuf,
    /// `#http=/PATH`: the request to make over the socket, and the statuses accepted.
    http: Option<(String, StatusSet)>,
    shown: String,
    /// Built on the first attempt of an `#http` target.
    client: OnceLock<Result<Client, String>>,
    stage_tracker: StageTracker,
}

impl Unix {
    pub fn parse(text: &str) -> Result<Unix> {
        let (url, mut options) = target_url::parse(text)?;
        let request = options.take("http")?;
        let statuses = options.take_parsed("status", StatusSet::parse)?;
        options.finish("unix", &["http", "status"])?;
        let path = target_url::local_path(text, &url, FORM)?;
        let http = match (request, statuses) {
            (Some(request), statuses) => {
                if !request.starts_with('/') {
                    bail!(
                        "invalid option 'http={request}': expected a path that starts with / (#http=/health)"
                    );
                }
                let request = format!("http://localhost{request}");
                let parsed = url::Url::parse(&request)
                    .map_err(|error| anyhow!("invalid option 'http': {error}"))?;
                Some((parsed.to_string(), statuses.unwrap_or_default()))
            }
            (None, Some(_)) => bail!("option 'status' needs #http=/PATH to send a request"),
            (None, None) => None,
        };
        Ok(Unix {
            path,
            http,
            shown: redact::url(&url),
            client: OnceLock::new(),
            stage_tracker: StageTracker::default(),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let shown = self.path.display();
        stage.set(format!("connecting to {shown}"));
        let Some((request, statuses)) = &self.http else {
            UnixStream::connect(&self.path)
                .await
                .map_err(|error| anyhow!(connect_words(&self.path, &error)))?;
            stage.answered(format!("{shown} accepts connections"));
            return Ok(());
        };
        let client = self.client(net)?;
        self.stage_tracker.follow(stage);
        let response = client.get(request).send().await.map_err(|error| {
            match io_cause(&error).filter(|_| error.is_connect()) {
                Some(io) => anyhow!(connect_words(&self.path, io)),
                None => anyhow!(describe(&error, &shown.to_string())),
            }
        })?;
        let status = response.status();
        stage.answered(format!("HTTP {} over {shown}", status_words(status)));
        if !statuses.contains(status) {
            return Err(anyhow!(
                "HTTP {} (expected {statuses}) from GET {} over {shown}",
                status_words(status),
                path_of(request)
            )
            .into());
        }
        Ok(())
    }

    pub fn plan(&self) -> Plan {
        let mut plan = vec![("socket", self.path.display().to_string())];
        match &self.http {
            None => plan.push(("ready", "a connection is accepted".to_string())),
            Some((request, statuses)) => {
                plan.push(("request", format!("GET {}", path_of(request))));
                plan.push(("status", statuses.to_string()));
                plan.push(("redirects", "not followed".to_string()));
            }
        }
        plan
    }

    fn client(&self, net: &Net) -> Result<&Client> {
        let built = self.client.get_or_init(|| {
            let tls = tls::trusting_nothing().map_err(|error| format!("{error:#}"))?;
            let builder = http_client::builder(tls, net)
                .unix_socket(self.path.as_path())
                .connector_layer(self.stage_tracker.layer(&self.path.display().to_string()))
                // A fresh connection each time, so that a restarted server is seen.
                .pool_max_idle_per_host(0);
            http_client::build(builder).map_err(|error| format!("{error:#}"))
        });
        built.as_ref().map_err(|message| anyhow!(message.clone()))
    }
}

impl fmt::Display for Unix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Unix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unix")
            .field("path", &self.path)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// `/_ping` of `http://localhost/_ping`.
fn path_of(request: &str) -> &str {
    request.strip_prefix("http://localhost").unwrap_or(request)
}

/// The I/O error under a failed request: when connecting failed (the socket refused,
/// missing, not ours to write to), it is said as for a bare connection.
fn io_cause(error: &reqwest::Error) -> Option<&io::Error> {
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = current.source();
    }
    None
}

/// Why connecting to the socket at `path` failed, in words: what is there instead of a
/// socket, whose permission is missing, or that no one listens.
fn connect_words(path: &Path, error: &io::Error) -> String {
    let shown = path.display();
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(lookup) => return lookup_words(path, &lookup),
    };
    if !metadata.file_type().is_socket() {
        return format!("{shown} is {}, not a socket", type_words(&metadata));
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("{shown}: connection refused (no process listens on the socket)")
        }
        io::ErrorKind::PermissionDenied => format!(
            "permission denied: {} may not write to the socket {shown} ({})",
            whoami(),
            access_words(&metadata)
        ),
        _ => lookup_words(path, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_refused_targets() {
        for (input, path, plan) in [
            (
                "unix:///var/run/docker.sock",
                "/var/run/docker.sock",
                "ready=a connection is accepted",
            ),
            (
                "unix:///var/run/docker.sock#http=/_ping",
                "/var/run/docker.sock",
                "request=GET /_ping; status=200-399",
            ),
            (
                "unix:///run/php/fpm.sock#http=/status%3Fjson&status=200",
                "/run/php/fpm.sock",
                "request=GET /status?json; status=200",
            ),
        ] {
            let unix = Unix::parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(unix.path, Path::new(path), "{input}");
            let shown: Vec<String> = unix
                .plan()
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            assert!(shown.join("; ").contains(plan), "{input}: {shown:?}");
        }
        for (input, expected) in [
            (
                "unix://run/app.sock",
                "expected an absolute path, as unix:///path/to/socket",
            ),
            ("unix:app.sock", "expected an absolute path"),
            ("unix://", "missing path"),
            ("unix:///a.sock#http=_ping", "starts with /"),
            ("unix:///a.sock#status=200", "needs #http=/PATH"),
            ("unix:///a.sock#http=/x&status=700", "not an HTTP status"),
            (
                "unix:///a.sock#ping",
                "unknown option 'ping' for unix targets",
            ),
        ] {
            let message = format!("{:#}", Unix::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
    }
}
