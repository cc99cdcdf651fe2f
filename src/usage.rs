//! Reading the command line, and a command line that cannot be run said as one line in the
//! log format asked for: `--log-format json` (or `HOLDUP_LOG_FORMAT=json`) turns clap's
//! errors into one JSON `usage` event too, and a bad value that came from a `HOLDUP_*`
//! variable is named by that variable, not by a flag the user never typed.

use std::ffi::{OsStr, OsString};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{
    Arg, ArgMatches, Command, CommandFactory as _, FromArgMatches as _, parser::ValueSource,
};

use crate::cli::Args;
use crate::log::Format;
use crate::termination::TerminationLog;

/// What the command line asks for.
pub enum Parsed {
    /// A run (boxed: the flags outweigh the other variants many times over).
    Run(Box<Args>),
    /// `--help` or `--version`: printed as clap prints them, exit 0.
    Show(clap::Error),
    /// A usage error, in words, to be logged in this format and written to this
    /// termination log.
    Wrong {
        format: Format,
        message: String,
        termination_log: TerminationLog,
    },
}

/// Reads the command line (`argv` with the program name first) and the `HOLDUP_*`
/// variables.
pub fn parse(argv: Vec<OsString>) -> Parsed {
    let env = |name: &str| std::env::var_os(name);
    let mut command = Args::command();
    let matches = match command.try_get_matches_from_mut(&argv) {
        Ok(matches) => matches,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            return Parsed::Show(error);
        }
        Err(error) => {
            return Parsed::Wrong {
                format: asked_format(&argv, env("HOLDUP_LOG_FORMAT").as_deref()),
                message: one_line(&error, &argv, &env),
                termination_log: asked_termination_log(&argv, env("HOLDUP_TERMINATION_LOG")),
            };
        }
    };
    match Args::from_arg_matches(&matches) {
        Ok(mut args) => {
            args.from_env = from_env(&command, &matches);
            Parsed::Run(Box::new(args))
        }
        Err(error) => Parsed::Wrong {
            format: asked_format(&argv, env("HOLDUP_LOG_FORMAT").as_deref()),
            message: one_line(&error, &argv, &env),
            termination_log: asked_termination_log(&argv, env("HOLDUP_TERMINATION_LOG")),
        },
    }
}

/// The flags whose value came from their variable, with that variable's name.
fn from_env(command: &Command, matches: &ArgMatches) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::EnvVariable))
        .filter_map(|arg| {
            let variable = arg.get_env()?.to_str()?;
            Some((arg.get_id().to_string(), variable.to_string()))
        })
        .collect()
}

/// The log format the user asked for, read leniently from a command line clap refused:
/// the last `--log-format` before `--`, else the variable. Anything but `json` (a bad
/// value too) is text.
fn asked_format(argv: &[OsString], variable: Option<&OsStr>) -> Format {
    let mut asked = None;
    let mut words = flags(argv).peekable();
    while let Some(word) = words.next() {
        if word == "--log-format" {
            asked = words.peek().map(|value| value.to_string());
        } else if let Some(value) = word.strip_prefix("--log-format=") {
            asked = Some(value.to_string());
        }
    }
    let asked = asked.or_else(|| variable.map(|value| value.to_string_lossy().into_owned()));
    match asked.as_deref() {
        Some("json") => Format::Json,
        _ => Format::Text,
    }
}

/// Where the termination message goes, read leniently from a command line clap refused:
/// the last `--termination-log` before `--`, else the variable, else the default.
fn asked_termination_log(argv: &[OsString], variable: Option<OsString>) -> TerminationLog {
    let mut asked = None;
    let mut words = flags(argv).peekable();
    while let Some(word) = words.next() {
        if word == "--termination-log" {
            asked = words.peek().map(|value| value.to_string());
        } else if let Some(value) = word.strip_prefix("--termination-log=") {
            asked = Some(value.to_string());
        }
    }
    let asked = asked.or_else(|| variable.map(|value| value.to_string_lossy().into_owned()));
    TerminationLog::from_value(asked.as_deref())
}

