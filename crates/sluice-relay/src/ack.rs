//! Delivery tracking. A transaction may be confirmed to PostgreSQL once it is
//! sealed (its commit was read) and every one of its outbox rows is *done*:
//! all of the row's records were acknowledged by the broker and the row was
//! made durable as relayed (deleted from the outbox, or recorded for the
//! retention; see `recorder`), or the row went to the dead-letter topic.

use crate::dead_letter::BrokerRefusal;
use crate::health::BrokerHealth;
use sluice_kafka::rdkafka::ClientContext;
use sluice_kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_kafka::rdkafka::message::{DeliveryResult, Message};
use sluice_kafka::rdkafka::producer::ProducerContext;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

#[derive(Default)]
pub(crate) struct TxnAck {
    rows: AtomicU64,
    pending: AtomicU64,
    sealed: AtomicBool,
    failure: Mutex<Option<String>>,
    notify: Notify,
}

impl TxnAck {
    pub(crate) fn row_sent(&self) {
        self.rows.fetch_add(1, Ordering::AcqRel);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// Rows handed to the producer for this transaction.
    pub(crate) fn rows(&self) -> u64 {
        self.rows.load(Ordering::Acquire)
    }

    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// One row is done (acknowledged and made durable, or dead-lettered).
    pub(crate) fn row_done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify.notify_one();
        }
    }

    pub(crate) fn failed(&self, reason: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(reason);
        }
        self.notify.notify_one();
    }

    /// Resolves once every row is done, or with the first failure.
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

/// Which outbox row a record came from: its table (index into the relay's
/// table list) and its id, the exact identity used to delete it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowId {
    pub table: usize,
    pub id: uuid::Uuid,
}

/// The delivery state of one outbox row, shared by its records (the state
/// topic's and, when enabled, the events topic's).
pub(crate) struct RowAck {
    pub txn: Arc<TxnAck>,
    /// None for re-published rows (replay): nothing to make durable.
    pub row: Option<RowId>,
    remaining: AtomicU32,
    dead_lettered: AtomicBool,
}

impl RowAck {
    pub(crate) fn new(txn: &Arc<TxnAck>, row: Option<RowId>, records: u32) -> Arc<Self> {
        txn.row_sent();
        Arc::new(Self {
            txn: txn.clone(),
            row,
            remaining: AtomicU32::new(records),
            dead_lettered: AtomicBool::new(false),
        })
    }

    /// A record of this row will never be sent (handed back by the client).
    pub(crate) fn abandon(&self, reason: String) {
        self.txn.failed(reason);
    }

    /// One of the row's records was acknowledged or dead-lettered; returns
    /// true when it was the last one.
    pub(crate) fn record_done(&self) -> bool {
        self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub(crate) fn mark_dead_lettered(&self) {
        self.dead_lettered.store(true, Ordering::Release);
    }

    /// Whether the row must be made durable (as relayed: deleted or recorded;
    /// or as dead: recorded so that snapshots and replays skip it) before it
    /// counts as done.
    pub(crate) fn needs_recording(&self) -> bool {
        self.row.is_some()
    }

    pub(crate) fn is_dead_lettered(&self) -> bool {
        self.dead_lettered.load(Ordering::Acquire)
    }
}

/// Where finished rows go next.
#[derive(Clone)]
pub(crate) struct Finisher {
    /// Rows to delete from (or record as relayed in) the outbox; the recorder
    /// marks them done once that is durable.
    pub recorder: Option<mpsc::UnboundedSender<Arc<RowAck>>>,
    /// Rows sent to the recorder and not yet recorded.
    pub backlog: Arc<AtomicUsize>,
    /// Set by the first record the broker did not take: from then on no row
    /// is recorded (deleted) in this session. A key's versions are reported
    /// in order (one partition), so a later version acknowledged after an
    /// earlier one failed is never deleted while the earlier one stays: the
    /// outbox keeps a key's newest versions, and a re-snapshot can never
    /// make an older version a key's last record.
    pub halted: Arc<AtomicBool>,
}

impl Finisher {
    /// Called when the last record of `row` is acknowledged or dead-lettered.
    pub(crate) fn finish(&self, row: Arc<RowAck>) {
        if self.halted.load(Ordering::Acquire) {
            row.txn.failed("not recorded: an earlier record of this session was not delivered".into());
            return;
        }
        if !row.needs_recording() {
            row.txn.row_done();
            return;
        }
        match &self.recorder {
            Some(tx) => {
                self.backlog.fetch_add(1, Ordering::AcqRel);
                if let Err(unsent) = tx.send(row) {
                    self.backlog.fetch_sub(1, Ordering::AcqRel);
                    // The session is ending: the row stays unconfirmed and is re-sent.
                    unsent.0.txn.failed("the relay is stopping; row not recorded".into());
                }
            }
            None => row.txn.row_done(),
        }
    }
}

impl Finisher {
    pub(crate) fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }

