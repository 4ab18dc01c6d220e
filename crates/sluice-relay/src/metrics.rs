use sluice_telemetry::prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// `sluice_relay_*` metrics.
#[derive(Clone)]
pub struct RelayMetrics {
    pub records: IntCounterVec,
    pub bytes: IntCounter,
    pub transactions: IntCounter,
    pub delivery_errors: IntCounter,
    pub confirmed_lsn: IntGauge,
}

impl RelayMetrics {
    pub fn register(registry: &Registry) -> anyhow::Result<Self> {
        let m = Self {
            records: IntCounterVec::new(
                Opts::new("sluice_relay_records_total", "Outbox records handed to the producer"),
                &["topic"],
            )?,
            bytes: IntCounter::new("sluice_relay_payload_bytes_total", "Payload bytes handed to the producer")?,
            transactions: IntCounter::new(
                "sluice_relay_confirmed_transactions_total",
                "Transactions acknowledged by the broker and confirmed to PostgreSQL",
            )?,
            delivery_errors: IntCounter::new("sluice_relay_delivery_errors_total", "Records the broker refused")?,
            confirmed_lsn: IntGauge::new("sluice_relay_confirmed_lsn", "Last LSN confirmed (flushed) to PostgreSQL")?,
        };
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.transactions.clone()))?;
        registry.register(Box::new(m.delivery_errors.clone()))?;
        registry.register(Box::new(m.confirmed_lsn.clone()))?;
        Ok(m)
    }
}
