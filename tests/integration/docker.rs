//! The image and the compose stack on a real Docker engine: the FROM scratch image runs as
//! a non-root user with a read-only root and no capabilities, handles SIGTERM as PID 1, and
//! in examples/compose/compose.yaml holds the app back until Postgres (a real server, in a
//! container built from this machine's Debian packages) accepts a session.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::docker::{
    Compose, Image, State, compose_command, docker, docker_time, engine, first_log_time,
    repository, static_binary, unique_name,
};
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::tls::TestCa;
use crate::support::{Holdup, RUN_LIMIT, need};

/// The final stage of docker/Dockerfile (what users build) and docker/Dockerfile.prebuilt
/// (what CI builds) must not drift apart: same labels, user, entrypoint. Only where the
/// binary is copied from differs.
#[test]
fn both_dockerfiles_end_in_the_same_scratch_stage() {
    let final_stage = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(repository().join(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|line| *line == "FROM scratch")
            .unwrap_or_else(|| panic!("{file} has no FROM scratch stage"));
        lines[start..]
            .iter()
            .filter(|line| !line.starts_with("COPY "))
            .map(ToString::to_string)
            .collect()
    };
    let built = final_stage("docker/Dockerfile");
    assert_eq!(built, final_stage("docker/Dockerfile.prebuilt"));
    for needed in [
        "USER 65532:65532",
        r#"ENTRYPOINT ["/holdup"]"#,
        "org.opencontainers.image.title",
        "org.opencontainers.image.licenses",
    ] {
        assert!(
            built.iter().any(|line| line.contains(needed)),
            "no {needed:?} in the final stage"
        );
    }
}

/// `docker run [OPTIONS] IMAGE ARGS` as a holdup command line.
fn docker_run(options: &[&str], image: &Image, args: &[&str]) -> Holdup {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(options);
    all.push(&image.tag);
    all.extend_from_slice(args);
    Holdup::command_line("docker", &all)
}

/// What the compose file asks of holdup, and more: no privileges, nothing writable.
const LOCKED_DOWN: [&str; 5] = [
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
];

#[test]
fn the_image_is_scratch_nonroot_and_works_read_only_without_capabilities() {
    let test = "the_image_is_scratch_nonroot_and_works_read_only_without_capabilities";
    let Some(binary) = need(test, static_binary()) else {
        return;
    };
    if need(test, engine()).is_none() {
        return;
    }
    let image = Image::holdup(&binary);

    let config = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        &image.tag,
    ]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/holdup"]));
    assert_eq!(
        config["Labels"]["org.opencontainers.image.licenses"],
        "Apache-2.0"
    );
    // No shell: the engine cannot even start one (127: command not found).
    let shell = docker_run(&["--entrypoint", "/bin/sh"], &image, &["-c", "true"]).run();
    shell.code(127);

    // Host networking reaches this test's loopback servers; the engine writes --add-host
    // names into the container's /etc/hosts.
    let closed = ClosedPort::new();
    let port = closed.port();
    let ca = TestCa::new("holdup image test CA");
    let https = HttpServer::start_with_tls(200, "ok", Some(ca.server_config(&["localhost"])));
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(ca_dir.path());
    let http = HttpServer::start(503, "starting");
    let tcp_target = format!("tcp://db.internal:{port}");
    let http_target = http.url("/health");
    let https_target = format!("https://localhost:{}/health", https.address().port());
    let mut options = LOCKED_DOWN.to_vec();
    let mount = format!("{}:/ca.pem:ro", ca_file.display());
    options.extend(["--network", "host", "--add-host", "db.internal:127.0.0.1"]);
    options.extend(["--volume", &mount]);
    let https_with_ca = format!("{https_target}#ca=/ca.pem");
    let running = docker_run(
        &options,
        &image,
        &[
            "-w",
            &tcp_target,
            "-w",
            &http_target,
            "-w",
            &https_with_ca,
            "-t",
            "60s",
            "--",
            "/holdup",
            "--version",
        ],
    )
    .spawn();
    // One "waiting for" line each from the tcp and http targets, in either order.
    running.wait_for_line("waiting for ");
    running.wait_for_line("waiting for ");
    let _listening = closed.open();
    http.set_status(200);
    let finished = running.finish();
    finished
        .code(0)
        .stderr_has(&format!("{tcp_target} ready after"))
        .stderr_has(&format!("{http_target} ready after"))
        .stderr_has(&format!("{https_target} ready after"));
    // ...and then exec'd the command, as user 65532 in a read-only scratch root.
    assert!(
        finished.stdout.starts_with("holdup "),
        "stdout: {:?}",
        finished.stdout
    );

    // Not ready: exit 1 and one line saying why.
    let refused = ClosedPort::new();
    let target = format!("tcp://127.0.0.1:{}", refused.port());
    let mut options = LOCKED_DOWN.to_vec();
    options.extend(["--network", "host"]);
    docker_run(&options, &image, &["-w", &target, "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "{target} not ready after 1.00s: 127.0.0.1:{}: connection refused",
            refused.port()
        ));
}

