//! Every admin write announces the changes the caches must see, and only once it commits. The
//! service layer (`tollgate::admin::Admin`) is driven directly on PostgreSQL while a listener on
//! the change channel records what each write sent.
//!
//! The table in `every_write_announces_its_changes` has one row per write; a write of the
//! service with no row there fails the test, so a new write states what it announces (or that
//! it announces nothing, and why).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tollgate::admin::{Admin, AdminError, Edit, NewKey, WebhookRequest};
use tollgate::audit::Actor;
use tollgate::auth::Authenticator;
use tollgate::changes::{CHANNEL, Change, Changes};
use tollgate::clock::Timestamp;
use tollgate::config::AuthConfig;
use tollgate::quota::Quotas;
use tollgate::store::{
    ConsoleSession, GroupPolicy, GroupRole, Issuer, KeySource, Limits, SessionOwner, Store,
    SubjectAttribute, SubjectCase, TenantPatch, UserPatch, UserStatus,
};

use crate::support::Backend;

/// One row of the table: calls `admin.write(args)`, checks that it succeeded and announced
/// exactly the listed changes, and gives back what it returned.
macro_rules! row {
    ($feed:ident, $admin:ident . $write:ident ( $($arg:expr),* ) => [$($change:expr),*]) => {
        $feed
            .row(stringify!($write), $admin.$write($($arg),*).await, &[$($change),*])
            .await
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_announces_its_changes() {
    let Some(store) = postgres().await else {
        return;
    };
    let admin = admin(&store).await;
    let mut feed = Feed::listen(&store).await;
    let tenant = || Change::Tenant {
        tenant: "acme".into(),
    };
    let jane = || Change::User {
        tenant: "acme".into(),
        subject: "jane".into(),
    };
    let quota = |subject: Option<&str>| Change::Quota {
        tenant: "acme".into(),
        subject: subject.map(Into::into),
    };
    let limits = Limits {
        tokens_per_day: Some(1000),
        ..Limits::default()
    };
    let suspend = UserPatch {
        status: Some(UserStatus::Suspended),
        ..UserPatch::default()
    };
    let rename = TenantPatch {
        name: Some("Acme Inc".into()),
        ..TenantPatch::default()
    };
    let models = ["m".to_owned()];
    let expires = Timestamp::parse_rfc3339("2099-01-01T00:00:00Z").unwrap();
    let revocation = Change::Revocation {
        tenant: "acme".into(),
        jti: "jti-1".into(),
    };
    let key = |new: &NewKey| Change::ApiKey {
        hash: new.key.key_hash.clone(),
    };

    let by = Actor::platform(None);

    // One row per write: the write, then exactly what it must announce.
    row!(feed, admin.create_tenant(&by, "acme", "Acme") => [tenant()]);
    row!(feed, admin.update_tenant(&by, "acme", &rename) => [tenant()]);
    row!(feed, admin.set_allowed_models(&by, "acme", Some(&models)) => [tenant()]);
    row!(feed, admin.upsert_user(&by, "acme", "jane", &UserPatch::default()) => [jane()]);
    row!(feed, admin.upsert_user(&by, "acme", "jane", &suspend) => [jane()]);
    // Nobody can have looked a key up before its hash existed.
    let k1 = row!(feed, admin.create_api_key(&by, "acme", "jane", "k1", None) => []);
    row!(feed, admin.revoke_api_key(&by, "acme", "jane", &k1.key.id) => [key(&k1)]);
    row!(feed, admin.revoke_user_tokens(&by, "acme", "jane") => [jane()]);
    row!(feed, admin.revoke_token(&by, "acme", "jti-1", expires) => [revocation]);
    row!(feed, admin.set_tenant_quota(&by, "acme", &limits) => [quota(None)]);
    row!(feed, admin.set_default_user_quota(&by, "acme", &limits) => [quota(None)]);
    row!(feed, admin.set_user_quota(&by, "acme", "jane", &limits) => [quota(Some("jane"))]);
    // Deleting a user revokes their live keys too: each key's cache entry goes with them.
    let k2 = row!(feed, admin.create_api_key(&by, "acme", "jane", "k2", None) => []);
    row!(feed, admin.delete_user(&by, "acme", "jane") => [jane(), key(&k2)]);
    let issuer = row!(feed, admin.create_issuer(&by, &issuer()) => [Change::Issuers]);
    row!(feed, admin.delete_issuer(&by, &issuer.id) => [Change::Issuers]);
    // Groups: the tenant's groups are cached whole, so any change to a group, its policy or
    // its members announces them.
    let groups = || Change::Groups {
        tenant: "acme".into(),
    };
    let admins = GroupPolicy {
        models: Some(vec!["m".into()]),
        role: Some(GroupRole::Admin),
    };
    row!(feed, admin.save_group(&by, "acme", "admins", &admins) => [groups()]);
    row!(feed, admin.delete_group(&by, "acme", "admins") => [groups()]);
    // SCIM: tokens and the setting are read per request, so they announce nothing; a
    // provisioned user is announced, and so are the tenant's groups when members change.
    let sam = || Change::User {
        tenant: "acme".into(),
        subject: "sam".into(),
    };
    let token = row!(feed, admin.create_scim_token(&by, "acme", "idp") => []);
    row!(feed, admin.revoke_scim_token(&by, "acme", &token.token.id) => []);
    row!(feed, admin.set_scim_subject_attribute(&by, "acme", SubjectAttribute::ExternalId) => []);
    let user = serde_json::json!({"userName": "sam@acme.example", "externalId": "sam"});
    let sam_scim =
        row!(feed, admin.scim_save_user(&by, "acme", None, Edit::Replace(user)) => [sam()]);
    let group = serde_json::json!({"displayName": "eng", "members": [{"value": sam_scim.id}]});
    let eng =
        row!(feed, admin.scim_save_group(&by, "acme", None, Edit::Replace(group)) => [groups()]);
    row!(feed, admin.scim_delete_group(&by, "acme", &eng.id) => [groups()]);
    row!(feed, admin.scim_delete_user(&by, "acme", &sam_scim.id) => [groups(), sam()]);
    // Webhook endpoints are read by the outbox writers inside their own transactions, never
    // from a cache: nothing to announce.
    let request = WebhookRequest {
        url: "https://hooks.acme.example/tollgate".into(),
        events: vec!["user.created".into()],
        thresholds: None,
    };
    let hook = row!(feed, admin.create_webhook(&by, "acme", request, false) => []);
    row!(feed, admin.remove_webhook(&by, "acme", &hook.endpoint.id) => []);
    // Sessions are read from SQL on every request: nothing to announce.
    let session = ConsoleSession {
        token_hash: "hash".into(),
        owner: SessionOwner::Platform {
            admin_key: "key".into(),
        },
        csrf: "csrf".into(),
        created_at: Timestamp::now(),
        last_seen_at: Timestamp::now(),
    };
    row!(feed, admin.open_console_session(&by, &session) => []);
    row!(feed, admin.delete_tenant(&by, "acme") => [tenant()]);

    let missing: Vec<_> = service_writes().difference(&feed.rows).cloned().collect();
    assert!(
        missing.is_empty(),
        "writes of the service with no row in this table: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_announces_nothing() {
    let Some(store) = postgres().await else {
        return;
    };
    let admin = admin(&store).await;
    let by = Actor::platform(None);
    admin.create_tenant(&by, "acme", "Acme").await.unwrap();
    let mut feed = Feed::listen(&store).await;
    assert!(
        admin
            .revoke_api_key(&by, "acme", "jane", "nope")
            .await
            .is_err()
    );
    assert!(admin.delete_user(&by, "acme", "nobody").await.is_err());
    assert!(admin.delete_tenant(&by, "globex").await.is_err());
    assert_eq!(feed.announced().await, []);
}

/// What makes "only once it commits" hold: a `NOTIFY` inside a transaction is delivered at
/// its commit, and never if it rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_delivered_only_when_its_transaction_commits() {
    let Some(store) = postgres().await else {
        return;
    };
    let mut feed = Feed::listen(&store).await;
    let mut rolled_back = store.begin().await.unwrap();
    rolled_back.notify(CHANNEL, "rolled back").await.unwrap();
    drop(rolled_back);
    assert_eq!(feed.payloads().await, Vec::<String>::new());

    let mut committed = store.begin().await.unwrap();
    committed.notify(CHANNEL, "committed").await.unwrap();
    assert_eq!(feed.payloads().await, Vec::<String>::new(), "not yet");
    committed.commit().await.unwrap();
    assert_eq!(feed.payloads().await, ["committed"]);
}

/// A migrated, empty PostgreSQL database; `None` when the tests have none.
async fn postgres() -> Option<Store> {
    let backend = Backend::postgres()?;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&backend.fresh_database(&dir).await, 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

/// The service as the gateway builds it, its changes applied to caches of its own.
async fn admin(store: &Store) -> Admin {
    let auth = Arc::new(
        Authenticator::from_config(store.clone(), &AuthConfig::default())
            .await
            .unwrap(),
    );
    let stale = auth.directory().stale().clone();
    let quotas = Arc::new(Quotas::new(store.clone(), Duration::from_secs(5), stale));
    Admin::new(store.clone(), Arc::new(Changes::new(auth, quotas)))
}

fn issuer() -> Issuer {
    Issuer {
        id: "issuer-1".into(),
        issuer: "https://idp.acme.test".into(),
        tenant_id: Some("acme".into()),
        tenant_claim: None,
        audiences: vec!["tollgate".into()],
        key_source: KeySource::Hs256Secret("an-hs256-secret-of-at-least-32-bytes".into()),
        algorithms: vec!["HS256".into()],
        subject_claim: "sub".into(),
        subject_case: SubjectCase::Exact,
        jit_provisioning: false,
        leeway_seconds: 30,
        created_at: Timestamp::now(),
        console_client_id: None,
        groups_claim: None,
        required_scopes: Vec::new(),
    }
}

/// Every `pub async fn` in `src/admin/`: the service's writes.
pub fn service_writes() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admin");
    let mut writes = BTreeSet::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for line in source.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub async fn ") {
                writes.insert(rest.split(['(', '<']).next().unwrap().to_owned());
            }
        }
    }
    assert!(writes.len() > 10, "the service's writes were found");
    writes
}

