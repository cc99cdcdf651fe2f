//! Exit codes: the contract with whoever runs holdup (a kubelet, compose, a CI job).

/// Every target was ready (or, with a command, holdup never returns: the command's own
/// exit code is what the caller sees).
pub const READY: u8 = 0;
/// The deadline passed while at least one target was still not ready.
pub const NOT_READY: u8 = 1;
/// Bad command line or configuration, found before anything was probed.
pub const USAGE: u8 = 2;
/// A target failed in a way that waiting cannot fix (a failed Job, a rejected password
/// when the user asked to fail fast).
pub const PERMANENT: u8 = 3;
/// Holdup itself could not start (the OS refused an event loop or a signal handler).
pub const INTERNAL: u8 = 70;
/// The command exists but cannot be executed (permissions, not an executable).
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
pub const COMMAND_NOT_FOUND: u8 = 127;

/// Exit code after being stopped by signal `signal`, as shells report it.
pub fn signalled(signal: i32) -> u8 {
    // Only SIGHUP, SIGINT and SIGTERM are handled, so this never leaves 0..=255.
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_codes_follow_shell_convention() {
        assert_eq!(signalled(2), 130);
        assert_eq!(signalled(15), 143);
    }
}
