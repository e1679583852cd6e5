//! The OpenAPI document: served without credentials, equal to the committed
//! `docs/openapi.json`, and the gateway fuzzed against it with schemathesis.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Backend, MOCK_MODEL, TestApp, json};

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

/// Operations the fuzzer must not call: discovery fetches the URL it is given, which would send
/// the gateway to whatever host schemathesis makes up.
const NEVER_CALLED: [&str; 1] = ["issuers_discover"];

/// Operations that would take the seeded tenant away (delete or disable it) for every other
/// operation: they are fuzzed, but never on the seeded tenant.
const ON_RANDOM_TENANTS_ONLY: [&str; 2] = ["tenants_delete", "tenants_update"];

/// Test cases per operation and phase: enough to find what is not in the document, few enough
/// that the whole run stays within a couple of minutes on two cores.
const MAX_EXAMPLES: u32 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    if Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run schemathesis: pip install 'schemathesis==4.32.5'"
        );
        eprintln!("skipped: `schemathesis` is not installed (pip install 'schemathesis==4.32.5')");
        return;
    }
    let mock = tollgate::Config::from_toml(MOCK_MODEL).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.providers = mock.providers;
        config.models = mock.models;
        // Nothing the fuzzer registers may make the gateway call out while it runs: no
        // webhook delivery (the first poll is at start, before any endpoint exists) and no
        // JWKS refresh.
        config.webhooks.poll_interval = std::time::Duration::from_secs(86_400);
        config.auth.jwks_refresh_interval = std::time::Duration::from_secs(86_400);
    })
    .await;
    let seeded = seed(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, fuzz_config(&seeded)).unwrap();
    let started = Instant::now();
    // One run per part, in this order: schemathesis reuses the ids it reads in answers, so the
    // admin API's run may revoke the SCIM token or disable the data plane's tenant; it goes last.
    for part in PARTS {
        let report = fuzz(&app, &config, &seeded, part).await;
        // What was tested, for a run with --nocapture.
        eprintln!("{report}");
    }
    eprintln!(
        "schemathesis ran for {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The parts of the API fuzzed one after the other, by path.
const PARTS: [&str; 3] = ["^/(v1/|healthz|readyz|openapi)", "^/scim/", "^/admin/"];

/// Runs schemathesis on the operations whose paths match `part`; panics with its report on any
/// failure, returns the report otherwise.
async fn fuzz(app: &TestApp, config: &std::path::Path, seeded: &Seeded, part: &str) -> String {
    let mut command = Command::new("schemathesis");
    command
        .arg("--config-file")
        .arg(config)
        .args(["run", &app.url("/openapi.json"), "--url", &app.base])
        .args(["--include-path-regex", part])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &MAX_EXAMPLES.to_string(),
            // One worker: Hypothesis' caches are not safe across threads (a second worker
            // made example generation flaky).
            "--workers",
            "1",
            "--seed",
            "19",
            "--no-color",
        ])
        // The tokens go through the environment, not the command line.
        .env("TOLLGATE_FUZZ_PLATFORM", ADMIN_TOKEN)
        .env("TOLLGATE_FUZZ_SCIM", &seeded.scim_token)
        .env("TOLLGATE_FUZZ_KEY", &seeded.api_key);
    // Hypothesis keeps its example database in the working directory: the temporary one.
    if let Some(dir) = config.parent() {
        command.current_dir(dir);
    }
    // schemathesis is synchronous; the gateway keeps serving meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output().expect("run schemathesis"))
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis failed on {part}:\n{report}"
    );
    report
}

/// What the fuzzer's requests are pointed at.
struct Seeded {
    scim_token: String,
    api_key: String,
    ids: Vec<String>,
}

