//! dns:// targets against a real DNS server whose records change while holdup waits, and
//! proof that every target resolves through the system configuration (resolv.conf search
//! list and ndots, /etc/hosts) without libc, in a mount namespace of its own.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use crate::support::dns::{DnsServer, Mute, a, aaaa, cname, mx, srv, txt};
use crate::support::net::{ClosedPort, HttpServer};
use crate::support::{DEADLINE_SLACK, Holdup, SOON, holdup, need, secs};

/// `dns://NAME#options&server=ADDRESS`.
fn target(name: &str, options: &str, server: SocketAddr) -> String {
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("{options}&")
    };
    format!("dns://{name}#{options}server={server}")
}

#[test]
fn ready_soon_after_an_nxdomain_name_appears() {
    // The zone's negative TTL is an hour: a cached NXDOMAIN would never let this pass.
    let server = DnsServer::start("test.");
    let mut running = holdup()
        .args(["-w", &target("db.test", "", server.address()), "-t", "20s"])
        .args(["--log-format", "json"])
        .spawn();
    // holdup has been told NXDOMAIN, and waits on: only now does the name appear.
    let waiting = running.wait_for_event("waiting");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .ends_with("no such name (NXDOMAIN)"),
        "{waiting}"
    );
    running.assert_still_running();
    server.set("db", vec![a("10.0.0.5")]);
    let finished = running.finish_within(SOON);
    finished.code(0).stderr_has("dns://db.test ready after");
    assert_eq!(finished.events(), ["waiting", "ready"]);
    let ready = finished.event("ready");
    assert!(ready["attempts"].as_u64().unwrap() >= 2, "{ready}");
}

#[test]
fn waits_until_the_record_changes_to_the_expected_value() {
    // The old record's TTL is an hour: a cached answer would never let this pass.
    let server = DnsServer::start("test.");
    server.set("db", vec![a("10.0.0.4")]);
    let running = holdup()
        .args([
            "-w",
            &target("db.test", "type=A&expect=10.0.0.5", server.address()),
            "-t",
            "20s",
        ])
        .spawn();
    running.wait_for_line("A db.test answered 10.0.0.4; expected 10.0.0.5");
    server.set("db", vec![a("10.0.0.5")]);
    running
        .finish()
        .code(0)
        .stderr_has("dns://db.test ready after");
}

