//! The live view, through a real pseudo-terminal (`script` from util-linux runs holdup on
//! one and copies what the terminal received to its stdout): one line per target redrawn
//! in place beneath the usual lines, the final state left on screen; nothing of it when
//! stderr is no terminal or the terminal is dumb, and no colour with NO_COLOR.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::net::ClosedPort;
use crate::support::{Finished, Holdup, holdup, need};

/// What moves the cursor back over a view of two lines and clears below it.
const REDRAW: &str = "\x1b[2A\r\x1b[J";

/// An `exec:` target that is ready on its fourth attempt, whatever the clock says.
fn ready_on_fourth_attempt(dir: &std::path::Path) -> String {
    let script = dir.join("fourth.sh");
    let count = dir.join("count");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0)\necho $((n + 1)) > {count}\n[ \"$n\" -ge 3 ]\n",
            count = count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("exec:{}", script.display())
}

fn script() -> Result<(), String> {
    match std::process::Command::new("script")
        .arg("--version")
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err("script (util-linux) is not installed".into()),
    }
}

/// holdup `args` on a pseudo-terminal, with `env` set; what the terminal received is the
/// run's stdout.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let command_line = std::iter::once(env!("CARGO_BIN_EXE_holdup"))
        .chain(args.iter().copied())
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // -e: script exits with holdup's exit code.
    let mut run = Holdup::command_line("script", &["-qec", &command_line, "/dev/null"]);
    for (name, value) in env {
        run = run.env(name, value);
    }
    run.run()
}

/// The view as the terminal shows it at the end: what follows the last redraw.
fn last_view(screen: &str) -> Vec<String> {
    let last = screen.rsplit("\r\x1b[J").next().unwrap_or_default();
    last.lines()
        .map(|line| line.trim_end_matches('\r').to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn one_line_per_target_is_redrawn_in_place_and_the_final_state_stays() {
    if need("the live view test", script()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready = ready_on_fourth_attempt(dir.path());
    let closed = ClosedPort::new();
    let down = format!("tcp://{}", closed.address());
    let finished = on_a_terminal(
        &["-w", &ready, "-w", &down, "-t", "2s"],
        &[("TERM", "xterm-256color")],
    );
    finished.code(1);
    let screen = &finished.stdout;

    // Redrawn in place, at most 10 times a second (and once around each log line).
    let redraws = screen.matches(REDRAW).count();
    let log_lines = screen.matches("holdup: ").count();
    assert!(redraws >= 5, "{redraws} redraws: {screen:?}");
    assert!(
        redraws as f64 <= finished.elapsed.as_secs_f64() * 10.0 + log_lines as f64 + 2.0,
        "{redraws} redraws in {:?}",
        finished.elapsed
    );
    // The usual lines are kept, above the view.
    assert!(
        screen.contains(&format!("holdup: waiting for {down}: ")),
        "{screen:?}"
    );
    assert!(
        screen.contains(&format!("holdup: {ready} ready after ")),
        "{screen:?}"
    );
    assert!(
        screen.contains(&format!("holdup: {down} not ready after 2.00s: ")),
        "{screen:?}"
    );

    // The final state, coloured by state.
    let view = last_view(screen);
    assert_eq!(view.len(), 2, "{view:?}");
    assert!(
        view[0].starts_with(&format!("\x1b[32mready\x1b[0m     {ready}")),
        "{view:?}"
    );
    assert!(view[0].contains(" 4 attempts"), "{view:?}");
    assert!(
        view[1].starts_with(&format!("\x1b[31mnot ready\x1b[0m {down}")),
        "{view:?}"
    );
    // Cut to the terminal's 80 columns, so that no line wraps and moves the view.
    assert!(view[1].ends_with('…'), "{view:?}");
    let shown = |line: &str| {
        line.replace("\x1b[32m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[0m", "")
    };
    assert!(
        view.iter().all(|line| shown(line).chars().count() <= 79),
        "{view:?}"
    );
}

#[test]
fn no_colour_with_no_color_and_no_view_on_a_dumb_terminal() {
    if need("the live view test", script()).is_none() {
        return;
    }
    let closed = ClosedPort::new();
    let down = format!("tcp://{}", closed.address());
    let args = ["-w", down.as_str(), "-t", "500ms"];

    let plain = on_a_terminal(&args, &[("TERM", "xterm"), ("NO_COLOR", "1")]);
    plain.code(1);
    assert!(
        plain.stdout.contains("\x1b[1A\r\x1b[J"),
        "{:?}",
        plain.stdout
    );
    assert!(!plain.stdout.contains("\x1b[3"), "{:?}", plain.stdout);
    let view = last_view(&plain.stdout);
    assert!(
        view[0].starts_with(&format!("not ready {down}")),
        "{view:?}"
    );

    let dumb = on_a_terminal(&args, &[("TERM", "dumb")]);
    dumb.code(1);
    assert!(!dumb.stdout.contains('\x1b'), "{:?}", dumb.stdout);
    assert!(
        dumb.stdout
            .contains(&format!("holdup: {down} not ready after"))
    );
}

#[test]
fn no_view_when_stderr_is_no_terminal() {
    let closed = ClosedPort::new();
    let finished = holdup()
        .args(["-w", &format!("tcp://{}", closed.address()), "-t", "500ms"])
        .env("TERM", "xterm")
        .run();
    finished.code(1);
    assert!(!finished.stderr.contains('\x1b'), "{:?}", finished.stderr);
}

/// 2,000 targets from --targets-from on a terminal of 24 lines: each redraw is a
/// screenful ending with the count of the rest, and the burst of their log lines does not
/// redraw the view under each of them.
#[test]
fn a_long_list_is_a_screenful_and_its_count() {
    if need("the live view test", script()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let list: String = (0..2_000)
        .map(|n| format!("file://{}/missing-{n}\n", dir.path().display()))
        .collect();
    let file = dir.path().join("targets");
    std::fs::write(&file, list).unwrap();
    let finished = on_a_terminal(
        &["--targets-from", &file.display().to_string(), "-t", "1s"],
        &[("TERM", "xterm-256color")],
    );
    finished.code(1);
    let screen = &finished.stdout;

    let view = last_view(screen);
    assert!(view.len() <= 23, "{} lines: {view:?}", view.len());
    assert_eq!(
        view.last().map(String::as_str),
        Some("… and 1979 more targets"),
        "{view:?}"
    );
    // Each target's log lines once, and the view at most a screenful each tenth of a
    // second (and around the few log lines apart from the burst).
    let view_lines = screen
        .lines()
        .filter(|line| !line.contains("holdup: "))
        .count();
    let bound = 23.0 * (finished.elapsed.as_secs_f64() * 20.0 + 10.0);
    assert!(
        (view_lines as f64) <= bound,
        "{view_lines} lines of the view in {:?} (at most {bound})",
        finished.elapsed
    );
}
