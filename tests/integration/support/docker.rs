//! What the tests of the shipped artifacts need: the static binary, a Docker engine, images
//! and compose projects that are removed again (also when a test fails), and Docker's
//! timestamps.
//!
//! These tests run whenever their prerequisites are there. In CI (`CI=true`) a missing
//! prerequisite fails the test; elsewhere the test prints a notice and returns.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::wait_until;

/// Longest a docker or compose command may take (an image build on a busy machine).
pub const DOCKER_LIMIT: Duration = Duration::from_secs(300);

/// The repository's top folder.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fully static release binary, built by `scripts/build-static`; `./scripts/test`
/// builds it and passes its path in STATIC_HOLDUP_BIN.
pub fn static_binary() -> Result<PathBuf, String> {
    match std::env::var_os("STATIC_HOLDUP_BIN") {
        Some(path) if Path::new(&path).is_file() => Ok(PathBuf::from(path)),
        Some(path) => Err(format!(
            "STATIC_HOLDUP_BIN={} is not a file",
            Path::new(&path).display()
        )),
        None => Err(
            "STATIC_HOLDUP_BIN is not set (./scripts/test builds the static binary \
                     and sets it)"
                .to_string(),
        ),
    }
}

/// A Docker engine that answers.
pub fn engine() -> Result<(), String> {
    let mut command = Command::new("docker");
    command.args(["version", "--format", "{{.Server.Version}}"]);
    match run_within(command, Duration::from_secs(30)) {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("cannot run docker: {error}")),
    }
}

