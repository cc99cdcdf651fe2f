//! How a run ended, target by target, in one value: what the termination message, the
//! `--report` file and the pod's last Event are made from, so that all of them say the
//! same as the log.

use std::time::Duration;

use crate::log::human;
use crate::probe::Target;
use crate::schedule::{Board, attempts};

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every target is ready.
    Ready,
    /// The deadline passed while some were not.
    DeadlinePassed,
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
    /// The word for it in the report: `ready`, `deadline_passed`, `failed`, `signal`,
    /// `usage`, `exec_failed`, `internal`.
    pub fn word(&self) -> &'static str {
        match self {
            Ending::Ready => "ready",
            Ending::DeadlinePassed => "deadline_passed",
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
}

/// The whole run at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub exit_code: u8,
    pub ending: Ending,
    pub elapsed: Duration,
    /// The timeout the user gave, if any, as the deadline's words say it.
    pub timeout: Option<Duration>,
    pub targets: Vec<TargetEnd>,
}

impl Summary {
    /// The run as `board` saw it; `failed` is the target that failed for good, if one did.
    pub fn new(
        targets: &[Target],
        timeout: Option<Duration>,
        board: &Board,
        (ending, failed): (Ending, Option<usize>),
        exit_code: u8,
        elapsed: Duration,
    ) -> Summary {
        let targets = targets
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
                }
            })
            .collect();
        Summary {
            exit_code,
            ending,
            elapsed,
            timeout,
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
            targets: Vec::new(),
        }
    }

    /// The termination message: what ended the run when it is not the targets, then one
    /// line per target that is not ready, the one that failed for good first and those
    /// never tried last.
    pub fn termination_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.ending {
            Ending::Ready | Ending::DeadlinePassed | Ending::Failed => {}
            Ending::Signal(name) => {
                lines.push(format!("stopped by {name} after {}", human(self.elapsed)))
            }
            Ending::Usage(message) => lines.push(format!("usage: {message}")),
            Ending::ExecFailed(message) | Ending::Internal(message) => lines.push(message.clone()),
        }
        let mut pending: Vec<&TargetEnd> = self
            .targets
            .iter()
            .filter(|target| target.reason.is_some())
            .collect();
        pending.sort_by_key(|target| (!target.failed, target.attempts == 0));
        for target in pending {
            lines.push(self.target_line(target));
        }
        lines
    }

    /// The line of the termination message for a target not ready.
    pub fn target_line(&self, target: &TargetEnd) -> String {
        let reason = target.reason.as_deref().unwrap_or_default();
        let tries = attempts(target.attempts);
        match self.ending {
            _ if target.failed => format!(
                "{} failed: {reason} ({tries}); waiting cannot fix this",
                target.target
            ),
            Ending::DeadlinePassed => format!(
                "{} not ready after {}: {reason} ({tries})",
                target.target,
                human(self.timeout.unwrap_or(self.elapsed))
            ),
            _ => format!("{} not ready: {reason} ({tries})", target.target),
        }
    }
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
        }
    }

    fn summary(ending: Ending, targets: Vec<TargetEnd>) -> Summary {
        Summary {
            exit_code: 1,
            ending,
            elapsed: Duration::from_secs(61),
            timeout: Some(Duration::from_secs(60)),
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
}
