//! The Kubernetes API calls holdup makes (list and watch, and a get of one object), over
//! reqwest: credentials on every request, and the API server's refusals turned into words
//! a person can act on.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::config::{Connection, Credentials};
use crate::attempt::Stage;
use crate::http_client::{self, describe, read_capped, status_words};
use crate::net::Net;
use crate::redact::Secret;
use crate::tls;
use crate::words::io_error_words;

/// Longest line of a watch stream (one event) and longest error body we read.
const EVENT_LIMIT: usize = 16 << 20;
const STATUS_LIMIT: usize = 64 << 10;

/// A kind of object holdup reads: where its API lives and what RBAC calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The API group, `""` for the core group.
    pub group: &'static str,
    /// The path of the group's version: `/api/v1`, `/apis/batch/v1`.
    pub api: &'static str,
    /// The plural name used in URLs and Role rules.
    pub plural: &'static str,
    /// The verbs holdup uses on it, as a Role rule names them.
    pub verbs: &'static [&'static str],
}

const LIST_WATCH: &[&str] = &["list", "watch"];

pub const ENDPOINT_SLICES: Resource = Resource {
    group: "discovery.k8s.io",
    api: "/apis/discovery.k8s.io/v1",
    plural: "endpointslices",
    verbs: LIST_WATCH,
};
pub const JOBS: Resource = Resource {
    group: "batch",
    api: "/apis/batch/v1",
    plural: "jobs",
    verbs: LIST_WATCH,
};
pub const PODS: Resource = Resource {
    group: "",
    api: "/api/v1",
    plural: "pods",
    verbs: LIST_WATCH,
};
/// Read by Service targets for the words of their reason only: may be refused.
pub const SERVICES: Resource = Resource {
    group: "",
    api: "/api/v1",
    plural: "services",
    verbs: &["get"],
};

impl Resource {
    /// The Role rule holdup needs for this resource, as one line of YAML that can be
    /// pasted under a Role's `rules:`.
    pub fn rule(&self) -> String {
        let verbs: Vec<String> = self
            .verbs
            .iter()
            .map(|verb| format!("\"{verb}\""))
            .collect();
        format!(
            "- {{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [{}]}}",
            self.group,
            self.plural,
            verbs.join(", ")
        )
    }
}

impl fmt::Display for Resource {
    /// As kubectl names it: `endpointslices.discovery.k8s.io`, `pods`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// The objects of one resource in one namespace that a target looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub resource: Resource,
    pub namespace: String,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// Why a request did not give what was asked.
#[derive(Debug)]
pub enum ApiError {
    /// 403: the words say which Role rule is missing.
    Forbidden(String),
    /// 410 Gone: the resourceVersion is older than the server's history; list again.
    Gone,
    /// 404 for an object asked for by name: it does not exist.
    Missing,
    /// Anything else, in words.
    Other(anyhow::Error),
}

impl From<ApiError> for anyhow::Error {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Forbidden(words) => anyhow!(words),
            ApiError::Gone => anyhow!("the watch history has expired (410 Gone)"),
            ApiError::Missing => anyhow!("it does not exist (404 Not Found)"),
            ApiError::Other(error) => error,
        }
    }
}

/// A connection to one API server, with who holdup is there.
pub struct Api {
    client: Client,
    server: Url,
    /// `host:port` of the server, for messages.
    authority: String,
    credentials: Credentials,
    /// Whose credentials these are, for a 401 message: "the service-account token
    /// /var/run/…/token", "user \"ci\" of kubeconfig /root/.kube/config".
    who: String,
}

