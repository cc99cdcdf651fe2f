//! Kubernetes Events on the pod holdup runs in, so that `kubectl describe pod` says why a
//! pod sits in `Init:0/1`: `Waiting` when a target's reason first appears or changes,
//! `Ready` when it is ready, `NotReady` (a warning) for each target not ready at the end.
//! While holdup keeps running (`--serve`, `--pod-condition`), `Ready` and `NotReady` say
//! each time a target becomes ready or stops being so.
//!
//! Events go through `events.k8s.io/v1`, or the core `v1` Events of older API servers (a
//! 404 or 403 on the first moves to them for good). A target posts at most one `Waiting`
//! every 10 s; a reason that comes back updates the count of its earlier Event (the
//! `series` of an events.k8s.io Event, the `count` of a core one), which kubectl shows as
//! "(x5 over 2m)". Nothing here holds the wait back: Events are followed beside it, each
//! request has its own short timeout, errors are said at debug level, and a 403 is said
//! once, as a warning with the Role rule to add, after which no more is posted.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, warn};

use crate::attempt::Stage;
use crate::board::Board;
use crate::kube::api::{Api, ApiError};
use crate::kube::config::{self, Environment};
use crate::kube::pod::{self, Pod, PodEnvironment};
use crate::kube::resource::{CORE_EVENTS, EVENTS, Query};
use crate::log::human;
use crate::net::Net;
use crate::probe::Target;
use crate::schedule::attempts;
use crate::summary::{Ending, Summary, ready_words};

/// At most one `Waiting` Event per target in this time.
pub const PER_TARGET: Duration = Duration::from_secs(10);
/// How often the targets' records are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// The longest one request about an Event may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// The longest the last Events may hold up the exit or the exec.
const FINISH_LIMIT: Duration = Duration::from_secs(2);
/// What the API server keeps of a note.
const NOTE_LIMIT: usize = 1024;
/// Who posts the Events, as `kubectl describe` shows it ("From").
const CONTROLLER: &str = "holdup";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// events.k8s.io/v1.
    Events,
    /// Core v1 Events, for API servers without the other.
    Core,
}

/// An Event posted, which a reason that comes back counts on.
struct Posted {
    name: String,
    group: Group,
    count: u32,
}

/// What is known of one target's Events.
#[derive(Default)]
struct Followed {
    /// The reason the last `Waiting` said.
    said: Option<String>,
    last_waiting: Option<Instant>,
    /// Earlier `Waiting` Events by reason.
    posted: BTreeMap<String, Posted>,
    ready_said: bool,
}

/// Posts the Events of one run on its pod.
pub struct PodEvents {
    api: Api,
    pod: Pod,
    group: Group,
    /// A 403 was said: no more is posted.
    stopped: bool,
    /// The first Event has gone through: the group is settled.
    settled: bool,
    followed: Vec<Followed>,
    made: u32,
}

impl PodEvents {
    /// Events for this run, when holdup runs in a pod and they are not turned off.
    pub fn start(no_events: bool, targets: usize, net: &Net) -> Option<PodEvents> {
        if no_events {
            return None;
        }
        let pod = pod::identify(&PodEnvironment::from_process())?;
        let api = config::in_cluster_connection(&Environment::from_process())
            .and_then(|connection| Api::new(connection, net));
        let api = match api {
            Ok(api) => api,
            Err(error) => {
                debug!(event = "events", "no Events on the pod: {error:#}");
                return None;
            }
        };
        debug!(
            event = "events",
            pod = %format!("{}/{}", pod.namespace, pod.name),
            "posting Events on pod {}/{} (from {})",
            pod.namespace,
            pod.name,
            pod.from
        );
        Some(PodEvents {
            api,
            pod,
            group: Group::Events,
            stopped: false,
            settled: false,
            followed: (0..targets).map(|_| Followed::default()).collect(),
            made: 0,
        })
    }

    /// Follows the targets' records and posts what changes; never ends on its own.
    pub async fn follow(&mut self, targets: &[Target], board: &Board) -> Infallible {
        loop {
            for (index, target) in targets.iter().enumerate() {
                if self.stopped {
                    break;
                }
                // Copied out: a record is never borrowed across a request.
                let (ready_after, tries, reason) = {
                    let record = board.record(index);
                    (
                        record.ready_after,
                        record.attempts,
                        record.last_error.clone(),
                    )
                };
                let followed = &self.followed[index];
                if let Some(after) = ready_after {
                    if !followed.ready_said {
                        self.followed[index].ready_said = true;
                        let note = format!(
                            "{target} {} after {} ({})",
                            ready_words(target.wait_options().down),
                            human(after),
                            attempts(tries)
                        );
                        self.post("Ready", "Normal", note).await;
                    }
                    continue;
                }
                let Some(reason) = reason else { continue };
                let due = followed
                    .last_waiting
                    .is_none_or(|last| last.elapsed() >= PER_TARGET);
                if followed.said.as_deref() == Some(reason.as_str()) || !due {
                    continue;
                }
                self.waiting(index, target, reason).await;
            }
            sleep(LOOK_EVERY).await;
        }
    }

