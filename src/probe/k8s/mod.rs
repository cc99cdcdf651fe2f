//! `k8s://…`: a Service with ready endpoints, a Job that has completed, Pods that are
//! Ready, read from the Kubernetes API server (no kubectl, no shell).
//!
//! # Forms
//!
//! ```text
//! k8s://[NAMESPACE/]SERVICE            EndpointSlices of the Service hold ready endpoints
//! k8s://[NAMESPACE/]service/SERVICE    the same, for a namespace called job, pods, …
//! k8s://[NAMESPACE/]job/NAME           the Job has completed (failed: exit 3 at once)
//! k8s://[NAMESPACE/]pods/SELECTOR      pods matching a label selector are Ready
//! ```
//!
//! Without a namespace, the pod's own (service-account `namespace` file) or the
//! kubeconfig context's is used, else `default`. An object that does not exist yet is
//! not ready, never an error: holdup waits for it to be created.
//!
//! # How a watch fits the scheduler
//!
//! The probe keeps, between attempts, what it knows of the watched collection: the
//! objects, the resourceVersion they are at, and the open watch response itself. An
//! attempt (a [`K8s::check`]) does one of these:
//!
//! - with nothing known yet (or after a 410 Gone): it lists the collection, judges it and
//!   returns at once: ready, failed for good, or not ready with the reason, which the
//!   scheduler prints; the watch starts on the next attempt, from the list's
//!   resourceVersion, so no change in between is missed;
//! - otherwise it starts a watch from the last resourceVersion seen (or takes up the one
//!   left open by the previous attempt) and reads its events, judging the collection after
//!   each one: it returns the moment the target is ready or has failed, so readiness is
//!   seen within milliseconds of the API server sending it.
//!
//! While it reads, the attempt marks its [`Stage`] as waiting, with the current reason.
//! The scheduler cuts it off at the attempt timeout or the deadline like any other (the
//! deadline holds, and nothing blocks: reading is an await on the socket); being
//! cancelled loses nothing, since the state and the partly read stream stay in the probe.
//! The scheduler reports the waiting reason rather than "timed out" and starts the next
//! attempt at once, which goes on reading the same response: a healthy watch costs the
//! API server one request, however long the wait.
//!
//! Load stays low when things go wrong: each attempt makes at most one list or one watch
//! request (one more if a watch carried over from an earlier attempt had ended), and any
//! failure (refused connection, 401, 403, 5xx, a watch ended at once) returns to the
//! scheduler, whose backoff spaces the next request. A 410 Gone (the resourceVersion is
//! older than the server's history) clears what is known, and the next attempt lists
//! again. Bookmarks move the resourceVersion on, so a resumed watch starts close to now.
//! When the watch verb is forbidden but list is allowed, the probe says so once and falls
//! back to listing on every attempt (polling, at the scheduler's pace).
//!
//! # Credentials
//!
//! In-cluster: the service account's token, read anew for every request (bound tokens are
//! rotated while the pod runs), and its `ca.crt`; the directory can be moved with
//! `HOLDUP_SERVICE_ACCOUNT_DIR`. Out of cluster: a kubeconfig (see [`config`]). A 401 or
//! 403 is retried until the deadline (a RoleBinding is often applied moments after the
//! pod starts), and its message names the credentials, or the exact Role rule to add.

mod api;
mod config;
mod readiness;

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use futures_util::lock::Mutex;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tracing::warn;
use url::Url;

use self::api::{Api, ApiError, Event, Query, Watch};
use self::readiness::Verdict;
use super::{Failure, Options, Stage};
use crate::net::Net;

const FORMS: &str =
    "k8s://[NAMESPACE/]SERVICE, k8s://[NAMESPACE/]job/NAME or k8s://[NAMESPACE/]pods/SELECTOR";

/// The label EndpointSlices carry to name their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub struct K8s {
    kind: Kind,
    /// None: the pod's own namespace, or the kubeconfig context's.
    namespace: Option<String>,
    context: Option<String>,
    /// The target as shown, for the one line said when falling back to polling.
    shown: String,
    state: Mutex<State>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Service {
        name: String,
        port: Option<String>,
        min: u32,
    },
    Job {
        name: String,
    },
    Pods {
        selector: String,
        min: u32,
    },
}