    /// A record was not delivered: record nothing more in this session.
    /// True the first time.
    pub(crate) fn halt(&self) -> bool {
        !self.halted.swap(true, Ordering::AcqRel)
    }
}

/// Routes librdkafka's delivery reports to the row of each record, and its
/// errors to the broker's health.
pub(crate) struct AckContext {
    pub finisher: Finisher,
    /// Records the broker refused for good (too large, invalid): dead-lettered
    /// by the session instead of stopping the relay.
    pub refusals: mpsc::UnboundedSender<BrokerRefusal>,
    pub health: BrokerHealth,
}

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.health.down(reason);
        } else {
            tracing::warn!(target: "librdkafka", error = %error, reason, "Kafka client error");
        }
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<RowAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, row: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.health.up();
                if row.record_done() {
                    self.finisher.finish(row);
                }
            }
            Err((e, msg)) => match e.rdkafka_error_code() {
                Some(code) if crate::dead_letter::refused_by_broker_for_good(code) => {
                    let refusal = BrokerRefusal::from_message(msg, format!("the broker refused the record: {e}"), row);
                    if let Err(unsent) = self.refusals.send(refusal) {
                        self.finisher.halt();
                        unsent.0.row.txn.failed(format!("delivery to {} failed: {e}", msg.topic()));
                    }
                }
                code => {
                    let reason = format!("delivery to {} failed: {e}", msg.topic());
                    let purged = matches!(code, Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight));
                    // Once per session: after the first, every record in
                    // flight fails the same way.
                    if self.finisher.halt() && !purged {
                        if code.is_some_and(crate::dead_letter::batch_too_large) {
                            tracing::error!(%reason, "the broker refused a batch as too large: set SLUICE_MAX_RECORD_BYTES to at most the topic's max.message.bytes; the relay will stop without confirming and send it again");
                        } else {
                            tracing::error!(%reason, "record not delivered; the relay will stop without confirming it and send it again");
                        }
                    }
                    row.txn.failed(reason);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finisher() -> (Finisher, mpsc::UnboundedReceiver<Arc<RowAck>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Finisher { recorder: Some(tx), backlog: Arc::default(), halted: Arc::default() }, rx)
    }

    fn row(txn: &Arc<TxnAck>) -> Arc<RowAck> {
        let ack = RowAck::new(txn, Some(RowId { table: 0, id: uuid::Uuid::new_v4() }), 1);
        assert!(ack.record_done());
        ack
    }

    #[tokio::test]
    async fn acknowledged_rows_go_to_the_recorder() {
        let (finisher, mut recorded) = finisher();
        let txn: Arc<TxnAck> = Arc::default();
        finisher.finish(row(&txn));
        assert!(recorded.try_recv().is_ok());
        assert_eq!(finisher.backlog(), 1);
    }

    /// A later version acknowledged after an earlier one failed is not
    /// deleted: the outbox keeps the key's newest versions.
    #[tokio::test]
    async fn after_a_failed_delivery_nothing_more_is_recorded() {
        let (finisher, mut recorded) = finisher();
        let txn: Arc<TxnAck> = Arc::default();
        finisher.halt();
        finisher.finish(row(&txn));
        assert!(recorded.try_recv().is_err(), "a row was recorded after the session's first failure");
        txn.seal();
        assert!(txn.wait().await.is_err(), "its transaction could be confirmed");
    }
}
