//! Loopback servers that behave the ways a dependency does while it starts: closed,
//! opening later, accepting and saying nothing, dropping packets, answering 503.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use socket2::{Domain, Socket, Type};

use super::tls::{Serving, serve};

/// A port of ours with nothing listening: connections are refused (RST) until
/// [`ClosedPort::open`] starts listening on it. Holding the socket keeps the port ours.
pub struct ClosedPort {
    socket: Socket,
    address: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Self {
        Self::on("127.0.0.1:0".parse().unwrap())
    }

    /// On a given address (port 0 for any), e.g. `[::1]:0`.
    pub fn on(address: SocketAddr) -> Self {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None).unwrap();
        if address.is_ipv6() {
            socket.set_only_v6(true).unwrap();
        }
        socket.bind(&address.into()).unwrap();
        let address = socket.local_addr().unwrap().as_socket().unwrap();
        ClosedPort { socket, address }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Starts listening; accepted connections are closed at once.
    pub fn open(self) -> Listening {
        self.socket.listen(128).unwrap();
        let listener: TcpListener = self.socket.into();
        let peers: Arc<(Mutex<Vec<SocketAddr>>, Condvar)> = Arc::default();
        let seen = peers.clone();
        let server = listener.try_clone().unwrap();
        thread::spawn(move || {
            for stream in server.incoming() {
                let Ok(stream) = stream else { break };
                if let Ok(peer) = stream.peer_addr() {
                    let (peers, accepted) = &*seen;
                    peers.lock().unwrap().push(peer);
                    accepted.notify_all();
                }
            }
        });
        Listening {
            _listener: listener,
            address: self.address,
            peers,
        }
    }
}

/// A listener that accepts connections (and closes them).
pub struct Listening {
    _listener: TcpListener,
    address: SocketAddr,
    /// The peer address of every connection accepted, in order, and a signal for each.
    peers: Arc<(Mutex<Vec<SocketAddr>>, Condvar)>,
}

impl Listening {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many connections others made so far, counted exactly: a connection of our own
    /// goes through the same accept queue, and once it is accepted, every earlier one is.
    pub fn accepted(&self) -> usize {
        let own = TcpStream::connect(self.address)
            .unwrap()
            .local_addr()
            .unwrap();
        let limit = Instant::now() + Duration::from_secs(10);
        let (peers, accepted) = &*self.peers;
        let mut peers = peers.lock().unwrap();
        loop {
            if let Some(index) = peers.iter().position(|peer| *peer == own) {
                return index;
            }
            let left = limit.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the listener on {} never accepted our connection",
                self.address
            );
            peers = accepted.wait_timeout(peers, left).unwrap().0;
        }
    }
}

/// Accepts connections and never says a word on them: an HTTP server stuck before its
/// first response, or a TLS server that never answers the ClientHello.
pub struct Silent {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Silent { address, accepted }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A port whose SYNs are dropped, as behind a firewall: a listener that never accepts,
/// with its accept queue kept full. A connect hangs until its own timeout.
pub struct Blackhole {
    _listener: Socket,
    _fillers: Vec<Socket>,
    address: SocketAddr,
}

impl Blackhole {
    pub fn new() -> Self {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(0).unwrap();
        let address = listener.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        // Fill the queue until a connect goes unanswered; that is the event we wait for.
        loop {
            assert!(
                fillers.len() < 64,
                "cannot fill the accept queue of {address}"
            );
            let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            match filler.connect_timeout(&address.into(), Duration::from_millis(200)) {
                Ok(()) => fillers.push(filler),
                Err(error)
                    if error.kind() == io::ErrorKind::TimedOut
                        || error.kind() == io::ErrorKind::WouldBlock =>
                {
                    break;
                }
                Err(error) => panic!("filling the accept queue of {address}: {error}"),
            }
        }
        Blackhole {
            _listener: listener,
            _fillers: fillers,
            address,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// A real HTTP/1.1 server (hyper) answering every request with the status currently set
/// and a fixed body; counts the requests.
pub struct HttpServer {
    status: Arc<AtomicU16>,
    body: Arc<Mutex<String>>,
    requests: Arc<Mutex<Vec<String>>>,
    serving: Serving,
}

impl HttpServer {
    /// Plain HTTP on 127.0.0.1.
    pub fn start(status: u16, body: &str) -> Self {
        Self::start_with_tls(status, body, None)
    }

    /// HTTPS when `tls` is given.
    pub fn start_with_tls(status: u16, body: &str, tls: Option<rustls::ServerConfig>) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let body = Arc::new(Mutex::new(body.to_string()));
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (answer_status, answer_body, seen) = (status.clone(), body.clone(), requests.clone());
        let serving = serve(tls, move |request: Request<Incoming>, _| {
            seen.lock()
                .unwrap()
                .push(format!("{} {}", request.method(), request.uri()));
            Response::builder()
                .status(answer_status.load(Ordering::SeqCst))
                .body(Full::new(Bytes::from(answer_body.lock().unwrap().clone())))
                .unwrap()
        });
        HttpServer {
            status,
            body,
            requests,
            serving,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.serving.address()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address())
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn set_body(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
