//! HTTP fuzzing of the command API, the query API and the schema registry
//! from their own OpenAPI documents (schemathesis, every check: no server
//! error, answers as documented, schema-valid requests accepted and
//! schema-violating ones refused, writes refused without a token, stateful
//! sequences), then the stores held against the answers: every aggregate in
//! the database was answered 202 at exactly its version, every subject in the
//! registry was registered by a request answered 200, so no refused request
//! wrote.

use serde_json::Value;
use sluice_testkit::{TestBroker, TestPostgres, random_name};
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
    let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
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

/// The schema registry from its own document (Confluent's API), with a
/// subject to find; then the registry held against the answers: every
/// subject it holds was registered by a request answered 200, and its
/// global level is one a 200 answered (or the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_keeps_its_document_and_refused_writes_write_nothing() {
    let broker = TestBroker::start();
    let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    registry.wait_ready().await;
    let schema = std::fs::read_to_string(format!("{}/article/v1.avsc", common::schemas_dir())).expect("schema");
    let writer = sluice_testkit::registry_writer(&registry);
    sluice_avro::RegistryEncoder::register(&writer, "articles-value", &schema).await.expect("register");
    let dir = tempfile::tempdir().expect("temp dir");

    let exchanges =
        fuzz("crates/sluice-registry/openapi.json", &registry.base_url(), sluice_testkit::REGISTRY_TOKEN, dir.path());

    let path = |e: &Value| {
        let url = reqwest::Url::parse(e["request"]["url"].as_str().unwrap_or_default()).expect("an exchange's URL");
        url.path().to_string()
    };
    let mut registered = vec!["articles-value".to_string()];
    let mut levels = vec!["BACKWARD".to_string()];
    for e in exchanges.iter().filter(|e| e["response"]["status"] == 200) {
        let (method, path) = (e["request"]["method"].as_str().unwrap_or_default(), path(e));
        let segments: Vec<&str> = path.split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["", "subjects", subject, "versions"]) => {
                registered.push(percent_encoding::percent_decode_str(subject).decode_utf8_lossy().into_owned());
            }
            ("PUT", ["", "config"]) => {
                let body: Value = serde_json::from_str(e["response"]["content"]["text"].as_str().unwrap_or("null"))
                    .unwrap_or_default();
                levels.push(body["compatibility"].as_str().unwrap_or_default().to_string());
            }
            _ => {}
        }
    }
    let http = reqwest::Client::new();
    let get = |p: &str| http.get(format!("{}{p}", registry.base_url())).send();
    let subjects: Vec<String> = get("/subjects?deleted=true").await.expect("subjects").json().await.expect("JSON");
    for subject in &subjects {
        assert!(
            registered.contains(subject),
            "{subject:?} is in the registry, but no registration of it was answered 200"
        );
    }
    let global: Value = get("/config").await.expect("config").json().await.expect("JSON");
    let level = global["compatibilityLevel"].as_str().expect("a level").to_string();
    assert!(levels.contains(&level), "the global level {level} was never answered 200");
}
