//! Tenant admins' SSO against a real OpenID provider: `oidc-provider` in development mode
//! (`tests/console/idp/`), driven with plain HTTP: its login form, its consent form, back to the
//! gateway's callback. Skipped with a printed reason when node or the package is missing,
//! except in CI.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use reqwest::{Method, Url};
use serde_json::json;

use super::platform::session_cookie;
use crate::support::{Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(tenant_admins_sign_in_through_their_identity_provider);

const CLIENT_ID: &str = "tollgate-console";

/// The provider's process, killed when the test ends.
pub(super) struct Idp {
    child: Child,
    pub(super) issuer: String,
    // Kept open: a closed pipe would kill the provider on its next write.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn idp_dir() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "tests", "console", "idp"]
        .iter()
        .collect()
}

/// Why the provider cannot run here, if it cannot (`npm ci` is tried once first). Answered
/// once per test process: the tests that need the provider run in parallel, and two `npm ci`
/// at once in one directory leave it half installed while one of them starts the provider.
pub(super) fn idp_missing() -> Option<String> {
    static MISSING: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MISSING.get_or_init(install_idp).clone()
}

fn install_idp() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Some("node is not installed".into());
    }
    let dir = idp_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status();
        if !installed.is_ok_and(|status| status.success()) {
            return Some(format!("`npm ci` failed in {}", dir.display()));
        }
    }
    None
}

pub(super) fn start_idp(redirect_uri: &str) -> Idp {
    let mut child = Command::new("node")
        .arg("idp.mjs")
        .args([CLIENT_ID, redirect_uri])
        .current_dir(idp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the OpenID provider");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let issuer = line
        .strip_prefix("issuer ")
        .unwrap_or_else(|| panic!("the provider said {line:?}"))
        .trim()
        .to_owned();
    Idp {
        child,
        issuer,
        _stdout: stdout,
    }
}

/// How an SSO login ended at the gateway: where the browser is sent, and the session cookie.
struct Outcome {
    location: String,
    cookie: Option<String>,
}

/// A browser without a browser: follows redirects by hand, keeps the provider's and the
/// gateway's cookies, and submits the provider's dev login form (any password) and its consent
/// form.
async fn sso_login(app: &TestApp, idp: &Idp, tenant: &str, subject: &str) -> Outcome {
    login_through(app, idp, tenant, subject, Callback::SameBrowser).await
}

/// Who opens the provider's link back to the gateway.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Callback {
    SameBrowser,
    /// Another browser, without the cookies of the one that started the login: an attacker's
    /// login link sent to a victim.
    OtherBrowser,
}

async fn login_through(
    app: &TestApp,
    idp: &Idp,
    tenant: &str,
    subject: &str,
    callback: Callback,
) -> Outcome {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: HashMap<String, String> = HashMap::new();
    let mut gateway_jar: Vec<String> = Vec::new();
    let mut next = (
        Method::GET,
        app.url(&format!("/console/sso/{tenant}")),
        None::<String>,
    );
    for _ in 0..20 {
        let (method, url, form) = next;
        let at_idp = url.starts_with(&idp.issuer);
        let mut request = client.request(method, &url);
        if at_idp && !jar.is_empty() {
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", cookies.join("; "));
        }
        let elsewhere = callback == Callback::OtherBrowser && url.contains("/console/sso/callback");
        if !at_idp && !gateway_jar.is_empty() && !elsewhere {
            request = request.header("cookie", gateway_jar.join("; "));
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
        }
        let response = request.send().await.unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        if !at_idp {
            // The gateway: the first hop (to the provider) or the callback's answer.
            assert!(
                response.status().is_redirection(),
                "{url}: {}",
                response.status()
            );
            let location = location.unwrap();
            if location.starts_with(&idp.issuer) {
                for set in response.headers().get_all("set-cookie") {
                    let pair = set.to_str().unwrap().split(';').next().unwrap();
                    gateway_jar.push(pair.to_owned());
                }
                next = (Method::GET, location, None);
                continue;
            }
            return Outcome {
                cookie: session_cookie(&response),
                location,
            };
        }
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let here = Url::parse(&url).unwrap();
        if let Some(location) = location {
            next = (Method::GET, here.join(&location).unwrap().to_string(), None);
            continue;
        }
        let status = response.status();
        let page = response.text().await.unwrap();
        let form_at = page
            .find("<form")
            .unwrap_or_else(|| panic!("{url} answered {status} without a form: {page}"));
        let action_at = page[form_at..].find("action=\"").unwrap() + form_at + 8;
        let action = &page[action_at..action_at + page[action_at..].find('"').unwrap()];
        let mut form = Url::parse("http://form.invalid/").unwrap();
        if page.contains("name=\"login\"") {
            form.query_pairs_mut()
                .append_pair("prompt", "login")
                .append_pair("login", subject)
                .append_pair("password", "any password");
        } else {
            form.query_pairs_mut().append_pair("prompt", "consent");
        }
        let body = form.query().unwrap().to_owned();
        next = (
            Method::POST,
            here.join(action).unwrap().to_string(),
            Some(body),
        );
    }
    panic!("the login did not come back to the gateway");
}

