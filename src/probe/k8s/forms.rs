//! The forms of a `k8s://` target, read into what it waits for: a Service, a Job, pods, a
//! rollout, or any object with a condition, a JSONPath value, its existence or its deletion.
//!
//! ```text
//! k8s://[NS/]SERVICE                       a Service (also service/SERVICE)
//! k8s://[NS/]job/NAME                      a Job
//! k8s://[NS/]pods/SELECTOR                 pods
//! k8s://[NS/]deployment/NAME               a rollout (also statefulset, daemonset)
//! k8s://[NS/]RESOURCE[.GROUP]/NAME#…       one object: #condition=, #jsonpath=, #deleted, #exists
//! k8s://[NS/]RESOURCE[.GROUP]#selector=…   the objects a label selector matches, #min of them
//! ```
//!
//! A first word that names a kind (`service`, `job`, `pods`, `deployment`, … and their
//! short names) always names it. With one of the object options any resource may be named,
//! and the kind words name resources like any other (`k8s://job/migrate#deleted`).

use anyhow::{Result, anyhow, bail};
use percent_encoding::percent_decode_str;

use super::discovery::Wanted;
use super::jsonpath;
use super::names::{FORMS, Naming, check_name, check_resource, check_selector};
use super::object::{Check, Pick};
use super::rollout::Workload;
use crate::probe::options::Options;
use crate::probe::target_url;

#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
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
    Rollout {
        workload: Workload,
        name: String,
    },
    Object {
        wanted: Wanted,
        pick: Pick,
        check: Check,
    },
}

/// A target as read: what, where (None: the pod's own namespace, or the kubeconfig
/// context's), through which kubeconfig context, and how it is shown.
pub struct Form {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub shown: String,
}

/// The options that make a target one of the object forms.
const OBJECT_OPTIONS: &[&str] = &[
    "condition",
    "jsonpath",
    "deleted",
    "exists",
    "selector",
    "version",
];

pub fn parse(text: &str) -> Result<Form> {
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
        // `k8s://job/` is a Job whose name is missing, not a Service called "job".
        if let Some(word) = raw.last().filter(|word| kind_word(word).is_some()) {
            bail!("missing name after '{word}/' (expected {FORMS})");
        }
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
    let context = options.take("context")?;
    let has_object_option = OBJECT_OPTIONS.iter().any(|name| options.has(name));
    let (namespace, kind) = if has_object_option {
        object(&segments, options)?
    } else {
        builtin(&segments, options)?
    };
    if let Some(namespace) = &namespace {
        check_name(namespace, "namespace", Naming::Label)?;
    }
    Ok(Form {
        kind,
        namespace,
        context,
        shown: crate::redact::url(&url),
    })
}

/// The forms without object options: Service, Job, pods, rollouts.
fn builtin(segments: &[String], mut options: Options) -> Result<(Option<String>, Kind)> {
    let (namespace, word, name) = match segments {
        [name] => (None, "service", name),
        [word, name] if kind_word(word).is_some() => (None, word.as_str(), name),
        [namespace, name] => (Some(namespace.clone()), "service", name),
        [namespace, word, name] => (Some(namespace.clone()), word.as_str(), name),
        _ => bail!("too many parts (expected {FORMS})"),
    };
    let Some(kind) = kind_word(word) else {
        bail!(
            "unknown kind '{word}' (expected service, job, pods, deployment, statefulset or daemonset; any other resource needs #condition=, #jsonpath=, #deleted or #exists: {FORMS})"
        );
    };
    let kind = match kind {
        Word::Service => {
            check_name(name, "Service name", Naming::ServiceLabel)?;
            let port = options.take("port")?;
            // A number names the port itself; anything else is the port's name.
            if let Some(number) = port
                .as_deref()
                .filter(|port| port.bytes().all(|b| b.is_ascii_digit()))
                && !matches!(number.parse::<u16>(), Ok(1..))
            {
                bail!(
                    "invalid option 'port={number}' (expected a port name, or a number from 1 to 65535)"
                );
            }
            let min = options.take_min("min")?;
            options.finish("k8s Service", &["min", "port", "context"])?;
            Kind::Service {
                name: name.clone(),
                port,
                min,
            }
        }
        Word::Job => {
            check_name(name, "Job name", Naming::Subdomain)?;
            options.finish("k8s Job", &["context"])?;
            Kind::Job { name: name.clone() }
        }
        Word::Pods => {
            check_selector(name)?;
            let min = options.take_min("min")?;
            options.finish("k8s pods", &["min", "context"])?;
            Kind::Pods {
                selector: name.clone(),
                min,
            }
        }
        Word::Rollout(workload) => {
            let kind = workload.resource().kind;
            check_name(name, &format!("{kind} name"), Naming::Subdomain)?;
            options.finish(&format!("k8s {kind}"), &["context"])?;
            Kind::Rollout {
                workload,
                name: name.clone(),
            }
        }
    };
    Ok((namespace, kind))
}

