//! `dns://NAME`: ready when a DNS name has the records asked for: an address by default, or
//! records of a given type, with expected values and at least a given number of records.
//!
//! Without `server`, the name is resolved as every other target resolves a host: the system
//! configuration with its search list and ndots, and /etc/hosts for addresses. With a
//! `server`, that server alone is asked and the name is taken as absolute, as `dig @server`
//! does. Every attempt asks again: nothing is cached, not even an NXDOMAIN.

mod answer;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use percent_encoding::percent_decode_str;

use self::answer::{Asked, Expected, Match, Value, judge, list, shown_name};
use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::{self, Net, check_reachable, dns_error_words};
use crate::redact;

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
    /// The URL as it may be shown.
    shown: String,
}

/// Where the answer came from, for messages.
enum Source {
    Dns(Name),
    Hosts,
}

impl Dns {
    pub fn parse(text: &str) -> Result<Dns> {
        let (url, mut options) = target_url::parse(text)?;
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
            shown: redact::url(&url),
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

    pub fn plan(&self) -> Plan {
        let expected: Vec<&str> = self.expected.iter().map(Expected::given).collect();
        let (name, source) = match self.server {
            Some(server) => (
                format!("{} (as written)", self.given_name()),
                format!("{server} only"),
            ),
            None if self.name.is_fqdn() => (
                format!("{} (absolute)", self.given_name()),
                "/etc/hosts, then the system's nameservers (see resolver)".to_string(),
            ),
            None => (
                format!("{} (through the search list)", self.given_name()),
                "/etc/hosts, then the system's nameservers (see resolver)".to_string(),
            ),
        };
        let mut plan = vec![("name", name), ("type", self.asked.to_string())];
        if expected.is_empty() {
            plan.push(("expect", "any value".to_string()));
        } else {
            plan.push(("expect", expected.join(", ")));
            plan.push(("match", self.matching.name().to_string()));
        }
        plan.push(("min", self.min.to_string()));
        plan.push(("asked", source));
        plan
    }

    /// Whether the answer is what was asked for; if not, what was expected.
    fn judge(&self, answers: &[Value]) -> Result<(), String> {
        judge(&self.expected, self.matching, self.min, answers)
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

impl fmt::Display for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
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
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    let address = match (text.parse::<SocketAddr>(), bare.parse::<IpAddr>()) {
        (Ok(address), _) => address,
        (_, Ok(ip)) => SocketAddr::new(ip, 53),
        _ => bail!(
            "expected IP or IP:PORT of a DNS server, e.g. 10.96.0.10, 127.0.0.1:5353 or [fd00::a]:53"
        ),
    };
    if address.port() == 0 {
        bail!(
            "port 0 cannot be asked (expected IP or IP:PORT of a DNS server, PORT from 1 to 65535)"
        );
    }
    check_reachable(address.ip())?;
    Ok(address)
}

fn type_names() -> String {
    TYPES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::answer::absolute;
    use super::*;

    fn parse(target: &str) -> Result<Dns> {
        Dns::parse(target)
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
            ("dns://a..b", "empty label"),
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
    /// Property tests: DNS answers as they come off the wire, whole or damaged, are read
    /// into values and judged against expectations without a panic, and said in one line.
    mod properties {
        use std::net::Ipv4Addr;

        use hickory_resolver::proto::op::{Message, MessageType, OpCode};
        use hickory_resolver::proto::rr::rdata::{A, MX, SRV, TXT};
        use proptest::prelude::*;

        use super::*;

        /// An encoded response with one record of each type holdup reads.
        fn response() -> Vec<u8> {
            let name = Name::from_ascii("db.test.").unwrap();
            let target = Name::from_ascii("db-0.test.").unwrap();
            let mut message = Message::new(7, MessageType::Response, OpCode::Query);
            for rdata in [
                RData::A(A(Ipv4Addr::new(10, 0, 0, 4))),
                RData::MX(MX::new(10, target.clone())),
                RData::SRV(SRV::new(0, 5, 5432, target.clone())),
                RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
                RData::CNAME(hickory_resolver::proto::rr::rdata::CNAME(target.clone())),
            ] {
                message.add_answer(Record::from_rdata(name.clone(), 60, rdata));
            }
            message.to_vec().unwrap()
        }

        fn damaged() -> impl Strategy<Value = Vec<u8>> {
            let whole = response();
            let length = whole.len();
            prop::collection::vec((0..length, any::<u8>(), any::<bool>()), 0..12).prop_map(
                move |edits| {
                    let mut bytes = whole.clone();
                    for (at, byte, cut) in edits {
                        if cut {
                            bytes.truncate(at.min(bytes.len()));
                        } else if let Some(slot) = bytes.get_mut(at) {
                            *slot = byte;
                        }
                    }
                    bytes
                },
            )
        }

        fn judged(bytes: &[u8], expectations: &[String]) -> Result<(), TestCaseError> {
            let Ok(message) = Message::from_vec(bytes) else {
                return Ok(());
            };
            let values: Vec<Value> = message
                .answers
                .iter()
                .filter_map(Value::from_record)
                .collect();
            prop_assert!(!list(&values).contains('\n'));
            for (asked, text) in expectations.iter().enumerate() {
                let asked = match asked % 4 {
                    0 => Asked::Addresses,
                    1 => Asked::Type(RecordType::SRV),
                    2 => Asked::Type(RecordType::MX),
                    _ => Asked::Type(RecordType::TXT),
                };
                if let Ok(expected) = Expected::parse(asked, text) {
                    for matching in [Match::All, Match::Any, Match::Exact] {
                        let _ = judge(std::slice::from_ref(&expected), matching, 2, &values);
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_000))]

            #[test]
            fn damaged_answers(
                bytes in damaged(),
                expectations in prop::collection::vec(
                    prop_oneof![any::<String>(), "[0-9a-f.:* -]{0,30}", "[0-9]{1,5} [0-9]{1,5} [0-9]{1,6} [a-z.*-]{0,12}"],
                    0..4,
                ),
            ) {
                judged(&bytes, &expectations)?;
            }

            #[test]
            fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
                judged(&bytes, &[String::new()])?;
            }
        }
    }
}
