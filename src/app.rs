//! One run of holdup: read the configuration, wait for every target, say how it went,
//! then exec the command or pick the exit code.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::cli::{Config, Listen};
use crate::condition::PodCondition;
use crate::exec::replace_process;
use crate::exit;
use crate::keep::{self, Watch};
use crate::log::{self, Verbosity, human, millis};
use crate::net::Net;
use crate::plan;
use crate::schedule::{self, Board, Outcome, attempts};
use crate::serve;
use crate::usage::{self, Parsed};

/// Runs holdup on the command line `argv` (the program name first) and returns the exit
/// code; with a command, returns only if exec fails.
pub fn run(argv: Vec<OsString>) -> u8 {
    let args = match usage::parse(argv) {
        Parsed::Run(args) => *args,
        Parsed::Show(help) => {
            // Nothing sensible is left to do when stdout is gone.
            let _ = help.print();
            return exit::READY;
        }
        Parsed::Wrong { format, message } => {
            log::init(format, Verbosity::new(false, 0));
            error!(event = "usage", error = %message, "{message}");
            return exit::USAGE;
        }
    };
    log::init(args.log_format, Verbosity::new(args.quiet, args.verbose));
    let config = match args.into_config(std::env::var("HOLDUP_WAIT_FOR").ok()) {
        Ok(config) => config,
        Err(error) => {
            error!(event = "usage", error = %format!("{error:#}"), "{error:#}");
            return exit::USAGE;
        }
    };
    if config.dry_run {
        plan::show(&config);
        return exit::READY;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(event = "internal", "cannot start the event loop: {error}");
            return exit::INTERNAL;
        }
    };
    let ended = if config.keeps_running() {
        runtime.block_on(keep_running(&config))
    } else {
        runtime.block_on(wait(&config))
    };
    // Nothing may hold up the exec: stray resolver tasks are simply dropped.
    runtime.shutdown_background();
    match ended {
        Ok(code) if code == exit::READY => replace_process(&config.command),
        Ok(code) => code,
        Err(error) => {
            error!(event = "internal", "{error:#}");
            exit::INTERNAL
        }
    }
}

/// Waits for every target, handling SIGTERM, SIGINT and SIGHUP; returns the exit code.
async fn wait(config: &Config) -> Result<u8> {
    // First of all: as PID 1 in a container, a signal without a handler does nothing.
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    // A closed terminal or session (ssh, a CI runner's shell) ends the wait the same way,
    // with the line saying what was not ready, instead of the kernel's silent default.
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let net = Net::from_system()?;
    let start = Instant::now();
    let deadline = config.timeout.map(|timeout| start + timeout);
    let board = Board::new(config.targets.len());
    let waiting = schedule::wait_all(
        &config.targets,
        &config.schedule,
        deadline,
        &board,
        |target, stage| {
            let net = &net;
            async move { target.check(net, &stage).await }
        },
    );
    let (name, number) = tokio::select! {
        outcome = waiting => return Ok(report(config, &board, outcome, start.elapsed())),
        _ = terminate.recv() => ("SIGTERM", libc_signal::TERM),
        _ = interrupt.recv() => ("SIGINT", libc_signal::INT),
        _ = hangup.recv() => ("SIGHUP", libc_signal::HUP),
    };
    let pending = not_ready(config, &board);
    warn!(
        event = "signal",
        signal = name,
        elapsed_ms = millis(start.elapsed()),
        "stopped by {name} after {}{}",
        human(start.elapsed()),
        if pending.is_empty() {
            String::new()
        } else {
            format!("; not ready: {}", pending.join("; "))
        }
    );
    Ok(exit::signalled(number))
}

