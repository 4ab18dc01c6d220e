//! HTTP fuzzing of the command API from its own OpenAPI document
//! (schemathesis, every check: no server error, answers as documented,
//! schema-valid requests accepted and schema-violating ones refused, stateful
//! sequences), then the database held against the answers: every aggregate
//! there was answered 202 at exactly its version, so no refused request wrote.

use serde_json::Value;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, random_name};
use std::collections::HashMap;
use std::path::Path;

mod common;

const SCHEMATHESIS: &str = "/opt/sluice/venv/bin/schemathesis";

/// Runs schemathesis against `base_url` with `document`; the HAR of every
/// exchange. Panics with its report when a check failed.
fn fuzz(document: &str, base_url: &str, token: &str, dir: &Path) -> Vec<Value> {
    assert!(Path::new(SCHEMATHESIS).exists(), "{SCHEMATHESIS} is missing: run `make setup`");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let har = dir.join("exchanges.har");
    let out = std::process::Command::new(SCHEMATHESIS)
        .args(["--config-file", &format!("{root}/tests/fixtures/schemathesis.toml"), "run"])
        .arg(format!("{root}/{document}"))
        .args(["--url", base_url, "--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .current_dir(dir)
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems in {document}:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let har: Value = serde_json::from_slice(&std::fs::read(&har).expect("HAR report")).expect("HAR JSON");
    har["log"]["entries"].as_array().expect("entries").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_api_keeps_its_document_and_refused_requests_write_nothing() {
    let pg = TestPostgres::start();
    let broker = TestBroker::start();
    let db = pg.create_database().await;
    let registry = ServiceHandle::start("schema-registry", &[("SLUICE_BROKERS", broker.bootstrap())]).await;
    let command = common::command_api(&db, &registry.base_url(), &random_name("fuzz"), "http://query.invalid").await;
    let dir = tempfile::tempdir().expect("temp dir");

    let exchanges = fuzz("services/command-api/openapi.json", &command.base_url(), common::TOKEN, dir.path());

    // The newest version each accepted command answered, by aggregate.
    let mut answered: HashMap<String, i64> = HashMap::new();
    let mut erased = Vec::new();
    for e in &exchanges {
        if e["response"]["status"] != 202 {
            continue;
        }
        let body: Value =
            serde_json::from_str(e["response"]["content"]["text"].as_str().unwrap_or("null")).unwrap_or_default();
        let (Some(id), Some(version)) = (body["id"].as_str(), body["version"].as_i64()) else {
            panic!("a 202 without id and version: {body}");
        };
        let v = answered.entry(id.to_string()).or_default();
        *v = (*v).max(version);
        if e["request"]["method"] == "DELETE" {
            erased.push(id.to_string());
        }
    }
    assert!(answered.len() >= 5, "schemathesis got too few commands accepted to judge: {}", answered.len());

    let (client, connection) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query("select id::text, version from cms.articles union all select id::text, version from cms.authors", &[])
        .await
        .expect("aggregates");
    for row in &rows {
        let (id, version): (String, i64) = (row.get(0), row.get(1));
        assert_eq!(answered.get(&id), Some(&version), "aggregate {id} at version {version} in the database");
    }
    let stored = rows.len();
    let missing = answered.keys().filter(|id| !erased.contains(id)).count();
    assert_eq!(stored, missing, "every accepted aggregate that was not erased is stored");
}

/// The query API over both read models (Redis, and PostgreSQL for search),
/// with a few articles to find: every schemathesis check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_keeps_its_document() {
    let side = common::WriteSide::start("fuzzq").await;
    let _redis_projector = side.projector().await;
    let (_pg_projector, pg_url, _) = side.projector_postgres().await;
    let author =
        side.send("/authors", Some(serde_json::json!({"name": "Ada"}))).await["id"].as_str().unwrap().to_string();
    for n in 0..3 {
        let body = serde_json::json!({"title": format!("Note {n}"), "author_id": author, "tags": ["rust"]});
        let id = side.create_article(body).await;
        side.send(&format!("/articles/{id}/publish"), Some(serde_json::json!({}))).await;
    }
    let query =
        side.query(&[("SLUICE_POSTGRES_URL", pg_url), ("SLUICE_READ_TOKENS", common::READ_TOKEN.to_string())]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let exchanges = fuzz("services/query-api/openapi.json", &query.base_url(), common::READ_TOKEN, dir.path());
    assert!(exchanges.iter().any(|e| e["response"]["status"] == 200), "schemathesis never got a 200");
}
