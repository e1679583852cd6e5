//! The auth stage's cost: a warm token → Principal (cache hits only), an API key, and cold
//! verifications (signature checked again) for RS256, ES256, EdDSA and HS256.
//!
//! `cargo bench --bench auth`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tollgate::auth::Authenticator;
use tollgate::clock::Timestamp;
use tollgate::config::AuthConfig;
use tollgate::store::{Issuer, KeySource, NewApiKey, Store, SubjectCase, UserPatch};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Setup {
    auth: Arc<Authenticator>,
    tokens: Vec<(&'static str, String)>,
    api_key: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    // Seeded in one transaction: no cache exists yet to tell of the writes.
    let mut tx = store.begin().await.unwrap();
    tx.create_tenant("acme", "Acme").await.unwrap();
    tx.upsert_user("acme", "jane", &UserPatch::default())
        .await
        .unwrap();
    let secret = "a-benchmark-hs256-secret-0123456789abcdef";
    let sources = [
        ("RS256", KeySource::PublicKeyPem(fixture("rsa_public.pem"))),
        ("ES256", KeySource::PublicKeyPem(fixture("ec_public.pem"))),
        ("EdDSA", KeySource::PublicKeyPem(fixture("ed_public.pem"))),
        ("HS256", KeySource::Hs256Secret(secret.into())),
    ];
    for (alg, source) in sources {
        tx.create_issuer(&Issuer {
            id: alg.to_owned(),
            issuer: format!("https://{alg}.bench"),
            tenant_id: Some("acme".into()),
            tenant_claim: None,
            audiences: vec!["tollgate".into()],
            key_source: source,
            algorithms: vec![alg.into()],
            subject_claim: "sub".into(),
            subject_case: SubjectCase::Exact,
            jit_provisioning: false,
            leeway_seconds: 30,
            created_at: Timestamp::now(),
            console_client_id: None,
            groups_claim: None,
            required_scopes: Vec::new(),
        })
        .await
        .unwrap();
    }
    let hash = tollgate::auth::api_keys::hash("tg-benchmark-key-0123456789012345678901234567");
    tx.create_api_key(&NewApiKey {
        id: "k1",
        tenant_id: "acme",
        subject: "jane",
        name: "bench",
        key_hash: &hash,
        key_prefix: "tg-benchm",
        expires_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let auth = Arc::new(
        Authenticator::from_config(store, &AuthConfig::default())
            .await
            .unwrap(),
    );
    let now = Timestamp::now().millis() / 1000;
    let claims = |alg: &str| {
        json!({"iss": format!("https://{alg}.bench"), "sub": "jane", "aud": "tollgate",
               "iat": now, "exp": now + 3600, "jti": "bench-jti"})
    };
    let keys = [
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap(),
        ),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap(),
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(fixture("ed_private.pem").as_bytes()).unwrap(),
        ),
        (
            "HS256",
            Algorithm::HS256,
            EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        ),
    ];
    let tokens = keys
        .into_iter()
        .map(|(name, alg, key)| {
            (
                name,
                jsonwebtoken::encode(&Header::new(alg), &claims(name), &key).unwrap(),
            )
        })
        .collect::<Vec<_>>();
    // Every token must be accepted, or the numbers mean nothing.
    for (name, token) in &tokens {
        assert!(
            auth.authenticate(token, None).await.is_ok(),
            "{name} refused"
        );
    }
    let api_key = "tg-benchmark-key-0123456789012345678901234567".to_owned();
    assert!(auth.authenticate(&api_key, None).await.is_ok());
    Setup {
        auth,
        tokens,
        api_key,
        _dir: dir,
    }
}

fn auth_stage(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let setup = runtime.block_on(setup());
    let mut group = c.benchmark_group("auth");
    let (_, rs256) = &setup.tokens[0];
    group.bench_function("warm RS256 token -> Principal", |b| {
        b.to_async(&runtime)
            .iter(|| async { setup.auth.authenticate(rs256, None).await.unwrap() })
    });
    group.bench_function("API key -> Principal", |b| {
        b.to_async(&runtime)
            .iter(|| async { setup.auth.authenticate(&setup.api_key, None).await.unwrap() })
    });
    for (name, token) in &setup.tokens {
        group.bench_function(format!("cold {name} verification -> Principal"), |b| {
            b.to_async(&runtime)
                .iter(|| async { setup.auth.authenticate_uncached(token).await.unwrap() })
        });
    }
    group.finish();
}

criterion_group!(benches, auth_stage);
criterion_main!(benches);
