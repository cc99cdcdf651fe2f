//! `exec:COMMAND ARGS…`: ready when the command exits 0. Its words are split as a POSIX
//! shell would ([`split`]), without a shell; the program is found in PATH when the target
//! is parsed, so a command that cannot run is a usage error before anything is probed.
//!
//! Each attempt runs the command in a process group of its own, with stdin at end of file
//! and holdup's environment. When the attempt ends, however it ends (the command exited,
//! the scheduler cut it off by dropping it, holdup was stopped by a signal), the whole group
//! is killed: nothing the command started outlives the attempt. Its last line of output
//! (stdout and stderr together) is the reason shown when it fails.

mod split;

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs;
use std::io::{self, ErrorKind};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::{Result, anyhow, bail};
use tokio::io::AsyncReadExt as _;
use tokio::net::unix::pipe;
use tokio::process::Command;

use super::options::Plan;
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact;
use crate::words::io_error_words;

/// How much of the end of the output is kept to find its last line.
const TAIL: usize = 4096;

/// The longest last line shown, in characters.
const LINE_LIMIT: usize = 200;

/// Where programs are looked for when PATH is not set, as glibc's execvp does.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

#[derive(Debug)]
pub struct Exec {
    /// The words as given; the first is the program's name (its argv[0]).
    words: Vec<String>,
    /// Where the program was found.
    program: PathBuf,
    shown: String,
}

impl Exec {
    pub fn parse(text: &str) -> Result<Exec> {
        let (_, command) = text
            .split_once(':')
            .ok_or_else(|| anyhow!("expected exec:COMMAND ARGS..."))?;
        let words = split::split(command).map_err(|reason| anyhow!(reason))?;
        let program = find_program(&words[0])?;
        let shown = format!("exec:{}", shell_words(&redact::command(&words)));
        Ok(Exec {
            words,
            program,
            shown,
        })
    }

    pub async fn check(&self, _net: &Net, stage: &Stage) -> Result<(), Failure> {
        let name = &self.words[0];
        let (output, status) = self
            .run(stage)
            .await
            .map_err(|error| anyhow!("cannot run {name}: {}", io_error_words(&error)))?;
        if status.success() {
            stage.answered(format!("{name} exits 0"));
            return Ok(());
        }
        let status = status_words(status);
        Err(match last_line(&output) {
            Some(line) => anyhow!("{status}: {line}"),
            None => anyhow!("{status} (no output)"),
        }
        .into())
    }

    /// Runs the command to its end; returns the end of its output and how it ended.
    async fn run(&self, stage: &Stage) -> io::Result<(Vec<u8>, ExitStatus)> {
        let name = &self.words[0];
        // stdin: a pipe whose writing end is closed, so that reading it ends at once. Not
        // /dev/null, which an empty container root does not have.
        let (stdin, _) = io::pipe()?;
        let (output, writer) = io::pipe()?;
        let mut command = Command::new(&self.program);
        command
            .arg0(name)
            .args(&self.words[1..])
            .stdin(stdin)
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        // The command keeps holdup's copies of the pipe's writing end: without it, the end
        // of the output would never be seen.
        drop(command);
        let Some(pid) = child.id() else {
            return Err(io::Error::other("the command vanished as it started"));
        };
        // Declared after the child, so dropped before it. An attempt cut off kills the group
        // while its leader is unreaped, so the group's number cannot have been reused. After
        // the leader exits, the number stays taken while any process of its group lives,
        // so the kill reaches only what the command left behind.
        let _group = Group(pid);
        let running = format!("running {name} (pid {pid})");
        stage.set(&running);

        let mut output = pipe::Receiver::from_owned_fd(OwnedFd::from(output))?;
        let mut tail = Vec::new();
        let mut buffer = [0u8; 4096];
        let mut open = true;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                read = output.read(&mut buffer), if open => match read {
                    Ok(0) | Err(_) => open = false,
                    Ok(read) => {
                        keep_tail(&mut tail, &buffer[..read]);
                        if let Some(line) = last_line(&tail) {
                            stage.set(format!("{running}, which last printed {line:?}"));
                        }
                    }
                },
            }
        };
        // What it wrote before it exited is in the pipe. Whatever it left running in the
        // background may hold the pipe open, so read what is there, not to the end.
        while open {
            match output.try_read(&mut buffer) {
                Ok(0) | Err(_) => open = false,
                Ok(read) => keep_tail(&mut tail, &buffer[..read]),
            }
        }
        Ok((tail, status))
    }

    pub fn plan(&self) -> Plan {
        vec![
            ("program", self.program.display().to_string()),
            ("arguments", shell_words(&redact::command(&self.words[1..]))),
            ("ready", "it exits 0".to_string()),
            ("stdin", "closed (end of file)".to_string()),
            ("environment", "holdup's".to_string()),
            (
                "when an attempt ends",
                "its whole process group is killed".to_string(),
            ),
        ]
    }
}

