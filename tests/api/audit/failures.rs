//! A write that is refused or fails records nothing, whichever door it came through, including
//! one that fails inside its transaction after reading (a SCIM group naming an unknown member).

use reqwest::Method;
use serde_json::json;

use super::send;
use crate::scim::GROUP_SCHEMA;
use crate::support::{Backend, TestApp, on_both_backends};

on_both_backends!(failed_writes_record_nothing);

async fn failed_writes_record_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let admin_key = app.tenant_admin_key("acme", "alice").await;
    app.register_issuer(
        "https://idp.acme.test",
        json!({"tenant": "acme", "hs256_secret": crate::identity::HS_SECRET}),
    )
    .await;
    let scim = app.scim("acme").await;
    let before = app.audit("limit=10000").await;

    let refused = [
        (
            "a tenant that exists",
            app.admin(Method::POST, "/tenants")
                .json(&json!({"id": "acme", "name": "again"})),
            409,
        ),
        (
            "an issuer that exists",
            app.admin(Method::POST, "/issuers").json(&json!({
                "issuer": "https://idp.acme.test", "tenant": "acme",
                "audiences": ["tollgate"], "hs256_secret": crate::identity::HS_SECRET,
            })),
            409,
        ),
        (
            "a user in no tenant",
            app.admin(Method::PUT, "/tenants/nowhere/users/bob")
                .json(&json!({})),
            404,
        ),
        (
            "a key for nobody",
            app.admin(Method::POST, "/tenants/acme/users/nobody/keys")
                .json(&json!({"name": "k"})),
            404,
        ),
        (
            "revoking a key that does not exist",
            app.admin(Method::DELETE, "/tenants/acme/users/alice/keys/nope"),
            404,
        ),
        (
            "deleting an issuer that does not exist",
            app.admin(Method::DELETE, "/issuers/nope"),
            404,
        ),
        (
            "a tenant admin writing to another tenant",
            app.client
                .put(app.url("/admin/v1/tenants/globex/users/mallory"))
                .bearer_auth(&admin_key)
                .json(&json!({"role": "admin"})),
            403,
        ),
        (
            "a tenant admin setting the tenant's own quota (platform only)",
            app.client
                .put(app.url("/admin/v1/tenants/acme/quota"))
                .bearer_auth(&admin_key)
                .json(&json!({"tokens_per_day": 1})),
            403,
        ),
        (
            "a SCIM group naming a member that is no User",
            app.client
                .post(scim.url("/Groups"))
                .bearer_auth(&scim.token)
                .header("content-type", "application/scim+json")
                .body(
                    json!({"schemas": [GROUP_SCHEMA], "displayName": "eng",
                        "members": [{"value": "no-such-user"}]})
                    .to_string(),
                ),
            400,
        ),
    ];
    for (what, request, status) in refused {
        let sent = send(request).await;
        assert_eq!(sent.status, status, "{what}: {}", sent.body);
        let after = app.audit("limit=10000").await;
        assert_eq!(after, before, "{what} recorded an event");
    }
    let (_, groups) = scim.get("/Groups").await;
    assert_eq!(groups["totalResults"], 0, "the group was not made either");
}
