//! TLS client settings shared by every probe that speaks TLS: which roots to trust and how
//! strictly to check the server's certificate. Uses ring and built-in roots, so a static
//! binary in an empty container needs no system certificate store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

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

/// A TLS client configuration, built once per target.
pub fn client_config(roots: &Roots, verify: Verify) -> Result<ClientConfig> {
    client_config_with_identity(roots, verify, None)
}

/// A TLS client configuration that also presents a client certificate when given one.
pub fn client_config_with_identity(
    roots: &Roots,
    verify: Verify,
    identity: Option<Identity>,
) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS setup")?;
    let builder = match verify {
        Verify::Full => builder.with_root_certificates(root_store(roots)?),
        Verify::ChainOnly => {
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(roots)?), provider)
                    .build()
                    .context("TLS setup")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName { inner }))
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

fn root_store(roots: &Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::BuiltIn => {
            store.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
        }
        Roots::File(path) => {
            let (_, rejected) = store.add_parsable_certificates(read_certificates(path)?);
            if store.is_empty() {
                bail!(
                    "CA file {}: none of its {rejected} certificates can be used as a root",
                    path.display()
                );
            }
        }
        Roots::Pem { pem, from } => {
            let (_, rejected) = store.add_parsable_certificates(parse_certificates(pem, from)?);
            if store.is_empty() {
                bail!("{from}: none of its {rejected} certificates can be used as a root");
            }
        }
    }
    Ok(store)
}

/// Checks the chain but accepts any server name.
#[derive(Debug)]
struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
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
