//! The console in a real browser: Debian's `chromium`, driven over WebDriver by its
//! `chromedriver`, against a gateway on loopback — the platform administrator running a tenant,
//! and a tenant administrator signing in through a real OpenID provider. Each step that shows
//! something saves a screenshot under `target/console-screenshots/`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::sso::{idp_missing, start_idp};
use super::webdriver::{self, Browser};
use crate::support::{ADMIN_TOKEN, Backend, MOCK_MODEL, TestApp, json};

async fn gateway() -> TestApp {
    let mock = tollgate::Config::from_toml(MOCK_MODEL).unwrap();
    TestApp::spawn_with(Backend::Sqlite, |config| {
        config.providers = mock.providers;
        config.models = mock.models;
        config.metering.flush_interval = Duration::from_millis(20);
    })
    .await
}

async fn fill(browser: &Browser, css: &str, text: &str) {
    let input = browser.find(css).await;
    browser.clear(&input).await;
    browser.type_into(&input, text).await;
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.find(css).await;
    browser.click(&element).await;
}

/// `fetch` from the page (its cookie goes along, no CSRF token): the status.
async fn page_fetch(browser: &Browser, method: &str, path: &str) -> u64 {
    let script = format!(
        "return fetch('{path}', {{method: '{method}', credentials: 'same-origin'}}).then(r => r.status);"
    );
    browser.run(&script).await.as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_runs_a_tenant_from_the_console() {
    if !webdriver::available() {
        return;
    }
    let app = gateway().await;
    let downloads = tempfile::tempdir().unwrap();
    let browser = Browser::start(downloads.path(), 1280).await;
    browser.goto(&app.url("/console")).await;
    fill(&browser, "[data-testid=login-token]", ADMIN_TOKEN).await;
    click(&browser, "[data-testid=login-submit]").await;

    // A tenant, created with the form, appears in the list.
    fill(&browser, "[data-testid=tenant-create-id]", "acme").await;
    fill(&browser, "[data-testid=tenant-create-name]", "Acme Corp").await;
    click(&browser, "[data-testid=tenant-create-submit]").await;
    browser
        .wait_for_text("[data-testid=tenant-row]", "Acme Corp")
        .await;
    let row = browser.find("[data-testid=tenant-row]").await;
    assert_eq!(
        browser.attribute(&row, "data-tenant-id").await.as_deref(),
        Some("acme")
    );
    browser.screenshot("platform-tenants").await;
    let (_, tenant) = json(
        app.admin(Method::GET, "/tenants/acme")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        tenant["name"], "Acme Corp",
        "the admin API is the source of truth"
    );

    // An issuer, registered with the form.
    click(&browser, "[data-testid=nav-issuers]").await;
    fill(
        &browser,
        "#page input[name=issuer]",
        "https://idp.acme.test",
    )
    .await;
    fill(&browser, "#page input[name=tenant]", "acme").await;
    fill(
        &browser,
        "#page input[name=jwks_url]",
        "https://idp.acme.test/jwks",
    )
    .await;
    fill(&browser, "#page input[name=audiences]", "tollgate").await;
    click(&browser, "#page form button[type=submit]").await;
    browser.wait_for_text("td", "https://idp.acme.test").await;
    let (_, issuers) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(issuers[0]["tenant"], "acme", "{issuers}");

    // A user, and a per-user quota.
    click(&browser, "[data-testid=nav-users]").await;
    fill(&browser, "#page input[name=subject]", "jane").await;
    click(&browser, "#page form button[type=submit]").await;
    browser
        .wait_for_text("[data-testid=user-row]", "jane")
        .await;
    click(&browser, "[data-testid=nav-quotas]").await;
    browser
        .wait_for_text("section h2", "Default per user quota")
        .await;
    let forms = browser
        .find_all("section[aria-label='Default per user quota'] form input[name=tokens_per_day]")
        .await;
    browser.type_into(&forms[0], "100000").await;
    click(
        &browser,
        "section[aria-label='Default per user quota'] form button[type=submit]",
    )
    .await;
    browser.wait_for_text(".notice", "quota saved").await;
    let (_, quota) = json(
        app.admin(Method::GET, "/tenants/acme/default-user-quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(quota["limits"]["tokens_per_day"], 100000, "{quota}");
    browser.screenshot("platform-quotas").await;

    // The catalogue, and the tenant's allow-list set from it.
    click(&browser, "[data-testid=nav-models]").await;
    browser.wait_for_text("[data-testid=model-row]", "m").await;
    click(&browser, "#page p.inline button:not(.link)").await;
    browser
        .wait_for_text(".notice", "Allow-list of acme saved")
        .await;
    let (_, allowed) = json(
        app.admin(Method::GET, "/tenants/acme/models")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(allowed, json!(["m"]));

    // Some traffic, then the usage page charts it and its export equals the API's.
    let key = app.user_key("acme", "kate").await;
    for _ in 0..3 {
        let answer = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let today = time::OffsetDateTime::now_utc().date();
    let report_path = format!(
        "/tenants/acme/usage?from={today}&to={}&group_by=day,model",
        today.next_day().unwrap()
    );
    for _ in 0..100 {
        let (_, report) = json(app.admin(Method::GET, &report_path).send().await.unwrap()).await;
        if report["totals"]["requests"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    click(&browser, "[data-testid=nav-usage]").await;
    browser.find("svg[data-testid=usage-chart] rect").await;
    browser.wait_for_text(".totals", "3 requests").await;
    browser.screenshot("platform-usage").await;
    let link = browser.find("[data-testid=export-download]").await;
    let href = browser.attribute(&link, "href").await.unwrap();
    browser.click(&link).await;
    // Whatever name the export's Content-Disposition gives it, once Chromium finished writing.
    let mut exported = None;
    for _ in 0..100 {
        let done = std::fs::read_dir(downloads.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "csv"));
        if let Some(bytes) = done.and_then(|path| std::fs::read(path).ok())
            && !bytes.is_empty()
        {
            exported = Some(bytes);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exported = exported.expect("the browser saved the export");
    let path = href.split("/admin/v1").nth(1).unwrap();
    let expected = app
        .admin(Method::GET, path)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(exported, expected, "the export's rows are the API's");
    assert!(String::from_utf8_lossy(&exported).lines().count() > 1);

    // A write without the CSRF token is refused, even from the page's own origin.
    assert_eq!(
        page_fetch(&browser, "DELETE", "/admin/v1/tenants/acme").await,
        403
    );
    click(&browser, "[data-testid=logout]").await;
    browser.find("[data-testid=login-token]").await;
    assert_eq!(page_fetch(&browser, "GET", "/admin/v1/tenants").await, 401);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_signs_in_with_their_identity_provider_and_sees_only_their_tenant() {
    if !webdriver::available() {
        return;
    }
    if let Some(why) = idp_missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the SSO tests: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let app = gateway().await;
    let idp = start_idp(&app.url("/console/sso/callback"));
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    for (subject, body) in [
        ("alice", json!({"role": "admin"})),
        ("carol", json!({"role": "admin", "status": "suspended"})),
    ] {
        assert_eq!(app.put_user("acme", subject, body).await.status(), 201);
    }
    let (status, _) = json(
        app.admin(Method::POST, "/issuers")
            .json(&json!({
                "issuer": idp.issuer, "tenant": "acme", "audiences": ["tollgate-console"],
                "jwks_url": format!("{}/jwks", idp.issuer), "algorithms": ["RS256"],
                "console_client_id": "tollgate-console",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);

    let downloads = tempfile::tempdir().unwrap();
    for (subject, signed_in) in [("carol", false), ("alice", true)] {
        let browser = Browser::start(downloads.path(), 390).await;
        browser.goto(&app.url("/console")).await;
        fill(&browser, "#sso-tenant", "acme").await;
        click(&browser, "[data-testid=login-sso]").await;
        // The provider's own login form, then its consent form.
        fill(&browser, "input[name=login]", subject).await;
        fill(&browser, "input[name=password]", "any password").await;
        click(&browser, "button[type=submit]").await;
        // The consent form follows, once the login page has gone.
        let consent = "return location.pathname.includes('/interaction/') \
                       && !document.querySelector('input[name=login]') \
                       && !!document.querySelector('button[type=submit]');";
        for _ in 0..100 {
            if browser.url().await.contains("/console") {
                break;
            }
            if browser.run(consent).await == Value::Bool(true) {
                click(&browser, "button[type=submit]").await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !signed_in {
            browser
                .wait_for_text("#login-error", "Sign-in failed")
                .await;
            assert!(browser.url().await.ends_with("#login-failed"));
            browser.screenshot("tenant-admin-suspended").await;
            browser.quit().await;
            continue;
        }
        browser.wait_for_text("#who", "alice — admin of acme").await;
        browser.find("[data-testid=user-row]").await;
        browser.screenshot("tenant-admin-users-phone").await;
        // The platform's pages are not offered, and another tenant cannot be reached.
        assert_eq!(
            browser
                .run("return document.querySelector('[data-testid=nav-tenants]').hidden;")
                .await,
            Value::Bool(true)
        );
        for path in ["/admin/v1/tenants/globex/users", "/admin/v1/tenants"] {
            assert_eq!(page_fetch(&browser, "GET", path).await, 403, "{path}");
        }
        // Suspending her ends the session at once.
        app.put_user("acme", "alice", json!({"status": "suspended"}))
            .await;
        assert_eq!(
            page_fetch(&browser, "GET", "/admin/v1/tenants/acme/users").await,
            401
        );
        browser.quit().await;
    }
}
