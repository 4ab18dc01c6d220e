//! The query API's metrics (`sluice_query_*`, see docs/metrics.md).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct QueryMetrics {
    /// Answers by route, consistency mode, freshness and store.
    pub reads: IntCounterVec,
    /// On-demand refreshes by outcome (applied, gone, failed).
    pub refreshes: IntCounterVec,
    pub refresh_seconds: Histogram,
    /// Refreshes that joined one already in flight for the same key.
    pub coalesced: IntCounter,
    /// The lag (seconds) of the partition behind each answer.
    pub staleness_seconds: Histogram,
}

impl QueryMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reads = IntCounterVec::new(
            Opts::new("sluice_query_reads_total", "Answers by route, consistency mode, freshness and store"),
            &["route", "consistency", "freshness", "store"],
        )?;
        let refreshes = IntCounterVec::new(
            Opts::new("sluice_query_refreshes_total", "On-demand refreshes from the source of truth, by outcome"),
            &["outcome"],
        )?;
        let refresh_seconds = Histogram::with_opts(
            HistogramOpts::new("sluice_query_refresh_duration_seconds", "Fetch and apply of an on-demand refresh")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )?;
        let coalesced = IntCounter::new(
            "sluice_query_refreshes_coalesced_total",
            "On-demand refreshes that joined one already in flight for the same key",
        )?;
        let staleness_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_query_staleness_seconds",
                "Lag of the read model's partition behind each answer",
            )
            .buckets(vec![0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
        )?;
        registry.register(Box::new(reads.clone()))?;
        registry.register(Box::new(refreshes.clone()))?;
        registry.register(Box::new(refresh_seconds.clone()))?;
        registry.register(Box::new(coalesced.clone()))?;
        registry.register(Box::new(staleness_seconds.clone()))?;
        Ok(Self { reads, refreshes, refresh_seconds, coalesced, staleness_seconds })
    }
}
