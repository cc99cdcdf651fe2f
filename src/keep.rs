//! Keeping watch while serving: every target is probed for as long as holdup runs, on the
//! usual schedule while it is not ready and every `recheck` once it is, and what the
//! attempts found is kept in a [`Watch`] that the HTTP endpoints and the pod condition read.
//!
//! The time of it is the scheduler's (its backoff, jitter and attempt timeout, from
//! [`crate::schedule`]), each attempt is admitted by the same [`Pace`] as a wait's, and a
//! target works toward the same [`Goal`] (`#stable=N` in a row, `#down`) as in
//! [`crate::wait`]. What is new here is that a ready target is not done with: a dependency
//! that goes away (or, with `#down`, comes back) is seen within one recheck, and probed
//! quickly again, from the start of its outage, until it returns; with `#stable=N` it must
//! then be seen N times in a row again.

use std::cell::{Ref, RefCell};
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep};
use tracing::{debug, info, warn};

use crate::attempt::{Failure, Stage};
use crate::log::{human, millis};
use crate::pace::Pace;
use crate::schedule::{Backoff, Schedule, jittered, timeout_words};
use crate::wait::{Goal, Seen, attempt_toward, judge};

/// The upper bounds, in seconds, of the attempt-duration histogram: from a loopback
/// connection (a few ms) to the default attempt timeout (5 s) and a bit beyond.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What kind of failure an attempt had, for the failure counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The target answered, or refused, in a way that says "not yet".
    NotReady,
    /// The attempt was cut off by the attempt timeout.
    Timeout,
    /// What would have ended a wait for good (a failed Job); serving keeps probing anyway.
    Permanent,
}

impl FailureClass {
    pub const ALL: [FailureClass; 3] = [
        FailureClass::NotReady,
        FailureClass::Timeout,
        FailureClass::Permanent,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureClass::NotReady => "not_ready",
            FailureClass::Timeout => "timeout",
            FailureClass::Permanent => "permanent",
        }
    }
}

/// What is known of one target.
#[derive(Debug)]
pub struct State {
    /// The target meets its goal: it answered (with `#down`: nothing did), `#stable=N`
    /// times in a row since it last did not.
    pub ready: bool,
    /// Attempts in a row, up to the latest, that met the target's goal.
    pub streak: u32,
    /// Why the target is not ready, as of its latest finished attempt.
    last_error: Option<String>,
    pub attempts: u64,
    /// Failed attempts, by [`FailureClass::ALL`]'s order.
    pub failures: [u64; 3],
    /// When `ready` last changed (the start of holdup while it never has).
    pub last_change: SystemTime,
    /// Attempts that took at most each of [`DURATION_BUCKETS`] (not cumulated).
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    /// Total seconds all attempts took.
    pub duration_sum: f64,
    in_flight: Option<(Instant, Stage)>,
}

impl State {
    fn new() -> Self {
        State {
            ready: false,
            streak: 0,
            last_error: None,
            attempts: 0,
            failures: [0; 3],
            last_change: SystemTime::now(),
            duration_buckets: [0; DURATION_BUCKETS.len()],
            duration_sum: 0.0,
            in_flight: None,
        }
    }

    /// Why the target is not ready: the reason of a long poll in progress (the freshest),
    /// else the last error, else what the first attempt is doing.
    pub fn reason(&self) -> String {
        if let Some(reason) = self
            .in_flight
            .as_ref()
            .and_then(|(_, stage)| stage.waiting_reason())
        {
            return reason;
        }
        match (&self.last_error, &self.in_flight) {
            (Some(error), _) => error.clone(),
            (None, Some((_, stage))) if !stage.get().is_empty() => {
                format!("first attempt still {}", stage.get())
            }
            (None, Some(_)) => "first attempt in progress".to_string(),
            (None, None) => "not tried yet".to_string(),
        }
    }

    fn record_duration(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        self.duration_sum += seconds;
        if let Some(bucket) = DURATION_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.duration_buckets[bucket] += 1;
        }
    }
}

/// The states of all targets, in the order given.
pub struct Watch {
    states: Vec<RefCell<State>>,
    /// Targets that must be ready for the whole to be (`--min-ready`; all by default).
    needed: usize,
    /// Wakes whoever publishes the states elsewhere (the pod condition) on a change.
    changed: Notify,
}

impl Watch {
    /// `needed`: how many targets must be ready for the whole to be (at most `targets`).
    pub fn new(targets: usize, needed: usize) -> Self {
        Watch {
            states: (0..targets).map(|_| RefCell::new(State::new())).collect(),
            needed: needed.min(targets),
            changed: Notify::new(),
        }
    }

