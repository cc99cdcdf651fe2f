//! Targets written as URLs (every kind but postgres, whose libpq URIs may name several
//! hosts, and exec): the URL itself, holdup's options from its fragment, and the host and
//! port or local path it names.

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::ffi::OsStringExt as _;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use percent_encoding::percent_decode_str;
use url::{Host, Url};

use super::options::Options;
use crate::net::{check_host_name, check_reachable};

/// The URL of `text` (which has a scheme) and the options in its fragment.
pub fn parse(text: &str) -> Result<(Url, Options)> {
    let url = Url::parse(text).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => {
            anyhow!("expected a URL such as tcp://host:port or http://host/path, or host:port")
        }
        other => anyhow!("{other}"),
    })?;
    if url.port() == Some(0) {
        bail!("port 0 cannot be connected to (expected a port from 1 to 65535)");
    }
    // A URL of a scheme of its own (tcp://) keeps an IPv4 address as text.
    let address = match url.host() {
        Some(Host::Domain(name)) => match name.parse::<IpAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                check_host_name(name)?;
                None
            }
        },
        Some(Host::Ipv4(address)) => Some(IpAddr::V4(address)),
        Some(Host::Ipv6(address)) => Some(IpAddr::V6(address)),
        None => None,
    };
    if let Some(address) = address {
        check_reachable(address)?;
    }
    let options = Options::parse(url.fragment())?;
    Ok((url, options))
}

/// Host and port of a URL whose scheme has no default port: both required.
pub fn host_and_port(url: &Url, example: &str) -> Result<(String, u16)> {
    let host = url.host_str().filter(|host| !host.is_empty());
    match (host, url.port()) {
        (Some(host), Some(port)) => Ok((host.to_string(), port)),
        (None, _) => bail!("missing host (expected {example})"),
        (Some(_), None) => bail!("missing port (expected {example})"),
    }
}

/// The absolute path that a `file:///…` or `unix:///…` URL names (percent-decoded, so
/// `%20` is a space and `%23` a `#`). Only three slashes, or `//localhost/`, are taken: a
/// relative path depends on the directory holdup happens to start in, and `scheme://name/…`
/// would make `name` a host, which a local path cannot have.
pub fn local_path(text: &str, url: &Url, example: &str) -> Result<PathBuf> {
    let after_scheme = text.split_once(':').map_or("", |(_, rest)| rest);
    let host = url.host_str().unwrap_or_default();
    if !after_scheme.starts_with("//") || !(host.is_empty() || host == "localhost") {
        bail!(
            "expected an absolute path, as {example} (three slashes); a relative path is not taken"
        );
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        bail!("a local path has no user, password or port (expected {example})");
    }
    if url.query().is_some() {
        bail!("a local path has no query: write '?' as %3F (expected {example})");
    }
    let path: Vec<u8> = percent_decode_str(url.path()).collect();
    if path.is_empty() {
        bail!("missing path (expected {example})");
    }
    if path.contains(&0) {
        bail!("a path cannot hold a NUL byte (%00)");
    }
    Ok(PathBuf::from(OsString::from_vec(path)))
}
