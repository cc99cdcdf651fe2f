//! `--report PATH`: the whole wait written at exit for machines, as JSON (`.json`) or as
//! JUnit XML (`.xml`), which CI systems show as a test report: one test case per target,
//! failed when it was not ready.
//!
//! Targets appear as every other output shows them (no password, no options); the XML is
//! written by hand, since it is one element deep and its escaping is five characters.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tracing::warn;

use crate::log::millis;
use crate::schedule::attempts;
use crate::summary::{Summary, TargetEnd};
use crate::words::io_error_words;

/// Where the report goes and in which format, from the path's extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub path: PathBuf,
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Junit,
}

impl Report {
    /// `--report PATH`: the format is chosen by the extension, `.json` or `.xml`.
    pub fn parse(text: &str) -> Result<Report> {
        let path = PathBuf::from(text);
        let extension = path
            .extension()
            .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
        let format = match extension.as_deref() {
            Some("json") => ReportFormat::Json,
            Some("xml") => ReportFormat::Junit,
            _ => bail!(
                "'{text}' ends in neither .json nor .xml (expected e.g. holdup-report.json, or junit.xml for JUnit XML)"
            ),
        };
        Ok(Report { path, format })
    }

    /// Writes the report of `summary`. A report that cannot be written is said as a
    /// warning: it never changes how holdup ends.
    pub fn write(&self, summary: &Summary) {
        let text = match self.format {
            ReportFormat::Json => format!("{:#}\n", json_report(summary)),
            ReportFormat::Junit => junit_report(summary, SystemTime::now()),
        };
        if let Err(error) = write_through_temporary(&self.path, text.as_bytes()) {
            warn!(
                event = "report",
                path = %self.path.display(),
                error = %io_error_words(&error),
                "cannot write the report {}: {}",
                self.path.display(),
                io_error_words(&error)
            );
        }
    }
}

