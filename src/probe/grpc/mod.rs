//! `grpc://HOST:PORT` and `grpcs://HOST[:PORT]`: ready when the standard gRPC health service
//! (`grpc.health.v1.Health/Check`) answers SERVING, for the whole server or for
//! `#service=NAME`, as a Kubernetes `grpc` probe asks it; anything else is not ready.
//!
//! The call is made here over HTTP/2 (h2), not through a gRPC framework: the request is one
//! string, the answer one number, the framing five bytes ([`wire`]), and gRPC's status comes
//! in the trailers, which h2 hands over as they are. tonic with tonic-health made the same
//! check 288 KB heavier in the static binary (h2 and tower under it either way), for no
//! check it could make better.

mod wire;

use std::fmt;
use std::pin::pin;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use http::header::{CONTENT_TYPE, HeaderMap, TE, USER_AGENT};
use http::{Method, Request, Uri};
use percent_encoding::percent_decode_str;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::http_client::status_words;
use crate::net::Net;
use crate::redact;
use crate::tls::{self, Roots, Verify};
use crate::words::io_error_words;

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// More than any health answer needs; a server must not make holdup hoard.
const ANSWER_LIMIT: usize = 64 * 1024;

pub struct Grpc {
    /// Where to connect, as the resolver takes it.
    host: String,
    port: u16,
    /// The service asked about; empty for the whole server.
    service: String,
    /// The request's URI: its authority is `HOST:PORT`, or `#authority`.
    uri: Uri,
    tls: Option<Tls>,
    /// `HOST:PORT`, for messages.
    address: String,
    shown: String,
}

struct Tls {
    config: Arc<rustls::ClientConfig>,
    /// The name sent (SNI) and checked against the certificate: HOST, or `#authority`'s.
    name: ServerName<'static>,
    roots: Roots,
    verify: Verify,
}

/// How the call ended.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The health service answered with this `ServingStatus`.
    Health(u64),
    /// The call failed with this gRPC status code and message.
    Status(u32, String),
}

