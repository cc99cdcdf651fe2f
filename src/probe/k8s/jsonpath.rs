//! `#jsonpath=EXPR[=VALUE]`, the part of `kubectl wait --for=jsonpath=…` that waits are
//! written with: a path that leads to one value, compared as text with VALUE (or, without
//! VALUE, only required to be there).
//!
//! kubectl splits its flag at a single `=` (a `==` stays in the expression), reads the
//! expression with its full JSONPath parser, and fails when the path finds more than one
//! value, or a list or object to compare with VALUE. holdup takes the steps that lead to
//! one value: fields (`{.status.phase}`, also written `.status.phase` or `status.phase`),
//! array indexes (`[0]`, `[-1]` for the last), `\.` for a dot inside a field name
//! (`{.metadata.labels.app\.kubernetes\.io/name}`), and equality filters
//! (`{.status.conditions[?(@.type=="Ready")].status}`). Wildcards, slices, recursive
//! descent, unions and other filters are refused at parse time. A value is compared as
//! kubectl prints it (Go's `%v`: `3`, `true`, `1e+06`), after trimming spaces; quotes
//! around VALUE are dropped, as kubectl drops them.

use std::fmt;

use anyhow::{Result, bail};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
    /// `[?(@.type=="Ready")]`: the elements of a list whose field equals a value.
    Filter {
        fields: Vec<String>,
        value: String,
    },
}

/// What a path found in an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// Nothing there (or `null`).
    Nothing,
    /// A value that compares as this text.
    Scalar(String),
    /// A list or an object: there, but not comparable with a value.
    Nested(&'a Value),
    /// More than one value (a filter matched several elements), as kubectl refuses.
    Many(usize),
}

const SUBSET: &str = "holdup takes fields, array indexes and ==-filters, as kubectl wait uses them: {.status.phase}, {.status.containerStatuses[0].ready}, {.status.conditions[?(@.type==\"Ready\")].status}";

/// Splits `EXPR=VALUE` (or `EXPR`) as kubectl does, at a single `=` (a `==` stays in the
/// expression), and reads both.
pub fn parse_option(text: &str) -> Result<(JsonPath, Option<String>)> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '=' if chars.peek() == Some(&'=') => {
                chars.next();
                part.push_str("==");
            }
            '=' => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    let (expression, value) = match parts.as_slice() {
        [expression] => (expression, None),
        [expression, value] => {
            let value = value.trim_matches(|c| c == '\'' || c == '"');
            if value.is_empty() {
                bail!("the value after '=' is empty (expected jsonpath={{.status.phase}}=Running)");
            }
            (expression, Some(value.to_string()))
        }
        _ => bail!("expected jsonpath=EXPR=VALUE or jsonpath=EXPR, with one single '=' ({SUBSET})"),
    };
    Ok((JsonPath::parse(expression)?, value))
}

impl JsonPath {
    /// Reads a path as kubectl's relaxed form takes it: with or without the braces and the
    /// leading dot.
    pub fn parse(text: &str) -> Result<JsonPath> {
        let inner = text
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or(text);
        let inner = inner.strip_prefix('.').unwrap_or(inner);
        if inner.is_empty() {
            bail!("the path is empty (expected e.g. {{.status.phase}})");
        }
        if inner.starts_with('[') {
            bail!("'{text}' starts with an index; start with a field ({SUBSET})");
        }
        if inner.starts_with('.') {
            bail!("'{text}' uses '..' (recursive descent), which can find many values ({SUBSET})");
        }
        let mut steps = Vec::new();
        let mut rest = inner;
        while !rest.is_empty() {
            if let Some(bracket) = rest.strip_prefix('[') {
                let (step, after) = bracketed(bracket, text)?;
                steps.push(step);
                rest = after;
                if !(rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')) {
                    bail!(
                        "'{text}' has a field right after an index; it needs a dot first ({SUBSET})"
                    );
                }
                continue;
            }
            let after_dot = match rest.strip_prefix('.') {
                Some(after) => after,
                None if steps.is_empty() => rest,
                None => bail!("'{text}' cannot be read ({SUBSET})"),
            };
            let (name, after) = field(after_dot, text)?;
            steps.push(Step::Field(name));
            rest = after;
        }
        Ok(JsonPath { steps })
    }

    pub fn find<'a>(&self, object: &'a Value) -> Found<'a> {
        let mut current = vec![object];
        for step in &self.steps {
            current = current
                .into_iter()
                .flat_map(|value| step.apply(value))
                .collect();
        }
        current.retain(|value| !value.is_null());
        match current.as_slice() {
            [] => Found::Nothing,
            [one] => match one {
                Value::Array(_) | Value::Object(_) => Found::Nested(one),
                other => Found::Scalar(text_of(other)),
            },
            many => Found::Many(many.len()),
        }
    }
}