/// What the probe knows between attempts.
#[derive(Default)]
struct State {
    /// Set up on the first attempt.
    api: Option<Api>,
    namespace: String,
    /// The watched objects by name, as last sent.
    objects: BTreeMap<String, Value>,
    /// Where the objects are at: None until listed, and again after a 410 Gone.
    resource_version: Option<String>,
    watch: Option<Watch>,
    /// The watch verb is forbidden: list on every attempt.
    polling: bool,
}

impl K8s {
    pub fn parse(url: &Url, mut options: Options) -> Result<K8s> {
        if !url.username().is_empty() || url.password().is_some() {
            bail!(
                "k8s targets take no credentials in the URL: holdup uses the service account or a kubeconfig"
            );
        }
        if url.port().is_some() {
            bail!("k8s targets name objects, not ports (expected {FORMS})");
        }
        if url.query().is_some() {
            bail!("k8s targets have no query string; options go after '#', e.g. #min=2");
        }
        let mut raw: Vec<&str> = vec![url.host_str().unwrap_or_default()];
        raw.extend(url.path_segments().into_iter().flatten());
        if raw.len() > 1 && raw.last() == Some(&"") {
            raw.pop();
        }
        let segments = raw
            .iter()
            .map(|segment| {
                percent_decode_str(segment)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| anyhow!("'{segment}' is not UTF-8 once percent-decoded"))
            })
            .collect::<Result<Vec<String>>>()?;
        if segments.iter().any(String::is_empty) {
            bail!("empty name (expected {FORMS})");
        }
        let (namespace, kind, name) = match segments.as_slice() {
            [name] => (None, "service", name),
            [kind, name] if kind_word(kind).is_some() => (None, kind.as_str(), name),
            [namespace, name] => (Some(namespace), "service", name),
            [namespace, kind, name] => (Some(namespace), kind.as_str(), name),
            _ => bail!("too many parts (expected {FORMS})"),
        };
        if let Some(namespace) = namespace {
            check_name(namespace, "namespace", Naming::Label)?;
        }
        let context = options.take("context")?;
        let kind = match kind_word(kind) {
            Some("service") => {
                check_name(name, "Service name", Naming::ServiceLabel)?;
                let port = options.take("port")?;
                let min = take_min(&mut options)?;
                options.finish("k8s Service", &["min", "port", "context"])?;
                Kind::Service {
                    name: name.clone(),
                    port,
                    min,
                }
            }
            Some("job") => {
                check_name(name, "Job name", Naming::Subdomain)?;
                options.finish("k8s Job", &["context"])?;
                Kind::Job { name: name.clone() }
            }
            Some(_) => {
                check_selector(name)?;
                let min = take_min(&mut options)?;
                options.finish("k8s pods", &["min", "context"])?;
                Kind::Pods {
                    selector: name.clone(),
                    min,
                }
            }
            None => bail!("unknown kind '{kind}' (expected service, job or pods: {FORMS})"),
        };
        Ok(K8s {
            kind,
            namespace: namespace.cloned(),
            context,
            shown: crate::redact::url(url),
            state: Mutex::new(State::default()),
        })
    }

    /// One attempt; see the module documentation for how it uses the watch.
    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        if state.api.is_none() {
            // A missing or broken configuration does not mend by waiting.
            let connection = config::connection(
                &config::Environment::from_process(),
                self.context.as_deref(),
            )
            .map_err(Failure::Permanent)?;
            state.namespace = self
                .namespace
                .clone()
                .unwrap_or_else(|| connection.namespace.clone());
            state.api = Some(Api::new(connection, net).map_err(Failure::Permanent)?);
        }
        let State {
            api: Some(api),
            namespace,
            objects,
            resource_version,
            watch,
            polling,
        } = state
        else {
            return Err(anyhow!("no API connection").into());
        };
        let query = self.query(namespace);
        let mut watch_started = false;
        loop {
            let Some(stream) = watch else {
                let Some(from) = resource_version.clone().filter(|_| !*polling) else {
                    let list = api.list(&query, stage).await.map_err(not_ready)?;
                    *objects = list
                        .items
                        .into_iter()
                        .map(|object| (readiness::meta(&object).name, object))
                        .collect();
                    *resource_version = Some(list.metadata.resource_version);
                    return self.judged(namespace, objects);
                };
                if watch_started {
                    // A second watch request in one attempt: let the scheduler's backoff
                    // space them, should the server end every watch at once.
                    return Err(anyhow!(
                        "{}; the API server at {} ended the watch",
                        self.reason(namespace, objects),
                        api.authority()
                    )
                    .into());
                }
                match api.watch(&query, &from, stage).await {
                    Ok(opened) => {
                        *watch = Some(opened);
                        watch_started = true;
                        continue;
                    }
                    Err(ApiError::Forbidden(words)) => {
                        *polling = true;
                        warn!(
                            event = "polling",
                            target = %self.shown,
                            "{}: cannot watch, so polling instead: {words}",
                            self.shown
                        );
                        return Err(anyhow!(self.reason(namespace, objects)).into());
                    }
                    Err(ApiError::Gone) => {
                        *resource_version = None;
                        return Err(anyhow!(
                            "{}; the watch history expired (410 Gone), listing again",
                            self.reason(namespace, objects)
                        )
                        .into());
                    }
                    Err(other) => return Err(not_ready(other)),
                }
            };
            stage.set(format!(
                "watching {} in {namespace} at {}",
                query.resource,
                api.authority()
            ));
            stage.waiting(self.reason(namespace, objects));
            let event = match stream.next().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    // The server ends watches now and then; resume where we were.
                    *watch = None;
                    continue;
                }
                Err(error) => {
                    *watch = None;
                    return Err(error.into());
                }
            };
            match event {
                Event::Changed(object) => {
                    let meta = readiness::meta(&object);
                    *resource_version = Some(meta.resource_version);
                    objects.insert(meta.name, object);
                }
                Event::Deleted(object) => {
                    let meta = readiness::meta(&object);
                    *resource_version = Some(meta.resource_version);
                    objects.remove(&meta.name);
                }
                Event::Bookmark(at) => {
                    *resource_version = Some(at);
                    continue;
                }
                Event::Error(status) => {
                    *watch = None;
                    if status.code == 410 {
                        *resource_version = None;
                        return Err(anyhow!(
                            "{}; the watch history expired (410 Gone), listing again",
                            self.reason(namespace, objects)
                        )
                        .into());
                    }
                    return Err(anyhow!(
                        "the API server at {} ended the watch with an error: {} ({})",
                        api.authority(),
                        status.message,
                        status.reason
                    )
                    .into());
                }
            }
            match self.verdict(namespace, objects) {
                Verdict::Ready => return Ok(()),
                Verdict::Failed(words) => return Err(Failure::Permanent(anyhow!(words))),
                Verdict::NotReady(_) => {}
            }
        }
    }

    fn query(&self, namespace: &str) -> Query {
        let (resource, label_selector, field_selector) = match &self.kind {
            Kind::Service { name, .. } => (
                api::ENDPOINT_SLICES,
                Some(format!("{SERVICE_NAME_LABEL}={name}")),
                None,
            ),
            Kind::Job { name } => (api::JOBS, None, Some(format!("metadata.name={name}"))),
            Kind::Pods { selector, .. } => (api::PODS, Some(selector.clone()), None),
        };
        Query {
            resource,
            namespace: namespace.to_string(),
            label_selector,
            field_selector,
        }
    }

    fn verdict(&self, namespace: &str, objects: &BTreeMap<String, Value>) -> Verdict {
        let objects: Vec<&Value> = objects.values().collect();
        match &self.kind {
            Kind::Service { name, port, min } => readiness::service(
                &format!("{namespace}/{name}"),
                port.as_deref(),
                *min,
                &objects,
            ),
            Kind::Job { name } => readiness::job(&format!("{namespace}/{name}"), &objects),
            Kind::Pods { selector, min } => {
                readiness::pods(&format!("{selector} in {namespace}"), *min, &objects)
            }
        }
    }

    fn judged(&self, namespace: &str, objects: &BTreeMap<String, Value>) -> Result<(), Failure> {
        match self.verdict(namespace, objects) {
            Verdict::Ready => Ok(()),
            Verdict::Failed(words) => Err(Failure::Permanent(anyhow!(words))),
            Verdict::NotReady(words) => Err(anyhow!(words).into()),
        }
    }

    fn reason(&self, namespace: &str, objects: &BTreeMap<String, Value>) -> String {
        match self.verdict(namespace, objects) {
            Verdict::NotReady(words) | Verdict::Failed(words) => words,
            Verdict::Ready => "ready".to_string(),
        }
    }

    /// The Role rules this target needs, for documentation and tests.
    #[cfg(test)]
    fn resource(&self) -> api::Resource {
        self.query("default").resource
    }
}