impl Grpc {
    pub fn parse(text: &str) -> Result<Grpc> {
        let (url, mut options) = target_url::parse(text)?;
        let service = options.take("service")?.unwrap_or_default();
        let authority = options.take("authority")?;
        let ca = options.take("ca")?;
        let insecure = options.take_switch("insecure")?;
        options.finish(url.scheme(), &["service", "authority", "ca", "insecure"])?;
        let secure = url.scheme() == "grpcs";
        let form = if secure {
            "grpcs://host[:port]"
        } else {
            "grpc://host:port"
        };
        if !url.username().is_empty() || url.password().is_some() {
            bail!(
                "{} targets take no credentials (expected {form})",
                url.scheme()
            );
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            bail!(
                "{} targets have no path or query; name the service with #service=NAME (expected {form})",
                url.scheme()
            );
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| anyhow!("missing host (expected {form})"))?
            .to_string();
        let port = match (url.port(), secure) {
            (Some(port), _) => port,
            (None, true) => 443,
            (None, false) => bail!("missing port (expected {form})"),
        };
        let address = format!("{host}:{port}");
        let authority = match authority {
            Some(authority) => {
                if authority.contains(['@', '/']) {
                    bail!("invalid option 'authority={authority}': expected NAME or NAME:PORT");
                }
                authority
            }
            None => match url.port() {
                Some(_) => address.clone(),
                None => host.clone(),
            },
        };
        let scheme = if secure { "https" } else { "http" };
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(authority.as_str())
            .path_and_query(CHECK_PATH)
            .build()
            .map_err(|_| {
                anyhow!("invalid option 'authority={authority}': expected NAME or NAME:PORT")
            })?;
        let tls = if secure {
            let roots = ca.map_or(Roots::BuiltIn, |path| Roots::File(path.into()));
            let verify = if insecure {
                Verify::Nothing
            } else {
                Verify::Full
            };
            let mut config = tls::client_config(&roots, verify, "#ca=FILE")?;
            // gRPC speaks HTTP/2 only, and servers insist on agreeing it in the handshake.
            config.alpn_protocols = vec![b"h2".to_vec()];
            let name_host = uri.host().unwrap_or(&host);
            let name =
                tls::server_name(name_host).context("the name to check the certificate against")?;
            Some(Tls {
                config: Arc::new(config),
                name,
                roots,
                verify,
            })
        } else {
            if ca.is_some() || insecure {
                bail!("options 'ca' and 'insecure' are for grpcs targets");
            }
            None
        };
        Ok(Grpc {
            host,
            port,
            service,
            uri,
            tls,
            address,
            shown: redact::url(&url),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let tcp = net.connect(&self.host, self.port, stage).await?;
        let answer = match &self.tls {
            None => self.call(tcp, stage).await,
            Some(tls) => {
                stage.set(format!("TLS handshake with {}", self.address));
                let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(tls.name.clone(), tcp)
                    .await
                    .map_err(|error| {
                        anyhow!(
                            "TLS handshake with {} failed: {}",
                            self.address,
                            tls::handshake_error_words(&error)
                        )
                    })?;
                match stream.get_ref().1.alpn_protocol() {
                    Some(b"h2") | None => self.call(stream, stage).await,
                    Some(other) => Err(format!(
                        "{} agreed on {} in the TLS handshake, not HTTP/2: is it a gRPC port?",
                        self.address,
                        String::from_utf8_lossy(other)
                    )),
                }
            }
        };
        let answer = answer.map_err(|reason| anyhow!(reason))?;
        if answer == Answer::Health(wire::SERVING) {
            stage.answered("the health service answers SERVING");
        }
        self.judge(answer)
    }

    pub fn plan(&self) -> Plan {
        let mut plan = vec![
            ("address", self.address.clone()),
            (
                "service",
                if self.service.is_empty() {
                    "\"\" (the whole server)".to_string()
                } else {
                    format!("{:?}", self.service)
                },
            ),
            (
                "authority",
                self.uri
                    .authority()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            (
                "ready",
                "grpc.health.v1.Health/Check answers SERVING".to_string(),
            ),
        ];
        if let Some(tls) = &self.tls {
            plan.push(("tls name", tls.name.to_str().into_owned()));
            plan.push(("ca", tls.roots.to_string()));
            plan.push(("certificate checked", tls.verify.to_string()));
        }
        plan
    }

    /// The health check over an open connection: HTTP/2, one call.
    async fn call<S>(&self, io: S, stage: &Stage) -> Result<Answer, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        stage.set(format!(
            "waiting for the health service of {}",
            self.address
        ));
        let (client, connection) = h2::client::handshake(io)
            .await
            .map_err(|error| self.h2_words(&error))?;
        // The connection is driven here, beside the call, rather than in a task of its own:
        // an attempt that is cut off then leaves nothing running.
        let exchange = pin!(self.exchange(client));
        let connection = pin!(connection);
        match select(exchange, connection).await {
            Either::Left((answer, _)) => answer,
            // The connection ended: the call has its answer already, or fails with the
            // connection's error.
            Either::Right((_, exchange)) => exchange.await,
        }
    }

    async fn exchange(&self, client: h2::client::SendRequest<Bytes>) -> Result<Answer, String> {
        let words = |error: h2::Error| self.h2_words(&error);
        let mut client = client.ready().await.map_err(words)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/grpc")
            .header(TE, "trailers")
            .header(USER_AGENT, concat!("holdup/", env!("CARGO_PKG_VERSION")))
            .body(())
            .map_err(|error| format!("cannot make the request: {error}"))?;
        let (response, mut send) = client.send_request(request, false).map_err(words)?;
        send.send_data(wire::request(&self.service), true)
            .map_err(words)?;
        let response = response.await.map_err(words)?;
        let (head, mut body) = response.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(format!(
                "{} answered HTTP {}, not gRPC: is it a gRPC port?",
                self.address,
                status_words(head.status)
            ));
        }
        // A call that fails at once ends with its status in the headers ("trailers-only").
        if let Some(status) = grpc_status(&head.headers) {
            return Ok(status);
        }
        let content_type = head
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/grpc") {
            return Err(format!(
                "{} answered with content-type {content_type:?}, not gRPC: is it a gRPC port?",
                self.address
            ));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(words)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            message.extend_from_slice(&chunk);
            if message.len() > ANSWER_LIMIT {
                return Err(format!(
                    "{} sent more than {ANSWER_LIMIT} bytes for a health answer",
                    self.address
                ));
            }
        }
        let trailers = body.trailers().await.map_err(words)?.unwrap_or_default();
        match grpc_status(&trailers) {
            Some(Answer::Status(code, _)) if code == wire::OK => {
                wire::response_status(&message).map(Answer::Health)
            }
            Some(failed) => Ok(failed),
            None => Err(format!(
                "{} ended the call without a gRPC status",
                self.address
            )),
        }
    }

