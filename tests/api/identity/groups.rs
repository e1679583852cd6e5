//! Groups → access: a group's model list narrows the tenant's allow-list for its members, and a
//! group with the admin role makes its members admins of their tenant. Membership comes from a
//! token's groups claim or from SCIM; a change to a group is seen on the next request.

use reqwest::Method;
use serde_json::{Value, json};

use super::{HS_SECRET, app_with_models, hs_token};
use crate::scim::USER_SCHEMA;
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(
    a_groups_model_list_narrows_the_tenants,
    a_group_with_the_admin_role_makes_its_members_admins_of_their_tenant,
    scim_membership_changes_access_on_the_next_request,
    group_policies_are_listed_read_and_validated,
);

const ISS: &str = "https://idp.acme.test";

/// Tenant `acme` with users jane and bob, and an issuer whose tokens list groups in `groups`.
async fn acme(backend: Backend) -> TestApp {
    let app = app_with_models(backend).await;
    app.create_tenant("acme").await;
    let issuer = app
        .register_issuer(
            ISS,
            json!({"tenant": "acme", "hs256_secret": HS_SECRET, "groups_claim": "groups"}),
        )
        .await;
    assert_eq!(issuer["groups_claim"], "groups");
    for subject in ["jane", "bob"] {
        app.put_user("acme", subject, json!({})).await;
    }
    app
}

fn in_groups(subject: &str, groups: Value) -> String {
    hs_token(ISS, subject, json!({ "groups": groups }))
}

async fn allowed(app: &TestApp, token: &str) -> [bool; 2] {
    let mut answers = [false; 2];
    for (answer, model) in answers.iter_mut().zip(["model-a", "model-b"]) {
        let (status, code) = app.ask(token, model).await;
        match status {
            200 => *answer = true,
            403 => assert_eq!(code, "model_not_allowed"),
            other => panic!("{model}: {other} {code}"),
        }
    }
    answers
}

