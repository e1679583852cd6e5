//! Several replicas on one PostgreSQL: a change made through one is seen by the others within a
//! second, also after the notification connection was killed. Each replica is its own
//! `tollgate serve` process.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::Backend;

const ADMIN_TOKEN: &str = "replica-test-admin-token-0123456789";

struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    fn start(dir: &std::path::Path, database_url: &str, name: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{database_url}\"\n\
                 [metering]\nspill_dir = \"{}\"\n[log]\nlevel = \"warn\"\n",
                dir.join(format!("spill-{name}")).display()
            ),
        )
        .unwrap();
        let mut command = crate::cli::tollgate(dir);
        command
            .arg("--config")
            .arg(&config)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN);
        command.env("TOLLGATE__LOG__LEVEL", "info");
        let (child, addr, _, _) = crate::cli::serve(command);
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn status(&self, key: &str) -> u16 {
        reqwest::Client::new()
            .get(format!("{}/v1/models", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// How long until `key` gets `status` here; fails after 3 s.
    async fn until(&self, key: &str, status: u16) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            if self.status(key).await == status {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} never answered {status}", self.base);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn new_key(replica: &Replica, subject: &str) -> String {
    replica
        .admin(
            reqwest::Method::PUT,
            &format!("/tenants/acme/users/{subject}"),
            json!({}),
        )
        .await;
    let created = replica
        .admin(
            reqwest::Method::POST,
            &format!("/tenants/acme/users/{subject}/keys"),
            json!({"name": "k"}),
        )
        .await;
    created["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_replica_reach_the_other_within_a_second() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh_database(&dir).await;
    let a = Replica::start(dir.path(), &url, "a");
    let b = Replica::start(dir.path(), &url, "b");
    a.admin(
        reqwest::Method::POST,
        "/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    let jane = new_key(&a, "jane").await;
    assert_eq!(b.status(&jane).await, 200, "b has jane warm in its caches");

    let within = Duration::from_secs(1);
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane",
        json!({"status": "suspended"}),
    )
    .await;
    assert!(b.until(&jane, 401).await < within, "suspension seen by b");
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane",
        json!({"status": "active"}),
    )
    .await;
    assert!(b.until(&jane, 200).await < within, "reactivation seen by b");

    let id = a
        .admin(
            reqwest::Method::GET,
            "/tenants/acme/users/jane/keys",
            json!({}),
        )
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.admin(
        reqwest::Method::DELETE,
        &format!("/tenants/acme/users/jane/keys/{id}"),
        json!({}),
    )
    .await;
    assert!(
        b.until(&jane, 401).await < within,
        "key revocation seen by b"
    );

    let joe = new_key(&a, "joe").await;
    assert_eq!(b.status(&joe).await, 200);
    a.admin(
        reqwest::Method::POST,
        "/tenants/acme/users/joe/revoke-tokens",
        json!({}),
    )
    .await;
    assert!(b.until(&joe, 401).await < within, "revoke-tokens seen by b");

    let ann = new_key(&a, "ann").await;
    assert_eq!(b.status(&ann).await, 200);
    a.admin(
        reqwest::Method::DELETE,
        "/tenants/acme/users/ann",
        json!({}),
    )
    .await;
    assert!(b.until(&ann, 401).await < within, "deletion seen by b");

    // Kill every notification connection on this database: the replicas reconnect, and a
    // later change is still seen within a second.
    let bob = new_key(&a, "bob").await;
    assert_eq!(b.status(&bob).await, 200);
    let (server, database) = url.rsplit_once('/').unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/test"))
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{database}' AND query ILIKE 'LISTEN%'"
    )))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        killed.len() >= 2,
        "both replicas' listeners were killed: {killed:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/bob",
        json!({"status": "suspended"}),
    )
    .await;
    assert!(
        b.until(&bob, 401).await < within,
        "a change after the reconnect is seen by b"
    );
}