/// Written beside and renamed, so that a CI step reading it never sees half a report.
fn write_through_temporary(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// The JSON report: `{exit_code, outcome, elapsed_ms, targets: [{target, kind, ready,
/// elapsed_ms, attempts, reason, ready_after_ms}]}`.
pub fn json_report(summary: &Summary) -> Value {
    let targets: Vec<Value> = summary
        .targets
        .iter()
        .map(|target| {
            json!({
                "target": target.target,
                "kind": target.kind,
                "ready": target.ready_after.is_some(),
                "elapsed_ms": millis(target_elapsed(summary, target)),
                "attempts": target.attempts,
                "reason": target.reason,
                "ready_after_ms": target.ready_after.map(millis),
            })
        })
        .collect();
    let mut report = json!({
        "exit_code": summary.exit_code,
        "outcome": summary.ending.word(),
        "elapsed_ms": millis(summary.elapsed),
        "targets": targets,
    });
    if let Some(message) = ending_message(summary) {
        report["message"] = json!(message);
    }
    report
}

/// How long the wait was for a target: until it was ready, or the whole run.
fn target_elapsed(summary: &Summary, target: &TargetEnd) -> Duration {
    target.ready_after.unwrap_or(summary.elapsed)
}

/// What ended the run, when it is not the targets themselves.
fn ending_message(summary: &Summary) -> Option<String> {
    use crate::summary::Ending;
    match &summary.ending {
        Ending::Usage(message) | Ending::ExecFailed(message) | Ending::Internal(message) => {
            Some(message.clone())
        }
        Ending::Signal(name) => Some(format!("stopped by {name}")),
        Ending::Ready | Ending::DeadlinePassed | Ending::Failed => None,
    }
}

/// The JUnit XML report: one `testsuite` named holdup, one `testcase` per target (its
/// `classname` the kind), a `failure` for each target not ready.
pub fn junit_report(summary: &Summary, now: SystemTime) -> String {
    let failures = summary
        .targets
        .iter()
        .filter(|target| target.reason.is_some())
        .count();
    let errors = usize::from(ending_message(summary).is_some());
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"holdup\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{}\" timestamp=\"{}\">",
        summary.targets.len(),
        seconds(summary.elapsed),
        humantime::format_rfc3339_seconds(now)
    );
    let _ = writeln!(
        xml,
        "  <properties><property name=\"exit_code\" value=\"{}\"/><property name=\"outcome\" value=\"{}\"/></properties>",
        summary.exit_code,
        summary.ending.word()
    );
    for target in &summary.targets {
        let _ = write!(
            xml,
            "  <testcase name=\"{}\" classname=\"holdup.{}\" time=\"{}\"",
            escape(&target.target),
            target.kind,
            seconds(target_elapsed(summary, target))
        );
        match &target.reason {
            None => xml.push_str("/>\n"),
            Some(reason) => {
                let kind = if target.failed { "failed" } else { "not_ready" };
                let _ = writeln!(
                    xml,
                    ">\n    <failure type=\"{kind}\" message=\"{}\">{} ({})</failure>\n  </testcase>",
                    escape(reason),
                    escape(reason),
                    attempts(target.attempts)
                );
            }
        }
    }
    if let Some(message) = ending_message(summary) {
        let _ = writeln!(xml, "  <system-err>{}</system-err>", escape(&message));
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// Text as XML attribute or element content; characters XML 1.0 cannot hold at all (most
/// control characters) are dropped.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Ending;

    fn summary() -> Summary {
        Summary {
            exit_code: 1,
            ending: Ending::DeadlinePassed,
            elapsed: Duration::from_millis(60_004),
            timeout: Some(Duration::from_secs(60)),
            targets: vec![
                TargetEnd {
                    target: "tcp://db:5432".into(),
                    kind: "tcp",
                    ready_after: Some(Duration::from_millis(2_130)),
                    attempts: 22,
                    reason: None,
                    failed: false,
                },
                TargetEnd {
                    target: "http://api:8080/health".into(),
                    kind: "http",
                    ready_after: None,
                    attempts: 45,
                    reason: Some("HTTP 503 <Service Unavailable> & \"down\"\u{1}".into()),
                    failed: false,
                },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let report = json_report(&summary());
        assert_eq!(
            report,
            json!({
                "exit_code": 1,
                "outcome": "deadline_passed",
                "elapsed_ms": 60004,
                "targets": [
                    {"target": "tcp://db:5432", "kind": "tcp", "ready": true, "elapsed_ms": 2130,
                     "attempts": 22, "reason": null, "ready_after_ms": 2130},
                    {"target": "http://api:8080/health", "kind": "http", "ready": false,
                     "elapsed_ms": 60004, "attempts": 45,
                     "reason": "HTTP 503 <Service Unavailable> & \"down\"\u{1}", "ready_after_ms": null},
                ],
            })
        );
    }

    #[test]
    fn junit_has_one_case_per_target_and_a_failure_for_each_not_ready() {
        let xml = junit_report(&summary(), SystemTime::UNIX_EPOCH);
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<testsuite name=\"holdup\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"60.004\" timestamp=\"1970-01-01T00:00:00Z\">
  <properties><property name=\"exit_code\" value=\"1\"/><property name=\"outcome\" value=\"deadline_passed\"/></properties>
  <testcase name=\"tcp://db:5432\" classname=\"holdup.tcp\" time=\"2.130\"/>
  <testcase name=\"http://api:8080/health\" classname=\"holdup.http\" time=\"60.004\">
    <failure type=\"not_ready\" message=\"HTTP 503 &lt;Service Unavailable&gt; &amp; &quot;down&quot;\">HTTP 503 &lt;Service Unavailable&gt; &amp; &quot;down&quot; (45 attempts)</failure>
  </testcase>
</testsuite>
";
        assert_eq!(xml, expected);
    }

    #[test]
    fn the_extension_chooses_the_format() {
        assert_eq!(
            Report::parse("out/r.json").unwrap().format,
            ReportFormat::Json
        );
        assert_eq!(
            Report::parse("junit.XML").unwrap().format,
            ReportFormat::Junit
        );
        for refused in ["report", "report.txt", ""] {
            let error = Report::parse(refused).unwrap_err().to_string();
            assert!(error.contains(".json nor .xml"), "{refused}: {error}");
        }
    }
}
