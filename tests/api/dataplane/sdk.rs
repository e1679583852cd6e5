//! The official `openai` and `anthropic` Python SDKs against a running gateway
//! (tests/sdk/*.py: `openai_sdk.py` for chat, embeddings and models, `openai_dialects.py` for the
//! Responses API and legacy completions, `anthropic_sdk.py` for the Messages API).
//!
//! Without Python or the package a test says why and passes, except under `CI`, where it must
//! run (`.ci/run` installs the packages).

use std::process::Command;

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::Upstream;

use super::{DataPlane, mock_provider, model, provider};
use crate::identity::idp::{self, JwksServer};

/// Whether `python3` can import `package`; if not, the test is skipped, except under CI.
fn python_with(package: &str, install: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {package}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the {package} SDK test: python3 -m pip install '{install}'"
        );
        eprintln!("skipped: `python3 -c 'import {package}'` fails; pip install '{install}'");
    }
    found
}

/// Runs a script of tests/sdk with `args`; its stdout, once it passed.
async fn run_script(name: &str, args: Vec<String>) -> String {
    let script = format!("{}/tests/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).args(args).output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "the SDK script {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_works_against_the_gateway() {
    if !python_with("openai", "openai>=1.40") {
        return;
    }
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url), mock_provider("demo")],
        vec![
            model("m", &[("up", "real-m")], &[]),
            model("e", &[("up", "real-e")], &[]),
            model("demo", &[("demo", "mock-1")], &[]),
            model("meta/llama-3", &[("demo", "mock-1")], &[]),
        ],
        |_| {},
    )
    .await;
    run_script(
        "openai_sdk.py",
        vec![plane.app.base.clone(), plane.key.clone()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_speaks_responses_and_completions_through_the_gateway() {
    if !python_with("openai", "openai>=1.40") {
        return;
    }
    let (native, compat, anthropic) = (
        Upstream::healthy().await,
        Upstream::healthy().await,
        Upstream::healthy().await,
    );
    let mut chat_only = provider("compat", &compat.base_url);
    chat_only.responses_api = Some(false);
    let mut claude = provider("anthropic", &anthropic.root_url());
    claude.kind = "anthropic".into();
    let plane = DataPlane::start(
        vec![provider("openai", &native.base_url), chat_only, claude],
        vec![
            model("gpt", &[("openai", "gpt-real")], &[]),
            model("compat", &[("compat", "compat-real")], &[]),
            model("claude", &[("anthropic", "claude-real")], &[]),
        ],
        |_| {},
    )
    .await;
    run_script(
        "openai_dialects.py",
        vec![plane.app.base.clone(), plane.key.clone()],
    )
    .await;
    assert_eq!(native.recorded()[0].path, "/v1/responses");
    assert!(
        compat
            .recorded()
            .iter()
            .all(|seen| seen.path == "/v1/chat/completions"),
        "the chat-only server never saw /v1/responses"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_sdk_works_against_the_gateway() {
    if !python_with("anthropic", "anthropic==2.16.0") {
        return;
    }
    let (native, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let mut anthropic = provider("anthropic", &native.root_url());
    anthropic.kind = "anthropic".into();
    let plane = DataPlane::start(
        vec![anthropic, provider("openai", &openai.base_url)],
        vec![
            model("claude", &[("anthropic", "claude-real")], &[]),
            model("gpt", &[("openai", "gpt-real")], &[]),
        ],
        |config| config.metering.flush_interval = Duration::from_millis(20),
    )
    .await;
    // The same user by a bearer JWT, signed with a real key served from a JWKS endpoint.
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let iss = "https://idp.acme.test";
    plane
        .app
        .register_issuer(iss, json!({"tenant": "acme", "jwks_url": jwks.url()}))
        .await;
    let jwt = idp::sign("rsa-1", &idp::claims(iss, "jane"));
    let limited = plane.app.user_key("acme", "limited").await;
    plane
        .app
        .put_user_quota("acme", "limited", json!({"requests_per_minute": 1}))
        .await;

    let args = vec![plane.app.base.clone(), plane.key.clone(), jwt, limited];
    let told = run_script("anthropic_sdk.py", args).await;
    // Whatever the SDK was told is what the gateway stored, to the token.
    let mut checked = 0;
    for line in told.lines() {
        let told: Value = serde_json::from_str(line).unwrap();
        let event = plane.stored(told["request_id"].as_str().unwrap()).await;
        assert_eq!(
            (event.tally.prompt_tokens, event.tally.completion_tokens),
            (
                told["prompt"].as_i64().unwrap(),
                told["output"].as_i64().unwrap()
            ),
            "{told}"
        );
        assert!(!event.estimated, "{told}");
        checked += 1;
    }
    assert_eq!(checked, 16, "four calls per model and credential");
}
