//! The registry service over HTTP with a real broker: Confluent's API shapes
//! and codes, evolution, deletes, configuration, restarts and followers.

use serde_json::{Value, json};
use sluice_testkit::{ServiceHandle, TestBroker};

const CT: &str = "application/vnd.schemaregistry.v1+json";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(service: &ServiceHandle) -> Self {
        Self { base: service.base_url(), http: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.header("content-type", CT).body(b.to_string());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        if status == 200 {
            assert_eq!(r.headers()["content-type"], CT, "{path}");
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.post(&format!("/subjects/{subject}/versions"), json!({"schema": schema})).await
    }
}

fn record(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"Thing","namespace":"io.test","fields":[{fields}]}}"#)
}

async fn registry(broker: &TestBroker, extra: &[(&str, String)]) -> ServiceHandle {
    let mut env = vec![("SLUICE_BROKERS", broker.bootstrap())];
    env.extend_from_slice(extra);
    let mut r = ServiceHandle::start("schema-registry", &env).await;
    r.wait_ready().await;
    r
}

fn code(v: &Value) -> Option<u64> {
    v["error_code"].as_u64()
}

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
