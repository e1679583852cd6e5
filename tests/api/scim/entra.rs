//! The requests Microsoft Entra ID's provisioning service sends (its documented examples), in
//! order, each followed by a data-plane request. Entra capitalises its operations, sends
//! booleans as strings, and here maps `userName` to the subject, so a rename moves the user. A
//! group's model list reaches its members, token and API key alike.

use reqwest::Method;
use serde_json::json;

use super::{GROUP_SCHEMA, USER_SCHEMA};
use crate::identity::{app_with_models, hs_token};
use crate::support::{Backend, json, on_both_backends};

on_both_backends!(entra_lifecycle_reaches_the_data_plane);

const ISS: &str = "https://login.microsoftonline.test/contoso/v2.0";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn entra_lifecycle_reaches_the_data_plane(backend: Backend) {
    let app = app_with_models(backend).await;
    app.create_tenant("contoso").await;
    app.register_issuer(
        ISS,
        json!({"tenant": "contoso", "hs256_secret": crate::identity::HS_SECRET}),
    )
    .await;
    let (status, settings) = json(
        app.admin(Method::PUT, "/tenants/contoso/scim")
            .json(&json!({"subject_attribute": "userName"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &settings["subject_attribute"]),
        (200, &json!("userName"))
    );
    let scim = app.scim("contoso").await;
    let token = hs_token(ISS, "jane@contoso.example", json!({}));

    assert!(scim.find_user("jane@contoso.example").await.is_empty());
    let created = scim
        .create(
            "Users",
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE],
                "externalId": "jane",
                "userName": "jane@contoso.example",
                "active": true,
                "displayName": "Jane Doe",
                "emails": [{"primary": true, "type": "work", "value": "jane@contoso.example"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "Jane Doe", "familyName": "Doe", "givenName": "Jane"},
                "roles": [],
                ENTERPRISE: {"department": "R&D"}
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created[ENTERPRISE]["department"], "R&D");
    app.assert_accepted(&token).await;

    // Deactivate, with the string boolean Entra sends.
    let patched = scim
        .patch(
            "Users",
            id,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(patched["active"], false, "stored and answered as a boolean");
    app.assert_refused(&token, "user_suspended").await;
    scim.patch(
        "Users",
        id,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    app.assert_accepted(&token).await;

    // Attribute updates in Entra's shapes.
    let patched = scim
        .patch(
            "Users",
            id,
            json!([
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "jane@contoso.example"},
                {"op": "Replace", "path": "name.familyName", "value": "Doe-Smith"},
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Research"}
            ]),
        )
        .await;
    assert_eq!(patched["name"]["familyName"], "Doe-Smith");
    assert_eq!(patched[ENTERPRISE]["department"], "Research");

    // Rename: the subject is the userName here, so the person moves to the new subject — their
    // API key with them — and the old name's token is refused.
    let key = app.user_key_of("contoso", "jane@contoso.example").await;
    scim.patch(
        "Users",
        id,
        json!([{"op": "Replace", "path": "userName", "value": "jane.doe@contoso.example"}]),
    )
    .await;
    let renamed = hs_token(ISS, "jane.doe@contoso.example", json!({}));
    app.assert_accepted(&renamed).await;
    app.assert_refused(&token, "user_deleted").await;
    app.assert_accepted(&key).await;

    // Groups: Entra creates the group empty, then adds and removes members by value.
    let group = scim
        .create(
            "Groups",
            json!({"schemas": [GROUP_SCHEMA], "externalId": "8aa1a0c0", "displayName": "eng", "members": []}),
        )
        .await;
    let group_id = group["id"].as_str().unwrap();
    let (status, found) = scim
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            crate::support::encode("displayName eq \"eng\"")
        ))
        .await;
    assert_eq!(
        (status, found["totalResults"].as_u64()),
        (200, Some(1)),
        "{found}"
    );
    // The group carries a model list, set through the admin API on the group Entra pushed.
    let (status, policy) = app
        .put_group("contoso", "eng", json!({"models": ["model-b"]}))
        .await;
    assert_eq!((status, &policy["scim"]), (200, &json!(true)), "{policy}");
    assert_eq!(app.ask(&renamed, "model-a").await.0, 200);
    scim.patch(
        "Groups",
        group_id,
        json!([{"op": "Add", "path": "members", "value": [{"value": id}]}]),
    )
    .await;
    let (_, user) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(user["groups"][0]["value"], group_id);
    assert_eq!(
        app.ask(&renamed, "model-a").await,
        (403, "model_not_allowed".to_owned())
    );
    assert_eq!(app.ask(&key, "model-b").await.0, 200, "the API key too");
    scim.patch(
        "Groups",
        group_id,
        json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}]),
    )
    .await;
    let (_, user) = scim.get(&format!("/Users/{id}")).await;
    assert!(user.get("groups").is_none(), "{user}");
    assert_eq!(app.ask(&key, "model-a").await.0, 200, "out of the group");

    // Delete: tokens and API keys end.
    scim.delete("Users", id).await;
    app.assert_refused(&renamed, "user_deleted").await;
    app.assert_refused(&key, "api_key_revoked").await;
}
