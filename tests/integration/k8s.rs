//! k8s:// targets against a stand-in API server over TLS: Services, Jobs and Pods that
//! become ready (or fail) while holdup watches, credentials in-cluster and from a
//! kubeconfig, RBAC refusals, token rotation, expired watches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use yaml_rust2::{Yaml, YamlLoader};

use serde_json::{Value, json};

use crate::support::kube::{
    Fixture, Kind, Seen, USER, crashing_pod, endpoint_slice, job, kubeconfig_with,
    outside_any_cluster, placeholder_slice, pod, service,
};
use crate::support::net::Silent;
use crate::support::tls::TestCa;
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

fn lists(seen: &Seen) -> bool {
    seen.verb == "list" && seen.status == 200
}

fn watches(seen: &Seen) -> bool {
    seen.verb == "watch" && seen.status == 200
}

fn service_reads(seen: &Seen) -> bool {
    seen.verb == "get" && seen.kind == Some(Kind::Service)
}

#[test]
fn endpoints_that_become_ready_while_watched_are_seen_at_once() {
    let k8s = Fixture::with_token("token-1");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    // No namespace in the target: the service account's (shop) is used. Attempts as long
    // as the deadline: only the open watch, not a later attempt, can tell of the change.
    let mut running = k8s
        .in_pod()
        .args(["-w", "k8s://db", "-t", "30s", "--attempt-timeout", "30s"])
        .args(["--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["message"],
        "waiting for k8s://db: Service shop/db has 0 ready endpoints of 1 needed (not ready: db-0)"
    );
    k8s.api.wait_for_requests(1, watches);
    running.assert_still_running();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    let finished = running.finish_within(SOON);
    finished
        .code(0)
        .stderr_has("k8s://db ready after ")
        .stderr_lacks("token-1");
    assert_eq!(finished.events(), ["waiting", "ready"]);
    // One attempt listed, the next one watched and was told: ready within it.
    let ready = finished.event("ready");
    assert_eq!(ready["attempts"], 2, "{ready}");
    // Told by the watch, not found by polling: one list, one watch.
    let requests = k8s.api.requests();
    assert_eq!(
        requests.iter().filter(|seen| lists(seen)).count(),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        requests.iter().filter(|seen| watches(seen)).count(),
        1,
        "{requests:#?}"
    );
    let watch = requests.iter().find(|seen| watches(seen)).unwrap();
    assert_eq!(watch.namespace, "shop");
    assert_eq!(
        watch.param("labelSelector").as_deref(),
        Some("kubernetes.io/service-name=db")
    );
    assert_eq!(watch.param("allowWatchBookmarks").as_deref(), Some("true"));
    assert_eq!(watch.token.as_deref(), Some("token-1"));
}

#[test]
fn a_service_created_late_is_waited_for() {
    let k8s = Fixture::start();
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/db#min=2&port=pg", "-t", "30s"])
        .spawn();
    running.wait_for_line("waiting for k8s://shop/db: Service shop/db does not exist yet");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true), ("db-1", true)]),
    );
    running
        .finish()
        .code(0)
        .stderr_has("k8s://shop/db ready after ");
}

/// The slice the EndpointSlice controller fills in once the Service's pods have IPs: the
/// placeholder itself, updated in place.
fn filled_placeholder(service: &str, port: &str, endpoints: &[(&str, bool)]) -> Value {
    let mut slice = endpoint_slice(service, port, endpoints);
    slice["metadata"] = placeholder_slice(service)["metadata"].clone();
    slice
}

/// The README's initContainer target while Postgres has no pod running: the controller's
/// placeholder slice (no endpoints, no ports) is not read as a Service without the port.
#[test]
fn a_placeholder_slice_means_no_running_pod_not_a_missing_port() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::Service,
        "shop",
        service("postgres", &[("postgres", 5432, json!(5432))]),
    );
    k8s.api
        .put(Kind::EndpointSlice, "shop", placeholder_slice("postgres"));
    // Short attempts, so that each new reason is printed while the watch goes on.
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://postgres#port=postgres", "-t", "30s"])
        .args(["--attempt-timeout", "300ms", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["message"],
        "waiting for k8s://postgres: Service shop/postgres has no endpoints yet (it selects no running pod)"
    );
    k8s.api.wait_for_requests(1, watches);
    // The pod gets an IP, then passes its readiness probe.
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        filled_placeholder("postgres", "postgres", &[("postgres-0", false)]),
    );
    running.wait_for_line(
        "Service shop/postgres has 0 ready endpoints of 1 needed (not ready: postgres-0)",
    );
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        filled_placeholder("postgres", "postgres", &[("postgres-0", true)]),
    );
    let finished = running.finish_within(SOON);
    finished
        .code(0)
        .stderr_has("k8s://postgres ready after ")
        .stderr_lacks("no port named");
    // One read of the Service, for the placeholder; none while endpoints were counted.
    let requests = k8s.api.requests();
    let reads: Vec<&Seen> = requests.iter().filter(|seen| service_reads(seen)).collect();
    assert_eq!(reads.len(), 1, "{requests:#?}");
    assert_eq!(reads[0].status, 200);
    assert_eq!(reads[0].namespace, "shop");
    assert_eq!(reads[0].token.as_deref(), Some("t"));
}

