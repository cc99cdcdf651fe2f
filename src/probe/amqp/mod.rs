//! `amqp://…` and `amqps://…` (RabbitMQ and other AMQP 0-9-1 brokers): ready when the
//! broker completes the handshake up to `connection.open-ok` on the vhost; then the
//! connection is closed the AMQP way, so that the broker logs no error for each attempt.
//!
//! The handshake is written by hand: it is seven frames, and a client library would bring
//! its own executor, connection and TLS, against our resolver and the binary's size.
//!
//! - [`frames`]: the frames written and read.

mod frames;

use std::fmt;
use std::io;

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use self::frames::{
    CLOSE, CLOSE_OK, CONNECTION, FRAME_END, FRAME_LIMIT, OPEN, OPEN_OK, PROTOCOL_HEADER, SECURE,
    START, START_OK, TUNE, TUNE_OK, client_properties, long_string, method_frame, parse_start,
    short_string,
};
use super::conn::{self, Conn, FailFast, PasswordFrom, Tls};
use super::options::Plan;
use super::target_url;
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact::{self, Secret};
use crate::words::io_error_words;

const FORM: &str = "amqp://USER:PASSWORD@HOST[:PORT][/VHOST]";
const OPTIONS: &[&str] = &["fail-fast", "password-file", "ca", "insecure"];
/// Query parameters of RabbitMQ's URI spec that tune a client's connection: accepted, not
/// used (the scheduler bounds every attempt, and holdup opens no channel).
const TUNING: &[&str] = &[
    "heartbeat",
    "connection_timeout",
    "channel_max",
    "frame_max",
];

pub struct Amqp {
    host: String,
    port: u16,
    authority: String,
    user: String,
    password: Secret,
    password_from: PasswordFrom,
    vhost: String,
    tls: Option<Tls>,
    fail_fast: FailFast,
    shown: String,
}

impl Amqp {
    pub fn parse(text: &str) -> Result<Amqp> {
        let (url, mut options) = target_url::parse(text)?;
        let with_tls = url.scheme() == "amqps";
        let fail_fast = FailFast::take(&mut options, &["auth", "vhost"])?;
        let password_file = options.take("password-file")?;
        let tls = conn::https_like_tls(&mut options, with_tls, "amqps")?;
        options.finish(url.scheme(), OPTIONS)?;

        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| anyhow!("missing host (expected {FORM})"))?
            .to_string();
        let port = url.port().unwrap_or(if with_tls { 5671 } else { 5672 });
        if port == 0 {
            bail!("invalid port 0 (expected {FORM})");
        }
        for (name, _) in url.query_pairs() {
            if !TUNING.contains(&name.as_ref()) {
                bail!(
                    "unknown query parameter '{name}' (holdup accepts {} and does not use them; TLS options go after '#': #ca=FILE, #insecure)",
                    TUNING.join(", ")
                );
            }
        }
        let vhost = match url.path() {
            "" | "/" => "/".to_string(),
            path if path[1..].contains('/') => bail!(
                "the vhost '{}' has a '/': write it as %2f (expected {FORM}; the vhost / is %2f or nothing)",
                &path[1..]
            ),
            path => conn::percent_decode_strict(&path[1..], "vhost")?,
        };
        let user = match url.username() {
            "" => bail!("missing user name (expected {FORM})"),
            user => conn::percent_decode_strict(user, "user name")?,
        };
        // AMQP has no variable its clients read a password from.
        let (password, password_from) =
            match conn::password(&url, password_file, None, &|_| None, "URL")? {
                Some(found) => found,
                None => bail!("missing password (expected {FORM}, or #password-file=FILE)"),
            };
        Ok(Amqp {
            authority: format!("{host}:{port}"),
            host,
            port,
            user,
            password,
            password_from,
            vhost,
            tls,
            fail_fast,
            shown: redact::url(&url),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        let stream = conn::open(
            net,
            &self.host,
            self.port,
            &self.authority,
            self.tls.as_ref(),
            stage,
        )
        .await?;
        let mut session = Session {
            stream: BufReader::new(stream),
            authority: &self.authority,
            step: "the protocol header",
        };
        self.handshake(&mut session, stage)
            .await
            .map_err(|refusal| {
                let words = refusal.words;
                if self.fail_fast.covers(refusal.kind) {
                    Failure::Permanent(anyhow!(words))
                } else {
                    Failure::NotReady(anyhow!(words))
                }
            })
    }

    pub fn plan(&self) -> Plan {
        let mut plan = vec![
            ("address", self.authority.clone()),
            ("user", self.user.clone()),
            ("password", PasswordFrom::plan(Some(&self.password_from))),
            ("vhost", self.vhost.clone()),
            (
                "ready",
                format!(
                    "the broker logs in {} (PLAIN) and opens vhost {} (connection.open-ok)",
                    self.user, self.vhost
                ),
            ),
            ("fail-fast", self.fail_fast.to_string()),
        ];
        plan.extend(conn::plan_tls(self.tls.as_ref()));
        plan
    }

    async fn handshake(&self, session: &mut Session<'_>, stage: &Stage) -> Result<(), Refusal> {
        stage.set(format!(
            "waiting for {} to start the AMQP connection",
            self.authority
        ));
        session.send(PROTOCOL_HEADER).await?;
        let start = session.expect(START).await?;
        let mechanisms = parse_start(&start).map_err(Refusal::new)?;
        if !mechanisms.split_whitespace().any(|name| name == "PLAIN") {
            return Err(Refusal::new(format!(
                "the broker does not offer PLAIN logins (it offers {mechanisms})"
            )));
        }

        stage.set(format!("logging in as {} to {}", self.user, self.authority));
        session.step = "connection.start-ok (the login)";
        let mut response = vec![0];
        response.extend_from_slice(self.user.as_bytes());
        response.push(0);
        response.extend_from_slice(self.password.expose().as_bytes());
        let mut args = client_properties();
        args.extend(short_string("PLAIN"));
        args.extend(long_string(&response));
        args.extend(short_string("en_US"));
        session.send(&method_frame(START_OK, &args)).await?;
        let tune = session.expect(TUNE).await?;
        let (channel_max, frame_max) = match tune.as_slice() {
            [c0, c1, f0, f1, f2, f3, ..] => (
                u16::from_be_bytes([*c0, *c1]),
                u32::from_be_bytes([*f0, *f1, *f2, *f3]),
            ),
            _ => {
                return Err(Refusal::new(format!(
                    "{}: connection.tune is too short",
                    self.authority
                )));
            }
        };

        stage.set(format!(
            "opening vhost {} on {}",
            self.vhost, self.authority
        ));
        session.step = "connection.open (the vhost)";
        // Heartbeats off: the connection lives for a moment.
        let mut args = channel_max.to_be_bytes().to_vec();
        args.extend(frame_max.to_be_bytes());
        args.extend(0u16.to_be_bytes());
        session.send(&method_frame(TUNE_OK, &args)).await?;
        let mut args = short_string(&self.vhost);
        args.extend(short_string(""));
        args.push(0);
        session.send(&method_frame(OPEN, &args)).await?;
        session.expect(OPEN_OK).await?;

        stage.set(format!("closing the connection to {}", self.authority));
        session.step = "connection.close";
        let mut args = 200u16.to_be_bytes().to_vec();
        args.extend(short_string("ready"));
        args.extend([0, 0, 0, 0]);
        session.send(&method_frame(CLOSE, &args)).await?;
        session.expect(CLOSE_OK).await?;
        Ok(())
    }
}

impl fmt::Display for Amqp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Amqp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out: only the target as it may be shown.
        write!(f, "Amqp({})", self.shown)
    }
}

