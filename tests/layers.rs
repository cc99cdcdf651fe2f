//! The module layers of ARCHITECTURE.md hold in the code: no module imports one that imports
//! it back (directly or through others), every import points to the same layer or one
//! beneath, and no kind of target imports another kind.
//!
//! Imports are read from the source text: every `crate::…`, `super::…` and `self::…` path
//! outside test modules, resolved to the longest module that exists as a file, and every
//! `mod child;` (a parent uses its children).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// `src/probe/dns/answer.rs` → `probe::dns::answer`; `src/main.rs` → ``.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix("src").expect("a file under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

fn source_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file before its test module, without comments.
fn code(text: &str) -> String {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path that `code`, in module `module`, refers to, made absolute.
fn referred_modules(module: &str, code: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"]
        .iter()
        .flat_map(|root| code.match_indices(root).map(|(index, _)| index))
    {
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !before_ok {
            continue;
        }
        let path: String = code[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':')
            .collect();
        let mut absolute: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(String::from).collect()
        };
        for segment in path.split("::").filter(|segment| !segment.is_empty()) {
            match segment {
                "crate" => absolute.clear(),
                "super" => {
                    absolute.pop();
                }
                "self" => {}
                name => absolute.push(name.to_string()),
            }
        }
        found.insert(absolute);
    }
    // A parent uses its children (`mod api;` then `api::Api`), so a child that imports its
    // parent closes a circle.
    for line in code.lines() {
        let line = line
            .trim()
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ");
        if let Some(child) = line
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            let mut absolute: Vec<String> = module
                .split("::")
                .filter(|part| !part.is_empty())
                .map(String::from)
                .collect();
            absolute.push(child.to_string());
            found.insert(absolute);
        }
    }
    found
}

/// The layer of each module file, from the table in ARCHITECTURE.md: rows `| N. … | `a.rs`,
/// `probe/*` … |`.
fn layers() -> Vec<(u32, String)> {
    let text = fs::read_to_string("ARCHITECTURE.md").expect("ARCHITECTURE.md exists");
    let mut layers = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| ") else {
            continue;
        };
        let Some((number, rest)) = rest.split_once('.') else {
            continue;
        };
        let Ok(number) = number.trim().parse::<u32>() else {
            continue;
        };
        let modules = rest.split('|').nth(1).unwrap_or_default();
        for name in modules.split('`').skip(1).step_by(2) {
            layers.push((number, name.to_string()));
        }
    }
    assert!(!layers.is_empty(), "ARCHITECTURE.md has no table of layers");
    layers
}

fn layer_of(file: &str, layers: &[(u32, String)]) -> u32 {
    let relative = file.trim_start_matches("src/");
    layers
        .iter()
        .find(|(_, name)| name == relative)
        .or_else(|| {
            layers.iter().find(|(_, name)| {
                name.strip_suffix('*')
                    .is_some_and(|prefix| relative.starts_with(prefix))
            })
        })
        .map(|(number, _)| *number)
        .unwrap_or_else(|| panic!("{file} is in no layer of ARCHITECTURE.md"))
}

/// The kind folder or file a file of `probe/` belongs to (`dns` for `probe/dns/answer.rs`),
/// or None for the files shared by all kinds.
fn kind_of(module: &str) -> Option<&str> {
    let rest = module.strip_prefix("probe::")?;
    let kind = rest.split("::").next()?;
    (!matches!(kind, "options" | "target_url" | "conn")).then_some(kind)
}

#[test]
fn imports_point_down_the_layers_of_architecture_md() {
    let mut files = Vec::new();
    source_files(Path::new("src"), &mut files);
    let by_module: BTreeMap<String, String> = files
        .iter()
        .map(|file| (module_of(file), file.display().to_string()))
        .collect();
    let layers = layers();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let text = fs::read_to_string(file).expect("a readable source file");
        for mut path in referred_modules(&module, &code(&text)) {
            // The longest prefix that is a module of its own file.
            while !path.is_empty() && !by_module.contains_key(&path.join("::")) {
                path.pop();
            }
            let target = path.join("::");
            if target != module && by_module.contains_key(&target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }

    let mut problems = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            let (from_file, to_file) = (&by_module[from], &by_module[to]);
            let (from_layer, to_layer) = (layer_of(from_file, &layers), layer_of(to_file, &layers));
            if to_layer > from_layer {
                problems.push(format!(
                    "{from_file} (layer {from_layer}) imports {to_file} (layer {to_layer}), a layer above"
                ));
            }
            // The Kubernetes client serves the probes and what is not a probe (Events on the
            // pod): it must never lean on a probe.
            if from.starts_with("kube") && to.starts_with("probe") {
                problems.push(format!(
                    "{from_file} imports {to_file}: the Kubernetes client imports a probe"
                ));
            }
            if let (Some(a), Some(b)) = (kind_of(from), kind_of(to))
                && a != b
            {
                problems.push(format!(
                    "{from_file} imports {to_file}: a kind imports another kind"
                ));
            }
        }
    }
    // The scheduler is generic, though it sits above the probes: neither knows the other.
    const TIME: [&str; 5] = ["pace", "schedule", "board", "wait", "keep"];
    for (from, targets) in &edges {
        for to in targets {
            let time_to_probe = TIME.contains(&from.as_str()) && to.starts_with("probe");
            let probe_to_time = from.starts_with("probe") && TIME.contains(&to.as_str());
            if time_to_probe || probe_to_time {
                problems.push(format!(
                    "{} imports {}: the scheduler and the probes must not know each other",
                    by_module[from], by_module[to]
                ));
            }
        }
    }
    for module in TIME {
        assert!(
            by_module.contains_key(module),
            "src/{module}.rs is gone: update this test and ARCHITECTURE.md"
        );
    }
    assert!(
        edges
            .get("wait")
            .is_some_and(|to| ["schedule", "board", "pace"]
                .iter()
                .all(|m| to.contains(*m))),
        "wait.rs follows the schedule, draws on the pace and writes the board: {edges:?}"
    );
    // Serving keeps probing on the same schedule and budget, not on a copy of them.
    assert!(
        edges
            .get("keep")
            .is_some_and(|to| ["schedule", "pace"].iter().all(|m| to.contains(*m))),
        "keep.rs follows the schedule and draws on the pace: {edges:?}"
    );
    // Circles: a module that reaches itself through the imports.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = edges[start].iter().collect();
        while let Some(next) = stack.pop() {
            if next == start {
                problems.push(format!(
                    "{} imports itself through others",
                    by_module[start]
                ));
                break;
            }
            if seen.insert(next) {
                stack.extend(edges.get(next).into_iter().flatten());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(edges.len() > 10, "too few imports read: {edges:?}");
}

#[test]
fn paths_resolve_as_rust_resolves_them() {
    let found = referred_modules(
        "probe::k8s::rollout",
        "use super::readiness::Verdict;\nuse crate::kube::api::Api;\nlet x = self::inner::f();",
    );
    let expected: BTreeSet<Vec<String>> = [
        vec!["probe", "k8s", "readiness"],
        vec!["kube", "api"],
        vec!["probe", "k8s", "rollout", "inner", "f"],
    ]
    .iter()
    .map(|path| path.iter().map(|part| part.to_string()).collect())
    .collect();
    assert_eq!(found, expected);
    assert_eq!(module_of(Path::new("src/probe/dns/mod.rs")), "probe::dns");
    assert_eq!(module_of(Path::new("src/main.rs")), "");
}
