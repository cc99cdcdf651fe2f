//! Finding a resource by the word a user wrote (`certificate`, `certificates.cert-manager.io`,
//! `deploy`, `node`), as kubectl does: the API server's discovery documents (`/api/v1`,
//! `/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`) say which group serves it, in which
//! version, under which plural, and whether its objects live in a namespace.
//!
//! The core group is searched first, then every group in the order the server lists them,
//! each in its preferred version (then its others), as kubectl's resource mapper orders
//! them. A word is a resource's plural, its singular, its kind in lower case, or one of
//! its short names. A group in the target (`RESOURCE.GROUP`) makes it two small requests,
//! and `#version=` one. Every signed-in user may read these documents (the ClusterRole
//! `system:discovery`), so no Role rule is needed.

use anyhow::anyhow;
use serde::Deserialize;

use crate::attempt::Stage;
use crate::kube::api::{Api, ApiError};
use crate::kube::resource::{LIST_WATCH, Resource, null_as_default};

/// What the target names: `certificates.cert-manager.io` with `#version=v1` is
/// `{name: "certificates", group: Some("cert-manager.io"), version: Some("v1")}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub group: Option<String>,
    pub version: Option<String>,
}

impl Wanted {
    /// Splits `RESOURCE[.GROUP]` at its first dot, as kubectl does.
    pub fn parse(word: &str, version: Option<String>) -> Wanted {
        let (name, group) = match word.split_once('.') {
            Some((name, group)) => (name, Some(group.to_string())),
            None => (word, None),
        };
        Wanted {
            name: name.to_string(),
            group,
            version,
        }
    }
}

/// A resource found, and whether it can be watched (some can only be listed).
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub resource: Resource,
    pub watchable: bool,
}

/// Why a resource was not found: not there (yet; a CustomResourceDefinition installed
/// moments later is found on the next attempt), or found but not usable.
pub enum Missing {
    NotYet(anyhow::Error),
    Never(anyhow::Error),
}

