//! A stand-in for the Kubernetes API server, enough for holdup's calls: HTTPS with a test
//! CA, bearer tokens and client certificates, RBAC refusals, discovery documents, list and
//! watch of namespaced and cluster-scoped resources (a custom resource among them) and get
//! of one object, in the API reference's JSON shapes (resourceVersion, watch events one per
//! line, BOOKMARK, ERROR with a 410 Status once history is expired, a 404 Status naming the
//! object asked for), and a strategic merge patch of a pod's `status` subresource (its
//! conditions merged by type, as the real server does). Tests change its objects,
//! resources and rules while holdup runs, and look at the requests it got. The objects themselves are built in [`objects`].

mod discovery;
mod events;
mod objects;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::tls::{Connection, Serving, TestCa, serve_reading_bodies};
use super::{Holdup, holdup};

pub use self::discovery::{KINDS, Kind};
pub use self::objects::*;

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `list`, `watch`, `get` (of one object, by name), `patch` (of a pod's status), or
    /// `discover`.
    pub verb: String,
    /// The path asked for.
    pub path: String,
    pub kind: Option<Kind>,
    pub namespace: String,
    /// The query string as sent.
    pub query: String,
    /// The bearer token, if any.
    pub token: Option<String>,
    pub client_certificate: bool,
    /// The HTTP status answered.
    pub status: u16,
    /// The JSON a create or patch carried, and its content type.
    pub body: Option<Value>,
    pub content_type: String,
}

impl Seen {
    /// A request about an Event (holdup's own Events on its pod), not about a target.
    fn is_event(&self) -> bool {
        matches!(self.kind, Some(Kind::Event | Kind::CoreEvent))
    }

    /// The value of a query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

struct Watcher {
    kind: Kind,
    namespace: String,
    labels: Option<String>,
    fields: Option<String>,
    bookmarks: bool,
    events: UnboundedSender<Bytes>,
}

struct Cluster {
    /// The resources discovery lists and the server serves.
    served: BTreeSet<Kind>,
    revision: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    /// Every change: (resourceVersion, kind, namespace, event type, object).
    history: Vec<(u64, Kind, String, &'static str, Value)>,
    /// Watches from a resourceVersion below this are answered 410 Gone.
    oldest_kept: u64,
    /// Accepted bearer tokens and the user each one is.
    tokens: BTreeMap<String, String>,
    /// (resource, verb) pairs RBAC refuses.
    forbidden: Vec<(Kind, String)>,
    watchers: Vec<Watcher>,
    requests: Vec<Seen>,
    /// Creates of Events are answered with headers and a body that never ends: an API
    /// server that hangs. The senders keep those bodies open.
    stall_events: Option<Vec<UnboundedSender<Bytes>>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            served: KINDS.iter().copied().collect(),
            revision: 0,
            objects: BTreeMap::new(),
            history: Vec::new(),
            oldest_kept: 0,
            tokens: BTreeMap::new(),
            forbidden: Vec::new(),
            watchers: Vec::new(),
            requests: Vec::new(),
            stall_events: None,
        }
    }
}

impl Cluster {
    fn put(&mut self, kind: Kind, namespace: &str, mut object: Value) {
        self.revision += 1;
        object["kind"] = json!(kind.name());
        object["apiVersion"] = json!(kind.api_version());
        if kind.namespaced() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let key = (kind, namespace.to_string(), name);
        let event = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key, object.clone());
        self.record(kind, namespace, event, object);
    }

    fn record(&mut self, kind: Kind, namespace: &str, event: &'static str, object: Value) {
        self.history.push((
            self.revision,
            kind,
            namespace.to_string(),
            event,
            object.clone(),
        ));
        let line = event_line(event, &object);
        self.watchers.retain(|watcher| {
            !watcher.matches(kind, namespace, &object) || watcher.events.send(line.clone()).is_ok()
        });
    }
}

impl Watcher {
    fn matches(&self, kind: Kind, namespace: &str, object: &Value) -> bool {
        kind == self.kind
            && namespace == self.namespace
            && selected(object, &self.labels, &self.fields)
    }
}

