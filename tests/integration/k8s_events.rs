//! Events on the pod holdup runs in, posted to the stand-in API server, which checks them
//! as the real one does: `Waiting` when a target's reason appears or changes, its count
//! when a reason comes back, `Ready`, `NotReady` at the deadline; the core v1 group when
//! events.k8s.io is not served; a 403 said once with the Role rule; `--no-events`.

use serde_json::{Value, json};

use crate::support::kube::{Fixture, Kind, Seen};
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::{Holdup, SOON};

/// holdup in the pod `web-0` of namespace shop, as the downward API names it.
fn in_pod(k8s: &Fixture) -> Holdup {
    k8s.in_pod()
        .env("POD_NAME", "web-0")
        .env("POD_NAMESPACE", "shop")
        .env("POD_UID", "7d1c0b5e-pod")
}

fn creates(kind: Kind) -> impl Fn(&Seen) -> bool {
    move |seen| seen.verb == "create" && seen.kind == Some(kind)
}

/// The stored Events of `kind` in shop, oldest first, by their `reason`.
fn events(k8s: &Fixture, kind: Kind) -> Vec<Value> {
    let mut events = k8s.api.objects(kind, "shop");
    events.sort_by_key(|event| {
        event["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    events
}

/// What is the same in every events.k8s.io Event holdup posts on web-0.
fn assert_event_shape(event: &Value) {
    assert_eq!(event["apiVersion"], "events.k8s.io/v1");
    assert_eq!(event["kind"], "Event");
    assert!(
        event["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-0."),
        "{event}"
    );
    assert_eq!(event["metadata"]["namespace"], "shop");
    assert_eq!(event["reportingController"], "holdup");
    assert_eq!(event["reportingInstance"], "web-0");
    assert_eq!(
        event["regarding"],
        json!({"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": "shop", "uid": "7d1c0b5e-pod"})
    );
}

#[test]
fn waiting_then_ready_are_posted_on_the_pod() {
    let k8s = Fixture::start();
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = in_pod(&k8s).args(["-w", &target, "-t", "60s"]).spawn();
    running.wait_for_line("waiting for");
    k8s.api.wait_for_requests(1, creates(Kind::Event));
    let waiting = &events(&k8s, Kind::Event)[0];
    assert_event_shape(waiting);
    assert_eq!(waiting["reason"], "Waiting");
    assert_eq!(waiting["action"], "Wait");
    assert_eq!(waiting["type"], "Normal");
    let note = waiting["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!("waiting for {target}: ")) && note.contains("connection refused"),
        "{note}"
    );

    let _open = closed.open();
    running.finish_within(SOON).code(0);
    let all = events(&k8s, Kind::Event);
    let ready = all.last().unwrap();
    assert_event_shape(ready);
    assert_eq!(ready["reason"], "Ready");
    assert_eq!(ready["type"], "Normal");
    assert!(
        ready["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{target} ready after ")),
        "{ready}"
    );
    assert!(
        k8s.api
            .all_requests()
            .iter()
            .filter(|seen| seen.verb == "create" || seen.verb == "patch")
            .all(|seen| seen.status < 300),
        "{:#?}",
        k8s.api.all_requests()
    );
}

#[test]
fn the_deadline_posts_not_ready_as_a_warning() {
    let k8s = Fixture::start();
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    in_pod(&k8s).args(["-w", &target, "-t", "1s"]).run().code(1);
    let all = events(&k8s, Kind::Event);
    let last = all.last().unwrap();
    assert_event_shape(last);
    assert_eq!(last["reason"], "NotReady");
    assert_eq!(last["action"], "GiveUp");
    assert_eq!(last["type"], "Warning");
    let note = last["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!("{target} not ready after 1.00s: ")),
        "{note}"
    );
}

/// An HTTP target whose reason goes 503, 500, 503 while holdup runs in the pod, each
/// change made once the Event of the one before is in; the Events of `kind` stored.
fn reasons_that_come_back(k8s: &Fixture, kind: Kind) -> Vec<Value> {
    let http = HttpServer::start(503, "down");
    let running = in_pod(k8s)
        .args(["-w", &http.url("/health"), "-t", "60s"])
        .args(["--max-interval", "200ms"])
        .spawn();
    k8s.api.wait_for_requests(1, creates(kind));
    // A new reason: a new Event, no sooner than 10 s after the first.
    http.set_status(500);
    k8s.api.wait_for_requests(2, creates(kind));
    // The first reason again: its Event counts 2, as kubectl shows "(x2 over …)".
    http.set_status(503);
    let patched = k8s
        .api
        .wait_for_requests(1, |seen| seen.verb == "patch" && seen.kind == Some(kind));
    assert_eq!(patched[0].status, 200, "{patched:#?}");
    http.set_status(200);
    running.finish_within(SOON).code(0);
    events(k8s, kind)
}

fn waiting_with<'a>(all: &'a [Value], text: &str, status: &str) -> &'a Value {
    all.iter()
        .find(|event| {
            event["reason"] == "Waiting" && event[text].as_str().unwrap().contains(status)
        })
        .unwrap_or_else(|| panic!("no Waiting Event for {status}: {all:#?}"))
}