/// The words before `--`, without the program name.
fn flags(argv: &[OsString]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    argv.iter()
        .skip(1)
        .map(|word| word.to_string_lossy())
        .take_while(|word| word != "--")
}

/// A clap error as one line a person can act on.
fn one_line(
    error: &clap::Error,
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> String {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg).and_then(find_arg);
    let given = |arg: &Arg| match arg.get_env().and_then(OsStr::to_str) {
        Some(variable) if !typed(arg, argv) && env(variable).is_some() => variable.to_string(),
        _ => flag_name(arg),
    };
    match (error.kind(), arg, context(ContextKind::InvalidValue)) {
        (ErrorKind::ValueValidation | ErrorKind::InvalidValue, Some(arg), Some(value)) => {
            let expected = expected(error, &arg);
            let name = given(&arg);
            if name.starts_with("HOLDUP_") {
                format!("{name}={value}: {expected}")
            } else if value.is_empty() {
                format!("{name} needs a value")
            } else {
                format!("invalid value '{value}' for {name}: {expected}")
            }
        }
        (ErrorKind::TooManyValues, Some(arg), _) => format!(
            "{} takes no value: give it alone, or set {} to true or false",
            flag_name(&arg),
            arg.get_env()
                .and_then(OsStr::to_str)
                .unwrap_or("its variable")
        ),
        (ErrorKind::ArgumentConflict, Some(arg), _) => {
            let others = match error.get(ContextKind::PriorArg) {
                Some(ContextValue::String(other)) => vec![other.clone()],
                Some(ContextValue::Strings(others)) => others.clone(),
                _ => Vec::new(),
            };
            let others: Vec<String> = others
                .iter()
                .filter_map(|other| find_arg(other))
                .filter(|other| other.get_id() != arg.get_id())
                .map(|other| given(&other))
                .collect();
            match others.as_slice() {
                [] => format!("{} is given more than once", given(&arg)),
                _ => format!(
                    "{} and {} exclude each other (see holdup --help)",
                    given(&arg),
                    others.join(" and ")
                ),
            }
        }
        (ErrorKind::UnknownArgument, _, _) => {
            let word = context(ContextKind::InvalidArg).unwrap_or_default();
            let suggested = match error.get(ContextKind::SuggestedArg) {
                Some(ContextValue::String(flag)) => format!("; did you mean {flag}?"),
                _ => String::new(),
            };
            let command_without_separator =
                !argv.iter().any(|word| word == "--") && has_positional(argv);
            // After a word that is not a target, a flag is most likely the command's own,
            // even when it looks like one of holdup's (--port and --report).
            if command_without_separator && (suggested.is_empty() || command_before(argv, word)) {
                let or_flag = match error.get(ContextKind::SuggestedArg) {
                    Some(ContextValue::String(flag)) => format!(", or {flag}?"),
                    _ => String::new(),
                };
                format!(
                    "unexpected argument '{word}'; did you forget `--` before the command? \
                     (holdup TARGET... -- CMD ARGS...){or_flag}"
                )
            } else {
                format!("unexpected argument '{word}'{suggested} (see holdup --help)")
            }
        }
        _ => {
            // Clap's own first line, as a fallback for the rarer errors.
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            format!("{first} (see holdup --help)")
        }
    }
}

/// Whether the command line has a word that is neither a flag nor a flag's value: a
/// target, or a command given without `--`.
fn has_positional(argv: &[OsString]) -> bool {
    first_positional(argv, |_| true)
}

/// Whether a word before `flag` that is neither a flag nor a flag's value is no target:
/// a command given without `--`, whose own flags follow it.
fn command_before(argv: &[OsString], flag: &str) -> bool {
    let before: Vec<OsString> = argv
        .iter()
        .take_while(|word| *word != flag)
        .cloned()
        .collect();
    first_positional(&before, |word| {
        !crate::probe::has_known_scheme(word) && !crate::probe::is_host_port(word)
    })
}

