//! A test identity provider: real keys, a JWKS endpoint on loopback that counts its hits and
//! can be rotated or taken down, and a token minter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::support::fixture;

/// The signing keys of the fixtures, by kid.
pub fn signing_key(kid: &str) -> (Algorithm, EncodingKey) {
    let pem = |name: &str| fixture(&format!("keys/{name}"));
    match kid {
        "rsa-1" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem("rsa_private.pem").as_bytes()).unwrap(),
        ),
        "rsa-2" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem("rsa2_private.pem").as_bytes()).unwrap(),
        ),
        "ec-1" => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem("ec_private.pem").as_bytes()).unwrap(),
        ),
        "ed-1" => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem("ed_private.pem").as_bytes()).unwrap(),
        ),
        other => panic!("no fixture key {other}"),
    }
}

/// The public JWK of a fixture key.
pub fn public_jwk(kid: &str) -> Value {
    let all: Value = serde_json::from_str(&fixture("keys/jwks.json")).unwrap();
    all[kid].clone()
}

/// Claims for a token that is valid now: `iss`, `sub`, `aud`, `iat`, `exp` (+10 min), `jti`.
pub fn claims(iss: &str, sub: &str) -> Map<String, Value> {
    let now = now();
    json!({
        "iss": iss, "sub": sub, "aud": "tollgate",
        "iat": now, "exp": now + 600,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
    .as_object()
    .unwrap()
    .clone()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `claims` with fixture key `kid` (its algorithm), putting `kid` in the header.
pub fn sign(kid: &str, claims: &Map<String, Value>) -> String {
    let (algorithm, key) = signing_key(kid);
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Signs with fixture key `kid` but any header (for forgeries and odd headers).
pub fn sign_with_header(kid: &str, header: &Value, claims: &Map<String, Value>) -> String {
    let (algorithm, key) = signing_key(kid);
    let input = format!(
        "{}.{}",
        b64_json(header),
        b64_json(&Value::Object(claims.clone()))
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, algorithm).unwrap();
    format!("{input}.{signature}")
}

/// HS256 with a secret.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Map<String, Value>) -> String {
    let key = EncodingKey::from_secret(secret).unwrap();
    let input = format!(
        "{}.{}",
        b64_json(header),
        b64_json(&Value::Object(claims.clone()))
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{input}.{signature}")
}

pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Shared {
    jwks: Mutex<Value>,
    hits: AtomicUsize,
    down: AtomicBool,
    hang: AtomicBool,
    /// Hits on the "attacker" routes a forged `jku`/`x5u` points at.
    bait_hits: AtomicUsize,
}

/// A JWKS endpoint on 127.0.0.1, port 0.
#[derive(Clone)]
pub struct JwksServer {
    pub base: String,
    shared: Arc<Shared>,
}

impl JwksServer {
    /// Serves the public keys of `kids`.
    pub async fn start(kids: &[&str]) -> Self {
        let shared = Arc::new(Shared {
            jwks: Mutex::new(
                json!({ "keys": kids.iter().map(|k| public_jwk(k)).collect::<Vec<_>>() }),
            ),
            hits: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            bait_hits: AtomicUsize::new(0),
        });
        async fn jwks(State(shared): State<Arc<Shared>>) -> axum::response::Response {
            use axum::response::IntoResponse;
            shared.hits.fetch_add(1, Ordering::SeqCst);
            if shared.hang.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            if shared.down.load(Ordering::SeqCst) {
                return (http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
            }
            axum::Json(shared.jwks.lock().await.clone()).into_response()
        }
        async fn bait(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
            shared.bait_hits.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({ "keys": [] }))
        }
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .route(
                "/redirect",
                get(|| async { axum::response::Redirect::temporary("/jwks.json") }),
            )
            .route("/bait/{*rest}", get(bait))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, shared }
    }

    pub fn url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn bait_hits(&self) -> usize {
        self.shared.bait_hits.load(Ordering::SeqCst)
    }

    pub async fn serve_keys(&self, keys: Value) {
        *self.shared.jwks.lock().await = json!({ "keys": keys });
    }

    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    pub fn set_hang(&self, hang: bool) {
        self.shared.hang.store(hang, Ordering::SeqCst);
    }
}

/// Signs with fixture key `kid` as algorithm `alg` (PS256 with an RSA key, say).
pub fn sign_as(kid: &str, alg: Algorithm, claims: &Map<String, Value>) -> String {
    let (_, key) = signing_key(kid);
    let header = json!({ "alg": format!("{alg:?}"), "kid": kid, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        b64_json(&header),
        b64_json(&Value::Object(claims.clone()))
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg).unwrap();
    format!("{input}.{signature}")
}
