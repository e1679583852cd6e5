//! The web console's state in SQL, so every replica knows every session: sessions (keyed by
//! the SHA-256 of the cookie's token) and SSO logins waiting for the identity provider.

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

/// Who a console session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOwner {
    /// `admin_key` is [`crate::state::AdminToken::session_key`] of the token it was opened with:
    /// once the admin token changes, the session no longer opens anything.
    Platform {
        admin_key: String,
    },
    TenantAdmin {
        tenant_id: String,
        subject: String,
    },
}

/// A console session as stored: never the token itself, only its hash.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the cookie's token.
    pub token_hash: String,
    pub owner: SessionOwner,
    pub csrf: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// An SSO login between the redirect to the identity provider and its callback.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    pub tenant_id: String,
    pub issuer_id: String,
    pub redirect_uri: String,
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    kind: String,
    tenant_id: Option<String>,
    subject: Option<String>,
    csrf: String,
    admin_key: Option<String>,
    created_at: Timestamp,
    last_seen_at: Timestamp,
}

impl From<SessionRow> for ConsoleSession {
    fn from(row: SessionRow) -> Self {
        let owner = match (row.kind.as_str(), row.tenant_id, row.subject) {
            ("tenant_admin", Some(tenant_id), Some(subject)) => {
                SessionOwner::TenantAdmin { tenant_id, subject }
            }
            // The schema allows nothing else; a platform row without its key opens nothing.
            _ => SessionOwner::Platform {
                admin_key: row.admin_key.unwrap_or_default(),
            },
        };
        Self {
            token_hash: row.token_hash,
            owner,
            csrf: row.csrf,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    state: String,
    nonce: String,
    code_verifier: String,
    tenant_id: String,
    issuer_id: String,
    redirect_uri: String,
    created_at: Timestamp,
}

impl Store {
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row: Option<SessionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT token_hash, kind, tenant_id, subject, csrf, admin_key, created_at, last_seen_at \
             FROM console_sessions WHERE token_hash = $1"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(ConsoleSession::from))
    }

    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1"
        )
        .bind(token_hash)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn delete_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Removes sessions idle since before `idle_before` or begun before `begun_before`.
    pub async fn delete_expired_console_sessions(
        &self,
        idle_before: Timestamp,
        begun_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let removed = on_pool!(self, pool => sqlx::query(
            "DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2"
        )
        .bind(idle_before)
        .bind(begun_before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(removed)
    }

    pub async fn insert_console_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO console_logins \
             (state, nonce, code_verifier, tenant_id, issuer_id, redirect_uri, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&login.state)
        .bind(&login.nonce)
        .bind(&login.code_verifier)
        .bind(&login.tenant_id)
        .bind(&login.issuer_id)
        .bind(&login.redirect_uri)
        .bind(login.created_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The pending login with this `state`, removed as it is read: a state is good once.
    pub async fn take_console_login(
        &self,
        state: &str,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let row: Option<LoginRow> = on_pool!(self, pool => sqlx::query_as(
            "DELETE FROM console_logins WHERE state = $1 \
             RETURNING state, nonce, code_verifier, tenant_id, issuer_id, redirect_uri, created_at"
        )
        .bind(state)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|row| PendingLogin {
            state: row.state,
            nonce: row.nonce,
            code_verifier: row.code_verifier,
            tenant_id: row.tenant_id,
            issuer_id: row.issuer_id,
            redirect_uri: row.redirect_uri,
            created_at: row.created_at,
        }))
    }

    pub async fn delete_expired_console_logins(
        &self,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        let removed = on_pool!(self, pool => sqlx::query(
            "DELETE FROM console_logins WHERE created_at < $1"
        )
        .bind(before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(removed)
    }
}

// === impl Tx ===

impl Tx {
    /// A session begins in a write of its own, which records the sign-in beside it.
    pub async fn insert_console_session(
        &mut self,
        session: &ConsoleSession,
    ) -> Result<(), StoreError> {
        let (kind, tenant, subject, admin_key) = match &session.owner {
            SessionOwner::Platform { admin_key } => {
                ("platform", None, None, Some(admin_key.as_str()))
            }
            SessionOwner::TenantAdmin { tenant_id, subject } => (
                "tenant_admin",
                Some(tenant_id.as_str()),
                Some(subject.as_str()),
                None,
            ),
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO console_sessions \
             (token_hash, kind, tenant_id, subject, csrf, created_at, last_seen_at, admin_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(&session.token_hash)
        .bind(kind)
        .bind(tenant)
        .bind(subject)
        .bind(&session.csrf)
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(admin_key)
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