/// `--serve` and `--pod-condition`: probes every target for as long as holdup runs,
/// answers on the address to serve on and keeps the pod's condition in step, until SIGTERM
/// or SIGINT, which end it with 0: a sidecar shut down with its pod has not failed.
async fn keep_running(config: &Config) -> Result<u8> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let net = Net::from_system()?;
    // What cannot work is said before anything is probed, as for a bad target.
    let condition = match config
        .pod_condition
        .as_deref()
        .map(|kind| PodCondition::new(kind, &net))
    {
        Some(Ok(condition)) => Some(condition),
        Some(Err(error)) => {
            error!(event = "usage", error = %format!("{error:#}"), "{error:#}");
            return Ok(exit::USAGE);
        }
        None => None,
    };
    let listener = match config.serve {
        Some(listen) => match serve::bind(&listen).await {
            Ok(listener) => Some((listen, listener)),
            Err(error) => {
                error!(event = "usage", error = %format!("{error:#}"), "{error:#}");
                return Ok(exit::USAGE);
            }
        },
        None => None,
    };
    if let Some((listen, listener)) = &listener {
        // With port 0 asked for, the port the system chose is the one to tell.
        let serving_on = match (listen, listener.local_addr()) {
            (Listen::AnyAddress(_), Ok(bound)) => Listen::AnyAddress(bound.port()),
            (Listen::Address(_), Ok(bound)) => Listen::Address(bound),
            (listen, Err(_)) => *listen,
        };
        info!(event = "serving", address = %serving_on, "serving /readyz, /livez and /metrics on {serving_on}");
    }
    let start = Instant::now();
    let watch = Watch::new(config.targets.len());
    let probing = keep::keep_probing(
        &config.targets,
        &config.schedule,
        config.recheck,
        &watch,
        |target, stage| {
            let net = &net;
            async move { target.check(net, &stage).await }
        },
    );
    let serving = async {
        match listener {
            Some((_, listener)) => serve::serve(listener, &config.targets, &watch).await,
            None => std::future::pending().await,
        }
    };
    let in_step = async {
        match &condition {
            Some(condition) => condition.keep_in_step(&config.targets, &watch).await,
            None => std::future::pending().await,
        }
    };
    let (name, code) = tokio::select! {
        () = probing => anyhow::bail!("the probing stopped, which it never should"),
        () = serving => anyhow::bail!("the server stopped, which it never should"),
        () = in_step => anyhow::bail!("the pod condition stopped being written, which it never should"),
        _ = terminate.recv() => ("SIGTERM", exit::READY),
        _ = interrupt.recv() => ("SIGINT", exit::READY),
        _ = hangup.recv() => ("SIGHUP", exit::signalled(libc_signal::HUP)),
    };
    info!(
        event = "signal",
        signal = name,
        elapsed_ms = millis(start.elapsed()),
        "stopped by {name} after running for {}",
        human(start.elapsed())
    );
    Ok(code)
}

/// Signal numbers, the same on every Linux architecture.
mod libc_signal {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

/// Says how the wait ended, one line per target that is not ready; returns the exit code.
fn report(config: &Config, board: &Board, outcome: Outcome, elapsed: Duration) -> u8 {
    match outcome {
        Outcome::Ready => exit::READY,
        Outcome::DeadlinePassed => {
            // Said with the timeout the user gave, which is what they will look for.
            let waited = config.timeout.unwrap_or(elapsed);
            for (index, target) in config.targets.iter().enumerate() {
                let record = board.record(index);
                if record.ready_after.is_some() {
                    continue;
                }
                let reason = record.reason();
                let tries = record.attempts_started();
                error!(
                    event = "not_ready",
                    target = %target,
                    error = %reason,
                    attempts = tries,
                    elapsed_ms = millis(elapsed),
                    "{target} not ready after {}: {reason} ({})",
                    human(waited),
                    attempts(tries)
                );
            }
            exit::NOT_READY
        }
        Outcome::Permanent(index) => {
            let target = &config.targets[index];
            let record = board.record(index);
            let reason = record.reason();
            error!(
                event = "failed",
                target = %target,
                error = %reason,
                attempts = record.attempts,
                elapsed_ms = millis(elapsed),
                "{target} failed: {reason} ({}); waiting cannot fix this",
                attempts(record.attempts)
            );
            exit::PERMANENT
        }
    }
}

/// `target (reason)` for every target not ready yet.
fn not_ready(config: &Config, board: &Board) -> Vec<String> {
    (0..board.len())
        .filter(|&index| board.record(index).ready_after.is_none())
        .map(|index| {
            format!(
                "{} ({})",
                config.targets[index],
                board.record(index).reason()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_match_the_platform() {
        // Checked against the values every Linux port uses.
        assert_eq!(exit::signalled(libc_signal::HUP), 129);
        assert_eq!(exit::signalled(libc_signal::INT), 130);
        assert_eq!(exit::signalled(libc_signal::TERM), 143);
    }
}
