//! A Service IP that swallows the first SYN, as on a Kubernetes node whose kube-proxy has
//! not programmed the Service yet: in network namespaces of the test's own, a connection to
//! 10.96.0.10:80 follows the default route into a namespace that drops it without a word.
//! Then a DNAT rule, as kube-proxy writes it, sends that IP to a listener. The first
//! connection's retransmitted SYNs keep their connection-tracking entry and still go
//! nowhere; holdup must connect through the rule with a fresh connection, within its first
//! attempt, instead of waiting that attempt out.

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsRawFd as _;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Holdup, need};

const SERVICE_IP: &str = "10.96.0.10";

/// Two namespaces joined by a veth pair: `client` (10.99.0.1, default route through the
/// other end) and `void` (10.99.0.2), which drops everything sent to the Service IP.
/// Deleted on drop.
struct Namespaces {
    client: String,
    void: String,
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id();
        let namespaces = Namespaces {
            client: format!("holdup-c{id}-{n}"),
            void: format!("holdup-v{id}-{n}"),
        };
        ip(&["netns", "add", &namespaces.client])?;
        ip(&["netns", "add", &namespaces.void])?;
        let (client, void) = (namespaces.client.as_str(), namespaces.void.as_str());
        let steps: &[&[&str]] = &[
            &[
                "netns", "exec", client, "ip", "link", "add", "v0", "type", "veth", "peer", "name",
                "v1", "netns", void,
            ],
            &[
                "netns",
                "exec",
                client,
                "ip",
                "addr",
                "add",
                "10.99.0.1/24",
                "dev",
                "v0",
            ],
            &["netns", "exec", client, "ip", "link", "set", "v0", "up"],
            &["netns", "exec", client, "ip", "link", "set", "lo", "up"],
            &[
                "netns",
                "exec",
                void,
                "ip",
                "addr",
                "add",
                "10.99.0.2/24",
                "dev",
                "v1",
            ],
            &["netns", "exec", void, "ip", "link", "set", "v1", "up"],
            &[
                "netns",
                "exec",
                client,
                "ip",
                "route",
                "add",
                "default",
                "via",
                "10.99.0.2",
            ],
        ];
        for step in steps {
            ip(step)?;
        }
        // The void counts what reaches it, then drops it before routing, so that no ICMP
        // error comes back: the SYN just goes nowhere.
        namespaces.iptables(
            void,
            &[
                "-t",
                "raw",
                "-A",
                "PREROUTING",
                "-d",
                SERVICE_IP,
                "-p",
                "tcp",
                "--syn",
            ],
        )?;
        namespaces.iptables(
            void,
            &[
                "-t",
                "raw",
                "-A",
                "PREROUTING",
                "-d",
                SERVICE_IP,
                "-j",
                "DROP",
            ],
        )?;
        // A node's NAT table already holds other Services, so connection tracking is on
        // before this one's rule is written.
        namespaces.iptables(
            client,
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-d",
                "10.96.0.1",
                "-p",
                "tcp",
                "--dport",
                "443",
                "-j",
                "DNAT",
                "--to-destination",
                "10.99.0.1:6443",
            ],
        )?;
        Ok(namespaces)
    }

    fn iptables(&self, namespace: &str, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["netns", "exec", namespace, "iptables", "-w"];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// SYNs to the Service IP that reached the void so far.
    fn swallowed_syns(&self) -> u64 {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.void,
                "iptables",
                "-w",
                "-t",
                "raw",
                "-L",
                "PREROUTING",
                "-n",
                "-v",
                "-x",
            ])
            .output()
            .expect("cannot run iptables");
        let listing = String::from_utf8_lossy(&output.stdout);
        listing
            .lines()
            .find(|line| line.contains("flags:0x17/0x02"))
            .and_then(|line| line.split_whitespace().next())
            .and_then(|packets| packets.parse().ok())
            .unwrap_or(0)
    }

    /// A listener on 10.99.0.1 inside the client namespace, counting what it accepts.
    fn listen(&self) -> (u16, mpsc::Receiver<()>) {
        let path = format!("/var/run/netns/{}", self.client);
        let (port_tx, port_rx) = mpsc::channel();
        let (accepted_tx, accepted) = mpsc::channel();
        thread::spawn(move || {
            let namespace = File::open(&path).expect("the namespace file exists");
            // SAFETY: setns(2) on a valid descriptor; it moves this thread only.
            let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            let listener =
                TcpListener::bind("10.99.0.1:0").expect("cannot listen in the namespace");
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            for connection in listener.incoming() {
                if connection.is_err() || accepted_tx.send(()).is_err() {
                    break;
                }
            }
        });
        (port_rx.recv().expect("the listener starts"), accepted)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.void]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn a_service_ip_programmed_while_connecting_is_reached_in_the_same_attempt() {
    let test = "a_service_ip_programmed_while_connecting_is_reached_in_the_same_attempt";
    let Some(namespaces) = need(test, Namespaces::create()) else {
        return;
    };
    let (port, accepted) = namespaces.listen();
    // The attempt timeout is long, so that only a fresh connection within the first
    // attempt can make holdup ready with one attempt.
    let running = Holdup::wrapped_in("ip", &["netns", "exec", &namespaces.client])
        .args(["--wait-for", &format!("tcp://{SERVICE_IP}:80")])
        .args([
            "--attempt-timeout",
            "30s",
            "--timeout",
            "50s",
            "--log-format",
            "json",
        ])
        .spawn();

    // Event: holdup's first SYN has gone out and was swallowed.
    let limit = Instant::now() + Duration::from_secs(20);
    while namespaces.swallowed_syns() == 0 {
        assert!(
            Instant::now() < limit,
            "holdup never sent a SYN to {SERVICE_IP}"
        );
        thread::sleep(Duration::from_millis(10));
    }
    namespaces
        .iptables(
            &namespaces.client,
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-d",
                SERVICE_IP,
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "DNAT",
                "--to-destination",
                &format!("10.99.0.1:{port}"),
            ],
        )
        .expect("cannot add the DNAT rule");
    let programmed = Instant::now();

    let finished = running.finish();
    finished.code(0);
    let detected = programmed.elapsed();
    accepted
        .recv_timeout(Duration::from_secs(5))
        .expect("the listener saw holdup's connection");
    let ready = finished
        .json_lines()
        .into_iter()
        .find(|line| line["event"] == "ready")
        .expect("a ready event");
    assert_eq!(ready["attempts"], 1, "{}", finished.stderr);
    // A hang guard far below the 30 s the first attempt would otherwise have lasted.
    assert!(
        detected < Duration::from_secs(15),
        "took {detected:?} after the rule was added"
    );
    eprintln!("connected {detected:?} after the Service rule appeared");
}
