//! The command line: flags and targets as typed (with their `HOLDUP_*` variables), then
//! checked and turned into a [`Config`] with real types. Nothing here touches the network.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};

use crate::log::Format;
use crate::pace::{DEFAULT_MAX_RATE, Limits};
use crate::probe::{self, Target};
use crate::report::Report;
use crate::schedule::{JITTER, Schedule};
use crate::termination::TerminationLog;

mod lists;
mod values;

use lists::{split_targets, targets_from};
pub use values::Listen;
use values::{
    condition_type, duration, listen, min_ready, positive_duration, rate, report, stable,
};

/// What `--help` shows after the flags: the target forms (from the table of kinds), where
/// options go, how HOLDUP_WAIT_FOR is split, and the exit codes.
fn after_help() -> String {
    format!(
        "Targets:\n{}\
Options go in the URL fragment, e.g. http://api:8080/health#status=200&body=ok;
see the README for every option. Any target also takes #stable=N (ready only after N
attempts in a row) and #down (ready once it no longer answers); an exec: command takes
them as its last word: exec:pg_isready -h db #stable=3.

HOLDUP_WAIT_FOR holds targets separated by white space or commas. A comma starts a
new target only when what follows is scheme://... or HOST:PORT (HOST a name with a
letter in its last label, an IPv4 address or a [bracketed IPv6] address; PORT a
number); any other comma belongs to the target, as in ?t=10:30,11:45 or
#status=200,204. To keep a comma before such a word inside a target, write it %2C.
A word that starts with exec: begins a command, which takes the rest of its line:
put it last on its line, or each target on a line of its own.

Exit codes: 0 ready (--serve, --pod-condition: stopped by SIGTERM or SIGINT), 1 deadline
passed (--once: not ready), 2 usage error, 3 permanent failure, 70 holdup could not start,
126/127 CMD cannot be run / not found, 128+N stopped by signal N.",
        probe::help()
    )
}

/// Holds a program back until the services it depends on are really ready.
#[derive(Debug, Parser)]
#[command(name = "holdup", version, after_help = after_help())]
pub struct Args {
    /// Targets to wait for, before `--` and the command: `holdup db:5432
    /// http://api/health -- ./server`.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// A target to wait for; repeat for several. Without any target, HOLDUP_WAIT_FOR is
    /// read (targets separated by white space or commas; see below).
    #[arg(short = 'w', long = "wait-for", value_name = "TARGET")]
    pub wait_for: Vec<String>,

    /// Also wait for the targets in FILE (`-`: standard input), one a line; blank lines and
    /// lines starting with # are skipped.
    #[arg(long, env = "HOLDUP_TARGETS_FROM", value_name = "FILE")]
    pub targets_from: Option<OsString>,

    /// Give up after this long (500ms, 30s, 2m; a bare number is seconds); 0 waits forever.
    #[arg(short, long, env = "HOLDUP_TIMEOUT", value_name = "DURATION", allow_hyphen_values = true, default_value = "60s", value_parser = duration)]
    pub timeout: Duration,

    /// Longest one attempt may take; never longer than the time left.
    #[arg(long, env = "HOLDUP_ATTEMPT_TIMEOUT", value_name = "DURATION", allow_hyphen_values = true, default_value = "5s", value_parser = positive_duration)]
    pub attempt_timeout: Duration,

    /// Delay between attempts while a target is young.
    #[arg(long, env = "HOLDUP_INTERVAL", value_name = "DURATION", allow_hyphen_values = true, default_value = "100ms", value_parser = positive_duration)]
    pub interval: Duration,

    /// Once a target has been waited on this long, its delay doubles with every attempt, up
    /// to --steady-interval.
    #[arg(long, env = "HOLDUP_BACKOFF_AFTER", value_name = "DURATION", allow_hyphen_values = true, default_value = "1500ms", value_parser = duration)]
    pub backoff_after: Duration,

    /// Delay between attempts after the backoff, until --slow-after (kept between
    /// --interval and --max-interval).
    #[arg(long, env = "HOLDUP_STEADY_INTERVAL", value_name = "DURATION", allow_hyphen_values = true, default_value = "700ms", value_parser = positive_duration)]
    pub steady_interval: Duration,

    /// Once a target has been waited on this long, its delay doubles again, up to
    /// --max-interval.
    #[arg(long, env = "HOLDUP_SLOW_AFTER", value_name = "DURATION", allow_hyphen_values = true, default_value = "2m", value_parser = duration)]
    pub slow_after: Duration,

