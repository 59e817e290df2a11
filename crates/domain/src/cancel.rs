//! A runtime-agnostic cancellation signal: the worker runtime raises it (shutdown, timeout,
//! lease lost) and a handler polls it or awaits it. Built on `std` alone so that plugins
//! need no async runtime of ours.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

/// A cloneable flag that, once raised, stays raised and wakes every waiter.
#[derive(Debug, Clone, Default)]
pub struct CancelSignal {
    inner: Arc<Inner>,
}

impl CancelSignal {
    /// A signal not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the signal and wakes every task awaiting [`CancelSignal::cancelled`].
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *lock(&self.inner.wakers));
        for w in wakers {
            w.wake();
        }
    }

    /// True once raised.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes when the signal is raised (at once if it already was).
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled { signal: self }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned waker list is still a valid list.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The future returned by [`CancelSignal::cancelled`].
#[derive(Debug)]
pub struct Cancelled<'a> {
    signal: &'a CancelSignal,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_cancelled() {
            return Poll::Ready(());
        }
        let mut wakers = lock(&self.signal.inner.wakers);
        // Re-check under the lock: cancel() takes the list under the same lock.
        if self.signal.is_cancelled() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pending_until_cancelled_then_woken_and_ready() {
        let signal = CancelSignal::new();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = signal.cancelled();
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        let clone = signal.clone();
        clone.cancel();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken exactly once");
        assert!(signal.is_cancelled());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_ready());
        assert!(Pin::new(&mut signal.cancelled()).poll(&mut cx).is_ready());
    }
}