async fn a_groups_model_list_narrows_the_tenants(backend: Backend) {
    let app = acme(backend).await;
    let (status, eng) = app
        .put_group("acme", "eng", json!({"models": ["model-a"]}))
        .await;
    assert_eq!(status, 201, "{eng}");
    assert_eq!(eng["models"], json!(["model-a"]));

    let jane = in_groups("jane", json!(["eng", "a-group-the-tenant-has-not"]));
    assert_eq!(allowed(&app, &jane).await, [true, false]);
    let (status, listed) = app.call(&jane).await;
    assert_eq!(status, 200);
    assert!(!listed.contains("model-b"), "{listed}");
    let explained = app.explain(&jane).await;
    let step = explained["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "groups")
        .unwrap_or_else(|| panic!("{explained:#}"));
    assert!(step["detail"].as_str().unwrap().contains("eng"), "{step}");

    // No groups, or only groups without a list: the tenant's list, unchanged.
    let bob = hs_token(ISS, "bob", json!({}));
    assert_eq!(allowed(&app, &bob).await, [true, true]);
    app.put_group("acme", "all-hands", json!({"models": null}))
        .await;
    let bob = in_groups("bob", json!("all-hands"));
    assert_eq!(allowed(&app, &bob).await, [true, true]);

    // Several lists: their union.
    app.put_group("acme", "ml", json!({"models": ["model-b"]}))
        .await;
    let both = in_groups("jane", json!(["eng", "ml", "all-hands"]));
    assert_eq!(allowed(&app, &both).await, [true, true]);

    // A group never widens the tenant's own list.
    app.admin(Method::PUT, "/tenants/acme/models")
        .json(&json!(["model-a"]))
        .send()
        .await
        .unwrap();
    let ml = in_groups("jane", json!(["ml"]));
    assert_eq!(allowed(&app, &ml).await, [false, false]);
    assert_eq!(allowed(&app, &both).await, [true, false]);
    app.admin(Method::PUT, "/tenants/acme/models")
        .json(&json!(null))
        .send()
        .await
        .unwrap();

    // A change to a group is seen on the next request (the token is the same, warm in the cache).
    app.put_group("acme", "eng", json!({"models": ["model-b"]}))
        .await;
    assert_eq!(allowed(&app, &jane).await, [false, true]);
    let deleted = app
        .admin(Method::DELETE, "/tenants/acme/groups/eng")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(allowed(&app, &jane).await, [true, true]);
}

async fn a_group_with_the_admin_role_makes_its_members_admins_of_their_tenant(backend: Backend) {
    let app = acme(backend).await;
    app.create_tenant("globex").await;
    let (status, ops) = app.put_group("acme", "ops", json!({"role": "admin"})).await;
    assert_eq!((status, &ops["role"]), (201, &json!("admin")), "{ops}");
    let get = |token: String, path: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/admin/v1{path}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let member = in_groups("jane", json!(["eng"]));
    assert_eq!(get(member, "/tenants/acme/users").await, 403);
    let admin = in_groups("jane", json!(["ops"]));
    assert_eq!(get(admin.clone(), "/tenants/acme/users").await, 200);
    assert_eq!(get(admin.clone(), "/tenants/acme/groups").await, 200);
    assert_eq!(get(admin.clone(), "/tenants/globex/users").await, 403);
    assert_eq!(get(admin.clone(), "/tenants").await, 403, "platform routes");
    // The group's admin may set their own tenant's groups.
    let response = app
        .client
        .put(app.url("/admin/v1/tenants/acme/groups/eng"))
        .bearer_auth(&admin)
        .json(&json!({"models": ["model-a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // An API key carries no groups claim: jane's key is a member's.
    let key = app.user_key_of("acme", "jane").await;
    assert_eq!(get(key, "/tenants/acme/users").await, 403);

    // Taking the role off the group takes it off its members at once.
    app.put_group("acme", "ops", json!({"role": null})).await;
    assert_eq!(get(admin, "/tenants/acme/users").await, 403);
}

async fn scim_membership_changes_access_on_the_next_request(backend: Backend) {
    let app = acme(backend).await;
    // An administrator names the group and its policy before the identity provider pushes it.
    app.put_group("acme", "eng", json!({"models": ["model-a"]}))
        .await;
    let scim = app.scim("acme").await;
    let sam = scim
        .create(
            "Users",
            json!({"schemas": [USER_SCHEMA], "userName": "sam@acme.example", "externalId": "sam"}),
        )
        .await;
    let sam_id = sam["id"].as_str().unwrap();
    // An API key brings no groups claim: what it may use is from SCIM alone.
    let key = app.user_key_of("acme", "sam").await;
    assert_eq!(allowed(&app, &key).await, [true, true]);

    let group = scim
        .create(
            "Groups",
            json!({"schemas": [crate::scim::GROUP_SCHEMA], "displayName": "eng", "members": []}),
        )
        .await;
    let group_id = group["id"].as_str().unwrap();
    let (_, adopted) = json(
        app.admin(Method::GET, "/tenants/acme/groups/eng")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(adopted["scim"], true, "{adopted}");
    assert_eq!(adopted["models"], json!(["model-a"]), "the policy is kept");

    scim.patch(
        "Groups",
        group_id,
        json!([{"op": "add", "path": "members", "value": [{"value": sam_id}]}]),
    )
    .await;
    assert_eq!(allowed(&app, &key).await, [true, false]);
    let (_, eng) = json(
        app.admin(Method::GET, "/tenants/acme/groups/eng")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(eng["members"], json!(["sam"]), "{eng}");
    assert_eq!(eng["member_count"], 1);

    // A role given to the group reaches its SCIM members too.
    let users = |bearer: String| {
        let app = &app;
        async move {
            app.get_as("/admin/v1/tenants/acme/users", &bearer)
                .await
                .status()
        }
    };
    assert_eq!(users(key.clone()).await, 403);
    app.put_group(
        "acme",
        "eng",
        json!({"models": ["model-a"], "role": "admin"}),
    )
    .await;
    assert_eq!(users(key.clone()).await, 200);

    scim.patch(
        "Groups",
        group_id,
        json!([{"op": "remove", "path": format!("members[value eq \"{sam_id}\"]")}]),
    )
    .await;
    assert_eq!(allowed(&app, &key).await, [true, true]);
    assert_eq!(users(key.clone()).await, 403);

    // The identity provider deletes the group: the administrator's policy stays, for the name
    // in tokens' groups claims.
    scim.delete("Groups", group_id).await;
    let (status, kept) = json(
        app.admin(Method::GET, "/tenants/acme/groups/eng")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["scim"], false);
    assert_eq!(kept["member_count"], 0);
    let claimed = in_groups("sam", json!(["eng"]));
    assert_eq!(allowed(&app, &claimed).await, [true, false]);
}

async fn group_policies_are_listed_read_and_validated(backend: Backend) {
    let app = acme(backend).await;
    for body in [
        json!({"models": [""]}),
        json!({"models": "model-a"}),
        json!({"role": "member"}),
        json!({"members": ["jane"]}),
    ] {
        let (status, error) = app.put_group("acme", "eng", body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
    }
    assert_eq!(app.put_group("ghost", "eng", json!({})).await.0, 404);

    let (status, first) = app
        .put_group("acme", "LLM Users", json!({"models": ["model-a"]}))
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = app
        .put_group(
            "acme",
            "LLM Users",
            json!({"models": ["model-b"], "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["models"], json!(["model-b"]));
    assert_eq!(again["role"], "admin");
    app.put_group("acme", "all-hands", json!({})).await;

    let (status, listed) = json(
        app.admin(Method::GET, "/tenants/acme/groups")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["LLM Users", "all-hands"]);
    assert_eq!(listed[1]["models"], Value::Null);
    assert_eq!(listed[1]["role"], Value::Null);
    assert_eq!(listed[1]["member_count"], 0);

    let path = "/tenants/acme/groups/LLM%20Users";
    let (status, one) = json(app.admin(Method::GET, path).send().await.unwrap()).await;
    assert_eq!((status, &one["name"]), (200, &json!("LLM Users")), "{one}");
    assert_eq!(one["members"], json!([]));
    assert_eq!(
        app.admin(Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.admin(Method::GET, path).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        app.admin(Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
