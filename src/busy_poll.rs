//! Opt-in busy polling (`server.busy_poll`): after a request starts or ends, the scheduler keeps
//! polling the network for a while instead of going to sleep.
//!
//! Why: a request through the gateway is four hops (client → gateway → upstream → gateway →
//! client). When the gateway's thread sleeps between them, each packet that arrives must wake
//! it, and on a virtual machine a wake-up across CPUs costs tens of microseconds: at concurrency
//! 1 that was most of the latency the gateway added. A thread that is still polling when the
//! upstream's answer or the client's next request arrives picks it up without being woken.
//!
//! The cost is CPU: up to `busy_poll` of spinning after every request, so at a few thousand
//! requests per second the thread is always busy. Only worth it when the gateway has a core to
//! itself; under a CPU quota (containers) the spinning would be throttled like real work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Held by the front-door middleware, which reports activity; dropping the last one (the
/// router going away) ends the polling task.
pub struct BusyPoll {
    shared: Arc<Shared>,
}

struct Shared {
    window_us: u64,
    epoch: Instant,
    /// Microseconds since `epoch` of the last request start or end.
    last_activity: AtomicU64,
    activity: Notify,
    closed: AtomicBool,
}

impl BusyPoll {
    /// Starts the polling task on the current runtime; `None` when `window` is zero (off).
    pub fn start(window: Duration) -> Option<Arc<Self>> {
        if window.is_zero() {
            return None;
        }
        let shared = Arc::new(Shared {
            window_us: u64::try_from(window.as_micros()).unwrap_or(u64::MAX),
            epoch: Instant::now(),
            last_activity: AtomicU64::new(0),
            activity: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(poll_while_busy(shared.clone()));
        Some(Arc::new(Self { shared }))
    }

    /// A request started or ended: keep polling for another window.
    pub fn touch(&self) {
        let shared = &self.shared;
        shared
            .last_activity
            .store(shared.now_us(), Ordering::Relaxed);
        shared.activity.notify_one();
    }
}

impl Drop for BusyPoll {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.activity.notify_one();
    }
}

impl Shared {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn busy(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
            && self
                .now_us()
                .saturating_sub(self.last_activity.load(Ordering::Relaxed))
                < self.window_us
    }
}

/// Sleeps until there is activity, then yields in a loop until a window passes without any.
/// Each yield makes the scheduler poll the network with a zero timeout before running the task
/// again, so a ready socket is served within a microsecond or so.
async fn poll_while_busy(shared: Arc<Shared>) {
    while !shared.closed.load(Ordering::Relaxed) {
        shared.activity.notified().await;
        while shared.busy() {
            tokio::task::yield_now().await;
        }
    }
}
