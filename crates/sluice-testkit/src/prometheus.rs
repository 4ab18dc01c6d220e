//! An own Prometheus (the binary `make setup` unpacks into /opt/sluice/bin)
//! scraping the given targets every second, queried over its HTTP API.

use crate::START_DEADLINE;
use crate::process::Managed;
use sluice_stack::Launch;
use std::path::PathBuf;
use tempfile::TempDir;

pub struct TestPrometheus {
    _process: Managed,
    pub port: u16,
    _dir: TempDir,
}

/// Where `make setup` puts it; `PATH` otherwise.
fn binary() -> PathBuf {
    let installed = PathBuf::from("/opt/sluice/bin/prometheus");
    if installed.exists() { installed } else { PathBuf::from("prometheus") }
}

impl TestPrometheus {
    /// Scrapes each (job, `host:port`) every second.
    pub fn start(targets: &[(&str, String)]) -> TestPrometheus {
        let dir = tempfile::Builder::new().prefix("sluice-prometheus-").tempdir().expect("temp dir");
        let mut config = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        for (job, target) in targets {
            config.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
            let launch = Launch::new(binary(), &log)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            let mut process = Managed::start("prometheus", &launch);
            match sluice_stack::wait_for_tcp("prometheus", port, START_DEADLINE, || process.check_alive(&log)) {
                Ok(()) => return TestPrometheus { _process: process, port, _dir: dir },
                Err(e) => last_error = e.to_string(),
            }
        }
        panic!("prometheus did not start (is it installed? make setup): {last_error}");
    }

    /// The result of a range query (`data.result`) from `start` to `end`
    /// (seconds since the epoch) every `step` seconds.
    pub async fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Result<serde_json::Value, String> {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        self.api("query_range", &[("query", expr), ("start", &start), ("end", &end), ("step", &step)]).await
    }

    /// The result of an instant query (`data.result`); an error names the
    /// query and what Prometheus said.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        Ok(self.api("query", &[("query", expr)]).await?.as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/v1/<endpoint>` with `params` (the first is the query, named
    /// in errors): `data.result`, or what Prometheus said was wrong.
    async fn api(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let expr = params.first().map_or("", |(_, v)| *v);
        let url = format!("http://127.0.0.1:{}/api/v1/{endpoint}", self.port);
        let response =
            reqwest::Client::new().get(url).query(params).send().await.map_err(|e| format!("{expr}: {e}"))?;
        let body: serde_json::Value = response.json().await.map_err(|e| format!("{expr}: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{expr}: {}", body["error"]));
        }
        Ok(body["data"]["result"].clone())
    }
}
