//! Scheduling: when each target is probed, how long one attempt may take, and when the
//! whole wait ends. Probes know nothing of time; all of it lives here.
//!
//! Targets are probed concurrently, each in its own loop: attempt, then wait. The wait is
//! `interval` while the target is young (most dependencies come up within seconds, and a
//! quick retry is what makes holdup fast), then doubles with each attempt up to
//! `max_interval` (a long outage is not hammered), always randomised by ±20 % so that many
//! pods started together do not probe in lockstep. Each attempt is cut off after
//! `attempt_timeout` or at the deadline, whichever comes first, so the deadline holds
//! whatever a target does.
//!
//! An attempt may instead be a long poll (a Kubernetes watch): it marks its [`Stage`] as
//! waiting, with the reason the target is not ready, and keeps its connection open. When
//! such an attempt runs out of time, that reason is recorded (not "timed out"), and the
//! next attempt starts at once: it takes up the same open connection, so it costs the
//! server nothing, and a change is seen the moment it is sent. Backoff applies to failures.

use std::cell::{Ref, RefCell};
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tracing::{debug, info};

use crate::attempt::{Failure, Stage};
use crate::log::{human, millis};
use crate::pace::{Limits, Pace};

/// Why a target of a long list was never tried: the attempts in flight are bounded by the
/// limit of open files, and others held every place until the deadline.
const NO_TURN: &str = "not tried before the deadline: every place among the attempts in \
     flight was taken (the limit of open files bounds them)";

/// How far each delay is randomised either way, as a fraction of it.
pub const JITTER: f64 = 0.2;

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Delay between attempts while a target is young.
    pub interval: Duration,
    /// How long a target may fail before its delay starts doubling.
    pub backoff_after: Duration,
    /// The longest delay between two attempts (before jitter).
    pub max_interval: Duration,
    /// The longest one attempt may take; never more than the time left.
    pub attempt_timeout: Duration,
    /// Randomisation of each delay, as a fraction of it (0 turns it off).
    pub jitter: f64,
    /// The budget all targets share: attempts in flight, retries a second.
    pub limits: Limits,
}

/// The delays between the attempts of one target.
pub struct Backoff<'a> {
    schedule: &'a Schedule,
    delay: Duration,
}

impl<'a> Backoff<'a> {
    pub fn new(schedule: &'a Schedule) -> Self {
        Backoff {
            schedule,
            delay: schedule.interval,
        }
    }

    /// The delay before the next attempt of a target that has been waited on for `waited`,
    /// before jitter.
    pub fn next(&mut self, waited: Duration) -> Duration {
        if waited >= self.schedule.backoff_after {
            self.delay = (self.delay * 2)
                .min(self.schedule.max_interval)
                .max(self.schedule.interval);
        }
        self.delay
    }
}

/// `delay` scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter].
pub fn jittered(delay: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return delay;
    }
    let factor: f64 = 1.0 + jitter * (2.0 * rand::random::<f64>() - 1.0);
    delay.mul_f64(factor.max(0.0))
}

/// What the scheduler knows about one target, kept for the final report.
#[derive(Debug, Default)]
pub struct Record {
    pub attempts: u32,
    /// The error of the latest finished attempt, in words.
    pub last_error: Option<String>,
    /// Set once the target is ready: time from the start of the wait.
    pub ready_after: Option<Duration>,
    /// The attempt in progress: when it started and what it is doing.
    in_flight: Option<(Instant, Stage)>,
}

impl Record {
    /// Why the target is not ready: its last error, or else what its first attempt is
    /// still doing (when a signal cuts the wait short).
    pub fn reason(&self) -> String {
        // A long poll in progress knows the freshest reason.
        if let Some(reason) = self
            .in_flight
            .as_ref()
            .and_then(|(_, stage)| stage.waiting_reason())
        {
            return reason;
        }
        match (&self.last_error, &self.in_flight) {
            (Some(error), _) => error.clone(),
            (None, Some((started, stage))) => match stage.get() {
                stage if stage.is_empty() => {
                    format!("no answer after {}", human(started.elapsed()))
                }
                stage => format!("still {stage} after {}", human(started.elapsed())),
            },
            (None, None) => "not tried yet".to_string(),
        }
    }

    /// Attempts made, counting one still in progress.
    pub fn attempts_started(&self) -> u32 {
        self.attempts + u32::from(self.in_flight.is_some())
    }
}

