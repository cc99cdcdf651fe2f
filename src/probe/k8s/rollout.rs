//! Rollouts of Deployments, StatefulSets and DaemonSets, complete by the rules
//! `kubectl rollout status` applies (its status viewers), and the pods that hold one back,
//! read so that the reason names them with what is wrong.
//!
//! The pods are listed by the workload's own selector, and only while the rollout is held
//! back by them: after each change of the workload, and once per attempt (a pod that starts
//! crash-looping changes no field of its Deployment). Listing them is a nicety: refused, it
//! is said once and never asked again.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tracing::warn;

use super::readiness::{Condition, Verdict, listed, null_as_default, parse, plural, pod_troubles};
use crate::attempt::Stage;
use crate::kube::api::{Api, ApiError};
use crate::kube::resource::{
    DAEMON_SETS, DEPLOYMENTS, PODS_LISTED, Query, Resource, STATEFUL_SETS,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl Workload {
    pub fn resource(self) -> Resource {
        match self {
            Workload::Deployment => DEPLOYMENTS,
            Workload::StatefulSet => STATEFUL_SETS,
            Workload::DaemonSet => DAEMON_SETS,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Object {
    metadata: Meta,
    spec: Spec,
    status: Status,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    generation: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    replicas: Option<i64>,
    paused: bool,
    selector: Selector,
    update_strategy: Strategy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Strategy {
    #[serde(rename = "type")]
    kind: String,
    rolling_update: Option<RollingUpdate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RollingUpdate {
    partition: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Selector {
    #[serde(deserialize_with = "null_as_default")]
    match_labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    match_expressions: Vec<Expression>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Expression {
    key: String,
    operator: String,
    #[serde(deserialize_with = "null_as_default")]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    observed_generation: i64,
    replicas: i64,
    updated_replicas: i64,
    ready_replicas: i64,
    available_replicas: i64,
    update_revision: String,
    current_revision: String,
    desired_number_scheduled: i64,
    updated_number_scheduled: i64,
    number_available: i64,
    #[serde(deserialize_with = "null_as_default")]
    conditions: Vec<Condition>,
}

/// How a rollout stands, and whether pods hold it back (so naming them helps).
#[derive(Debug, PartialEq, Eq)]
pub struct Judged {
    pub verdict: Verdict,
    pub held_by_pods: bool,
}

/// The rollout of `objects` (the workload, or nothing yet), with `troubles` (the pods not
/// Ready, as last read) named when they hold it back.
pub fn judge(workload: Workload, shown: &str, objects: &[&Value], troubles: &[String]) -> Judged {
    let kind = workload.resource().kind;
    let Some(object) = objects.first() else {
        return Judged {
            verdict: Verdict::NotReady(format!("{kind} {shown} does not exist yet")),
            held_by_pods: false,
        };
    };
    let object: Object = parse(object);
    let step = match workload {
        Workload::Deployment => deployment(&object),
        Workload::StatefulSet => stateful_set(&object),
        Workload::DaemonSet => daemon_set(&object),
    };
    let pods = if troubles.is_empty() {
        String::new()
    } else {
        format!("; {}", listed(troubles))
    };
    let verdict = match &step {
        Step::Done => Verdict::Ready,
        Step::NotObserved => Verdict::NotReady(format!(
            "{kind} {shown}: the controller has not seen its latest spec yet (generation {}, observed {})",
            object.metadata.generation, object.status.observed_generation
        )),
        Step::Waiting(words) => {
            let paused = if object.spec.paused {
                format!(
                    " (it is paused: kubectl rollout resume {} {shown})",
                    kind.to_lowercase()
                )
            } else {
                String::new()
            };
            Verdict::NotReady(format!("{kind} {shown}: {words}{paused}{pods}"))
        }
        Step::DeadlineExceeded(message) => Verdict::Failed(format!(
            "{kind} {shown} exceeded its progress deadline: {}{pods}",
            message.trim_end_matches('.')
        )),
        Step::OnDelete => Verdict::Failed(format!(
            "{kind} {shown} replaces its pods only when they are deleted (updateStrategy {}), so its rollout has no end to wait for (kubectl rollout status refuses it too); wait for its pods instead: k8s://{}/pods/{}",
            object.spec.update_strategy.kind,
            shown.split('/').next().unwrap_or_default(),
            selector_text(&object.spec.selector)
        )),
    };
    Judged {
        verdict,
        held_by_pods: matches!(step, Step::Waiting(_) | Step::DeadlineExceeded(_)),
    }
}

/// The label selector of a workload, as a query string takes it, if it has one.
pub fn pod_selector(object: &Value) -> Option<String> {
    let object: Object = parse(object);
    let text = selector_text(&object.spec.selector);
    (!text.is_empty()).then_some(text)
}

enum Step {
    Done,
    NotObserved,
    Waiting(String),
    DeadlineExceeded(String),
    OnDelete,
}

/// kubectl's DeploymentStatusViewer.
fn deployment(object: &Object) -> Step {
    let status = &object.status;
    if object.metadata.generation > status.observed_generation {
        return Step::NotObserved;
    }
    if let Some(progressing) = status
        .conditions
        .iter()
        .find(|condition| condition.kind == "Progressing")
        && progressing.reason == "ProgressDeadlineExceeded"
    {
        return Step::DeadlineExceeded(progressing.message.clone());
    }
    let updated = status.updated_replicas;
    if let Some(replicas) = object.spec.replicas
        && updated < replicas
    {
        return Step::Waiting(format!(
            "{updated} of {replicas} replicas have been updated"
        ));
    }
    if status.replicas > updated {
        let old = status.replicas - updated;
        return Step::Waiting(format!(
            "{old} old {} pending termination",
            if old == 1 {
                "replica is"
            } else {
                "replicas are"
            }
        ));
    }
    if status.available_replicas < updated {
        return Step::Waiting(format!(
            "{} of {updated} updated replicas are available",
            status.available_replicas
        ));
    }
    Step::Done
}

/// kubectl's DaemonSetStatusViewer.
fn daemon_set(object: &Object) -> Step {
    if !rolling(object) {
        return Step::OnDelete;
    }
    let status = &object.status;
    if object.metadata.generation > status.observed_generation {
        return Step::NotObserved;
    }
    let desired = status.desired_number_scheduled;
    if status.updated_number_scheduled < desired {
        return Step::Waiting(format!(
            "{} of {desired} pods have been updated",
            status.updated_number_scheduled
        ));
    }
    if status.number_available < desired {
        return Step::Waiting(format!(
            "{} of {desired} updated pods are available",
            status.number_available
        ));
    }
    Step::Done
}

/// kubectl's StatefulSetStatusViewer.
fn stateful_set(object: &Object) -> Step {
    if !rolling(object) {
        return Step::OnDelete;
    }
    let status = &object.status;
    if status.observed_generation == 0 || object.metadata.generation > status.observed_generation {
        return Step::NotObserved;
    }
    if let Some(replicas) = object.spec.replicas
        && status.ready_replicas < replicas
    {
        return Step::Waiting(format!(
            "{} of {replicas} pods are ready",
            status.ready_replicas
        ));
    }
    if let Some(rolling_update) = &object.spec.update_strategy.rolling_update {
        if let (Some(replicas), Some(partition)) = (object.spec.replicas, rolling_update.partition)
            && status.updated_replicas < replicas - partition
        {
            let partitioned = if partition > 0 {
                format!(
                    " (a partitioned rollout: only pods from ordinal {partition} up are updated)"
                )
            } else {
                String::new()
            };
            return Step::Waiting(format!(
                "{} of {} pods have been updated{partitioned}",
                status.updated_replicas,
                replicas - partition
            ));
        }
        return Step::Done;
    }
    if status.update_revision != status.current_revision {
        return Step::Waiting(format!(
            "{} {} at revision {}, the rest at {}",
            status.updated_replicas,
            plural(
                u32::try_from(status.updated_replicas).unwrap_or(0),
                "pod is",
                "pods are"
            ),
            status.update_revision,
            status.current_revision
        ));
    }
    Step::Done
}

/// The API server fills in `RollingUpdate` when a manifest says nothing.
fn rolling(object: &Object) -> bool {
    matches!(
        object.spec.update_strategy.kind.as_str(),
        "RollingUpdate" | ""
    )
}

fn selector_text(selector: &Selector) -> String {
    let mut requirements: Vec<String> = selector
        .match_labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for expression in &selector.match_expressions {
        let values = expression.values.join(",");
        requirements.push(match expression.operator.as_str() {
            "In" => format!("{} in ({values})", expression.key),
            "NotIn" => format!("{} notin ({values})", expression.key),
            "Exists" => expression.key.clone(),
            "DoesNotExist" => format!("!{}", expression.key),
            other => format!("{} {other} ({values})", expression.key),
        });
    }
    requirements.join(",")
}

/// The pods of a rollout target, read when they may say why it is held back.
#[derive(Default)]
pub struct Pods {
    /// The pods not Ready, as `NAME why`, as last read.
    pub troubles: Vec<String>,
    /// The attempt and the workload's resourceVersion of the last read.
    read_for: Option<(u64, String)>,
    /// Whether that read came back: one cut off by the attempt timeout is not tried again
    /// until the workload changes, so that a slow list cannot keep the watch from being read.
    finished: bool,
    /// `list` on pods is forbidden: said once, never asked again.
    forbidden: bool,
}

/// Where a rollout target's pods are, and how the target is shown.
pub struct Asking<'a> {
    pub api: &'a Api,
    pub namespace: &'a str,
    pub selector: String,
    pub target: &'a str,
    /// Why the target is not ready as of now: what a cut-off attempt reports.
    pub reason: String,
}

impl Pods {
    /// Whether to read the pods now: the workload changed since the last read, or this is a
    /// new attempt.
    pub fn due(&self, attempt: u64, workload_version: &str) -> bool {
        !self.forbidden
            && self.read_for.as_ref().is_none_or(|(read_in, version)| {
                version != workload_version || (self.finished && *read_in != attempt)
            })
    }

    pub async fn refresh(
        &mut self,
        attempt: u64,
        workload_version: &str,
        asking: Asking<'_>,
        stage: &Stage,
    ) {
        self.read_for = Some((attempt, workload_version.to_string()));
        self.finished = false;
        let Asking {
            api,
            namespace,
            selector,
            target,
            reason,
        } = asking;
        let query = Query::new(PODS_LISTED, namespace).labels(selector);
        stage.set(format!(
            "listing the pods of the rollout in {namespace} at {}",
            api.authority()
        ));
        stage.waiting(reason);
        // Its own stage: cut off, the attempt reports the rollout's reason, not this read.
        let read = api.list(&query, &Stage::default()).await;
        self.finished = true;
        match read {
            Ok(list) => {
                let pods: Vec<&Value> = list.items.iter().collect();
                self.troubles = pod_troubles(&pods);
            }
            Err(ApiError::Forbidden(words)) => {
                self.forbidden = true;
                self.troubles.clear();
                warn!(
                    event = "limited",
                    target = %target,
                    "{target}: cannot list its pods, so reasons will not name the pods that hold the rollout back: {words}"
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(generation: i64, status: Value, conditions: Value) -> Value {
        let mut status = status;
        status["observedGeneration"] = json!(generation);
        status["conditions"] = conditions;
        json!({"metadata": {"name": "web", "generation": generation},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                        "strategy": {"type": "RollingUpdate"}},
               "status": status})
    }

    fn judged(workload: Workload, object: &Value, troubles: &[&str]) -> Verdict {
        let troubles: Vec<String> = troubles.iter().map(|t| t.to_string()).collect();
        judge(workload, "shop/web", &[object], &troubles).verdict
    }

    #[test]
    fn deployments_as_kubectl_rollout_status_judges_them() {
        let progressing =
            json!([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]);
        let mut unobserved = deployment(4, json!({}), progressing.clone());
        unobserved["status"]["observedGeneration"] = json!(3);
        let cases = [
            (
                unobserved,
                "Deployment shop/web: the controller has not seen its latest spec yet (generation 4, observed 3)",
            ),
            (
                deployment(
                    2,
                    json!({"replicas": 3, "updatedReplicas": 1}),
                    progressing.clone(),
                ),
                "Deployment shop/web: 1 of 3 replicas have been updated; web-b is in CrashLoopBackOff",
            ),
            (
                deployment(
                    2,
                    json!({"replicas": 4, "updatedReplicas": 3}),
                    progressing.clone(),
                ),
                "Deployment shop/web: 1 old replica is pending termination; web-b is in CrashLoopBackOff",
            ),
            (
                deployment(
                    2,
                    json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
                    progressing.clone(),
                ),
                "Deployment shop/web: 2 of 3 updated replicas are available; web-b is in CrashLoopBackOff",
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                judged(
                    Workload::Deployment,
                    &object,
                    &["web-b is in CrashLoopBackOff"]
                ),
                Verdict::NotReady(expected.into()),
                "{object}"
            );
        }
        let done = deployment(
            2,
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
            progressing,
        );
        assert_eq!(
            judged(Workload::Deployment, &done, &["web-old is terminating"]),
            Verdict::Ready
        );
        let stuck = deployment(
            2,
            json!({"replicas": 4, "updatedReplicas": 1}),
            json!([{"type": "Available", "status": "True"},
                   {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet \"web-7d9c6\" has timed out progressing."}]),
        );
        assert_eq!(
            judged(Workload::Deployment, &stuck, &["web-7d9c6-x2p4q is in CrashLoopBackOff"]),
            Verdict::Failed("Deployment shop/web exceeded its progress deadline: ReplicaSet \"web-7d9c6\" has timed out progressing; web-7d9c6-x2p4q is in CrashLoopBackOff".into())
        );
        let mut paused = deployment(2, json!({"replicas": 3, "updatedReplicas": 1}), json!(null));
        paused["spec"]["paused"] = json!(true);
        assert_eq!(
            judged(Workload::Deployment, &paused, &[]),
            Verdict::NotReady("Deployment shop/web: 1 of 3 replicas have been updated (it is paused: kubectl rollout resume deployment shop/web)".into())
        );
        assert_eq!(
            judge(Workload::Deployment, "shop/web", &[], &[]),
            Judged {
                verdict: Verdict::NotReady("Deployment shop/web does not exist yet".into()),
                held_by_pods: false
            }
        );
    }

    fn stateful_set(strategy: Value, status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]},
                                             {"key": "canary", "operator": "DoesNotExist"}]},
                        "updateStrategy": strategy},
               "status": status})
    }

    #[test]
    fn stateful_sets_with_rolling_partitioned_and_on_delete_updates() {
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let partitioned = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        let cases = [
            (stateful_set(rolling.clone(), json!({"observedGeneration": 0})), Verdict::NotReady("StatefulSet shop/web: the controller has not seen its latest spec yet (generation 2, observed 0)".into())),
            (stateful_set(rolling.clone(), json!({"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 3})), Verdict::NotReady("StatefulSet shop/web: 2 of 3 pods are ready".into())),
            (stateful_set(rolling.clone(), json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1})), Verdict::NotReady("StatefulSet shop/web: 1 of 3 pods have been updated".into())),
            (stateful_set(rolling.clone(), json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3})), Verdict::Ready),
            (stateful_set(partitioned.clone(), json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 0})), Verdict::NotReady("StatefulSet shop/web: 0 of 1 pods have been updated (a partitioned rollout: only pods from ordinal 2 up are updated)".into())),
            (stateful_set(partitioned, json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1})), Verdict::Ready),
            (stateful_set(json!({"type": "RollingUpdate"}), json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1, "updateRevision": "web-2", "currentRevision": "web-1"})), Verdict::NotReady("StatefulSet shop/web: 1 pod is at revision web-2, the rest at web-1".into())),
            (stateful_set(json!({"type": "OnDelete"}), json!({"observedGeneration": 2})), Verdict::Failed("StatefulSet shop/web replaces its pods only when they are deleted (updateStrategy OnDelete), so its rollout has no end to wait for (kubectl rollout status refuses it too); wait for its pods instead: k8s://shop/pods/app=web,tier notin (cache),!canary".into())),
        ];
        for (object, expected) in cases {
            assert_eq!(
                judged(Workload::StatefulSet, &object, &[]),
                expected,
                "{object}"
            );
        }
    }

    #[test]
    fn daemon_sets() {
        let daemon_set = |status: Value| {
            json!({"metadata": {"name": "web", "generation": 1},
                   "spec": {"selector": {"matchLabels": {"app": "web"}}, "updateStrategy": {"type": "RollingUpdate"}},
                   "status": status})
        };
        let cases = [
            (daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 3})), Verdict::NotReady("DaemonSet shop/web: 2 of 3 pods have been updated".into())),
            (daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2})), Verdict::NotReady("DaemonSet shop/web: 2 of 3 updated pods are available".into())),
            (daemon_set(json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3})), Verdict::Ready),
            (daemon_set(json!({"observedGeneration": 0})), Verdict::NotReady("DaemonSet shop/web: the controller has not seen its latest spec yet (generation 1, observed 0)".into())),
        ];
        for (object, expected) in cases {
            assert_eq!(
                judged(Workload::DaemonSet, &object, &[]),
                expected,
                "{object}"
            );
        }
        assert_eq!(
            pod_selector(&daemon_set(json!({}))).as_deref(),
            Some("app=web")
        );
        assert_eq!(pod_selector(&json!({"spec": {}})), None);
    }

    #[test]
    fn pods_are_read_once_per_attempt_and_after_each_change() {
        let mut pods = Pods::default();
        assert!(pods.due(1, "10"));
        pods.read_for = Some((1, "10".into()));
        pods.finished = true;
        assert!(!pods.due(1, "10"));
        assert!(pods.due(1, "11"));
        assert!(pods.due(2, "10"));
        // A read cut off waits for a change of the workload.
        pods.finished = false;
        assert!(!pods.due(2, "10"));
        assert!(pods.due(2, "12"));
        pods.forbidden = true;
        assert!(!pods.due(3, "13"));
    }
}