/// A Service whose ports really lack the name asked for: said, with the names it has, both
/// while no pod runs (as a hint) and once its pods have endpoints (as the reason); then the
/// Service is fixed and holdup is ready.
#[test]
fn a_service_without_the_port_asked_for_says_so_with_the_names_it_has() {
    let k8s = Fixture::start();
    let wrong = service(
        "postgres",
        &[("pg", 5432, json!("pg")), ("metrics", 9187, json!(9187))],
    );
    k8s.api.put(Kind::Service, "shop", wrong);
    k8s.api
        .put(Kind::EndpointSlice, "shop", placeholder_slice("postgres"));
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://postgres#port=postgres", "-t", "30s"])
        .args(["--attempt-timeout", "300ms"])
        .spawn();
    running.wait_for_line(
        "waiting for k8s://postgres: Service shop/postgres has no endpoints yet (it selects no running pod); and it has no port named \"postgres\" (its ports: pg, metrics)",
    );
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        filled_placeholder("postgres", "pg", &[("postgres-0", true)]),
    );
    running.wait_for_line(
        "waiting for k8s://postgres: Service shop/postgres has no port named \"postgres\" (its ports: pg, metrics)",
    );
    // The port is renamed; the EndpointSlice controller follows.
    k8s.api.put(
        Kind::Service,
        "shop",
        service("postgres", &[("postgres", 5432, json!("pg"))]),
    );
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        filled_placeholder("postgres", "postgres", &[("postgres-0", true)]),
    );
    running
        .finish_within(SOON)
        .code(0)
        .stderr_has("k8s://postgres ready after ");
    let requests = k8s.api.requests();
    assert_eq!(
        requests.iter().filter(|seen| service_reads(seen)).count(),
        2,
        "one read per change of situation: {requests:#?}"
    );
}

/// Reading the Service is a nicety: refused, it is said once with the rule to add, never
/// asked again, and the wait goes on as before on one list and one watch.
#[test]
fn a_forbidden_service_read_is_said_once_and_costs_the_wait_nothing() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::Service, "get");
    k8s.api.put(
        Kind::Service,
        "shop",
        service("postgres", &[("postgres", 5432, json!(5432))]),
    );
    k8s.api
        .put(Kind::EndpointSlice, "shop", placeholder_slice("postgres"));
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://postgres#port=postgres", "-t", "30s"])
        .args(["--attempt-timeout", "300ms", "--log-format", "json"])
        .spawn();
    let limited = running.wait_for_event("limited");
    assert_eq!(limited["level"], "warn");
    assert_eq!(
        limited["message"],
        format!(
            "k8s://postgres: cannot read Service shop/postgres, so reasons will not say whether it exists or has the port asked for: forbidden (403): User \"{USER}\" cannot get resource \"services\" in API group \"\" in the namespace \"shop\"; give it a Role in namespace shop with this rule: - {{apiGroups: [\"\"], resources: [\"services\"], verbs: [\"get\"]}}"
        )
    );
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["message"],
        "waiting for k8s://postgres: Service shop/postgres has no endpoints yet (it selects no running pod)"
    );
    k8s.api.wait_for_requests(1, watches);
    // Another situation (the placeholder goes), where a read would be worth it: not tried.
    k8s.api
        .delete(Kind::EndpointSlice, "shop", "postgres-7xk2p");
    running.wait_for_line("Service shop/postgres has no endpoints yet (no EndpointSlice: the Service does not exist yet, or has no selector)");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("postgres", "postgres", &[("postgres-0", true)]),
    );
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(
        finished
            .events()
            .iter()
            .filter(|event| *event == "limited")
            .count(),
        1
    );
    let requests = k8s.api.requests();
    let verbs: Vec<(&str, u16)> = requests
        .iter()
        .map(|seen| (seen.verb.as_str(), seen.status))
        .collect();
    assert_eq!(
        verbs,
        [("list", 200), ("get", 403), ("watch", 200)],
        "{requests:#?}"
    );
}