async fn tenant_admins_sign_in_through_their_identity_provider(backend: Backend) {
    if let Some(why) = idp_missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the SSO tests: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let app = TestApp::spawn(backend).await;
    let idp = start_idp(&app.url("/console/sso/callback"));
    app.create_tenant("acme").await;
    app.create_tenant("other").await;
    for (subject, body) in [
        ("alice", json!({ "role": "admin" })),
        ("bob", json!({ "role": "member" })),
        ("carol", json!({ "role": "admin", "status": "suspended" })),
    ] {
        assert_eq!(app.put_user("acme", subject, body).await.status(), 201);
    }
    let (status, issuer) = json(
        app.admin(Method::POST, "/issuers")
            .json(&json!({
                "issuer": idp.issuer,
                "tenant": "acme",
                "audiences": [CLIENT_ID],
                "jwks_url": format!("{}/jwks", idp.issuer),
                "algorithms": ["RS256"],
                "console_client_id": CLIENT_ID,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{issuer}");
    assert_eq!(issuer["console_client_id"], CLIENT_ID);
    // What the console's "fill in from discovery" asks: the provider's own document.
    let (status, found) = json(
        app.admin(Method::POST, "/issuers/discover")
            .json(&json!({ "issuer": idp.issuer }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["issuer"], idp.issuer);
    assert_eq!(found["jwks_uri"], format!("{}/jwks", idp.issuer));

    // The redirect to the provider carries PKCE S256, state and nonce.
    let first = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/console/sso/acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let to = Url::parse(first.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert!(to.as_str().starts_with(&idp.issuer));
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], app.url("/console/sso/callback"));
    assert_eq!(query["scope"], "openid email profile");
    assert!(query.contains_key("state") && query.contains_key("nonce"));

    // An active admin gets a session for their tenant only.
    let alice = sso_login(&app, &idp, "acme", "alice").await;
    assert_eq!(alice.location, "/console");
    let cookie = alice.cookie.expect("a session cookie");
    let with_session = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("cookie", &cookie)
    };
    let (status, session) = json(
        with_session(Method::GET, "/console/session")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        session["who"],
        json!({ "kind": "tenant_admin", "tenant": "acme", "subject": "alice" })
    );
    let csrf = session["csrf"].as_str().unwrap().to_owned();
    let (status, _) = json(
        with_session(Method::GET, "/admin/v1/tenants/acme/users")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    for path in ["/admin/v1/tenants/other", "/admin/v1/tenants/other/users"] {
        let (status, body) = json(with_session(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = json(
        with_session(Method::PUT, "/admin/v1/tenants/acme/users/dave")
            .header("x-csrf-token", &csrf)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "a tenant admin's write with the CSRF token");
    // The sign-in and the write through the session are audited as alice's.
    let signed_in = app.audit("action=console.signed_in").await;
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(
        signed_in[0]["actor"],
        json!({ "kind": "tenant_admin", "id": "alice" })
    );
    assert_eq!(signed_in[0]["tenant"], "acme");
    assert!(signed_in[0]["request_id"].is_string());
    let by_alice = app.audit("actor=tenant_admin:alice").await;
    assert_eq!(by_alice.len(), 2, "{by_alice:?}");
    assert_eq!(by_alice[1]["target"], "dave");
    let (status, body) = json(
        with_session(Method::POST, "/admin/v1/tenants")
            .header("x-csrf-token", &csrf)
            .json(&json!({ "id": "mine", "name": "Mine" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));

    // The provider's link back, opened by a browser that did not start the login (an
    // attacker's login sent to a victim): refused, no session.
    let replayed = login_through(&app, &idp, "acme", "alice", Callback::OtherBrowser).await;
    assert_eq!(replayed.location, "/console#login-failed");
    assert!(replayed.cookie.is_none());

    // A member, a suspended admin, a tenant without a console issuer: refused, no session.
    for (tenant, subject) in [("acme", "bob"), ("acme", "carol"), ("other", "alice")] {
        let outcome = sso_login(&app, &idp, tenant, subject).await;
        assert_eq!(
            outcome.location, "/console#login-failed",
            "{tenant}/{subject}"
        );
        assert!(outcome.cookie.is_none(), "{tenant}/{subject}");
    }
    assert_eq!(
        app.audit("action=console.signed_in").await.len(),
        1,
        "a refused sign-in is no event"
    );
    let metrics = app.metrics().await;
    for result in [
        "success",
        "not_admin",
        "user_suspended",
        "no_console_issuer",
    ] {
        assert!(
            metrics.contains(&format!(
                "tollgate_console_logins_total{{result=\"{result}\"}}"
            )),
            "{result}"
        );
    }

    // Suspending the admin ends the session at once.
    assert_eq!(
        app.put_user("acme", "alice", json!({ "status": "suspended" }))
            .await
            .status(),
        200
    );
    let (status, _) = json(
        with_session(Method::GET, "/admin/v1/tenants/acme/users")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    app.put_user("acme", "alice", json!({ "status": "active" }))
        .await;
    let (status, _) = json(
        with_session(Method::GET, "/console/session")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "the ended session stays ended");
}
