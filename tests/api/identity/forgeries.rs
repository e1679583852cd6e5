//! Forged and doctored tokens: every one is refused, and nothing in a token can make tollgate
//! fetch a key from somewhere the operator did not configure.

use serde_json::{Value, json};

use super::idp::{self, JwksServer, b64, b64_json, sign, sign_hs256, sign_with_header};
use crate::support::{Backend, TestApp, fixture};

const ISS: &str = "https://idp.acme.test";
const PEM_ISS: &str = "https://pem.acme.test";

async fn setup() -> (TestApp, JwksServer) {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let jwks = JwksServer::start(&["rsa-1", "ec-1"]).await;
    app.create_tenant("acme").await;
    app.put_user("acme", "jane", json!({})).await;
    app.put_user("acme", "admin", json!({"role": "admin"}))
        .await;
    app.register_issuer(ISS, json!({"tenant": "acme", "jwks_url": jwks.url()}))
        .await;
    app.register_issuer(
        PEM_ISS,
        json!({"tenant": "acme", "public_key_pem": fixture("keys/rsa_public.pem")}),
    )
    .await;
    // Warm the JWKS so later refetches are governed by the cooldown.
    app.assert_accepted(&sign("rsa-1", &idp::claims(ISS, "jane")))
        .await;
    (app, jwks)
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let (app, _jwks) = setup().await;
    let claims = Value::Object(idp::claims(ISS, "jane"));
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64_json(&json!({"alg": alg, "typ": "JWT"}));
        let body = b64_json(&claims);
        app.assert_refused(&format!("{header}.{body}."), "unsupported_algorithm")
            .await;
        app.assert_refused(
            &format!("{header}.{body}.{}", b64(b"sig")),
            "unsupported_algorithm",
        )
        .await;
    }
    // RS256 → HS256 confusion: the public key used as an HMAC secret.
    let pem = fixture("keys/rsa_public.pem");
    let confused = sign_hs256(
        pem.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &idp::claims(PEM_ISS, "jane"),
    );
    app.assert_refused(&confused, "unsupported_algorithm").await;
    let jwk_n = idp::public_jwk("rsa-1")["n"].as_str().unwrap().to_owned();
    let confused = sign_hs256(
        jwk_n.as_bytes(),
        &json!({"alg": "HS256", "kid": "rsa-1"}),
        &idp::claims(ISS, "jane"),
    );
    app.assert_refused(&confused, "unsupported_algorithm").await;
}

