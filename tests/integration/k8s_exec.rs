//! Kubeconfig exec credential plugins, as EKS, GKE and kubelogin configurations use them:
//! a fake plugin (a shell script written by the test) that counts its runs, prints an
//! ExecCredential and records what it was given; the stand-in API server checks the token
//! or client certificate it printed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::kube::{Fixture, Kind, Seen, endpoint_slice, job, kubeconfig_with};
use crate::support::{SOON, secs};

const V1: &str = "client.authentication.k8s.io/v1";

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A kubeconfig whose `ci` user runs `command` with the given exec block lines.
fn exec_user(command: &str, extra: &str) -> String {
    format!(
        "    exec:\n      apiVersion: {V1}\n      command: {command}\n      interactiveMode: Never\n{extra}"
    )
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

fn watches(seen: &Seen) -> bool {
    seen.verb == "watch" && seen.status == 200
}

/// The plugin's first token comes already expired, the later ones last until 2100: the
/// first is used for the one request it was fetched for, the second is fetched for the
/// next request and then kept for every later one.
#[test]
fn an_exec_plugin_runs_again_once_its_token_expires_and_not_before() {
    let k8s = Fixture::start();
    for run in 1..=3 {
        k8s.api.allow_token(&format!("plugin-token-{run}"), "ci");
    }
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    let dir = k8s.kubeconfig_dir();
    script(
        dir,
        "get-token",
        r#"dir=$(dirname "$0")
echo run >> "$dir/runs"
n=$(wc -l < "$dir/runs" | tr -d ' ')
printf '%s\n' "$@" > "$dir/args"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/exec-info"
printf '%s' "$CLUSTER_NAME" > "$dir/env"
if [ "$n" = 1 ]; then expires=2000-01-01T00:00:00Z; else expires=2100-01-01T00:00:00Z; fi
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"plugin-token-%s","expirationTimestamp":"%s"}}\n' "$n" "$expires"
"#,
    );
    let user = exec_user(
        "./get-token",
        "      args: [eks, get-token, --cluster-name, prod]\n      env: [{name: CLUSTER_NAME, value: prod}]\n      provideClusterInfo: true\n",
    );
    let running = k8s
        .with_kubeconfig(&kubeconfig_with(&k8s.api, &user))
        .args(["-w", "k8s://db#context=ci", "-t", "30s"])
        .spawn();
    running.wait_for_line("Service shop/db has 0 ready endpoints of 1 needed");
    k8s.api.wait_for_requests(1, watches);
    // The watch ends; the next one goes out with the token in memory, the plugin not run.
    k8s.api.end_watches();
    k8s.api.wait_for_requests(2, watches);
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    running
        .finish_within(SOON)
        .code(0)
        .stderr_lacks("plugin-token");
    assert_eq!(runs(dir), 2, "run once, then once more after it expired");
    let tokens: Vec<Option<String>> = k8s
        .api
        .requests()
        .iter()
        .map(|seen| seen.token.clone())
        .collect();
    let token = |run: u32| Some(format!("plugin-token-{run}"));
    assert_eq!(tokens, [token(1), token(2), token(2)]);

    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert_eq!(args, "eks\nget-token\n--cluster-name\nprod\n");
    assert_eq!(std::fs::read_to_string(dir.join("env")).unwrap(), "prod");
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("exec-info")).unwrap()).unwrap();
    use base64::Engine as _;
    assert_eq!(
        info,
        json!({"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": false,
               "cluster": {"server": k8s.api.url(),
                           "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(k8s.api.ca().pem())}}})
    );
}

/// A 401 means the API server no longer takes the token (revoked before it expired): the
/// plugin is run again for the next request.
#[test]
fn a_refused_plugin_token_is_fetched_again() {
    let k8s = Fixture::start();
    k8s.api.allow_token("plugin-token-2", "ci");
    k8s.api.put(
        Kind::Job,
        "shop",
        job("migrate", 0, 0, &[("Complete", "", "")]),
    );
    let dir = k8s.kubeconfig_dir();
    script(
        dir,
        "get-token",
        r#"dir=$(dirname "$0")
echo run >> "$dir/runs"
n=$(wc -l < "$dir/runs" | tr -d ' ')
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"plugin-token-%s"}}' "$n"
"#,
    );
    let user = exec_user(&dir.join("get-token").display().to_string(), "");
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &user))
        .args(["-w", "k8s://job/migrate#context=ci", "-t", "30s"])
        .run()
        .code(0)
        .stderr_lacks("plugin-token");
    assert_eq!(runs(dir), 2);
    let statuses: Vec<u16> = k8s.api.requests().iter().map(|seen| seen.status).collect();
    assert_eq!(statuses, [401, 200]);
}

#[test]
fn an_exec_plugin_may_give_a_client_certificate() {
    let k8s = Fixture::start();
    k8s.api.put(
        Kind::Job,
        "shop",
        job("migrate", 0, 0, &[("Complete", "", "")]),
    );
    let dir = k8s.kubeconfig_dir();
    let issued = k8s.api.ca().issue(&["holdup-ci"]);
    let credential = json!({"apiVersion": V1, "kind": "ExecCredential",
        "status": {"clientCertificateData": issued.certificate_pem, "clientKeyData": issued.key_pem}});
    std::fs::write(dir.join("credential.json"), credential.to_string()).unwrap();
    script(dir, "get-cert", r#"cat "$(dirname "$0")/credential.json""#);
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &exec_user("./get-cert", "")))
        .args(["-w", "k8s://job/migrate#context=ci", "-t", "30s"])
        .run()
        .code(0)
        .stderr_lacks("PRIVATE KEY");
    let requests = k8s.api.requests();
    assert!(
        requests
            .iter()
            .all(|seen| seen.client_certificate && seen.token.is_none()),
        "{requests:#?}"
    );
}

