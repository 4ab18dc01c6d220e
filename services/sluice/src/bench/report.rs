//! `bench/results.json`: each benchmark merges its section in, beside what
//! was measured on: commit, cores, versions of Sluice, PostgreSQL, Redis and
//! the broker.

use anyhow::Context;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where a bench merges its figures.
#[derive(clap::Args, Clone)]
pub struct Output {
    /// The results file; each bench writes its own section.
    #[arg(long, default_value = "bench/results.json")]
    pub results: PathBuf,
}

/// The sections of the summary table, in the order they are printed.
pub const SECTIONS: [&str; 6] = ["commands", "relay", "debezium", "projectors", "reads", "e2e"];

/// The peak RSS each service should stay under, MiB.
pub const RSS_GOAL_MIB: f64 = 64.0;

/// A [`row`] whose baseline is the raw rate of one stage of the write ->
/// read path: the slowest such stage bounds the whole system.
pub fn stage_row(figure: &str, ours: f64, baseline: &str, raw: f64) -> Value {
    let mut line = row(figure, "/s", ours, baseline, Some(raw));
    line["stage"] = json!(true);
    line
}

/// A rate to be shown beside the slowest stage's raw rate, which
/// [`print_summary`] finds among the `stage` lines of the whole file.
pub fn beside_slowest_stage(figure: &str, ours: f64) -> Value {
    let mut line = row(figure, "/s", ours, "slowest raw stage", None);
    line["beside_slowest_stage"] = json!(true);
    line
}

/// The lowest raw rate among the stages of the write -> read path (the
/// `stage` lines of every section): what bounds the whole system.
fn slowest_stage(results: &Value) -> Option<(String, f64)> {
    SECTIONS
        .iter()
        .filter_map(|s| results[*s]["table"].as_array())
        .flatten()
        .filter(|r| r["stage"] == true)
        .filter_map(|r| Some((r["baseline"].as_str()?.to_string(), r["raw"].as_f64()?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// A peak RSS beside [`RSS_GOAL_MIB`].
pub fn rss_row(figure: &str, mib: f64) -> Value {
    row(figure, "MiB", mib, "goal", Some(RSS_GOAL_MIB))
}

/// One line of the summary table: our figure beside its baseline (`None`
/// where there is none).
pub fn row(figure: &str, unit: &str, ours: f64, baseline: &str, raw: Option<f64>) -> Value {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    json!({"figure": figure, "unit": unit, "ours": round(ours), "baseline": baseline, "raw": raw.map(round)})
}

/// Prints the `table` rows of every section of `results`, with ratios.
pub fn print_summary(results: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results).with_context(|| format!("read {}", results.display()))?;
    let results: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", results.display()))?;
    // The ratio is always ours / baseline; the last column says which way is good.
    println!(
        "{:<62} {:>10} {:<5} {:>10}  {:<64} {:>6}  better",
        "figure", "ours", "unit", "baseline", "(what)", "ratio"
    );
    for section in SECTIONS {
        let Some(rows) = results[section]["table"].as_array() else {
            println!("-- {section}: not measured");
            continue;
        };
        let commit = results["meta"][section]["commit"].as_str().unwrap_or("?");
        println!("-- {section} (commit {commit})");
        for r in rows {
            let mut r = r.clone();
            if r["beside_slowest_stage"] == true
                && let Some((stage, rate)) = slowest_stage(&results)
            {
                r["baseline"] = json!(format!("slowest raw stage: {stage}"));
                r["raw"] = json!(rate);
            }
            let ours = r["ours"].as_f64().unwrap_or(f64::NAN);
            let raw = r["raw"].as_f64();
            let unit = r["unit"].as_str().unwrap_or("");
            println!(
                "{:<62} {:>10.1} {:<5} {:>10}  {:<64} {:>6}  {}",
                r["figure"].as_str().unwrap_or("?"),
                ours,
                unit,
                raw.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
                r["baseline"].as_str().unwrap_or(""),
                raw.filter(|v| *v != 0.0).map(|v| format!("{:.2}", ours / v)).unwrap_or_else(|| "-".into()),
                if unit == "/s" { "higher" } else { "lower" }
            );
        }
    }
    Ok(())
}

/// Puts `value` under `section` of the results file at `path` (made when
/// missing), with the run's metadata under `meta.<section>`.
pub async fn record(path: &Path, section: &str, value: Value) -> anyhow::Result<()> {
    let mut results: Value = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let meta = metadata().await;
    let object = results.as_object_mut().with_context(|| format!("{} is not a JSON object", path.display()))?;
    object.insert(section.to_string(), value);
    let metas = object.entry("meta").or_insert_with(|| json!({}));
    metas
        .as_object_mut()
        .with_context(|| format!("`meta` of {} is not an object", path.display()))?
        .insert(section.into(), meta);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Written beside and renamed: a reader never sees half a file.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("write {}", path.display()))?;
    println!("(figures written to {}, section {section})", path.display());
    Ok(())
}

/// Where a plot named `name` goes beside the results file: `bench/e2e.svg`
/// beside `bench/results.json`, `bench/e2e-quick.svg` beside
/// `bench/results-quick.json`.
pub fn plot_path(results: &Path, name: &str) -> PathBuf {
    let stem = results.file_stem().and_then(|s| s.to_str()).unwrap_or("results");
    let file = match stem.strip_prefix("results") {
        Some(rest) => format!("{name}{rest}.svg"),
        None => format!("{stem}-{name}.svg"),
    };
    results.with_file_name(file)
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The commit the figures are measured on.
fn current_commit() -> Option<String> {
    command("git", &["rev-parse", "--short", "HEAD"])
}

async fn metadata() -> Value {
    let postgres = server_version().await;
    json!({
        "measured_at": chrono::Utc::now().to_rfc3339(),
        "commit": current_commit(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "sluice": env!("CARGO_PKG_VERSION"),
        "tansu": command("tansu", &["--version"]),
        "redis_server": command("redis-server", &["--version"]),
        "postgresql": postgres,
        "rustc": command("rustc", &["--version"]),
    })
}

/// The local stack's PostgreSQL version.
async fn server_version() -> Option<String> {
    let (db, connection) = tokio_postgres::connect(crate::dev::DEV_DATABASE_URL, tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(connection);
    db.query_one("show server_version", &[]).await.ok().map(|r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::plot_path;
    use std::path::Path;

    #[test]
    fn the_slowest_stage_is_the_lowest_raw_rate_of_the_stage_lines() {
        let results = serde_json::json!({
            "commands": {"table": [super::stage_row("commands", 1.0, "raw INSERTs", 2000.0)]},
            "relay": {"table": [
                super::stage_row("relay", 1.0, "raw producer", 7000.0),
                super::row("latency", "ms", 1.0, "raw floor", Some(5.0)),
            ]},
            "reads": {"table": [super::row("reads", "/s", 1.0, "raw Redis", Some(100.0))]},
        });
        assert_eq!(super::slowest_stage(&results), Some(("raw INSERTs".to_string(), 2000.0)));
        assert_eq!(super::slowest_stage(&serde_json::json!({})), None);
    }

    #[test]
    fn plots_are_named_after_their_results_file() {
        assert_eq!(plot_path(Path::new("bench/results.json"), "e2e"), Path::new("bench/e2e.svg"));
        assert_eq!(plot_path(Path::new("bench/results-quick.json"), "e2e"), Path::new("bench/e2e-quick.svg"));
        assert_eq!(plot_path(Path::new("/tmp/mine.json"), "debezium"), Path::new("/tmp/mine-debezium.svg"));
    }
}
