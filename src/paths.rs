//! Local paths (files, directories, Unix sockets) and what stands in the way of one, in
//! words: the directory that is missing or may not be searched, the mode that keeps holdup
//! out, with owners and modes as numbers (an empty container has no /etc/passwd to name them).

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::words::io_error_words;

/// What a path is, in words: "a regular file", "a directory", "a socket"…
pub fn type_words(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "of an unknown type"
    }
}

/// `owner 0, group 999, mode 0660`: what decides who may use a path.
pub fn access_words(metadata: &Metadata) -> String {
    format!(
        "owner {}, group {}, mode {:04o}",
        metadata.uid(),
        metadata.gid(),
        metadata.mode() & 0o7777
    )
}

/// `uid 1000`: who holdup runs as, which is what the modes are checked against.
pub fn whoami() -> String {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    format!("uid {uid}")
}

/// Why looking `path` up failed with `error`, said so that a person knows what to fix: a
/// missing directory on the way, one that may not be searched, a file where a directory
/// should be, a symbolic link to nothing.
pub fn lookup_words(path: &Path, error: &io::Error) -> String {
    let shown = path.display();
    match error.kind() {
        io::ErrorKind::NotFound => {
            if let Ok(link) = fs::symlink_metadata(path)
                && link.file_type().is_symlink()
            {
                let target = fs::read_link(path).unwrap_or_default();
                return format!(
                    "{shown} is a symbolic link to {}, which does not exist",
                    target.display()
                );
            }
            match first_missing(path) {
                Some(missing) if missing != path => {
                    format!("{shown} does not exist (there is no {})", missing.display())
                }
                _ => format!("{shown} does not exist"),
            }
        }
        io::ErrorKind::PermissionDenied => match last_reachable(path) {
            Some((directory, metadata)) if metadata.is_dir() => format!(
                "permission denied: {} may not be searched by {} ({})",
                directory.display(),
                whoami(),
                access_words(&metadata)
            ),
            _ => format!("{shown}: permission denied for {}", whoami()),
        },
        io::ErrorKind::NotADirectory => match last_reachable(path) {
            Some((file, metadata)) => format!(
                "{shown} cannot exist: {} is {}, not a directory",
                file.display(),
                type_words(&metadata)
            ),
            None => format!("{shown}: a part of the path is not a directory"),
        },
        _ => format!("{shown}: {}", io_error_words(error)),
    }
}

/// The first ancestor of `path` (or `path` itself) that does not exist.
fn first_missing(path: &Path) -> Option<PathBuf> {
    let mut missing = None;
    for ancestor in path.ancestors() {
        if fs::symlink_metadata(ancestor).is_ok() {
            break;
        }
        missing = Some(ancestor.to_path_buf());
    }
    missing
}

/// The deepest ancestor of `path` that can be looked at, with what it is: the directory
/// that may not be searched, or the file that stands where a directory should.
fn last_reachable(path: &Path) -> Option<(PathBuf, Metadata)> {
    path.ancestors().skip(1).find_map(|ancestor| {
        fs::metadata(ancestor)
            .ok()
            .map(|metadata| (ancestor.to_path_buf(), metadata))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn missing_paths_name_the_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("certs/live/tls.crt");
        let error = fs::metadata(&deep).unwrap_err();
        assert_eq!(
            lookup_words(&deep, &error),
            format!(
                "{} does not exist (there is no {})",
                deep.display(),
                dir.path().join("certs").display()
            )
        );
        let near = dir.path().join("tls.crt");
        let error = fs::metadata(&near).unwrap_err();
        assert_eq!(
            lookup_words(&near, &error),
            format!("{} does not exist", near.display())
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/nowhere/at/all", &link).unwrap();
        let error = fs::metadata(&link).unwrap_err();
        assert_eq!(
            lookup_words(&link, &error),
            format!(
                "{} is a symbolic link to /nowhere/at/all, which does not exist",
                link.display()
            )
        );
    }

    #[test]
    fn a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        fs::write(&file, "x").unwrap();
        let below = file.join("app.yaml");
        let error = fs::metadata(&below).unwrap_err();
        assert_eq!(
            lookup_words(&below, &error),
            format!(
                "{} cannot exist: {} is a regular file, not a directory",
                below.display(),
                file.display()
            )
        );
    }

    #[test]
    fn modes_and_owners_as_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let metadata = fs::metadata(&file).unwrap();
        assert!(access_words(&metadata).ends_with("mode 0640"));
        assert_eq!(type_words(&metadata), "a regular file");
        assert_eq!(
            type_words(&fs::metadata(dir.path()).unwrap()),
            "a directory"
        );
    }
}