#[test]
fn srv_records_in_full_or_by_target_and_port() {
    let server = DnsServer::start("test.");
    server.set(
        "_pg._tcp.db",
        vec![srv(0, 5, 5432, "db-0.test."), srv(0, 5, 5432, "DB-1.test.")],
    );
    let address = server.address();
    holdup()
        .args([
            "-w",
            &target(
                "_pg._tcp.db.test",
                "type=SRV&expect=0%205%205432%20db-0.test",
                address,
            ),
        ])
        .args([
            "-w",
            &target(
                "_pg._tcp.db.test",
                "type=srv&expect=db-1.test:5432&min=2",
                address,
            ),
        ])
        .args(["-t", "5s"])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &target(
                "_pg._tcp.db.test",
                "type=SRV&expect=db-2.test:5432",
                address,
            ),
        ])
        .args(["-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("SRV _pg._tcp.db.test answered ")
        .stderr_has("0 5 5432 db-0.test")
        .stderr_has("0 5 5432 DB-1.test")
        .stderr_has("; expected db-2.test:5432 (");
}

#[test]
fn txt_records_of_several_strings_are_compared_joined() {
    let server = DnsServer::start("test.");
    server.set(
        "mail",
        vec![txt(&["v=spf1 ", "include:_spf.test -all"]), txt(&["other"])],
    );
    let address = server.address();
    holdup()
        .args([
            "-w",
            &target(
                "mail.test",
                "type=TXT&expect=v%3Dspf1%20include:_spf.test%20-all",
                address,
            ),
        ])
        .args(["-t", "5s"])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &target(
                "mail.test",
                "type=TXT&expect=v%3Dspf1%20-all&match=exact",
                address,
            ),
        ])
        .args(["-t", "500ms"])
        .run()
        .code(1)
        .stderr_has(r#""v=spf1 include:_spf.test -all""#)
        .stderr_has(r#""other""#)
        .stderr_has("; expected exactly v=spf1 -all (");
}

#[test]
fn mx_records_by_exchange_or_with_preference() {
    let server = DnsServer::start("test.");
    server.set("test.", vec![mx(10, "Mail.Test.")]);
    let address = server.address();
    holdup()
        .args(["-w", &target("test", "type=MX&expect=mail.test", address)])
        .args([
            "-w",
            &target("test", "type=MX&expect=10%20MAIL.test.", address),
        ])
        .args(["-t", "5s"])
        .run()
        .code(0);
    holdup()
        .args([
            "-w",
            &target("test", "type=MX&expect=20%20mail.test", address),
        ])
        .args(["-t", "500ms"])
        .run()
        .code(1)
        .stderr_has("MX test answered 10 Mail.Test; expected 20 mail.test (");
}

#[test]
fn waits_for_a_minimum_number_of_records() {
    let server = DnsServer::start("test.");
    server.set("pods", vec![a("10.0.0.1"), a("10.0.0.2")]);
    let running = holdup()
        .args([
            "-w",
            &target("pods.test", "type=A&min=3", server.address()),
            "-t",
            "20s",
        ])
        .spawn();
    running.wait_for_line("answered 10.0.0.1, 10.0.0.2; expected at least 3 records, got 2");
    server.set("pods", vec![a("10.0.0.1"), a("10.0.0.2"), a("10.0.0.3")]);
    running.finish().code(0);
}

#[test]
fn addresses_and_names_compare_as_dns_means_them() {
    let server = DnsServer::start("test.");
    server.set("v6", vec![aaaa("2001:db8::1")]);
    server.set("alias", vec![cname("Target.test.")]);
    server.set("target", vec![a("10.0.0.7")]);
    let address = server.address();
    holdup()
        // The same IPv6 address, written differently.
        .args([
            "-w",
            &target("v6.test", "type=AAAA&expect=2001:0DB8:0:0:0:0:0:1", address),
        ])
        // Without a type: any address of either family.
        .args(["-w", &target("v6.test", "expect=2001:db8::1", address)])
        // Names without regard to case or a trailing dot.
        .args([
            "-w",
            &target("alias.test", "type=CNAME&expect=target.TEST", address),
        ])
        // Addresses through a CNAME.
        .args([
            "-w",
            &target("alias.test.", "type=A&expect=10.0.0.7&match=exact", address),
        ])
        .args(["-t", "5s"])
        .run()
        .code(0);
}

#[test]
fn the_deadline_holds_when_the_server_never_answers() {
    let mute = Mute::start();
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins.
    let finished = holdup()
        .args(["-w", &target("db.test", "", mute.address()), "-t", "1500ms"])
        .args(["--attempt-timeout", "30s"])
        .run();
    finished
        .code(1)
        .stderr_has(&format!(
            "dns://db.test not ready after 1.50s: timed out after 1.50s while asking {} for A/AAAA db.test (1 attempt)",
            mute.address()
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    assert!(mute.queries() >= 1);
}

#[test]
fn servfail_nxdomain_and_nodata_are_told_apart() {
    let server = DnsServer::start("test.");
    server.set("broken", vec![a("10.0.0.1")]);
    server.fail("broken");
    server.set("web", vec![a("10.0.0.2")]);
    let address = server.address();
    holdup()
        .args(["-w", &target("broken.test", "", address)])
        .args(["-w", &target("missing.test", "", address)])
        .args(["-w", &target("web.test", "type=TXT", address)])
        .args(["-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "dns://broken.test not ready after 1.00s: asking {address} for A/AAAA broken.test: the DNS server failed to answer (SERVFAIL)"
        ))
        .stderr_has(&format!(
            "dns://missing.test not ready after 1.00s: asking {address} for A/AAAA missing.test: no such name (NXDOMAIN)"
        ))
        .stderr_has(&format!(
            "dns://web.test not ready after 1.00s: asking {address} for TXT web.test: the name exists but has no records of that type"
        ));
}

#[test]
fn bad_dns_targets_are_usage_errors() {
    let cases = [
        ("dns://db#type=AXFR", "unknown record type"),
        ("dns://db#type=A&expect=fd00::1", "expected an IPv4 address"),
        ("dns://db#server=dns.example", "expected IP or IP:PORT"),
        ("dns://db#min=0", "1 or more"),
        ("dns://db:53", "no port"),
    ];
    for (target, expected) in cases {
        holdup()
            .args(["-w", target])
            .run()
            .code(2)
            .stderr_has(expected)
            .stderr_lacks("waiting for")
            .took_between(Duration::ZERO, SOON);
    }
}

// System resolution, in a mount namespace with our own /etc/resolv.conf and /etc/hosts.

/// The search domain of the private resolv.conf.
const SEARCH: &str = "holdup-test.internal";
/// The host name in the namespace. glibc searches its domain only when resolv.conf has no
/// search list; a resolver that searched it first would find the decoy `db.other.internal`.
const HOSTNAME: &str = "box.other.internal";

#[test]
fn every_target_resolves_with_resolv_conf_search_ndots_and_hosts() {
    let Some(dns) = on_port_53(|address| DnsServer::start_on(address, "internal.")) else {
        return;
    };
    let dns_ip = dns.address().ip();
    // `db` has one label, fewer than ndots: the search list is tried first.
    dns.set("db.holdup-test", vec![a("127.0.0.1")]);
    dns.set("db.other", vec![a("127.0.0.2")]);
    let Some(etc) = PrivateEtc::new(
        &format!("nameserver {dns_ip}\nsearch {SEARCH}\noptions ndots:2 timeout:1 attempts:1\n"),
        "127.0.0.1 localhost\n127.0.0.1 only-in-hosts\n",
    ) else {
        return;
    };
    // With `hosts: files` in nsswitch.conf, libc cannot resolve a DNS name in there: if
    // holdup resolved through libc, the tcp and http targets below could never be ready.
    let libc = etc.run("getent", &["hosts", &format!("db.{SEARCH}")]);
    assert!(
        !libc.success(),
        "libc resolved db.{SEARCH} without DNS in nsswitch.conf"
    );

    let port = ClosedPort::new();
    let tcp_port = port.port();
    let _listening = port.open();
    let http = HttpServer::start(200, "ok");
    etc.holdup()
        .args(["-w", &format!("tcp://db:{tcp_port}")])
        .args([
            "-w",
            &format!("http://only-in-hosts:{}/", http.address().port()),
        ])
        .args(["-w", "dns://db"])
        .args(["-w", "dns://db#type=A&expect=127.0.0.1&match=exact"])
        .args(["-w", "dns://only-in-hosts#expect=127.0.0.1"])
        .args(["-t", "10s"])
        .run()
        .code(0);
    assert_eq!(http.requests(), ["GET /"]);

    // A trailing dot makes the name absolute: no search list, so the server is asked for
    // `db.` itself, which is not in its zone (REFUSED).
    etc.holdup()
        .args(["-w", "dns://db.", "-t", "1s"])
        .run()
        .code(1)
        .stderr_has(&format!("asking {dns_ip}:53 for A/AAAA db: "));
}

/// A host name is asked again on every attempt: a tcp:// target follows its name from no
/// record at all, to an address where nothing listens, to the one where its server is.
#[test]
fn a_host_name_is_resolved_again_on_every_attempt() {
    let Some(dns) = on_port_53(|address| DnsServer::start_on(address, "internal.")) else {
        return;
    };
    let Some(etc) = PrivateEtc::new(
        &format!(
            "nameserver {}\nsearch {SEARCH}\noptions ndots:2 timeout:1 attempts:1\n",
            dns.address().ip()
        ),
        "127.0.0.1 localhost\n",
    ) else {
        return;
    };
    let port = ClosedPort::new();
    let number = port.port();
    let _listening = port.open();
    let running = etc
        .holdup()
        .args(["-w", &format!("tcp://moving:{number}"), "-t", "20s"])
        .spawn();
    running.wait_for_line("cannot resolve moving: ");
    dns.set("moving.holdup-test", vec![a("127.0.0.2")]);
    running.wait_for_line(&format!("127.0.0.2:{number}: connection refused"));
    dns.set("moving.holdup-test", vec![a("127.0.0.1")]);
    running
        .finish()
        .code(0)
        .stderr_has(&format!("tcp://moving:{number} ready after"));
}

#[test]
fn a_name_in_hosts_needs_no_dns_server_and_a_mute_one_cannot_stall_the_deadline() {
    let Some(mute) = on_port_53(Mute::start_on) else {
        return;
    };
    let mute_ip = mute.address().ip();
    // ndots:5 puts the search list first; a resolver that asked DNS before /etc/hosts would
    // hang on the mute server for every attempt.
    let Some(etc) = PrivateEtc::new(
        &format!("nameserver {mute_ip}\nsearch {SEARCH}\noptions ndots:5\n"),
        "127.0.0.1 localhost\n127.0.0.1 only-in-hosts\n",
    ) else {
        return;
    };
    let port = ClosedPort::new();
    let number = port.port();
    let _listening = port.open();
    // Ready on the first attempt, and the DNS server was never asked.
    etc.holdup()
        .args(["-w", &format!("tcp://only-in-hosts:{number}"), "-t", "3s"])
        .run()
        .code(0)
        .stderr_has(&format!("tcp://only-in-hosts:{number} ready after "))
        .stderr_has("(1 attempt)")
        .stderr_lacks("waiting for");
    assert_eq!(mute.queries(), 0, "a name in /etc/hosts was asked of DNS");
    // The attempt timeout (30 s) is far longer than the deadline; the deadline wins.
    etc.holdup()
        .args(["-w", &format!("tcp://db:{number}"), "-w", "dns://db", "-t", "1500ms"])
        .args(["--attempt-timeout", "30s"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "tcp://db:{number} not ready after 1.50s: timed out after 1.50s while resolving db (1 attempt)"
        ))
        .stderr_has(&format!(
            "dns://db not ready after 1.50s: timed out after 1.50s while asking {mute_ip}:53 for A/AAAA db (1 attempt)"
        ))
        .took_between(secs(1.5), secs(1.5) + DEADLINE_SLACK);
    assert!(mute.queries() >= 1);
}

/// Holdup with its own /etc/resolv.conf, /etc/hosts and nsswitch.conf (`hosts: files`),
/// bind-mounted in a private mount namespace, and its own host name ([`HOSTNAME`]).
struct PrivateEtc {
    dir: tempfile::TempDir,
}

const MOUNT_SCRIPT: &str = r#"set -e
mount --bind "$1" /etc/resolv.conf
mount --bind "$2" /etc/hosts
mount --bind "$3" /etc/nsswitch.conf
printf '%s\n' "$4" >/proc/sys/kernel/hostname
shift 4
exec "$@""#;

impl PrivateEtc {
    /// `None` (after saying so) when this machine cannot make a mount namespace and this
    /// is not CI; in CI that is a failure.
    fn new(resolv_conf: &str, hosts: &str) -> Option<PrivateEtc> {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("resolv.conf", resolv_conf),
            ("hosts", hosts),
            ("nsswitch.conf", "hosts: files\n"),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let etc = PrivateEtc { dir };
        let status = Command::new("unshare")
            .args(etc.wrapper_args())
            .arg("true")
            .output();
        match status {
            Ok(output) if output.status.success() => Some(etc),
            Ok(output) => need(
                "system resolution",
                Err(format!(
                    "cannot bind-mount files over /etc in a mount and UTS namespace: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )),
            ),
            Err(error) => need(
                "system resolution",
                Err(format!("cannot run unshare: {error}")),
            ),
        }
    }

    fn wrapper_args(&self) -> Vec<String> {
        let path = |file: &str| self.dir.path().join(file).display().to_string();
        let mut args: Vec<String> = [
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ]
        .map(String::from)
        .to_vec();
        args.push(MOUNT_SCRIPT.to_string());
        args.push("sh".to_string());
        args.extend(["resolv.conf", "hosts", "nsswitch.conf"].map(path));
        args.push(HOSTNAME.to_string());
        args
    }

    fn holdup(&self) -> Holdup {
        let args = self.wrapper_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Holdup::wrapped_in("unshare", &args)
    }

    /// Runs another program in the same kind of namespace.
    fn run(&self, program: &str, args: &[&str]) -> std::process::ExitStatus {
        Command::new("unshare")
            .args(self.wrapper_args())
            .arg(program)
            .args(args)
            .output()
            .expect("cannot run unshare")
            .status
    }
}

/// Starts `server` on port 53 of a loopback address of its own (127.x.y.z), as resolv.conf
/// has no port. Needs root; `None` (after saying so) without it, outside CI.
fn on_port_53<S>(server: impl Fn(SocketAddr) -> io::Result<S>) -> Option<S> {
    let random = RandomState::new().build_hasher().finish();
    let mut last_error = None;
    for attempt in 0..16u64 {
        let bytes = (random >> (attempt * 4)).to_le_bytes();
        let ip = Ipv4Addr::new(127, bytes[0].max(1), bytes[1], bytes[2].clamp(2, 254));
        match server(SocketAddr::new(IpAddr::V4(ip), 53)) {
            Ok(server) => return Some(server),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = Some(error),
            Err(error) => {
                return need(
                    "system resolution",
                    Err(format!("cannot bind {ip}:53: {error}")),
                );
            }
        }
    }
    panic!("no free 127.x.y.z:53 address: {last_error:?}");
}
