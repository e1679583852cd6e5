//! The OpenAPI document: served without credentials, and equal to the committed
//! `docs/openapi.json`.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Backend, TestApp};

/// Set to rewrite `docs/openapi.json` from the code instead of comparing the two.
const REGENERATE: &str = "TOLLGATE_WRITE_OPENAPI";

fn committed_path() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "docs", "openapi.json"]
        .iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // No credentials: the document is public.
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = response.text().await.unwrap();
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/admin/v1/tenants",
        "/scim/v2/{tenant}/Users",
        "/v1/chat/completions",
        "/v1/messages",
        "/healthz",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} is missing");
    }
    let path = committed_path();
    if std::env::var_os(REGENERATE).is_some() {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not the document the gateway serves; regenerate it with\n  \
         {REGENERATE}=1 cargo test --test api -- openapi::the_served_document_is_the_committed_one\n\
         and commit it"
    );
}