/// "timed out after 5s", with where the attempt was when it was cut off.
pub fn timeout_words(after: Duration, stage: &str) -> String {
    if stage.is_empty() {
        format!("timed out after {}", human(after))
    } else {
        format!("timed out after {} while {stage}", human(after))
    }
}

/// The records of all targets, in the order given.
pub struct Board(Vec<RefCell<Record>>);

impl Board {
    pub fn new(targets: usize) -> Self {
        Board((0..targets).map(|_| RefCell::default()).collect())
    }

    pub fn record(&self, index: usize) -> Ref<'_, Record> {
        self.0[index].borrow()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// How the wait for one target, or for all of them, ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ready: the target, or every target.
    Ready,
    DeadlinePassed,
    /// This target failed for good; the others were abandoned.
    Permanent(usize),
}

/// Probes every target concurrently until all are ready, one fails for good, or the
/// deadline passes. `check` makes one attempt on a target.
pub async fn wait_all<'a, T, C, F>(
    targets: &'a [T],
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
    let pace = Pace::new(&schedule.limits);
    let pace = &pace;
    let mut waiting: FuturesUnordered<_> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            wait_one(
                index,
                target,
                schedule,
                start,
                deadline,
                &board.0[index],
                &check,
                pace,
            )
        })
        .collect();
    while let Some(end) = waiting.next().await {
        match end {
            Outcome::Ready | Outcome::DeadlinePassed => {}
            permanent @ Outcome::Permanent(_) => return permanent,
        }
    }
    if board
        .0
        .iter()
        .all(|record| record.borrow().ready_after.is_some())
    {
        Outcome::Ready
    } else {
        Outcome::DeadlinePassed
    }
}

