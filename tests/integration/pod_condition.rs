//! --pod-condition: holdup keeps a condition of its own pod in step with its targets,
//! through the stand-in API server's pods/status, leaving the pod's other conditions be;
//! a refused write names the rule to add and is tried again while the probing goes on.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::kube::{Fixture, Kind, Seen, outside_any_cluster, pod};
use crate::support::{Holdup, SOON, holdup};

const SIGTERM: i32 = 15;
const CONDITION: &str = "holdup.dev/dependencies";

fn patches(seen: &Seen) -> bool {
    seen.verb == "patch"
}

/// holdup in pod shop/web-0 (named by the downward API's variables), keeping CONDITION.
fn in_pod(k8s: &Fixture, target: &str) -> Holdup {
    k8s.in_pod()
        .env("POD_NAME", "web-0")
        .env("POD_NAMESPACE", "shop")
        .args(["--pod-condition", CONDITION, "-w", target])
        .args(["--recheck", "100ms", "--log-format", "json"])
}

/// The pod's conditions as the server holds them, by type.
fn conditions(k8s: &Fixture) -> Vec<Value> {
    let pod = k8s.api.object(Kind::Pod, "shop", "web-0").expect("the pod");
    pod["status"]["conditions"].as_array().unwrap().clone()
}

fn condition(k8s: &Fixture) -> Value {
    conditions(k8s)
        .into_iter()
        .find(|condition| condition["type"] == CONDITION)
        .expect("holdup's condition on the pod")
}

fn put(path: &Path) {
    let partial = path.with_extension("partial");
    fs::write(&partial, "ready").unwrap();
    fs::rename(&partial, path).unwrap();
}

