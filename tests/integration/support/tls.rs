//! TLS for test servers: a throwaway certificate authority (servers get certificates from
//! it, holdup is told to trust its PEM file or, to test failures, another CA's), and the one
//! loop that serves HTTP, over TLS or not, for every test server that speaks it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::{Body, Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio::io::{AsyncRead, AsyncWrite};

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, both PEM.
pub struct Issued {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate into `dir` and returns its path.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A server certificate for these names (host names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// A server certificate valid only from `not_before` to `not_after` (years, January 1st).
    pub fn issue_valid(&self, names: &[&str], not_before: i32, not_after: i32) -> Issued {
        self.issue_with(names, |params| {
            params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
            params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        })
    }

    fn issue_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().unwrap()),
            })
            .collect();
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A rustls server configuration presenting a certificate for `names`.
    pub fn server_config(&self, names: &[&str]) -> rustls::ServerConfig {
        self.config(names, None)
    }

    /// The same, and checks a client certificate against this CA when the client presents
    /// one; clients without one are let in all the same (an API server also takes tokens).
    pub fn server_config_checking_clients(&self, names: &[&str]) -> rustls::ServerConfig {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem().as_bytes()).unwrap())
            .unwrap();
        let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .unwrap();
        self.config(names, Some(clients))
    }

    fn config(
        &self,
        names: &[&str],
        clients: Option<Arc<dyn ClientCertVerifier>>,
    ) -> rustls::ServerConfig {
        server_config_presenting(&self.issue(names), clients)
    }
}

/// A rustls server configuration presenting this certificate (and asking clients for one
/// when given a verifier).
pub fn server_config_presenting(
    issued: &Issued,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> rustls::ServerConfig {
    let chain = vec![CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match clients {
        Some(clients) => builder.with_client_cert_verifier(clients),
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).unwrap()
}

/// The development certificate most people make first, exactly as they make it:
/// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext
/// subjectAltName=DNS:localhost`. It is self-signed and, as openssl marks every such
/// certificate, a CA (basicConstraints CA:TRUE). Written into `dir` as cert.pem and key.pem.
pub fn openssl_self_signed(dir: &Path) -> (Issued, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    #[rustfmt::skip]
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        "-keyout", &key.to_string_lossy(), "-out", &cert.to_string_lossy(),
    ]);
    let constraints = openssl(&[
        "x509",
        "-in",
        &cert.to_string_lossy(),
        "-noout",
        "-ext",
        "basicConstraints",
    ]);
    assert!(
        constraints.contains("CA:TRUE"),
        "not the shape tested: {constraints}"
    );
    let issued = Issued {
        certificate_pem: std::fs::read_to_string(&cert).unwrap(),
        key_pem: std::fs::read_to_string(&key).unwrap(),
    };
    (issued, cert)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a request's handler learns of the connection the request came on.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    /// The client presented a certificate, which the server's configuration accepted.
    pub client_certificate: bool,
}

/// An HTTP/1.1 server on 127.0.0.1 (any port), on a runtime of its own; stops when dropped.
pub struct Serving {
    address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Serving {
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// Serves HTTP/1.1 on 127.0.0.1, over TLS when given a configuration (HTTPS), answering
/// every request with `answer`.
pub fn serve<A, B>(tls: Option<rustls::ServerConfig>, answer: A) -> Serving
where
    A: Fn(Request<Incoming>, Connection) -> Response<B> + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    let answer = Arc::new(answer);
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let client_certificate = stream.get_ref().1.peer_certificates().is_some();
                        serve_connection(stream, Connection { client_certificate }, answer).await;
                    }
                    None => {
                        let plain = Connection {
                            client_certificate: false,
                        };
                        serve_connection(stream, plain, answer).await;
                    }
                }
            });
        }
    });
    Serving {
        address,
        _runtime: runtime,
    }
}

/// The same as [`serve`] over TLS, for handlers that read what a request carries: each
/// request's body is read whole before `answer` sees it.
pub fn serve_reading_bodies<A, B>(tls: rustls::ServerConfig, answer: A) -> Serving
where
    A: Fn(Request<Bytes>, Connection) -> Response<B> + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let answer = Arc::new(answer);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let connection = Connection {
                    client_certificate: stream.get_ref().1.peer_certificates().is_some(),
                };
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|collected| collected.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(answer(Request::from_parts(parts, bytes), connection))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Serving {
        address,
        _runtime: runtime,
    }
}

/// Serves HTTP/1.1 on a Unix socket made at `path` (as a Docker engine or php-fpm does),
/// answering every request with `answer`; stops when the runtime returned is dropped.
pub fn serve_unix<A, B>(path: &Path, answer: A) -> tokio::runtime::Runtime
where
    A: Fn(Request<Incoming>, Connection) -> Response<B> + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(async { tokio::net::UnixListener::bind(path) })
        .unwrap();
    let answer = Arc::new(answer);
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let plain = Connection {
                client_certificate: false,
            };
            tokio::spawn(serve_connection(stream, plain, answer.clone()));
        }
    });
    runtime
}

async fn serve_connection<S, A, B>(stream: S, connection: Connection, answer: Arc<A>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn(Request<Incoming>, Connection) -> Response<B> + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |request| {
        let response = answer(request, connection);
        async move { Ok::<_, Infallible>(response) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