// Each argument is one thing the loop of a target reads; a struct to carry them would
// only rename them.
#[allow(clippy::too_many_arguments)]
async fn wait_one<'a, T, C, F>(
    index: usize,
    target: &'a T,
    schedule: &Schedule,
    start: Instant,
    deadline: Option<Instant>,
    record: &RefCell<Record>,
    check: &C,
    pace: &Pace,
) -> Outcome
where
    T: Display,
    C: Fn(&'a T, Stage) -> F,
    F: Future<Output = Result<(), Failure>>,
{
    let mut backoff = Backoff::new(schedule);
    loop {
        // Held until the attempt ends; waiting for it never outlasts the deadline.
        let admitted = pace.admit(record.borrow().attempts > 0);
        let slot = match deadline {
            Some(deadline) => match timeout_at(deadline, admitted).await {
                Ok(slot) => slot,
                Err(_) => return no_turn(record),
            },
            None => admitted.await,
        };
        let now = Instant::now();
        let time_left = deadline.map(|deadline| deadline.saturating_duration_since(now));
        if time_left == Some(Duration::ZERO) {
            return no_turn(record);
        }
        let budget = time_left.map_or(schedule.attempt_timeout, |left| {
            left.min(schedule.attempt_timeout)
        });
        let cut_by_deadline = budget < schedule.attempt_timeout;

        let stage = Stage::default();
        record.borrow_mut().in_flight = Some((now, stage.clone()));
        let result = timeout(budget, check(target, stage.clone())).await;
        drop(slot);
        let mut still_waiting = false;
        let delay = {
            let mut record = record.borrow_mut();
            record.in_flight = None;
            record.attempts += 1;
            let error = match result {
                Ok(Ok(())) => {
                    let waited = start.elapsed();
                    record.ready_after = Some(waited);
                    info!(
                        event = "ready",
                        target = %target,
                        elapsed_ms = millis(waited),
                        attempts = record.attempts,
                        "{target} ready after {} ({})",
                        human(waited),
                        attempts(record.attempts)
                    );
                    return Outcome::Ready;
                }
                Ok(Err(Failure::Permanent(error))) => {
                    record.last_error = Some(format!("{error:#}"));
                    return Outcome::Permanent(index);
                }
                Ok(Err(Failure::NotReady(error))) => format!("{error:#}"),
                // A long poll that ran out of time knows why its target is not ready.
                Err(_) if stage.waiting_reason().is_some() => {
                    let reason = stage.waiting_reason().unwrap_or_default();
                    if cut_by_deadline {
                        record.last_error = Some(reason);
                        return Outcome::DeadlinePassed;
                    }
                    still_waiting = true;
                    reason
                }
                // An attempt cut short by the deadline says less than the complete one before it.
                Err(_) if cut_by_deadline && record.last_error.is_some() => {
                    return Outcome::DeadlinePassed;
                }
                Err(_) => timeout_words(budget, &stage.get()),
            };
            let delay = if still_waiting {
                Duration::ZERO
            } else {
                jittered(backoff.next(start.elapsed()), schedule.jitter)
            };
            if record.last_error.as_deref() != Some(error.as_str()) {
                info!(event = "waiting", target = %target, error = %error, attempts = record.attempts, "waiting for {target}: {error}");
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
        };

        let wake = Instant::now() + delay;
        match deadline {
            Some(deadline) if wake >= deadline => {
                sleep_until(deadline).await;
                return Outcome::DeadlinePassed;
            }
            _ => sleep_until(wake).await,
        }
    }
}

/// The deadline passed before an attempt could start: a target never tried says why.
fn no_turn(record: &RefCell<Record>) -> Outcome {
    let mut record = record.borrow_mut();
    if record.attempts == 0 && record.last_error.is_none() {
        record.last_error = Some(NO_TURN.to_string());
    }
    Outcome::DeadlinePassed
}

/// "1 attempt", "3 attempts".
pub fn attempts(count: u32) -> String {
    if count == 1 {
        "1 attempt".to_string()
    } else {
        format!("{count} attempts")
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use anyhow::anyhow;

    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_millis(100),
            backoff_after: Duration::from_secs(3),
            max_interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            jitter: 0.0,
            limits: Limits::default(),
        }
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn delays_stay_short_then_double_up_to_the_cap() {
        let schedule = schedule();
        let mut backoff = Backoff::new(&schedule);
        assert_eq!(backoff.next(ms(0)), ms(100));
        assert_eq!(backoff.next(ms(2_900)), ms(100));
        let later: Vec<Duration> = (0..6).map(|_| backoff.next(ms(3_000))).collect();
        assert_eq!(
            later,
            [ms(200), ms(400), ms(800), ms(1_600), ms(2_000), ms(2_000)]
        );
    }

    #[test]
    fn backoff_from_the_start_when_asked() {
        let schedule = Schedule {
            backoff_after: Duration::ZERO,
            ..schedule()
        };
        let mut backoff = Backoff::new(&schedule);
        let delays: Vec<Duration> = (0..3).map(|_| backoff.next(ms(0))).collect();
        assert_eq!(delays, [ms(200), ms(400), ms(800)]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let delays: Vec<Duration> = (0..1_000).map(|_| jittered(ms(1_000), JITTER)).collect();
        assert!(delays.iter().all(|d| *d >= ms(800) && *d <= ms(1_200)));
        assert!(delays.iter().any(|d| *d < ms(900)) && delays.iter().any(|d| *d > ms(1_100)));
        assert_eq!(jittered(ms(1_000), 0.0), ms(1_000));
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
        let outcome = wait_all(&["a"], &schedule(), None, &board, ready_after(3)).await;
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
        let outcome = wait_all(&["a"], &schedule(), deadline, &board, ready_after(u32::MAX)).await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let record = board.record(0);
        assert_eq!(record.attempts, 20, "one attempt every 100 ms");
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
        let outcome = wait_all(&["a"], &schedule(), Some(start + ms(1_500)), &board, hang).await;
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
        let outcome = wait_all(&["a"], &schedule, Some(start + ms(2_500)), &board, hang).await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), ms(2_500));
        // 0–1 s timed out, 1.1–2.1 s timed out, 2.2–2.5 s cut by the deadline.
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
        let outcome = wait_all(&["a"], &schedule(), Some(start + ms(12_000)), &board, watch).await;
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
        let outcome = wait_all(&["db", "job"], &schedule(), None, &board, check).await;
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
        let outcome = wait_all(
            &["stuck", "fine"],
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

    #[tokio::test(start_paused = true)]
    async fn a_long_outage_is_probed_gently() {
        // Over 30 s of a closed port, at most 2 attempts a second on average. With jitter
        // on: even if every delay were drawn at its shortest, there would be about 57.
        let board = Board::new(1);
        let start = Instant::now();
        let schedule = Schedule {
            jitter: JITTER,
            ..schedule()
        };
        wait_all(
            &["a"],
            &schedule,
            Some(start + Duration::from_secs(30)),
            &board,
            ready_after(u32::MAX),
        )
        .await;
        let attempts = board.record(0).attempts;
        assert!(attempts <= 60, "{attempts} attempts in 30 s");
        assert!(
            attempts >= 30,
            "{attempts} attempts in 30 s: the first seconds must be quick"
        );
    }

    #[test]
    fn attempt_counts_read_well() {
        assert_eq!(attempts(1), "1 attempt");
        assert_eq!(attempts(2), "2 attempts");
    }
}