    /// Longest delay between two attempts (each delay is randomised by ±20%).
    #[arg(long, env = "HOLDUP_MAX_INTERVAL", value_name = "DURATION", allow_hyphen_values = true, default_value = "2s", value_parser = positive_duration)]
    pub max_interval: Duration,

    /// One attempt per target, then exit (0 all ready, 1 not): for health checks and
    /// probes. With #stable=N, up to N attempts in a row.
    #[arg(long, env = "HOLDUP_ONCE", value_parser = BoolishValueParser::new())]
    pub once: bool,

    /// A target is ready only after N successful attempts in a row, spaced by --interval
    /// (the default of every target; #stable=N on one target).
    #[arg(long, env = "HOLDUP_STABLE", value_name = "N", default_value = "1", value_parser = stable)]
    pub stable: u32,

    /// Ready as soon as N of the targets are; the others are stopped, "not needed".
    #[arg(long, env = "HOLDUP_MIN_READY", value_name = "N", value_parser = min_ready, conflicts_with = "any")]
    pub min_ready: Option<usize>,

    /// Ready as soon as any one target is (--min-ready 1).
    #[arg(long, env = "HOLDUP_ANY", value_parser = BoolishValueParser::new())]
    pub any: bool,

    /// Retries started per second across all targets (each target's first attempt goes at
    /// once); 0: no limit.
    #[arg(long, env = "HOLDUP_MAX_RATE", value_name = "N", default_value_t = DEFAULT_MAX_RATE, value_parser = rate)]
    pub max_rate: u32,

    /// Log format on stderr.
    #[arg(
        long,
        env = "HOLDUP_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: Format,

    /// Print errors only.
    #[arg(short, long, env = "HOLDUP_QUIET", conflicts_with = "verbose", value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// Log every attempt (-v), and what the libraries underneath say (-vv).
    #[arg(short, long, env = "HOLDUP_VERBOSE", action = ArgAction::Count)]
    pub verbose: u8,

    /// Do not exit once ready: keep probing every target and serve /readyz, /livez and
    /// /metrics over HTTP on ADDR (:8080 for every address, or IP:PORT).
    #[arg(long, env = "HOLDUP_SERVE", value_name = "ADDR", value_parser = listen)]
    pub serve: Option<Listen>,

    /// Keep the condition TYPE of holdup's own pod (e.g. holdup.dev/dependencies) True
    /// while every target is ready and False while one is not; keeps probing, with or
    /// without --serve. The pod's readinessGates list TYPE.
    #[arg(long, env = "HOLDUP_POD_CONDITION", value_name = "TYPE", value_parser = condition_type)]
    pub pod_condition: Option<String>,

    /// With --serve or --pod-condition: how often a ready target is probed again (one not ready is probed on
    /// the usual schedule).
    #[arg(long, env = "HOLDUP_RECHECK", value_name = "DURATION", allow_hyphen_values = true, default_value = "5s", value_parser = positive_duration)]
    pub recheck: Duration,

    /// Check the command line and every target, say what would be done, and exit.
    #[arg(long, env = "HOLDUP_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,

    /// Write why holdup failed here on every non-zero exit, where Kubernetes shows it
    /// (kubectl describe pod, lastState.terminated.message). Default: /dev/termination-log
    /// when it exists and is writable. An empty value turns it off.
    #[arg(long, env = "HOLDUP_TERMINATION_LOG", value_name = "PATH")]
    pub termination_log: Option<String>,

    /// At exit, write a report of the whole wait: PATH.json as JSON, PATH.xml as JUnit XML.
    #[arg(long, env = "HOLDUP_REPORT", value_name = "PATH", value_parser = report)]
    pub report: Option<Report>,

    /// Post no Kubernetes Events on the pod holdup runs in.
    #[arg(long, env = "HOLDUP_NO_EVENTS", value_parser = BoolishValueParser::new())]
    pub no_events: bool,

    /// The command to exec once every target is ready (after `--`). It replaces holdup:
    /// same PID, environment and stdio.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,

