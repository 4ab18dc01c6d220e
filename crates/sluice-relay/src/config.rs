use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::header_set::HeaderSelection;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_outbox::OutboxTable;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// SLUICE_LISTEN: ops endpoints.
    pub listen: String,
    /// SLUICE_DATABASE_URL: the database holding the outbox; the role needs
    /// the REPLICATION attribute.
    pub database_url: Secret,
    /// SLUICE_BROKERS: Kafka bootstrap servers.
    pub brokers: String,
    pub topic_prefix: String,
    /// SLUICE_OUTBOX_TABLES: comma-separated `[schema.]table` names.
    pub outbox_tables: String,
    pub slot: String,
    pub publication: String,
    /// Partitions of topics the relay creates.
    pub partitions: i32,
    /// Also publish every event to `<prefix>.<aggregate>.events`.
    pub events_topics: bool,
    /// Schema for the relay's own tables (slot state, relayed rows kept for
    /// the retention); the relay's role should own it.
    pub state_schema: String,
    /// A heartbeat (a transactional logical decoding message) is written this
    /// often, so that an idle outbox in a busy database still lets the slot's
    /// confirmed position advance.
    pub heartbeat_interval_ms: u64,
    /// Relayed outbox rows are deleted once older than this (0: right after
    /// the broker acknowledged them). Unrelayed rows are never deleted.
    pub outbox_retention_secs: u64,
    /// How long the broker may take to acknowledge a record before the
    /// session stops without confirming it (and sends it again on restart).
    pub delivery_timeout_ms: u64,
    /// On SIGTERM, how long to wait for the broker to acknowledge what was
    /// sent before exiting; what is not acknowledged by then stays
    /// unconfirmed and is sent again by the next relay.
    pub shutdown_drain_ms: u64,
    /// SLUICE_MAX_RECORD_BYTES: the largest record (and batch) sent; a larger
    /// row is dead-lettered. At most the topics' `max.message.bytes`, or the
    /// broker refuses whole batches and the relay cannot move on.
    pub max_record_bytes: u64,
    /// SLUICE_HEADERS: the headers every record carries: `all` (the
    /// default), `none`, or names joined by `+` (`sluice.event_id+traceparent`).
    pub headers: String,
    /// SLUICE_TOPIC_HEADERS: per aggregate type, instead of SLUICE_HEADERS:
    /// `article=none;author=sluice.event_id+sluice.aggregate_version`.
    pub topic_headers: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            database_url: Secret::default(),
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "sluice".into(),
            outbox_tables: "cms.outbox".into(),
            slot: "sluice_outbox".into(),
            publication: "sluice_outbox".into(),
            partitions: 3,
            events_topics: false,
            state_schema: "sluice_relay".into(),
            heartbeat_interval_ms: 10_000,
            outbox_retention_secs: 0,
            delivery_timeout_ms: 120_000,
            shutdown_drain_ms: 10_000,
            max_record_bytes: 1_000_000,
            headers: "all".into(),
            topic_headers: String::new(),
        }
    }
}

impl RelayConfig {
    /// The headers of each aggregate type's records.
    pub fn header_selection(&self) -> Result<HeaderSelection, String> {
        HeaderSelection::parse(&self.headers, &self.topic_headers)
    }

    pub fn tables(&self) -> Result<Vec<OutboxTable>, String> {
        self.outbox_tables
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| OutboxTable::parse(t).map_err(|e| format!("SLUICE_OUTBOX_TABLES: {e}")))
            .collect()
    }
}

fn check_identifier(var: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(format!("{var}=`{value}` must be 1-63 characters of a-z, 0-9 and _")) }
}

impl Validate for RelayConfig {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        check_url("SLUICE_DATABASE_URL", self.database_url.expose(), &["postgres", "postgresql"])?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        check_not_empty("SLUICE_TOPIC_PREFIX", &self.topic_prefix)?;
        check_identifier("SLUICE_SLOT", &self.slot)?;
        check_identifier("SLUICE_PUBLICATION", &self.publication)?;
        if self.tables()?.is_empty() {
            return Err("SLUICE_OUTBOX_TABLES names no table".into());
        }
        check_identifier("SLUICE_STATE_SCHEMA", &self.state_schema)?;
        if self.heartbeat_interval_ms == 0 {
            return Err("SLUICE_HEARTBEAT_INTERVAL_MS must be positive".into());
        }
        if self.delivery_timeout_ms == 0 {
            return Err("SLUICE_DELIVERY_TIMEOUT_MS must be positive".into());
        }
        if !(1_000..=1_000_000_000).contains(&self.max_record_bytes) {
            return Err("SLUICE_MAX_RECORD_BYTES must be between 1000 and 1000000000".into());
        }
        if self.partitions < 1 {
            return Err("SLUICE_PARTITIONS must be at least 1".into());
        }
        self.header_selection()?;
        Ok(())
    }
}
