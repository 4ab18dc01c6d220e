//! `sluice schema check|register`: the schema chain of `schemas/`, checked
//! offline under each subject's mode and against a registry, and applied.

use anyhow::Context;
use sluice_avro::{RegistryEncoder, RegistryEndpoint, SchemaSet, admin};
use sluice_core::Secret;
use sluice_core::topics::{state_topic, value_subject};
use sluice_registry::Level;
use std::time::Duration;

/// State topics are compacted: old records live forever, so their subjects
/// must be readable both ways across every version.
const STATE_LEVEL: Level = Level::FullTransitive;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Check every version against the earlier ones (offline), and with
    /// --registry whether the newest could be registered there.
    Check(Args),
    /// Set each subject to FULL_TRANSITIVE and register every version in order.
    Register(Args),
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "schemas")]
    pub dir: String,
    #[arg(long, env = "SLUICE_REGISTRY_URL")]
    pub registry: Option<String>,
    /// A write token of the registry (one of its SLUICE_WRITE_TOKENS), for `register`.
    #[arg(long, env = "SLUICE_REGISTRY_TOKEN", hide_env_values = true, default_value = "")]
    pub registry_token: String,
    #[arg(long, env = "SLUICE_TOPIC_PREFIX", default_value = "sluice")]
    pub topic_prefix: String,
    /// Wait up to this long for the registry to answer before the first
    /// request (a pod started beside the registry it registers with).
    #[arg(long, default_value_t = 0)]
    pub wait_secs: u64,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    match action {
        Action::Check(args) => check(&args).await,
        Action::Register(args) => register(&args).await,
    }
}

fn load(args: &Args) -> anyhow::Result<SchemaSet> {
    let set = SchemaSet::load(args.dir.as_ref()).with_context(|| format!("load {}", args.dir))?;
    anyhow::ensure!(set.aggregates().next().is_some(), "no schemas in {}", args.dir);
    Ok(set)
}

fn subject(args: &Args, aggregate: &str) -> String {
    value_subject(&state_topic(&args.topic_prefix, aggregate))
}

async fn check(args: &Args) -> anyhow::Result<()> {
    let set = load(args)?;
    let mut problems = Vec::new();
    for aggregate in set.aggregates() {
        let versions = set.versions(aggregate);
        for (i, file) in versions.iter().enumerate() {
            let earlier: Vec<(u32, &sluice_avro::Schema)> =
                versions[..i].iter().map(|f| (f.version, &f.schema)).collect();
            for p in STATE_LEVEL.check(&file.schema, &earlier) {
                problems.push(format!("{}: {p}", file.path.display()));
            }
        }
        let latest = versions.last().map_or(0, |f| f.version);
        println!("{aggregate}: v1..v{latest} checked offline under {STATE_LEVEL}");
        if let Some(registry) = &args.registry {
            let subject = subject(args, aggregate);
            for file in versions {
                if admin::lookup(registry, &subject, &file.text).await?.is_some() {
                    continue;
                }
                for p in admin::compatibility_problems(registry, &subject, &file.text).await? {
                    problems.push(format!("{} against {registry} ({subject}): {p}", file.path.display()));
                }
            }
            println!("{aggregate}: checked against {registry} ({subject})");
        }
    }
    if problems.is_empty() {
        println!("schemas are compatible");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("INCOMPATIBLE {p}");
        }
        anyhow::bail!("{} schema compatibility problem(s)", problems.len())
    }
}

pub async fn register(args: &Args) -> anyhow::Result<()> {
    let registry = args.registry.as_deref().context("--registry (or SLUICE_REGISTRY_URL) is required")?;
    wait_for(registry, Duration::from_secs(args.wait_secs)).await?;
    check(args).await?;
    let set = load(args)?;
    let writer = RegistryEndpoint::new(registry, Secret::new(args.registry_token.clone()));
    for aggregate in set.aggregates() {
        let subject = subject(args, aggregate);
        admin::set_compatibility(&writer, &subject, STATE_LEVEL.as_str()).await?;
        for file in set.versions(aggregate) {
            let encoder = RegistryEncoder::register(&writer, &subject, &file.text)
                .await
                .with_context(|| format!("register {}", file.path.display()))?;
            println!("{subject}: v{} registered as schema id {}", file.version, encoder.schema_id());
        }
    }
    Ok(())
}

/// Polls the registry until it answers `GET /subjects` or `patience` is over.
async fn wait_for(registry: &str, patience: Duration) -> anyhow::Result<()> {
    let url = format!("{}/subjects", registry.trim_end_matches('/'));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let answer = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => format!("{e}"),
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::ensure!(patience.is_zero(), "the registry at {registry} did not answer for {patience:?}: {answer}");
            return Ok(()); // no waiting asked: the requests below say what is wrong
        }
        eprintln!("waiting for the registry at {registry}: {answer}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