fn not_ready(error: ApiError) -> Failure {
    Failure::NotReady(error.into())
}

/// `service`, `job` or `pods` for the words a user may write.
fn kind_word(word: &str) -> Option<&'static str> {
    match word {
        "service" | "services" | "svc" => Some("service"),
        "job" | "jobs" => Some("job"),
        "pod" | "pods" => Some("pods"),
        _ => None,
    }
}

fn take_min(options: &mut Options) -> Result<u32> {
    let min = options.take_parsed("min", |text| match text.parse::<u32>() {
        Ok(min) if min >= 1 => Ok(min),
        _ => bail!("expected a whole number of 1 or more"),
    })?;
    Ok(min.unwrap_or(1))
}

#[derive(Clone, Copy)]
enum Naming {
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label: Service names (start with a letter).
    ServiceLabel,
    /// RFC 1123 subdomain: Job names.
    Subdomain,
}

fn check_name(name: &str, what: &str, naming: Naming) -> Result<()> {
    let (limit, dots, rule) = match naming {
        Naming::Label => (63, false, "lower-case letters, digits and '-'"),
        Naming::ServiceLabel => (
            63,
            false,
            "lower-case letters, digits and '-', starting with a letter",
        ),
        Naming::Subdomain => (253, true, "lower-case letters, digits, '-' and '.'"),
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edges_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let first_ok = !matches!(naming, Naming::ServiceLabel)
        || name.starts_with(|c: char| c.is_ascii_lowercase());
    if name.len() > limit || !name.chars().all(allowed) || !edges_ok || !first_ok {
        bail!("'{name}' is not a valid {what} ({rule}, at most {limit}; expected {FORMS})");
    }
    Ok(())
}

/// Checks a label selector as the API server would read it: requirements separated by
/// commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`,
/// `key in (a,b)` or `key notin (a,b)`.
fn check_selector(selector: &str) -> Result<()> {
    let fail = |requirement: &str, why: &str| {
        anyhow!(
            "invalid label selector '{selector}': '{requirement}' {why} (expected e.g. pods/app=web,tier!=cache or pods/app%20in%20(web,api))"
        )
    };
    let mut depth = 0usize;
    let mut start = 0;
    let mut requirements = Vec::new();
    for (index, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| fail(selector, "has an unmatched ')'"))?
            }
            ',' if depth == 0 => {
                requirements.push(&selector[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(fail(selector, "has an unmatched '('"));
    }
    requirements.push(&selector[start..]);
    for requirement in requirements {
        let trimmed = requirement.trim();
        if trimmed.is_empty() {
            return Err(fail(requirement, "is empty"));
        }
        let set_based = [" notin ", " in "]
            .iter()
            .find_map(|operator| trimmed.split_once(operator));
        let (key, values): (&str, Vec<&str>) = if let Some((key, set)) = set_based {
            let inner = set
                .trim()
                .strip_prefix('(')
                .and_then(|set| set.strip_suffix(')'))
                .ok_or_else(|| fail(requirement, "needs its values in parentheses"))?;
            (key, inner.split(',').map(str::trim).collect())
        } else if let Some(key) = trimmed.strip_prefix('!') {
            (key, Vec::new())
        } else if let Some((key, value)) = ["!=", "==", "="]
            .iter()
            .find_map(|operator| trimmed.split_once(operator))
        {
            (key, vec![value])
        } else {
            (trimmed, Vec::new())
        };
        if !label_key_ok(key.trim()) {
            return Err(fail(requirement, "has no valid label key"));
        }
        if !values.iter().all(|value| label_value_ok(value)) {
            return Err(fail(requirement, "has an invalid label value"));
        }
    }
    Ok(())
}

fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|prefix| check_name(prefix, "", Naming::Subdomain).is_ok());
    prefix_ok && !name.is_empty() && label_value_ok(name)
}