    /// Whether the answer means ready, and if not, why, in words.
    fn judge(&self, answer: Answer) -> Result<(), Failure> {
        let service = if self.service.is_empty() {
            String::new()
        } else {
            format!(" for service {:?}", self.service)
        };
        let reason = match answer {
            Answer::Health(wire::SERVING) => return Ok(()),
            Answer::Health(status) => match wire::serving_status_name(status) {
                Some(name) => format!("the health service answers {name}{service}"),
                None => format!("the health service answers status {status}{service}"),
            },
            Answer::Status(wire::UNIMPLEMENTED, _) => format!(
                "{} has no gRPC health service (grpc.health.v1.Health/Check is UNIMPLEMENTED): \
                 register it in the server, or wait for the port alone with tcp://{}",
                self.address, self.address
            ),
            Answer::Status(wire::NOT_FOUND, _) if self.service.is_empty() => {
                "the health service knows no status for the whole server (NOT_FOUND): \
                 name one of its services with #service=NAME"
                    .to_string()
            }
            Answer::Status(wire::NOT_FOUND, _) => format!(
                "the health service does not know service {:?} (NOT_FOUND): check #service=",
                self.service
            ),
            Answer::Status(code, message) => {
                let name = wire::status_code_name(code)
                    .map_or_else(|| code.to_string(), ToString::to_string);
                if message.is_empty() {
                    format!("the health check failed with gRPC status {name}{service}")
                } else {
                    format!("the health check failed with gRPC status {name}{service}: {message}")
                }
            }
        };
        Err(anyhow!(reason).into())
    }

    /// An HTTP/2 failure in words: what happened to the connection, or that the server does
    /// not speak HTTP/2 here.
    fn h2_words(&self, error: &h2::Error) -> String {
        if let Some(io) = error.get_io() {
            let hint = match (io.kind(), &self.tls) {
                (
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset,
                    None,
                ) => " (is it a gRPC port? for TLS, use grpcs://)",
                _ => "",
            };
            return format!("{}: {}{hint}", self.address, io_error_words(io));
        }
        match error.reason() {
            Some(reason) if error.is_remote() => {
                format!("{} ended the call: {}", self.address, reason.description())
            }
            _ => format!(
                "{} does not answer in HTTP/2 as gRPC servers do: is it a gRPC port?{}",
                self.address,
                if self.tls.is_some() {
                    ""
                } else {
                    " (for TLS, use grpcs://)"
                }
            ),
        }
    }
}

impl fmt::Display for Grpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Grpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grpc")
            .field("address", &self.address)
            .field("service", &self.service)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The gRPC status in `headers` (trailers, or the headers of a trailers-only answer).
