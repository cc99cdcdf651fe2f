//! What a DNS answer holds and what a dns target expects of it: values compared as DNS
//! means them (addresses as addresses, names without regard to case or a trailing dot, TXT
//! strings joined), expected values as a person writes them, and the judgement.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, anyhow, bail};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// How many answers a message lists before "and N more".
const SHOWN_ANSWERS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asked {
    /// A and AAAA, as when a tcp:// or http:// target resolves its host.
    Addresses,
    Type(RecordType),
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asked::Addresses => f.write_str("A/AAAA"),
            Asked::Type(record_type) => write!(f, "{record_type}"),
        }
    }
}

/// How the expected values must appear in the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Match {
    /// Every expected value is answered; other records may be there too.
    #[default]
    All,
    /// At least one expected value is answered.
    Any,
    /// The answer is exactly the expected values: each one there, nothing else.
    Exact,
}

impl Match {
    pub(super) fn name(self) -> &'static str {
        match self {
            Match::All => "all",
            Match::Any => "any",
            Match::Exact => "exact",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Match> {
        match text.to_ascii_lowercase().as_str() {
            "all" => Ok(Match::All),
            "any" => Ok(Match::Any),
            "exact" => Ok(Match::Exact),
            _ => bail!("expected all, any or exact"),
        }
    }
}

/// One value of an answer, compared the way DNS means it: addresses as addresses, names
/// without regard to case or a trailing dot, TXT strings joined.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Value {
    Ip(IpAddr),
    Name(Name),
    Mx {
        preference: u16,
        exchange: Name,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Text(String),
}

impl Value {
    pub(super) fn from_record(record: &Record) -> Option<Value> {
        Some(match &record.data {
            RData::A(a) => Value::Ip(a.0.into()),
            RData::AAAA(aaaa) => Value::Ip(aaaa.0.into()),
            RData::CNAME(name) => Value::Name(absolute(&name.0)),
            RData::NS(name) => Value::Name(absolute(&name.0)),
            RData::PTR(name) => Value::Name(absolute(&name.0)),
            RData::MX(mx) => Value::Mx {
                preference: mx.preference,
                exchange: absolute(&mx.exchange),
            },
            RData::SRV(srv) => Value::Srv {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: absolute(&srv.target),
            },
            // A TXT record of several strings means their concatenation (SPF, DKIM).
            RData::TXT(txt) => Value::Text(
                txt.txt_data
                    .iter()
                    .map(|chunk| String::from_utf8_lossy(chunk))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

/// Shown as `dig +short` would, without trailing dots, so it can be pasted into `expect=`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Name(name) => f.write_str(&shown_name(name)),
            Value::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {}", shown_name(exchange)),
            Value::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "{priority} {weight} {port} {}", shown_name(target)),
            Value::Text(text) => write!(f, "{text:?}"),
        }
    }
}

/// An expected value as given, where MX and SRV values may leave out the numbers that do not
/// matter to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Expected {
    given: String,
    pattern: Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exactly(Value),
    MxExchange(Name),
    SrvTarget { target: Name, port: Option<u16> },
}

impl Expected {
    /// The value as the user wrote it.
    pub(super) fn given(&self) -> &str {
        &self.given
    }

    pub(super) fn parse(asked: Asked, text: &str) -> Result<Expected> {
        let text = text.trim();
        if text.is_empty() {
            bail!("option 'expect' needs a value (expect=...)");
        }
        let pattern = match asked {
            Asked::Addresses => Pattern::Exactly(Value::Ip(
                text.parse()
                    .map_err(|_| anyhow!("expected an IPv4 or IPv6 address"))?,
            )),
            Asked::Type(RecordType::A) => {
                Pattern::Exactly(Value::Ip(IpAddr::V4(text.parse::<Ipv4Addr>().map_err(
                    |_| anyhow!("expected an IPv4 address (type=AAAA is for IPv6 addresses)"),
                )?)))
            }
            Asked::Type(RecordType::AAAA) => {
                Pattern::Exactly(Value::Ip(IpAddr::V6(text.parse::<Ipv6Addr>().map_err(
                    |_| anyhow!("expected an IPv6 address (type=A is for IPv4 addresses)"),
                )?)))
            }
            Asked::Type(RecordType::MX) => match text.split_whitespace().collect::<Vec<_>>()[..] {
                [exchange] => Pattern::MxExchange(name(exchange)?),
                [preference, exchange] => Pattern::Exactly(Value::Mx {
                    preference: preference
                        .parse()
                        .map_err(|_| anyhow!("'{preference}' is not an MX preference (0-65535)"))?,
                    exchange: name(exchange)?,
                }),
                _ => bail!(
                    "expected 'preference exchange' or 'exchange', e.g. '10 mail.example.com'"
                ),
            },
            Asked::Type(RecordType::SRV) => parse_srv(text)?,
            Asked::Type(RecordType::TXT) => Pattern::Exactly(Value::Text(text.to_string())),
            // CNAME, NS, PTR
            Asked::Type(_) => Pattern::Exactly(Value::Name(name(text)?)),
        };
        Ok(Expected {
            given: text.to_string(),
            pattern,
        })
    }

