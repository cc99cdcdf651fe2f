//! k8s:// targets beyond Services, Jobs and pods, against the stand-in API server:
//! Deployment, StatefulSet and DaemonSet rollouts judged as `kubectl rollout status` judges
//! them, any object found through discovery (a custom resource, nodes) with a condition, a
//! JSONPath value or its deletion, and objects counted by a label selector.

use crate::support::kube::{
    Fixture, Kind, Replicas, Seen, USER, certificate, crashing_pod, daemon_set, deployment, job,
    node, pod, stateful_set,
};
use crate::support::{SOON, holdup};

fn watches(seen: &Seen) -> bool {
    seen.verb == "watch" && seen.status == 200
}

fn discovers(seen: &Seen) -> bool {
    seen.verb == "discover"
}

/// A Deployment of 3 whose pods are all updated, 2 of them available.
fn rolling_out() -> serde_json::Value {
    let replicas = Replicas {
        total: 3,
        updated: 3,
        ready: 2,
        available: 2,
    };
    deployment("web", 3, (2, 2), replicas, "ReplicaSetUpdated")
}

#[test]
fn a_deployment_rollout_names_the_pod_that_holds_it_back_and_ends_when_complete() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Deployment, "shop", rolling_out());
    k8s.api.put(
        Kind::Pod,
        "shop",
        pod("web-7d9c6-a", &[("app", "web")], true),
    );
    k8s.api.put(
        Kind::Pod,
        "shop",
        crashing_pod("web-7d9c6-b", &[("app", "web")], 5),
    );
    k8s.api
        .put(Kind::Pod, "shop", pod("api-0", &[("app", "api")], false));
    // Short attempts: the pods are read again on each, and each new reason is printed.
    let mut running = k8s
        .in_pod()
        .args([
            "-w",
            "k8s://deployment/web",
            "-t",
            "30s",
            "--attempt-timeout",
            "300ms",
        ])
        .spawn();
    running.wait_for_line(
        "waiting for k8s://deployment/web: Deployment shop/web: 2 of 3 updated replicas are available; web-7d9c6-b is in CrashLoopBackOff (container app, exit code 1, 5 restarts)",
    );
    k8s.api.wait_for_requests(1, watches);
    running.assert_still_running();
    // The pod is fixed; the Deployment's status follows.
    k8s.api.put(
        Kind::Pod,
        "shop",
        pod("web-7d9c6-b", &[("app", "web")], true),
    );
    let done = Replicas {
        total: 3,
        updated: 3,
        ready: 3,
        available: 3,
    };
    k8s.api.put(
        Kind::Deployment,
        "shop",
        deployment("web", 3, (2, 2), done, "NewReplicaSetAvailable"),
    );
    running
        .finish_within(SOON)
        .code(0)
        .stderr_has("k8s://deployment/web ready after ")
        .stderr_lacks("api-0");
    let requests = k8s.api.requests();
    let watch = requests.iter().find(|seen| watches(seen)).unwrap();
    assert_eq!(watch.kind, Some(Kind::Deployment));
    assert_eq!(watch.path, "/apis/apps/v1/namespaces/shop/deployments");
    assert_eq!(
        watch.param("fieldSelector").as_deref(),
        Some("metadata.name=web")
    );
    let pod_list = requests
        .iter()
        .find(|seen| seen.kind == Some(Kind::Pod))
        .unwrap();
    assert_eq!(pod_list.verb, "list");
    assert_eq!(pod_list.param("labelSelector").as_deref(), Some("app=web"));
    assert!(
        !requests.iter().any(discovers),
        "a built-in form needs no discovery: {requests:#?}"
    );
}

#[test]
fn a_deployment_past_its_progress_deadline_fails_at_once_with_its_message() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Deployment, "shop", rolling_out());
    k8s.api.put(
        Kind::Pod,
        "shop",
        crashing_pod("web-7d9c6-b", &[("app", "web")], 9),
    );
    let mut running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/deploy/web", "-t", "60s"])
        .spawn();
    k8s.api.wait_for_requests(1, watches);
    running.assert_still_running();
    let stalled = Replicas {
        total: 3,
        updated: 3,
        ready: 2,
        available: 2,
    };
    k8s.api.put(
        Kind::Deployment,
        "shop",
        deployment("web", 3, (2, 2), stalled, "ProgressDeadlineExceeded"),
    );
    running
        .finish_within(SOON)
        .code(3)
        .stderr_has("k8s://shop/deploy/web failed: Deployment shop/web exceeded its progress deadline: ReplicaSet \"web-7d9c6\" has timed out progressing; web-7d9c6-b is in CrashLoopBackOff (container app, exit code 1, 9 restarts)")
        .stderr_has("waiting cannot fix this");
}

