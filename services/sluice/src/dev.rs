//! `sluice dev up|status|down`: the whole stack on this machine, detached,
//! with logs and pid files in one folder (`SLUICE_DEV_DIR`, default
//! `.sluice/dev`).

use anyhow::Context;
use sluice_stack::{Launch, Lifetime, postgres, tansu};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_BROKERS: &str = "127.0.0.1:19092";
/// The local stack's write database (trust authentication on loopback).
pub const DEV_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:15432/sluice";
/// The local stack's write token (not a secret: the stack listens on loopback only).
pub const DEV_WRITE_TOKEN: &str = "dev-write-token";
/// The local stack's read token: query-api fetches on-demand refreshes with it.
pub const DEV_READ_TOKEN: &str = "dev-read-token";
/// The local stack's schema registry write token.
pub const DEV_REGISTRY_TOKEN: &str = "dev-registry-token";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:16379/";
const PG_PORT: u16 = 15432;
const REDIS_PORT: u16 = 16379;
const BROKER_PORT: u16 = 19092;
const DATABASE: &str = "sluice";
const REGISTRY_URL: &str = "http://127.0.0.1:8081";
const START_DEADLINE: Duration = Duration::from_secs(60);

#[derive(clap::Subcommand)]
pub enum Action {
    /// Start whatever is not running yet.
    Up,
    /// Show each process, its pid and whether it answers.
    Status,
    /// Stop the services, then the infrastructure.
    Down,
}

struct Service {
    name: &'static str,
    port: u16,
    env: Vec<(&'static str, String)>,
}

fn services(schemas_dir: &Path) -> Vec<Service> {
    let db = postgres::url(PG_PORT, DATABASE);
    let registry = REGISTRY_URL.to_string();
    vec![
        Service {
            name: "schema-registry",
            port: 8081,
            env: vec![("SLUICE_BROKERS", DEFAULT_BROKERS.into()), ("SLUICE_WRITE_TOKENS", DEV_REGISTRY_TOKEN.into())],
        },
        Service {
            name: "command-api",
            port: 8080,
            env: vec![
                ("SLUICE_DATABASE_URL", db.clone()),
                ("SLUICE_REGISTRY_URL", registry.clone()),
                ("SLUICE_QUERY_BASE_URL", "http://127.0.0.1:8082".into()),
                ("SLUICE_SCHEMAS_DIR", schemas_dir.display().to_string()),
                ("SLUICE_WRITE_TOKENS", DEV_WRITE_TOKEN.into()),
                ("SLUICE_READ_TOKENS", DEV_READ_TOKEN.into()),
            ],
        },
        Service {
            name: "outbox-relay",
            port: 9090,
            env: vec![("SLUICE_DATABASE_URL", db.clone()), ("SLUICE_BROKERS", DEFAULT_BROKERS.into())],
        },
        Service {
            name: "projector-redis",
            port: 9091,
            env: vec![
                ("SLUICE_REDIS_URL", DEFAULT_REDIS_URL.into()),
                ("SLUICE_BROKERS", DEFAULT_BROKERS.into()),
                ("SLUICE_REGISTRY_URL", registry.clone()),
                ("SLUICE_SCHEMAS_DIR", schemas_dir.display().to_string()),
                // One replica, reading every partition itself: tansu's group
                // coordination does not survive its restarts.
                ("SLUICE_ASSIGNMENT", "all".into()),
            ],
        },
        Service {
            // As the administrator, like the others here; deploy/sql/roles.sql
            // has the least-privilege role for real deployments.
            name: "projector-postgres",
            port: 9093,
            env: vec![
                ("SLUICE_DATABASE_URL", db.clone()),
                ("SLUICE_BROKERS", DEFAULT_BROKERS.into()),
                ("SLUICE_REGISTRY_URL", registry.clone()),
                ("SLUICE_SCHEMAS_DIR", schemas_dir.display().to_string()),
                ("SLUICE_ASSIGNMENT", "all".into()),
            ],
        },
        Service { name: "lag-exporter", port: 9094, env: vec![("SLUICE_BROKERS", DEFAULT_BROKERS.into())] },
        Service {
            name: "query-api",
            port: 8082,
            env: vec![
                ("SLUICE_REDIS_URL", DEFAULT_REDIS_URL.into()),
                ("SLUICE_POSTGRES_URL", db.clone()),
                ("SLUICE_BROKERS", DEFAULT_BROKERS.into()),
                ("SLUICE_SOURCE_URL", "http://127.0.0.1:8080".into()),
                ("SLUICE_SOURCE_TOKEN", DEV_READ_TOKEN.into()),
            ],
        },
    ]
}

const INFRA: [&str; 3] = ["postgres", "redis-server", "tansu"];

pub async fn run(action: Action) -> anyhow::Result<()> {
    let dir = std::env::var_os("SLUICE_DEV_DIR").map_or_else(|| PathBuf::from(".sluice/dev"), PathBuf::from);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    match action {
        Action::Up => up(&dir).await,
        Action::Status => status(&dir).await,
        Action::Down => down(&dir),
    }
}

/// The pid of the local stack's `name` (in `SLUICE_DEV_DIR`), for benches
/// that pause a process.
pub fn dev_pid(name: &str) -> anyhow::Result<u32> {
    let dir = std::env::var("SLUICE_DEV_DIR").unwrap_or_else(|_| ".sluice/dev".into());
    let pid = std::fs::read_to_string(format!("{dir}/{name}.pid")).with_context(|| format!("{name} is not running"))?;
    Ok(pid.trim().parse()?)
}

fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

fn running_pid(dir: &Path, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(dir, name)).ok()?.trim().parse().ok()?;
    sluice_stack::pid_alive(pid).then_some(pid)
}

