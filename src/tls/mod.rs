//! TLS client settings shared by every probe that speaks TLS: which roots to trust and how
//! strictly to check the server's certificate; [`refusal`] says why one was refused. Uses
//! ring and built-in roots, so a static binary in an empty container needs no system
//! certificate store.

mod refusal;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

pub use self::refusal::error_words;
use self::refusal::{Refused, Trusted, webpki_error};

/// Which certificate authorities a probe trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The public web roots compiled into holdup.
    BuiltIn,
    /// Only the certificates in this PEM file (like `curl --cacert`): private CAs, the
    /// Kubernetes service-account `ca.crt`.
    File(PathBuf),
    /// Only these PEM certificates, given inline (a kubeconfig's
    /// `certificate-authority-data`); `from` says where, for error messages.
    Pem { pem: Vec<u8>, from: String },
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::BuiltIn => f.write_str("the public roots built into holdup"),
            Roots::File(path) => write!(f, "{}", path.display()),
            Roots::Pem { from, .. } => f.write_str(from),
        }
    }
}

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Chain to a trusted root and the name we connected to (the default everywhere).
    Full,
    /// Chain to a trusted root, any name (libpq's `sslmode=verify-ca`).
    ChainOnly,
    /// Nothing: encryption without authentication (`insecure`, `sslmode=require`).
    Nothing,
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verify::Full => "chain and name",
            Verify::ChainOnly => "chain, any name",
            Verify::Nothing => "nothing",
        })
    }
}

/// A certificate (chain) and its private key, presented to servers that ask for one
/// (a kubeconfig's `client-certificate` and `client-key`).
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret; the chain alone says which identity this is.
        write!(
            f,
            "Identity({} certificates, key redacted)",
            self.chain.len()
        )
    }
}

/// A TLS client configuration, built once per target. `give_ca` says how this kind of
/// target is given a CA (`#ca=FILE`), for the hint when a certificate is not trusted.
pub fn client_config(roots: &Roots, verify: Verify, give_ca: &'static str) -> Result<ClientConfig> {
    client_config_with_identity(roots, verify, None, give_ca)
}

/// A TLS client configuration that also presents a client certificate when given one.
pub fn client_config_with_identity(
    roots: &Roots,
    verify: Verify,
    identity: Option<Identity>,
    give_ca: &'static str,
) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS setup")?;
    let builder = match verify {
        Verify::Full | Verify::ChainOnly => {
            let checked = Checked::new(roots, verify == Verify::Full, give_ca)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(checked))
        }
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCheck {
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => builder
            .with_client_auth_cert(identity.chain, identity.key)
            .context("the client certificate and key cannot be used together"),
    }
}

/// Why a TLS handshake made with tokio-rustls failed, in words: the refusal rustls reports
/// (a certificate not trusted, an alert), or else what happened to the connection.
pub fn handshake_error_words(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(refused) => error_words(refused),
        None => crate::words::io_error_words(error),
    }
}

/// The name a server's certificate is checked against: a DNS name, or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(bare.to_string())
            .map_err(|_| anyhow::anyhow!("'{bare}' is not a valid TLS server name")),
    }
}

/// A configuration that trusts no one, for clients that must never do TLS (plain http://
/// targets, whose redirects are not followed) but whose HTTP library still wants one.
pub fn trusting_nothing() -> Result<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS setup")?;
    Ok(builder
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// Reads every certificate of a PEM file; an unreadable or empty file is a configuration
/// error, reported before anything is probed.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display()))?;
    parse_certificates(&pem, &format!("CA file {}", path.display()))
}

/// Every certificate of PEM text; `what` names it in errors ("CA file /x.pem").
pub fn parse_certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{what} is not valid PEM"))?;
    if certificates.is_empty() {
        bail!("{what} holds no certificate (expected PEM 'BEGIN CERTIFICATE' blocks)");
    }
    Ok(certificates)
}

/// The private key of PEM text (PKCS#8, PKCS#1 or SEC1); `what` names it in errors.
pub fn parse_private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| anyhow::anyhow!("{what} holds no PEM private key"))
}

