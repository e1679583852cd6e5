//! The hot-path copies of SQL state the auth stage reads: issuers, tenants, users, revoked
//! token ids, API keys and each tenant's groups.
//!
//! Issuers are a small table held whole (swapped atomically on change). Everything else sits in
//! bounded caches with a short TTL ([`DirectorySettings::ttl`], 5 s by default), so a change made
//! through another replica is seen within that time; admin writes in this process invalidate
//! the entry at once. Unknown subjects are remembered for a shorter time, so a flood of tokens
//! for users who do not exist does not become a flood of queries. While the database is
//! unreachable, rows already read keep serving for `auth.stale_if_error` ([`crate::stale`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use moka::Expiry;
use moka::future::Cache;

use super::groups::TenantGroups;
use super::jwks::{JwksSettings, JwksSource};
use super::keys::KeySet;
use crate::audit::{Actor, Entry};
use crate::clock::Timestamp;
use crate::stale::{SqlCache, StaleIfError};
use crate::store::{ApiKey, Issuer, KeySource, Store, StoreError, Tenant, User};

#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// How long a user, tenant, revocation or API key may be served from memory.
    pub ttl: Duration,
    /// How long "no such user" is remembered.
    pub negative_ttl: Duration,
    pub capacity: u64,
}

/// An issuer as the auth stage uses it: its row and its keys.
pub struct IssuerEntry {
    pub issuer: Issuer,
    pub keys: IssuerKeys,
}

pub enum IssuerKeys {
    /// A secret or a PEM: fixed until the issuer changes. `None` if it does not parse.
    Static(Option<Arc<KeySet>>),
    Jwks(Arc<JwksSource>),
}

/// Every registered issuer, by exact `iss`.
#[derive(Default)]
pub struct IssuerTable {
    pub by_iss: HashMap<String, Arc<IssuerEntry>>,
    /// Tenants that have an issuer of their own: a tenant claim may not reach them.
    pub bound_tenants: HashSet<String>,
}

type UserKey = (Arc<str>, Arc<str>);

/// Keeps `None` ("not there") for the short negative TTL and real rows for the normal one.
struct SplitTtl {
    ttl: Duration,
    negative_ttl: Duration,
}