    pub fn state(&self, index: usize) -> Ref<'_, State> {
        self.states[index].borrow()
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Targets that must be ready (`--min-ready`, `--any`; all by default).
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// How many targets are ready.
    pub fn ready_count(&self) -> usize {
        self.states
            .iter()
            .filter(|state| state.borrow().ready)
            .count()
    }

    /// Whether enough targets are ready: all of them, or `--min-ready N`.
    pub fn enough_ready(&self) -> bool {
        self.ready_count() >= self.needed
    }

    /// Returns once a target has become ready or not, or its reason has changed, since the
    /// last call returned (at once if that happened in between: one reader at a time).
    pub async fn changed_since_read(&self) {
        self.changed.notified().await;
    }

    fn changed(&self) {
        self.changed.notify_one();
    }
}

/// Probes every target concurrently, forever: while a target is not ready, on the schedule
/// of a wait (from the start of its outage); once ready, every `recheck`. `check` makes one
/// attempt on a target; `goals` gives each target's, in the same order.
pub async fn keep_probing<'a, T, C, F>(
    targets: &'a [T],
    goals: &[Goal],
    schedule: &Schedule,
    recheck: Duration,
    watch: &Watch,
    check: C,
) where
    T: Display,
    C: Fn(&'a T, Stage) -> F,
    F: Future<Output = Result<(), Failure>>,
{
    let start = Instant::now();
    // The same budget as a wait's: a long list kept watch on must not open more sockets
    // than the open-files limit allows, nor retry faster than --max-rate.
    let pace = Pace::new(&schedule.limits);
    let mut loops: FuturesUnordered<_> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let goal = goals.get(index).copied().unwrap_or_default();
            let one = One {
                index,
                target,
                goal,
                schedule,
                recheck,
                start,
                watch,
                pace: &pace,
            };
            one.run(&check)
        })
        .collect();
    // The loops never end; this only drives them.
    while loops.next().await.is_some() {}
}

/// The loop of one target.
struct One<'a, 'b, T> {
    index: usize,
    target: &'a T,
    goal: Goal,
    schedule: &'b Schedule,
    recheck: Duration,
    start: Instant,
    watch: &'b Watch,
    pace: &'b Pace,
}

