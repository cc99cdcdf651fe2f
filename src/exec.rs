//! Replacing holdup with the user's command once everything is ready: exec, not fork, so
//! the command keeps holdup's PID, environment and stdio, receives signals directly and
//! its exit code is the one the caller sees.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use tracing::{debug, error};

use crate::exit;
use crate::words::io_error_words;

/// Execs `command`; returns only if there is none (None) or exec fails, with the exit
/// code to end with and the line that said why.
pub fn replace_process(command: &[OsString]) -> Option<(u8, String)> {
    let (program, args) = command.split_first()?;
    let shown = program.to_string_lossy();
    debug!(event = "exec", command = %shown, "running {shown}");
    let failure = Command::new(program).args(args).exec();
    let (code, words) = match failure.kind() {
        io::ErrorKind::NotFound if !shown.contains('/') => {
            (exit::COMMAND_NOT_FOUND, "not found in PATH".to_string())
        }
        io::ErrorKind::NotFound => (exit::COMMAND_NOT_FOUND, "no such file".to_string()),
        io::ErrorKind::PermissionDenied => (
            exit::CANNOT_EXECUTE,
            "permission denied (is it executable?)".to_string(),
        ),
        _ => (exit::CANNOT_EXECUTE, io_error_words(&failure)),
    };
    error!(event = "exec_failed", command = %shown, error = %words, "cannot run {shown}: {words}");
    Some((code, format!("cannot run {shown}: {words}")))
}