#[test]
fn a_rotated_token_is_read_again_and_used() {
    let k8s = Fixture::with_token("old-token");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .spawn();
    k8s.api.wait_for_requests(1, watches);
    // The kubelet rotates the token; the old one stops working and the watch ends.
    k8s.pod.rotate_token("new-token\n");
    k8s.api.allow_token("new-token", USER);
    k8s.api.revoke_token("old-token");
    k8s.api.end_watches();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    running
        .finish()
        .code(0)
        .stderr_lacks("old-token")
        .stderr_lacks("new-token");
    let requests = k8s.api.requests();
    let last = requests.last().unwrap();
    assert_eq!(last.token.as_deref(), Some("new-token"), "{requests:#?}");
    assert!(
        requests.iter().all(|seen| seen.status != 401),
        "{requests:#?}"
    );
}

#[test]
fn a_token_that_is_not_accepted_is_named_never_shown() {
    let k8s = Fixture::with_token("expired-token-value");
    k8s.api.revoke_token("expired-token-value");
    let finished = k8s.in_pod().args(["-w", "k8s://shop/db", "-t", "1s"]).run();
    finished
        .code(1)
        .stderr_has(&format!(
            "k8s://shop/db not ready after 1.00s: the API server at 127.0.0.1:{} does not accept the service-account token {}/token (401 Unauthorized)",
            k8s.api.port(),
            k8s.pod.dir().display()
        ))
        .stderr_lacks("expired-token-value");
}

#[test]
fn a_403_names_the_rule_to_add_and_clears_once_rbac_is_applied() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::EndpointSlice, "list");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    let rule = r#"- {apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"]}"#;
    k8s.in_pod()
        .args(["-w", "k8s://shop/db", "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "k8s://shop/db not ready after 1.00s: forbidden (403): User \"{USER}\" cannot list resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"shop\"; give it a Role in namespace shop with this rule: {rule}"
        ));

    // A RoleBinding applied while holdup waits is picked up.
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .spawn();
    running.wait_for_line("forbidden (403)");
    k8s.api.permit(Kind::EndpointSlice, "list");
    running.finish().code(0);
}

#[test]
fn a_forbidden_watch_falls_back_to_polling() {
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::Pod, "watch");
    k8s.api
        .put(Kind::Pod, "shop", pod("web-0", &[("app", "web")], false));
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/pods/app=web", "-t", "30s"])
        .spawn();
    let line = running.wait_for_line("polling instead");
    assert!(
        line.contains(r#"- {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}"#),
        "{line}"
    );
    let before = k8s.api.requests().len();
    k8s.api.wait_for_requests(before + 1, lists);
    k8s.api
        .put(Kind::Pod, "shop", pod("web-0", &[("app", "web")], true));
    running.finish().code(0);
    let requests = k8s.api.requests();
    assert_eq!(
        requests.iter().filter(|seen| seen.verb == "watch").count(),
        1,
        "one refused watch, then lists only: {requests:#?}"
    );
}