#[test]
fn a_deployment_whose_spec_is_not_observed_yet_is_not_ready_whatever_its_counts() {
    let k8s = Fixture::start();
    let counts = Replicas {
        total: 3,
        updated: 3,
        ready: 3,
        available: 3,
    };
    k8s.api.put(
        Kind::Deployment,
        "shop",
        deployment("web", 3, (3, 2), counts, "NewReplicaSetAvailable"),
    );
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://deployment/web", "-t", "30s"])
        .spawn();
    running.wait_for_line("Deployment shop/web: the controller has not seen its latest spec yet (generation 3, observed 2)");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(
        Kind::Deployment,
        "shop",
        deployment("web", 3, (3, 3), counts, "NewReplicaSetAvailable"),
    );
    running.finish_within(SOON).code(0);
}

#[test]
fn a_partitioned_statefulset_is_done_when_its_partition_is_updated() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::StatefulSet,
        "shop",
        stateful_set("db", "RollingUpdate", 2, 3, 0),
    );
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/statefulset/db", "-t", "30s"])
        .spawn();
    running.wait_for_line("StatefulSet shop/db: 0 of 1 pods have been updated (a partitioned rollout: only pods from ordinal 2 up are updated)");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(
        Kind::StatefulSet,
        "shop",
        stateful_set("db", "RollingUpdate", 2, 3, 1),
    );
    running.finish_within(SOON).code(0);
}

#[test]
fn an_on_delete_statefulset_has_no_rollout_to_wait_for_and_says_what_to_wait_for() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::StatefulSet,
        "shop",
        stateful_set("db", "OnDelete", 0, 3, 0),
    );
    k8s.in_pod()
        .args(["-w", "k8s://sts/db", "-t", "30s"])
        .run()
        .code(3)
        .stderr_has("k8s://sts/db failed: StatefulSet shop/db replaces its pods only when they are deleted (updateStrategy OnDelete), so its rollout has no end to wait for (kubectl rollout status refuses it too); wait for its pods instead: k8s://shop/pods/app=db")
        .took_between(std::time::Duration::ZERO, SOON);
}

#[test]
fn a_daemonset_rollout_counts_updated_then_available_pods() {
    let k8s = Fixture::start();
    k8s.api
        .put(Kind::DaemonSet, "kube-system", daemon_set("agent", 2, 3));
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://kube-system/daemonset/agent", "-t", "30s"])
        .args(["--attempt-timeout", "300ms"])
        .spawn();
    running.wait_for_line("DaemonSet kube-system/agent: 2 of 3 pods have been updated");
    k8s.api.wait_for_requests(1, watches);
    k8s.api
        .put(Kind::DaemonSet, "kube-system", daemon_set("agent", 3, 2));
    running.wait_for_line("DaemonSet kube-system/agent: 2 of 3 updated pods are available");
    k8s.api
        .put(Kind::DaemonSet, "kube-system", daemon_set("agent", 3, 3));
    running.finish_within(SOON).code(0);
}

/// Naming the pods is a nicety: without the rule to list them, said once, and the rollout
/// is still waited for.
#[test]
fn a_rollout_that_may_not_list_its_pods_says_so_once_and_waits_all_the_same() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::Pod, "list");
    k8s.api.put(Kind::Deployment, "shop", rolling_out());
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://deployment/web", "-t", "30s"])
        .args(["--attempt-timeout", "300ms", "--log-format", "json"])
        .spawn();
    let limited = running.wait_for_event("limited");
    assert_eq!(
        limited["message"],
        format!(
            "k8s://deployment/web: cannot list its pods, so reasons will not name the pods that hold the rollout back: forbidden (403): User \"{USER}\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"; give it a Role in namespace shop with this rule: - {{apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"list\"]}}"
        )
    );
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["message"],
        "waiting for k8s://deployment/web: Deployment shop/web: 2 of 3 updated replicas are available"
    );
    k8s.api.wait_for_requests(1, watches);
    let done = Replicas {
        total: 3,
        updated: 3,
        ready: 3,
        available: 3,
    };
    k8s.api.put(
        Kind::Deployment,
        "shop",
        deployment("web", 3, (2, 2), done, "NewReplicaSetAvailable"),
    );
    let finished = running.finish_within(SOON);
    finished.code(0);
    let limited = finished.events().iter().filter(|e| *e == "limited").count();
    assert_eq!(limited, 1);
    let pod_lists = k8s
        .api
        .requests()
        .iter()
        .filter(|seen| seen.kind == Some(Kind::Pod))
        .count();
    assert_eq!(pod_lists, 1, "refused once, never asked again");
}

