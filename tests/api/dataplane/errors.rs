//! What the caller gets for bad requests and bad upstreams, and what never leaves the gateway.

use bytes::Bytes;
use reqwest::Method;
use serde_json::json;
use tollgate_testkit::{Reply, Step, Upstream};

use super::{DataPlane, PROVIDER_KEY, ask, model, provider};
use crate::support::{error_code, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_answers_with_the_upstream_body_and_request_id() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::single(&upstream.base_url).await;
    let response = plane.chat(&ask("m")).await;
    assert!(!response.headers()["x-request-id"].is_empty());
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from real-m"
    );
    assert_eq!(body["usage"]["total_tokens"], 10);
    let sent = &upstream.recorded()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body["model"], "real-m",
        "the upstream's name for the model"
    );
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}"),
        "the provider key goes upstream, not the client's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_urls_and_forbidden_models_are_refused_before_any_upstream_call() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![
            model("m", &[("up", "real-m")], &[]),
            model("other", &[("up", "real-o")], &[]),
        ],
        |_| {},
    )
    .await;
    let allow = plane
        .app
        .admin(Method::PUT, "/tenants/acme/models")
        .json(&json!(["m"]))
        .send()
        .await
        .unwrap();
    assert_eq!(allow.status(), 200);

    let (status, body) = json(plane.chat(&ask("gpt-nope")).await).await;
    assert_eq!((status, error_code(&body)), (404, "model_not_found"));
    for url in [
        "https://evil.example.com/v1",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let (status, body) = json(plane.chat(&ask(url)).await).await;
        assert_eq!(
            (status, error_code(&body)),
            (404, "model_not_found"),
            "{url}"
        );
    }
    let (status, body) = json(plane.chat(&ask("other")).await).await;
    assert_eq!((status, error_code(&body)), (403, "model_not_allowed"));
    let (status, body) = json(
        plane
            .post("/v1/embeddings", &json!({"model": "other", "input": "x"}))
            .await,
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "model_not_allowed"));

    // /v1/models lists only what the tenant may use.
    let models = plane
        .app
        .client
        .get(plane.app.url("/v1/models"))
        .bearer_auth(&plane.key)
        .send()
        .await
        .unwrap();
    let (_, models) = json(models).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m"]);
    assert_eq!(upstream.hits(), 0);

    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_are_refused() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| config.server.max_body_bytes = 4096,
    )
    .await;
    let url = plane.app.url("/v1/chat/completions");
    let raw = |body: String| {
        plane
            .app
            .client
            .post(&url)
            .bearer_auth(&plane.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, body) = json(
        raw("{\"model\": \"m\", \"messages\": [".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"));
    let (status, body) = json(
        raw(r#"{"model": "m", "messages": "hi"}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("messages"), "names the field: {message}");
    let (status, body) = json(raw(r#"{"messages": []}"#.into()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("model"));

    let huge = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let (status, body) = json(raw(huge.to_string()).await.unwrap()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_garbage_is_a_502_and_the_gateway_stays_up() {
    let upstream = Upstream::start(vec![Step::Garbage], Step::Answer).await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| config.routing.attempts_per_target = 1,
    )
    .await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (502, "upstream_error"));
    assert!(
        !body.to_string().contains("html"),
        "upstream bytes stay out"
    );
    // Same process, next request: served.
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200);
    let health = plane
        .app
        .client
        .get(plane.app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_fields_are_not_forwarded_and_do_not_change_the_caller() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::single(&upstream.base_url).await;
    let mut body = ask("m");
    for (field, value) in [
        ("api_base", json!("http://127.0.0.1:1/v1")),
        ("base_url", json!("http://127.0.0.1:1/v1")),
        ("api_key", json!("sk-client-supplied")),
        (
            "extra_headers",
            json!({"authorization": "Bearer sk-client-supplied"}),
        ),
        ("api_version", json!("2099-01-01")),
        ("custom_llm_provider", json!("azure")),
        ("user", json!("someone-else")),
        ("seed", json!(7)),
    ] {
        body[field] = value;
    }
    let response = plane
        .app
        .client
        .post(plane.app.url("/v1/chat/completions"))
        .bearer_auth(&plane.key)
        .header("x-tenant-id", "other-tenant")
        .header("x-api-key", "sk-client-supplied")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let sent = upstream.recorded().pop().unwrap();
    for field in [
        "api_base",
        "base_url",
        "api_key",
        "extra_headers",
        "api_version",
        "custom_llm_provider",
    ] {
        assert!(sent.body.get(field).is_none(), "{field} was forwarded");
    }
    assert_eq!(sent.body["seed"], 7, "ordinary unknown fields pass through");
    assert_eq!(sent.body["user"], "someone-else");
    assert!(!sent.body.to_string().contains("sk-client-supplied"));
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    assert!(sent.headers.get("x-api-key").is_none());
    assert!(sent.headers.get("x-tenant-id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_key_never_reaches_a_response() {
    // An upstream that echoes the key back in its error body, as some do.
    let upstream = Upstream::always(Step::Status(401, None)).await;
    let plane = DataPlane::single(&upstream.base_url).await;
    for body in [ask("m"), super::ask_stream("m")] {
        let response = plane.chat(&body).await;
        let headers = format!("{:?}", response.headers());
        let (status, body) = json(response).await;
        assert_eq!((status, error_code(&body)), (502, "upstream_error"));
        assert!(!body.to_string().contains(PROVIDER_KEY));
        assert!(!headers.contains(PROVIDER_KEY));
    }
    let (_, models) = json(
        plane
            .app
            .client
            .get(plane.app.url("/v1/models"))
            .bearer_auth(&plane.key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!models.to_string().contains(PROVIDER_KEY));
}

/// reqwest drops `Authorization` when a redirect leaves the origin, but not the other providers'
/// key headers (`x-api-key`, `api-key`, `x-goog-api-key`): a redirect is not followed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_redirect_is_not_followed_and_takes_the_key_nowhere() {
    let elsewhere = Upstream::healthy().await;
    let redirecting = Upstream::replying(Reply::Json {
        status: 307,
        headers: vec![("location", format!("{}/v1/messages", elsewhere.root_url()))],
        body: Bytes::new(),
    })
    .await;
    let mut native = provider("anthropic", &redirecting.root_url());
    native.kind = "anthropic".into();
    let plane = DataPlane::start(
        vec![native],
        vec![model("claude", &[("anthropic", "claude-real")], &[])],
        |_| {},
    )
    .await;
    let body = json!({"model": "claude", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = json(plane.post("/v1/messages", &body).await).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["type"], "api_error", "{answer}");
    assert_eq!(redirecting.recorded()[0].headers["x-api-key"], PROVIDER_KEY);
    assert_eq!(
        elsewhere.hits(),
        0,
        "the redirect's target was never called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sane_request_id_is_echoed_and_anything_else_replaced() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::single(&upstream.base_url).await;
    let send = |id: String| {
        plane
            .app
            .client
            .post(plane.app.url("/v1/chat/completions"))
            .bearer_auth(&plane.key)
            .header("x-request-id", id)
            .json(&ask("m"))
            .send()
    };
    let sane = format!("trace-{}", "a".repeat(122));
    let response = send(sane.clone()).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], sane.as_str());
    for insane in [
        "b".repeat(10 * 1024),
        "x".repeat(129),
        "two words".to_owned(),
        "tab\there".to_owned(),
        "caf\u{e9}".to_owned(),
    ] {
        let response = send(insane.clone()).await.unwrap();
        assert_eq!(response.status(), 200);
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, insane);
        assert_eq!(echoed.len(), 36, "a fresh UUID: {echoed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_on_a_known_route_is_405_with_allow() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::single(&upstream.base_url).await;
    for (method, path, allowed) in [
        (Method::GET, "/v1/chat/completions", "POST"),
        (Method::DELETE, "/v1/models", "GET"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let response = plane
            .app
            .client
            .request(method.clone(), plane.app.url(path))
            .bearer_auth(&plane.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains(allowed), "{method} {path}: Allow: {allow}");
        let (_, body) = json(response).await;
        assert_eq!(error_code(&body), "method_not_allowed");
    }
}
