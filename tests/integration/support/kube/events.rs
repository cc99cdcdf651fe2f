//! Creating and merge-patching Events in the stand-in API server, checked as the real one
//! checks them (`ValidateEvent`, `ValidateEventUpdate`): the fields an events.k8s.io/v1
//! Event must have and their limits, a series counted from 2, only the series changed on
//! update; for a core v1 Event, the involved object in the Event's own namespace. A
//! refusal is a 422 `Invalid` Status, so a test sees a wrong shape as a failed request.

use hyper::Response;
use serde_json::{Value, json};

use super::{Body, Cluster, Kind, json_response, status};

pub fn create(
    cluster: &mut Cluster,
    kind: Kind,
    namespace: &str,
    body: Option<Value>,
    content_type: &str,
) -> Response<Body> {
    if !content_type.starts_with("application/json") {
        return unsupported(content_type);
    }
    let Some(mut object) = body else {
        return invalid("the body is not JSON");
    };
    if let Err(problem) = check(kind, namespace, &object) {
        return invalid(&problem);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if cluster
        .objects
        .contains_key(&(kind, namespace.to_string(), name.clone()))
    {
        let message = format!("events \"{name}\" already exists");
        return json_response(409, &status(409, "AlreadyExists", &message, None));
    }
    object["metadata"]["uid"] = json!(format!("uid-{name}"));
    object["metadata"]["creationTimestamp"] = json!("2026-12-03T10:00:00Z");
    cluster.put(kind, namespace, object);
    let stored = cluster.objects[&(kind, namespace.to_string(), name)].clone();
    json_response(201, &stored)
}

pub fn merge_patch(
    cluster: &mut Cluster,
    kind: Kind,
    namespace: &str,
    name: &str,
    body: Option<Value>,
    content_type: &str,
) -> Response<Body> {
    if content_type != "application/merge-patch+json" {
        return unsupported(content_type);
    }
    let Some(patch) = body else {
        return invalid("the patch is not JSON");
    };
    let key = (kind, namespace.to_string(), name.to_string());
    let Some(old) = cluster.objects.get(&key).cloned() else {
        let message = format!("events \"{name}\" not found");
        let details = json!({"name": name, "kind": "events"});
        return json_response(404, &status(404, "NotFound", &message, Some(details)));
    };
    let mut new = old.clone();
    merge(&mut new, &patch);
    if let Err(problem) = check(kind, namespace, &new).and_then(|()| unchanged(kind, &old, &new)) {
        return invalid(&problem);
    }
    cluster.put(kind, namespace, new);
    json_response(200, &cluster.objects[&key].clone())
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if value.is_null() {
            target.as_object_mut().unwrap().remove(key);
        } else {
            merge(&mut target[key], value);
        }
    }
}

fn check(kind: Kind, namespace: &str, event: &Value) -> Result<(), String> {
    let text = |path: &[&str]| {
        path.iter()
            .fold(event, |value, key| &value[key])
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let name = text(&["metadata", "name"]);
    if name.is_empty() || name.len() > 253 {
        return Err(format!("metadata.name: Invalid value: {name:?}"));
    }
    let given_namespace = text(&["metadata", "namespace"]);
    if !given_namespace.is_empty() && given_namespace != namespace {
        return Err("metadata.namespace: does not match the namespace of the request".into());
    }
    if !matches!(text(&["type"]).as_str(), "Normal" | "Warning") {
        return Err(format!("type: Unsupported value: {:?}", text(&["type"])));
    }
    match kind {
        Kind::Event => {
            for field in [
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
            ] {
                let value = text(&[field]);
                if value.is_empty() || value.len() > 128 {
                    return Err(format!("{field}: Required value (at most 128 characters)"));
                }
            }
            if text(&["note"]).len() > 1024 {
                return Err("note: Too long: must have at most 1024 bytes".into());
            }
            micro_time(&text(&["eventTime"])).map_err(|why| format!("eventTime: {why}"))?;
            if text(&["regarding", "kind"]) != "Pod"
                || text(&["regarding", "name"]).is_empty()
                || text(&["regarding", "namespace"]) != namespace
            {
                return Err(format!("regarding: Invalid value: {}", event["regarding"]));
            }
            if let Some(series) = event.get("series").filter(|series| !series.is_null()) {
                if series["count"].as_u64().is_none_or(|count| count < 2) {
                    return Err("series.count: Invalid value: should be at least 2".into());
                }
                micro_time(series["lastObservedTime"].as_str().unwrap_or_default())
                    .map_err(|why| format!("series.lastObservedTime: {why}"))?;
            }
        }
        Kind::CoreEvent => {
            if text(&["involvedObject", "namespace"]) != namespace {
                return Err(
                    "involvedObject.namespace: Invalid value: does not match event.namespace"
                        .into(),
                );
            }
            if text(&["reason"]).is_empty() || text(&["message"]).is_empty() {
                return Err("reason and message are required by holdup's Events".into());
            }
            for field in ["firstTimestamp", "lastTimestamp"] {
                humantime::parse_rfc3339(&text(&[field]))
                    .map_err(|error| format!("{field}: {error}"))?;
            }
        }
        other => return Err(format!("{other:?} is no Event")),
    }
    Ok(())
}

/// On update, an events.k8s.io Event may change only its series.
fn unchanged(kind: Kind, old: &Value, new: &Value) -> Result<(), String> {
    if kind != Kind::Event {
        return Ok(());
    }
    for field in [
        "action",
        "reportingController",
        "reportingInstance",
        "reason",
        "type",
        "regarding",
        "eventTime",
        "note",
    ] {
        if old[field] != new[field] {
            return Err(format!("{field}: Invalid value: field is immutable"));
        }
    }
    Ok(())
}

/// A MicroTime: `2006-01-02T15:04:05.000000Z07:00`, six digits.
fn micro_time(text: &str) -> Result<(), String> {
    let fraction = text
        .split_once('.')
        .map(|(_, rest)| rest.trim_end_matches('Z'))
        .unwrap_or_default();
    if fraction.len() != 6 || humantime::parse_rfc3339(text).is_err() {
        return Err(format!("Invalid value: {text:?}: not a MicroTime"));
    }
    Ok(())
}

fn invalid(message: &str) -> Response<Body> {
    json_response(422, &status(422, "Invalid", message, None))
}

fn unsupported(content_type: &str) -> Response<Body> {
    let message = format!("the body of the request was in an unknown format: {content_type}");
    json_response(415, &status(415, "UnsupportedMediaType", &message, None))
}
