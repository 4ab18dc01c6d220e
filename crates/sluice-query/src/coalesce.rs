//! Concurrent refreshes of one key share one run. The run is a task of its
//! own: it finishes (and leaves the map) even if every caller went away, so
//! that no half-done refresh waits, paused, for the next caller of its key.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Flight<T> = (u64, Shared<BoxFuture<'static, Option<T>>>);

pub struct Coalescer<T: Clone> {
    in_flight: Arc<Mutex<HashMap<String, Flight<T>>>>,
    next: AtomicU64,
}

impl<T: Clone> Default for Coalescer<T> {
    fn default() -> Self {
        Self { in_flight: Arc::default(), next: AtomicU64::new(0) }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    /// Runs `work` for `key` as a task, or joins the run in flight for it.
    /// Returns its result (`None` if the task panicked) and whether it joined.
    pub async fn run(&self, key: &str, work: impl FnOnce() -> BoxFuture<'static, T>) -> (Option<T>, bool) {
        let (flight, joined) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(key) {
                Some((_, flight)) => (flight.clone(), true),
                None => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    let (map, owned_key, work) = (self.in_flight.clone(), key.to_string(), work());
                    let task = tokio::spawn(async move {
                        let value = work.await;
                        let mut in_flight = map.lock().unwrap_or_else(|e| e.into_inner());
                        if in_flight.get(&owned_key).is_some_and(|(current, _)| *current == id) {
                            in_flight.remove(&owned_key);
                        }
                        value
                    });
                    let flight = async move { task.await.ok() }.boxed().shared();
                    in_flight.insert(key.to_string(), (id, flight.clone()));
                    (flight, false)
                }
            }
        };
        (flight.await, joined)
    }

    /// Runs in flight now.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!((n, joined), (Some(3), false));
    }

    #[tokio::test]
    async fn a_run_whose_callers_all_went_away_finishes_and_leaves() {
        let coalescer = Arc::new(Coalescer::<usize>::default());
        let (release, wait) = tokio::sync::watch::channel(false);
        let finished = Arc::new(AtomicUsize::new(0));
        let caller = {
            let (coalescer, finished, mut wait) = (coalescer.clone(), finished.clone(), wait.clone());
            tokio::spawn(async move {
                coalescer
                    .run("k", move || {
                        async move {
                            let _ = wait.wait_for(|go| *go).await;
                            finished.fetch_add(1, Ordering::SeqCst);
                            1
                        }
                        .boxed()
                    })
                    .await
            })
        };
        while coalescer.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        // The client went away (axum drops the handler's future).
        caller.abort();
        let _ = caller.await;
        release.send(true).expect("release");
        while coalescer.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(finished.load(Ordering::SeqCst), 1, "the abandoned run did not finish");
        let (n, joined) = coalescer.run("k", || async { 2 }.boxed()).await;
        assert_eq!((n, joined), (Some(2), false), "a later call joined the old run");
    }
}
