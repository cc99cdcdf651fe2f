//! `http://…` and `https://…`: ready when a GET answers with an accepted status (200–399 by
//! default, as a Kubernetes httpGet probe) and, if asked, a body containing some text.
//!
//! Redirects are not followed: a 3xx is judged by the status set like any other status.
//! The URL's query string is sent as given; holdup's options live in the fragment.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use url::Url;

use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::http_client::{self, StageTracker, StatusSet, describe, read_capped, status_words};
use crate::net::Net;
use crate::redact;
use crate::tls::{self, Roots, Verify};

/// How much of a body is searched for the expected text; health endpoints are small.
const BODY_LIMIT: usize = 1 << 20;

pub struct Http {
    url: Url,
    method: Method,
    headers: HeaderMap,
    statuses: StatusSet,
    body: Option<String>,
    tls: rustls::ClientConfig,
    /// https: the roots trusted and what is checked, for the plan.
    trust: Option<(Roots, Verify)>,
    /// `host:port` for messages.
    authority: String,
    /// The URL as it may be shown.
    shown: String,
    /// Built on the first attempt, when the resolver exists.
    client: OnceLock<Result<Client, String>>,
    /// Tells the attempt in progress when its connection is up.
    stage_tracker: StageTracker,
}

impl Http {
    pub fn parse(text: &str) -> Result<Http> {
        let (url, mut options) = target_url::parse(text)?;
        let statuses = options
            .take_parsed("status", StatusSet::parse)?
            .unwrap_or_default();
        let body = options.take("body")?;
        let method = options
            .take_parsed("method", |text| {
                Method::from_bytes(text.to_ascii_uppercase().as_bytes())
                    .map_err(|_| anyhow!("not an HTTP method"))
            })?
            .unwrap_or(Method::GET);
        let mut headers = HeaderMap::new();
        for header in options.take_all("header") {
            let (name, value) = parse_header(&header)
                .with_context(|| "invalid option 'header' (expected header=Name:value)")?;
            headers.append(name, value);
        }
        let ca = options.take("ca")?.map(PathBuf::from);
        let insecure = options.take_switch("insecure")?;
        options.finish(
            url.scheme(),
            &["status", "body", "method", "header", "ca", "insecure"],
        )?;

        if url.host_str().is_none_or(str::is_empty) {
            bail!(
                "missing host (expected {}://host[:port]/path)",
                url.scheme()
            );
        }
        let (tls, trust) = match url.scheme() {
            "https" => {
                let roots = ca.map_or(Roots::BuiltIn, Roots::File);
                let verify = if insecure {
                    Verify::Nothing
                } else {
                    Verify::Full
                };
                let tls = tls::client_config(&roots, verify, "#ca=FILE")?;
                (tls, Some((roots, verify)))
            }
            _ if ca.is_some() || insecure => {
                bail!("options 'ca' and 'insecure' are for https targets")
            }
            _ => (tls::trusting_nothing()?, None),
        };
        let shown = redact::url(&url);
        let mut url = url;
        url.set_fragment(None);
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        Ok(Http {
            url,
            method,
            headers,
            statuses,
            body,
            tls,
            trust,
            authority,
            shown,
            client: OnceLock::new(),
            stage_tracker: StageTracker::default(),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let client = self.client(net)?;
        self.stage_tracker.follow(stage);
        stage.set(format!("connecting to {}", self.authority));
        let response = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|error| anyhow!(describe(&error, &self.authority)))?;
        let status = response.status();
        stage.answered(format!("HTTP {}", status_words(status)));
        if !self.statuses.contains(status) {
            return Err(
                anyhow!("HTTP {} (expected {})", status_words(status), self.statuses).into(),
            );
        }
        if let Some(expected) = &self.body {
            stage.set(format!("reading the body from {}", self.authority));
            let body = read_capped(response, BODY_LIMIT)
                .await
                .map_err(|error| anyhow!(describe(&error, &self.authority)))?;
            if !contains(&body, expected.as_bytes()) {
                return Err(anyhow!(
                    "HTTP {} but the body does not contain {expected:?} (it starts {:?})",
                    status_words(status),
                    snippet(&body)
                )
                .into());
            }
        }
        Ok(())
    }

    pub fn plan(&self) -> Plan {
        // Header values may carry credentials: names only.
        let headers: Vec<&str> = self.headers.keys().map(|name| name.as_str()).collect();
        let mut plan = vec![
            ("address", self.authority.clone()),
            ("method", self.method.to_string()),
            ("status", self.statuses.to_string()),
            (
                "body",
                self.body
                    .as_ref()
                    .map_or("any".to_string(), |text| format!("contains {text:?}")),
            ),
            (
                "headers",
                if headers.is_empty() {
                    "none".to_string()
                } else {
                    format!("{} (values not shown)", headers.join(", "))
                },
            ),
            ("redirects", "not followed".to_string()),
        ];
        if let Some((roots, verify)) = &self.trust {
            plan.push(("ca", roots.to_string()));
            plan.push(("certificate checked", verify.to_string()));
        }
        plan
    }

    fn client(&self, net: &Net) -> Result<&Client> {
        let built = self.client.get_or_init(|| {
            let builder = http_client::builder(self.tls.clone(), net)
                .connector_layer(self.stage_tracker.layer(&self.authority))
                // A fresh connection each time, so that a restarted server is seen.
                .pool_max_idle_per_host(0);
            http_client::build(builder).map_err(|error| format!("{error:#}"))
        });
        built.as_ref().map_err(|message| anyhow!(message.clone()))
    }
}

impl fmt::Display for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("url", &self.shown)
            .field("statuses", &self.statuses)
            .finish_non_exhaustive()
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue)> {
    let (name, value) = text
        .split_once(':')
        .context("no ':' between name and value")?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).context("not a header name")?;
    let value = HeaderValue::from_str(value.trim()).context("not a header value")?;
    Ok((name, value))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
    if body.len() > 60 {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let parse = Http::parse;
        assert!(
            parse("http://h/#method=head&header=Host:%20example.org&body=ok&status=204").is_ok()
        );
        for (input, expected) in [
            ("http://h/#ca=/x.pem", "for https targets"),
            ("http://h/#header=nocolon", "header=Name:value"),
            (
                "https://h/#ca=/does/not/exist.pem",
                "cannot read CA file /does/not/exist.pem",
            ),
            ("http://h/#method=GE%20T", "not an HTTP method"),
        ] {
            let message = format!("{:#}", parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
    }

    #[test]
    fn body_search() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: starting", b"ok"));
        assert!(contains(b"", b""));
        assert_eq!(snippet(&[b'a'; 70]), format!("{}…", "a".repeat(60)));
    }
}
