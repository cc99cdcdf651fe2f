//! The AMQP 0-9-1 frames of the connection handshake: the protocol header, method frames
//! of the connection class, the strings and field tables inside them, and what holdup
//! reads of the broker's connection.start.

pub(super) const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
pub(super) const FRAME_END: u8 = 0xCE;
/// Longest frame read; connection.start, the longest of the handshake, is about 1 KiB.
pub(super) const FRAME_LIMIT: u32 = 128 * 1024;

pub(super) const CONNECTION: u16 = 10;
pub(super) const START: u16 = 10;
pub(super) const START_OK: u16 = 11;
pub(super) const SECURE: u16 = 20;
pub(super) const TUNE: u16 = 30;
pub(super) const TUNE_OK: u16 = 31;
pub(super) const OPEN: u16 = 40;
pub(super) const OPEN_OK: u16 = 41;
pub(super) const CLOSE: u16 = 50;
pub(super) const CLOSE_OK: u16 = 51;

/// The mechanisms of connection.start; the broker's product and version are logged.
pub(super) fn parse_start(args: &[u8]) -> Result<String, String> {
    let malformed = || "the broker's connection.start is malformed".to_string();
    let table_length = args.get(2..6).ok_or_else(malformed)?;
    let table_length = u32::from_be_bytes(table_length.try_into().map_err(|_| malformed())?);
    let table_end = 6usize.saturating_add(table_length as usize);
    let table = args.get(6..table_end).ok_or_else(malformed)?;
    let mechanisms = args.get(table_end..table_end + 4).ok_or_else(malformed)?;
    let mechanisms = u32::from_be_bytes(mechanisms.try_into().map_err(|_| malformed())?) as usize;
    let mechanisms = args
        .get(table_end + 4..table_end + 4 + mechanisms)
        .ok_or_else(malformed)?;
    let product = table_string(table, "product").unwrap_or_default();
    let version = table_string(table, "version").unwrap_or_default();
    tracing::debug!("the broker is {product} {version}");
    Ok(String::from_utf8_lossy(mechanisms).into_owned())
}

/// A long-string value of a field table, read as far as the table's value types are known.
pub(super) fn table_string(mut table: &[u8], wanted: &str) -> Option<String> {
    loop {
        let (&name_length, rest) = table.split_first()?;
        let name = rest.get(..usize::from(name_length))?;
        let rest = rest.get(usize::from(name_length)..)?;
        let (&kind, rest) = rest.split_first()?;
        let long = |rest: &[u8]| -> Option<usize> {
            Some(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize + 4)
        };
        let size = match kind {
            b't' | b'b' | b'B' => 1,
            b's' | b'u' => 2,
            b'I' | b'i' | b'f' => 4,
            b'l' | b'L' | b'd' | b'T' => 8,
            b'D' => 5,
            b'V' => 0,
            b'S' | b'A' | b'F' | b'x' => long(rest)?,
            _ => return None,
        };
        if kind == b'S' && name == wanted.as_bytes() {
            return Some(String::from_utf8_lossy(rest.get(4..size)?).into_owned());
        }
        table = rest.get(size..)?;
    }
}

pub(super) fn method_frame(method: u16, args: &[u8]) -> Vec<u8> {
    let mut payload = CONNECTION.to_be_bytes().to_vec();
    payload.extend(method.to_be_bytes());
    payload.extend_from_slice(args);
    let mut frame = vec![1, 0, 0];
    frame.extend(
        u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend(payload);
    frame.push(FRAME_END);
    frame
}

pub(super) fn short_string(text: &str) -> Vec<u8> {
    let bytes = &text.as_bytes()[..text.len().min(255)];
    let mut out = vec![bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

pub(super) fn long_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(bytes);
    out
}

/// The client-properties table. `authentication_failure_close` makes a broker say why it
/// refuses a login (403 ACCESS_REFUSED) instead of just closing the connection.
pub(super) fn client_properties() -> Vec<u8> {
    let entry = |name: &str, kind: u8, value: Vec<u8>| {
        let mut out = short_string(name);
        out.push(kind);
        out.extend(value);
        out
    };
    let table = |entries: Vec<Vec<u8>>| long_string(&entries.concat());
    let capabilities = table(vec![entry("authentication_failure_close", b't', vec![1])]);
    table(vec![
        entry("product", b'S', long_string(b"holdup")),
        entry(
            "version",
            b'S',
            long_string(env!("CARGO_PKG_VERSION").as_bytes()),
        ),
        entry(
            "connection_name",
            b'S',
            long_string(b"holdup readiness check"),
        ),
        entry("capabilities", b'F', capabilities),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_and_read_back() {
        assert_eq!(
            method_frame(CLOSE_OK, &[]),
            [1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE]
        );
        // Our own client-properties table reads back.
        let properties = client_properties();
        assert_eq!(
            table_string(&properties[4..], "product").as_deref(),
            Some("holdup")
        );
        let mut start = vec![0, 9];
        start.extend(&properties);
        start.extend(long_string(b"AMQPLAIN PLAIN"));
        start.extend(long_string(b"en_US"));
        assert_eq!(parse_start(&start).as_deref(), Ok("AMQPLAIN PLAIN"));
        assert!(parse_start(&[0, 9, 0, 0, 1, 0]).is_err());
    }
}
