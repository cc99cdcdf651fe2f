//! Any object, of any resource: ready when it exists, when it has a status condition, when a
//! JSONPath finds a value, or when it is gone, judged as `kubectl wait` judges them; one
//! object by name, or the objects a label selector matches, counted against a minimum.

use serde_json::Value;

use super::jsonpath::{Found, JsonPath};
use super::readiness::{Condition, Verdict, listed, meta, null_as_default, plural, pod_troubles};

/// What must hold of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Exists,
    /// `#condition=TYPE[=STATUS]`: both compared without regard to case, as kubectl does.
    Condition {
        kind: String,
        status: String,
    },
    /// `#jsonpath=EXPR[=VALUE]`: without VALUE, that the path finds anything.
    JsonPath {
        path: JsonPath,
        value: Option<String>,
    },
    /// `#deleted`: the object is gone (or was deleted and created again).
    Deleted,
}

/// Which objects: one by name, or those a selector matches, at least `min` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    Named(String),
    Selected { selector: String, min: u32 },
}

/// How the objects are named in words: `Certificate`, `certificates`, and where they are.
pub struct Words<'a> {
    pub kind: &'a str,
    pub plural: &'a str,
    /// ` in shop`, or nothing for a cluster-scoped resource.
    pub in_namespace: &'a str,
    /// `shop/`, or nothing.
    pub prefix: &'a str,
    /// Pods get the words of the pods form when they are not Ready.
    pub pods: bool,
}

/// The one judgement for every object target. `first_uid` is the uid the named object had
/// when first seen, for `#deleted`: an object of the same name with another uid was
/// deleted and created again, which kubectl counts as deleted too.
pub fn judge(
    words: &Words<'_>,
    pick: &Pick,
    check: &Check,
    objects: &[&Value],
    first_uid: Option<&str>,
) -> Verdict {
    match pick {
        Pick::Named(name) => named(words, name, check, objects.first().copied(), first_uid),
        Pick::Selected { selector, min } => selected(words, selector, *min, check, objects),
    }
}

fn named(
    words: &Words<'_>,
    name: &str,
    check: &Check,
    object: Option<&Value>,
    first_uid: Option<&str>,
) -> Verdict {
    let shown = format!("{} {}{name}", words.kind, words.prefix);
    let Some(object) = object else {
        return match check {
            Check::Deleted => Verdict::Ready,
            _ => Verdict::NotReady(format!("{shown} does not exist yet")),
        };
    };
    if let Check::Deleted = check {
        let meta = meta(object);
        if first_uid.is_some_and(|uid| uid != meta.uid) {
            return Verdict::Ready;
        }
        return Verdict::NotReady(format!("{shown} {}", still_there(object)));
    }
    match unmet(words, check, object) {
        Ok(None) => Verdict::Ready,
        Ok(Some(why)) => Verdict::NotReady(format!("{shown} {why}")),
        Err(why) => Verdict::Failed(format!("{shown}: {why}")),
    }
}

fn selected(
    words: &Words<'_>,
    selector: &str,
    min: u32,
    check: &Check,
    objects: &[&Value],
) -> Verdict {
    let matching = format!("matching {selector}{}", words.in_namespace);
    let named = |object: &Value| meta(object).name;
    if let Check::Deleted = check {
        if objects.is_empty() {
            return Verdict::Ready;
        }
        let left: Vec<String> = objects
            .iter()
            .map(|object| format!("{} {}", named(object), still_there(object)))
            .collect();
        let count = u32::try_from(objects.len()).unwrap_or(u32::MAX);
        return Verdict::NotReady(format!(
            "{count} {} {matching} {} left: {}",
            plural(count, &words.kind.to_lowercase(), words.plural),
            plural(count, "is", "are"),
            listed(&left)
        ));
    }
    let mut met = 0u32;
    let mut unmet_words = Vec::new();
    for object in objects {
        match unmet(words, check, object) {
            Ok(None) => met += 1,
            Ok(Some(why)) => unmet_words.push(format!("{} {why}", named(object))),
            Err(why) => return Verdict::Failed(format!("{} {}: {why}", words.kind, named(object))),
        }
    }
    if met >= min {
        return Verdict::Ready;
    }
    let needed = format!(
        "{met} of {min} needed {} {matching}",
        plural(min, &words.kind.to_lowercase(), words.plural)
    );
    if objects.is_empty() {
        return Verdict::NotReady(format!("no {} {matching} exist yet", words.plural));
    }
    let what = match check {
        Check::Exists => {
            let count = u32::try_from(objects.len()).unwrap_or(u32::MAX);
            return Verdict::NotReady(format!("{needed} {}", plural(count, "exists", "exist")));
        }
        Check::Condition { kind, status } => format!("{kind}={status}"),
        Check::JsonPath { path, value } => match value {
            Some(value) => format!("{path}={value}"),
            None => format!("{path}"),
        },
        Check::Deleted => String::new(),
    };
    Verdict::NotReady(format!(
        "{needed} {} {what}: {}",
        if min == 1 { "has" } else { "have" },
        listed(&unmet_words)
    ))
}

