//! A publisher with its delivery wiring: acknowledged rows go to the
//! recorder (when given), records the broker refuses for good go to the
//! dead-letter topic, broker errors to the health.

use crate::ack::{AckContext, Finisher, RowAck};
use crate::dead_letter::{BrokerRefusal, DeadLetters};
use crate::health::BrokerHealth;
use crate::publisher::{Publisher, PublisherConfig};
use crate::{RelayConfig, RelayMetrics};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub(crate) struct Pipeline {
    pub publisher: Publisher,
    /// Ends once the publisher (and with it the producer) is dropped.
    pub refusals: JoinHandle<()>,
}

pub(crate) fn build(
    config: &RelayConfig,
    metrics: &RelayMetrics,
    health: BrokerHealth,
    recorder: Option<mpsc::UnboundedSender<Arc<RowAck>>>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    table_names: Vec<String>,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Pipeline> {
    let finisher = Finisher { recorder, backlog, halted: Default::default() };
    let dead_letters =
        Arc::new(DeadLetters::new(&config.brokers, &config.topic_prefix, config.delivery_timeout_ms, metrics.clone())?);
    let (refusal_tx, refusal_rx) = mpsc::unbounded_channel();
    let context = AckContext { finisher: finisher.clone(), refusals: refusal_tx, health };
    let publisher_config = PublisherConfig {
        brokers: &config.brokers,
        prefix: &config.topic_prefix,
        partitions: config.partitions,
        events_topics: config.events_topics,
        delivery_timeout_ms: config.delivery_timeout_ms,
        max_record_bytes: config.max_record_bytes,
        headers: config.header_selection().map_err(|e| anyhow::anyhow!(e))?,
    };
    let publisher = Publisher::new(&publisher_config, context, dead_letters.clone(), metrics.clone(), cancel)?;
    let refusals = tokio::spawn(handle_refusals(refusal_rx, dead_letters, finisher, table_names));
    Ok(Pipeline { publisher, refusals })
}

async fn handle_refusals(
    mut refusals: mpsc::UnboundedReceiver<BrokerRefusal>,
    dead_letters: Arc<DeadLetters>,
    finisher: Finisher,
    table_names: Vec<String>,
) {
    while let Some(mut refusal) = refusals.recv().await {
        if let Some(name) = refusal.row.row.and_then(|id| table_names.get(id.table)) {
            refusal.dead.table = name.clone();
        }
        match dead_letters.send(&refusal.dead, "refused").await {
            Ok(()) => {
                refusal.row.mark_dead_lettered();
                if refusal.row.record_done() {
                    finisher.finish(refusal.row);
                }
            }
            Err(e) => {
                finisher.halt();
                refusal.row.txn.failed(format!("{e:#}"))
            }
        }
    }
}