    /// The flags whose value came from their HOLDUP_* variable, by id: a bad value is
    /// named as the user gave it.
    #[arg(skip)]
    pub from_env: Vec<(String, String)>,
}

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    /// None: wait forever.
    pub timeout: Option<Duration>,
    pub schedule: Schedule,
    /// One chance per target.
    pub once: bool,
    /// `--stable`: attempts in a row, for targets without `#stable=N`.
    pub stable: u32,
    /// Targets that must be ready: all of them, unless `--min-ready` or `--any`.
    pub min_ready: usize,
    pub command: Vec<OsString>,
    pub dry_run: bool,
    /// Where to serve, if holdup keeps probing instead of exiting.
    pub serve: Option<Listen>,
    /// The condition of holdup's pod to keep in step with the targets.
    pub pod_condition: Option<String>,
    /// How often a ready target is probed again while serving.
    pub recheck: Duration,
    pub termination_log: TerminationLog,
    pub report: Option<Report>,
    pub no_events: bool,
}

impl Config {
    /// Whether holdup keeps probing for as long as it runs, rather than exiting once ready.
    pub fn keeps_running(&self) -> bool {
        self.serve.is_some() || self.pod_condition.is_some()
    }
}

impl Args {
    /// Checks the flags; `wait_for_env` is HOLDUP_WAIT_FOR, used only without targets.
    pub fn into_config(self, wait_for_env: Option<String>) -> Result<Config> {
        let given = self.targets.len() + self.wait_for.len();
        // A word that is not a target may be the command, without its `--`; one with a
        // scheme holdup knows, or any `scheme://`, is a target with a mistake in it.
        let hint = |index: usize, text: &str| {
            let positional = index < self.targets.len();
            let looks_like_url = text.contains("://");
            if positional
                && self.command.is_empty()
                && !looks_like_url
                && !probe::has_known_scheme(text)
            {
                "; did you forget `--` before the command? (holdup TARGET... -- CMD ARGS...)"
            } else {
                ""
            }
        };
        let mut targets = if given > 0 {
            let texts = self.targets.iter().chain(&self.wait_for);
            texts
                .enumerate()
                .map(|(index, text)| {
                    Target::parse(text).map_err(|error| anyhow!("{error:#}{}", hint(index, text)))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            split_targets(wait_for_env.as_deref().unwrap_or_default())
                .iter()
                .map(|text| {
                    Target::parse(text).map_err(|error| anyhow!("HOLDUP_WAIT_FOR: {error:#}"))
                })
                .collect::<Result<Vec<_>>>()?
        };
        if let Some(file) = &self.targets_from {
            targets.extend(targets_from(file, &self.named("targets_from"))?);
        }
        if targets.is_empty() {
            bail!(
                "nothing to wait for: give targets (holdup db:5432 http://api/health), \
                 --wait-for TARGET, --targets-from FILE, or HOLDUP_WAIT_FOR"
            );
        }
        if self.max_interval < self.interval {
            bail!(
                "{} ({}) is shorter than {} ({})",
                self.named("max_interval"),
                humantime::format_duration(self.max_interval),
                self.named("interval"),
                humantime::format_duration(self.interval)
            );
        }
        let min_ready = match (self.min_ready, self.any) {
            (Some(count), _) => count,
            (None, true) => 1,
            (None, false) => targets.len(),
        };
        if min_ready > targets.len() {
            let named = self.named("min_ready");
            let given = if named.starts_with("--") {
                format!("{named} {min_ready}")
            } else {
                format!("{named}={min_ready}")
            };
            bail!(
                "{given} asks for more targets than the {} given",
                targets.len()
            );
        }
        let keeps_running = [
            ("serve", self.serve.is_some()),
            ("pod_condition", self.pod_condition.is_some()),
        ];
        if let Some((flag, _)) = keeps_running.iter().find(|(_, given)| *given)
            && !self.command.is_empty()
        {
            bail!(
                "{} keeps holdup running, so there is no command to run after `--`: \
                 run the command in a container of its own",
                self.named(flag)
            );
        }
        if let Some((flag, _)) = keeps_running.iter().find(|(_, given)| *given)
            && self.once
        {
            bail!(
                "{} cannot be used with {}: --once tries each target once and ends, while {} \
                 keeps probing for as long as holdup runs",
                self.named("once"),
                self.named(flag),
                self.named(flag)
            );
        }
        Ok(Config {
            timeout: Some(self.timeout).filter(|timeout| !timeout.is_zero()),
            schedule: Schedule {
                interval: self.interval,
                backoff_after: self.backoff_after,
                steady_interval: self.steady_interval,
                slow_after: self.slow_after,
                max_interval: self.max_interval,
                attempt_timeout: self.attempt_timeout,
                jitter: JITTER,
                limits: Limits {
                    max_rate: Some(self.max_rate).filter(|rate| *rate > 0),
                    ..Limits::default()
                },
            },
            targets,
            once: self.once,
            stable: self.stable,
            min_ready,
            command: self.command,
            dry_run: self.dry_run,
            serve: self.serve,
            pod_condition: self.pod_condition,
            recheck: self.recheck,
            termination_log: TerminationLog::from_value(self.termination_log.as_deref()),
            report: self.report,
            no_events: self.no_events,
        })
    }

    /// A flag as the user gave it: `--interval`, or `HOLDUP_INTERVAL` when it came from
    /// there.
    fn named(&self, id: &str) -> String {
        match self.from_env.iter().find(|(flag, _)| flag == id) {
            Some((_, variable)) => variable.clone(),
            None => format!("--{}", id.replace('_', "-")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lists::listed_targets;
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("holdup").chain(args.iter().copied()))
    }

    #[test]
    fn durations() {
        let valid = [
            ("0", Duration::ZERO),
            ("15", Duration::from_secs(15)),
            ("2.5", Duration::from_millis(2_500)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", Duration::from_secs(90)),
            (" 2m ", Duration::from_secs(120)),
        ];
        for (text, expected) in valid {
            assert_eq!(duration(text), Ok(expected), "{text}");
        }
        for invalid in ["", "-1", "abc", "5 parsecs", "NaN", "1e400"] {
            assert!(duration(invalid).is_err(), "{invalid}");
        }
        assert!(positive_duration("0s").is_err());
        assert_eq!(rate(" 500 "), Ok(500));
        for invalid in ["", "-5", "1.5", "abc", "99999999999"] {
            assert!(
                rate(invalid).unwrap_err().contains("expected e.g. 1000"),
                "{invalid}"
            );
        }
    }

    #[test]
    fn serve_addresses() {
        let valid = [
            (":8080", Listen::AnyAddress(8080)),
            (":0", Listen::AnyAddress(0)),
            (
                "127.0.0.1:9",
                Listen::Address("127.0.0.1:9".parse().unwrap()),
            ),
            ("[::1]:8080", Listen::Address("[::1]:8080".parse().unwrap())),
        ];
        for (text, expected) in valid {
            assert_eq!(listen(text), Ok(expected), "{text}");
            assert_eq!(expected.to_string(), text);
        }
        for invalid in [
            "",
            "8080",
            ":http",
            ":70000",
            "localhost:8080",
            "0.0.0.0",
            "[::1]",
        ] {
            assert!(listen(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn condition_types() {
        for valid in [
            "holdup.dev/dependencies",
            "Dependencies",
            "example.com/db-ready",
            "a",
        ] {
            assert_eq!(condition_type(valid).as_deref(), Ok(valid), "{valid}");
        }
        for invalid in [
            "",
            "/x",
            "holdup.dev/",
            "Holdup.dev/x",
            "a b",
            "-x",
            "x-",
            "a..b/x",
            &"x".repeat(64),
        ] {
            assert!(condition_type(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn serving_has_no_command_to_run() {
        let error = parse(&["--serve", ":8080", "db:5432", "--", "app"])
            .unwrap()
            .into_config(None)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("--serve keeps holdup running"),
            "{error}"
        );
        let config = parse(&["--serve", ":8080", "db:5432"])
            .unwrap()
            .into_config(None)
            .unwrap();
        assert_eq!(config.serve, Some(Listen::AnyAddress(8080)));
        assert_eq!(config.recheck, Duration::from_secs(5));
    }

    #[test]
    fn targets_from_the_environment() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("db:5432", &["db:5432"]),
            ("db:5432,cache:6379", &["db:5432", "cache:6379"]),
            (
                "tcp://a:1, http://b/health  https://c/",
                &["tcp://a:1", "http://b/health", "https://c/"],
            ),
            (
                "http://b/?ids=1,2,3#status=200,204,tcp://a:1",
                &["http://b/?ids=1,2,3#status=200,204", "tcp://a:1"],
            ),
            (
                "\n tcp://a:1 \n\t tcp://b:2 \n",
                &["tcp://a:1", "tcp://b:2"],
            ),
            (",,tcp://a:1,,", &["tcp://a:1"]),
            // A comma starts a target only before scheme:// or a whole HOST:PORT.
            ("http://x/?t=10:30,11:45", &["http://x/?t=10:30,11:45"]),
            ("http://x/?v=1.2:3,4.5:6", &["http://x/?v=1.2:3,4.5:6"]),
            ("http://x/?a=1,b", &["http://x/?a=1,b"]),
            (
                "db:5432,10.0.0.1:80,[::1]:5432",
                &["db:5432", "10.0.0.1:80", "[::1]:5432"],
            ),
            (
                "http://x/?t=10:30,db:5432",
                &["http://x/?t=10:30", "db:5432"],
            ),
            (
                "http://x/?t=10:30%2Cdb:5432",
                &["http://x/?t=10:30%2Cdb:5432"],
            ),
            (
                "postgres://u@a:5432,b:5432/app,https://y/",
                &["postgres://u@a:5432,b:5432/app", "https://y/"],
            ),
            (
                "http://x/#status=200,204,dns://db",
                &["http://x/#status=200,204", "dns://db"],
            ),
            // An exec: command takes the rest of its line, spaces and commas included.
            ("exec:pg_isready -h db", &["exec:pg_isready -h db"]),
            (
                "db:5432 exec:check --ids 1,2 http://x/",
                &["db:5432", "exec:check --ids 1,2 http://x/"],
            ),
            (
                "db:5432,cache:6379\nexec:sh -c 'exit 0'  \n\texec:true\r\nhttp://x/",
                &[
                    "db:5432",
                    "cache:6379",
                    "exec:sh -c 'exit 0'",
                    "exec:true",
                    "http://x/",
                ],
            ),
            ("EXEC:true", &["EXEC:true"]),
            // Only a word of its own: inside a word, exec: is text.
            ("http://x/?run=exec:a,b", &["http://x/?run=exec:a,b"]),
            ("db:5432,exec:true", &["db:5432,exec:true"]),
            // The examples of the README.
            (
                "db:5432 exec:pg_isready -h db",
                &["db:5432", "exec:pg_isready -h db"],
            ),
            (
                "exec:check --ids 1,2 db:5432",
                &["exec:check --ids 1,2 db:5432"],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(split_targets(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn lists_of_targets_in_a_file() {
        let text = b"# deps\n\ndb:5432\n  # indented comment\r\n\thttp://api/#status=200  \nexec:sh -c 'a, b'\n\xff\n";
        let listed: Vec<(usize, Result<&str, ()>)> = listed_targets(text);
        assert_eq!(
            listed,
            [
                (3, Ok("db:5432")),
                (5, Ok("http://api/#status=200")),
                (6, Ok("exec:sh -c 'a, b'")),
                (7, Err(())),
            ]
        );
        assert!(listed_targets(b"").is_empty());
        assert!(listed_targets(b"\n\n  \n#x\n").is_empty());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn durations_parse_or_say_the_expected_form(text in prop_oneof![
                any::<String>(),
                "-?[0-9]{0,25}(\\.[0-9]{0,25})?(e-?[0-9]{1,4})?",
                "-?[0-9]{1,20} ?(ns|us|ms|s|m|h|d|w|M|y|sec|min|parsecs|)",
            ]) {
                match duration(&text) {
                    Ok(_) => {}
                    Err(message) => {
                        prop_assert!(
                            message.contains("expected") || message.contains("zero or more seconds"),
                            "{text:?}: {message}"
                        );
                        prop_assert!(!message.contains('\n'));
                    }
                }
            }

            /// `--stable N` and `--min-ready N` take a whole number from 1, as `#stable=N`
            /// does, and refuse anything else with the expected form.
            #[test]
            fn counts_parse_or_say_the_expected_form(text in prop_oneof![
                any::<String>(),
                " ?-?[0-9]{0,12} ?",
                Just("0".to_string()),
            ]) {
                let whole = text.trim().parse::<u64>().ok().filter(|count| *count >= 1);
                match stable(&text) {
                    Ok(count) => prop_assert_eq!(Some(u64::from(count)), whole),
                    Err(message) => {
                        prop_assert!(whole.is_none_or(|count| count > u64::from(u32::MAX)), "{text:?}");
                        prop_assert!(message.contains("expected a whole number, 1 or more"), "{message}");
                        prop_assert!(!message.contains('\n'));
                    }
                }
                match min_ready(&text) {
                    Ok(count) => prop_assert_eq!(Some(count as u64), whole),
                    Err(message) => {
                        prop_assert!(whole.is_none_or(|count| count > usize::MAX as u64), "{text:?}");
                        prop_assert!(message.contains("expected a whole number, 1 or more"), "{message}");
                    }
                }
            }

            /// Splitting loses no target text: every piece comes from the input, and no
            /// piece is empty.
            #[test]
            fn wait_for_lists_split_without_loss(text in prop_oneof![
                any::<String>(),
                "([a-z]{1,5}://[a-z:0-9,#=&?/]{0,12}|[a-z]{1,5}:[0-9]{1,5}|exec:[a-z ,]{0,8}|[ ,\n\t]{1,3}){0,10}",
            ]) {
                for target in split_targets(&text) {
                    prop_assert!(!target.is_empty());
                    prop_assert!(!target.starts_with(char::is_whitespace), "{target:?}");
                    let pieces_found = target.split(',').all(|piece| text.contains(piece));
                    prop_assert!(pieces_found, "{target:?} from {text:?}");
                }
            }

            #[test]
            fn files_of_targets_are_read_line_by_line(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let lines = bytes.split(|byte| *byte == b'\n').count();
                let mut last = 0;
                for (line, text) in listed_targets(&bytes) {
                    prop_assert!(line > last && line <= lines);
                    last = line;
                    if let Ok(text) = text {
                        prop_assert!(!text.is_empty() && !text.starts_with('#'));
                        prop_assert!(text.trim() == text);
                    }
                }
            }
        }
    }

    #[test]
    fn flags_win_over_the_environment() {
        let config = parse(&["-w", "tcp://flag:1"])
            .unwrap()
            .into_config(Some("tcp://env:1".into()))
            .unwrap();
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].to_string(), "tcp://flag:1");
        let config = parse(&[])
            .unwrap()
            .into_config(Some("tcp://env:1 tcp://env:2".into()))
            .unwrap();
        assert_eq!(config.targets.len(), 2);
    }

    #[test]
    fn defaults() {
        let config = parse(&["-w", "db:5432"])
            .unwrap()
            .into_config(None)
            .unwrap();
        assert_eq!(config.timeout, Some(Duration::from_secs(60)));
        assert_eq!(config.schedule.interval, Duration::from_millis(100));
        assert_eq!(config.schedule.backoff_after, Duration::from_millis(1_500));
        assert_eq!(config.schedule.steady_interval, Duration::from_millis(700));
        assert_eq!(config.schedule.slow_after, Duration::from_secs(120));
        assert!(!config.once);
        assert_eq!(config.stable, 1);
        assert_eq!(config.min_ready, 1);
        assert_eq!(config.schedule.max_interval, Duration::from_secs(2));
        assert_eq!(config.schedule.attempt_timeout, Duration::from_secs(5));
        assert!(config.command.is_empty());
        let config = parse(&["-w", "db:5432", "-t", "0", "--", "app", "--flag"])
            .unwrap()
            .into_config(None)
            .unwrap();
        assert_eq!(config.timeout, None);
        assert_eq!(config.command, ["app", "--flag"]);
    }

    #[test]
    fn bad_command_lines() {
        for args in [
            &["-w", "db:5432", "--timeout", "soon"][..],
            &["-w", "db:5432", "--interval", "0"],
            &["-w", "db:5432", "--log-format", "xml"],
            &["-w", "db:5432", "-q", "-v"],
            &["-w", "db:5432", "--stable", "0"],
            &["-w", "db:5432", "--min-ready", "0"],
            &["-w", "db:5432", "--min-ready", "1", "--any"],
            &["--bogus"],
        ] {
            let error = parse(args).expect_err(&format!("{args:?}"));
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let checked = |args: &[&str]| {
            parse(args)
                .unwrap()
                .into_config(None)
                .map(drop)
                .unwrap_err()
                .to_string()
        };
        assert!(checked(&[]).contains("nothing to wait for"));
        assert!(checked(&["-w", "db"]).contains("invalid target 'db'"));
        assert!(
            checked(&["-w", "db:1", "--interval", "3s", "--max-interval", "1s"])
                .contains("shorter than --interval")
        );
        assert_eq!(
            checked(&["-w", "db:1", "-w", "db:2", "--min-ready", "3"]),
            "--min-ready 3 asks for more targets than the 2 given"
        );
    }

    #[test]
    fn any_and_min_ready() {
        let config = |args: &[&str]| parse(args).unwrap().into_config(None).unwrap();
        assert_eq!(config(&["a:1", "b:2", "c:3"]).min_ready, 3);
        assert_eq!(config(&["a:1", "b:2", "c:3", "--any"]).min_ready, 1);
        assert_eq!(
            config(&["a:1", "b:2", "c:3", "--min-ready", "2"]).min_ready,
            2
        );
        let once = config(&["a:1", "--once", "--stable", "3"]);
        assert!(once.once);
        assert_eq!(once.stable, 3);
    }
}
