//! The live view: when a person watches holdup on a terminal, one line per target at the
//! bottom of it, redrawn in place (state, time waited, attempts, what it is doing or why
//! it is not ready), while the usual lines scroll above it. The last state stays on the
//! screen.
//!
//! Only where someone looks at it: stderr a terminal, the text log format, not `-q`, and
//! a terminal that can move its cursor (not `TERM=dumb`). Colours follow `NO_COLOR`
//! (https://no-color.org): with it set, the view is drawn without them.
//!
//! Three escape sequences (cursor up, clear to the end of the screen, colour) are all it
//! needs, written by hand (see `log::draw_live`); the terminal's width comes from the same
//! ioctl any terminal library makes.

use std::convert::Infallible;
use std::io::IsTerminal as _;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::log::{self, Format, human};
use crate::probe::Target;
use crate::schedule::{Board, attempts};
use crate::summary::Summary;

/// At most this many redraws a second.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Whether to draw, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveView {
    colour: bool,
}

impl LiveView {
    /// A live view when someone watches stderr on a terminal that can show one.
    pub fn wanted(format: Format, quiet: bool) -> Option<LiveView> {
        let term = std::env::var("TERM").unwrap_or_default();
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        decide(
            std::io::stderr().is_terminal(),
            format,
            quiet,
            &term,
            no_colour,
        )
    }

    /// Redraws the view of the targets' records, until dropped.
    pub async fn follow(&self, targets: &[Target], board: &Board, start: Instant) -> Infallible {
        loop {
            let (width, height) = size();
            // Only the rows that fit are built: 10,000 targets cost a screenful a redraw,
            // not 10,000 lines of text.
            let rows: Vec<Row> = targets
                .iter()
                .take(fitting(targets.len(), height))
                .enumerate()
                .map(|(index, target)| {
                    let record = board.record(index);
                    Row {
                        target: target.to_string(),
                        state: match record.ready_after {
                            Some(_) => State::Ready,
                            None => State::Waiting,
                        },
                        elapsed: record.ready_after.unwrap_or_else(|| start.elapsed()),
                        attempts: record.attempts_started(),
                        reason: record.reason(),
                    }
                })
                .collect();
            log::draw_live(self.lines(&rows, targets.len(), (width, height)));
            sleep(REDRAW_EVERY).await;
        }
    }

    /// Draws the final state and leaves it on the screen.
    pub fn finish(&self, summary: &Summary) {
        let rows: Vec<Row> = summary
            .targets
            .iter()
            .map(|end| Row {
                target: end.target.clone(),
                state: match (&end.reason, end.failed) {
                    (None, _) => State::Ready,
                    (Some(_), true) => State::Failed,
                    (Some(_), false) => State::NotReady,
                },
                elapsed: end.ready_after.unwrap_or(summary.elapsed),
                attempts: end.attempts,
                reason: end.reason.clone().unwrap_or_default(),
            })
            .collect();
        log::draw_live(self.lines(&rows, rows.len(), size()));
        log::end_live();
    }

    /// One line per row of the first rows of `total`, fitted to a terminal of
    /// `(columns, lines)`; the rows that do not fit (see `fitting`) are counted on one
    /// last line. `rows` may hold only those that fit.
    fn lines(&self, rows: &[Row], total: usize, (width, height): (usize, usize)) -> Vec<String> {
        let shown = fitting(total, height).min(rows.len());
        let (rows, hidden) = (&rows[..shown], total - shown);
        let mut lines = self.row_lines(rows, width);
        if hidden > 0 {
            lines.push(fit(&format!("… and {hidden} more targets"), width));
        }
        lines
    }