#[test]
fn the_condition_follows_a_dependency_and_leaves_the_others_be() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Pod, "shop", pod("web-0", &[], false));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");
    let target = format!("file://{}", path.display());
    let mut running = in_pod(&k8s, &target).spawn();

    let missing = format!("{} does not exist", path.display());
    // The first write may come before the first attempt has said why; the one after it
    // names the reason.
    loop {
        let written = running.wait_for_event("condition");
        assert_eq!(written["status"], "False", "{written}");
        let now = condition(&k8s);
        if now["message"].as_str().unwrap().contains(&missing) {
            assert_eq!(now["status"], "False");
            assert_eq!(now["reason"], "DependenciesNotReady");
            assert_eq!(now["message"], format!("not ready: {target} ({missing})"));
            break;
        }
    }
    let kept: Vec<Value> = conditions(&k8s)
        .into_iter()
        .filter(|condition| condition["type"] != CONDITION)
        .collect();
    assert_eq!(kept.len(), 3, "the kubelet's conditions stay: {kept:?}");

    put(&path);
    let written = running.wait_for_event("condition");
    assert_eq!(written["status"], "True", "{written}");
    let ready = condition(&k8s);
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "DependenciesReady");
    assert_eq!(ready["message"], format!("{target} is ready"));
    // The Event that says so, looked for a few times a second, before the target goes.
    let event_made = |seen: &Seen| seen.verb == "create" && seen.kind == Some(Kind::Event);
    k8s.api.wait_for_requests(1, event_made);

    fs::remove_file(&path).unwrap();
    let written = running.wait_for_event("condition");
    assert_eq!(written["status"], "False", "{written}");
    let lost = condition(&k8s);
    assert_eq!(lost["message"], format!("not ready: {target} ({missing})"));
    assert_eq!(conditions(&k8s).len(), 4);
    // Events on the pod tell the same changes: ready, then no longer.
    k8s.api.wait_for_requests(2, event_made);
    let mut events = k8s.api.objects(Kind::Event, "shop");
    events.sort_by_key(|event| {
        event["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    let said: Vec<(&str, &str)> = events
        .iter()
        .map(|event| {
            (
                event["reason"].as_str().unwrap(),
                event["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("Ready", format!("{target} ready").as_str()),
            (
                "NotReady",
                format!("{target} not ready: {missing}").as_str()
            ),
        ],
    );

    running.assert_still_running();
    running.signal(SIGTERM);
    let finished = running.finish_within(SOON);
    finished.code(0);
    // Written only on a change: as many patches as conditions logged, though the target
    // was probed every 100 ms meanwhile.
    let written = finished
        .json_lines()
        .iter()
        .filter(|line| line["event"] == "condition")
        .count();
    let requests = k8s.api.requests();
    let patch_requests: Vec<&Seen> = requests.iter().filter(|seen| patches(seen)).collect();
    assert_eq!(patch_requests.len(), written, "{patch_requests:#?}");
    for seen in patch_requests {
        assert_eq!(seen.path, "/api/v1/namespaces/shop/pods/web-0/status");
        assert_eq!(seen.content_type, "application/strategic-merge-patch+json");
        assert_eq!(seen.token.as_deref(), Some("t"));
    }
}

#[test]
fn a_refused_write_names_the_rule_and_is_tried_again_while_probing_goes_on() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Pod, "shop", pod("web-0", &[], true));
    k8s.api.forbid(Kind::Pod, "patch");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");
    put(&path);
    let running = in_pod(&k8s, &format!("file://{}", path.display())).spawn();

    let refused = running.wait_for_event("condition_failed");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with("forbidden (403): User \"system:serviceaccount:shop:web\" cannot patch resource \"pods/status\""),
        "{error}"
    );
    assert!(
        error.ends_with(
            "give it a Role in namespace shop with this rule: - {apiGroups: [\"\"], resources: [\"pods/status\"], verbs: [\"patch\"]}"
        ),
        "{error}"
    );
    k8s.api
        .wait_for_requests(2, |seen| patches(seen) && seen.status == 403);
    k8s.api.permit(Kind::Pod, "patch");
    let written = running.wait_for_event("condition");
    assert_eq!(written["status"], "True", "{written}");
    assert_eq!(condition(&k8s)["status"], "True");

    running.signal(SIGTERM);
    running
        .finish_within(SOON)
        .code(0)
        .stderr_has("ready after");
}

#[test]
fn outside_a_pod_there_is_no_condition_to_keep() {
    let home = tempfile::tempdir().unwrap();
    outside_any_cluster(holdup(), home.path())
        .args(["--pod-condition", CONDITION, "-w", "127.0.0.1:1"])
        .run()
        .code(2)
        .stderr_has(
            "--pod-condition holdup.dev/dependencies: holdup cannot tell which pod it runs in",
        );
    holdup()
        .args([
            "--pod-condition",
            CONDITION,
            "-w",
            "127.0.0.1:1",
            "--",
            "true",
        ])
        .run()
        .code(2)
        .stderr_has("--pod-condition keeps holdup running");
    holdup()
        .args(["--pod-condition", "Holdup.dev/x", "-w", "127.0.0.1:1"])
        .run()
        .code(2)
        .stderr_has("is not a condition type");
}

#[test]
fn with_any_the_condition_is_true_while_one_target_is_ready() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Pod, "shop", pod("web-0", &[], false));
    let dir = tempfile::tempdir().unwrap();
    let (ready, missing) = (dir.path().join("ready"), dir.path().join("missing"));
    put(&ready);
    let ready = format!("file://{}", ready.display());
    let missing = format!("file://{}", missing.display());
    let running = in_pod(&k8s, &ready).args(["-w", &missing, "--any"]).spawn();
    // A write made before the ready target's first attempt may still say False.
    loop {
        let written = running.wait_for_event("condition");
        if written["status"] == "True" {
            break;
        }
    }
    let now = condition(&k8s);
    assert_eq!(now["status"], "True");
    assert_eq!(now["reason"], "DependenciesReady");
    assert_eq!(now["message"], "1 of 2 dependencies are ready, 1 needed");
    running.signal(SIGTERM);
    running.finish_within(SOON).code(0);
}
