//! Per-transaction delivery tracking: a transaction may be confirmed to
//! PostgreSQL once it is sealed (its commit was read) and the broker
//! acknowledged all of its records.

use sluice_kafka::rdkafka::ClientContext;
use sluice_kafka::rdkafka::message::{DeliveryResult, Message};
use sluice_kafka::rdkafka::producer::ProducerContext;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct TxnAck {
    records: AtomicU64,
    pending: AtomicU64,
    sealed: AtomicBool,
    failure: Mutex<Option<String>>,
    notify: Notify,
}

impl TxnAck {
    pub(crate) fn record_sent(&self) {
        self.records.fetch_add(1, Ordering::AcqRel);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// Records handed to the producer for this transaction.
    pub(crate) fn records(&self) -> u64 {
        self.records.load(Ordering::Acquire)
    }

    /// A record was handed back by the client without being sent.
    pub(crate) fn record_unsent(&self) {
        self.records.fetch_sub(1, Ordering::AcqRel);
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn delivered(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify.notify_one();
        }
    }

    fn failed(&self, reason: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(reason);
        }
        self.notify.notify_one();
    }

    /// Resolves once every record is acknowledged, or with the first failure.
    pub(crate) async fn wait(&self) -> Result<(), String> {
        loop {
            if let Some(reason) = self.failure.lock().ok().and_then(|f| f.clone()) {
                return Err(reason);
            }
            if self.sealed.load(Ordering::Acquire) && self.pending.load(Ordering::Acquire) == 0 {
                return Ok(());
            }
            self.notify.notified().await;
        }
    }
}

/// Routes librdkafka's delivery reports to the transaction of each record.
pub(crate) struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<TxnAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(_) => ack.delivered(),
            Err((e, msg)) => {
                let reason = format!("delivery to {} failed: {e}", msg.topic());
                tracing::error!(%reason, "broker refused a record; the relay will stop without confirming it");
                ack.failed(reason);
            }
        }
    }
}
