//! The values of flags, checked as clap reads them: each error says what was expected.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::probe;
use crate::report::Report;

/// Where `--serve` listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `:PORT`: every address of the host.
    AnyAddress(u16),
    /// `IP:PORT`.
    Address(SocketAddr),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::AnyAddress(port) => write!(f, ":{port}"),
            Listen::Address(address) => write!(f, "{address}"),
        }
    }
}

/// A duration: `500ms`, `30s`, `1m30s`, or a bare number of seconds (`15`, `2.5`).
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(magnitude) = text.strip_prefix('-')
        && duration(magnitude).is_ok()
    {
        return Err(
            "durations cannot be negative (expected e.g. 500ms, 30s, 2m, or a number of seconds)"
                .to_string(),
        );
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("'{text}' is not a duration of zero or more seconds"));
    }
    humantime::parse_duration(text).map_err(|_| {
        format!("'{text}' is not a duration (expected e.g. 500ms, 30s, 2m, or a number of seconds)")
    })
}

/// `--stable N`: 1 or more.
pub(super) fn stable(text: &str) -> Result<u32, String> {
    probe::parse_stable(text).map_err(|_| {
        format!("'{text}' is not a count of attempts in a row (expected a whole number, 1 or more)")
    })
}

/// `--min-ready N`: 1 or more.
pub(super) fn min_ready(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(format!(
            "'{text}' is not a number of targets (expected a whole number, 1 or more)"
        )),
    }
}

/// `--serve`'s address: `:8080` (every address), `127.0.0.1:8080`, `[::1]:8080`.
pub(super) fn listen(text: &str) -> Result<Listen, String> {
    let text = text.trim();
    let expected = "(expected :PORT for every address, or IP:PORT, e.g. :8080 or 127.0.0.1:8080)";
    if let Some(port) = text.strip_prefix(':') {
        return port
            .parse()
            .map(Listen::AnyAddress)
            .map_err(|_| format!("'{port}' is not a port {expected}"));
    }
    text.parse()
        .map(Listen::Address)
        .map_err(|_| format!("'{text}' is not an address to listen on {expected}"))
}

/// Checks a condition type as the API server does: an optional DNS subdomain prefix and
/// `/`, then a name of at most 63 letters, digits, `-`, `_` or `.`, starting and ending
/// with a letter or digit.
pub(super) fn condition_type(text: &str) -> Result<String, String> {
    let expected = "(expected a condition type such as holdup.dev/dependencies)";
    let (prefix, name) = match text.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|prefix| {
        prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && edge(label.chars().next())
                    && edge(label.chars().last())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if name_ok && prefix_ok {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not a condition type {expected}"))
    }
}

/// A number of attempts a second: `1000`, or `0` for no limit.
pub(super) fn rate(text: &str) -> Result<u32, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "'{text}' is not a number of retries a second (expected e.g. 1000, or 0 for no limit)"
        )
    })
}

pub(super) fn report(text: &str) -> Result<Report, String> {
    Report::parse(text).map_err(|error| error.to_string())
}

pub(super) fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        zero if zero.is_zero() => Err("must be longer than zero".to_string()),
        positive => Ok(positive),
    }
}
