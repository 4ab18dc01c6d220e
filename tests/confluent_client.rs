//! Confluent's own Python client against our registry: register, look up,
//! evolve, refuse, and serialize with one client, deserialize with the other.

use sluice_avro::{RegistryDecoder, RegistryEncoder};
use sluice_testkit::TestBroker;

const VENV_PYTHON: &str = "/opt/sluice/venv/bin/python";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_and_sluice_avro_interoperate() {
    assert!(std::path::Path::new(VENV_PYTHON).exists(), "{VENV_PYTHON} is missing: run `make setup`");
    let broker = TestBroker::start();
    let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    registry.wait_ready().await;
    let url = registry.base_url();
    let dir = tempfile::tempdir().expect("tempdir");

    // Rust writes with the article schema.
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/article/v1.avsc")).expect("schema");
    let writer = sluice_testkit::registry_writer(&registry);
    let encoder = RegistryEncoder::register(&writer, "rust-value", &schema).await.expect("register from Rust");
    let article = serde_json::json!({
        "id": "a1", "slug": "s", "title": "hello from rust", "body": "b", "author_id": null,
        "status": "DRAFT", "version": 3, "created_at": 1, "updated_at": 2, "published_at": null
    });
    let value = sluice_avro::Value::from(article);
    let bytes = encoder.encode_value(value).expect("encode");
    std::fs::write(dir.path().join("rust.bin"), &bytes).expect("write");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/confluent_interop.py");
    let out = std::process::Command::new(VENV_PYTHON)
        .arg(script)
        .arg(&url)
        .arg(sluice_testkit::REGISTRY_TOKEN)
        .arg(dir.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    assert_eq!(decoded["title"], "hello from rust");
    assert_eq!(decoded["status"], "DRAFT");
    assert_eq!(decoded["version"], 3);

    // Rust reads what Confluent's serializer wrote.
    let py = std::fs::read(dir.path().join("py.bin")).expect("py.bin");
    let decoded = RegistryDecoder::new(&url, None).decode(&py).await.expect("decode python bytes");
    let json = sluice_avro::avro_to_json(decoded.value).expect("json");
    assert_eq!(json, serde_json::json!({"text": "hello from python", "lang": "fr"}));
}