impl fmt::Display for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The process group of one run of the command; killed when the attempt ends, however it
/// ends (the scheduler cuts an attempt off by dropping it).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.0) {
            // SAFETY: kill(2) touches no memory; a negative PID names the process group
            // that the command was started as the leader of. Nobody left (ESRCH) is fine.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Where `name` runs from: as given when it holds a `/`, else the first executable file of
/// that name in PATH, as execvp finds it.
fn find_program(name: &str) -> Result<PathBuf> {
    // `PGPASSWORD=secret psql` puts a secret where the program's name should be.
    let shown = redact::command(&[name.to_string()]).remove(0);
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match runnable(&path) {
            Ok(()) => Ok(path),
            Err(why) => bail!("cannot run {shown}: {why}"),
        };
    }
    let search = std::env::var_os("PATH");
    let search = search.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut refused = None;
    for directory in std::env::split_paths(search) {
        let candidate = directory.join(name);
        match runnable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) if fs::metadata(&candidate).is_ok() && refused.is_none() => {
                refused = Some(format!("{}: {why}", candidate.display()));
            }
            Err(_) => {}
        }
    }
    if let Some(refused) = refused {
        bail!("cannot run {shown}: {refused}");
    }
    let hint = if name.contains('=') {
        "; to set a variable for the command, write exec:env NAME=VALUE COMMAND"
    } else {
        ""
    };
    bail!(
        "command {shown} not found in PATH ({}){hint}",
        search.to_string_lossy()
    )
}

/// Whether `path` is a file holdup may execute, or why not.
fn runnable(path: &Path) -> Result<(), String> {
    let metadata = fs::metadata(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => "not found".to_string(),
        _ => io_error_words(&error),
    })?;
    if metadata.is_dir() {
        return Err("it is a directory".to_string());
    }
    let mode = metadata.permissions().mode();
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "a NUL byte in the name")?;
    // SAFETY: access(2) reads the NUL-terminated path we own for the length of the call.
    if mode & 0o111 == 0 || unsafe { libc::access(path.as_ptr(), libc::X_OK) } != 0 {
        return Err(format!("it is not executable (mode {:04o})", mode & 0o7777));
    }
    Ok(())
}

/// Keeps the last [`TAIL`] bytes of the output.
fn keep_tail(tail: &mut Vec<u8>, read: &[u8]) {
    tail.extend_from_slice(read);
    if tail.len() > TAIL {
        tail.drain(..tail.len() - TAIL);
    }
}

/// The last line of `output` that has something to say, without control characters (colour
/// codes, carriage returns), cut at [`LINE_LIMIT`] characters.
fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text
        .lines()
        .map(|line| line.chars().filter(|c| !c.is_control()).collect::<String>())
        .rfind(|line| !line.trim().is_empty())?;
    let line = line.trim();
    if line.chars().count() > LINE_LIMIT {
        let cut: String = line.chars().take(LINE_LIMIT).collect();
        return Some(format!("{cut}…"));
    }
    Some(line.to_string())
}

