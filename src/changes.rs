//! Admin writes that the hot path must see. The service layer ([`crate::admin`]) announces each
//! one inside the write's transaction — with PostgreSQL, a `NOTIFY` on [`CHANNEL`] — and applies
//! it to this process's caches once it has committed; every replica's listener applies it too,
//! within a second. A listener that loses its connection flushes every cache when it is back,
//! since it may have missed something.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::quota::Quotas;

/// The `NOTIFY` channel every replica listens on.
pub const CHANNEL: &str = "tollgate_changes";

/// One change to state that authentication or admission reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    User {
        tenant: String,
        subject: String,
    },
    Tenant {
        tenant: String,
    },
    Issuers,
    Revocation {
        tenant: String,
        jti: String,
    },
    ApiKey {
        hash: String,
    },
    Quota {
        tenant: String,
        subject: Option<String>,
    },
    /// The tenant's groups, their policies or their members.
    Groups {
        tenant: String,
    },
}

impl Change {
    /// The change as a `NOTIFY` payload: small JSON, far below PostgreSQL's 8000-byte limit
    /// (ids and subjects are bounded by [`crate::ids`]).
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// Applies changes to the caches of this process.
pub struct Changes {
    auth: Arc<Authenticator>,
    quotas: Arc<Quotas>,
}

impl Changes {
    pub fn new(auth: Arc<Authenticator>, quotas: Arc<Quotas>) -> Self {
        Self { auth, quotas }
    }

    /// Drops whatever the change makes stale.
    pub async fn apply(&self, change: &Change) {
        let directory = self.auth.directory();
        match change {
            Change::User { tenant, subject } => directory.forget_user(tenant, subject).await,
            Change::Tenant { tenant } => {
                directory.forget_tenant(tenant).await;
                self.quotas.forget_limits(tenant, None).await;
            }
            Change::Issuers => {
                if let Err(error) = self.auth.reload_issuers().await {
                    tracing::warn!(%error, "could not reload the issuers after a change");
                }
            }
            Change::Revocation { tenant, jti } => directory.forget_revocation(tenant, jti).await,
            Change::ApiKey { hash } => directory.forget_api_key(hash).await,
            Change::Quota { tenant, subject } => {
                self.quotas.forget_limits(tenant, subject.as_deref()).await;
            }
            Change::Groups { tenant } => directory.forget_groups(tenant).await,
        }
    }

    /// Forgets everything cached (after the notification connection was lost).
    pub async fn flush(&self) {
        self.auth.directory().forget_everything();
        self.quotas.forget_all();
        if let Err(error) = self.auth.reload_issuers().await {
            tracing::warn!(%error, "could not reload the issuers after a flush");
        }
    }
}

/// Listens for other replicas' changes until `stopped` fires. A lost connection is replaced,
/// and once the new one listens the caches are flushed: whatever was announced in between is
/// gone, and anything announced later arrives.
pub async fn listen(changes: Arc<Changes>, pool: PgPool, mut stopped: watch::Receiver<bool>) {
    let Some(mut listener) = reconnect(&pool, &mut stopped).await else {
        return;
    };
    loop {
        let received = tokio::select! {
            _ = stopped.changed() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => match Change::from_payload(notification.payload()) {
                Ok(change) => changes.apply(&change).await,
                Err(error) => {
                    tracing::warn!(%error, "ignoring an unreadable change notification")
                }
            },
            lost => {
                if let Err(error) = lost {
                    tracing::warn!(%error, "change listener failed");
                }
                tracing::warn!("change listener lost its connection; reconnecting");
                metrics::counter!("tollgate_change_listener_reconnects_total").increment(1);
                let Some(fresh) = reconnect(&pool, &mut stopped).await else {
                    return;
                };
                listener = fresh;
                changes.flush().await;
            }
        }
    }
}

/// A listener on [`CHANNEL`], retried every half second until it works or the gateway stops.
async fn reconnect(pool: &PgPool, stopped: &mut watch::Receiver<bool>) -> Option<PgListener> {
    loop {
        match connect(pool).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::warn!(%error, "change listener cannot connect; retrying");
                tokio::select! {
                    _ = stopped.changed() => return None,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_as_small_json() {
        let change = Change::User {
            tenant: "acme".into(),
            subject: "auth0|x".into(),
        };
        let text = change.to_payload();
        assert_eq!(
            text,
            r#"{"kind":"user","tenant":"acme","subject":"auth0|x"}"#
        );
        assert_eq!(Change::from_payload(&text).unwrap(), change);
    }
}
