//! Overload protection with OpenShift's `maxrunning` / `maxinqueue` / `maxwaitinqueue`
//! semantics: at most `max_running` requests of a class run at once, at most `max_in_queue`
//! wait (each at most `max_wait`), the rest get 429 `TOOMANYREQUESTS` with `Retry-After`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one class (reads or writes). `max_running == 0` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_running: usize,
    pub max_in_queue: usize,
    pub max_wait: Duration,
}

/// One class's limiter.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    running: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// Held for the duration of a request; `None` inside when unlimited.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            running: Arc::new(Semaphore::new(limits.max_running.max(1))),
            queued: AtomicUsize::new(0),
        }
    }

    /// A slot, or `None` when the request must be turned away.
    pub async fn enter(&self) -> Option<Slot> {
        if self.limits.max_running == 0 {
            return Some(Slot(None));
        }
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Some(Slot(Some(p)));
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.limits.max_in_queue {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let got =
            tokio::time::timeout(self.limits.max_wait, self.running.clone().acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Some(Slot(Some(p))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn running_queue_and_refusal() {
        let l = Arc::new(Limiter::new(Limits {
            max_running: 1,
            max_in_queue: 1,
            max_wait: Duration::from_millis(200),
        }));
        let first = l.enter().await.expect("runs");
        let l2 = l.clone();
        let queued = tokio::spawn(async move { l2.enter().await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(l.enter().await.is_none(), "queue full");
        drop(first);
        assert!(queued.await.unwrap(), "the queued request gets the slot");
        let unlimited = Limiter::new(Limits::default());
        assert!(unlimited.enter().await.is_some());
    }

    #[tokio::test]
    async fn waiting_is_bounded() {
        let l = Limiter::new(Limits {
            max_running: 1,
            max_in_queue: 5,
            max_wait: Duration::from_millis(30),
        });
        let _held = l.enter().await.unwrap();
        assert!(l.enter().await.is_none());
    }
}
