//! What an sslmode means, as libpq has it: which certificate checks are made (decided once,
//! when the target is parsed), and, for each connection, the SSLRequest and TLS handshake.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::errors::HostFailure;
use super::uri::Host;
use super::wire::{SSL_REQUEST, Stream};
use crate::attempt::Stage;
use crate::tls::{self, Roots, Verify};
use crate::words::io_error_words;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub(super) fn parse(text: &str) -> Result<SslMode> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "invalid sslmode '{other}' (expected disable, allow, prefer, require, verify-ca or verify-full)"
            ),
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which certificate checks an sslmode makes, as libpq: verify-ca and verify-full check the
/// chain (verify-full also the name); allow, prefer and require check the chain only when a
/// root certificate file exists, and nothing otherwise. Also returns those checks in words.
pub(super) fn tls_config(
    sslmode: SslMode,
    sslrootcert: Option<String>,
    home: Option<String>,
) -> Result<(rustls::ClientConfig, String)> {
    let roots = match sslrootcert.as_deref() {
        Some("system") => {
            if sslmode != SslMode::VerifyFull {
                bail!(
                    "sslmode={} may not be used with sslrootcert=system (use sslmode=verify-full, as libpq requires)",
                    sslmode.name()
                );
            }
            Some(Roots::BuiltIn)
        }
        // Unlike libpq, a named file that cannot be read is an error in every mode that may
        // use TLS: a typo must not quietly turn certificate checks off.
        Some(path) => Some(Roots::File(PathBuf::from(path))),
        None => home
            .map(|home| Path::new(&home).join(".postgresql/root.crt"))
            .filter(|path| path.exists())
            .map(Roots::File),
    };
    let verify = match (sslmode, &roots) {
        (SslMode::VerifyFull, Some(_)) => Verify::Full,
        (SslMode::VerifyCa, Some(_)) => Verify::ChainOnly,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => bail!(
            "sslmode={} needs the CA that signed the server's certificate: add sslrootcert=/path/to/ca.pem (or sslrootcert=system for the public roots)",
            sslmode.name()
        ),
        (_, Some(_)) => Verify::ChainOnly,
        (_, None) => Verify::Nothing,
    };
    let checks = match &roots {
        Some(roots) => format!("{verify}, against {roots}"),
        None => "nothing (no root certificate file)".to_string(),
    };
    let roots = roots.unwrap_or(Roots::BuiltIn);
    let config = tls::client_config(&roots, verify, "sslrootcert=FILE")
        .with_context(|| format!("sslrootcert for sslmode={}", sslmode.name()))?;
    Ok((config, checks))
}

/// How one connection is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encryption {
    Plain,
    /// TLS if the server agrees, else plain on the same connection (sslmode=prefer).
    TlsIfOffered,
    TlsRequired,
}

/// libpq's SSLRequest, then the TLS handshake if the server agrees (`tls` is None with
/// sslmode=disable). Reads exactly one byte before the handshake so that nothing a man in
/// the middle slipped in ahead of it is taken as coming from the server (CVE-2021-23222).
pub(super) async fn negotiate(
    mut tcp: tokio::net::TcpStream,
    host: &Host,
    tls: Option<Arc<rustls::ClientConfig>>,
    sslmode: SslMode,
    encryption: Encryption,
    stage: &Stage,
) -> Result<(Box<dyn Stream>, bool), HostFailure> {
    let Some(tls) = tls.filter(|_| encryption != Encryption::Plain) else {
        return Ok((Box::new(tcp), false));
    };
    stage.set(format!("asking {host} for TLS"));
    let io_failure = |error: io::Error| {
        HostFailure::new(format!(
            "{host}: {} (when asked for TLS)",
            io_error_words(&error)
        ))
    };
    tcp.write_all(&SSL_REQUEST).await.map_err(io_failure)?;
    let mut answer = [0u8];
    tcp.read_exact(&mut answer).await.map_err(io_failure)?;
    match answer[0] {
        b'S' => {}
        b'N' if encryption == Encryption::TlsIfOffered => return Ok((Box::new(tcp), false)),
        b'N' if sslmode == SslMode::Allow => {
            return Err(HostFailure::new(format!(
                "{host} does not accept TLS either (ssl is off on the server)"
            )));
        }
        b'N' => {
            return Err(HostFailure::new(format!(
                "{host} does not accept TLS (ssl is off on the server), and sslmode={} requires it",
                sslmode.name()
            )));
        }
        other => {
            return Err(HostFailure::new(format!(
                "{host} answered the TLS request with {:?}: is it a Postgres server?",
                char::from(other)
            )));
        }
    }
    stage.set(format!("TLS handshake with {host}"));
    let name = server_name(&host.name).map_err(HostFailure::new)?;
    match tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
    {
        Ok(stream) => Ok((Box::new(stream), true)),
        Err(error) => {
            let reason = match error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls_error) => tls::error_words(tls_error),
                None => io_error_words(&error),
            };
            Err(HostFailure {
                over_tls: true,
                tls_failed: true,
                ..HostFailure::new(format!("TLS handshake with {host} failed: {reason}"))
            })
        }
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|_| format!("'{host}' is not a valid TLS server name")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::Postgres;
    use super::super::settings::tests::parse;
    use super::*;

    #[test]
    fn sslmodes_follow_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let certificate = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
        std::fs::write(&ca, certificate.cert.pem()).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        let home_text = home.display().to_string();
        let env = |name: &str| (name == "HOME").then(|| home_text.clone());
        // No root certificate anywhere: require checks nothing, verify-* refuse to start.
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=require", &env).is_ok());
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=verify-ca", &env).is_err());
        // ~/.postgresql/root.crt is found as libpq finds it.
        std::fs::copy(&ca, home.join(".postgresql/root.crt")).unwrap();
        assert!(Postgres::parse_with_env("postgres://u@db?sslmode=verify-full", &env).is_ok());
        let system = parse("postgres://u@db?sslrootcert=system").unwrap();
        assert_eq!(system.sslmode, SslMode::VerifyFull);
        assert!(
            parse("postgres://u@db?sslmode=disable&sslrootcert=/nope")
                .unwrap()
                .tls
                .is_none()
        );
    }
}
