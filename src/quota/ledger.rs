//! In-memory counters with reservations: what admission checks against.
//!
//! Every (tenant) and (tenant, subject) has a counter per window (minute, day, month) holding
//! what was used and what is reserved by requests in flight. Admission reserves the estimate on
//! every applicable counter at once, under one lock, and only if every limit still holds; the
//! answer settles the reservation to the actual count. So concurrent requests can overshoot a
//! limit by at most the difference between their estimates and their actual usage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::window::Window;
use crate::clock::Timestamp;
use crate::metering::Tally;
use crate::store::Limits;

/// Requests, tokens and micro-dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub requests: i64,
    pub tokens: i64,
    pub cost_micro_usd: i64,
}

/// What the counters count of a tally: its requests, all its tokens (cached and reasoning
/// included), its cost.
impl From<Tally> for Amount {
    fn from(tally: Tally) -> Self {
        Self {
            requests: tally.requests,
            tokens: tally.total_tokens,
            cost_micro_usd: tally.cost_micro_usd,
        }
    }
}

impl Amount {
    /// A reservation too large to count: no limit below `i64::MAX` admits it.
    pub const UNCOUNTABLE: Amount = Amount {
        requests: 1,
        tokens: i64::MAX,
        cost_micro_usd: i64::MAX,
    };
}

/// Whose counter: a tenant's or one of its users'.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: Arc<str>,
    pub subject: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    window: Window,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counter {
    /// Start of the period these numbers belong to.
    #[serde(skip)]
    pub period: i64,
    pub used: Amount,
    pub reserved: Amount,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    TokensPerDay,
    TokensPerMonth,
    CostPerMonth,
}

impl LimitKind {
    pub fn window(self) -> Window {
        match self {
            Self::RequestsPerMinute | Self::TokensPerMinute => Window::Minute,
            Self::TokensPerDay => Window::Day,
            Self::TokensPerMonth | Self::CostPerMonth => Window::Month,
        }
    }

    /// The configured limit of this kind, if any.
    pub fn limit(self, limits: &Limits) -> Option<i64> {
        match self {
            Self::RequestsPerMinute => limits.requests_per_minute,
            Self::TokensPerMinute => limits.tokens_per_minute,
            Self::TokensPerDay => limits.tokens_per_day,
            Self::TokensPerMonth => limits.tokens_per_month,
            Self::CostPerMonth => limits.cost_microusd_per_month,
        }
    }

    /// The part of an amount this limit counts.
    pub fn of(self, amount: &Amount) -> i64 {
        match self {
            Self::RequestsPerMinute => amount.requests,
            Self::TokensPerMinute | Self::TokensPerDay | Self::TokensPerMonth => amount.tokens,
            Self::CostPerMonth => amount.cost_micro_usd,
        }
    }

    /// The limit's name in the API and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::TokensPerDay => "tokens_per_day",
            Self::TokensPerMonth => "tokens_per_month",
            Self::CostPerMonth => "cost_usd_per_month",
        }
    }

    pub const ALL: [LimitKind; 5] = [
        Self::RequestsPerMinute,
        Self::TokensPerMinute,
        Self::TokensPerDay,
        Self::TokensPerMonth,
        Self::CostPerMonth,
    ];
}

/// A refusal: which limit of whose, and when it resets.
#[derive(Debug, Clone)]
pub struct Exceeded {
    pub kind: LimitKind,
    pub scope: Scope,
    pub limit: i64,
    pub used: i64,
    pub resets_at: Timestamp,
}

/// What a request holds on the counters until it settles.
#[derive(Debug)]
pub struct Reservation {
    entries: Vec<(Key, i64)>,
    amount: Amount,
}

impl Reservation {
    pub fn amount(&self) -> Amount {
        self.amount
    }
}

/// The counters by scope and window. foldhash, not SipHash: every request looks up ten of them
/// (five limits, user and tenant), and their keys (tenant, subject) are names of existing users
/// and tenants, not something a caller can choose to collide.
type Counters = HashMap<Key, Counter, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct Ledger {
    counters: Mutex<Counters>,
}

