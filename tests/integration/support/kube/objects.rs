//! Objects in the exact JSON shapes the API server sends (as its API reference gives them):
//! EndpointSlices (the controller's placeholder included), Services, Jobs, Pods,
//! Deployments, StatefulSets and DaemonSets with their rollout status, Nodes, and
//! cert-manager Certificates. Kind, apiVersion, namespace and resourceVersion are filled in
//! by the server when a test puts them.

use serde_json::{Value, json};

/// An EndpointSlice of `service` with one endpoint per (pod, ready), exposing a port named
/// `port`.
pub fn endpoint_slice(service: &str, port: &str, endpoints: &[(&str, bool)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .enumerate()
        .map(|(index, (pod, ready))| {
            json!({
                "addresses": [format!("10.244.0.{}", index + 10)],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop", "uid": format!("uid-{pod}")},
            })
        })
        .collect();
    json!({
        "metadata": {
            "name": format!("{service}-abc12"),
            "generateName": format!("{service}-"),
            "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": port, "port": 5432, "protocol": "TCP"}],
    })
}

/// The slice the EndpointSlice controller keeps for `service` while the Service selects no
/// pod with an IP: no endpoints, no ports. It builds both as empty lists; they reach etcd as
/// protobuf, which keeps no empty list, and come back to every client as JSON `null`.
pub fn placeholder_slice(service: &str) -> Value {
    json!({
        "metadata": {
            "name": format!("{service}-7xk2p"),
            "generateName": format!("{service}-"),
            "labels": {
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": service,
            },
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-22T10:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Service", "name": service, "uid": format!("uid-{service}"),
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "addressType": "IPv4",
        "endpoints": null,
        "ports": null,
    })
}

/// A ClusterIP Service selecting `app: NAME`, with ports (name, port, targetPort); an
/// empty name leaves the port unnamed, as a Service with one port may.
pub fn service(name: &str, ports: &[(&str, u16, Value)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port, target)| {
            let mut port = json!({"port": port, "protocol": "TCP", "targetPort": target});
            if !port_name.is_empty() {
                port["name"] = json!(port_name);
            }
            port
        })
        .collect();
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}")},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.12",
            "clusterIPs": ["10.96.0.12"],
            "selector": {"app": name},
            "ports": ports,
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {}},
    })
}

/// A Job with the given status conditions (`[("Failed", "BackoffLimitExceeded", "…")]`).
pub fn job(name: &str, active: u32, failed: u32, conditions: &[(&str, &str, &str)]) -> Value {
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(kind, reason, message)| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": "2026-11-22T10:00:00Z", "lastTransitionTime": "2026-11-22T10:00:00Z"})
        })
        .collect();
    json!({
        "metadata": {"name": name, "labels": {"job-name": name}},
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1},
        "status": {"active": active, "failed": failed, "conditions": conditions, "startTime": "2026-11-22T09:59:00Z"},
    })
}

/// A Running pod with `labels`, Ready or not.
pub fn pod(name: &str, labels: &[(&str, &str)], ready: bool) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(key, value)| (key.to_string(), json!(value)))
        .collect();
    let condition = if ready { "True" } else { "False" };
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": condition},
                {"type": "ContainersReady", "status": condition},
            ],
            "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0,
                                   "image": "registry.example/app:1", "state": {"running": {"startedAt": "2026-11-22T10:00:00Z"}}}],
        },
    })
}

/// A pod whose container `app` keeps crashing with exit code 1.
pub fn crashing_pod(name: &str, labels: &[(&str, &str)], restarts: u32) -> Value {
    let mut pod = pod(name, labels, false);
    pod["status"]["containerStatuses"] = json!([{
        "name": "app", "ready": false, "restartCount": restarts, "image": "registry.example/app:1",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=app"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }]);
    pod
}

/// A condition as controllers write them.
fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastUpdateTime": "2026-11-22T10:00:00Z", "lastTransitionTime": "2026-11-22T10:00:00Z"})
}

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "app", "image": "registry.example/app:2",
                                    "imagePullPolicy": "IfNotPresent", "resources": {}}],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}})
}

/// The replica counts of a Deployment's status, as the deployment controller writes them.
#[derive(Clone, Copy)]
pub struct Replicas {
    /// All pods of the Deployment, old and new.
    pub total: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
}

