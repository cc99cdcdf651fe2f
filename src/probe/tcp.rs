//! `tcp://HOST:PORT`: ready when a TCP connection to any address of HOST is accepted.

use anyhow::{Result, bail};
use url::Url;

use super::{Failure, Options, Stage, host_and_port};
use crate::net::Net;

#[derive(Debug)]
pub struct Tcp {
    host: String,
    port: u16,
}

impl Tcp {
    pub fn parse(url: &Url, options: Options) -> Result<Tcp> {
        options.finish("tcp", &[])?;
        if !url.username().is_empty() || url.password().is_some() {
            bail!("tcp targets take no credentials (expected tcp://host:port)");
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            bail!("tcp targets have no path or query (expected tcp://host:port)");
        }
        let (host, port) = host_and_port(url, "tcp://host:port")?;
        Ok(Tcp { host, port })
    }

    pub async fn check(&self, net: &Net, stage: &Stage) -> Result<(), Failure> {
        // The connection is dropped at once: accepting it is all "ready" means here.
        net.connect(&self.host, self.port, stage).await?;
        Ok(())
    }
}
