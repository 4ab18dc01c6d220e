//! Writes need a write token (Bearer, or Basic with the token as password, as
//! Confluent's clients send it); reads, look-ups and compatibility tests do
//! not. A follower refuses before forwarding, and passes the caller's
//! credentials on to the leader and the leader's refusals back.

mod registry_client;

use registry_client::{Client, code, record, registry};
use serde_json::json;
use sluice_testkit::{REGISTRY_TOKEN, TestBroker};

fn basic(user: &str, password: &str) -> Option<String> {
    use base64::Engine;
    Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_write_token_and_reads_do_not() {
    let broker = TestBroker::start();
    let service = registry(&broker, &[]).await;
    let writer = Client::new(&service);
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);

    for who in [None, Some("Bearer guessed".to_string()), basic("sluice", "guessed"), basic(REGISTRY_TOKEN, "")] {
        let c = Client::presenting(&service, who.clone());
        let refused = [
            c.register("a-value", &v1).await,
            c.put("/config/a-value", json!({"compatibility": "NONE"})).await,
            c.put("/config", json!({"compatibility": "NONE"})).await,
            c.delete("/config").await,
        ];
        for (status, body) in refused {
            assert_eq!((status, code(&body)), (401, Some(40101)), "{who:?}: {body}");
        }
    }
    assert_eq!(writer.get("/subjects").await.1, json!([]), "nothing was registered");
    assert_eq!(writer.get("/config").await.1, json!({"compatibilityLevel": "BACKWARD"}), "nothing was changed");

    // The write token, as Bearer or as a Basic password (any user name).
    assert_eq!(writer.register("a-value", &v1).await.1["id"], 1);
    let confluent_style = Client::presenting(&service, basic("sluice", REGISTRY_TOKEN));
    assert_eq!(confluent_style.register("a-value", &v2).await.1["id"], 2);

    // Anyone reads, looks up and tests compatibility.
    let anonymous = Client::presenting(&service, None);
    assert_eq!(anonymous.get("/subjects").await, (200, json!(["a-value"])));
    assert_eq!(anonymous.get("/schemas/ids/1").await.1["schema"], v1);
    assert_eq!(anonymous.post("/subjects/a-value", json!({"schema": v2})).await.1["version"], 2);
    let (status, r) = anonymous.post("/compatibility/subjects/a-value/versions/latest", json!({"schema": v1})).await;
    assert_eq!((status, r["is_compatible"].as_bool()), (200, Some(true)), "{r}");
    // But deletes are writes.
    let (status, body) = anonymous.delete("/subjects/a-value/versions/1").await;
    assert_eq!((status, code(&body)), (401, Some(40101)));
    let (status, body) = anonymous.delete("/subjects/a-value").await;
    assert_eq!((status, code(&body)), (401, Some(40101)));
    assert_eq!(anonymous.get("/subjects/a-value/versions").await.1, json!([1, 2]));

    // The refusal says how to authenticate.
    let http = reqwest::Client::new();
    let r = http.delete(format!("{}/subjects/a-value", service.base_url())).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer, Basic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_checks_forwards_credentials_and_passes_the_leaders_refusals_back() {
    let broker = TestBroker::start();
    // The leader lets a caller write once, then asks it to wait.
    let limit = [("SLUICE_RATE_LIMIT", "0.01".to_string()), ("SLUICE_RATE_BURST", "2".to_string())];
    let leader = registry(&broker, &limit).await;
    let follower = registry(&broker, &[("SLUICE_LEADER_URL", leader.base_url())]).await;
    let v1 = record(r#"{"name":"a","type":"int"}"#);

    let anonymous = Client::presenting(&follower, None);
    let (status, body) = anonymous.register("f-value", &v1).await;
    assert_eq!((status, code(&body)), (401, Some(40101)), "{body}");
    // Refused by the follower itself: the leader's allowance is untouched.
    let with_token = Client::new(&follower);
    let (status, body) = with_token.register("f-value", &v1).await;
    assert_eq!((status, body["id"].as_u64()), (200, Some(1)), "the leader accepted the forwarded token: {body}");
    // (Read anonymously: the token's allowance at the leader is for the writes below.)
    assert_eq!(Client::presenting(&leader, None).get("/subjects").await.1, json!(["f-value"]));

    // The leader's 429 reaches the caller with its Retry-After.
    let http = reqwest::Client::new();
    let send = || {
        http.put(format!("{}/config/f-value", follower.base_url()))
            .bearer_auth(REGISTRY_TOKEN)
            .header("content-type", registry_client::CT)
            .body(json!({"compatibility": "FULL"}).to_string())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let limited = send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().expect("Retry-After seconds");
    assert!(retry_after >= 1, "{retry_after}");
}

#[test]
fn a_registry_without_write_tokens_does_not_start() {
    let check = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(sluice_testkit::service_binary("schema-registry"))
            .arg("--check-config")
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("run --check-config");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, said) = check(&[]);
    assert!(!ok && said.contains("SLUICE_WRITE_TOKENS is empty"), "{said}");
    let (ok, said) = check(&[("SLUICE_WRITE_TOKENS", " , ")]);
    assert!(!ok && said.contains("SLUICE_WRITE_TOKENS is empty"), "{said}");
    assert!(check(&[("SLUICE_WRITE_TOKENS", "t1,t2")]).0);
    assert!(check(&[("SLUICE_AUTH_DISABLED", "true")]).0, "local experiments may run without tokens");
}
