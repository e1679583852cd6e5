//! A per-target circuit breaker: after `threshold` consecutive failures the target is left out
//! for `cooldown`; then one probe goes through, and its result closes or reopens the breaker.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    /// `tollgate_circuit_breaker_state`: 0 closed, 1 open, 2 half-open.
    gauge: Option<metrics::Gauge>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("threshold", &self.threshold)
            .field("cooldown", &self.cooldown)
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        since: Instant,
    },
    /// One probe is out. If it never reports (its request was cancelled), another is let through
    /// after a further cooldown, so a lost probe cannot keep the target out for good.
    HalfOpen {
        since: Instant,
    },
}

// === impl Breaker ===

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
            gauge: None,
        }
    }

    /// Reports every change of state on `gauge` (0 closed, 1 open, 2 half-open).
    pub fn with_gauge(mut self, gauge: metrics::Gauge) -> Self {
        gauge.set(0.0);
        self.gauge = Some(gauge);
        self
    }

    /// Moves to `next`, telling the gauge when the kind of state changed.
    fn set(&self, state: &mut State, next: State) {
        let code = |s: &State| match s {
            State::Closed { .. } => 0.0,
            State::Open { .. } => 1.0,
            State::HalfOpen { .. } => 2.0,
        };
        if let Some(gauge) = &self.gauge
            && code(state) != code(&next)
        {
            gauge.set(code(&next));
        }
        *state = next;
    }

    /// May a request go to this target now? In the half-open state only the caller that gets
    /// `true` is the probe.
    pub fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { since } | State::HalfOpen { since } => {
                if now.duration_since(since) >= self.cooldown {
                    self.set(&mut state, State::HalfOpen { since: now });
                    true
                } else {
                    false
                }
            }
        }
    }

    pub fn record_success(&self) {
        let mut state = self.lock();
        if *state != (State::Closed { failures: 0 }) {
            self.set(&mut state, State::Closed { failures: 0 });
        }
    }

    pub fn record_failure(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        let next = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open { since: now },
        };
        self.set(&mut state, next);
    }

    /// How long until the breaker lets a probe through (zero when it would now).
    pub fn retry_in(&self) -> Duration {
        match *self.lock() {
            State::Closed { .. } => Duration::ZERO,
            State::Open { since } | State::HalfOpen { since } => {
                self.cooldown.saturating_sub(since.elapsed())
            }
        }
    }

    /// True while the target is being kept out (for logs and tests).
    pub fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always valid, even if a holder panicked: recover it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time: tokio's paused clock needs `test-util`, which would rebuild the HTTP stack.
    const COOLDOWN: Duration = Duration::from_millis(30);

    #[tokio::test]
    async fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let breaker = Breaker::new(3, COOLDOWN);
        breaker.record_failure();
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert!(breaker.try_acquire(), "a success reset the count");
        breaker.record_failure();
        assert!(breaker.is_open());
        assert!(!breaker.try_acquire());

        tokio::time::sleep(COOLDOWN).await;
        assert!(breaker.try_acquire(), "one probe after the cooldown");
        assert!(!breaker.try_acquire(), "only one");
        breaker.record_failure();
        assert!(!breaker.try_acquire(), "a failed probe reopens it");

        tokio::time::sleep(COOLDOWN).await;
        assert!(breaker.try_acquire());
        breaker.record_success();
        assert!(
            breaker.try_acquire() && breaker.try_acquire(),
            "closed again"
        );
    }

    #[tokio::test]
    async fn a_lost_probe_does_not_keep_the_target_out() {
        let breaker = Breaker::new(1, COOLDOWN);
        breaker.record_failure();
        tokio::time::sleep(COOLDOWN).await;
        assert!(breaker.try_acquire());
        // The probe never reports back.
        tokio::time::sleep(COOLDOWN).await;
        assert!(breaker.try_acquire());
    }
}