    /// While holdup keeps running (`--serve`, `--pod-condition`): `Ready` when a target
    /// becomes ready, `NotReady` (a warning, with why) when one that was ready no longer
    /// is. `not_ready(index)` is a target's reason while it is not ready. Never ends.
    pub async fn follow_changes(
        &mut self,
        targets: &[Target],
        not_ready: impl Fn(usize) -> Option<String>,
    ) -> Infallible {
        let mut ready = vec![false; targets.len()];
        loop {
            for (index, target) in targets.iter().enumerate() {
                if self.stopped {
                    break;
                }
                match (ready[index], not_ready(index)) {
                    (false, None) => {
                        ready[index] = true;
                        self.post("Ready", "Normal", format!("{target} ready"))
                            .await;
                    }
                    (true, Some(reason)) => {
                        ready[index] = false;
                        let note = format!("{target} not ready: {reason}");
                        self.post("NotReady", "Warning", note).await;
                    }
                    _ => {}
                }
            }
            sleep(LOOK_EVERY).await;
        }
    }

    /// The last Events: `Ready` for a target whose one was not posted yet, `NotReady` for
    /// each target not ready when the wait failed. Bounded, so that neither the exit nor
    /// the exec waits long on the API server.
    pub async fn finish(&mut self, targets: &[Target], summary: &Summary) {
        let finishing = async {
            for (index, end) in summary.targets.iter().enumerate() {
                if self.stopped {
                    break;
                }
                match (&end.reason, end.ready_after) {
                    (None, Some(after)) if !self.followed[index].ready_said => {
                        self.followed[index].ready_said = true;
                        let note = format!(
                            "{} {} after {} ({})",
                            targets[index],
                            ready_words(end.goal.down),
                            human(after),
                            attempts(end.attempts)
                        );
                        self.post("Ready", "Normal", note).await;
                    }
                    // A target not needed held nothing back: nothing to warn of.
                    (Some(_), _) if summary.ending != Ending::Ready && !end.not_needed => {
                        let line = summary.target_line(end);
                        self.post("NotReady", "Warning", line).await;
                    }
                    _ => {}
                }
            }
        };
        if timeout(FINISH_LIMIT, finishing).await.is_err() {
            debug!(
                event = "events",
                "the last Events took too long; left unsaid"
            );
        }
    }

    /// A `Waiting` for a target whose reason is new or changed: a new Event, or one more
    /// on the Event of a reason said before.
    async fn waiting(&mut self, index: usize, target: &Target, reason: String) {
        let followed = &mut self.followed[index];
        followed.said = Some(reason.clone());
        followed.last_waiting = Some(Instant::now());
        if let Some(posted) = followed.posted.get_mut(&reason) {
            posted.count += 1;
            let (name, group, count) = (posted.name.clone(), posted.group, posted.count);
            if self.count_again(&name, group, count).await {
                return;
            }
            // The Event is gone (Events live an hour): a new one.
            self.followed[index].posted.remove(&reason);
        }
        let note = format!("waiting for {target}: {reason}");
        if let Some(posted) = self.post("Waiting", "Normal", note).await {
            self.followed[index].posted.insert(reason, posted);
        }
    }

    /// Posts a new Event on the pod; the Event made, or None.
    async fn post(&mut self, reason: &str, kind: &str, note: String) -> Option<Posted> {
        let note = cut(&note, NOTE_LIMIT);
        loop {
            let group = self.group;
            let name = self.next_name();
            let (query, object) = match group {
                Group::Events => (
                    Query::new(EVENTS, &self.pod.namespace),
                    self.event(&name, reason, kind, &note),
                ),
                Group::Core => (
                    Query::new(CORE_EVENTS, &self.pod.namespace),
                    self.core_event(&name, reason, kind, &note),
                ),
            };
            let stage = Stage::default();
            let made = timeout(REQUEST_LIMIT, self.api.create(&query, &object, &stage)).await;
            match made {
                Ok(Ok(_)) => {
                    self.settled = true;
                    return Some(Posted {
                        name,
                        group,
                        count: 1,
                    });
                }
                // An API server without events.k8s.io/v1, or a Role that grants only the
                // core group's Events: the core group, from now on.
                Ok(Err(ApiError::Forbidden(_) | ApiError::Other(_)))
                    if group == Group::Events && !self.settled =>
                {
                    self.group = Group::Core;
                }
                Ok(Err(ApiError::Forbidden(words))) => {
                    self.forbidden(&words);
                    return None;
                }
                Ok(Err(error)) => {
                    let error = anyhow::Error::from(error);
                    debug!(event = "events", "cannot post a {reason} Event: {error:#}");
                    return None;
                }
                Err(_) => {
                    debug!(
                        event = "events",
                        "posting a {reason} Event took over {}",
                        human(REQUEST_LIMIT)
                    );
                    return None;
                }
            }
        }
    }

