//! The board: what each target has done so far (attempts, the current run of attempts
//! that met its goal, the last reason it was not ready, when it became ready), kept for
//! the lines that report how the wait ended.

use std::cell::{Ref, RefCell, RefMut};
use std::time::Duration;

use tokio::time::Instant;

use crate::attempt::Stage;
use crate::log::human;

/// What the scheduler knows about one target.
#[derive(Debug, Default)]
pub struct Record {
    pub attempts: u32,
    /// Attempts in a row, up to the latest, that met the target's goal (`#stable=N`).
    pub streak: u32,
    /// Why the target is not ready, as of the latest finished attempt, in words.
    pub last_error: Option<String>,
    /// Set once the target is ready: time from the start of the wait.
    pub ready_after: Option<Duration>,
    /// Stopped because enough other targets were ready (`--min-ready`).
    pub not_needed: bool,
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

    /// An attempt starts now, doing what `stage` says.
    pub fn start(&mut self, stage: &Stage) {
        self.in_flight = Some((Instant::now(), stage.clone()));
    }

    /// The attempt in progress has ended.
    pub fn finish(&mut self) {
        self.in_flight = None;
        self.attempts += 1;
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

    /// Only the scheduler writes; it never holds this across an await.
    pub fn record_mut(&self, index: usize) -> RefMut<'_, Record> {
        self.0[index].borrow_mut()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// How many targets are ready.
    pub fn ready(&self) -> usize {
        self.0
            .iter()
            .filter(|record| record.borrow().ready_after.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_reason_says_what_an_attempt_in_progress_is_doing() {
        let board = Board::new(1);
        assert_eq!(board.record(0).reason(), "not tried yet");
        let stage = Stage::default();
        board.record_mut(0).start(&stage);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(board.record(0).reason(), "no answer after 2.00s");
        stage.set("connecting to 10.0.0.1:5432");
        assert_eq!(
            board.record(0).reason(),
            "still connecting to 10.0.0.1:5432 after 2.00s"
        );
        assert_eq!(board.record(0).attempts_started(), 1);
        board.record_mut(0).finish();
        board.record_mut(0).last_error = Some("refused".into());
        assert_eq!(board.record(0).reason(), "refused");
        assert_eq!(board.record(0).attempts_started(), 1);
        assert_eq!(board.ready(), 0);
    }
}
