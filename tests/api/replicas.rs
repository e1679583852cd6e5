//! Several replicas on one PostgreSQL: a change made through one is seen by the others within a
//! second, also after the notification connection was killed. Each replica is its own
//! `tollgate serve` process.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Backend, MOCK_MODEL};

const ADMIN_TOKEN: &str = "replica-test-admin-token-0123456789";

struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    fn start(dir: &std::path::Path, database_url: &str, name: &str) -> Self {
        Self::start_with(dir, database_url, name, "")
    }

    /// A replica with `extra` TOML appended to its config.
    fn start_with(dir: &std::path::Path, database_url: &str, name: &str, extra: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{database_url}\"\n\
                 [metering]\nspill_dir = \"{}\"\nflush_interval = \"20ms\"\n{extra}\n",
                dir.join(format!("spill-{name}")).display()
            ),
        )
        .unwrap();
        let mut command = crate::cli::tollgate(dir);
        command
            .arg("--config")
            .arg(&config)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN);
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
        self.status_at("/v1/models", key).await
    }

    async fn status_at(&self, path: &str, key: &str) -> u16 {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// How long until `key` gets `status` here; fails after 3 s.
    async fn until(&self, key: &str, status: u16) -> Duration {
        self.until_at("/v1/models", key, status).await
    }

    /// How long until `key` gets `status` from `GET path` here; fails after 3 s.
    async fn until_at(&self, path: &str, key: &str, status: u16) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            if self.status_at(path, key).await == status {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} never answered {status}", self.base);
    }
}

/// A Redis server of the test's own on a free port, so restarting it disturbs no other test.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// `None` (with a printed reason) unless the Redis tests are enabled; in CI they must be.
    pub async fn start() -> Option<Self> {
        if std::env::var("TOLLGATE_TEST_REDIS_URL").is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the Redis tests: set TOLLGATE_TEST_REDIS_URL"
            );
            eprintln!("skipped: set TOLLGATE_TEST_REDIS_URL to run the Redis tests");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(Self::on(port).await)
    }

    async fn on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it and starts an empty one on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        *self = Self::on(self.port).await;
    }

    /// Stops it; [`RedisServer::restart`] brings an empty one back on the same port.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The tokens counted in Redis today for `subject` of `acme`, whatever the key prefix.
    pub fn day_tokens(&self, subject: &str) -> i64 {
        let mut connection = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("tollgate:v1:*q:acme:{subject}:d:*"))
            .query(&mut connection)
            .unwrap();
        keys.iter()
            .map(|key| {
                redis::cmd("HGET")
                    .arg(key)
                    .arg("ut")
                    .query::<Option<i64>>(&mut connection)
                    .unwrap()
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

impl Replica {
    /// One chat request as `key`; true when admitted.
    async fn ask(&self, key: &str) -> bool {
        let (status, _) = self.timed_ask(key).await;
        assert!(status == 200 || status == 429, "{status}");
        status == 200
    }

    /// One chat request as `key`: its status and how long the whole answer took.
    async fn timed_ask(&self, key: &str) -> (u16, Duration) {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(&json!({"model": "m", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "Tell me about spring"}]}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let _ = response.bytes().await.unwrap();
        (status, started.elapsed())
    }

    /// `tollgate_quota_degraded` from `/metrics` (0 when not yet set).
    async fn degraded(&self) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix("tollgate_quota_degraded "))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }
}

/// Two replicas sharing one PostgreSQL and one Redis, a tenant `acme` and a key for `jane`.
async fn cluster(
    dir: &std::path::Path,
    redis: &RedisServer,
) -> Option<(Replica, Replica, String, tollgate::store::Store)> {
    cluster_with(dir, redis, "").await
}

