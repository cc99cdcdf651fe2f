//! What holdup asks the API server about, in the API's own terms: a resource (group,
//! version, plural, whether namespaced) and the objects of it a target looks at; the Role
//! rule each needs; and the JSON shapes every answer shares (lists, `Status`).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A kind of object holdup reads: where its API lives and what RBAC calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The API group, `""` for the core group.
    pub group: Cow<'static, str>,
    pub version: Cow<'static, str>,
    /// The plural name used in URLs and Role rules.
    pub plural: Cow<'static, str>,
    /// The kind of its objects, for words: `Deployment`, `Certificate`.
    pub kind: Cow<'static, str>,
    /// Cluster-scoped resources (nodes, CustomResourceDefinitions) live in no namespace.
    pub namespaced: bool,
    /// The verbs holdup uses on it, as a Role rule names them.
    pub verbs: &'static [&'static str],
}

pub const LIST_WATCH: &[&str] = &["list", "watch"];

const fn builtin(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Resource {
    Resource {
        group: Cow::Borrowed(group),
        version: Cow::Borrowed(version),
        plural: Cow::Borrowed(plural),
        kind: Cow::Borrowed(kind),
        namespaced: true,
        verbs,
    }
}

pub const ENDPOINT_SLICES: Resource = builtin(
    "discovery.k8s.io",
    "v1",
    "endpointslices",
    "EndpointSlice",
    LIST_WATCH,
);
pub const JOBS: Resource = builtin("batch", "v1", "jobs", "Job", LIST_WATCH);
pub const PODS: Resource = builtin("", "v1", "pods", "Pod", LIST_WATCH);
pub const DEPLOYMENTS: Resource = builtin("apps", "v1", "deployments", "Deployment", LIST_WATCH);
pub const STATEFUL_SETS: Resource =
    builtin("apps", "v1", "statefulsets", "StatefulSet", LIST_WATCH);
pub const DAEMON_SETS: Resource = builtin("apps", "v1", "daemonsets", "DaemonSet", LIST_WATCH);
/// Read by Service targets for the words of their reason only: may be refused.
pub const SERVICES: Resource = builtin("", "v1", "services", "Service", &["get"]);
/// `--pod-condition`: the status of holdup's own pod, patched. Its plural names the
/// subresource, as a Role rule does.
pub const POD_STATUS: Resource = builtin("", "v1", "pods/status", "Pod", &["patch"]);
/// Listed by rollout targets to name the pods that hold a rollout back: may be refused.
pub const PODS_LISTED: Resource = builtin("", "v1", "pods", "Pod", &["list"]);
/// Events holdup posts on its own pod, as `kubectl describe pod` shows them.
pub const EVENTS: Resource = builtin(
    "events.k8s.io",
    "v1",
    "events",
    "Event",
    &["create", "patch"],
);
/// The same in the core group, for API servers without events.k8s.io/v1 (before 1.19).
pub const CORE_EVENTS: Resource = builtin("", "v1", "events", "Event", &["create", "patch"]);

impl Resource {
    /// The path of its group and version: `/api/v1`, `/apis/apps/v1`.
    pub fn api(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The Role rule holdup needs for this resource, as one line of YAML that can be
    /// pasted under a Role's (or, for a cluster-scoped resource, a ClusterRole's) `rules:`.
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
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// The objects of one resource that a target looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub resource: Resource,
    /// None for a cluster-scoped resource.
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl Query {
    pub fn new(resource: Resource, namespace: &str) -> Query {
        Query {
            namespace: resource.namespaced.then(|| namespace.to_string()),
            resource,
            label_selector: None,
            field_selector: None,
        }
    }

    pub fn labels(mut self, selector: impl Into<String>) -> Query {
        self.label_selector = Some(selector.into());
        self
    }

    /// One object, by name.
    pub fn named(mut self, name: &str) -> Query {
        self.field_selector = Some(format!("metadata.name={name}"));
        self
    }

    /// ` in shop`, or nothing for a cluster-scoped resource: for stage words.
    pub fn in_namespace(&self) -> String {
        self.namespace
            .as_ref()
            .map(|namespace| format!(" in {namespace}"))
            .unwrap_or_default()
    }

    /// `shop/web`, or `worker-1` for a cluster-scoped object.
    pub fn object(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name.to_string(),
        }
    }

    /// Who to give the rule to, and where: "a Role in namespace shop", "a ClusterRole".
    pub fn role(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("a Role in namespace {namespace}"),
            None => "a ClusterRole (bound with a ClusterRoleBinding)".to_string(),
        }
    }
}

/// A 403 in words, with the rule to paste into the Role: what the API server said
/// (`User "system:serviceaccount:app:web" cannot list resource "pods" …`), then the rule.
pub fn forbidden_words(said: &Option<Status>, verb: &str, query: &Query) -> String {
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
            let place = match &query.namespace {
                Some(namespace) => format!("in namespace {namespace}"),
                None => "at the cluster scope".to_string(),
            };
            format!("not allowed to {verb} {} {place}", query.resource)
        });
    format!(
        "forbidden (403): {reason}; give it {} with this rule: {}",
        query.role(),
        query.resource.rule()
    )
}

/// Go's empty lists arrive as `null`.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
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
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListMeta {
    pub resource_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(resource: Resource) -> Query {
        Query::new(resource, "shop")
    }

    #[test]
    fn rules_are_paste_ready_yaml() {
        let cases = [
            (
                ENDPOINT_SLICES,
                r#"- {apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"]}"#,
                "endpointslices.discovery.k8s.io",
            ),
            (
                PODS,
                r#"- {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}"#,
                "pods",
            ),
            (
                SERVICES,
                r#"- {apiGroups: [""], resources: ["services"], verbs: ["get"]}"#,
                "services",
            ),
            (
                DEPLOYMENTS,
                r#"- {apiGroups: ["apps"], resources: ["deployments"], verbs: ["list", "watch"]}"#,
                "deployments.apps",
            ),
            (
                JOBS,
                r#"- {apiGroups: ["batch"], resources: ["jobs"], verbs: ["list", "watch"]}"#,
                "jobs.batch",
            ),
        ];
        for (resource, rule, shown) in cases {
            assert_eq!(resource.rule(), rule);
            assert_eq!(resource.to_string(), shown);
        }
        assert_eq!(JOBS.api(), "/apis/batch/v1");
        assert_eq!(PODS.api(), "/api/v1");
    }

    #[test]
    fn a_403_names_the_missing_rule() {
        let query = query(ENDPOINT_SLICES).labels("kubernetes.io/service-name=db");
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

    #[test]
    fn cluster_scoped_resources_have_no_namespace_and_need_a_cluster_role() {
        let nodes = Resource {
            group: "".into(),
            version: "v1".into(),
            plural: "nodes".into(),
            kind: "Node".into(),
            namespaced: false,
            verbs: LIST_WATCH,
        };
        let query = query(nodes).named("worker-1");
        assert_eq!(query.namespace, None);
        assert_eq!(query.object("worker-1"), "worker-1");
        assert_eq!(query.in_namespace(), "");
        assert_eq!(
            forbidden_words(&None, "list", &query),
            "forbidden (403): not allowed to list nodes at the cluster scope; give it a ClusterRole (bound with a ClusterRoleBinding) with this rule: - {apiGroups: [\"\"], resources: [\"nodes\"], verbs: [\"list\", \"watch\"]}"
        );
    }
}