impl Api {
    pub fn new(connection: Connection, net: &Net) -> Result<Api> {
        let tls = tls::client_config_with_identity(
            &connection.roots,
            connection.verify,
            connection.identity,
            "certificate-authority: FILE in the kubeconfig",
        )
        .with_context(|| format!("cannot set up TLS for the API server {}", connection.server))?;
        let authority = format!(
            "{}:{}",
            connection.server.host_str().unwrap_or_default(),
            connection.server.port_or_known_default().unwrap_or(443)
        );
        let builder = http_client::builder(tls, net)
            // A watch can be silent for minutes; keepalives find a dead peer.
            .tcp_keepalive(Duration::from_secs(15))
            .tcp_keepalive_interval(Duration::from_secs(5))
            .tcp_keepalive_retries(3);
        let client = http_client::build(builder)?;
        Ok(Api {
            client,
            server: connection.server,
            authority,
            credentials: connection.credentials,
            who: connection.who,
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Lists the objects of `query` now.
    pub async fn list(&self, query: &Query, stage: &Stage) -> Result<List, ApiError> {
        let url = self.url(query, None);
        stage.set(format!(
            "listing {} in {} from {}",
            query.resource, query.namespace, self.authority
        ));
        let response = self.send(url, "list", query).await?;
        stage.set(format!(
            "reading the list of {} from {}",
            query.resource, self.authority
        ));
        let body = read_capped(response, EVENT_LIMIT)
            .await
            .map_err(|error| ApiError::Other(anyhow!(describe(&error, &self.authority))))?;
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::Other(anyhow!(
                "the API server at {} sent a list that is not a {} list: {error}",
                self.authority,
                query.resource
            ))
        })
    }

    /// Starts watching `query` from `resource_version` (that of a list, or of the last
    /// event seen).
    pub async fn watch(
        &self,
        query: &Query,
        resource_version: &str,
        stage: &Stage,
    ) -> Result<Watch, ApiError> {
        let url = self.url(query, Some(resource_version));
        stage.set(format!(
            "starting a watch on {} in {} at {}",
            query.resource, query.namespace, self.authority
        ));
        let response = self.send(url, "watch", query).await?;
        Ok(Watch {
            response,
            buffer: Vec::new(),
            authority: self.authority.clone(),
        })
    }

    /// The object `name` of `query.resource` in `query.namespace`, or None when it does not
    /// exist.
    pub async fn get(&self, query: &Query, name: &str) -> Result<Option<Value>, ApiError> {
        let mut url = self.url(query, None);
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| {
                ApiError::Other(anyhow!("the API server URL {} has no path", self.server))
            })?
            .push(name);
        let response = match self.send(url, "get", query).await {
            Ok(response) => response,
            Err(ApiError::Missing) => return Ok(None),
            Err(other) => return Err(other),
        };
        let body = read_capped(response, EVENT_LIMIT)
            .await
            .map_err(|error| ApiError::Other(anyhow!(describe(&error, &self.authority))))?;
        serde_json::from_slice(&body).map(Some).map_err(|error| {
            ApiError::Other(anyhow!(
                "the API server at {} sent a {} that is not JSON: {error}",
                self.authority,
                query.resource
            ))
        })
    }

    fn url(&self, query: &Query, watch_from: Option<&str>) -> Url {
        let mut url = self.server.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!(
            "{prefix}{}/namespaces/{}/{}",
            query.resource.api, query.namespace, query.resource.plural
        ));
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(selector) = &query.label_selector {
                pairs.append_pair("labelSelector", selector);
            }
            if let Some(selector) = &query.field_selector {
                pairs.append_pair("fieldSelector", selector);
            }
            if let Some(resource_version) = watch_from {
                pairs
                    .append_pair("watch", "1")
                    .append_pair("resourceVersion", resource_version)
                    .append_pair("allowWatchBookmarks", "true");
            }
        }
        url
    }

    async fn send(&self, url: Url, verb: &str, query: &Query) -> Result<Response, ApiError> {
        let mut request = self.client.get(url);
        match &self.credentials {
            Credentials::Anonymous => {}
            Credentials::Token(token) => request = request.bearer_auth(token.expose()),
            Credentials::TokenFile(path) => {
                let token = read_token(path).map_err(ApiError::Other)?;
                request = request.bearer_auth(token.expose());
            }
        }
        let response = request
            .send()
            .await
            .map_err(|error| ApiError::Other(anyhow!(describe(&error, &self.authority))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let said = read_status(response).await;
        Err(match status {
            StatusCode::UNAUTHORIZED => ApiError::Other(anyhow!(
                "the API server at {} does not accept {} (401 Unauthorized): it is missing, \
                 expired or not valid for this cluster",
                self.authority,
                self.who
            )),
            StatusCode::FORBIDDEN => ApiError::Forbidden(forbidden_words(&said, verb, query)),
            StatusCode::GONE => ApiError::Gone,
            // A named object that does not exist; a resource the server does not serve has
            // no name in the details.
            StatusCode::NOT_FOUND
                if said
                    .as_ref()
                    .is_some_and(|status| !status.details.name.is_empty()) =>
            {
                ApiError::Missing
            }
            StatusCode::NOT_FOUND => ApiError::Other(anyhow!(
                "the API server at {} does not serve {} (404 Not Found){}",
                self.authority,
                query.resource.api,
                said.as_ref()
                    .map(|status| format!(": {}", status.message))
                    .unwrap_or_default()
            )),
            other => ApiError::Other(anyhow!(
                "the API server at {} answered {} to a {verb} of {}{}",
                self.authority,
                status_words(other),
                query.resource,
                said.as_ref()
                    .filter(|status| !status.message.is_empty())
                    .map(|status| format!(": {}", status.message))
                    .unwrap_or_default()
            )),
        })
    }
}

fn read_token(path: &std::path::Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        anyhow!(
            "cannot read the token file {}: {}",
            path.display(),
            io_error_words(&error)
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(anyhow!("the token file {} is empty", path.display()));
    }
    Ok(Secret::new(token))
}

/// A 403 in words, with the rule to paste into the Role: what the API server said
/// (`User "system:serviceaccount:app:web" cannot list resource "pods" …`), then the rule.
fn forbidden_words(said: &Option<Status>, verb: &str, query: &Query) -> String {
    let reason = said
        .as_ref()
        .map(|status| status.message.as_str())
        .filter(|message| !message.is_empty())
        .map(|message| {
            message
                .split_once(" is forbidden: ")
                .map_or(message, |(_, why)| why)
                .to_string()
        })
        .unwrap_or_else(|| {
            format!(
                "not allowed to {verb} {} in namespace {}",
                query.resource, query.namespace
            )
        });
    format!(
        "forbidden (403): {reason}; give it a Role in namespace {} with this rule: {}",
        query.namespace,
        query.resource.rule()
    )
}

/// The `Status` object the API server sends with a refusal, if the body is one.
async fn read_status(response: Response) -> Option<Status> {
    let body = read_capped(response, STATUS_LIMIT).await.ok()?;
    serde_json::from_slice::<Status>(&body).ok()
}

/// A `Status` (kind Status, apiVersion v1): the API server's word on a failure.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    pub message: String,
    pub reason: String,
    pub code: u16,
    pub details: StatusDetails,
}

