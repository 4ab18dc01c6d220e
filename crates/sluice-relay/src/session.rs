//! The life of one replication session. It ends on shutdown, when the
//! connection holding the relay lock ends (another relay may now take over),
//! or when a delivery fails; every wait of the session (planning, the
//! snapshot, acknowledgements, a full producer queue) gives up then, so no
//! wait outlives the session and SIGTERM is obeyed at any stage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LOCK_LOST: &str = "lost the session connection that holds the relay lock";

#[derive(Clone)]
pub(crate) struct Session {
    pub token: CancellationToken,
    lock_lost: Arc<AtomicBool>,
}

impl Session {
    pub fn new(shutdown: &CancellationToken) -> Self {
        Self { token: shutdown.child_token(), lock_lost: Arc::default() }
    }

    /// Drives the connection that holds the relay lock; when it ends, so
    /// does the session. Abort the handle to close the connection.
    pub fn hold<C>(&self, connection: C) -> JoinHandle<()>
    where
        C: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let session = self.clone();
        tokio::spawn(async move {
            let result = connection.await;
            tracing::error!(error = ?result.err(), "{LOCK_LOST}; stopping this session");
            session.lock_lost.store(true, Ordering::Release);
            session.token.cancel();
        })
    }

    pub fn lock_lost(&self) -> bool {
        self.lock_lost.load(Ordering::Acquire)
    }

    /// Why the session ended: an error when the lock was lost, Ok otherwise
    /// (shutdown, or a failure reported by whoever ended it).
    pub fn end(&self) -> anyhow::Result<()> {
        if self.lock_lost() { Err(anyhow::anyhow!(LOCK_LOST)) } else { Ok(()) }
    }

    /// Runs `work` until it finishes or the session ends.
    pub async fn race<T>(&self, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => {
                self.end()?;
                anyhow::bail!("{}", crate::publisher::SESSION_ENDED)
            }
            r = work => r,
        }
    }
}