#[test]
fn a_failed_job_ends_the_wait_at_once_with_exit_3() {
    let k8s = Fixture::start();
    k8s.api.put(Kind::Job, "shop", job("migrate", 1, 0, &[]));
    let mut running = k8s
        .in_pod()
        .args([
            "-w",
            "k8s://shop/job/migrate",
            "-w",
            "k8s://shop/db",
            "-t",
            "60s",
        ])
        .spawn();
    running.wait_for_line(
        "Job shop/migrate has not completed yet (1 active, 0 succeeded, 0 failed pods)",
    );
    k8s.api
        .wait_for_requests(1, |seen| watches(seen) && seen.kind == Some(Kind::Job));
    running.assert_still_running();
    k8s.api.put(
        Kind::Job,
        "shop",
        job(
            "migrate",
            0,
            3,
            &[
                (
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
                (
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
            ],
        ),
    );
    // At once: long before the 60 s deadline, and with the Service still not ready.
    running
        .finish_within(SOON)
        .code(3)
        .stderr_has("k8s://shop/job/migrate failed: BackoffLimitExceeded: Job has reached the specified backoff limit (3 failed pods)")
        .stderr_has("waiting cannot fix this");
    let watch = k8s
        .api
        .requests()
        .into_iter()
        .find(|seen| watches(seen) && seen.kind == Some(Kind::Job))
        .unwrap();
    assert_eq!(
        watch.param("fieldSelector").as_deref(),
        Some("metadata.name=migrate")
    );
}

#[test]
fn a_job_created_late_is_waited_for_until_it_completes() {
    let k8s = Fixture::start();
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://job/migrate", "-t", "30s"])
        .spawn();
    running.wait_for_line("Job shop/migrate does not exist yet");
    k8s.api.wait_for_requests(1, watches);
    k8s.api.put(Kind::Job, "shop", job("migrate", 1, 0, &[]));
    k8s.api.put(
        Kind::Job,
        "shop",
        job("migrate", 0, 0, &[("Complete", "", "")]),
    );
    running
        .finish()
        .code(0)
        .stderr_has("k8s://job/migrate ready after ");
}

#[test]
fn a_pod_in_crashloopbackoff_is_named() {
    let k8s = Fixture::start();
    k8s.api
        .put(Kind::Pod, "shop", pod("web-0", &[("app", "web")], true));
    k8s.api.put(
        Kind::Pod,
        "shop",
        crashing_pod("web-1", &[("app", "web")], 5),
    );
    k8s.api
        .put(Kind::Pod, "shop", pod("api-0", &[("app", "api")], false));
    k8s.in_pod()
        .args(["-w", "k8s://shop/pods/app=web#min=2", "-t", "1500ms"])
        .run()
        .code(1)
        .stderr_has("k8s://shop/pods/app=web not ready after 1.50s: 1 of 2 needed pods matching app=web in shop are Ready: web-1 is in CrashLoopBackOff (container app, exit code 1, 5 restarts)")
        .stderr_lacks("api-0")
        .stderr_lacks("timed out");
}

#[test]
fn a_deleted_pod_no_longer_counts() {
    let k8s = Fixture::start();
    k8s.api
        .put(Kind::Pod, "shop", pod("web-0", &[("app", "web")], true));
    k8s.api
        .put(Kind::Pod, "shop", pod("web-1", &[("app", "web")], false));
    // Short attempts, so that each new reason is printed while the watch goes on.
    let running = k8s
        .in_pod()
        .args([
            "-w",
            "k8s://shop/pods/app=web#min=2",
            "-t",
            "30s",
            "--attempt-timeout",
            "300ms",
        ])
        .spawn();
    running.wait_for_line(
        "1 of 2 needed pods matching app=web in shop are Ready: web-1 is not Ready (Running)",
    );
    k8s.api.wait_for_requests(1, watches);
    k8s.api.delete(Kind::Pod, "shop", "web-0");
    k8s.api
        .put(Kind::Pod, "shop", pod("web-1", &[("app", "web")], true));
    running.wait_for_line("1 of 2 needed pods matching app=web in shop are Ready (1 pod matches)");
    k8s.api
        .put(Kind::Pod, "shop", pod("web-2", &[("app", "web")], true));
    running.finish().code(0);
    assert_eq!(
        k8s.api
            .requests()
            .iter()
            .filter(|seen| watches(seen))
            .count(),
        1
    );
}

#[test]
fn the_deadline_holds_while_watching_and_the_reason_is_the_targets() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    // Attempts of 300 ms: the watch is taken up again and again, and never reported as a
    // timeout.
    k8s.in_pod()
        .args(["-w", "k8s://shop/db", "-t", "1500ms", "--attempt-timeout", "300ms"])
        .run()
        .code(1)
        .stderr_has("k8s://shop/db not ready after 1.50s: Service shop/db has 0 ready endpoints of 1 needed (not ready: db-0)")
        .stderr_lacks("timed out")
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    let requests = k8s.api.requests();
    assert_eq!(
        requests.iter().filter(|seen| watches(seen)).count(),
        1,
        "{requests:#?}"
    );
}

#[test]
fn an_api_server_that_never_answers_cannot_hold_past_the_deadline() {
    let silent = Silent::start();
    let k8s = Fixture::start();
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins.
    k8s.in_pod()
        .env(
            "KUBERNETES_SERVICE_PORT",
            silent.address().port().to_string(),
        )
        .args(["-w", "k8s://shop/db", "-t", "1500ms", "--attempt-timeout", "30s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "k8s://shop/db not ready after 1.50s: timed out after 1.50s while listing endpointslices.discovery.k8s.io in shop from {} (1 attempt)",
            silent.address()
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    assert!(silent.accepted() >= 1);
}

#[test]
fn an_expired_resource_version_is_listed_again() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .spawn();
    k8s.api.wait_for_requests(1, watches);
    // The watch drops, the Service changes, and history is compacted past holdup's
    // resourceVersion before it comes back.
    k8s.api.missed_change(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    running.finish().code(0);
    let requests = k8s.api.requests();
    let verbs: Vec<&str> = requests.iter().map(|seen| seen.verb.as_str()).collect();
    assert_eq!(verbs, ["list", "watch", "watch", "list"], "{requests:#?}");
}

#[test]
fn a_resumed_watch_starts_from_the_last_bookmark() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    let running = k8s
        .in_pod()
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .spawn();
    let first = k8s.api.wait_for_requests(1, watches).remove(0);
    k8s.api.unrelated_change();
    k8s.api.unrelated_change();
    let bookmark = k8s.api.bookmark();
    assert_ne!(first.param("resourceVersion"), Some(bookmark.clone()));
    // The bookmark is queued on the watch before it ends, so it is read first.
    k8s.api.end_watches();
    let resumed = k8s.api.wait_for_requests(2, watches).remove(1);
    assert_eq!(resumed.param("resourceVersion"), Some(bookmark));
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    running.finish().code(0);
}

#[test]
fn a_kubeconfig_context_with_a_token_and_inline_ca() {
    let k8s = Fixture::start();
    k8s.api.allow_token("ci-token", "ci");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    let config = kubeconfig_with(&k8s.api, "    token: ci-token");
    k8s.with_kubeconfig(&config)
        .args(["-w", "k8s://db#context=ci", "-t", "10s"])
        .run()
        .code(0)
        .stderr_lacks("ci-token");
    let requests = k8s.api.requests();
    assert_eq!(requests[0].token.as_deref(), Some("ci-token"));
    assert_eq!(requests[0].namespace, "shop", "the context's namespace");

    // The current context (laptop) is used without #context: its server is closed.
    k8s.with_kubeconfig(&config)
        .args(["-w", "k8s://db", "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("127.0.0.1:1: connection refused")
        .stderr_lacks("laptop-token");
}

/// The API server's certificate checked against the wrong CA, in the pod and from a
/// kubeconfig: the reason says which CA was trusted and who issued the certificate.
#[test]
fn an_api_server_certificate_from_another_ca_is_refused_in_words() {
    let k8s = Fixture::start();
    let other = TestCa::new("another CA");
    std::fs::write(k8s.pod.dir().join("ca.crt"), other.pem()).unwrap();
    k8s.in_pod()
        .args(["-w", "k8s://db", "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "is not signed by a CA in {} (which holds CN=another CA)",
            k8s.pod.dir().join("ca.crt").display()
        ));

    k8s.api.allow_token("ci-token", "ci");
    let encode = |pem: String| base64::engine::general_purpose::STANDARD.encode(pem);
    let config = kubeconfig_with(&k8s.api, "    token: ci-token")
        .replace(&encode(k8s.api.ca().pem()), &encode(other.pem()));
    k8s.with_kubeconfig(&config)
        .args(["-w", "k8s://db#context=ci", "-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("issued by CN=")
        .stderr_has(
            "is not signed by a CA in certificate-authority-data of cluster \"ci\" of kubeconfig",
        )
        .stderr_lacks("ci-token");
}

#[test]
fn a_kubeconfig_user_with_a_client_certificate() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::Job,
        "shop",
        job("migrate", 0, 0, &[("Complete", "", "")]),
    );
    let issued = k8s.api.ca().issue(&["holdup-ci"]);
    // One from a file (relative to the kubeconfig), one inline.
    std::fs::write(
        k8s.kubeconfig_dir().join("client.crt"),
        &issued.certificate_pem,
    )
    .unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode(&issued.key_pem);
    let user = format!("    client-certificate: client.crt\n    client-key-data: {key}");
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &user))
        .args(["-w", "k8s://shop/job/migrate#context=ci", "-t", "10s"])
        .run()
        .code(0);
    let requests = k8s.api.requests();
    assert!(
        requests[0].client_certificate && requests[0].token.is_none(),
        "{requests:#?}"
    );
}

#[test]
fn without_any_cluster_holdup_says_so_and_stops() {
    let home = tempfile::tempdir().unwrap();
    outside_any_cluster(holdup(), home.path())
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .run()
        .code(3)
        .stderr_has("no Kubernetes API server to ask: not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig")
        .stderr_lacks("waiting for")
        .took_between(Duration::ZERO, SOON);
}

#[test]
fn k8s_targets_are_checked_before_anything_is_probed() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("k8s://Shop/db", "'Shop' is not a valid namespace"),
        ("k8s://shop/certificate/web", "unknown kind 'certificate'"),
        ("k8s://shop/db#min=0", "invalid option 'min=0'"),
        (
            "k8s://shop/job/m#port=pg",
            "unknown option 'port' for k8s Job targets",
        ),
        (
            "k8s://shop/pods/app%20in%20web",
            "needs its values in parentheses",
        ),
    ];
    for (target, expected) in cases {
        outside_any_cluster(holdup(), home.path())
            .args(["-w", target])
            .run()
            .code(2)
            .stderr_has(expected);
    }
    // A dry run needs no cluster: it checks the targets only.
    outside_any_cluster(holdup(), home.path())
        .args([
            "--dry-run",
            "-w",
            "k8s://shop/job/migrate",
            "-w",
            "k8s://db#min=2&port=pg",
        ])
        .run()
        .code(0)
        .stderr_has("would wait for k8s://shop/job/migrate");
}