/// `key=value` and `key!=value` label requirements, and `metadata.name=NAME` fields: all
/// that holdup sends in these tests.
fn selected(object: &Value, labels: &Option<String>, fields: &Option<String>) -> bool {
    let labels_ok = labels.as_deref().is_none_or(|selector| {
        selector.split(',').all(|requirement| {
            let (key, value, equal) = match requirement.split_once("!=") {
                Some((key, value)) => (key, value, false),
                None => match requirement.split_once('=') {
                    Some((key, value)) => (key, value, true),
                    None => return object["metadata"]["labels"].get(requirement).is_some(),
                },
            };
            (object["metadata"]["labels"][key].as_str() == Some(value)) == equal
        })
    });
    let fields_ok = fields.as_deref().is_none_or(|selector| {
        selector
            .strip_prefix("metadata.name=")
            .is_some_and(|name| object["metadata"]["name"].as_str() == Some(name))
    });
    labels_ok && fields_ok
}

fn event_line(event: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": event, "object": object})))
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

/// A watch response body: the events sent to it, as they come.
struct Events(UnboundedReceiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

type Body = Either<Full<Bytes>, Events>;

/// The fake API server, on 127.0.0.1 with a certificate of its own test CA.
pub struct ApiServer {
    ca: TestCa,
    cluster: Arc<(Mutex<Cluster>, Condvar)>,
    serving: Serving,
}

impl ApiServer {
    pub fn start() -> ApiServer {
        let ca = TestCa::new("holdup test cluster CA");
        // Client certificates are checked when given; tokens work without one.
        let config = ca.server_config_checking_clients(&["127.0.0.1", "kubernetes.default.svc"]);
        let cluster: Arc<(Mutex<Cluster>, Condvar)> = Arc::default();
        let shared = cluster.clone();
        let serving = serve_reading_bodies(config, move |request, connection: Connection| {
            answer(&shared, &request, connection.client_certificate)
        });
        ApiServer {
            ca,
            cluster,
            serving,
        }
    }

    pub fn port(&self) -> u16 {
        self.serving.address().port()
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.serving.address())
    }

    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    fn with<T>(&self, change: impl FnOnce(&mut Cluster) -> T) -> T {
        let (cluster, changed) = &*self.cluster;
        let result = change(&mut cluster.lock().unwrap());
        changed.notify_all();
        result
    }

    /// Accepts `token` as the bearer token of `user` (`system:serviceaccount:NS:NAME`).
    pub fn allow_token(&self, token: &str, user: &str) {
        self.with(|cluster| cluster.tokens.insert(token.into(), user.into()));
    }

    pub fn revoke_token(&self, token: &str) {
        self.with(|cluster| cluster.tokens.remove(token));
    }

    /// RBAC refuses `verb` on `kind` from now on.
    pub fn forbid(&self, kind: Kind, verb: &str) {
        self.with(|cluster| cluster.forbidden.push((kind, verb.into())));
    }

    /// RBAC allows `verb` on `kind` again (the RoleBinding was applied).
    pub fn permit(&self, kind: Kind, verb: &str) {
        self.with(|cluster| {
            cluster
                .forbidden
                .retain(|rule| *rule != (kind, verb.into()))
        });
    }

    /// From now on, creating an Event hangs: the answer's body never ends.
    pub fn stall_events(&self) {
        self.with(|cluster| cluster.stall_events = Some(Vec::new()));
    }

    /// Takes a resource out of discovery and serving, as before its CustomResourceDefinition
    /// is installed.
    pub fn hide(&self, kind: Kind) {
        self.with(|cluster| cluster.served.remove(&kind));
    }

    /// Serves a resource hidden before (its CustomResourceDefinition was installed).
    pub fn install(&self, kind: Kind) {
        self.with(|cluster| cluster.served.insert(kind));
    }

    /// Creates or replaces an object (kind, apiVersion, namespace and resourceVersion are
    /// filled in; cluster-scoped objects take namespace "") and tells the watches that select
    /// it.
    pub fn put(&self, kind: Kind, namespace: &str, object: Value) {
        self.with(|cluster| cluster.put(kind, namespace, object));
    }

    /// The object as the server holds it now.
    pub fn object(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.with(|cluster| {
            let key = (kind, namespace.to_string(), name.to_string());
            cluster.objects.get(&key).cloned()
        })
    }

    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        self.with(|cluster| {
            let key = (kind, namespace.to_string(), name.to_string());
            if let Some(mut object) = cluster.objects.remove(&key) {
                cluster.revision += 1;
                object["metadata"]["resourceVersion"] = json!(cluster.revision.to_string());
                cluster.record(kind, namespace, "DELETED", object);
            }
        });
    }

    /// Ends every watch, then creates or replaces an object while none is open, and
    /// compacts history past the change: a watch resumed from before it gets 410 Gone.
    pub fn missed_change(&self, kind: Kind, namespace: &str, object: Value) {
        self.with(|cluster| {
            cluster.watchers.clear();
            cluster.put(kind, namespace, object);
            cluster.oldest_kept = cluster.revision + 1;
        });
    }

    /// Ends every open watch, as an API server does now and then.
    pub fn end_watches(&self) {
        self.with(|cluster| cluster.watchers.clear());
    }

    /// Sends a BOOKMARK at the current resourceVersion to watches that asked for them;
    /// returns that resourceVersion.
    pub fn bookmark(&self) -> String {
        self.with(|cluster| {
            let at = cluster.revision.to_string();
            for watcher in cluster.watchers.iter().filter(|watcher| watcher.bookmarks) {
                let object = json!({"kind": watcher.kind.name(), "apiVersion": watcher.kind.api_version(),
                                    "metadata": {"resourceVersion": at}});
                let _ = watcher.events.send(event_line("BOOKMARK", &object));
            }
            at
        })
    }

    /// Moves the resourceVersion on with a change no target looks at.
    pub fn unrelated_change(&self) {
        let name = format!("other-{}", self.with(|cluster| cluster.revision));
        self.put(
            Kind::Pod,
            "elsewhere",
            pod(&name, &[("app", "other")], true),
        );
    }

    /// The objects of `kind` in `namespace`, as stored.
    pub fn objects(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        self.with(|cluster| {
            cluster
                .objects
                .iter()
                .filter(|((k, ns, _), _)| *k == kind && ns == namespace)
                .map(|(_, object)| object.clone())
                .collect()
        })
    }

    /// The requests about targets: all but those about holdup's own Events on its pod,
    /// which are posted beside the wait (see [`ApiServer::all_requests`]).
    pub fn requests(&self) -> Vec<Seen> {
        self.with(|cluster| {
            cluster
                .requests
                .iter()
                .filter(|seen| !seen.is_event())
                .cloned()
                .collect()
        })
    }

    /// Every request, Events included.
    pub fn all_requests(&self) -> Vec<Seen> {
        self.with(|cluster| cluster.requests.clone())
    }

    /// Waits until `count` requests satisfy `matches` (failing the test after 30 s).
    #[track_caller]
    pub fn wait_for_requests(&self, count: usize, matches: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let limit = Instant::now() + Duration::from_secs(30);
        let (cluster, changed) = &*self.cluster;
        let mut guard = cluster.lock().unwrap();
        loop {
            let found: Vec<Seen> = guard
                .requests
                .iter()
                .filter(|seen| matches(seen))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            let left = limit.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the API server never got {count} such requests: {:#?}",
                guard.requests
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// A service-account directory (token, ca.crt, namespace) for a pod in `namespace`.
    pub fn service_account(&self, namespace: &str, token: &str) -> ServiceAccount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), self.ca.pem()).unwrap();
        std::fs::write(dir.path().join("namespace"), namespace).unwrap();
        std::fs::write(dir.path().join("token"), token).unwrap();
        ServiceAccount {
            dir,
            port: self.port(),
        }
    }
}

