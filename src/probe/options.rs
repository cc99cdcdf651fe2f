//! Per-target options, written in the target URL's fragment: `#name=value&name=value`.
//!
//! The fragment is the one part of a URL that never leaves the client, so an HTTP target's
//! own query string reaches the server untouched and postgres targets keep libpq's query
//! parameters. Every probe reads its options through here, so they all share one syntax;
//! and says through [`Plan`] what they came to.

use anyhow::{Result, bail};
use percent_encoding::percent_decode_str;

/// What a target would use, setting by setting, with the defaults filled in (`status`
/// `200-399`): what `--dry-run` shows of it. Never a password or a header's value.
pub type Plan = Vec<(&'static str, String)>;

/// The options of one target, consumed by its probe's parser.
#[derive(Debug, Default)]
pub struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    /// Splits `name=value&name` pairs; values are percent-decoded (`%26` for `&`, `%23`
    /// for `#`, `%20` for a space), and a name alone is a switch.
    pub fn parse(fragment: Option<&str>) -> Result<Options> {
        let mut pairs = Vec::new();
        for item in fragment
            .unwrap_or_default()
            .split('&')
            .filter(|item| !item.is_empty())
        {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            let name = decode(name)?;
            if name.is_empty() {
                bail!("option '{item}' has no name (expected #name=value&name=value)");
            }
            pairs.push((name, decode(value)?));
        }
        Ok(Options { pairs })
    }

    /// Whether the option is given, without taking it.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// The value of an option that may be given once.
    pub fn take(&mut self, name: &str) -> Result<Option<String>> {
        let mut values = self.take_all(name);
        match values.len() {
            0 => Ok(None),
            1 => {
                let value = values.remove(0);
                if value.is_empty() {
                    bail!("option '{name}' needs a value ({name}=...)");
                }
                Ok(Some(value))
            }
            _ => bail!(
                "option '{name}' is given {} times; give it once",
                values.len()
            ),
        }
    }

    /// Every value of an option that may be repeated, in the order given.
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.pairs = kept;
        taken
            .into_iter()
            .map(|(_, value)| value)
            .collect::<Vec<_>>()
    }

    /// A switch: `name` alone or `name=true|false` (also `1|0`, `yes|no`).
    pub fn take_switch(&mut self, name: &str) -> Result<bool> {
        let values = self.take_all(name);
        match values.as_slice() {
            [] => Ok(false),
            [value] => match value.as_str() {
                "" | "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                other => bail!(
                    "option '{name}' is a switch: give '{name}' or '{name}=false', not '{other}'"
                ),
            },
            _ => bail!(
                "option '{name}' is given {} times; give it once",
                values.len()
            ),
        }
    }

    /// A value parsed by `parse`, whose error says what is expected.
    pub fn take_parsed<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.take(name)? {
            Some(value) => parse(&value)
                .map(Some)
                .map_err(|error| error.context(format!("invalid option '{name}={value}'"))),
            None => Ok(None),
        }
    }

    /// A count of 1 or more (`#min=2`); 1 when not given.
    pub fn take_min(&mut self, name: &str) -> Result<u32> {
        let min = self.take_parsed(name, |text| match text.parse::<u32>() {
            Ok(min) if min >= 1 => Ok(min),
            _ => bail!("expected a whole number of 1 or more"),
        })?;
        Ok(min.unwrap_or(1))
    }

    /// Fails on any option the probe did not take, naming the ones it knows.
    pub fn finish(self, kind: &str, known: &[&str]) -> Result<()> {
        if let Some((name, _)) = self.pairs.first() {
            if known.is_empty() {
                bail!("unknown option '{name}': {kind} targets take no options");
            }
            bail!(
                "unknown option '{name}' for {kind} targets (known: {})",
                known.join(", ")
            );
        }
        Ok(())
    }
}

