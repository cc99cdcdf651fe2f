//! The termination message: why holdup ended without success, written where Kubernetes
//! reads it (`/dev/termination-log`, shown by `kubectl describe pod` and in the container's
//! `lastState.terminated.message`), since an operator looking at a pod stuck in `Init:0/1`
//! reads that before any log.
//!
//! Written on every non-zero exit, never on success (a command exec'd after holdup may
//! write its own). Kubernetes keeps 4096 bytes of it: a longer message is cut at a line or
//! at least a character, with a marker, so that what is kept is still valid UTF-8.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::words::io_error_words;

/// Where Kubernetes reads the message from, unless the pod spec moves it.
pub const DEFAULT_PATH: &str = "/dev/termination-log";

/// What Kubernetes keeps of the message.
pub const LIMIT: usize = 4096;

/// Said at the end of a message that had to be cut.
const CUT: &str = "\n… (cut to Kubernetes' 4096 bytes)";

/// Where to write the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminationLog {
    /// `/dev/termination-log` when it exists and holdup may write it (in a Kubernetes
    /// container); nowhere otherwise.
    Default,
    /// A path given by `--termination-log`, created if need be.
    Path(PathBuf),
    /// `--termination-log ''`: nowhere.
    Off,
}

impl TerminationLog {
    /// From the value of `--termination-log` (or its variable): empty turns it off.
    pub fn from_value(value: Option<&str>) -> TerminationLog {
        match value {
            None => TerminationLog::Default,
            Some("") => TerminationLog::Off,
            Some(path) => TerminationLog::Path(PathBuf::from(path)),
        }
    }

    /// Writes `lines` as the message. Failing to write it never changes how holdup ends:
    /// it is said as a warning.
    pub fn write(&self, lines: &[String]) {
        let (path, create) = match self {
            TerminationLog::Off => return,
            TerminationLog::Default => (Path::new(DEFAULT_PATH), false),
            TerminationLog::Path(path) => (path.as_path(), true),
        };
        let message = fit(&lines.join("\n"), LIMIT);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(create)
            .open(path);
        let written = match opened {
            // Outside Kubernetes there is no such file: nothing to say.
            Err(error)
                if !create
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                    ) =>
            {
                return;
            }
            Err(error) => Err(error),
            Ok(mut file) => file.write_all(message.as_bytes()),
        };
        if let Err(error) = written {
            warn!(
                event = "termination_log",
                path = %path.display(),
                error = %io_error_words(&error),
                "cannot write the termination message to {}: {}",
                path.display(),
                io_error_words(&error)
            );
        }
    }
}

/// `text` within `limit` bytes: whole when it fits; else as many whole lines as fit with
/// the marker after them, or, when not even the first line fits, that line cut at a
/// character boundary.
pub fn fit(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut room = limit.saturating_sub(CUT.len()).min(text.len());
    while !text.is_char_boundary(room) {
        room -= 1;
    }
    let end = if text.as_bytes().get(room) == Some(&b'\n') {
        room
    } else {
        text[..room]
            .rfind('\n')
            .filter(|&newline| newline > 0)
            .unwrap_or(room)
    };
    format!("{}{CUT}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_message_is_kept_whole() {
        assert_eq!(fit("a\nb", 4096), "a\nb");
        let exact = "x".repeat(4096);
        assert_eq!(fit(&exact, 4096), exact);
    }

    #[test]
    fn a_long_message_keeps_whole_lines_and_says_it_was_cut() {
        let line = format!("tcp://db:5432 not ready after 60s: {}", "y".repeat(60));
        let text = vec![line.as_str(); 100].join("\n");
        let kept = fit(&text, 4096);
        assert!(kept.len() <= 4096, "{}", kept.len());
        assert!(kept.ends_with(CUT));
        let body = kept.strip_suffix(CUT).unwrap();
        assert!(body.lines().all(|kept_line| kept_line == line), "{body}");
    }

    #[test]
    fn never_cut_inside_a_character() {
        // One line of 3-byte characters, longer than the limit: no line boundary to cut at.
        let text = "€".repeat(2000);
        for limit in [4096, 4095, 4094, 100, 101] {
            let kept = fit(&text, limit);
            assert!(kept.len() <= limit, "{limit}: {}", kept.len());
            assert!(kept.ends_with(CUT));
            assert!(kept.strip_suffix(CUT).unwrap().chars().all(|c| c == '€'));
        }
    }

    #[test]
    fn written_to_a_given_path_and_untouched_when_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        TerminationLog::Path(path.clone()).write(&["one".into(), "two".into()]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo");
        TerminationLog::Off.write(&["three".into()]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo");
        assert_eq!(
            TerminationLog::from_value(Some("")),
            TerminationLog::Off,
            "an empty value turns it off"
        );
    }
}
