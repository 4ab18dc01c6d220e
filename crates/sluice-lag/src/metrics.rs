//! `sluice_consumer_group_*`: the lag of every group, for Prometheus.

use crate::scan::GroupReport;
use crate::status::Status;
use sluice_telemetry::prometheus::{GaugeVec, IntCounter, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct LagMetrics {
    committed: IntGaugeVec,
    end: IntGaugeVec,
    messages: IntGaugeVec,
    seconds: GaugeVec,
    status: IntGaugeVec,
    pub scans: IntCounter,
    pub scan_errors: IntCounter,
}

impl LagMetrics {
    pub fn register(registry: &Registry) -> anyhow::Result<Self> {
        let labels = &["group", "topic", "partition"];
        let m = Self {
            committed: IntGaugeVec::new(
                Opts::new("sluice_consumer_group_committed_offset", "Offset the group committed"),
                labels,
            )?,
            end: IntGaugeVec::new(Opts::new("sluice_consumer_group_end_offset", "End of the partition"), labels)?,
            messages: IntGaugeVec::new(
                Opts::new("sluice_consumer_group_lag_messages", "End offset minus committed offset"),
                labels,
            )?,
            seconds: GaugeVec::new(
                Opts::new(
                    "sluice_consumer_group_lag_seconds",
                    "Age of the oldest record the group has not consumed (interpolated from the end-offset history)",
                ),
                labels,
            )?,
            status: IntGaugeVec::new(
                Opts::new(
                    "sluice_consumer_group_status",
                    "1 for the group's current status (OK, WARN, STALL, STOP, ERR), 0 for the others",
                ),
                &["group", "status"],
            )?,
            scans: IntCounter::new("sluice_consumer_group_scans_total", "Scans of every group")?,
            scan_errors: IntCounter::new(
                "sluice_consumer_group_scan_errors_total",
                "Scans that failed (the broker unreachable)",
            )?,
        };
        registry.register(Box::new(m.committed.clone()))?;
        registry.register(Box::new(m.end.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        registry.register(Box::new(m.status.clone()))?;
        registry.register(Box::new(m.scans.clone()))?;
        registry.register(Box::new(m.scan_errors.clone()))?;
        Ok(m)
    }

    /// Sets every series from a scan (partitions no longer reported go away).
    pub fn update(&self, reports: &[GroupReport]) {
        for vec in [&self.committed, &self.end, &self.messages] {
            vec.reset();
        }
        self.seconds.reset();
        self.status.reset();
        for report in reports {
            for row in &report.rows {
                let partition = row.partition.to_string();
                let labels = [report.group.as_str(), row.topic.as_str(), partition.as_str()];
                self.committed.with_label_values(&labels).set(row.committed);
                self.end.with_label_values(&labels).set(row.end);
                self.messages.with_label_values(&labels).set(row.lag_messages);
                if let Some(seconds) = row.lag_seconds {
                    self.seconds.with_label_values(&labels).set(seconds);
                }
            }
            for status in Status::ALL {
                let value = i64::from(status == report.status);
                self.status.with_label_values(&[report.group.as_str(), status.as_str()]).set(value);
            }
        }
    }
}