/// `still exists`, `is being deleted (held by finalizers: kubernetes.io/pvc-protection)`.
fn still_there(object: &Value) -> String {
    let meta = meta(object);
    match (
        meta.deletion_timestamp.is_some(),
        meta.finalizers.is_empty(),
    ) {
        (false, _) => "still exists".to_string(),
        (true, true) => "is being deleted".to_string(),
        (true, false) => format!(
            "is being deleted (held by finalizers: {})",
            meta.finalizers.join(", ")
        ),
    }
}

/// None when the check holds of the object; else why not (to follow its name), or, when
/// it never can as written, the error.
fn unmet(words: &Words<'_>, check: &Check, object: &Value) -> Result<Option<String>, String> {
    let why = match check {
        Check::Exists | Check::Deleted => return Ok(None),
        Check::Condition { kind, status } => condition_unmet(object, kind, status),
        Check::JsonPath { path, value } => jsonpath_unmet(object, path, value.as_deref())?,
    };
    Ok(why.map(|why| {
        let troubles = if words.pods {
            pod_troubles(&[object])
        } else {
            Vec::new()
        };
        // `web-0 is in CrashLoopBackOff (…)`: the pod's own name is already said.
        match troubles.first().and_then(|trouble| trouble.split_once(' ')) {
            Some((_, trouble)) => format!("{why}; it {trouble}"),
            None => why,
        }
    }))
}

/// kubectl's rule: the first condition of that type (any case) with a status decides; one
/// written for an older generation than the object's does not count yet.
fn condition_unmet(object: &Value, kind: &str, status: &str) -> Option<String> {
    let conditions: Vec<Condition> = object
        .pointer("/status/conditions")
        .map(|conditions| null_as_default(conditions).unwrap_or_default())
        .unwrap_or_default();
    let generation = meta(object).generation;
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let found = conditions.iter().find(|condition| {
        condition.kind.eq_ignore_ascii_case(kind) && !condition.status.is_empty()
    });
    let Some(found) = found else {
        let others: Vec<String> = conditions
            .iter()
            .map(|condition| format!("{}={}", condition.kind, condition.status))
            .collect();
        return Some(if others.is_empty() {
            format!("has no condition {kind} yet (no conditions at all)")
        } else {
            format!(
                "has no condition {kind} yet (its conditions: {})",
                others.join(", ")
            )
        });
    };
    if let (Some(generation), Some(seen)) = (generation, found.observed_generation.or(observed))
        && seen < generation
    {
        return Some(format!(
            "has {}={} from generation {seen}; the controller has not judged generation {generation} yet",
            found.kind, found.status
        ));
    }
    if found.status.eq_ignore_ascii_case(status) {
        return None;
    }
    let mut why = format!("is {}={}, not {status}", found.kind, found.status);
    if !found.reason.is_empty() || !found.message.is_empty() {
        why.push_str(&format!(": {}", found.words()));
    }
    Some(why)
}