fn grpc_status(headers: &HeaderMap) -> Option<Answer> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // grpc-message is percent-encoded on the wire.
    let message = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .map(|value| percent_decode_str(value).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    Some(Answer::Status(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_text(target: &str) -> String {
        Grpc::parse(target)
            .unwrap_or_else(|e| panic!("{target}: {e:#}"))
            .plan()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn accepted_targets_and_what_they_would_do() {
        let cases = [
            (
                "grpc://api:50051",
                "address=api:50051; service=\"\" (the whole server); authority=api:50051; ready=grpc.health.v1.Health/Check answers SERVING",
            ),
            (
                "grpc://api:50051/#service=shop.Cart&authority=cart.internal",
                "address=api:50051; service=\"shop.Cart\"; authority=cart.internal; ready",
            ),
            (
                "grpcs://api.example.com",
                "address=api.example.com:443; service=\"\" (the whole server); authority=api.example.com; ready=grpc.health.v1.Health/Check answers SERVING; tls name=api.example.com; ca=the public roots built into holdup; certificate checked=chain and name",
            ),
            (
                "grpcs://10.0.0.7:8443#authority=cart.shop:443&insecure",
                "authority=cart.shop:443; ready=grpc.health.v1.Health/Check answers SERVING; tls name=cart.shop; ca=the public roots built into holdup; certificate checked=nothing",
            ),
            ("grpc://[::1]:50051", "address=[::1]:50051"),
        ];
        for (target, plan) in cases {
            let shown = plan_text(target);
            assert!(shown.contains(plan), "{target}: {shown}");
        }
        assert_eq!(
            Grpc::parse("grpc://api:50051#service=x")
                .unwrap()
                .to_string(),
            "grpc://api:50051"
        );
    }

    #[test]
    fn refused_targets_say_why() {
        let cases = [
            ("grpc://api", "missing port (expected grpc://host:port)"),
            ("grpc://:50051", "empty host"),
            (
                "grpc://api:50051/shop.Cart",
                "name the service with #service=NAME",
            ),
            ("grpc://api:50051?x=1", "have no path or query"),
            ("grpc://u:secret@api:50051", "take no credentials"),
            ("grpc://api:50051#ca=/x.pem", "for grpcs targets"),
            ("grpc://api:50051#insecure", "for grpcs targets"),
            (
                "grpc://api:50051#authority=a@b",
                "expected NAME or NAME:PORT",
            ),
            (
                "grpc://api:50051#authority=a%20b",
                "expected NAME or NAME:PORT",
            ),
            (
                "grpc://api:50051#svc=x",
                "unknown option 'svc' for grpc targets",
            ),
            ("grpcs://api#ca=/does/not/exist.pem", "cannot read CA file"),
        ];
        for (target, expected) in cases {
            let message = format!("{:#}", Grpc::parse(target).expect_err(target));
            assert!(message.contains(expected), "{target}: {message}");
            assert!(!message.contains("secret"), "{target}: {message}");
        }
    }

    #[test]
    fn answers_in_words() {
        let whole = Grpc::parse("grpc://api:50051").unwrap();
        let cart = Grpc::parse("grpc://api:50051#service=shop.Cart").unwrap();
        let words = |grpc: &Grpc, answer| match grpc.judge(answer) {
            Ok(()) => "ready".to_string(),
            Err(Failure::NotReady(error)) => format!("{error:#}"),
            Err(Failure::Permanent(error)) => format!("permanent: {error:#}"),
        };
        let cases = [
            (&whole, Answer::Health(1), "ready"),
            (
                &whole,
                Answer::Health(2),
                "the health service answers NOT_SERVING",
            ),
            (
                &cart,
                Answer::Health(0),
                "the health service answers UNKNOWN for service \"shop.Cart\"",
            ),
            (
                &cart,
                Answer::Health(3),
                "answers SERVICE_UNKNOWN for service",
            ),
            (
                &whole,
                Answer::Health(9),
                "the health service answers status 9",
            ),
            (
                &whole,
                Answer::Status(12, String::new()),
                "api:50051 has no gRPC health service (grpc.health.v1.Health/Check is UNIMPLEMENTED): register it in the server, or wait for the port alone with tcp://api:50051",
            ),
            (
                &cart,
                Answer::Status(5, "unknown service".into()),
                "the health service does not know service \"shop.Cart\" (NOT_FOUND): check #service=",
            ),
            (
                &whole,
                Answer::Status(5, String::new()),
                "name one of its services with #service=NAME",
            ),
            (
                &cart,
                Answer::Status(14, "shutting down".into()),
                "the health check failed with gRPC status UNAVAILABLE for service \"shop.Cart\": shutting down",
            ),
            (&whole, Answer::Status(99, String::new()), "gRPC status 99"),
        ];
        for (grpc, answer, expected) in cases {
            let said = words(grpc, answer);
            assert!(said.contains(expected), "{said}");
        }
    }

    #[test]
    fn statuses_are_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", "12".parse().unwrap());
        headers.insert("grpc-message", "Method%20not%20found!".parse().unwrap());
        assert_eq!(
            grpc_status(&headers),
            Some(Answer::Status(12, "Method not found!".into()))
        );
    }
}
