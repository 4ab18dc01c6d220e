//! Records written with article v1, v2 and v3 share one compacted topic. A new
//! projector bootstraps and reads all of them with the v3 reader; a projector
//! still on v1 reads the v3 records (forward compatibility).

use serde_json::{Value, json};
use sluice_avro::RegistryEncoder;
use sluice_kafka::rdkafka::producer::FutureRecord;
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_testkit::{TestBroker, TestRedis, random_name};

mod common;

use common::schemas_dir;

fn article(id: &str, title: &str) -> Value {
    json!({"id": id, "slug": id, "title": title, "body": "b", "author_id": null, "status": "DRAFT",
           "version": 1, "created_at": 1, "updated_at": 1, "published_at": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_is_read_by_new_and_old_readers() {
    let broker = TestBroker::start();
    let redis = TestRedis::start();
    let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    registry.wait_ready().await;
    let url = registry.base_url();
    let prefix = random_name("evo");
    let topic = format!("{prefix}.article.state");
    let subject = format!("{topic}-value");

    // The real registration path, as CI and deployments run it: without the
    // registry's write token it is refused, saying what to set, and registers nothing.
    let register = |token: Option<&str>| {
        let mut command = std::process::Command::new(sluice_testkit::service_binary("sluice"));
        command.args(["schema", "register", "--dir", &schemas_dir(), "--registry", &url, "--topic-prefix", &prefix]);
        command.env_remove("SLUICE_REGISTRY_TOKEN");
        if let Some(token) = token {
            command.env("SLUICE_REGISTRY_TOKEN", token);
        }
        command.output().expect("run sluice schema register")
    };
    let refused = register(None);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("HTTP 401") && said.contains("SLUICE_REGISTRY_TOKEN"), "{said}");
    assert!(RegistryEncoder::lookup(&url, &subject, &schema_text(1)).await.is_err(), "nothing registered");
    let out = register(Some(sluice_testkit::REGISTRY_TOKEN));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let v1 = RegistryEncoder::lookup(&url, &subject, &schema_text(1)).await.expect("v1 registered");
    let v2 = RegistryEncoder::lookup(&url, &subject, &schema_text(2)).await.expect("v2 registered");
    let v3 = RegistryEncoder::lookup(&url, &subject, &schema_text(3)).await.expect("v3 registered");
    assert!(v1.schema_id() < v2.schema_id() && v2.schema_id() < v3.schema_id());

    sluice_kafka::ensure_topics(
        &broker.bootstrap(),
        &[TopicSpec { name: topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact }],
    )
    .await
    .expect("topic");
    let producer = sluice_kafka::producer(&broker.bootstrap(), "evolution-test").expect("producer");
    let mut with_tags = article("a2", "written with v2");
    with_tags["tags"] = json!(["rust"]);
    let mut scheduled = article("a3", "written with v3");
    scheduled["tags"] = json!(["cqrs"]);
    scheduled["scheduled_at"] = json!(1_900_000_000_000_000_i64);
    for (id, encoder, value) in
        [("a1", &v1, article("a1", "written with v1")), ("a2", &v2, with_tags), ("a3", &v3, scheduled)]
    {
        let bytes = encoder.encode_value(sluice_avro::Value::from(value)).expect("encode");
        producer
            .send(FutureRecord::<str, [u8]>::to(&topic).key(id).payload(&bytes), Timeout::Never)
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }

    // A new projector on the newest schema reads every version.
    let _new = common::projector(&broker, &redis, &url, &prefix, "p_v3", "").await;
    let a1 = common::doc(&redis, "p_v3", "a1").await;
    assert_eq!(
        (a1["title"].as_str(), &a1["tags"], &a1["scheduled_at"]),
        (Some("written with v1"), &json!([]), &Value::Null)
    );
    assert_eq!(common::doc(&redis, "p_v3", "a2").await["tags"], json!(["rust"]));
    let a3 = common::doc(&redis, "p_v3", "a3").await;
    assert_eq!((&a3["tags"], a3["scheduled_at"].as_i64()), (&json!(["cqrs"]), Some(1_900_000_000_000_000)));

    // A projector still on v1 reads v3 records: the new fields are dropped.
    let _old = common::projector(&broker, &redis, &url, &prefix, "p_v1", "article=1").await;
    let a3 = common::doc(&redis, "p_v1", "a3").await;
    assert_eq!(a3["title"], "written with v3");
    assert!(a3.get("tags").is_none() && a3.get("scheduled_at").is_none(), "{a3}");
}

#[test]
fn schema_check_refuses_an_incompatible_chain_with_an_explanation() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/schemas-incompatible");
    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["schema", "check", "--dir", fixture])
        .output()
        .expect("run sluice schema check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an incompatible chain passed: {stderr}");
    assert!(stderr.contains("INCOMPATIBLE") && stderr.contains("v2.avsc") && stderr.contains("version"), "{stderr}");

    let ok = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["schema", "check", "--dir", &schemas_dir()])
        .output()
        .expect("run sluice schema check");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

/// A pod's init container starts beside the registry it registers with:
/// `--wait-secs` waits for the registry instead of failing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_waits_for_a_registry_that_is_not_up_yet() {
    let broker = TestBroker::start();
    let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    let url = registry.base_url();
    registry.kill_hard(); // nothing listens on its port now
    let prefix = random_name("wait");
    let mut register = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["schema", "register", "--dir", &schemas_dir(), "--registry", &url, "--topic-prefix", &prefix])
        .args(["--wait-secs", "300"])
        .env("SLUICE_REGISTRY_TOKEN", sluice_testkit::REGISTRY_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sluice schema register");
    // Waiting, not failed: the registry answers nothing for a while.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(register.try_wait().expect("poll").is_none(), "register gave up while the registry was down");

    registry.restart().await;
    let out = tokio::task::spawn_blocking(move || register.wait_with_output()).await.unwrap().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for the registry"));
    let v1 = std::fs::read_to_string(format!("{}/article/v1.avsc", schemas_dir())).expect("schema");
    RegistryEncoder::lookup(&url, &format!("{prefix}.article.state-value"), &v1).await.expect("v1 registered");
}

fn schema_text(version: u32) -> String {
    std::fs::read_to_string(format!("{}/article/v{version}.avsc", schemas_dir())).expect("schema")
}
