//! What a MySQL client answers to the server's authentication plugins: the SHA-1 scramble
//! of `mysql_native_password`, the SHA-256 scramble of `caching_sha2_password`, the
//! password encrypted with the server's RSA key for their full authentication without TLS,
//! and MariaDB's `client_ed25519` signature.

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ring::digest::{self, Algorithm, SHA1_FOR_LEGACY_USE_ONLY, SHA256, SHA512};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Oaep, RsaPublicKey};

pub(super) const NATIVE: &str = "mysql_native_password";
pub(super) const CACHING_SHA2: &str = "caching_sha2_password";
pub(super) const SHA256_PASSWORD: &str = "sha256_password";
pub(super) const ED25519: &str = "client_ed25519";

/// The first answer to `plugin`'s challenge `nonce`; `None` for a plugin holdup does not
/// speak. An empty password is answered with nothing, as MySQL's clients do.
pub(super) fn first_answer(
    plugin: &str,
    password: &str,
    nonce: &[u8],
    over_tls: bool,
) -> Option<Vec<u8>> {
    if password.is_empty() {
        return Some(Vec::new());
    }
    match plugin {
        NATIVE => Some(scramble(&SHA1_FOR_LEGACY_USE_ONLY, password, nonce, false)),
        CACHING_SHA2 => Some(scramble(&SHA256, password, nonce, true)),
        // sha256_password: the password itself over TLS; otherwise ask for the server's
        // public key (1) and encrypt it with that.
        SHA256_PASSWORD if over_tls => Some(clear_text(password)),
        SHA256_PASSWORD => Some(vec![1]),
        ED25519 => Some(ed25519_signature(password, nonce)),
        _ => None,
    }
}

/// MariaDB's ed25519: an Ed25519 signature of the nonce whose secret is SHA-512 of the
/// password, as Ed25519 derives it from a 32-byte seed (the server keeps the public key).
fn ed25519_signature(password: &str, nonce: &[u8]) -> Vec<u8> {
    let mut expanded = [0u8; 64];
    expanded.copy_from_slice(digest::digest(&SHA512, password.as_bytes()).as_ref());
    let secret = ExpandedSecretKey::from_bytes(&expanded);
    let public = (&secret).into();
    raw_sign::<sha2::Sha512>(&secret, nonce, &public)
        .to_bytes()
        .to_vec()
}

/// The password as sent over TLS: NUL-terminated.
pub(super) fn clear_text(password: &str) -> Vec<u8> {
    let mut bytes = password.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// `H(password) XOR H(H(H(password)) + nonce)` for SHA-256 (caching_sha2_password), and
/// `H(password) XOR H(nonce + H(H(password)))` for SHA-1 (mysql_native_password).
fn scramble(
    algorithm: &'static Algorithm,
    password: &str,
    nonce: &[u8],
    nonce_last: bool,
) -> Vec<u8> {
    let stage1 = digest::digest(algorithm, password.as_bytes());
    let stage2 = digest::digest(algorithm, stage1.as_ref());
    let mut context = digest::Context::new(algorithm);
    if nonce_last {
        context.update(stage2.as_ref());
        context.update(nonce);
    } else {
        context.update(nonce);
        context.update(stage2.as_ref());
    }
    let stage3 = context.finish();
    stage1
        .as_ref()
        .iter()
        .zip(stage3.as_ref())
        .map(|(a, b)| a ^ b)
        .collect()
}

/// The password (NUL-terminated, XORed with the nonce) encrypted with the server's RSA
/// public key, PEM as the server sends it, with OAEP padding as MySQL 8 expects.
pub(super) fn rsa_encrypted(pem: &[u8], password: &str, nonce: &[u8]) -> Result<Vec<u8>, String> {
    let pem =
        std::str::from_utf8(pem).map_err(|_| "the server's RSA public key is not PEM text")?;
    let pem = pem.trim_end_matches('\0').trim();
    let key = RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| "the server's RSA public key cannot be read".to_string())?;
    let mut plain = clear_text(password);
    if !nonce.is_empty() {
        for (index, byte) in plain.iter_mut().enumerate() {
            *byte ^= nonce[index % nonce.len()];
        }
    }
    key.encrypt(&mut rand_core::OsRng, Oaep::new::<sha1::Sha1>(), &plain)
        .map_err(|error| format!("cannot encrypt the password with the server's RSA key: {error}"))
}

#[cfg(test)]
mod tests {
    use rsa::RsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// caching_sha2_password cannot be tried against a server here (Debian ships MariaDB,
    /// which does not have it): these vectors are the ones the Go MySQL driver
    /// (go-sql-driver/mysql, auth_test.go) checks its scramble against.
    #[test]
    fn caching_sha2_scramble_matches_known_vectors() {
        let nonce = [
            10, 47, 74, 111, 75, 73, 34, 48, 88, 76, 114, 74, 37, 13, 3, 80, 82, 2, 23, 21,
        ];
        let cases = [
            (
                "secret",
                "f490e76f66d9d86665ce54d98c78d0acfe2fb0b08b423da807144873d30b312c",
            ),
            (
                "secret2",
                "abc3934a012cf342e876071c8ee202de51785b430258a7a0138bc79c4d800bc6",
            ),
        ];
        for (password, expected) in cases {
            let answer = first_answer(CACHING_SHA2, password, &nonce, false).unwrap();
            assert_eq!(hex(&answer), expected, "{password}");
        }
    }

    #[test]
    fn answers_per_plugin() {
        let nonce = [1u8; 20];
        assert_eq!(first_answer(NATIVE, "pw", &nonce, false).unwrap().len(), 20);
        assert_eq!(
            first_answer(CACHING_SHA2, "pw", &nonce, false)
                .unwrap()
                .len(),
            32
        );
        assert_eq!(first_answer(NATIVE, "", &nonce, false).unwrap(), b"");
        assert_eq!(
            first_answer(SHA256_PASSWORD, "pw", &nonce, true).unwrap(),
            b"pw\0"
        );
        assert_eq!(
            first_answer(SHA256_PASSWORD, "pw", &nonce, false).unwrap(),
            [1]
        );
        assert_eq!(
            first_answer(ED25519, "pw", &nonce, false).unwrap().len(),
            64
        );
        assert_eq!(first_answer("dialog", "pw", &nonce, false), None);
    }

    #[test]
    fn rsa_encryption_decrypts_to_the_password() {
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let nonce = b"0123456789abcdefghij";
        let encrypted = rsa_encrypted(pem.as_bytes(), "s3cret", nonce).unwrap();
        let decrypted = key.decrypt(Oaep::new::<sha1::Sha1>(), &encrypted).unwrap();
        let plain: Vec<u8> = decrypted
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ nonce[index % nonce.len()])
            .collect();
        assert_eq!(plain, b"s3cret\0");
        assert!(rsa_encrypted(b"not a key", "pw", nonce).is_err());
    }
}
