//! The projectors' decode path with arbitrary bytes and schema ids: the
//! Confluent framing, then the id's writer version of a CMS schema resolved
//! into the newest reader, then the document JSON. Undecodable input is an
//! error, never a panic, a hang or a runaway allocation (under the bound
//! `decode_datum` sets, as in every projector); what decodes with
//! the writer schema encodes back to the same value.
#![no_main]

use apache_avro::to_avro_datum;
use libfuzzer_sys::fuzz_target;
use sluice_avro::{MAGIC_BYTE, SchemaFile, SchemaSet, avro_to_json, decode_datum, unframe};
use std::sync::LazyLock;

/// Every (newest reader, writer version) pair of `schemas/`.
static PAIRS: LazyLock<Vec<(SchemaFile, SchemaFile)>> = LazyLock::new(|| {
    let set = SchemaSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").as_ref()).expect("schemas/");
    let mut pairs = Vec::new();
    for aggregate in set.aggregates() {
        let reader = set.latest(aggregate).expect("a version");
        for writer in set.versions(aggregate) {
            pairs.push((reader.clone(), writer.clone()));
        }
    }
    assert!(!pairs.is_empty(), "no schemas in schemas/");
    pairs
});

fuzz_target!(|data: &[u8]| {
    let (id, body) = match unframe(data) {
        Ok(split) => split,
        Err(refused) => {
            assert!(!refused.to_string().is_empty());
            return;
        }
    };
    assert_eq!(data[0], MAGIC_BYTE);
    assert_eq!(id, u32::from_be_bytes([data[1], data[2], data[3], data[4]]));
    assert_eq!(body, &data[5..]);

    // The id names a writer version, as the registry would.
    let (reader, writer) = &PAIRS[id as usize % PAIRS.len()];
    // As a projector decodes it; turning it into the document may refuse, not panic.
    if let Ok(value) = decode_datum(&writer.schema, Some(&reader.schema), body) {
        let _ = avro_to_json(value);
    }
    // What decodes is exactly the writer's encoding of a value of its schema.
    if let Ok(value) = decode_datum(&writer.schema, None, body) {
        let bytes = to_avro_datum(&writer.schema, value.clone()).expect("a decoded value encodes");
        let again = decode_datum(&writer.schema, None, &bytes).expect("its encoding decodes");
        assert_eq!(again, value, "a value changed through encode and decode");
    }
});
