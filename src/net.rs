//! Name resolution and connecting, shared by every probe.
//!
//! Names go through hickory, never through libc, so a static binary in an empty container
//! resolves exactly as the `dns://` probe does: /etc/resolv.conf (search list, ndots),
//! /etc/hosts, Docker's embedded DNS, Kubernetes' search domains. Nothing is cached: a
//! waiting tool must see a record the moment it appears.
//!
//! Where hickory's reading of the system configuration differs from glibc's, glibc wins,
//! because that is what the same image resolves with when it has a libc: /etc/hosts is
//! consulted first, for the name as given, and the host name's domain is searched only
//! when resolv.conf has no `search` or `domain` line.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Hosts, TokioResolver, system_conf};
use tokio::net::TcpStream;

use crate::attempt::Stage;
use crate::words::{io_error_words, lower_first};

/// How long to wait on one address before also trying the next (RFC 8305's "connection
/// attempt delay"). A refused address moves on at once.
const NEXT_ADDRESS_DELAY: Duration = Duration::from_millis(250);

/// The system's resolver, shared by all targets.
#[derive(Clone)]
pub struct Net {
    resolver: Arc<TokioResolver>,
    /// The nameservers asked, for messages: `10.96.0.10:53`.
    servers: Arc<str>,
    /// Why the system configuration could not be read, said with every failed lookup.
    config_problem: Option<Arc<str>>,
}

impl Net {
    /// Reads /etc/resolv.conf (/etc/hosts is read on every lookup). Without a resolv.conf
    /// (an empty container) IP addresses, `localhost` and /etc/hosts still work; other names
    /// fail with a reason.
    pub fn from_system() -> Result<Net> {
        let (config, options, config_problem) = match system_conf::read_system_conf() {
            Ok((mut config, options)) => {
                // glibc: `search` and `domain` exclude each other (the last one wins) and the
                // host name's domain is only a fallback for neither; hickory would search that
                // domain first, before the search list.
                if !config.search.is_empty() {
                    config.domain = None;
                }
                (config, options, None)
            }
            Err(error) => {
                let words = match &error {
                    NetError::Io(error) => io_error_words(error),
                    other => dns_error_words(other),
                };
                let problem = format!("no DNS servers: cannot read /etc/resolv.conf: {words}");
                (
                    ResolverConfig::from_name_servers(Vec::new()),
                    ResolverOpts::default(),
                    Some(problem.into()),
                )
            }
        };
        let servers = describe_servers(config.name_servers()).into();
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(options);
        let options = builder.options_mut();
        // Read by `hosts_addresses` on every lookup instead, for the name as given.
        options.use_hosts_file = ResolveHosts::Never;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        no_cache(options);
        let resolver = builder.build().context("cannot set up the DNS resolver")?;
        Ok(Net {
            resolver: Arc::new(resolver),
            servers,
            config_problem,
        })
    }

    /// The resolver of the system configuration (search list, ndots; not /etc/hosts, which
    /// is [`hosts_addresses`]).
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// The nameservers of the system configuration, for messages.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// Why the system configuration could not be read, if it could not.
    pub fn config_problem(&self) -> Option<&str> {
        self.config_problem.as_deref()
    }

    /// Every address of `host` (a name or an IP literal, IPv6 with or without brackets),
    /// with `port`. Asked anew on every call.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if let Ok(name) = Name::from_str_relaxed(bare) {
            let listed = hosts_addresses(&name, None);
            if !listed.is_empty() {
                return Ok(listed
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect());
            }
        }
        let lookup = self.resolver.lookup_ip(bare).await.map_err(|error| {
            let mut words = format!("cannot resolve {bare}: {}", dns_error_words(&error));
            if let Some(problem) = &self.config_problem {
                words = format!("{words} ({problem})");
            }
            anyhow!(words)
        })?;
        let addresses: Vec<SocketAddr> =
            lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addresses.is_empty() {
            return Err(anyhow!("cannot resolve {bare}: no addresses"));
        }
        Ok(addresses)
    }

    /// Connects to `host:port`, trying every address: the next one starts when the
    /// previous fails or has not answered within 250 ms; the first to connect wins.
    pub async fn connect(&self, host: &str, port: u16, stage: &Stage) -> Result<TcpStream> {
        stage.set(format!("resolving {host}"));
        let addresses = interleave_families(self.resolve(host, port).await?);
        stage.set(format!("connecting to {}", list(&addresses)));
        connect_any(&addresses).await
    }
}