/// Why the handshake did not complete, and whether `#fail-fast` may end the wait for it.
struct Refusal {
    words: String,
    kind: Option<&'static str>,
}

impl Refusal {
    fn new(words: impl Into<String>) -> Refusal {
        Refusal {
            words: words.into(),
            kind: None,
        }
    }
}

struct Session<'a> {
    stream: BufReader<Conn>,
    authority: &'a str,
    /// What the broker was last sent, for messages when it hangs up.
    step: &'static str,
}

impl Session<'_> {
    fn io_refusal(&self, error: &io::Error) -> Refusal {
        Refusal::new(format!(
            "{}: {} (after {})",
            self.authority,
            io_error_words(error),
            self.step
        ))
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        written.await.map_err(|error| self.io_refusal(&error))
    }

    /// The arguments of the next connection method, which must be `method`; the broker's
    /// `connection.close` instead is answered with close-ok and becomes the refusal.
    async fn expect(&mut self, method: u16) -> Result<Vec<u8>, Refusal> {
        loop {
            let (kind, payload) = match self.read_frame().await {
                Ok(frame) => frame,
                Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                    return Err(Refusal::new(format!("{}: {error}", self.authority)));
                }
                Err(error) => return Err(self.io_refusal(&error)),
            };
            // Heartbeats (8) and anything on other frame types are not ours to answer.
            if kind != 1 {
                continue;
            }
            let (class, got, args) = match payload.as_slice() {
                [c0, c1, m0, m1, args @ ..] => (
                    u16::from_be_bytes([*c0, *c1]),
                    u16::from_be_bytes([*m0, *m1]),
                    args.to_vec(),
                ),
                _ => {
                    return Err(Refusal::new(format!(
                        "{}: a method frame too short",
                        self.authority
                    )));
                }
            };
            match (class, got) {
                (CONNECTION, m) if m == method => return Ok(args),
                (CONNECTION, CLOSE) => {
                    let _ = self.send(&method_frame(CLOSE_OK, &[])).await;
                    return Err(close_refusal(&args));
                }
                (CONNECTION, SECURE) => {
                    return Err(Refusal::new(
                        "the broker asks for a SASL challenge after PLAIN: is PLAIN really enabled?",
                    ));
                }
                _ => {
                    return Err(Refusal::new(format!(
                        "{}: unexpected AMQP method {class}.{got} after {}",
                        self.authority, self.step
                    )));
                }
            }
        }
    }

    async fn read_frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut header = [0u8; 7];
        self.stream.read_exact(&mut header).await?;
        if &header[..4] == b"AMQP" {
            // The broker refused our protocol version and answered with the one it speaks.
            let mut rest = [0u8; 1];
            let _ = self.stream.read_exact(&mut rest).await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the broker speaks AMQP {}-{}-{}, not 0-9-1",
                    header[5], header[6], rest[0]
                ),
            ));
        }
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
        if size > FRAME_LIMIT || !matches!(header[0], 1..=4 | 8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server's answer is not an AMQP 0-9-1 frame: is it an AMQP broker?",
            ));
        }
        let mut payload = vec![0u8; size as usize + 1];
        self.stream.read_exact(&mut payload).await?;
        if payload.pop() != Some(FRAME_END) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an AMQP frame without its end marker: is it an AMQP broker?",
            ));
        }
        Ok((header[0], payload))
    }
}