/// What the kubelet mounts into a pod, and the variables it sets.
pub struct ServiceAccount {
    dir: tempfile::TempDir,
    port: u16,
}

impl ServiceAccount {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the token, as the kubelet does when it rotates a bound token.
    pub fn rotate_token(&self, token: &str) {
        let fresh = self.dir.path().join("token.new");
        std::fs::write(&fresh, token).unwrap();
        std::fs::rename(fresh, self.dir.path().join("token")).unwrap();
    }

    /// holdup as run in this pod: in-cluster variables, no kubeconfig.
    pub fn configure(&self, holdup: Holdup) -> Holdup {
        holdup
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", self.port.to_string())
            .env("HOLDUP_SERVICE_ACCOUNT_DIR", self.dir.path())
            .env("KUBECONFIG", "")
            .env("HOME", self.dir.path())
    }
}

/// holdup with no cluster around it at all (no in-cluster variables, no kubeconfig).
pub fn outside_any_cluster(holdup: Holdup, home: &Path) -> Holdup {
    holdup
        .env("KUBERNETES_SERVICE_HOST", "")
        .env("KUBECONFIG", "")
        .env("HOME", home)
}

/// The user the pod's service account is, to the API server.
pub const USER: &str = "system:serviceaccount:shop:web";

/// Where a k8s test starts: the stand-in API server, a pod in namespace `shop` running as
/// service account [`USER`] with its token mounted, and holdup run in that pod or, with a
/// kubeconfig, outside the cluster.
pub struct Fixture {
    pub api: ApiServer,
    pub pod: ServiceAccount,
    /// HOME outside the cluster, where the kubeconfig is written.
    home: tempfile::TempDir,
}

