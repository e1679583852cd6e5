//! The model catalogue: what a tenant's allow-list picks from, with prices, for every admin.

use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, TestApp, json};

#[tokio::test]
async fn every_admin_reads_the_catalogue_with_prices_and_no_provider_details() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        let upstreams = tollgate::Config::from_toml(
            r#"
            [[providers]]
            name = "secret-provider"
            kind = "mock"
            [[models]]
            name = "cheap"
            targets = [{ provider = "secret-provider", model = "upstream-name-x" }]
            price = { input_per_mtok = 0.15, output_per_mtok = 0.6, cached_input_per_mtok = 0.075 }
            [[models]]
            name = "free"
            targets = [{ provider = "secret-provider", model = "upstream-name-y" }]
            fallbacks = ["cheap"]
            "#,
        )
        .unwrap();
        config.providers = upstreams.providers;
        config.models = upstreams.models;
    })
    .await;
    app.create_tenant("acme").await;
    let tenant_admin = app.user_key("acme", "boss").await;
    app.put_user("acme", "boss", json!({"role": "admin"})).await;

    let (status, platform_view) =
        json(app.admin(Method::GET, "/models").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        platform_view,
        json!([
            {"name": "cheap", "fallbacks": [], "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6,
             "cached_input_per_mtok": 0.075, "cache_write_per_mtok": null}},
            {"name": "free", "fallbacks": ["cheap"], "price": null},
        ])
    );
    let text = platform_view.to_string();
    assert!(
        !text.contains("secret-provider") && !text.contains("upstream-name"),
        "{text}"
    );

    let (status, admin_view) = json(app.get_as("/admin/v1/models", &tenant_admin).await).await;
    assert_eq!((status, admin_view), (200, platform_view));
}
