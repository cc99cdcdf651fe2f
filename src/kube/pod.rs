//! Which pod holdup runs in, so that it can speak about itself to the API server: the name
//! and namespace the downward API gives (`POD_NAME`, `POD_NAMESPACE`, and `POD_UID` when
//! mapped), else the hostname (a pod's hostname is its name unless `spec.hostname` says
//! otherwise) and the service account's namespace file.
//!
//! Outside a pod (no `KUBERNETES_SERVICE_HOST`, or no mounted service account) there is no
//! pod to speak of: a kubeconfig's user on a laptop or in CI is not a pod.

use std::path::PathBuf;

use super::config::SERVICE_ACCOUNT_DIR;

/// The pod holdup runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    /// `metadata.uid` when the downward API maps it (`POD_UID`): an Event that names it
    /// cannot be mistaken for one about an earlier pod of the same name.
    pub uid: Option<String>,
    /// Where the name and namespace came from, for messages and --dry-run.
    pub from: String,
}

/// The variables and files that say which pod this is, read once.
#[derive(Clone, Debug, Default)]
pub struct PodEnvironment {
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
    pub hostname: Option<String>,
    pub service_host: Option<String>,
    pub service_account_dir: PathBuf,
}

impl PodEnvironment {
    pub fn from_process() -> PodEnvironment {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        PodEnvironment {
            pod_name: var("POD_NAME"),
            pod_namespace: var("POD_NAMESPACE"),
            pod_uid: var("POD_UID"),
            hostname: var("HOSTNAME").or_else(system_hostname),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_account_dir: var("HOLDUP_SERVICE_ACCOUNT_DIR")
                .map_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR), PathBuf::from),
        }
    }
}

/// The pod holdup runs in, or None when it does not run in one (or cannot tell which).
pub fn identify(environment: &PodEnvironment) -> Option<Pod> {
    environment.service_host.as_ref()?;
    let dir = &environment.service_account_dir;
    if !dir.join("token").is_file() {
        return None;
    }
    let namespace_file = dir.join("namespace");
    let (namespace, namespace_from) = match &environment.pod_namespace {
        Some(namespace) => (namespace.clone(), "POD_NAMESPACE".to_string()),
        None => (
            std::fs::read_to_string(&namespace_file)
                .ok()
                .map(|text| text.trim().to_string())
                .filter(|namespace| !namespace.is_empty())?,
            namespace_file.display().to_string(),
        ),
    };
    let (name, name_from) = match (&environment.pod_name, &environment.hostname) {
        (Some(name), _) => (name.clone(), "POD_NAME"),
        (None, Some(hostname)) => (hostname.clone(), "the hostname"),
        (None, None) => return None,
    };
    Some(Pod {
        name,
        namespace,
        uid: environment.pod_uid.clone(),
        from: format!("{name_from} and {namespace_from}"),
    })
}

/// The kernel's hostname, for containers started without a HOSTNAME variable.
fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_account(namespace: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "t").unwrap();
        if let Some(namespace) = namespace {
            std::fs::write(dir.path().join("namespace"), format!("{namespace}\n")).unwrap();
        }
        dir
    }

    fn environment(dir: &tempfile::TempDir) -> PodEnvironment {
        PodEnvironment {
            hostname: Some("web-7d9f-x2x".into()),
            service_host: Some("10.0.0.1".into()),
            service_account_dir: dir.path().to_path_buf(),
            ..PodEnvironment::default()
        }
    }

    #[test]
    fn the_downward_api_comes_first() {
        let dir = service_account(Some("shop"));
        let pod = identify(&PodEnvironment {
            pod_name: Some("web-0".into()),
            pod_namespace: Some("prod".into()),
            pod_uid: Some("1f2e".into()),
            ..environment(&dir)
        })
        .unwrap();
        assert_eq!(
            (
                pod.name.as_str(),
                pod.namespace.as_str(),
                pod.uid.as_deref()
            ),
            ("web-0", "prod", Some("1f2e"))
        );
        assert_eq!(pod.from, "POD_NAME and POD_NAMESPACE");
    }

    #[test]
    fn else_the_hostname_and_the_service_accounts_namespace() {
        let dir = service_account(Some("shop"));
        let pod = identify(&environment(&dir)).unwrap();
        assert_eq!(
            (pod.name.as_str(), pod.namespace.as_str()),
            ("web-7d9f-x2x", "shop")
        );
        assert_eq!(pod.uid, None);
        assert!(pod.from.starts_with("the hostname and "), "{}", pod.from);
    }

    #[test]
    fn no_pod_outside_a_cluster_or_without_a_namespace() {
        let dir = service_account(Some("shop"));
        let outside = PodEnvironment {
            service_host: None,
            ..environment(&dir)
        };
        assert_eq!(identify(&outside), None);
        let no_token = tempfile::tempdir().unwrap();
        assert_eq!(identify(&environment(&no_token)), None);
        let no_namespace = service_account(None);
        assert_eq!(identify(&environment(&no_namespace)), None);
        let no_name = PodEnvironment {
            hostname: None,
            ..environment(&dir)
        };
        assert_eq!(identify(&no_name), None);
    }
}