impl Fixture {
    /// The pod's token is `t`, and the API server accepts it.
    pub fn start() -> Fixture {
        Fixture::with_token("t")
    }

    /// The pod's token is `token`, and the API server accepts it.
    pub fn with_token(token: &str) -> Fixture {
        let api = ApiServer::start();
        api.allow_token(token, USER);
        let pod = api.service_account("shop", token);
        Fixture {
            api,
            pod,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// holdup as run in the pod: in-cluster variables, no kubeconfig.
    pub fn in_pod(&self) -> Holdup {
        self.pod.configure(holdup())
    }

    /// holdup outside the cluster (no in-cluster variables), with this kubeconfig in its
    /// home directory.
    pub fn with_kubeconfig(&self, kubeconfig: &str) -> Holdup {
        let path = self.home.path().join("kubeconfig");
        std::fs::write(&path, kubeconfig).unwrap();
        outside_any_cluster(holdup(), self.home.path()).env("KUBECONFIG", path)
    }

    /// The directory the kubeconfig is in, for files it names by a relative path.
    pub fn kubeconfig_dir(&self) -> &Path {
        self.home.path()
    }
}

/// A kubeconfig of two contexts: `laptop` (current; a closed port) and `ci` (this server,
/// namespace shop), whose user is `ci_user` (YAML lines indented by four spaces).
pub fn kubeconfig_with(api: &ApiServer, ci_user: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(api.ca().pem());
    format!(
        r#"apiVersion: v1
kind: Config
current-context: laptop
clusters:
- name: laptop
  cluster:
    server: https://127.0.0.1:1
- name: ci
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: laptop
  user:
    token: laptop-token
- name: ci
  user:
{ci_user}
contexts:
- name: laptop
  context: {{cluster: laptop, user: laptop}}
- name: ci
  context:
    cluster: ci
    user: ci
    namespace: shop
"#,
        server = api.url()
    )
}

fn answer(
    cluster: &Arc<(Mutex<Cluster>, Condvar)>,
    request: &Request<Bytes>,
    client_certificate: bool,
) -> Response<Body> {
    let (lock, changed) = &**cluster;
    let mut cluster = lock.lock().unwrap();
    let query = request.uri().query().unwrap_or_default().to_string();
    let token = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_string);
    let mut seen = Seen {
        verb: "list".into(),
        path: request.uri().path().to_string(),
        kind: None,
        namespace: String::new(),
        query,
        token: token.clone(),
        client_certificate,
        status: 200,
        body: serde_json::from_slice(request.body()).ok(),
        content_type: request
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    };
    match *request.method() {
        hyper::Method::POST => seen.verb = "create".into(),
        hyper::Method::PATCH => seen.verb = "patch".into(),
        _ => {}
    }
    if seen
        .param("watch")
        .is_some_and(|watch| watch == "1" || watch == "true")
    {
        seen.verb = "watch".into();
    }
    let response = route(&mut cluster, &mut seen, token, client_certificate);
    seen.status = response.status().as_u16();
    cluster.requests.push(seen);
    changed.notify_all();
    response
}

/// A strategic merge patch of an object's `status`: `conditions` merge by `type` (an entry
/// replaces the one of its type, or is added), other fields are replaced.
fn patch_status(
    cluster: &mut Cluster,
    kind: Kind,
    namespace: &str,
    name: &str,
    seen: &Seen,
) -> Response<Body> {
    if seen.content_type != "application/strategic-merge-patch+json" {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {:?})",
            seen.content_type
        );
        return json_response(415, &status(415, "UnsupportedMediaType", &message, None));
    }
    let Some(patch) = &seen.body else {
        return json_response(
            400,
            &status(400, "BadRequest", "the patch is not JSON", None),
        );
    };
    let key = (kind, namespace.to_string(), name.to_string());
    let Some(mut object) = cluster.objects.get(&key).cloned() else {
        let message = format!("{} \"{name}\" not found", kind.plural());
        let details = json!({"name": name, "kind": kind.plural()});
        return json_response(404, &status(404, "NotFound", &message, Some(details)));
    };
    let Some(fields) = patch["status"].as_object() else {
        return json_response(
            400,
            &status(400, "BadRequest", "the patch has no status", None),
        );
    };
    for (field, value) in fields {
        if field != "conditions" {
            object["status"][field] = value.clone();
            continue;
        }
        let mut conditions = object["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for condition in value.as_array().into_iter().flatten() {
            match conditions
                .iter_mut()
                .find(|known| known["type"] == condition["type"])
            {
                Some(known) => *known = condition.clone(),
                None => conditions.push(condition.clone()),
            }
        }
        object["status"]["conditions"] = Value::Array(conditions);
    }
    cluster.put(kind, namespace, object.clone());
    json_response(200, &object)
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Either::Left(Full::new(Bytes::from(body.to_string()))))
        .unwrap()
}

