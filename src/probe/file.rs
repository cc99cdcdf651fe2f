//! `file:///PATH`: ready when the path exists and, if asked, is of a type, is not empty, or
//! holds some text: a shared volume that another init container or a sidecar fills.
//!
//! Every look happens on a blocking thread: a stalled network file system must hold up
//! nothing but this target's attempt, which the scheduler then cuts off.

use std::fmt;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::paths::{access_words, lookup_words, type_words, whoami};
use crate::redact;

/// How much of a file is searched for `#contains`; markers and rendered configs are small.
const READ_LIMIT: u64 = 1 << 20;

const FORM: &str = "file:///path";

#[derive(Debug)]
pub struct File {
    path: PathBuf,
    kind: Option<Type>,
    nonempty: bool,
    contains: Option<String>,
    shown: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    File,
    Dir,
    Socket,
}

impl Type {
    fn parse(text: &str) -> Result<Type> {
        Ok(match text {
            "file" => Type::File,
            "dir" => Type::Dir,
            "socket" => Type::Socket,
            _ => bail!("expected file, dir or socket"),
        })
    }

    fn matches(self, metadata: &Metadata) -> bool {
        let kind = metadata.file_type();
        match self {
            Type::File => kind.is_file(),
            Type::Dir => kind.is_dir(),
            Type::Socket => kind.is_socket(),
        }
    }

    fn words(self) -> &'static str {
        match self {
            Type::File => "a regular file",
            Type::Dir => "a directory",
            Type::Socket => "a socket",
        }
    }
}

impl File {
    pub fn parse(text: &str) -> Result<File> {
        let (url, mut options) = target_url::parse(text)?;
        let kind = options.take_parsed("type", Type::parse)?;
        let nonempty = options.take_switch("nonempty")?;
        let contains = options.take("contains")?;
        options.finish("file", &["type", "nonempty", "contains"])?;
        let path = target_url::local_path(text, &url, FORM)?;
        match kind {
            Some(Type::Socket) if nonempty || contains.is_some() => {
                bail!("#nonempty and #contains are for files and directories, not #type=socket")
            }
            Some(Type::Dir) if contains.is_some() => {
                bail!("#contains is for files, not #type=dir")
            }
            _ => {}
        }
        Ok(File {
            path,
            kind,
            nonempty,
            contains,
            shown: redact::url(&url),
        })
    }

    pub async fn check(&self, _net: &Net, stage: &Stage) -> Result<(), Failure> {
        stage.set(format!("looking at {}", self.path.display()));
        let path = self.path.clone();
        let kind = self.kind;
        let nonempty = self.nonempty;
        let contains = self.contains.clone();
        tokio::task::spawn_blocking(move || look(&path, kind, nonempty, contains.as_deref()))
            .await
            .map_err(|error| anyhow!("cannot look at the path: {error}"))?
            .map_err(|reason| anyhow!(reason))?;
        stage.answered(format!("{} is there", self.path.display()));
        Ok(())
    }

    pub fn plan(&self) -> Plan {
        let mut ready = vec!["the path exists".to_string()];
        if let Some(kind) = self.kind {
            ready.push(format!("is {}", kind.words()));
        }
        if self.nonempty {
            ready.push("is not empty".to_string());
        }
        if let Some(text) = &self.contains {
            ready.push(format!("holds {text:?} in its first MiB"));
        }
        vec![
            ("path", self.path.display().to_string()),
            ("ready", ready.join(", ")),
        ]
    }
}

impl fmt::Display for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// One look at `path`: `Ok` when it is as asked, else why not.
fn look(
    path: &Path,
    kind: Option<Type>,
    nonempty: bool,
    contains: Option<&str>,
) -> Result<(), String> {
    let shown = path.display();
    let metadata = fs::metadata(path).map_err(|error| lookup_words(path, &error))?;
    if let Some(kind) = kind
        && !kind.matches(&metadata)
    {
        return Err(format!(
            "{shown} is {}, not {}",
            type_words(&metadata),
            kind.words()
        ));
    }
    if nonempty {
        if metadata.is_dir() {
            let mut entries = fs::read_dir(path).map_err(|error| read_words(path, &error))?;
            if entries.next().is_none() {
                return Err(format!("{shown} is an empty directory"));
            }
        } else if !metadata.is_file() {
            return Err(format!(
                "{shown} is {}; #nonempty is for files and directories",
                type_words(&metadata)
            ));
        } else if metadata.len() == 0 {
            return Err(format!("{shown} is empty"));
        }
    }
    if let Some(text) = contains {
        if !metadata.is_file() {
            return Err(format!(
                "{shown} is {}; #contains is for regular files",
                type_words(&metadata)
            ));
        }
        // Non-blocking: a file swapped for a named pipe since the look above must not hang.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|error| read_words(path, &error))?;
        let mut head = Vec::new();
        (&mut file)
            .take(READ_LIMIT)
            .read_to_end(&mut head)
            .map_err(|error| read_words(path, &error))?;
        if !holds(&head, text.as_bytes()) {
            let read = if head.len() as u64 >= READ_LIMIT {
                "in its first MiB".to_string()
            } else {
                format!("(it holds {} bytes)", head.len())
            };
            return Err(format!("{shown} does not contain {text:?} {read}"));
        }
    }
    Ok(())
}