fn jsonpath_unmet(
    object: &Value,
    path: &JsonPath,
    value: Option<&str>,
) -> Result<Option<String>, String> {
    let found = path.find(object);
    Ok(match (found, value) {
        (Found::Nothing, _) => Some(format!("has no {path} yet")),
        (Found::Scalar(_) | Found::Nested(_), None) => None,
        (Found::Scalar(text), Some(value)) if text.trim() == value.trim() => None,
        (Found::Scalar(text), Some(value)) => Some(format!("has {path} {text:?}, not {value:?}")),
        (Found::Many(count), _) => {
            return Err(format!(
                "{path} finds {count} values, not one (as kubectl wait, holdup compares one); make the path name one"
            ));
        }
        (Found::Nested(nested), Some(value)) => {
            let what = if nested.is_array() {
                "a list"
            } else {
                "an object"
            };
            return Err(format!(
                "{path} is {what}, which cannot be compared with {value:?} (as in kubectl wait); name one value inside it, e.g. {}",
                example_inside(path, nested)
            ));
        }
    })
}

/// `{.status.loadBalancer.ingress[0]…}`: how to name a value inside a list or object.
fn example_inside(path: &JsonPath, nested: &Value) -> String {
    let shown = path.to_string();
    let inner = shown.trim_end_matches('}');
    match nested {
        Value::Array(_) => format!("{inner}[0]…}}"),
        Value::Object(map) => match map.keys().next() {
            Some(key) => format!("{inner}.{key}}}"),
            None => format!("{inner}.FIELD}}"),
        },
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn words(kind: &'static str, plural: &'static str) -> Words<'static> {
        Words {
            kind,
            plural,
            in_namespace: " in shop",
            prefix: "shop/",
            pods: false,
        }
    }

    fn certificate(name: &str, ready: &str, reason: &str) -> Value {
        json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 2},
               "status": {"conditions": [
                   {"type": "Issuing", "status": "False"},
                   {"type": "Ready", "status": ready, "reason": reason, "message": "Certificate is up to date", "observedGeneration": 2}]}})
    }

    fn condition(kind: &str, status: &str) -> Check {
        Check::Condition {
            kind: kind.into(),
            status: status.into(),
        }
    }

    fn web(check: &Check, objects: &[&Value]) -> Verdict {
        judge(
            &words("Certificate", "certificates"),
            &Pick::Named("web".into()),
            check,
            objects,
            Some("uid-web"),
        )
    }

    #[test]
    fn conditions_as_kubectl_wait_judges_them() {
        let ready = certificate("web", "True", "Ready");
        let not_ready = certificate("web", "False", "DoesNotExist");
        let mut stale = certificate("web", "True", "Ready");
        stale["metadata"]["generation"] = json!(3);
        let bare = json!({"metadata": {"name": "web"}, "status": {}});
        let cases = [
            (vec![&ready], condition("Ready", "True"), Verdict::Ready),
            (vec![&ready], condition("ready", "true"), Verdict::Ready),
            (vec![&not_ready], condition("Ready", "False"), Verdict::Ready),
            (vec![], condition("Ready", "True"), Verdict::NotReady("Certificate shop/web does not exist yet".into())),
            (vec![&not_ready], condition("Ready", "True"), Verdict::NotReady("Certificate shop/web is Ready=False, not True: DoesNotExist: Certificate is up to date".into())),
            (vec![&ready], condition("Approved", "True"), Verdict::NotReady("Certificate shop/web has no condition Approved yet (its conditions: Issuing=False, Ready=True)".into())),
            (vec![&bare], condition("Ready", "True"), Verdict::NotReady("Certificate shop/web has no condition Ready yet (no conditions at all)".into())),
            (vec![&stale], condition("Ready", "True"), Verdict::NotReady("Certificate shop/web has Ready=True from generation 2; the controller has not judged generation 3 yet".into())),
        ];
        for (objects, check, expected) in cases {
            assert_eq!(web(&check, &objects), expected, "{check:?}");
        }
    }

    #[test]
    fn existence_deletion_and_jsonpath() {
        let present = certificate("web", "True", "Ready");
        let recreated = json!({"metadata": {"name": "web", "uid": "uid-new"}});
        let leaving = json!({"metadata": {"name": "web", "uid": "uid-web",
            "deletionTimestamp": "2026-11-22T10:00:00Z", "finalizers": ["cert-manager.io/cleanup"]}});
        let path = |text: &str, value: Option<&str>| Check::JsonPath {
            path: JsonPath::parse(text).unwrap(),
            value: value.map(Into::into),
        };
        let cases = [
            (vec![&present], Check::Exists, Verdict::Ready),
            (vec![], Check::Deleted, Verdict::Ready),
            (vec![&recreated], Check::Deleted, Verdict::Ready),
            (vec![&present], Check::Deleted, Verdict::NotReady("Certificate shop/web still exists".into())),
            (vec![&leaving], Check::Deleted, Verdict::NotReady("Certificate shop/web is being deleted (held by finalizers: cert-manager.io/cleanup)".into())),
            (vec![&present], path("{.status.conditions[1].reason}", Some("Ready")), Verdict::Ready),
            (vec![&present], path("{.status.conditions}", None), Verdict::Ready),
            (vec![&present], path("{.status.conditions[1].reason}", Some("Issued")), Verdict::NotReady("Certificate shop/web has {.status.conditions[1].reason} \"Ready\", not \"Issued\"".into())),
            (vec![&present], path("{.status.renewalTime}", None), Verdict::NotReady("Certificate shop/web has no {.status.renewalTime} yet".into())),
            (vec![&present], path("{.status.conditions}", Some("x")), Verdict::Failed("Certificate shop/web: {.status.conditions} is a list, which cannot be compared with \"x\" (as in kubectl wait); name one value inside it, e.g. {.status.conditions[0]…}".into())),
        ];
        for (objects, check, expected) in cases {
            assert_eq!(web(&check, &objects), expected, "{check:?}");
        }
    }

    #[test]
    fn a_selector_counts_objects_against_min() {
        let a = certificate("web-a", "True", "Ready");
        let b = certificate("web-b", "False", "DoesNotExist");
        let pick = |min| Pick::Selected {
            selector: "app=web".into(),
            min,
        };
        let judged = |min, check: &Check, objects: &[&Value]| {
            judge(
                &words("Certificate", "certificates"),
                &pick(min),
                check,
                objects,
                None,
            )
        };
        let ready = condition("Ready", "True");
        assert_eq!(judged(1, &ready, &[&a, &b]), Verdict::Ready);
        assert_eq!(
            judged(2, &ready, &[&a, &b]),
            Verdict::NotReady("1 of 2 needed certificates matching app=web in shop have Ready=True: web-b is Ready=False, not True: DoesNotExist: Certificate is up to date".into())
        );
        assert_eq!(
            judged(1, &ready, &[]),
            Verdict::NotReady("no certificates matching app=web in shop exist yet".into())
        );
        assert_eq!(
            judged(3, &Check::Exists, &[&a, &b]),
            Verdict::NotReady("2 of 3 needed certificates matching app=web in shop exist".into())
        );
        assert_eq!(judged(1, &Check::Deleted, &[]), Verdict::Ready);
        assert_eq!(
            judged(1, &Check::Deleted, &[&a]),
            Verdict::NotReady(
                "1 certificate matching app=web in shop is left: web-a still exists".into()
            )
        );
    }

    #[test]
    fn a_pod_that_is_not_ready_says_why_as_the_pods_form_does() {
        let pod = json!({"metadata": {"name": "web-0"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [{"name": "app", "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1}}}]}});
        let words = Words {
            pods: true,
            ..words("Pod", "pods")
        };
        assert_eq!(
            judge(&words, &Pick::Named("web-0".into()), &condition("Ready", "True"), &[&pod], None),
            Verdict::NotReady("Pod shop/web-0 is Ready=False, not True: ContainersNotReady; it is in CrashLoopBackOff (container app, exit code 1, 4 restarts)".into())
        );
    }
}