    fn row_lines(&self, rows: &[Row], width: usize) -> Vec<String> {
        let target_width = rows
            .iter()
            .map(|row| row.target.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|row| {
                let (word, colour) = match row.state {
                    State::Ready => ("ready", "32"),
                    State::Waiting => ("waiting", "33"),
                    State::NotReady => ("not ready", "31"),
                    State::Failed => ("failed", "31"),
                };
                let mut plain = format!(
                    "{word:<9} {:<target_width$}  {:>6}  {}",
                    row.target,
                    human(row.elapsed),
                    attempts(row.attempts)
                );
                if row.state != State::Ready && !row.reason.is_empty() {
                    plain.push_str("  ");
                    plain.push_str(&row.reason);
                }
                let plain = fit(&plain, width);
                if self.colour {
                    // Only the state word is coloured: the rest stays readable anywhere.
                    let rest = &plain[word.len().min(plain.len())..];
                    format!("\x1b[{colour}m{word}\x1b[0m{rest}")
                } else {
                    plain
                }
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Ready,
    NotReady,
    Failed,
}

struct Row {
    target: String,
    state: State,
    elapsed: Duration,
    attempts: u32,
    reason: String,
}

fn decide(
    terminal: bool,
    format: Format,
    quiet: bool,
    term: &str,
    no_colour: bool,
) -> Option<LiveView> {
    let able = terminal && format == Format::Text && !quiet && term != "dumb" && !term.is_empty();
    able.then_some(LiveView { colour: !no_colour })
}

/// How many of `total` rows are drawn on a terminal `height` lines tall: a view taller
/// than the terminal could not be moved back over, so past its height the last line
/// counts the rest.
fn fitting(total: usize, height: usize) -> usize {
    let room = height.saturating_sub(2).max(1);
    if total > room { room - 1 } else { total }
}

/// The terminal's size in columns and lines, or 80 by 24 when it does not say.
fn size() -> (usize, usize) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct given, which lives on.
    let asked = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    if asked == 0 && size.ws_col > 0 && size.ws_row > 0 {
        (usize::from(size.ws_col), usize::from(size.ws_row))
    } else {
        (80, 24)
    }
}

/// `line` within `width - 1` characters (a line as wide as the terminal wraps on some),
/// cut with `…`.
fn fit(line: &str, width: usize) -> String {
    let room = width.saturating_sub(1).max(1);
    if line.chars().count() <= room {
        return line.to_string();
    }
    let mut kept: String = line.chars().take(room - 1).collect();
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_only_for_a_person_at_a_capable_terminal() {
        let on = Some(LiveView { colour: true });
        assert_eq!(
            decide(true, Format::Text, false, "xterm-256color", false),
            on
        );
        assert_eq!(decide(false, Format::Text, false, "xterm", false), None);
        assert_eq!(decide(true, Format::Json, false, "xterm", false), None);
        assert_eq!(decide(true, Format::Text, true, "xterm", false), None);
        assert_eq!(decide(true, Format::Text, false, "dumb", false), None);
        assert_eq!(decide(true, Format::Text, false, "", false), None);
        assert_eq!(
            decide(true, Format::Text, false, "xterm", true),
            Some(LiveView { colour: false })
        );
    }

    #[test]
    fn one_line_per_target_within_the_width() {
        let rows = [
            Row {
                target: "tcp://db:5432".into(),
                state: State::Ready,
                elapsed: Duration::from_millis(2130),
                attempts: 22,
                reason: String::new(),
            },
            Row {
                target: "http://api:8080/health".into(),
                state: State::Waiting,
                elapsed: Duration::from_secs(12),
                attempts: 45,
                reason: "HTTP 503 Service Unavailable (expected 200-399)".into(),
            },
        ];
        let plain = LiveView { colour: false };
        assert_eq!(
            plain.lines(&rows, 2, (200, 24)),
            [
                "ready     tcp://db:5432            2.13s  22 attempts",
                "waiting   http://api:8080/health   12.0s  45 attempts  HTTP 503 Service Unavailable (expected 200-399)",
            ]
        );
        let narrow = plain.lines(&rows, 2, (40, 24));
        assert!(
            narrow.iter().all(|line| line.chars().count() <= 39),
            "{narrow:?}"
        );
        assert!(narrow[1].ends_with('…'));
        let coloured = LiveView { colour: true }.lines(&rows, 2, (200, 24));
        // A terminal of 3 lines has room for one: the count of the targets.
        let short = plain.lines(&rows, 2, (200, 3));
        assert_eq!(short.len(), 1, "{short:?}");
        assert_eq!(short[0], "… and 2 more targets");
        let four = plain.lines(&rows, 2, (200, 4));
        assert_eq!(four.len(), 2, "{four:?}");
        assert!(coloured[0].starts_with("\x1b[32mready\x1b[0m     tcp://db:5432"));
    }

    #[test]
    fn a_long_list_is_a_screenful_and_a_count() {
        // A list from --targets-from: only what fits is built and drawn.
        let shown = fitting(10_000, 24);
        assert_eq!(shown, 21);
        let rows: Vec<Row> = (0..shown)
            .map(|port| Row {
                target: format!("tcp://127.0.0.1:{}", port + 1),
                state: State::Waiting,
                elapsed: Duration::from_secs(1),
                attempts: 1,
                reason: "connection refused".into(),
            })
            .collect();
        let lines = LiveView { colour: false }.lines(&rows, 10_000, (80, 24));
        assert_eq!(lines.len(), 22, "{lines:?}");
        assert_eq!(lines[21], "… and 9979 more targets");
        assert_eq!(fitting(5, 24), 5);
        assert_eq!(fitting(0, 24), 0);
    }
}