/// `{"name": "postgres", "kind": "services"}`: the object a Status is about.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusDetails {
    pub name: String,
}

/// A list response: `{"kind":"PodList","metadata":{"resourceVersion":"…"},"items":[…]}`.
#[derive(Debug, Deserialize)]
pub struct List {
    pub metadata: ListMeta,
    #[serde(default, deserialize_with = "super::readiness::null_as_default")]
    pub items: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListMeta {
    pub resource_version: String,
}

/// One change in a watched collection.
#[derive(Debug)]
pub enum Event {
    /// ADDED or MODIFIED: the object as it is now.
    Changed(Value),
    Deleted(Value),
    /// Nothing changed for us up to this resourceVersion.
    Bookmark(String),
    /// The watch failed; a 410 means its resourceVersion has expired.
    Error(Status),
}

/// An open watch: a chunked response with one JSON event per line.
pub struct Watch {
    response: Response,
    /// Bytes received after the last complete line.
    buffer: Vec<u8>,
    authority: String,
}

impl Watch {
    /// The next event, or None once the server has ended the watch. Safe to cancel: a
    /// line received in part is kept for the next call.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(&line).map(Some);
            }
            if self.buffer.len() > EVENT_LIMIT {
                return Err(anyhow!(
                    "the API server at {} sent a watch event over {} MiB",
                    self.authority,
                    EVENT_LIMIT >> 20
                ));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) if self.buffer.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                Ok(None) => {
                    let line = std::mem::take(&mut self.buffer);
                    return self.parse(&line).map(Some);
                }
                Err(error) => {
                    return Err(anyhow!(
                        "the watch broke: {}",
                        describe(&error, &self.authority)
                    ));
                }
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Event> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            object: Value,
        }
        let raw: Raw = serde_json::from_slice(line).map_err(|error| {
            anyhow!(
                "the API server at {} sent a watch event that is not JSON: {error}",
                self.authority
            )
        })?;
        Ok(match raw.kind.as_str() {
            "ADDED" | "MODIFIED" => Event::Changed(raw.object),
            "DELETED" => Event::Deleted(raw.object),
            "BOOKMARK" => Event::Bookmark(
                raw.object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            "ERROR" => Event::Error(Status::deserialize(&raw.object).unwrap_or_default()),
            other => {
                return Err(anyhow!(
                    "the API server at {} sent a watch event of unknown type {other:?}",
                    self.authority
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_paste_ready_yaml() {
        assert_eq!(
            ENDPOINT_SLICES.rule(),
            r#"- {apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"]}"#
        );
        assert_eq!(
            PODS.rule(),
            r#"- {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}"#
        );
        assert_eq!(
            SERVICES.rule(),
            r#"- {apiGroups: [""], resources: ["services"], verbs: ["get"]}"#
        );
        assert_eq!(
            ENDPOINT_SLICES.to_string(),
            "endpointslices.discovery.k8s.io"
        );
        assert_eq!(JOBS.to_string(), "jobs.batch");
        assert_eq!(PODS.to_string(), "pods");
    }

    #[test]
    fn a_403_names_the_missing_rule() {
        let query = Query {
            resource: ENDPOINT_SLICES,
            namespace: "shop".into(),
            label_selector: Some("kubernetes.io/service-name=db".into()),
            field_selector: None,
        };
        let said = Some(Status {
            message: "endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:shop:web\" cannot list resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"shop\"".into(),
            reason: "Forbidden".into(),
            code: 403,
            details: StatusDetails::default(),
        });
        assert_eq!(
            forbidden_words(&said, "list", &query),
            "forbidden (403): User \"system:serviceaccount:shop:web\" cannot list resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"shop\"; give it a Role in namespace shop with this rule: - {apiGroups: [\"discovery.k8s.io\"], resources: [\"endpointslices\"], verbs: [\"list\", \"watch\"]}"
        );
        assert!(forbidden_words(&None, "watch", &query).starts_with(
            "forbidden (403): not allowed to watch endpointslices.discovery.k8s.io in namespace shop;"
        ));
    }
}
