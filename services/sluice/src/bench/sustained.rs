//! The highest command rate the whole system sustains: every command is
//! accepted at the offered rate, every one becomes visible in both read
//! models, and the lag does not grow while the rate is held (the commands of
//! the hold's last quarter are not much slower to show up than those of its
//! first). Found by doubling from a low rate, then bisecting.

use super::e2e::{E2eArgs, Samples, commands_at};
use super::report;
use serde_json::{Value, json};
use std::time::Duration;

const FIRST_RATE: u64 = 250;
const HIGHEST_RATE: u64 = 8000;
/// Bisection steps after the first failing rate.
const BISECTIONS: usize = 3;

/// One rate held.
struct Step {
    rate: u64,
    achieved: f64,
    accepted: usize,
    offered: usize,
    /// Median 202 -> visible of the first and the last quarter, Redis then
    /// PostgreSQL, milliseconds.
    quarters: [(f64, f64); 2],
    seen: [usize; 2],
    sustained: bool,
}

pub(super) struct Found {
    steps: Vec<Step>,
    seconds: u64,
}

pub(super) async fn search(args: &E2eArgs) -> anyhow::Result<Found> {
    let seconds = args.find_max_seconds;
    println!("searching for the highest sustained rate, holding each for {seconds} s");
    let mut steps = Vec::new();
    let (mut good, mut bad) = (0, None);
    let mut rate = FIRST_RATE;
    while bad.is_none() && rate <= HIGHEST_RATE {
        let step = hold(args, rate, seconds).await?;
        if step.sustained {
            good = rate
        } else {
            bad = Some(rate)
        }
        steps.push(step);
        rate *= 2;
    }
    if let Some(mut high) = bad {
        for _ in 0..BISECTIONS {
            let middle = (good + high) / 2;
            if middle <= good || middle >= high {
                break;
            }
            let step = hold(args, middle, seconds).await?;
            if step.sustained {
                good = middle
            } else {
                high = middle
            }
            steps.push(step);
        }
    }
    let found = Found { steps, seconds };
    println!("  highest sustained: {} commands/s", found.highest());
    Ok(found)
}

async fn hold(args: &E2eArgs, rate: u64, seconds: u64) -> anyhow::Result<Step> {
    let measured = commands_at(args, rate, seconds).await?;
    let offered = (rate * seconds) as usize;
    let quarters = [quarters(&measured.redis), quarters(&measured.postgres)];
    let seen = [measured.redis.len(), measured.postgres.len()];
    let growing = quarters.iter().any(|&(first, last)| last > 1.5 * first + 25.0);
    let sustained = measured.accepted == offered
        && measured.achieved >= 0.98 * rate as f64
        && seen.iter().all(|&n| n == measured.accepted)
        && !growing;
    println!(
        "  {rate:>5}/s: {:.0}/s achieved, {} of {offered} accepted, median visible first/last quarter: Redis {:.0}/{:.0} ms, PostgreSQL {:.0}/{:.0} ms -> {}",
        measured.achieved,
        measured.accepted,
        quarters[0].0,
        quarters[0].1,
        quarters[1].0,
        quarters[1].1,
        if sustained { "sustained" } else { "not sustained" }
    );
    Ok(Step { rate, achieved: measured.achieved, accepted: measured.accepted, offered, quarters, seen, sustained })
}

/// Median latency, ms, of the commands answered in the first and in the
/// last quarter of the hold.
fn quarters(samples: &Samples) -> (f64, f64) {
    let mut by_time = samples.clone();
    by_time.sort_by_key(|s| s.0);
    let quarter = by_time.len() / 4;
    if quarter == 0 {
        return (0.0, 0.0);
    }
    let median = |part: &[(std::time::Instant, Duration)]| {
        let mut ms: Vec<f64> = part.iter().map(|s| s.1.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    (median(&by_time[..quarter]), median(&by_time[by_time.len() - quarter..]))
}

impl Found {
    pub fn highest(&self) -> u64 {
        self.steps.iter().filter(|s| s.sustained).map(|s| s.rate).max().unwrap_or(0)
    }

    /// The summary line; `sluice bench summary` sets it beside the slowest
    /// raw stage of the results file.
    pub fn row(&self) -> Value {
        report::beside_slowest_stage("highest sustained end-to-end rate (commands/s)", self.highest() as f64)
    }

    pub fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "rate": s.rate,
                    "achieved": s.achieved.round(),
                    "accepted": s.accepted,
                    "offered": s.offered,
                    "visible_redis": s.seen[0],
                    "visible_postgres": s.seen[1],
                    "median_ms_first_last_quarter_redis": [s.quarters[0].0, s.quarters[0].1],
                    "median_ms_first_last_quarter_postgres": [s.quarters[1].0, s.quarters[1].1],
                    "sustained": s.sustained,
                })
            })
            .collect();
        json!({"highest": self.highest(), "hold_seconds": self.seconds, "steps": steps})
    }
}

#[cfg(test)]
mod tests {
    use super::quarters;
    use std::time::{Duration, Instant};

    fn samples(latency_ms: impl Fn(u64) -> u64) -> super::Samples {
        let start = Instant::now();
        // Out of answer order, as the watchers see them.
        (0..100u64)
            .rev()
            .map(|i| (start + Duration::from_millis(i * 10), Duration::from_millis(latency_ms(i))))
            .collect()
    }

    #[test]
    fn a_steady_lag_has_equal_quarters_and_a_growing_one_does_not() {
        assert_eq!(quarters(&samples(|_| 40)), (40.0, 40.0));
        let (first, last) = quarters(&samples(|i| 10 + i * 20));
        assert!(first < 300.0 && last > 1500.0, "{first} / {last}");
        assert_eq!(quarters(&samples(|_| 1)[..3].to_vec()), (0.0, 0.0));
    }
}