impl Step {
    fn apply<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        match (self, value) {
            (Step::Field(name), Value::Object(map)) => map.get(name).into_iter().collect(),
            (Step::Index(index), Value::Array(items)) => {
                let at = if *index < 0 {
                    usize::try_from(index.unsigned_abs())
                        .ok()
                        .and_then(|back| items.len().checked_sub(back))
                } else {
                    usize::try_from(*index).ok()
                };
                at.and_then(|at| items.get(at)).into_iter().collect()
            }
            (Step::Filter { fields, value }, Value::Array(items)) => items
                .iter()
                .filter(|item| {
                    let mut found = Some(*item);
                    for name in fields {
                        found = found.and_then(|at| at.get(name));
                    }
                    found.is_some_and(|found| {
                        !found.is_array() && !found.is_object() && text_of(found) == *value
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A field name up to the next unescaped `.` or `[`, and what follows it.
fn field<'a>(rest: &'a str, text: &str) -> Result<(String, &'a str)> {
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '.')) => name.push('.'),
                _ => bail!("'{text}': '\\' escapes only a dot ({SUBSET})"),
            },
            '.' | '[' => {
                if name.is_empty() {
                    bail!("'{text}' has an empty field name ({SUBSET})");
                }
                return Ok((name, &rest[at..]));
            }
            '*' | '?' | '@' | '$' | '(' | ')' | ':' | ',' | '{' | '}' | ']' | '\'' | '"' | '=' => {
                bail!("'{text}' uses '{c}' outside a filter, which holdup does not take ({SUBSET})")
            }
            c if c.is_whitespace() || c.is_control() => {
                bail!("'{text}' has a space or control character ({SUBSET})")
            }
            c => name.push(c),
        }
    }
    if name.is_empty() {
        bail!("'{text}' has an empty field name ({SUBSET})");
    }
    Ok((name, ""))
}

/// What follows a `[`: an index `N]`, or a filter `?(@.FIELD==VALUE)]`.
fn bracketed<'a>(rest: &'a str, text: &str) -> Result<(Step, &'a str)> {
    if let Some(filter) = rest.strip_prefix("?(") {
        let Some(end) = filter.find(")]") else {
            bail!("'{text}' has a filter without its ')]' ({SUBSET})");
        };
        let body = filter[..end].trim();
        let Some((left, right)) = body.split_once("==") else {
            bail!(
                "'[?({body})]' in '{text}': holdup takes only filters of the form [?(@.FIELD==\"VALUE\")] ({SUBSET})"
            );
        };
        let Some(path) = left.trim().strip_prefix("@.") else {
            bail!("'[?({body})]' in '{text}': the filter must start with @.FIELD ({SUBSET})");
        };
        let mut fields = Vec::new();
        let mut path = path;
        loop {
            let (name, after) = field(path, text)?;
            fields.push(name);
            match after.strip_prefix('.') {
                Some(next) => path = next,
                None if after.is_empty() => break,
                None => bail!(
                    "'[?({body})]' in '{text}': the filter compares a field path only ({SUBSET})"
                ),
            }
        }
        let literal = right.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|quote| {
                literal
                    .strip_prefix(*quote)
                    .and_then(|inner| inner.strip_suffix(*quote))
            })
            .unwrap_or(literal);
        if value.is_empty() || value.contains(['(', ')', '@', '"', '\'']) {
            bail!("'[?({body})]' in '{text}' compares with no plain value ({SUBSET})");
        }
        return Ok((
            Step::Filter {
                fields,
                value: value.to_string(),
            },
            &filter[end + 2..],
        ));
    }
    let Some(end) = rest.find(']') else {
        bail!("'{text}' has a '[' without its ']' ({SUBSET})");
    };
    let index = &rest[..end];
    match index.parse::<i64>() {
        Ok(index) => Ok((Step::Index(index), &rest[end + 1..])),
        Err(_) => bail!("'[{index}]' in '{text}' is not an array index ({SUBSET})"),
    }
}

/// A value as kubectl prints it for the comparison: Go's `%v`.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(value) => value.to_string(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => go_float(float),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

impl fmt::Display for JsonPath {
    /// `{.status.containerStatuses[0].ready}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for step in &self.steps {
            match step {
                Step::Field(name) => write!(f, ".{}", name.replace('.', "\\."))?,
                Step::Index(index) => write!(f, "[{index}]")?,
                Step::Filter { fields, value } => {
                    let fields: Vec<String> =
                        fields.iter().map(|name| name.replace('.', "\\.")).collect();
                    write!(f, "[?(@.{}==\"{value}\")]", fields.join("."))?
                }
            }
        }
        f.write_str("}")
    }
}

