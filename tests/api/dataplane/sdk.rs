//! The official `openai` Python SDK against a running gateway (tests/sdk/openai_sdk.py, and
//! tests/sdk/openai_dialects.py for the Responses API and legacy completions).
//!
//! Without Python or the package a test says why and passes, except under `CI`, where it must
//! run (`.ci/run` installs the package).

use std::process::Command;

use super::upstream::Upstream;
use super::{DataPlane, model, provider};

fn python_with_openai() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether the SDK is there to test; under `CI` it must be.
fn sdk_installed() -> bool {
    if python_with_openai() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the openai SDK test: python3 -m pip install 'openai>=1.40'"
    );
    eprintln!("skipped: `python3 -c 'import openai'` fails; pip install 'openai>=1.40'");
    false
}

/// Runs `tests/sdk/{script}` against `plane`; it must exit 0.
async fn run(script: &str, plane: &DataPlane) {
    let script = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let (base, key) = (plane.app.base.clone(), plane.key.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(key)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_works_against_the_gateway() {
    if !sdk_installed() {
        return;
    }
    let upstream = Upstream::healthy().await;
    let mut demo = provider("demo", "http://unused.invalid");
    demo.kind = "mock".into();
    demo.base_url = None;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url), demo],
        vec![
            model("m", &[("up", "real-m")], &[]),
            model("e", &[("up", "real-e")], &[]),
            model("demo", &[("demo", "mock-1")], &[]),
        ],
        |_| {},
    )
    .await;
    run("openai_sdk.py", &plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_speaks_responses_and_completions_through_the_gateway() {
    if !sdk_installed() {
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
    run("openai_dialects.py", &plane).await;
    assert_eq!(native.recorded()[0].path, "/v1/responses");
    assert!(
        compat
            .recorded()
            .iter()
            .all(|seen| seen.path == "/v1/chat/completions"),
        "the chat-only server never saw /v1/responses"
    );
}