/// A tenant with something under every kind of path (a user with a key, an issuer, a group, a
/// webhook endpoint, a SCIM user), so that operations on `{tenant}` paths reach real code and
/// not only 404s; and a second tenant the data plane's key belongs to, which the admin fuzzing
/// never names, so nothing it does (an allow-list, a deleted user) refuses the data plane.
async fn seed(app: &TestApp) -> Seeded {
    app.create_tenant("acme").await;
    let mut ids = Vec::new();
    let created = |what: &str, (status, body): (u16, Value)| {
        assert!(status == 200 || status == 201, "{what}: {status} {body}");
        body
    };
    let send = |method: Method, path: &str, body: Value| {
        let request = app.admin(method, path).json(&body);
        async move { json(request.send().await.unwrap()).await }
    };
    created(
        "user",
        send(
            Method::PUT,
            "/tenants/acme/users/alice",
            json!({"email": "alice@example.com"}),
        )
        .await,
    );
    let key = created(
        "key",
        send(
            Method::POST,
            "/tenants/acme/users/alice/keys",
            json!({"name": "laptop"}),
        )
        .await,
    );
    ids.push(key["id"].as_str().unwrap().to_owned());
    let issuer = created(
        "issuer",
        send(
            Method::POST,
            "/issuers",
            json!({"issuer": "https://idp.example.com", "tenant": "acme",
                   "audiences": ["tollgate"], "hs256_secret": "0123456789abcdef0123456789abcdef"}),
        )
        .await,
    );
    ids.push(issuer["id"].as_str().unwrap().to_owned());
    created(
        "group",
        send(
            Method::PUT,
            "/tenants/acme/groups/eng",
            json!({"models": ["m"]}),
        )
        .await,
    );
    let webhook = created(
        "webhook",
        send(
            Method::POST,
            "/tenants/acme/webhooks",
            json!({"url": "https://hooks.example.com/tollgate", "events": ["user.created"]}),
        )
        .await,
    );
    ids.push(webhook["id"].as_str().unwrap().to_owned());
    let scim = app.scim("acme").await;
    let (status, user) = scim
        .send(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bob@example.com", "externalId": "bob", "active": true
            })),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    ids.push(user["id"].as_str().unwrap().to_owned());
    let api_key = app.api_key("apps", "app").await;
    Seeded {
        scim_token: scim.token.clone(),
        api_key,
        ids,
    }
}

/// schemathesis' configuration: which credential each part of the API gets, and the seeded
/// names the path parameters mostly take (sometimes a made-up one, for the 404s). SCIM always
/// gets the seeded tenant: its token opens no other, so any other name is only ever a 401.
fn fuzz_config(seeded: &Seeded) -> String {
    let ids = seeded
        .ids
        .iter()
        .map(|id| format!("{id:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let never = NEVER_CALLED.map(|id| format!("{id:?}")).join(", ");
    let random_tenants = ON_RANDOM_TENANTS_ONLY
        .map(|id| format!("{id:?}"))
        .join(", ");
    format!(
        r#"
[dictionaries]
tenants = {{ values = ["acme"] }}
subjects = {{ values = ["alice", "bob"] }}
groups = {{ values = ["eng"] }}
ids = {{ values = [{ids}] }}
models = {{ values = ["m"] }}

[[operations]]
include-operation-id = [{never}]
enabled = false

[[operations]]
include-operation-id = [{random_tenants}]
headers = {{ Authorization = "Bearer ${{TOLLGATE_FUZZ_PLATFORM}}" }}

[[operations]]
include-path-regex = "^/admin/"
exclude-operation-id = [{never}, {random_tenants}]
headers = {{ Authorization = "Bearer ${{TOLLGATE_FUZZ_PLATFORM}}" }}
[operations.parameters]
"path.tenant" = {{ dictionary = "tenants", probability = 0.9 }}
"path.subject" = {{ dictionary = "subjects", probability = 0.8 }}
"path.group" = {{ dictionary = "groups", probability = 0.8 }}
"path.id" = {{ dictionary = "ids", probability = 0.8 }}

[[operations]]
include-path-regex = "^/scim/"
headers = {{ Authorization = "Bearer ${{TOLLGATE_FUZZ_SCIM}}" }}
[operations.parameters]
"path.tenant" = "acme"
"path.id" = {{ dictionary = "ids", probability = 0.5 }}

[[operations]]
include-path-regex = "^/(v1/|healthz|readyz|openapi)"
headers = {{ Authorization = "Bearer ${{TOLLGATE_FUZZ_KEY}}" }}
[operations.parameters]
"path.id" = {{ dictionary = "models", probability = 0.8 }}
"body.model" = {{ dictionary = "models", probability = 0.8 }}
"#
    )
}
