//! The fault table: each fault a dependency can have, run against the real binary, with
//! the exit code, the time against the deadline, and whether a secret reached the output.
//! Every test checks its row; each also prints it (`fault-row|...`), which `scripts/faults`
//! gathers into the table the README links.

use std::cell::RefCell;
use std::time::Duration;

use crate::signals::{can_unshare, only_child, pid_in_own_namespace};
use crate::support::dns::{DnsServer, Mute, a};
use crate::support::kube::{ApiServer, Fixture, Kind, USER, endpoint_slice, job};
use crate::support::net::{Blackhole, ClosedPort, HttpServer, Silent};
use crate::support::postgres::{APP_DB, APP_PASSWORD, APP_USER, PgServer, free_port};
use crate::support::redis::{ACL_USER, RedisServer};
use crate::support::{DEADLINE_SLACK, Finished, Holdup, SOON, holdup, need, send_signal};

const SIGTERM: i32 = 15;

/// Checks one fault's run and prints its row: the exit code expected, the run ended
/// within the deadline's slack (or at once, without one), and no secret in the output.
#[track_caller]
// Each argument is one column of the row or what it is checked against.
#[allow(clippy::too_many_arguments)]
fn row(
    order: u32,
    fault: &str,
    shown: &str,
    finished: &Finished,
    told: &Told,
    expected: i32,
    deadline: Option<Duration>,
    secrets: &[&str],
) {
    finished.code(expected);
    let elsewhere = told.all();
    let leaked: Vec<&&str> = secrets
        .iter()
        .filter(|secret| {
            finished.stderr.contains(**secret)
                || finished.stdout.contains(**secret)
                || elsewhere.contains(**secret)
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "{fault}: {leaked:?} in the output:\n{}\n{elsewhere}",
        finished.stderr
    );
    // A failure is said where Kubernetes shows it too; a success leaves it to the command.
    let message = told.termination_message();
    assert_eq!(
        message
            .as_deref()
            .is_some_and(|text| !text.trim().is_empty()),
        expected != 0,
        "{fault}: termination message {message:?}"
    );
    let limit = deadline.map_or(SOON, |deadline| deadline + DEADLINE_SLACK);
    assert!(
        finished.elapsed <= limit,
        "{fault}: took {:?}",
        finished.elapsed
    );
    let against = match deadline {
        Some(deadline) => format!(
            "{:.2} s of {:.2} s",
            finished.elapsed.as_secs_f64(),
            deadline.as_secs_f64()
        ),
        None => format!("{:.2} s (deadline 30 s)", finished.elapsed.as_secs_f64()),
    };
    let secret = if secrets.is_empty() { "(none)" } else { "no" };
    // On a line of its own: the test harness prints the test's name before it.
    println!("\nfault-row|{order:02}|{fault}|`{shown}`|{expected}|{against}|{secret}");
}

/// Where a run says how it went besides its log: the termination message and the report
/// (given to every run of the table), and the Events on the pod for the `k8s://` rows, so
/// that the column "secret in the output" holds for all of them.
struct Told {
    dir: tempfile::TempDir,
    events: RefCell<String>,
}

impl Told {
    fn new() -> Told {
        Told {
            dir: tempfile::tempdir().unwrap(),
            events: RefCell::default(),
        }
    }

    fn on(&self, holdup: Holdup) -> Holdup {
        holdup
            .arg("--termination-log")
            .arg(self.dir.path().join("termination-log"))
            .arg("--report")
            .arg(self.dir.path().join("report.json"))
    }

    /// Keeps what the run posted as Events on its pod.
    fn events_from(&self, api: &ApiServer) {
        let posted: Vec<String> = api
            .all_requests()
            .into_iter()
            .filter_map(|seen| seen.body.map(|body| body.to_string()))
            .collect();
        *self.events.borrow_mut() = posted.join("\n");
    }

    fn termination_message(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("termination-log")).ok()
    }

    /// Everything said besides the log.
    fn all(&self) -> String {
        let report = std::fs::read_to_string(self.dir.path().join("report.json"));
        format!(
            "{}\n{}\n{}",
            self.termination_message().unwrap_or_default(),
            report.unwrap_or_default(),
            self.events.borrow()
        )
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn closed_port() {
    let told = Told::new();
    let port = ClosedPort::new();
    let target = format!("tcp://{}", port.address());
    let finished = told.on(holdup()).args(["-w", &target, "-t", "1s"]).run();
    finished.stderr_has("connection refused");
    row(
        1,
        "closed port",
        "tcp://HOST:PORT",
        &finished,
        &told,
        1,
        Some(ms(1_000)),
        &[],
    );
}

#[test]
fn blackholed_syn() {
    let told = Told::new();
    let blackhole = Blackhole::new();
    let target = format!("tcp://{}", blackhole.address());
    let finished = told
        .on(holdup())
        .args(["-w", &target, "-t", "1500ms", "--attempt-timeout", "30s"])
        .run();
    finished.stderr_has("timed out after 1.50s while connecting to");
    row(
        2,
        "SYN blackholed (firewall)",
        "tcp://HOST:PORT",
        &finished,
        &told,
        1,
        Some(ms(1_500)),
        &[],
    );
}

#[test]
fn dns_server_silent() {
    let told = Told::new();
    let mute = Mute::start();
    let target = format!("dns://db.test#server={}", mute.address());
    let finished = told
        .on(holdup())
        .args(["-w", &target, "-t", "1500ms"])
        .run();
    finished.stderr_has("not ready after 1.50s");
    row(
        3,
        "DNS server silent",
        "dns://NAME#server=...",
        &finished,
        &told,
        1,
        Some(ms(1_500)),
        &[],
    );
}

#[test]
fn nxdomain_then_the_record_appears() {
    let told = Told::new();
    let server = DnsServer::start("test.");
    let target = format!("dns://db.test#server={}", server.address());
    let running = told
        .on(holdup())
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"].as_str().unwrap().contains("NXDOMAIN"),
        "{waiting}"
    );
    server.set("db", vec![a("10.0.0.4")]);
    let finished = running.finish_within(SOON);
    row(
        4,
        "NXDOMAIN, then the record appears",
        "dns://NAME",
        &finished,
        &told,
        0,
        None,
        &[],
    );
}

#[test]
fn http_accepts_then_stalls() {
    let told = Told::new();
    let silent = Silent::start();
    let secret = "Basic-pw-5c1e";
    let target = format!("http://app:{secret}@{}/health", silent.address());
    let finished = told
        .on(holdup())
        .args(["-w", &target, "-t", "1500ms"])
        .run();
    finished.stderr_has("timed out after 1.50s while");
    row(
        5,
        "HTTP accepts, then stalls",
        "http://USER:PASSWORD@HOST/health",
        &finished,
        &told,
        1,
        Some(ms(1_500)),
        &[secret],
    );
}

#[test]
fn tls_handshake_stalls() {
    let told = Told::new();
    let silent = Silent::start();
    let target = format!("https://{}/health", silent.address());
    let finished = told
        .on(holdup())
        .args(["-w", &target, "-t", "1500ms"])
        .run();
    finished.stderr_has("timed out after 1.50s while");
    row(
        6,
        "TLS handshake stalls",
        "https://HOST/health",
        &finished,
        &told,
        1,
        Some(ms(1_500)),
        &[],
    );
}

#[test]
fn http_503_then_200() {
    let told = Told::new();
    let server = HttpServer::start(503, "starting");
    let secret = "Hdr-token-93ab";
    let target = format!(
        "{}#header=Authorization:Bearer%20{secret}",
        server.url("/health")
    );
    let running = told
        .on(holdup())
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"].as_str().unwrap().contains("503"),
        "{waiting}"
    );
    server.set_status(200);
    let finished = running.finish_within(SOON);
    row(
        7,
        "HTTP 503, then 200",
        "http://HOST/health#header=...",
        &finished,
        &told,
        0,
        None,
        &[secret],
    );
}