/// --dry-run names the plugin the credentials would come from, and runs it not.
#[test]
fn a_dry_run_names_the_plugin_and_does_not_run_it() {
    let k8s = Fixture::start();
    let dir = k8s.kubeconfig_dir();
    script(dir, "get-token", r#"echo run >> "$(dirname "$0")/runs""#);
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &exec_user("./get-token", "")))
        .args(["--dry-run", "k8s://deployment/web#context=ci"])
        .run()
        .code(0)
        .stderr_has(&format!(
            "credentials=the credentials of the plugin \"{}\" of user \"ci\" of kubeconfig {}",
            dir.join("get-token").display(),
            dir.join("kubeconfig").display()
        ));
    assert_eq!(runs(dir), 0, "a dry run ran the credential plugin");
    assert!(k8s.api.requests().is_empty());
}

#[test]
fn a_failing_exec_plugin_is_said_with_its_stderr_and_ends_the_wait() {
    let k8s = Fixture::start();
    let dir = k8s.kubeconfig_dir();
    script(
        dir,
        "get-token",
        "echo 'some progress output' \necho 'An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired' >&2\nexit 255\n",
    );
    let kubeconfig = kubeconfig_with(&k8s.api, &exec_user("./get-token", ""));
    k8s.with_kubeconfig(&kubeconfig)
        .args(["-w", "k8s://db#context=ci", "-t", "30s"])
        .run()
        .code(3)
        .stderr_has(&format!(
            "k8s://db failed: the credential plugin \"{}\" of user \"ci\" of kubeconfig {} failed (exit code 255): An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired",
            dir.join("get-token").display(),
            dir.join("kubeconfig").display()
        ))
        .stderr_lacks("some progress output")
        .took_between(Duration::ZERO, SOON);
    assert!(k8s.api.requests().is_empty());
}

#[test]
fn a_missing_exec_plugin_is_said_with_its_install_hint() {
    let k8s = Fixture::start();
    let user = exec_user(
        "holdup-test-no-such-plugin",
        "      installHint: |\n        holdup-test-no-such-plugin is needed to sign in.\n        Install it from https://example.com/plugin\n",
    );
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &user))
        .args(["-w", "k8s://db#context=ci", "-t", "30s"])
        .run()
        .code(3)
        .stderr_has("the credential plugin \"holdup-test-no-such-plugin\" of user \"ci\" of kubeconfig ")
        .stderr_has(" was not found (holdup-test-no-such-plugin is needed to sign in. Install it from https://example.com/plugin)");
}

#[test]
fn an_interactive_only_plugin_is_refused_before_it_runs() {
    let k8s = Fixture::start();
    let dir = k8s.kubeconfig_dir();
    script(dir, "login", "echo run >> \"$(dirname \"$0\")/runs\"\n");
    let user = format!(
        "    exec:\n      apiVersion: {V1}\n      command: ./login\n      interactiveMode: Always\n"
    );
    k8s.with_kubeconfig(&kubeconfig_with(&k8s.api, &user))
        .args(["-w", "k8s://db#context=ci", "-t", "30s"])
        .run()
        .code(3)
        .stderr_has(
            "its exec plugin wants a terminal (interactiveMode: Always), and holdup never has one",
        );
    assert_eq!(runs(dir), 0);
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
fn ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// A plugin that never answers is cut off with the attempt, and killed: the deadline holds
/// and no plugin outlives holdup.
#[test]
fn a_plugin_that_hangs_is_killed_with_its_attempt() {
    let k8s = Fixture::start();
    let dir = k8s.kubeconfig_dir();
    script(
        dir,
        "get-token",
        "echo $$ >> \"$(dirname \"$0\")/pids\"\nexec sleep 600\n",
    );
    let kubeconfig = kubeconfig_with(&k8s.api, &exec_user("./get-token", ""));
    k8s.with_kubeconfig(&kubeconfig)
        .args(["-w", "k8s://db#context=ci", "-t", "1500ms", "--attempt-timeout", "500ms"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "k8s://db not ready after 1.50s: timed out after 500ms while running the credential plugin \"{}\"",
            dir.join("get-token").display()
        ));
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
    let pids: Vec<&str> = pids.lines().collect();
    assert!(!pids.is_empty(), "the plugin never ran");
    // Killed when their attempts were dropped; give the kernel a moment to say so.
    let limit = Instant::now() + SOON;
    while pids.iter().any(|pid| !ended(pid)) && Instant::now() < limit {
        std::thread::sleep(secs(0.01));
    }
    let alive: Vec<&&str> = pids.iter().filter(|pid| !ended(pid)).collect();
    for pid in &alive {
        crate::support::send_signal(pid.parse().unwrap(), libc::SIGKILL);
    }
    assert!(
        alive.is_empty(),
        "plugins outlived their attempts: {alive:?}"
    );
}
