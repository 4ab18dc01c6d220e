//! The registry service over HTTP with a real broker: Confluent's API shapes
//! and codes, evolution, deletes, configuration, restarts and followers.

mod registry_client;

use registry_client::{Client, code, record, registry};
use serde_json::json;
use sluice_testkit::TestBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_evolves_and_refuses_with_confluent_codes() {
    let broker = TestBroker::start();
    let service = registry(&broker, &[]).await;
    let c = Client::new(&service);
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
    let bad = record(r#"{"name":"a","type":"int"},{"name":"c","type":"string"}"#);

    assert_eq!(c.get("/config").await.1, json!({"compatibilityLevel": "BACKWARD"}));
    assert_eq!(c.get("/mode").await.1, json!({"mode": "READWRITE"}));
    let (s, r) = c.register("t-value", &v1).await;
    assert_eq!((s, r["id"].as_u64()), (200, Some(1)));
    // Same schema, same subject: the same id, no new version.
    assert_eq!(c.register("t-value", &v1).await.1["id"], 1);
    // Same schema, other subject: the same global id.
    assert_eq!(c.register("other-value", &v1).await.1["id"], 1);
    assert_eq!(c.get("/subjects").await.1, json!(["other-value", "t-value"]));
    let (s, r) = c.register("t-value", &v2).await;
    assert_eq!((s, r["id"].as_u64()), (200, Some(2)));
    assert_eq!(c.get("/subjects/t-value/versions").await.1, json!([1, 2]));
    let (_, latest) = c.get("/subjects/t-value/versions/latest").await;
    assert_eq!(
        (latest["version"].as_u64(), latest["id"].as_u64(), latest["subject"].as_str()),
        (Some(2), Some(2), Some("t-value"))
    );
    assert_eq!(c.get("/subjects/t-value/versions/1/schema").await.1["type"], "record");
    assert_eq!(c.get("/schemas/ids/2").await.1["schema"], v2);
    assert_eq!(
        c.get("/schemas/ids/1/versions").await.1,
        json!([{"subject": "other-value", "version": 1}, {"subject": "t-value", "version": 1}])
    );
    let (s, r) = c.post("/subjects/t-value", json!({"schema": v2})).await;
    assert_eq!((s, r["version"].as_u64()), (200, Some(2)));

    // Incompatible under BACKWARD: 409 with an explanation; nothing registered.
    let (s, r) = c.register("t-value", &bad).await;
    assert_eq!((s, code(&r)), (409, Some(409)));
    assert!(r["message"].as_str().expect("message").contains("`c`"), "{r}");
    assert_eq!(c.get("/subjects/t-value/versions").await.1, json!([1, 2]));
    let (_, r) = c.post("/compatibility/subjects/t-value/versions/latest?verbose=true", json!({"schema": bad})).await;
    assert_eq!(r["is_compatible"], false);
    assert!(!r["messages"].as_array().expect("messages").is_empty());
    let (_, r) = c.post("/compatibility/subjects/t-value/versions/1", json!({"schema": v2})).await;
    assert_eq!(r, json!({"is_compatible": true}));

    // Error codes.
    assert_eq!(code(&c.get("/subjects/nope/versions").await.1), Some(40401));
    assert_eq!(code(&c.get("/subjects/t-value/versions/9").await.1), Some(40402));
    assert_eq!(code(&c.get("/schemas/ids/99").await.1), Some(40403));
    assert_eq!(code(&c.get("/subjects/t-value/versions/abc").await.1), Some(42202));
    assert_eq!(code(&c.register("t-value", "{\"type\": \"record\"}").await.1), Some(42201));
    assert_eq!(
        code(&c.post("/subjects/t-value", json!({"schema": record(r#"{"name":"z","type":"int"}"#)})).await.1),
        Some(40403)
    );
    assert_eq!(code(&c.put("/config", json!({"compatibility": "SIDEWAYS"})).await.1), Some(42203));
    assert_eq!(code(&c.get("/config/t-value").await.1), Some(40408));
    assert_eq!(c.get("/config/t-value?defaultToGlobal=true").await.1, json!({"compatibilityLevel": "BACKWARD"}));

    // Per-subject and global configuration.
    assert_eq!(c.put("/config/t-value", json!({"compatibility": "NONE"})).await.1, json!({"compatibility": "NONE"}));
    assert_eq!(c.register("t-value", &bad).await.0, 200, "NONE accepts anything");
    assert_eq!(c.delete("/config/t-value").await.1, json!({"compatibilityLevel": "NONE"}));
    assert_eq!(
        c.put("/config", json!({"compatibility": "full_transitive"})).await.1,
        json!({"compatibility": "FULL_TRANSITIVE"})
    );
    assert_eq!(c.get("/config").await.1, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_then_permanent_deletes() {
    let broker = TestBroker::start();
    let service = registry(&broker, &[]).await;
    let c = Client::new(&service);
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
    c.register("d-value", &v1).await;
    c.register("d-value", &v2).await;

    assert_eq!(code(&c.delete("/subjects/d-value/versions/1?permanent=true").await.1), Some(40407));
    assert_eq!(c.delete("/subjects/d-value/versions/1").await.1, json!(1));
    assert_eq!(c.get("/subjects/d-value/versions").await.1, json!([2]));
    assert_eq!(c.get("/subjects/d-value/versions?deleted=true").await.1, json!([1, 2]));
    assert_eq!(c.get("/subjects/d-value/versions/1?deleted=true").await.1["id"], 1);
    assert_eq!(code(&c.get("/subjects/d-value/versions/1").await.1), Some(40402));
    assert_eq!(c.delete("/subjects/d-value/versions/1?permanent=true").await.1, json!(1));
    assert_eq!(c.get("/subjects/d-value/versions?deleted=true").await.1, json!([2]));

    assert_eq!(code(&c.delete("/subjects/d-value?permanent=true").await.1), Some(40405));
    assert_eq!(c.delete("/subjects/d-value").await.1, json!([2]));
    assert_eq!(c.get("/subjects").await.1, json!([]));
    assert_eq!(c.get("/subjects?deleted=true").await.1, json!(["d-value"]));
    assert_eq!(c.delete("/subjects/d-value?permanent=true").await.1, json!([2]));
    assert_eq!(c.get("/subjects?deleted=true").await.1, json!([]));
    assert_eq!(code(&c.get("/schemas/ids/2").await.1), Some(40403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_registry_recovers_everything_from_the_topic_and_followers_forward_writes() {
    let broker = TestBroker::start();
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
    {
        let first = registry(&broker, &[]).await;
        let c = Client::new(&first);
        c.register("r-value", &v1).await;
        c.register("r-value", &v2).await;
        c.put("/config/r-value", json!({"compatibility": "FULL_TRANSITIVE"})).await;
        c.delete("/subjects/r-value/versions/1").await;
    }
    let leader = registry(&broker, &[]).await;
    let c = Client::new(&leader);
    assert_eq!(c.get("/subjects/r-value/versions").await.1, json!([2]));
    assert_eq!(c.get("/subjects/r-value/versions/2").await.1["id"], 2);
    assert_eq!(c.get("/config/r-value").await.1, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
    assert_eq!(c.get("/schemas/ids/1").await.1["schema"], v1, "soft-deleted versions keep their schema");
    // New ids continue after the recovered ones.
    let v3 = record(
        r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0},{"name":"c","type":"int","default":0}"#,
    );
    assert_eq!(c.register("r-value", &v3).await.1["id"], 3);

    // A follower reads from the topic and forwards writes to the leader.
    let follower = registry(&broker, &[("SLUICE_LEADER_URL", leader.base_url())]).await;
    let f = Client::new(&follower);
    assert_eq!(f.get("/subjects/r-value/versions").await.1, json!([2, 3]));
    let v4 = record(
        r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0},{"name":"c","type":"int","default":0},{"name":"d","type":"int","default":0}"#,
    );
    let (s, r) = f.register("r-value", &v4).await;
    assert_eq!((s, r["id"].as_u64()), (200, Some(4)));
    assert_eq!(c.get("/subjects/r-value/versions/latest").await.1["id"], 4, "the leader wrote it");
    sluice_testkit::wait_until("the follower to read the new version", std::time::Duration::from_secs(30), || {
        let f = &f;
        async move { (f.get("/subjects/r-value/versions/latest").await.1["id"] == 4).then_some(()) }
    })
    .await;
}

/// Review finding 10 (b): identity is Confluent's (defaults count), so a
/// default-only change is a new schema and is checked; (e): the subject-level
/// compatibility test checks as registering would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_only_change_is_a_new_schema_and_the_subject_compatibility_test_checks_like_register() {
    let broker = TestBroker::start();
    let service = registry(&broker, &[]).await;
    let c = Client::new(&service);
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
    let required_b = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#);
    c.put("/config/s-value", json!({"compatibility": "BACKWARD_TRANSITIVE"})).await;
    assert_eq!(c.register("s-value", &v1).await.1["id"], 1);
    assert_eq!(c.register("s-value", &v2).await.1["id"], 2);

    // Differs from v2 only in a default: not v2, and it cannot read v1's data.
    assert_eq!(code(&c.post("/subjects/s-value", json!({"schema": required_b})).await.1), Some(40403));
    let (_, r) = c.post("/compatibility/subjects/s-value/versions?verbose=true", json!({"schema": required_b})).await;
    assert_eq!(r["is_compatible"], false, "{r}");
    assert!(r["messages"].to_string().contains("version 1"), "{r}");
    // Against the latest version alone (as Confluent does for `latest`) it is fine.
    let (_, r) = c.post("/compatibility/subjects/s-value/versions/latest", json!({"schema": required_b})).await;
    assert_eq!(r, json!({"is_compatible": true}));
    let (s, r) = c.register("s-value", &required_b).await;
    assert_eq!((s, code(&r)), (409, Some(409)), "{r}");
    assert_eq!(c.get("/subjects/s-value/versions").await.1, json!([1, 2]));

    // The subject-level test passes what register accepts, and a subject that
    // does not exist yet accepts anything (as Confluent answers).
    let v3 = record(
        r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0},{"name":"c","type":"int","default":0}"#,
    );
    let (s, r) = c.post("/compatibility/subjects/s-value/versions", json!({"schema": v3})).await;
    assert_eq!((s, r), (200, json!({"is_compatible": true})));
    let (s, r) = c.post("/compatibility/subjects/nobody-value/versions", json!({"schema": v1})).await;
    assert_eq!((s, r), (200, json!({"is_compatible": true})));
    assert_eq!(c.register("s-value", &v3).await.1["id"], 3);
}
