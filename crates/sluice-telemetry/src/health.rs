use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the service is ready to take traffic; set by the service once its
/// dependencies answer (and, for projections, once bootstrap has caught up).
/// A service that waits, healthy, to take over from another one (a relay
/// standby) says so too: `/readyz?standby=ok` counts it as ready, so that an
/// orchestrator can tell it from one that is failing.
#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    standby: Arc<AtomicBool>,
}

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Release);
    }

    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    readiness: Readiness,
}

/// `/metrics` (Prometheus text), `/healthz` (the process answers) and
/// `/readyz` (503 until the service says it is ready; with `?standby=ok`, a
/// healthy standby is ready too).
pub fn ops_router<S: Clone + Send + Sync + 'static>(registry: Registry, readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { registry, readiness })
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, encoder.format_type().to_string())], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ReadyQuery {
    standby: Option<String>,
}

async fn ready(State(state): State<OpsState>, Query(q): Query<ReadyQuery>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else if q.standby.as_deref() == Some("ok") && state.readiness.is_standby() {
        (StatusCode::OK, "standby")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn status(router: &Router, path: &str) -> StatusCode {
        let req = Request::get(path).body(Body::empty()).expect("request");
        router.clone().oneshot(req).await.expect("response").status()
    }

    #[tokio::test]
    async fn readyz_follows_readiness_and_metrics_render() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("sluice_test_things_total", "things").expect("counter");
        registry.register(Box::new(counter.clone())).expect("register");
        counter.inc();
        let readiness = Readiness::default();
        let router: Router = ops_router(registry, readiness.clone());
        assert_eq!(status(&router, "/healthz").await, StatusCode::OK);
        assert_eq!(status(&router, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        readiness.set_ready(true);
        assert_eq!(status(&router, "/readyz").await, StatusCode::OK);
        assert_eq!(status(&router, "/metrics").await, StatusCode::OK);
    }
}
