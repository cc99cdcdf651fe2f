//! HTTP as every HTTP-speaking probe uses it (http(s) targets, the Kubernetes API): a
//! reqwest client that resolves names through holdup's resolver, speaks holdup's TLS, never
//! goes through a proxy or follows a redirect; bodies read up to a cap; and failures and
//! statuses in words a person can act on, and the sets of statuses a probe accepts.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{Result, anyhow, bail};
use reqwest::{Client, ClientBuilder, Response, StatusCode};

use crate::attempt::Stage;
use crate::net::Net;
use crate::tls;
use crate::words::{chain, io_error_words};

/// A client builder with what every probe wants: names resolved by holdup (not libc), the
/// given TLS settings, no proxy (a readiness check talks to the service itself, as a
/// kubelet-started probe does), no redirects (a 3xx is an answer to judge), and holdup's
/// user agent. Callers add their own settings and call [`build`].
pub fn builder(tls: rustls::ClientConfig, net: &Net) -> ClientBuilder {
    Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Resolver(net.clone()))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("holdup/", env!("CARGO_PKG_VERSION")))
}

/// Builds the client, with a failure in words.
pub fn build(builder: ClientBuilder) -> Result<Client> {
    builder
        .build()
        .map_err(|error| anyhow!("cannot set up the HTTP client: {}", chain(&error)))
}

/// The body of `response`, up to about `limit` bytes (the chunk that crosses it is kept):
/// health endpoints and API errors are small, and a server must not make holdup hoard.
pub async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(body)
}

/// `503 Service Unavailable`, or the bare code when it has no standard reason.
pub fn status_words(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A failed request in plain words: the cause that a person can act on, not reqwest's
/// layers of "error sending request".
pub fn describe(error: &reqwest::Error, authority: &str) -> String {
    let causes = causes(error);
    if let Some(failed) = causes
        .iter()
        .find_map(|cause| cause.downcast_ref::<ResolveFailed>())
    {
        return failed.0.clone();
    }
    if let Some(tls) = causes
        .iter()
        .find_map(|cause| cause.downcast_ref::<rustls::Error>())
    {
        return format!(
            "TLS handshake with {authority} failed: {}",
            tls::error_words(tls)
        );
    }
    if let Some(io) = causes
        .iter()
        .rev()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
    {
        return format!("{authority}: {}", io_error_words(io));
    }
    let deepest = causes
        .last()
        .map_or_else(|| error.to_string(), ToString::to_string);
    format!("{authority}: {deepest}")
}

/// An error and everything underneath it, outermost first. I/O errors are looked into:
/// their `source()` skips the error they wrap (where TLS failures hide).
fn causes<'e>(error: &'e (dyn StdError + 'static)) -> Vec<&'e (dyn StdError + 'static)> {
    let mut causes = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        causes.push(current);
        let wrapped = current
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static));
        next = wrapped.or_else(|| current.source());
    }
    causes
}

/// Accepted statuses: `200-299,304` style lists of codes and ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(Vec<RangeInclusive<u16>>);

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![200..=399])
    }
}

impl StatusSet {
    /// Parses `200-299,304`; the error says what an item should be.
    pub fn parse(text: &str) -> Result<StatusSet> {
        let code = |text: &str| -> Result<u16> {
            match text.trim().parse::<u16>() {
                Ok(code @ 100..=599) => Ok(code),
                _ => bail!("'{text}' is not an HTTP status (100-599)"),
            }
        };
        let mut ranges = Vec::new();
        for item in text.split(',') {
            let range = match item.split_once('-') {
                Some((low, high)) => code(low)?..=code(high)?,
                None => code(item)?..=code(item)?,
            };
            if range.is_empty() {
                bail!("'{item}' is an empty range (expected low-high)");
            }
            ranges.push(range);
        }
        Ok(StatusSet(ranges))
    }

    pub fn contains(&self, status: StatusCode) -> bool {
        self.0.iter().any(|range| range.contains(&status.as_u16()))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|range| {
                if range.start() == range.end() {
                    range.start().to_string()
                } else {
                    format!("{}-{}", range.start(), range.end())
                }
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

/// Host names go through holdup's resolver, not libc.
struct Resolver(Net);

#[derive(Debug)]
struct ResolveFailed(String);

impl fmt::Display for ResolveFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ResolveFailed {}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let net = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port.
            let addresses = net
                .resolve(&host, 0)
                .await
                .map_err(|error| Box::new(ResolveFailed(format!("{error:#}"))))?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Tells the stage of the attempt in progress when the connection (TCP and TLS) is up, so
/// that a timeout can say whether the server was unreachable or reached but silent. One
/// per client: the attempt hands over its stage with [`StageTracker::follow`], and the
/// client's connector (given [`StageTracker::layer`]) updates it.
#[derive(Clone, Default)]
pub struct StageTracker(Arc<Mutex<Stage>>);

impl StageTracker {
    /// From now on, report to `stage`.
    pub fn follow(&self, stage: &Stage) {
        if let Ok(mut current) = self.0.lock() {
            *current = stage.clone();
        }
    }

    /// The connector layer that reports a connection to `authority` as made.
    pub fn layer(&self, authority: &str) -> StageLayer {
        StageLayer {
            current: self.0.clone(),
            authority: authority.into(),
        }
    }
}

#[derive(Clone)]
pub struct StageLayer {
    current: Arc<Mutex<Stage>>,
    authority: Arc<str>,
}

impl<S> tower_layer::Layer<S> for StageLayer {
    type Service = StageService<S>;

    fn layer(&self, inner: S) -> StageService<S> {
        StageService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StageService<S> {
    inner: S,
    layer: StageLayer,
}

impl<S, Request> tower_service::Service<Request> for StageService<S>
where
    S: tower_service::Service<Request>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let connecting = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let connection = connecting.await?;
            if let Ok(stage) = layer.current.lock() {
                stage.set(format!("waiting for a response from {}", layer.authority));
            }
            Ok(connection)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        let cases = [
            ("200", "200"),
            ("200-299,304", "200-299,304"),
            (" 204 , 300-301", "204,300-301"),
        ];
        for (input, shown) in cases {
            assert_eq!(StatusSet::parse(input).unwrap().to_string(), shown);
        }
        for bad in ["", "abc", "99", "600", "300-200", "200-", "-1"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad}");
        }
        let set = StatusSet::parse("200-204,418").unwrap();
        assert!(set.contains(StatusCode::from_u16(418).unwrap()));
        assert!(!set.contains(StatusCode::from_u16(205).unwrap()));
        assert_eq!(StatusSet::default().to_string(), "200-399");
    }

    #[test]
    fn statuses_in_words() {
        assert_eq!(
            status_words(StatusCode::SERVICE_UNAVAILABLE),
            "503 Service Unavailable"
        );
        assert_eq!(status_words(StatusCode::from_u16(599).unwrap()), "599");
    }
}
