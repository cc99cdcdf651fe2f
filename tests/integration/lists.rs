//! Long lists and hostile input: --targets-from (a file, standard input, the variable),
//! 10,000 targets under a limit of 1,024 open files, the budget of retries a second, and
//! targets that can never work refused at once with exit 2.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::support::net::{ClosedPort, Listening};
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

fn listening() -> Listening {
    ClosedPort::new().open()
}

fn list_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn targets_from_a_file_join_those_of_the_command_line() {
    let (a, b, c) = (listening(), listening(), listening());
    let file = list_file(&format!(
        "# the database, then the API\n\n  tcp://{}  \n\t# an indented comment\n{}\r\n",
        a.address(),
        b.address()
    ));
    let finished = holdup()
        .args(["--targets-from".as_ref(), file.path().as_os_str()])
        .args(["-w", &format!("tcp://{}", c.address()), "-t", "30s"])
        .run();
    finished.code(0);
    for listener in [&a, &b, &c] {
        finished.stderr_has(&format!("tcp://{} ready after", listener.address()));
    }
}

#[test]
fn targets_from_standard_input_and_the_variable() {
    let (a, b) = (listening(), listening());
    holdup()
        .args(["--targets-from", "-", "-t", "30s"])
        .stdin(format!("tcp://{}\n", a.address()))
        .run()
        .code(0)
        .stderr_has(&format!("tcp://{} ready after", a.address()));
    // From HOLDUP_TARGETS_FROM, added to HOLDUP_WAIT_FOR's targets.
    let file = list_file(&format!("{}\n", a.address()));
    holdup()
        .env("HOLDUP_TARGETS_FROM", file.path())
        .env("HOLDUP_WAIT_FOR", format!("tcp://{}", b.address()))
        .args(["-t", "30s"])
        .run()
        .code(0)
        .stderr_has(&format!("tcp://{} ready after", a.address()))
        .stderr_has(&format!("tcp://{} ready after", b.address()));
}

#[test]
fn a_bad_line_is_named_by_file_and_number() {
    let file = list_file("# deps\ndb:5432\n\ndb\n");
    let name = file.path().display().to_string();
    holdup()
        .args(["--targets-from", &name])
        .run()
        .code(2)
        .stderr_has(&format!(
            "{name} line 4: invalid target 'db': expected a URL such as tcp://host:port"
        ));
    holdup()
        .args(["--targets-from", "-"])
        .stdin("tcp://db:0\n")
        .run()
        .code(2)
        .stderr_has("standard input line 1: invalid target 'tcp://db:0': port 0");
    holdup()
        .args(["--targets-from", "/nonexistent/targets"])
        .run()
        .code(2)
        .stderr_has("--targets-from /nonexistent/targets: cannot read it: ");
    holdup()
        .env("HOLDUP_TARGETS_FROM", "/nonexistent/targets")
        .run()
        .code(2)
        .stderr_has("HOLDUP_TARGETS_FROM /nonexistent/targets: cannot read it: ");
}

/// A list from a file is told like any other: a bad line writes the termination message
/// as every usage error does; the targets of the file are in the report, in the
/// termination message when they are not ready, and in --dry-run beside where the run
/// reports and its budget of retries.
#[test]
fn targets_from_a_file_are_told_where_every_run_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = (
        dir.path().join("termination-log"),
        dir.path().join("report.json"),
    );
    let bad = list_file("db:5432\ndb\n");
    let name = bad.path().display().to_string();
    holdup()
        .args(["--targets-from", &name])
        .arg("--termination-log")
        .arg(&log)
        .run()
        .code(2);
    let message = std::fs::read_to_string(&log).unwrap();
    assert!(
        message.starts_with(&format!("usage: {name} line 2: invalid target 'db'")),
        "{message}"
    );

    let (up, closed) = (listening(), ClosedPort::new());
    let file = list_file(&format!(
        "tcp://{}\ntcp://{}\n",
        up.address(),
        closed.address()
    ));
    let file_name = file.path().display().to_string();
    holdup()
        .args([
            "--targets-from",
            &file_name,
            "-t",
            "1s",
            "--termination-log",
        ])
        .arg(&log)
        .arg("--report")
        .arg(&report)
        .run()
        .code(1);
    let down = format!("tcp://{}", closed.address());
    let message = std::fs::read_to_string(&log).unwrap();
    assert!(
        message.starts_with(&format!("{down} not ready after 1.00s: ")),
        "{message}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let reported: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|target| target["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        reported,
        [format!("tcp://{}", up.address()), down.clone()],
        "{report}"
    );

    holdup()
        .args([
            "--dry-run",
            "--targets-from",
            &file_name,
            "--max-rate",
            "50",
        ])
        .arg("--termination-log")
        .arg(&log)
        .run()
        .code(0)
        .stderr_has(&format!("would wait for {down}: "))
        .stderr_has("; max rate=50 retries/s")
        .stderr_has(&format!(
            "holdup: reporting: termination log={} (on failure); report=none",
            log.display()
        ));
}

