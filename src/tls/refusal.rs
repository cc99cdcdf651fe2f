//! Why a server's certificate is refused, and any other TLS failure, in words a person can
//! act on: what the certificate is (its subject, its issuer, its names, its dates), what
//! was trusted instead, and how to trust the right one. Never a Rust Debug string.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, OtherError};

/// A refusal already in words, carried through rustls to whoever reports the failure.
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refused {}

/// What a verifier trusted, for the words of its refusals.
pub(super) struct Trusted<'a> {
    /// The CA file, or the built-in roots, as shown.
    pub(super) roots: String,
    /// The certificates of the CA file; none for the built-in roots.
    pub(super) certificates: &'a [CertificateDer<'static>],
    /// How this kind of target is given a CA: `#ca=FILE`.
    pub(super) give_ca: &'static str,
}

impl Trusted<'_> {
    /// Why the server's certificate is refused, with what to do about it.
    pub(super) fn words(
        &self,
        refusal: &CertificateError,
        end_entity: &CertificateDer<'_>,
    ) -> String {
        let parsed = webpki::EndEntityCert::try_from(end_entity).ok();
        let subject = parsed.as_ref().map_or_else(
            || "unreadable".to_string(),
            |cert| name_words(cert.subject()),
        );
        let issuer = parsed.as_ref().map(|cert| name_words(cert.issuer()));
        let self_signed = parsed
            .as_ref()
            .is_some_and(|cert| cert.subject() == cert.issuer());
        let give_ca = self.give_ca;
        let roots = &self.roots;
        let built_in = self.certificates.is_empty();
        // webpki refuses a CA certificate as a server's own before it looks for an issuer.
        let ca_as_own = webpki_error_of(refusal) == Some(&webpki::Error::CaUsedAsEndEntity);
        let untrusted = ca_as_own || *refusal == CertificateError::UnknownIssuer;
        match refusal {
            _ if untrusted && self_signed && built_in => format!(
                "the server's certificate ({subject}) is self-signed; to trust it, give a file \
                 that holds it with {give_ca}"
            ),
            _ if untrusted && self_signed => format!(
                "the server's certificate ({subject}) is self-signed, and is not one of the \
                 certificates in {roots}{}",
                self.file_holds()
            ),
            _ if ca_as_own && built_in => format!(
                "the server presents a CA certificate ({subject}) as its own; to trust it, give \
                 a file that holds it with {give_ca}"
            ),
            _ if ca_as_own => format!(
                "the server presents a CA certificate ({subject}) as its own, and it is not one \
                 of the certificates in {roots}; put it there to trust it"
            ),
            CertificateError::UnknownIssuer if built_in => format!(
                "the server's certificate ({subject}, issued by {}) is not signed by a CA of \
                 {roots}; give the CA that signed it with {give_ca}",
                issuer.unwrap_or_default()
            ),
            CertificateError::UnknownIssuer => format!(
                "the server's certificate ({subject}, issued by {}) is not signed by a CA in \
                 {roots}{}",
                issuer.unwrap_or_default(),
                self.file_holds()
            ),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                let names: Vec<String> =
                    presented.iter().map(|name| presented_name(name)).collect();
                let expected = expected.to_str();
                if names.is_empty() {
                    format!(
                        "the server's certificate ({subject}) names no host (it has no \
                         subjectAltName, and its CN is not read), so it is not valid for \
                         {expected}"
                    )
                } else {
                    format!(
                        "the server's certificate is for {}, not for {expected}",
                        names.join(", ")
                    )
                }
            }
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the server's certificate ({subject}) expired at {} (it is now {})",
                date(not_after),
                date(time)
            ),
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "the server's certificate ({subject}) is not valid before {} (it is now {}; is \
                 this machine's clock right?)",
                date(not_before),
                date(time)
            ),
            CertificateError::BadSignature => format!(
                "the server's certificate ({subject}) is not really signed by its issuer \
                 ({}): the signature does not verify",
                issuer.unwrap_or_default()
            ),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!(
                    "the server's certificate ({subject}) is not meant for a TLS server (its \
                     extended key usage lacks serverAuth)"
                )
            }
            CertificateError::Other(OtherError(inner)) => format!(
                "the server's certificate ({subject}) is refused: {}",
                variant(inner)
            ),
            other => format!(
                "the server's certificate ({subject}) is refused: {}",
                variant(other)
            ),
        }
    }

    /// `" (which holds CN=a, CN=b)"`: what the CA file holds, to compare with the issuer.
    fn file_holds(&self) -> String {
        let names: Vec<String> = self
            .certificates
            .iter()
            .filter_map(|cert| webpki::EndEntityCert::try_from(cert).ok())
            .map(|cert| name_words(cert.subject()))
            .collect();
        match names.as_slice() {
            [] => String::new(),
            [one, two, three, rest @ ..] if !rest.is_empty() => {
                format!(
                    " (which holds {one}, {two}, {three} and {} more)",
                    rest.len()
                )
            }
            all => format!(" (which holds {})", all.join(", ")),
        }
    }
}

/// A TLS failure in plain words: certificate refusals as [`words`] put them, the rest
/// (alerts, a server that does not speak TLS) as a person would say them.
pub fn error_words(error: &rustls::Error) -> String {
    use rustls::Error::*;
    match error {
        InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            match inner.downcast_ref::<Refused>() {
                Some(refused) => refused.0.clone(),
                None => format!("the server's certificate is refused: {}", variant(inner)),
            }
        }
        InvalidCertificate(other) => {
            format!("the server's certificate is refused: {}", variant(other))
        }
        AlertReceived(alert) => format!(
            "the server ended the handshake ({}): it may want a client certificate or a TLS \
             version holdup does not speak",
            variant(alert)
        ),
        InvalidMessage(_) | InappropriateMessage { .. } | InappropriateHandshakeMessage { .. } => {
            "the server does not speak TLS here (is it plain http, or another protocol?)"
                .to_string()
        }
        PeerIncompatible(why) => format!(
            "the server and holdup have no TLS version or cipher in common ({})",
            variant(why)
        ),
        NoCertificatesPresented => "the server presented no certificate".to_string(),
        other => spaced(&other.to_string()),
    }
}

