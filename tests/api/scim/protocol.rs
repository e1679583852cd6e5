//! The SCIM door's own rules: who may use it, and the SCIM errors it answers with.

use reqwest::Method;
use serde_json::json;

use super::USER_SCHEMA;
use crate::support::{Backend, TestApp, json};

fn user(name: &str) -> serde_json::Value {
    json!({"schemas": [USER_SCHEMA], "userName": name, "externalId": name})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_live_token_of_the_tenant_opens_its_endpoint() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let acme = app.scim("acme").await;
    let globex = app.scim("globex").await;
    assert!(acme.token.starts_with("tgscim-"));
    let (status, _) = acme.get("/Users").await;
    assert_eq!(status, 200);

    // Another tenant's token, no token, an unknown one: one generic 401, in SCIM's shape.
    for token in [globex.token.as_str(), "", "tgscim-unknown"] {
        let probe = super::Scim {
            token: token.to_owned(),
            ..acme_client(&app)
        };
        let (status, body) = probe.get("/Users").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(body["status"], "401");
    }

    // Revoked: refused from the next request on. The list shows it, never its secret or hash.
    let (_, tokens) = json(
        app.admin(Method::GET, "/tenants/acme/scim-tokens")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = tokens[0]["id"].as_str().unwrap();
    let listed = tokens.to_string();
    assert!(
        !listed.contains(&acme.token) && !listed.contains("hash"),
        "{listed}"
    );
    let response = app
        .admin(Method::DELETE, &format!("/tenants/acme/scim-tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = acme.get("/Users").await;
    assert_eq!(status, 401);

    // A tenant admin of another tenant may not make tokens here.
    let response = app
        .client
        .post(app.url("/admin/v1/tenants/acme/scim-tokens"))
        .bearer_auth("not-the-admin-token")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

fn acme_client(app: &TestApp) -> super::Scim<'_> {
    super::Scim {
        app,
        tenant: "acme".into(),
        token: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_scim_errors_and_change_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    let scim = app.scim("acme").await;
    let jane = scim.create("Users", user("jane")).await;
    let id = jane["id"].as_str().unwrap();

    let cases = [
        (
            Method::GET,
            "/Users?filter=userName%20xx%20%22a%22".to_owned(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            Some(json!({"schemas": [USER_SCHEMA]})),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            Some(user("JANE")),
            409,
            Some("uniqueness"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            Some(json!("not an object")),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            Some(
                json!({"Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]}),
            ),
            400,
            Some("invalidPath"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]})),
            400,
            Some("invalidValue"),
        ),
        (Method::GET, "/Users?count=many".to_owned(), None, 400, None),
        (
            Method::GET,
            format!("/Users/{id}?startIndex=x"),
            None,
            400,
            None,
        ),
        (Method::GET, "/Users/no-such-id".to_owned(), None, 404, None),
        (
            Method::DELETE,
            "/Groups/no-such-id".to_owned(),
            None,
            404,
            None,
        ),
        (Method::GET, "/Nothing".to_owned(), None, 404, None),
    ];
    for (method, path, body, status, scim_type) in cases {
        let (got, error) = scim.send(method.clone(), &path, body).await;
        assert_eq!(got, status, "{method} {path}: {error}");
        assert_eq!(error["status"], status.to_string(), "{error}");
        assert_eq!(
            error["scimType"].as_str(),
            scim_type,
            "{method} {path}: {error}"
        );
    }
    let (_, still) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(still["active"], true, "a refused PATCH changed nothing");
    assert_eq!(still["meta"]["version"], jane["meta"]["version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_and_filter() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    let scim = app.scim("acme").await;
    for name in ["ann", "bob", "cy", "dee", "eve"] {
        scim.create("Users", user(name)).await;
    }
    let (_, page) = scim.get("/Users?startIndex=2&count=2").await;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<_> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].clone())
        .collect();
    assert_eq!(names, [json!("bob"), json!("cy")]);
    let (_, count_only) = scim.get("/Users?count=0").await;
    assert_eq!(
        (
            count_only["totalResults"].as_u64(),
            count_only["Resources"].as_array().map(Vec::len)
        ),
        (Some(5), Some(0))
    );
    let filter = crate::support::encode(r#"userName sw "d" or externalId eq "eve""#);
    let (_, found) = scim
        .get(&format!("/Users?filter={filter}&attributes=userName"))
        .await;
    assert_eq!(found["totalResults"], 2);
    let first = &found["Resources"][0];
    assert_eq!(first["userName"], "dee");
    assert!(
        first.get("externalId").is_none(),
        "attributes= keeps only what was asked: {first}"
    );
    assert!(first["id"].is_string(), "id is always returned");
}
