//! `tcp://HOST:PORT`: ready when a TCP connection to any address of HOST is accepted.

use std::fmt;

use anyhow::{Result, bail};

use super::options::Plan;
use super::target_url::{self, host_and_port};
use crate::attempt::{Failure, Stage};
use crate::net::Net;
use crate::redact;

#[derive(Debug)]
pub struct Tcp {
    host: String,
    port: u16,
    shown: String,
}

impl Tcp {
    pub fn parse(text: &str) -> Result<Tcp> {
        let (url, options) = target_url::parse(text)?;
        options.finish("tcp", &[])?;
        if !url.username().is_empty() || url.password().is_some() {
            bail!("tcp targets take no credentials (expected tcp://host:port)");
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            bail!("tcp targets have no path or query (expected tcp://host:port)");
        }
        let (host, port) = host_and_port(&url, "tcp://host:port")?;
        Ok(Tcp {
            host,
            port,
            shown: redact::url(&url),
        })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        // The connection is dropped at once: accepting it is all "ready" means here.
        net.connect(&self.host, self.port, stage).await?;
        Ok(())
    }

    pub fn plan(&self) -> Plan {
        vec![
            ("host", self.host.clone()),
            ("port", self.port.to_string()),
            ("ready", "a connection is accepted".to_string()),
        ]
    }
}

impl fmt::Display for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}
