//! The MySQL client/server packets a readiness check reads and writes: framing, the
//! server's greeting, the handshake response, OK and ERR, and the first row of a result.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

pub(super) const CLIENT_LONG_PASSWORD: u32 = 1;
pub(super) const CLIENT_CONNECT_WITH_DB: u32 = 8;
pub(super) const CLIENT_PROTOCOL_41: u32 = 0x200;
pub(super) const CLIENT_SSL: u32 = 0x800;
pub(super) const CLIENT_TRANSACTIONS: u32 = 0x2000;
pub(super) const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub(super) const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
pub(super) const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;
/// utf8mb4_general_ci, known to MySQL 5.5+ and every MariaDB.
const CHARSET: u8 = 45;
const MAX_PACKET: u32 = 16 * 1024 * 1024;
/// Longest packet read; a greeting is ~100 bytes, a row of a readiness query is small.
const PACKET_LIMIT: usize = 1 << 20;
pub(super) const COM_QUIT: u8 = 0x01;
pub(super) const COM_QUERY: u8 = 0x03;

/// Reads and writes packets, keeping their sequence numbers.
pub(super) struct Wire<S> {
    pub(super) stream: S,
    pub(super) sequence: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(super) fn new(stream: S) -> Self {
        Wire {
            stream,
            sequence: 0,
        }
    }

    pub(super) async fn read(&mut self) -> io::Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if length > PACKET_LIMIT {
            return Err(invalid("a packet longer than 1 MiB"));
        }
        self.sequence = header[3].wrapping_add(1);
        let mut payload = vec![0u8; length];
        self.stream.read_exact(&mut payload).await?;
        Ok(payload)
    }

    pub(super) async fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        let length = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        let mut packet = vec![length[0], length[1], length[2], self.sequence];
        packet.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        self.stream.write_all(&packet).await?;
        self.stream.flush().await
    }

    /// A command starts a new exchange: sequence 0.
    pub(super) async fn command(&mut self, payload: &[u8]) -> io::Result<()> {
        self.sequence = 0;
        self.write(payload).await
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server sent {what}: is it a MySQL server?"),
    )
}

/// The server's first packet (protocol 10).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Greeting {
    pub(super) version: String,
    pub(super) capabilities: u32,
    pub(super) nonce: Vec<u8>,
    pub(super) plugin: String,
}

impl Greeting {
    pub(super) fn parse(packet: &[u8]) -> Result<Greeting, String> {
        let bad = || "the server's greeting is malformed: is it a MySQL server?".to_string();
        match packet.first() {
            Some(10) => {}
            Some(other) => {
                return Err(format!(
                    "the server greets with protocol {other}, not 10: is it a MySQL server?"
                ));
            }
            None => return Err(bad()),
        }
        let (version, rest) = nul_string(&packet[1..]).ok_or_else(bad)?;
        // connection id (4), nonce part 1 (8), filler (1)
        let nonce_1 = rest.get(4..12).ok_or_else(bad)?;
        let rest = rest.get(13..).ok_or_else(bad)?;
        let low = u16::from_le_bytes([
            *rest.first().ok_or_else(bad)?,
            *rest.get(1).ok_or_else(bad)?,
        ]);
        // charset (1), status (2)
        let high = match rest.get(5..7) {
            Some(high) => u16::from_le_bytes([high[0], high[1]]),
            None => 0,
        };
        let capabilities = u32::from(low) | (u32::from(high) << 16);
        let mut nonce = nonce_1.to_vec();
        let mut plugin = String::new();
        if let Some(rest) = rest.get(7..) {
            let nonce_length = usize::from(*rest.first().unwrap_or(&0));
            // reserved (10)
            let rest = rest.get(11..).unwrap_or_default();
            if capabilities & CLIENT_SECURE_CONNECTION != 0 {
                let part_2 = nonce_length.saturating_sub(8).max(13).min(rest.len());
                let (nonce_2, rest) = rest.split_at(part_2);
                nonce.extend(nonce_2.iter().take_while(|byte| **byte != 0));
                if capabilities & CLIENT_PLUGIN_AUTH != 0 {
                    plugin = nul_string(rest)
                        .map(|(name, _)| name)
                        .unwrap_or_else(|| String::from_utf8_lossy(rest).into_owned());
                }
            }
        }
        Ok(Greeting {
            version,
            capabilities,
            nonce,
            plugin,
        })
    }