#[test]
fn the_image_ends_its_wait_on_sigterm_as_pid_1() {
    let test = "the_image_ends_its_wait_on_sigterm_as_pid_1";
    let Some(binary) = need(test, static_binary()) else {
        return;
    };
    if need(test, engine()).is_none() {
        return;
    }
    let image = Image::holdup(&binary);
    let name = unique_name("holdup-test-sigterm");
    // A container of its own (not --rm) so that its exit code can be read after `stop`.
    let _container = Container(name.clone());
    let mut options = LOCKED_DOWN.to_vec();
    options.extend(["--name", &name, "--network", "none"]);
    let mut args = vec!["run"];
    args.extend(options);
    args.extend([image.tag.as_str(), "-w", "tcp://127.0.0.1:9", "-t", "0"]);
    let running = Holdup::command_line("docker", &args).spawn();
    running.wait_for_line("waiting for tcp://127.0.0.1:9");
    // `docker stop` sends SIGTERM, then SIGKILL (137) after its grace time: a PID 1 without
    // a handler would ignore the SIGTERM and only die of the SIGKILL.
    docker(&["stop", "--time", "30", &name]);
    running
        .finish()
        .code(143)
        .stderr_has("stopped by SIGTERM")
        .took_between(Duration::ZERO, RUN_LIMIT);
    assert_eq!(State::of(&name).exit_code, 143);
}

/// A named container, removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", &self.0])
            .output();
    }
}

