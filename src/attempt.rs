//! The contract between the scheduler and the probes: what one attempt reports (ready, or
//! a [`Failure`] saying whether waiting can help) and the [`Stage`] it is in, so that an
//! attempt cut off by its timeout can say where it stalled. It sits beneath both: probes
//! and the network code fill it in, the scheduler reads it, and neither knows the other.

use std::sync::{Arc, Mutex};

/// Why an attempt found its target not ready.
#[derive(Debug)]
pub enum Failure {
    /// Not ready yet; another attempt may succeed.
    NotReady(anyhow::Error),
    /// Waiting cannot help (a failed Job, a rejected password with fail-fast): exit 3.
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::NotReady(error)
    }
}

/// What an attempt is doing right now ("connecting to 10.0.0.5:5432"), so that an attempt
/// cut off by its timeout can say where it was stuck.
#[derive(Clone, Debug, Default)]
pub struct Stage(Arc<Mutex<Doing>>);

#[derive(Debug, Default)]
struct Doing {
    step: String,
    /// Set while the attempt waits, on a healthy connection, for its target to change.
    waiting: Option<String>,
    /// What the server answered, once it did: kept through later steps.
    answered: Option<String>,
}

impl Stage {
    pub fn set(&self, doing: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            current.step = doing.into();
            current.waiting = None;
        }
    }

    pub fn get(&self) -> String {
        self.0
            .lock()
            .map(|current| current.step.clone())
            .unwrap_or_default()
    }

    /// The attempt is not stuck but waiting to be told of a change (a Kubernetes watch),
    /// and `reason` is why the target is not ready as of now. An attempt that runs out of
    /// time in this state is reported with `reason`, not as a timeout.
    pub fn waiting(&self, reason: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            current.waiting = Some(reason.into());
        }
    }

    /// The reason given to [`Stage::waiting`], unless a later step replaced it.
    pub fn waiting_reason(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|current| current.waiting.clone())
    }

    /// Something answered: the attempt reached a server (or a file, a program) and `what`
    /// says what it found ("accepted a connection on 10.0.0.5:5432", "status 503"). A
    /// `#down` target reports it as what still answers; a failure that comes after it is
    /// told apart from one where nothing was there.
    pub fn answered(&self, what: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            current.answered = Some(what.into());
        }
    }

    /// What [`Stage::answered`] last recorded.
    pub fn answer(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|current| current.answered.clone())
    }
}
