//! `sluice migrate`: apply the write side's migrations ahead of a deploy.

use anyhow::Context;
use sluice_outbox::OutboxTable;

#[derive(clap::Args)]
pub struct MigrateArgs {
    #[arg(long, env = "SLUICE_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "SLUICE_OUTBOX_TABLE", default_value = "cms.outbox")]
    pub outbox_table: String,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let outbox = OutboxTable::parse(&args.outbox_table).map_err(anyhow::Error::msg)?;
    let pool = cms_write::connect_pool(&args.database_url, 1)?;
    let mut client = pool.get().await.context("connect to the database")?;
    let applied = cms_write::migrations::migrate(&mut client, &outbox).await?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        println!("applied migrations {applied:?}");
    }
    Ok(())
}