/// Whether a word that is neither a flag nor a flag's value satisfies `wanted`.
fn first_positional(argv: &[OsString], wanted: impl Fn(&str) -> bool) -> bool {
    let command = Args::command();
    let takes_value = |arg: Option<&Arg>| arg.is_some_and(|arg| arg.get_action().takes_values());
    let mut words = flags(argv);
    while let Some(word) = words.next() {
        let value_follows = if let Some(long) = word.strip_prefix("--") {
            !long.contains('=')
                && takes_value(
                    command
                        .get_arguments()
                        .find(|arg| arg.get_long() == Some(long)),
                )
        } else if let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) {
            // The first letter that takes a value takes the rest of the word, or the next.
            let mut letters = cluster.chars();
            let taking = letters.by_ref().find(|letter| {
                takes_value(
                    command
                        .get_arguments()
                        .find(|arg| arg.get_short() == Some(*letter)),
                )
            });
            taking.is_some() && letters.next().is_none()
        } else if wanted(&word) {
            return true;
        } else {
            false
        };
        if value_follows {
            words.next();
        }
    }
    false
}

/// The argument clap names in an error (`--timeout <DURATION>`, `--quiet`, `-q`).
fn find_arg(named: &str) -> Option<Arg> {
    let word = named.split([' ', '=', '<']).next().unwrap_or_default();
    let word = word.trim_end_matches("...");
    Args::command()
        .get_arguments()
        .find(|arg| {
            let long = arg
                .get_long()
                .is_some_and(|long| word == format!("--{long}"));
            let short = arg
                .get_short()
                .is_some_and(|short| word == format!("-{short}"));
            long || short
        })
        .cloned()
}