/// A float as Go's `%v` prints it: the shortest digits, in exponent form from 1e+06 up or
/// below 1e-04; numbers with a fraction or exponent in JSON are floats to kubectl.
fn go_float(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return value.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_kubectl_wait_can_use() {
        let pod = json!({"status": {"phase": "Running", "podIP": null,
            "containerStatuses": [{"ready": false, "restartCount": 3}, {"ready": true}],
            "loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"ratio": 1.5, "big": 1000000.0, "whole": 2.0, "tiny": 0.00001}});
        let cases = [
            ("{.status.phase}", Found::Scalar("Running".into())),
            (".status.phase", Found::Scalar("Running".into())),
            ("status.phase", Found::Scalar("Running".into())),
            ("{status.phase}", Found::Scalar("Running".into())),
            (
                "{.status.containerStatuses[0].ready}",
                Found::Scalar("false".into()),
            ),
            (
                "{.status.containerStatuses[-1].ready}",
                Found::Scalar("true".into()),
            ),
            (
                "{.status.containerStatuses[0].restartCount}",
                Found::Scalar("3".into()),
            ),
            ("{.status.containerStatuses[2].ready}", Found::Nothing),
            ("{.status.containerStatuses[-3].ready}", Found::Nothing),
            ("{.status.podIP}", Found::Nothing),
            ("{.status.missing.deeper}", Found::Nothing),
            ("{.status.phase.deeper}", Found::Nothing),
            (
                "{.metadata.labels.app\\.kubernetes\\.io/name}",
                Found::Scalar("web".into()),
            ),
            (
                "{.status.loadBalancer.ingress[0].ip}",
                Found::Scalar("10.0.0.1".into()),
            ),
            ("{.spec.ratio}", Found::Scalar("1.5".into())),
            ("{.spec.big}", Found::Scalar("1e+06".into())),
            ("{.spec.whole}", Found::Scalar("2".into())),
            ("{.spec.tiny}", Found::Scalar("1e-05".into())),
        ];
        for (text, expected) in cases {
            let path = JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!(path.find(&pod), expected, "{text}");
        }
        let conditions = json!({"status": {"conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True"}]}});
        let filtered = [
            (
                "{.status.conditions[?(@.type==\"Ready\")].status}",
                Found::Scalar("False".into()),
            ),
            (
                "{.status.conditions[?(@.type=='Ready')].reason}",
                Found::Scalar("ContainersNotReady".into()),
            ),
            (
                "{.status.conditions[?( @.type == \"Ready\" )].status}",
                Found::Scalar("False".into()),
            ),
            (
                "{.status.conditions[?(@.type==\"Gone\")].status}",
                Found::Nothing,
            ),
            (
                "{.status.conditions[?(@.status==\"True\")].type}",
                Found::Many(2),
            ),
        ];
        for (text, expected) in filtered {
            let path = JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!(path.find(&conditions), expected, "{text}");
        }
        assert_eq!(
            JsonPath::parse("status.conditions[?(@.type=='Ready')].status")
                .unwrap()
                .to_string(),
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        );
        let ingress = JsonPath::parse("{.status.loadBalancer.ingress}").unwrap();
        assert!(matches!(ingress.find(&pod), Found::Nested(Value::Array(_))));
        assert_eq!(
            JsonPath::parse("status.containerStatuses[0].ready")
                .unwrap()
                .to_string(),
            "{.status.containerStatuses[0].ready}"
        );
        assert_eq!(
            JsonPath::parse(".metadata.labels.app\\.kubernetes\\.io/name")
                .unwrap()
                .to_string(),
            "{.metadata.labels.app\\.kubernetes\\.io/name}"
        );
    }

    #[test]
    fn the_option_splits_at_the_first_equals_sign_and_drops_quotes() {
        let (path, value) = parse_option("{.status.phase}=Running").unwrap();
        assert_eq!(path.to_string(), "{.status.phase}");
        assert_eq!(value.as_deref(), Some("Running"));
        let (_, value) = parse_option("{.status.readyReplicas}='3'").unwrap();
        assert_eq!(value.as_deref(), Some("3"));
        let (_, value) = parse_option("{.status.loadBalancer.ingress}").unwrap();
        assert_eq!(value, None);
        let (path, value) =
            parse_option("{.status.conditions[?(@.type==\"Ready\")].status}=True").unwrap();
        assert_eq!(
            path.to_string(),
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        );
        assert_eq!(value.as_deref(), Some("True"));
    }

    #[test]
    fn what_kubectl_wait_cannot_use_is_refused() {
        let cases = [
            ("", "the path is empty"),
            ("{}", "the path is empty"),
            ("{.status.phase}=", "the value after '=' is empty"),
            ("{.status.conditions[*].status}", "'[*]' in"),
            ("{.status.conditions[0:2]}", "is not an array index"),
            ("{..phase}", "recursive descent"),
            ("{.status..phase}", "empty field name"),
            ("{.status.}", "empty field name"),
            ("{.status[0]x}", "right after an index"),
            ("{[0]}", "starts with an index"),
            ("{$.status}", "uses '$'"),
            ("{.items[?(@.x)]}", "only filters of the form"),
            ("{.items[?(@.x<3)]}", "only filters of the form"),
            ("{.items[?(.x==3)]}", "must start with @.FIELD"),
            ("{.items[?(@.x==3)}", "without its ')]'"),
            ("{.items[?(@.x==)]}", "compares with no plain value"),
            ("{.a[?(@.type!=\"x\")].status}=True", "with one single '='"),
            ("{.status.phase}=a=b", "with one single '='"),
            ("{.a b}", "space"),
            ("{.a\\b}", "escapes only a dot"),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", parse_option(text).err().unwrap());
            assert!(message.contains(expected), "{text}: {message}");
        }
    }
}