/// The object forms: one object by name, or the objects a selector matches.
fn object(segments: &[String], mut options: Options) -> Result<(Option<String>, Kind)> {
    let selector = options.take("selector")?;
    let (namespace, resource, name) = match (&selector, segments) {
        (Some(_), [resource]) => (None, resource, None),
        (Some(_), [namespace, resource]) => (Some(namespace.clone()), resource, None),
        (Some(_), _) => bail!(
            "with #selector the target names a resource, not an object (expected k8s://[NAMESPACE/]RESOURCE#selector=SELECTOR)"
        ),
        (None, [resource, name]) => (None, resource, Some(name)),
        (None, [namespace, resource, name]) => (Some(namespace.clone()), resource, Some(name)),
        (None, [_]) => bail!(
            "name the resource of the object (expected k8s://[NAMESPACE/]RESOURCE/NAME, e.g. k8s://certificate/web#condition=Ready)"
        ),
        (None, _) => bail!("too many parts (expected {FORMS})"),
    };
    let resource = resource.to_lowercase();
    check_resource(&resource)?;
    let version = options.take("version")?;
    if let Some(version) = &version {
        let ok = version.starts_with('v')
            && version
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            bail!(
                "invalid option 'version={version}': expected an API version such as v1 or v1beta1"
            );
        }
    }
    let check = take_check(&mut options)?;
    let pick = match (name, selector) {
        (Some(name), _) => {
            check_name(name, "object name", Naming::Object)?;
            options.finish(
                "k8s object",
                &[
                    "condition",
                    "jsonpath",
                    "deleted",
                    "exists",
                    "version",
                    "context",
                ],
            )?;
            Pick::Named(name.clone())
        }
        (None, selector) => {
            let selector = selector.unwrap_or_default();
            check_selector(&selector)?;
            let given = options.has("min");
            let min = options.take_min("min")?;
            if given && check == Check::Deleted {
                bail!("#min does not go with #deleted, which waits until no object matches");
            }
            options.finish(
                "k8s selector",
                &[
                    "selector",
                    "min",
                    "condition",
                    "jsonpath",
                    "deleted",
                    "exists",
                    "version",
                    "context",
                ],
            )?;
            Pick::Selected { selector, min }
        }
    };
    Ok((
        namespace,
        Kind::Object {
            wanted: Wanted::parse(&resource, version),
            pick,
            check,
        },
    ))
}

