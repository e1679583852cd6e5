//! The platform admin's console session: login with the admin token, the cookie, CSRF on
//! writes through the admin API, idle expiry, logout.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(
    platform_login_gives_a_cookie_session_the_admin_api_accepts,
    an_idle_session_is_refused,
    a_busy_session_still_ends_at_its_max_age,
    a_session_outlives_a_restart_but_not_a_new_admin_token,
);

/// Logs in; returns the cookie pair (`tg_session=…`), the CSRF token and the whole response.
pub async fn login(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response).expect("a session cookie");
    let (_, body) = json(response).await;
    (cookie, body["csrf"].as_str().unwrap().to_owned())
}

/// The `tg_session=<token>` pair of a response's `Set-Cookie`, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tg_session=") && !v.starts_with("tg_session=;"))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

async fn platform_login_gives_a_cookie_session_the_admin_api_accepts(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let page = app.client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert!(page.text().await.unwrap().contains("<html"));

    // A wrong token: the usual 401, and no cookie.
    let wrong = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "token": "not-the-admin-token" }))
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&wrong).is_none());
    let (status, body) = json(wrong).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "invalid_credentials");

    let response = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = session_cookie(&response).unwrap();
    let (_, body) = json(response).await;
    let csrf = body["csrf"].as_str().unwrap().to_owned();
    assert!(csrf.len() >= 32);
    assert_eq!(
        body["who"],
        json!({ "kind": "platform", "tenant": null, "subject": null })
    );

    // Behind a TLS-terminating proxy the cookie is Secure.
    let proxied = app
        .client
        .post(app.url("/console/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert!(
        proxied.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    let (status, current) = json(
        app.client
            .get(app.url("/console/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(current, body);

    // The admin API takes the session: reads as they are, writes with the CSRF token only.
    let (status, _) = json(
        app.client
            .get(app.url("/admin/v1/tenants"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let create = |csrf: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/admin/v1/tenants"))
            .header("cookie", &cookie)
            .json(&json!({ "id": "acme", "name": "Acme" }));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let (status, refused) = json(create(None).await.unwrap()).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(error_code(&refused), "csrf_failed");
    let (status, _) = json(create(Some("not-the-csrf-token")).await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, created) = json(create(Some(&csrf)).await.unwrap()).await;
    assert_eq!(status, 201, "{created}");

    // Logout needs the CSRF token too; then the session is gone everywhere.
    let (status, _) = json(
        app.client
            .delete(app.url("/console/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let logout = app
        .client
        .delete(app.url("/console/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let cleared = logout.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("tg_session=;") && cleared.contains("Max-Age=0"));
    for path in ["/console/session", "/admin/v1/tenants"] {
        let (status, body) = json(
            app.client
                .get(app.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(error_code(&body), "invalid_credentials");
    }
    // No cookie at all: the admin API is the usual 401.
    let (status, _): (u16, Value) = json(
        app.client
            .get(app.url("/console/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

async fn an_idle_session_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.console.session_idle_timeout = Duration::from_millis(800);
    })
    .await;
    let (cookie, _) = login(&app).await;
    let get = || {
        app.client
            .get(app.url("/console/session"))
            .header("cookie", &cookie)
            .send()
    };
    // Used within the idle timeout, it lives on past it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(get().await.unwrap().status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(get().await.unwrap().status(), 401);
    assert_eq!(get().await.unwrap().status(), 401, "and stays ended");
}

async fn a_busy_session_still_ends_at_its_max_age(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.console.session_idle_timeout = Duration::from_millis(1500);
        config.console.session_max_age = Duration::from_millis(1500);
    })
    .await;
    let (cookie, _) = login(&app).await;
    let get = || {
        app.client
            .get(app.url("/admin/v1/tenants"))
            .header("cookie", &cookie)
            .send()
    };
    // Used every 300 ms, never idle, yet over once 1.5 s have passed since the login.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get().await.unwrap().status().as_u16());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert_eq!(statuses[7], 401, "{statuses:?}");
    let first_refused = statuses.iter().position(|s| *s == 401).unwrap();
    assert!(
        statuses[first_refused..].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
}

async fn a_session_outlives_a_restart_but_not_a_new_admin_token(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (cookie, _) = login(&app).await;
    let status = |app: &TestApp| {
        app.client
            .get(app.url("/admin/v1/tenants"))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(status(&app).await.unwrap().status(), 200);
    // Sessions live in SQL: another process (a restart, a replica) knows them.
    app.restart().await;
    assert_eq!(status(&app).await.unwrap().status(), 200);
    // A rotated admin token ends every session opened with the old one.
    app.restart_with_admin_token("a-rotated-admin-token-with-enough-entropy-42")
        .await;
    assert_eq!(status(&app).await.unwrap().status(), 401);
}