/// `exited with status 2`, `killed by signal 9 (SIGKILL)`.
fn status_words(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let dumped = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            match signal_name(signal) {
                Some(name) => format!("killed by signal {signal} ({name}{dumped})"),
                None => format!("killed by signal {signal}{dumped}"),
            }
        }
        None => format!("ended: {status}"),
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// Words joined as a shell would read them back: quoted where they hold anything but
/// letters, digits and `-_./:=,@%+`.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_./:=,@%+".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let found = Exec::parse("exec:sh -c 'exit 0'").unwrap();
        assert!(found.program.ends_with("sh"), "{found:?}");
        assert_eq!(found.to_string(), "exec:sh -c 'exit 0'");
        assert_eq!(
            Exec::parse("exec:/bin/sh").unwrap().program,
            Path::new("/bin/sh")
        );

        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("check");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        let cases = [
            (
                "exec:no-such-command-here --x",
                "command no-such-command-here not found in PATH (",
            ),
            (
                "exec:PGPASSWORD=x psql",
                "write exec:env NAME=VALUE COMMAND",
            ),
            ("exec:/no/such/file", "cannot run /no/such/file: not found"),
            ("exec:/", "cannot run /: it is a directory"),
            ("exec:", "empty command"),
            ("exec:sh -c 'exit", "unclosed single quote"),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", Exec::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
        let message = format!(
            "{:#}",
            Exec::parse(&format!("exec:{}", script.display())).unwrap_err()
        );
        assert!(
            message.ends_with("it is not executable (mode 0644)"),
            "{message}"
        );
    }

    #[test]
    fn shown_as_a_shell_reads_it_without_secrets() {
        let cases = [
            ("exec:pg_isready -h db", "exec:pg_isready -h db"),
            ("exec:  sh  -c \"it's\"", r"exec:sh -c 'it'\''s'"),
            (
                "exec:env PGPASSWORD=hunter2 sh",
                "exec:env PGPASSWORD=redacted sh",
            ),
            ("exec:sh '' x", "exec:sh '' x"),
        ];
        for (input, shown) in cases {
            assert_eq!(Exec::parse(input).unwrap().to_string(), shown, "{input}");
        }
    }

    #[test]
    fn the_last_line_is_the_reason() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"", None),
            (b"\n\n  \n", None),
            (b"starting\nno response\n", Some("no response")),
            (b"one\r\ntwo\r\n\n", Some("two")),
            (b"\x1b[31mred\x1b[0m\n", Some("[31mred[0m")),
            (b"\xffbad utf-8", Some("\u{fffd}bad utf-8")),
        ];
        for (output, expected) in cases {
            assert_eq!(last_line(output).as_deref(), *expected, "{output:?}");
        }
        let long = "x".repeat(LINE_LIMIT + 10);
        assert_eq!(
            last_line(long.as_bytes()).unwrap(),
            format!("{}…", "x".repeat(LINE_LIMIT))
        );
        let mut tail = Vec::new();
        keep_tail(&mut tail, &vec![b'a'; TAIL]);
        keep_tail(&mut tail, b"\nlast");
        assert_eq!(tail.len(), TAIL);
        assert_eq!(last_line(&tail).as_deref(), Some("last"));
    }

    #[test]
    fn statuses_in_words() {
        assert_eq!(
            status_words(ExitStatus::from_raw(2 << 8)),
            "exited with status 2"
        );
        assert_eq!(
            status_words(ExitStatus::from_raw(libc::SIGKILL)),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            status_words(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "killed by signal 11 (SIGSEGV, core dumped)"
        );
        assert_eq!(
            status_words(ExitStatus::from_raw(64)),
            "killed by signal 64"
        );
    }
}