impl From<ApiError> for Missing {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Credentials(error) => Missing::Never(error),
            other => Missing::NotYet(other.into()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ResourceList {
    #[serde(deserialize_with = "null_as_default")]
    resources: Vec<ApiResource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiResource {
    name: String,
    singular_name: String,
    namespaced: bool,
    kind: String,
    #[serde(deserialize_with = "null_as_default")]
    verbs: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    short_names: Vec<String>,
}

impl ApiResource {
    fn answers_to(&self, word: &str) -> bool {
        // Subresources (`deployments/scale`) are not objects to wait for.
        !self.name.contains('/')
            && (self.name == word
                || self.singular_name == word
                || self.kind.to_lowercase() == word
                || self.short_names.iter().any(|short| short == word))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GroupList {
    #[serde(deserialize_with = "null_as_default")]
    groups: Vec<Group>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Group {
    name: String,
    #[serde(deserialize_with = "null_as_default")]
    versions: Vec<GroupVersion>,
    preferred_version: GroupVersion,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GroupVersion {
    version: String,
}

impl Group {
    /// The versions to look in: the one asked for, if the group serves it; else the
    /// preferred one first, then the others.
    fn versions(&self, wanted: Option<&str>) -> Vec<String> {
        let served = self.versions.iter().map(|version| version.version.clone());
        match wanted {
            Some(wanted) => served.filter(|version| version == wanted).collect(),
            None => {
                let preferred = self.preferred_version.version.clone();
                let mut versions = vec![preferred.clone()];
                versions.extend(served.filter(|version| *version != preferred));
                versions.retain(|version| !version.is_empty());
                versions
            }
        }
    }
}

/// Finds `wanted` on the API server.
pub async fn find(api: &Api, wanted: &Wanted, stage: &Stage) -> Result<Found, Missing> {
    let version = wanted.version.as_deref();
    let mut places: Vec<(String, Vec<String>)> = Vec::new();
    match &wanted.group {
        // Group and version named: the one resource list, nothing to find first.
        Some(group) if version.is_some() => {
            places.push((
                group.clone(),
                version.iter().map(|v| v.to_string()).collect(),
            ));
        }
        Some(group) => {
            let path = format!("/apis/{group}");
            let Some(found) = api.discover::<Group>(&path, stage).await? else {
                return Err(Missing::NotYet(anyhow!(
                    "the API server at {} serves no API group {group:?} (yet: is the CustomResourceDefinition of {} installed?)",
                    api.authority(),
                    shown(wanted)
                )));
            };
            places.push((group.clone(), versions_or_say(&found, version, api)?));
        }
        None => {
            if version.is_none_or(|version| version == "v1") {
                places.push((String::new(), vec!["v1".to_string()]));
            }
            let groups = api
                .discover::<GroupList>("/apis", stage)
                .await?
                .unwrap_or_default();
            places.extend(
                groups
                    .groups
                    .iter()
                    .map(|group| (group.name.clone(), group.versions(version))),
            );
        }
    }
    // Preferred versions of every group first, then the others.
    let rounds = places.iter().map(|(_, versions)| versions.len()).max();
    for round in 0..rounds.unwrap_or(0) {
        for (group, versions) in &places {
            let Some(version) = versions.get(round) else {
                continue;
            };
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let Some(list) = api.discover::<ResourceList>(&path, stage).await? else {
                continue;
            };
            if let Some(found) = list
                .resources
                .into_iter()
                .find(|resource| resource.answers_to(&wanted.name))
            {
                return usable(found, group, version, wanted);
            }
        }
    }
    Err(Missing::NotYet(anyhow!(
        "the API server at {} serves no resource {}{} (yet: is its CustomResourceDefinition installed?)",
        api.authority(),
        shown(wanted),
        version
            .map(|version| format!(" in version {version}"))
            .unwrap_or_default()
    )))
}

fn versions_or_say(
    group: &Group,
    version: Option<&str>,
    api: &Api,
) -> Result<Vec<String>, Missing> {
    let versions = group.versions(version);
    if versions.is_empty() {
        let served: Vec<&str> = group
            .versions
            .iter()
            .map(|version| version.version.as_str())
            .collect();
        return Err(Missing::NotYet(anyhow!(
            "the API server at {} serves API group {:?} in {} only, not in {}",
            api.authority(),
            group.name,
            served.join(", "),
            version.unwrap_or_default()
        )));
    }
    Ok(versions)
}

fn usable(
    found: ApiResource,
    group: &str,
    version: &str,
    wanted: &Wanted,
) -> Result<Found, Missing> {
    let verbs = &found.verbs;
    let resource = Resource {
        group: group.to_string().into(),
        version: version.to_string().into(),
        plural: found.name.clone().into(),
        kind: found.kind.clone().into(),
        namespaced: found.namespaced,
        verbs: LIST_WATCH,
    };
    if !verbs.iter().any(|verb| verb == "list") {
        return Err(Missing::Never(anyhow!(
            "{resource} cannot be listed (the API server allows only {} on it), so {} cannot be waited for",
            verbs.join(", "),
            shown(wanted)
        )));
    }
    Ok(Found {
        watchable: verbs.iter().any(|verb| verb == "watch"),
        resource,
    })
}

/// `"certificate"`, `"certificates.cert-manager.io"`: the resource as the target wrote it.
fn shown(wanted: &Wanted) -> String {
    match &wanted.group {
        Some(group) => format!("\"{}.{group}\"", wanted.name),
        None => format!("\"{}\"", wanted.name),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn words_split_and_match_as_kubectl_reads_them() {
        assert_eq!(
            Wanted::parse("certificates.cert-manager.io", Some("v1".into())),
            Wanted {
                name: "certificates".into(),
                group: Some("cert-manager.io".into()),
                version: Some("v1".into())
            }
        );
        assert_eq!(Wanted::parse("node", None).group, None);
        let deployments: ApiResource = serde_json::from_value(json!({"name": "deployments",
            "singularName": "deployment", "namespaced": true, "kind": "Deployment",
            "verbs": ["create", "get", "list", "watch"], "shortNames": ["deploy"]}))
        .unwrap();
        for word in ["deployments", "deployment", "deploy"] {
            assert!(deployments.answers_to(word), "{word}");
        }
        assert!(!deployments.answers_to("deploys"));
        let scale: ApiResource = serde_json::from_value(json!({"name": "deployments/scale",
            "singularName": "", "namespaced": true, "kind": "Scale", "verbs": ["get"]}))
        .unwrap();
        assert!(!scale.answers_to("scale"));
        // Older servers and some CRDs leave singularName empty: the kind answers.
        let old: ApiResource = serde_json::from_value(json!({"name": "certificates",
            "singularName": "", "namespaced": true, "kind": "Certificate", "verbs": null,
            "shortNames": null}))
        .unwrap();
        assert!(old.answers_to("certificate"));
    }

    #[test]
    fn versions_preferred_first_or_the_one_asked_for() {
        let group: Group = serde_json::from_value(json!({"name": "cert-manager.io",
            "versions": [{"groupVersion": "cert-manager.io/v1", "version": "v1"},
                         {"groupVersion": "cert-manager.io/v1alpha2", "version": "v1alpha2"}],
            "preferredVersion": {"groupVersion": "cert-manager.io/v1", "version": "v1"}}))
        .unwrap();
        assert_eq!(group.versions(None), ["v1", "v1alpha2"]);
        assert_eq!(group.versions(Some("v1alpha2")), ["v1alpha2"]);
        assert!(group.versions(Some("v2")).is_empty());
    }

    #[test]
    fn a_resource_that_cannot_be_listed_is_refused_for_good() {
        let wanted = Wanted::parse("tokenreviews", None);
        let reviews: ApiResource = serde_json::from_value(json!({"name": "tokenreviews",
            "singularName": "tokenreview", "namespaced": false, "kind": "TokenReview",
            "verbs": ["create"]}))
        .unwrap();
        match usable(reviews, "authentication.k8s.io", "v1", &wanted) {
            Err(Missing::Never(error)) => assert_eq!(
                error.to_string(),
                "tokenreviews.authentication.k8s.io cannot be listed (the API server allows only create on it), so \"tokenreviews\" cannot be waited for"
            ),
            _ => panic!("accepted"),
        }
        let nodes: ApiResource = serde_json::from_value(json!({"name": "nodes",
            "singularName": "node", "namespaced": false, "kind": "Node",
            "verbs": ["get", "list"]}))
        .unwrap();
        let found = usable(nodes, "", "v1", &Wanted::parse("node", None))
            .ok()
            .unwrap();
        assert!(!found.watchable);
        assert!(!found.resource.namespaced);
        assert_eq!(found.resource.api(), "/api/v1");
    }
}
