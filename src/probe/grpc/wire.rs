//! The bytes of one health check: gRPC's framing (a flag byte and a 4-byte big-endian length
//! before each message), the two protobuf messages of `grpc.health.v1` written and read by
//! hand (each has one field), and gRPC's status codes by name.

use bytes::{BufMut as _, Bytes, BytesMut};

/// `HealthCheckRequest { string service = 1; }` in its gRPC frame.
pub(super) fn request(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        // Field 1, wire type 2 (length-delimited); proto3 leaves an empty string out.
        message.put_u8(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

/// The `ServingStatus` of a `HealthCheckResponse { ServingStatus status = 1; }` in its gRPC
/// frame. A status left out is 0, UNKNOWN, as proto3 leaves zero values out.
pub(super) fn response_status(frame: &[u8]) -> Result<u64, String> {
    let Some((&flag, rest)) = frame.split_first() else {
        return Err("the call succeeded but carried no answer".to_string());
    };
    if flag != 0 {
        return Err("the answer is compressed, which holdup did not offer".to_string());
    }
    if rest.len() < 4 {
        return Err("the answer is cut short".to_string());
    }
    let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let message = rest[4..]
        .get(..length)
        .ok_or_else(|| "the answer is cut short".to_string())?;
    let malformed = || "the answer is not a HealthCheckResponse".to_string();
    let mut status = 0;
    let mut bytes = message;
    while !bytes.is_empty() {
        let key = varint(&mut bytes).ok_or_else(malformed)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                let value = varint(&mut bytes).ok_or_else(malformed)?;
                if field == 1 {
                    status = value;
                }
            }
            1 => bytes = bytes.get(8..).ok_or_else(malformed)?,
            2 => {
                let length = varint(&mut bytes).ok_or_else(malformed)?;
                let length = usize::try_from(length).map_err(|_| malformed())?;
                bytes = bytes.get(length..).ok_or_else(malformed)?;
            }
            5 => bytes = bytes.get(4..).ok_or_else(malformed)?,
            _ => return Err(malformed()),
        }
    }
    Ok(status)
}

/// The name of a `ServingStatus`, as the health protocol spells it.
pub(super) fn serving_status_name(status: u64) -> Option<&'static str> {
    Some(match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => return None,
    })
}

pub(super) const SERVING: u64 = 1;

/// gRPC status codes that the judgement tells apart.
pub(super) const OK: u32 = 0;
pub(super) const NOT_FOUND: u32 = 5;
pub(super) const UNIMPLEMENTED: u32 = 12;

/// The name of a gRPC status code.
pub(super) fn status_code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

fn put_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_as_protoc_encodes_them() {
        assert_eq!(&request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &request("shop.Cart")[..],
            b"\x00\x00\x00\x00\x0b\x0a\x09shop.Cart"
        );
        let long = "s".repeat(200);
        let frame = request(&long);
        // 200 needs two bytes of varint: 0xc8 0x01.
        assert_eq!(&frame[..8], &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn answers_are_read_or_refused() {
        let cases: &[(&[u8], Result<u64, &str>)] = &[
            (b"\x00\x00\x00\x00\x02\x08\x01", Ok(1)),
            (b"\x00\x00\x00\x00\x02\x08\x02", Ok(2)),
            // Status 0 is left out of the message altogether.
            (b"\x00\x00\x00\x00\x00", Ok(0)),
            // Unknown fields of every wire type are skipped.
            (
                b"\x00\x00\x00\x00\x16\x10\x05\x1a\x02hi\x21\x01\x02\x03\x04\x05\x06\x07\x08\x2d\x01\x02\x03\x04\x08\x03",
                Ok(3),
            ),
            (b"", Err("carried no answer")),
            (b"\x01\x00\x00\x00\x02\x08\x01", Err("compressed")),
            (b"\x00\x00\x00", Err("cut short")),
            (b"\x00\x00\x00\x00\x05\x08\x01", Err("cut short")),
            (b"\x00\x00\x00\x00\x01\x08", Err("not a HealthCheckResponse")),
            (b"\x00\x00\x00\x00\x02\x0b\x01", Err("not a HealthCheckResponse")),
        ];
        for (frame, expected) in cases {
            let result = response_status(frame);
            match expected {
                Ok(status) => assert_eq!(result, Ok(*status), "{frame:?}"),
                Err(words) => {
                    let message = result.expect_err("refused");
                    assert!(message.contains(words), "{frame:?}: {message}");
                }
            }
        }
    }
}