impl<'a, T: Display> One<'a, '_, T> {
    async fn run<C, F>(self, check: &C)
    where
        C: Fn(&'a T, Stage) -> F,
        F: Future<Output = Result<(), Failure>>,
    {
        let (target, goal, schedule, watch) = (self.target, self.goal, self.schedule, self.watch);
        let cell = &watch.states[self.index];
        let mut backoff = Backoff::new(schedule);
        // The start of the current stretch of not being ready: backoff counts from there.
        let mut down_since = self.start;
        loop {
            let retry = cell.borrow().attempts > 0;
            let slot = self.pace.admit(retry).await;
            let stage = Stage::default();
            let began = Instant::now();
            cell.borrow_mut().in_flight = Some((began, stage.clone()));
            let attempt = check(target, stage.clone());
            let result = attempt_toward(
                goal,
                attempt,
                &stage,
                schedule.attempt_timeout,
                schedule.interval,
            )
            .await;
            drop(slot);
            // The borrow ends before the sleep: the endpoints read the state meanwhile.
            let delay = {
                let mut state = cell.borrow_mut();
                state.in_flight = None;
                state.attempts += 1;
                state.record_duration(began.elapsed());
                let answered = stage.answer().is_some();
                let (class, seen) = match result {
                    Ok(Some(Ok(()))) => (None, Seen::Up(stage.answer())),
                    Ok(Some(Err(Failure::NotReady(error)))) => (
                        Some(FailureClass::NotReady),
                        Seen::Down {
                            reason: format!("{error:#}"),
                            answered,
                            long_poll: false,
                        },
                    ),
                    // Serving keeps probing: what would end a wait is one more failure here.
                    Ok(Some(Err(Failure::Permanent(error)))) => (
                        Some(FailureClass::Permanent),
                        Seen::Down {
                            reason: format!("{error:#}"),
                            answered,
                            long_poll: false,
                        },
                    ),
                    // With #down, a long poll that said its target is not ready.
                    Ok(None) => (
                        Some(FailureClass::NotReady),
                        Seen::Down {
                            reason: stage.waiting_reason().unwrap_or_default(),
                            answered: true,
                            long_poll: true,
                        },
                    ),
                    // A long poll that ran out of time knows why its target is not ready, and
                    // is taken up again at once, as in a wait.
                    Err(_) if stage.waiting_reason().is_some() => (
                        Some(FailureClass::NotReady),
                        Seen::Down {
                            reason: stage.waiting_reason().unwrap_or_default(),
                            answered: true,
                            long_poll: true,
                        },
                    ),
                    Err(_) => (
                        Some(FailureClass::Timeout),
                        Seen::Down {
                            reason: timeout_words(schedule.attempt_timeout, &stage.get()),
                            answered: false,
                            long_poll: false,
                        },
                    ),
                };
                if let Some(class) = class {
                    let slot = FailureClass::ALL
                        .iter()
                        .position(|known| *known == class)
                        .unwrap_or_default();
                    state.failures[slot] += 1;
                }
                let long_poll = matches!(
                    seen,
                    Seen::Down {
                        long_poll: true,
                        ..
                    }
                );
                let (met, reason) = judge(seen, goal.down);
                if met {
                    state.streak += 1;
                    if state.ready {
                        self.recheck
                    } else if state.streak >= goal.stable {
                        state.ready = true;
                        state.last_change = SystemTime::now();
                        state.last_error = None;
                        self.say_ready(&state, down_since, reason.as_deref());
                        watch.changed();
                        self.recheck
                    } else {
                        let progress = format!(
                            "{} {} of {} times in a row so far",
                            if goal.down { "seen down" } else { "seen ready" },
                            state.streak,
                            goal.stable
                        );
                        debug!(event = "attempt", target = %target, attempt = state.attempts, streak = state.streak,
                            "{target}: attempt {} {progress}", state.attempts);
                        state.last_error = Some(progress);
                        // The attempts of a streak are spaced by the interval, as in a wait.
                        schedule.interval
                    }
                } else {
                    let error = reason.unwrap_or_default();
                    state.streak = 0;
                    if state.ready {
                        state.ready = false;
                        state.last_change = SystemTime::now();
                        down_since = Instant::now();
                        backoff = Backoff::new(schedule);
                        warn!(event = "lost", target = %target, error = %error, "{target} no longer ready: {error}");
                        watch.changed();
                    } else if state.last_error.as_deref() != Some(error.as_str()) {
                        info!(event = "waiting", target = %target, error = %error, attempts = state.attempts, "waiting for {target}: {error}");
                        watch.changed();
                    }
                    let delay = if long_poll {
                        Duration::ZERO
                    } else {
                        jittered(backoff.next(down_since.elapsed()), schedule.jitter)
                    };
                    debug!(
                        event = "attempt",
                        target = %target,
                        error = %error,
                        attempt = state.attempts,
                        next_in_ms = millis(delay),
                        "{target}: attempt {} failed: {error}; next in {}",
                        state.attempts,
                        human(delay)
                    );
                    state.last_error = Some(error);
                    delay
                }
            };
            sleep(delay).await;
        }
    }

    /// The line that says the target is ready (with `#down`: gone), first or again.
    fn say_ready(&self, state: &State, down_since: Instant, down_reason: Option<&str>) {
        let target = self.target;
        let down = down_since.elapsed();
        let what = if self.goal.down { "down" } else { "ready" };
        let when = if down_since == self.start {
            format!("after {}", human(down))
        } else {
            // How long it did not meet its goal: was down, or (#down) still answered.
            let stretch = if self.goal.down { "answering" } else { "down" };
            format!("again after {} {stretch}", human(down))
        };
        let in_a_row = if self.goal.stable > 1 {
            format!(" ({} in a row)", self.goal.stable)
        } else {
            String::new()
        };
        match down_reason.filter(|_| self.goal.down) {
            Some(reason) => info!(event = "ready", target = %target, down = true, reason = %reason,
                elapsed_ms = millis(down), attempts = state.attempts,
                "{target} {what} {when}{in_a_row}: {reason}"),
            None => {
                info!(event = "ready", target = %target, elapsed_ms = millis(down), attempts = state.attempts,
                "{target} {what} {when}{in_a_row}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use anyhow::anyhow;
    use tokio::time::advance;

    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_millis(100),
            backoff_after: Duration::from_secs(3),
            steady_interval: Duration::from_secs(2),
            slow_after: Duration::from_secs(120),
            max_interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            jitter: 0.0,
            limits: Default::default(),
        }
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Lets the probing loops run until every timer due by `millis` from now has fired.
    async fn run_for(millis: u64) {
        for _ in 0..millis {
            advance(ms(1)).await;
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_goes_away_and_returns_is_followed() {
        let up = Rc::new(Cell::new(false));
        let calls = Rc::new(Cell::new(0u32));
        let watch = Watch::new(1, 1);
        let check = |_: &&str, _: Stage| {
            calls.set(calls.get() + 1);
            let up = up.get();
            async move {
                if up {
                    Ok(())
                } else {
                    Err(anyhow!("connection refused").into())
                }
            }
        };
        let schedule = schedule();
        let goals = [Goal::default()];
        let probing = keep_probing(
            &["db"],
            &goals,
            &schedule,
            Duration::from_secs(5),
            &watch,
            check,
        );
        let test = async {
            run_for(350).await;
            assert!(!watch.enough_ready());
            assert_eq!(watch.state(0).reason(), "connection refused");
            assert_eq!(calls.get(), 4, "every 100 ms while not ready");

            up.set(true);
            run_for(100).await;
            assert!(watch.enough_ready());
            let after_ready = calls.get();
            // Once ready: one attempt every 5 s, not every 100 ms.
            run_for(4_000).await;
            assert_eq!(calls.get(), after_ready);
            run_for(1_100).await;
            assert_eq!(calls.get(), after_ready + 1);

            up.set(false);
            run_for(5_000).await;
            assert!(!watch.enough_ready());
            // 4 before it was ready; 2 since it went away (at 10.4 s and 10.5 s).
            assert_eq!(watch.state(0).failures, [6, 0, 0]);
            let when_lost = calls.get();
            // Down again: quick attempts from the start of the outage.
            run_for(300).await;
            assert_eq!(calls.get(), when_lost + 3);

            up.set(true);
            run_for(100).await;
            assert!(watch.enough_ready());
        };
        tokio::select! {
            () = probing => unreachable!("probing never ends"),
            () = test => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_timed_and_a_hang_is_a_timeout() {
        let watch = Watch::new(1, 1);
        let check = |_: &&str, stage: Stage| async move {
            stage.set("connecting to 10.0.0.1:5432");
            std::future::pending::<Result<(), Failure>>().await
        };
        let schedule = schedule();
        let goals = [Goal::default()];
        let probing = keep_probing(
            &["db"],
            &goals,
            &schedule,
            Duration::from_secs(5),
            &watch,
            check,
        );
        let test = async {
            run_for(5_050).await;
            let state = watch.state(0);
            assert_eq!(state.attempts, 1);
            assert_eq!(state.failures, [0, 1, 0]);
            assert_eq!(
                state.reason(),
                "timed out after 5.00s while connecting to 10.0.0.1:5432"
            );
            // 5 s is within the 5 s bucket, not the 2.5 s one.
            assert_eq!(state.duration_buckets[9], 1);
            assert!((state.duration_sum - 5.0).abs() < 0.01);
        };
        tokio::select! {
            () = probing => unreachable!("probing never ends"),
            () = test => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn goals_and_the_count_needed_hold_while_serving() {
        // "db" is up; "old" (#down) answers until told; "api" (#stable=3) is up.
        let old_up = Rc::new(Cell::new(true));
        let watch = Watch::new(3, 2);
        let check = |target: &&str, _: Stage| {
            let up = match *target {
                "old" => old_up.get(),
                "db" => false,
                _ => true,
            };
            async move {
                if up {
                    Ok(())
                } else {
                    Err(anyhow!("connection refused").into())
                }
            }
        };
        let schedule = schedule();
        let goals = [
            Goal::default(),
            Goal {
                stable: 1,
                down: true,
            },
            Goal {
                stable: 3,
                down: false,
            },
        ];
        let probing = keep_probing(
            &["db", "old", "api"],
            &goals,
            &schedule,
            Duration::from_secs(5),
            &watch,
            check,
        );
        let test = async {
            run_for(150).await;
            // Two attempts of three in a row: not ready yet.
            assert!(!watch.state(2).ready);
            assert_eq!(watch.state(2).streak, 2);
            assert_eq!(
                watch.state(2).reason(),
                "seen ready 2 of 3 times in a row so far"
            );
            assert!(!watch.state(1).ready);
            assert_eq!(
                watch.state(1).reason(),
                "still ready (an attempt succeeded)"
            );
            run_for(100).await;
            assert!(watch.state(2).ready);
            assert_eq!(watch.ready_count(), 1);
            assert!(!watch.enough_ready());

            old_up.set(false);
            run_for(200).await;
            assert!(watch.state(1).ready, "#down: ready once nothing answers");
            assert_eq!(watch.ready_count(), 2);
            assert!(watch.enough_ready(), "2 of 3 are enough");

            old_up.set(true);
            run_for(5_100).await;
            assert!(!watch.state(1).ready, "#down: lost once it answers again");
            assert!(!watch.enough_ready());
        };
        tokio::select! {
            () = probing => unreachable!("probing never ends"),
            () = test => {}
        }
    }
}
