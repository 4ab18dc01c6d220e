//! Undecodable input is an error, never a panic or a runaway allocation:
//! arbitrary bytes through the Confluent framing and through every writer
//! version of the CMS schemas read with the newest reader, as a projector
//! decodes them.

use apache_avro::from_avro_datum;
use proptest::prelude::*;
use sluice_avro::{MAX_DECODED_LEN, RegistryDecoder, SchemaSet, decode_datum, unframe};
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
                let _ = decode_datum(&writer.schema, Some(reader), &bytes);
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
            prop_assert!(decode_datum(writer, None, &bytes).is_err());
        }
    }
}

/// A string as Avro writes it: its length, then its bytes.
fn string(s: &str) -> Vec<u8> {
    let mut bytes = varint(s.len() as i64);
    bytes.extend_from_slice(s.as_bytes());
    bytes
}

/// Found by the `avro_decode` fuzz target: a tiny record whose array count
/// promises 500 million tags made apache-avro reserve 28 GB, and a failed
/// allocation aborts the process (a projector would crash on the record over
/// and over). A projector's decoder bounds it: the record is refused.
#[test]
fn a_collection_count_beyond_the_bound_is_refused_not_allocated() {
    let _decoder = RegistryDecoder::new("http://registry.invalid", None);
    assert_eq!(apache_avro::util::max_allocation_bytes(0), MAX_DECODED_LEN, "creating a decoder sets the bound");
    let mut record = Vec::new();
    for field in ["0b6c7d52-7f3a-4c1e-9a55-2f1f6f0c2a11", "slug", "Title", "body"] {
        record.extend(string(field));
    }
    record.extend(varint(0)); // author_id: null
    record.extend(varint(0)); // status: DRAFT
    for long in [1, 1_700_000_000_000_000, 1_700_000_000_000_000] {
        record.extend(varint(long)); // version, created_at, updated_at
    }
    record.extend(varint(0)); // published_at: null
    record.extend(varint(500_000_000)); // tags: "500 million follow"
    record.extend(string("rust"));
    let set = schemas();
    let v3 = set.versions("article").iter().find(|f| f.version == 3).expect("article v3");
    let refused = from_avro_datum(&v3.schema, &mut &record[..], None).expect_err("refused");
    assert!(refused.to_string().contains("allocat"), "{refused}");
    // Within the bound, the same shape decodes.
    let len = record.len();
    record.truncate(len - 5 - varint(500_000_000).len());
    record.extend(varint(1));
    record.extend(string("rust"));
    record.extend(varint(0)); // end of tags
    record.extend(varint(0)); // scheduled_at: null
    from_avro_datum(&v3.schema, &mut &record[..], None).expect("a record with one tag");
}

/// Found by the `avro_decode` fuzz target: an author record cut off inside
/// `bio` decoded (apache-avro alone) to a value its schema does not allow,
/// and would have reached the read model as a bio of null; so would an
/// older version's bytes under the newer schema (the input ends where `bio`
/// begins). A record is one whole datum of its writer schema, or it is refused.
#[test]
fn a_cut_off_or_overlong_record_is_refused() {
    let set = schemas();
    let author = |v: u32| &set.versions("author").iter().find(|f| f.version == v).expect("author version").schema;
    let cut_off = [0, 0, 0, 2, 2, 2, 0x82, 2];
    assert!(from_avro_datum(author(2), &mut &cut_off[..], None).is_ok(), "apache-avro alone accepts it");
    let refused = decode_datum(author(2), None, &cut_off).expect_err("refused");
    assert!(refused.to_string().contains("ends before its schema does"), "{refused}");

    let mut v1 = [string("0b6c7d52-7f3a-4c1e-9a55-2f1f6f0c2a11"), string("Ada")].concat();
    v1.extend([varint(1), varint(7), varint(8)].concat()); // version, created_at, updated_at
    decode_datum(author(1), None, &v1).expect("a whole v1 record");
    assert!(from_avro_datum(author(2), &mut &v1[..], None).is_ok(), "apache-avro alone reads it as v2, bio null");
    let refused = decode_datum(author(2), None, &v1).expect_err("v1 bytes are not a v2 record");
    assert!(refused.to_string().contains("ends before its schema does"), "{refused}");

    let mut whole = v1.clone();
    whole.extend(varint(1)); // bio: the string branch
    whole.extend(string("Countess"));
    let value = decode_datum(author(2), None, &whole).expect("a whole v2 record");
    assert!(value.validate(author(2)));
    whole.push(0);
    let refused = decode_datum(author(2), None, &whole).expect_err("a byte too many");
    assert!(refused.to_string().contains("1 byte(s) after the record"), "{refused}");
}