/// The addresses /etc/hosts gives `name` (of `record_type`, A or AAAA, or both when `None`),
/// read anew on every call as glibc does: Docker's `--add-host` and Kubernetes'
/// `hostAliases` write it. Looked up before DNS and for the name as given, never with the
/// search list, so a listed name wins and needs no DNS server at all. `localhost` is left
/// to the resolver, which answers both 127.0.0.1 and ::1 whatever the file says (RFC 6761).
pub fn hosts_addresses(name: &Name, record_type: Option<RecordType>) -> Vec<IpAddr> {
    if name.is_localhost() {
        return Vec::new();
    }
    let Ok(hosts) = Hosts::from_system() else {
        return Vec::new();
    };
    let types = match record_type {
        Some(record_type) => vec![record_type],
        None => vec![RecordType::A, RecordType::AAAA],
    };
    types
        .into_iter()
        .filter_map(|record_type| {
            hosts.lookup_static_host(&Query::query(name.clone(), record_type))
        })
        .flat_map(|lookup| {
            lookup
                .answers()
                .iter()
                .filter_map(|record| record.data.ip_addr())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A resolver that asks `server` only: no search list, no /etc/hosts, nothing cached.
pub fn resolver_asking(server: SocketAddr) -> Result<TokioResolver> {
    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
        .into_iter()
        .map(|mut connection| {
            connection.port = server.port();
            connection
        })
        .collect();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        server.ip(),
        true,
        connections,
    )]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    let options = builder.options_mut();
    options.use_hosts_file = ResolveHosts::Never;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    no_cache(options);
    builder
        .build()
        .with_context(|| format!("cannot set up a DNS resolver for {server}"))
}

/// `10.96.0.10:53, [fd00::a]:53`, each server once.
fn describe_servers(servers: &[NameServerConfig]) -> String {
    let mut shown: Vec<String> = Vec::new();
    for server in servers {
        let port = server.connections.first().map_or(53, |c| c.port);
        let address = SocketAddr::new(server.ip, port).to_string();
        if !shown.contains(&address) {
            shown.push(address);
        }
    }
    if shown.is_empty() {
        "no DNS server".to_string()
    } else {
        shown.join(", ")
    }
}

fn no_cache(options: &mut ResolverOpts) {
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
}

async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream> {
    let mut waiting = addresses.iter().copied();
    let mut running = FuturesUnordered::new();
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    let connect = |address: SocketAddr| async move { (address, TcpStream::connect(address).await) };
    if let Some(address) = waiting.next() {
        running.push(connect(address));
    }
    let mut next_delay = pin!(tokio::time::sleep(NEXT_ADDRESS_DELAY));
    loop {
        tokio::select! {
            Some((address, result)) = running.next() => match result {
                Ok(stream) => return Ok(stream),
                Err(error) => {
                    failures.push((address, error));
                    match waiting.next() {
                        Some(address) => {
                            running.push(connect(address));
                            next_delay.as_mut().reset(tokio::time::Instant::now() + NEXT_ADDRESS_DELAY);
                        }
                        None if running.is_empty() => break,
                        None => {}
                    }
                }
            },
            () = next_delay.as_mut(), if waiting.len() > 0 => {
                if let Some(address) = waiting.next() {
                    running.push(connect(address));
                }
                next_delay.as_mut().reset(tokio::time::Instant::now() + NEXT_ADDRESS_DELAY);
            }
        }
    }
    Err(anyhow!(describe_failures(&failures)))
}

/// RFC 8305 order: alternate address families, starting with the resolver's first choice.
fn interleave_families(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addresses.first() else {
        return addresses;
    };
    let first_is_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addresses.iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut ordered = Vec::with_capacity(addresses.len());
    preferred.reverse();
    other.reverse();
    while !preferred.is_empty() || !other.is_empty() {
        ordered.extend(preferred.pop());
        ordered.extend(other.pop());
    }
    ordered
}

/// `127.0.0.1:5432, [::1]:5432: connection refused`, or one reason per address when they differ.
fn describe_failures(failures: &[(SocketAddr, io::Error)]) -> String {
    let mut groups: Vec<(String, Vec<SocketAddr>)> = Vec::new();
    for (address, error) in failures {
        let words = io_error_words(error);
        match groups.iter_mut().find(|(w, _)| *w == words) {
            Some((_, addresses)) => addresses.push(*address),
            None => groups.push((words, vec![*address])),
        }
    }
    groups
        .iter()
        .map(|(words, addresses)| format!("{}: {words}", list(addresses)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn list(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A resolver error in plain words, keeping NXDOMAIN, SERVFAIL, empty answer and timeout apart.
pub fn dns_error_words(error: &NetError) -> String {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => match no_records.response_code {
            ResponseCode::NXDomain => "no such name (NXDOMAIN)".to_string(),
            _ => "the name exists but has no records of that type".to_string(),
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            "the DNS server failed to answer (SERVFAIL)".to_string()
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            "the DNS server refused the query (REFUSED)".to_string()
        }
        NetError::Dns(DnsError::ResponseCode(code)) => format!("the DNS server answered {code}"),
        NetError::Timeout => "no answer from the DNS server (timed out)".to_string(),
        NetError::NoConnections => "no DNS server to ask".to_string(),
        NetError::Io(error) => format!("DNS: {}", io_error_words(error)),
        other => lower_first(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_starting_with_the_first() {
        let mixed = addresses(&[
            "[::1]:1",
            "[::2]:1",
            "127.0.0.1:1",
            "127.0.0.2:1",
            "127.0.0.3:1",
        ]);
        assert_eq!(
            interleave_families(mixed),
            addresses(&[
                "[::1]:1",
                "127.0.0.1:1",
                "[::2]:1",
                "127.0.0.2:1",
                "127.0.0.3:1"
            ])
        );
    }

    #[test]
    fn failures_are_grouped_by_reason() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let failures = vec![
            ("127.0.0.1:5432".parse().unwrap(), refused()),
            ("[::1]:5432".parse().unwrap(), refused()),
            (
                "10.0.0.1:5432".parse().unwrap(),
                io::Error::from(io::ErrorKind::NetworkUnreachable),
            ),
        ];
        assert_eq!(
            describe_failures(&failures),
            "127.0.0.1:5432, [::1]:5432: connection refused; 10.0.0.1:5432: network unreachable"
        );
    }

    #[test]
    fn servers_are_shown_once_each() {
        let on = |ip: &str, port: u16| {
            let mut server = NameServerConfig::udp_and_tcp(ip.parse().unwrap());
            for connection in &mut server.connections {
                connection.port = port;
            }
            server
        };
        assert_eq!(
            describe_servers(&[
                on("10.96.0.10", 53),
                on("10.96.0.10", 53),
                on("fd00::a", 5353)
            ]),
            "10.96.0.10:53, [fd00::a]:5353"
        );
        assert_eq!(describe_servers(&[]), "no DNS server");
    }

    #[tokio::test]
    async fn localhost_is_both_loopbacks_whatever_etc_hosts_says() {
        for name in ["localhost", "localhost.", "db.localhost"] {
            let parsed = Name::from_str_relaxed(name).unwrap();
            assert!(hosts_addresses(&parsed, None).is_empty(), "{name}");
        }
        let net = Net::from_system().unwrap();
        let mut found = net.resolve("localhost", 80).await.unwrap();
        found.sort();
        assert_eq!(found, addresses(&["127.0.0.1:80", "[::1]:80"]));
    }

    #[tokio::test]
    async fn ip_literals_need_no_resolver() {
        let net = Net::from_system().unwrap();
        assert_eq!(
            net.resolve("[::1]", 80).await.unwrap(),
            addresses(&["[::1]:80"])
        );
        assert_eq!(
            net.resolve("127.0.0.1", 80).await.unwrap(),
            addresses(&["127.0.0.1:80"])
        );
    }
}