fn flag_name(arg: &Arg) -> String {
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// Whether `arg` is on the command line (so its variable was not read): `--long`,
/// `--long=value`, or its letter in a cluster of short flags (`-vq`), before the letter of
/// a flag that takes the rest as its value (`-t5s`).
fn typed(arg: &Arg, argv: &[OsString]) -> bool {
    let command = Args::command();
    flags(argv).any(|word| {
        if let Some(name) = word.strip_prefix("--") {
            return arg
                .get_long()
                .is_some_and(|long| name == long || name.starts_with(&format!("{long}=")));
        }
        let Some(cluster) = word.strip_prefix('-') else {
            return false;
        };
        for letter in cluster.chars() {
            if arg.get_short() == Some(letter) {
                return true;
            }
            let takes_value = command
                .get_arguments()
                .find(|other| other.get_short() == Some(letter))
                .is_none_or(|other| other.get_action().takes_values());
            if takes_value {
                return false;
            }
        }
        false
    })
}

/// What a value should have been.
fn expected(error: &clap::Error, arg: &Arg) -> String {
    match (error.get(ContextKind::ValidValue), error.kind()) {
        _ if matches!(
            arg.get_id().as_str(),
            "quiet" | "dry_run" | "once" | "any" | "no_events"
        ) =>
        {
            "expected true or false (also 1 or 0, yes or no, on or off)".to_string()
        }
        _ if arg.get_id() == "verbose" => {
            "expected a number: 1 logs every attempt (as -v), 2 also the libraries (-vv)"
                .to_string()
        }
        (Some(ContextValue::Strings(values)), _) => {
            format!("expected {}", values.join(" or "))
        }
        (_, ErrorKind::ValueValidation) => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default().to_string();
            // `invalid value 'x' for '--flag <V>': REASON`: the reason is ours.
            match first.split_once("': ") {
                Some((_, reason)) => reason.to_string(),
                None => first,
            }
        }
        _ => "not a valid value (see holdup --help)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("holdup")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn the_format_asked_for_even_on_a_bad_command_line() {
        let json = Some(OsStr::new("json"));
        let cases: &[(&[&str], Option<&OsStr>, Format)] = &[
            (&[], None, Format::Text),
            (&["--log-format", "json", "--bogus"], None, Format::Json),
            (&["--log-format=json", "-t", "soon"], None, Format::Json),
            (&["-t", "soon"], json, Format::Json),
            (&["--log-format", "text"], json, Format::Text),
            (&["--log-format", "xml"], json, Format::Text),
            (
                &["--log-format", "json", "--log-format", "text"],
                None,
                Format::Text,
            ),
            // After `--`, words belong to the command.
            (
                &["-w", "db:1", "--", "app", "--log-format", "json"],
                None,
                Format::Text,
            ),
        ];
        for (words, variable, expected) in cases {
            assert_eq!(
                asked_format(&argv(words), *variable),
                *expected,
                "{words:?}"
            );
        }
    }

    #[test]
    fn clap_errors_in_one_line() {
        let no_env = |_: &str| None;
        let cases: &[(&[&str], &str)] = &[
            (
                &["-t", "soon"],
                "invalid value 'soon' for --timeout: 'soon' is not a duration (expected e.g.",
            ),
            (
                &["-t", "-1"],
                "invalid value '-1' for --timeout: durations cannot be negative",
            ),
            (&["--interval", "-5s"], "durations cannot be negative"),
            (
                &["--log-format", "xml"],
                "invalid value 'xml' for --log-format: expected text or json",
            ),
            (
                &["--quiet=maybe"],
                "--quiet takes no value: give it alone, or set HOLDUP_QUIET to true or false",
            ),
            (
                &["--bogus"],
                "unexpected argument '--bogus' (see holdup --help)",
            ),
            (
                &["--timout", "1s"],
                "unexpected argument '--timout'; did you mean --timeout?",
            ),
            (
                &["db:5432", "./server", "--port", "80"],
                "unexpected argument '--port'; did you forget `--` before the command?",
            ),
            (&["-q", "-v"], "--quiet and --verbose exclude each other"),
            (
                &["-t", "1s", "-t", "2s"],
                "--timeout is given more than once",
            ),
        ];
        for (words, expected) in cases {
            let args = argv(words);
            let error = Args::command()
                .try_get_matches_from(&args)
                .expect_err(&format!("{words:?}"));
            let line = one_line(&error, &args, &no_env);
            assert!(line.contains(expected), "{words:?}: {line}");
            assert!(!line.contains('\n'), "{words:?}: {line}");
            assert!(!line.starts_with("error:"), "{words:?}: {line}");
        }
    }

    #[test]
    fn positional_words_are_told_from_flag_values() {
        for (words, expected) in [
            (&["-w", "db:1", "--bogus"][..], false),
            (&["--wait-for", "db:1", "-t5s", "--log-format=json"], false),
            (&["-qw", "db:1"], false),
            (&["db:1", "--bogus"], true),
            (&["-t", "1s", "./server"], true),
            (&["-w", "db:1", "--", "app"], false),
        ] {
            assert_eq!(has_positional(&argv(words)), expected, "{words:?}");
        }
    }

    #[test]
    fn flags_typed_on_the_command_line() {
        let quiet = find_arg("--quiet").unwrap();
        let timeout = find_arg("--timeout <DURATION>").unwrap();
        assert!(typed(&quiet, &argv(&["-q"])));
        assert!(typed(&quiet, &argv(&["-vq"])));
        assert!(typed(&quiet, &argv(&["--quiet=no"])));
        assert!(!typed(&quiet, &argv(&["-w", "db:1", "--", "app", "-q"])));
        assert!(typed(&timeout, &argv(&["-t5s"])));
        assert!(!typed(&timeout, &argv(&["--attempt-timeout", "1s"])));
        assert_eq!(flag_name(&timeout), "--timeout");
    }
}
