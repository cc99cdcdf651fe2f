//! One run of holdup: read the configuration, wait for every target, say how it went,
//! then exec the command or pick the exit code.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::board::Board;
use crate::cli::Config;
use crate::events::PodEvents;
use crate::exec::replace_process;
use crate::exit;
use crate::live::LiveView;
use crate::log::{self, Verbosity, human, millis};
use crate::net::Net;
use crate::pace;
use crate::plan;
use crate::report::Report;
use crate::schedule::attempts;
use crate::summary::{Asked, Ending, Summary, not_ready_words};
use crate::termination::TerminationLog;
use crate::usage::{self, Parsed};
use crate::wait::{self, Goal, Outcome, Until};

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
        Parsed::Wrong {
            format,
            message,
            termination_log,
        } => {
            log::init(format, Verbosity::new(false, 0));
            error!(event = "usage", error = %message, "{message}");
            let summary = Summary::before_waiting(Ending::Usage(message), exit::USAGE);
            termination_log.write(&summary.termination_lines());
            return exit::USAGE;
        }
    };
    log::init(args.log_format, Verbosity::new(args.quiet, args.verbose));
    let live = LiveView::wanted(args.log_format, args.quiet);
    let termination_log = TerminationLog::from_value(args.termination_log.as_deref());
    let report = args.report.clone();
    let mut config = match args.into_config(std::env::var("HOLDUP_WAIT_FOR").ok()) {
        Ok(config) => config,
        Err(error) => {
            error!(event = "usage", error = %format!("{error:#}"), "{error:#}");
            let summary = Summary::before_waiting(Ending::Usage(format!("{error:#}")), exit::USAGE);
            tell(&termination_log, report.as_ref(), &summary);
            return exit::USAGE;
        }
    };
    if config.dry_run {
        plan::show(&config);
        return exit::READY;
    }
    // Before any socket: a long list of targets needs more than a soft limit of 1,024, and
    // what the limit allows bounds the attempts in flight.
    config.schedule.limits.in_flight = pace::in_flight_for(pace::raise_open_files_limit());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let message = format!("cannot start the event loop: {error}");
            error!(event = "internal", "{message}");
            let summary = Summary::before_waiting(Ending::Internal(message), exit::INTERNAL);
            tell(&config.termination_log, config.report.as_ref(), &summary);
            return exit::INTERNAL;
        }
    };
    let ended = runtime.block_on(wait(&config, live));
    // Nothing may hold up the exec: stray resolver tasks are simply dropped.
    runtime.shutdown_background();
    let mut summary = match ended {
        Ok(summary) => summary,
        Err(error) => {
            let message = format!("{error:#}");
            error!(event = "internal", "{message}");
            Summary::before_waiting(Ending::Internal(message), exit::INTERNAL)
        }
    };
    tell(&config.termination_log, config.report.as_ref(), &summary);
    if summary.exit_code != exit::READY {
        return summary.exit_code;
    }
    match replace_process(&config.command) {
        None => exit::READY,
        Some((code, message)) => {
            summary.exit_code = code;
            summary.ending = Ending::ExecFailed(message);
            tell(&config.termination_log, config.report.as_ref(), &summary);
            code
        }
    }
}

/// Says how the run ended where people look besides the log: the termination message
/// (only when it failed) and the report.
fn tell(termination_log: &TerminationLog, report: Option<&Report>, summary: &Summary) {
    if summary.exit_code != exit::READY {
        termination_log.write(&summary.termination_lines());
    }
    if let Some(report) = report {
        report.write(summary);
    }
}