/// cert-manager is installed while holdup waits: its resource appears in discovery, then
/// the Certificate, which becomes Ready.
#[test]
fn a_custom_resource_is_found_once_its_crd_is_installed_and_waited_for_until_ready() {
    let k8s = Fixture::start();
    k8s.api.hide(Kind::Certificate);
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://certificate/web#condition=Ready", "-t", "30s"])
        .args(["--attempt-timeout", "300ms"])
        .spawn();
    running.wait_for_line(&format!(
        "waiting for k8s://certificate/web: the API server at 127.0.0.1:{} serves no resource \"certificate\" (yet: is its CustomResourceDefinition installed?)",
        k8s.api.port()
    ));
    k8s.api.install(Kind::Certificate);
    k8s.api
        .put(Kind::Certificate, "shop", certificate("web", false, 1));
    running.wait_for_line("waiting for k8s://certificate/web: Certificate shop/web is Ready=False, not True: DoesNotExist: Issuing certificate as Secret does not exist");
    k8s.api.wait_for_requests(1, watches);
    k8s.api
        .put(Kind::Certificate, "shop", certificate("web", true, 1));
    running.finish_within(SOON).code(0);
    let requests = k8s.api.requests();
    let watch = requests.iter().find(|seen| watches(seen)).unwrap();
    assert_eq!(
        watch.path,
        "/apis/cert-manager.io/v1/namespaces/shop/certificates"
    );
    assert_eq!(
        watch.param("fieldSelector").as_deref(),
        Some("metadata.name=web")
    );
    // Found once, then never looked for again.
    let after_found = requests
        .iter()
        .skip_while(|seen| seen.path != "/apis/cert-manager.io/v1")
        .skip(1)
        .filter(|seen| discovers(seen))
        .count();
    assert_eq!(after_found, 0, "{requests:#?}");
}

#[test]
fn a_group_in_the_target_and_a_pinned_version_make_discovery_short() {
    let k8s = Fixture::start();
    k8s.api
        .put(Kind::Certificate, "shop", certificate("web", true, 1));
    k8s.in_pod()
        .args([
            "-w",
            "k8s://certificates.cert-manager.io/web#condition=Ready&version=v1",
        ])
        .run()
        .code(0);
    let paths: Vec<String> = k8s
        .api
        .requests()
        .iter()
        .filter(|seen| discovers(seen))
        .map(|seen| seen.path.clone())
        .collect();
    assert_eq!(paths, ["/apis/cert-manager.io/v1"]);
    k8s.in_pod()
        .args([
            "-w",
            "k8s://cert/web#condition=Ready&version=v2",
            "-t",
            "1s",
        ])
        .run()
        .code(1)
        .stderr_has("serves no resource \"cert\" in version v2");
}

#[test]
fn a_node_is_cluster_scoped_and_waited_for_until_ready() {
    let k8s = Fixture::start();
    k8s.api
        .put(Kind::Node, "", node("worker-1", "Unknown", &[]));
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://node/worker-1#condition=Ready", "-t", "30s"])
        .spawn();
    running.wait_for_line("waiting for k8s://node/worker-1: Node worker-1 is Ready=Unknown, not True: NodeStatusUnknown: Kubelet stopped posting node status.");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(Kind::Node, "", node("worker-1", "True", &[]));
    running.finish_within(SOON).code(0);
    let requests = k8s.api.requests();
    let watch = requests.iter().find(|seen| watches(seen)).unwrap();
    assert_eq!(watch.path, "/api/v1/nodes");
    assert_eq!(watch.namespace, "");

    k8s.in_pod()
        .args(["-w", "k8s://shop/node/worker-1#condition=Ready"])
        .run()
        .code(3)
        .stderr_has("nodes are cluster-scoped: the target names a namespace, which they do not have (write k8s://node/NAME)");
}

#[test]
fn a_forbidden_cluster_scoped_list_names_the_cluster_role_rule() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::Node, "list");
    k8s.in_pod()
        .args(["-w", "k8s://no/worker-1#condition=Ready", "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "k8s://no/worker-1 not ready after 1.00s: forbidden (403): User \"{USER}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope; give it a ClusterRole (bound with a ClusterRoleBinding) with this rule: - {{apiGroups: [\"\"], resources: [\"nodes\"], verbs: [\"list\", \"watch\"]}}"
        ));
}

