//! Quota routes: tenant, user and default-user limits, with usage and reset times.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(
    quotas_are_set_read_and_fall_back_to_the_default,
    bad_quotas_are_refused
);

fn entry<'a>(quota: &'a Value, limit: &str) -> &'a Value {
    quota["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["limit"] == limit)
        .unwrap()
}

async fn quotas_are_set_read_and_fall_back_to_the_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    app.put_user("acme", "jane", json!({})).await;
    app.put_user("acme", "joe", json!({})).await;

    let (status, tenant) = json(
        app.admin(Method::PUT, "/tenants/acme/quota")
            .json(&json!({"tokens_per_month": 1_000_000, "cost_usd_per_month": 125.5}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["limits"]["tokens_per_month"], 1_000_000);
    assert_eq!(tenant["limits"]["cost_usd_per_month"], 125.5);
    assert_eq!(tenant["limits"]["tokens_per_day"], Value::Null);
    let month = entry(&tenant, "tokens_per_month");
    assert_eq!(month["used"], 0);
    assert_eq!(month["reserved"], 0);
    assert!(
        month["resets_at"]
            .as_str()
            .unwrap()
            .ends_with("-01T00:00:00.000Z"),
        "{month}"
    );
    let minute = entry(&tenant, "requests_per_minute");
    assert!(minute["resets_at"].as_str().unwrap().ends_with(":00.000Z"));

    let (status, default) = json(
        app.admin(Method::PUT, "/tenants/acme/default-user-quota")
            .json(&json!({"tokens_per_day": 5000, "requests_per_minute": 60}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(default["limits"]["tokens_per_day"], 5000);

    let (status, own) = json(
        app.admin(Method::PUT, "/tenants/acme/users/jane/quota")
            .json(&json!({"tokens_per_day": 100}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(own["source"], "user");
    assert_eq!(own["limits"]["tokens_per_day"], 100);
    assert_eq!(
        own["limits"]["requests_per_minute"],
        Value::Null,
        "own limits replace the default"
    );
    assert_eq!(entry(&own, "tokens_per_day")["max"], 100);

    let (status, fallback) = json(
        app.admin(Method::GET, "/tenants/acme/users/joe/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fallback["source"], "default_user");
    assert_eq!(fallback["limits"]["tokens_per_day"], 5000);

    // Everything null: no limit at all.
    let (_, cleared) = json(
        app.admin(Method::PUT, "/tenants/acme/quota")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cleared["limits"]["tokens_per_month"], Value::Null);
    let (_, read) = json(
        app.admin(Method::GET, "/tenants/acme/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["limits"], cleared["limits"]);

    for (method, path) in [
        (Method::GET, "/tenants/nope/quota"),
        (Method::GET, "/tenants/acme/users/nobody/quota"),
        (Method::PUT, "/tenants/acme/users/nobody/quota"),
        (Method::GET, "/tenants/nope/default-user-quota"),
    ] {
        let (status, body) = json(
            app.admin(method.clone(), path)
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "not_found");
    }
}

async fn bad_quotas_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    for (body, expected) in [
        (json!({"tokens_per_day": -1}), "`tokens_per_day`"),
        (json!({"cost_usd_per_month": -5}), "`cost_usd_per_month`"),
        (json!({"cost_usd_per_month": 1e12}), "`cost_usd_per_month`"),
        (json!({"tokens_per_day": "lots"}), "`tokens_per_day`"),
        (json!({"tokens_per_day": 1.5}), "`tokens_per_day`"),
        (
            json!({"tokens_per_week": 1}),
            "unknown field `tokens_per_week`",
        ),
    ] {
        let (status, answer) = json(
            app.admin(Method::PUT, "/tenants/acme/quota")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{answer}"
        );
    }
    let (_, read) = json(
        app.admin(Method::GET, "/tenants/acme/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        read["limits"]["tokens_per_day"],
        Value::Null,
        "nothing was written"
    );
}