fn start(dir: &Path, name: &str, launch: &Launch) -> anyhow::Result<u32> {
    let child = sluice_stack::spawn(launch, Lifetime::Detached)?;
    let pid = child.id();
    std::fs::write(pid_file(dir, name), pid.to_string())?;
    println!("  started {name:<18} pid {pid:<8} log {}", launch.log.display());
    Ok(pid)
}

fn wait_port(name: &str, port: u16, pid: u32, log: &Path) -> anyhow::Result<()> {
    sluice_stack::wait_for_tcp(name, port, START_DEADLINE, || {
        if sluice_stack::pid_alive(pid) { Ok(()) } else { Err(format!("{name} exited; see {}", log.display())) }
    })?;
    Ok(())
}

async fn up(dir: &Path) -> anyhow::Result<()> {
    println!("local stack in {}", dir.display());
    // PostgreSQL
    if running_pid(dir, "postgres").is_none() {
        let bindir = postgres::bindir()?;
        let user = postgres::server_user()?;
        let pg_dir = dir.join("postgres");
        let data = pg_dir.join("data");
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&pg_dir)?;
            postgres::chown_to(&pg_dir, user)?;
            postgres::init(&bindir, &data, user, &dir.join("initdb.log"))?;
        }
        let log = dir.join("postgres.log");
        let mut launch = postgres::launch(&bindir, &data, &pg_dir, PG_PORT, false, &log);
        launch.user = user;
        let pid = start(dir, "postgres", &launch)?;
        wait_port("postgres", PG_PORT, pid, &log)?;
    }
    ensure_database().await?;
    // Redis
    if running_pid(dir, "redis-server").is_none() {
        let log = dir.join("redis-server.log");
        let launch = sluice_stack::redis::launch(REDIS_PORT, dir, &log)?;
        let pid = start(dir, "redis-server", &launch)?;
        wait_port("redis-server", REDIS_PORT, pid, &log)?;
    }
    // Broker
    let db_path = dir.join("tansu.db");
    if running_pid(dir, "tansu").is_none() {
        let log = dir.join("tansu.log");
        let launch = tansu::launch(BROKER_PORT, &db_path, &log)?;
        let pid = start(dir, "tansu", &launch)?;
        wait_port("tansu", BROKER_PORT, pid, &log)?;
    }
    tansu::create_header_index(&db_path, START_DEADLINE)?;
    // Services, in dependency order.
    let bin_dir = std::env::current_exe()?.parent().context("binary folder")?.to_path_buf();
    let schemas = std::env::current_dir()?.join("schemas");
    for service in services(&schemas) {
        if service.name == "command-api" {
            // As in production: schemas are registered by the tool, not the API.
            let args = crate::schema::Args {
                dir: schemas.display().to_string(),
                registry: Some(REGISTRY_URL.into()),
                registry_token: DEV_REGISTRY_TOKEN.into(),
                topic_prefix: "sluice".into(),
                wait_secs: 0,
            };
            crate::schema::register(&args).await.context("register the schemas")?;
        }
        if running_pid(dir, service.name).is_some() {
            continue;
        }
        let program = bin_dir.join(service.name);
        anyhow::ensure!(program.exists(), "{} is missing: run `cargo build --workspace --bins`", program.display());
        let log = dir.join(format!("{}.log", service.name));
        let mut launch = Launch::new(program, &log).env("SLUICE_LISTEN", format!("127.0.0.1:{}", service.port));
        for (k, v) in &service.env {
            launch = launch.env(*k, v);
        }
        let pid = start(dir, service.name, &launch)?;
        wait_ready(service.name, service.port, pid, &log).await?;
    }
    println!("stack is up: commands on http://127.0.0.1:8080, queries on http://127.0.0.1:8082");
    println!("stop it with `make down` (or `sluice dev down`)");
    Ok(())
}