/// A name no other test, run or engineer on this engine uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs a command to its end, killing it after `limit`; its output, or why it did not run.
pub fn run_within(mut command: Command, limit: Duration) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("{shown}: {error}"))?;
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut bytes);
        bytes
    });
    let stderr = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut bytes);
        bytes
    });
    let status =
        wait_until(&mut child, Instant::now() + limit).map_err(|e| format!("{shown}: {e}"))?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{shown} still running after {limit:?}"));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `docker ARGS`, failing the test unless it succeeds; returns its stdout.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let mut command = Command::new("docker");
    command.args(args);
    let output = run_within(command, DOCKER_LIMIT).unwrap_or_else(|error| panic!("{error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `docker ARGS` for cleaning up and returns its stdout: failures are reported, never
/// raised, so that a guard dropped while a test fails does not abort the process.
fn docker_quietly(args: &[&str]) -> String {
    let mut command = Command::new("docker");
    command.args(args);
    match run_within(command, Duration::from_secs(120)) {
        Ok(output) if output.status.success() => {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        Ok(output) => eprintln!(
            "cleanup: docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => eprintln!("cleanup: {error}"),
    }
    String::new()
}

/// An image this test built; removed when dropped.
pub struct Image {
    pub tag: String,
}

impl Image {
    /// The holdup image, from docker/Dockerfile.prebuilt and the static binary.
    #[track_caller]
    pub fn holdup(binary: &Path) -> Image {
        let context = tempfile::tempdir().unwrap();
        std::fs::copy(binary, context.path().join("holdup")).unwrap();
        let image = Image {
            tag: unique_name("holdup-test"),
        };
        let dockerfile = repository().join("docker/Dockerfile.prebuilt");
        docker(&[
            "build",
            "--quiet",
            "--tag",
            &image.tag,
            "--file",
            &dockerfile.to_string_lossy(),
            &context.path().to_string_lossy(),
        ]);
        image
    }

    /// An image from a Dockerfile's text alone (its FROM and COPY --from name images).
    #[track_caller]
    pub fn from_dockerfile(text: &str) -> Image {
        let context = tempfile::tempdir().unwrap();
        std::fs::write(context.path().join("Dockerfile"), text).unwrap();
        let image = Image {
            tag: unique_name("holdup-test-derived"),
        };
        docker(&[
            "build",
            "--quiet",
            "--tag",
            &image.tag,
            &context.path().to_string_lossy(),
        ]);
        image
    }

    /// A Postgres server image built from this machine's Debian packages
    /// (tests/images/postgres).
    #[track_caller]
    pub fn postgres() -> Image {
        let image = Image {
            tag: unique_name("holdup-test-postgres"),
        };
        let mut command = Command::new(repository().join("tests/images/postgres/build"));
        command.arg(&image.tag);
        let output = run_within(command, DOCKER_LIMIT).unwrap_or_else(|error| panic!("{error}"));
        assert!(
            output.status.success(),
            "building the Postgres image failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        image
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        docker_quietly(&["image", "rm", "--force", &self.tag]);
    }
}

/// The compose command there is: `docker compose` (v2) when present, else `docker-compose`.
pub fn compose_command() -> Result<Vec<String>, String> {
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for candidate in candidates {
        let mut command = Command::new(candidate[0]);
        command.args(&candidate[1..]).arg("version");
        if run_within(command, Duration::from_secs(30)).is_ok_and(|o| o.status.success()) {
            return Ok(candidate.iter().map(ToString::to_string).collect());
        }
    }
    Err("neither `docker compose` nor `docker-compose` is installed".to_string())
}

/// A compose project of this test's own, taken down (containers, networks, volumes) when
/// dropped.
pub struct Compose {
    command: Vec<String>,
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Compose {
    pub fn new(command: Vec<String>, files: &[PathBuf], env: &[(&str, &str)]) -> Compose {
        Compose {
            command,
            project: unique_name("holdup-e2e"),
            files: files.to_vec(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// Runs `compose -p PROJECT -f FILE... ARGS` to its end.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        self.try_run(args).unwrap_or_else(|error| panic!("{error}"))
    }

    fn try_run(&self, args: &[&str]) -> Result<Output, String> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]).args(["-p", &self.project]);
        for file in &self.files {
            command.arg("-f").arg(file);
        }
        command.args(args);
        // Variables for the compose files' ${...}, on the child only.
        for (name, value) in &self.env {
            command.env(name, value);
        }
        run_within(command, DOCKER_LIMIT)
    }

    /// The container of `service`, if compose created one (by the labels both compose
    /// versions set).
    pub fn container(&self, service: &str) -> Option<String> {
        let ids = docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        ids.split_whitespace().next().map(ToString::to_string)
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        match self.try_run(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]) {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "cleanup: compose down: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => eprintln!("cleanup: {error}"),
        }
        // Whatever compose left behind (it failed, or the test stopped half-way).
        let label = format!("label=com.docker.compose.project={}", self.project);
        let leftovers = docker_quietly(&["ps", "--all", "--quiet", "--filter", &label]);
        for id in leftovers.split_whitespace() {
            docker_quietly(&["rm", "--force", "--volumes", id]);
        }
        let networks = docker_quietly(&["network", "ls", "--quiet", "--filter", &label]);
        for id in networks.split_whitespace() {
            docker_quietly(&["network", "rm", id]);
        }
    }
}

/// A container's state as `docker inspect` tells it.
pub struct State {
    pub exit_code: i64,
    /// Docker's "0001-01-01T00:00:00Z" when the container never started.
    pub started_at: String,
    pub finished_at: String,
}

impl State {
    pub fn of(container: &str) -> State {
        let json = docker(&["inspect", "--format", "{{json .State}}", container]);
        let state: serde_json::Value = serde_json::from_str(&json).unwrap();
        State {
            exit_code: state["ExitCode"].as_i64().unwrap(),
            started_at: state["StartedAt"].as_str().unwrap().to_string(),
            finished_at: state["FinishedAt"].as_str().unwrap().to_string(),
        }
    }

    pub fn ever_started(&self) -> bool {
        !self.started_at.starts_with("0001-")
    }
}

/// An RFC 3339 UTC time as Docker writes it (`2026-11-23T00:10:46.389046736Z`, trailing
/// zeros of the fraction dropped), as time since the Unix epoch, so that times can be
/// compared whatever their number of digits.
#[track_caller]
pub fn docker_time(text: &str) -> Duration {
    let parse = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("not a Docker time: {text:?}"))
    };
    let (year, month, day) = (parse(0..4), parse(5..7), parse(8..10));
    let (hour, minute, second) = (parse(11..13), parse(14..16), parse(17..19));
    let rest = text
        .get(19..)
        .and_then(|rest| rest.strip_suffix('Z'))
        .unwrap_or_else(|| panic!("not a UTC time: {text:?}"));
    let nanos = match rest.strip_prefix('.') {
        Some(fraction) => format!("{fraction:0<9}")[..9].parse().unwrap(),
        None => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Duration::new(u64::try_from(seconds).unwrap(), nanos)
}

/// The Docker timestamp of the first line of `docker logs --timestamps` output that
/// contains `needle`.
pub fn first_log_time(logs: &str, needle: &str) -> Option<Duration> {
    logs.lines()
        .find(|line| line.contains(needle))
        .and_then(|line| line.split_whitespace().next())
        .map(docker_time)
}

#[test]
fn docker_times_compare_whatever_their_digits() {
    assert_eq!(docker_time("1970-01-01T00:00:00Z"), Duration::ZERO);
    assert_eq!(
        docker_time("2026-11-23T00:10:46.5Z"),
        docker_time("2026-11-23T00:10:46.500000000Z")
    );
    assert!(docker_time("2026-11-23T00:10:46.5Z") > docker_time("2026-11-23T00:10:46.45Z"));
    assert_eq!(
        docker_time("2000-03-01T00:00:01.000000001Z"),
        Duration::new(951_868_801, 1)
    );
}