#[test]
fn a_reason_that_comes_back_counts_on_its_event() {
    let k8s = Fixture::start();
    let all = reasons_that_come_back(&k8s, Kind::Event);
    let first = waiting_with(&all, "note", "503");
    assert_eq!(first["series"]["count"], 2, "{first}");
    assert!(first["series"]["lastObservedTime"].is_string());
    assert!(waiting_with(&all, "note", "500").get("series").is_none());
    let mut times: Vec<std::time::SystemTime> = all
        .iter()
        .filter(|event| event["reason"] == "Waiting")
        .map(|event| humantime::parse_rfc3339(event["eventTime"].as_str().unwrap()).unwrap())
        .collect();
    times.sort();
    let apart = times[1].duration_since(times[0]).unwrap();
    assert!(apart.as_secs_f64() >= 9.9, "Waiting Events {apart:?} apart");
}

#[test]
fn a_reason_that_comes_back_counts_on_its_core_event() {
    let k8s = Fixture::start();
    k8s.api.hide(Kind::Event);
    let all = reasons_that_come_back(&k8s, Kind::CoreEvent);
    let first = waiting_with(&all, "message", "503");
    assert_eq!(first["count"], 2, "{first}");
    assert_ne!(first["lastTimestamp"], first["firstTimestamp"], "{first}");
    assert_eq!(waiting_with(&all, "message", "500")["count"], 1);
}

#[test]
fn without_events_k8s_io_the_core_group_is_used() {
    let k8s = Fixture::start();
    k8s.api.hide(Kind::Event);
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = in_pod(&k8s).args(["-w", &target, "-t", "60s"]).spawn();
    k8s.api.wait_for_requests(1, creates(Kind::CoreEvent));
    let waiting = events(&k8s, Kind::CoreEvent)[0].clone();
    assert_eq!(waiting["apiVersion"], "v1");
    assert_eq!(waiting["reason"], "Waiting");
    assert_eq!(waiting["type"], "Normal");
    assert_eq!(waiting["count"], 1);
    assert_eq!(waiting["source"], json!({"component": "holdup"}));
    assert_eq!(
        waiting["involvedObject"],
        json!({"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": "shop", "uid": "7d1c0b5e-pod"})
    );
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("waiting for {target}: "))
    );
    let _open = closed.open();
    running.finish_within(SOON).code(0);
    assert_eq!(
        events(&k8s, Kind::CoreEvent).last().unwrap()["reason"],
        "Ready"
    );
}

#[test]
fn a_forbidden_event_is_said_once_with_the_role_rule_and_the_wait_goes_on() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::Event, "create");
    k8s.api.forbid(Kind::CoreEvent, "create");
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = in_pod(&k8s).args(["-w", &target, "-t", "60s"]).spawn();
    let warning = running.wait_for_line("no Events on pod shop/web-0");
    assert!(
        warning.contains(
            "give it a Role in namespace shop with this rule: - {apiGroups: [\"events.k8s.io\", \"\"], resources: [\"events\"], verbs: [\"create\", \"patch\"]}"
        ),
        "{warning}"
    );
    assert!(
        warning.contains("cannot create resource \"events\""),
        "{warning}"
    );
    let _open = closed.open();
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(
        finished.stderr.matches("no Events on pod").count(),
        1,
        "{}",
        finished.stderr
    );
    // One try in each group, then nothing more: the Ready Event is not attempted.
    let tried = k8s
        .api
        .all_requests()
        .iter()
        .filter(|seen| seen.verb == "create")
        .count();
    assert_eq!(tried, 2, "{:#?}", k8s.api.all_requests());
}

#[test]
fn no_events_posts_none() {
    let k8s = Fixture::start();
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = in_pod(&k8s)
        .args(["-w", &target, "-t", "60s", "--no-events"])
        .spawn();
    running.wait_for_line("waiting for");
    let _open = closed.open();
    running.finish_within(SOON).code(0);
    assert!(
        k8s.api.all_requests().is_empty(),
        "{:#?}",
        k8s.api.all_requests()
    );
}

#[test]
fn an_api_server_that_hangs_on_events_does_not_slow_the_wait() {
    let k8s = Fixture::start();
    k8s.api.stall_events();
    let closed = ClosedPort::new();
    let target = format!("tcp://{}", closed.address());
    let running = in_pod(&k8s)
        .args(["-w", &target, "-t", "60s", "--log-format", "json"])
        .spawn();
    // The Waiting Event's request is in, and its answer hangs.
    k8s.api.wait_for_requests(1, creates(Kind::Event));
    let opened = std::time::Instant::now();
    let _open = closed.open();
    running.wait_for_event("ready");
    // A request about an Event may take 5 s; the wait did not wait for it.
    assert!(
        opened.elapsed() < std::time::Duration::from_secs(4),
        "ready {:?} after the port opened",
        opened.elapsed()
    );
    // The last Event (Ready) hangs too: the exit waits 2 s for it at most.
    let finished = running.finish_within(SOON);
    finished.code(0);
}
