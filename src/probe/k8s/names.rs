//! Kubernetes names and label selectors, checked as the API server checks them, so that a
//! target that could never match anything is refused before anything is probed.

use anyhow::{Result, anyhow, bail};

/// The forms of a k8s target, for error messages.
pub const FORMS: &str = "k8s://[NAMESPACE/]SERVICE, k8s://[NAMESPACE/]job/NAME, k8s://[NAMESPACE/]pods/SELECTOR, \
     k8s://[NAMESPACE/]deployment/NAME (or statefulset, daemonset) or \
     k8s://[NAMESPACE/]RESOURCE[.GROUP]/NAME#condition=TYPE (or #jsonpath=, #deleted, #exists)";

#[derive(Clone, Copy)]
pub enum Naming {
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label: Service names (start with a letter).
    ServiceLabel,
    /// RFC 1123 subdomain: Job names.
    Subdomain,
    /// Any resource's object: most are subdomains, some (RBAC objects) allow more, but none
    /// has a space, a `/` or a `%`.
    Object,
}

pub fn check_name(name: &str, what: &str, naming: Naming) -> Result<()> {
    if let Naming::Object = naming {
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | '%');
        if name.len() > 253 || name.chars().any(bad) || name == "." || name == ".." {
            bail!(
                "'{name}' is not a valid {what} (no spaces, '/' or '%', at most 253; expected {FORMS})"
            );
        }
        return Ok(());
    }
    let (limit, dots, rule) = match naming {
        Naming::Label => (63, false, "lower-case letters, digits and '-'"),
        Naming::ServiceLabel => (
            63,
            false,
            "lower-case letters, digits and '-', starting with a letter",
        ),
        Naming::Subdomain | Naming::Object => {
            (253, true, "lower-case letters, digits, '-' and '.'")
        }
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edges_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let first_ok = !matches!(naming, Naming::ServiceLabel)
        || name.starts_with(|c: char| c.is_ascii_lowercase());
    if name.len() > limit || !name.chars().all(allowed) || !edges_ok || !first_ok {
        bail!("'{name}' is not a valid {what} ({rule}, at most {limit}; expected {FORMS})");
    }
    Ok(())
}

/// A resource as a target names it: `certificates`, `certificate.cert-manager.io`, `deploy`.
pub fn check_resource(word: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.');
    if word.is_empty()
        || !word.starts_with(|c: char| c.is_ascii_lowercase())
        || !word.chars().all(allowed)
        || word.ends_with('.')
        || word.contains("..")
    {
        bail!(
            "'{word}' is not a resource (expected a word such as deployment, certificate or certificates.cert-manager.io: {FORMS})"
        );
    }
    Ok(())
}

/// Checks a label selector as the API server would read it: requirements separated by
/// commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`,
/// `key in (a,b)` or `key notin (a,b)`.
pub fn check_selector(selector: &str) -> Result<()> {
    let fail = |requirement: &str, why: &str| {
        anyhow!(
            "invalid label selector '{selector}': '{requirement}' {why} (expected e.g. pods/app=web,tier!=cache or pods/app%20in%20(web,api))"
        )
    };
    let mut depth = 0usize;
    let mut start = 0;
    let mut requirements = Vec::new();
    for (index, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| fail(selector, "has an unmatched ')'"))?
            }
            ',' if depth == 0 => {
                requirements.push(&selector[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(fail(selector, "has an unmatched '('"));
    }
    requirements.push(&selector[start..]);
    for requirement in requirements {
        let trimmed = requirement.trim();
        if trimmed.is_empty() {
            return Err(fail(requirement, "is empty"));
        }
        let set_based = [" notin ", " in "]
            .iter()
            .find_map(|operator| trimmed.split_once(operator));
        let (key, values): (&str, Vec<&str>) = if let Some((key, set)) = set_based {
            let inner = set
                .trim()
                .strip_prefix('(')
                .and_then(|set| set.strip_suffix(')'))
                .ok_or_else(|| fail(requirement, "needs its values in parentheses"))?;
            (key, inner.split(',').map(str::trim).collect())
        } else if let Some(key) = trimmed.strip_prefix('!') {
            (key, Vec::new())
        } else if let Some((key, value)) = ["!=", "==", "="]
            .iter()
            .find_map(|operator| trimmed.split_once(operator))
        {
            (key, vec![value])
        } else {
            (trimmed, Vec::new())
        };
        if !label_key_ok(key.trim()) {
            return Err(fail(requirement, "has no valid label key"));
        }
        if !values.iter().all(|value| label_value_ok(value)) {
            return Err(fail(requirement, "has an invalid label value"));
        }
    }
    Ok(())
}

fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|prefix| check_name(prefix, "", Naming::Subdomain).is_ok());
    prefix_ok && !name.is_empty() && label_value_ok(name)
}

fn label_value_ok(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())))
}
