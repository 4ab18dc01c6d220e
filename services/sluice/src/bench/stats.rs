use serde_json::{Value, json};
use std::time::Duration;

/// The sample at quantile `q` of `sorted` (nearest rank; zero when empty).
fn at(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() { Duration::ZERO } else { sorted[((sorted.len() - 1) as f64 * q).round() as usize] }
}

/// p50 and p99 of `samples` (sorted in place).
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (at(samples, 0.50), at(samples, 0.99))
}

/// p50 / p95 / p99 / max of a set of latencies.
pub struct Quantiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub samples: usize,
}

impl Quantiles {
    pub fn of(mut samples: Vec<Duration>) -> Quantiles {
        samples.sort();
        let q = |q| at(&samples, q);
        Quantiles { p50: q(0.50), p95: q(0.95), p99: q(0.99), max: q(1.0), samples: samples.len() }
    }

    /// In milliseconds, to a tenth, for `bench/results.json`.
    pub fn json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        json!({"p50": ms(self.p50), "p95": ms(self.p95), "p99": ms(self.p99), "max": ms(self.max), "samples": self.samples})
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
