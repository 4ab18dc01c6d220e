//! Chaos: under a steady write load, the relay, each projector, the query
//! API, the registry, the broker and Redis are killed with SIGKILL at random
//! moments and started again, and PostgreSQL crashes (an immediate stop)
//! and comes back. At the end, with everything up: every accepted command
//! is in the source, every version the source ever had is on the topics,
//! both read models hold exactly the source's versions and contents, no
//! author count is off (an effect applied twice), no dead letter.
//!
//! `make test` injects one fault of each kind; `make chaos` sets
//! CHAOS_FAULTS=56. CHAOS_SEED repeats a run (the seed is printed).

#[path = "../common/mod.rs"]
mod common;
mod load;
mod stack;
mod summary;
mod verify;

use sluice_testkit::Dice;
use stack::{Fault, Stack};
use std::time::{Duration, Instant};

/// Commands per second of the write load.
const RATE: u64 = 25;

fn setting(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_applied_twice_while_parts_crash() {
    let faults = setting("CHAOS_FAULTS").unwrap_or(Fault::ALL.len() as u64) as usize;
    let seed = setting("CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64
    });
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} repeats this run), {faults} faults");
    let mut stack = Stack::start().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(load::run(stack.command.base_url(), seed, RATE, stopped));

    let mut dice = Dice::new(seed.rotate_left(17));
    let mut recoveries = Vec::new();
    let mut round = Vec::new();
    let start = Instant::now();
    for n in 1..=faults {
        // Each kind once per round, in a random order.
        if round.is_empty() {
            round = Fault::ALL.to_vec();
            for i in (1..round.len()).rev() {
                round.swap(i, dice.roll(i as u64 + 1) as usize);
            }
        }
        let fault = round.pop().expect("a fault");
        tokio::time::sleep(Duration::from_millis(dice.roll(2_000))).await;
        let down = match fault {
            Fault::Postgres => 2_000 + dice.roll(3_000),
            _ => dice.roll(2_000),
        };
        eprintln!("chaos: fault {n}/{faults}: {} for {down} ms", fault.name());
        stack.inject(fault, Duration::from_millis(down)).await;
        recoveries.push((fault, stack.recovered().await));
    }
    stop.send(true).expect("the load runs");
    let ledger = load.await.expect("the load task");
    let found = verify::check(&stack, &ledger).await;
    let table = summary::render(seed, start.elapsed(), &ledger, &recoveries, &found);
    println!("{table}");
    if let Ok(path) = std::env::var("CHAOS_SUMMARY") {
        std::fs::write(&path, &table).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }
    assert!(ledger.accepted > faults as u64, "the load hardly ran:\n{table}");
    assert_eq!(recoveries.len(), faults);
    assert_eq!(ledger.unanswered, 0, "commands never answered after 120 attempts each:\n{table}");
    assert_eq!(found.lost(), 0, "records lost:\n{table}\n{found:#?}");
    assert_eq!(found.duplicate_effects(), 0, "effects applied twice:\n{table}\n{found:#?}");
    assert_eq!(found.foreign_versions(), 0, "read models hold what the source never had:\n{table}\n{found:#?}");
    assert_eq!(found.dead_letters, 0, "dead letters:\n{table}");
}