/// `403 ACCESS_REFUSED - Login was refused …`, from the broker's connection.close.
fn close_refusal(args: &[u8]) -> Refusal {
    let code = args
        .get(..2)
        .map_or(0, |code| u16::from_be_bytes([code[0], code[1]]));
    let text = args
        .get(2)
        .and_then(|length| args.get(3..3 + usize::from(*length)))
        .map(|text| String::from_utf8_lossy(text).into_owned())
        .unwrap_or_default();
    let kind = match code {
        403 => Some("auth"),
        530 if text.contains("not found") => Some("vhost"),
        530 if text.contains("refused for user") => Some("auth"),
        _ => None,
    };
    Refusal {
        words: format!("{code} {text}"),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_targets() {
        let cases = [
            (
                "amqp://app:pw@rabbit",
                "rabbit:5672",
                "/",
                "amqp://app@rabbit",
            ),
            (
                "amqp://app:pw@rabbit/",
                "rabbit:5672",
                "/",
                "amqp://app@rabbit/",
            ),
            (
                "amqp://app:pw@rabbit/%2f",
                "rabbit:5672",
                "/",
                "amqp://app@rabbit/%2f",
            ),
            (
                "amqps://app:pw@rabbit:5000/shop%2Fprod?heartbeat=10#insecure",
                "rabbit:5000",
                "shop/prod",
                "amqps://app@rabbit:5000/shop%2Fprod?heartbeat=10",
            ),
            (
                "amqps://a%40b:p%25w@[::1]/v",
                "[::1]:5671",
                "v",
                "amqps://a%40b@[::1]/v",
            ),
        ];
        for (input, authority, vhost, shown) in cases {
            let amqp = Amqp::parse(input).unwrap_or_else(|e| panic!("{input}: {e:#}"));
            assert_eq!(amqp.authority, authority, "{input}");
            assert_eq!(amqp.vhost, vhost, "{input}");
            assert_eq!(amqp.to_string(), shown, "{input}");
        }
        let amqp = Amqp::parse("amqp://a%40b:p%25w@rabbit").unwrap();
        assert_eq!((amqp.user.as_str(), amqp.password.expose()), ("a@b", "p%w"));
    }

    #[test]
    fn rejected_targets_say_why() {
        let cases = [
            ("amqp://rabbit", "missing user name"),
            ("amqp://app@rabbit", "missing password"),
            ("amqp://app:pw@", "empty host"),
            ("amqp://app:pw@rabbit:99999", "invalid port number"),
            ("amqp://app:pw@rabbit/a/b", "write it as %2f"),
            (
                "amqp://app:pw@rabbit/%zz",
                "invalid percent-encoding in the vhost",
            ),
            (
                "amqp://app:pw@rabbit?auth_mechanism=external",
                "unknown query parameter 'auth_mechanism'",
            ),
            ("amqp://app:pw@rabbit#insecure", "for amqps:// targets"),
            (
                "amqp://app:pw@rabbit#fail-fast=database",
                "one or more of auth, vhost",
            ),
            (
                "amqp://app:pw@rabbit#nope",
                "unknown option 'nope' for amqp targets",
            ),
            ("amqp://app:pw@rabbit#password-file=/x", "give one of them"),
        ];
        for (input, expected) in cases {
            let message = format!("{:#}", Amqp::parse(input).expect_err(input));
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains(":pw"), "{input}: {message}");
        }
    }

    #[test]
    fn refusals_say_what_failed() {
        let mut args = 403u16.to_be_bytes().to_vec();
        args.extend(short_string("ACCESS_REFUSED - Login was refused"));
        args.extend([0, 10, 0, 11]);
        let refusal = close_refusal(&args);
        assert_eq!(refusal.words, "403 ACCESS_REFUSED - Login was refused");
        assert_eq!(refusal.kind, Some("auth"));
        let mut args = 530u16.to_be_bytes().to_vec();
        args.extend(short_string("NOT_ALLOWED - vhost shop not found"));
        assert_eq!(close_refusal(&args).kind, Some("vhost"));
    }
}
