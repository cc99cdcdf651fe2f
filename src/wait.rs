//! The wait: every target probed concurrently, each in its own loop (attempt, record it on
//! the [`Board`], sleep as the [`Schedule`] says), and when the whole run is over: all
//! targets ready, or `--min-ready N` of them, or one attempt each (`--once`), or a target
//! failed for good, or the deadline passed. Generic over the target: it knows attempts, not
//! probes.
//!
//! What a target must do to count as ready is its [`Goal`]: meet its goal `#stable=N`
//! attempts in a row, spaced by `interval` (a failure starts the count again), where the
//! goal is an attempt that succeeds, or with `#down` one that fails.
//!
//! An attempt may be a long poll (a Kubernetes watch): it marks its [`Stage`] as waiting,
//! with the reason the target is not ready, and keeps its connection open. When such an
//! attempt runs out of time, that reason is recorded (not "timed out"), and the next
//! attempt starts at once: it takes up the same open connection, so it costs the server
//! nothing, and a change is seen the moment it is sent. Backoff applies to failures.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tracing::{debug, info};

use crate::attempt::{Failure, Stage};
use crate::board::Board;
use crate::log::{human, millis};
use crate::pace::Pace;
use crate::schedule::{Backoff, Schedule, attempts, jittered, timeout_words};

/// Why a target of a long list was never tried: the attempts in flight are bounded by the
/// limit of open files, and others held every place until the deadline.
const NO_TURN: &str = "not tried before the deadline: every place among the attempts in \
     flight was taken (the limit of open files bounds them)";

/// What one target must do to count as ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goal {
    /// Attempts in a row that must meet the goal (1 or more).
    pub stable: u32,
    /// The goal is a failed attempt: the target is gone.
    pub down: bool,
}

impl Default for Goal {
    fn default() -> Self {
        Goal {
            stable: 1,
            down: false,
        }
    }
}

/// When the run is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Until {
    /// Targets that must be ready (all of them unless `--min-ready`/`--any`).
    pub min_ready: usize,
    /// One chance per target (`--once`): one attempt, or with `#stable=N` up to N.
    pub once: bool,
}

/// How the wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Enough targets are ready.
    Ready,
    DeadlinePassed,
    /// `--once`: every target had its chance, too few were ready.
    Tried,
    /// This target failed for good, and without it too few can be ready.
    Permanent(usize),
}

/// How the wait for one target ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Ready,
    DeadlinePassed,
    Tried,
    Permanent,
}

/// Probes every target concurrently until the run is over (see [`Until`]). `check` makes
/// one attempt on a target; `goals` gives each target's, in the same order.
pub async fn wait<'a, T, C, F>(
    targets: &'a [T],
    goals: &[Goal],
    until: Until,
    schedule: &Schedule,
    deadline: Option<Instant>,
    board: &Board,
    check: C,
) -> Outcome
where
    T: Display,
    C: Fn(&'a T, Stage) -> F,
    F: Future<Output = Result<(), Failure>>,
{
    let start = Instant::now();
    let check = &check;
    let pace = Pace::new(&schedule.limits);
    let pace = &pace;
    let mut waiting: FuturesUnordered<_> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let goal = goals.get(index).copied().unwrap_or_default();
            let one = Loop {
                index,
                target,
                goal,
                once: until.once,
                schedule,
                start,
                deadline,
                board,
                pace,
            };
            async move { (index, one.run(check).await) }
        })
        .collect();
    let mut permanent = None;
    let mut out = 0;
    while let Some((index, end)) = waiting.next().await {
        match end {
            End::Ready if board.ready() >= until.min_ready => {
                // The others are dropped, with any attempt in progress.
                for other in 0..board.len() {
                    let mut record = board.record_mut(other);
                    if record.ready_after.is_none() {
                        record.not_needed = true;
                    }
                }
                return Outcome::Ready;
            }
            End::Ready | End::DeadlinePassed => {}
            End::Tried => out += 1,
            End::Permanent => {
                out += 1;
                permanent.get_or_insert(index);
            }
        }
        // Without --once, the wait ends as soon as enough targets are out of it for good;
        // with it, every attempt is let finish, so that each target has its own reason.
        if let Some(index) = permanent
            && !until.once
            && targets.len() - out < until.min_ready
        {
            return Outcome::Permanent(index);
        }
    }
    match permanent {
        Some(index) => Outcome::Permanent(index),
        None if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
            Outcome::DeadlinePassed
        }
        None if until.once => Outcome::Tried,
        None => Outcome::DeadlinePassed,
    }
}