impl<K, V> Expiry<K, Option<V>> for SplitTtl {
    fn expire_after_create(&self, _: &K, value: &Option<V>, _: Instant) -> Option<Duration> {
        Some(if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

pub struct Directory {
    store: Store,
    jwks_client: reqwest::Client,
    jwks: JwksSettings,
    issuers: ArcSwap<IssuerTable>,
    tenants: SqlCache<Arc<str>, Option<Arc<Tenant>>>,
    users: SqlCache<UserKey, Option<Arc<User>>>,
    revoked: SqlCache<UserKey, bool>,
    api_keys: SqlCache<String, Option<Arc<ApiKey>>>,
    /// Each tenant's groups and memberships, whole: read on every request, changed rarely.
    groups: SqlCache<Arc<str>, Arc<TenantGroups>>,
    stale: Arc<StaleIfError>,
}

impl Directory {
    pub fn new(
        store: Store,
        jwks_client: reqwest::Client,
        jwks: JwksSettings,
        settings: &DirectorySettings,
        stale: Arc<StaleIfError>,
    ) -> Self {
        let capacity = settings.capacity;
        let revoked = Cache::builder()
            .max_capacity(capacity)
            .time_to_live(settings.ttl)
            .build();
        let groups = Cache::builder()
            .max_capacity(capacity)
            .time_to_live(settings.ttl)
            .build();
        Self {
            store,
            jwks_client,
            jwks,
            issuers: ArcSwap::from_pointee(IssuerTable::default()),
            tenants: SqlCache::new(
                split_ttl(settings),
                capacity,
                Option::is_some,
                stale.clone(),
                "tenant",
            ),
            users: SqlCache::new(
                split_ttl(settings),
                capacity,
                Option::is_some,
                stale.clone(),
                "user",
            ),
            // "Not revoked" is the answer a warm token needs during an outage; only verified
            // tokens reach this cache, so it cannot be flooded.
            revoked: SqlCache::new(revoked, capacity, |_| true, stale.clone(), "revoked_token"),
            api_keys: SqlCache::new(
                split_ttl(settings),
                capacity,
                Option::is_some,
                stale.clone(),
                "api_key",
            ),
            groups: SqlCache::new(groups, capacity, |_| true, stale.clone(), "tenant_groups"),
            stale,
        }
    }

    /// The client JWKS fetches use (no redirects, bounded time), for other fetches from
    /// identity providers: the console's discovery and token requests.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.jwks_client
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The database's health as the caches see it, shared with the quota limits and `/readyz`.
    pub fn stale(&self) -> &Arc<StaleIfError> {
        &self.stale
    }

    pub fn issuers(&self) -> Arc<IssuerTable> {
        self.issuers.load_full()
    }

    /// Reloads the issuer table from SQL. JWKS caches of unchanged issuers are kept, so a reload
    /// costs no fetch. Returns whether anything changed.
    pub async fn reload_issuers(&self) -> Result<bool, StoreError> {
        let rows = self.store.issuers().await?;
        let old = self.issuers.load_full();
        let mut table = IssuerTable::default();
        let mut changed = rows.len() != old.by_iss.len();
        for issuer in rows {
            let previous = old.by_iss.get(&issuer.issuer);
            let unchanged = previous.is_some_and(|p| same_issuer(&p.issuer, &issuer));
            changed |= !unchanged;
            let keys = match (&issuer.key_source, previous) {
                (KeySource::JwksUrl(_), Some(p)) if unchanged => match &p.keys {
                    IssuerKeys::Jwks(source) => IssuerKeys::Jwks(source.clone()),
                    IssuerKeys::Static(_) => self.keys_for(&issuer),
                },
                _ => self.keys_for(&issuer),
            };
            if let Some(tenant) = &issuer.tenant_id {
                table.bound_tenants.insert(tenant.clone());
            }
            table.by_iss.insert(
                issuer.issuer.clone(),
                Arc::new(IssuerEntry { issuer, keys }),
            );
        }
        self.issuers.store(Arc::new(table));
        Ok(changed)
    }

    fn keys_for(&self, issuer: &Issuer) -> IssuerKeys {
        match &issuer.key_source {
            KeySource::JwksUrl(url) => IssuerKeys::Jwks(Arc::new(JwksSource::new(
                url.clone(),
                self.jwks_client.clone(),
                self.jwks.clone(),
            ))),
            source => IssuerKeys::Static(KeySet::from_static(source).map(Arc::new)),
        }
    }

    /// Refreshes every JWKS issuer's keys (the periodic background refresh).
    pub async fn refresh_jwks(&self) {
        let table = self.issuers();
        for entry in table.by_iss.values() {
            if let IssuerKeys::Jwks(source) = &entry.keys {
                source.refresh_now().await;
            }
        }
    }

    pub async fn tenant(&self, id: &Arc<str>) -> Result<Option<Arc<Tenant>>, Arc<StoreError>> {
        self.tenants
            .get(id, || async {
                Ok(self.store.tenant(id).await?.map(Arc::new))
            })
            .await
    }

    pub async fn user(&self, key: &UserKey) -> Result<Option<Arc<User>>, Arc<StoreError>> {
        self.users
            .get(key, || async {
                Ok(self.store.user(&key.0, &key.1).await?.map(Arc::new))
            })
            .await
    }

    /// Creates the user on first sight (just-in-time provisioning) and caches the result. The
    /// creation is audited in its own transaction, by tollgate itself (`system`, `jit`) on
    /// behalf of the request that brought the token; a user another replica created a moment
    /// earlier is that replica's event.
    pub async fn provision_user(
        &self,
        key: &UserKey,
        request_id: Option<&str>,
    ) -> Result<Arc<User>, StoreError> {
        let mut tx = self.store.begin().await?;
        let (user, created) = tx.provision_user(&key.0, &key.1).await?;
        if created {
            let by = Actor::system("jit", request_id.map(str::to_owned));
            let entry = Entry::new("user.created", Some(&key.0), Some(&key.1)).after(&user);
            tx.record_audit(&by, &entry, Timestamp::now()).await?;
        }
        tx.commit().await?;
        let user = Arc::new(user);
        self.users.insert(key.clone(), Some(user.clone())).await;
        Ok(user)
    }

    /// Whether `jti` is on the tenant's revocation list.
    pub async fn is_revoked(&self, key: &UserKey) -> Result<bool, Arc<StoreError>> {
        self.revoked
            .get(key, || async {
                Ok(self.store.revoked_token(&key.0, &key.1).await?.is_some())
            })
            .await
    }

    pub async fn api_key(&self, hash: &str) -> Result<Option<Arc<ApiKey>>, Arc<StoreError>> {
        self.api_keys
            .get(hash, || async {
                Ok(self.store.api_key_by_hash(hash).await?.map(Arc::new))
            })
            .await
    }

    /// The tenant's groups that give anything, and who is in them over SCIM.
    pub async fn groups(&self, tenant: &Arc<str>) -> Result<Arc<TenantGroups>, Arc<StoreError>> {
        self.groups
            .get(tenant, || async {
                let groups = self.store.groups(tenant).await?;
                let members = self.store.group_members(tenant, None).await?;
                Ok(Arc::new(TenantGroups::new(groups, members)))
            })
            .await
    }

    // === invalidation by admin writes in this process ===

    pub async fn forget_user(&self, tenant: &str, subject: &str) {
        self.users
            .invalidate(&(Arc::from(tenant), Arc::from(subject)))
            .await;
    }

    pub async fn forget_tenant(&self, tenant: &str) {
        self.tenants.invalidate(&Arc::<str>::from(tenant)).await;
    }

    pub async fn forget_revocation(&self, tenant: &str, jti: &str) {
        self.revoked
            .invalidate(&(Arc::from(tenant), Arc::from(jti)))
            .await;
    }

    pub async fn forget_api_key(&self, hash: &str) {
        self.api_keys.invalidate(hash).await;
    }

    pub async fn forget_groups(&self, tenant: &str) {
        self.groups.invalidate(&Arc::<str>::from(tenant)).await;
    }

    /// Drops every fresh entry (after a missed change notification, say); the last good copies
    /// stay for an outage ([`SqlCache::invalidate_all`]).
    pub fn forget_everything(&self) {
        self.tenants.invalidate_all();
        self.users.invalidate_all();
        self.revoked.invalidate_all();
        self.api_keys.invalidate_all();
        self.groups.invalidate_all();
    }
}

/// A cache that keeps "not there" for the negative TTL and rows for the normal one.
fn split_ttl<K, V>(settings: &DirectorySettings) -> Cache<K, Option<V>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(settings.capacity)
        .expire_after(SplitTtl {
            ttl: settings.ttl,
            negative_ttl: settings.negative_ttl,
        })
        .build()
}

fn same_issuer(a: &Issuer, b: &Issuer) -> bool {
    a.id == b.id
        && a.key_source == b.key_source
        && a.tenant_id == b.tenant_id
        && a.tenant_claim == b.tenant_claim
        && a.audiences == b.audiences
        && a.algorithms == b.algorithms
        && a.subject_claim == b.subject_claim
        && a.subject_case == b.subject_case
        && a.jit_provisioning == b.jit_provisioning
        && a.leeway_seconds == b.leeway_seconds
        && a.groups_claim == b.groups_claim
        && a.required_scopes == b.required_scopes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::auth::api_keys::GeneratedKey;
    use crate::auth::{AuthError, Authenticator};
    use crate::config::AuthConfig;
    use crate::store::{NewApiKey, Store, UserPatch};

    async fn key_for(store: &Store, subject: &str) -> String {
        let mut tx = store.begin().await.unwrap();
        tx.upsert_user("acme", subject, &UserPatch::default())
            .await
            .unwrap();
        let key = GeneratedKey::new().unwrap();
        tx.create_api_key(&NewApiKey {
            id: subject,
            tenant_id: "acme",
            subject,
            name: "test",
            key_hash: &key.hash,
            key_prefix: key.prefix(),
            expires_at: None,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        key.key
    }

    /// SQLite's side of the outage test (tests/api/identity/outage.rs runs PostgreSQL): a
    /// closed pool fails every query with a database error, as an unreadable file would.
    #[tokio::test]
    async fn on_sqlite_a_warm_key_outlives_the_ttl_when_the_database_fails() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.create_tenant("acme", "Acme").await.unwrap();
        tx.commit().await.unwrap();
        let warm = key_for(&store, "jane").await;
        let cold = key_for(&store, "bob").await;
        let config = AuthConfig {
            cache_ttl: Duration::from_millis(200),
            negative_cache_ttl: Duration::from_millis(100),
            stale_if_error: Duration::from_secs(1),
            ..AuthConfig::default()
        };
        let auth = Authenticator::from_config(store.clone(), &config)
            .await
            .unwrap();
        assert!(auth.authenticate(&warm, None).await.is_ok());

        store.close().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(auth.authenticate(&warm, None).await.is_ok(), "served stale");
        assert!(matches!(
            auth.authenticate(&cold, None).await,
            Err(AuthError::Unavailable(_))
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(matches!(
            auth.authenticate(&warm, None).await,
            Err(AuthError::Unavailable(_))
        ));
    }
}
