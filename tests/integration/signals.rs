//! SIGTERM, SIGINT and SIGHUP end the wait at once with 143, 130 and 129, also for holdup
//! as PID 1 of a PID namespace, where the kernel applies no default action to them.

use crate::support::net::ClosedPort;
use crate::support::{Holdup, SOON, holdup, need, send_signal};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

#[test]
fn sigterm_sigint_and_sighup_end_the_wait() {
    for (signal, code, name) in [
        (SIGTERM, 143, "SIGTERM"),
        (SIGINT, 130, "SIGINT"),
        (SIGHUP, 129, "SIGHUP"),
    ] {
        let closed = ClosedPort::new();
        let target = format!("tcp://{}", closed.address());
        let mut running = holdup().args(["-w", &target, "-t", "60s"]).spawn();
        running.wait_for_line("waiting for");
        running.assert_still_running();
        running.signal(signal);
        // At once: long before the 60 s deadline.
        running
            .finish_within(SOON)
            .code(code)
            .stderr_has(&format!("stopped by {name} after"))
            .stderr_has(&format!("not ready: {target} ("));
    }
}

#[test]
fn sigterm_ends_the_wait_when_holdup_is_pid_1() {
    // Needs root (or user namespaces); CI runs as root, so there this always runs.
    if need("the PID 1 test", can_unshare()).is_none() {
        return;
    }
    let closed = ClosedPort::new();
    let running = Holdup::wrapped_in("unshare", &["--pid", "--fork", "--kill-child"])
        .args(["-w", &format!("tcp://{}", closed.address()), "-t", "60s"])
        .spawn();
    running.wait_for_line("waiting for");
    let holdup_pid = only_child(running.pid());
    assert_eq!(
        pid_in_own_namespace(holdup_pid),
        1,
        "holdup is not PID 1 in its namespace"
    );
    send_signal(holdup_pid, SIGTERM);
    // unshare exits with its child's exit code.
    running.finish().code(143).stderr_has("stopped by SIGTERM");
}

pub(crate) fn can_unshare() -> Result<(), String> {
    match std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "cannot create a PID namespace: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("cannot run unshare: {error}")),
    }
}

/// The one child of process `pid`.
pub(crate) fn only_child(pid: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let children: Vec<u32> = children
        .split_whitespace()
        .map(|child| child.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 1, "children of {pid}: {children:?}");
    children[0]
}

/// The PID process `pid` has in its own PID namespace (the last NSpid field).
pub(crate) fn pid_in_own_namespace(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("NSpid:"))
        .unwrap();
    line.split_whitespace().last().unwrap().parse().unwrap()
}