/// A Deployment `app: NAME` of `spec_replicas` at `generation`, whose controller has
/// observed `observed` and reports `replicas`; `progressing` is the reason of its
/// Progressing condition (`NewReplicaSetAvailable`, `ReplicaSetUpdated`,
/// `ProgressDeadlineExceeded`).
pub fn deployment(
    name: &str,
    spec_replicas: u32,
    (generation, observed): (u32, u32),
    replicas: Replicas,
    progressing: &str,
) -> Value {
    let hash = "7d9c6";
    let progressing = match progressing {
        "ProgressDeadlineExceeded" => condition(
            "Progressing",
            "False",
            progressing,
            &format!("ReplicaSet \"{name}-{hash}\" has timed out progressing."),
        ),
        "NewReplicaSetAvailable" => condition(
            "Progressing",
            "True",
            progressing,
            &format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."),
        ),
        other => condition(
            "Progressing",
            "True",
            other,
            &format!("ReplicaSet \"{name}-{hash}\" is progressing."),
        ),
    };
    let available = if replicas.available >= spec_replicas.saturating_sub(spec_replicas / 4) {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let mut status = json!({
        "observedGeneration": observed,
        "replicas": replicas.total,
        "updatedReplicas": replicas.updated,
        "readyReplicas": replicas.ready,
        "availableReplicas": replicas.available,
        "conditions": [available, progressing],
    });
    let unavailable = replicas.total.saturating_sub(replicas.available);
    if unavailable > 0 {
        status["unavailableReplicas"] = json!(unavailable);
    }
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation,
                     "labels": {"app": name},
                     "annotations": {"deployment.kubernetes.io/revision": generation.to_string()}},
        "spec": {
            "replicas": spec_replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": status,
    })
}

/// A StatefulSet `app: NAME` of 3 replicas with the given update strategy (`RollingUpdate`
/// with `partition`, or `OnDelete`), ready and updated replicas, at generation 2.
pub fn stateful_set(name: &str, strategy: &str, partition: u32, ready: u32, updated: u32) -> Value {
    let update_strategy = if strategy == "RollingUpdate" {
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition}})
    } else {
        json!({"type": strategy})
    };
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 2},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "serviceName": name,
            "template": pod_template(name),
            "updateStrategy": update_strategy,
            "podManagementPolicy": "OrderedReady",
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": 3 - updated,
            "updatedReplicas": updated,
            "currentRevision": format!("{name}-5d8f7c9b4"),
            "updateRevision": format!("{name}-6b7c8d9e1"),
            "collisionCount": 0,
        },
    })
}

/// A DaemonSet `app: NAME` on 3 nodes, `updated` of them running the new template and
/// `available` available.
pub fn daemon_set(name: &str, updated: u32, available: u32) -> Value {
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 3},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10,
        },
        "status": {
            "observedGeneration": 3,
            "currentNumberScheduled": 3,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 3,
            "numberReady": available,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": 3 - available,
        },
    })
}

/// A Node whose kubelet reports Ready (`True`), not ready (`False`) or has stopped
/// reporting (`Unknown`).
pub fn node(name: &str, ready: &str, labels: &[(&str, &str)]) -> Value {
    let (reason, message) = match ready {
        "True" => ("KubeletReady", "kubelet is posting ready status"),
        "False" => (
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        ),
        _ => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
    };
    let mut all_labels = serde_json::Map::new();
    all_labels.insert("kubernetes.io/hostname".into(), json!(name));
    all_labels.insert("kubernetes.io/os".into(), json!("linux"));
    for (key, value) in labels {
        all_labels.insert(key.to_string(), json!(value));
    }
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": all_labels},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", ready, reason, message),
            ],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "containerRuntimeVersion": "containerd://2.1.1",
                         "operatingSystem": "linux", "architecture": "amd64"},
        },
    })
}

/// A cert-manager Certificate (cert-manager.io/v1) whose Ready condition is `ready`, as
/// cert-manager writes it for `generation`.
pub fn certificate(name: &str, ready: bool, generation: u32) -> Value {
    let ready = if ready {
        json!({"type": "Ready", "status": "True", "reason": "Ready",
               "message": "Certificate is up to date and has not expired",
               "observedGeneration": generation, "lastTransitionTime": "2026-11-22T10:00:00Z"})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "DoesNotExist",
               "message": "Issuing certificate as Secret does not exist",
               "observedGeneration": generation, "lastTransitionTime": "2026-11-22T10:00:00Z"})
    };
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation,
                     "labels": {"app": "web"}},
        "spec": {
            "secretName": format!("{name}-tls"),
            "dnsNames": [format!("{name}.example.com")],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"rotationPolicy": "Always"},
        },
        "status": {"conditions": [ready]},
    })
}