/// The store of trusted roots, and the certificates of a file or PEM (none for the
/// built-in roots), which a server may also present as its own.
fn root_store(roots: &Roots) -> Result<(RootCertStore, Vec<CertificateDer<'static>>)> {
    let mut store = RootCertStore::empty();
    let trusted = match roots {
        Roots::BuiltIn => {
            store.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
            Vec::new()
        }
        Roots::File(path) => read_certificates(path)?,
        Roots::Pem { pem, from } => parse_certificates(pem, from)?,
    };
    if !trusted.is_empty() {
        let (_, rejected) = store.add_parsable_certificates(trusted.iter().cloned());
        if store.is_empty() {
            bail!("{roots}: none of its {rejected} certificates can be used as a root");
        }
    }
    Ok((store, trusted))
}

/// Checks the chain (and the name, unless told not to) with webpki, and says why a
/// certificate is refused. A server may present one of the trusted certificates itself,
/// as curl and OpenSSL allow: the common self-signed development certificate made by
/// `openssl req -x509` is marked as a CA, which webpki refuses as a server's own.
#[derive(Debug)]
struct Checked {
    inner: Arc<WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
    names: bool,
    roots: Roots,
    give_ca: &'static str,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let checked = match checked {
            Err(error)
                if webpki_error(&error) == Some(&webpki::Error::CaUsedAsEndEntity)
                    && self
                        .trusted
                        .iter()
                        .any(|cert| cert.as_ref() == end_entity.as_ref()) =>
            {
                // Trusted as itself. Its dates are checked: webpki reads them before it
                // finds the CA mark, and fails on them first. The name is checked here.
                if self.names {
                    rustls::client::verify_server_name(
                        &ParsedCertificate::try_from(end_entity)?,
                        server_name,
                    )
                    .map(|()| ServerCertVerified::assertion())
                } else {
                    Ok(ServerCertVerified::assertion())
                }
            }
            other => other,
        };
        match checked {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(refusal)) => {
                let trusted = Trusted {
                    roots: self.roots.to_string(),
                    certificates: &self.trusted,
                    give_ca: self.give_ca,
                };
                let words = trusted.words(&refusal, end_entity);
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(Refused(words))),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Checked {
    fn new(roots: &Roots, names: bool, give_ca: &'static str) -> Result<Checked> {
        let (store, trusted) = root_store(roots)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .context("TLS setup")?;
        Ok(Checked {
            inner,
            trusted,
            names,
            roots: roots.clone(),
            give_ca,
        })
    }
}