/// At most one of #condition, #jsonpath, #deleted, #exists; #exists when none.
fn take_check(options: &mut Options) -> Result<Check> {
    let mut checks = Vec::new();
    if let Some(condition) = options.take("condition")? {
        let (kind, status) = condition.split_once('=').unwrap_or((&condition, "True"));
        if kind.is_empty() || status.is_empty() || status.contains('=') {
            bail!(
                "invalid option 'condition={condition}': expected condition=TYPE or condition=TYPE=STATUS, e.g. condition=Ready or condition=Ready=False"
            );
        }
        checks.push(Check::Condition {
            kind: kind.to_string(),
            status: status.to_string(),
        });
    }
    if let Some(text) = options.take("jsonpath")? {
        let (path, value) = jsonpath::parse_option(&text)
            .map_err(|error| error.context(format!("invalid option 'jsonpath={text}'")))?;
        checks.push(Check::JsonPath { path, value });
    }
    if options.take_switch("deleted")? {
        checks.push(Check::Deleted);
    }
    if options.take_switch("exists")? {
        checks.push(Check::Exists);
    }
    match checks.len() {
        0 => Ok(Check::Exists),
        1 => Ok(checks.remove(0)),
        _ => bail!("give one of #condition, #jsonpath, #deleted and #exists, not several"),
    }
}

enum Word {
    Service,
    Job,
    Pods,
    Rollout(Workload),
}

