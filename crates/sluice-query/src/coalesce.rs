//! Concurrent refreshes of one key share one fetch.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

type Flight<T> = (u64, Shared<BoxFuture<'static, T>>);

pub struct Coalescer<T: Clone> {
    in_flight: Mutex<HashMap<String, Flight<T>>>,
    next: AtomicU64,
}

impl<T: Clone> Default for Coalescer<T> {
    fn default() -> Self {
        Self { in_flight: Mutex::default(), next: AtomicU64::new(0) }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    /// Runs `work` for `key`, or joins the run already in flight for it.
    /// Returns its result and whether it joined one.
    pub async fn run(&self, key: &str, work: impl FnOnce() -> BoxFuture<'static, T>) -> (T, bool) {
        let (id, flight, joined) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(key) {
                Some((id, flight)) => (*id, flight.clone(), true),
                None => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    let flight = work().shared();
                    in_flight.insert(key.to_string(), (id, flight.clone()));
                    (id, flight, false)
                }
            }
        };
        let value = flight.await;
        // Whoever finishes first removes it (the one that started it may
        // have been cancelled by its client going away).
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if in_flight.get(key).is_some_and(|(current, _)| *current == id) {
            in_flight.remove(key);
        }
        (value, joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_runs_of_a_key_share_one_and_later_runs_start_anew() {
        let coalescer = Arc::new(Coalescer::<usize>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let run = |key: &'static str| {
            let (coalescer, calls, mut wait) = (coalescer.clone(), calls.clone(), wait.clone());
            tokio::spawn(async move {
                coalescer
                    .run(key, move || {
                        async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            let _ = wait.wait_for(|go| *go).await;
                            n
                        }
                        .boxed()
                    })
                    .await
            })
        };
        let runs: Vec<_> = (0..5).map(|_| run("a")).collect();
        let other = run("b");
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        release.send(true).expect("release");
        let mut joined = 0;
        for r in runs {
            let (_, j) = r.await.expect("run");
            joined += usize::from(j);
        }
        other.await.expect("other");
        assert_eq!((calls.load(Ordering::SeqCst), joined), (2, 4));
        let (n, joined) = run("a").await.expect("again");
        assert_eq!((n, joined), (3, false));
    }
}