#[test]
fn nodes_matching_a_selector_are_counted_against_min() {
    let k8s = Fixture::start();
    let worker = [("node-role.kubernetes.io/worker", "")];
    k8s.api
        .put(Kind::Node, "", node("worker-1", "True", &worker));
    k8s.api
        .put(Kind::Node, "", node("worker-2", "False", &worker));
    k8s.api
        .put(Kind::Node, "", node("control-plane", "True", &[]));
    let running = k8s
        .in_pod()
        .args([
            "-w",
            "k8s://nodes#selector=node-role.kubernetes.io/worker&min=2&condition=Ready",
            "-t",
            "30s",
        ])
        .spawn();
    running.wait_for_line("waiting for k8s://nodes: 1 of 2 needed nodes matching node-role.kubernetes.io/worker have Ready=True: worker-2 is Ready=False, not True: KubeletNotReady: container runtime network not ready");
    k8s.api.wait_for_requests(1, watches);
    k8s.api
        .put(Kind::Node, "", node("worker-2", "True", &worker));
    running.finish_within(SOON).code(0);
    let watch = k8s.api.requests().into_iter().find(watches).unwrap();
    assert_eq!(
        watch.param("labelSelector").as_deref(),
        Some("node-role.kubernetes.io/worker")
    );
}

#[test]
fn deleted_waits_until_the_object_is_gone() {
    let k8s = Fixture::start();
    let mut leaving = job("migrate", 0, 0, &[("Complete", "", "")]);
    leaving["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z".into();
    leaving["metadata"]["finalizers"] = serde_json::json!(["batch.kubernetes.io/job-tracking"]);
    k8s.api.put(Kind::Job, "shop", leaving);
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://job/migrate#deleted", "-t", "30s"])
        .spawn();
    running.wait_for_line("waiting for k8s://job/migrate: Job shop/migrate is being deleted (held by finalizers: batch.kubernetes.io/job-tracking)");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.delete(Kind::Job, "shop", "migrate");
    running.finish_within(SOON).code(0);
    // Already gone: ready at once.
    k8s.in_pod()
        .args(["-w", "k8s://shop/job/migrate#deleted"])
        .run()
        .code(0);
}

#[test]
fn jsonpath_compares_one_value_as_kubectl_wait_does() {
    let k8s = Fixture::start();
    let mut pending = pod("web-0", &[("app", "web")], false);
    pending["status"]["phase"] = "Pending".into();
    k8s.api.put(Kind::Pod, "shop", pending);
    let running = k8s
        .in_pod()
        .args([
            "-w",
            "k8s://pod/web-0#jsonpath={.status.phase}=Running",
            "-t",
            "30s",
        ])
        .spawn();
    running.wait_for_line(
        "waiting for k8s://pod/web-0: Pod shop/web-0 has {.status.phase} \"Pending\", not \"Running\"",
    );
    k8s.api.wait_for_requests(1, watches);
    k8s.api
        .put(Kind::Pod, "shop", pod("web-0", &[("app", "web")], true));
    running.finish_within(SOON).code(0);
    // kubectl's own idiom, a filter with '==', quotes and all.
    k8s.in_pod()
        .args([
            "-w",
            "k8s://pod/web-0#jsonpath={.status.conditions[?(@.type==\"Ready\")].status}=True",
        ])
        .run()
        .code(0);

    k8s.in_pod()
        .args(["-w", "k8s://pod/web-0#jsonpath={.status.containerStatuses}=true"])
        .run()
        .code(3)
        .stderr_has("Pod shop/web-0: {.status.containerStatuses} is a list, which cannot be compared with \"true\" (as in kubectl wait); name one value inside it, e.g. {.status.containerStatuses[0]…}");
}

#[test]
fn object_targets_are_checked_before_anything_is_probed() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        (
            "k8s://web#condition=Ready",
            "name the resource of the object",
        ),
        (
            "k8s://shop/certificate/web#condition=Ready&deleted",
            "give one of #condition, #jsonpath, #deleted and #exists",
        ),
        (
            "k8s://pod/web-0#jsonpath={.status.conditions[*].status}=True",
            "'[*]' in '{.status.conditions[*].status}' is not an array index",
        ),
        ("k8s://shop/certificate/web", "unknown kind 'certificate'"),
        (
            "k8s://deployment/web#min=2",
            "unknown option 'min' for k8s Deployment targets",
        ),
    ];
    for (target, expected) in cases {
        crate::support::kube::outside_any_cluster(holdup(), home.path())
            .args(["-w", target])
            .run()
            .code(2)
            .stderr_has(expected);
    }
}
