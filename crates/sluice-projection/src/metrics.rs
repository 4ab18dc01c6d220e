use sluice_telemetry::prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// `sluice_projection_*` metrics, labelled by projection and topic.
#[derive(Clone)]
pub struct ProjectionMetrics {
    pub records: IntCounterVec,
    pub applied: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub batch_seconds: Histogram,
    pub position: IntGaugeVec,
    pub registry_retries: IntCounterVec,
    pub session_restarts: IntCounterVec,
    /// Bootstrap progress: the end offsets captured when this replica's
    /// partitions were assigned, summed, and how far it got towards them.
    pub bootstrap_end: IntGaugeVec,
    pub bootstrap_position: IntGaugeVec,
}

impl ProjectionMetrics {
    pub fn register(registry: &Registry) -> anyhow::Result<Self> {
        let labels = &["projection", "topic"];
        let m = Self {
            records: IntCounterVec::new(
                Opts::new("sluice_projection_records_total", "Records read from Kafka"),
                labels,
            )?,
            applied: IntCounterVec::new(
                Opts::new(
                    "sluice_projection_applied_records_total",
                    "Upserts that changed the read model (newer version)",
                ),
                labels,
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new("sluice_projection_dead_letter_records_total", "Records sent to the dead-letter topic"),
                labels,
            )?,
            batch_seconds: Histogram::with_opts(HistogramOpts::new(
                "sluice_projection_batch_duration_seconds",
                "Time to apply one batch to the store",
            ))?,
            position: IntGaugeVec::new(
                Opts::new("sluice_projection_position_offset", "Next offset to apply, per partition"),
                &["projection", "topic", "partition"],
            )?,
            registry_retries: IntCounterVec::new(
                Opts::new(
                    "sluice_projection_registry_retries_total",
                    "Decodes retried because the schema registry did not know the id yet, failed or did not answer",
                ),
                labels,
            )?,
            session_restarts: IntCounterVec::new(
                Opts::new(
                    "sluice_projection_session_restarts_total",
                    "Restarts from the positions the store holds, by reason: store_lost (marker gone) or \
                     position_mismatch (the store rolled back or was written by someone else)",
                ),
                &["projection", "reason"],
            )?,
            bootstrap_end: IntGaugeVec::new(
                Opts::new(
                    "sluice_projection_bootstrap_end_offsets",
                    "Sum over owned partitions of the end offsets captured when they were assigned",
                ),
                &["projection"],
            )?,
            bootstrap_position: IntGaugeVec::new(
                Opts::new(
                    "sluice_projection_bootstrap_position_offsets",
                    "Sum over owned partitions of the applied position, up to the captured end (bootstrap progress)",
                ),
                &["projection"],
            )?,
        };
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.bootstrap_end.clone()))?;
        registry.register(Box::new(m.bootstrap_position.clone()))?;
        registry.register(Box::new(m.applied.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.batch_seconds.clone()))?;
        registry.register(Box::new(m.position.clone()))?;
        registry.register(Box::new(m.registry_retries.clone()))?;
        registry.register(Box::new(m.session_restarts.clone()))?;
        Ok(m)
    }
}