/// What any target may ask of the wait, whatever its kind: `#stable=N` (ready only after
/// N attempts in a row) and `#down` (ready when an attempt fails). The scheduler reads
/// them; the kind never sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitOptions {
    pub stable: Option<u32>,
    pub down: bool,
}

/// The names of [`WaitOptions`], as `unknown option` messages list them.
pub const WAIT_OPTIONS: &[&str] = &["stable", "down"];

/// Takes the [`WaitOptions`] out of the fragment of `text` (after its first `#`), and
/// returns the text with the kind's own options left as they were typed.
pub fn take_wait_options(text: &str) -> Result<(String, WaitOptions)> {
    let Some((head, fragment)) = text.split_once('#') else {
        return Ok((text.to_string(), WaitOptions::default()));
    };
    let mut wait = WaitOptions::default();
    let mut kept = Vec::new();
    let mut seen = Vec::new();
    for item in fragment.split('&').filter(|item| !item.is_empty()) {
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        let name = decode(name)?;
        if !WAIT_OPTIONS.contains(&name.as_str()) {
            kept.push(item);
            continue;
        }
        if seen.contains(&name) {
            bail!("option '{name}' is given twice; give it once");
        }
        let value = decode(value)?;
        match name.as_str() {
            "stable" => wait.stable = Some(stable_count(&value)?),
            _ => {
                wait.down = match value.as_str() {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => bail!(
                        "option 'down' is a switch: give 'down' or 'down=false', not '{other}'"
                    ),
                }
            }
        }
        seen.push(name);
    }
    let text = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}#{}", kept.join("&"))
    };
    Ok((text, wait))
}

/// The same for a command (`exec:`), whose words may hold `#`: only a last word of its
/// own that starts with `#` holds options, which a POSIX shell would take for a comment
/// and holdup refuses otherwise (`exec:pg_isready -h db #stable=3`).
pub fn take_trailing_wait_options(text: &str) -> Result<(String, WaitOptions)> {
    let trimmed = text.trim_end();
    let Some(start) = trimmed.rfind(char::is_whitespace) else {
        return Ok((text.to_string(), WaitOptions::default()));
    };
    let (command, word) = trimmed.split_at(start);
    let word = word.trim_start();
    // Inside quotes, `#` is the command's: leave it to the command's own parser.
    if !word.starts_with('#') || word.contains(['\'', '"', '\\']) {
        return Ok((text.to_string(), WaitOptions::default()));
    }
    let (rest, wait) = take_wait_options(word)?;
    if !rest.is_empty() {
        let unknown = word
            .trim_start_matches('#')
            .split('&')
            .find(|item| {
                let name = item.split_once('=').map_or(*item, |(name, _)| name);
                !WAIT_OPTIONS.contains(&name)
            })
            .unwrap_or(word);
        bail!(
            "unknown option '{unknown}': after an exec: command, a last word #... holds only \
             stable=N and down (a '#' of the command's own goes in quotes)"
        );
    }
    Ok((command.trim_end().to_string(), wait))
}

fn stable_count(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => bail!(
            "invalid option 'stable={text}': expected a whole number of attempts in a row, 1 or more (stable=3)"
        ),
    }
}

/// `--stable N`, checked as `#stable=N` is.
pub fn parse_stable(text: &str) -> Result<u32> {
    stable_count(text.trim())
}

