//! `dns://NAME`: ready when a DNS name has the records asked for: an address by default, or
//! records of a given type, with expected values and at least a given number of records.
//!
//! Without `server`, the name is resolved as every other target resolves a host: the system
//! configuration with its search list and ndots, and /etc/hosts for addresses. With a
//! `server`, that server alone is asked and the name is taken as absolute, as `dig @server`
//! does. Every attempt asks again: nothing is cached, not even an NXDOMAIN.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use percent_encoding::percent_decode_str;
use url::Url;

use super::{Failure, Options, Stage};
use crate::net::{self, Net, dns_error_words};

/// Record types that can be asked for, as written in `type=`.
const TYPES: &[(&str, RecordType)] = &[
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CNAME", RecordType::CNAME),
    ("MX", RecordType::MX),
    ("NS", RecordType::NS),
    ("PTR", RecordType::PTR),
    ("SRV", RecordType::SRV),
    ("TXT", RecordType::TXT),
];

/// How many answers a message lists before "and N more".
const SHOWN_ANSWERS: usize = 8;

pub struct Dns {
    /// The name to ask for: relative unless given with a trailing dot or a server.
    name: Name,
    /// What is asked for: addresses of both families, or one record type.
    asked: Asked,
    expected: Vec<Expected>,
    matching: Match,
    min: usize,
    /// The server to ask instead of the system configuration.
    server: Option<SocketAddr>,
    /// The resolver for `server`, built on the first attempt, inside the runtime.
    resolver: OnceLock<Result<TokioResolver, String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
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
enum Match {
    /// Every expected value is answered; other records may be there too.
    #[default]
    All,
    /// At least one expected value is answered.
    Any,
    /// The answer is exactly the expected values: each one there, nothing else.
    Exact,
}

impl Match {
    fn parse(text: &str) -> Result<Match> {
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
enum Value {
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
    fn from_record(record: &Record) -> Option<Value> {
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
struct Expected {
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
    fn parse(asked: Asked, text: &str) -> Result<Expected> {
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

    fn matches(&self, value: &Value) -> bool {
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
fn name(text: &str) -> Result<Name> {
    let parsed = Name::from_str_relaxed(text)
        .map_err(|error| anyhow!("'{text}' is not a DNS name: {error}"))?;
    Ok(absolute(&parsed))
}

fn absolute(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

/// A name for people: no trailing dot.
fn shown_name(name: &Name) -> String {
    let text = name.to_utf8();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => text,
    }
}

/// Where the answer came from, for messages.
enum Source {
    Dns(Name),
    Hosts,
}

impl Dns {
    pub fn parse(url: &Url, mut options: Options) -> Result<Dns> {
        let asked = options
            .take_parsed("type", |text| {
                TYPES
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(text))
                    .map(|(_, record_type)| Asked::Type(*record_type))
                    .ok_or_else(|| {
                        anyhow!("unknown record type (expected one of {})", type_names())
                    })
            })?
            .unwrap_or(Asked::Addresses);
        let expected = options
            .take_all("expect")
            .iter()
            .map(|text| {
                Expected::parse(asked, text)
                    .with_context(|| format!("invalid option 'expect={text}' for type {asked}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let matching = options.take_parsed("match", Match::parse)?;
        if matching.is_some() && expected.is_empty() {
            bail!("option 'match' says how to compare 'expect' values; give at least one");
        }
        let min = options
            .take_parsed("min", |text| match text.parse::<usize>() {
                Ok(min) if min >= 1 => Ok(min),
                _ => bail!("expected a number of records, 1 or more"),
            })?
            .unwrap_or(1);
        let server = options.take_parsed("server", parse_server)?;
        options.finish("dns", &["type", "expect", "match", "min", "server"])?;

        if !url.username().is_empty() || url.password().is_some() {
            bail!("dns targets take no credentials (expected dns://NAME)");
        }
        if url.port().is_some() {
            bail!(
                "dns targets have no port (expected dns://NAME; a server's port goes in #server=IP:PORT)"
            );
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            bail!("dns targets have no path or query (expected dns://NAME#options)");
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| anyhow!("missing name (expected dns://NAME, e.g. dns://db.internal)"))?;
        let host = percent_decode_str(host).decode_utf8_lossy();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut name = match bare.parse::<IpAddr>() {
            // `dig -x`: the reverse name of an address.
            Ok(ip) if asked == Asked::Type(RecordType::PTR) => Name::from(ip),
            Ok(_) => bail!(
                "'{host}' is an IP address, which needs no DNS (for its reverse name, add #type=PTR)"
            ),
            Err(_) => Name::from_str_relaxed(&*host)
                .map_err(|error| anyhow!("'{host}' is not a DNS name: {error}"))?,
        };
        if server.is_some() {
            // A chosen server is asked for the name as written, as `dig @server` does.
            name.set_fqdn(true);
        }
        Ok(Dns {
            name,
            asked,
            expected,
            matching: matching.unwrap_or_default(),
            min,
            server,
            resolver: OnceLock::new(),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let asking = match self.server {
            Some(server) => format!("asking {server} for {} {}", self.asked, self.given_name()),
            None => format!(
                "asking {} for {} {}",
                net.servers(),
                self.asked,
                self.given_name()
            ),
        };
        let (source, records) = match self.hosts_answer() {
            Some(records) => (Source::Hosts, records),
            None => {
                stage.set(asking.clone());
                let resolver = self.resolver(net)?;
                self.ask(resolver).await.map_err(|error| {
                    match (self.server, net.config_problem()) {
                        (None, Some(problem)) => anyhow!(
                            "cannot look up {} {}: {problem}",
                            self.asked,
                            self.given_name()
                        ),
                        _ => anyhow!("{asking}: {}", dns_error_words(&error)),
                    }
                })?
            }
        };
        let mut answers: Vec<Value> = Vec::new();
        for value in records.iter().filter_map(Value::from_record) {
            if !answers.contains(&value) {
                answers.push(value);
            }
        }
        self.judge(&answers).map_err(|problem| {
            let said = match source {
                Source::Dns(name) => format!("{} {} answered", self.asked, shown_name(&name)),
                Source::Hosts => format!("/etc/hosts gives {}", self.given_name()),
            };
            anyhow!("{said} {}; {problem}", list(&answers)).into()
        })
    }

    /// Whether the answer is what was asked for; if not, what was expected.
    fn judge(&self, answers: &[Value]) -> Result<(), String> {
        let answered = |expected: &Expected| answers.iter().any(|value| expected.matches(value));
        let expected_ok = match self.matching {
            Match::All => self.expected.iter().all(answered),
            Match::Any => self.expected.iter().any(answered),
            Match::Exact => {
                self.expected.iter().all(answered)
                    && answers
                        .iter()
                        .all(|value| self.expected.iter().any(|e| e.matches(value)))
            }
        };
        if !expected_ok {
            let given: Vec<&str> = self.expected.iter().map(|e| e.given.as_str()).collect();
            let given = given.join(", ");
            return Err(match (self.matching, self.expected.len()) {
                (Match::Exact, _) => format!("expected exactly {given}"),
                (_, 1) => format!("expected {given}"),
                (Match::All, _) => format!("expected all of {given}"),
                (Match::Any, _) => format!("expected one of {given}"),
            });
        }
        if answers.len() < self.min {
            return Err(format!(
                "expected at least {} record{}, got {}",
                self.min,
                if self.min == 1 { "" } else { "s" },
                answers.len()
            ));
        }
        Ok(())
    }

    /// The addresses /etc/hosts lists for the name, when the system configuration applies
    /// and addresses are asked for.
    fn hosts_answer(&self) -> Option<Vec<Record>> {
        let record_type = match (self.server, self.asked) {
            (Some(_), _) => return None,
            (None, Asked::Addresses) => None,
            (None, Asked::Type(t @ (RecordType::A | RecordType::AAAA))) => Some(t),
            (None, Asked::Type(_)) => return None,
        };
        let listed = net::hosts_addresses(&self.name, record_type);
        if listed.is_empty() {
            return None;
        }
        let records = listed
            .into_iter()
            .map(|ip| Record::from_rdata(self.name.clone(), 0, RData::from(ip)))
            .collect();
        Some(records)
    }

    async fn ask(&self, resolver: &TokioResolver) -> Result<(Source, Vec<Record>), NetError> {
        let lookup = match self.asked {
            Asked::Addresses => resolver
                .lookup_ip(self.name.clone())
                .await?
                .as_lookup()
                .clone(),
            Asked::Type(record_type) => resolver.lookup(self.name.clone(), record_type).await?,
        };
        let wanted = |record_type: RecordType| match self.asked {
            Asked::Addresses => matches!(record_type, RecordType::A | RecordType::AAAA),
            Asked::Type(asked) => record_type == asked,
        };
        // A CNAME chain comes with the answer; only the records asked for count.
        let records = lookup
            .answers()
            .iter()
            .filter(|record| wanted(record.record_type()))
            .cloned()
            .collect();
        Ok((Source::Dns(lookup.query().name().clone()), records))
    }

    fn resolver<'a>(&'a self, net: &'a Net) -> Result<&'a TokioResolver> {
        match self.server {
            None => Ok(net.resolver()),
            Some(server) => self
                .resolver
                .get_or_init(|| net::resolver_asking(server).map_err(|e| format!("{e:#}")))
                .as_ref()
                .map_err(|message| anyhow!(message.clone())),
        }
    }

    /// The name as the user wrote it, without the dot a chosen server adds.
    fn given_name(&self) -> String {
        shown_name(&self.name)
    }
}

impl fmt::Debug for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dns")
            .field("name", &self.name.to_utf8())
            .field("asked", &self.asked)
            .field("expected", &self.expected)
            .field("matching", &self.matching)
            .field("min", &self.min)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// `IP` or `IP:PORT`, IPv6 as `[::1]:53` or bare; port 53 by default.
fn parse_server(text: &str) -> Result<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => bail!(
            "expected IP or IP:PORT of a DNS server, e.g. 10.96.0.10, 127.0.0.1:5353 or [fd00::a]:53"
        ),
    }
}

fn type_names() -> String {
    TYPES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `10.0.0.4, 10.0.0.6`, at most [`SHOWN_ANSWERS`] of them, or `nothing`.
fn list(values: &[Value]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(target: &str) -> Result<Dns> {
        let url = Url::parse(target).unwrap();
        Dns::parse(&url, Options::parse(url.fragment())?)
    }

    #[test]
    fn accepted_options() {
        let ip = |text: &str| Value::Ip(text.parse().unwrap());
        let cases: &[(&str, Asked, &str, usize, Option<&str>)] = &[
            (
                "dns://db.internal",
                Asked::Addresses,
                "db.internal",
                1,
                None,
            ),
            (
                "dns://db.internal.",
                Asked::Addresses,
                "db.internal.",
                1,
                None,
            ),
            ("dns://DB", Asked::Addresses, "db", 1, None),
            (
                "dns://db#type=a&expect=10.0.0.5",
                Asked::Type(RecordType::A),
                "db",
                1,
                None,
            ),
            (
                "dns://_pg._tcp.db#type=SRV&min=3",
                Asked::Type(RecordType::SRV),
                "_pg._tcp.db",
                3,
                None,
            ),
            (
                "dns://db#server=127.0.0.1:5353",
                Asked::Addresses,
                "db.",
                1,
                Some("127.0.0.1:5353"),
            ),
            (
                "dns://db#server=10.96.0.10",
                Asked::Addresses,
                "db.",
                1,
                Some("10.96.0.10:53"),
            ),
            (
                "dns://db#server=[fd00::a]:5353",
                Asked::Addresses,
                "db.",
                1,
                Some("[fd00::a]:5353"),
            ),
            (
                "dns://db#server=fd00::a",
                Asked::Addresses,
                "db.",
                1,
                Some("[fd00::a]:53"),
            ),
            (
                "dns://10.0.0.5#type=PTR",
                Asked::Type(RecordType::PTR),
                "5.0.0.10.in-addr.arpa.",
                1,
                None,
            ),
            (
                "dns://mail.example.com#type=TXT&expect=v%3Dspf1%20-all",
                Asked::Type(RecordType::TXT),
                "mail.example.com",
                1,
                None,
            ),
        ];
        for (target, asked, name, min, server) in cases {
            let dns = parse(target).unwrap_or_else(|e| panic!("{target}: {e:#}"));
            assert_eq!(dns.asked, *asked, "{target}");
            assert_eq!(dns.name.to_utf8(), *name, "{target}");
            assert_eq!(dns.min, *min, "{target}");
            assert_eq!(
                dns.server.map(|s| s.to_string()).as_deref(),
                *server,
                "{target}"
            );
        }
        let dns = parse("dns://db#expect=10.0.0.5&expect=fd00::5&match=exact").unwrap();
        assert_eq!(dns.matching, Match::Exact);
        assert!(dns.expected[0].matches(&ip("10.0.0.5")));
        assert!(dns.expected[1].matches(&ip("fd00:0:0::5")));
    }

    #[test]
    fn rejected_options_say_what_is_expected() {
        let cases = [
            (
                "dns://db#type=AXFR",
                "expected one of A, AAAA, CNAME, MX, NS, PTR, SRV, TXT",
            ),
            ("dns://db#type=A&type=AAAA", "given 2 times"),
            ("dns://db#type=A&expect=fd00::1", "expected an IPv4 address"),
            (
                "dns://db#type=AAAA&expect=10.0.0.1",
                "expected an IPv6 address",
            ),
            (
                "dns://db#expect=db.internal",
                "expected an IPv4 or IPv6 address",
            ),
            ("dns://db#type=MX&expect=ten%20mail", "not an MX preference"),
            ("dns://db#type=MX&expect=1%202%203", "'preference exchange'"),
            ("dns://db#type=SRV&expect=0%200%20x%20db", "not an SRV port"),
            ("dns://db#type=SRV&expect=db:http", "not an SRV port"),
            (
                "dns://db#type=SRV&expect=0%200%20db",
                "'priority weight port target'",
            ),
            ("dns://db#type=CNAME&expect=a..b", "not a DNS name"),
            ("dns://db#expect=", "needs a value"),
            ("dns://db#match=all", "give at least one"),
            (
                "dns://db#expect=10.0.0.1&match=some",
                "expected all, any or exact",
            ),
            ("dns://db#min=0", "1 or more"),
            ("dns://db#min=many", "1 or more"),
            ("dns://db#server=dns.google", "expected IP or IP:PORT"),
            ("dns://db#server=10.0.0.1:99999", "expected IP or IP:PORT"),
            (
                "dns://db#nameserver=10.0.0.1",
                "unknown option 'nameserver' for dns targets (known: type, expect, match, min, server)",
            ),
            ("dns://db:53", "no port"),
            ("dns://db/path", "no path"),
            ("dns://db?x=1", "no path or query"),
            ("dns://user:pw@db", "no credentials"),
            ("dns://10.0.0.5", "is an IP address"),
            ("dns://a..b", "not a DNS name"),
        ];
        for (target, expected) in cases {
            let message = format!("{:#}", parse(target).expect_err(target));
            assert!(message.contains(expected), "{target}: {message}");
        }
        let message = format!("{:#}", parse("dns://").expect_err("dns://"));
        assert!(message.contains("missing name"), "{message}");
    }

    fn values(texts: &[&str]) -> Vec<Value> {
        texts
            .iter()
            .map(|t| Value::Ip(t.parse().unwrap()))
            .collect()
    }

    #[test]
    fn expected_values_are_matched_all_any_or_exactly() {
        let judge = |target: &str, answers: &[&str]| parse(target).unwrap().judge(&values(answers));
        let cases: &[(&str, &[&str], Result<(), &str>)] = &[
            ("dns://db", &["10.0.0.1"], Ok(())),
            (
                "dns://db#expect=10.0.0.5",
                &["10.0.0.4", "10.0.0.5"],
                Ok(()),
            ),
            (
                "dns://db#expect=10.0.0.5",
                &["10.0.0.4"],
                Err("expected 10.0.0.5"),
            ),
            (
                "dns://db#expect=10.0.0.4&expect=10.0.0.5",
                &["10.0.0.4"],
                Err("expected all of 10.0.0.4, 10.0.0.5"),
            ),
            (
                "dns://db#expect=10.0.0.4&expect=10.0.0.5&match=any",
                &["10.0.0.5"],
                Ok(()),
            ),
            (
                "dns://db#expect=10.0.0.4&expect=10.0.0.5&match=any",
                &["10.0.0.6"],
                Err("expected one of 10.0.0.4, 10.0.0.5"),
            ),
            (
                "dns://db#expect=10.0.0.5&match=exact",
                &["10.0.0.5"],
                Ok(()),
            ),
            (
                "dns://db#expect=10.0.0.5&match=exact",
                &["10.0.0.5", "10.0.0.6"],
                Err("expected exactly 10.0.0.5"),
            ),
            ("dns://db#expect=2001:db8::1", &["2001:0db8:0:0::1"], Ok(())),
            ("dns://db#min=2", &["10.0.0.1", "10.0.0.2"], Ok(())),
            (
                "dns://db#min=3",
                &["10.0.0.1", "10.0.0.2"],
                Err("expected at least 3 records, got 2"),
            ),
        ];
        for (target, answers, expected) in cases {
            assert_eq!(
                judge(target, answers),
                expected.map_err(String::from),
                "{target}"
            );
        }
    }

    #[test]
    fn names_mx_srv_and_txt_compare_as_dns_means_them() {
        let name = |text: &str| absolute(&Name::from_str_relaxed(text).unwrap());
        let srv = Value::Srv {
            priority: 0,
            weight: 5,
            port: 5432,
            target: name("DB-0.Example.com."),
        };
        let mx = Value::Mx {
            preference: 10,
            exchange: name("mail.example.com."),
        };
        let cases: &[(&str, &Value, bool)] = &[
            (
                "dns://x#type=CNAME&expect=Target.Example.com",
                &Value::Name(name("target.example.com.")),
                true,
            ),
            (
                "dns://x#type=CNAME&expect=target.example.com.",
                &Value::Name(name("target.example.com")),
                true,
            ),
            (
                "dns://x#type=CNAME&expect=other.example.com",
                &Value::Name(name("target.example.com")),
                false,
            ),
            (
                "dns://x#type=SRV&expect=0%205%205432%20db-0.example.com",
                &srv,
                true,
            ),
            (
                "dns://x#type=SRV&expect=0%201%205432%20db-0.example.com",
                &srv,
                false,
            ),
            ("dns://x#type=SRV&expect=db-0.example.com:5432", &srv, true),
            ("dns://x#type=SRV&expect=db-0.example.com:5433", &srv, false),
            ("dns://x#type=SRV&expect=db-0.example.com", &srv, true),
            ("dns://x#type=MX&expect=MAIL.example.com", &mx, true),
            ("dns://x#type=MX&expect=10%20mail.example.com", &mx, true),
            ("dns://x#type=MX&expect=20%20mail.example.com", &mx, false),
            (
                "dns://x#type=TXT&expect=v%3Dspf1%20-all",
                &Value::Text("v=spf1 -all".into()),
                true,
            ),
            (
                "dns://x#type=TXT&expect=V%3Dspf1%20-all",
                &Value::Text("v=spf1 -all".into()),
                false,
            ),
        ];
        for (target, value, expected) in cases {
            let dns = parse(target).unwrap();
            assert_eq!(
                dns.expected[0].matches(value),
                *expected,
                "{target} vs {value}"
            );
        }
        assert_eq!(srv.to_string(), "0 5 5432 db-0.example.com");
        assert_eq!(mx.to_string(), "10 mail.example.com");
    }

    #[test]
    fn txt_chunks_are_joined() {
        use hickory_resolver::proto::rr::rdata::TXT;
        let record = Record::from_rdata(
            Name::root(),
            0,
            RData::TXT(TXT::new(vec!["v=spf1 ".into(), "include:x -all".into()])),
        );
        assert_eq!(
            Value::from_record(&record),
            Some(Value::Text("v=spf1 include:x -all".into()))
        );
    }

    #[test]
    fn long_answers_are_cut() {
        let many: Vec<String> = (1..=10).map(|i| format!("10.0.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            list(&values(&many)),
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, and 2 more"
        );
        assert_eq!(list(&[]), "nothing");
    }
}