/// [`cluster`] with `redis_extra` added to the `[redis]` table.
async fn cluster_with(
    dir: &std::path::Path,
    redis: &RedisServer,
    redis_extra: &str,
) -> Option<(Replica, Replica, String, tollgate::store::Store)> {
    let backend = Backend::postgres()?;
    let url = backend.fresh_database(&tempfile::tempdir().unwrap()).await;
    let extra = format!(
        "[redis]\nurl = \"{}\"\n{redis_extra}\n{MOCK_MODEL}",
        redis.url()
    );
    let a = Replica::start_with(dir, &url, "a", &extra);
    let b = Replica::start_with(dir, &url, "b", &extra);
    a.admin(
        reqwest::Method::POST,
        "/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    let key = new_key(&a, "jane").await;
    let store = tollgate::store::Store::connect(&url, 2).await.unwrap();
    Some((a, b, key, store))
}

/// Total tokens recorded, once the writers have flushed `requests` events.
async fn billed(store: &tollgate::store::Store, requests: usize) -> i64 {
    for _ in 0..200 {
        if store.usage_count().await.unwrap() >= requests as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(store.usage_count().await.unwrap(), requests as i64);
    store.usage_event_sums().await.unwrap().total_tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_limit_holds_across_replicas() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, store)) = cluster(dir.path(), &redis).await else {
        return;
    };
    let limit = 700;
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"tokens_per_day": limit}),
    )
    .await;
    let requests = (0..200).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        let key = key.clone();
        async move { replica.ask(&key).await }
    });
    let admitted = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    let billed = billed(&store, admitted).await;
    assert!(
        billed <= limit,
        "billed {billed} > {limit} over two replicas"
    );
    assert!(admitted >= 10, "{admitted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_limits_are_shared_by_the_replicas() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, _store)) = cluster(dir.path(), &redis).await else {
        return;
    };
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"requests_per_minute": 10}),
    )
    .await;
    // Stay inside one calendar minute.
    let second = tollgate::clock::Timestamp::now().millis() / 1000 % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    let mut admitted = 0;
    for i in 0..30 {
        let replica = if i % 2 == 0 { &a } else { &b };
        if replica.ask(&key).await {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 10,
        "the two replicas together admit the limit, not twice it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_come_back_from_postgresql_after_a_redis_restart() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, store)) = cluster(dir.path(), &redis).await else {
        return;
    };
    let limit = 400;
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"tokens_per_day": limit}),
    )
    .await;
    let mut admitted = 0;
    for i in 0..6 {
        let replica = if i % 2 == 0 { &a } else { &b };
        assert!(replica.ask(&key).await);
        admitted += 1;
    }
    let before = billed(&store, admitted).await;
    assert!(before > 0 && before < limit);
    redis.restart().await;
    // Redis is empty now; the first admission rebuilds the counters from the usage table.
    let mut i = 0;
    while i < 200 {
        let replica = if i % 2 == 0 { &a } else { &b };
        if !replica.ask(&key).await {
            break;
        }
        admitted += 1;
        i += 1;
    }
    assert!(i < 200, "the limit was reached");
    let after = billed(&store, admitted).await;
    assert!(
        after <= limit,
        "billed {after} > {limit}: the restart reset the counters"
    );
}

/// While Redis is down, no request may wait for it: each answers well within this.
const FAST: Duration = Duration::from_millis(300);

/// Sends `key`'s requests to `a` and `b` in turn for `period`, expecting `status` every time;
/// returns how many, and the slowest of each replica's first answer (which finds the outage) and
/// of all later ones.
async fn during_outage(
    replicas: [&Replica; 2],
    key: &str,
    status: u16,
    period: Duration,
) -> (usize, Duration, Duration) {
    let started = Instant::now();
    let mut sent = 0;
    let mut finding = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < period {
        for replica in replicas {
            let (got, took) = replica.timed_ask(key).await;
            assert_eq!(got, status, "request {sent} while Redis is down");
            if sent < replicas.len() {
                finding = finding.max(took);
            } else {
                slowest = slowest.max(took);
            }
            sent += 1;
        }
    }
    (sent, finding, slowest)
}

