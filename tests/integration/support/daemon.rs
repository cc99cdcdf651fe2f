//! A server process for tests (redis-server, mariadbd, rabbitmq-server): run as its
//! package's unprivileged user when the tests run as root, its output collected so that a
//! test waits for what the server logs (never for a guessed time), stopped by PID on drop.
//!
//! A server too slow to start for every test is started once per test process and shared
//! ([`shared`]): it is started from a thread that lives as long as the process, so that
//! the kernel stops it (parent-death signal) whatever ends the process, and it is stopped
//! and waited for, its directory removed, when the process exits normally.

use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::{first_line_with, send_signal, wait_until};

/// Longest a test server may take to start or stop (RabbitMQ boots in up to 20 s on a
/// loaded 2-core machine).
pub const SERVER_LIMIT: Duration = Duration::from_secs(90);

/// The uid and gid of `user`, when the tests run as root (servers refuse root, or should
/// not have it); `None` otherwise, and the server runs as the test's own user.
pub fn run_as(user: &str) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id").arg(flag).arg(user).output().unwrap();
        assert!(
            output.status.success(),
            "running as root, the tests need the '{user}' user (its Debian package creates it)"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// Makes `path` (recursively) belong to `user` when the tests run as root.
pub fn give_to(user: &str, path: &Path) {
    if let Some((uid, gid)) = run_as(user) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {} failed", path.display());
    }
}

/// Runs `command` to its end as `user`, and fails the test if it fails.
#[track_caller]
pub fn run_as_user(user: &str, command: &mut Command) -> String {
    if let Some((uid, gid)) = run_as(user) {
        command.uid(uid).gid(gid);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?} failed: {said}");
    said
}

/// A running server process, stopped with `stop_signal` (then SIGKILL) when dropped.
pub struct Daemon {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    stop_signal: i32,
}

impl Daemon {
    /// Starts `command` as `user`, collecting what it prints on stdout and stderr.
    pub fn spawn(
        name: &'static str,
        user: &str,
        command: &mut Command,
        stop_signal: i32,
    ) -> Daemon {
        if let Some((uid, gid)) = run_as(user) {
            command.uid(uid).gid(gid);
        }
        // SAFETY: prctl is async-signal-safe; run in the child after its uid change, which
        // would otherwise clear the setting.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, stop_signal);
                Ok(())
            });
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (lines_tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), lines_tx.clone(), log.clone());
        collect(child.stderr.take().unwrap(), lines_tx, log.clone());
        Daemon {
            name,
            child,
            lines,
            log,
            stop_signal,
        }
    }

    /// Blocks until the server prints a line containing `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) {
        if first_line_with(&self.lines, needle, Instant::now() + SERVER_LIMIT).is_none() {
            panic!(
                "{} never logged {needle:?}; its output:\n{}",
                self.name,
                self.log.lock().unwrap()
            );
        }
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `start` on a thread that lives as long as the test process, and keeps what it
/// returns (the servers, their directory) until the process exits, when they are dropped:
/// stopped by PID and waited for. For servers that are started once and shared by tests.
pub fn shared<T: Send + 'static, R: Send + 'static>(
    start: impl FnOnce() -> (T, R) + Send + 'static,
) -> R {
    static KEEPER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (jobs_tx, jobs) = mpsc::channel::<Job>();
        thread::spawn(move || {
            for job in jobs {
                job();
            }
            // Never reached while the process runs: the sender lives in a static.
        });
        // SAFETY: registers a plain extern "C" function without arguments.
        unsafe { libc::atexit(drop_kept) };
        Mutex::new(jobs_tx)
    });
    let (result_tx, result) = mpsc::channel();
    let job: Job = Box::new(move || {
        let (kept, shared) = start();
        KEPT.lock().unwrap().push(Box::new(kept));
        let _ = result_tx.send(shared);
    });
    keeper.lock().unwrap().send(job).unwrap();
    result
        .recv()
        .expect("the shared server failed to start (see the panic above)")
}

static KEPT: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());

extern "C" fn drop_kept() {
    let kept = std::mem::take(&mut *KEPT.lock().unwrap_or_else(|e| e.into_inner()));
    for thing in kept.into_iter().rev() {
        drop(thing);
    }
}

/// Always drained, so that the server never blocks on a full pipe.
fn collect(pipe: impl Read + Send + 'static, lines: Sender<String>, log: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            let _ = lines.send(line);
        }
    });
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        send_signal(self.child.id(), self.stop_signal);
        if let Ok(Some(_)) = wait_until(&mut self.child, Instant::now() + SERVER_LIMIT) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