    /// Counts one more on an Event; false when it is gone.
    async fn count_again(&mut self, name: &str, group: Group, count: u32) -> bool {
        let (query, patch) = match group {
            Group::Events => (
                Query::new(EVENTS, &self.pod.namespace),
                json!({"series": {"count": count, "lastObservedTime": micro_time(SystemTime::now())}}),
            ),
            Group::Core => (
                Query::new(CORE_EVENTS, &self.pod.namespace),
                json!({"count": count, "lastTimestamp": time(SystemTime::now())}),
            ),
        };
        let stage = Stage::default();
        let patched = timeout(
            REQUEST_LIMIT,
            self.api.merge_patch(&query, name, &patch, &stage),
        )
        .await;
        match patched {
            Ok(Ok(_)) => true,
            Ok(Err(ApiError::Forbidden(words))) => {
                self.forbidden(&words);
                true
            }
            Ok(Err(ApiError::Missing)) => false,
            Ok(Err(error)) => {
                let error = anyhow::Error::from(error);
                debug!(event = "events", "cannot count on Event {name}: {error:#}");
                true
            }
            Err(_) => true,
        }
    }

    fn forbidden(&mut self, words: &str) {
        self.stopped = true;
        // The API server's words, without the rule for one group only: both are given.
        let why = words.split("; give it ").next().unwrap_or(words);
        warn!(
            event = "events_forbidden",
            "no Events on pod {}/{}: {why}; for kubectl describe pod to say why it waits, give it a Role in namespace {} with this rule: {}",
            self.pod.namespace,
            self.pod.name,
            self.pod.namespace,
            ROLE_RULE
        );
    }

    /// A name of the pod's name and the time, as the kubelet names its Events.
    fn next_name(&mut self) -> String {
        self.made += 1;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let suffix = format!(".{:x}", nanos + u128::from(self.made));
        let room = 253 - suffix.len();
        let mut base = self.pod.name.as_str();
        if base.len() > room {
            base = &base[..room];
        }
        format!("{}{suffix}", base.trim_end_matches(['.', '-']))
    }

    /// An events.k8s.io/v1 Event, in the API reference's shape.
    fn event(&self, name: &str, reason: &str, kind: &str, note: &str) -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.pod.namespace},
            "eventTime": micro_time(SystemTime::now()),
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance(),
            "action": action(reason),
            "reason": reason,
            "regarding": self.regarding(),
            "note": note,
            "type": kind,
        })
    }

    /// A core v1 Event, in the API reference's shape.
    fn core_event(&self, name: &str, reason: &str, kind: &str, note: &str) -> Value {
        let now = time(SystemTime::now());
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.pod.namespace},
            "involvedObject": self.regarding(),
            "reason": reason,
            "message": note,
            "type": kind,
            "source": {"component": CONTROLLER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        })
    }

    fn regarding(&self) -> Value {
        let mut regarding = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "name": self.pod.name,
            "namespace": self.pod.namespace,
        });
        if let Some(uid) = &self.pod.uid {
            regarding["uid"] = json!(uid);
        }
        regarding
    }

    /// Which holdup posts: one per pod, so the pod's name (kubectl's "From" column shows
    /// `holdup, POD`).
    fn instance(&self) -> String {
        cut(&self.pod.name, 128)
    }
}

/// The Role rule Events need, as one line of YAML for a Role's `rules:`.
pub const ROLE_RULE: &str = "- {apiGroups: [\"events.k8s.io\", \"\"], resources: [\"events\"], verbs: [\"create\", \"patch\"]}";

/// What the Event says holdup did: `Wait`, `Probe`, `GiveUp`.
fn action(reason: &str) -> &'static str {
    match reason {
        "Waiting" => "Wait",
        "Ready" => "Probe",
        _ => "GiveUp",
    }
}

/// A MicroTime: RFC 3339 with microseconds, as events.k8s.io wants.
fn micro_time(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// A Time: RFC 3339 in whole seconds.
fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `text` within `limit` bytes, cut at a character with `…`.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_at_a_character() {
        assert_eq!(cut("short", 1024), "short");
        let long = "é".repeat(600);
        let kept = cut(&long, 1024);
        assert!(kept.len() <= 1024);
        assert!(kept.ends_with('…'));
        assert!(kept.trim_end_matches('…').chars().all(|c| c == 'é'));
    }

    #[test]
    fn times_are_in_the_api_formats() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_783_000_123_456);
        assert_eq!(micro_time(at), "2025-12-03T17:30:00.123456Z");
        assert_eq!(time(at), "2025-12-03T17:30:00Z");
    }
}