impl Ledger {
    /// The counters. Every update is a few integer additions that cannot panic halfway, so a
    /// poisoned lock still guards consistent numbers.
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves `estimate` on every window of every scope if, for each scope's limits, used +
    /// reserved + estimate stays within the limit; otherwise reserves nothing.
    pub fn reserve(
        &self,
        scopes: &[(Scope, Limits)],
        estimate: Amount,
        now: Timestamp,
    ) -> Result<Reservation, Exceeded> {
        let mut counters = self.lock();
        for (scope, limits) in scopes {
            for kind in LimitKind::ALL {
                let Some(limit) = kind.limit(limits) else {
                    continue;
                };
                let window = kind.window();
                let counter = current(&mut counters, scope, window, now);
                // Saturating: the estimate comes from client numbers, and a sum that wrapped
                // would admit anything.
                let taken = kind
                    .of(&counter.used)
                    .saturating_add(kind.of(&counter.reserved));
                if taken.saturating_add(kind.of(&estimate)) > limit {
                    return Err(Exceeded {
                        kind,
                        scope: scope.clone(),
                        limit,
                        used: taken,
                        resets_at: window.end(now),
                    });
                }
            }
        }
        let mut entries = Vec::with_capacity(scopes.len() * Window::ALL.len());
        for (scope, _) in scopes {
            for window in Window::ALL {
                let counter = current(&mut counters, scope, window, now);
                add(&mut counter.reserved, &estimate, 1);
                let period = counter.period;
                entries.push((
                    Key {
                        scope: scope.clone(),
                        window,
                    },
                    period,
                ));
            }
        }
        Ok(Reservation {
            entries,
            amount: estimate,
        })
    }

    /// Turns a reservation into actual usage. A period that ended meanwhile keeps nothing.
    pub fn settle(&self, reservation: Reservation, actual: Amount) {
        self.finish(reservation, Some(actual));
    }

    /// Gives a reservation back (the request failed before using anything billable).
    pub fn release(&self, reservation: Reservation) {
        self.finish(reservation, None);
    }

    fn finish(&self, reservation: Reservation, actual: Option<Amount>) {
        let mut counters = self.lock();
        for (key, period) in &reservation.entries {
            if let Some(counter) = counters.get_mut(key)
                && counter.period == *period
            {
                add(&mut counter.reserved, &reservation.amount, -1);
                if let Some(actual) = &actual {
                    add(&mut counter.used, actual, 1);
                }
            }
        }
    }

    /// Adds usage that happened elsewhere (rebuilding from the database at start).
    pub fn add_used(&self, scope: &Scope, window: Window, at: Timestamp, amount: Amount) {
        let mut counters = self.lock();
        let counter = current(&mut counters, scope, window, at);
        add(&mut counter.used, &amount, 1);
    }

    /// Raises a counter's usage to at least `taken` (field by field) for the period starting at
    /// `period`: what a shared counter held, kept so that counting alone later starts from it.
    /// A counter already in a later period is left alone.
    pub fn raise_used(&self, scope: &Scope, window: Window, period: i64, taken: Amount) {
        let mut counters = self.lock();
        let counter = counters
            .entry(Key {
                scope: scope.clone(),
                window,
            })
            .or_default();
        if counter.period > period {
            return;
        }
        if counter.period < period {
            *counter = Counter {
                period,
                ..Counter::default()
            };
        }
        let used = &mut counter.used;
        used.requests = used.requests.max(taken.requests);
        used.tokens = used.tokens.max(taken.tokens);
        used.cost_micro_usd = used.cost_micro_usd.max(taken.cost_micro_usd);
    }

    /// The counter of one scope and window as of `now`.
    pub fn snapshot(&self, scope: &Scope, window: Window, now: Timestamp) -> Counter {
        let counters = self.lock();
        let key = Key {
            scope: scope.clone(),
            window,
        };
        match counters.get(&key) {
            Some(counter) if counter.period == window.start(now).millis() => *counter,
            _ => Counter::default(),
        }
    }
}

/// The counter for the period containing `now`, reset if its period has passed.
fn current<'a>(
    counters: &'a mut Counters,
    scope: &Scope,
    window: Window,
    now: Timestamp,
) -> &'a mut Counter {
    let period = window.start(now).millis();
    let counter = counters
        .entry(Key {
            scope: scope.clone(),
            window,
        })
        .or_default();
    if counter.period != period {
        *counter = Counter {
            period,
            ..Counter::default()
        };
    }
    counter
}

