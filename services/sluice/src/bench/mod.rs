//! `sluice bench`: our figure and the raw baseline, measured in the same run,
//! against the local stack (`make bench` starts a release build of it).

mod commands;
mod contender;
mod debezium;
mod e2e;
mod plot;
mod projectors;
mod reads;
mod relay;
mod report;
mod stats;
mod sustained;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// create-article commands/s over HTTP vs the same INSERTs without HTTP.
    Commands(commands::CommandsArgs),
    /// The relay beside Debezium's outbox EventRouter on the same database,
    /// table shape and broker: backlog rows/s, latency, memory, headers.
    Debezium(debezium::DebeziumArgs),
    /// Command answered -> visible in each read model at steady rates,
    /// beside the broker's own produce -> consumable latency; peak RSS of
    /// every service.
    E2e(e2e::E2eArgs),
    /// Relay throughput vs a raw producer, and commit-to-consumable latency
    /// at a steady rate beside the broker's own floor.
    Relay(relay::RelayArgs),
    /// Each projector's applied records/s beside raw consume and raw store
    /// writes, and the bootstrap of a large compacted topic with peak RSS.
    Projectors(projectors::ProjectorsArgs),
    /// query-api eventual reads beside raw Redis reads of the same keys, and
    /// the latency of an on-demand refresh.
    Reads(reads::ReadsArgs),
    /// One table of every figure in the results file, each beside its
    /// baseline, with the ratio.
    Summary(report::Output),
}

pub async fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Commands(args) => commands::run(args).await,
        Bench::Debezium(args) => debezium::run(args).await,
        Bench::E2e(args) => e2e::run(args).await,
        Bench::Relay(args) => relay::run(args).await,
        Bench::Projectors(args) => projectors::run(args).await,
        Bench::Reads(args) => reads::run(args).await,
        Bench::Summary(output) => report::print_summary(&output.results),
    }
}
