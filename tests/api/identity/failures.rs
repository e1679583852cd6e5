//! The refusals an operator (or a tenant admin) can look up: the latest, with who and why, and
//! counts per minute by reason — each tenant seeing only its own.

use reqwest::Method;
use serde_json::{Value, json};

use super::hs_token;
use crate::support::{Backend, TestApp, json};

async fn failures(app: &TestApp, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let request = match bearer {
        Some(bearer) => app
            .client
            .get(app.url(&format!("/admin/v1{path}")))
            .bearer_auth(bearer),
        None => app.admin(Method::GET, path),
    };
    json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn refusals_are_listed_by_reason_and_each_tenant_sees_its_own() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.tenant_with_hs256_issuer("acme", "https://idp.acme.test", "jane")
        .await;
    app.create_tenant("globex").await;
    let globex_admin = app.user_key("globex", "boss").await;
    app.put_user("globex", "boss", json!({"role": "admin"}))
        .await;

    // Two tokens for a subject the user store does not have: the seed of this project.
    for _ in 0..2 {
        let ghost = hs_token("https://idp.acme.test", "ghost", json!({}));
        assert_eq!(app.call(&ghost).await.0, 401);
    }
    assert_eq!(app.call("tg-no-such-key").await.0, 401);

    let (status, acme) = failures(&app, "/tenants/acme/auth-failures", None).await;
    assert_eq!(status, 200, "{acme}");
    assert_eq!(acme["recent"].as_array().unwrap().len(), 2, "{acme}");
    assert_eq!(acme["recent"][0]["reason"], "unknown_user");
    assert_eq!(acme["recent"][0]["subject"], "ghost");
    assert_eq!(acme["recent"][0]["issuer"], "https://idp.acme.test");
    assert_eq!(acme["per_minute"][0]["reason"], "unknown_user");
    let counted: u64 = acme["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 2);
    // Nothing of the refused credentials is kept.
    assert!(!acme.to_string().contains("eyJ"), "{acme}");

    // The platform sees every refusal, the unattributable API key too.
    let (_, all) = failures(&app, "/auth/failures", None).await;
    assert_eq!(all["recent"].as_array().unwrap().len(), 3, "{all}");
    assert_eq!(all["recent"][0]["reason"], "unknown_api_key");

    // Globex's admin sees none of acme's, and may not ask.
    let (status, theirs) =
        failures(&app, "/tenants/globex/auth-failures", Some(&globex_admin)).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["recent"], json!([]));
    assert_eq!(
        failures(&app, "/tenants/acme/auth-failures", Some(&globex_admin))
            .await
            .0,
        403
    );
    assert_eq!(
        failures(&app, "/auth/failures", Some(&globex_admin))
            .await
            .0,
        403
    );
}
