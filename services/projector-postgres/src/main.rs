//! projector-postgres: the PostgreSQL store's settings and the projector runtime.

use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::validate::check_url;
use sluice_projection::service::{self, StoreSettings};
use sluice_store_postgres::{DEFAULT_SCHEMA, PostgresStore, SchemaName};
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
struct PostgresSettings {
    /// SLUICE_DATABASE_URL: the read database, as the projector's role
    /// (`sluice_projector_pg` in deploy/sql/roles.sql). Never logged.
    database_url: Secret,
    /// SLUICE_PG_SCHEMA: the schema of the read model's tables; a blue/green
    /// rebuild writes its next generation to another one.
    pg_schema: String,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self { database_url: Secret::default(), pg_schema: DEFAULT_SCHEMA.into() }
    }
}

impl StoreSettings for PostgresSettings {
    const SERVICE: &'static str = "projector-postgres";
    const DEFAULT_LISTEN: &'static str = "127.0.0.1:9093";
    const DEFAULT_AGGREGATES: &'static str = "article,author";

    fn validate(&self, _projection: &str) -> Result<(), String> {
        check_url("SLUICE_DATABASE_URL", self.database_url.expose(), &["postgres", "postgresql"])?;
        SchemaName::parse(&self.pg_schema).map_err(|e| format!("SLUICE_PG_SCHEMA: {e}"))?;
        Ok(())
    }
}

fn main() -> ExitCode {
    service::run(async |config: &service::ServiceConfig<PostgresSettings>| {
        PostgresStore::connect(config.store.database_url.expose(), &config.store.pg_schema, &config.projection)
    })
}