#[test]
fn postgres_starting_up() {
    let told = Told::new();
    let port = free_port();
    let target = format!("postgres://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{port}/{APP_DB}");
    let running = told
        .on(holdup())
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    running.wait_for_event("waiting");
    let _server = PgServer::builder().port(port).start();
    let finished = running.finish_within(SOON);
    row(
        8,
        "Postgres not started, then starting up",
        "postgres://USER:PASSWORD@HOST/DB",
        &finished,
        &told,
        0,
        None,
        &[APP_PASSWORD],
    );
}

#[test]
fn wrong_password() {
    let told = Told::new();
    let server = RedisServer::builder().passwords().start();
    let wrong = "Wrong-pw-61d0aa";
    let target = format!("redis://{ACL_USER}:{wrong}@127.0.0.1:{}", server.port());
    let finished = told.on(holdup()).args(["-w", &target, "-t", "1s"]).run();
    finished.stderr_has("WRONGPASS");
    row(
        9,
        "wrong password",
        "redis://USER:PASSWORD@HOST",
        &finished,
        &told,
        1,
        Some(ms(1_000)),
        &[wrong],
    );
    let told = Told::new();
    let finished = told
        .on(holdup())
        .args(["-w", &format!("{target}#fail-fast"), "-t", "30s"])
        .run();
    row(
        9,
        "wrong password, #fail-fast",
        "redis://USER:PASSWORD@HOST#fail-fast",
        &finished,
        &told,
        3,
        None,
        &[wrong],
    );
}

