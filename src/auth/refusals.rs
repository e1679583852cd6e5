//! The refusals this replica made lately, for the operator's "why was this user refused" view:
//! the latest ones with who and why, and counts per minute by reason. A spike of
//! `unknown_user` means the user store has drifted from the identity provider.
//!
//! Kept in memory, bounded (the latest [`RECENT`] refusals, [`MINUTES`] minutes of counts), and
//! per replica: the fleet-wide view is `tollgate_auth_failures_total{reason}` in Prometheus.
//! Everything here came from a refused — possibly forged — credential, so every text is cut
//! short, and nothing of the credential itself is kept.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::{Reason, Rejection};
use crate::clock::Timestamp;

/// How many of the latest refusals are kept.
pub const RECENT: usize = 200;
/// How many minutes of counts are kept: a day.
pub const MINUTES: usize = 1440;
/// Texts from a refused credential (subject, issuer) are cut to this many characters.
const MAX_TEXT: usize = 128;

/// The latest refusals and the counts per minute.
#[derive(Debug, Default)]
pub struct Refusals {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    recent: VecDeque<Refused>,
    /// Oldest first; one entry per minute that saw a refusal.
    minutes: VecDeque<Minute>,
}

/// One refusal, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Refused {
    pub at: Timestamp,
    pub reason: &'static str,
    pub issuer: Option<String>,
    pub tenant: Option<String>,
    pub subject: Option<String>,
}

#[derive(Debug)]
struct Minute {
    /// Milliseconds at the start of the minute (UTC).
    start: i64,
    /// Per reason, and per tenant where one was known: `(reason, tenant, count)`.
    counts: Vec<(Reason, Option<String>, u64)>,
}

/// Refusals of one reason in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    pub minute: Timestamp,
    pub reason: &'static str,
    pub count: u64,
}

/// What a caller may see: every tenant's refusals (the platform), or one tenant's.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Tenant(&'a str),
}

// === impl Refusals ===

impl Refusals {
    /// Notes one refusal at `at`.
    pub fn record(&self, rejection: &Rejection, at: Timestamp) {
        let refused = Refused {
            at,
            reason: rejection.reason.code(),
            issuer: rejection.issuer.as_deref().map(cut),
            tenant: rejection.tenant.as_deref().map(cut),
            subject: rejection.subject.as_deref().map(cut),
        };
        let start = at.millis() - at.millis().rem_euclid(60_000);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner
            .minutes
            .back()
            .is_none_or(|minute| minute.start < start)
        {
            inner.minutes.push_back(Minute {
                start,
                counts: Vec::new(),
            });
            while inner.minutes.len() > MINUTES {
                inner.minutes.pop_front();
            }
        }
        if let Some(minute) = inner.minutes.back_mut() {
            let found = minute.counts.iter_mut().find(|(reason, tenant, _)| {
                *reason == rejection.reason && *tenant == refused.tenant
            });
            match found {
                Some((_, _, count)) => *count += 1,
                None => minute
                    .counts
                    .push((rejection.reason, refused.tenant.clone(), 1)),
            }
        }
        inner.recent.push_back(refused);
        while inner.recent.len() > RECENT {
            inner.recent.pop_front();
        }
    }

    /// The latest refusals `scope` may see, newest first.
    pub fn recent(&self, scope: Scope<'_>) -> Vec<Refused> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        inner
            .recent
            .iter()
            .rev()
            .filter(|refused| scope.sees(refused.tenant.as_deref()))
            .cloned()
            .collect()
    }

    /// Counts per minute and reason that `scope` may see, oldest first.
    pub fn per_minute(&self, scope: Scope<'_>) -> Vec<MinuteCount> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for minute in &inner.minutes {
            let mut by_reason: Vec<(Reason, u64)> = Vec::new();
            for (reason, tenant, count) in &minute.counts {
                if !scope.sees(tenant.as_deref()) {
                    continue;
                }
                match by_reason.iter_mut().find(|(seen, _)| seen == reason) {
                    Some((_, total)) => *total += count,
                    None => by_reason.push((*reason, *count)),
                }
            }
            out.extend(by_reason.into_iter().map(|(reason, count)| MinuteCount {
                minute: Timestamp(minute.start),
                reason: reason.code(),
                count,
            }));
        }
        out
    }
}

// === impl Scope ===

impl Scope<'_> {
    /// A tenant admin sees only refusals known to be about their tenant.
    fn sees(self, tenant: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Tenant(mine) => tenant == Some(mine),
        }
    }
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(reason: Reason, tenant: Option<&str>, subject: &str) -> Rejection {
        Rejection {
            reason,
            detail: "detail stays in the log".into(),
            issuer: Some("https://idp.example".into()),
            kid: None,
            tenant: tenant.map(str::to_owned),
            subject: Some(subject.to_owned()),
        }
    }

    #[test]
    fn counts_per_minute_by_reason_and_the_latest_first() {
        let refusals = Refusals::default();
        let minute = 1_764_460_800_000;
        refusals.record(
            &rejection(Reason::UnknownUser, Some("acme"), "kate"),
            Timestamp(minute + 1),
        );
        refusals.record(
            &rejection(Reason::UnknownUser, Some("acme"), "bob"),
            Timestamp(minute + 2),
        );
        refusals.record(
            &rejection(Reason::UnknownUser, Some("globex"), "x"),
            Timestamp(minute + 3),
        );
        refusals.record(
            &rejection(Reason::Expired, None, "y"),
            Timestamp(minute + 60_000),
        );

        let all = refusals.per_minute(Scope::All);
        assert_eq!(
            all,
            [
                MinuteCount {
                    minute: Timestamp(minute),
                    reason: "unknown_user",
                    count: 3
                },
                MinuteCount {
                    minute: Timestamp(minute + 60_000),
                    reason: "expired",
                    count: 1
                },
            ]
        );
        let acme = refusals.per_minute(Scope::Tenant("acme"));
        assert_eq!(
            acme,
            [MinuteCount {
                minute: Timestamp(minute),
                reason: "unknown_user",
                count: 2
            }]
        );
        let recent = refusals.recent(Scope::Tenant("acme"));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].subject.as_deref(), Some("bob"), "newest first");
        assert_eq!(refusals.recent(Scope::All).len(), 4);
    }

    #[test]
    fn memory_is_bounded_and_texts_are_cut() {
        let refusals = Refusals::default();
        let long = "s".repeat(10_000);
        for i in 0..(RECENT + MINUTES + 10) {
            let at = Timestamp(i as i64 * 60_000);
            refusals.record(&rejection(Reason::UnknownUser, Some("acme"), &long), at);
        }
        let recent = refusals.recent(Scope::All);
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].subject.as_ref().map(String::len), Some(MAX_TEXT));
        assert_eq!(refusals.per_minute(Scope::All).len(), MINUTES);
    }
}
