//! What a length prefix in a record may make the decoder allocate.
//!
//! apache-avro 0.21 checks a string's length or a collection's item count
//! against one process-wide bound, 512 Mi by default, then reserves that many
//! items: one crafted array count in an otherwise tiny record asked for 7.5 GB
//! (found by `fuzz/fuzz_targets/avro_decode.rs`), and a failed allocation
//! aborts the process, so a poison record would crash a projector over and
//! over instead of going to its DLQ. Records on a topic are at most a few
//! MiB (brokers default to 1 MB), so the bound is 4 Mi: a longer string, or
//! more items, is an undecodable record (a permanent error), and the most an
//! array count can reserve is 4 Mi items (224 MiB of address space, never
//! touched: decoding fails at the end of the input).

/// The longest string or bytes, and the most items of an array or map, that
/// one record may declare.
pub const MAX_DECODED_LEN: usize = 4 * 1024 * 1024;

/// Sets apache-avro's bound for this process (the first call wins; decoders
/// call it before their first decode).
pub fn bound_decoding() -> usize {
    apache_avro::util::max_allocation_bytes(MAX_DECODED_LEN)
}
