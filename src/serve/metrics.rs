//! `/metrics`: the [`Watch`] in Prometheus' text exposition format (version 0.0.4), one
//! series per target labelled with the target as it may be shown (never a password) and
//! its kind.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use crate::keep::{DURATION_BUCKETS, FailureClass, Watch};
use crate::probe::Target;

/// The whole exposition.
pub fn render(targets: &[Target], watch: &Watch) -> String {
    let mut out = String::new();
    let labels: Vec<String> = targets
        .iter()
        .map(|target| {
            format!(
                "target=\"{}\",kind=\"{}\"",
                escape(&target.to_string()),
                target.kind()
            )
        })
        .collect();
    let states: Vec<_> = (0..watch.len()).map(|index| watch.state(index)).collect();

    family(
        &mut out,
        "holdup_ready",
        "gauge",
        "Whether enough targets are ready (1) or not (0): every one, or --min-ready N.",
    );
    let _ = writeln!(out, "holdup_ready {}", u8::from(watch.enough_ready()));

    family(
        &mut out,
        "holdup_target_ready",
        "gauge",
        "Whether the target is ready (1) or not (0), as of its latest attempt.",
    );
    for (labels, state) in labels.iter().zip(&states) {
        let _ = writeln!(
            out,
            "holdup_target_ready{{{labels}}} {}",
            u8::from(state.ready)
        );
    }

    family(
        &mut out,
        "holdup_target_attempts_total",
        "counter",
        "Attempts made on the target.",
    );
    for (labels, state) in labels.iter().zip(&states) {
        let _ = writeln!(
            out,
            "holdup_target_attempts_total{{{labels}}} {}",
            state.attempts
        );
    }

    family(
        &mut out,
        "holdup_target_failures_total",
        "counter",
        "Failed attempts on the target, by class: not_ready (the target said no), timeout (no answer within the attempt timeout), permanent (what would end a wait with exit 3).",
    );
    for (labels, state) in labels.iter().zip(&states) {
        for (class, count) in FailureClass::ALL.iter().zip(state.failures) {
            let _ = writeln!(
                out,
                "holdup_target_failures_total{{{labels},reason_class=\"{}\"}} {count}",
                class.label()
            );
        }
    }

    family(
        &mut out,
        "holdup_target_last_change_timestamp_seconds",
        "gauge",
        "When the target last became ready or not ready (holdup's start while it never has), in seconds since the Unix epoch.",
    );
    for (labels, state) in labels.iter().zip(&states) {
        let seconds = state
            .last_change
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let _ = writeln!(
            out,
            "holdup_target_last_change_timestamp_seconds{{{labels}}} {seconds:.3}"
        );
    }

    family(
        &mut out,
        "holdup_target_attempt_duration_seconds",
        "histogram",
        "How long attempts on the target took.",
    );
    for (labels, state) in labels.iter().zip(&states) {
        let mut cumulated = 0;
        for (bound, count) in DURATION_BUCKETS.iter().zip(state.duration_buckets) {
            cumulated += count;
            let _ = writeln!(
                out,
                "holdup_target_attempt_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulated}"
            );
        }
        let name = "holdup_target_attempt_duration_seconds";
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            state.attempts
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", state.duration_sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", state.attempts);
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and line feed
/// escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), r"a\nb");
    }

    #[test]
    fn every_series_of_a_fresh_target() {
        let targets = vec![Target::parse("db:5432").unwrap()];
        let text = render(&targets, &Watch::new(1, 1));
        for line in [
            "holdup_ready 0\n",
            "holdup_target_ready{target=\"tcp://db:5432\",kind=\"tcp\"} 0\n",
            "holdup_target_attempts_total{target=\"tcp://db:5432\",kind=\"tcp\"} 0\n",
            "holdup_target_failures_total{target=\"tcp://db:5432\",kind=\"tcp\",reason_class=\"timeout\"} 0\n",
            "holdup_target_attempt_duration_seconds_bucket{target=\"tcp://db:5432\",kind=\"tcp\",le=\"0.005\"} 0\n",
            "holdup_target_attempt_duration_seconds_bucket{target=\"tcp://db:5432\",kind=\"tcp\",le=\"+Inf\"} 0\n",
            "holdup_target_attempt_duration_seconds_count{target=\"tcp://db:5432\",kind=\"tcp\"} 0\n",
            "# TYPE holdup_target_attempt_duration_seconds histogram\n",
        ] {
            assert!(text.contains(line), "lacks {line:?}:\n{text}");
        }
    }
}
