//! The Grafana dashboards of `deploy/grafana/` against real data: a real
//! Prometheus scrapes every service of a local stack under load (commands,
//! reads, a projector paused for a while so that lag and refreshes happen),
//! and every query of every panel must return data. The same check fails on
//! a fixture dashboard with a broken query.

mod common;

use serde_json::{Value, json};
use sluice_testkit::{ServiceHandle, TestPrometheus, wait_until};
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn dashboards_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana"))
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every (panel title, query) of a dashboard, with its variables replaced
/// as Grafana does with "All" selected.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().cloned().unwrap_or_default() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("${group}", ".*")
                .replace("$group", ".*")
                .replace("${topic}", ".*")
                .replace("$topic", ".*")
                .replace("${projection}", ".*")
                .replace("$projection", ".*");
            out.push((panel["title"].as_str().unwrap_or_default().to_string(), expr));
        }
    }
    out
}

/// The queries of `dashboard` that Prometheus refuses or answers with no
/// series: what a panel would show as "No data".
async fn without_data(prometheus: &TestPrometheus, dashboard: &Value) -> Vec<String> {
    let mut failing = Vec::new();
    for (title, expr) in queries(dashboard) {
        match prometheus.query(&expr).await {
            Ok(result) if !result.is_empty() => {}
            Ok(_) => failing.push(format!("{title}: no data for {expr}")),
            Err(e) => failing.push(format!("{title}: {e}")),
        }
    }
    failing
}

/// What every dashboard must have: a unique uid, a Prometheus data source
/// variable that every panel and query uses, and queries.
fn check_shape(name: &str, d: &Value, uids: &mut Vec<String>) {
    let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{name}: no uid")).to_string();
    assert!(!uids.contains(&uid), "{name}: uid {uid} used twice");
    uids.push(uid);
    let variables = d["templating"]["list"].as_array().cloned().unwrap_or_default();
    assert!(
        variables.iter().any(|v| v["type"] == "datasource" && v["name"] == "datasource" && v["query"] == "prometheus"),
        "{name}: no Prometheus data source variable"
    );
    let panels = d["panels"].as_array().cloned().unwrap_or_default();
    assert!(!panels.is_empty(), "{name}: no panels");
    for p in panels {
        assert_eq!(p["datasource"], json!({"type": "prometheus", "uid": "${datasource}"}), "{name}: {}", p["title"]);
        assert!(p["targets"].as_array().is_some_and(|t| !t.is_empty()), "{name}: {} has no query", p["title"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_every_dashboard_has_data_from_the_running_stack() {
    let w = common::WriteSide::start("dash").await;
    let projector = w.projector().await;
    let (projector_pg, pg_url, _) = w.projector_postgres().await;
    let query = w.query(&[("SLUICE_POSTGRES_URL", pg_url.clone()), ("SLUICE_POSTGRES_PROJECTION", "cms".into())]).await;
    let lag_exporter = ServiceHandle::start(
        "lag-exporter",
        &[("SLUICE_BROKERS", w.broker.bootstrap()), ("SLUICE_INTERVAL_MS", "500".into())],
    )
    .await;
    let target = |s: &ServiceHandle| format!("127.0.0.1:{}", s.port);
    let prometheus = TestPrometheus::start(&[
        ("sluice-command-api", target(&w.command)),
        ("sluice-outbox-relay", target(&w.relay)),
        ("sluice-schema-registry", target(&w.registry)),
        ("sluice-projector-redis", target(&projector)),
        ("sluice-projector-postgres", target(&projector_pg)),
        ("sluice-query-api", target(&query)),
        ("sluice-lag-exporter", target(&lag_exporter)),
    ]);

    let started = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    // Load: commands and reads, with the Redis projector paused for a while
    // (lag builds up, at-least reads are refreshed), then resumed.
    let traffic = async {
        for round in 0..40 {
            if round == 10 {
                projector.freeze();
            }
            if round == 25 {
                projector.thaw();
            }
            for n in 0..5 {
                let answer = w.send("/articles", Some(json!({"title": format!("Dashboard {round}-{n}")}))).await;
                let (id, token) =
                    (answer["id"].as_str().expect("id"), answer["consistency_token"].as_str().expect("t"));
                let url = format!("{}/articles/{id}", query.base_url());
                common::read(&w.http, &url, Some(&format!("at-least; token={token}"))).await;
                common::read(&w.http, &url, None).await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    traffic.await;
    // The consumer-lag panel's data over the load, for the README's picture
    // (docs/plot_lag.py draws it): only when asked.
    if let Ok(path) = std::env::var("LAG_PANEL_DATA") {
        let panel = r#"sum by (group) (sluice_consumer_group_lag_messages{group=~".*projector.*"})"#;
        wait_until("the lag to drain", DEADLINE, || async {
            let now = prometheus.query(panel).await.ok()?;
            now.iter().all(|s| s["value"][1] == "0").then_some(())
        })
        .await;
        let end = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        let data = prometheus.query_range(panel, started, end, 0.5).await.expect("range query");
        std::fs::write(&path, serde_json::to_string_pretty(&data).expect("json")).expect("write LAG_PANEL_DATA");
    }

    let mut uids = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(dashboards_dir()).expect("deploy/grafana").flatten().map(|e| e.path()).collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let dashboard = load(path);
        check_shape(&name, &dashboard, &mut uids);
        let failing = wait_until(&format!("every panel of {name} to have data"), DEADLINE, || {
            let (prometheus, dashboard) = (&prometheus, &dashboard);
            async move {
                let failing = without_data(prometheus, dashboard).await;
                failing.is_empty().then_some(failing)
            }
        })
        .await;
        assert!(failing.is_empty());
    }

    // The check can fail: a fixture with a typo in one query.
    let broken = load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/grafana/broken-dashboard.json")));
    let failing = without_data(&prometheus, &broken).await;
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert!(failing[0].contains("sluice_query_readz_total"), "{failing:?}");
}
