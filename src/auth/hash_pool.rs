//! Dedicated, low-priority threads for password hashing.
//!
//! Argon2 is pure CPU. On tokio's blocking pool it competes with the proxy
//! threads as an equal, so a login storm doubles proxied latency on a small
//! machine. These threads run at a lower scheduling priority (a higher nice
//! value): hashing still gets every idle cycle, but yields to proxying.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads fed through one queue, started on first use:
/// threads started before Pingora daemonises (forks) would not survive the fork.
pub(crate) struct HashPool {
    threads: usize,
    nice: i32,
    queue: std::sync::OnceLock<Option<SyncSender<Job>>>,
}

impl HashPool {
    /// A pool of `threads` threads at nice `nice` (0 leaves the priority alone).
    pub(crate) fn new(threads: usize, nice: i32) -> HashPool {
        HashPool {
            threads,
            nice,
            queue: std::sync::OnceLock::new(),
        }
    }

    fn queue(&self) -> Option<&SyncSender<Job>> {
        self.queue
            .get_or_init(|| match start(self.threads, self.nice) {
                Ok(q) => Some(q),
                Err(e) => {
                    log::error!("cannot start password hashing threads: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// Run `work` on a pool thread and wait for its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        let queue = self.queue().ok_or(PoolError::NotStarted)?;
        queue.try_send(job).map_err(|_| PoolError::Full)?;
        // The job drops its sender unanswered only when `work` panicked.
        rx.await.map_err(|_| PoolError::Panicked)
    }
}

/// Why a job gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolError {
    /// The threads could not be started (logged when that happened).
    #[error("password hashing threads are not running")]
    NotStarted,
    /// More jobs than the caller's admission allows: a bug in the caller.
    #[error("password hashing queue is full")]
    Full,
    /// The job panicked; its thread carries on with the next job.
    #[error("password hashing job panicked")]
    Panicked,
}

/// Start the threads; the queue they read.
fn start(threads: usize, nice: i32) -> std::io::Result<SyncSender<Job>> {
    // The caller admits at most `threads` jobs at a time, so this never fills.
    let (queue, rx) = sync_channel::<Job>(threads.max(1) * 4);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("authgate-hash-{i}"))
            .spawn(move || worker(rx, nice))?;
    }
    Ok(queue)
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>, nice: i32) {
    if nice != 0 {
        lower_priority(nice);
    }
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job must not take its thread (and a slot of the pool)
            // with it. The panic hook has printed it; the job's caller sees its
            // answer channel closed and answers with an internal error.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

/// On Linux, nice values are per thread: this changes only the calling thread.
fn lower_priority(nice: i32) {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if rc != 0 {
        log::warn!(
            "cannot set hashing thread priority to nice {nice}: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_leaves_the_pool_working() {
        let pool = HashPool::new(1, 0);
        assert_eq!(pool.run(|| 1).await, Ok(1));
        let panicked = pool.run(|| -> u32 { panic!("a job that panics") }).await;
        assert_eq!(panicked, Err(PoolError::Panicked));
        // Its only thread survived: the next jobs run.
        for i in 0..3 {
            assert_eq!(pool.run(move || i * 2).await, Ok(i * 2));
        }
    }
}
