//! DNS servers on loopback: a real authoritative server (hickory's, with an in-memory zone)
//! whose records a test changes while holdup runs, and a server that never answers.
//!
//! Records are served with a TTL and a negative TTL of an hour, so a resolver that cached
//! anything would miss every change a test makes.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr as _;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};

/// Long enough that a cached answer would outlive any test.
const TTL: u32 = 3600;

/// An authoritative DNS server for one zone, on UDP.
pub struct DnsServer {
    address: SocketAddr,
    origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    failing: Arc<Mutex<HashSet<LowerName>>>,
    _server: Server<Handler>,
    runtime: tokio::runtime::Runtime,
}

impl DnsServer {
    /// Serves `origin` (e.g. `test.`) on 127.0.0.1, any port.
    pub fn start(origin: &str) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), origin).expect("cannot start a DNS server")
    }

    /// Serves `origin` on `address`; fails if the address cannot be bound.
    pub fn start_on(address: SocketAddr, origin: &str) -> io::Result<Self> {
        let socket = UdpSocket::bind(address)?;
        socket.set_nonblocking(true)?;
        let address = socket.local_addr()?;
        let origin = Name::from_str(origin).expect("zone name");
        let soa = Record::from_rdata(
            origin.clone(),
            TTL,
            RData::SOA(SOA::new(
                Name::from_str("ns.invalid.").unwrap(),
                Name::from_str("hostmaster.invalid.").unwrap(),
                1,
                TTL as i32,
                TTL as i32,
                TTL as i32,
                // The negative TTL: NXDOMAIN and empty answers may be cached this long.
                TTL,
            )),
        );
        let records = BTreeMap::from([(
            RrKey::new(origin.clone().into(), RecordType::SOA),
            RecordSet::from(soa),
        )]);
        let zone = Arc::new(
            InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
                .expect("zone"),
        );
        let mut catalog = Catalog::new();
        catalog.upsert(origin.clone().into(), vec![zone.clone()]);
        let failing = Arc::new(Mutex::new(HashSet::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let handler = Handler {
            catalog,
            failing: failing.clone(),
        };
        let server = runtime.block_on(async {
            let mut server = Server::new(handler);
            server.register_socket(tokio::net::UdpSocket::from_std(socket)?);
            io::Result::Ok(server)
        })?;
        Ok(DnsServer {
            address,
            origin,
            zone,
            failing,
            _server: server,
            runtime,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `name` in the zone: relative names get the zone's origin, names ending in `.` are kept.
    pub fn name(&self, name: &str) -> Name {
        let parsed = Name::from_str(name).expect("record name");
        if parsed.is_fqdn() {
            parsed
        } else {
            parsed.append_domain(&self.origin).expect("name in zone")
        }
    }

    /// Makes `records` the records of `name` for their type, replacing what was there.
    pub fn set(&self, name: &str, records: Vec<RData>) {
        let name = self.name(name);
        let record_type = records.first().expect("at least one record").record_type();
        self.runtime.block_on(async {
            self.zone
                .records_mut()
                .await
                .remove(&RrKey::new(name.clone().into(), record_type));
            let serial = self.zone.serial().await;
            for data in records {
                let record = Record::from_rdata(name.clone(), TTL, data);
                assert!(
                    self.zone.upsert(record, serial).await,
                    "cannot add to the zone"
                );
            }
        });
    }

    /// Answers SERVFAIL to every query for `name`, as a server whose backend is broken.
    pub fn fail(&self, name: &str) {
        let name = self.name(name);
        self.failing.lock().unwrap().insert(name.into());
    }
}

/// The zone, except for names that must fail.
struct Handler {
    catalog: Catalog,
    failing: Arc<Mutex<HashSet<LowerName>>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let fails = {
            let failing = self.failing.lock().unwrap();
            request
                .queries
                .queries()
                .iter()
                .any(|query| failing.contains(query.name()))
        };
        if !fails {
            return self
                .catalog
                .handle_request::<R, T>(request, response_handle)
                .await;
        }
        let response = MessageResponseBuilder::from_message_request(request)
            .error_msg(&request.metadata, ResponseCode::ServFail);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header {
                metadata: request.metadata,
                counts: HeaderCounts::default(),
            }),
        }
    }
}

/// A UDP "DNS server" that reads every query and never answers, as one behind a firewall
/// that lets queries in and nothing out. It keeps where each query came from.
pub struct Mute {
    address: SocketAddr,
    senders: Arc<(Mutex<Vec<SocketAddr>>, Condvar)>,
}

impl Mute {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).expect("cannot bind a UDP socket")
    }

    pub fn start_on(address: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(address)?;
        let address = socket.local_addr()?;
        let senders: Arc<(Mutex<Vec<SocketAddr>>, Condvar)> = Arc::default();
        let seen = senders.clone();
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok((_, sender)) = socket.recv_from(&mut buffer) {
                let (senders, received) = &*seen;
                senders.lock().unwrap().push(sender);
                received.notify_all();
            }
        });
        Ok(Mute { address, senders })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many queries others sent so far, counted exactly: a datagram of our own joins
    /// the same queue, and once it is read, every earlier one is.
    pub fn queries(&self) -> usize {
        let own = UdpSocket::bind(SocketAddr::new(self.address.ip(), 0)).unwrap();
        own.send_to(b"marker", self.address).unwrap();
        let own = own.local_addr().unwrap();
        let limit = Instant::now() + Duration::from_secs(10);
        let (senders, received) = &*self.senders;
        let mut senders = senders.lock().unwrap();
        loop {
            if let Some(index) = senders.iter().position(|sender| *sender == own) {
                return index;
            }
            let left = limit.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the server on {} never read our datagram",
                self.address
            );
            senders = received.wait_timeout(senders, left).unwrap().0;
        }
    }
}

// Record data; names keep the case they are written in (DNS compares without it).

pub fn a(ip: &str) -> RData {
    RData::A(A(ip.parse().expect("IPv4 address")))
}

pub fn aaaa(ip: &str) -> RData {
    RData::AAAA(AAAA(ip.parse().expect("IPv6 address")))
}

pub fn cname(target: &str) -> RData {
    RData::CNAME(CNAME(Name::from_ascii(target).expect("name")))
}

pub fn mx(preference: u16, exchange: &str) -> RData {
    RData::MX(MX::new(
        preference,
        Name::from_ascii(exchange).expect("name"),
    ))
}

pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(
        priority,
        weight,
        port,
        Name::from_ascii(target).expect("name"),
    ))
}

/// One TXT record made of these character-strings.
pub fn txt(chunks: &[&str]) -> RData {
    RData::TXT(TXT::new(chunks.iter().map(ToString::to_string).collect()))
}
