//! `k8s://…`: a Service with ready endpoints, a Job that has completed, Pods that are
//! Ready, a Deployment, StatefulSet or DaemonSet whose rollout is complete, and any object
//! with a condition, a JSONPath value, or that is gone, read from the Kubernetes API server
//! (no kubectl, no shell).
//!
//! # Forms
//!
//! ```text
//! k8s://[NAMESPACE/]SERVICE            EndpointSlices of the Service hold ready endpoints
//! k8s://[NAMESPACE/]service/SERVICE    the same, for a namespace called job, pods, …
//! k8s://[NAMESPACE/]job/NAME           the Job has completed (failed: exit 3 at once)
//! k8s://[NAMESPACE/]pods/SELECTOR      pods matching a label selector are Ready
//! k8s://[NAMESPACE/]deployment/NAME    the rollout is complete (also statefulset, daemonset)
//! k8s://[NAMESPACE/]RESOURCE/NAME#…    one object: #condition=, #jsonpath=, #deleted, #exists
//! k8s://[NAMESPACE/]RESOURCE#selector= the objects a label selector matches, #min of them
//! ```
//!
//! (see [`forms`]). Without a namespace, the pod's own (service-account `namespace` file)
//! or the kubeconfig context's is used, else `default`; cluster-scoped resources (nodes)
//! take none. An object that does not exist yet is not ready, never an error: holdup waits
//! for it to be created. Any resource is found through discovery ([`discovery`]) on the
//! first attempt; Services, Jobs, pods and rollouts need none.
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
//! back to listing on every attempt (polling, at the scheduler's pace). Besides, a Service
//! target reads its Service and a rollout target lists its pods, only while that makes
//! the reason exact (see [`service`] and [`rollout`]).
//!
//! # Credentials
//!
//! In-cluster: the service account's token, read anew for every request (bound tokens are
//! rotated while the pod runs), and its `ca.crt`; the directory can be moved with
//! `HOLDUP_SERVICE_ACCOUNT_DIR`. Out of cluster: a kubeconfig (see [`crate::kube::config`]), whose user
//! may run an exec plugin (see [`crate::kube::plugin`]). A 401 or 403 is retried until the deadline (a
//! RoleBinding is often applied moments after the pod starts), and its message names the
//! credentials, or the exact Role rule to add.

mod discovery;
mod forms;
mod jsonpath;
mod names;
mod object;
mod plan;
mod readiness;
mod rollout;
mod seen;
mod service;

use std::fmt;

use anyhow::{Result, anyhow};
use futures_util::lock::Mutex;
use tracing::warn;

use self::discovery::Missing;
use self::forms::Kind;
use self::object::Pick;
use self::readiness::Verdict;
use self::seen::Seen;
use super::options::Plan;
use crate::attempt::{Failure, Stage};
use crate::kube::api::{Api, ApiError};
use crate::kube::config;
use crate::kube::resource::{ENDPOINT_SLICES, JOBS, PODS, Query};
use crate::kube::watch::{Event, Watch};
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

/// What the probe knows between attempts.
#[derive(Default)]
struct State {
    /// Set up on the first attempt.
    connected: Option<Connected>,
    seen: Seen,
    watch: Option<Watch>,
    /// The watch verb is forbidden (or not offered): list on every attempt.
    polling: bool,
    /// Attempts made, so that helper reads can be made once per attempt.
    attempt: u64,
}

/// The API server, the namespace the target is in, and what it asks once that is known
/// (for any resource, after discovery found it).
struct Connected {
    api: Api,
    namespace: String,
    query: Option<Query>,
}