/// Accepts any certificate, but still checks that the handshake is signed by its key.
struct NoCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for NoCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoCheck")
    }
}

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd,
    };

    /// A certificate for `names`: self-signed (`issuer` None) or signed by `issuer`; a CA
    /// (as `openssl req -x509` makes them) when `ca`; valid in `years`.
    fn certificate(
        common_name: &str,
        names: &[&str],
        ca: bool,
        years: (i32, i32),
        issuer: Option<&Issuer<'_, KeyPair>>,
    ) -> (Cert, CertificateParams, KeyPair) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.not_before = date_time_ymd(years.0, 1, 1);
        params.not_after = date_time_ymd(years.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        let certificate = match issuer {
            None => params.self_signed(&key).unwrap(),
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        };
        let cert = Cert {
            der: certificate.der().clone(),
            pem: certificate.pem(),
        };
        (cert, params, key)
    }

    struct Cert {
        der: CertificateDer<'static>,
        pem: String,
    }

    impl std::ops::Deref for Cert {
        type Target = CertificateDer<'static>;
        fn deref(&self) -> &Self::Target {
            &self.der
        }
    }

    fn pem_of(certificates: &[&Cert]) -> Roots {
        let pem: String = certificates.iter().map(|cert| cert.pem.as_str()).collect();
        Roots::Pem {
            pem: pem.into_bytes(),
            from: "the CA file".into(),
        }
    }

    const NOW: (i32, i32) = (2000, 2200);

    fn check(
        roots: &Roots,
        names: bool,
        presented: &CertificateDer<'_>,
        host: &str,
    ) -> Result<(), String> {
        let checked = Checked::new(roots, names, "#ca=FILE").unwrap();
        let name = ServerName::try_from(host.to_string()).unwrap();
        checked
            .verify_server_cert(presented, &[], &name, &[], UnixTime::now())
            .map(drop)
            .map_err(|error| error_words(&error))
    }

    #[test]
    fn a_trusted_certificate_may_be_the_servers_own() {
        // What `openssl req -x509 -subj /CN=localhost -addext subjectAltName=DNS:localhost`
        // makes: self-signed and marked as a CA.
        let (own, _, _) = certificate("localhost", &["localhost"], true, NOW, None);
        let (other, _, _) = certificate("other", &["other"], true, NOW, None);
        let file = pem_of(&[&other, &own]);
        assert_eq!(check(&file, true, &own, "localhost"), Ok(()));
        assert_eq!(
            check(&file, true, &own, "db.internal"),
            Err("the server's certificate is for localhost, not for db.internal".into())
        );
        assert_eq!(check(&file, false, &own, "db.internal"), Ok(()));
        // Not in the file: refused, saying what it is.
        let message = check(&pem_of(&[&other]), true, &own, "localhost").unwrap_err();
        assert!(message.contains("(CN=localhost) is self-signed, and is not one of the certificates in the CA file (which holds CN=other)"), "{message}");
        let message = check(&Roots::BuiltIn, true, &own, "localhost").unwrap_err();
        assert_eq!(
            message,
            "the server's certificate (CN=localhost) is self-signed; to trust it, give a file that holds it with #ca=FILE"
        );
        // Its dates still count.
        let (expired, _, _) = certificate("old", &["localhost"], true, (2001, 2002), None);
        let message = check(&pem_of(&[&expired]), true, &expired, "localhost").unwrap_err();
        assert!(
            message.starts_with(
                "the server's certificate (CN=old) expired at 2002-01-01T00:00:00Z (it is now 20"
            ),
            "{message}"
        );
        let (early, _, _) = certificate("early", &["localhost"], true, (2190, 2200), None);
        let message = check(&pem_of(&[&early]), true, &early, "localhost").unwrap_err();
        assert!(
            message.contains("is not valid before 2190-01-01T00:00:00Z"),
            "{message}"
        );
    }

    #[test]
    fn refusals_say_why_in_words() {
        let (ca, ca_params, ca_key) = certificate("shop CA", &[], true, NOW, None);
        let issuer = Issuer::new(ca_params, ca_key);
        let (server, _, _) = certificate("db", &["db", "10.0.0.5"], false, NOW, Some(&issuer));
        let (other_ca, _, _) = certificate("other CA", &[], true, NOW, None);
        let trusted = pem_of(&[&ca]);
        assert_eq!(check(&trusted, true, &server, "db"), Ok(()));
        let cases = [
            (
                pem_of(&[&other_ca]),
                "db",
                "the server's certificate (CN=db, issued by CN=shop CA) is not signed by a CA in the CA file (which holds CN=other CA)",
            ),
            (
                Roots::BuiltIn,
                "db",
                "the server's certificate (CN=db, issued by CN=shop CA) is not signed by a CA of the public roots built into holdup; give the CA that signed it with #ca=FILE",
            ),
            (
                trusted.clone(),
                "cache",
                "the server's certificate is for db, 10.0.0.5, not for cache",
            ),
        ];
        for (roots, host, expected) in cases {
            assert_eq!(
                check(&roots, true, &server, host),
                Err(expected.to_string()),
                "{host}"
            );
        }
        // A CA certificate signed by a trusted CA is still no server certificate.
        let (sub_ca, _, _) = certificate("sub CA", &["db"], true, NOW, Some(&issuer));
        let message = check(&trusted, true, &sub_ca, "db").unwrap_err();
        assert_eq!(
            message,
            "the server presents a CA certificate (CN=sub CA) as its own, and it is not one of the certificates in the CA file; put it there to trust it"
        );
        let (expired, _, _) = certificate("db", &["db"], false, (2001, 2002), Some(&issuer));
        let message = check(&trusted, true, &expired, "db").unwrap_err();
        assert!(
            message.contains("expired at 2002-01-01T00:00:00Z"),
            "{message}"
        );
    }
}