/// Waits until both replicas count in Redis again (their breaker closed), at most 5 s.
async fn until_redis_is_back(replicas: [&Replica; 2]) {
    let started = Instant::now();
    for replica in replicas {
        while replica.degraded().await != 0.0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{} still degraded",
                replica.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until Redis holds jane's tokens of today as recorded in `store` (settlement is
/// written in the background). Call once the writers have flushed.
async fn until_redis_counts(redis: &RedisServer, store: &tollgate::store::Store) {
    let today = tollgate::quota::Window::Day.start(tollgate::clock::Timestamp::now());
    let tokens: i64 = store
        .usage_totals_since(today)
        .await
        .unwrap()
        .iter()
        .filter(|total| total.subject == "jane")
        .map(|total| total.tally.total_tokens)
        .sum();
    let mut counted = 0;
    for _ in 0..100 {
        counted = redis.day_tokens("jane");
        if counted == tokens {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Redis counts {counted} tokens for jane, the usage table {tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_quota_stays_refused_and_fast_while_redis_is_down_in_local_mode() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, store)) =
        cluster_with(dir.path(), &redis, "on_unavailable = \"local\"").await
    else {
        return;
    };
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"tokens_per_day": 300}),
    )
    .await;
    // Used up through both replicas: each has served part of it, and both now refuse.
    let mut admitted = 0;
    let mut refused = [false, false];
    for i in 0..200 {
        if refused == [true, true] {
            break;
        }
        if [&a, &b][i % 2].ask(&key).await {
            admitted += 1;
        } else {
            refused[i % 2] = true;
        }
    }
    assert_eq!(refused, [true, true], "the quota was used up");
    // joe's day is used up through `a` alone: `b` has never seen his counters.
    let joe = new_key(&a, "joe").await;
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/joe/quota",
        json!({"tokens_per_day": 100}),
    )
    .await;
    while a.ask(&joe).await {
        admitted += 1;
    }
    let before = billed(&store, admitted).await;

    redis.kill();
    let (sent, finding, slowest) = during_outage([&a, &b], &key, 429, Duration::from_secs(4)).await;
    eprintln!(
        "local mode, Redis down: {sent} requests refused; finding the outage took {finding:?}, \
         the slowest after that {slowest:?}"
    );
    assert!(slowest < FAST, "a request waited {slowest:?} for Redis");
    assert_eq!(
        b.timed_ask(&joe).await.0,
        429,
        "b counts alone from the usage recorded by every replica"
    );
    assert_eq!(
        billed(&store, admitted).await,
        before,
        "nothing was admitted"
    );
    assert_eq!(a.degraded().await, 1.0);
    assert_eq!(b.degraded().await, 1.0);

    // Back, empty: the replicas count in Redis again, starting from the usage table.
    redis.restart().await;
    until_redis_is_back([&a, &b]).await;
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"tokens_per_day": 100_000}),
    )
    .await;
    for replica in [&a, &b] {
        let started = Instant::now();
        while !replica.ask(&key).await {
            assert!(started.elapsed() < Duration::from_secs(3), "the new limit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        admitted += 1;
    }
    billed(&store, admitted).await;
    until_redis_counts(&redis, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_their_503_fast_while_redis_is_down_when_failing_closed() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, store)) = cluster(dir.path(), &redis).await else {
        return;
    };
    assert!(a.ask(&key).await && b.ask(&key).await);

    redis.kill();
    let (sent, finding, slowest) = during_outage([&a, &b], &key, 503, Duration::from_secs(2)).await;
    eprintln!(
        "fail_closed, Redis down: {sent} requests answered 503; finding the outage took \
         {finding:?}, the slowest after that {slowest:?}"
    );
    assert!(slowest < FAST, "a request waited {slowest:?} for Redis");
    assert_eq!(a.degraded().await, 1.0);
    assert_eq!(b.degraded().await, 1.0);

    redis.restart().await;
    until_redis_is_back([&a, &b]).await;
    assert!(a.ask(&key).await && b.ask(&key).await);
    billed(&store, 4).await;
    until_redis_counts(&redis, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deployments_on_one_redis_keep_their_own_counters() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first_url = backend.fresh_database(&tempfile::tempdir().unwrap()).await;
    let second_url = backend.fresh_database(&tempfile::tempdir().unwrap()).await;
    let shared = format!("[redis]\nurl = \"{}\"\n{MOCK_MODEL}", redis.url());
    let acme = json!({"id": "acme", "name": "Acme"});
    let limit = json!({"tokens_per_day": 200});

    // The second deployment's jane uses up her day before it is pointed at the shared Redis.
    let alone = Replica::start_with(dir.path(), &second_url, "alone", MOCK_MODEL);
    alone
        .admin(reqwest::Method::POST, "/tenants", acme.clone())
        .await;
    let second_jane = new_key(&alone, "jane").await;
    alone
        .admin(
            reqwest::Method::PUT,
            "/tenants/acme/users/jane/quota",
            limit.clone(),
        )
        .await;
    let mut used = 0;
    while alone.ask(&second_jane).await {
        used += 1;
        assert!(used < 100, "the limit was reached");
    }
    let second_store = tollgate::store::Store::connect(&second_url, 2)
        .await
        .unwrap();
    billed(&second_store, used).await;
    drop(alone);

    // The first deployment counts in Redis: its bob uses up his day, its jane asks once.
    let first = Replica::start_with(dir.path(), &first_url, "first", &shared);
    first.admin(reqwest::Method::POST, "/tenants", acme).await;
    let first_jane = new_key(&first, "jane").await;
    let first_bob = new_key(&first, "bob").await;
    first
        .admin(
            reqwest::Method::PUT,
            "/tenants/acme/users/bob/quota",
            limit.clone(),
        )
        .await;
    let mut asked = 0;
    while first.ask(&first_bob).await {
        asked += 1;
        assert!(asked < 100, "the limit was reached");
    }
    assert!(first.ask(&first_jane).await);

    // The second deployment joins the same Redis.
    let second = Replica::start_with(dir.path(), &second_url, "second", &shared);
    assert!(
        !second.ask(&second_jane).await,
        "the second deployment rebuilt jane's day from its own database"
    );
    let second_bob = new_key(&second, "bob").await;
    second
        .admin(reqwest::Method::PUT, "/tenants/acme/users/bob/quota", limit)
        .await;
    assert!(
        second.ask(&second_bob).await,
        "bob's usage in the first deployment does not count in the second"
    );
}

/// An identity provider's SCIM deactivation through one replica refuses the user on the other
/// within a second: SCIM writes announce like every other write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_deactivation_reaches_the_other_replica_within_a_second() {
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
    let token = a
        .admin(
            reqwest::Method::POST,
            "/tenants/acme/scim-tokens",
            json!({"name": "okta"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let scim = |method: reqwest::Method, path: &str, body: Value| {
        reqwest::Client::new()
            .request(method, format!("{}/scim/v2/acme{path}", a.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let created: Value = scim(
        reqwest::Method::POST,
        "/Users",
        json!({"userName": "jane@acme.example", "externalId": "jane"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let key = a
        .admin(
            reqwest::Method::POST,
            "/tenants/acme/users/jane/keys",
            json!({"name": "k"}),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.status(&key).await, 200, "b has jane warm in its caches");

    let within = Duration::from_secs(1);
    let deactivate = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
    let response = scim(reqwest::Method::PATCH, &format!("/Users/{id}"), deactivate)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(b.until(&key, 401).await < within, "deactivation seen by b");
    let reactivate = json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}]});
    scim(reqwest::Method::PATCH, &format!("/Users/{id}"), reactivate)
        .await
        .unwrap();
    assert!(b.until(&key, 200).await < within, "reactivation seen by b");
}

/// Both replicas settle the usage that crosses a threshold, concurrently; the mark in
/// PostgreSQL lets each threshold fire once, and each event is delivered by one replica once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fire_each_quota_threshold_once() {
    use crate::webhooks::{Behaviour, FAST_WEBHOOKS_TOML, Receiver};
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b, key, _store)) = cluster_with(dir.path(), &redis, FAST_WEBHOOKS_TOML).await
    else {
        return;
    };
    let receiver_dir = dir.path().join("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let Some(receiver) = Receiver::start(&receiver_dir, Behaviour::default()) else {
        return;
    };
    let created = a
        .admin(
            reqwest::Method::POST,
            "/tenants/acme/webhooks",
            json!({"url": receiver.url(), "events": ["quota.threshold"],
                   "thresholds": [25, 50, 75]}),
        )
        .await;
    receiver.trust(created["secret"].as_str().unwrap());
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/users/jane/quota",
        json!({"tokens_per_day": 200}),
    )
    .await;

    // Both replicas at once, until the limit refuses both.
    let mut admitted = 0;
    for _ in 0..40 {
        let (on_a, on_b) = tokio::join!(a.ask(&key), b.ask(&key));
        admitted += usize::from(on_a) + usize::from(on_b);
        if !on_a && !on_b {
            break;
        }
    }
    assert!(admitted > 10, "the load ran: {admitted} requests admitted");

    receiver.delivered(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered = receiver.delivered(3).await;
    let mut thresholds: Vec<i64> = delivered
        .iter()
        .map(|d| d["event"]["data"]["threshold_percent"].as_i64().unwrap())
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, vec![25, 50, 75], "{delivered:#?}");
    assert_eq!(
        receiver.received().len(),
        3,
        "no event sent twice: {:#?}",
        receiver.received()
    );
}

/// A group's new model list, saved through one replica, narrows its members' access on the
/// other within a second (the tenant's groups are cached whole, for 5 s without the feed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_change_reaches_the_other_replica_within_a_second() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh_database(&dir).await;
    let a = Replica::start_with(dir.path(), &url, "a", MOCK_MODEL);
    let b = Replica::start_with(dir.path(), &url, "b", MOCK_MODEL);
    a.admin(
        reqwest::Method::POST,
        "/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    let iss = "https://idp.acme.test";
    a.admin(
        reqwest::Method::POST,
        "/issuers",
        json!({"issuer": iss, "tenant": "acme", "audiences": [crate::identity::AUD],
               "hs256_secret": crate::identity::HS_SECRET, "groups_claim": "groups"}),
    )
    .await;
    new_key(&a, "jane").await;
    let token = crate::identity::hs_token(iss, "jane", json!({"groups": ["eng"]}));
    let model = "/v1/models/m";
    assert_eq!(b.status_at(model, &token).await, 200, "b has jane warm");

    let within = Duration::from_secs(1);
    a.admin(
        reqwest::Method::PUT,
        "/tenants/acme/groups/eng",
        json!({"models": ["another-model"]}),
    )
    .await;
    assert!(
        b.until_at(model, &token, 404).await < within,
        "the group's list seen by b"
    );
    a.admin(
        reqwest::Method::DELETE,
        "/tenants/acme/groups/eng",
        json!({}),
    )
    .await;
    assert!(
        b.until_at(model, &token, 200).await < within,
        "the group's deletion seen by b"
    );
}