    pub(super) fn matches(&self, value: &Value) -> bool {
        match (&self.pattern, value) {
            (Pattern::Exactly(expected), value) => expected == value,
            (Pattern::MxExchange(expected), Value::Mx { exchange, .. }) => expected == exchange,
            (
                Pattern::SrvTarget {
                    target: expected,
                    port: expected_port,
                },
                Value::Srv { target, port, .. },
            ) => expected == target && expected_port.is_none_or(|p| p == *port),
            _ => false,
        }
    }
}

/// `priority weight port target`, `target:port` or `target`.
fn parse_srv(text: &str) -> Result<Pattern> {
    const FORMS: &str = "expected 'priority weight port target' (e.g. '0 5 5432 db-0.example.com'), \
                         'target:port' or 'target'";
    let number = |text: &str, what: &str| -> Result<u16> {
        text.parse()
            .map_err(|_| anyhow!("'{text}' is not an SRV {what} (0-65535); {FORMS}"))
    };
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [priority, weight, port, target] => Ok(Pattern::Exactly(Value::Srv {
            priority: number(priority, "priority")?,
            weight: number(weight, "weight")?,
            port: number(port, "port")?,
            target: name(target)?,
        })),
        [target] => match target.rsplit_once(':') {
            Some((target, port)) => Ok(Pattern::SrvTarget {
                target: name(target)?,
                port: Some(number(port, "port")?),
            }),
            None => Ok(Pattern::SrvTarget {
                target: name(target)?,
                port: None,
            }),
        },
        _ => bail!("{FORMS}"),
    }
}

/// A DNS name as written by a person (underscores allowed, as in SRV names), compared as
/// absolute.
pub(super) fn name(text: &str) -> Result<Name> {
    let parsed = Name::from_str_relaxed(text)
        .map_err(|error| anyhow!("'{text}' is not a DNS name: {error}"))?;
    Ok(absolute(&parsed))
}

pub(super) fn absolute(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

/// A name for people: no trailing dot.
pub(super) fn shown_name(name: &Name) -> String {
    let text = name.to_utf8();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => text,
    }
}

/// Whether `answers` hold the `expected` values (compared as `matching` says) and at least
/// `min` records; if not, what was expected.
pub(super) fn judge(
    expected: &[Expected],
    matching: Match,
    min: usize,
    answers: &[Value],
) -> Result<(), String> {
    let answered = |expected: &Expected| answers.iter().any(|value| expected.matches(value));
    let expected_ok = match matching {
        Match::All => expected.iter().all(answered),
        Match::Any => expected.iter().any(answered),
        Match::Exact => {
            expected.iter().all(answered)
                && answers
                    .iter()
                    .all(|value| expected.iter().any(|e| e.matches(value)))
        }
    };
    if !expected_ok {
        let given: Vec<&str> = expected.iter().map(|e| e.given.as_str()).collect();
        let given = given.join(", ");
        return Err(match (matching, expected.len()) {
            (Match::Exact, _) => format!("expected exactly {given}"),
            (_, 1) => format!("expected {given}"),
            (Match::All, _) => format!("expected all of {given}"),
            (Match::Any, _) => format!("expected one of {given}"),
        });
    }
    if answers.len() < min {
        return Err(format!(
            "expected at least {} record{}, got {}",
            min,
            if min == 1 { "" } else { "s" },
            answers.len()
        ));
    }
    Ok(())
}

/// `10.0.0.4, 10.0.0.6`, at most [`SHOWN_ANSWERS`] of them, or `nothing`.
pub(super) fn list(values: &[Value]) -> String {
    if values.is_empty() {
        return "nothing".to_string();
    }
    let mut shown: Vec<String> = values
        .iter()
        .take(SHOWN_ANSWERS)
        .map(ToString::to_string)
        .collect();
    if values.len() > SHOWN_ANSWERS {
        shown.push(format!("and {} more", values.len() - SHOWN_ANSWERS));
    }
    shown.join(", ")
}