#[test]
fn api_server_401() {
    let told = Told::new();
    let token = "expired-token-0c4f";
    let k8s = Fixture::with_token(token);
    k8s.api.revoke_token(token);
    let finished = told
        .on(k8s.in_pod())
        .args(["-w", "k8s://shop/db", "-t", "1s"])
        .run();
    finished.stderr_has("401 Unauthorized");
    told.events_from(&k8s.api);
    row(
        10,
        "API server 401 (token not accepted)",
        "k8s://NS/SERVICE",
        &finished,
        &told,
        1,
        Some(ms(1_000)),
        &[token],
    );
}

#[test]
fn api_server_403() {
    let told = Told::new();
    let k8s = Fixture::start();
    k8s.api.forbid(Kind::EndpointSlice, "list");
    let finished = told
        .on(k8s.in_pod())
        .args(["-w", "k8s://shop/db", "-t", "1s"])
        .run();
    finished
        .stderr_has("forbidden (403)")
        .stderr_has("give it a Role");
    told.events_from(&k8s.api);
    row(
        11,
        "API server 403 (RBAC)",
        "k8s://NS/SERVICE",
        &finished,
        &told,
        1,
        Some(ms(1_000)),
        &[],
    );
}

#[test]
fn api_server_404_then_created() {
    let told = Told::new();
    let k8s = Fixture::start();
    let running = told
        .on(k8s.in_pod())
        .args(["-w", "k8s://shop/job/migrate", "-t", "30s"])
        .spawn();
    running.wait_for_line("Job shop/migrate does not exist yet");
    k8s.api.put(
        Kind::Job,
        "shop",
        job("migrate", 0, 0, &[("Complete", "", "")]),
    );
    let finished = running.finish_within(SOON);
    told.events_from(&k8s.api);
    row(
        12,
        "API server 404, then the Job is created and completes",
        "k8s://NS/job/NAME",
        &finished,
        &told,
        0,
        None,
        &[],
    );
}

#[test]
fn token_rotated_mid_wait() {
    let told = Told::new();
    let k8s = Fixture::with_token("old-token-a1");
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", false)]),
    );
    let running = told
        .on(k8s.in_pod())
        .args(["-w", "k8s://shop/db", "-t", "30s"])
        .spawn();
    running.wait_for_line("waiting for k8s://shop/db");
    k8s.pod.rotate_token("new-token-b2\n");
    k8s.api.allow_token("new-token-b2", USER);
    k8s.api.revoke_token("old-token-a1");
    k8s.api.end_watches();
    k8s.api.put(
        Kind::EndpointSlice,
        "shop",
        endpoint_slice("db", "pg", &[("db-0", true)]),
    );
    let finished = running.finish_within(SOON);
    told.events_from(&k8s.api);
    row(
        13,
        "service-account token rotated mid-wait",
        "k8s://NS/SERVICE",
        &finished,
        &told,
        0,
        None,
        &["old-token-a1", "new-token-b2"],
    );
}

#[test]
fn sigterm_as_pid_1() {
    let told = Told::new();
    if need("the PID 1 fault", can_unshare()).is_none() {
        return;
    }
    let closed = ClosedPort::new();
    let running = told
        .on(Holdup::wrapped_in(
            "unshare",
            &["--pid", "--fork", "--kill-child"],
        ))
        .args(["-w", &format!("tcp://{}", closed.address()), "-t", "60s"])
        .spawn();
    running.wait_for_line("waiting for");
    let holdup_pid = only_child(running.pid());
    assert_eq!(pid_in_own_namespace(holdup_pid), 1);
    send_signal(holdup_pid, SIGTERM);
    let finished = running.finish_within(SOON);
    finished.stderr_has("stopped by SIGTERM");
    row(
        14,
        "SIGTERM as PID 1",
        "tcp://HOST:PORT",
        &finished,
        &told,
        143,
        None,
        &[],
    );
}

#[test]
fn hostile_targets() {
    let huge = format!("tcp://{}:80", "h".repeat(70_000));
    let cases = [
        ("port 0", "https://x:0/", "https://x:0/".to_string()),
        ("a host name of 70,000 characters", "tcp://hhh…:80", huge),
        (
            "connect_timeout=abc",
            "postgres://u:PASSWORD@h/d?connect_timeout=abc",
            "postgres://u:Pg-pw-77@h/d?connect_timeout=abc".to_string(),
        ),
        (
            "a Job without a name",
            "k8s://job/",
            "k8s://job/".to_string(),
        ),
        (
            "a password in a target with port 0",
            "redis://u:PASSWORD@h:0",
            "redis://u:Rd-pw-88@h:0".to_string(),
        ),
    ];
    for (what, shown, target) in cases {
        let told = Told::new();
        let finished = told.on(holdup()).args(["-w", &target, "-t", "30s"]).run();
        row(
            15,
            &format!("hostile target: {what}"),
            shown,
            &finished,
            &told,
            2,
            None,
            &["Pg-pw-77", "Rd-pw-88"],
        );
    }
}
