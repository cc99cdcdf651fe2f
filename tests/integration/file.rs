//! file:// targets: a file that another container fills, step by step; a path of the wrong
//! type; permissions that keep holdup out, said as such.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::{NOBODY, SOON, assert_nobody_is_refused, holdup, holdup_as_nobody};

/// Writes a file whole, as a tool that renders configuration should (and as Kubernetes
/// updates a volume): never seen half-written.
fn put(path: &Path, text: &str) {
    let partial = path.with_extension("partial");
    fs::write(&partial, text).unwrap();
    fs::rename(&partial, path).unwrap();
}

#[test]
fn a_file_that_another_container_fills() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.crt");
    let target = format!(
        "file://{}#nonempty&contains=END%20CERTIFICATE",
        path.display()
    );
    let mut running = holdup()
        .args(["-w", &target, "-t", "30s", "--log-format", "json"])
        .spawn();
    let shown = path.display();
    let certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    // The reason holdup gives, then the next change, made only once that reason is seen.
    let steps = [
        (format!("{shown} does not exist"), ""),
        (format!("{shown} is empty"), "-----BEGIN"),
        (
            format!("{shown} does not contain \"END CERTIFICATE\" (it holds 10 bytes)"),
            certificate,
        ),
    ];
    for (reason, next) in steps {
        let waiting = running.wait_for_event("waiting");
        assert_eq!(waiting["error"], reason, "{waiting}");
        running.assert_still_running();
        put(&path, next);
    }
    let finished = running.finish_within(SOON);
    finished.code(0);
    assert_eq!(
        finished.events(),
        ["waiting", "ready"],
        "one waiting line per reason"
    );
}

#[test]
fn a_path_of_another_type_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().display();
    holdup()
        .args([&format!("file://{shown}#type=dir&nonempty"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!("{shown} is an empty directory"));
    holdup()
        .args([&format!("file://{shown}#type=file"), "-t", "300ms"])
        .run()
        .code(1)
        .stderr_has(&format!("{shown} is a directory, not a regular file"));
    fs::write(dir.path().join("ready"), "").unwrap();
    holdup()
        .arg(format!("file://{shown}#type=dir&nonempty"))
        .run()
        .code(0);
}

/// Root may read anything, so holdup runs as another user here.
#[test]
fn permission_problems_are_said_as_such() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("secret.env");
    fs::write(&secret, "TOKEN=x\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let private = dir.path().join("private");
    fs::create_dir(&private).unwrap();
    fs::write(private.join("ready"), "").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    assert_nobody_is_refused("-r", &secret);
    assert_nobody_is_refused("-e", &private.join("ready"));

    let cases = [
        (
            format!("file://{}#contains=TOKEN", secret.display()),
            format!(
                "permission denied: uid {NOBODY} may not read {} (owner 0, group 0, mode 0600)",
                secret.display()
            ),
        ),
        (
            format!("file://{}/ready", private.display()),
            format!(
                "permission denied: {} may not be searched by uid {NOBODY} (owner 0, group 0, mode 0700)",
                private.display()
            ),
        ),
    ];
    for (target, reason) in cases {
        let Some(as_nobody) = holdup_as_nobody("file::permission_problems") else {
            return;
        };
        as_nobody
            .args([&target, "-t", "300ms"])
            .run()
            .code(1)
            .stderr_has(&reason);
    }
    // Only the contents were out of reach: that the file exists, anyone may see.
    let Some(as_nobody) = holdup_as_nobody("file::permission_problems") else {
        return;
    };
    as_nobody
        .arg(format!("file://{}#nonempty", secret.display()))
        .run()
        .code(0);
}