/// Waits for every target, handling SIGTERM, SIGINT and SIGHUP; returns how it ended.
async fn wait(config: &Config, live: Option<LiveView>) -> Result<Summary> {
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
    let goals: Vec<Goal> = config
        .targets
        .iter()
        .map(|target| {
            let asked = target.wait_options();
            Goal {
                stable: asked.stable.unwrap_or(config.stable),
                down: asked.down,
            }
        })
        .collect();
    let until = Until {
        min_ready: config.min_ready,
        once: config.once,
    };
    let waiting = wait::wait(
        &config.targets,
        &goals,
        until,
        &config.schedule,
        deadline,
        &board,
        |target, stage| {
            let net = &net;
            async move { target.check(net, &stage).await }
        },
    );
    let mut events = PodEvents::start(config.no_events, config.targets.len(), &net);
    let ended = {
        // Beside the wait, never in its way: it only reads the board.
        let beside = async {
            let events = async {
                match events.as_mut() {
                    Some(events) => events.follow(&config.targets, &board).await,
                    None => std::future::pending().await,
                }
            };
            let view = async {
                match &live {
                    Some(live) => live.follow(&config.targets, &board, start).await,
                    None => std::future::pending().await,
                }
            };
            // Neither ends on its own: only the wait or a signal ends the select.
            let (never, _) = tokio::join!(events, view);
            never
        };
        tokio::select! {
            outcome = waiting => Ok(outcome),
            never = beside => match never {},
            _ = terminate.recv() => Err(("SIGTERM", libc_signal::TERM)),
            _ = interrupt.recv() => Err(("SIGINT", libc_signal::INT)),
            _ = hangup.recv() => Err(("SIGHUP", libc_signal::HUP)),
        }
    };
    let elapsed = start.elapsed();
    let asked = Asked {
        targets: &config.targets,
        goals: &goals,
        needed: config.min_ready,
        timeout: config.timeout,
    };
    let summary = match ended {
        Ok(outcome) => {
            let code = report(config, &board, &outcome, elapsed);
            let ending = match outcome {
                Outcome::Ready => (Ending::Ready, None),
                Outcome::DeadlinePassed => (Ending::DeadlinePassed, None),
                Outcome::Tried => (Ending::Tried, None),
                Outcome::Permanent(index) => (Ending::Failed, Some(index)),
            };
            Summary::new(&asked, &board, ending, code, elapsed)
        }
        Err((name, number)) => {
            let pending = not_ready(config, &board);
            warn!(
                event = "signal",
                signal = name,
                elapsed_ms = millis(elapsed),
                "stopped by {name} after {}{}",
                human(elapsed),
                if pending.is_empty() {
                    String::new()
                } else {
                    format!("; not ready: {}", pending.join("; "))
                }
            );
            let code = exit::signalled(number);
            Summary::new(&asked, &board, (Ending::Signal(name), None), code, elapsed)
        }
    };
    if let Some(live) = &live {
        live.finish(&summary);
    }
    if let Some(events) = events.as_mut() {
        events.finish(&config.targets, &summary).await;
    }
    Ok(summary)
}

/// Signal numbers, the same on every Linux architecture.
mod libc_signal {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

/// Says how the wait ended, one line per target that is not ready; returns the exit code.
fn report(config: &Config, board: &Board, outcome: &Outcome, elapsed: Duration) -> u8 {
    match *outcome {
        Outcome::Ready => {
            let ready = board.ready();
            for (index, target) in config.targets.iter().enumerate() {
                let record = board.record(index);
                if !record.not_needed {
                    continue;
                }
                let tries = record.attempts_started();
                info!(
                    event = "not_needed",
                    target = %target,
                    error = %record.reason(),
                    attempts = tries,
                    elapsed_ms = millis(elapsed),
                    "{target} not needed: {ready} of {} targets ready; it was not: {} ({})",
                    config.targets.len(),
                    record.reason(),
                    attempts(tries)
                );
            }
            exit::READY
        }
        Outcome::DeadlinePassed | Outcome::Tried => {
            // Said with the timeout the user gave, which is what they will look for; with
            // --once, the one attempt is what there was.
            let waited = match outcome {
                Outcome::Tried => String::new(),
                _ => format!(" after {}", human(config.timeout.unwrap_or(elapsed))),
            };
            let ready = board.ready();
            if config.min_ready < config.targets.len() {
                error!(
                    event = "too_few",
                    ready,
                    needed = config.min_ready,
                    "{ready} of {} targets ready; {} needed",
                    config.targets.len(),
                    config.min_ready
                );
            }
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
                    "{target} {}{waited}: {reason} ({})",
                    not_ready_words(target.wait_options().down),
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
