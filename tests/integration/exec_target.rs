//! exec: targets: ready when the command exits 0; its last line and how it ended as the
//! reason; a command that hangs killed with everything it started, at the attempt timeout,
//! the deadline or a signal; a command that cannot run refused before anything is probed;
//! how exec: targets are written in HOLDUP_WAIT_FOR.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::net::ClosedPort;
use crate::support::{DEADLINE_SLACK, SOON, holdup, secs};

#[test]
fn ready_when_the_command_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("migrated");
    let target = format!(
        "exec:sh -c 'test -e {} || {{ echo checking; echo \"migrations pending\" >&2; exit 3; }}'",
        flag.display()
    );
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let waiting = running.wait_for_event("waiting");
    assert_eq!(
        waiting["error"], "exited with status 3: migrations pending",
        "{waiting}"
    );
    running.assert_still_running();
    fs::write(&flag, "").unwrap();
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(finished.events(), ["waiting", "ready"]);
}

#[test]
fn the_reason_is_the_last_line_and_how_the_command_ended() {
    let cases = [
        (
            "exec:sh -c 'echo one; echo two >&2; echo; exit 4'",
            "exited with status 4: two",
        ),
        ("exec:false", "exited with status 1 (no output)"),
        (
            "exec:sh -c 'echo dying; kill -TERM $$'",
            "killed by signal 15 (SIGTERM): dying",
        ),
        // stdin is at its end at once: a command that reads it does not hang.
        ("exec:sh -c 'read line; exit 7'", "exited with status 7"),
    ];
    for (target, reason) in cases {
        holdup()
            .args([target, "-t", "300ms"])
            .run()
            .code(1)
            .stderr_has(&format!("{target} not ready after 300ms: {reason}"));
    }
    // holdup's environment is the command's.
    holdup()
        .arg("exec:sh -c 'test \"$CHECK_MARK\" = here'")
        .env("CHECK_MARK", "here")
        .run()
        .code(0);
}

/// Every PID in `file` (one a line) has ended: gone, or a zombie that nobody reaped (when
/// the machine's init does not).
#[track_caller]
fn all_ended(file: &Path) {
    let pids = fs::read_to_string(file).unwrap();
    assert!(!pids.trim().is_empty(), "the command wrote no PID");
    for pid in pids.lines() {
        let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses: `123 (sleep) Z ...`.
        let state = state.rsplit(") ").next().unwrap_or_default();
        assert!(
            state.is_empty() || state.starts_with('Z'),
            "{pid} outlived holdup: {state}"
        );
    }
}

/// A command that starts something in the background and then hangs.
fn hanging_command(pids: &Path) -> String {
    format!(
        "exec:sh -c 'sleep 600 & echo $! >> {}; echo started; sleep 600'",
        pids.display()
    )
}

#[test]
fn a_command_that_hangs_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let target = hanging_command(&pids);
    // Cut by the attempt timeout, then by the deadline.
    let finished = holdup()
        .args([&target, "-t", "1500ms", "--attempt-timeout", "1s"])
        .run();
    finished
        .code(1)
        .stderr_has("timed out after 1.00s while running sh (pid ")
        .stderr_has("), which last printed \"started\"")
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    assert_eq!(fs::read_to_string(&pids).unwrap().lines().count(), 2);
    all_ended(&pids);
}

#[test]
fn a_signal_to_holdup_kills_the_command_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let running = holdup()
        .args([
            &hanging_command(&pids),
            "-t",
            "60s",
            "--attempt-timeout",
            "60s",
        ])
        .spawn();
    // The command has started its background process.
    let limit = Instant::now() + SOON;
    while !fs::read_to_string(&pids).is_ok_and(|text| text.ends_with('\n')) {
        assert!(Instant::now() < limit, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal(15);
    running.finish_within(SOON).code(143);
    all_ended(&pids);
}

#[test]
fn a_command_that_cannot_run_is_refused_before_anything_is_probed() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let not_executable = format!("exec:{} --quick", script.display());
    let listening = ClosedPort::new();
    let address = listening.address().to_string();
    let listening = listening.open();
    let cases = [
        (
            "exec:no-such-check --now",
            "invalid target 'exec:no-such-check --now': command no-such-check not found in PATH (",
        ),
        (not_executable.as_str(), "it is not executable (mode 0644)"),
        (
            "exec:PGPASSWORD=secret psql",
            "to set a variable for the command, write exec:env NAME=VALUE COMMAND",
        ),
        ("exec:", "empty command (expected exec:COMMAND ARGS...)"),
        ("exec:sh -c 'exit 0", "unclosed single quote"),
        (
            "exec:pg_isready | grep accepting",
            "'|' means a pipe in a shell, and exec: runs no shell",
        ),
    ];
    for (target, expected) in cases {
        holdup()
            .args(["-w", &address, "-w", target])
            .run()
            .code(2)
            .stderr_has(expected)
            .stderr_lacks("secret");
    }
    assert_eq!(listening.accepted(), 0);
}

/// In HOLDUP_WAIT_FOR an exec: target takes the rest of its line, commas and spaces
/// included; other targets are split as always.
#[test]
fn exec_targets_in_holdup_wait_for() {
    let cases: &[(&str, &[&str])] = &[
        ("exec:true --ids 1,2", &["exec:true --ids 1,2"]),
        (
            "tcp://127.0.0.1:1,127.0.0.1:2 exec:sh -c 'exit 0'",
            &[
                "tcp://127.0.0.1:1",
                "tcp://127.0.0.1:2",
                "exec:sh -c 'exit 0'",
            ],
        ),
        (
            "exec:true\n  exec:sh -c 'test -d /'\nhttp://127.0.0.1:3/health#status=200,204\n",
            &[
                "exec:true",
                "exec:sh -c 'test -d /'",
                "http://127.0.0.1:3/health",
            ],
        ),
    ];
    for (variable, targets) in cases {
        let finished = holdup()
            .args(["--dry-run", "--log-format", "json"])
            .env("HOLDUP_WAIT_FOR", variable)
            .run();
        finished.code(0);
        let planned: Vec<String> = finished
            .json_lines()
            .iter()
            .filter(|line| line["part"] == "target")
            .map(|line| line["target"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(planned, *targets, "{variable:?}");
    }
}