fn not_found() -> Response<Body> {
    json_response(
        404,
        &status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
    )
}

/// What a resource path names: `/api/v1/namespaces/NS/pods[/NAME]`, `/api/v1/nodes[/NAME]`,
/// `/apis/GROUP/VERSION/…`.
struct Target {
    kind: Kind,
    namespace: String,
    name: Option<String>,
    /// `status` in `/api/v1/namespaces/NS/pods/NAME/status`.
    subresource: Option<String>,
}

fn target(path: &str, served: &BTreeSet<Kind>) -> Option<Target> {
    let segments: Vec<&str> = path.split('/').collect();
    let (api, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (format!("api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("apis/{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, plural, name, subresource) = match rest {
        ["namespaces", namespace, plural] => (*namespace, *plural, None, None),
        ["namespaces", namespace, plural, name] => {
            (*namespace, *plural, Some(name.to_string()), None)
        }
        ["namespaces", namespace, "pods", name, "status"] => (
            *namespace,
            "pods",
            Some(name.to_string()),
            Some("status".to_string()),
        ),
        [plural] => ("", *plural, None, None),
        [plural, name] => ("", *plural, Some(name.to_string()), None),
        _ => return None,
    };
    let kind = Kind::from_path(&api, plural, served)?;
    // A namespaced resource asked for across namespaces, or a cluster-scoped one in one:
    // holdup never asks either.
    if kind.namespaced() == namespace.is_empty() {
        return None;
    }
    Some(Target {
        kind,
        namespace: namespace.to_string(),
        name,
        subresource,
    })
}

fn route(
    cluster: &mut Cluster,
    seen: &mut Seen,
    token: Option<String>,
    client_certificate: bool,
) -> Response<Body> {
    let user = match token {
        Some(token) => cluster.tokens.get(&token).cloned(),
        None if client_certificate => Some("holdup-ci".to_string()),
        None => None,
    };
    let Some(user) = user else {
        return json_response(401, &status(401, "Unauthorized", "Unauthorized", None));
    };
    let path = seen.path.trim_start_matches('/').to_string();
    if let Some(document) = discovery::document(&path, &cluster.served) {
        seen.verb = "discover".into();
        return json_response(200, &document);
    }
    let Some(Target {
        kind,
        namespace,
        name,
        subresource,
    }) = target(&path, &cluster.served)
    else {
        if path.starts_with("apis/") && path.split('/').count() <= 3 {
            seen.verb = "discover".into();
        }
        return not_found();
    };
    if name.is_some() && seen.verb == "list" {
        seen.verb = "get".into();
    }
    // Only a pod's status is patched, and nothing else is asked of a subresource.
    if subresource.is_some() && seen.verb != "patch" {
        return not_found();
    }
    seen.kind = Some(kind);
    seen.namespace = namespace.clone();
    if cluster.forbidden.contains(&(kind, seen.verb.clone())) {
        let group = kind.group();
        let mut shown = if group.is_empty() {
            kind.plural().to_string()
        } else {
            format!("{}.{group}", kind.plural())
        };
        if let Some(name) = &name {
            shown = format!("{shown} \"{name}\"");
        }
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        let resource = match &subresource {
            Some(subresource) => format!("{}/{subresource}", kind.plural()),
            None => kind.plural().to_string(),
        };
        let message = format!(
            "{shown} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{group}\" {scope}",
            seen.verb,
        );
        let details = json!({"group": group, "kind": kind.plural()});
        return json_response(403, &status(403, "Forbidden", &message, Some(details)));
    }
    match (seen.verb.as_str(), &name) {
        ("create", None) if cluster.stall_events.is_some() => {
            let (sender, receiver) = unbounded_channel();
            if let Some(open) = cluster.stall_events.as_mut() {
                open.push(sender);
            }
            return Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .body(Either::Right(Events(receiver)))
                .unwrap();
        }
        ("create", None) => {
            let body = seen.body.clone();
            return events::create(cluster, kind, &namespace, body, &seen.content_type);
        }
        ("patch", Some(name)) if subresource.is_some() => {
            return patch_status(cluster, kind, &namespace, name, seen);
        }
        ("patch", Some(name)) => {
            let body = seen.body.clone();
            return events::merge_patch(cluster, kind, &namespace, name, body, &seen.content_type);
        }
        ("create" | "patch", _) => {
            return json_response(
                405,
                &status(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    None,
                ),
            );
        }
        _ => {}
    }
    if let Some(name) = name {
        let key = (kind, namespace.clone(), name.clone());
        return match cluster.objects.get(&key) {
            Some(object) => json_response(200, object),
            None => {
                let message = format!("{} \"{name}\" not found", kind.plural());
                let details = json!({"name": name, "kind": kind.plural()});
                json_response(404, &status(404, "NotFound", &message, Some(details)))
            }
        };
    }
    let labels = seen.param("labelSelector");
    let fields = seen.param("fieldSelector");
    if seen.verb == "list" {
        let items: Vec<Value> = cluster
            .objects
            .iter()
            .filter(|((k, ns, _), object)| {
                *k == kind && *ns == namespace && selected(object, &labels, &fields)
            })
            .map(|(_, object)| {
                // Items of a list carry no kind or apiVersion of their own.
                let mut item = object.clone();
                if let Some(map) = item.as_object_mut() {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
                item
            })
            .collect();
        let list = json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": cluster.revision.to_string()},
            "items": items,
        });
        return json_response(200, &list);
    }
    let from: u64 = seen
        .param("resourceVersion")
        .and_then(|version| version.parse().ok())
        .unwrap_or(0);
    let (events, receiver) = unbounded_channel();
    if from + 1 < cluster.oldest_kept {
        // What a real API server does for a watch from a compacted resourceVersion.
        let gone = status(
            410,
            "Expired",
            &format!("too old resource version: {from} ({})", cluster.oldest_kept),
            None,
        );
        let _ = events.send(event_line("ERROR", &gone));
        drop(events);
    } else {
        let watcher = Watcher {
            kind,
            namespace,
            labels,
            fields,
            bookmarks: seen.param("allowWatchBookmarks").as_deref() == Some("true"),
            events,
        };
        for (version, k, ns, event, object) in &cluster.history {
            if *version > from && watcher.matches(*k, ns, object) {
                let _ = watcher.events.send(event_line(event, object));
            }
        }
        cluster.watchers.push(watcher);
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Either::Right(Events(receiver)))
        .unwrap()
}