/// Listeners whose accept queue is full until [`Jammed::open`]: a connection to them
/// hangs, holding its socket, as one to a distant or busy server does.
struct Jammed {
    listeners: Vec<Socket>,
    fillers: Vec<Socket>,
}

impl Jammed {
    fn new(count: usize) -> Jammed {
        let mut jammed = Jammed {
            listeners: Vec::new(),
            fillers: Vec::new(),
        };
        for _ in 0..count {
            let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            listener
                .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            listener.listen(0).unwrap();
            let address = listener.local_addr().unwrap().as_socket().unwrap();
            // Full once a connect goes unanswered.
            loop {
                let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                match filler.connect_timeout(&address.into(), Duration::from_millis(200)) {
                    Ok(()) => jammed.fillers.push(filler),
                    Err(_) => break,
                }
                assert!(jammed.fillers.len() < 64 * count, "cannot fill {address}");
            }
            jammed.listeners.push(listener);
        }
        jammed
    }

    fn addresses(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|listener| listener.local_addr().unwrap().as_socket().unwrap())
            .collect()
    }

    /// Accepts (and closes) every connection from now on, with room for many at once.
    fn open(self) {
        for listener in self.listeners {
            listener.listen(4_096).unwrap();
            let listener: TcpListener = listener.into();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    drop(stream);
                }
            });
        }
    }
}

/// 10,000 targets, all listening, under a limit of 1,024 open files that cannot be raised.
/// Every first attempt hangs until the listeners open; the attempts in flight are bounded,
/// so none runs out of descriptors (unbounded, 10,000 hanging connects would).
#[test]
fn ten_thousand_targets_within_1024_open_files() {
    let jammed = Jammed::new(4);
    let addresses = jammed.addresses();
    let list: String = (0..10_000)
        .map(|index| format!("tcp://{}\n", addresses[index % addresses.len()]))
        .collect();
    let file = list_file(&list);
    let running = holdup()
        .open_files_limit(1_024, 1_024)
        .args(["--targets-from".as_ref(), file.path().as_os_str()])
        .args([
            "-t",
            "60s",
            "--attempt-timeout",
            "1s",
            "--log-format",
            "json",
        ])
        .spawn();
    // The first attempts have hung for their whole second: now the servers come up.
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .contains("timed out after"),
        "{waiting}"
    );
    jammed.open();
    let finished = running.finish();
    finished
        .code(0)
        .stderr_lacks("too many open files")
        .stderr_lacks("Too many open files");
    let ready = finished
        .json_lines()
        .iter()
        .filter(|line| line["event"] == "ready")
        .count();
    assert_eq!(ready, 10_000);
}

/// 1,000 targets on closed ports for 2 s with a budget of 200 retries a second: the first
/// attempt of each, then at most the budget (and its burst of a tenth of a second), where
/// the targets alone would make about 20 each.
#[test]
fn retries_keep_to_the_budget_and_the_deadline_holds() {
    let closed: Vec<ClosedPort> = (0..10).map(|_| ClosedPort::new()).collect();
    let list: String = (0..1_000)
        .map(|index| format!("tcp://{}\n", closed[index % closed.len()].address()))
        .collect();
    let file = list_file(&list);
    let finished = holdup()
        .args(["--targets-from".as_ref(), file.path().as_os_str()])
        .args(["-t", "2s", "--max-rate", "200", "--log-format", "json"])
        .run();
    finished
        .code(1)
        .took_between(secs(2.0), secs(2.0) + DEADLINE_SLACK);
    let attempts: u64 = finished
        .json_lines()
        .iter()
        .filter(|line| line["event"] == "not_ready")
        .map(|line| line["attempts"].as_u64().unwrap())
        .sum();
    assert!(attempts >= 1_000, "{attempts} attempts");
    assert!(attempts <= 1_000 + 2 * 200 + 20 + 20, "{attempts} attempts");
}

/// Targets that can never work are refused before anything is probed, with exit 2 and the
/// expected form, not waited on until the deadline (issue 14).
#[test]
fn hostile_targets_are_refused_at_once() {
    let home = tempfile::tempdir().unwrap();
    let huge = format!("tcp://{}:80", "h".repeat(70_000));
    let cases: &[(&str, &str)] = &[
        (
            "https://x:0/",
            "port 0 cannot be connected to (expected a port from 1 to 65535)",
        ),
        ("tcp://db:0", "port 0 cannot be connected to"),
        (
            &huge,
            "host name of 70000 characters (DNS allows at most 253",
        ),
        (
            "postgres://u@h/d?connect_timeout=abc",
            "invalid connect_timeout 'abc' (expected a whole number",
        ),
        ("k8s://job/", "missing name after 'job/'"),
        ("tcp://224.0.0.1:5432", "multicast or broadcast address"),
    ];
    for (target, expected) in cases {
        let finished = holdup()
            .args(["-w", target, "-t", "30s"])
            .env("HOME", home.path())
            .env("KUBECONFIG", "")
            .run();
        finished
            .code(2)
            .stderr_has(expected)
            .took_between(secs(0.0), SOON);
        assert!(finished.stderr.len() < 2_000, "{}", &finished.stderr[..200]);
    }
}
