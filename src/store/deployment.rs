//! The deployment's own id, made once with the database (migration 0004).

use super::{Store, StoreError, on_pool};

impl Store {
    /// The id every replica on this database shares and no other deployment has: it names
    /// this deployment's counters in a Redis that several deployments may share.
    pub async fn deployment_id(&self) -> Result<String, StoreError> {
        let id = on_pool!(self, pool => sqlx::query_scalar("SELECT id FROM deployment")
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_database_has_an_id_of_its_own_that_stays() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let url = format!("sqlite://{}", dir.path().join(name).display());
            async move {
                let store = Store::connect(&url, 1).await.unwrap();
                store.migrate().await.unwrap();
                store
            }
        };
        let first = open("a.db").await.deployment_id().await.unwrap();
        let second = open("b.db").await.deployment_id().await.unwrap();
        assert_eq!(first.len(), 36, "{first}");
        assert_ne!(first, second);
        assert_eq!(open("a.db").await.deployment_id().await.unwrap(), first);
    }
}
