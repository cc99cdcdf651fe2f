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

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
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

/// How long an address may leave its connections unanswered before a fresh connection to it
/// is started beside them. A SYN that went nowhere keeps its path on every retransmission
/// (its connection-tracking entry was made before a route or NAT rule existed), so only a
/// new connection takes a path that has appeared since: a Kubernetes Service IP that
/// kube-proxy programs a moment after the attempt began.
const FRESH_CONNECTION_DELAY: Duration = Duration::from_secs(1);

/// Connections to one address kept open at once; a fresh one beyond this closes the oldest,
/// so a blackholed address costs a few sockets, never more.
const CONNECTIONS_PER_ADDRESS: usize = 3;

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
        let (config, options, config_problem) = system_config();
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
            config_problem: config_problem.map(Into::into),
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
    /// previous fails or has not answered within 250 ms, then a fresh connection to a
    /// silent address every second; the first to connect wins.
    pub async fn connect(&self, host: &str, port: u16, stage: &Stage) -> Result<TcpStream> {
        stage.set(format!("resolving {host}"));
        let addresses = interleave_families(self.resolve(host, port).await?);
        stage.set(format!("connecting to {}", list(&addresses)));
        connect_any(&addresses, TcpStream::connect).await
    }
}

/// Refuses an address no server can listen on for a connection: multicast, and IPv4's
/// broadcast address. A connection to one is refused or unanswered until the deadline.
pub fn check_reachable(address: IpAddr) -> Result<()> {
    let unreachable = match address {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    };
    if unreachable {
        anyhow::bail!("{address} is a multicast or broadcast address: no server listens there");
    }
    Ok(())
}

/// Refuses a host name DNS cannot carry, so that it is a usage error at once rather than a
/// lookup failing until the deadline: at most 253 characters (RFC 1035, without the final
/// dot), labels of 1 to 63. IP addresses pass as they are.
pub fn check_host_name(name: &str) -> Result<()> {
    if name.parse::<IpAddr>().is_ok() || (name.starts_with('[') && name.ends_with(']')) {
        return Ok(());
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        anyhow::bail!("missing host name");
    }
    let count = bare.chars().count();
    if count > 253 {
        anyhow::bail!("host name of {count} characters (DNS allows at most 253, and 63 per label)");
    }
    for label in bare.split('.') {
        let length = label.chars().count();
        if length == 0 {
            anyhow::bail!(
                "host name '{name}' has an empty label (two dots in a row, or a leading dot)"
            );
        }
        if length > 63 {
            anyhow::bail!(
                "host name label of {length} characters (DNS allows at most 63 per label)"
            );
        }
    }
    Ok(())
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

/// /etc/resolv.conf as glibc reads it, or why it cannot be read.
fn system_config() -> (ResolverConfig, ResolverOpts, Option<String>) {
    match system_conf::read_system_conf() {
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
                Some(problem),
            )
        }
    }
}

/// The resolver configuration in force, as `--dry-run` shows it.
pub fn system_plan() -> Vec<(&'static str, String)> {
    let (config, options, problem) = system_config();
    let names = |names: &mut dyn Iterator<Item = &Name>| {
        let names: Vec<String> = names
            .map(|name| name.to_string().trim_end_matches('.').to_string())
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(" ")
        }
    };
    let search = match config.search() {
        [] => names(&mut config.domain().into_iter()),
        search => names(&mut search.iter()),
    };
    vec![
        (
            "from",
            problem.unwrap_or_else(|| "/etc/resolv.conf, and /etc/hosts first".to_string()),
        ),
        ("nameservers", describe_servers(config.name_servers())),
        ("search", search),
        ("ndots", options.ndots.to_string()),
        (
            "timeout",
            humantime::format_duration(options.timeout).to_string(),
        ),
        ("attempts", options.attempts.to_string()),
    ]
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

