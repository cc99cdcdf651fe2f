//! One run of holdup: read the configuration, wait for every target, say how it went,
//! then exec the command or pick the exit code.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::board::Board;
use crate::cli::{Config, Listen};
use crate::condition::PodCondition;
use crate::events::PodEvents;
use crate::exec::replace_process;
use crate::exit;
use crate::keep::{self, Watch};
use crate::live::LiveView;
use crate::log::{self, Verbosity, human, millis};
use crate::net::Net;
use crate::pace;
use crate::plan;
use crate::report::Report;
use crate::schedule::attempts;
use crate::serve;
use crate::summary::{Asked, Ending, Summary, TargetEnd, not_ready_words};
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
    let ended = if config.keeps_running() {
        // Kept running, holdup has no end to draw: the log and the endpoints show the state.
        runtime.block_on(keep_running(&config))
    } else {
        runtime.block_on(wait(&config, live))
    };
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
    let goals = goals(config);
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

/// `--serve` and `--pod-condition`: probes every target for as long as holdup runs,
/// answers on the address to serve on and keeps the pod's condition in step, until SIGTERM
/// or SIGINT, which end it with 0: a sidecar shut down with its pod has not failed.
///
/// What the targets were when it stopped is the run's summary: the termination message
/// (only for SIGHUP, the one that ends it with a failure) and the report are written then.
async fn keep_running(config: &Config) -> Result<Summary> {
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
            let message = format!("{error:#}");
            error!(event = "usage", error = %message, "{message}");
            return Ok(Summary::before_waiting(Ending::Usage(message), exit::USAGE));
        }
        None => None,
    };
    let listener = match config.serve {
        Some(listen) => match serve::bind(&listen).await {
            Ok(listener) => Some((listen, listener)),
            Err(error) => {
                let message = format!("{error:#}");
                error!(event = "usage", error = %message, "{message}");
                return Ok(Summary::before_waiting(Ending::Usage(message), exit::USAGE));
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
    let watch = Watch::new(config.targets.len(), config.min_ready);
    let goals = goals(config);
    let probing = keep::keep_probing(
        &config.targets,
        &goals,
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
    let mut events = PodEvents::start(config.no_events, config.targets.len(), &net);
    let telling = async {
        match events.as_mut() {
            Some(events) => {
                let not_ready = |index: usize| {
                    let state = watch.state(index);
                    (!state.ready).then(|| state.reason())
                };
                events.follow_changes(&config.targets, not_ready).await
            }
            None => std::future::pending().await,
        }
    };
    let (name, code) = tokio::select! {
        never = telling => match never {},
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
    Ok(watched(config, &goals, &watch, name, code, start.elapsed()))
}

/// The summary of a run kept going until `signal` stopped it: every target as the latest
/// attempts left it, a ready one with when it last became ready.
fn watched(
    config: &Config,
    goals: &[Goal],
    watch: &Watch,
    signal: &'static str,
    exit_code: u8,
    elapsed: Duration,
) -> Summary {
    let started = std::time::SystemTime::now()
        .checked_sub(elapsed)
        .unwrap_or(std::time::UNIX_EPOCH);
    let targets = config
        .targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let state = watch.state(index);
            TargetEnd {
                target: target.to_string(),
                kind: target.kind(),
                ready_after: state.ready.then(|| {
                    state
                        .last_change
                        .duration_since(started)
                        .unwrap_or_default()
                }),
                attempts: u32::try_from(state.attempts).unwrap_or(u32::MAX),
                reason: (!state.ready).then(|| state.reason()),
                failed: false,
                not_needed: false,
                goal: goals.get(index).copied().unwrap_or_default(),
                streak: state.streak,
            }
        })
        .collect();
    Summary {
        exit_code,
        ending: Ending::Signal(signal),
        elapsed,
        timeout: None,
        needed: config.min_ready,
        targets,
    }
}

/// What each target must do to count as ready: its own `#stable=N` or `--stable`, `#down`.
fn goals(config: &Config) -> Vec<Goal> {
    config
        .targets
        .iter()
        .map(|target| {
            let asked = target.wait_options();
            Goal {
                stable: asked.stable.unwrap_or(config.stable),
                down: asked.down,
            }
        })
        .collect()
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
