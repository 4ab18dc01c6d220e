use sluice_telemetry::prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// `sluice_projection_*` metrics, labelled by projection and topic.
#[derive(Clone)]
pub struct ProjectionMetrics {
    pub records: IntCounterVec,
    pub applied: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub batch_seconds: Histogram,
    pub position: IntGaugeVec,
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
        };
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.applied.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.batch_seconds.clone()))?;
        registry.register(Box::new(m.position.clone()))?;
        Ok(m)
    }
}