/// The kind a first word names, if it names one (kubectl's names and short names).
fn kind_word(word: &str) -> Option<Word> {
    Some(match word {
        "service" | "services" | "svc" => Word::Service,
        "job" | "jobs" => Word::Job,
        "pod" | "pods" | "po" => Word::Pods,
        "deployment" | "deployments" | "deploy" => Word::Rollout(Workload::Deployment),
        "statefulset" | "statefulsets" | "sts" => Word::Rollout(Workload::StatefulSet),
        "daemonset" | "daemonsets" | "ds" => Word::Rollout(Workload::DaemonSet),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, port: Option<&str>, min: u32) -> Kind {
        Kind::Service {
            name: name.into(),
            port: port.map(Into::into),
            min,
        }
    }

    fn object(resource: &str, pick: Pick, check: Check) -> Kind {
        Kind::Object {
            wanted: Wanted::parse(resource, None),
            pick,
            check,
        }
    }

    fn named(name: &str) -> Pick {
        Pick::Named(name.into())
    }

    fn condition(kind: &str, status: &str) -> Check {
        Check::Condition {
            kind: kind.into(),
            status: status.into(),
        }
    }

    #[test]
    fn accepted_forms() {
        let rollout = |workload, name: &str| Kind::Rollout {
            workload,
            name: name.into(),
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
            (
                "k8s://deployment/web",
                None,
                rollout(Workload::Deployment, "web"),
            ),
            (
                "k8s://shop/deploy/web",
                Some("shop"),
                rollout(Workload::Deployment, "web"),
            ),
            (
                "k8s://shop/statefulsets/db",
                Some("shop"),
                rollout(Workload::StatefulSet, "db"),
            ),
            (
                "k8s://kube-system/ds/agent",
                Some("kube-system"),
                rollout(Workload::DaemonSet, "agent"),
            ),
            (
                "k8s://shop/certificate/web#condition=Ready",
                Some("shop"),
                object("certificate", named("web"), condition("Ready", "True")),
            ),
            (
                "k8s://certificates.cert-manager.io/web#condition=Ready=False",
                None,
                object(
                    "certificates.cert-manager.io",
                    named("web"),
                    condition("Ready", "False"),
                ),
            ),
            (
                "k8s://node/worker-1#condition=Ready",
                None,
                object("node", named("worker-1"), condition("Ready", "True")),
            ),
            (
                "k8s://shop/job/migrate#deleted",
                Some("shop"),
                object("job", named("migrate"), Check::Deleted),
            ),
            (
                "k8s://shop/Secret/db-credentials#exists",
                Some("shop"),
                object("secret", named("db-credentials"), Check::Exists),
            ),
            (
                "k8s://clusterrole/system:aggregate-to-view#exists",
                None,
                object(
                    "clusterrole",
                    named("system:aggregate-to-view"),
                    Check::Exists,
                ),
            ),
            (
                "k8s://shop/pod/web-0#jsonpath={.status.phase}=Running",
                Some("shop"),
                object(
                    "pod",
                    named("web-0"),
                    Check::JsonPath {
                        path: jsonpath::JsonPath::parse("{.status.phase}").unwrap(),
                        value: Some("Running".into()),
                    },
                ),
            ),
            (
                "k8s://nodes#selector=node-role.kubernetes.io/worker&min=3&condition=Ready",
                None,
                object(
                    "nodes",
                    Pick::Selected {
                        selector: "node-role.kubernetes.io/worker".into(),
                        min: 3,
                    },
                    condition("Ready", "True"),
                ),
            ),
            (
                "k8s://shop/certificates#selector=app=web&deleted",
                Some("shop"),
                object(
                    "certificates",
                    Pick::Selected {
                        selector: "app=web".into(),
                        min: 1,
                    },
                    Check::Deleted,
                ),
            ),
        ];
        for (text, namespace, kind) in cases {
            let form = parse(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!(form.kind, kind, "{text}");
            assert_eq!(form.namespace.as_deref(), namespace, "{text}");
        }
        let pinned = parse("k8s://shop/certificate.cert-manager.io/web#version=v1&exists").unwrap();
        assert_eq!(
            pinned.kind,
            Kind::Object {
                wanted: Wanted {
                    name: "certificate".into(),
                    group: Some("cert-manager.io".into()),
                    version: Some("v1".into()),
                },
                pick: named("web"),
                check: Check::Exists,
            }
        );
        assert_eq!(
            parse("k8s://shop/job/m#context=ci")
                .unwrap()
                .context
                .as_deref(),
            Some("ci")
        );
        assert_eq!(
            parse("k8s://shop/certificate/web#condition=Ready")
                .unwrap()
                .shown,
            "k8s://shop/certificate/web"
        );
    }

    #[test]
    fn rejected_forms_say_why() {
        let cases = [
            ("k8s://", "empty name"),
            ("k8s://shop//db", "empty name"),
            ("k8s://a/b/c/d", "too many parts"),
            ("k8s://shop/certificate/web", "unknown kind 'certificate'"),
            ("k8s://Shop/db", "'Shop' is not a valid namespace"),
            ("k8s://shop/1db", "'1db' is not a valid Service name"),
            (
                "k8s://shop/job/Migrate",
                "'Migrate' is not a valid Job name",
            ),
            (
                "k8s://deployment/Web",
                "'Web' is not a valid Deployment name",
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
            (
                "k8s://deployment/web#min=2",
                "unknown option 'min' for k8s Deployment targets",
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
            (
                "k8s://web#condition=Ready",
                "name the resource of the object",
            ),
            ("k8s://a/b/c/d#deleted", "too many parts"),
            (
                "k8s://shop/certificate/web#condition=",
                "option 'condition' needs a value",
            ),
            (
                "k8s://shop/certificate/web#condition==True",
                "expected condition=TYPE",
            ),
            (
                "k8s://shop/certificate/web#condition=Ready=True=x",
                "expected condition=TYPE",
            ),
            (
                "k8s://shop/certificate/web#condition=Ready&deleted",
                "give one of #condition",
            ),
            (
                "k8s://shop/certificate/web#jsonpath={.status.conditions[*].status}",
                "invalid option 'jsonpath={.status.conditions[*].status}'",
            ),
            (
                "k8s://shop/certificate/web#min=2&exists",
                "unknown option 'min' for k8s object targets",
            ),
            (
                "k8s://shop/cert_ificate/web#exists",
                "'cert_ificate' is not a resource",
            ),
            (
                "k8s://shop/certificate/we%20b#exists",
                "'we b' is not a valid object name",
            ),
            (
                "k8s://shop/certificate/web#version=1&exists",
                "invalid option 'version=1'",
            ),
            (
                "k8s://shop/certificate/web#selector=app=web",
                "names a resource, not an object",
            ),
            (
                "k8s://certificates#selector=app%20in%20web",
                "needs its values in parentheses",
            ),
            (
                "k8s://certificates#selector=app=web&deleted&min=2",
                "#min does not go with #deleted",
            ),
            (
                "k8s://certificates#selector=app=web&port=x",
                "unknown option 'port' for k8s selector targets",
            ),
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