/// A Role rule as a comparable value: (apiGroups, resources, verbs), each sorted.
type Rule = (Vec<String>, Vec<String>, Vec<String>);

fn strings(yaml: &Yaml) -> Vec<String> {
    let mut items: Vec<String> = yaml
        .as_vec()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    items
}

fn rules_of(role: &Yaml) -> Vec<Rule> {
    role["rules"]
        .as_vec()
        .expect("a Role has rules")
        .iter()
        .map(|rule| {
            (
                strings(&rule["apiGroups"]),
                strings(&rule["resources"]),
                strings(&rule["verbs"]),
            )
        })
        .collect()
}

/// The namespace a k8s:// target names, if any, and the resources it reads.
fn namespace_and_resources(target: &str) -> (Option<&str>, &'static [&'static str]) {
    let path = target.trim_start_matches("k8s://");
    let path = path.split('#').next().unwrap_or_default();
    let is_kind =
        |word: &str| ["service", "services", "svc", "job", "jobs", "pod", "pods"].contains(&word);
    let (namespace, kind) = match path.split('/').collect::<Vec<_>>().as_slice() {
        [kind, _] if is_kind(kind) => (None, *kind),
        [namespace, _] => (Some(*namespace), "service"),
        [namespace, kind, _] => (Some(*namespace), *kind),
        _ => (None, "service"),
    };
    let resources: &[&str] = match kind {
        "job" | "jobs" => &["jobs"],
        "pod" | "pods" => &["pods"],
        _ => &["endpointslices", "services"],
    };
    (namespace, resources)
}

