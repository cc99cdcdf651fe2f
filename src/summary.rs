//! How a run ended, target by target, in one value: what the termination message, the
//! `--report` file and the pod's last Event are made from, so that all of them say the
//! same as the log.

use std::time::Duration;

use crate::board::Board;
use crate::log::human;
use crate::probe::Target;
use crate::schedule::attempts;
use crate::wait::Goal;

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every target is ready.
    Ready,
    /// The deadline passed while some were not.
    DeadlinePassed,
    /// `--once`: every target had its attempt, and too few were ready.
    Tried,
    /// A target failed in a way waiting cannot fix.
    Failed,
    /// A signal, by name, ended the wait.
    Signal(&'static str),
    /// The command line or a target is wrong; the message says how.
    Usage(String),
    /// The command could not be run; the message says why.
    ExecFailed(String),
    /// holdup could not start.
    Internal(String),
}

impl Ending {
    /// The word for it in the report: `ready`, `deadline_passed`, `not_ready` (`--once`),
    /// `failed`, `signal`, `usage`, `exec_failed`, `internal`.
    pub fn word(&self) -> &'static str {
        match self {
            Ending::Ready => "ready",
            Ending::DeadlinePassed => "deadline_passed",
            Ending::Tried => "not_ready",
            Ending::Failed => "failed",
            Ending::Signal(_) => "signal",
            Ending::Usage(_) => "usage",
            Ending::ExecFailed(_) => "exec_failed",
            Ending::Internal(_) => "internal",
        }
    }
}

/// One target at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetEnd {
    /// As it may be shown: no password, no options.
    pub target: String,
    /// Its kind, by its first scheme (`tcp`, `postgres`, `k8s`).
    pub kind: &'static str,
    /// When it became ready, from the start.
    pub ready_after: Option<Duration>,
    /// Attempts made, one still in progress counted.
    pub attempts: u32,
    /// Why it is not ready; None when it is.
    pub reason: Option<String>,
    /// It failed for good (exit 3).
    pub failed: bool,
    /// Stopped unready because enough others were ready (`--min-ready`, `--any`).
    pub not_needed: bool,
    /// What it had to do: `#stable=N` attempts in a row, each one that fails with `#down`.
    pub goal: Goal,
    /// Attempts in a row, up to the last, that met its goal.
    pub streak: u32,
}

impl TargetEnd {
    /// `ready`, `not_ready`, `not_needed` or `failed`: the target's state in the report.
    pub fn state(&self) -> &'static str {
        match (&self.reason, self.failed, self.not_needed) {
            (None, _, _) => "ready",
            (Some(_), true, _) => "failed",
            (Some(_), false, true) => "not_needed",
            (Some(_), false, false) => "not_ready",
        }
    }
}

/// What the run was asked to do, besides the targets' records.
pub struct Asked<'a> {
    pub targets: &'a [Target],
    /// Each target's goal, in the same order.
    pub goals: &'a [Goal],
    /// Targets that had to be ready: all of them, unless `--min-ready`/`--any`.
    pub needed: usize,
    /// The timeout the user gave, if any.
    pub timeout: Option<Duration>,
}

/// The whole run at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub exit_code: u8,
    pub ending: Ending,
    pub elapsed: Duration,
    /// The timeout the user gave, if any, as the deadline's words say it.
    pub timeout: Option<Duration>,
    /// Targets that had to be ready (`--min-ready`; all of them by default).
    pub needed: usize,
    pub targets: Vec<TargetEnd>,
}

impl Summary {
    /// The run as `board` saw it; `failed` is the target that failed for good, if one did.
    pub fn new(
        asked: &Asked,
        board: &Board,
        (ending, failed): (Ending, Option<usize>),
        exit_code: u8,
        elapsed: Duration,
    ) -> Summary {
        let targets = asked
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let record = board.record(index);
                TargetEnd {
                    target: target.to_string(),
                    kind: target.kind(),
                    ready_after: record.ready_after,
                    attempts: record.attempts_started(),
                    reason: record.ready_after.is_none().then(|| record.reason()),
                    failed: failed == Some(index),
                    not_needed: record.not_needed,
                    goal: asked.goals.get(index).copied().unwrap_or_default(),
                    streak: record.streak,
                }
            })
            .collect();
        Summary {
            exit_code,
            ending,
            elapsed,
            timeout: asked.timeout,
            needed: asked.needed,
            targets,
        }
    }

    /// A run that ended before any target was probed (a usage error).
    pub fn before_waiting(ending: Ending, exit_code: u8) -> Summary {
        Summary {
            exit_code,
            ending,
            elapsed: Duration::ZERO,
            timeout: None,
            needed: 0,
            targets: Vec::new(),
        }
    }

    /// Targets ready.
    pub fn ready(&self) -> usize {
        self.targets
            .iter()
            .filter(|target| target.reason.is_none())
            .count()
    }

    /// "1 of 3 targets ready; 2 needed", when fewer than all were needed and too few were
    /// ready; as the log's `too_few` line says it.
    pub fn too_few(&self) -> Option<String> {
        let total = self.targets.len();
        let ready = self.ready();
        (self.needed < total && ready < self.needed)
            .then(|| format!("{ready} of {total} targets ready; {} needed", self.needed))
    }

    /// The termination message: what ended the run when it is not the targets (with
    /// `--min-ready`, how many were ready of how many needed), then one line per target
    /// that is not ready, the one that failed for good first and those never tried last.
    /// Targets not needed are left out: they did not hold the run back.
    pub fn termination_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.ending {
            Ending::Ready => {}
            Ending::DeadlinePassed | Ending::Tried | Ending::Failed => {
                lines.extend(self.too_few());
            }
            Ending::Signal(name) => {
                lines.push(format!("stopped by {name} after {}", human(self.elapsed)))
            }
            Ending::Usage(message) => lines.push(format!("usage: {message}")),
            Ending::ExecFailed(message) | Ending::Internal(message) => lines.push(message.clone()),
        }
        let mut pending: Vec<&TargetEnd> = self
            .targets
            .iter()
            .filter(|target| target.reason.is_some() && !target.not_needed)
            .collect();
        pending.sort_by_key(|target| (!target.failed, target.attempts == 0));
        for target in pending {
            lines.push(self.target_line(target));
        }
        lines
    }

    /// The line of the termination message for a target not ready, as the log says it.
    pub fn target_line(&self, target: &TargetEnd) -> String {
        let reason = target.reason.as_deref().unwrap_or_default();
        let tries = attempts(target.attempts);
        let name = &target.target;
        let not = not_ready_words(target.goal.down);
        match self.ending {
            _ if target.failed => {
                format!("{name} failed: {reason} ({tries}); waiting cannot fix this")
            }
            _ if target.not_needed => format!(
                "{name} not needed: {} of {} targets ready; it was not: {reason} ({tries})",
                self.ready(),
                self.targets.len()
            ),
            Ending::DeadlinePassed => format!(
                "{name} {not} after {}: {reason} ({tries})",
                human(self.timeout.unwrap_or(self.elapsed))
            ),
            _ => format!("{name} {not}: {reason} ({tries})"),
        }
    }
}

