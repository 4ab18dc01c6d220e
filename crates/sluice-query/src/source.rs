//! The source of truth: command-api's `GET /articles/{id}` and
//! `GET /authors/{id}`, the aggregate's current snapshot and version.

use sluice_core::Secret;
use std::time::Duration;

/// An aggregate as the source of truth holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub doc: serde_json::Value,
    pub version: i64,
}

/// One entry of the source of truth's catch-up log (`GET /changes`): an
/// aggregate's snapshot at a version, `null` for an erasure.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LoggedChange {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    pub snapshot: serde_json::Value,
}

#[derive(Debug, serde::Deserialize)]
struct ChangesPage {
    changes: Vec<LoggedChange>,
    next_cursor: String,
}

#[derive(Clone)]
pub struct SourceOfTruth {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
}

impl SourceOfTruth {
    pub fn new(base_url: &str, token: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_string(), token })
    }

    /// The aggregate's snapshot; `None` when the source of truth does not
    /// hold it (never created, or erased). An error when it cannot say.
    pub async fn fetch(&self, aggregate_type: &str, id: &str) -> Result<Option<Fetched>, String> {
        let url = format!("{}/{aggregate_type}s/{id}", self.base_url);
        let mut request = self.http.get(&url);
        if !self.token.is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        let response = request.send().await.map_err(|e| format!("the source of truth is unreachable: {e}"))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => return Err(format!("the source of truth answered {status} for {aggregate_type} {id}")),
        }
        let header = response.headers().get("sluice-version").and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
        let doc: serde_json::Value =
            response.json().await.map_err(|e| format!("the source of truth sent an unreadable snapshot: {e}"))?;
        let version = header
            .or_else(|| doc.get("version").and_then(serde_json::Value::as_i64))
            .ok_or_else(|| format!("the source of truth sent no version for {aggregate_type} {id}"))?;
        Ok(Some(Fetched { doc, version }))
    }

    /// A page of the catch-up log after `cursor` (`""`: from the start) and
    /// the cursor after it.
    pub async fn changes(&self, cursor: &str, limit: usize) -> anyhow::Result<(Vec<LoggedChange>, String)> {
        let mut request = self.http.get(format!("{}/changes", self.base_url)).query(&[("limit", limit.to_string())]);
        if !cursor.is_empty() {
            request = request.query(&[("after", cursor)]);
        }
        if !self.token.is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        let response = request.send().await.map_err(|e| anyhow::anyhow!("the source of truth is unreachable: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("the source of truth answered {status} to GET /changes: {body}");
        }
        let page: ChangesPage = response.json().await.map_err(|e| anyhow::anyhow!("unreadable /changes page: {e}"))?;
        Ok((page.changes, page.next_cursor))
    }
}
