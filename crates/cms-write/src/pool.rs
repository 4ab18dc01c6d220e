//! The write side's connection pool. Every connection works in the write
//! schema (`cms`), which the command API's database role owns.

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;

/// The schema that holds the CMS tables and the outbox.
pub const WRITE_SCHEMA: &str = "cms";

pub fn connect_pool(database_url: &str, max_size: usize) -> anyhow::Result<Pool> {
    let mut config =
        tokio_postgres::Config::from_str(database_url).context("SLUICE_DATABASE_URL is not a valid PostgreSQL URL")?;
    config.options(format!("-c search_path={WRITE_SCHEMA}"));
    config.application_name("sluice-command-api");
    let manager =
        Manager::from_config(config, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(max_size).build().context("database pool")
}
