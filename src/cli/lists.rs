//! Targets given as lists: `HOLDUP_WAIT_FOR` (split on commas and whitespace where a new
//! target starts) and `--targets-from` files (one a line).

use std::ffi::OsString;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Result, anyhow};

use crate::probe::{self, Target, is_host_port};
use crate::words::io_error_words;

/// The targets listed in `file` (`-`: standard input), read and parsed; `flag` is how the
/// user gave the file, for messages.
pub(super) fn targets_from(file: &OsString, flag: &str) -> Result<Vec<Target>> {
    let (name, bytes) = if file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|error| {
            anyhow!(
                "{flag} -: cannot read standard input: {}",
                io_error_words(&error)
            )
        })?;
        ("standard input".to_string(), bytes)
    } else {
        let name = Path::new(file).display().to_string();
        let bytes = std::fs::read(file).map_err(|error| {
            anyhow!("{flag} {name}: cannot read it: {}", io_error_words(&error))
        })?;
        (name, bytes)
    };
    listed_targets(&bytes)
        .into_iter()
        .map(|(line, text)| {
            let text = text.map_err(|()| anyhow!("{name} line {line}: not UTF-8 text"))?;
            Target::parse(text).map_err(|error| anyhow!("{name} line {line}: {error:#}"))
        })
        .collect()
}

/// The lines of a list of targets that hold one, with their numbers (from 1): blank lines
/// and lines whose first word starts with `#` are left out. A `#` later in a line is part
/// of the target (`http://api/#status=200`).
pub(super) fn listed_targets(bytes: &[u8]) -> Vec<(usize, Result<&str, ()>)> {
    bytes
        .split(|byte| *byte == b'\n')
        .enumerate()
        .filter_map(|(index, line)| {
            let line = match std::str::from_utf8(line) {
                Ok(line) => line.trim(),
                Err(_) => return Some((index + 1, Err(()))),
            };
            let skip = line.is_empty() || line.starts_with('#');
            (!skip).then_some((index + 1, Ok(line)))
        })
        .collect()
}

/// Splits HOLDUP_WAIT_FOR on white space and commas. A comma starts a new target only
/// before `scheme://` or before a whole `HOST:PORT` (see [`is_host_port`]); any other comma
/// belongs to the target before it, so `#status=200,204`, `?ids=1,2` and `?t=10:30,11:45`
/// survive. A word that starts with `exec:` begins a command, which holds spaces and commas
/// of its own: it takes the rest of its line.
pub(super) fn split_targets(text: &str) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            if probe::takes_rest_of_line(rest) {
                targets.push(rest.trim_end().to_string());
                break;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (word, after) = rest.split_at(end);
            rest = after.trim_start();
            let mut pieces = word.split(',').filter(|piece| !piece.is_empty());
            let Some(first) = pieces.next() else { continue };
            targets.push(first.to_string());
            for piece in pieces {
                match targets.last_mut() {
                    Some(previous) if !starts_target(piece) => {
                        previous.push(',');
                        previous.push_str(piece);
                    }
                    _ => targets.push(piece.to_string()),
                }
            }
        }
    }
    targets
}

pub(super) fn starts_target(piece: &str) -> bool {
    let has_scheme = piece.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    has_scheme || is_host_port(piece)
}