    /// The version as people know it: MariaDB prefixes "5.5.5-" for old replication clients.
    pub(super) fn shown_version(&self) -> &str {
        self.version.strip_prefix("5.5.5-").unwrap_or(&self.version)
    }
}

fn nul_string(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes.iter().position(|byte| *byte == 0)?;
    Some((
        String::from_utf8_lossy(&bytes[..end]).into_owned(),
        &bytes[end + 1..],
    ))
}

/// An ERR packet: code, SQLSTATE (when the server gave one) and message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ServerError {
    pub(super) code: u16,
    pub(super) state: Option<String>,
    pub(super) message: String,
}

impl ServerError {
    /// `packet` starts with 0xFF.
    pub(super) fn parse(packet: &[u8]) -> ServerError {
        let code = match packet.get(1..3) {
            Some(code) => u16::from_le_bytes([code[0], code[1]]),
            None => 0,
        };
        let rest = packet.get(3..).unwrap_or_default();
        let (state, message) = match rest.split_first() {
            Some((b'#', tail)) if tail.len() >= 5 => (
                Some(String::from_utf8_lossy(&tail[..5]).into_owned()),
                &tail[5..],
            ),
            _ => (None, rest),
        };
        ServerError {
            code,
            state,
            message: String::from_utf8_lossy(message).trim().to_string(),
        }
    }

    /// `Access denied for user 'app'@'localhost' (using password: YES) (error 1045, SQLSTATE 28000)`
    pub(super) fn words(&self) -> String {
        match &self.state {
            Some(state) => format!("{} (error {}, SQLSTATE {state})", self.message, self.code),
            None => format!("{} (error {})", self.message, self.code),
        }
    }
}

/// The SSLRequest: the capabilities alone, before the TLS handshake.
pub(super) fn ssl_request(capabilities: u32) -> Vec<u8> {
    let mut packet = capabilities.to_le_bytes().to_vec();
    packet.extend(MAX_PACKET.to_le_bytes());
    packet.push(CHARSET);
    packet.extend([0u8; 23]);
    packet
}

/// HandshakeResponse41.
pub(super) fn handshake_response(
    capabilities: u32,
    user: &str,
    answer: &[u8],
    db: Option<&str>,
    plugin: &str,
) -> Vec<u8> {
    let mut packet = ssl_request(capabilities);
    packet.extend_from_slice(user.as_bytes());
    packet.push(0);
    // CLIENT_SECURE_CONNECTION: one byte of length; answers are 20 or 32 bytes.
    let answer = &answer[..answer.len().min(255)];
    packet.push(answer.len() as u8);
    packet.extend_from_slice(answer);
    if let Some(db) = db.filter(|_| capabilities & CLIENT_CONNECT_WITH_DB != 0) {
        packet.extend_from_slice(db.as_bytes());
        packet.push(0);
    }
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        packet.extend_from_slice(plugin.as_bytes());
        packet.push(0);
    }
    packet
}

/// An AuthSwitchRequest (after 0xFE): the plugin to use and its nonce.
pub(super) fn auth_switch(packet: &[u8]) -> Option<(String, Vec<u8>)> {
    let (plugin, data) = nul_string(packet.get(1..)?)?;
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    Some((plugin, data.to_vec()))
}

