//! Targets written as URLs (every kind but postgres, whose libpq URIs may name several
//! hosts): the URL itself, and holdup's options from its fragment.

use anyhow::{Result, anyhow, bail};
use url::Url;

use super::options::Options;

/// The URL of `text` (which has a scheme) and the options in its fragment.
pub fn parse(text: &str) -> Result<(Url, Options)> {
    let url = Url::parse(text).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => {
            anyhow!("expected a URL such as tcp://host:port or http://host/path, or host:port")
        }
        other => anyhow!("{other}"),
    })?;
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
