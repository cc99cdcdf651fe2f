//! What every integration test needs: running the real holdup binary and looking at how it
//! ended, plus the servers it is run against.

pub mod dns;
pub mod docker;
pub mod kube;
pub mod net;
pub mod postgres;
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
    loop {
        match lines.recv_timeout(limit.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// A holdup command line to run.
pub struct Holdup {
    command: Command,
}

/// Starts a holdup command line.
pub fn holdup() -> Holdup {
    Holdup {
        command: command(env!("CARGO_BIN_EXE_holdup").as_ref()),
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
        Holdup { command }
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

    pub fn spawn(mut self) -> Running {
        let started = Instant::now();
        let mut child = self.command.spawn().expect("cannot start holdup");
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

    pub fn started(&self) -> Instant {
        self.started
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

    /// Sends `signal` to the process holdup was started as.
    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// Waits for holdup to end (killing it and failing after [`RUN_LIMIT`]).
    #[track_caller]
    pub fn finish(mut self) -> Finished {
        let status =
            wait_until(&mut self.child, self.started + RUN_LIMIT).expect("cannot wait for holdup");
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!(
                "holdup still running after {RUN_LIMIT:?}; stderr:\n{}",
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

    /// Asserts the run took at least `low` and at most `high`. Upper bounds are generous:
    /// they catch a hang or a missed deadline, not a few milliseconds of a busy machine
    /// (the benchmark measures those).
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
}
