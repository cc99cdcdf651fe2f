//! The budget of the whole run, which the scheduler draws on before every attempt: how many
//! attempts may be in flight at once, so that file descriptors never run out however long
//! the list of targets, and how many retries may start a second across all targets, so
//! that a long list of targets that are down cannot flood a network or a DNS server.
//!
//! Each target's first attempt is rationed only by the attempts in flight: a list of
//! 10,000 targets must be tried once, and doing so at once is what makes holdup fast.
//! Retries are the flood a long outage would cause (34 a second per closed port, before
//! backoff), so they share the rate. A short list never meets either limit.

use std::cell::Cell;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{Instant, sleep_until};

/// Retries started per second across all targets, unless `--max-rate` says otherwise.
pub const DEFAULT_MAX_RATE: u32 = 1_000;

/// How many retries may go at once after a quiet spell, as a share of a second's budget:
/// targets that fail together retry together, and a tenth of a second is no flood.
const BURST: f64 = 0.1;

/// File descriptors kept back from attempts: standard streams, the event loop, the
/// resolver's sockets, the files a probe reads (a CA file, a kubeconfig).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The most descriptors one attempt holds: a connection per address of a name, and fresh
/// ones beside a connection left unanswered (see `net.rs`).
const DESCRIPTORS_PER_ATTEMPT: u64 = 8;

/// Never more attempts in flight than this, whatever the limit of open files.
const MOST_IN_FLIGHT: usize = 4_096;

#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Attempts in flight at once, across all targets.
    pub in_flight: usize,
    /// Retries started per second across all targets; `None`: no limit.
    pub max_rate: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            in_flight: MOST_IN_FLIGHT,
            max_rate: Some(DEFAULT_MAX_RATE),
        }
    }
}

/// The attempts in flight that `open_files` descriptors allow.
pub fn in_flight_for(open_files: u64) -> usize {
    let usable = open_files.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_ATTEMPT;
    usize::try_from(usable)
        .unwrap_or(usize::MAX)
        .clamp(1, MOST_IN_FLIGHT)
}

/// Raises the soft limit of open files to the hard one (a container's soft limit is often
/// 1,024 while its hard limit is far higher) and returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1_024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// The budget shared by every target's loop (one thread: no locks).
pub struct Pace {
    slots: Semaphore,
    /// Time between two retries; `None`: no limit.
    spacing: Option<Duration>,
    burst: Duration,
    /// When the next retry may start, at the earliest.
    next: Cell<Option<Instant>>,
}

/// A place among the attempts in flight, given back when dropped.
pub type Slot<'a> = SemaphorePermit<'a>;

impl Pace {
    pub fn new(limits: &Limits) -> Pace {
        let spacing = limits
            .max_rate
            .filter(|rate| *rate > 0)
            .map(|rate| Duration::from_secs(1) / rate);
        Pace {
            slots: Semaphore::new(limits.in_flight.max(1)),
            spacing,
            burst: Duration::from_secs_f64(BURST),
            next: Cell::new(None),
        }
    }

    /// Waits until an attempt may start (a retry also for its share of the rate) and
    /// returns its place in flight. `None` only if the budget were closed, which it never is.
    pub async fn admit(&self, retry: bool) -> Option<Slot<'_>> {
        if let (true, Some(spacing)) = (retry, self.spacing) {
            let now = Instant::now();
            let earliest = now.checked_sub(self.burst).unwrap_or(now);
            let turn = self.next.get().map_or(earliest, |next| next.max(earliest));
            self.next.set(Some(turn + spacing));
            if turn > now {
                sleep_until(turn).await;
            }
        }
        self.slots.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::attempt::{Failure, Stage};
    use crate::schedule::{Board, Outcome, Schedule, wait_all};

    fn schedule(limits: Limits) -> Schedule {
        Schedule {
            interval: Duration::from_millis(100),
            backoff_after: Duration::from_secs(3),
            max_interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            jitter: 0.0,
            limits,
        }
    }

