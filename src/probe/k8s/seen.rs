//! What a k8s target knows of the objects it watches (as the last list and the watch
//! events since made them), with what its helper reads found, and the verdict on it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::forms::Kind;
use super::object::{self, Words};
use super::readiness::{self, Verdict};
use super::rollout;
use super::service;
use crate::kube::resource::Query;

/// The watched collection as last sent.
#[derive(Default)]
pub struct Seen {
    /// The objects by name.
    pub objects: BTreeMap<String, Value>,
    /// Where the objects are at: None until listed, and again after a 410 Gone.
    pub resource_version: Option<String>,
    /// The uid of the named object when first seen: one of the same name with another uid
    /// was deleted and created again.
    pub first_uid: Option<String>,
    /// A Service target's Service object, read for the words of its reason.
    pub service: service::Lookup,
    /// A rollout target's pods, read to name those holding it back.
    pub pods: rollout::Pods,
}

impl Seen {
    pub fn objects(&self) -> Vec<&Value> {
        self.objects.values().collect()
    }

    pub fn remember_uid(&mut self) {
        if self.first_uid.is_none() {
            self.first_uid = self
                .objects
                .values()
                .next()
                .map(|object| readiness::meta(object).uid);
        }
    }

    pub fn verdict(&self, kind: &Kind, query: &Query) -> Verdict {
        let objects = self.objects();
        match kind {
            Kind::Service { name, port, min } => service::judge(
                &query.object(name),
                port.as_deref(),
                *min,
                &objects,
                &self.service.known,
            ),
            Kind::Job { name } => readiness::job(&query.object(name), &objects),
            Kind::Pods { selector, min } => readiness::pods(
                &format!("{selector}{}", query.in_namespace()),
                *min,
                &objects,
            ),
            Kind::Rollout { workload, name } => {
                rollout::judge(
                    *workload,
                    &query.object(name),
                    &objects,
                    &self.pods.troubles,
                )
                .verdict
            }
            Kind::Object { pick, check, .. } => {
                let resource = &query.resource;
                let words = Words {
                    kind: &resource.kind,
                    plural: &resource.plural,
                    in_namespace: &query.in_namespace(),
                    prefix: &query.object(""),
                    pods: resource.group.is_empty() && resource.plural == "pods",
                };
                object::judge(&words, pick, check, &objects, self.first_uid.as_deref())
            }
        }
    }

    /// Why the target is not ready, as far as what was seen tells.
    pub fn reason(&self, kind: &Kind, query: &Query) -> String {
        match self.verdict(kind, query) {
            Verdict::NotReady(words) | Verdict::Failed(words) => words,
            Verdict::Ready => "ready".to_string(),
        }
    }
}
