use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_outbox::OutboxTable;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SLUICE_LISTEN: `host:port` for commands and ops endpoints.
    pub listen: String,
    /// SLUICE_DATABASE_URL: the write database (source of truth).
    pub database_url: Secret,
    pub db_pool_size: usize,
    /// SLUICE_REGISTRY_URL: the schema registry.
    pub registry_url: String,
    /// SLUICE_REGISTRY_TOKEN: a registry write token, for SLUICE_AUTO_REGISTER.
    pub registry_token: Secret,
    /// SLUICE_QUERY_BASE_URL: where the query API answers, for `Location`.
    pub query_base_url: String,
    pub topic_prefix: String,
    /// SLUICE_OUTBOX_TABLE: `[schema.]table`.
    pub outbox_table: String,
    pub max_body_bytes: usize,
    pub schemas_dir: String,
    /// SLUICE_WRITE_TOKENS: comma-separated bearer tokens allowed to write.
    pub write_tokens: Secret,
    /// SLUICE_READ_TOKENS: comma-separated bearer tokens allowed to read `/changes`.
    pub read_tokens: Secret,
    /// SLUICE_AUTH_DISABLED=true runs without tokens (local experiments only).
    pub auth_disabled: bool,
    /// How long an Idempotency-Key remembers its first answer.
    pub idempotency_ttl_secs: u64,
    /// How often scheduled articles are checked.
    pub schedule_interval_ms: u64,
    /// Register the writer schemas at start. Off in production, where
    /// `sluice schema register` does it under review; the API only looks them up.
    pub auto_register: bool,
    /// SLUICE_RATE_LIMIT: requests per second per caller (bearer token, or
    /// address without one); 0 = no limit.
    pub rate_limit: f64,
    /// SLUICE_RATE_BURST: requests a caller may send at once.
    pub rate_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: Secret::default(),
            db_pool_size: 16,
            registry_url: "http://127.0.0.1:8081".into(),
            registry_token: Secret::default(),
            query_base_url: "http://127.0.0.1:8082".into(),
            topic_prefix: "sluice".into(),
            outbox_table: "cms.outbox".into(),
            max_body_bytes: 256 * 1024,
            schemas_dir: "schemas".into(),
            write_tokens: Secret::default(),
            read_tokens: Secret::default(),
            auth_disabled: false,
            idempotency_ttl_secs: 24 * 3600,
            schedule_interval_ms: 1000,
            auto_register: false,
            rate_limit: 0.0,
            rate_burst: 100,
        }
    }
}

impl Config {
    pub fn outbox(&self) -> anyhow::Result<OutboxTable> {
        OutboxTable::parse(&self.outbox_table).map_err(|e| anyhow::anyhow!("SLUICE_OUTBOX_TABLE: {e}"))
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        sluice_telemetry::rate_limit::RateLimit::new(self.rate_limit, self.rate_burst)?;
        check_url("SLUICE_DATABASE_URL", self.database_url.expose(), &["postgres", "postgresql"])?;
        check_url("SLUICE_REGISTRY_URL", &self.registry_url, &["http", "https"])?;
        check_url("SLUICE_QUERY_BASE_URL", &self.query_base_url, &["http", "https"])?;
        check_not_empty("SLUICE_TOPIC_PREFIX", &self.topic_prefix)?;
        OutboxTable::parse(&self.outbox_table).map_err(|e| format!("SLUICE_OUTBOX_TABLE: {e}"))?;
        if self.max_body_bytes == 0 {
            return Err("SLUICE_MAX_BODY_BYTES must be positive".into());
        }
        let tokens = sluice_telemetry::auth::Tokens::parse(&self.write_tokens, &self.read_tokens);
        if tokens.write.is_empty() && !self.auth_disabled {
            return Err("SLUICE_WRITE_TOKENS is empty: set at least one token (or SLUICE_AUTH_DISABLED=true for local experiments)".into());
        }
        if self.idempotency_ttl_secs == 0 || self.schedule_interval_ms == 0 {
            return Err("SLUICE_IDEMPOTENCY_TTL_SECS and SLUICE_SCHEDULE_INTERVAL_MS must be positive".into());
        }
        if self.db_pool_size == 0 {
            return Err("SLUICE_DB_POOL_SIZE must be positive".into());
        }
        Ok(())
    }
}
