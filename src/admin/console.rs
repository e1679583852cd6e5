//! Console sign-ins: opening a session is a write like any other, audited with who signed in.

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::store::{ConsoleSession, SessionOwner};

impl Admin {
    /// Stores a new console session and records the sign-in (`by` is whoever signed in) in
    /// the same transaction. The event names no session token, hash or CSRF token.
    pub async fn open_console_session(
        &self,
        by: &Actor,
        session: &ConsoleSession,
    ) -> Result<(), AdminError> {
        let tenant = match &session.owner {
            SessionOwner::Platform { .. } => None,
            SessionOwner::TenantAdmin { tenant_id, .. } => Some(tenant_id.as_str()),
        };
        let mut write = self.begin(by).await?;
        write.tx.insert_console_session(session).await?;
        write
            .audit(Entry::new("console.signed_in", tenant, None))
            .await?;
        write.commit().await?;
        Ok(())
    }
}
