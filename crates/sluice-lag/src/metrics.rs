//! `sluice_consumer_group_*`: the lag of every group, for Prometheus.

use crate::scan::GroupReport;
use crate::status::Status;
use sluice_telemetry::prometheus::{Gauge, GaugeVec, IntCounter, IntGaugeVec, Opts, Registry};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// (group, topic, partition) label sets and groups exported last.
type Exported = (BTreeSet<[String; 3]>, BTreeSet<String>);

#[derive(Clone)]
pub struct LagMetrics {
    committed: IntGaugeVec,
    end: IntGaugeVec,
    messages: IntGaugeVec,
    seconds: GaugeVec,
    status: IntGaugeVec,
    pub scans: IntCounter,
    pub scan_errors: IntCounter,
    /// When the last scan that succeeded ended (seconds since the epoch).
    pub last_scan: Gauge,
    /// The label sets exported by the last update, to remove those that
    /// vanish (never reset: a scrape must not see a half-filled set).
    exported: Arc<Mutex<Exported>>,
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
            last_scan: Gauge::new(
                "sluice_consumer_group_last_scan_timestamp_seconds",
                "When the last successful scan ended",
            )?,
            exported: Arc::default(),
        };
        registry.register(Box::new(m.last_scan.clone()))?;
        registry.register(Box::new(m.committed.clone()))?;
        registry.register(Box::new(m.end.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        registry.register(Box::new(m.status.clone()))?;
        registry.register(Box::new(m.scans.clone()))?;
        registry.register(Box::new(m.scan_errors.clone()))?;
        Ok(m)
    }

    /// Sets every series from a scan; series of partitions or groups the
    /// scan no longer reports are removed.
    pub fn update(&self, reports: &[GroupReport]) {
        let mut partitions = BTreeSet::new();
        let mut groups = BTreeSet::new();
        for report in reports {
            for row in &report.rows {
                let partition = row.partition.to_string();
                let labels = [report.group.as_str(), row.topic.as_str(), partition.as_str()];
                self.committed.with_label_values(&labels).set(row.committed);
                self.end.with_label_values(&labels).set(row.end);
                self.messages.with_label_values(&labels).set(row.lag_messages);
                match row.lag_seconds {
                    Some(seconds) => self.seconds.with_label_values(&labels).set(seconds),
                    None => {
                        let _ = self.seconds.remove_label_values(&labels);
                    }
                }
                partitions.insert([report.group.clone(), row.topic.clone(), partition]);
            }
            for status in Status::ALL {
                let value = i64::from(status == report.status);
                self.status.with_label_values(&[report.group.as_str(), status.as_str()]).set(value);
            }
            groups.insert(report.group.clone());
        }
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        for gone in exported.0.difference(&partitions) {
            let labels = [gone[0].as_str(), gone[1].as_str(), gone[2].as_str()];
            let _ = self.committed.remove_label_values(&labels);
            let _ = self.end.remove_label_values(&labels);
            let _ = self.messages.remove_label_values(&labels);
            let _ = self.seconds.remove_label_values(&labels);
        }
        for gone in exported.1.difference(&groups) {
            for status in Status::ALL {
                let _ = self.status.remove_label_values(&[gone.as_str(), status.as_str()]);
            }
        }
        *exported = (partitions, groups);
        self.last_scan.set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
    }
}