/// What a target that has not met its goal is: "not ready", or with `#down` "not down"
/// (it still answers).
pub fn not_ready_words(down: bool) -> &'static str {
    if down { "not down" } else { "not ready" }
}

/// What a target that met its goal is: "ready", or with `#down` "down".
pub fn ready_words(down: bool) -> &'static str {
    if down { "down" } else { "ready" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, attempts: u32, reason: Option<&str>, failed: bool) -> TargetEnd {
        TargetEnd {
            target: name.into(),
            kind: "tcp",
            ready_after: reason.is_none().then(|| Duration::from_secs(1)),
            attempts,
            reason: reason.map(String::from),
            failed,
            not_needed: false,
            goal: Goal::default(),
            streak: 0,
        }
    }

    fn summary(ending: Ending, targets: Vec<TargetEnd>) -> Summary {
        Summary {
            exit_code: 1,
            ending,
            elapsed: Duration::from_secs(61),
            timeout: Some(Duration::from_secs(60)),
            needed: targets.len(),
            targets,
        }
    }

    #[test]
    fn the_deadline_names_each_target_not_ready_with_the_timeout_given() {
        let lines = summary(
            Ending::DeadlinePassed,
            vec![
                target("tcp://a:1", 0, Some("not tried yet"), false),
                target("tcp://b:1", 3, None, false),
                target("tcp://c:1", 12, Some("connection refused"), false),
            ],
        )
        .termination_lines();
        assert_eq!(
            lines,
            [
                "tcp://c:1 not ready after 1m: connection refused (12 attempts)",
                "tcp://a:1 not ready after 1m: not tried yet (0 attempts)",
            ]
        );
    }

    #[test]
    fn the_target_that_failed_for_good_comes_first() {
        let lines = summary(
            Ending::Failed,
            vec![
                target("tcp://a:1", 4, Some("refused"), false),
                target("k8s://job/migrate", 1, Some("the Job failed"), true),
            ],
        )
        .termination_lines();
        assert_eq!(
            lines,
            [
                "k8s://job/migrate failed: the Job failed (1 attempt); waiting cannot fix this",
                "tcp://a:1 not ready: refused (4 attempts)",
            ]
        );
    }

    #[test]
    fn what_ended_the_run_comes_before_the_targets() {
        let signal = summary(
            Ending::Signal("SIGTERM"),
            vec![target("tcp://a:1", 2, Some("refused"), false)],
        );
        assert_eq!(
            signal.termination_lines(),
            [
                "stopped by SIGTERM after 1m1s",
                "tcp://a:1 not ready: refused (2 attempts)"
            ]
        );
        let usage = Summary::before_waiting(Ending::Usage("bad target".into()), 2);
        assert_eq!(usage.termination_lines(), ["usage: bad target"]);
        assert_eq!(usage.ending.word(), "usage");
    }

    #[test]
    fn too_few_comes_first_and_targets_not_needed_or_down_say_so() {
        let mut down = target(
            "tcp://old:1",
            5,
            Some("still answers: accepted a connection"),
            false,
        );
        down.goal.down = true;
        let mut spare = target("tcp://c:1", 2, Some("refused"), false);
        spare.not_needed = true;
        let mut run = summary(
            Ending::Tried,
            vec![down, target("tcp://b:1", 1, Some("refused"), false), spare],
        );
        run.needed = 2;
        assert_eq!(
            run.termination_lines(),
            [
                "0 of 3 targets ready; 2 needed",
                "tcp://old:1 not down: still answers: accepted a connection (5 attempts)",
                "tcp://b:1 not ready: refused (1 attempt)",
            ]
        );
        assert_eq!(run.ending.word(), "not_ready");
        let states: Vec<_> = run.targets.iter().map(TargetEnd::state).collect();
        assert_eq!(states, ["not_ready", "not_ready", "not_needed"]);
    }
}
