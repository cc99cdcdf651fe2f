//! What `--dry-run` shows of a `k8s://` target: the objects, what "ready" means for them,
//! and the namespace, API server and credentials the first attempt would use, with where
//! each came from. Nothing is asked of the API server and no credential plugin is run.

use super::discovery::Wanted;
use super::forms::Kind;
use super::object::{Check, Pick};
use crate::kube::config;
use crate::probe::options::Plan;

/// The plan of a target of `kind`, in `namespace` (None: the pod's or the context's),
/// through kubeconfig `context`.
pub fn plan(kind: &Kind, namespace: Option<&str>, context: Option<&str>) -> Plan {
    let mut plan = what(kind);
    let environment = config::Environment::from_process();
    let found = config::connection(&environment, context);
    // Known only once discovery has found the resource: nodes have no namespace.
    let unless_cluster_scoped = match kind {
        Kind::Object { .. } => ", unless the resource is cluster-scoped",
        _ => "",
    };
    let namespace = match (namespace, &found) {
        (Some(namespace), _) => Some(format!("{namespace} (from the target)")),
        (None, Ok(found)) => Some(format!(
            "{} (from {}){unless_cluster_scoped}",
            found.namespace, found.namespace_from
        )),
        (None, Err(_)) => None,
    };
    plan.extend(namespace.map(|namespace| ("namespace", namespace)));
    match found {
        Ok(found) => plan.extend([
            ("api server", found.server.to_string()),
            ("credentials", found.who),
        ]),
        Err(error) => plan.push(("api server", format!("none: {error:#}"))),
    }
    plan
}

/// The objects and their settings, defaults filled in, then what "ready" means.
fn what(kind: &Kind) -> Plan {
    match kind {
        Kind::Service { name, port, min } => vec![
            ("object", format!("Service {name}")),
            ("port", port.as_deref().unwrap_or("any").to_string()),
            ("min", min.to_string()),
            (
                "ready",
                format!("its EndpointSlices hold {min} or more ready endpoints"),
            ),
        ],
        Kind::Job { name } => vec![
            ("object", format!("Job {name}")),
            (
                "ready",
                "the Job has completed (failed: exit 3 at once)".to_string(),
            ),
        ],
        Kind::Pods { selector, min } => vec![
            ("object", format!("pods matching {selector}")),
            ("min", min.to_string()),
            ("ready", format!("{min} or more of them are Ready")),
        ],
        Kind::Rollout { workload, name } => {
            let resource = workload.resource();
            vec![
                ("object", format!("{} {name}", resource.kind)),
                ("resource", format!("{resource}/{}", resource.version)),
                (
                    "ready",
                    "the rollout is complete, as kubectl rollout status judges it".to_string(),
                ),
            ]
        }
        Kind::Object {
            wanted,
            pick,
            check,
        } => object(wanted, pick, check),
    }
}

fn object(wanted: &Wanted, pick: &Pick, check: &Check) -> Plan {
    let written = match &wanted.group {
        Some(group) => format!("{}.{group}", wanted.name),
        None => wanted.name.clone(),
    };
    let mut plan = vec![match pick {
        Pick::Named(name) => ("object", format!("{written} {name}")),
        Pick::Selected { selector, .. } => ("object", format!("{written} matching {selector}")),
    }];
    plan.push((
        "resource",
        format!(
            "{}, found through discovery on the first attempt",
            wanted.name
        ),
    ));
    plan.extend(wanted.group.clone().map(|group| ("group", group)));
    plan.push((
        "version",
        match &wanted.version {
            Some(version) => format!("{version} (pinned)"),
            None => "the group's preferred".to_string(),
        },
    ));
    if let Pick::Selected { selector, min } = pick {
        plan.push(("selector", selector.clone()));
        if *check != Check::Deleted {
            plan.push(("min", min.to_string()));
        }
    }
    match check {
        Check::Condition { kind, status } => plan.push(("condition", format!("{kind}={status}"))),
        Check::JsonPath { path, value } => plan.push((
            "jsonpath",
            match value {
                Some(value) => format!("{path}={value}"),
                None => format!("{path} (any value)"),
            },
        )),
        Check::Exists | Check::Deleted => {}
    }
    plan.push(("ready", ready(pick, check)));
    plan
}

