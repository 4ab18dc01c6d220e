//! A registry service started for a test, and a small client for its API.
#![allow(dead_code)]

use serde_json::{Value, json};
use sluice_testkit::{REGISTRY_TOKEN, ServiceHandle, TestBroker};

pub const CT: &str = "application/vnd.schemaregistry.v1+json";

pub struct Client {
    pub base: String,
    http: reqwest::Client,
    /// The `Authorization` header sent with every request, if any.
    authorization: Option<String>,
}

impl Client {
    /// A client presenting the test kit's write token.
    pub fn new(service: &ServiceHandle) -> Self {
        Self::presenting(service, Some(format!("Bearer {REGISTRY_TOKEN}")))
    }

    /// A client sending `authorization` (None: no credentials).
    pub fn presenting(service: &ServiceHandle, authorization: Option<String>) -> Self {
        Self { base: service.base_url(), http: reqwest::Client::new(), authorization }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
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

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
    pub async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.post(&format!("/subjects/{subject}/versions"), json!({"schema": schema})).await
    }
}

pub fn record(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"Thing","namespace":"io.test","fields":[{fields}]}}"#)
}

/// A registry on `broker` taking writes with [`REGISTRY_TOKEN`], ready;
/// `extra` adds `SLUICE_*` settings.
pub async fn registry(broker: &TestBroker, extra: &[(&str, String)]) -> ServiceHandle {
    let mut r = sluice_testkit::start_registry_with(&broker.bootstrap(), extra).await;
    r.wait_ready().await;
    r
}

pub fn code(v: &Value) -> Option<u64> {
    v["error_code"].as_u64()
}