/// Returns once `stage` says its attempt waits on a target that is not ready, looking
/// every `every`.
async fn until_waiting(stage: &Stage, every: Duration) {
    while stage.waiting_reason().is_none() {
        tokio::time::sleep(every).await;
    }
}

/// Makes one attempt within `budget`. `Ok(None)`: with `#down`, a long poll said its target
/// is not ready, which is what `#down` waits for (there is no need to wait for the poll to
/// time out); `Err`: the attempt ran out of time.
pub async fn attempt_toward<F>(
    goal: Goal,
    attempt: F,
    stage: &Stage,
    budget: Duration,
    every: Duration,
) -> Result<Option<Result<(), Failure>>, tokio::time::error::Elapsed>
where
    F: Future<Output = Result<(), Failure>>,
{
    if goal.down {
        timeout(budget, async {
            tokio::select! {
                result = attempt => Some(result),
                () = until_waiting(stage, every) => None,
            }
        })
        .await
    } else {
        timeout(budget, attempt).await.map(Some)
    }
}

/// Whether what an attempt saw meets the goal (`down`: `#down`), and the reason to record:
/// why the target is not ready, or with `#down` what it answered.
pub fn judge(seen: Seen, down: bool) -> (bool, Option<String>) {
    match (seen, down) {
        (Seen::Up(_), false) => (true, None),
        (Seen::Down { reason, .. }, false) => (false, Some(reason)),
        (Seen::Up(answer), true) => (
            false,
            Some(match answer {
                Some(answer) => format!("still answers: {answer}"),
                None => "still ready (an attempt succeeded)".to_string(),
            }),
        ),
        (
            Seen::Down {
                reason, answered, ..
            },
            true,
        ) => (
            true,
            Some(if answered {
                format!("answers, but not as asked: {reason}")
            } else {
                reason
            }),
        ),
    }
}

/// The loop of one target.
struct Loop<'a, 'b, T> {
    index: usize,
    target: &'a T,
    goal: Goal,
    once: bool,
    schedule: &'b Schedule,
    start: Instant,
    deadline: Option<Instant>,
    board: &'b Board,
    /// The budget all targets share: places in flight, retries a second.
    pace: &'b Pace,
}

/// What one finished attempt came to.
pub enum Seen {
    /// The attempt succeeded; what the target answered, if the probe said.
    Up(Option<String>),
    /// The attempt failed, for this reason; `answered` if the target answered first.
    Down {
        reason: String,
        answered: bool,
        long_poll: bool,
    },
}