/// What "ready" means, as `kubectl wait` would judge it.
fn ready(pick: &Pick, check: &Check) -> String {
    let (min, subject) = match pick {
        Pick::Named(_) => (None, "the object".to_string()),
        Pick::Selected { min, .. } => (Some(min), format!("{min} or more matching objects")),
    };
    match (check, min) {
        (Check::Exists, None) => "the object exists".to_string(),
        (Check::Exists, Some(min)) => format!("{min} or more objects match"),
        (Check::Deleted, None) => {
            "the object is gone (or was deleted and created again)".to_string()
        }
        (Check::Deleted, Some(_)) => "no object matches".to_string(),
        (Check::Condition { kind, status }, None) => format!("the object has {kind}={status}"),
        (Check::Condition { kind, status }, Some(_)) => format!("{subject} have {kind}={status}"),
        (Check::JsonPath { path, value }, _) => match value {
            Some(value) => format!("{path} is {value:?} in {subject}"),
            None => format!("{path} finds a value in {subject}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::k8s::forms;

    fn settings(text: &str) -> String {
        let form = forms::parse(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
        what(&form.kind)
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn each_form_says_what_it_waits_for() {
        let cases = [
            (
                "k8s://db#port=pg&min=2",
                "object=Service db; port=pg; min=2; ready=its EndpointSlices hold 2 or more ready endpoints",
            ),
            (
                "k8s://job/migrate",
                "object=Job migrate; ready=the Job has completed (failed: exit 3 at once)",
            ),
            (
                "k8s://pods/app=web#min=3",
                "object=pods matching app=web; min=3; ready=3 or more of them are Ready",
            ),
            (
                "k8s://shop/sts/db",
                "object=StatefulSet db; resource=statefulsets.apps/v1; ready=the rollout is complete, as kubectl rollout status judges it",
            ),
            (
                "k8s://shop/certificate/web#condition=Ready",
                "object=certificate web; resource=certificate, found through discovery on the first attempt; version=the group's preferred; condition=Ready=True; ready=the object has Ready=True",
            ),
            (
                "k8s://certificates.cert-manager.io/web#version=v1&condition=Ready=False",
                "object=certificates.cert-manager.io web; resource=certificates, found through discovery on the first attempt; group=cert-manager.io; version=v1 (pinned); condition=Ready=False; ready=the object has Ready=False",
            ),
            (
                "k8s://pod/web-0#jsonpath={.status.phase}=Running",
                "object=pod web-0; resource=pod, found through discovery on the first attempt; version=the group's preferred; jsonpath={.status.phase}=Running; ready={.status.phase} is \"Running\" in the object",
            ),
            (
                "k8s://svc/web#jsonpath=.status.loadBalancer.ingress[0].ip",
                "jsonpath={.status.loadBalancer.ingress[0].ip} (any value); ready={.status.loadBalancer.ingress[0].ip} finds a value in the object",
            ),
            (
                "k8s://job/migrate#deleted",
                "ready=the object is gone (or was deleted and created again)",
            ),
            ("k8s://secret/db#exists", "ready=the object exists"),
            (
                "k8s://nodes#selector=role=worker&min=3&condition=Ready",
                "object=nodes matching role=worker; resource=nodes, found through discovery on the first attempt; version=the group's preferred; selector=role=worker; min=3; condition=Ready=True; ready=3 or more matching objects have Ready=True",
            ),
            (
                "k8s://certificates#selector=app=web&deleted",
                "selector=app=web; ready=no object matches",
            ),
            (
                "k8s://certificates#selector=app=web",
                "min=1; ready=1 or more objects match",
            ),
        ];
        for (text, expected) in cases {
            let shown = settings(text);
            assert!(shown.contains(expected), "{text}: {shown}");
        }
    }
}
