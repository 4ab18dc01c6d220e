//! The steady write load: CMS commands at a fixed rate against the command
//! API, whatever is down, with a ledger of what was accepted.

use serde_json::{Value, json};
use sluice_testkit::Dice;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

use crate::common::TOKEN;

/// What the load sent and what it was answered.
#[derive(Debug, Default)]
pub struct Ledger {
    /// 202 Accepted.
    pub accepted: u64,
    /// 4xx: refused by a business rule (publishing an archived article...).
    pub refused: u64,
    /// Still no answer (or a 5xx) after every retry: the outcome is unknown
    /// to the client, so it counts as neither.
    pub unanswered: u64,
    /// Attempts answered with nothing or a 5xx (the command API or its
    /// database down), each sent again with the same Idempotency-Key.
    pub retried: u64,
    /// Per (aggregate type, id), the highest version answered 202.
    pub versions: HashMap<(String, String), i64>,
    /// Per (aggregate type, id), how many commands were accepted: each
    /// accepted command adds exactly one version.
    pub commands: HashMap<(String, String), i64>,
    articles: Vec<String>,
    authors: Vec<String>,
}

const TAGS: [&str; 4] = ["rust", "cqrs", "kafka", "postgres"];

/// How many commands may wait for an answer at once (a stalled command API
/// does not make the load burst when it comes back).
const IN_FLIGHT: usize = 8;

/// A command without an answer is sent again, with the same key, this often
/// and this many times (the longest outage is PostgreSQL's, about 6 s).
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const ATTEMPTS: u32 = 120;

/// Sends commands at `per_second` until `stop` turns true; the ledger of
/// every answer. Which command and on which aggregate comes from `seed`.
pub async fn run(command_api: String, seed: u64, per_second: u64, mut stop: watch::Receiver<bool>) -> Ledger {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut dice = Dice::new(seed);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let (path, body, kind) = next_command(&ledger.lock().expect("ledger"), &mut dice, seed, n);
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (http, url, ledger) = (http.clone(), format!("{command_api}{path}"), ledger.clone());
        let key = format!("chaos-{seed}-{n}");
        tokio::spawn(async move {
            let outcome = send(&http, &url, &key, &body, &ledger).await;
            {
                let mut ledger = ledger.lock().expect("ledger");
                match outcome {
                    Outcome::Accepted(id, version) => ledger.record(kind, id, version),
                    Outcome::Refused => ledger.refused += 1,
                    Outcome::Unanswered => ledger.unanswered += 1,
                }
            }
            // The ledger's last clone goes before the slot is given back.
            drop(ledger);
            drop(permit);
        });
    }
    // Every command sent has its answer before the ledger is read.
    let _all = slots.acquire_many(IN_FLIGHT as u32).await.expect("semaphore");
    Arc::try_unwrap(ledger).expect("no command in flight").into_inner().expect("ledger")
}

enum Outcome {
    Accepted(String, i64),
    Refused,
    Unanswered,
}

/// Sends one command until it is answered: a command whose answer was lost
/// (its transaction may have committed) is sent again with the same
/// Idempotency-Key, which must replay the first answer, not run it twice.
async fn send(http: &reqwest::Client, url: &str, key: &str, body: &Value, ledger: &Mutex<Ledger>) -> Outcome {
    for _ in 0..ATTEMPTS {
        let answer = http.post(url).bearer_auth(TOKEN).header("idempotency-key", key).json(body).send().await;
        match answer {
            Ok(r) if r.status() == 202 => {
                let accepted = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|a| Some((a["id"].as_str()?.to_string(), a["version"].as_i64()?)));
                if let Some((id, version)) = accepted {
                    return Outcome::Accepted(id, version);
                }
            }
            Ok(r) if r.status().is_client_error() => return Outcome::Refused,
            _ => {}
        }
        ledger.lock().expect("ledger").retried += 1;
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    Outcome::Unanswered
}

impl Ledger {
    fn record(&mut self, kind: &'static str, id: String, version: i64) {
        self.accepted += 1;
        *self.commands.entry((kind.to_string(), id.clone())).or_default() += 1;
        if version == 1 {
            match kind {
                "author" => self.authors.push(id.clone()),
                _ => self.articles.push(id.clone()),
            }
        }
        let highest = self.versions.entry((kind.to_string(), id)).or_insert(version);
        *highest = (*highest).max(version);
    }
}

/// The next command: (path, body, aggregate type). Mostly article life
/// cycles, some author renames (which fan out to their articles' views).
fn next_command(ledger: &Ledger, dice: &mut Dice, seed: u64, n: u64) -> (String, Value, &'static str) {
    let pick = |dice: &mut Dice, ids: &[String]| ids[dice.roll(ids.len() as u64) as usize].clone();
    let roll = dice.roll(100);
    if ledger.authors.len() < 3 || roll < 4 {
        return ("/authors".into(), json!({"name": format!("Author {seed}-{n}")}), "author");
    }
    if ledger.articles.is_empty() || roll < 35 {
        let author = pick(dice, &ledger.authors);
        let tag = TAGS[dice.roll(TAGS.len() as u64) as usize];
        let body =
            json!({"title": format!("Chaos {seed}-{n}"), "body": "x".repeat(200), "author_id": author, "tags": [tag]});
        return ("/articles".into(), body, "article");
    }
    if roll < 92 {
        let article = pick(dice, &ledger.articles);
        let (action, body) = match roll {
            35..55 => ("edit", json!({"title": format!("Chaos {seed}-{n} (edited)")})),
            55..70 => ("publish", json!({})),
            70..78 => ("unpublish", json!({})),
            78..85 => ("archive", json!({})),
            _ => ("restore", json!({})),
        };
        return (format!("/articles/{article}/{action}"), body, "article");
    }
    let author = pick(dice, &ledger.authors);
    (format!("/authors/{author}/rename"), json!({"name": format!("Author {seed}-{n}")}), "author")
}
