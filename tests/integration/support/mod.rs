//! What every integration test needs: running the real holdup binary and looking at how it
//! ended, plus the servers it is run against.

pub mod daemon;
pub mod dns;
pub mod docker;
pub mod grpc;
pub mod kube;
pub mod mariadb;
pub mod net;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod tls;

use std::ffi::OsStr;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Longest any single run of holdup may take before a test gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The hang guard for what must happen at once, or soon after the event that allows it (a
/// port opening, a record appearing, a signal): far more than a healthy run needs on a
/// loaded 2-core machine, far less than the deadlines of 30 s and more such runs are given.
/// How soon exactly is for the scheduler's paused-clock unit tests; here the order of
/// events and the attempt counts say it.
pub const SOON: Duration = Duration::from_secs(10);

/// How long past its deadline a run may end on a loaded machine: starting the process, the
/// attempt the deadline cuts off, exiting. Tests that check a deadline holds give their
/// attempts far longer than deadline and slack together, so overstaying shows.
pub const DEADLINE_SLACK: Duration = Duration::from_secs(5);

/// Seconds as a [`Duration`]: `secs(1.5)`.
pub fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// Whether this is a CI run (`CI` set to anything but empty, `false` or `0`), where every
/// test must really run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
}

/// `Some` when a test's prerequisite (root, a Docker engine, the static binary) is there.
/// Otherwise fails the test in CI, and elsewhere prints a notice and returns `None` so
/// that the test can return.
#[track_caller]
pub fn need<T>(test: &str, prerequisite: Result<T, String>) -> Option<T> {
    match prerequisite {
        Ok(found) => Some(found),
        Err(why) => {
            assert!(!in_ci(), "{test}: {why} (CI must run this test)");
            // Straight to stderr: libtest hides what a passing test prints with eprintln!,
            // and a skipped test must never pass silently.
            let _ = writeln!(std::io::stderr(), "notice: skipping {test}: {why}");
            None
        }
    }
}

/// The user (uid and gid) that tests run holdup as to see a permission denied: root is let
/// in everywhere.
pub const NOBODY: u32 = 65534;

/// holdup run as [`NOBODY`] (by setpriv, with no supplementary groups); needs root.
#[track_caller]
pub fn holdup_as_nobody(test: &str) -> Option<Holdup> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let root = if root {
        Ok(())
    } else {
        Err("needs root, to run holdup as another user".to_string())
    };
    need(test, root)?;
    let user = format!("--reuid={NOBODY}");
    let group = format!("--regid={NOBODY}");
    Some(Holdup::wrapped_in(
        "setpriv",
        &[&user, &group, "--clear-groups"],
    ))
}

/// Asserts that [`NOBODY`] really is refused `test_flag` (`-r`, `-w`, `-x` of test(1)) on
/// `path`: a test of a permission denied must not pass by accident.
#[track_caller]
pub fn assert_nobody_is_refused(test_flag: &str, path: &std::path::Path) {
    let allowed = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "test",
            test_flag,
        ])
        .arg(path)
        .status()
        .expect("setpriv runs")
        .success();
    assert!(
        !allowed,
        "uid {NOBODY} is not refused {test_flag} on {}",
        path.display()
    );
}

/// Waits for `child` to end, until `limit`; `None` if it is still running then.
pub fn wait_until(child: &mut Child, limit: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > limit {
            return Ok(None);
        }
        // Polling the child: there is no portable wait-with-timeout in std.
        thread::sleep(Duration::from_millis(1));
    }
}

/// The first line from `lines` that contains `needle`, waiting until `limit`.
pub fn first_line_with(lines: &Receiver<String>, needle: &str, limit: Instant) -> Option<String> {
    first_line_where(lines, |line| line.contains(needle), limit)
}

