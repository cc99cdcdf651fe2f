//! Log output: every line holdup prints goes to stderr through here, as plain text or
//! as one JSON object per line. Stdout belongs to the command holdup may exec.
//!
//! A field named `settings` carries a JSON object written as text (`settings = %value`);
//! in a JSON line it is that object, not a string.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use clap::ValueEnum;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `holdup: <message>`, one line per event.
    Text,
    /// One JSON object per line: time, level, message and the event's fields.
    Json,
}

/// How much to print: `-q` errors only, default progress, `-v` every attempt,
/// `-vv` also what the libraries underneath say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verbosity {
    max_level: Level,
    libraries: bool,
}

impl Verbosity {
    pub fn new(quiet: bool, verbose: u8) -> Self {
        let max_level = match (quiet, verbose) {
            (true, _) => Level::ERROR,
            (false, 0) => Level::INFO,
            (false, 1) => Level::DEBUG,
            (false, _) => Level::TRACE,
        };
        Verbosity {
            max_level,
            libraries: verbose >= 2,
        }
    }
}

/// Installs the global logger. Called once, before anything can log.
pub fn init(format: Format, verbosity: Verbosity) {
    let subscriber = tracing_subscriber::registry().with(Stderr { format, verbosity });
    // Only fails when a logger is already set, which would be a bug in main.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct Stderr {
    format: Format,
    verbosity: Verbosity,
}

impl<S: Subscriber> Layer<S> for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        let ours = metadata.target().starts_with(env!("CARGO_CRATE_NAME"));
        *metadata.level() <= self.verbosity.max_level && (ours || self.verbosity.libraries)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let line = match self.format {
            Format::Text => text_line(metadata.target(), fields),
            Format::Json => json_line(*metadata.level(), metadata.target(), fields),
        };
        // A live view at the bottom of the terminal goes under each new line, so that the
        // lines stay in the scrollback and the view stays in one place.
        let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = live.erase();
        out.push_str(&line);
        out.push_str(&live.under_a_line());
        // Nothing sensible is left to do when stderr is gone.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }
}

/// At most this often a log line redraws the live view beneath it; in a burst of lines
/// (10,000 targets each saying it is waiting) the view is left for the next redraw, so
/// that the terminal receives each line once and not a screenful with each.
const UNDER_LINES_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The lines of the live view, below the log lines.
struct Live {
    lines: Vec<String>,
    /// Whether `lines` are on the terminal now (not erased by a log line).
    shown: bool,
    /// When a log line last redrew the view beneath it.
    under_a_line_at: Option<std::time::Instant>,
}

static LIVE: std::sync::Mutex<Live> = std::sync::Mutex::new(Live {
    lines: Vec::new(),
    shown: false,
    under_a_line_at: None,
});

impl Live {
    /// What takes the cursor back to the first line of the view and clears to the end
    /// of the screen.
    fn erase(&self) -> String {
        match self.lines.len() {
            shown if shown > 0 && self.shown => format!("\x1b[{shown}A\r\x1b[J"),
            _ => String::new(),
        }
    }

    /// The view again beneath a log line just written, unless a line did so a moment ago.
    fn under_a_line(&mut self) -> String {
        let now = std::time::Instant::now();
        let due = self
            .under_a_line_at
            .is_none_or(|at| now.duration_since(at) >= UNDER_LINES_EVERY);
        if due {
            self.under_a_line_at = Some(now);
            self.shown = true;
            self.drawn()
        } else {
            self.shown = false;
            String::new()
        }
    }