/// Adds (`sign` 1) or takes away (-1) an amount, saturating: a counter pinned at the maximum
/// refuses everything, which is the safe side.
fn add(target: &mut Amount, amount: &Amount, sign: i64) {
    let add = |total: i64, part: i64| total.saturating_add(part.saturating_mul(sign));
    target.requests = add(target.requests, amount.requests);
    target.tokens = add(target.tokens, amount.tokens);
    target.cost_micro_usd = add(target.cost_micro_usd, amount.cost_micro_usd);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(subject: Option<&str>) -> Scope {
        Scope {
            tenant: Arc::from("acme"),
            subject: subject.map(Arc::from),
        }
    }

    fn tokens(n: i64) -> Amount {
        Amount {
            requests: 1,
            tokens: n,
            cost_micro_usd: 0,
        }
    }

    #[test]
    fn reservations_hold_the_line_and_settle_to_actuals() {
        let ledger = Ledger::default();
        let now = Timestamp::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        let limits = Limits {
            tokens_per_day: Some(100),
            ..Limits::default()
        };
        let user = [(scope(Some("jane")), limits)];
        let a = ledger.reserve(&user, tokens(60), now).unwrap();
        let refused = ledger.reserve(&user, tokens(60), now).unwrap_err();
        assert_eq!(refused.kind, LimitKind::TokensPerDay);
        assert_eq!(refused.used, 60);
        assert_eq!(
            refused.resets_at,
            Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap()
        );
        ledger.settle(a, tokens(30));
        let b = ledger.reserve(&user, tokens(60), now).unwrap();
        ledger.release(b);
        let day = ledger.snapshot(&scope(Some("jane")), Window::Day, now);
        assert_eq!(day.used.tokens, 30);
        assert_eq!(day.reserved.tokens, 0);
        // The next day starts from zero.
        let tomorrow = Timestamp(now.millis() + 86_400_000);
        assert!(ledger.reserve(&user, tokens(100), tomorrow).is_ok());
    }

    #[test]
    fn every_scope_must_fit_or_nothing_is_reserved() {
        let ledger = Ledger::default();
        let now = Timestamp::now();
        let tenant = (
            scope(None),
            Limits {
                tokens_per_month: Some(50),
                ..Limits::default()
            },
        );
        let user = (scope(Some("jane")), Limits::default());
        let both = [user.clone(), tenant.clone()];
        assert!(ledger.reserve(&both, tokens(60), now).is_err());
        let counter = ledger.snapshot(&scope(Some("jane")), Window::Month, now);
        assert_eq!(
            counter.reserved.tokens, 0,
            "the user's counter was not touched"
        );
        let ok = ledger.reserve(&both, tokens(50), now).unwrap();
        assert_eq!(
            ledger
                .snapshot(&scope(None), Window::Month, now)
                .reserved
                .tokens,
            50
        );
        ledger.settle(ok, tokens(50));
        assert!(ledger.reserve(&both, tokens(1), now).is_err());
    }

    #[test]
    fn raised_usage_is_kept_at_the_highest_seen_in_its_period() {
        let ledger = Ledger::default();
        let now = Timestamp::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        let day = Window::Day.start(now).millis();
        let jane = scope(Some("jane"));
        ledger.add_used(&jane, Window::Day, now, tokens(40));
        ledger.raise_used(&jane, Window::Day, day, tokens(30));
        assert_eq!(ledger.snapshot(&jane, Window::Day, now).used, tokens(40));
        ledger.raise_used(&jane, Window::Day, day, tokens(90));
        assert_eq!(ledger.snapshot(&jane, Window::Day, now).used, tokens(90));
        // Yesterday's numbers do not reach today's counter.
        ledger.raise_used(&jane, Window::Day, day - 86_400_000, tokens(500));
        assert_eq!(ledger.snapshot(&jane, Window::Day, now).used, tokens(90));
    }

    #[test]
    fn a_tally_counts_its_requests_all_its_tokens_and_its_cost() {
        let tally = Tally {
            requests: 1,
            prompt_tokens: 100,
            completion_tokens: 30,
            cached_tokens: 60,
            total_tokens: 130,
            cost_micro_usd: 45,
        };
        assert_eq!(
            Amount::from(tally),
            Amount {
                requests: 1,
                tokens: 130,
                cost_micro_usd: 45,
            }
        );
    }

    #[test]
    fn requests_per_minute_count_requests() {
        let ledger = Ledger::default();
        let now = Timestamp::now();
        let limits = [(
            scope(Some("jane")),
            Limits {
                requests_per_minute: Some(2),
                ..Limits::default()
            },
        )];
        let a = ledger.reserve(&limits, tokens(1), now).unwrap();
        let _b = ledger.reserve(&limits, tokens(1), now).unwrap();
        let refused = ledger.reserve(&limits, tokens(1), now).unwrap_err();
        assert_eq!(refused.kind, LimitKind::RequestsPerMinute);
        ledger.settle(a, tokens(1));
        assert!(
            ledger.reserve(&limits, tokens(1), now).is_err(),
            "a settled request still counts"
        );
    }
}
