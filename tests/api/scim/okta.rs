//! The requests Okta's SCIM 2.0 provisioning sends (its developer guide's examples), in order,
//! each followed by a data-plane request: the user's token works or is refused for the reason
//! the change implies, and a group's model list reaches its members.

use serde_json::json;

use super::{GROUP_SCHEMA, USER_SCHEMA};
use crate::identity::{app_with_models, hs_token};
use crate::support::{Backend, on_both_backends};

on_both_backends!(okta_lifecycle_reaches_the_data_plane);

const ISS: &str = "https://acme.okta.test";

async fn okta_lifecycle_reaches_the_data_plane(backend: Backend) {
    let app = app_with_models(backend).await;
    app.create_tenant("acme").await;
    app.register_issuer(
        ISS,
        json!({"tenant": "acme", "hs256_secret": crate::identity::HS_SECRET}),
    )
    .await;
    let scim = app.scim("acme").await;
    // Okta's tokens carry the Okta user id as `sub`, and Okta sends it as `externalId`: the
    // tenant's default subject attribute.
    let token = hs_token(ISS, "00u1abcd", json!({}));
    app.assert_refused(&token, "unknown_user").await;

    // Okta first looks the user up by userName, then creates them.
    assert!(scim.find_user("jane@acme.example").await.is_empty());
    let created = scim
        .create(
            "Users",
            json!({
                "schemas": [USER_SCHEMA],
                "userName": "jane@acme.example",
                "externalId": "00u1abcd",
                "name": {"givenName": "Jane", "familyName": "Doe"},
                "emails": [{"primary": true, "value": "jane@acme.example", "type": "work"}],
                "displayName": "Jane Doe",
                "locale": "en-US",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["active"], true);
    assert!(
        created.get("password").is_none(),
        "a password is never kept or answered"
    );
    assert_eq!(
        scim.find_user("JANE@acme.example").await,
        [id],
        "userName matches in any case"
    );
    app.assert_accepted(&token).await;

    // Deactivate: a path-less replace of `active`.
    let patched = scim
        .patch(
            "Users",
            id,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(patched["active"], false);
    app.assert_refused(&token, "user_suspended").await;

    // Reactivate.
    scim.patch(
        "Users",
        id,
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;
    app.assert_accepted(&token).await;

    // Rename: Okta PUTs the whole user with the new userName. The subject is the externalId,
    // so the same token keeps working, and the store has the new name.
    let mut renamed = created.clone();
    renamed["userName"] = json!("jane.doe@acme.example");
    renamed["emails"] =
        json!([{"primary": true, "value": "jane.doe@acme.example", "type": "work"}]);
    let replaced = scim.replace("Users", id, renamed).await;
    assert_eq!(replaced["userName"], "jane.doe@acme.example");
    assert!(scim.find_user("jane@acme.example").await.is_empty());
    app.assert_accepted(&token).await;
    let (_, user) = crate::support::json(
        app.admin(reqwest::Method::GET, "/tenants/acme/users/00u1abcd")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["email"], "jane.doe@acme.example");

    // Group push: create, add the member, remove them. The group carries a model list (set
    // through the admin API): while Jane is a member, she may use only what it lists.
    let (status, policy) = app
        .put_group("acme", "eng", json!({"models": ["model-a"]}))
        .await;
    assert_eq!(status, 201, "{policy}");
    assert_eq!(app.ask(&token, "model-b").await.0, 200);
    let group = scim
        .create(
            "Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "eng", "members": []}),
        )
        .await;
    let group_id = group["id"].as_str().unwrap();
    let with_jane = scim
        .patch(
            "Groups",
            group_id,
            json!([{"op": "add", "path": "members", "value": [{"value": id, "display": "jane.doe@acme.example"}]}]),
        )
        .await;
    assert_eq!(with_jane["members"][0]["value"], id);
    let (_, user) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(user["groups"][0]["display"], "eng");
    assert_eq!(
        app.ask(&token, "model-b").await,
        (403, "model_not_allowed".to_owned())
    );
    assert_eq!(app.ask(&token, "model-a").await.0, 200);
    let without = scim
        .patch(
            "Groups",
            group_id,
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
        )
        .await;
    assert!(without.get("members").is_none(), "{without}");
    assert_eq!(app.ask(&token, "model-b").await.0, 200, "out of the group");

    // Delete: the user is deleted as by an administrator, and gone from SCIM.
    scim.delete("Users", id).await;
    app.assert_refused(&token, "user_deleted").await;
    let (status, gone) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(
        gone["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
}
