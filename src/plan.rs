//! `--dry-run`: everything a run would use, nothing probed. Each target with its settings,
//! defaults filled in (from its kind's `plan`); the resolver configuration in force; the
//! schedule; the command. As text lines, and as JSON `plan` events whose `settings` are
//! one object.

use serde_json::{Map, Value};
use tracing::info;

use crate::cli::Config;
use crate::kube::pod::{self, PodEnvironment};
use crate::net;
use crate::report::ReportFormat;
use crate::termination::{self, TerminationLog};

/// Logs the plan of `config`.
pub fn show(config: &Config) {
    for target in &config.targets {
        let settings = target.plan();
        info!(
            event = "plan",
            part = "target",
            target = %target,
            settings = %object(&settings),
            "would wait for {target}: {}",
            text(&settings)
        );
    }
    let resolver = net::system_plan();
    info!(
        event = "plan",
        part = "resolver",
        settings = %object(&resolver),
        "resolver: {}",
        text(&resolver)
    );
    let schedule = schedule(config);
    info!(
        event = "plan",
        part = "schedule",
        settings = %object(&schedule),
        "schedule: {}",
        text(&schedule)
    );
    let telling = telling(config);
    info!(
        event = "plan",
        part = "reporting",
        settings = %object(&telling),
        "reporting: {}",
        text(&telling)
    );
    if let Some(listen) = config.serve {
        let recheck = humantime::format_duration(config.recheck);
        info!(
            event = "plan",
            part = "serve",
            address = %listen,
            recheck = %recheck,
            "then keep probing (ready targets every {recheck}) and serve /readyz, /livez and /metrics on {listen}; /readyz answers 200 while {}",
            ready_when(config)
        );
    }
    if let Some(kind) = &config.pod_condition {
        info!(
            event = "plan",
            part = "pod-condition",
            condition = %kind,
            "then keep condition {kind} of this pod (POD_NAME and POD_NAMESPACE, or the hostname and the service account's namespace) True while {}, False otherwise",
            ready_when(config)
        );
    }
    if let Some((program, args)) = config.command.split_first() {
        let program = program.to_string_lossy();
        // The program, then its arguments, if any: no space dangling after a bare program.
        let line: Vec<_> = std::iter::once(program.clone())
            .chain(args.iter().map(|arg| arg.to_string_lossy()))
            .collect();
        info!(
            event = "plan",
            part = "command",
            command = %program,
            "then run {}",
            line.join(" ")
        );
    }
}

/// "all targets are ready", "1 of 3 targets are ready".
fn ready_when(config: &Config) -> String {
    if config.min_ready == config.targets.len() {
        "all targets are ready".to_string()
    } else {
        format!(
            "{} of {} targets are ready",
            config.min_ready,
            config.targets.len()
        )
    }
}

fn schedule(config: &Config) -> Vec<(&'static str, String)> {
    let schedule = &config.schedule;
    // As the flags take them, so that a value can be pasted back.
    let human = |duration| humantime::format_duration(duration).to_string();
    vec![
        (
            "timeout",
            if config.keeps_running() {
                // Serving has no deadline: a --timeout given (or its default) does not apply.
                "none (--serve and --pod-condition keep probing)".to_string()
            } else {
                config
                    .timeout
                    .map_or("none (waits forever)".to_string(), human)
            },
        ),
        ("attempt timeout", human(schedule.attempt_timeout)),
        ("interval", human(schedule.interval)),
        ("backoff after", human(schedule.backoff_after)),
        ("steady interval", human(schedule.steady_interval)),
        ("slow after", human(schedule.slow_after)),
        ("max interval", human(schedule.max_interval)),
        ("stable", config.stable.to_string()),
        ("ready when", ready_when(config)),
        (
            "attempts",
            if config.once {
                "one per target (--once)"
            } else if config.keeps_running() {
                "for as long as holdup runs (--serve, --pod-condition)"
            } else {
                "until ready or the deadline"
            }
            .to_string(),
        ),
        ("jitter", format!("±{:.0}%", schedule.jitter * 100.0)),
        (
            "max rate",
            schedule
                .limits
                .max_rate
                .map_or("no limit".to_string(), |rate| format!("{rate} retries/s")),
        ),
    ]
}

/// Where the run says how it went besides the log: the termination message, the report,
/// the Events on the pod.
fn telling(config: &Config) -> Vec<(&'static str, String)> {
    let termination_log = match &config.termination_log {
        TerminationLog::Off => "off".to_string(),
        TerminationLog::Path(path) => format!("{} (on failure)", path.display()),
        TerminationLog::Default => {
            let writable = std::fs::OpenOptions::new()
                .append(true)
                .open(termination::DEFAULT_PATH)
                .is_ok();
            if writable {
                format!("{} (on failure)", termination::DEFAULT_PATH)
            } else {
                format!(
                    "none: {} is not here or not writable",
                    termination::DEFAULT_PATH
                )
            }
        }
    };
    let report = match &config.report {
        None => "none".to_string(),
        Some(report) => format!(
            "{} ({})",
            report.path.display(),
            match report.format {
                ReportFormat::Json => "JSON",
                ReportFormat::Junit => "JUnit XML",
            }
        ),
    };
    let events = if config.no_events {
        "off (--no-events)".to_string()
    } else {
        match pod::identify(&PodEnvironment::from_process()) {
            Some(pod) => format!("on pod {}/{} (from {})", pod.namespace, pod.name, pod.from),
            None => "none: not in a Kubernetes pod".to_string(),
        }
    };
    vec![
        ("termination log", termination_log),
        ("report", report),
        ("events", events),
    ]
}

/// `name=value; name=value`: values may hold commas (`status=200,204`).
fn text(settings: &[(&'static str, String)]) -> String {
    settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The settings as one JSON object (its keys sorted, as serde_json keeps them).
fn object(settings: &[(&'static str, String)]) -> Value {
    let object: Map<String, Value> = settings
        .iter()
        .map(|(name, value)| (name.replace(' ', "_"), Value::String(value.clone())))
        .collect();
    Value::Object(object)
}
