//! YAML (a kubeconfig) as JSON values, so that serde's derived readers take it from there
//! as they take the API server's JSON.

use serde_json::Value;
use yaml_rust2::Yaml;

/// YAML as JSON values, so that serde's derived readers can take it from there.
pub fn yaml_to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
        Yaml::Boolean(value) => Value::Bool(value),
        Yaml::Integer(value) => Value::from(value),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(text), Value::Number),
        Yaml::String(text) => Value::String(text),
        Yaml::Array(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Hash(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (scalar_text(key), yaml_to_json(value)))
                .collect(),
        ),
    }
}

fn scalar_text(key: Yaml) -> String {
    match yaml_to_json(key) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use yaml_rust2::YamlLoader;

    use super::*;

    #[test]
    fn yaml_becomes_json() {
        let yaml = YamlLoader::load_from_str("a: [1, 2.5, true, ~, x]\n3: {b: c}\n")
            .unwrap()
            .remove(0);
        assert_eq!(
            yaml_to_json(yaml),
            serde_json::json!({"a": [1, 2.5, true, null, "x"], "3": {"b": "c"}})
        );
    }
}
