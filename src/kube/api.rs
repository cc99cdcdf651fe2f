//! The Kubernetes API calls holdup makes (list and watch, a get of one object, discovery
//! documents), over reqwest: credentials on every request, and the API server's refusals
//! turned into words a person can act on.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use reqwest::{Client, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::config::{Connection, Credentials};
use super::plugin::{Credential, Plugin};
use super::pod::Pod;
use super::resource::{List, POD_STATUS, Query, Status, forbidden_words};
use super::watch::{EVENT_LIMIT, Watch};
use crate::attempt::Stage;
use crate::http_client::{self, describe, read_capped, status_words};
use crate::net::Net;
use crate::redact::Secret;
use crate::tls::{self, Identity, Roots, Verify};
use crate::words::io_error_words;

/// Longest error body we read.
const STATUS_LIMIT: usize = 64 << 10;

/// The patch type whose lists merge by key (Kubernetes' own, for its built-in objects).
const STRATEGIC_MERGE: &str = "application/strategic-merge-patch+json";

/// How a CA for the API server is given, for the hint when its certificate is refused.
const GIVE_CA: &str = "certificate-authority: FILE in the kubeconfig";

/// What a request carries.
enum Body {
    None,
    Json(String),
    MergePatch(String),
    /// A strategic merge patch: lists merge by their key (a condition's `type`).
    StrategicMerge(String),
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
    /// The credentials cannot be had (an exec plugin that is missing or fails): waiting
    /// will not mend it.
    Credentials(anyhow::Error),
    /// Anything else, in words.
    Other(anyhow::Error),
}

impl From<ApiError> for anyhow::Error {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Forbidden(words) => anyhow!(words),
            ApiError::Gone => anyhow!("the watch history has expired (410 Gone)"),
            ApiError::Missing => anyhow!("it does not exist (404 Not Found)"),
            ApiError::Credentials(error) | ApiError::Other(error) => error,
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
    /// What a client for an exec plugin's certificate is built from, and the last one built
    /// (with the plugin run it is for).
    roots: Roots,
    verify: Verify,
    net: Net,
    certificate_client: Mutex<Option<(u64, Client)>>,
}

impl Api {
    pub fn new(connection: Connection, net: &Net) -> Result<Api> {
        let client = client(
            &connection.roots,
            connection.verify,
            connection.identity,
            net,
            &connection.server,
        )?;
        let authority = format!(
            "{}:{}",
            connection.server.host_str().unwrap_or_default(),
            connection.server.port_or_known_default().unwrap_or(443)
        );
        Ok(Api {
            client,
            server: connection.server,
            authority,
            credentials: connection.credentials,
            who: connection.who,
            roots: connection.roots,
            verify: connection.verify,
            net: net.clone(),
            certificate_client: Mutex::new(None),
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Lists the objects of `query` now.
    pub async fn list(&self, query: &Query, stage: &Stage) -> Result<List, ApiError> {
        let url = self.url(query, None);
        stage.set(format!(
            "listing {}{} from {}",
            query.resource,
            query.in_namespace(),
            self.authority
        ));
        let response = self.send(url, "list", query, stage).await?;
        stage.set(format!(
            "reading the list of {} from {}",
            query.resource, self.authority
        ));
        self.read_json(response, &format!("{} list", query.resource))
            .await
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
            "starting a watch on {}{} at {}",
            query.resource,
            query.in_namespace(),
            self.authority
        ));
        let response = self.send(url, "watch", query, stage).await?;
        Ok(Watch::new(response, &self.authority))
    }

    /// The object `name` of `query`, or None when it does not exist.
    pub async fn get(
        &self,
        query: &Query,
        name: &str,
        stage: &Stage,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let mut url = self.url(query, None);
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| {
                ApiError::Other(anyhow!("the API server URL {} has no path", self.server))
            })?
            .push(name);
        let response = match self.send(url, "get", query, stage).await {
            Ok(response) => response,
            Err(ApiError::Missing) => return Ok(None),
            Err(other) => return Err(other),
        };
        self.read_json(response, &format!("{} object", query.resource))
            .await
            .map(Some)
    }

