//! `GET /admin/v1/audit`: each filter, paging, the JSON Lines export, the refusals of a bad
//! query, and a tenant admin held to their own tenant.

use reqwest::Method;
use serde_json::{Value, json};

use crate::scim::USER_SCHEMA;
use crate::support::{Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(
    filters_select_the_events_they_name,
    pages_and_the_jsonl_export_hold_the_same_events,
    tenant_admins_read_only_their_own_tenant,
);

/// Changes by three kinds of actor in two tenants; returns the tenant admin's key and the SCIM
/// token's id.
async fn history(app: &TestApp) -> (String, String) {
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let admin_key = app.tenant_admin_key("acme", "alice").await;
    let by_admin = app
        .client
        .put(app.url("/admin/v1/tenants/acme/users/dan"))
        .bearer_auth(&admin_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 201);
    assert_eq!(
        app.put_user("globex", "gina", json!({})).await.status(),
        201
    );
    let scim = app.scim("globex").await;
    scim.create(
        "Users",
        json!({"schemas": [USER_SCHEMA], "userName": "hal@globex.test", "externalId": "hal"}),
    )
    .await;
    let tokens = app.audit("action=scim_token.created").await;
    (admin_key, tokens[0]["target"].as_str().unwrap().to_owned())
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect()
}

async fn filters_select_the_events_they_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, scim_token) = history(&app).await;
    let all = app.audit("").await;
    assert_eq!(
        actions(&all),
        [
            "tenant.created",
            "tenant.created",
            "user.created",
            "key.created",
            "user.created",
            "user.created",
            "scim_token.created",
            "user.created",
        ],
        "oldest first"
    );

    let globex = app.audit("tenant=globex").await;
    assert_eq!(
        actions(&globex),
        [
            "tenant.created",
            "user.created",
            "scim_token.created",
            "user.created"
        ]
    );
    assert!(globex.iter().all(|event| event["tenant"] == "globex"));
    assert!(app.audit("tenant=nowhere").await.is_empty());

    let created = app.audit("action=user.created").await;
    assert_eq!(created.len(), 4);
    assert_eq!(app.audit("action=user.").await, created, "a prefix");
    assert_eq!(
        actions(&app.audit("action=scim_token.").await),
        ["scim_token.created"]
    );
    assert!(
        app.audit("action=user").await.is_empty(),
        "exact unless it ends in a dot"
    );

    let by_admin = app.audit("actor=tenant_admin").await;
    assert_eq!(by_admin.len(), 1);
    assert_eq!(by_admin[0]["target"], "dan");
    assert_eq!(app.audit("actor=tenant_admin:alice").await, by_admin);
    assert!(app.audit("actor=tenant_admin:bob").await.is_empty());
    let by_scim = app.audit(&format!("actor=scim:{scim_token}")).await;
    assert_eq!(by_scim.len(), 1);
    assert_eq!(by_scim[0]["target"], "hal");
    assert_eq!(app.audit("actor=scim").await, by_scim);
    assert_eq!(app.audit("actor=platform").await.len(), all.len() - 2);
    assert!(app.audit("actor=system").await.is_empty());
    assert_eq!(
        app.audit("tenant=acme&action=user.&actor=platform")
            .await
            .len(),
        1,
        "filters combine"
    );

    // `from` is inclusive, `to` exclusive; a date is its midnight in UTC.
    let third = all[2]["at"].as_str().unwrap();
    let from = app
        .audit(&format!("from={}", crate::support::encode(third)))
        .await;
    assert!(from.len() >= all.len() - 2 && from.len() < all.len());
    assert!(
        from.iter()
            .all(|event| event["at"].as_str().unwrap() >= third)
    );
    let to = app
        .audit(&format!("to={}", crate::support::encode(third)))
        .await;
    assert_eq!(to.len() + from.len(), all.len(), "the two halves");
    assert_eq!(app.audit("from=2000-01-01").await, all);
    assert!(app.audit("to=2000-01-01").await.is_empty());
    assert!(app.audit("from=2100-01-01T00:00:00Z").await.is_empty());

    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("actor=robot", "actor"),
        ("actor=scim:", "actor"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("format=xml", "format"),
    ] {
        let (status, body) = json(
            app.admin(Method::GET, &format!("/audit?{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
    }
    let (status, body) = json(
        app.admin(Method::GET, "/audit?colour=red")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "an unknown parameter: {body}");
    assert_eq!(error_code(&body), "invalid_request");
}

async fn pages_and_the_jsonl_export_hold_the_same_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    history(&app).await;
    let all = app.audit("").await;

    // Paging: `limit`, then `after` the last id seen.
    let mut paged = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let page = app.audit(&query).await;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        query = format!("limit=3&after={}", last["id"].as_str().unwrap());
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let response = app
        .admin(Method::GET, "/audit?format=jsonl")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, all, "one event a line, the JSON answer's events");
    for event in &lines {
        let keys: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action",
                "actor",
                "after",
                "at",
                "before",
                "id",
                "request_id",
                "target",
                "tenant"
            ]
        );
    }

    let text = app
        .admin(Method::GET, "/audit?format=jsonl&tenant=globex&limit=2")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, app.audit("tenant=globex&limit=2").await);
}

async fn tenant_admins_read_only_their_own_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin_key, _) = history(&app).await;
    let read = |query: &'static str| {
        let request = app
            .client
            .get(app.url(&format!("/admin/v1/audit?{query}")))
            .bearer_auth(&admin_key);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let acme = app.audit("tenant=acme").await;
    assert!(!acme.is_empty());

    let (status, body) = read("").await;
    assert_eq!(status, 200, "{body}");
    let events: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events["events"], json!(acme), "no tenant: their own");
    let (status, body) = read("tenant=acme").await;
    assert_eq!(status, 200, "{body}");
    let events: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events["events"], json!(acme));
    let (status, body) = read("format=jsonl").await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), acme.len());
    assert!(body.lines().all(|line| line.contains(r#""tenant":"acme""#)));

    for query in ["tenant=globex", "tenant=globex&format=jsonl", "tenant="] {
        let (status, body) = read(query).await;
        assert_eq!(status, 403, "{query}: {body}");
    }

    // A member is no admin.
    let member = app.user_key_of("acme", "dan").await;
    let response = app.get_as("/admin/v1/audit", &member).await;
    assert_eq!(response.status(), 403);
}
