//! Keeping secrets out of everything holdup prints: targets are shown without their
//! password, and secret-looking query values are masked.

use std::fmt;

use url::Url;

/// A string that must never be printed, not even in `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Query parameters whose values are masked when a URL is shown.
const SECRET_WORDS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "credential",
];

/// The URL as it may be shown to people: no password, no fragment (holdup's options, which
/// may carry headers), and secret-looking query values masked.
pub fn url(url: &Url) -> String {
    let mut shown = url.clone();
    // Fails only for URLs that cannot have credentials, which then have none to hide.
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    if shown.query_pairs().any(|(name, _)| is_secret(&name)) {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret(&name) {
                    "redacted".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// A target as typed, for error messages about it: shown like [`url`] when it parses as a
/// URL; otherwise the password in `user:password@` and anything after `#` are cut out and
/// secret-looking query values masked, by text alone. A target made of words (`exec:…`)
/// is shown as [`command`] shows them.
pub fn text(text: &str) -> String {
    if !text.contains("://")
        && let Some((scheme, words)) = text.split_once(':')
        && words.contains(char::is_whitespace)
    {
        let words: Vec<String> = words.split_whitespace().map(String::from).collect();
        return format!("{scheme}:{}", command(&words).join(" "));
    }
    let (scheme, rest) = text
        .split_once("://")
        .map_or(("", text), |(scheme, rest)| (scheme, rest));
    // A password holding an unencoded '/', '?' or '#' ends the authority early, and the rest
    // may even parse as a URL: then the last '@' still ends the user info, and nothing of
    // it but the user name may be shown.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let misplaced_at = rest[authority_end..].contains('@');
    if !misplaced_at && let Ok(parsed) = Url::parse(text) {
        return url(&parsed);
    }
    let (user, rest) = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => (
            userinfo
                .split([':', '/', '?', '#'])
                .next()
                .map(|user| format!("{user}@")),
            rest,
        ),
        None => (None, rest),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(authority_end);
    let authority = format!("{}{host}", user.unwrap_or_default());
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret(name) => format!("{name}=redacted"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", masked.join("&"))
        }
        None => path.to_string(),
    };
    let separator = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{separator}{authority}{path}")
}

/// Command-line words as they may be shown: the value of a secret-looking `NAME=VALUE`
/// (`--password=…`, `PGPASSWORD=…`) and the word after a secret-looking `--flag` masked.
pub fn command(words: &[String]) -> Vec<String> {
    let mut shown = Vec::with_capacity(words.len());
    let mut after_secret_flag = false;
    for word in words {
        let masked = match word.split_once('=') {
            Some((name, _)) if is_secret(name.trim_start_matches('-')) => {
                format!("{name}=redacted")
            }
            _ if after_secret_flag => "redacted".to_string(),
            _ => word.clone(),
        };
        after_secret_flag = word.starts_with("--") && !word.contains('=') && is_secret(&word[2..]);
        shown.push(masked);
    }
    shown
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app@db:5432/app",
            ),
            ("http://u:p@h/health?x=1", "http://u@h/health?x=1"),
            (
                "http://h/health#header=Authorization:Bearer%20abc",
                "http://h/health",
            ),
            ("http://h/?token=abc&x=2", "http://h/?token=redacted&x=2"),
            (
                "postgres://db/app?sslmode=require&password=hunter2",
                "postgres://db/app?sslmode=require&password=redacted",
            ),
            ("tcp://db:5432", "tcp://db:5432"),
        ];
        for (input, expected) in cases {
            assert_eq!(url(&Url::parse(input).unwrap()), expected, "{input}");
        }
    }

    #[test]
    fn unparsable_text_is_shown_without_secrets() {
        let cases = [
            (
                "postgres://app:s3cret@db:notaport/app",
                "postgres://app@db:notaport/app",
            ),
            ("tcp://u:pw@[::1", "tcp://u@[::1"),
            (
                "x://h:1/p?password=pw&a=1#secret",
                "x://h:1/p?password=redacted&a=1",
            ),
            ("db", "db"),
            // Passwords with characters that should have been percent-encoded.
            ("postgres://u:pa/ss@db:1/app", "postgres://u@db:1/app"),
            ("postgres://u:12#ss@db/app", "postgres://u@db/app"),
            ("postgres://u:pa?ss@db/app", "postgres://u@db/app"),
            ("postgres://u:p@ss/w@db/app", "postgres://u@db/app"),
        ];
        for (input, expected) in cases {
            assert_eq!(text(input), expected, "{input}");
        }
    }

    #[test]
    fn command_words_are_shown_without_secrets() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["pg_isready", "-h", "db"], &["pg_isready", "-h", "db"]),
            (
                &["mysqladmin", "--password=hunter2", "ping"],
                &["mysqladmin", "--password=redacted", "ping"],
            ),
            (
                &["env", "PGPASSWORD=hunter2", "psql"],
                &["env", "PGPASSWORD=redacted", "psql"],
            ),
            (
                &["redis-cli", "--pass", "hunter2", "ping"],
                &["redis-cli", "--pass", "redacted", "ping"],
            ),
            (&["check", "--timeout=5"], &["check", "--timeout=5"]),
        ];
        for (input, expected) in cases {
            let words: Vec<String> = input.iter().map(|word| word.to_string()).collect();
            assert_eq!(command(&words), *expected, "{input:?}");
        }
        assert_eq!(
            text("exec:mysqladmin --password=hunter2 'ping"),
            "exec:mysqladmin --password=redacted 'ping"
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "(redacted)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