/// The first connection to any of `addresses` that `connect` makes. Addresses are started
/// in order, each [`NEXT_ADDRESS_DELAY`] after the previous or at once when it fails; once
/// all are started, every [`FRESH_CONNECTION_DELAY`] a fresh connection goes to the next
/// address (in turn) that has neither failed nor answered. Generic over the connection so
/// that the timing can be tested with a paused clock.
async fn connect_any<C, F, S>(addresses: &[SocketAddr], connect: C) -> Result<S>
where
    C: Fn(SocketAddr) -> F,
    F: Future<Output = io::Result<S>>,
{
    let mut unstarted = (0..addresses.len()).peekable();
    // Connections in progress, oldest first, with the index of their address.
    let mut connecting: Vec<(usize, Pin<Box<F>>)> = Vec::new();
    let mut failed = vec![false; addresses.len()];
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    let mut next_fresh = 0;
    // Fires at once for the first address.
    let mut timer = pin!(tokio::time::sleep(Duration::ZERO));
    let mut timer_armed = true;
    loop {
        // Nothing left to wait for: every address was started and has failed.
        if connecting.is_empty() && unstarted.peek().is_none() {
            break;
        }
        let any_connecting = !connecting.is_empty();
        let finished = poll_fn(|cx| {
            connecting
                .iter_mut()
                .enumerate()
                .find_map(
                    |(position, (_, connection))| match connection.as_mut().poll(cx) {
                        Poll::Ready(result) => Some((position, result)),
                        Poll::Pending => None,
                    },
                )
                .map_or(Poll::Pending, Poll::Ready)
        });
        let finished = tokio::select! {
            finished = finished, if any_connecting => Some(finished),
            () = timer.as_mut(), if timer_armed => None,
        };
        let start = match finished {
            Some((position, result)) => {
                let (index, _) = connecting.remove(position);
                match result {
                    Ok(stream) => return Ok(stream),
                    Err(error) => {
                        failed[index] = true;
                        failures.push((addresses[index], error));
                        unstarted.next()
                    }
                }
            }
            None => {
                let silent = (0..addresses.len())
                    .map(|offset| (next_fresh + offset) % addresses.len())
                    .find(|&index| !failed[index] && connecting.iter().any(|(i, _)| *i == index));
                let next = unstarted.next().or(silent);
                if let Some(index) = next {
                    next_fresh = index + 1;
                }
                timer_armed = next.is_some();
                next
            }
        };
        let Some(index) = start else { continue };
        let open: Vec<usize> = (0..connecting.len())
            .filter(|&position| connecting[position].0 == index)
            .collect();
        if open.len() >= CONNECTIONS_PER_ADDRESS {
            // Closed before the fresh one opens, so a blackholed address never holds more.
            connecting.remove(open[0]);
        }
        connecting.push((index, Box::pin(connect(addresses[index]))));
        let delay = if unstarted.peek().is_some() {
            NEXT_ADDRESS_DELAY
        } else {
            FRESH_CONNECTION_DELAY
        };
        timer.as_mut().reset(tokio::time::Instant::now() + delay);
        timer_armed = true;
    }
    if failures.is_empty() {
        return Err(anyhow!("no address to connect to"));
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
            Some((_, addresses)) if addresses.contains(address) => {}
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
    use std::cell::Cell;
    use std::rc::Rc;

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

    /// A connector whose `n`th connection (from 0) does what `plan(n)` says: Some(Ok) connects,
    /// Some(Err) is refused, None never answers. Counts connections made and open at once.
    struct Connector {
        made: Cell<usize>,
        open: Rc<Cell<usize>>,
        most_open: Rc<Cell<usize>>,
    }

    struct Open(Rc<Cell<usize>>);

    impl Drop for Open {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }

    impl Connector {
        fn new() -> Self {
            Connector {
                made: Cell::new(0),
                open: Rc::default(),
                most_open: Rc::default(),
            }
        }

        fn connect(
            &self,
            plan: impl Fn(usize, SocketAddr) -> Option<io::Result<usize>>,
        ) -> impl Fn(SocketAddr) -> Pin<Box<dyn Future<Output = io::Result<usize>>>> {
            move |address| {
                let n = self.made.get();
                self.made.set(n + 1);
                self.open.set(self.open.get() + 1);
                self.most_open
                    .set(self.most_open.get().max(self.open.get()));
                let open = Open(self.open.clone());
                let outcome = plan(n, address);
                Box::pin(async move {
                    let _open = open;
                    match outcome {
                        Some(result) => result,
                        None => std::future::pending().await,
                    }
                })
            }
        }
    }

    fn refused() -> io::Error {
        io::Error::from(io::ErrorKind::ConnectionRefused)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_address_gets_a_fresh_connection_every_second() {
        let connector = Connector::new();
        let start = tokio::time::Instant::now();
        // The first two connections went nowhere; the third takes the new path.
        let connect = connector.connect(|n, _| (n >= 2).then_some(Ok(n)));
        let won = connect_any(&addresses(&["10.96.0.10:80"]), &connect)
            .await
            .unwrap();
        assert_eq!(won, 2);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_blackholed_address_costs_a_few_sockets_at_most() {
        let connector = Connector::new();
        let connect = connector.connect(|_, _| None);
        let address = addresses(&["10.96.0.10:80"]);
        let racing = connect_any(&address, &connect);
        let ended = tokio::time::timeout(Duration::from_millis(9_500), racing).await;
        assert!(ended.is_err(), "a blackholed address never answers");
        assert_eq!(connector.made.get(), 10, "one connection a second");
        assert_eq!(connector.most_open.get(), CONNECTIONS_PER_ADDRESS);
    }

    #[tokio::test(start_paused = true)]
    async fn addresses_are_tried_in_turn_and_a_refusal_moves_on_at_once() {
        let both = addresses(&["[::1]:80", "127.0.0.1:80"]);
        let start = tokio::time::Instant::now();
        // The first address is refused: the second starts at once.
        let connector = Connector::new();
        let connect = connector.connect(|n, _| Some(if n == 0 { Err(refused()) } else { Ok(n) }));
        assert_eq!(connect_any(&both, &connect).await.unwrap(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The first address is silent: the second starts 250 ms later.
        let connector = Connector::new();
        let connect = connector.connect(|n, _| (n == 1).then_some(Ok(n)));
        assert_eq!(connect_any(&both, &connect).await.unwrap(), 1);
        assert_eq!(start.elapsed(), NEXT_ADDRESS_DELAY);
        // Everything refused: one line, each address once, at once.
        let start = tokio::time::Instant::now();
        let connector = Connector::new();
        let connect = connector.connect(|_, _| Some(Err(refused())));
        let error = connect_any(&both, &connect).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "[::1]:80, 127.0.0.1:80: connection refused"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(connector.made.get(), 2);
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

    /// Property tests: the system files holdup reads through hickory (resolv.conf, hosts),
    /// whatever they hold, and host names of any shape never panic.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn config_text() -> impl Strategy<Value = String> {
            let line = prop_oneof![
                any::<String>(),
                "(nameserver|search|domain|options|sortlist|#|;)[ \t]{0,2}[a-z0-9.:%\\[\\]-]{0,20}",
                "options (ndots|timeout|attempts|rotate|edns0):?[0-9-]{0,12}",
                "[0-9a-f.:]{0,20}[ \t]+[a-z0-9. -]{0,30}",
            ];
            prop::collection::vec(line, 0..10).prop_map(|lines| lines.join("\n"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_000))]

            #[test]
            fn resolv_conf_and_hosts_files(text in config_text()) {
                let _ = system_conf::parse_resolv_conf(text.as_bytes());
                let mut hosts = Hosts::default();
                let _ = hosts.read_hosts_conf(text.as_bytes());
            }

            #[test]
            fn host_names(name in prop_oneof![
                any::<String>(),
                "[a-z0-9.-]{0,300}",
                "([a-z]{0,70}\\.){0,6}[a-z]{0,70}\\.?",
            ]) {
                if let Err(error) = check_host_name(&name) {
                    prop_assert!(error.to_string().len() < 400, "{error}");
                }
            }
        }
    }
}