#[tokio::test]
async fn keys_named_by_the_token_are_never_used_or_fetched() {
    let (app, jwks) = setup().await;
    let hits_before = jwks.hits();
    let claims = idp::claims(ISS, "admin");
    let attacker_jwk = idp::public_jwk("rsa-2");
    let bait = format!("{}/bait/keys.json", jwks.base);
    for header in [
        json!({"alg": "RS256", "kid": "rsa-2", "jwk": attacker_jwk}),
        json!({"alg": "RS256", "jwk": attacker_jwk}),
        json!({"alg": "RS256", "kid": "rsa-2", "jku": bait}),
        json!({"alg": "RS256", "jku": bait}),
        json!({"alg": "RS256", "kid": "rsa-2", "x5u": bait}),
        json!({"alg": "RS256", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
    ] {
        let token = sign_with_header("rsa-2", &header, &claims);
        app.assert_refused(&token, "malformed_token").await;
    }
    assert_eq!(jwks.bait_hits(), 0, "a jku/x5u in a token is never fetched");
    assert_eq!(
        jwks.hits(),
        hits_before,
        "and never triggers a JWKS fetch either"
    );

    // A symmetric key slipped into the JWKS is never used.
    let secret = b"a-symmetric-secret-in-the-jwks-0123456789";
    let mut keys = vec![idp::public_jwk("rsa-1"), idp::public_jwk("ec-1")];
    keys.push(json!({"kty": "oct", "kid": "hmac", "k": b64(secret), "alg": "HS256"}));
    jwks.serve_keys(Value::Array(keys)).await;
    let hmac = sign_hs256(
        secret,
        &json!({"alg": "HS256", "kid": "hmac"}),
        &idp::claims(ISS, "jane"),
    );
    app.assert_refused(&hmac, "unsupported_algorithm").await;
}

#[tokio::test]
async fn kid_injection_strings_are_just_unknown_kids() {
    let (app, jwks) = setup().await;
    let hits_before = jwks.hits();
    let claims = idp::claims(ISS, "jane");
    for kid in [
        "../../../../../../etc/passwd",
        "/dev/null",
        "' OR '1'='1' --",
        "rsa-1' UNION SELECT 'secret",
        "$(curl http://127.0.0.1:1/pwned)",
        "`id`; rm -rf /",
        "rsa-1\u{0}",
        "rsa-1 ",
        "RSA-1",
    ] {
        let token = sign_with_header("rsa-1", &json!({"alg": "RS256", "kid": kid}), &claims);
        app.assert_refused(&token, "unknown_key_id").await;
    }
    assert!(
        jwks.hits() <= hits_before + 1,
        "one refetch per cooldown at most: {}",
        jwks.hits()
    );
    let explained = app
        .explain(&sign_with_header(
            "rsa-1",
            &json!({"alg": "RS256", "kid": "nope"}),
            &claims,
        ))
        .await;
    let key_step = explained["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "key")
        .unwrap();
    let detail = key_step["detail"].as_str().unwrap();
    assert!(
        detail.contains("rsa-1") && detail.contains("ec-1"),
        "lists the kids it has: {detail}"
    );
}

#[tokio::test]
async fn doctored_tokens_fail_the_signature() {
    let (app, _jwks) = setup().await;
    let good = sign("ec-1", &idp::claims(ISS, "jane"));
    let parts: Vec<&str> = good.split('.').collect();

    // ES256 with an all-zero signature (r = s = 0).
    let zeros = format!("{}.{}.{}", parts[0], parts[1], b64(&[0u8; 64]));
    app.assert_refused(&zeros, "bad_signature").await;
    // Payload swapped after signing: another subject, a longer life.
    let mut claims = idp::claims(ISS, "admin");
    claims.insert("exp".into(), json!(idp::now() + 86_400 * 365));
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64_json(&Value::Object(claims)),
        parts[2]
    );
    app.assert_refused(&swapped, "bad_signature").await;
    // Signed by a key the issuer does not have, claiming one of its kids.
    let wrong_key = sign_with_header(
        "rsa-2",
        &json!({"alg": "RS256", "kid": "rsa-1"}),
        &idp::claims(ISS, "jane"),
    );
    app.assert_refused(&wrong_key, "bad_signature").await;
    // Signature bytes flipped.
    let mut flipped = good.clone();
    flipped.pop();
    flipped.push(if good.ends_with('A') { 'B' } else { 'A' });
    let reason = app.explain(&flipped).await["reason"].clone();
    assert!(
        reason == "bad_signature" || reason == "malformed_token",
        "{reason}"
    );
}

#[tokio::test]
async fn unusual_headers_and_claims_are_refused() {
    let (app, _jwks) = setup().await;
    let claims = idp::claims(ISS, "jane");
    for header in [
        json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
        json!({"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false}),
        json!({"alg": "RS256", "kid": "rsa-1", "cty": "JWT"}),
    ] {
        app.assert_refused(
            &sign_with_header("rsa-1", &header, &claims),
            "malformed_token",
        )
        .await;
    }
    // A JWT whose payload is itself a JWT.
    let inner = sign("rsa-1", &claims);
    let header = b64_json(&json!({"alg": "RS256", "kid": "rsa-1"}));
    let input = format!("{header}.{}", b64(inner.as_bytes()));
    let (_, key) = idp::signing_key("rsa-1");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::RS256).unwrap();
    app.assert_refused(&format!("{input}.{signature}"), "malformed_token")
        .await;

    // `iss` games: an array, a trailing slash, another case.
    let mut array_iss = claims.clone();
    array_iss.insert("iss".into(), json!([ISS]));
    app.assert_refused(&sign("rsa-1", &array_iss), "unknown_issuer")
        .await;
    for near in [
        format!("{ISS}/"),
        ISS.to_uppercase(),
        ISS.replace("https", "http"),
    ] {
        let token = sign("rsa-1", &idp::claims(&near, "jane"));
        app.assert_refused(&token, "unknown_issuer").await;
        let hints = app.explain(&token).await["hints"].to_string();
        assert!(hints.contains("must match exactly"), "{near}: {hints}");
    }
    // `aud` as an array with one match is fine; no `aud` at all is not.
    let mut multi = claims.clone();
    multi.insert("aud".into(), json!(["other", "tollgate"]));
    app.assert_accepted(&sign("rsa-1", &multi)).await;
    let mut none = claims.clone();
    none.remove("aud");
    app.assert_refused(&sign("rsa-1", &none), "audience_mismatch")
        .await;
    let explained = app.explain(&sign("rsa-1", &none)).await.to_string();
    assert!(explained.contains("expected one of"), "{explained}");
    // A token far over the size limit.
    let mut huge = claims.clone();
    huge.insert("padding".into(), json!("x".repeat(10_000)));
    app.assert_refused(&sign("rsa-1", &huge), "malformed_token")
        .await;
    // Expired by clock skew: explain says by how much.
    let mut late = claims.clone();
    late.insert("exp".into(), json!(idp::now() - 100));
    let explained = app.explain(&sign("rsa-1", &late)).await.to_string();
    assert!(
        explained.contains("expired 100 s ago") || explained.contains("expired 101 s ago"),
        "{explained}"
    );
}