impl K8s {
    pub fn parse(text: &str) -> Result<K8s> {
        let form = forms::parse(text)?;
        Ok(K8s {
            kind: form.kind,
            namespace: form.namespace,
            context: form.context,
            shown: form.shown,
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
            attempt,
        } = &mut *guard;
        *attempt += 1;
        let Connected {
            api,
            namespace,
            query,
        } = match connected {
            Some(connected) => connected,
            None => connected.insert(self.connect(net)?),
        };
        let query = match query {
            Some(query) => query.clone(),
            None => query
                .insert(self.resolve(api, namespace, polling, stage).await?)
                .clone(),
        };
        let mut watch_started = false;
        loop {
            let Some(stream) = watch else {
                match seen.resource_version.clone().filter(|_| !*polling) {
                    None => return self.list(api, &query, seen, *attempt, stage).await,
                    // A second watch request in one attempt: let the scheduler's backoff
                    // space them, should the server end every watch at once.
                    Some(_) if watch_started => {
                        return Err(anyhow!(
                            "{}; the API server at {} ended the watch",
                            seen.reason(&self.kind, &query),
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
            self.explain(api, &query, seen, *attempt, stage).await;
            stage.set(format!(
                "watching {}{} at {}",
                query.resource,
                query.in_namespace(),
                api.authority()
            ));
            stage.waiting(seen.reason(&self.kind, &query));
            let applied = match stream.next().await {
                Ok(Some(event)) => self.apply(event, &query, seen, api),
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
            match seen.verdict(&self.kind, &query) {
                Verdict::Ready => return Ok(()),
                Verdict::Failed(_) => {
                    self.explain(api, &query, seen, *attempt, stage).await;
                    return Err(Failure::Permanent(anyhow!(seen.reason(&self.kind, &query))));
                }
                // Explained at the top of the loop, before waiting again.
                Verdict::NotReady(_) => {}
            }
        }
    }

    /// What an attempt would ask, and whom, as the first attempt would find them now.
    pub fn plan(&self) -> Plan {
        plan::plan(
            &self.kind,
            self.namespace.as_deref(),
            self.context.as_deref(),
        )
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
        Ok(Connected {
            api,
            namespace,
            query: None,
        })
    }

    /// What the target asks the API server for: known at once for the built-in forms,
    /// found through discovery for any other resource (not there yet: not ready).
    async fn resolve(
        &self,
        api: &Api,
        namespace: &str,
        polling: &mut bool,
        stage: &Stage,
    ) -> Result<Query, Failure> {
        Ok(match &self.kind {
            Kind::Service { name, .. } => Query::new(ENDPOINT_SLICES, namespace)
                .labels(format!("{SERVICE_NAME_LABEL}={name}")),
            Kind::Job { name } => Query::new(JOBS, namespace).named(name),
            Kind::Pods { selector, .. } => Query::new(PODS, namespace).labels(selector.clone()),
            Kind::Rollout { workload, name } => {
                Query::new(workload.resource(), namespace).named(name)
            }
            Kind::Object { wanted, pick, .. } => {
                let found = discovery::find(api, wanted, stage)
                    .await
                    .map_err(|missing| match missing {
                        Missing::NotYet(error) => Failure::NotReady(error),
                        Missing::Never(error) => Failure::Permanent(error),
                    })?;
                let resource = found.resource;
                if !resource.namespaced && self.namespace.is_some() {
                    return Err(Failure::Permanent(anyhow!(
                        "{resource} are cluster-scoped: the target names a namespace, which they do not have (write k8s://{}/NAME)",
                        wanted.name
                    )));
                }
                if !found.watchable && !*polling {
                    *polling = true;
                    warn!(
                        event = "polling",
                        target = %self.shown,
                        "{}: the API server offers no watch on {resource}, so polling instead",
                        self.shown
                    );
                }
                let query = Query::new(resource, namespace);
                match pick {
                    Pick::Named(name) => query.named(name),
                    Pick::Selected { selector, .. } => query.labels(selector.clone()),
                }
            }
        })
    }

    /// Lists the collection anew and judges it; the next attempt watches from here.
    async fn list(
        &self,
        api: &Api,
        query: &Query,
        seen: &mut Seen,
        attempt: u64,
        stage: &Stage,
    ) -> Result<(), Failure> {
        let list = api.list(query, stage).await.map_err(failure)?;
        seen.objects = list
            .items
            .into_iter()
            .map(|object| (readiness::meta(&object).name, object))
            .collect();
        seen.resource_version = Some(list.metadata.resource_version);
        seen.remember_uid();
        if seen.verdict(&self.kind, query) != Verdict::Ready {
            self.explain(api, query, seen, attempt, stage).await;
        }
        match seen.verdict(&self.kind, query) {
            Verdict::Ready => Ok(()),
            Verdict::Failed(words) => Err(Failure::Permanent(anyhow!(words))),
            Verdict::NotReady(words) => Err(anyhow!(words).into()),
        }
    }

    /// Reads what makes the reason exact, when it is due: a Service target's Service
    /// object, a rollout's pods. A refusal costs nothing but the detail.
    async fn explain(
        &self,
        api: &Api,
        query: &Query,
        seen: &mut Seen,
        attempt: u64,
        stage: &Stage,
    ) {
        let namespace = query.namespace.clone().unwrap_or_default();
        match &self.kind {
            Kind::Service { name, port, min } => {
                let situation = service::situation(port.as_deref(), *min, &seen.objects());
                let Some(situation) = seen.service.due(situation) else {
                    return;
                };
                let asking = service::Asking {
                    api,
                    namespace: &namespace,
                    name,
                    target: &self.shown,
                    reason: seen.reason(&self.kind, query),
                };
                seen.service.refresh(situation, asking, stage).await;
            }
            Kind::Rollout { workload, name } => {
                let objects = seen.objects();
                let judged = rollout::judge(*workload, &query.object(name), &objects, &[]);
                let Some(object) = objects.first() else {
                    return;
                };
                let version = readiness::meta(object).resource_version;
                let Some(selector) = rollout::pod_selector(object) else {
                    return;
                };
                if !judged.held_by_pods || !seen.pods.due(attempt, &version) {
                    return;
                }
                let asking = rollout::Asking {
                    api,
                    namespace: &namespace,
                    selector,
                    target: &self.shown,
                    reason: seen.reason(&self.kind, query),
                };
                seen.pods.refresh(attempt, &version, asking, stage).await;
            }
            _ => {}
        }
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
                Err(anyhow!(seen.reason(&self.kind, query)).into())
            }
            Err(ApiError::Gone) => Err(self.list_again(query, seen)),
            Err(other) => Err(failure(other)),
        }
    }

    /// Takes one watch event into what is known. An ERROR event ends the watch.
    fn apply(
        &self,
        event: Event,
        query: &Query,
        seen: &mut Seen,
        api: &Api,
    ) -> Result<(), Failure> {
        match event {
            Event::Changed(object) => {
                let meta = readiness::meta(&object);
                seen.resource_version = Some(meta.resource_version);
                seen.objects.insert(meta.name, object);
                seen.remember_uid();
            }
            Event::Deleted(object) => {
                let meta = readiness::meta(&object);
                seen.resource_version = Some(meta.resource_version);
                seen.objects.remove(&meta.name);
            }
            Event::Bookmark(at) => seen.resource_version = Some(at),
            Event::Error(status) if status.code == 410 => {
                return Err(self.list_again(query, seen));
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
    fn list_again(&self, query: &Query, seen: &mut Seen) -> Failure {
        seen.resource_version = None;
        anyhow!(
            "{}; the watch history expired (410 Gone), listing again",
            seen.reason(&self.kind, query)
        )
        .into()
    }
}

impl fmt::Display for K8s {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A failed request: not ready, unless the credentials cannot be had at all.
fn failure(error: ApiError) -> Failure {
    match error {
        ApiError::Credentials(error) => Failure::Permanent(error),
        other => Failure::NotReady(other.into()),
    }
}
