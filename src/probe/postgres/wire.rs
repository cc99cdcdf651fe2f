//! The few protocol messages holdup writes and reads itself, before or instead of
//! tokio-postgres: the SSLRequest, pg_isready's startup packet, one backend message.

use std::io;

use tokio::io::AsyncReadExt as _;

use tokio::io::{AsyncRead, AsyncWrite};

/// Length 8, code 80877103: "may we speak TLS?"
pub(super) const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// Terminate: 'X', length 4.
pub(super) const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];
/// Longest answer to a startup packet we read; real ones are a few hundred bytes.
/// A connection, plain or TLS, as tokio-postgres takes it.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

const MESSAGE_LIMIT: usize = 64 * 1024;

/// A protocol 3.0 startup packet.
pub(super) fn startup_packet(parameters: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (name, value) in parameters {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let length = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut packet = length.to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// One backend message: its type byte and body.
pub(super) async fn read_message(stream: &mut Box<dyn Stream>) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MESSAGE_LIMIT).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "answered with {:?} and a length of {length}: is it a Postgres server?",
                char::from(header[0])
            ),
        ));
    }
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).await?;
    Ok((header[0], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_packet_layout() {
        let packet = startup_packet(&[("user", "u")]);
        assert_eq!(packet, b"\0\0\0\x10\0\x03\0\0user\0u\0\0");
    }
}