fn is_holdup(container: &Yaml) -> bool {
    let image = container["image"].as_str().unwrap_or_default();
    let image_name = image.rsplit('/').next().unwrap_or_default();
    let command = container["command"][0].as_str().unwrap_or_default();
    image_name.starts_with("holdup:") || image_name == "holdup" || command.ends_with("holdup")
}

/// The manifests of examples/kubernetes, file by file in name order (the order in which
/// `kubectl apply -f` takes a folder's files), and the folder.
fn example_manifests() -> (PathBuf, Vec<(String, Vec<Yaml>)>) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json")
        })
        .collect();
    files.sort();
    let manifests: Vec<(String, Vec<Yaml>)> = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            let parsed = YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let documents = parsed
                .into_iter()
                .filter(|document| !document.is_null())
                .collect();
            (name, documents)
        })
        .collect();
    assert!(
        !manifests.is_empty(),
        "no manifests in {}",
        folder.display()
    );
    (folder, manifests)
}

/// The pod template of a workload (or the spec of a Pod), if the object has one.
fn pod_spec(document: &Yaml) -> Option<&Yaml> {
    let spec = match document["kind"].as_str() {
        Some("Pod") => &document["spec"],
        Some("CronJob") => &document["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &document["spec"]["template"]["spec"],
    };
    (!spec.is_badvalue()).then_some(spec)
}

fn containers(pod: &Yaml) -> impl Iterator<Item = &Yaml> {
    pod["initContainers"]
        .as_vec()
        .into_iter()
        .flatten()
        .chain(pod["containers"].as_vec().into_iter().flatten())
}

/// `kubectl apply -f examples/kubernetes` on a fresh cluster: it applies the files in name
/// order, so every object's namespace, and every pod's service account, must come from an
/// earlier file (or earlier in the same one). `kubectl apply -k` applies the same files,
/// and its Kustomization is the one place for the images and their pull policy.
#[test]
fn k8s_examples_apply_as_they_stand_with_images_in_one_place() {
    let (folder, manifests) = example_manifests();
    let mut made: BTreeSet<(String, String)> = BTreeSet::new();
    let mut images: BTreeSet<String> = BTreeSet::new();
    let mut policies = 0;
    for (file, documents) in &manifests {
        for document in documents {
            let kind = document["kind"].as_str().expect("every object has a kind");
            let name = document["metadata"]["name"].as_str().expect("a name");
            if kind == "Namespace" {
                made.insert((kind.to_string(), name.to_string()));
                continue;
            }
            let namespace = document["metadata"]["namespace"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {kind} {name} names no namespace"));
            assert!(
                made.contains(&("Namespace".to_string(), namespace.to_string())),
                "{file}: {kind} {name} is in namespace {namespace}, which no earlier manifest creates"
            );
            if let Some(pod) = pod_spec(document) {
                let account = pod["serviceAccountName"].as_str().unwrap_or("default");
                assert!(
                    account == "default"
                        || made.contains(&(
                            "ServiceAccount".to_string(),
                            format!("{namespace}/{account}")
                        )),
                    "{file}: {kind} {name} runs as service account {account}, which no earlier manifest creates"
                );
                for container in containers(pod) {
                    let image = container["image"].as_str().expect("an image");
                    let (image_name, _tag) = image.rsplit_once(':').expect("a tagged image");
                    images.insert(image_name.to_string());
                    assert!(
                        container["imagePullPolicy"].as_str().is_some(),
                        "{file}: container {:?} says no imagePullPolicy",
                        container["name"]
                    );
                    policies += 1;
                }
            }
            made.insert((kind.to_string(), format!("{namespace}/{name}")));
        }
    }

    let text = std::fs::read_to_string(folder.join("Kustomization"))
        .expect("examples/kubernetes/Kustomization (a name kubectl apply -f skips)");
    let kustomization = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let resources: Vec<&str> = kustomization["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(|resource| resource.as_str().unwrap())
        .collect();
    let files: Vec<&str> = manifests.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(resources, files, "-k and -f must apply the same files");
    let renamed: BTreeSet<String> = kustomization["images"]
        .as_vec()
        .expect("images")
        .iter()
        .map(|image| image["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(renamed, images, "every image, and only those, in one place");
    let operations = kustomization["patches"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|patch| patch["patch"].as_str())
        .flat_map(|patch| YamlLoader::load_from_str(patch).unwrap())
        .flat_map(|operations| operations.into_vec().unwrap_or_default())
        .filter(|operation| {
            operation["path"]
                .as_str()
                .is_some_and(|path| path.ends_with("/imagePullPolicy"))
        })
        .count();
    assert_eq!(operations, policies, "every pull policy, in one place");
}

/// Every manifest in examples/kubernetes: the holdup initContainers' arguments pass
/// `--dry-run`, and each Role grants exactly the rules the README lists for the forms its
/// pods wait for (and for `--pod-condition`), to the service account those pods run as.
#[test]
fn k8s_examples_are_accepted_by_holdup_and_granted_exactly_what_they_need() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let documents: Vec<Yaml> = example_manifests()
        .1
        .into_iter()
        .flat_map(|(_, documents)| documents)
        .collect();

    // The README's Role: one rule per form, named by the resource it grants.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .find(|block| block.contains("kind: Role"))
        .expect("the README shows the Role holdup needs");
    let readme_role = YamlLoader::load_from_str(block).unwrap().remove(0);
    let documented: BTreeMap<String, Rule> = rules_of(&readme_role)
        .into_iter()
        .map(|rule| (rule.1.join(","), rule))
        .collect();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        [
            "certificates",
            "daemonsets,deployments,statefulsets",
            "endpointslices",
            "events",
            "jobs",
            "pods",
            "pods/status",
            "services"
        ]
    );

    let home = tempfile::tempdir().unwrap();
    // (namespace of the objects, namespace and name of the service account) → the
    // resources its holdup containers read there.
    let mut needs: BTreeMap<(String, String, String), BTreeSet<&str>> = BTreeMap::new();
    let mut checked = 0;
    for document in &documents {
        let namespace = document["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let Some(pod) = pod_spec(document) else {
            continue;
        };
        let account = pod["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        for container in pod["initContainers"].as_vec().into_iter().flatten() {
            if !is_holdup(container) {
                continue;
            }
            let mut argv: Vec<String> = container["command"]
                .as_vec()
                .into_iter()
                .flatten()
                .skip(1)
                .chain(container["args"].as_vec().into_iter().flatten())
                .map(|arg| arg.as_str().expect("arguments are strings").to_string())
                .collect();
            argv.insert(0, "--dry-run".into());
            let mut run = outside_any_cluster(holdup(), home.path()).args(&argv);
            for variable in container["env"].as_vec().into_iter().flatten() {
                if let (Some(name), Some(value)) =
                    (variable["name"].as_str(), variable["value"].as_str())
                {
                    run = run.env(name, value);
                }
            }
            let finished = run.run();
            finished.code(0);
            let targets = argv.iter().filter_map(|arg| {
                arg.strip_prefix("--wait-for=")
                    .filter(|target| target.starts_with("k8s://"))
            });
            // --pod-condition writes the status of the pod itself, in its own namespace.
            if argv.iter().any(|arg| arg.starts_with("--pod-condition")) {
                needs
                    .entry((namespace.clone(), namespace.clone(), account.clone()))
                    .or_default()
                    .insert("pods/status");
            }
            // Events on its own pod, in the pod's namespace, unless turned off.
            if !argv.iter().any(|arg| arg == "--no-events") {
                needs
                    .entry((namespace.clone(), namespace.clone(), account.clone()))
                    .or_default()
                    .insert("events");
            }
            for target in targets {
                let (in_namespace, resources) = namespace_and_resources(target);
                let key = (
                    in_namespace.unwrap_or(&namespace).to_string(),
                    namespace.clone(),
                    account.clone(),
                );
                needs.entry(key).or_default().extend(resources);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 1,
        "no holdup initContainer found in examples/kubernetes"
    );

    for ((namespace, account_namespace, account), resources) in &needs {
        let binding = documents
            .iter()
            .find(|document| {
                document["kind"].as_str() == Some("RoleBinding")
                    && document["metadata"]["namespace"].as_str() == Some(namespace)
                    && document["subjects"]
                        .as_vec()
                        .into_iter()
                        .flatten()
                        .any(|subject| {
                            subject["kind"].as_str() == Some("ServiceAccount")
                                && subject["name"].as_str() == Some(account)
                        })
            })
            .unwrap_or_else(|| {
                panic!("no RoleBinding in {namespace} for service account {account_namespace}/{account}")
            });
        let role_name = binding["roleRef"]["name"].as_str().unwrap();
        let role = documents
            .iter()
            .find(|document| {
                document["kind"].as_str() == Some("Role")
                    && document["metadata"]["name"].as_str() == Some(role_name)
                    && document["metadata"]["namespace"].as_str() == Some(namespace)
            })
            .unwrap_or_else(|| panic!("no Role {namespace}/{role_name}"));
        assert!(
            documents.iter().any(
                |document| document["kind"].as_str() == Some("ServiceAccount")
                    && document["metadata"]["name"].as_str() == Some(account)
            ),
            "no ServiceAccount {account}"
        );
        let mut granted = rules_of(role);
        granted.sort();
        let mut expected: Vec<Rule> = resources
            .iter()
            .map(|resource| documented[*resource].clone())
            .collect();
        expected.sort();
        assert_eq!(
            granted, expected,
            "Role {namespace}/{role_name} must grant exactly what holdup needs"
        );
    }
}

/// --dry-run says which API server and namespace a k8s:// target would use, and where
/// they come from (the pod's service account, or a kubeconfig's context), and what it
/// waits for: a rollout, an object's condition through discovery, without asking anything.
#[test]
fn dry_run_says_which_api_server_and_namespace_and_why() {
    let k8s = Fixture::start();
    let in_pod = k8s
        .in_pod()
        .args([
            "--dry-run",
            "k8s://db#min=2",
            "k8s://deployment/web",
            "k8s://certificates.cert-manager.io/web#condition=Ready&version=v1",
        ])
        .run();
    let namespace_file = k8s.pod.dir().join("namespace");
    let from_pod = format!(
        "namespace=shop (from the service account's {}); api server={}/; credentials=the service-account token {}",
        namespace_file.display(),
        k8s.api.url(),
        k8s.pod.dir().join("token").display()
    );
    in_pod
        .code(0)
        .stderr_has(&format!(
            "would wait for k8s://db: object=Service db; port=any; min=2; ready=its EndpointSlices hold 2 or more ready endpoints; {from_pod}"
        ))
        .stderr_has(&format!(
            "would wait for k8s://deployment/web: object=Deployment web; resource=deployments.apps/v1; ready=the rollout is complete, as kubectl rollout status judges it; {from_pod}"
        ))
        .stderr_has(&format!(
            "would wait for k8s://certificates.cert-manager.io/web: object=certificates.cert-manager.io web; resource=certificates, found through discovery on the first attempt; group=cert-manager.io; version=v1 (pinned); condition=Ready=True; ready=the object has Ready=True; namespace=shop (from the service account's {}), unless the resource is cluster-scoped; api server=",
            namespace_file.display()
        ));
    assert!(
        k8s.api.requests().is_empty(),
        "a dry run asked the API server"
    );

    k8s.api.allow_token("ci-token", "ci");
    let config = kubeconfig_with(&k8s.api, "    token: ci-token");
    k8s.with_kubeconfig(&config)
        .args([
            "--dry-run",
            "k8s://job/migrate#context=ci",
            "k8s://other/pods/app=web",
            "k8s://nodes#selector=role=worker&min=3&condition=Ready&context=ci",
        ])
        .run()
        .code(0)
        .stderr_has("would wait for k8s://job/migrate: object=Job migrate; ready=the Job has completed (failed: exit 3 at once); namespace=shop (from context \"ci\" of ")
        .stderr_has("would wait for k8s://other/pods/app=web: object=pods matching app=web; min=1; ready=1 or more of them are Ready; namespace=other (from the target); api server=https://127.0.0.1:1/")
        .stderr_has("would wait for k8s://nodes: object=nodes matching role=worker; resource=nodes, found through discovery on the first attempt; version=the group's preferred; selector=role=worker; min=3; condition=Ready=True; ready=3 or more matching objects have Ready=True; namespace=shop (from context \"ci\" of ")
        .stderr_lacks("ci-token")
        .stderr_lacks("laptop-token");
    assert!(
        k8s.api.requests().is_empty(),
        "a dry run asked the API server"
    );
}
