//! `--pod-condition TYPE`: the condition TYPE of holdup's own pod kept in step with its
//! targets, `True` while all are ready, `False` naming those that are not. A pod whose
//! `spec.readinessGates` lists TYPE is Ready only while the condition is `True`, so it
//! leaves its Services' endpoints when a dependency goes away, and comes back with it.
//!
//! The condition is written with a strategic merge patch of the pod's `status`
//! subresource: `status.conditions` merges by `type`, so the kubelet's conditions (and any
//! other controller's) are left as they are. It is written only when it changes; a write
//! that fails is tried again with backoff, always with the latest state, while the probing
//! goes on.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::time::{sleep, timeout};
use tracing::{info, warn};

use crate::attempt::Stage;
use crate::keep::Watch;
use crate::kube::api::Api;
use crate::kube::config::{Environment, connection};
use crate::kube::pod::{Pod, PodEnvironment, identify};
use crate::net::Net;
use crate::probe::Target;

/// The longest one write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The delay before writing again after the first failure; it doubles up to the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LONGEST: Duration = Duration::from_secs(60);
/// The API server takes messages of any length; a person reads the start of one.
const MESSAGE_LIMIT: usize = 1024;

/// Where the condition is written.
pub struct PodCondition {
    kind: String,
    pod: Pod,
    api: Api,
}

/// The condition as it should be: whether it is `True`, and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wanted {
    ready: bool,
    message: String,
}

impl PodCondition {
    /// Finds holdup's pod and the API server, before anything is probed.
    pub fn new(kind: &str, net: &Net) -> Result<PodCondition> {
        let pod = identify(&PodEnvironment::from_process()).ok_or_else(|| {
            anyhow!(
                "--pod-condition {kind}: holdup cannot tell which pod it runs in; it needs \
                 KUBERNETES_SERVICE_HOST and a mounted service-account token (it runs in a \
                 pod), and POD_NAME and POD_NAMESPACE from the downward API (or its hostname \
                 and the service account's namespace)"
            )
        })?;
        let connection = connection(&Environment::from_process(), None)
            .with_context(|| format!("--pod-condition {kind}: no API server to write to"))?;
        let api = Api::new(connection, net)?;
        Ok(PodCondition {
            kind: kind.to_string(),
            pod,
            api,
        })
    }

    /// Writes the condition whenever the targets' state changes, for ever.
    pub async fn keep_in_step(&self, targets: &[Target], watch: &Watch) {
        let mut written: Option<Wanted> = None;
        let mut since = now();
        let mut retry = RETRY_FIRST;
        let mut last_error: Option<String> = None;
        loop {
            let wanted = wanted(targets, watch);
            if written.as_ref() == Some(&wanted) {
                watch.changed_since_read().await;
                continue;
            }
            if written.as_ref().is_none_or(|old| old.ready != wanted.ready) {
                since = now();
            }
            match self.write(&wanted, &since).await {
                Ok(()) => {
                    let status = if wanted.ready { "True" } else { "False" };
                    info!(event = "condition", condition = %self.kind, status, pod = %self.pod_name(),
                        "pod {} condition {}={status}", self.pod_name(), self.kind);
                    written = Some(wanted);
                    retry = RETRY_FIRST;
                    last_error = None;
                }
                Err(error) => {
                    let words = format!("{error:#}");
                    if last_error.as_deref() != Some(words.as_str()) {
                        warn!(event = "condition_failed", condition = %self.kind, error = %words, pod = %self.pod_name(),
                            "cannot write condition {} of pod {}: {words}; trying again", self.kind, self.pod_name());
                    }
                    last_error = Some(words);
                    sleep(retry).await;
                    retry = (retry * 2).min(RETRY_LONGEST);
                }
            }
        }
    }

    async fn write(&self, wanted: &Wanted, since: &str) -> Result<()> {
        let patch = patch(&self.kind, wanted, since);
        let stage = Stage::default();
        match timeout(
            WRITE_TIMEOUT,
            self.api.patch_pod_status(&self.pod, &patch, &stage),
        )
        .await
        {
            Ok(result) => result.map_err(anyhow::Error::from),
            Err(_) => bail!(
                "no answer within {} while {}",
                humantime::format_duration(WRITE_TIMEOUT),
                stage.get()
            ),
        }
    }

    fn pod_name(&self) -> String {
        format!("{}/{}", self.pod.namespace, self.pod.name)
    }
}

/// The condition the targets' state calls for.
fn wanted(targets: &[Target], watch: &Watch) -> Wanted {
    if watch.enough_ready() {
        let ready = watch.ready_count();
        let message = if targets.len() == 1 {
            format!("{} is ready", targets[0])
        } else if ready == targets.len() {
            format!("all {} dependencies are ready", targets.len())
        } else {
            format!(
                "{ready} of {} dependencies are ready, {} needed",
                targets.len(),
                watch.needed()
            )
        };
        return Wanted {
            ready: true,
            message,
        };
    }
    let not_ready: Vec<String> = targets
        .iter()
        .enumerate()
        .filter(|(index, _)| !watch.state(*index).ready)
        .map(|(index, target)| format!("{target} ({})", watch.state(index).reason()))
        .collect();
    let mut message = format!("not ready: {}", not_ready.join("; "));
    if message.len() > MESSAGE_LIMIT {
        let mut end = MESSAGE_LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    Wanted {
        ready: false,
        message,
    }
}

/// The strategic merge patch that sets condition `kind` and nothing else.
fn patch(kind: &str, wanted: &Wanted, since: &str) -> Value {
    let (status, reason) = if wanted.ready {
        ("True", "DependenciesReady")
    } else {
        ("False", "DependenciesNotReady")
    };
    json!({
        "status": {
            "conditions": [{
                "type": kind,
                "status": status,
                "reason": reason,
                "message": wanted.message,
                "lastTransitionTime": since,
                "lastProbeTime": now(),
            }]
        }
    })
}

/// Now, as the API's timestamps are written: `2026-11-22T10:00:02Z`.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_sets_one_condition_naming_what_is_not_ready() {
        let targets: Vec<Target> = ["db:5432", "postgres://app:secret@db/app"]
            .iter()
            .map(|text| Target::parse(text).unwrap())
            .collect();
        let watch = Watch::new(2, 2);
        let wanted = wanted(&targets, &watch);
        assert_eq!(
            wanted.message,
            "not ready: tcp://db:5432 (not tried yet); postgres://app@db/app (not tried yet)"
        );
        let patch = patch("holdup.dev/dependencies", &wanted, "2026-11-22T10:00:02Z");
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["type"], "holdup.dev/dependencies");
        assert_eq!(conditions[0]["status"], "False");
        assert_eq!(conditions[0]["reason"], "DependenciesNotReady");
        assert_eq!(conditions[0]["lastTransitionTime"], "2026-11-22T10:00:02Z");
        assert!(!patch.to_string().contains("secret"));
    }
}
