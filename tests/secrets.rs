//! No secret in any log line: every service runs with distinctive passwords
//! and tokens, takes good and bad requests, is refused a wrong configuration
//! and loses its database for a moment; then every line each one logged is
//! searched for the secrets.

use serde_json::json;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name};

mod common;

const DB_PASSWORD: &str = "pw-db-5ecret-71c9";
const WRITE_TOKEN: &str = "tok-write-5ecret-0b3e";
const READ_TOKEN: &str = "tok-read-5ecret-a4d2";
const REGISTRY_TOKEN: &str = "tok-registry-5ecret-9f17";
/// A token the configuration loader reads as a number (serde's own error
/// would quote it).
const NUMERIC_TOKEN: &str = "7391824650";

/// The database's URL with the password in it (the test server trusts local
/// connections: the password is carried, and must never be shown).
fn with_password(url: &str) -> String {
    url.replacen("postgres://postgres@", &format!("postgres://postgres:{DB_PASSWORD}@"), 1)
}

/// Runs `binary --check-config` with `env`; its output.
fn check_config(binary: &str, env: &[(&str, String)]) -> String {
    let out = std::process::Command::new(sluice_testkit::service_binary(binary))
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run --check-config");
    assert!(!out.status.success(), "{binary} accepted a wrong configuration");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_service_logs_a_secret() {
    let pg = TestPostgres::start();
    let redis = TestRedis::start();
    let broker = TestBroker::start();
    let db = with_password(&pg.create_database().await);
    let read_db = with_password(&pg.create_database().await);
    let prefix = random_name("secrets");
    let tokens = [("SLUICE_WRITE_TOKENS", WRITE_TOKEN.to_string()), ("SLUICE_READ_TOKENS", READ_TOKEN.to_string())];

    let registry_env = [("SLUICE_BROKERS", broker.bootstrap()), ("SLUICE_WRITE_TOKENS", REGISTRY_TOKEN.to_string())];
    let mut registry = ServiceHandle::start("schema-registry", &registry_env).await;
    registry.wait_ready().await;
    let mut command = ServiceHandle::start(
        "command-api",
        &[
            ("SLUICE_DATABASE_URL", db.clone()),
            ("SLUICE_REGISTRY_URL", registry.base_url()),
            ("SLUICE_TOPIC_PREFIX", prefix.clone()),
            ("SLUICE_AUTO_REGISTER", "true".into()),
            ("SLUICE_REGISTRY_TOKEN", REGISTRY_TOKEN.into()),
            ("SLUICE_SCHEMAS_DIR", common::schemas_dir()),
            tokens[0].clone(),
            tokens[1].clone(),
        ],
    )
    .await;
    command.wait_ready().await;
    let relay = common::relay(&db, &broker.bootstrap(), &prefix).await;
    let redis_projector = common::projector(&broker, &redis, &registry.base_url(), &prefix, "secrets", "").await;
    let pg_projector =
        common::projector_postgres(&broker, &read_db, &registry.base_url(), &prefix, "cms", "cms_read").await;
    let query = common::query_api(
        &broker,
        &redis,
        &prefix,
        "secrets",
        &command.base_url(),
        &[
            ("SLUICE_POSTGRES_URL", read_db.clone()),
            ("SLUICE_READ_TOKENS", READ_TOKEN.to_string()),
            ("SLUICE_SOURCE_TOKEN", READ_TOKEN.to_string()),
        ],
    )
    .await;

    // Good and bad requests.
    let http = reqwest::Client::new();
    let articles = format!("{}/articles", command.base_url());
    let accepted = http.post(&articles).bearer_auth(WRITE_TOKEN).json(&json!({"title": "Kept"})).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let token = format!("at-least; token={}", accepted["consistency_token"].as_str().unwrap());
    for (token, body) in [
        (READ_TOKEN, json!({"title": "read token cannot write"})),
        ("tok-guess", json!({"title": "wrong token"})),
        (WRITE_TOKEN, json!({"title": ""})),
        (WRITE_TOKEN, json!({"colour": "red"})),
    ] {
        let r = http.post(&articles).bearer_auth(token).json(&body).send().await.unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
    }
    let read = format!("{}/articles/{id}", query.base_url());
    let r = http.get(&read).bearer_auth(READ_TOKEN).header("sluice-consistency", token);
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}: {:?}", r.status(), r.text().await);
    assert_eq!(http.get(&read).bearer_auth("tok-guess").send().await.unwrap().status(), 401);
    let compatibility = format!("{}/config/secrets-value", registry.base_url());
    for (token, status) in [("tok-guess", 401), (REGISTRY_TOKEN, 200)] {
        let r = http.put(&compatibility).bearer_auth(token).json(&json!({"compatibility": "FULL"})).send().await;
        assert_eq!(r.unwrap().status(), status);
    }

    // The database goes away: every service that uses it logs the errors it
    // meets (connection strings must not be among them).
    sluice_stack::signal_pid(pg.pid(), sluice_stack::SIGINT);
    let deadline = std::time::Duration::from_secs(60);
    sluice_testkit::wait_until("PostgreSQL to stop", deadline, || async {
        (!sluice_stack::pid_alive(pg.pid())).then_some(())
    })
    .await;
    let r = http.post(&articles).bearer_auth(WRITE_TOKEN).json(&json!({"title": "while down"})).send().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    sluice_testkit::wait_until("the relay to log the lost database", deadline, || async {
        relay.log_text().contains("ERROR").then_some(())
    })
    .await;

    // Wrong configurations are refused, naming the setting, not its value.
    let mut refusals = vec![
        check_config(
            "command-api",
            &[("SLUICE_DATABASE_URL", db.replace("postgres://", "mysql://")), tokens[0].clone()],
        ),
        check_config("query-api", &[("SLUICE_POSTGRES_URL", read_db.replace("postgres://", "http://"))]),
        check_config("outbox-relay", &[("SLUICE_DATABASE_URL", db.replace("postgres://", "redis://"))]),
        check_config("schema-registry", &[registry_env[1].clone(), ("SLUICE_LEADER_URL", "ftp://leader".into())]),
    ];
    let numeric = check_config("schema-registry", &[("SLUICE_WRITE_TOKENS", NUMERIC_TOKEN.into())]);
    assert!(numeric.contains("must be text"), "{numeric}");
    refusals.push(numeric);
    refusals
        .push(check_config("command-api", &[("SLUICE_DATABASE_URL", db.clone()), ("SLUICE_WRITE_TOKENS", " ".into())]));

    let logs = [&registry, &command, &relay, &redis_projector, &pg_projector, &query]
        .iter()
        .map(|s| s.log_text())
        .chain(refusals)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(logs.lines().count() > 50, "too few log lines to judge");
    for secret in [DB_PASSWORD, WRITE_TOKEN, READ_TOKEN, REGISTRY_TOKEN, NUMERIC_TOKEN] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "`{secret}` logged:\n{}", leaks.join("\n"));
    }
}
