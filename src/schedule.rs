//! The schedule of one target's attempts: how long one attempt may take, and the delay
//! before the next. The deadline and the loops that follow this schedule live in
//! [`crate::wait`]; what each target has done so far, in [`crate::board`].
//!
//! The delay has four phases, each chosen so that holdup sees a dependency no later than a
//! one-second poller would, whenever it appears, without hammering one that stays away:
//!
//! 1. `interval` (100 ms) while the target is young (`backoff_after`, 1.5 s): most
//!    dependencies come up within a second or two, and a quick retry is what makes holdup
//!    fast for them.
//! 2. Then the delay doubles until `steady_interval` (700 ms). Stopping there, rather than at
//!    a 2 s cap, is what keeps a dependency that takes 5–60 s (a database running init
//!    scripts, a broker booting, a JVM) from being seen a second or more after it opens:
//!    a 700 ms poll is late by 350 ms on average, a 1 s poller by 500 ms.
//! 3. At `slow_after` (2 min) the outage is a long one, and the delay doubles again up to
//!    `max_interval` (2 s), so that a dependency that is down for good is not hammered.
//! 4. Every delay is randomised by ±20 %, so that many pods started together do not probe
//!    in lockstep.
//!
//! Over a 30 s outage that is about 57 attempts (under 2 a second), over 10 minutes about
//! 427 (under 1 a second).

use std::time::Duration;

use crate::pace::Limits;

/// How far each delay is randomised either way, as a fraction of it.
pub const JITTER: f64 = 0.2;

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Delay between attempts while a target is young, and between the attempts of a
    /// target that must be seen ready (or down) several times in a row.
    pub interval: Duration,
    /// How long a target may fail before its delay starts doubling.
    pub backoff_after: Duration,
    /// The delay the doubling stops at, until `slow_after`.
    pub steady_interval: Duration,
    /// How long a target may fail before its delay grows again, up to `max_interval`.
    pub slow_after: Duration,
    /// The longest delay between two attempts (before jitter).
    pub max_interval: Duration,
    /// The longest one attempt may take; never more than the time left.
    pub attempt_timeout: Duration,
    /// Randomisation of each delay, as a fraction of it (0 turns it off).
    pub jitter: f64,
    /// The budget all targets share: attempts in flight, retries a second.
    pub limits: Limits,
}

/// The delays between the failed attempts of one target.
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
        let schedule = self.schedule;
        let cap = if waited >= schedule.slow_after {
            schedule.max_interval
        } else if waited >= schedule.backoff_after {
            schedule.steady_interval.min(schedule.max_interval)
        } else {
            return self.delay;
        };
        // Never below the interval, never above the cap of the phase.
        self.delay = (self.delay * 2)
            .min(cap.max(schedule.interval))
            .max(schedule.interval);
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

/// Why an attempt that ran out of time failed, with where it was.
pub fn timeout_words(after: Duration, stage: &str) -> String {
    if stage.is_empty() {
        format!("timed out after {}", crate::log::human(after))
    } else {
        format!("timed out after {} while {stage}", crate::log::human(after))
    }
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
    use super::*;

    pub fn schedule() -> Schedule {
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

    #[test]
    fn delays_stay_short_then_double_to_the_steady_interval_then_to_the_cap() {
        let schedule = schedule();
        let mut backoff = Backoff::new(&schedule);
        assert_eq!(backoff.next(ms(0)), ms(100));
        assert_eq!(backoff.next(ms(1_400)), ms(100));
        let steady: Vec<Duration> = (0..5).map(|_| backoff.next(ms(1_500))).collect();
        assert_eq!(steady, [ms(200), ms(400), ms(700), ms(700), ms(700)]);
        let slow: Vec<Duration> = (0..4).map(|_| backoff.next(ms(120_000))).collect();
        assert_eq!(slow, [ms(1_400), ms(2_000), ms(2_000), ms(2_000)]);
    }

    #[test]
    fn backoff_from_the_start_when_asked() {
        let schedule = Schedule {
            backoff_after: Duration::ZERO,
            ..schedule()
        };
        let mut backoff = Backoff::new(&schedule);
        let delays: Vec<Duration> = (0..4).map(|_| backoff.next(ms(0))).collect();
        assert_eq!(delays, [ms(200), ms(400), ms(700), ms(700)]);
    }

    #[test]
    fn a_steady_interval_below_the_interval_keeps_the_interval() {
        let schedule = Schedule {
            interval: ms(1_000),
            max_interval: ms(1_000),
            ..schedule()
        };
        let mut backoff = Backoff::new(&schedule);
        assert_eq!(backoff.next(ms(5_000)), ms(1_000));
        assert_eq!(backoff.next(ms(500_000)), ms(1_000));
    }

    #[test]
    fn a_steady_interval_above_the_cap_keeps_the_cap() {
        let schedule = Schedule {
            max_interval: ms(500),
            ..schedule()
        };
        let mut backoff = Backoff::new(&schedule);
        let delays: Vec<Duration> = (0..4).map(|_| backoff.next(ms(2_000))).collect();
        assert_eq!(delays, [ms(200), ms(400), ms(500), ms(500)]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let delays: Vec<Duration> = (0..1_000).map(|_| jittered(ms(1_000), JITTER)).collect();
        assert!(delays.iter().all(|d| *d >= ms(800) && *d <= ms(1_200)));
        assert!(delays.iter().any(|d| *d < ms(900)) && delays.iter().any(|d| *d > ms(1_100)));
        assert_eq!(jittered(ms(1_000), 0.0), ms(1_000));
    }

    #[test]
    fn attempt_counts_read_well() {
        assert_eq!(attempts(1), "1 attempt");
        assert_eq!(attempts(2), "2 attempts");
    }
}