impl<'a, T: Display> Loop<'a, '_, T> {
    async fn run<C, F>(&self, check: &C) -> End
    where
        C: Fn(&'a T, Stage) -> F,
        F: Future<Output = Result<(), Failure>>,
    {
        let (target, goal, schedule) = (self.target, self.goal, self.schedule);
        let mut backoff = Backoff::new(schedule);
        loop {
            // Held until the attempt ends; waiting for it never outlasts the deadline. Every
            // attempt after the first is a retry, those of a #stable streak included.
            let retry = self.board.record(self.index).attempts > 0;
            let admitted = self.pace.admit(retry);
            let slot = match self.deadline {
                Some(deadline) => match timeout_at(deadline, admitted).await {
                    Ok(slot) => slot,
                    Err(_) => return self.no_turn(),
                },
                None => admitted.await,
            };
            let now = Instant::now();
            let time_left = self
                .deadline
                .map(|deadline| deadline.saturating_duration_since(now));
            if time_left == Some(Duration::ZERO) {
                return self.no_turn();
            }
            let budget = time_left.map_or(schedule.attempt_timeout, |left| {
                left.min(schedule.attempt_timeout)
            });
            let cut_by_deadline = budget < schedule.attempt_timeout;

            let stage = Stage::default();
            self.board.record_mut(self.index).start(&stage);
            let attempt = check(target, stage.clone());
            let result = attempt_toward(goal, attempt, &stage, budget, schedule.interval).await;
            drop(slot);
            // The record is let go before any sleep.
            let delay = {
                let mut record = self.board.record_mut(self.index);
                record.finish();
                let seen = match result {
                    Ok(Some(Ok(()))) => Seen::Up(stage.answer()),
                    Ok(Some(Err(Failure::Permanent(error)))) => {
                        record.last_error = Some(format!("{error:#}"));
                        return End::Permanent;
                    }
                    Ok(Some(Err(Failure::NotReady(error)))) => Seen::Down {
                        reason: format!("{error:#}"),
                        answered: stage.answer().is_some(),
                        long_poll: false,
                    },
                    // A long poll that said its target is not ready: what #down waits for.
                    Ok(None) => Seen::Down {
                        reason: stage.waiting_reason().unwrap_or_default(),
                        answered: true,
                        long_poll: true,
                    },
                    // A long poll that ran out of time knows why its target is not ready.
                    Err(_) if stage.waiting_reason().is_some() => {
                        let reason = stage.waiting_reason().unwrap_or_default();
                        if cut_by_deadline && !goal.down {
                            record.last_error = Some(reason);
                            return End::DeadlinePassed;
                        }
                        Seen::Down {
                            reason,
                            answered: true,
                            long_poll: true,
                        }
                    }
                    // An attempt cut short by the deadline says less than the complete one
                    // before it, and proves nothing.
                    Err(_) if cut_by_deadline && record.last_error.is_some() => {
                        return End::DeadlinePassed;
                    }
                    Err(_) => Seen::Down {
                        reason: timeout_words(budget, &stage.get()),
                        answered: false,
                        long_poll: false,
                    },
                };

                let long_poll = matches!(
                    seen,
                    Seen::Down {
                        long_poll: true,
                        ..
                    }
                );
                let (met, reason) = judge(seen, goal.down);
                let waited = self.start.elapsed();
                if met {
                    record.streak += 1;
                    if record.streak >= goal.stable {
                        record.ready_after = Some(waited);
                        record.last_error = None;
                        self.say_ready(&record.attempts, waited, reason.as_deref());
                        return End::Ready;
                    }
                    let progress = format!(
                        "{} {} of {} times in a row so far",
                        if goal.down { "seen down" } else { "seen ready" },
                        record.streak,
                        goal.stable
                    );
                    debug!(
                        event = "attempt",
                        target = %target,
                        attempt = record.attempts,
                        streak = record.streak,
                        "{target}: attempt {} {progress}",
                        record.attempts
                    );
                    record.last_error = Some(progress);
                    // The attempts of a streak are spaced by the interval, whatever came before.
                    schedule.interval
                } else {
                    let error = reason.unwrap_or_default();
                    let broke = record.streak > 0;
                    record.streak = 0;
                    if self.once {
                        record.last_error = Some(error);
                        return End::Tried;
                    }
                    let delay = if long_poll {
                        Duration::ZERO
                    } else {
                        jittered(backoff.next(waited), schedule.jitter)
                    };
                    if record.last_error.as_deref() != Some(error.as_str()) {
                        let again = if broke {
                            format!(" (the count of {} starts again)", goal.stable)
                        } else {
                            String::new()
                        };
                        info!(event = "waiting", target = %target, error = %error, attempts = record.attempts, "waiting for {target}: {error}{again}");
                    }
                    debug!(
                        event = "attempt",
                        target = %target,
                        error = %error,
                        attempt = record.attempts,
                        next_in_ms = millis(delay),
                        "{target}: attempt {} failed: {error}; next in {}",
                        record.attempts,
                        human(delay)
                    );
                    record.last_error = Some(error);
                    delay
                }
            };

            let wake = Instant::now() + delay;
            match self.deadline {
                Some(deadline) if wake >= deadline => {
                    sleep_until(deadline).await;
                    return End::DeadlinePassed;
                }
                _ => sleep_until(wake).await,
            }
        }
    }

    /// The deadline passed before an attempt could start: a target never tried says why.
    fn no_turn(&self) -> End {
        let mut record = self.board.record_mut(self.index);
        if record.attempts == 0 && record.last_error.is_none() {
            record.last_error = Some(NO_TURN.to_string());
        }
        End::DeadlinePassed
    }

    fn say_ready(&self, tries: &u32, waited: Duration, down_reason: Option<&str>) {
        let target = self.target;
        let tries = *tries;
        let in_a_row = if self.goal.stable > 1 {
            format!(", {} in a row", self.goal.stable)
        } else {
            String::new()
        };
        match down_reason.filter(|_| self.goal.down) {
            Some(reason) => info!(
                event = "ready",
                target = %target,
                down = true,
                reason = %reason,
                elapsed_ms = millis(waited),
                attempts = tries,
                "{target} down after {} ({}{in_a_row}): {reason}",
                human(waited),
                attempts(tries)
            ),
            None => info!(
                event = "ready",
                target = %target,
                elapsed_ms = millis(waited),
                attempts = tries,
                "{target} ready after {} ({}{in_a_row})",
                human(waited),
                attempts(tries)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use anyhow::anyhow;

    use super::*;
    use crate::pace::Limits;

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_millis(100),
            backoff_after: Duration::from_millis(1_500),
            steady_interval: Duration::from_millis(700),
            slow_after: Duration::from_secs(120),
            max_interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            jitter: 0.0,
            limits: Limits::default(),
        }
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    const ALL_OF_ONE: Until = Until {
        min_ready: 1,
        once: false,
    };

    fn all(targets: usize) -> Until {
        Until {
            min_ready: targets,
            once: false,
        }
    }

    /// `wait` with every target's goal `goal`.
    async fn run<'a, C, F>(
        targets: &'a [&'static str],
        goal: Goal,
        until: Until,
        schedule: &Schedule,
        deadline: Option<Instant>,
        board: &Board,
        check: C,
    ) -> Outcome
    where
        C: Fn(&'a &'static str, Stage) -> F,
        F: Future<Output = Result<(), Failure>>,
    {
        let goals = vec![goal; targets.len()];
        wait(targets, &goals, until, schedule, deadline, board, check).await
    }

    /// A probe that answers as `script` says, attempt after attempt (`true`: ready), then
    /// ready for good.
    fn scripted(
        script: &'static [bool],
    ) -> impl Fn(&&str, Stage) -> std::future::Ready<Result<(), Failure>> {
        let calls = Cell::new(0);
        move |_, stage| {
            let call = calls.get();
            calls.set(call + 1);
            std::future::ready(if script.get(call).copied().unwrap_or(true) {
                stage.answered("accepted a connection");
                Ok(())
            } else {
                Err(anyhow!("connection refused").into())
            })
        }
    }

    /// A probe that fails `failures` times, then succeeds.
    fn ready_after(
        failures: u32,
    ) -> impl Fn(&&str, Stage) -> std::future::Ready<Result<(), Failure>> {
        let calls = Cell::new(0);
        move |_, _| {
            calls.set(calls.get() + 1);
            std::future::ready(if calls.get() > failures {
                Ok(())
            } else {
                Err(anyhow!("connection refused").into())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_a_few_attempts() {
        let board = Board::new(1);
        let start = Instant::now();
        let outcome = run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule(),
            None,
            &board,
            ready_after(3),
        )
        .await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 4);
        assert_eq!(board.record(0).ready_after, Some(ms(300)));
        assert_eq!(start.elapsed(), ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_ends_the_wait_exactly() {
        let board = Board::new(1);
        let start = Instant::now();
        let deadline = Some(start + Duration::from_secs(2));
        let outcome = run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule(),
            deadline,
            &board,
            ready_after(u32::MAX),
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let record = board.record(0);
        // 16 attempts 100 ms apart (0 to 1.5 s), one 200 ms later; the next, 400 ms
        // after that, would be past the deadline.
        assert_eq!(record.attempts, 17);
        assert_eq!(record.reason(), "connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_at_the_deadline_and_says_where_it_hung() {
        let board = Board::new(1);
        let start = Instant::now();
        let hang = |_: &&str, stage: Stage| async move {
            stage.set("connecting to 10.0.0.1:5432");
            std::future::pending::<()>().await;
            Ok(())
        };
        let outcome = run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule(),
            Some(start + ms(1_500)),
            &board,
            hang,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), ms(1_500));
        assert_eq!(
            board.record(0).reason(),
            "timed out after 1.50s while connecting to 10.0.0.1:5432"
        );
        assert_eq!(board.record(0).attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_time_out_and_the_earlier_reason_survives_a_cut() {
        let board = Board::new(1);
        let start = Instant::now();
        let schedule = Schedule {
            attempt_timeout: Duration::from_secs(1),
            ..schedule()
        };
        let hang = |_: &&str, _: Stage| std::future::pending::<Result<(), Failure>>();
        let outcome = run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule,
            Some(start + ms(2_500)),
            &board,
            hang,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), ms(2_500));
        // 0–1 s timed out, 1.1–2.1 s timed out, 2.3–2.5 s cut by the deadline.
        assert_eq!(board.record(0).attempts, 3);
        assert_eq!(board.record(0).reason(), "timed out after 1.00s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_poll_is_continued_at_once_and_reports_its_reason() {
        let board = Board::new(1);
        let start = Instant::now();
        let calls = Cell::new(0);
        let watch = |_: &&str, stage: Stage| {
            calls.set(calls.get() + 1);
            async move {
                stage.set("watching");
                stage.waiting("0 of 1 endpoints ready");
                std::future::pending::<Result<(), Failure>>().await
            }
        };
        let outcome = run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule(),
            Some(start + ms(12_000)),
            &board,
            watch,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), ms(12_000));
        // 0–5 s, 5–10 s, 10–12 s: no pause between them, no "timed out".
        assert_eq!(calls.get(), 3);
        assert_eq!(board.record(0).attempts, 3);
        assert_eq!(board.record(0).reason(), "0 of 1 endpoints ready");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_ends_everything_at_once() {
        let board = Board::new(2);
        let start = Instant::now();
        let check = |name: &&str, _: Stage| {
            let permanent = *name == "job";
            async move {
                if permanent {
                    tokio::time::sleep(ms(50)).await;
                    Err(Failure::Permanent(anyhow!("the Job failed")))
                } else {
                    Err(anyhow!("refused").into())
                }
            }
        };
        let outcome = run(
            &["db", "job"],
            Goal::default(),
            all(2),
            &schedule(),
            None,
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::Permanent(1));
        assert_eq!(start.elapsed(), ms(50));
        assert_eq!(board.record(1).reason(), "the Job failed");
    }

    #[tokio::test(start_paused = true)]
    async fn targets_are_probed_concurrently() {
        let board = Board::new(2);
        let start = Instant::now();
        let check = |name: &&str, _: Stage| {
            let hangs = *name == "stuck";
            async move {
                if hangs {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        };
        let outcome = run(
            &["stuck", "fine"],
            Goal::default(),
            all(2),
            &schedule(),
            Some(start + ms(1_000)),
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(board.record(1).ready_after, Some(Duration::ZERO));
        assert_eq!(board.record(0).ready_after, None);
    }

    /// Attempts made against a port closed for `outage`, jitter on.
    async fn attempts_over(outage: Duration) -> u32 {
        let board = Board::new(1);
        let start = Instant::now();
        let schedule = Schedule {
            jitter: crate::schedule::JITTER,
            ..schedule()
        };
        run(
            &["a"],
            Goal::default(),
            ALL_OF_ONE,
            &schedule,
            Some(start + outage),
            &board,
            ready_after(u32::MAX),
        )
        .await;
        board.record(0).attempts
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_outage_is_probed_gently() {
        // At most 2 attempts a second over 30 s (about 57 without jitter), at most 1 over
        // 10 minutes (about 427); yet the first seconds are quick.
        let thirty = attempts_over(Duration::from_secs(30)).await;
        assert!((50..=60).contains(&thirty), "{thirty} attempts in 30 s");
        let ten_minutes = attempts_over(Duration::from_secs(600)).await;
        assert!(
            (380..=480).contains(&ten_minutes),
            "{ten_minutes} attempts in 10 minutes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stable_needs_attempts_in_a_row_spaced_by_the_interval() {
        let board = Board::new(1);
        let start = Instant::now();
        // Ready, ready, refused (the count starts again), then ready three times.
        let goal = Goal {
            stable: 3,
            down: false,
        };
        let check = scripted(&[true, true, false, true, true, true]);
        let outcome = run(&["a"], goal, ALL_OF_ONE, &schedule(), None, &board, check).await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 6);
        assert_eq!(board.record(0).ready_after, Some(ms(500)));
        assert_eq!(start.elapsed(), ms(500));
    }

    #[tokio::test(start_paused = true)]
    async fn stable_at_the_deadline_says_how_far_it_got() {
        let board = Board::new(1);
        let start = Instant::now();
        let goal = Goal {
            stable: 5,
            down: false,
        };
        let check = scripted(&[false, true, true, false, true, true]);
        let schedule = Schedule {
            interval: ms(1_000),
            ..schedule()
        };
        let outcome = run(
            &["a"],
            goal,
            ALL_OF_ONE,
            &schedule,
            Some(start + ms(5_500)),
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(
            board.record(0).reason(),
            "seen ready 2 of 5 times in a row so far"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn down_is_ready_when_an_attempt_fails() {
        let board = Board::new(1);
        let goal = Goal {
            stable: 1,
            down: true,
        };
        let check = |_: &&str, _: Stage| std::future::ready(Ok::<(), Failure>(()));
        let outcome = run(
            &["a"],
            goal,
            ALL_OF_ONE,
            &schedule(),
            Some(Instant::now() + ms(250)),
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(
            board.record(0).reason(),
            "still ready (an attempt succeeded)"
        );

        // Answers twice, then refuses.
        let board = Board::new(1);
        let check = scripted(&[true, true, false]);
        let outcome = run(&["a"], goal, ALL_OF_ONE, &schedule(), None, &board, check).await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 3);
        assert_eq!(board.record(0).ready_after, Some(ms(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn down_ends_a_long_poll_as_soon_as_it_says_not_ready() {
        let board = Board::new(1);
        let start = Instant::now();
        let goal = Goal {
            stable: 1,
            down: true,
        };
        let watch = |_: &&str, stage: Stage| async move {
            stage.set("watching");
            tokio::time::sleep(ms(250)).await;
            stage.waiting("0 of 1 endpoints ready");
            std::future::pending::<Result<(), Failure>>().await
        };
        let outcome = run(&["a"], goal, ALL_OF_ONE, &schedule(), None, &board, watch).await;
        assert_eq!(outcome, Outcome::Ready);
        // Seen at the first look after it was said, one interval apart.
        assert_eq!(start.elapsed(), ms(300));
        assert_eq!(board.record(0).attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn down_and_stable_need_failures_in_a_row() {
        let board = Board::new(1);
        let goal = Goal {
            stable: 3,
            down: true,
        };
        let check = |_: &&str, _: Stage| std::future::ready(Err(anyhow!("refused").into()));
        let answering = scripted(&[false, false, true]);
        let outcome = run(
            &["a"],
            goal,
            ALL_OF_ONE,
            &schedule(),
            Some(Instant::now() + ms(1_000)),
            &board,
            answering,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(
            board.record(0).reason(),
            "still answers: accepted a connection"
        );
        let board = Board::new(1);
        let outcome = run(&["a"], goal, ALL_OF_ONE, &schedule(), None, &board, check).await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn min_ready_stops_the_others_as_not_needed() {
        let board = Board::new(3);
        let start = Instant::now();
        let check = |name: &&'static str, _: Stage| {
            let name = *name;
            async move {
                match name {
                    "slow" => tokio::time::sleep(ms(300)).await,
                    "fast" => tokio::time::sleep(ms(10)).await,
                    _ => std::future::pending::<()>().await,
                }
                Ok(())
            }
        };
        let until = Until {
            min_ready: 2,
            once: false,
        };
        let outcome = run(
            &["fast", "never", "slow"],
            Goal::default(),
            until,
            &schedule(),
            None,
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(start.elapsed(), ms(300));
        assert!(board.record(1).not_needed);
        assert!(!board.record(0).not_needed && !board.record(2).not_needed);
    }

    #[tokio::test(start_paused = true)]
    async fn min_ready_outlives_a_permanent_failure_while_enough_are_left() {
        let check = |name: &&'static str, _: Stage| {
            let name = *name;
            async move {
                match name {
                    "job" => Err(Failure::Permanent(anyhow!("the Job failed"))),
                    _ => {
                        tokio::time::sleep(ms(200)).await;
                        Ok(())
                    }
                }
            }
        };
        let any = Until {
            min_ready: 1,
            once: false,
        };
        let board = Board::new(2);
        let outcome = run(
            &["job", "db"],
            Goal::default(),
            any,
            &schedule(),
            None,
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::Ready);
        let board = Board::new(2);
        let outcome = run(
            &["job", "db"],
            Goal::default(),
            all(2),
            &schedule(),
            None,
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::Permanent(0));
    }

    #[tokio::test(start_paused = true)]
    async fn once_makes_one_attempt_each_and_lets_each_finish() {
        let board = Board::new(2);
        let start = Instant::now();
        let check = |name: &&'static str, _: Stage| {
            let name = *name;
            async move {
                if name == "slow" {
                    tokio::time::sleep(ms(400)).await;
                    return Err(anyhow!("503 Service Unavailable").into());
                }
                Err(anyhow!("connection refused").into())
            }
        };
        let once = Until {
            min_ready: 2,
            once: true,
        };
        let outcome = run(
            &["fast", "slow"],
            Goal::default(),
            once,
            &schedule(),
            Some(start + ms(60_000)),
            &board,
            check,
        )
        .await;
        assert_eq!(outcome, Outcome::Tried);
        assert_eq!(start.elapsed(), ms(400));
        assert_eq!(board.record(0).attempts, 1);
        assert_eq!(board.record(0).reason(), "connection refused");
        assert_eq!(board.record(1).reason(), "503 Service Unavailable");

        let board = Board::new(1);
        let outcome = run(
            &["a"],
            Goal::default(),
            Until {
                min_ready: 1,
                once: true,
            },
            &schedule(),
            None,
            &board,
            scripted(&[true]),
        )
        .await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn once_with_stable_tries_the_streak_and_stops_at_a_failure() {
        let goal = Goal {
            stable: 3,
            down: false,
        };
        let once = Until {
            min_ready: 1,
            once: true,
        };
        let board = Board::new(1);
        let outcome = run(&["a"], goal, once, &schedule(), None, &board, scripted(&[])).await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 3);
        let board = Board::new(1);
        let check = scripted(&[true, false, true]);
        let outcome = run(&["a"], goal, once, &schedule(), None, &board, check).await;
        assert_eq!(outcome, Outcome::Tried);
        assert_eq!(board.record(0).attempts, 2);
        assert_eq!(board.record(0).reason(), "connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn once_keeps_to_the_attempts_in_flight() {
        // Two places for three targets: the third waits for the first place to free.
        let schedule = Schedule {
            limits: Limits {
                in_flight: 2,
                max_rate: None,
            },
            ..schedule()
        };
        let board = Board::new(3);
        let start = Instant::now();
        let slow = |_: &&str, _: Stage| async {
            tokio::time::sleep(ms(100)).await;
            Err::<(), Failure>(anyhow!("refused").into())
        };
        let once = Until {
            min_ready: 3,
            once: true,
        };
        let outcome = run(
            &["a", "b", "c"],
            Goal::default(),
            once,
            &schedule,
            None,
            &board,
            slow,
        )
        .await;
        assert_eq!(outcome, Outcome::Tried);
        assert_eq!(start.elapsed(), ms(200));
        assert!((0..3).all(|index| board.record(index).attempts == 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stable_streak_keeps_to_the_rate_of_retries() {
        // 2 retries a second: after the first attempt and the burst, one each 500 ms.
        let schedule = Schedule {
            limits: Limits {
                in_flight: 10,
                max_rate: Some(2),
            },
            ..schedule()
        };
        let goal = Goal {
            stable: 5,
            down: false,
        };
        let board = Board::new(1);
        let start = Instant::now();
        let outcome = run(
            &["a"],
            goal,
            ALL_OF_ONE,
            &schedule,
            None,
            &board,
            scripted(&[]),
        )
        .await;
        assert_eq!(outcome, Outcome::Ready);
        assert_eq!(board.record(0).attempts, 5);
        assert_eq!(start.elapsed(), ms(1_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_never_let_in_before_the_deadline_says_why() {
        let schedule = Schedule {
            limits: Limits {
                in_flight: 1,
                max_rate: None,
            },
            ..schedule()
        };
        let board = Board::new(2);
        let hang = |_: &&str, _: Stage| std::future::pending::<Result<(), Failure>>();
        let once = Until {
            min_ready: 2,
            once: true,
        };
        let start = Instant::now();
        let outcome = run(
            &["stuck", "queued"],
            Goal::default(),
            once,
            &schedule,
            Some(start + ms(1_000)),
            &board,
            hang,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(board.record(1).attempts, 0);
        assert!(
            board
                .record(1)
                .reason()
                .starts_with("not tried before the deadline")
        );
    }
}
