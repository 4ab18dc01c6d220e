//! Whether the relay is ready: streaming, and the broker reachable. An
//! unreachable broker is logged once at error level, shown on `/readyz` and
//! in `sluice_relay_broker_up`; records wait in the producer's queue (up to
//! the delivery timeout) and nothing is confirmed meanwhile.

use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::IntGauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub(crate) struct BrokerHealth(Arc<Inner>);

struct Inner {
    down: AtomicBool,
    streaming: AtomicBool,
    readiness: Readiness,
    gauge: IntGauge,
    streaming_gauge: IntGauge,
    brokers: String,
}

impl BrokerHealth {
    pub(crate) fn new(readiness: Readiness, gauge: IntGauge, streaming_gauge: IntGauge, brokers: &str) -> Self {
        gauge.set(1);
        streaming_gauge.set(0);
        Self(Arc::new(Inner {
            down: AtomicBool::new(false),
            streaming: AtomicBool::new(false),
            readiness,
            gauge,
            streaming_gauge,
            brokers: brokers.into(),
        }))
    }

    pub(crate) fn down(&self, reason: &str) {
        if !self.0.down.swap(true, Ordering::AcqRel) {
            tracing::error!(
                brokers = %self.0.brokers, reason,
                "Kafka broker unreachable: records wait in the producer's queue (up to SLUICE_DELIVERY_TIMEOUT_MS) and nothing is confirmed until it is back"
            );
        }
        self.update();
    }

    pub(crate) fn up(&self) {
        if self.0.down.swap(false, Ordering::AcqRel) {
            tracing::info!(brokers = %self.0.brokers, "Kafka broker reachable again");
            self.update();
        }
    }

    pub(crate) fn is_down(&self) -> bool {
        self.0.down.load(Ordering::Acquire)
    }

    pub(crate) fn set_streaming(&self, streaming: bool) {
        self.0.streaming.store(streaming, Ordering::Release);
        self.0.streaming_gauge.set(i64::from(streaming));
        self.update();
    }

    /// Waiting, healthy, for another relay to let go of the slot.
    pub(crate) fn set_standby(&self, standby: bool) {
        self.0.readiness.set_standby(standby);
    }

    fn update(&self) {
        let down = self.is_down();
        self.0.gauge.set(i64::from(!down));
        self.0.readiness.set_ready(self.0.streaming.load(Ordering::Acquire) && !down);
    }

    /// While the broker is marked down, asks it for metadata every two
    /// seconds, so an idle relay notices that it is back.
    pub(crate) async fn watch(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            if !self.is_down() {
                continue;
            }
            if self.brokers_answer().await {
                self.up();
            }
        }
    }

    /// Whether the brokers answer a metadata request now.
    pub(crate) async fn brokers_answer(&self) -> bool {
        let brokers = self.0.brokers.clone();
        tokio::task::spawn_blocking(move || {
            sluice_kafka::metadata_client(&brokers).is_ok_and(|c| {
                use sluice_kafka::rdkafka::consumer::Consumer;
                c.fetch_metadata(None, Duration::from_secs(2)).is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    pub(crate) fn brokers(&self) -> &str {
        &self.0.brokers
    }
}