fn label_value_ok(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<K8s> {
        let url = Url::parse(text)?;
        K8s::parse(&url, Options::parse(url.fragment())?)
    }

    #[test]
    fn accepted_forms() {
        let service = |name: &str, port: Option<&str>, min| Kind::Service {
            name: name.into(),
            port: port.map(Into::into),
            min,
        };
        let cases: Vec<(&str, Option<&str>, Kind)> = vec![
            ("k8s://db", None, service("db", None, 1)),
            ("k8s://db/", None, service("db", None, 1)),
            ("k8s://shop/db", Some("shop"), service("db", None, 1)),
            (
                "k8s://shop/db#min=2&port=pg",
                Some("shop"),
                service("db", Some("pg"), 2),
            ),
            ("k8s://job/db", None, Kind::Job { name: "db".into() }),
            (
                "k8s://pods/service",
                None,
                Kind::Pods {
                    selector: "service".into(),
                    min: 1,
                },
            ),
            ("k8s://job/service/db", Some("job"), service("db", None, 1)),
            ("k8s://shop/svc/db", Some("shop"), service("db", None, 1)),
            (
                "k8s://shop/job/migrate-v1.2",
                Some("shop"),
                Kind::Job {
                    name: "migrate-v1.2".into(),
                },
            ),
            (
                "k8s://shop/jobs/migrate#context=ci",
                Some("shop"),
                Kind::Job {
                    name: "migrate".into(),
                },
            ),
            (
                "k8s://shop/pods/app=web,tier!=cache#min=3",
                Some("shop"),
                Kind::Pods {
                    selector: "app=web,tier!=cache".into(),
                    min: 3,
                },
            ),
            (
                "k8s://shop/pods/app.kubernetes.io%2Fname%20in%20(web,%20api),!canary",
                Some("shop"),
                Kind::Pods {
                    selector: "app.kubernetes.io/name in (web, api),!canary".into(),
                    min: 1,
                },
            ),
        ];
        for (text, namespace, kind) in cases {
            let target = parse(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!(target.kind, kind, "{text}");
            assert_eq!(target.namespace.as_deref(), namespace, "{text}");
        }
        assert_eq!(
            parse("k8s://shop/job/m#context=ci")
                .unwrap()
                .context
                .as_deref(),
            Some("ci")
        );
        assert_eq!(parse("k8s://db").unwrap().resource(), api::ENDPOINT_SLICES);
        assert_eq!(parse("k8s://job/m").unwrap().resource(), api::JOBS);
        assert_eq!(parse("k8s://pods/a=b").unwrap().resource(), api::PODS);
    }

    #[test]
    fn rejected_forms_say_why() {
        let cases = [
            ("k8s://", "empty name"),
            ("k8s://shop//db", "empty name"),
            ("k8s://a/b/c/d", "too many parts"),
            ("k8s://shop/deployment/web", "unknown kind 'deployment'"),
            ("k8s://Shop/db", "'Shop' is not a valid namespace"),
            ("k8s://shop/1db", "'1db' is not a valid Service name"),
            (
                "k8s://shop/job/Migrate",
                "'Migrate' is not a valid Job name",
            ),
            ("k8s://db:443", "not ports"),
            ("k8s://u:secret@db", "no credentials"),
            ("k8s://db?x=1", "no query string"),
            ("k8s://db#min=0", "invalid option 'min=0'"),
            ("k8s://db#min=two", "invalid option 'min=two'"),
            (
                "k8s://job/m#min=2",
                "unknown option 'min' for k8s Job targets (known: context)",
            ),
            ("k8s://pods/a=b#port=x", "unknown option 'port'"),
            ("k8s://pods/app=web,", "'' is empty"),
            (
                "k8s://pods/app%20in%20web",
                "needs its values in parentheses",
            ),
            ("k8s://pods/app=we%20b", "invalid label value"),
            ("k8s://pods/(a", "unmatched '('"),
            ("k8s://pods/=web", "no valid label key"),
        ];
        for (text, expected) in cases {
            let message = match parse(text) {
                Ok(_) => panic!("{text} was accepted"),
                Err(error) => format!("{error:#}"),
            };
            assert!(message.contains(expected), "{text}: {message}");
            assert!(!message.contains("secret"), "{text}: {message}");
        }
    }
}