    /// A target waiting for its place in flight still ends at the deadline, exactly.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_holds_for_a_target_waiting_its_turn() {
        let board = Board::new(2);
        let start = Instant::now();
        let hang = |_: &&str, _: Stage| std::future::pending::<Result<(), Failure>>();
        let limits = Limits {
            in_flight: 1,
            max_rate: None,
        };
        let outcome = wait_all(
            &["stuck", "queued"],
            &schedule(limits),
            Some(start + Duration::from_millis(1_500)),
            &board,
            hang,
        )
        .await;
        assert_eq!(outcome, Outcome::DeadlinePassed);
        assert_eq!(start.elapsed(), Duration::from_millis(1_500));
        assert_eq!(board.record(0).attempts, 1);
        assert_eq!(board.record(1).attempts, 0);
        assert!(
            board
                .record(1)
                .reason()
                .starts_with("not tried before the deadline: every place"),
            "{}",
            board.record(1).reason()
        );
    }

    /// Ten targets that fail retry every 100 ms, far below the default budget: the budget
    /// slows none of them.
    #[tokio::test(start_paused = true)]
    async fn a_short_list_never_meets_the_budget() {
        let board = Board::new(10);
        let start = Instant::now();
        let refused =
            |_: &&str, _: Stage| std::future::ready(Err(anyhow::anyhow!("refused").into()));
        let targets = ["t"; 10];
        wait_all(
            &targets,
            &schedule(Limits::default()),
            Some(start + Duration::from_secs(2)),
            &board,
            refused,
        )
        .await;
        for index in 0..10 {
            assert_eq!(board.record(index).attempts, 20, "one attempt every 100 ms");
        }
    }

    /// 1,000 targets that fail share the budget: their first attempts, then 1,000 retries a
    /// second (and the burst), not 10 each.
    #[tokio::test(start_paused = true)]
    async fn a_long_list_keeps_to_the_budget() {
        let board = Board::new(1_000);
        let start = Instant::now();
        let refused =
            |_: &&str, _: Stage| std::future::ready(Err(anyhow::anyhow!("refused").into()));
        let targets = ["t"; 1_000];
        wait_all(
            &targets,
            &schedule(Limits::default()),
            Some(start + Duration::from_secs(2)),
            &board,
            refused,
        )
        .await;
        let attempts: u32 = (0..1_000).map(|index| board.record(index).attempts).sum();
        assert!(
            (2_000..=1_000 + 2_000 + 100 + 1).contains(&attempts),
            "{attempts} attempts"
        );
    }

    #[test]
    fn descriptors_bound_the_attempts_in_flight() {
        assert_eq!(in_flight_for(1_024), 120);
        assert_eq!(in_flight_for(0), 1);
        assert_eq!(in_flight_for(64), 1);
        assert_eq!(in_flight_for(1 << 20), MOST_IN_FLIGHT);
        assert_eq!(in_flight_for(u64::MAX), MOST_IN_FLIGHT);
    }

    #[tokio::test(start_paused = true)]
    async fn first_attempts_go_at_once_and_retries_keep_to_the_rate() {
        let pace = Pace::new(&Limits {
            in_flight: 10_000,
            max_rate: Some(1_000),
        });
        let start = Instant::now();
        for _ in 0..5_000 {
            drop(pace.admit(false).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A tenth of a second's budget at once, then one a millisecond.
        for _ in 0..100 {
            drop(pace.admit(true).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..1_000 {
            drop(pace.admit(true).await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(999));
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_means_no_wait() {
        let pace = Pace::new(&Limits {
            in_flight: 1,
            max_rate: None,
        });
        let start = Instant::now();
        for _ in 0..10_000 {
            drop(pace.admit(true).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_in_flight_never_exceed_the_bound() {
        let pace = Rc::new(Pace::new(&Limits {
            in_flight: 3,
            max_rate: None,
        }));
        let now = Rc::new(RefCell::new((0, 0)));
        let attempts = (0..20).map(|_| {
            let pace = Rc::clone(&pace);
            let now = Rc::clone(&now);
            async move {
                let _slot = pace.admit(false).await;
                {
                    let mut counts = now.borrow_mut();
                    counts.0 += 1;
                    counts.1 = counts.1.max(counts.0);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.borrow_mut().0 -= 1;
            }
        });
        let start = Instant::now();
        futures_util::future::join_all(attempts).await;
        assert_eq!(now.borrow().1, 3);
        // 20 attempts of 10 ms, 3 at a time: 7 rounds.
        assert_eq!(start.elapsed(), Duration::from_millis(70));
    }
}