/// The first line from `lines` that `matches`, waiting until `limit`.
fn first_line_where(
    lines: &Receiver<String>,
    matches: impl Fn(&str) -> bool,
    limit: Instant,
) -> Option<String> {
    loop {
        match lines.recv_timeout(limit.saturating_duration_since(Instant::now())) {
            Ok(line) if matches(&line) => return Some(line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// The `event` of a `--log-format json` line, if it is one.
fn event_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value["event"].as_str().map(str::to_string)
}

/// A holdup command line to run.
pub struct Holdup {
    command: Command,
    /// What holdup reads on standard input; none: /dev/null.
    stdin: Option<Vec<u8>>,
}

/// Starts a holdup command line.
pub fn holdup() -> Holdup {
    Holdup {
        command: command(env!("CARGO_BIN_EXE_holdup").as_ref()),
        stdin: None,
    }
}

impl Holdup {
    /// Holdup run through another program (`unshare ...`): `wrapper wrapper_args holdup args`.
    pub fn wrapped_in(wrapper: &str, wrapper_args: &[&str]) -> Holdup {
        Holdup::command_line(wrapper, wrapper_args).arg(env!("CARGO_BIN_EXE_holdup"))
    }

    /// Any command line whose output and end are checked like holdup's: the static binary
    /// in an empty root (`chroot DIR /holdup ...`), the image (`docker run ...`).
    pub fn command_line(program: &str, args: &[&str]) -> Holdup {
        let mut command = command(program.as_ref());
        command.args(args);
        Holdup {
            command,
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// Gives holdup `bytes` on standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Starts holdup with this limit of open files (soft and hard), as a container might.
    pub fn open_files_limit(mut self, soft: u64, hard: u64) -> Self {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe.
        unsafe {
            self.command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        self
    }

    pub fn spawn(mut self) -> Running {
        let started = Instant::now();
        if self.stdin.is_some() {
            self.command.stdin(Stdio::piped());
        }
        let mut child = self.command.spawn().expect("cannot start holdup");
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            thread::spawn(move || {
                // holdup may stop reading early (a bad line): that is for the test to see.
                let _ = pipe.write_all(&bytes);
            });
        }
        let (lines_tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let collected = stderr.clone();
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push_str(&line);
                collected.lock().unwrap().push('\n');
                let _ = lines_tx.send(line);
            }
        });
        let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
        let stdout_reader = thread::spawn(move || {
            let mut stdout = String::new();
            let _ = stdout_pipe.read_to_string(&mut stdout);
            stdout
        });
        Running {
            child,
            started,
            lines,
            stderr,
            stderr_reader,
            stdout_reader,
        }
    }

    /// Runs to the end.
    pub fn run(self) -> Finished {
        self.spawn().finish()
    }
}

/// A command with piped output and none of the HOLDUP_* variables of the test's own
/// environment.
fn command(program: &OsStr) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOLDUP_") {
            command.env_remove(name);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A holdup process that is still running.
pub struct Running {
    child: Child,
    started: Instant,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: thread::JoinHandle<()>,
    stdout_reader: thread::JoinHandle<String>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until holdup writes a stderr line containing `needle`, and returns it.
    #[track_caller]
    pub fn wait_for_line(&self, needle: &str) -> String {
        first_line_with(&self.lines, needle, Instant::now() + RUN_LIMIT).unwrap_or_else(|| {
            panic!(
                "holdup never printed {needle:?}; stderr so far:\n{}",
                self.stderr.lock().unwrap()
            )
        })
    }

    /// Blocks until holdup (run with `--log-format json`) logs an `event` line, and returns
    /// it parsed.
    #[track_caller]
    pub fn wait_for_event(&self, event: &str) -> serde_json::Value {
        let line = first_line_where(
            &self.lines,
            |line| event_of(line).as_deref() == Some(event),
            Instant::now() + RUN_LIMIT,
        )
        .unwrap_or_else(|| {
            panic!(
                "holdup never logged a {event:?} event; stderr so far:\n{}",
                self.stderr.lock().unwrap()
            )
        });
        serde_json::from_str(&line).unwrap()
    }

    /// Asserts that holdup has not ended: it is still waiting when the test makes the
    /// change it waits for.
    #[track_caller]
    pub fn assert_still_running(&mut self) {
        let status = self.child.try_wait().expect("cannot look at holdup");
        assert!(
            status.is_none(),
            "holdup ended ({status:?}) before the test made its change; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Sends `signal` to the process holdup was started as.
    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// Waits for holdup to end (killing it and failing after [`RUN_LIMIT`]).
    #[track_caller]
    pub fn finish(self) -> Finished {
        let limit = self.started + RUN_LIMIT;
        self.finish_by(limit, format!("after {RUN_LIMIT:?}"))
    }

    /// Waits for holdup to end within `limit` from now, when the test has just done what
    /// ends its wait: opened the port, sent the signal (killing it and failing otherwise).
    #[track_caller]
    pub fn finish_within(self, limit: Duration) -> Finished {
        let by = (Instant::now() + limit).min(self.started + RUN_LIMIT);
        self.finish_by(
            by,
            format!("{limit:?} after the change that should have ended its wait"),
        )
    }

    #[track_caller]
    fn finish_by(mut self, limit: Instant, when: String) -> Finished {
        let status = wait_until(&mut self.child, limit).expect("cannot wait for holdup");
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!(
                "holdup still running {when}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
        };
        let elapsed = self.started.elapsed();
        let stdout = self.stdout_reader.join().unwrap_or_default();
        let _ = self.stderr_reader.join();
        let stderr = self.stderr.lock().unwrap().clone();
        Finished {
            status,
            stdout,
            stderr,
            elapsed,
        }
    }
}

/// Sends a signal to a process the test started.
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) has no memory-safety requirements; the PID is one of our children.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        result,
        0,
        "kill({pid}, {signal}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// How a holdup run ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(expected),
            "exit status {:?}; stderr:\n{}",
            self.status,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stderr.contains(text),
            "stderr has {text:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts the run took at least `low` and at most `high`. A lower bound says holdup
    /// waited until its deadline; an upper bound is a hang guard ([`SOON`]) or a deadline
    /// plus [`DEADLINE_SLACK`], never a few milliseconds of a busy machine (the benchmark
    /// and the scheduler's unit tests measure those).
    #[track_caller]
    pub fn took_between(&self, low: Duration, high: Duration) -> &Self {
        assert!(
            self.elapsed >= low && self.elapsed <= high,
            "took {:?}, expected {low:?}..={high:?}; stderr:\n{}",
            self.elapsed,
            self.stderr
        );
        self
    }

    /// The stderr lines, each parsed as JSON (for --log-format json runs).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// The `event` of every line of a --log-format json run, in order, with repeats in a
    /// row told once (a target that keeps waiting says so again when its reason changes).
    #[track_caller]
    pub fn events(&self) -> Vec<String> {
        let mut events: Vec<String> = self
            .json_lines()
            .iter()
            .map(|line| line["event"].as_str().unwrap_or_default().to_string())
            .collect();
        events.dedup();
        events
    }

    /// The first line of a --log-format json run with this `event`.
    #[track_caller]
    pub fn event(&self, event: &str) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .find(|line| line["event"] == event)
            .unwrap_or_else(|| panic!("no {event:?} event in stderr:\n{}", self.stderr))
    }
}
