//! Table-driven compatibility: for each change, the expected answer in every
//! mode, including the cases where Avro libraries are known to differ.

use apache_avro::Schema;
use sluice_registry::Level;

fn rec(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{fields}]}}"#)
}

fn enum_field(symbols: &str, default: Option<&str>) -> String {
    let default = default.map_or(String::new(), |d| format!(r#","default":"{d}""#));
    rec(&format!(r#"{{"name":"e","type":{{"type":"enum","name":"E","symbols":[{symbols}]{default}}}}}"#))
}

/// (case, old schema, new schema, [NONE, BACKWARD, FORWARD, FULL])
fn cases() -> Vec<(&'static str, String, String, [bool; 4])> {
    vec![
        ("enum symbol added, no default", enum_field(r#""A","B""#, None), enum_field(r#""A","B","C""#, None), [true, true, false, false]),
        ("enum symbol added, enum default", enum_field(r#""A","B""#, Some("A")), enum_field(r#""A","B","C""#, Some("A")), [true, true, true, true]),
        ("enum symbol removed, no default", enum_field(r#""A","B""#, None), enum_field(r#""A""#, None), [true, false, true, false]),
        ("int promoted to long", rec(r#"{"name":"n","type":"int"}"#), rec(r#"{"name":"n","type":"long"}"#), [true, true, false, false]),
        ("long narrowed to int", rec(r#"{"name":"n","type":"long"}"#), rec(r#"{"name":"n","type":"int"}"#), [true, false, true, false]),
        ("union widened", rec(r#"{"name":"n","type":"int"}"#), rec(r#"{"name":"n","type":["int","string"]}"#), [true, true, false, false]),
        ("nullable union widened", rec(r#"{"name":"n","type":["null","int"]}"#), rec(r#"{"name":"n","type":["null","int","string"]}"#), [true, true, false, false]),
        ("field added with default", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#), [true, true, true, true]),
        ("field added without default", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), [true, false, true, false]),
        ("field without default removed", rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), rec(r#"{"name":"a","type":"int"}"#), [true, true, false, false]),
        ("field with default removed", rec(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#), rec(r#"{"name":"a","type":"int"}"#), [true, true, true, true]),
        (
            "namespace-only rename",
            r#"{"type":"record","name":"R","namespace":"old.ns","fields":[{"name":"a","type":"int"}]}"#.into(),
            r#"{"type":"record","name":"R","namespace":"new.ns","fields":[{"name":"a","type":"int"}]}"#.into(),
            [true, true, true, true],
        ),
        (
            "record renamed with an alias",
            r#"{"type":"record","name":"Old","namespace":"io.test","fields":[{"name":"a","type":"int"}]}"#.into(),
            r#"{"type":"record","name":"New","namespace":"io.test","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}"#.into(),
            [true, true, false, false],
        ),
        (
            "record renamed without an alias",
            r#"{"type":"record","name":"Old","fields":[{"name":"a","type":"int"}]}"#.into(),
            r#"{"type":"record","name":"New","fields":[{"name":"a","type":"int"}]}"#.into(),
            [true, false, false, false],
        ),
        ("field renamed with an alias", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"b","type":"int","aliases":["a"]}"#), [true, true, false, false]),
        ("type changed", rec(r#"{"name":"a","type":"int"}"#), rec(r#"{"name":"a","type":"string"}"#), [true, false, false, false]),
    ]
}

#[test]
fn every_case_in_every_mode() {
    let modes = [Level::None, Level::Backward, Level::Forward, Level::Full];
    let mut failures = Vec::new();
    for (case, old, new, expected) in cases() {
        let old = Schema::parse_str(&old).unwrap_or_else(|e| panic!("{case}: old schema: {e}"));
        let new = Schema::parse_str(&new).unwrap_or_else(|e| panic!("{case}: new schema: {e}"));
        for (mode, want) in modes.iter().zip(expected) {
            let problems = mode.check(&new, &[(1, &old)]);
            if problems.is_empty() != want {
                failures.push(format!("{case} under {mode}: expected compatible={want}, got {problems:?}"));
            }
            // The transitive form agrees when there is a single earlier version.
            let transitive = match mode {
                Level::Backward => Level::BackwardTransitive,
                Level::Forward => Level::ForwardTransitive,
                Level::Full => Level::FullTransitive,
                other => *other,
            };
            if transitive.check(&new, &[(1, &old)]).is_empty() != want {
                failures.push(format!("{case} under {transitive}: expected compatible={want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn transitive_modes_check_every_live_version() {
    let v1 = Schema::parse_str(&rec(r#"{"name":"a","type":"int"}"#)).expect("v1");
    let v2 = Schema::parse_str(&rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#)).expect("v2");
    let v3 = Schema::parse_str(&rec(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#)).expect("v3");
    let live = [(1, &v1), (2, &v2)];
    assert!(Level::Backward.check(&v3, &live).is_empty(), "v3 reads v2 data");
    let problems = Level::BackwardTransitive.check(&v3, &live);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("version 1") && problems[0].contains("`b`"), "{problems:?}");
}

#[test]
fn the_repository_schemas_evolve_under_full_transitive() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
    let set = sluice_avro::SchemaSet::load(dir.as_ref()).expect("schemas");
    for aggregate in set.aggregates() {
        let versions = set.versions(aggregate);
        for (i, file) in versions.iter().enumerate().skip(1) {
            let live: Vec<(u32, &Schema)> = versions[..i].iter().map(|f| (f.version, &f.schema)).collect();
            let problems = Level::FullTransitive.check(&file.schema, &live);
            assert!(problems.is_empty(), "{aggregate} v{}: {problems:?}", file.version);
        }
    }
}

#[test]
fn levels_parse_case_insensitively() {
    assert_eq!(Level::parse("full_transitive"), Some(Level::FullTransitive));
    assert_eq!(Level::parse("BACKWARD"), Some(Level::Backward));
    assert_eq!(Level::parse("sideways"), None);
}
