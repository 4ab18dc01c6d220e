//! Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary.

use crate::AvroError;

pub const MAGIC_BYTE: u8 = 0;

pub fn frame(schema_id: u32, avro: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + avro.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(avro);
    out
}

/// Splits a framed payload into its schema id and the Avro body.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), AvroError> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [other, ..] if *other != MAGIC_BYTE => {
            Err(AvroError::Framing(format!("first byte is {other:#04x}, expected the magic byte 0x00")))
        }
        _ => Err(AvroError::Framing(format!("{} bytes is shorter than the 5-byte header", bytes.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let framed = frame(42, b"abc");
        assert_eq!(framed[..5], [0, 0, 0, 0, 42]);
        assert_eq!(unframe(&framed).expect("framed"), (42, &b"abc"[..]));
        assert!(unframe(b"{\"json\":1}").is_err());
        assert!(unframe(&[0, 0, 1]).is_err());
    }
}
