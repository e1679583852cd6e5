//! Tenant admins see and export only their own tenant; the platform admin sees every tenant.

use reqwest::Method;
use serde_json::json;

use super::{Rng, export, export_sums, random_event, store_events};
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(tenant_admins_read_and_export_only_their_own_tenant);

async fn api_key(app: &TestApp, tenant: &str, subject: &str, role: &str) -> String {
    app.put_user(tenant, subject, json!({ "role": role })).await;
    let (status, created) = json(
        app.admin(
            Method::POST,
            &format!("/tenants/{tenant}/users/{subject}/keys"),
        )
        .json(&json!({"name": "billing"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().unwrap().to_owned()
}

async fn tenant_admins_read_and_export_only_their_own_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for tenant in ["tenant-0", "tenant-1", "tenant-2"] {
        app.create_tenant(tenant).await;
    }
    let mut rng = Rng::new(11);
    let events: Vec<_> = (0..300).map(|i| random_event(&mut rng, i)).collect();
    store_events(&app, &events).await;
    let admin = api_key(&app, "tenant-0", "alice", "admin").await;
    let member = api_key(&app, "tenant-0", "bob", "member").await;
    let period = "from=2026-10-01&to=2026-11-01";
    let get = |token: String, path: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(app.url(&format!("/admin/v1{path}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // Their own tenant: allowed.
    let (status, body) = get(admin.clone(), format!("/tenants/tenant-0/usage?{period}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, own) = get(
        admin.clone(),
        format!("/usage/export?{period}&tenant=tenant-0&format=jsonl"),
    )
    .await;
    assert_eq!(status, 200, "{own}");
    assert!(own.lines().count() > 0);
    assert!(
        own.lines()
            .all(|l| l.contains("\"tenant_id\":\"tenant-0\""))
    );

    // Anyone else's, or everything: refused.
    for path in [
        format!("/tenants/tenant-1/usage?{period}"),
        format!("/usage/export?{period}&tenant=tenant-1"),
        format!("/usage/export?{period}"),
        format!("/usage/export?{period}&tenant="),
    ] {
        let (status, body) = get(admin.clone(), path.clone()).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // A member is no admin at all.
    let (status, _) = get(member, format!("/tenants/tenant-0/usage?{period}")).await;
    assert_eq!(status, 403);

    // The platform admin sees every tenant, and all of it.
    let (status, all) = export(&app, &format!("{period}&format=jsonl")).await;
    assert_eq!(status, 200);
    for tenant in ["tenant-0", "tenant-1", "tenant-2"] {
        assert!(all.contains(&format!("\"tenant_id\":\"{tenant}\"")));
    }
    assert_eq!(export_sums("jsonl", &all).requests, 300);
    let (status, _) = get(
        crate::support::ADMIN_TOKEN.to_owned(),
        format!("/tenants/tenant-2/usage?{period}"),
    )
    .await;
    assert_eq!(status, 200);
}