    /// Patches the status of pod `pod` with `patch`, a strategic merge patch: lists such as
    /// `status.conditions` merge by their key (a condition's `type`), so the conditions of
    /// the kubelet and of other controllers stay as they are.
    pub async fn patch_pod_status(
        &self,
        pod: &Pod,
        patch: &serde_json::Value,
        stage: &Stage,
    ) -> Result<(), ApiError> {
        let query = Query::new(POD_STATUS, &pod.namespace);
        let mut url = self.server.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!(
            "{prefix}/api/v1/namespaces/{}/pods/{}/status",
            pod.namespace, pod.name
        ));
        stage.set(format!(
            "patching the status of pod {}/{} on {}",
            pod.namespace, pod.name, self.authority
        ));
        let body = Body::StrategicMerge(patch.to_string());
        let response = self
            .authorized_with(Method::PATCH, url, body, stage)
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let said = read_status(response).await;
        Err(match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(),
            StatusCode::FORBIDDEN => ApiError::Forbidden(forbidden_words(&said, "patch", &query)),
            StatusCode::NOT_FOUND => ApiError::Other(anyhow!(
                "pod {}/{} does not exist (404 Not Found): it was named by {}; set POD_NAME \
                 and POD_NAMESPACE from the downward API (fieldRef metadata.name and \
                 metadata.namespace)",
                pod.namespace,
                pod.name,
                pod.from
            )),
            other => ApiError::Other(anyhow!(
                "the API server at {} answered {} to a patch of the status of pod {}/{}{}",
                self.authority,
                status_words(other),
                pod.namespace,
                pod.name,
                said.as_ref()
                    .filter(|status| !status.message.is_empty())
                    .map(|status| format!(": {}", status.message))
                    .unwrap_or_default()
            )),
        })
    }

    /// Creates an object of `query`'s resource in its namespace; returns the object as
    /// stored.
    pub async fn create(
        &self,
        query: &Query,
        object: &serde_json::Value,
        stage: &Stage,
    ) -> Result<serde_json::Value, ApiError> {
        let mut url = self.url(query, None);
        url.set_query(None);
        stage.set(format!(
            "creating a {}{} at {}",
            query.resource.kind,
            query.in_namespace(),
            self.authority
        ));
        let body = Body::Json(object.to_string());
        let response = self
            .send_with(Method::POST, url, body, "create", query, stage)
            .await?;
        self.read_json(response, &format!("{} object", query.resource))
            .await
    }

    /// Changes the object `name` of `query` with a JSON merge patch (RFC 7386): the
    /// fields given replace those stored, the others stay.
    pub async fn merge_patch(
        &self,
        query: &Query,
        name: &str,
        patch: &serde_json::Value,
        stage: &Stage,
    ) -> Result<serde_json::Value, ApiError> {
        let mut url = self.url(query, None);
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| {
                ApiError::Other(anyhow!("the API server URL {} has no path", self.server))
            })?
            .push(name);
        stage.set(format!(
            "patching {} {} at {}",
            query.resource.kind,
            query.object(name),
            self.authority
        ));
        let body = Body::MergePatch(patch.to_string());
        let response = self
            .send_with(Method::PATCH, url, body, "patch", query, stage)
            .await?;
        self.read_json(response, &format!("{} object", query.resource))
            .await
    }

    /// A discovery document (`/api`, `/apis`, `/apis/GROUP/VERSION`), or None when the
    /// server does not serve that path (a group or version it does not have).
    pub async fn discover<T: DeserializeOwned>(
        &self,
        path: &str,
        stage: &Stage,
    ) -> Result<Option<T>, ApiError> {
        let mut url = self.server.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        stage.set(format!("reading {path} from {}", self.authority));
        let response = self.authorized(url, stage).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let said = read_status(response).await;
            return Err(match status {
                StatusCode::UNAUTHORIZED => self.unauthorized(),
                StatusCode::FORBIDDEN => ApiError::Forbidden(format!(
                    "forbidden (403): {}; reading what the API server serves ({path}) is allowed to every signed-in user by the ClusterRole system:discovery, unless the cluster removed that binding",
                    said.map(|status| status.message)
                        .filter(|message| !message.is_empty())
                        .unwrap_or_else(|| format!("may not read {path}"))
                )),
                other => ApiError::Other(anyhow!(
                    "the API server at {} answered {} to a read of {path}",
                    self.authority,
                    status_words(other)
                )),
            });
        }
        self.read_json(response, path).await.map(Some)
    }

    fn url(&self, query: &Query, watch_from: Option<&str>) -> Url {
        let mut url = self.server.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        let namespace = query
            .namespace
            .as_ref()
            .map(|namespace| format!("/namespaces/{namespace}"))
            .unwrap_or_default();
        url.set_path(&format!(
            "{prefix}{}{namespace}/{}",
            query.resource.api(),
            query.resource.plural
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
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    async fn read_json<T: DeserializeOwned>(
        &self,
        response: Response,
        what: &str,
    ) -> Result<T, ApiError> {
        let body = read_capped(response, EVENT_LIMIT)
            .await
            .map_err(|error| ApiError::Other(anyhow!(describe(&error, &self.authority))))?;
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::Other(anyhow!(
                "the API server at {} sent a {what} that is not one: {error}",
                self.authority
            ))
        })
    }

    /// Sends a GET with holdup's credentials; any status comes back.
    async fn authorized(&self, url: Url, stage: &Stage) -> Result<Response, ApiError> {
        self.authorized_with(Method::GET, url, Body::None, stage)
            .await
    }

    /// Sends a request with holdup's credentials; any status comes back.
    async fn authorized_with(
        &self,
        method: Method,
        url: Url,
        body: Body,
        stage: &Stage,
    ) -> Result<Response, ApiError> {
        let (client, token) = match &self.credentials {
            Credentials::Anonymous => (self.client.clone(), None),
            Credentials::Token(token) => (self.client.clone(), Some(token.clone())),
            Credentials::TokenFile(path) => {
                let token = read_token(path).map_err(ApiError::Other)?;
                (self.client.clone(), Some(token))
            }
            Credentials::Plugin(plugin) => self.plugin_credential(plugin, stage).await?,
        };
        let mut request = client.request(method, url);
        request = match body {
            Body::None => request,
            Body::Json(text) => request
                .header("content-type", "application/json")
                .body(text),
            Body::MergePatch(text) => request
                .header("content-type", "application/merge-patch+json")
                .body(text),
            Body::StrategicMerge(text) => {
                request.header("content-type", STRATEGIC_MERGE).body(text)
            }
        };
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| ApiError::Other(anyhow!(describe(&error, &self.authority))))?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Credentials::Plugin(plugin) = &self.credentials
        {
            plugin.forget();
        }
        Ok(response)
    }

    /// The client and token for a plugin's credential: its token on the usual client, or a
    /// client presenting its certificate (built once per run of the plugin).
    async fn plugin_credential(
        &self,
        plugin: &Plugin,
        stage: &Stage,
    ) -> Result<(Client, Option<Secret>), ApiError> {
        let issued = plugin
            .credential(stage)
            .await
            .map_err(ApiError::Credentials)?;
        let (chain, key) = match &issued.credential {
            Credential::Token(token) => return Ok((self.client.clone(), Some(token.clone()))),
            Credential::Certificate { chain, key } => (chain, key),
        };
        if let Ok(built) = self.certificate_client.lock()
            && let Some((run, client)) = built.as_ref()
            && *run == issued.run
        {
            return Ok((client.clone(), None));
        }
        let identity = Identity {
            chain: tls::parse_certificates(chain, "the client certificate of the plugin")
                .map_err(ApiError::Credentials)?,
            key: tls::parse_private_key(key.expose().as_bytes(), "the client key of the plugin")
                .map_err(ApiError::Credentials)?,
        };
        let client = client(
            &self.roots,
            self.verify,
            Some(identity),
            &self.net,
            &self.server,
        )
        .map_err(ApiError::Credentials)?;
        if let Ok(mut built) = self.certificate_client.lock() {
            *built = Some((issued.run, client.clone()));
        }
        Ok((client, None))
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::Other(anyhow!(
            "the API server at {} does not accept {} (401 Unauthorized): it is missing, \
             expired or not valid for this cluster",
            self.authority,
            self.who
        ))
    }

    async fn send(
        &self,
        url: Url,
        verb: &str,
        query: &Query,
        stage: &Stage,
    ) -> Result<Response, ApiError> {
        self.send_with(Method::GET, url, Body::None, verb, query, stage)
            .await
    }

    async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Body,
        verb: &str,
        query: &Query,
        stage: &Stage,
    ) -> Result<Response, ApiError> {
        let response = self.authorized_with(method, url, body, stage).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let said = read_status(response).await;
        Err(match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(),
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
                query.resource.api(),
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

fn client(
    roots: &Roots,
    verify: Verify,
    identity: Option<Identity>,
    net: &Net,
    server: &Url,
) -> Result<Client> {
    let tls = tls::client_config_with_identity(roots, verify, identity, GIVE_CA)
        .with_context(|| format!("cannot set up TLS for the API server {server}"))?;
    let builder = http_client::builder(tls, net)
        // A watch can be silent for minutes; keepalives find a dead peer.
        .tcp_keepalive(Duration::from_secs(15))
        .tcp_keepalive_interval(Duration::from_secs(5))
        .tcp_keepalive_retries(3);
    http_client::build(builder)
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

/// The `Status` object the API server sends with a refusal, if the body is one.
async fn read_status(response: Response) -> Option<Status> {
    let body = read_capped(response, STATUS_LIMIT).await.ok()?;
    serde_json::from_slice::<Status>(&body).ok()
}