/// The name of an enum variant (`HandshakeFailure`, `CaUsedAsEndEntity(..)`) as words
/// (`handshake failure`), without the fields: rustls and webpki name their errors well.
fn variant(value: &dyn fmt::Debug) -> String {
    let text = format!("{value:?}");
    let name = text.split(['(', ' ', '{']).next().unwrap_or_default();
    spaced(name)
}

/// `CaUsedAsEndEntity` as `ca used as end entity`.
fn spaced(text: &str) -> String {
    let mut words = String::new();
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase()) {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
        previous = Some(c);
    }
    words
        .replace(['(', ')'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The webpki error inside a rustls one, for the few rustls passes on as "other".
pub(super) fn webpki_error(error: &rustls::Error) -> Option<&webpki::Error> {
    match error {
        rustls::Error::InvalidCertificate(refusal) => webpki_error_of(refusal),
        _ => None,
    }
}

fn webpki_error_of(refusal: &CertificateError) -> Option<&webpki::Error> {
    match refusal {
        CertificateError::Other(OtherError(inner)) => inner.downcast_ref::<webpki::Error>(),
        _ => None,
    }
}

/// A subjectAltName as webpki reports it (`DnsName("db")`, `IpAddress(10.0.0.1)`), bare.
fn presented_name(name: &str) -> String {
    for prefix in ["DnsName(\"", "IpAddress(", "UniformResourceIdentifier(\""] {
        if let Some(inner) = name.strip_prefix(prefix) {
            return inner
                .trim_end_matches(')')
                .trim_end_matches('"')
                .to_string();
        }
    }
    name.to_string()
}

fn date(time: &UnixTime) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(time.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A certificate's subject or issuer (the DER contents of its Name) as `CN=db, O=Shop`:
/// the attributes people name certificates by. Anything unreadable is left out.
fn name_words(name: &[u8]) -> String {
    const KNOWN: &[(&[u8], &str)] = &[
        (&[0x55, 0x04, 0x03], "CN"),
        (&[0x55, 0x04, 0x0a], "O"),
        (&[0x55, 0x04, 0x0b], "OU"),
    ];
    let mut parts = Vec::new();
    let mut sets = name;
    while let Some((_, set, rest)) = der(sets) {
        sets = rest;
        let mut attributes = set;
        while let Some((_, attribute, rest)) = der(attributes) {
            attributes = rest;
            let Some((0x06, oid, value)) = der(attribute) else {
                continue;
            };
            let Some((_, value, _)) = der(value) else {
                continue;
            };
            if let Some((_, short)) = KNOWN.iter().find(|(known, _)| *known == oid) {
                parts.push(format!("{short}={}", String::from_utf8_lossy(value)));
            }
        }
    }
    if parts.is_empty() {
        "no name".to_string()
    } else {
        parts.join(", ")
    }
}

/// One DER element of `input`: its tag, its contents and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| length << 8 | usize::from(byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_failures_in_words() {
        use rustls::{AlertDescription, Error, InvalidMessage, PeerIncompatible};
        let cases = [
            (
                Error::AlertReceived(AlertDescription::HandshakeFailure),
                "the server ended the handshake (handshake failure)",
            ),
            (
                Error::InvalidMessage(InvalidMessage::InvalidContentType),
                "the server does not speak TLS here",
            ),
            (
                Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                "no TLS version or cipher in common (no cipher suites in common)",
            ),
            (
                Error::InvalidCertificate(CertificateError::Revoked),
                "the server's certificate is refused: revoked",
            ),
        ];
        for (error, expected) in cases {
            let words = error_words(&error);
            assert!(words.contains(expected), "{words}");
            assert!(
                !words.contains(['(', ')']) || words.contains(" ("),
                "{words}"
            );
        }
        assert_eq!(
            variant(&webpki::Error::CaUsedAsEndEntity),
            "ca used as end entity"
        );
        assert_eq!(presented_name("DnsName(\"db\")"), "db");
        assert_eq!(presented_name("IpAddress(10.0.0.5)"), "10.0.0.5");
    }

    #[test]
    fn names_of_certificates() {
        let cert = rcgen::generate_simple_self_signed(vec!["db".to_string()]).unwrap();
        let parsed = webpki::EndEntityCert::try_from(cert.cert.der()).unwrap();
        assert_eq!(name_words(parsed.subject()), "CN=rcgen self signed cert");
        assert_eq!(name_words(&[]), "no name");
        // Truncated or nonsense DER is left out, never a panic.
        for bad in [&[0x31u8, 0x85][..], &[0x31, 0x05, 0x30], &[0xff; 7]] {
            let _ = name_words(bad);
        }
        assert_eq!(
            der(&[0x04, 0x02, 1, 2, 3]),
            Some((0x04, &[1u8, 2][..], &[3u8][..]))
        );
        assert_eq!(
            der(&[0x04, 0x82, 0x00, 0x01, 9]),
            Some((0x04, &[9u8][..], &[][..]))
        );
        assert_eq!(der(&[0x04, 0x03, 1]), None);
    }
}
