//! Errors in plain words, as people read them in a log line: no `(os error 111)`, no
//! layers of "error sending request", and sentences that start in lower case.

use std::error::Error;
use std::io;

/// An I/O error in plain words, without the `(os error 111)` noise.
pub fn io_error_words(error: &io::Error) -> String {
    use io::ErrorKind::*;
    let words = match error.kind() {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by peer",
        ConnectionAborted => "connection aborted",
        TimedOut => "timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        PermissionDenied => "permission denied",
        UnexpectedEof => "connection closed by the server",
        BrokenPipe => "connection closed by the server",
        NotFound => "not found",
        _ => {
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            return lower_first(text);
        }
    };
    words.to_string()
}

/// An error and its sources, joined with ": ", for errors that have no better words.
pub fn chain(error: &dyn Error) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        words = format!("{words}: {current}");
        source = current.source();
    }
    words
}

/// Lower-cases the first letter of a message, unless it starts an acronym ("TLS", "DNS").
pub fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms such as "TLS" or "DNS" as they are.
        Some(first) if chars.next().is_some_and(char::is_lowercase) => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_in_plain_words() {
        assert_eq!(
            io_error_words(&io::Error::from_raw_os_error(111)),
            "connection refused"
        );
        assert_eq!(
            io_error_words(&io::Error::other("Something odd")),
            "something odd"
        );
        assert_eq!(
            io_error_words(&io::Error::other("TLS went wrong")),
            "TLS went wrong"
        );
    }

    #[test]
    fn sentences_start_in_lower_case_but_acronyms_stay() {
        assert_eq!(lower_first("Connection closed"), "connection closed");
        assert_eq!(lower_first("DNS failed"), "DNS failed");
        assert_eq!(lower_first(""), "");
        assert_eq!(chain(&io::Error::other("outer")), "outer");
    }
}
