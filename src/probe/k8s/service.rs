//! A Service target: its EndpointSlices counted, and a reason that says what is true of
//! the Service, made exact by the Service object itself where the slices cannot tell
//! (read once per change of situation, and only when allowed).
//!
//! What the slices can tell: while a Service with a selector selects no pod that has an
//! IP (none matches, none is scheduled or started yet, or all have ended), the
//! EndpointSlice controller keeps one placeholder slice per address type, with no
//! endpoints and no ports (`"endpoints": null, "ports": null` as the API server sends it).
//! Its missing ports say nothing of the Service's ports. No slice at all means the Service
//! does not exist, has no selector (someone else writes its slices, or nobody does), is of
//! type ExternalName, or was created a moment ago: only the Service object tells which.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use tracing::warn;

use super::readiness::{Verdict, listed, null_as_default, parse, plural};
use crate::attempt::Stage;
use crate::kube::api::{Api, ApiError};
use crate::kube::resource::{Query, SERVICES};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointSlice {
    #[serde(deserialize_with = "null_as_default")]
    endpoints: Vec<Endpoint>,
    #[serde(deserialize_with = "null_as_default")]
    ports: Vec<EndpointPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Endpoint {
    #[serde(deserialize_with = "null_as_default")]
    addresses: Vec<String>,
    conditions: EndpointConditions,
    target_ref: Option<Reference>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointConditions {
    ready: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointPort {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Reference {
    name: String,
}

/// A Service that is not ready, as far as its EndpointSlices tell, in the cases where the
/// Service object changes the words. The object is read again when this changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Situation {
    /// No EndpointSlice at all.
    NoSlice,
    /// Slices without a single endpoint: the EndpointSlice controller's placeholder.
    NoEndpoints,
    /// Endpoints, but none in a slice that exposes the port asked for.
    PortNotExposed,
}

/// The Service object, as far as it was read.
#[derive(Debug, Default)]
pub enum Known {
    /// Not read (no need yet, refused, or the read failed): the slices speak alone.
    #[default]
    Nothing,
    Missing,
    Found(Service),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    spec: ServiceSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(deserialize_with = "null_as_default")]
    selector: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    ports: Vec<ServicePort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServicePort {
    name: String,
    port: u32,
    protocol: String,
    /// A number, or the name of a container port of the pods.
    target_port: Value,
}

impl ServicePort {
    /// `5432/TCP`.
    fn number(&self) -> String {
        let protocol = if self.protocol.is_empty() {
            "TCP"
        } else {
            &self.protocol
        };
        format!("{}/{protocol}", self.port)
    }
}

impl Service {
    fn port_named(&self, name: &str) -> Option<&ServicePort> {
        self.spec.ports.iter().find(|port| port.name == name)
    }

    /// `its ports: metrics, pg`, `its only port, 5432/TCP, has no name`.
    fn ports_words(&self) -> String {
        match self.spec.ports.as_slice() {
            [] => "it has no ports".to_string(),
            [only] if only.name.is_empty() => {
                format!("its only port, {}, has no name", only.number())
            }
            ports => {
                let shown: Vec<String> = ports
                    .iter()
                    .map(|port| {
                        if port.name.is_empty() {
                            port.number()
                        } else {
                            port.name.clone()
                        }
                    })
                    .collect();
                format!("its ports: {}", shown.join(", "))
            }
        }
    }
}

/// What the slices hold, counted once.
#[derive(Default)]
struct Tally {
    slices: usize,
    /// Endpoints in any slice, whatever its ports.
    endpoints: usize,
    /// Endpoints of slices that expose the port asked for (all, when none is asked for),
    /// by pod (or first address).
    ready: BTreeSet<String>,
    not_ready: BTreeSet<String>,
    /// The port names of slices that have endpoints; whether one of them has a port without
    /// a name, or no ports at all.
    port_names: BTreeSet<String>,
    unnamed_port: bool,
    no_ports: bool,
}

impl Tally {
    fn of(port: Option<&str>, slices: &[&Value]) -> Tally {
        let slices: Vec<EndpointSlice> = slices.iter().map(|slice| parse(slice)).collect();
        let mut tally = Tally {
            slices: slices.len(),
            ..Tally::default()
        };
        for slice in slices.iter().filter(|slice| !slice.endpoints.is_empty()) {
            tally.endpoints += slice.endpoints.len();
            let names: Vec<&str> = slice
                .ports
                .iter()
                .map(|port| port.name.as_deref().unwrap_or_default())
                .collect();
            tally.no_ports |= names.is_empty();
            tally.unnamed_port |= names.iter().any(|name| name.is_empty());
            tally.port_names.extend(
                names
                    .iter()
                    .filter(|name| !name.is_empty())
                    .map(|name| name.to_string()),
            );
            if port.is_some_and(|wanted| !names.contains(&wanted)) {
                continue;
            }
            for endpoint in &slice.endpoints {
                // A dual-stack Service lists each pod in an IPv4 and an IPv6 slice.
                let id = match &endpoint.target_ref {
                    Some(target) if !target.name.is_empty() => target.name.clone(),
                    _ => endpoint.addresses.first().cloned().unwrap_or_default(),
                };
                if endpoint.conditions.ready != Some(false) {
                    tally.ready.insert(id);
                } else {
                    tally.not_ready.insert(id);
                }
            }
        }
        tally.not_ready = tally.not_ready.difference(&tally.ready).cloned().collect();
        tally
    }

    fn count(&self) -> u32 {
        u32::try_from(self.ready.len()).unwrap_or(u32::MAX)
    }

    fn situation(&self, port: Option<&str>, min: u32) -> Option<Situation> {
        if self.count() >= min {
            None
        } else if self.slices == 0 {
            Some(Situation::NoSlice)
        } else if self.endpoints == 0 {
            Some(Situation::NoEndpoints)
        } else if port.is_some() && self.ready.is_empty() && self.not_ready.is_empty() {
            Some(Situation::PortNotExposed)
        } else {
            None
        }
    }

    /// The ports the endpoints have, when none is the one asked for.
    fn exposed_words(&self) -> String {
        if !self.port_names.is_empty() {
            let names: Vec<&str> = self.port_names.iter().map(String::as_str).collect();
            format!("its endpoints' ports: {}", names.join(", "))
        } else if self.unnamed_port {
            "its endpoints' ports have no names".to_string()
        } else {
            "its endpoints have no ports".to_string()
        }
    }
}

/// Where a Service target stands while it is not ready, when reading the Service object
/// could make its reason exact; None when ready, or while endpoints are being counted.
pub fn situation(port: Option<&str>, min: u32, slices: &[&Value]) -> Option<Situation> {
    Tally::of(port, slices).situation(port, min)
}

/// A Service is ready when at least `min` distinct endpoints of its EndpointSlices are
/// ready (a missing `ready` means ready, as the API reference says), counting only slices
/// that expose `port` when one is named. `known` is the Service object, if it was read.
pub fn judge(
    shown: &str,
    port: Option<&str>,
    min: u32,
    slices: &[&Value],
    known: &Known,
) -> Verdict {
    let tally = Tally::of(port, slices);
    let count = tally.count();
    if count >= min {
        return Verdict::Ready;
    }
    let words = match tally.situation(port, min) {
        Some(Situation::NoSlice) => no_slice(shown, port, known),
        Some(Situation::NoEndpoints) => format!(
            "Service {shown} has no endpoints yet (it selects no running pod){}",
            port_hint(port, known)
        ),
        Some(Situation::PortNotExposed) => {
            port_not_exposed(shown, port.unwrap_or_default(), &tally, known)
        }
        None => {
            let mut words = format!(
                "Service {shown} has {count} ready {} of {min} needed",
                plural(count, "endpoint", "endpoints")
            );
            if !tally.not_ready.is_empty() {
                let not_ready: Vec<String> = tally.not_ready.iter().cloned().collect();
                words.push_str(&format!(" (not ready: {})", listed(&not_ready)));
            }
            words
        }
    };
    Verdict::NotReady(words)
}

fn no_slice(shown: &str, port: Option<&str>, known: &Known) -> String {
    match known {
        Known::Nothing => format!(
            "Service {shown} has no endpoints yet (no EndpointSlice: the Service does not exist yet, or has no selector)"
        ),
        Known::Missing => format!("Service {shown} does not exist yet"),
        Known::Found(service) if service.spec.kind == "ExternalName" => format!(
            "Service {shown} is of type ExternalName: it has no endpoints (wait for the name it points to instead)"
        ),
        Known::Found(service) if service.spec.selector.is_empty() => format!(
            "Service {shown} has no endpoints yet (it has no selector: its EndpointSlices come from whoever manages it, not from Kubernetes){}",
            port_hint(port, known)
        ),
        Known::Found(_) => format!(
            "Service {shown} has no endpoints yet (no EndpointSlice yet){}",
            port_hint(port, known)
        ),
    }
}

/// `; and it has no port named "pg" (its ports: http)`, when the Service was read and the
/// port asked for is not one of its own: a mistake that waiting will not mend.
fn port_hint(port: Option<&str>, known: &Known) -> String {
    match (port, known) {
        (Some(wanted), Known::Found(service)) if service.port_named(wanted).is_none() => {
            format!(
                "; and it has no port named {wanted:?} ({})",
                service.ports_words()
            )
        }
        _ => String::new(),
    }
}

fn port_not_exposed(shown: &str, wanted: &str, tally: &Tally, known: &Known) -> String {
    let Known::Found(service) = known else {
        return format!(
            "Service {shown} has no endpoints on a port named {wanted:?} ({})",
            tally.exposed_words()
        );
    };
    match service.port_named(wanted) {
        None => format!(
            "Service {shown} has no port named {wanted:?} ({})",
            service.ports_words()
        ),
        // The EndpointSlice controller leaves out a port whose named targetPort a pod does
        // not declare.
        Some(port) => match port.target_port.as_str() {
            Some(target) => format!(
                "Service {shown} has no endpoints on its port {wanted:?} yet (its pods declare no container port named {target:?}, the port's targetPort)"
            ),
            None => format!("Service {shown} has no endpoints on its port {wanted:?} yet"),
        },
    }
}

/// The Service object of a Service target, read when the situation its words depend on
/// changes: one GET per change, none while endpoints are being counted or once refused.
#[derive(Default)]
pub struct Lookup {
    pub known: Known,
    /// The situation the object was last read (or tried) for.
    read_for: Option<Situation>,
    /// `get` on Services is forbidden: said once, never asked again.
    forbidden: bool,
}

/// Where a Service target looks, and how it is shown.
pub struct Asking<'a> {
    pub api: &'a Api,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The target as shown, for the one line said when reading is forbidden.
    pub target: &'a str,
    /// Why the target is not ready as of now: what a cut-off attempt reports.
    pub reason: String,
}

impl Lookup {
    /// The situation to read the Service for, if a read is due: it changed since the last
    /// read, and reading is not forbidden.
    pub fn due(&mut self, situation: Option<Situation>) -> Option<Situation> {
        let Some(situation) = situation else {
            self.read_for = None;
            return None;
        };
        (!self.forbidden && self.read_for != Some(situation)).then_some(situation)
    }

    pub async fn refresh(&mut self, situation: Situation, asking: Asking<'_>, stage: &Stage) {
        // Set first: a read that hangs and is cut off is not tried again until the
        // situation changes, so it cannot hold the watch up attempt after attempt.
        self.read_for = Some(situation);
        let Asking {
            api,
            namespace,
            name,
            target,
            reason,
        } = asking;
        stage.set(format!(
            "reading Service {namespace}/{name} at {}",
            api.authority()
        ));
        stage.waiting(reason);
        let query = Query::new(SERVICES, namespace);
        self.known = match api.get(&query, name, stage).await {
            Ok(Some(object)) => Known::Found(parse(&object)),
            Ok(None) => Known::Missing,
            Err(ApiError::Forbidden(words)) => {
                self.forbidden = true;
                warn!(
                    event = "limited",
                    target = %target,
                    "{target}: cannot read Service {namespace}/{name}, so reasons will not say whether it exists or has the port asked for: {words}"
                );
                Known::Nothing
            }
            Err(_) => Known::Nothing,
        };
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slice(ports: Value, endpoints: Value) -> Value {
        json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
               "metadata": {"name": "db-x", "resourceVersion": "5"},
               "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
    }

    fn endpoint(pod: &str, ready: Option<bool>) -> Value {
        json!({"addresses": ["10.0.0.1"], "conditions": {"ready": ready},
               "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}})
    }

    fn service(value: Value) -> Known {
        Known::Found(parse(&value))
    }

    #[test]
    fn service_endpoints() {
        let ports = json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]);
        let two = slice(
            ports.clone(),
            json!([endpoint("db-0", Some(true)), endpoint("db-1", Some(false))]),
        );
        // The same pods in an IPv6 slice are not counted again.
        let two_v6 = slice(
            ports.clone(),
            json!([endpoint("db-0", Some(true)), endpoint("db-1", Some(false))]),
        );
        let unknown = slice(ports, json!([endpoint("db-2", None)]));
        let nothing = Known::Nothing;
        let cases: Vec<(Vec<&Value>, Option<&str>, u32, Verdict)> = vec![
            (vec![&two, &two_v6], None, 1, Verdict::Ready),
            (
                vec![&two, &two_v6],
                None,
                2,
                Verdict::NotReady(
                    "Service shop/db has 1 ready endpoint of 2 needed (not ready: db-1)".into(),
                ),
            ),
            (vec![&two, &unknown], None, 2, Verdict::Ready),
            (vec![&two], Some("pg"), 1, Verdict::Ready),
            (
                vec![&two],
                Some("pg"),
                3,
                Verdict::NotReady(
                    "Service shop/db has 1 ready endpoint of 3 needed (not ready: db-1)".into(),
                ),
            ),
        ];
        for (slices, port, min, expected) in cases {
            assert_eq!(
                judge("shop/db", port, min, &slices, &nothing),
                expected,
                "{port:?} {min}"
            );
            assert_eq!(situation(port, min, &slices), None, "{port:?} {min}");
        }
    }

    /// The placeholder as the EndpointSlice controller keeps it while the Service selects
    /// no pod with an IP: `null` as the API server sends Go's nil lists, and the other
    /// shapes a client may meet (absent, empty).
    #[test]
    fn a_placeholder_slice_says_no_pod_runs_not_that_a_port_is_missing() {
        let mut placeholder_null = json!({
            "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": "postgres-7xk2p", "generateName": "postgres-", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "postgres",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "postgres",
                                              "uid": "0b6e", "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4", "endpoints": null, "ports": null,
        });
        let absent = {
            let mut absent = placeholder_null.clone();
            let map = absent.as_object_mut().unwrap();
            map.remove("endpoints");
            map.remove("ports");
            absent
        };
        let empty = {
            let mut empty = placeholder_null.clone();
            empty["endpoints"] = json!([]);
            empty["ports"] = json!([]);
            empty
        };
        let with_port = service(
            json!({"spec": {"type": "ClusterIP", "selector": {"app": "postgres"},
            "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}]}}),
        );
        let other_ports = service(json!({"spec": {"selector": {"app": "postgres"},
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP", "targetPort": "pg"},
                      {"name": "metrics", "port": 9187, "protocol": "TCP", "targetPort": 9187}]}}));
        let one_unnamed = service(json!({"spec": {"selector": {"app": "postgres"},
            "ports": [{"port": 5432, "protocol": "TCP", "targetPort": 5432}]}}));
        let placeholder_note =
            "Service shop/postgres has no endpoints yet (it selects no running pod)";
        for placeholder in [&placeholder_null, &absent, &empty] {
            let slices = [placeholder];
            let port = Some("postgres");
            assert_eq!(situation(port, 1, &slices), Some(Situation::NoEndpoints));
            for known in [&Known::Nothing, &with_port] {
                assert_eq!(
                    judge("shop/postgres", port, 1, &slices, known),
                    Verdict::NotReady(placeholder_note.into()),
                    "{placeholder}"
                );
            }
            assert_eq!(
                judge("shop/postgres", port, 1, &slices, &other_ports),
                Verdict::NotReady(format!(
                    "{placeholder_note}; and it has no port named \"postgres\" (its ports: pg, metrics)"
                ))
            );
            assert_eq!(
                judge("shop/postgres", port, 1, &slices, &one_unnamed),
                Verdict::NotReady(format!(
                    "{placeholder_note}; and it has no port named \"postgres\" (its only port, 5432/TCP, has no name)"
                ))
            );
            assert_eq!(
                judge("shop/postgres", None, 1, &slices, &one_unnamed),
                Verdict::NotReady(placeholder_note.into())
            );
        }
        // An IPv4 and an IPv6 placeholder for a dual-stack Service say the same.
        placeholder_null["addressType"] = json!("IPv6");
        assert_eq!(
            judge(
                "shop/postgres",
                Some("postgres"),
                1,
                &[&placeholder_null, &empty],
                &with_port
            ),
            Verdict::NotReady(placeholder_note.into())
        );
    }

    #[test]
    fn no_slice_at_all_says_what_the_service_object_tells() {
        let headless_without_selector = service(json!({"spec": {"clusterIP": "None",
            "ports": [{"name": "pg", "port": 5432}]}}));
        let external =
            service(json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}));
        let fresh = service(
            json!({"spec": {"selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}}),
        );
        let cases: Vec<(&Known, Option<&str>, &str)> = vec![
            (
                &Known::Nothing,
                Some("pg"),
                "Service shop/db has no endpoints yet (no EndpointSlice: the Service does not exist yet, or has no selector)",
            ),
            (
                &Known::Missing,
                Some("pg"),
                "Service shop/db does not exist yet",
            ),
            (
                &external,
                None,
                "Service shop/db is of type ExternalName: it has no endpoints (wait for the name it points to instead)",
            ),
            (
                &headless_without_selector,
                Some("pg"),
                "Service shop/db has no endpoints yet (it has no selector: its EndpointSlices come from whoever manages it, not from Kubernetes)",
            ),
            (
                &headless_without_selector,
                Some("http"),
                "Service shop/db has no endpoints yet (it has no selector: its EndpointSlices come from whoever manages it, not from Kubernetes); and it has no port named \"http\" (its ports: pg)",
            ),
            (
                &fresh,
                Some("pg"),
                "Service shop/db has no endpoints yet (no EndpointSlice yet)",
            ),
            (
                &fresh,
                Some("http"),
                "Service shop/db has no endpoints yet (no EndpointSlice yet); and it has no port named \"http\" (its ports: pg)",
            ),
        ];
        for (known, port, expected) in cases {
            assert_eq!(situation(port, 1, &[]), Some(Situation::NoSlice));
            assert_eq!(
                judge("shop/db", port, 1, &[], known),
                Verdict::NotReady(expected.into()),
                "{known:?} {port:?}"
            );
        }
    }

    #[test]
    fn endpoints_without_the_port_asked_for() {
        let on_pg = slice(
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
            json!([endpoint("db-0", Some(true))]),
        );
        let unnamed = slice(
            json!([{"port": 5432, "protocol": "TCP"}]),
            json!([endpoint("db-0", Some(true))]),
        );
        // A headless Service without ports: endpoints, and no ports at all.
        let portless = slice(Value::Null, json!([endpoint("db-0", Some(true))]));
        let has_it = service(json!({"spec": {"selector": {"app": "db"},
            "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}));
        let has_it_by_number = service(json!({"spec": {"selector": {"app": "db"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
        let lacks_it = service(json!({"spec": {"selector": {"app": "db"},
            "ports": [{"name": "pg", "port": 5432}, {"name": "metrics", "port": 9187}]}}));
        let cases: Vec<(&Value, &Known, &str)> = vec![
            (
                &on_pg,
                &Known::Nothing,
                "Service shop/db has no endpoints on a port named \"http\" (its endpoints' ports: pg)",
            ),
            (
                &unnamed,
                &Known::Nothing,
                "Service shop/db has no endpoints on a port named \"http\" (its endpoints' ports have no names)",
            ),
            (
                &portless,
                &Known::Nothing,
                "Service shop/db has no endpoints on a port named \"http\" (its endpoints have no ports)",
            ),
            (
                &on_pg,
                &lacks_it,
                "Service shop/db has no port named \"http\" (its ports: pg, metrics)",
            ),
            (
                &on_pg,
                &has_it,
                "Service shop/db has no endpoints on its port \"http\" yet (its pods declare no container port named \"web\", the port's targetPort)",
            ),
            (
                &on_pg,
                &has_it_by_number,
                "Service shop/db has no endpoints on its port \"http\" yet",
            ),
        ];
        for (slice, known, expected) in cases {
            let slices = [slice];
            assert_eq!(
                situation(Some("http"), 1, &slices),
                Some(Situation::PortNotExposed)
            );
            assert_eq!(
                judge("shop/db", Some("http"), 1, &slices, known),
                Verdict::NotReady(expected.into()),
                "{slice} {known:?}"
            );
        }
        assert_eq!(situation(Some("pg"), 1, &[&on_pg]), None);
        assert_eq!(situation(None, 2, &[&unnamed]), None);
    }
}
