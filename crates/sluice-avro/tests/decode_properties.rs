//! Undecodable input is an error, never a panic or a runaway allocation:
//! arbitrary bytes through the Confluent framing and through every writer
//! version of the CMS schemas read with the newest reader, as a projector
//! decodes them.

use apache_avro::from_avro_datum;
use proptest::prelude::*;
use sluice_avro::{SchemaSet, unframe};
use std::path::Path;

fn schemas() -> SchemaSet {
    SchemaSet::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))).expect("schemas/")
}

/// A zig-zag varint, as Avro writes longs and lengths.
fn varint(value: i64) -> Vec<u8> {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    let mut bytes = Vec::new();
    while n >= 0x80 {
        bytes.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_frames_are_refused_or_split(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        match unframe(&bytes) {
            Ok((id, body)) => {
                prop_assert_eq!(bytes[0], 0);
                prop_assert_eq!(id, u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
                prop_assert_eq!(body, &bytes[5..]);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_writer_version(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let set = schemas();
        for aggregate in set.aggregates() {
            let reader = &set.latest(aggregate).expect("a version").schema;
            for writer in set.versions(aggregate) {
                // Ok (the bytes happen to be a record) or Err: both fine.
                let _ = from_avro_datum(&writer.schema, &mut &bytes[..], Some(reader));
            }
        }
    }

    #[test]
    fn lengths_far_beyond_the_input_are_refused(len in 1_000_000_000i64..i64::MAX / 2) {
        // Every CMS record starts with a string (its id): a length prefix
        // promising more than the record holds is refused, without
        // allocating what it promises.
        let bytes = varint(len);
        let set = schemas();
        for aggregate in set.aggregates() {
            let writer = &set.latest(aggregate).expect("a version").schema;
            prop_assert!(from_avro_datum(writer, &mut &bytes[..], None).is_err());
        }
    }
}