/// The compose example with a real Postgres: holdup waits by service name, through Docker's
/// embedded DNS, from the scratch image; the app starts only once Postgres accepted
/// holdup's session. Then, with the database left down, holdup exits 1 with its reason
/// and the app never starts. Last, the same images serve the README's COPY --from pattern.
#[test]
fn compose_starts_the_app_only_after_postgres_accepts_a_session() {
    let test = "compose_starts_the_app_only_after_postgres_accepts_a_session";
    let Some(binary) = need(test, static_binary()) else {
        return;
    };
    if need(test, engine()).is_none() {
        return;
    }
    let Some(compose) = need(test, compose_command()) else {
        return;
    };
    let holdup_image = Image::holdup(&binary);
    let postgres_image = Image::postgres();
    let images = [
        ("HOLDUP_IMAGE", holdup_image.tag.as_str()),
        ("POSTGRES_IMAGE", postgres_image.tag.as_str()),
    ];
    let example = repository().join("examples/compose/compose.yaml");
    let overrides = |name: &str| -> PathBuf { repository().join("tests/compose").join(name) };

    // The database starts Postgres only after a delay; holdup must wait for it.
    {
        let stack = Compose::new(
            compose.clone(),
            &[example.clone(), overrides("delayed-db.yaml")],
            &images,
        );
        let up = stack.run(&["up", "--detach", "--no-build"]);
        let up_words = String::from_utf8_lossy(&up.stderr).into_owned();
        assert!(up.status.success(), "compose up failed:\n{up_words}");
        let app = stack.container("app").expect("compose created no app");
        let holdup = stack
            .container("holdup")
            .expect("compose created no holdup");
        let db = stack.container("db").expect("compose created no db");
        let app_code = docker(&["wait", &app]);
        let holdup_logs = docker_logs(&holdup);
        let db_logs = docker_logs(&db);
        let app_logs = docker_logs(&app);
        let context =
            format!("holdup:\n{holdup_logs}\ndb:\n{db_logs}\napp:\n{app_logs}\nup:\n{up_words}");
        assert_eq!(app_code.trim(), "0", "{context}");
        let holdup_state = State::of(&holdup);
        assert_eq!(holdup_state.exit_code, 0, "{context}");
        let target = "postgres://app@db:5432/app";
        assert!(
            holdup_logs.contains(&format!("waiting for {target}")),
            "{context}"
        );
        assert!(
            holdup_logs.contains(&format!("{target} ready after")),
            "{context}"
        );
        assert!(
            !holdup_logs.contains("secret"),
            "password in the log:\n{context}"
        );
        assert!(app_logs.contains("app started"), "{context}");

        let ready = first_log_time(&db_logs, "database system is ready to accept connections")
            .unwrap_or_else(|| panic!("Postgres never got ready:\n{context}"));
        // With log_connections on, Postgres logs every accepted session; the first is
        // holdup's (the app's comes after it).
        let first_session = first_log_time(&db_logs, "connection authorized: user=app")
            .unwrap_or_else(|| panic!("Postgres accepted no session:\n{context}"));
        let app_state = State::of(&app);
        let holdup_started = docker_time(&holdup_state.started_at);
        let holdup_finished = docker_time(&holdup_state.finished_at);
        let app_started = docker_time(&app_state.started_at);
        let since = |time: Duration| time.saturating_sub(holdup_started).as_secs_f64();
        eprintln!(
            "from holdup's start: Postgres ready +{:.3}s, first session +{:.3}s, holdup \
             exited +{:.3}s, app started +{:.3}s",
            since(ready),
            since(first_session),
            since(holdup_finished),
            since(app_started)
        );
        assert!(
            holdup_started < ready,
            "holdup did not have to wait\n{context}"
        );
        assert!(ready <= first_session, "{context}");
        assert!(
            first_session <= holdup_finished,
            "holdup ended before Postgres accepted its session\n{context}"
        );
        assert!(
            holdup_finished <= app_started,
            "the app started before holdup ended\n{context}"
        );
    }

    // The database container runs, Postgres never starts: holdup gives up, and compose
    // does not start the app.
    {
        let stack = Compose::new(compose, &[example, overrides("db-down.yaml")], &images);
        let up = stack.run(&["up", "--detach", "--no-build"]);
        let up_words = String::from_utf8_lossy(&up.stderr).into_owned();
        assert!(!up.status.success(), "compose up succeeded:\n{up_words}");
        let holdup = stack
            .container("holdup")
            .expect("compose created no holdup");
        let logs = stack.run(&["logs", "--no-color", "holdup"]);
        let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
        let context = format!("compose logs holdup:\n{logs}\nup:\n{up_words}");
        assert_eq!(State::of(&holdup).exit_code, 1, "{context}");
        let reason = logs
            .lines()
            .find(|line| line.contains("postgres://app@db:5432/app not ready after 5.00s: "))
            .unwrap_or_else(|| panic!("no reason in the logs\n{context}"));
        assert!(reason.contains(":5432: connection refused"), "{context}");
        if let Some(app) = stack.container("app") {
            assert!(
                !State::of(&app).ever_started(),
                "the app started\n{context}"
            );
        }
    }

    // The README's pattern for another image: the binary copied in with COPY --from,
    // waiting for HOLDUP_WAIT_FOR, then exec'ing the image's CMD.
    {
        let derived = Image::from_dockerfile(&format!(
            "FROM {postgres}\n\
             COPY --from={holdup} /holdup /usr/local/bin/holdup\n\
             ENTRYPOINT [\"holdup\", \"--\"]\n\
             CMD [\"psql\", \"--version\"]\n",
            postgres = postgres_image.tag,
            holdup = holdup_image.tag,
        ));
        let port = ClosedPort::new();
        let target = format!("tcp://127.0.0.1:{}", port.port());
        let _listening = port.open();
        let variable = format!("HOLDUP_WAIT_FOR={target}");
        let finished = docker_run(&["--network", "host", "--env", &variable], &derived, &[]).run();
        finished
            .code(0)
            .stderr_has(&format!("{target} ready after"));
        assert!(
            finished.stdout.starts_with("psql (PostgreSQL) "),
            "stdout: {:?}",
            finished.stdout
        );
    }
}

/// `docker logs --timestamps`, stdout and stderr together.
fn docker_logs(container: &str) -> String {
    let output = std::process::Command::new("docker")
        .args(["logs", "--timestamps", container])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
