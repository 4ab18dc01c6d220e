//! Request rate limits (SLUICE_RATE_LIMIT, SLUICE_RATE_BURST): a caller over
//! its allowance is answered 429 with Retry-After before anything runs, so a
//! refused command writes nothing; another caller keeps its own allowance;
//! the ops endpoints are never limited.

use serde_json::{Value, json};
use sluice_kafka::CleanupPolicy;
use sluice_testkit::{TestBroker, TestPostgres, TestRedis, random_name};

mod common;

/// One request per 50 s after a burst of 3: within the test only the burst
/// is served, whatever the machine's speed.
fn limits() -> [(&'static str, String); 2] {
    [("SLUICE_RATE_LIMIT", "0.02".into()), ("SLUICE_RATE_BURST", "3".into())]
}

/// The statuses of `n` requests made by `send` (given their number), and
/// the 429 answers.
async fn statuses(n: usize, send: impl Fn(usize) -> reqwest::RequestBuilder) -> (Vec<u16>, Vec<(String, Value)>) {
    let mut codes = Vec::new();
    let mut refused = Vec::new();
    for i in 0..n {
        let answer = send(i).send().await.expect("request");
        codes.push(answer.status().as_u16());
        if answer.status() == 429 {
            let retry =
                answer.headers().get("retry-after").map(|v| v.to_str().expect("an ASCII Retry-After").to_string());
            refused.push((retry.expect("a 429 without Retry-After"), answer.json().await.expect("a JSON 429")));
        }
    }
    (codes, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_limit_is_refused_and_its_commands_write_nothing() {
    let pg = TestPostgres::start();
    let broker = TestBroker::start();
    let db = pg.create_database().await;
    let prefix = random_name("limits");
    let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    let command = common::command_api_with(&db, &registry.base_url(), &prefix, "http://query.invalid", &limits()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/articles", command.base_url());

    let (codes, refused) = statuses(8, |i| {
        http.post(&url).bearer_auth(common::TOKEN).json(&json!({"title": format!("Limited {i}"), "body": "text"}))
    })
    .await;
    assert_eq!(codes, [202, 202, 202, 429, 429, 429, 429, 429], "a burst of 3, then refused");
    for (retry_after, body) in &refused {
        let seconds: u64 = retry_after.parse().expect("Retry-After in seconds");
        assert!((1..=50).contains(&seconds), "Retry-After {seconds}");
        assert_eq!(body["status"], "rejected");
        assert!(body["error"].as_str().unwrap().contains("rate limit"), "{body}");
    }
    let (admin, connection) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let count = |table: &'static str| {
        let admin = &admin;
        async move { admin.query_one(&format!("select count(*) from cms.{table}"), &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("articles").await, 3, "a refused command wrote an article");
    assert_eq!(count("outbox").await, 3, "a refused command wrote an outbox row");

    // The read token is another caller, with its own allowance.
    let (codes, _) =
        statuses(3, |_| http.get(format!("{}/changes", command.base_url())).bearer_auth(common::READ_TOKEN)).await;
    assert_eq!(codes, [200, 200, 200]);
    // The ops endpoints are not limited.
    let (codes, _) = statuses(10, |_| http.get(format!("{}/healthz", command.base_url()))).await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_and_the_query_api_limit_their_callers_too() {
    let broker = TestBroker::start();
    let redis = TestRedis::start();
    let http = reqwest::Client::new();
    // Reads of the registry carry no token: callers are told apart by address.
    let registry = sluice_testkit::start_registry_with(&broker.bootstrap(), &limits()).await;
    let (codes, refused) = statuses(5, |_| http.get(format!("{}/subjects", registry.base_url()))).await;
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    assert!(refused.iter().all(|(_, body)| body["error"].as_str().unwrap().contains("rate limit")));

    let prefix = random_name("limits");
    for aggregate in ["article", "author"] {
        broker.create_topic(&format!("{prefix}.{aggregate}.state"), 3, CleanupPolicy::Compact).await;
    }
    let query = common::query_api(&broker, &redis, &prefix, "cms", "", &limits()).await;
    let missing = format!("{}/articles/00000000-0000-4000-8000-00000000000a", query.base_url());
    let (codes, _) = statuses(5, |_| http.get(&missing)).await;
    // Answered as without a limit (no read model is built here: 503), then refused.
    assert!(codes[..3].iter().all(|c| *c != 429) && codes[3..] == [429, 429], "{codes:?}");
    let (codes, _) = statuses(5, |_| http.get(format!("{}/readyz", query.base_url()))).await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
}

#[test]
fn a_wrong_rate_limit_is_refused_at_start() {
    // What each service needs besides, so that the rate limit is what is wrong.
    let command_api: &[(&str, &str)] =
        &[("SLUICE_DATABASE_URL", "postgres://u@127.0.0.1/db"), ("SLUICE_WRITE_TOKENS", "t")];
    let registry: &[(&str, &str)] = &[("SLUICE_WRITE_TOKENS", "t")];
    for (binary, env) in [("command-api", command_api), ("query-api", &[]), ("schema-registry", registry)] {
        let check = |limit: &str, burst: &str| {
            let out = std::process::Command::new(sluice_testkit::service_binary(binary))
                .arg("--check-config")
                .env_clear()
                .envs(env.iter().copied())
                .env("SLUICE_RATE_LIMIT", limit)
                .env("SLUICE_RATE_BURST", burst)
                .output()
                .expect("run --check-config");
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            (out.status.success(), said)
        };
        let (ok, said) = check("50", "10");
        assert!(ok, "{binary} refused a right rate limit: {said}");
        let (ok, said) = check("-3", "10");
        assert!(!ok && said.contains("SLUICE_RATE_LIMIT must be"), "{binary}: {said}");
        let (ok, said) = check("5", "0");
        assert!(!ok && said.contains("SLUICE_RATE_BURST must be"), "{binary}: {said}");
    }
}
