//! The resources the stand-in API server serves, and its discovery documents in the API
//! reference's shapes: `APIVersions` (`/api`), `APIGroupList` (`/apis`), `APIGroup`
//! (`/apis/GROUP`) and `APIResourceList` (`/api/v1`, `/apis/GROUP/VERSION`), subresources
//! included, as a real server lists them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The kinds of object the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    EndpointSlice,
    Job,
    Pod,
    Service,
    Deployment,
    StatefulSet,
    DaemonSet,
    Node,
    /// cert-manager's Certificate, a custom resource.
    Certificate,
    /// events.k8s.io/v1 Event.
    Event,
    /// The core group's v1 Event.
    CoreEvent,
}

pub const KINDS: &[Kind] = &[
    Kind::EndpointSlice,
    Kind::Job,
    Kind::Pod,
    Kind::Service,
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Node,
    Kind::Certificate,
    Kind::Event,
    Kind::CoreEvent,
];

/// What discovery says of a kind.
pub struct Type {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources, as `deployments/status` entries of the resource list.
    pub subresources: &'static [&'static str],
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Kind {
    pub fn info(self) -> Type {
        let t = |group, version, plural, singular, kind, short_names, subresources| Type {
            group,
            version,
            plural,
            singular,
            kind,
            namespaced: true,
            short_names,
            subresources,
        };
        match self {
            Kind::EndpointSlice => t(
                "discovery.k8s.io",
                "v1",
                "endpointslices",
                "endpointslice",
                "EndpointSlice",
                &[],
                &[],
            ),
            Kind::Job => t("batch", "v1", "jobs", "job", "Job", &[], &["status"]),
            Kind::Pod => t("", "v1", "pods", "pod", "Pod", &["po"], &["log", "status"]),
            Kind::Service => t(
                "",
                "v1",
                "services",
                "service",
                "Service",
                &["svc"],
                &["status"],
            ),
            Kind::Deployment => t(
                "apps",
                "v1",
                "deployments",
                "deployment",
                "Deployment",
                &["deploy"],
                &["scale", "status"],
            ),
            Kind::StatefulSet => t(
                "apps",
                "v1",
                "statefulsets",
                "statefulset",
                "StatefulSet",
                &["sts"],
                &["scale", "status"],
            ),
            Kind::DaemonSet => t(
                "apps",
                "v1",
                "daemonsets",
                "daemonset",
                "DaemonSet",
                &["ds"],
                &["status"],
            ),
            Kind::Node => Type {
                namespaced: false,
                ..t("", "v1", "nodes", "node", "Node", &["no"], &["status"])
            },
            Kind::Certificate => t(
                "cert-manager.io",
                "v1",
                "certificates",
                "certificate",
                "Certificate",
                &["cert", "certs"],
                &["status"],
            ),
            Kind::Event => t(
                "events.k8s.io",
                "v1",
                "events",
                "event",
                "Event",
                &["ev"],
                &[],
            ),
            Kind::CoreEvent => t("", "v1", "events", "event", "Event", &["ev"], &[]),
        }
    }

    pub fn plural(self) -> &'static str {
        self.info().plural
    }

    pub fn group(self) -> &'static str {
        self.info().group
    }

    pub fn name(self) -> &'static str {
        self.info().kind
    }

    pub fn namespaced(self) -> bool {
        self.info().namespaced
    }

    pub fn api_version(self) -> String {
        let info = self.info();
        if info.group.is_empty() {
            info.version.to_string()
        } else {
            format!("{}/{}", info.group, info.version)
        }
    }

    /// The kind served under `/api/v1` or `/apis/GROUP/VERSION` (given as `api/v1`,
    /// `apis/apps/v1`) as `plural`.
    pub fn from_path(api: &str, plural: &str, served: &BTreeSet<Kind>) -> Option<Kind> {
        served.iter().copied().find(|kind| {
            let info = kind.info();
            let prefix = if info.group.is_empty() {
                format!("api/{}", info.version)
            } else {
                format!("apis/{}/{}", info.group, info.version)
            };
            prefix == api && info.plural == plural
        })
    }
}

/// Groups in the order a real server lists them: built-in groups first, custom resources
/// last.
const GROUPS: &[&str] = &[
    "apps",
    "events.k8s.io",
    "batch",
    "discovery.k8s.io",
    "cert-manager.io",
];

fn group_json(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [version.clone()], "preferredVersion": version})
}

fn served_groups(served: &BTreeSet<Kind>) -> Vec<&'static str> {
    GROUPS
        .iter()
        .copied()
        .filter(|group| served.iter().any(|kind| kind.group() == *group))
        .collect()
}

/// The discovery document at `path` (without its leading `/`), if it is one.
pub fn document(path: &str, served: &BTreeSet<Kind>) -> Option<Value> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["api"] => Some(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}],
        })),
        ["api", "v1"] => Some(resource_list("", "v1", served)),
        ["apis"] => Some(json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": served_groups(served).iter().map(|group| group_json(group)).collect::<Vec<_>>(),
        })),
        ["apis", group] if served_groups(served).contains(group) => {
            let mut document = group_json(group);
            document["kind"] = json!("APIGroup");
            document["apiVersion"] = json!("v1");
            Some(document)
        }
        ["apis", group, "v1"] if served_groups(served).contains(group) => {
            Some(resource_list(group, "v1", served))
        }
        _ => None,
    }
}

fn resource_list(group: &str, version: &str, served: &BTreeSet<Kind>) -> Value {
    let mut resources = Vec::new();
    for kind in served.iter().filter(|kind| kind.group() == group) {
        let info = kind.info();
        let mut resource = json!({
            "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
            "kind": info.kind, "verbs": VERBS, "storageVersionHash": "aBcDeFgHiJk=",
        });
        if !info.short_names.is_empty() {
            resource["shortNames"] = json!(info.short_names);
        }
        if (info.group.is_empty() && info.plural != "events") || info.group == "apps" {
            resource["categories"] = json!(["all"]);
        }
        resources.push(resource);
        for sub in info.subresources {
            resources.push(json!({
                "name": format!("{}/{sub}", info.plural), "singularName": "",
                "namespaced": info.namespaced, "kind": if *sub == "scale" { "Scale" } else { info.kind },
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}