    fn drawn(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Draws `lines` in place of the live view drawn before (each already fitted to the
/// terminal's width: a wrapped line would leave the view out of place).
pub fn draw_live(lines: Vec<String>) {
    let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out = match live.erase() {
        // Nothing to take back: clear from the start of the line all the same, so that
        // every redraw begins alike.
        nothing if nothing.is_empty() => "\r\x1b[J".to_string(),
        erase => erase,
    };
    live.lines = lines;
    live.shown = true;
    out.push_str(&live.drawn());
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Leaves the live view on the terminal as it is: later lines go below it.
pub fn end_live() {
    let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    live.lines.clear();
    live.shown = false;
}

fn text_line(module: &str, fields: Fields) -> String {
    let mut line = String::from("holdup: ");
    if !module.starts_with(env!("CARGO_CRATE_NAME")) {
        // Library events are only shown with -vv; say where they come from.
        let _ = write!(line, "[{module}] ");
        for (name, value) in &fields.others {
            let _ = write!(line, "{name}={} ", plain(value));
        }
    }
    line.push_str(&fields.message);
    line.push('\n');
    line
}

fn json_line(level: Level, module: &str, fields: Fields) -> String {
    // Written by hand so that time, level and message come first, as people scan them.
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let mut line = format!(
        "{{\"time\":{},\"level\":{},\"message\":{}",
        Value::String(now),
        Value::String(level.as_str().to_lowercase()),
        Value::String(fields.message)
    );
    if !module.starts_with(env!("CARGO_CRATE_NAME")) {
        let _ = write!(line, ",\"module\":{}", Value::String(module.into()));
    }
    for (name, value) in fields.others {
        let _ = write!(line, ",{}:{value}", Value::String(name));
    }
    line.push_str("}\n");
    line
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = plain(&value);
        } else if field.name() == "settings"
            && let Value::String(text) = &value
            && let Ok(object @ Value::Object(_)) = serde_json::from_str(text)
        {
            self.others.push((field.name().to_string(), object));
        } else {
            self.others.push((field.name().to_string(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
}

/// A duration as people read it in a log line: `850ms`, `2.1s`, `1m5s`.
pub fn human(duration: Duration) -> String {
    // Rounded, so that a deadline-clamped 999.7 ms reads as the 1s the user gave.
    let millis = duration.as_micros().saturating_add(500) / 1000;
    if millis < 1_000 {
        format!("{millis}ms")
    } else if millis < 10_000 {
        format!("{:.2}s", duration.as_secs_f64())
    } else if millis < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let seconds = millis / 1000;
        match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
            (0, minutes, 0) => format!("{minutes}m"),
            (0, minutes, seconds) => format!("{minutes}m{seconds}s"),
            (hours, minutes, _) => format!("{hours}h{minutes}m"),
        }
    }
}

/// Milliseconds for machine-readable fields; saturates instead of wrapping.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let cases = [
            (Duration::from_millis(0), "0ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_micros(999_700), "1.00s"),
            (Duration::from_micros(1_499), "1ms"),
            (Duration::from_millis(1_000), "1.00s"),
            (Duration::from_millis(2_134), "2.13s"),
            (Duration::from_millis(12_340), "12.3s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_micros(59_999_700), "1m"),
            (Duration::from_secs(65), "1m5s"),
            (Duration::from_secs(7_380), "2h3m"),
        ];
        for (duration, expected) in cases {
            assert_eq!(human(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn json_lines_put_time_level_and_message_first() {
        let fields = Fields {
            message: "db \"ready\"".into(),
            others: vec![
                ("attempts".into(), Value::from(3)),
                ("target".into(), Value::from("tcp://db:1")),
            ],
        };
        let line = json_line(Level::INFO, "holdup::schedule", fields);
        assert!(line.starts_with("{\"time\":\""), "{line}");
        let rest = &line[line.find("\"level\"").unwrap()..];
        assert_eq!(
            rest,
            "\"level\":\"info\",\"message\":\"db \\\"ready\\\"\",\"attempts\":3,\"target\":\"tcp://db:1\"}\n"
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["attempts"], 3);
    }

    #[test]
    fn library_lines_name_their_module() {
        let fields = Fields {
            message: "sent".into(),
            others: vec![("id".into(), Value::from(7))],
        };
        assert_eq!(
            text_line("hickory_net::udp", fields),
            "holdup: [hickory_net::udp] id=7 sent\n"
        );
        let line = json_line(
            Level::DEBUG,
            "hickory_net::udp",
            Fields {
                message: "sent".into(),
                others: vec![],
            },
        );
        assert!(
            line.ends_with(
                ",\"level\":\"debug\",\"message\":\"sent\",\"module\":\"hickory_net::udp\"}\n"
            ),
            "{line}"
        );
    }

    #[test]
    fn verbosity_levels() {
        assert_eq!(Verbosity::new(true, 3).max_level, Level::ERROR);
        assert_eq!(Verbosity::new(false, 0).max_level, Level::INFO);
        assert_eq!(Verbosity::new(false, 1).max_level, Level::DEBUG);
        assert!(!Verbosity::new(false, 1).libraries);
        assert!(Verbosity::new(false, 2).libraries);
    }
}