async fn ensure_database() -> anyhow::Result<()> {
    let url = postgres::url(PG_PORT, "postgres");
    let start = std::time::Instant::now();
    // The port opens before recovery ends ("the database system is starting up").
    let (client, conn) = loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok(c) => break c,
            Err(_) if start.elapsed() < START_DEADLINE => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => return Err(e).context("connect to the local PostgreSQL"),
        }
    };
    tokio::spawn(conn);
    let exists = client.query_opt("select 1 from pg_database where datname = $1", &[&DATABASE]).await?.is_some();
    if !exists {
        client.batch_execute(&format!("create database {DATABASE}")).await?;
    }
    Ok(())
}

async fn wait_ready(name: &str, port: u16, pid: u32, log: &Path) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let http = probe_client()?;
    let start = std::time::Instant::now();
    loop {
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(sluice_stack::pid_alive(pid), "{name} exited; see {}", log.display());
        anyhow::ensure!(
            start.elapsed() < START_DEADLINE,
            "{name} not ready after {START_DEADLINE:?}; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// For `/readyz` probes: a hung service must not hang `sluice dev`.
fn probe_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?)
}

async fn status(dir: &Path) -> anyhow::Result<()> {
    let http = probe_client()?;
    for name in INFRA {
        let state = running_pid(dir, name).map_or("stopped".to_string(), |p| format!("running (pid {p})"));
        println!("{name:<18} {state}");
    }
    for service in services(Path::new("schemas")) {
        let state = match running_pid(dir, service.name) {
            None => "stopped".to_string(),
            Some(pid) => {
                let url = format!("http://127.0.0.1:{}/readyz", service.port);
                let ready = http.get(&url).send().await.is_ok_and(|r| r.status().is_success());
                format!("running (pid {pid}), {} on :{}", if ready { "ready" } else { "NOT ready" }, service.port)
            }
        };
        println!("{:<18} {state}", service.name);
    }
    Ok(())
}

fn down(dir: &Path) -> anyhow::Result<()> {
    let services: Vec<&str> = services(Path::new("schemas")).iter().map(|s| s.name).collect();
    let order = services.into_iter().rev().chain(["tansu", "redis-server", "postgres"]);
    for name in order {
        if let Some(pid) = running_pid(dir, name) {
            // PostgreSQL: SIGINT is its fast shutdown; SIGTERM would wait for clients.
            let signal = if name == "postgres" { sluice_stack::SIGINT } else { sluice_stack::SIGTERM };
            sluice_stack::stop_pid_with(pid, signal, Duration::from_secs(20));
            println!("  stopped {name} (pid {pid})");
        }
        let _ = std::fs::remove_file(pid_file(dir, name));
    }
    println!("stack is down (data kept in {}; delete the folder to start afresh)", dir.display());
    Ok(())
}