/// What arrives on the change channel.
struct Feed {
    listener: PgListener,
    pool: PgPool,
    marks: u32,
    /// The writes that have a row.
    rows: BTreeSet<String>,
}

impl Feed {
    async fn listen(store: &Store) -> Self {
        let pool = store.postgres().unwrap().clone();
        let mut listener = PgListener::connect_with(&pool).await.unwrap();
        listener.listen(CHANNEL).await.unwrap();
        Self {
            listener,
            pool,
            marks: 0,
            rows: BTreeSet::new(),
        }
    }

    /// One row of the table: `write` succeeded and announced exactly `expected`.
    async fn row<T>(&mut self, write: &str, done: Result<T, AdminError>, expected: &[Change]) -> T {
        let value = done.unwrap_or_else(|error| panic!("{write}: {error}"));
        assert_eq!(self.announced().await, expected, "{write} announced");
        self.rows.insert(write.to_owned());
        value
    }

    /// The changes announced since the last look.
    async fn announced(&mut self) -> Vec<Change> {
        let payloads = self.payloads().await;
        let changes = payloads.iter().map(|p| Change::from_payload(p));
        changes.collect::<Result<_, _>>().unwrap()
    }

    /// The payloads delivered since the last look. PostgreSQL delivers notifications in commit
    /// order, so once a mark sent now arrives, everything committed before it has arrived too.
    async fn payloads(&mut self) -> Vec<String> {
        self.marks += 1;
        let mark = format!("mark {}", self.marks);
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&mark)
            .execute(&self.pool)
            .await
            .unwrap();
        let mut payloads = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), self.listener.recv());
            let notification = next.await.expect("the mark arrives").unwrap();
            if notification.payload() == mark {
                return payloads;
            }
            payloads.push(notification.payload().to_owned());
        }
    }
}
