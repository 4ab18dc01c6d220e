use sluice_telemetry::prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// `sluice_relay_*` metrics.
#[derive(Clone)]
pub struct RelayMetrics {
    pub records: IntCounterVec,
    pub bytes: IntCounter,
    pub transactions: IntCounter,
    pub delivery_errors: IntCounter,
    pub confirmed_lsn: IntGauge,
    pub slot_lag_bytes: Gauge,
    pub slot_lag_seconds: Gauge,
    pub slot_lost: IntGauge,
    pub outbox_deleted: IntCounter,
    pub acknowledged: IntCounter,
    pub commit_to_ack: Histogram,
    pub dead_letters: IntCounterVec,
    pub broker_up: IntGauge,
    /// 1 while this relay holds the slot and streams (0: standby, starting or failing).
    pub streaming: IntGauge,
    pub sweeps: IntCounter,
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
            slot_lag_bytes: Gauge::new(
                "sluice_relay_slot_lag_bytes",
                "WAL bytes between the current position and the slot's confirmed position",
            )?,
            slot_lag_seconds: Gauge::new(
                "sluice_relay_slot_lag_seconds",
                "Age of the oldest committed transaction not yet confirmed (0 when caught up)",
            )?,
            slot_lost: IntGauge::new(
                "sluice_relay_slot_invalidated",
                "1 when the slot's WAL was removed (wal_status=lost)",
            )?,
            outbox_deleted: IntCounter::new(
                "sluice_relay_outbox_deleted_rows_total",
                "Relayed outbox rows deleted (acknowledged by the broker, past the retention)",
            )?,
            acknowledged: IntCounter::new(
                "sluice_relay_acknowledged_records_total",
                "Records acknowledged by the broker whose transaction was confirmed to PostgreSQL",
            )?,
            commit_to_ack: Histogram::with_opts(
                HistogramOpts::new(
                    "sluice_relay_commit_to_ack_seconds",
                    "From a transaction's commit in PostgreSQL to the broker's acknowledgement of all its records",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "sluice_relay_dead_letters_total",
                    "Outbox rows sent to the relay's dead-letter topic because they can never be published",
                ),
                &["reason"],
            )?,
            broker_up: IntGauge::new("sluice_relay_broker_up", "0 while the Kafka brokers are unreachable")?,
            streaming: IntGauge::new(
                "sluice_relay_streaming",
                "1 while this relay holds its slot and streams; 0 for a standby, or one starting or failing",
            )?,
            sweeps: IntCounter::new(
                "sluice_relay_outbox_sweeps_total",
                "Housekeeping rounds that deleted relayed rows past the retention",
            )?,
        };
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.broker_up.clone()))?;
        registry.register(Box::new(m.streaming.clone()))?;
        registry.register(Box::new(m.sweeps.clone()))?;
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.transactions.clone()))?;
        registry.register(Box::new(m.delivery_errors.clone()))?;
        registry.register(Box::new(m.confirmed_lsn.clone()))?;
        registry.register(Box::new(m.slot_lag_bytes.clone()))?;
        registry.register(Box::new(m.slot_lag_seconds.clone()))?;
        registry.register(Box::new(m.slot_lost.clone()))?;
        registry.register(Box::new(m.outbox_deleted.clone()))?;
        registry.register(Box::new(m.acknowledged.clone()))?;
        registry.register(Box::new(m.commit_to_ack.clone()))?;
        Ok(m)
    }
}
