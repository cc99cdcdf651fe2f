//! `-- CMD ARGS`: once ready, holdup becomes CMD (same PID, environment, stdio; CMD's exit
//! code); when CMD cannot be run, 126 or 127; when not ready, CMD never runs.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::holdup;
use crate::support::net::ClosedPort;

fn ready_target() -> (String, crate::support::net::Listening) {
    let port = ClosedPort::new();
    let target = format!("tcp://{}", port.address());
    (target, port.open())
}

#[test]
fn the_command_replaces_holdup() {
    let (target, _listening) = ready_target();
    let running = holdup()
        .env("GREETING", "hello")
        .args([
            "-w",
            &target,
            "--",
            "sh",
            "-c",
            "echo \"$$ $GREETING $1\"; exit 7",
            "sh",
            "world",
        ])
        .spawn();
    let pid = running.pid();
    let finished = running.finish();
    finished.code(7);
    assert_eq!(
        finished.stdout,
        format!("{pid} hello world\n"),
        "not the same process, or env/args lost"
    );
}

#[test]
fn a_missing_command_exits_127_and_a_non_executable_one_126() {
    let (target, _listening) = ready_target();
    holdup()
        .args(["-w", &target, "--", "no-such-command-anywhere"])
        .run()
        .code(127)
        .stderr_has("cannot run no-such-command-anywhere: not found in PATH");
    holdup()
        .args(["-w", &target, "--", "/nonexistent/app"])
        .run()
        .code(127)
        .stderr_has("no such file");

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("app");
    std::fs::write(&script, "#!/bin/sh\necho never\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let finished = holdup().args(["-w", &target, "--"]).arg(&script).run();
    finished.code(126).stderr_has("permission denied");
    assert_eq!(finished.stdout, "");
}

#[test]
fn the_command_does_not_run_when_a_target_is_not_ready() {
    let closed = ClosedPort::new();
    let finished = holdup()
        .args([
            "-w",
            &format!("tcp://{}", closed.address()),
            "-t",
            "200ms",
            "--",
            "echo",
            "ran",
        ])
        .run();
    finished.code(1);
    assert_eq!(finished.stdout, "");
}