/// Why a path that exists could not be read or listed.
fn read_words(path: &Path, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::PermissionDenied
        && let Ok(metadata) = fs::metadata(path)
    {
        let what = if metadata.is_dir() { "list" } else { "read" };
        return format!(
            "permission denied: {} may not {what} {} ({})",
            whoami(),
            path.display(),
            access_words(&metadata)
        );
    }
    lookup_words(path, error)
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len().max(1))
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn accepted_and_refused_targets() {
        for (input, path) in [
            ("file:///data/ready", "/data/ready"),
            ("file://localhost/data/ready", "/data/ready"),
            ("file:///data/my%20file%23", "/data/my file#"),
            ("file:///data/#type=dir&nonempty", "/data/"),
            ("FILE:///etc/hosts#contains=localhost", "/etc/hosts"),
        ] {
            let file = File::parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(file.path, Path::new(path), "{input}");
        }
        for (input, expected) in [
            (
                "file://data/ready",
                "expected an absolute path, as file:///path",
            ),
            ("file:data/ready", "expected an absolute path"),
            ("file:./ready", "expected an absolute path"),
            ("file:///x?y", "has no query"),
            ("file:///x#type=fifo", "expected file, dir or socket"),
            ("file:///x#size=1", "unknown option 'size' for file targets"),
            ("file:///x#contains", "needs a value"),
            ("file:///x#type=dir&contains=a", "#contains is for files"),
            ("file:///x#type=socket&nonempty", "not #type=socket"),
            ("file:///x%00y", "NUL"),
        ] {
            let message = format!("{:#}", File::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
        }
    }

    #[test]
    fn what_each_look_says() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        fs::write(&empty, "").unwrap();
        let config = dir.path().join("app.yaml");
        fs::write(&config, "listen: 8080\nready: true\n").unwrap();
        let socket = dir.path().join("app.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        let subdir = dir.path().join("certs");
        fs::create_dir(&subdir).unwrap();
        let d = |path: &Path| path.display().to_string();

        // The path, the options (type, nonempty, contains), and what a look says.
        type Case<'a> = (
            &'a Path,
            Option<Type>,
            bool,
            Option<&'a str>,
            Result<(), String>,
        );
        let cases: &[Case] = &[
            (&config, None, false, None, Ok(())),
            (&config, Some(Type::File), true, Some("ready: true"), Ok(())),
            (&subdir, Some(Type::Dir), false, None, Ok(())),
            (&socket, Some(Type::Socket), false, None, Ok(())),
            (
                &empty,
                None,
                true,
                None,
                Err(format!("{} is empty", d(&empty))),
            ),
            (
                &subdir,
                None,
                true,
                None,
                Err(format!("{} is an empty directory", d(&subdir))),
            ),
            (
                &subdir,
                Some(Type::File),
                false,
                None,
                Err(format!("{} is a directory, not a regular file", d(&subdir))),
            ),
            (
                &config,
                None,
                false,
                Some("ready: false"),
                Err(format!(
                    "{} does not contain \"ready: false\" (it holds 25 bytes)",
                    d(&config)
                )),
            ),
            (
                &socket,
                None,
                true,
                None,
                Err(format!(
                    "{} is a socket; #nonempty is for files and directories",
                    d(&socket)
                )),
            ),
        ];
        for (path, kind, nonempty, contains, expected) in cases {
            assert_eq!(
                &look(path, *kind, *nonempty, *contains),
                expected,
                "{}",
                path.display()
            );
        }
        fs::write(subdir.join("tls.crt"), "x").unwrap();
        assert_eq!(look(&subdir, None, true, None), Ok(()));
    }

    #[test]
    fn only_the_first_mib_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let mut text = vec![b'.'; READ_LIMIT as usize];
        text.extend_from_slice(b"late");
        fs::write(&big, &text).unwrap();
        assert_eq!(
            look(&big, None, false, Some("late")),
            Err(format!(
                "{} does not contain \"late\" in its first MiB",
                big.display()
            ))
        );
        assert_eq!(look(&big, None, false, Some("..")), Ok(()));
    }
}
