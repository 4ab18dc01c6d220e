//! `sluice`: the operator's command line.

mod bench;
mod dev;
mod dlq;
mod lag;
mod load;
mod migrate;
mod projection;
mod rebuild;
mod reconcile;
mod replay;
mod schema;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Sluice: a CQRS data backbone")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local stack: PostgreSQL, Redis, tansu and every Sluice service.
    Dev {
        #[command(subcommand)]
        action: dev::Action,
    },
    /// Send create-article commands to a command API.
    Load(load::LoadArgs),
    /// Lag of a projection per partition (from its store), or of every consumer group (--groups).
    Lag(lag::LagArgs),
    /// Check and register the Avro schemas of `schemas/`.
    Schema {
        #[command(subcommand)]
        action: schema::Action,
    },
    /// Outbox relay tools.
    Relay {
        #[command(subcommand)]
        action: replay::Action,
    },
    /// Projection tools: bootstrap a new projection from the topics, rebuild one blue/green.
    Projection {
        #[command(subcommand)]
        action: projection::Action,
    },
    /// Dead-letter topics: what they hold and why.
    Dlq {
        #[command(subcommand)]
        action: dlq::Action,
    },
    /// Compare a read model with the source of truth and repair what is behind.
    Reconcile(reconcile::ReconcileArgs),
    /// Apply the write side's database migrations.
    Migrate(migrate::MigrateArgs),
    /// Benchmarks: our figure beside the raw baseline, measured in one run.
    Bench {
        #[command(subcommand)]
        bench: bench::Bench,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev { action } => dev::run(action).await,
        Command::Load(args) => load::run(args).await,
        Command::Lag(args) => lag::run(args).await,
        Command::Dlq { action } => dlq::run(action).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::Relay { action } => replay::run(action).await,
        Command::Schema { action } => schema::run(action).await,
        Command::Bench { bench } => bench::run(bench).await,
        Command::Projection { action } => projection::run(action).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
