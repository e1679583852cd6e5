//! The operator's tools: `tollgate explain` and `tollgate token mint`.

use std::process::Command;

use serde_json::{Value, json};

use super::{HS_SECRET, hs_token};
use crate::support::{Backend, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const ISS: &str = "https://hs.acme.test";

fn tollgate(app: &TestApp) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOLLGATE__DATABASE__URL", &app.config.database.url)
        .env("TOLLGATE__LOG__LEVEL", "error");
    command
}

#[tokio::test]
async fn explain_walks_a_token_and_exits_by_verdict() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.tenant_with_hs256_issuer("acme", ISS, "jane").await;
    app.put_user("acme", "sus", json!({"status": "suspended"}))
        .await;

    let good = hs_token(ISS, "jane", json!({}));
    let output = tollgate(&app).args(["explain", &good]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ACCEPTED: tenant `acme`, subject `jane`"),
        "{text}"
    );
    assert!(text.contains("signature"), "every step is listed: {text}");

    let bad = hs_token(ISS, "sus", json!({}));
    let output = tollgate(&app)
        .args(["explain", "--json", &format!("Bearer {bad}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["reason"], "user_suspended");
    let status_step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "status")
        .unwrap();
    assert_eq!(status_step["ok"], false);
    assert!(
        status_step["detail"]
            .as_str()
            .unwrap()
            .contains("suspended (since 20"),
        "{status_step}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(&bad),
        "the token is not echoed"
    );
}

#[tokio::test]
async fn minted_tokens_are_accepted() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    app.put_user("acme", "jane", json!({})).await;
    app.register_issuer(
        "https://multi.test",
        json!({"tenant_claim": "org", "hs256_secret": HS_SECRET}),
    )
    .await;
    let output = Command::new(BIN)
        .env("MINT_SECRET", HS_SECRET)
        .args([
            "token",
            "mint",
            "--issuer",
            "https://multi.test",
            "--secret-env",
            "MINT_SECRET",
            "--sub",
            "jane",
            "--ttl",
            "5m",
            "--claim",
            "org=acme",
            "--claim",
            "level=3",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    app.assert_accepted(token.trim()).await;
    let explained = app.explain(token.trim()).await;
    assert_eq!(explained["tenant"], "acme");

    let short = Command::new(BIN)
        .env("MINT_SECRET", "short")
        .args([
            "token",
            "mint",
            "--issuer",
            "x",
            "--secret-env",
            "MINT_SECRET",
            "--sub",
            "s",
        ])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 32 bytes"));
}

/// The operator's log: one structured line per refusal with the reason, issuer, tenant and
/// subject — and never the token, the secret or the admin token.
#[tokio::test]
async fn refusals_are_logged_with_their_reason_and_never_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let admin_token = "log-test-admin-token-0123456789abcdef";
    let mut command = crate::cli::tollgate(dir.path());
    command
        .env("TOLLGATE__SERVER__LISTEN", "127.0.0.1:0")
        .env("TOLLGATE__LOG__FORMAT", "json")
        .env("TOLLGATE_ADMIN_TOKEN", admin_token);
    let (mut child, addr, early, lines) = crate::cli::serve(command);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}/admin/v1{path}"))
            .bearer_auth(admin_token)
            .json(&body)
            .send()
    };
    admin(
        reqwest::Method::POST,
        "/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await
    .unwrap();
    admin(
        reqwest::Method::POST,
        "/issuers",
        json!({"issuer": ISS, "tenant": "acme", "audiences": ["tollgate"], "hs256_secret": HS_SECRET}),
    )
    .await
    .unwrap();
    let unknown = hs_token(ISS, "nobody", json!({}));
    let garbage = "not.a.token-but-a-secret-looking-string";
    let key = format!("tg-{}", "Z".repeat(43));
    let log =
        refused_then_stopped(&addr, &[&unknown, garbage, &key], &mut child, early, lines).await;

    let refusals: Vec<Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "authentication refused")
        .collect();
    assert_eq!(refusals.len(), 3, "one line per refusal: {log:#?}");
    let unknown_user = refusals
        .iter()
        .find(|l| l["reason"] == "unknown_user")
        .unwrap();
    assert_eq!(unknown_user["tenant"], "acme");
    assert_eq!(unknown_user["subject"], "nobody");
    assert_eq!(unknown_user["issuer"], ISS);
    assert!(refusals.iter().any(|l| l["reason"] == "malformed_token"));
    assert!(refusals.iter().any(|l| l["reason"] == "unknown_api_key"));

    let signature = unknown.rsplit('.').next().unwrap();
    for line in &log {
        for secret in [
            unknown.as_str(),
            signature,
            garbage,
            &key[3..],
            HS_SECRET,
            admin_token,
        ] {
            assert!(
                !line.contains(secret),
                "a secret leaked into the log: {line}"
            );
        }
    }
}

/// The text log (the default format) of a real `serve`: values from unverified tokens — an
/// `iss` and an `alg` carrying a newline, a fake timestamp and terminal escape codes — are
/// written escaped inside their line, never as a line of their own or as raw ESC bytes.
#[tokio::test]
async fn the_text_log_escapes_what_requests_carry() {
    use super::idp::{b64, b64_json};
    let dir = tempfile::tempdir().unwrap();
    let mut command = crate::cli::tollgate(dir.path());
    command
        .env("TOLLGATE__SERVER__LISTEN", "127.0.0.1:0")
        .env("TOLLGATE__LOG__FORMAT", "text");
    let (mut child, addr, early, lines) = crate::cli::serve(command);
    let forged = "2026-01-01T00:00:00.000000Z  INFO tollgate: user admin granted";
    let header = b64_json(&json!({"alg": format!("HS256\n{forged}"), "typ": "JWT"}));
    let payload = b64_json(&json!({
        "iss": format!("https://evil.test\n{forged}\u{1b}[2J\u{1b}]0;owned\u{7}"),
        "sub": "x\r\nFORGED",
        "aud": "tollgate",
        "exp": 4_000_000_000u64,
    }));
    let token = format!("{header}.{payload}.{}", b64(b"signature"));
    // A second token whose header is fine, so the refusal names its (unverified) issuer.
    let header = b64_json(&json!({"alg": "HS256", "typ": "JWT"}));
    let named = format!("{header}.{payload}.{}", b64(b"signature"));
    let log = refused_then_stopped(&addr, &[&token, &named], &mut child, early, lines).await;
    let refusals: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("authentication refused"))
        .collect();
    assert_eq!(refusals.len(), 2, "{log:#?}");
    assert!(
        refusals
            .iter()
            .any(|line| line.contains(r"https://evil.test\n2026-01-01T00:00:00.000000Z")),
        "the issuer is in the line, escaped: {refusals:#?}"
    );
    for line in &log {
        assert!(
            !line.starts_with("2026-01-01") && !line.contains("\u{1b}") && !line.contains('\r'),
            "a request forged or coloured a log line: {line:?}"
        );
        assert!(!line.trim_start().starts_with("FORGED"), "{line:?}");
    }
}

/// Sends each bearer to the `serve` at `addr` (each must get 401), stops it, and returns
/// everything it logged.
async fn refused_then_stopped(
    addr: &str,
    bearers: &[&str],
    child: &mut std::process::Child,
    early: Vec<String>,
    lines: std::sync::mpsc::Receiver<String>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    for bearer in bearers {
        let status = client
            .get(format!("http://{addr}/v1/models"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    crate::cli::terminate(child);
    child.wait().unwrap();
    early.into_iter().chain(lines.iter()).collect()
}