/// A length-encoded integer and the rest; `None` for NULL (0xFB) or a short packet.
fn lenenc(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (first, rest) = bytes.split_first()?;
    let size = match first {
        0..=0xFA => return Some((u64::from(*first), rest)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let mut value = [0u8; 8];
    value[..size].copy_from_slice(rest.get(..size)?);
    Some((u64::from_le_bytes(value), &rest[size..]))
}

/// The end of a list of rows or column definitions: an EOF packet, or the OK that stands
/// for it with CLIENT_DEPRECATE_EOF. A row starts with 0xFE only when its first value is
/// 16 MiB or longer, which [`Wire::read`] never takes.
pub(super) fn is_end(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE)
}

/// The number of columns of a result set's first packet (not OK, ERR or LOCAL INFILE).
pub(super) fn column_count(packet: &[u8]) -> Option<u64> {
    lenenc(packet).map(|(count, _)| count)
}

/// The first value of a text-protocol row: `None` for NULL.
pub(super) fn first_value(row: &[u8]) -> Option<String> {
    if row.first() == Some(&0xFB) {
        return None;
    }
    let (length, rest) = lenenc(row)?;
    let value = rest.get(..usize::try_from(length).ok()?)?;
    Some(String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A greeting as MariaDB 10.11 sends it, with TLS on.
    const MARIADB_GREETING: &[u8] = b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\x05\x00\x00\x00abcdefgh\x00\xfe\xff\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00";

    #[test]
    fn greetings() {
        let greeting = Greeting::parse(MARIADB_GREETING).unwrap();
        assert_eq!(greeting.shown_version(), "10.11.6-MariaDB-0+deb12u1");
        assert_eq!(greeting.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(greeting.plugin, "mysql_native_password");
        assert_ne!(greeting.capabilities & CLIENT_SSL, 0);
        assert_ne!(greeting.capabilities & CLIENT_PLUGIN_AUTH, 0);
        assert!(
            Greeting::parse(b"\x09old")
                .unwrap_err()
                .contains("protocol 9")
        );
        assert!(Greeting::parse(b"\x0a5.7").is_err());
        assert!(Greeting::parse(b"").is_err());
        // Every truncation is an error or a greeting, never a panic.
        for end in 0..MARIADB_GREETING.len() {
            let _ = Greeting::parse(&MARIADB_GREETING[..end]);
        }
    }

    #[test]
    fn errors() {
        let denied = ServerError::parse(
            b"\xff\x15\x04#28000Access denied for user 'app'@'localhost' (using password: YES)",
        );
        assert_eq!(
            denied.words(),
            "Access denied for user 'app'@'localhost' (using password: YES) (error 1045, SQLSTATE 28000)"
        );
        let busy = ServerError::parse(b"\xff\x10\x04Too many connections");
        assert_eq!(busy.words(), "Too many connections (error 1040)");
        assert_eq!(ServerError::parse(b"\xff").code, 0);
    }

    #[test]
    fn rows_and_switches() {
        assert_eq!(first_value(b"\x011"), Some("1".to_string()));
        assert_eq!(first_value(b"\xfb"), None);
        assert_eq!(first_value(b"\x05ab"), None);
        assert_eq!(column_count(b"\x01"), Some(1));
        assert!(is_end(b"\xfe\x00\x00\x02\x00"));
        assert!(!is_end(b"\x011"));
        assert_eq!(
            auth_switch(b"\xfemysql_native_password\x00nonce\x00"),
            Some(("mysql_native_password".to_string(), b"nonce".to_vec()))
        );
        assert_eq!(auth_switch(b"\xfe"), None);
        let response = handshake_response(
            CLIENT_PROTOCOL_41 | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH,
            "app",
            &[7; 20],
            Some("shop"),
            "mysql_native_password",
        );
        assert_eq!(&response[32..36], b"app\0");
        assert_eq!(response[36], 20);
        assert_eq!(&response[57..62], b"shop\0");
        assert!(response.ends_with(b"mysql_native_password\0"));
    }
}
