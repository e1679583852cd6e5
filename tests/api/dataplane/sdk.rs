//! The official `openai` Python SDK against a running gateway (tests/sdk/openai_sdk.py).
//!
//! Without Python or the package the test says why and passes, except under `CI`, where it
//! must run (`.ci/run` installs the package).

use std::process::Command;

use super::upstream::Upstream;
use super::{DataPlane, mock_provider, model, provider};

fn python_with_openai() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_works_against_the_gateway() {
    if !python_with_openai() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the openai SDK test: python3 -m pip install 'openai>=1.40'"
        );
        eprintln!("skipped: `python3 -c 'import openai'` fails; pip install 'openai>=1.40'");
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk.py");
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
