//! What "ready" means for Jobs and Pods, judged from the objects as the API server sends
//! them (only the fields read here are declared; the rest is ignored), why a pod is not
//! Ready, and the pieces every judgement shares (Services have theirs in `service.rs`,
//! rollouts in `rollout.rs`, any other object in `object.rs`).

use serde::Deserialize;
use serde_json::Value;

pub use crate::kube::resource::null_as_default;

/// How a target stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    NotReady(String),
    /// Waiting cannot help (a failed Job).
    Failed(String),
}

/// Waiting reasons of a container that will not start by itself, worth naming.
const STUCK: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How many not-ready objects a message names before "and N more".
const NAMED: usize = 3;

pub fn parse<T: Default + for<'de> Deserialize<'de>>(object: &Value) -> T {
    // An object that does not have the expected shape counts as an empty one.
    T::deserialize(object).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub generation: Option<i64>,
    pub deletion_timestamp: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub finalizers: Vec<String>,
}

/// The metadata of any object.
pub fn meta(object: &Value) -> Meta {
    object.get("metadata").map(parse).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Job {
    status: JobStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JobStatus {
    #[serde(deserialize_with = "null_as_default")]
    conditions: Vec<Condition>,
    active: u32,
    succeeded: u32,
    failed: u32,
}

/// A status condition, as every kind of object has them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

impl Condition {
    pub fn says(&self, kind: &str) -> bool {
        self.kind == kind && self.status == "True"
    }

    /// `BackoffLimitExceeded: Job has reached the specified backoff limit`.
    pub fn words(&self) -> String {
        match (self.reason.is_empty(), self.message.is_empty()) {
            (false, false) => format!("{}: {}", self.reason, self.message),
            (false, true) => self.reason.clone(),
            (true, false) => self.message.clone(),
            (true, true) => format!("{}={}", self.kind, self.status),
        }
    }
}

/// A Job is ready once it has completed (condition Complete, or SuccessCriteriaMet, which
/// a Job with a success policy reaches first); it has failed for good once it has the
/// condition Failed, or FailureTarget, which comes first since Kubernetes 1.31.
pub fn job(shown: &str, jobs: &[&Value]) -> Verdict {
    let Some(job) = jobs.first() else {
        return Verdict::NotReady(format!("Job {shown} does not exist yet"));
    };
    let job: Job = parse(job);
    let conditions = &job.status.conditions;
    if let Some(failed) = conditions
        .iter()
        .find(|condition| condition.says("Failed") || condition.says("FailureTarget"))
    {
        // Said after "k8s://…/job/NAME failed: ".
        return Verdict::Failed(format!(
            "{} ({} failed {})",
            failed.words(),
            job.status.failed,
            plural(job.status.failed, "pod", "pods")
        ));
    }
    if conditions
        .iter()
        .any(|condition| condition.says("Complete") || condition.says("SuccessCriteriaMet"))
    {
        return Verdict::Ready;
    }
    if conditions
        .iter()
        .any(|condition| condition.says("Suspended"))
    {
        return Verdict::NotReady(format!("Job {shown} is suspended"));
    }
    let status = &job.status;
    Verdict::NotReady(format!(
        "Job {shown} has not completed yet ({} active, {} succeeded, {} failed {})",
        status.active,
        status.succeeded,
        status.failed,
        plural(status.failed, "pod", "pods")
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Pod {
    metadata: Meta,
    status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodStatus {
    phase: String,
    reason: String,
    #[serde(deserialize_with = "null_as_default")]
    conditions: Vec<Condition>,
    #[serde(deserialize_with = "null_as_default")]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "null_as_default")]
    container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    state: ContainerState,
    last_state: ContainerState,
    restart_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerState {
    waiting: Option<Waiting>,
    terminated: Option<Terminated>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Waiting {
    reason: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Terminated {
    exit_code: i32,
}

/// Pods are ready when at least `min` of those matching the selector, and not being
/// deleted, have the condition Ready=True.
pub fn pods(shown: &str, min: u32, pods: &[&Value]) -> Verdict {
    let pods: Vec<Pod> = pods.iter().map(|pod| parse(pod)).collect();
    let ready = pods.iter().filter(|pod| counts(pod)).count();
    let ready = u32::try_from(ready).unwrap_or(u32::MAX);
    if ready >= min {
        return Verdict::Ready;
    }
    if pods.is_empty() {
        return Verdict::NotReady(format!("no pods match {shown} yet"));
    }
    let troubles = troubles(&pods);
    let why = if troubles.is_empty() {
        let count = u32::try_from(pods.len()).unwrap_or(u32::MAX);
        format!(
            " ({count} {} {})",
            plural(count, "pod", "pods"),
            plural(count, "matches", "match")
        )
    } else {
        format!(": {}", listed(&troubles))
    };
    Verdict::NotReady(format!(
        "{ready} of {min} needed {} matching {shown} {} Ready{why}",
        plural(min, "pod", "pods"),
        if min == 1 { "is" } else { "are" },
    ))
}

/// The pods of `pods` that are not Ready (or are being deleted), each as `NAME why`: those
/// that will not get better by themselves first, since they are what to look at.
pub fn pod_troubles(pods: &[&Value]) -> Vec<String> {
    let pods: Vec<Pod> = pods.iter().map(|pod| parse(pod)).collect();
    troubles(&pods)
}

/// Ready, and not being deleted.
fn counts(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.conditions.iter().any(|c| c.says("Ready"))
}

fn troubles(pods: &[Pod]) -> Vec<String> {
    let mut troubles: Vec<(bool, String)> = pods
        .iter()
        .filter(|pod| !counts(pod))
        .map(|pod| {
            let (stuck, why) = pod_trouble(pod);
            (stuck, format!("{} {why}", pod.metadata.name))
        })
        .collect();
    troubles.sort_by_key(|(stuck, _)| !stuck);
    troubles.into_iter().map(|(_, words)| words).collect()
}

/// Why a pod is not Ready, and whether it is stuck (will not get better by waiting alone).
fn pod_trouble(pod: &Pod) -> (bool, String) {
    let status = &pod.status;
    if pod.metadata.deletion_timestamp.is_some() {
        return (false, "is terminating".to_string());
    }
    let containers = status
        .init_container_statuses
        .iter()
        .chain(&status.container_statuses);
    for container in containers {
        let Some(waiting) = &container.state.waiting else {
            continue;
        };
        if !STUCK.contains(&waiting.reason.as_str()) {
            continue;
        }
        let mut words = format!("is in {} (container {}", waiting.reason, container.name);
        if waiting.reason == "CrashLoopBackOff" {
            if let Some(terminated) = &container.last_state.terminated {
                words.push_str(&format!(", exit code {}", terminated.exit_code));
            }
            words.push_str(&format!(
                ", {} {}",
                container.restart_count,
                plural(container.restart_count, "restart", "restarts")
            ));
        } else if !waiting.message.is_empty() {
            words.push_str(&format!(": {}", shortened(&waiting.message)));
        }
        words.push(')');
        return (true, words);
    }
    if let Some(unschedulable) = status
        .conditions
        .iter()
        .find(|c| c.kind == "PodScheduled" && c.status == "False")
    {
        return (
            true,
            format!(
                "cannot be scheduled ({})",
                shortened(&unschedulable.words())
            ),
        );
    }
    match status.phase.as_str() {
        "Failed" | "Succeeded" => (
            false,
            format!(
                "has ended ({}{})",
                status.phase,
                if status.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", status.reason)
                }
            ),
        ),
        "" => (false, "is not Ready".to_string()),
        phase => (false, format!("is not Ready ({phase})")),
    }
}

fn shortened(text: &str) -> String {
    const LIMIT: usize = 120;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

pub fn listed(items: &[String]) -> String {
    let mut words = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        words.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    words
}

pub fn plural<'a>(count: u32, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job_with(conditions: Value) -> Value {
        json!({"metadata": {"name": "migrate"},
               "status": {"active": 1, "failed": 2, "conditions": conditions}})
    }

    #[test]
    fn job_states() {
        let failed = job_with(
            json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]),
        );
        let complete = job_with(json!([{"type": "Complete", "status": "True"}]));
        let suspended = job_with(json!([{"type": "Suspended", "status": "True"}]));
        let running = job_with(Value::Null);
        let not_failed = job_with(json!([{"type": "Failed", "status": "False"}]));
        let cases = [
            (vec![], Verdict::NotReady("Job shop/migrate does not exist yet".into())),
            (vec![&failed], Verdict::Failed("BackoffLimitExceeded: Job has reached the specified backoff limit (2 failed pods)".into())),
            (vec![&complete], Verdict::Ready),
            (vec![&suspended], Verdict::NotReady("Job shop/migrate is suspended".into())),
            (vec![&running], Verdict::NotReady("Job shop/migrate has not completed yet (1 active, 0 succeeded, 2 failed pods)".into())),
            (vec![&not_failed], Verdict::NotReady("Job shop/migrate has not completed yet (1 active, 0 succeeded, 2 failed pods)".into())),
        ];
        for (jobs, expected) in cases {
            assert_eq!(job("shop/migrate", &jobs), expected);
        }
    }

    #[test]
    fn pods_and_why_they_are_not_ready() {
        let ready = json!({"metadata": {"name": "web-a"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        let crashing = json!({"metadata": {"name": "web-b"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}});
        let pulling = json!({"metadata": {"name": "web-c"}, "status": {"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"app:nope\""}}}]}});
        let starting = json!({"metadata": {"name": "web-d"}, "status": {"phase": "Pending"}});
        let leaving = json!({"metadata": {"name": "web-e", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            pods("app=web in shop", 1, &[&crashing, &ready]),
            Verdict::Ready
        );
        assert_eq!(
            pods("app=web in shop", 1, &[]),
            Verdict::NotReady("no pods match app=web in shop yet".into())
        );
        assert_eq!(
            pods("app=web in shop", 2, &[&starting, &ready, &crashing, &pulling]),
            Verdict::NotReady("1 of 2 needed pods matching app=web in shop are Ready: web-b is in CrashLoopBackOff (container app, exit code 1, 4 restarts), web-c is in ImagePullBackOff (container init: Back-off pulling image \"app:nope\"), web-d is not Ready (Pending)".into())
        );
        assert_eq!(
            pods("app=web in shop", 2, &[&ready]),
            Verdict::NotReady(
                "1 of 2 needed pods matching app=web in shop are Ready (1 pod matches)".into()
            )
        );
        assert_eq!(
            pods("app=web in shop", 1, &[&leaving]),
            Verdict::NotReady(
                "0 of 1 needed pod matching app=web in shop is Ready: web-e is terminating".into()
            )
        );
    }
}
