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
mod names;
mod readiness;
mod service;

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, anyhow, bail};
use futures_util::lock::Mutex;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tracing::warn;

use self::api::{Api, ApiError, Event, Query, Watch};
use self::names::{FORMS, Naming, check_name, check_selector};
use self::readiness::Verdict;
use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::Net;

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
    connected: Option<Connected>,
    seen: Seen,
    watch: Option<Watch>,
    /// The watch verb is forbidden: list on every attempt.
    polling: bool,
}

/// The API server, and the namespace the target is in.
struct Connected {
    api: Api,
    namespace: String,
}

/// The watched collection as last sent.
#[derive(Default)]
struct Seen {
    /// The objects by name.
    objects: BTreeMap<String, Value>,
    /// Where the objects are at: None until listed, and again after a 410 Gone.
    resource_version: Option<String>,
    /// A Service target's Service object, read for the words of its reason.
    service: service::Lookup,
}

impl K8s {
    pub fn parse(text: &str) -> Result<K8s> {
        let (url, mut options) = target_url::parse(text)?;
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
                let min = options.take_min("min")?;
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
                let min = options.take_min("min")?;
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
            shown: crate::redact::url(&url),
            state: Mutex::new(State::default()),
        })
    }

    /// One attempt; see the module documentation for how it uses the watch.
    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let mut guard = self.state.lock().await;
        let State {
            connected,
            seen,
            watch,
            polling,
        } = &mut *guard;
        let Connected { api, namespace } = match connected {
            Some(connected) => connected,
            None => connected.insert(self.connect(net)?),
        };
        let query = self.query(namespace);
        let mut watch_started = false;
        loop {
            let Some(stream) = watch else {
                match seen.resource_version.clone().filter(|_| !*polling) {
                    None => return self.list(api, &query, seen, stage).await,
                    // A second watch request in one attempt: let the scheduler's backoff
                    // space them, should the server end every watch at once.
                    Some(_) if watch_started => {
                        return Err(anyhow!(
                            "{}; the API server at {} ended the watch",
                            self.reason(namespace, seen),
                            api.authority()
                        )
                        .into());
                    }
                    Some(from) => {
                        let opened = self.open_watch(api, &query, &from, seen, polling, stage);
                        *watch = Some(opened.await?);
                        watch_started = true;
                        continue;
                    }
                }
            };
            stage.set(format!(
                "watching {} in {namespace} at {}",
                query.resource,
                api.authority()
            ));
            stage.waiting(self.reason(namespace, seen));
            let applied = match stream.next().await {
                Ok(Some(event)) => self.apply(event, namespace, seen, api),
                // The server ends watches now and then; resume where we were.
                Ok(None) => {
                    *watch = None;
                    continue;
                }
                Err(error) => Err(error.into()),
            };
            if let Err(failure) = applied {
                *watch = None;
                return Err(failure);
            }
            match self.verdict(namespace, seen) {
                Verdict::Ready => return Ok(()),
                Verdict::Failed(words) => return Err(Failure::Permanent(anyhow!(words))),
                Verdict::NotReady(_) => self.explain(api, namespace, seen, stage).await,
            }
        }
    }

    /// What an attempt would ask, and whom, as the first attempt would find them now.
    pub fn plan(&self) -> Plan {
        let (object, port, min) = match &self.kind {
            Kind::Service { name, port, min } => (
                format!("Service {name}"),
                Some(port.as_deref().unwrap_or("any")),
                Some(min),
            ),
            Kind::Job { name } => (format!("Job {name}"), None, None),
            Kind::Pods { selector, min } => (format!("pods matching {selector}"), None, Some(min)),
        };
        let mut plan = vec![("object", object)];
        plan.extend(port.map(|port| ("port", port.to_string())));
        plan.extend(min.map(|min| ("min", min.to_string())));
        let environment = config::Environment::from_process();
        let found = config::connection(&environment, self.context.as_deref());
        let namespace = match (&self.namespace, &found) {
            (Some(namespace), _) => Some(format!("{namespace} (from the target)")),
            (None, Ok(found)) => Some(format!(
                "{} (from {})",
                found.namespace, found.namespace_from
            )),
            (None, Err(_)) => None,
        };
        plan.extend(namespace.map(|namespace| ("namespace", namespace)));
        match found {
            Ok(found) => plan.extend([
                ("api server", found.server.to_string()),
                ("credentials", found.who),
            ]),
            Err(error) => plan.push(("api server", format!("none: {error:#}"))),
        }
        plan
    }

    /// The API server and namespace, found on the first attempt. A missing or broken
    /// configuration does not mend by waiting.
    fn connect(&self, net: &Net) -> Result<Connected, Failure> {
        let connection = config::connection(
            &config::Environment::from_process(),
            self.context.as_deref(),
        )
        .map_err(Failure::Permanent)?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| connection.namespace.clone());
        let api = Api::new(connection, net).map_err(Failure::Permanent)?;
        Ok(Connected { api, namespace })
    }

    /// Lists the collection anew and judges it; the next attempt watches from here.
    async fn list(
        &self,
        api: &Api,
        query: &Query,
        seen: &mut Seen,
        stage: &Stage,
    ) -> Result<(), Failure> {
        let list = api.list(query, stage).await.map_err(not_ready)?;
        seen.objects = list
            .items
            .into_iter()
            .map(|object| (readiness::meta(&object).name, object))
            .collect();
        seen.resource_version = Some(list.metadata.resource_version);
        self.explain(api, &query.namespace, seen, stage).await;
        match self.verdict(&query.namespace, seen) {
            Verdict::Ready => Ok(()),
            Verdict::Failed(words) => Err(Failure::Permanent(anyhow!(words))),
            Verdict::NotReady(words) => Err(anyhow!(words).into()),
        }
    }

    /// Reads a Service target's Service object when its reason depends on it and the
    /// situation changed since the last read; a refusal costs nothing but the hint.
    async fn explain(&self, api: &Api, namespace: &str, seen: &mut Seen, stage: &Stage) {
        let Kind::Service { name, port, min } = &self.kind else {
            return;
        };
        let slices: Vec<&Value> = seen.objects.values().collect();
        let situation = service::situation(port.as_deref(), *min, &slices);
        let Some(situation) = seen.service.due(situation) else {
            return;
        };
        let asking = service::Asking {
            api,
            namespace,
            name,
            target: &self.shown,
            reason: self.reason(namespace, seen),
        };
        seen.service.refresh(situation, asking, stage).await;
    }

    /// Starts a watch from `from`. A forbidden watch turns polling on (said once); a 410
    /// means listing again.
    async fn open_watch(
        &self,
        api: &Api,
        query: &Query,
        from: &str,
        seen: &mut Seen,
        polling: &mut bool,
        stage: &Stage,
    ) -> Result<Watch, Failure> {
        match api.watch(query, from, stage).await {
            Ok(opened) => Ok(opened),
            Err(ApiError::Forbidden(words)) => {
                *polling = true;
                warn!(
                    event = "polling",
                    target = %self.shown,
                    "{}: cannot watch, so polling instead: {words}",
                    self.shown
                );
                Err(anyhow!(self.reason(&query.namespace, seen)).into())
            }
            Err(ApiError::Gone) => Err(self.list_again(&query.namespace, seen)),
            Err(other) => Err(not_ready(other)),
        }
    }

    /// Takes one watch event into what is known. An ERROR event ends the watch.
    fn apply(
        &self,
        event: Event,
        namespace: &str,
        seen: &mut Seen,
        api: &Api,
    ) -> Result<(), Failure> {
        match event {
            Event::Changed(object) => {
                let meta = readiness::meta(&object);
                seen.resource_version = Some(meta.resource_version);
                seen.objects.insert(meta.name, object);
            }
            Event::Deleted(object) => {
                let meta = readiness::meta(&object);
                seen.resource_version = Some(meta.resource_version);
                seen.objects.remove(&meta.name);
            }
            Event::Bookmark(at) => seen.resource_version = Some(at),
            Event::Error(status) if status.code == 410 => {
                return Err(self.list_again(namespace, seen));
            }
            Event::Error(status) => {
                return Err(anyhow!(
                    "the API server at {} ended the watch with an error: {} ({})",
                    api.authority(),
                    status.message,
                    status.reason
                )
                .into());
            }
        }
        Ok(())
    }

    /// The watch history has expired (410 Gone): forget where we were, so that the next
    /// attempt lists again.
    fn list_again(&self, namespace: &str, seen: &mut Seen) -> Failure {
        seen.resource_version = None;
        anyhow!(
            "{}; the watch history expired (410 Gone), listing again",
            self.reason(namespace, seen)
        )
        .into()
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

    fn verdict(&self, namespace: &str, seen: &Seen) -> Verdict {
        let objects: Vec<&Value> = seen.objects.values().collect();
        match &self.kind {
            Kind::Service { name, port, min } => service::judge(
                &format!("{namespace}/{name}"),
                port.as_deref(),
                *min,
                &objects,
                &seen.service.known,
            ),
            Kind::Job { name } => readiness::job(&format!("{namespace}/{name}"), &objects),
            Kind::Pods { selector, min } => {
                readiness::pods(&format!("{selector} in {namespace}"), *min, &objects)
            }
        }
    }

    /// Why the target is not ready, as far as what was seen tells.
    fn reason(&self, namespace: &str, seen: &Seen) -> String {
        match self.verdict(namespace, seen) {
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

impl fmt::Display for K8s {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<K8s> {
        K8s::parse(text)
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