fn decode(text: &str) -> Result<String> {
    match percent_decode_str(text).decode_utf8() {
        Ok(decoded) => Ok(decoded.into_owned()),
        Err(_) => bail!("option '{text}' is not valid UTF-8 once percent-decoded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_values_and_switches() {
        let mut options = Options::parse(Some(
            "status=200-299,304&body=all%20good&insecure&header=a&header=b",
        ))
        .unwrap();
        assert_eq!(
            options.take("status").unwrap().as_deref(),
            Some("200-299,304")
        );
        assert_eq!(options.take("body").unwrap().as_deref(), Some("all good"));
        assert!(options.take_switch("insecure").unwrap());
        assert_eq!(options.take_all("header"), ["a", "b"]);
        assert!(!options.take_switch("absent").unwrap());
        options.finish("http", &["status"]).unwrap();
    }

    #[test]
    fn rejects_bad_options() {
        type Take = fn(&mut Options) -> Result<()>;
        let cases: &[(&str, Take, &str)] = &[
            ("x=1&x=2", |o| o.take("x").map(drop), "given 2 times"),
            ("x", |o| o.take("x").map(drop), "needs a value"),
            ("=1", |_| Ok(()), "has no name"),
            ("x=maybe", |o| o.take_switch("x").map(drop), "is a switch"),
            ("x=%FF", |_| Ok(()), "not valid UTF-8"),
        ];
        for (fragment, take, expected) in cases {
            let error = Options::parse(Some(fragment)).and_then(|mut options| take(&mut options));
            let message = format!("{:#}", error.expect_err(fragment));
            assert!(message.contains(expected), "{fragment}: {message}");
        }
    }

    #[test]
    fn wait_options_come_out_of_any_fragment() {
        let cases: &[(&str, &str, Option<u32>, bool)] = &[
            ("tcp://db:5432", "tcp://db:5432", None, false),
            ("tcp://db:5432#down", "tcp://db:5432", None, true),
            (
                "http://x/#status=200&stable=3&body=ok",
                "http://x/#status=200&body=ok",
                Some(3),
                false,
            ),
            ("http://x/#stable=2&down=true", "http://x/", Some(2), true),
            ("http://x/#down=false", "http://x/", None, false),
            (
                "k8s://job/x#deleted&down",
                "k8s://job/x#deleted",
                None,
                true,
            ),
        ];
        for (input, rest, stable, down) in cases {
            let (text, wait) = take_wait_options(input).unwrap();
            assert_eq!(
                (text.as_str(), wait.stable, wait.down),
                (*rest, *stable, *down),
                "{input}"
            );
        }
        for (input, expected) in [
            ("tcp://db:1#stable=0", "1 or more"),
            ("tcp://db:1#stable=x", "stable=x"),
            ("tcp://db:1#stable", "stable="),
            ("tcp://db:1#down=maybe", "is a switch"),
            ("tcp://db:1#down&down", "given twice"),
        ] {
            let message = format!("{:#}", take_wait_options(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
    }

    #[test]
    fn wait_options_after_a_command() {
        let cases: &[(&str, &str, Option<u32>, bool)] = &[
            ("exec:true", "exec:true", None, false),
            (
                "exec:pg_isready -h db #stable=3",
                "exec:pg_isready -h db",
                Some(3),
                false,
            ),
            ("exec:check #down&stable=2  ", "exec:check", Some(2), true),
            ("exec:echo a#b", "exec:echo a#b", None, false),
            ("exec:sh -c 'x #down'", "exec:sh -c 'x #down'", None, false),
        ];
        for (input, rest, stable, down) in cases {
            let (text, wait) = take_trailing_wait_options(input).unwrap();
            assert_eq!(
                (text.as_str(), wait.stable, wait.down),
                (*rest, *stable, *down),
                "{input}"
            );
        }
        let message = format!(
            "{:#}",
            take_trailing_wait_options("exec:check #down&x=1").unwrap_err()
        );
        assert!(message.contains("unknown option 'x=1'"), "{message}");
    }

    #[test]
    fn unknown_options_are_named() {
        let options = Options::parse(Some("statsu=200")).unwrap();
        let message = options
            .finish("http", &["status", "body"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "unknown option 'statsu' for http targets (known: status, body)"
        );
        let options = Options::parse(Some("x=1")).unwrap();
        let message = options.finish("tcp", &[]).unwrap_err().to_string();
        assert_eq!(message, "unknown option 'x': tcp targets take no options");
    }
}
