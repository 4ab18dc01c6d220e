//! Request metrics for a service's HTTP API:
//! `sluice_<component>_http_requests_total{route,method,status}` and
//! `sluice_<component>_http_request_duration_seconds{route,method}`, the
//! route being the matched pattern (`/articles/{id}`), never the raw path.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl HttpMetrics {
    /// Registers the metrics of `component` (`command_api`, `registry`, ...).
    pub fn register(registry: &Registry, component: &str) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("sluice_{component}_http_requests_total"),
                "HTTP requests answered, by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                format!("sluice_{component}_http_request_duration_seconds"),
                "Time to answer an HTTP request",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self { requests, seconds })
    }

    /// `router` with every request counted and timed.
    pub fn layer<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(from_fn_with_state(self, track))
    }
}

async fn track(State(m): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    m.seconds.with_label_values(&[&route, &method]).observe(started.elapsed().as_secs_f64());
    m.requests.with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()]).inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern_and_status() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry, "test").expect("register");
        let app = metrics.layer(Router::new().route("/things/{id}", get(|| async { "ok" })));
        for path in ["/things/1", "/things/2", "/nothing"] {
            let request = axum::http::Request::get(path).body(Body::empty()).expect("request");
            app.clone().oneshot(request).await.expect("answer");
        }
        let families = registry.gather();
        let requests = families.iter().find(|f| f.name() == "sluice_test_http_requests_total").expect("requests");
        let mut seen: Vec<(String, u64)> = requests
            .get_metric()
            .iter()
            .map(|m| {
                let labels: Vec<String> = m.get_label().iter().map(|l| l.value().to_string()).collect();
                (labels.join(" "), m.get_counter().value() as u64)
            })
            .collect();
        seen.sort();
        // (Labels in name order: method, route, status.) A path no route
        // matches is counted under one label, not under its own path.
        assert_eq!(seen, [("GET /things/{id} 200".to_string(), 2), ("GET unmatched 404".to_string(), 1)]);
    }
}
